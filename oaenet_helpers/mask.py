"""OAENet's weighted mask: band correlations of oriented gradients plus landmark patches.

The attention branch of OAENet (Wang et al., Pattern Recognition 112, 2021,
article 107694) multiplies the face by a weighted mask. The mask has two parts:

1. The face is cut into ``N`` regions. Each region's histogram of oriented
   gradients (HOG, ``K`` orientation bins) is compared with the whole face's by
   the Pearson correlation ρ_i, and the region is filled with ρ_i.
2. An ``M``×``M`` patch is centred on each of the 68 landmarks, with weight
   ``1 - |dy|/M - |dx|/M`` at offset ``(dy, dx)`` from the landmark pixel, so
   1 at the landmark and ``1/M`` in the patch corners.

Two modes are implemented:

``mode="paper"`` (default)
    Horizontal bands with edges ``floor(i * S / N)``, so every row belongs to a
    band. ρ_i is clipped to ``[0, 1]`` because the mask is an attention weight.
    A band whose histogram or the face's has zero variance (no gradient at
    all, or the same mass in every bin) gets ρ_i = 0, so a flat region draws no
    attention and the result is never NaN. Landmark pixels are the nearest
    pixel ``floor(x + 0.5)``. Patches are combined with the bands by maximum
    (``combine="max"``), so overlapping patches never erase each other, or
    painted in landmark order with the last one winning
    (``combine="overwrite"``). Patches that reach over the border are clipped.
    The value for undefined or negative ρ and the rule for overlaps are this
    module's choices, not taken from the paper.

``mode="official"``
    The output of ``utils/weight_mask.py`` in the official repository
    (github.com/Gavinic/OAENET). Its HOG is ``skimage.feature.hog`` with
    ``pixels_per_cell=(S, S // N)`` and ``(S, S)``, ``cells_per_block=(1, 1)``
    and ``block_norm='L1'`` over the 3 channels. The N cells are *vertical*
    columns, yet their correlations are painted onto N *horizontal* bands of
    ``S // N`` rows (rows below ``N * (S // N)`` stay 0). A correlation that is
    NaN or outside ``[-1, 1]`` becomes 1, and negative correlations are kept.
    Landmark pixels are ``int(x)`` (truncation toward zero). Each patch
    overwrites what is there, in landmark order. A landmark is skipped entirely
    unless ``0 <= int(x) <= S - 2`` and ``0 <= int(y) <= S - 2``, because the
    official code pads the mask by ``M // 2`` = 7 pixels and rejects a patch
    whose padded window touches the last padded row or column. Cell sums are
    accumulated in float32 in row-major order, as scikit-image's C loop does,
    so the masks agree with scikit-image's to about 1e-7. For the official
    defaults (S = 224, N = 4, K = 8, M = 15) the result equals the official
    code's, and other sizes and parameters follow the same rules.

Both modes compute the HOG as ``skimage.feature.hog`` 0.26 does. The gradient
is the central difference ``I[y+1] - I[y-1]``, zero on the border rows and
columns. Each pixel takes the channel with the largest gradient magnitude (the
first one on a tie). Orientations are unsigned in ``[0°, 180°)``, and a pixel
adds its magnitude to one bin. Faces are read as 8-bit RGB, so every gradient
component is an integer in ``[-255, 255]``. The magnitude and the bin of each
of the 511 × 511 possible gradients come from a lookup table computed once
with scikit-image's float64 formulas, which keeps official mode exact and
saves one ``arctan2`` per pixel.

Shapes: a face is ``(S, S, 3)`` uint8 RGB (anything
:func:`oaenet_helpers.faces.load_image` accepts), landmarks are ``(68, 2)``
``(x, y)`` pixels in the face, the mask is ``(S, S)`` float32.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterable, Literal

import cv2
import numpy as np

from .faces import LANDMARK_GROUPS, N_LANDMARKS, check_landmarks, load_image

logger = logging.getLogger(__name__)

Mode = Literal["paper", "official"]
Combine = Literal["max", "overwrite"]

MODES = ("paper", "official")
COMBINES = ("max", "overwrite")

MIN_FACE_SIZE = 32
MAX_REGIONS = 16
MIN_ORIENTATIONS = 2
MAX_ORIENTATIONS = 32

#: Value of ρ for a region whose correlation is undefined (zero variance).
UNDEFINED_RHO = {"paper": 0.0, "official": 1.0}

# 8-bit images give integer gradient components in [-255, 255].
_GRADIENT_MAX = 255
_GRADIENT_SIDE = 2 * _GRADIENT_MAX + 1

# weighted_mask_batch gives each thread at least this many faces. OpenCV and
# most NumPy loops release the GIL, so the threads can compute faces in parallel.
# NOTE: no gain was measured on the shared 2-core benchmark machine while another
# process kept one core busy.
_MIN_FACES_PER_THREAD = 4
_CPU_COUNT = os.cpu_count() or 1  # os.cpu_count() costs about 15 µs a call, a few percent of one mask
_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


@dataclass(frozen=True)
class MaskParams:
    """Validated mask parameters.

    Attributes:
        size: face side S in pixels.
        n_regions: N, number of regions (bands or columns).
        orientations: K, number of orientation bins over 180°.
        patch_size: M, odd side of each landmark patch in pixels.
        mode: ``"paper"`` or ``"official"``.
        combine: ``"max"`` or ``"overwrite"``.
    """

    size: int
    n_regions: int
    orientations: int
    patch_size: int
    mode: str
    combine: str


def _check_int(name: str, value, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}.")
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}.")
    return int(value)


def check_params(
    size: int,
    n_regions: int = 4,
    orientations: int = 8,
    patch_size: int = 15,
    mode: str = "paper",
    combine: str | None = None,
) -> MaskParams:
    """Validate mask parameters and fill in the mode's default ``combine``.

    ``combine=None`` means ``"max"`` in paper mode and ``"overwrite"`` in
    official mode, which always overwrites.

    Raises:
        ValueError: S < 32; N outside [1, 16]; K outside
            [2, 32]; M even or outside [1, S]; an unknown mode or combine; or
            ``combine="max"`` with ``mode="official"``. The message names the
            parameter and its allowed range.
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < MIN_FACE_SIZE:
        raise ValueError(
            f"The face must be at least {MIN_FACE_SIZE}x{MIN_FACE_SIZE} pixels, got side {size}; "
            "resize it first (faces.align_and_crop(..., size=224))."
        )
    size = int(size)
    # N <= 16 < 32 <= S, so every band has at least two rows.
    n_regions = _check_int("n_regions", n_regions, 1, MAX_REGIONS)
    orientations = _check_int("orientations", orientations, MIN_ORIENTATIONS, MAX_ORIENTATIONS)
    patch_size = _check_int("patch_size", patch_size, 1, size)
    if patch_size % 2 == 0:
        raise ValueError(f"patch_size must be odd so the patch has a centre pixel, got {patch_size}.")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
    if combine is None:
        combine = "max" if mode == "paper" else "overwrite"
    if combine not in COMBINES:
        raise ValueError(f"combine must be one of {COMBINES}, got {combine!r}.")
    if mode == "official" and combine != "overwrite":
        raise ValueError(
            "mode='official' always overwrites patches in landmark order; "
            f"pass combine=None or 'overwrite', got {combine!r}."
        )
    return MaskParams(size, n_regions, orientations, patch_size, mode, combine)


