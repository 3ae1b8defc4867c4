"""Sample inputs and pictures of feature maps for the network chapters.

:func:`load_sample_batch` turns the two public-domain portraits into OAENet's
two inputs. :func:`show_feature_maps` and :func:`show_channel_means` draw what a
layer computes, each map on its own colour scale, because an untrained layer's
values are small and differ in range from map to map.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import NamedTuple, Optional

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from oaenet_helpers import faces, mask, models

logger = logging.getLogger(__name__)

SAMPLE_NAMES = ("astronaut", "grace_hopper")


class SampleBatch(NamedTuple):
    """Aligned sample faces, their weighted masks and the model inputs built from them.

    Attributes:
        names: sample names, one per face.
        faces: ``(B, S, S, 3)`` uint8 RGB aligned crops.
        landmarks: ``(B, 68, 2)`` float32 in crop pixels.
        masks: ``(B, S, S)`` float32 weighted masks.
        image: ``(B, 3, S, S)`` float32 normalised faces.
        weighted_image: ``(B, 3, S, S)`` float32 normalised ``face × mask``.
    """

    names: tuple[str, ...]
    faces: np.ndarray
    landmarks: np.ndarray
    masks: np.ndarray
    image: Tensor
    weighted_image: Tensor


def load_sample_batch(size: int = 224, names: Sequence[str] = SAMPLE_NAMES, mask_mode: str = "paper") -> SampleBatch:
    """Detect, align and mask the sample portraits, and build the model inputs.

    Args:
        size: side ``S`` of the aligned crops in pixels; a multiple of 32.
        names: names accepted by :func:`oaenet_helpers.faces.sample_image`.
        mask_mode: ``"paper"`` or ``"official"``, see :func:`oaenet_helpers.mask.weighted_mask`.

    Raises:
        ValueError: ``size`` is not a positive multiple of 32, or a name is unknown.
        oaenet_helpers.faces.NoFaceError: a portrait has no detectable face.
    """
    if size <= 0 or size % models.INPUT_MULTIPLE:
        raise ValueError(f"size must be a positive multiple of {models.INPUT_MULTIPLE}, got {size}.")
    crops, points, weights = [], [], []
    for name in names:
        aligned = faces.detect_and_align(faces.sample_image(name), size=size)
        crops.append(aligned.image)
        points.append(aligned.landmarks)
        weights.append(mask.weighted_mask(aligned.image, aligned.landmarks, mode=mask_mode))
        logger.debug("Aligned and masked sample %r at %d px", name, size)
    face_batch = np.stack(crops)
    mask_batch = np.stack(weights).astype(np.float32)
    image, weighted_image = models.to_model_inputs(face_batch, mask_batch)
    return SampleBatch(tuple(names), face_batch, np.stack(points), mask_batch, image, weighted_image)


def _as_maps(feature_map: Tensor, name: str = "feature_map") -> np.ndarray:
    maps = feature_map.detach().float().cpu()
    if maps.dim() == 4:
        if maps.shape[0] != 1:
            raise ValueError(f"{name} must hold one image, (C, H, W) or (1, C, H, W); got {tuple(maps.shape)}.")
        maps = maps[0]
    if maps.dim() != 3:
        raise ValueError(f"{name} must have shape (C, H, W) or (1, C, H, W), got {tuple(maps.shape)}.")
    if not torch.isfinite(maps).all():
        raise ValueError(f"{name} contains NaN or infinite values.")
    return maps.numpy()


def strongest_channels(feature_map: Tensor, count: int) -> list[int]:
    """Return the indices of the ``count`` channels with the largest spatial variance, largest first."""
    maps = _as_maps(feature_map)
    variance = maps.reshape(maps.shape[0], -1).var(axis=1)
    return [int(i) for i in np.argsort(-variance, kind="stable")[:count]]


def show_feature_maps(
    feature_map: Tensor,
    max_maps: int = 8,
    title: str = "",
    columns: int = 8,
) -> Figure:
    """Draw the channels with the most spatial variation, each on its own colour scale.

    Args:
        feature_map: ``(C, H, W)`` or ``(1, C, H, W)`` activations of one image.
        max_maps: how many channels to draw.
        title: figure title; the shape is appended.
        columns: maps per row.

    Returns:
        The figure; each panel is titled with its channel index.
    """
    maps = _as_maps(feature_map)
    channels = strongest_channels(feature_map, min(max_maps, maps.shape[0]))
    rows = -(-len(channels) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.7 * rows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, channel in zip(axes.flat, channels):
        ax.imshow(maps[channel], cmap="viridis")
        ax.set_title(f"ch {channel}", fontsize=8)
    shape = "×".join(str(value) for value in maps.shape)
    figure.suptitle(f"{title} ({shape})".strip(), fontsize=10)
    figure.tight_layout()
    return figure


def show_channel_means(
    panels: Mapping[str, Tensor],
    face: Optional[np.ndarray] = None,
    cmap: str = "magma",
) -> Figure:
    """Draw the channel mean of several ``(C, H, W)`` maps side by side, after an optional face.

    Args:
        panels: title → ``(C, H, W)`` or ``(1, C, H, W)`` map (or ``(H, W)``).
        face: ``(S, S, 3)`` uint8 RGB drawn first, for orientation.
        cmap: colour map of the feature panels.

    Returns:
        The figure, with a colour bar under each feature panel.
    """
    count = len(panels) + (face is not None)
    figure, axes = plt.subplots(1, count, figsize=(3.0 * count, 3.4), squeeze=False)
    axes = list(axes.flat)
    if face is not None:
        axes[0].imshow(face)
        axes[0].set_title("face", fontsize=9)
        axes[0].set_axis_off()
        axes = axes[1:]
    for ax, (title, tensor) in zip(axes, panels.items()):
        values = tensor.detach().float().cpu()
        if values.dim() == 2:
            values = values[None]
        image = _as_maps(values, title).mean(axis=0)
        artist = ax.imshow(image, cmap=cmap)
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
        figure.colorbar(artist, ax=ax, orientation="horizontal", fraction=0.05, pad=0.04)
    figure.tight_layout()
    return figure
