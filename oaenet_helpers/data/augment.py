"""Augmentation that keeps image, landmarks and mask consistent; splits and class balance.

The official training code (``data/dataset.py`` in github.com/Gavinic/OAENET)
flips with ``x' = size - x`` and keeps the landmark order, so after a flip
point 36 (the eye on the picture's left) lies on the right. It also zeroes
0-4 rectangles of 15x25 pixels at 224 px and applies colour jitter (brightness,
contrast, saturation 0.5, with probability 0.5). Here:

* :func:`hflip` maps ``x' = W - 1 - x`` (pixel centres) and reorders the 68
  points by :data:`FLIP_PERMUTATION`, so every index keeps its meaning, and
  flips the mask with the image;
* :func:`random_erase` zeroes the same kind of rectangles, scaled to the crop;
* :func:`colour_jitter` and :func:`rotate_scale` change only what they should
  (the mask follows geometry, not colour).

:func:`train_val_split` draws validation items from the training data, so that
model selection never looks at the test set; :func:`class_weights` and
:func:`weighted_sampler` counter class imbalance.
"""

from __future__ import annotations

import logging
import math
from typing import Optional, Sequence, TypeVar, Union

import cv2
import numpy as np
import torch
from torch.utils.data import WeightedRandomSampler

from oaenet_helpers.data.sample import MaskedSample, Sample
from oaenet_helpers.models import IMAGE_MEAN, IMAGE_STD

logger = logging.getLogger(__name__)

AnySample = TypeVar("AnySample", Sample, MaskedSample)