# --------------------------------------------------------------------------
# Oriented gradients


@functools.lru_cache(maxsize=None)
def orientation_tables(orientations: int) -> tuple[np.ndarray, np.ndarray]:
    """Tabulate the magnitude and orientation bin of every 8-bit gradient.

    Both tables are indexed by ``(g_row + 255) * 511 + (g_col + 255)``.

    Returns:
        ``magnitude``: ``(511 * 511,)`` float64, ``np.hypot(g_row, g_col)``.
        ``bins``: ``(511 * 511,)`` int8 in ``[0, K]``. Bin ``K`` collects the
        orientations that scikit-image puts in no bin (none for integer
        gradients, but the rule is kept). The bin edges are ``180 / K * i``
        rounded to float32, because scikit-image's histogram code stores
        them in C ``float`` variables.
    """
    orientations = _check_int("orientations", orientations, MIN_ORIENTATIONS, MAX_ORIENTATIONS)
    values = np.arange(-_GRADIENT_MAX, _GRADIENT_MAX + 1, dtype=np.float64)
    g_row, g_col = np.meshgrid(values, values, indexing="ij")
    magnitude = np.hypot(g_row, g_col).ravel()
    degrees = (np.arctan2(g_row, g_col) * (180 / np.pi) % 180).ravel()
    edges = (180.0 / orientations * np.arange(orientations + 1)).astype(np.float32).astype(np.float64)
    bins = np.searchsorted(edges, degrees, side="right") - 1
    bins = np.where((bins < 0) | (bins >= orientations), orientations, bins).astype(np.int8)
    magnitude.flags.writeable = False
    bins.flags.writeable = False
    return magnitude, bins


def _as_face_batch(faces, name: str = "faces") -> np.ndarray:
    """Convert a face batch to ``(B, S, S, 3)`` uint8 without copying uint8 RGB input."""
    if isinstance(faces, np.ndarray) and faces.dtype == np.uint8 and faces.ndim == 4 and faces.shape[-1] == 3:
        batch = faces
    else:
        array = np.asarray(faces)
        if array.ndim == 3 and array.shape[-1] not in (1, 3, 4):
            array = array[..., None]  # (B, S, S) grayscale
        if array.ndim != 4:
            raise ValueError(f"{name} must have shape (B, S, S, 3), (B, S, S, 1) or (B, S, S), got {array.shape}.")
        batch = np.stack([load_image(face) for face in array]) if len(array) else np.zeros((0, 1, 1, 3), np.uint8)
    if batch.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch; pass at least one face.")
    if batch.shape[1] != batch.shape[2]:
        raise ValueError(
            f"{name} must be square (S, S), got {batch.shape[1]}x{batch.shape[2]}; "
            "crop with faces.align_and_crop first."
        )
    return batch


def _as_face(face) -> np.ndarray:
    rgb = load_image(face)
    if rgb.shape[0] != rgb.shape[1]:
        raise ValueError(
            f"The face must be square, got {rgb.shape[1]}x{rgb.shape[0]} (width x height); "
            "crop it with faces.align_and_crop first."
        )
    return rgb


