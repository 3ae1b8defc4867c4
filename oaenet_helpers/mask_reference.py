"""The official weighted-mask algorithm written plainly with ``skimage.feature.hog``.

This is the slow, readable form of ``mask.weighted_mask(..., mode="official")``:
two ``hog`` calls, ``np.corrcoef`` and a Python loop over the landmarks, one
face at a time, as the official ``utils/weight_mask.py`` (github.com/Gavinic/OAENET)
computes it. Chapter 1 and ``benchmarks/mask.py`` time the fast version against
it. The tests carry their own copy, so they do not depend on this one.
"""

from __future__ import annotations

import numpy as np


def official_rho(face: np.ndarray, n_regions: int = 4, orientations: int = 8) -> np.ndarray:
    """Compute ρ of the N vertical column cells against the whole face, ``(N,)`` float64.

    A correlation that is NaN (a cell without gradient) or outside [-1, 1]
    becomes 1, as in the official code.
    """
    from skimage.feature import hog

    size = face.shape[0]
    options = dict(orientations=orientations, cells_per_block=(1, 1), block_norm="L1", channel_axis=2)
    columns = hog(face, pixels_per_cell=(size, size // n_regions), **options).reshape(-1, orientations)
    whole = hog(face, pixels_per_cell=(size, size), **options)
    rho = np.ones(n_regions)
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(n_regions):
            value = np.corrcoef(columns[i], whole)[0, 1]
            rho[i] = value if -1 <= value <= 1 else 1.0
    return rho


def official_mask(face: np.ndarray, landmarks, n_regions: int = 4, orientations: int = 8, patch_size: int = 15) -> np.ndarray:
    """Compute the official mask of a ``(S, S, 3)`` uint8 face, ``(S, S)`` float64.

    The column correlations fill horizontal bands of ``S // N`` rows. The mask
    is padded by ``M // 2`` ones, and each landmark's patch overwrites it in
    order unless the padded window would start above or left of the padding
    or reach its last row or column.
    """
    size = face.shape[0]
    rho = official_rho(face, n_regions, orientations)
    height, half = size // n_regions, patch_size // 2
    padded = np.ones((size + 2 * half, size + 2 * half))
    padded[half : half + size, half : half + size] = 0.0
    for i in range(n_regions):
        padded[half + i * height : half + (i + 1) * height, half : half + size] = rho[i]
    offsets = np.abs(np.arange(patch_size) - half)
    patch = 1 - offsets[:, None] / patch_size - offsets[None, :] / patch_size
    for x, y in np.asarray(landmarks):
        x, y = int(x), int(y)
        # In padded coordinates the window starts at (y, x) and ends at (y + M, x + M).
        if x < 0 or y < 0 or x + patch_size >= size + 2 * half or y + patch_size >= size + 2 * half:
            continue
        padded[y : y + patch_size, x : x + patch_size] = patch
    return padded[half : half + size, half : half + size]