def _flip_permutation() -> np.ndarray:
    pairs = (
        [(i, 16 - i) for i in range(8)]  # jaw
        + [(17 + i, 26 - i) for i in range(5)]  # brows
        + [(31, 35), (32, 34)]  # nostrils
        + [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
        + [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]  # outer lips
        + [(60, 64), (61, 63), (65, 67)]  # inner lips
    )
    permutation = np.arange(68)
    for a, b in pairs:
        permutation[a], permutation[b] = b, a
    return permutation


#: ``flipped[i] = mirrored(original[FLIP_PERMUTATION[i]])``: the iBUG 68-point
#: left/right pairs (jaw 0<->16, brows 17<->26, eyes 36<->45, mouth 48<->54, ...);
#: points on the midline (8, 27-30, 33, 51, 57, 62, 66) map to themselves.
FLIP_PERMUTATION: np.ndarray = _flip_permutation()


def hflip_landmarks(landmarks: np.ndarray, width: int) -> np.ndarray:
    """Mirror ``(68, 2)`` landmarks in an image ``width`` pixels wide and restore the iBUG order."""
    points = np.asarray(landmarks, dtype=np.float32)
    if points.shape != (68, 2):
        raise ValueError(f"landmarks must have shape (68, 2), got {points.shape}.")
    flipped = points[FLIP_PERMUTATION].copy()
    flipped[:, 0] = (width - 1) - flipped[:, 0]
    return flipped


def hflip(sample: AnySample) -> AnySample:
    """Flip a sample left to right: image, landmarks (with :data:`FLIP_PERMUTATION`) and mask."""
    image = np.ascontiguousarray(sample.image[:, ::-1])
    width = sample.image.shape[1]
    landmarks = sample.landmarks if len(sample.landmarks) == 0 else hflip_landmarks(sample.landmarks, width)
    if isinstance(sample, MaskedSample):
        return sample._replace(image=image, landmarks=landmarks, mask=np.ascontiguousarray(sample.mask[:, ::-1]))
    return sample._replace(image=image, landmarks=landmarks)


def rotate_scale(sample: AnySample, angle_deg: float, scale: float) -> AnySample:
    """Rotate (counter-clockwise, degrees) and scale a sample about the image centre.

    The image is resampled bilinearly with black borders; the mask with
    bilinear sampling and zeros outside, so uncovered pixels get no attention.
    """
    height, width = sample.image.shape[:2]
    centre = ((width - 1) / 2.0, (height - 1) / 2.0)
    matrix = cv2.getRotationMatrix2D(centre, angle_deg, scale)
    image = cv2.warpAffine(sample.image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
    landmarks = sample.landmarks
    if len(landmarks):
        landmarks = (np.asarray(landmarks, dtype=np.float64) @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)
    if isinstance(sample, MaskedSample):
        mask = cv2.warpAffine(sample.mask.astype(np.float32), matrix, (width, height), flags=cv2.INTER_LINEAR, borderValue=0.0)
        return sample._replace(image=image, landmarks=landmarks, mask=mask)
    return sample._replace(image=image, landmarks=landmarks)


def random_erase(
    image: np.ndarray,
    rng: np.random.Generator,
    max_count: int = 4,
    rect_size: tuple[int, int] = (15, 25),
    reference_size: int = 224,
) -> np.ndarray:
    """Zero 0 to ``max_count`` rectangles of ``rect_size`` (rows, cols) at ``reference_size`` px.

    The rectangle size scales with the image, so a 112-px crop gets 8x12 px
    rectangles. Rectangles lie fully inside the image. Returns a copy.
    """
    out = np.array(image, copy=True)
    height, width = out.shape[:2]
    rows = max(1, round(rect_size[0] * height / reference_size))
    cols = max(1, round(rect_size[1] * width / reference_size))
    count = int(rng.integers(0, max_count + 1))
    for _ in range(count):
        top = int(rng.integers(0, max(1, height - rows + 1)))
        left = int(rng.integers(0, max(1, width - cols + 1)))
        out[top : top + rows, left : left + cols] = 0
    return out


def colour_jitter(
    image: np.ndarray,
    rng: np.random.Generator,
    brightness: float = 0.5,
    contrast: float = 0.5,
    saturation: float = 0.5,
) -> np.ndarray:
    """Scale brightness, contrast and saturation by factors drawn from ``[1 - a, 1 + a]``.

    Same factor ranges as torchvision's ``ColorJitter``; the three steps are
    applied in a fixed order. Returns a new uint8 ``(H, W, 3)`` array.
    """
    out = image.astype(np.float32)
    out *= rng.uniform(max(0.0, 1 - brightness), 1 + brightness)
    grey = out @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    factor = rng.uniform(max(0.0, 1 - contrast), 1 + contrast)
    out = (out - grey.mean()) * factor + grey.mean()
    grey = (out @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[:, :, None]
    factor = rng.uniform(max(0.0, 1 - saturation), 1 + saturation)
    out = (out - grey) * factor + grey
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


class FaceAugment:
    """Random training augmentation applied consistently to a (Masked)Sample.

    In order: horizontal flip, rotation and scale, colour jitter, random
    erasing. Defaults follow the official training code where it has the
    step (erasing, jitter) and add a small rotation/scale.

    Args:
        flip_p: probability of :func:`hflip`.
        max_rotation_deg: rotation drawn from ``[-max, max]`` degrees.
        scale_range: scale drawn from this interval.
        jitter_p: probability of :func:`colour_jitter` (strengths 0.5 each).
        erase_max: most rectangles :func:`random_erase` zeroes (0 disables).
        seed: fixes this object's random stream. With ``None`` each call seeds
            from ``torch``'s generator, so ``torch.manual_seed`` and DataLoader
            workers (each seeded differently by torch) give distinct, repeatable draws.
    """

    def __init__(
        self,
        flip_p: float = 0.5,
        max_rotation_deg: float = 10.0,
        scale_range: tuple[float, float] = (0.9, 1.1),
        jitter_p: float = 0.5,
        erase_max: int = 4,
        seed: Optional[int] = None,
    ) -> None:
        if not 0.0 <= flip_p <= 1.0 or not 0.0 <= jitter_p <= 1.0:
            raise ValueError(f"flip_p and jitter_p must be probabilities in [0, 1], got {flip_p} and {jitter_p}.")
        if not 0 < scale_range[0] <= scale_range[1]:
            raise ValueError(f"scale_range must satisfy 0 < low <= high, got {scale_range}.")
        if max_rotation_deg < 0 or erase_max < 0:
            raise ValueError(f"max_rotation_deg and erase_max must be >= 0, got {max_rotation_deg} and {erase_max}.")
        self.flip_p = flip_p
        self.max_rotation_deg = max_rotation_deg
        self.scale_range = scale_range
        self.jitter_p = jitter_p
        self.erase_max = erase_max
        self._rng = np.random.default_rng(seed) if seed is not None else None

    def _generator(self) -> np.random.Generator:
        if self._rng is not None:
            return self._rng
        return np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))

    def __call__(self, sample: AnySample) -> AnySample:
        rng = self._generator()
        if rng.random() < self.flip_p:
            sample = hflip(sample)
        angle = rng.uniform(-self.max_rotation_deg, self.max_rotation_deg)
        scale = rng.uniform(*self.scale_range)
        if angle != 0.0 or scale != 1.0:
            sample = rotate_scale(sample, angle, scale)
        image = sample.image
        if rng.random() < self.jitter_p:
            image = colour_jitter(image, rng)
        if self.erase_max:
            image = random_erase(image, rng, self.erase_max)
        return sample._replace(image=image)


#: Channel mean and standard deviation of the official code's normalisation
#: (``rgb_means=(0.456,)*3, std=(0.225,)*3`` in its ``data/dataset.py``): the
#: model's own constants, so images from here and from ``models.to_model_inputs`` agree.
OFFICIAL_MEAN = IMAGE_MEAN
OFFICIAL_STD = IMAGE_STD


def to_tensors(
    sample: Union[Sample, MaskedSample],
    mean: Sequence[float] = OFFICIAL_MEAN,
    std: Sequence[float] = OFFICIAL_STD,
) -> Union[Sample, MaskedSample]:
    """Convert a sample to tensors: image ``(3, H, W)`` float32 normalised, landmarks, mask, label.

    Returns the same named tuple type, so a DataLoader batches it field by field.
    """
    image = torch.from_numpy(np.ascontiguousarray(sample.image)).permute(2, 0, 1).float().div_(255.0)
    image = (image - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    landmarks = torch.from_numpy(np.asarray(sample.landmarks, dtype=np.float32))
    if isinstance(sample, MaskedSample):
        return MaskedSample(image, landmarks, torch.from_numpy(np.asarray(sample.mask, dtype=np.float32)), int(sample.label))
    return Sample(image, landmarks, int(sample.label))


class Compose:
    """Apply transforms in order (picklable, so DataLoader workers can use it)."""

    def __init__(self, *transforms) -> None:
        self.transforms = transforms

    def __call__(self, sample):
        for transform in self.transforms:
            sample = transform(sample)
        return sample


# --------------------------------------------------------------------------
# Splits and class balance


def train_val_split(
    labels: Sequence[int],
    val_fraction: float = 0.1,
    seed: int = 0,
    stratify: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Split training items into train and validation indices.

    Use the validation part for early stopping and model selection and keep
    the test set for the final number only (the official code selects its
    checkpoint on the test set).

    Args:
        labels: ``(N,)`` labels of the training items.
        val_fraction: share of items for validation, in (0, 1).
        seed: fixes the draw.
        stratify: take ``val_fraction`` of every class (at least one item of
            each class with two or more items), so rare classes are in both parts.

    Returns:
        ``(train_indices, val_indices)``, sorted int64 arrays that together
        cover ``range(N)`` once.
    """
    labels = np.asarray(labels)
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}.")
    if labels.ndim != 1 or labels.size < 2:
        raise ValueError(f"labels must be a 1-D sequence of at least 2 items, got shape {labels.shape}.")
    rng = np.random.default_rng(seed)
    if not stratify:
        order = rng.permutation(labels.size)
        count = max(1, int(round(val_fraction * labels.size)))
        return np.sort(order[count:]), np.sort(order[:count])
    val_parts = []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        if members.size < 2:
            continue
        count = min(members.size - 1, max(1, int(round(val_fraction * members.size))))
        val_parts.append(members[:count])
    val = np.sort(np.concatenate(val_parts)) if val_parts else np.array([], dtype=np.int64)
    train = np.setdiff1d(np.arange(labels.size), val)
    return train.astype(np.int64), val.astype(np.int64)


def class_counts(labels: Sequence[int], num_classes: int) -> np.ndarray:
    """Return ``(num_classes,)`` int64 counts; raises ValueError on a label outside ``[0, num_classes)``."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got values from {labels.min()} to {labels.max()}.")
    return np.bincount(labels, minlength=num_classes)


def class_weights(labels: Sequence[int], num_classes: int, power: float = 1.0) -> torch.Tensor:
    """Weights ``(N / (C * count_c)) ** power`` per class, for ``CrossEntropyLoss(weight=...)``.

    ``power=1`` is inverse frequency (a balanced set gets all ones), 0.5 a
    milder correction. Classes absent from ``labels`` get weight 0 and a
    logged warning, since no loss term uses them.

    Returns:
        ``(num_classes,)`` float32 tensor.
    """
    counts = class_counts(labels, num_classes).astype(np.float64)
    if counts.sum() == 0:
        raise ValueError("labels is empty; cannot compute class weights.")
    weights = np.zeros(num_classes)
    present = counts > 0
    weights[present] = (counts.sum() / (num_classes * counts[present])) ** power
    if not present.all():
        logger.warning("Classes %s have no items; their weight is 0.", np.flatnonzero(~present).tolist())
    return torch.tensor(weights, dtype=torch.float32)


def weighted_sampler(
    labels: Sequence[int],
    num_classes: int,
    num_samples: Optional[int] = None,
    seed: Optional[int] = None,
) -> WeightedRandomSampler:
    """Sample items with replacement so every class is drawn equally often on average.

    Args:
        labels: ``(N,)`` labels of the dataset the sampler indexes.
        num_samples: draws per epoch (default ``N``).
        seed: fixes the draws; None uses torch's global generator.
    """
    labels = np.asarray(labels, dtype=np.int64)
    counts = class_counts(labels, num_classes)
    per_item = 1.0 / counts[labels]
    generator = None
    if seed is not None:
        generator = torch.Generator().manual_seed(seed)
    return WeightedRandomSampler(
        torch.as_tensor(per_item, dtype=torch.double),
        num_samples=int(num_samples if num_samples is not None else labels.size),
        replacement=True,
        generator=generator,
    )
