"""Matplotlib figures used across the chapters: faces, landmarks, HOG, masks.

Every function draws with matplotlib's object API and returns the
:class:`~matplotlib.figure.Figure` it drew on. Functions that draw one panel
take an optional ``ax``, so a chapter can place them in its own layout.
Without one they create a new figure.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .faces import LANDMARK_GROUPS, check_landmarks, load_image
from .mask import band_histograms, weighted_mask

#: One colour per landmark group, from matplotlib's "tab10" palette.
GROUP_COLOURS = {
    "jaw": "tab:blue",
    "brows": "tab:orange",
    "nose": "tab:green",
    "eyes": "tab:red",
    "mouth": "tab:purple",
}

MASK_CMAP = "magma"


def _axes(ax: Axes | None, figsize=(4, 4)) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize)
    return fig, ax


def draw_landmarks(ax: Axes, landmarks, size: float = 8, legend: bool = False) -> None:
    """Scatter the 68 landmarks on ``ax``, coloured by group."""
    points = check_landmarks(landmarks)
    for group, span in LANDMARK_GROUPS.items():
        ax.scatter(points[span, 0], points[span, 1], s=size, c=GROUP_COLOURS[group], label=group, linewidths=0)
    if legend:
        ax.legend(loc="lower right", fontsize="small", markerscale=2, framealpha=0.8)


def show_detection(image, box=None, landmarks=None, ax: Axes | None = None, title: str | None = None) -> Figure:
    """Show an image with a face box ``(left, top, right, bottom)`` and its landmarks."""
    rgb = load_image(image)
    fig, ax = _axes(ax, figsize=(5, 5 * rgb.shape[0] / rgb.shape[1]))
    ax.imshow(rgb)
    if box is not None:
        left, top, right, bottom = box
        ax.add_patch(Rectangle((left, top), right - left, bottom - top, fill=False, edgecolor="lime", linewidth=2))
    if landmarks is not None:
        draw_landmarks(ax, landmarks, size=6, legend=True)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return fig


def show_face(face, landmarks=None, ax: Axes | None = None, title: str | None = None) -> Figure:
    """Show a face crop, optionally with its landmarks."""
    rgb = load_image(face)
    fig, ax = _axes(ax)
    ax.imshow(rgb)
    if landmarks is not None:
        draw_landmarks(ax, landmarks)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return fig


def show_mask(mask: np.ndarray, ax: Axes | None = None, title: str | None = None, colorbar: bool = True,
              vmin: float = 0.0, vmax: float = 1.0) -> Figure:
    """Show a ``(S, S)`` mask with a fixed colour range, so masks compare across panels."""
    fig, ax = _axes(ax)
    image = ax.imshow(mask, cmap=MASK_CMAP, vmin=vmin, vmax=vmax)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    if colorbar:
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return fig


def masked_face(face, mask: np.ndarray) -> np.ndarray:
    """Return the face multiplied by the mask, ``(S, S, 3)`` uint8; negative weights count as 0."""
    rgb = load_image(face).astype(np.float32)
    weights = np.clip(mask, 0.0, 1.0)[:, :, None]
    return np.round(rgb * weights).astype(np.uint8)


def overlay_mask(face, mask: np.ndarray, alpha: float = 0.5, ax: Axes | None = None, title: str | None = None) -> Figure:
    """Draw the mask over the face with opacity ``alpha`` in [0, 1]."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}.")
    fig, ax = _axes(ax)
    ax.imshow(load_image(face))
    ax.imshow(mask, cmap=MASK_CMAP, vmin=0.0, vmax=1.0, alpha=alpha)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return fig


def hog_image(image: np.ndarray, orientations: int = 8, cell: int = 8) -> np.ndarray:
    """Return scikit-image's HOG visualisation of an RGB image, scaled to [0, 1]."""
    from skimage.feature import hog

    _, picture = hog(
        image,
        orientations=orientations,
        pixels_per_cell=(cell, cell),
        cells_per_block=(1, 1),
        visualize=True,
        channel_axis=2,
    )
    peak = picture.max()
    return picture / peak if peak > 0 else picture


