"""The item types every dataset in :mod:`oaenet_helpers.data` returns.

Named tuples, so that ``image, landmarks, label = dataset[i]`` works and
``torch.utils.data.default_collate`` batches them field by field (arrays of one
shape become one tensor, labels a ``(B,)`` int64 tensor).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Sample(NamedTuple):
    """One face as a dataset yields it.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB. Sizes differ between files in the real
            datasets; :func:`oaenet_helpers.data.prepare.prepare` makes them equal.
        landmarks: ``(68, 2)`` float32 ``(x, y)`` pixels in the iBUG 68 order,
            or a ``(0, 2)`` array when the dataset was opened with
            ``landmarks="skip"``.
        label: canonical label (0 surprise ... 6 neutral, 7 contempt).
    """

    image: np.ndarray
    landmarks: np.ndarray
    label: int


class MaskedSample(NamedTuple):
    """One aligned face with its weighted mask, as a prepared dataset yields it.

    Attributes:
        image: ``(S, S, 3)`` uint8 RGB aligned crop.
        landmarks: ``(68, 2)`` float32 in crop pixels.
        mask: ``(S, S)`` float32 OAENet weighted mask.
        label: canonical label.
    """

    image: np.ndarray
    landmarks: np.ndarray
    mask: np.ndarray
    label: int


def no_landmarks() -> np.ndarray:
    """Return the ``(0, 2)`` float32 array that means "landmarks not loaded"."""
    return np.zeros((0, 2), dtype=np.float32)