@functools.lru_cache(maxsize=1)
def _ambiguous_squares() -> np.ndarray:
    """Mark the squared magnitudes shared by gradients whose ``np.hypot`` differ in the last bit.

    Returns a ``(2 * 255**2 + 1,)`` bool table indexed by ``g_row**2 + g_col**2``
    (64 of its 21,860 reachable values are marked with glibc's ``hypot``).
    """
    magnitude, _ = orientation_tables(MIN_ORIENTATIONS)
    values = np.arange(-_GRADIENT_MAX, _GRADIENT_MAX + 1)
    squared = (values[:, None] ** 2 + values[None, :] ** 2).ravel()
    order = np.lexsort((magnitude, squared))
    same_square = squared[order][1:] == squared[order][:-1]
    differs = magnitude[order][1:] != magnitude[order][:-1]
    table = np.zeros(2 * _GRADIENT_MAX**2 + 1, dtype=bool)
    table[squared[order][1:][same_square & differs]] = True
    return table


@functools.lru_cache(maxsize=1)
def _smallest_ambiguous_square() -> int:
    """Return the smallest squared magnitude marked by :func:`_ambiguous_squares` (2993 with glibc)."""
    marked = np.flatnonzero(_ambiguous_squares())
    return int(marked[0]) if marked.size else 2 * _GRADIENT_MAX**2 + 1


class _Workspace:
    """Per-thread buffers for one ``S x S`` face.

    Reusing them avoids allocating a dozen arrays of 200-400 kB per face. With
    glibc, freed arrays of that size are often returned to the system and
    page-faulted in again on the next allocation. On the 2-core benchmark
    machine, that made two chained float32 operations on 4 faces about 10x
    slower than the same operations on reused buffers.
    """

    def __init__(self, size: int) -> None:
        shape = (size, size)
        self.plane = np.zeros(shape, np.float32)
        self.g_col = np.zeros(shape, np.float32)
        self.g_row = np.zeros(shape, np.float32)
        self.squared = np.zeros(shape, np.float32)
        self.best_col = np.zeros(shape, np.float32)
        self.best_row = np.zeros(shape, np.float32)
        self.best_squared = np.zeros(shape, np.float32)
        self.better = np.zeros(shape, np.uint8)
        self.codes = np.zeros(shape, np.int32)
        self.code_index = np.zeros(shape, np.intp)
        self.bins = np.zeros(shape, np.int8)
        self.keys = np.zeros(shape, np.intp)
        self.magnitude = np.zeros(shape, np.float64)
        self.magnitude32 = np.zeros(shape, np.float32)


_thread_state = threading.local()


def _workspace(size: int) -> _Workspace:
    cache = getattr(_thread_state, "workspaces", None)
    if cache is None:
        cache = _thread_state.workspaces = {}
    if size not in cache:
        cache.clear()  # keep one face size per thread: a few MB at most
        cache[size] = _Workspace(size)
    return cache[size]


def _channel_gradient(plane: np.ndarray, work: _Workspace, g_col: np.ndarray, g_row: np.ndarray, squared: np.ndarray) -> None:
    """Write one channel's central differences and their squared magnitude into the given buffers.

    Both differences are taken on the flattened plane, so each is one
    contiguous subtraction. The values that wrap from one row to the next land
    on the border columns, which are then set to 0 as in scikit-image.
    """
    size = plane.shape[0]
    np.copyto(work.plane, plane)
    flat = work.plane.reshape(-1)
    np.subtract(flat[2:], flat[:-2], out=g_col.reshape(-1)[1:-1])
    g_col[:, 0] = 0
    g_col[:, -1] = 0
    np.subtract(flat[2 * size :], flat[: -2 * size], out=g_row.reshape(-1)[size:-size])
    g_row[0] = 0
    g_row[-1] = 0
    # Products and sums of integers below 2**24 are exact in float32.
    cv2.multiply(g_col, g_col, dst=squared)
    cv2.accumulateSquare(g_row, squared)


def _strongest_gradient(face: np.ndarray, work: _Workspace) -> tuple[np.ndarray, np.ndarray]:
    """Select one face's gradient per pixel; see :func:`select_gradients`.

    Args:
        face: ``(S, S, C)`` uint8.
        work: buffers for this thread and face size.

    Returns:
        Views into ``work``, valid until its next use: ``codes`` ``(S, S)``
        int32 table index of the chosen gradient and ``squared`` ``(S, S)``
        float32 squared magnitude (an exact integer).
    """
    channels = face.shape[-1]
    planes = list(cv2.split(face)) if channels > 1 else [np.ascontiguousarray(face[..., 0])]
    if all(cv2.norm(planes[0], plane, cv2.NORM_INF) == 0 for plane in planes[1:]):
        # Grayscale faces (FER2013, CK+) repeated to RGB: every channel has the
        # same gradient and the first one wins, so one channel gives the result.
        planes = planes[:1]

    best_col, best_row, best_squared = work.best_col, work.best_row, work.best_squared
    _channel_gradient(planes[0], work, best_col, best_row, best_squared)
    for plane in planes[1:]:
        _channel_gradient(plane, work, work.g_col, work.g_row, work.squared)
        cv2.compare(work.squared, best_squared, cv2.CMP_GT, dst=work.better)
        cv2.copyTo(work.g_col, work.better, best_col)
        cv2.copyTo(work.g_row, work.better, best_row)
        cv2.max(best_squared, work.squared, dst=best_squared)

    codes = work.codes
    # (g_row + 255) * 511 + (g_col + 255), exact because every term is an integer.
    cv2.addWeighted(
        best_row, float(_GRADIENT_SIDE), best_col, 1.0, float(_GRADIENT_MAX * _GRADIENT_SIDE + _GRADIENT_MAX),
        dst=codes, dtype=cv2.CV_32S,
    )
    if len(planes) > 1:
        _settle_ties(face, codes, best_squared, work.better)
    return codes, best_squared