def show_hog_bands(face, n_regions: int = 4, orientations: int = 8, cell: int = 8) -> Figure:
    """Show the face's HOG and, per band, its HOG picture and orientation histogram.

    The top row shows the face and its HOG visualisation (cells of ``cell``
    pixels). Each following row shows one band: its HOG visualisation, and its
    histogram next to the whole face's, both scaled to sum 1.
    """
    rgb = load_image(face)
    size = rgb.shape[0]
    bands, whole = band_histograms(rgb, n_regions=n_regions, orientations=orientations)
    edges = (np.arange(n_regions + 1) * size) // n_regions
    fig, axes = plt.subplots(
        n_regions + 1, 2, figsize=(7, 2.2 * (n_regions + 1)), gridspec_kw={"width_ratios": [1.6, 1]}, squeeze=False
    )
    axes[0, 0].imshow(rgb)
    for edge in edges[1:-1]:
        axes[0, 0].axhline(edge - 0.5, color="white", linewidth=1)
    axes[0, 0].set_title("face and its bands")
    axes[0, 1].imshow(hog_image(rgb, orientations, cell), cmap="gray")
    axes[0, 1].set_title("HOG of the whole face")
    centres = (np.arange(orientations) + 0.5) * 180 / orientations
    width = 0.4 * 180 / orientations
    whole_share = whole / whole.sum() if whole.sum() > 0 else whole
    for i in range(n_regions):
        band = rgb[edges[i] : edges[i + 1]]
        axes[i + 1, 0].imshow(hog_image(band, orientations, cell), cmap="gray", aspect="auto")
        axes[i + 1, 0].set_title(f"band {i}: HOG", fontsize="small")
        share = bands[i] / bands[i].sum() if bands[i].sum() > 0 else bands[i]
        axes[i + 1, 1].bar(centres - width / 2, share, width=width, label=f"band {i}")
        axes[i + 1, 1].bar(centres + width / 2, whole_share, width=width, label="face", color="gray")
        axes[i + 1, 1].set_xticks(np.linspace(0, 180, 5))
        axes[i + 1, 1].legend(fontsize="x-small")
    axes[-1, 1].set_xlabel("gradient orientation (degrees)")
    for ax in axes[:, 0]:
        ax.set_axis_off()
    axes[0, 1].set_axis_off()
    fig.tight_layout()
    return fig


def plot_correlations(rho_by_label: dict[str, Sequence[float]], ax: Axes | None = None,
                      title: str = "Band correlation ρ_i with the whole face") -> Figure:
    """Draw grouped bars of ρ per band, one group member per label (a face or a mode)."""
    fig, ax = _axes(ax, figsize=(6, 3))
    labels = list(rho_by_label)
    n_bands = max(len(values) for values in rho_by_label.values())
    width = 0.8 / len(labels)
    for j, label in enumerate(labels):
        values = np.asarray(rho_by_label[label], dtype=float)
        ax.bar(np.arange(values.size) + (j - (len(labels) - 1) / 2) * width, values, width=width, label=label)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xticks(np.arange(n_bands))
    ax.set_xticklabels([f"band {i}" for i in range(n_bands)])
    ax.set_ylabel("ρ")
    ax.set_title(title)
    ax.legend(fontsize="small")
    return fig


def mask_grid(face, landmarks, settings: Sequence[dict], columns: int = 4, mode: str = "paper",
              panel_size: float = 2.2) -> Figure:
    """Draw small multiples: one mask per dict of :func:`mask.weighted_mask` keyword arguments.

    Each panel's title lists the settings that differ from the defaults.
    """
    rows = -(-len(settings) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(panel_size * columns, panel_size * rows), squeeze=False)
    for ax, kwargs in zip(axes.ravel(), settings):
        values = weighted_mask(face, landmarks, **{"mode": mode, **kwargs})
        ax.imshow(values, cmap=MASK_CMAP, vmin=0.0, vmax=1.0)
        ax.set_title(", ".join(f"{_SHORT.get(k, k)}={v}" for k, v in kwargs.items()), fontsize="small")
    for ax in axes.ravel():
        ax.set_axis_off()
    fig.tight_layout()
    return fig


_SHORT = {"n_regions": "N", "orientations": "K", "patch_size": "M"}


def show_modes(face, landmarks, **kwargs) -> Figure:
    """Show the paper-mode and official-mode masks of one face side by side, with their difference."""
    paper = weighted_mask(face, landmarks, mode="paper", **kwargs)
    official = weighted_mask(face, landmarks, mode="official", **kwargs)
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
    show_mask(paper, ax=axes[0], title='mode="paper"')
    show_mask(official, ax=axes[1], title='mode="official"', vmin=min(0.0, float(official.min())))
    difference = official - paper
    limit = max(float(np.abs(difference).max()), 1e-6)
    image = axes[2].imshow(difference, cmap="coolwarm", vmin=-limit, vmax=limit)
    axes[2].set_title("official − paper")
    axes[2].set_axis_off()
    fig.colorbar(image, ax=axes[2], fraction=0.046, pad=0.04)
    fig.tight_layout()
    return fig
