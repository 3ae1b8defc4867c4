"""Compiled HOG kernels for :mod:`oaenet_helpers.mask` (used when numba is installed).

They compute what ``mask.select_gradients``, the histogram code and
``mask.paint_mask`` compute, in one pass over the face instead of about 40
NumPy calls. They keep the same tie rules and the same summation order, so
the masks are equal bit for bit (``tests/test_mask_backends.py``).
``nogil=True`` lets the batch thread pool run them in parallel.
"""

from __future__ import annotations

import numba
import numpy as np

_GRADIENT_MAX = 255
_GRADIENT_SIDE = 2 * _GRADIENT_MAX + 1
_LANES = 4  # independent partial sums, so consecutive pixels do not wait on one another


@numba.njit(cache=True, nogil=True)
def _row_pass(planes, y, row_codes, row_squares, magnitude_table, ambiguous, min_ambiguous, exact):
    """Fill ``row_codes``/``row_squares`` with the strongest channel's gradient in row ``y``.

    A border row has no vertical difference and a border column no
    horizontal one, as in scikit-image. With ``exact=False`` the channel
    choice uses conditional moves and only reports whether the row contains a
    tie between equal squared magnitudes that ``np.hypot`` may split. The
    caller then recomputes that row with ``exact=True``, which settles such
    ties by the tabulated hypot values.
    """
    channels = len(planes)
    size = planes[0].shape[0]
    border_row = y == 0 or y == size - 1
    tie_seen = False
    for channel in range(channels):
        plane = planes[channel]
        row = plane[y]
        up = row if border_row else plane[y - 1]
        down = row if border_row else plane[y + 1]
        for x in range(size):
            g_row = np.int32(down[x]) - np.int32(up[x])
            g_col = np.int32(0)
            if 0 < x < size - 1:
                g_col = np.int32(row[x + 1]) - np.int32(row[x - 1])
            squared = g_row * g_row + g_col * g_col
            code = (g_row + _GRADIENT_MAX) * _GRADIENT_SIDE + g_col + _GRADIENT_MAX
            if channel == 0:
                row_codes[x] = code
                row_squares[x] = squared
                continue
            best = row_squares[x]
            better = squared > best
            if exact:
                if squared == best and ambiguous[squared] and code != row_codes[x]:
                    better = magnitude_table[code] > magnitude_table[row_codes[x]]
            else:
                tie_seen |= (squared == best) & (squared >= min_ambiguous)
            row_codes[x] = code if better else row_codes[x]
            row_squares[x] = squared if better else best
    return tie_seen


@numba.njit(cache=True, nogil=True)
def _strongest_row(planes, y, row_codes, row_squares, magnitude_table, ambiguous, min_ambiguous):
    """Fill one row of codes and squared magnitudes, settling hypot ties exactly when the row has any."""
    if _row_pass(planes, y, row_codes, row_squares, magnitude_table, ambiguous, min_ambiguous, False):
        _row_pass(planes, y, row_codes, row_squares, magnitude_table, ambiguous, min_ambiguous, True)


@numba.njit(cache=True, nogil=True)
def strongest_gradients(planes, magnitude_table, ambiguous, min_ambiguous):
    """Return ``(S, S)`` int32 table codes and squared magnitudes of a face given as a tuple of C ``(S, S)`` uint8 planes."""
    size = planes[0].shape[0]
    codes = np.empty((size, size), np.int32)
    squares = np.empty((size, size), np.int32)
    for y in range(size):
        _strongest_row(planes, y, codes[y], squares[y], magnitude_table, ambiguous, min_ambiguous)
    return codes, squares


@numba.njit(cache=True, nogil=True)
def paper_band_sums(planes, band_of_row, bin_table, magnitude_table, ambiguous, min_ambiguous,
                    n_regions, orientations):
    """Sum float64 gradient magnitudes per (band, bin) of a face given as a tuple of C ``(S, S)`` uint8 planes.

    Returns ``(N, K + 1)``; column K is unused. Each row is summed right
    after its gradients are chosen, while it is still in the cache. A float64
    square root per pixel is used rather than a 1 MB table of them, which
    was faster on one hot face but slower over many faces.
    """
    size = planes[0].shape[0]
    codes = np.empty(size, np.int32)  # one row at a time: small buffers stay in the cache
    squares = np.empty(size, np.int32)
    sums = np.zeros((_LANES, n_regions, orientations + 1), np.float64)
    for y in range(size):
        _strongest_row(planes, y, codes, squares, magnitude_table, ambiguous, min_ambiguous)
        band = band_of_row[y]
        for x in range(size):
            sums[x % _LANES, band, bin_table[codes[x]]] += np.sqrt(np.float64(squares[x]))
    return sums.sum(axis=0)


@numba.njit(cache=True, nogil=True)
def official_cell_sums(planes, cell_of_column, bin_table, square_roots, magnitude_table, ambiguous, min_ambiguous,
                       n_regions, orientations):
    """Sum float32 magnitudes in row-major order per column cell and for the whole face.

    Returns ``(N + 1, K + 1)`` column-cell sums (cell N: columns right of the
    last full cell) and ``(K + 1,)`` whole-face sums, both float32, matching
    scikit-image's C loop, which adds each magnitude to a C ``float`` in turn.
    ``square_roots`` contains the float32 square roots of every squared
    magnitude (a 0.5 MB table, faster than a float32 square root per pixel).
    """
    size = planes[0].shape[0]
    codes = np.empty(size, np.int32)
    squares = np.empty(size, np.int32)
    columns = np.zeros((n_regions + 1, orientations + 1), np.float32)
    whole = np.zeros(orientations + 1, np.float32)
    for y in range(size):
        _strongest_row(planes, y, codes, squares, magnitude_table, ambiguous, min_ambiguous)
        for x in range(size):
            magnitude = square_roots[squares[x]]
            bin_index = bin_table[codes[x]]
            whole[bin_index] += magnitude
            columns[cell_of_column[x], bin_index] += magnitude
    return columns, whole


@numba.njit(cache=True, nogil=True)
def paint_patches(masks, centres, painted, patch, combine_max):
    """Draw each painted landmark's patch into ``masks`` ``(B, S, S)`` in landmark order.

    ``centres`` is ``(B, L, 2)`` integer ``(x, y)``, ``painted`` ``(B, L)``
    bool. Patch pixels outside the face are left out. With ``combine_max`` a
    pixel keeps the larger of its value and the patch weight. Without it the
    patch overwrites the pixel, so the last landmark that covers it wins.
    """
    size = masks.shape[1]
    side = patch.shape[0]
    half = side // 2
    for face in range(centres.shape[0]):
        for point in range(centres.shape[1]):
            if not painted[face, point]:
                continue
            top = centres[face, point, 1] - half
            left = centres[face, point, 0] - half
            for i in range(max(0, -top), min(side, size - top)):
                for j in range(max(0, -left), min(side, size - left)):
                    weight = patch[i, j]
                    if not combine_max or weight > masks[face, top + i, left + j]:
                        masks[face, top + i, left + j] = weight