def _settle_ties(face: np.ndarray, codes: np.ndarray, best_squared: np.ndarray, scratch: np.ndarray) -> None:
    """Redo the channel choice with ``np.hypot`` where equal squared magnitudes may differ in ``np.hypot``.

    The loop over channels keeps the first channel on equal squared
    magnitudes. That is wrong only where another channel has the same squared
    magnitude from a different gradient and a larger ``np.hypot``, which
    :func:`_ambiguous_squares` allows for 64 values, all at least 2993 with
    glibc. Only pixels whose squared magnitude is one of them are redone
    (18 of the 50,176 pixels of a 224x224 face, on average over the benchmark faces).

    Args:
        face: ``(S, S, C)`` uint8.
        codes: ``(S, S)`` int32 table indices, fixed in place.
        best_squared: ``(S, S)`` float32 squared magnitudes.
        scratch: ``(S, S)`` uint8 buffer.
    """
    strong = cv2.compare(best_squared, float(_smallest_ambiguous_square()), cv2.CMP_GE, dst=scratch)
    if not cv2.countNonZero(strong):
        return
    index = np.flatnonzero(strong.view(bool))
    index = index[_ambiguous_squares()[best_squared.reshape(-1)[index].astype(np.intp)]]
    if not index.size:
        return
    size = face.shape[0]
    rows, cols = np.divmod(index, size)
    up, down = np.maximum(rows - 1, 0), np.minimum(rows + 1, size - 1)
    left, right = np.maximum(cols - 1, 0), np.minimum(cols + 1, size - 1)
    # (T, C) gradients of every channel at the T pixels, zero on the border as above.
    g_row = (face[down, cols].astype(np.intp) - face[up, cols]) * ((rows > 0) & (rows < size - 1))[:, None]
    g_col = (face[rows, right].astype(np.intp) - face[rows, left]) * ((cols > 0) & (cols < size - 1))[:, None]
    candidates = (g_row + _GRADIENT_MAX) * _GRADIENT_SIDE + g_col + _GRADIENT_MAX
    magnitude_table, _ = orientation_tables(MIN_ORIENTATIONS)
    winner = magnitude_table[candidates].argmax(axis=1)  # the first channel on an exact tie
    codes.reshape(-1)[index] = candidates[np.arange(index.size), winner]


