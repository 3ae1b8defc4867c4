"""The weighted mask in PyTorch, computed on the device its tensors are on.

Training can build masks on the GPU next to the batch with
:func:`weighted_mask_torch`. It follows :mod:`oaenet_helpers.mask` step by step
(same gradient tables, same regions, same patch rules) and returns the same
mask within 1e-5 in paper mode.

NOTE: official mode sums each HOG cell in float64 here. scikit-image adds the
magnitudes one by one to a float32 variable, and the NumPy version reproduces
that order with ``np.add.at``, which has no fast parallel equivalent on a GPU.
The float64 sums differ from scikit-image's by up to about 1e-5 relative,
which moved official-mode mask values by up to 2.3e-5 on the two sample
portraits (paper mode is unaffected). Use the NumPy version where agreement
with the official code to 1e-6 matters.

NOTE: the tests compare this module with NumPy on CPU tensors; the CUDA
comparison in ``tests/test_mask.py`` runs only on a machine with a GPU.
"""

from __future__ import annotations

import logging
from typing import Iterable

import numpy as np
import torch

from .faces import N_LANDMARKS
from .mask import (
    _GRADIENT_MAX,
    _GRADIENT_SIDE,
    UNDEFINED_RHO,
    MaskParams,
    _ambiguous_squares,
    band_rows,
    check_params,
    orientation_tables,
    patch_weights,
    selected_landmarks,
)

logger = logging.getLogger(__name__)

_CPU_CHUNK = 4

_tables: dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor]] = {}