def select_gradients(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pick each pixel's gradient from its strongest channel, as scikit-image's HOG does.

    The gradient is the central difference (``I[y+1] - I[y-1]`` and
    ``I[x+1] - I[x-1]``), zero on the border rows and columns. The channel with
    the largest ``np.hypot`` magnitude wins, the first one on a tie. Squared
    magnitudes decide exactly whenever they differ (distinct integer squares
    have square roots at least 1e-3 apart). Equal squares from different
    gradients, such as (3, 4) and (5, 0), are settled by the tabulated
    ``np.hypot`` values where their last bit differs.

    Args:
        faces: ``(B, S, S, C)`` uint8.

    Returns:
        ``codes``: ``(B, S, S)`` int32 table index of the chosen gradient.
        ``squared``: ``(B, S, S)`` int32 squared magnitude of that gradient.
    """
    faces = np.asarray(faces)
    codes = np.empty(faces.shape[:3], np.int32)
    squared = np.empty(faces.shape[:3], np.int32)
    work = _workspace(faces.shape[1])
    for index, face in enumerate(faces):
        face_codes, face_squared = _strongest_gradient(face, work)
        codes[index] = face_codes
        squared[index] = face_squared
    return codes, squared


def sequential_float32_sums(keys: np.ndarray, values: np.ndarray, n_keys: int) -> np.ndarray:
    """Sum ``values`` per key in float32, one after the other in array order.

    This reproduces the rounding of scikit-image's histogram loop, which adds
    each magnitude to a C ``float`` in row-major order. A float64 sum differs
    from it by up to about 1e-5 relative on a 224x224 face, which moves the
    correlations by as much. ``np.add.at`` is unbuffered and walks the
    indices in order, so each key's float32 total takes the values one by one.

    Args:
        keys: ``(B, P)`` integers in ``[0, n_keys)``.
        values: ``(B, P)`` float32.
        n_keys: number of distinct keys.

    Returns:
        ``(B, n_keys)`` float32.
    """
    batch = keys.shape[0]
    totals = np.zeros(batch * n_keys, np.float32)
    index = keys.astype(np.intp) + (np.arange(batch, dtype=np.intp) * n_keys)[:, None]
    np.add.at(totals, index.reshape(-1), values.reshape(-1))
    return totals.reshape(batch, n_keys)


# Paper mode spreads each band's bins over this many copies, taken in turn by
# consecutive columns: runs of pixels in the same bin then add to different
# memory cells, which made np.bincount 1.4x faster on a benchmark face.
_HISTOGRAM_LANES = 4


@functools.lru_cache(maxsize=8)
def _histogram_keys(size: int, n_regions: int, orientations: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the per-pixel key offsets of the two modes' histograms.

    Returns:
        ``paper``: ``(S, S)`` intp, ``(lane * N + band) * (K + 1)``.
        ``official``: ``(S,)`` intp, ``column_cell * (K + 1)``, where cell N
        collects the columns right of ``N * (S // N)``.
    """
    bins = orientations + 1
    lanes = np.arange(size) % _HISTOGRAM_LANES
    paper = (lanes[None, :] * n_regions + band_rows(size, n_regions)[:, None]) * bins
    official = np.minimum(np.arange(size) // (size // n_regions), n_regions) * bins
    paper, official = paper.astype(np.intp), official.astype(np.intp)
    paper.flags.writeable = False
    official.flags.writeable = False
    return paper, official


def _face_histograms(face: np.ndarray, params: MaskParams) -> tuple[np.ndarray, np.ndarray]:
    """Compute one face's region and whole-face histograms; see :func:`region_histograms`.

    Args:
        face: ``(S, S, C)`` uint8.

    Returns:
        ``(N, K)`` and ``(K,)`` float64.
    """
    size, k, n = face.shape[0], params.orientations, params.n_regions
    kernels = compiled_kernels()
    if kernels is not None:
        return _face_histograms_compiled(face, params, kernels)
    work = _workspace(size)
    codes, squared = _strongest_gradient(face, work)
    _, bin_table = orientation_tables(k)
    paper_keys, official_keys = _histogram_keys(size, n, k)
    np.copyto(work.code_index, codes)  # np.take converts int32 indices to intp anyway
    np.take(bin_table, work.code_index, out=work.bins)

    # cv2.sqrt is the IEEE-rounded SIMD square root, like np.sqrt but about twice
    # as fast. Both agree on all 130,051 possible squares in float32 and float64
    # (checked with OpenCV 4.14 on x86-64).
    if params.mode == "official":
        # Float32 sums in row-major order, as in sequential_float32_sums.
        magnitude = cv2.sqrt(squared, dst=work.magnitude32).reshape(-1)
        whole = np.zeros(k + 1, np.float32)
        np.copyto(work.keys, work.bins)
        np.add.at(whole, work.keys.reshape(-1), magnitude)
        columns = np.zeros((n + 1) * (k + 1), np.float32)
        np.add(work.bins, official_keys, out=work.keys)
        np.add.at(columns, work.keys.reshape(-1), magnitude)
        whole = whole[:k] / np.float32(size * size)
        columns = columns.reshape(n + 1, k + 1)[:n, :k] / np.float32(size * (size // n))
        return _l1_normalise(columns), _l1_normalise(whole)

    np.add(work.bins, paper_keys, out=work.keys)
    magnitude = work.magnitude
    np.copyto(magnitude, squared)
    cv2.sqrt(magnitude, dst=magnitude)
    lanes = np.bincount(work.keys.reshape(-1), weights=magnitude.reshape(-1), minlength=_HISTOGRAM_LANES * n * (k + 1))
    bands = lanes.reshape(_HISTOGRAM_LANES, n, k + 1).sum(axis=0)[:, :k]
    return bands, bands.sum(axis=0)


def compiled_kernels():
    """Return the numba kernels module, or ``None`` to use the NumPy path.

    The kernels are used when numba is installed, unless the environment
    variable ``OAENET_MASK_BACKEND`` is ``numpy``. Both paths give the same
    histograms (official mode bit for bit), so the choice only changes speed.
    """
    if os.environ.get("OAENET_MASK_BACKEND", "auto").lower() == "numpy":
        return None
    return _import_kernels()


@functools.lru_cache(maxsize=1)
def _import_kernels():
    try:
        from . import _mask_kernels
    except ImportError as err:
        logger.info("numba is not available (%s); the weighted mask uses the NumPy path.", err)
        return None
    return _mask_kernels


@functools.lru_cache(maxsize=1)
def _square_roots_float32() -> np.ndarray:
    """Return the float32 ``sqrt(q)`` of every squared magnitude ``q`` of an 8-bit gradient."""
    roots = np.sqrt(np.arange(2 * _GRADIENT_MAX**2 + 1).astype(np.float32))
    roots.flags.writeable = False
    return roots


@functools.lru_cache(maxsize=16)
def _cell_of_column(size: int, n_regions: int) -> np.ndarray:
    """Return the official column cell of each column; cell N collects the columns right of the last full cell."""
    return np.minimum(np.arange(size) // (size // n_regions), n_regions)


def _face_histograms_compiled(face: np.ndarray, params: MaskParams, kernels) -> tuple[np.ndarray, np.ndarray]:
    """Compute :func:`_face_histograms` with the numba kernels."""
    size, k, n = face.shape[0], params.orientations, params.n_regions
    magnitude_table, bin_table = orientation_tables(k)
    # cv2.split de-interleaves the channels into contiguous planes about 2.5x
    # faster than a NumPy copy of the transposed view.
    planes = tuple(cv2.split(np.ascontiguousarray(face)))
    tie_tables = (magnitude_table, _ambiguous_squares(), _smallest_ambiguous_square())
    if params.mode == "official":
        columns, whole = kernels.official_cell_sums(
            planes, _cell_of_column(size, n), bin_table, _square_roots_float32(), *tie_tables, n, k
        )
        whole = whole[:k] / np.float32(size * size)
        columns = columns[:n, :k] / np.float32(size * (size // n))
        return _l1_normalise(columns), _l1_normalise(whole)
    sums = kernels.paper_band_sums(planes, _band_rows_cached(size, n), bin_table, *tie_tables, n, k)
    bands = sums[:, :k]
    return bands, bands.sum(axis=0)


def _l1_normalise(hist: np.ndarray) -> np.ndarray:
    """Apply scikit-image's L1 block norm ``h / (sum|h| + 1e-5)`` in float64."""
    hist = hist.astype(np.float64)
    return hist / (np.abs(hist).sum(axis=-1, keepdims=True) + 1e-5)


@functools.lru_cache(maxsize=16)
def _band_rows_cached(size: int, n_regions: int) -> np.ndarray:
    rows = band_rows(size, n_regions)
    rows.flags.writeable = False
    return rows


def band_rows(size: int, n_regions: int) -> np.ndarray:
    """Return the paper-mode band index of each row, ``(S,)`` int64.

    Band ``i`` covers rows ``floor(i * S / N)`` to ``floor((i + 1) * S / N) - 1``,
    so every row belongs to a band.
    """
    edges = (np.arange(n_regions + 1) * size) // n_regions
    return np.searchsorted(edges, np.arange(size), side="right") - 1


def region_histograms(faces: np.ndarray, params: MaskParams) -> tuple[np.ndarray, np.ndarray]:
    """Compute the HOG of every region and of the whole face.

    Paper mode returns float64 sums of gradient magnitude per bin over the
    horizontal bands. Official mode returns scikit-image's L1-normalised
    cells: N columns of ``(S, S // N)`` pixels and one ``(S, S)`` cell
    (columns right of ``N * (S // N)`` belong only to the latter), each
    summed in float32 in row-major order and divided by its area in float32.
    A Pearson correlation does not depend on the scale, so both feed
    :func:`correlations_from_histograms`.

    Args:
        faces: ``(B, S, S, C)`` uint8.

    Returns:
        ``(B, N, K)`` and ``(B, K)`` float64.
    """
    results = [_face_histograms(face, params) for face in faces]
    return np.stack([regions for regions, _ in results]), np.stack([whole for _, whole in results])


def _thread_pool() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=_CPU_COUNT, thread_name_prefix="weighted_mask")
        return _executor


def _forget_thread_pool() -> None:
    """Drop the parent's pool in a forked child (e.g. a DataLoader worker), whose threads do not exist there."""
    global _executor, _executor_lock
    _executor = None
    _executor_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_thread_pool)


def _batch_histograms(faces: np.ndarray, params: MaskParams) -> tuple[np.ndarray, np.ndarray]:
    """Compute :func:`region_histograms` of a batch, in contiguous slices on several threads when it is large.

    Every face is computed on its own, so the result does not depend on how the
    batch is split.
    """
    workers = min(_CPU_COUNT, len(faces) // _MIN_FACES_PER_THREAD)
    if workers <= 1:
        return region_histograms(faces, params)
    edges = np.linspace(0, len(faces), workers + 1).astype(int)
    parts = list(_thread_pool().map(lambda start, stop: region_histograms(faces[start:stop], params), edges[:-1], edges[1:]))
    return np.concatenate([regions for regions, _ in parts]), np.concatenate([whole for _, whole in parts])


def correlations_from_histograms(region_hists: np.ndarray, face_hists: np.ndarray, mode: str) -> np.ndarray:
    """Compute each region's Pearson correlation with the whole face.

    Args:
        region_hists: ``(B, N, K)``.
        face_hists: ``(B, K)``.
        mode: decides the value of an undefined correlation (zero variance):
            0 in paper mode, 1 in official mode (see :data:`UNDEFINED_RHO`).
            Paper mode clips the result to ``[0, 1]``.

    Returns:
        ``(B, N)`` float64 without NaN.
    """
    region_centred = region_hists - region_hists.mean(axis=-1, keepdims=True)
    face_centred = face_hists - face_hists.mean(axis=-1, keepdims=True)
    covariance = np.einsum("bnk,bk->bn", region_centred, face_centred)
    region_ss = np.einsum("bnk,bnk->bn", region_centred, region_centred)
    face_ss = np.einsum("bk,bk->b", face_centred, face_centred)[:, None]
    defined = (region_ss > 0) & (face_ss > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = covariance / (np.sqrt(region_ss) * np.sqrt(face_ss))
    if mode == "paper":
        return np.where(defined, np.clip(rho, 0.0, 1.0), UNDEFINED_RHO["paper"])
    # The official rule keeps any value in [-1, 1] and maps the rest (NaN, or
    # 1 + 1e-16 from rounding) to 1.
    inside = defined & (rho >= -1.0) & (rho <= 1.0)
    return np.where(inside, rho, UNDEFINED_RHO["official"])


def band_histograms(face, n_regions: int = 4, orientations: int = 8, mode: Mode = "paper") -> tuple[np.ndarray, np.ndarray]:
    """Compute the HOG of each region and of the whole face of one face.

    Returns:
        ``(N, K)`` and ``(K,)`` float64: sums of gradient magnitude per bin in
        paper mode, scikit-image's L1-normalised cells in official mode.
    """
    rgb = _as_face(face)
    params = check_params(rgb.shape[0], n_regions, orientations, 1, mode)
    regions, whole = region_histograms(rgb[None], params)
    return regions[0], whole[0]


def region_correlations(face, n_regions: int = 4, orientations: int = 8, mode: Mode = "paper") -> np.ndarray:
    """Compute ρ_i, the correlation of each region's HOG with the whole face's.

    Args:
        face: ``(S, S, 3)`` RGB face (anything ``faces.load_image`` accepts).
        n_regions: N, bands (paper mode) or columns (official mode).
        orientations: K, orientation bins over 180°.
        mode: ``"paper"`` or ``"official"`` (see the module docstring).

    Returns:
        ``(N,)`` float64. A region without gradient, or a face without any,
        gets 0 in paper mode and 1 in official mode; never NaN.
    """
    rgb = _as_face(face)
    params = check_params(rgb.shape[0], n_regions, orientations, 1, mode)
    regions, whole = region_histograms(rgb[None], params)
    return correlations_from_histograms(regions, whole, mode)[0]


# --------------------------------------------------------------------------
# Painting the mask


def patch_weights(patch_size: int) -> np.ndarray:
    """Return the ``(M, M)`` float64 patch ``1 - |dy|/M - |dx|/M``; 1 at the centre."""
    if patch_size < 1 or patch_size % 2 == 0:
        raise ValueError(f"patch_size must be a positive odd integer, got {patch_size}.")
    offsets = np.abs(np.arange(patch_size) - patch_size // 2)
    return 1.0 - offsets[:, None] / patch_size - offsets[None, :] / patch_size


@functools.lru_cache(maxsize=8)
def _patch_weights_float32(patch_size: int) -> np.ndarray:
    weights = patch_weights(patch_size).astype(np.float32)
    weights.flags.writeable = False
    return weights


def landmark_pixels(landmarks: np.ndarray, size: int, patch_size: int, mode: str) -> np.ndarray:
    """Return the ``(..., L, 2)`` int64 pixel ``(x, y)`` each patch is centred on.

    Paper mode rounds to the nearest pixel; official mode truncates toward zero
    like Python's ``int()``. Coordinates far outside are first clipped to a
    range where the outcome (skipped or not painted) is the same, so huge
    values cannot overflow.
    """
    reach = size + 2 * patch_size + 2
    points = np.clip(landmarks.astype(np.float64), -reach, reach)
    if mode == "paper":
        return np.floor(points + 0.5).astype(np.int64)
    return np.trunc(points).astype(np.int64)


def official_painted(landmarks, size: int = 224) -> np.ndarray:
    """Return which landmarks the official code paints: ``0 <= int(x), int(y) <= S - 2``.

    Args:
        landmarks: ``(..., 68, 2)`` (x, y).

    Returns:
        ``(..., 68)`` bool.
    """
    pixels = landmark_pixels(np.asarray(landmarks, dtype=np.float64), size, 1, "official")
    return ((pixels >= 0) & (pixels <= size - 2)).all(axis=-1)


def _mask_rows(params: MaskParams) -> np.ndarray:
    """Return the band index of each row; index N marks rows that keep 0 (official mode)."""
    if params.mode == "paper":
        return band_rows(params.size, params.n_regions)
    height = params.size // params.n_regions
    return np.minimum(np.arange(params.size) // height, params.n_regions)


def paint_mask(
    rho: np.ndarray, landmarks: np.ndarray, params: MaskParams, landmark_ids: np.ndarray | None = None
) -> np.ndarray:
    """Fill the bands with ρ and draw the landmark patches.

    Args:
        rho: ``(B, N)`` band values.
        landmarks: ``(B, L, 2)`` float (x, y), already checked for NaN.
        params: validated parameters.
        landmark_ids: ``(L,)`` iBUG indices of the landmarks, for log messages;
            ``None`` means ``0 .. L-1``.

    Returns:
        ``(B, S, S)`` float32.
    """
    batch, size, m = rho.shape[0], params.size, params.patch_size
    pixels = batch * size * size
    band_values = np.concatenate([rho, np.zeros((batch, 1))], axis=1).astype(np.float32)  # column N: rows that keep 0
    # One spare element after the masks receives every patch pixel that falls outside its face.
    flat_masks = np.empty(pixels + 1, np.float32)
    flat_masks[pixels] = 0  # uninitialised memory may hold a NaN, which np.maximum warns about
    masks = flat_masks[:pixels].reshape(batch, size, size)
    masks[...] = band_values[:, _mask_rows(params), None]
    outside = pixels

    centres = landmark_pixels(landmarks, size, m, params.mode)  # (B, L, 2)
    n_points = centres.shape[1]
    if params.mode == "official":
        painted = ((centres >= 0) & (centres <= size - 2)).all(axis=-1)  # (B, L)
        skipped = int((~painted).sum())
        if skipped:
            logger.info("Official mode skipped %d landmark(s) at or beyond the last row/column or left of 0.", skipped)
    else:
        # A patch paints something when its centre is within M // 2 of the face on both axes.
        painted = ((centres >= -(m // 2)) & (centres <= size - 1 + m // 2)).all(axis=-1)
        if not painted.all():
            faces_idx, point_idx = np.nonzero(~painted)
            logger.warning(
                "%d landmark(s) lie so far outside the %dx%d face that their patch paints nothing "
                "(first: face %d, landmark %d).",
                faces_idx.size, size, size, faces_idx[0],
                point_idx[0] if landmark_ids is None else landmark_ids[point_idx[0]],
            )

    kernels = compiled_kernels()
    if kernels is not None:
        kernels.paint_patches(masks, centres, painted, _patch_weights_float32(m), params.combine == "max")
        return masks

    offsets = np.arange(m) - m // 2
    rows = centres[:, :, 1, None] + offsets  # (B, L, M)
    cols = centres[:, :, 0, None] + offsets  # (B, L, M)
    rows_inside = (rows >= 0) & (rows < size) & painted[:, :, None]
    cols_inside = (cols >= 0) & (cols < size)

    # A row or column outside the face adds `outside`, so the sum is at least
    # `outside` and the minimum sends that pixel to the spare element.
    face_start = (np.arange(batch) * size)[:, None, None]
    row_start = np.where(rows_inside, (face_start + rows) * size, outside)
    col_offset = np.where(cols_inside, cols, outside)
    flat = np.minimum(row_start[:, :, :, None] + col_offset[:, :, None, :], outside).reshape(-1)  # (B * L * M * M,)
    weights = np.broadcast_to(_patch_weights_float32(m), (batch, n_points, m, m)).reshape(-1)
    if params.combine == "max":
        np.maximum.at(flat_masks, flat, weights)
        return masks

    # Overwrite: the highest landmark index that covers a pixel is the last one
    # painted there, so only its weights are written (each pixel once).
    owner = np.full(pixels + 1, -1, dtype=np.int16)
    point_index = np.broadcast_to(np.arange(n_points, dtype=np.int16)[None, :, None, None], (batch, n_points, m, m)).reshape(-1)
    np.maximum.at(owner, flat, point_index)
    last = owner[flat] == point_index
    flat_masks[flat[last]] = weights[last]
    return masks


# --------------------------------------------------------------------------
# Public entry points


def selected_landmarks(groups: Iterable[str] | None) -> np.ndarray:
    """Return the sorted indices of the landmarks in ``groups`` (all 68 for ``None``).

    Raises:
        ValueError: an unknown group name; the message lists the valid ones.
    """
    if groups is None:
        return np.arange(N_LANDMARKS)
    if isinstance(groups, str):
        groups = [groups]
    indices = []
    for group in groups:
        if group not in LANDMARK_GROUPS:
            raise ValueError(f"Unknown landmark group {group!r}; choose from {sorted(LANDMARK_GROUPS)}.")
        span = LANDMARK_GROUPS[group]
        indices.extend(range(span.start, span.stop))
    return np.array(sorted(set(indices)), dtype=np.int64)


def _check_landmark_batch(landmarks, batch: int) -> np.ndarray:
    try:
        points = np.asarray(landmarks, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"landmarks must be numbers of shape (B, 68, 2): {err}") from err
    if points.shape != (batch, N_LANDMARKS, 2):
        raise ValueError(f"landmarks must have shape ({batch}, 68, 2) to match the faces, got {points.shape}.")
    bad = ~np.isfinite(points).all(axis=-1)
    if bad.any():
        face_idx, point_idx = np.argwhere(bad)[0]
        raise ValueError(
            f"landmarks of face {face_idx} contain NaN or infinite coordinates at index {point_idx} "
            f"({int(bad.sum())} point(s) in all); drop that face or re-run the detector."
        )
    return points


def weighted_mask(
    face,
    landmarks,
    n_regions: int = 4,
    orientations: int = 8,
    patch_size: int = 15,
    mode: Mode = "paper",
    combine: Combine | None = None,
    landmark_groups: Iterable[str] | None = None,
) -> np.ndarray:
    """Build OAENet's weighted mask for one face.

    Args:
        face: ``(S, S, 3)`` RGB face with S >= 32; grayscale, RGBA, 16-bit or
            float faces are converted by ``faces.load_image``.
        landmarks: ``(68, 2)`` (x, y) pixels in the face, as floats, ints, a
            list or an array. Points outside the face are allowed.
        n_regions: N in [1, 16].
        orientations: K in [2, 32].
        patch_size: M, odd, in [1, S].
        mode: ``"paper"`` or ``"official"`` (see the module docstring).
        combine: ``"max"`` or ``"overwrite"``; ``None`` picks the mode's rule.
        landmark_groups: names from ``faces.LANDMARK_GROUPS`` (``"jaw"``,
            ``"brows"``, ``"nose"``, ``"eyes"``, ``"mouth"``) whose landmarks
            get patches; ``None`` means all 68.

    Returns:
        ``(S, S)`` float32. Paper mode values lie in ``[0, 1]``; official mode
        values lie in ``[-1, 1]``.

    Raises:
        ValueError: invalid parameters, a non-square face, or landmarks of the
            wrong shape or with NaN (the message names the index).
    """
    rgb = _as_face(face)
    check_landmarks(landmarks)  # shape and NaN, with the index in the message
    # float64, because official mode truncates: 222.99999 must stay below 223.
    points = np.asarray(landmarks, dtype=np.float64)
    return weighted_mask_batch(
        rgb[None], points[None], n_regions, orientations, patch_size, mode, combine, landmark_groups
    )[0]


def weighted_mask_batch(
    faces,
    landmarks,
    n_regions: int = 4,
    orientations: int = 8,
    patch_size: int = 15,
    mode: Mode = "paper",
    combine: Combine | None = None,
    landmark_groups: Iterable[str] | None = None,
) -> np.ndarray:
    """Build the weighted masks of a batch of faces.

    The histograms are computed face by face, split between threads for
    large batches, and the patches of all faces are drawn in one vectorised pass.

    Args:
        faces: ``(B, S, S, 3)`` uint8 RGB (used without a copy), or
            ``(B, S, S)``/``(B, S, S, 1)``/other dtypes, converted face by face.
        landmarks: ``(B, 68, 2)`` (x, y) pixels.
        n_regions, orientations, patch_size, mode, combine, landmark_groups:
            as in :func:`weighted_mask`.

    Returns:
        ``(B, S, S)`` float32, equal face by face to :func:`weighted_mask`.
    """
    batch = _as_face_batch(faces)
    params = check_params(batch.shape[1], n_regions, orientations, patch_size, mode, combine)
    points = _check_landmark_batch(landmarks, batch.shape[0])
    rho = correlations_from_histograms(*_batch_histograms(batch, params), params.mode)
    selected = selected_landmarks(landmark_groups)
    return paint_mask(rho, points[:, selected], params, selected)