def _device_tables(orientations: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the magnitude (float64) and bin (int64) tables of :func:`mask.orientation_tables` on ``device``."""
    key = (orientations, str(device))
    if key not in _tables:
        magnitude, bins = orientation_tables(orientations)
        _tables[key] = (
            torch.from_numpy(np.array(magnitude)).to(device),
            torch.from_numpy(bins.astype(np.int64)).to(device),
        )
    return _tables[key]


def _ambiguous_table(device: torch.device) -> torch.Tensor:
    key = (0, str(device))
    if key not in _tables:
        _tables[key] = (torch.from_numpy(_ambiguous_squares()).to(device), torch.empty(0))
    return _tables[key][0]


def _check_faces(faces: torch.Tensor) -> torch.Tensor:
    if not isinstance(faces, torch.Tensor):
        raise TypeError(f"faces must be a torch.Tensor, got {type(faces).__name__}; use mask.weighted_mask for NumPy arrays.")
    if faces.dim() == 3:
        faces = faces.unsqueeze(0)
    if faces.dim() != 4 or faces.shape[-1] != 3 or faces.shape[1] != faces.shape[2]:
        raise ValueError(
            f"faces must have shape (B, S, S, 3) or (S, S, 3), got {tuple(faces.shape)}; "
            "permute a (B, 3, S, S) batch with faces.permute(0, 2, 3, 1)."
        )
    if faces.dtype != torch.uint8:
        raise ValueError(
            f"faces must be uint8 RGB, got {faces.dtype}; convert a [0, 1] float batch with "
            "(faces * 255).round().to(torch.uint8)."
        )
    if faces.shape[0] == 0:
        raise ValueError("faces is an empty batch; pass at least one face.")
    return faces


def _check_landmarks(landmarks: torch.Tensor, batch: int, device: torch.device) -> torch.Tensor:
    points = torch.as_tensor(landmarks, device=device).to(torch.float64)
    if points.dim() == 2:
        points = points.unsqueeze(0)
    if tuple(points.shape) != (batch, N_LANDMARKS, 2):
        raise ValueError(f"landmarks must have shape ({batch}, 68, 2) to match the faces, got {tuple(points.shape)}.")
    bad = ~torch.isfinite(points).all(dim=-1)
    if bool(bad.any()):
        face_idx, point_idx = (int(v) for v in torch.nonzero(bad)[0])
        raise ValueError(
            f"landmarks of face {face_idx} contain NaN or infinite coordinates at index {point_idx} "
            f"({int(bad.sum())} point(s) in all); drop that face or re-run the detector."
        )
    return points


def _select_gradients(faces: torch.Tensor, magnitude_table: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick each pixel's gradient from its strongest channel; see :func:`mask.select_gradients`.

    Returns ``(B, S, S)`` int64 table codes and int32 squared magnitudes.
    """
    ambiguous = _ambiguous_table(faces.device)
    pixels = faces.permute(3, 0, 1, 2).to(torch.int32).contiguous()  # (C, B, S, S)
    g_row = torch.zeros_like(pixels)
    g_col = torch.zeros_like(pixels)
    g_row[:, :, 1:-1] = pixels[:, :, 2:] - pixels[:, :, :-2]
    g_col[:, :, :, 1:-1] = pixels[:, :, :, 2:] - pixels[:, :, :, :-2]
    squared = g_row * g_row + g_col * g_col
    codes = (g_row + _GRADIENT_MAX) * _GRADIENT_SIDE + (g_col + _GRADIENT_MAX)

    best_codes, best_squared = codes[0], squared[0]
    for channel in range(1, codes.shape[0]):
        better = squared[channel] > best_squared
        tie = (squared[channel] == best_squared) & (codes[channel] != best_codes)
        index = torch.nonzero(tie.reshape(-1)).squeeze(1)
        if index.numel():
            index = index[ambiguous[best_squared.reshape(-1)[index].long()]]
            candidate = magnitude_table[codes[channel].reshape(-1)[index].long()]
            current = magnitude_table[best_codes.reshape(-1)[index].long()]
            better.reshape(-1)[index] = candidate > current
        best_codes = torch.where(better, codes[channel], best_codes)
        best_squared = torch.maximum(squared[channel], best_squared)
    return best_codes.long(), best_squared


def _region_histograms(faces: torch.Tensor, params: MaskParams) -> tuple[torch.Tensor, torch.Tensor]:
    """Compute ``(B, N, K)`` region and ``(B, K)`` whole-face histograms, float64."""
    device = faces.device
    magnitude_table, bin_table = _device_tables(params.orientations, device)
    codes, squared = _select_gradients(faces, magnitude_table)
    bins = bin_table[codes]  # (B, S, S), value K: no bin
    magnitude = squared.to(torch.float64).sqrt()
    batch, size = bins.shape[:2]
    k, n = params.orientations, params.n_regions

    if params.mode == "paper":
        line = torch.arange(size, device=device).view(1, size, 1)  # rows
        n_lines = size
    else:
        width = size // n
        line = torch.clamp(torch.arange(size, device=device) // width, max=n).view(1, 1, size)  # column cells
        n_lines = n + 1
    face_index = torch.arange(batch, device=device).view(batch, 1, 1)
    index = ((face_index * n_lines + line) * (k + 1) + bins).reshape(-1)
    sums = torch.bincount(index, weights=magnitude.reshape(-1), minlength=batch * n_lines * (k + 1))
    sums = sums.view(batch, n_lines, k + 1)[:, :, :k]

    if params.mode == "paper":
        membership = torch.from_numpy(band_rows(size, n)).to(device) == torch.arange(n, device=device).view(n, 1)
        regions = torch.einsum("ns,bsk->bnk", membership.to(torch.float64), sums)
        return regions, sums.sum(dim=1)
    whole = sums.sum(dim=1) / (size * size)
    columns = sums[:, :n] / (size * width)

    def l1_normalise(hist: torch.Tensor) -> torch.Tensor:
        return hist / (hist.abs().sum(dim=-1, keepdim=True) + 1e-5)

    return l1_normalise(columns), l1_normalise(whole)


def _correlations(regions: torch.Tensor, whole: torch.Tensor, mode: str) -> torch.Tensor:
    """Compute ρ per region as :func:`mask.correlations_from_histograms` does; ``(B, N)`` float64."""
    region_centred = regions - regions.mean(dim=-1, keepdim=True)
    face_centred = whole - whole.mean(dim=-1, keepdim=True)
    covariance = torch.einsum("bnk,bk->bn", region_centred, face_centred)
    region_ss = (region_centred * region_centred).sum(dim=-1)
    face_ss = (face_centred * face_centred).sum(dim=-1, keepdim=True)
    defined = (region_ss > 0) & (face_ss > 0)
    rho = covariance / (region_ss.sqrt() * face_ss.sqrt())
    undefined = torch.full_like(rho, UNDEFINED_RHO[mode])
    if mode == "paper":
        return torch.where(defined, rho.clamp(0.0, 1.0), undefined)
    inside = defined & (rho >= -1.0) & (rho <= 1.0)
    return torch.where(inside, rho, undefined)


def _paint(rho: torch.Tensor, points: torch.Tensor, params: MaskParams) -> torch.Tensor:
    """Fill bands and draw patches as :func:`mask.paint_mask` does; ``(B, S, S)`` float32."""
    device = rho.device
    batch, size, m = rho.shape[0], params.size, params.patch_size
    rows_all = torch.arange(size, device=device)
    if params.mode == "paper":
        row_band = torch.from_numpy(band_rows(size, params.n_regions)).to(device)
    else:
        row_band = torch.clamp(rows_all // (size // params.n_regions), max=params.n_regions)
    band_values = torch.cat([rho, rho.new_zeros(batch, 1)], dim=1).to(torch.float32)
    masks = band_values[:, row_band].unsqueeze(2).expand(batch, size, size).contiguous()

    reach = size + 2 * m + 2
    clipped = points.clamp(-reach, reach)
    centres = (clipped + 0.5).floor() if params.mode == "paper" else clipped.trunc()
    centres = centres.to(torch.int64)  # (B, L, 2)
    offsets = torch.arange(m, device=device) - m // 2
    rows = centres[:, :, 1, None, None] + offsets.view(m, 1)  # (B, L, M, 1)
    cols = centres[:, :, 0, None, None] + offsets.view(1, m)  # (B, L, 1, M)
    inside = (rows >= 0) & (rows < size) & (cols >= 0) & (cols < size)  # (B, L, M, M)
    if params.mode == "official":
        painted = ((centres >= 0) & (centres <= size - 2)).all(dim=-1)
        inside = inside & painted[:, :, None, None]
        if logger.isEnabledFor(logging.INFO):
            skipped = int((~painted).sum())
            if skipped:
                logger.info("Official mode skipped %d landmark(s) at or beyond the last row/column or left of 0.", skipped)
    elif logger.isEnabledFor(logging.WARNING):
        unpainted = int((~inside.flatten(2).any(dim=2)).sum())
        if unpainted:
            logger.warning("%d landmark(s) lie so far outside the %dx%d face that their patch paints nothing.", unpainted, size, size)

    face_index = torch.arange(batch, device=device).view(batch, 1, 1, 1)
    flat_index = (face_index * size + rows) * size + cols
    flat = flat_index[inside]
    patch = torch.from_numpy(patch_weights(m).astype(np.float32)).to(device)
    weights = patch.expand(inside.shape)[inside]
    flat_masks = masks.view(-1)
    if params.combine == "max":
        flat_masks.scatter_reduce_(0, flat, weights, reduce="amax", include_self=True)
        return masks
    n_points = centres.shape[1]
    point_index = torch.arange(n_points, device=device).view(1, n_points, 1, 1).expand(inside.shape)[inside]
    owner = torch.full_like(flat_masks, -1, dtype=torch.int64)
    owner.scatter_reduce_(0, flat, point_index, reduce="amax", include_self=True)
    last = owner[flat] == point_index
    flat_masks[flat[last]] = weights[last]
    return masks


@torch.no_grad()
def weighted_mask_torch(
    faces: torch.Tensor,
    landmarks,
    n_regions: int = 4,
    orientations: int = 8,
    patch_size: int = 15,
    mode: str = "paper",
    combine: str | None = None,
    landmark_groups: Iterable[str] | None = None,
) -> torch.Tensor:
    """Build OAENet's weighted masks on the faces' device.

    Args:
        faces: ``(B, S, S, 3)`` or ``(S, S, 3)`` uint8 RGB tensor, S >= 32.
        landmarks: ``(B, 68, 2)`` or ``(68, 2)`` (x, y) pixels; a tensor,
            array or list. Moved to the faces' device.
        n_regions, orientations, patch_size, mode, combine, landmark_groups:
            as in :func:`oaenet_helpers.mask.weighted_mask`.

    Returns:
        ``(B, S, S)`` float32 on ``faces.device`` (``(S, S)`` for a single
        face).

    Raises:
        TypeError: ``faces`` is not a tensor.
        ValueError: wrong shape or dtype, invalid parameters, or NaN
            landmarks (the message names the face and landmark index).
    """
    single = isinstance(faces, torch.Tensor) and faces.dim() == 3
    batch = _check_faces(faces)
    params = check_params(batch.shape[1], n_regions, orientations, patch_size, mode, combine)
    points = _check_landmarks(landmarks, batch.shape[0], batch.device)
    # On the CPU, chunks of a few faces keep the per-pixel tensors in cache;
    # a GPU takes the whole batch at once.
    chunk = _CPU_CHUNK if batch.device.type == "cpu" else batch.shape[0]
    rho = torch.cat([
        _correlations(*_region_histograms(batch[start : start + chunk], params), params.mode)
        for start in range(0, batch.shape[0], chunk)
    ])
    selected = torch.from_numpy(selected_landmarks(landmark_groups)).to(batch.device)
    masks = _paint(rho, points[:, selected], params)
    return masks[0] if single else masks

