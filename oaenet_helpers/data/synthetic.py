"""A generated, labelled set of expression faces that ships as code.

No labelled expression dataset can be downloaded without registration, so the
chapters train and evaluate on faces drawn here. Every face is **generated
data**, not a photograph, and the book labels it so wherever it shows one.

How a face is made (:meth:`SyntheticExpressions.render`):

1. A 68-point template face in the iBUG order is varied per identity (face
   width and length, eye spacing and size, brow height, nose length, mouth
   width and height).
2. The landmarks move by the action units (FACS) of the class, at a random
   intensity; :data:`CLASS_ACTION_UNITS` lists them and :data:`AU_DISPLACEMENTS`
   contains each unit's landmark motion.
3. A small head pose (roll, yaw, pitch) and a placement are applied.
4. The face is rendered as filled, shaded regions over a random background:
   skin with a lighting gradient and blotchy texture, hair, ears, sclera,
   iris, lips, mouth interior and teeth, brows, and the wrinkles that some
   action units cause. An occluder (glasses, sunglasses, a hand, a strand of
   hair) may be drawn on top, then blur and noise are added.

The class is carried only by geometry and wrinkles: colours, lighting and
occluders are drawn independently of the label, and weak intensities make
some faces close to neutral on purpose.

Each face depends only on ``(seed, index)``: ``np.random.default_rng((seed,
index))`` drives all its random draws, so any item can be regenerated alone,
in any order and in any worker process.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import cv2
import numpy as np
from torch.utils.data import Dataset

from oaenet_helpers.data.labels import CLASS_NAMES, NUM_BASIC, class_names
from oaenet_helpers.data.sample import Sample

#: Action units of each canonical class, after the EMFACS prototypes
#: (Ekman, Friesen and Hager, FACS Investigator's Guide, 2002) as the
#: OAENet book lists them. Contempt (AU14 on one side) is not generated.
CLASS_ACTION_UNITS: dict[str, tuple[int, ...]] = {
    "surprise": (1, 2, 5, 26),
    "fear": (1, 2, 4, 5, 20, 26),
    "disgust": (9, 15, 16),
    "happy": (6, 12),
    "sad": (1, 4, 15),
    "angry": (4, 5, 7, 23),
    "neutral": (),
}

#: FACS names of the action units used above.
AU_NAMES: dict[int, str] = {
    1: "inner brow raiser",
    2: "outer brow raiser",
    4: "brow lowerer",
    5: "upper lid raiser",
    6: "cheek raiser",
    7: "lid tightener",
    9: "nose wrinkler",
    12: "lip corner puller",
    15: "lip corner depressor",
    16: "lower lip depressor",
    20: "lip stretcher",
    23: "lip tightener",
    26: "jaw drop",
}

# Template face in units of the face's half-width: x to the picture's right,
# y down, origin between the eyes and the mouth. iBUG 68 order.
_JAW_ANGLES = np.pi - np.arange(17) * np.pi / 16
_TEMPLATE = np.array(
    # jaw 0-16 is filled in below
    [[0.0, 0.0]] * 17
    + [
        # brow on the picture's left, outer to inner (17-21)
        [-0.80, -0.42], [-0.64, -0.52], [-0.47, -0.55], [-0.31, -0.53], [-0.16, -0.48],
        # brow on the picture's right, inner to outer (22-26)
        [0.16, -0.48], [0.31, -0.53], [0.47, -0.55], [0.64, -0.52], [0.80, -0.42],
        # nose bridge 27-30 (30 is the tip) and nostrils 31-35
        [0.0, -0.30], [0.0, -0.17], [0.0, -0.04], [0.0, 0.10],
        [-0.19, 0.20], [-0.10, 0.23], [0.0, 0.25], [0.10, 0.23], [0.19, 0.20],
        # eye on the picture's left (36 outer corner, 39 inner corner)
        [-0.62, -0.24], [-0.51, -0.31], [-0.35, -0.31], [-0.23, -0.23], [-0.35, -0.18], [-0.51, -0.18],
        # eye on the picture's right (42 inner corner, 45 outer corner)
        [0.23, -0.23], [0.35, -0.31], [0.51, -0.31], [0.62, -0.24], [0.51, -0.18], [0.35, -0.18],
        # outer lips 48-59, from the picture-left corner over the top
        [-0.36, 0.50], [-0.24, 0.45], [-0.10, 0.42], [0.0, 0.44], [0.10, 0.42], [0.24, 0.45],
        [0.36, 0.50], [0.25, 0.58], [0.12, 0.62], [0.0, 0.63], [-0.12, 0.62], [-0.25, 0.58],
        # inner lips 60-67
        [-0.29, 0.50], [-0.10, 0.497], [0.0, 0.50], [0.10, 0.497], [0.29, 0.50],
        [0.10, 0.503], [0.0, 0.505], [-0.10, 0.503],
    ],
    dtype=np.float64,
)
_TEMPLATE[:17, 0] = np.sign(np.cos(_JAW_ANGLES)) * np.abs(np.cos(_JAW_ANGLES)) ** 0.8 * 0.95
_TEMPLATE[:17, 1] = -0.22 + 1.15 * np.sin(_JAW_ANGLES)

# Depth of each point towards the viewer, for the yaw and pitch approximation.
_DEPTH = 0.45 * (1.0 - np.clip(np.abs(_TEMPLATE[:, 0]), 0.0, 1.0) ** 2)
_DEPTH[27:31] += np.array([0.10, 0.18, 0.27, 0.36])
_DEPTH[31:36] += 0.18

_BROW_LEFT = np.arange(17, 22)  # outer -> inner
_BROW_RIGHT = np.arange(26, 21, -1)  # outer -> inner, mirrored order


def _au(points: dict[int, tuple[float, float]]) -> np.ndarray:
    motion = np.zeros((68, 2))
    for index, (dx, dy) in points.items():
        motion[index] = (dx, dy)
    return motion


def _mirrored(points: dict[int, tuple[float, float]], pairs: Sequence[tuple[int, int]]) -> dict[int, tuple[float, float]]:
    """Copy motions of the picture-left points onto their mirror points (dx negated)."""
    full = dict(points)
    for left, right in pairs:
        if left in points:
            dx, dy = points[left]
            full[right] = (-dx, dy)
    return full


_BROW_PAIRS = list(zip(_BROW_LEFT, _BROW_RIGHT))
_EYE_PAIRS = [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]
_MOUTH_PAIRS = [(48, 54), (49, 53), (50, 52), (59, 55), (58, 56), (60, 64), (61, 63), (67, 65)]
_NOSE_PAIRS = [(31, 35), (32, 34)]
_JAW_PAIRS = [(i, 16 - i) for i in range(8)]

#: Landmark motion of each action unit at full intensity, ``(68, 2)`` in units
#: of the face's half-width (y down). Hand-tuned to look like the FACS
#: description of each unit; not measured from faces.
AU_DISPLACEMENTS: dict[int, np.ndarray] = {
    1: _au(_mirrored({19: (0.0, -0.05), 20: (0.0, -0.09), 21: (0.01, -0.12)}, _BROW_PAIRS)),
    2: _au(_mirrored({17: (0.0, -0.11), 18: (0.0, -0.10), 19: (0.0, -0.06)}, _BROW_PAIRS)),
    4: _au(
        _mirrored(
            {17: (0.01, 0.03), 18: (0.02, 0.05), 19: (0.03, 0.07), 20: (0.05, 0.09), 21: (0.06, 0.10)},
            _BROW_PAIRS,
        )
    ),
    5: _au(_mirrored({37: (0.0, -0.06), 38: (0.0, -0.06), 36: (0.0, -0.01), 39: (0.0, -0.01)}, _EYE_PAIRS)),
    6: _au(
        _mirrored(
            {40: (0.0, -0.05), 41: (0.0, -0.05), 36: (0.0, -0.02), 1: (0.01, -0.03), 2: (0.02, -0.03)},
            _EYE_PAIRS + _JAW_PAIRS,
        )
    ),
    7: _au(_mirrored({40: (0.0, -0.045), 41: (0.0, -0.04), 37: (0.0, 0.02), 38: (0.0, 0.02)}, _EYE_PAIRS)),
    9: _au(
        _mirrored(
            {31: (0.02, -0.06), 32: (0.0, -0.05), 33: (0.0, -0.04), 29: (0.0, -0.02), 30: (0.0, -0.03),
             21: (0.02, 0.04), 20: (0.01, 0.02), 49: (0.0, -0.04), 50: (0.0, -0.05), 51: (0.0, -0.05),
             61: (0.0, -0.035), 62: (0.0, -0.035)},
            _NOSE_PAIRS + _BROW_PAIRS + _MOUTH_PAIRS,
        )
    ),
    12: _au(
        _mirrored(
            {48: (-0.08, -0.11), 60: (-0.07, -0.09), 49: (-0.03, -0.04), 59: (-0.03, -0.05), 67: (-0.01, -0.02)},
            _MOUTH_PAIRS,
        )
    ),
    15: _au(
        _mirrored(
            {48: (0.01, 0.10), 60: (0.01, 0.08), 49: (0.0, 0.03), 59: (0.0, 0.04), 67: (0.0, 0.01)},
            _MOUTH_PAIRS,
        )
    ),
    16: _au(
        _mirrored({59: (0.0, 0.05), 58: (0.0, 0.08), 67: (0.0, 0.06)}, _MOUTH_PAIRS)
        | {57: (0.0, 0.09), 66: (0.0, 0.07)}
    ),
    20: _au(_mirrored({48: (-0.11, 0.03), 60: (-0.09, 0.025), 49: (-0.04, 0.01), 59: (-0.04, 0.01)}, _MOUTH_PAIRS)),
    23: _au(
        _mirrored(
            {48: (0.05, 0.0), 60: (0.04, 0.0), 49: (0.02, 0.03), 50: (0.0, 0.03), 59: (0.02, -0.03), 58: (0.0, -0.03)},
            _MOUTH_PAIRS,
        )
        | {51: (0.0, 0.035), 57: (0.0, -0.035)}
    ),
    26: _au(
        _mirrored(
            {48: (0.02, 0.08), 60: (0.02, 0.08), 59: (0.0, 0.17), 58: (0.0, 0.20), 67: (0.0, 0.19),
             4: (0.0, 0.04), 5: (0.0, 0.07), 6: (0.0, 0.10), 7: (0.0, 0.12)},
            _MOUTH_PAIRS + _JAW_PAIRS,
        )
        | {57: (0.0, 0.21), 66: (0.0, 0.20), 8: (0.0, 0.13)}
    ),
}

OCCLUDERS: tuple[str, ...] = ("none", "glasses", "sunglasses", "hand", "hair")
_OCCLUDER_PROBS = np.array([0.55, 0.18, 0.07, 0.13, 0.07])


@dataclass(frozen=True)
class FaceParams:
    """The random draws behind one generated face (for figures and tests).

    Attributes:
        label: canonical label.
        intensity: overall expression intensity in ``[0, 1]``; 0 is neutral.
        au_intensities: intensity of each action unit that moved the landmarks.
        occluder: one of :data:`OCCLUDERS`.
        roll_deg, yaw_deg, pitch_deg: head pose in degrees.
    """

    label: int
    intensity: float
    au_intensities: dict[int, float] = field(default_factory=dict)
    occluder: str = "none"
    roll_deg: float = 0.0
    yaw_deg: float = 0.0
    pitch_deg: float = 0.0


@dataclass(frozen=True)
class SyntheticFace:
    """One rendered face: the image, its exact landmarks and how it was made.

    Attributes:
        image: ``(size, size, 3)`` uint8 RGB.
        landmarks: ``(68, 2)`` float32 pixel ``(x, y)`` in the iBUG order.
        params: the random draws, see :class:`FaceParams`.
    """

    image: np.ndarray
    landmarks: np.ndarray
    params: FaceParams


def expression_landmarks(label: int, intensity: float = 1.0) -> np.ndarray:
    """Return the template's 68 points moved by the class's action units.

    Args:
        label: canonical label 0-6.
        intensity: multiplies every unit's displacement; 0 gives the template.

    Returns:
        ``(68, 2)`` float64 in units of the face's half-width, y down.
    """
    name = CLASS_NAMES[_check_label(label)]
    points = _TEMPLATE.copy()
    for unit in CLASS_ACTION_UNITS[name]:
        points += intensity * AU_DISPLACEMENTS[unit]
    return points


def _check_label(label: int) -> int:
    if not 0 <= int(label) < NUM_BASIC:
        raise ValueError(f"Generated faces exist for labels 0-6 ({CLASS_NAMES[:NUM_BASIC]}), got {label}.")
    return int(label)


class SyntheticExpressions(Dataset):
    """Generated expression faces with exact 68-point landmarks (no files).

    Every item is ``Sample(image, landmarks, label)``: ``(size, size, 3)``
    uint8 RGB, ``(68, 2)`` float32 pixels and a canonical label 0-6. The data
    are generated: use them to run and test the pipeline, not to report
    accuracy on real faces.

    Args:
        length: number of items.
        size: image side in pixels (at least 32).
        seed: with the index, fixes every random draw of an item.
        class_probs: probability of each of the 7 classes (default uniform);
            an unbalanced choice shows what class weights do.
        intensity_range: ``(low, high)`` bounds of the expression intensity;
            low values make faces close to neutral, so some items are ambiguous.
        occluders: draw glasses, sunglasses, hands and hair strands.
        max_roll_deg, max_yaw_deg, max_pitch_deg: head pose limits in degrees.
        max_shift: largest offset of the face centre from the image centre,
            as a fraction of ``size``. Offsets and scales keep a linear model
            on raw pixels from reading the class off fixed pixel positions.
        scale_range: bounds of the face scale; 1.0 makes the face (forehead
            to chin) about 0.6 of the image height.
        transform: applied to each :class:`Sample` before it is returned.

    Example:
        >>> data = SyntheticExpressions(length=10, size=64)
        >>> image, landmarks, label = data[3]
        >>> image.shape, landmarks.shape
        ((64, 64, 3), (68, 2))
    """

    def __init__(
        self,
        length: int = 1400,
        size: int = 112,
        seed: int = 0,
        class_probs: Optional[Sequence[float]] = None,
        intensity_range: tuple[float, float] = (0.15, 1.0),
        occluders: bool = True,
        max_roll_deg: float = 10.0,
        max_yaw_deg: float = 15.0,
        max_pitch_deg: float = 8.0,
        max_shift: float = 0.06,
        scale_range: tuple[float, float] = (0.85, 1.1),
        transform: Optional[Callable[[Sample], object]] = None,
    ) -> None:
        if int(length) != length or length < 0:
            raise ValueError(f"length must be a non-negative integer, got {length!r}.")
        if int(size) != size or size < 32:
            raise ValueError(f"size must be an integer of at least 32 pixels, got {size!r}.")
        low, high = intensity_range
        if not 0.0 <= low <= high <= 1.5:
            raise ValueError(f"intensity_range must satisfy 0 <= low <= high <= 1.5, got {intensity_range}.")
        if class_probs is None:
            probs = np.full(NUM_BASIC, 1.0 / NUM_BASIC)
        else:
            probs = np.asarray(class_probs, dtype=np.float64)
            if probs.shape != (NUM_BASIC,) or np.any(probs < 0) or not np.isfinite(probs).all() or probs.sum() <= 0:
                raise ValueError(
                    f"class_probs must be 7 non-negative numbers with a positive sum "
                    f"(order {class_names()}), got {class_probs!r}."
                )
            probs = probs / probs.sum()
        if not 0.0 <= max_shift <= 0.25:
            raise ValueError(f"max_shift must be in [0, 0.25] (fraction of the image side), got {max_shift}.")
        if not 0.5 <= scale_range[0] <= scale_range[1] <= 1.5:
            raise ValueError(f"scale_range must satisfy 0.5 <= low <= high <= 1.5, got {scale_range}.")

        self.length = int(length)
        self.size = int(size)
        self.seed = int(seed)
        self.class_probs = probs
        self.intensity_range = (float(low), float(high))
        self.occluders = bool(occluders)
        self.max_roll_deg = float(max_roll_deg)
        self.max_yaw_deg = float(max_yaw_deg)
        self.max_pitch_deg = float(max_pitch_deg)
        self.max_shift = float(max_shift)
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        self.transform = transform
        self._labels: Optional[np.ndarray] = None

    num_classes = NUM_BASIC

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Sample:
        face = self.render(index)
        sample = Sample(face.image, face.landmarks, face.params.label)
        return self.transform(sample) if self.transform is not None else sample

    @property
    def classes(self) -> tuple[str, ...]:
        """Canonical class names (7)."""
        return class_names(NUM_BASIC)

    @property
    def labels(self) -> np.ndarray:
        """``(length,)`` int64 label of every item, computed without rendering."""
        if self._labels is None:
            cumulative = np.cumsum(self.class_probs)
            draws = np.array([self._label_draw(i) for i in range(self.length)])
            self._labels = np.minimum(np.searchsorted(cumulative, draws, side="right"), NUM_BASIC - 1)
        return self._labels

    def fingerprint(self) -> str:
        """Return a key that changes whenever any item could change."""
        text = repr(
            (
                type(self).__name__,
                _RENDER_VERSION,
                self.length,
                self.size,
                self.seed,
                self.class_probs.round(12).tolist(),
                self.intensity_range,
                self.occluders,
                self.max_roll_deg,
                self.max_yaw_deg,
                self.max_pitch_deg,
                self.max_shift,
                self.scale_range,
            )
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def _label_draw(self, index: int) -> float:
        # A stream of its own, so labels can be listed without rendering.
        return float(np.random.default_rng((self.seed, index, 1)).random())

    def _check_index(self, index: int) -> int:
        if index < 0:
            index += self.length
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} is out of range for a dataset of {self.length} items.")
        return int(index)

    def render(self, index: int) -> SyntheticFace:
        """Generate item ``index``: the image, its landmarks and the draws behind it."""
        index = self._check_index(index)
        cumulative = np.cumsum(self.class_probs)
        label = int(min(np.searchsorted(cumulative, self._label_draw(index), side="right"), NUM_BASIC - 1))
        rng = np.random.default_rng((self.seed, index, 2))
        return _render_face(rng, label, self)


# --------------------------------------------------------------------------
# Rendering

_RENDER_VERSION = 2
_SHIFT = 4  # cv2 fixed-point bits, so polygons sit at 1/16-pixel precision
_SCALE = float(1 << _SHIFT)


def _fixed(points: np.ndarray) -> np.ndarray:
    return np.round(points * _SCALE).astype(np.int32).reshape(-1, 1, 2)


def _fill(canvas: np.ndarray, points: np.ndarray, colour) -> None:
    cv2.fillPoly(canvas, [_fixed(points)], _colour(colour), lineType=cv2.LINE_AA, shift=_SHIFT)


def _line(canvas: np.ndarray, points: np.ndarray, colour, thickness: float, closed: bool = False) -> None:
    cv2.polylines(
        canvas, [_fixed(points)], closed, _colour(colour), max(1, int(round(thickness))), cv2.LINE_AA, _SHIFT
    )


def _ellipse(canvas: np.ndarray, centre, axes, angle: float, colour, thickness: int = -1) -> None:
    cv2.ellipse(
        canvas,
        (int(round(centre[0] * _SCALE)), int(round(centre[1] * _SCALE))),
        (max(1, int(round(axes[0] * _SCALE))), max(1, int(round(axes[1] * _SCALE)))),
        angle,
        0,
        360,
        _colour(colour),
        thickness,
        cv2.LINE_AA,
        _SHIFT,
    )


def _colour(colour) -> tuple[float, ...]:
    values = np.atleast_1d(np.asarray(colour, dtype=np.float64))
    return tuple(float(v) for v in np.clip(values, 0, 255))


def _blend(canvas: np.ndarray, layer, alpha: np.ndarray, box: Optional[tuple[slice, slice]] = None) -> None:
    """Alpha-composite ``layer`` onto float32 ``canvas`` in place.

    ``alpha`` is ``(H, W)`` in [0, 1] and ``layer`` one colour or an image
    of the canvas's shape (without ``box``). Only the ``(rows, cols)`` box is
    touched when given, which saves most of the time at 224 px.
    """
    if box is not None:
        canvas = canvas[box]
        alpha = alpha[box]
    difference = np.asarray(layer, dtype=np.float32) - canvas
    difference *= alpha[:, :, None]
    canvas += difference


def _smooth_curve(points: np.ndarray, samples: int = 24) -> np.ndarray:
    """Resample a polyline with a Catmull-Rom spline, so outlines are round."""
    padded = np.vstack([points[:1], points, points[-1:]])
    t = np.linspace(0.0, 1.0, max(2, samples // max(1, len(points) - 1)), endpoint=False)[:, None]
    segments = []
    for i in range(1, len(padded) - 2):
        p0, p1, p2, p3 = padded[i - 1], padded[i], padded[i + 1], padded[i + 2]
        segments.append(
            0.5
            * (
                2 * p1
                + (-p0 + p2) * t
                + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3
            )
        )
    segments.append(points[-1:])
    return np.vstack(segments)


def _identity(rng: np.random.Generator) -> np.ndarray:
    """Return the template varied by identity (face shape and proportions)."""
    points = _TEMPLATE.copy()
    width = rng.uniform(0.88, 1.10)
    length = rng.uniform(0.90, 1.10)
    points[:17, 0] *= width
    points[:17, 1] = -0.22 + (points[:17, 1] + 0.22) * length
    eye_spacing = rng.uniform(-0.05, 0.05)
    eye_scale = rng.uniform(0.85, 1.18)
    for eye, sign in ((slice(36, 42), -1.0), (slice(42, 48), 1.0)):
        centre = points[eye].mean(axis=0)
        points[eye] = centre + (points[eye] - centre) * eye_scale
        points[eye, 0] += sign * eye_spacing
    brow_raise = rng.uniform(-0.05, 0.05)
    points[17:27, 1] += brow_raise
    nose = rng.uniform(0.85, 1.15)
    points[27:36, 1] = -0.30 + (points[27:36, 1] + 0.30) * nose
    points[31:36, 0] *= rng.uniform(0.85, 1.2)
    mouth_centre = points[48:68].mean(axis=0)
    mouth_scale = np.array([rng.uniform(0.85, 1.15), rng.uniform(0.8, 1.3)])
    points[48:68] = mouth_centre + (points[48:68] - mouth_centre) * mouth_scale
    points[48:68, 1] += rng.uniform(-0.04, 0.05) * length
    points += rng.normal(0.0, 0.008, points.shape)
    return points


def _draw_pose(rng: np.random.Generator, dataset: SyntheticExpressions) -> tuple[float, float, float]:
    roll = rng.uniform(-1, 1) * dataset.max_roll_deg
    yaw = rng.uniform(-1, 1) * dataset.max_yaw_deg
    pitch = rng.uniform(-1, 1) * dataset.max_pitch_deg
    return roll, yaw, pitch


def _project(points: np.ndarray, depth: np.ndarray, roll: float, yaw: float, pitch: float,
             centre: np.ndarray, scale: float) -> np.ndarray:
    """Turn the face by yaw and pitch (orthographic), roll it, then place it in pixels."""
    yaw_r, pitch_r, roll_r = math.radians(yaw), math.radians(pitch), math.radians(roll)
    x = points[:, 0] * math.cos(yaw_r) + depth * math.sin(yaw_r)
    y = points[:, 1] * math.cos(pitch_r) - depth * math.sin(pitch_r)
    cos, sin = math.cos(roll_r), math.sin(roll_r)
    rotated = np.stack([x * cos - y * sin, x * sin + y * cos], axis=1)
    return centre + scale * rotated


def _random_colour(rng: np.random.Generator, low: float, high: float) -> np.ndarray:
    return rng.uniform(low, high, 3)


def _skin_colour(rng: np.random.Generator) -> np.ndarray:
    # A line from dark brown to pale pink, so every skin tone appears.
    tone = rng.uniform(0.0, 1.0)
    dark, light = np.array([95.0, 60.0, 45.0]), np.array([245.0, 210.0, 190.0])
    return dark + (light - dark) * tone + rng.normal(0.0, 8.0, 3)


def _render_face(rng: np.random.Generator, label: int, dataset: SyntheticExpressions) -> SyntheticFace:
    size = dataset.size
    name = CLASS_NAMES[label]

    # Expression: one overall intensity, each unit a little above or below it.
    low, high = dataset.intensity_range
    intensity = float(rng.uniform(low, high)) if name != "neutral" else 0.0
    points = _identity(rng)
    au_intensities: dict[int, float] = {}
    for unit in CLASS_ACTION_UNITS[name]:
        value = intensity * float(rng.uniform(0.75, 1.15))
        au_intensities[unit] = value
        points += value * AU_DISPLACEMENTS[unit]
    # A neutral face still varies a little, so "no motion at all" is no shortcut.
    points[17:68] += rng.normal(0.0, 0.012, (51, 2))

    # Extra points that are not landmarks: forehead outline and hairline.
    forehead_angles = np.linspace(0.0, np.pi, 11)
    jaw_half_width = (points[16, 0] - points[0, 0]) / 2.0
    jaw_mid = (points[16, 0] + points[0, 0]) / 2.0
    top = rng.uniform(1.05, 1.2)
    forehead = np.stack(
        [jaw_mid + jaw_half_width * np.cos(forehead_angles), points[0, 1] - top * np.sin(forehead_angles) ** 0.85],
        axis=1,
    )
    hairline_height = rng.uniform(0.55, 0.85)
    hairline = forehead.copy()
    hairline[:, 1] = np.minimum(forehead[:, 1] + hairline_height * np.sin(forehead_angles) ** 2, forehead[:, 1] + 0.9)
    hairline[:, 1] = np.minimum(hairline[:, 1], points[17:27, 1].min() - 0.1)

    roll, yaw, pitch = _draw_pose(rng, dataset)
    centre = np.array([0.5, 0.53]) * size + rng.uniform(-1.0, 1.0, 2) * dataset.max_shift * size
    scale = size * 0.30 * rng.uniform(*dataset.scale_range)
    extra_depth = np.zeros(len(forehead))
    all_points = np.vstack([points, forehead, hairline])
    all_depth = np.concatenate([_DEPTH, extra_depth, extra_depth + 0.1])
    projected = _project(all_points, all_depth, roll, yaw, pitch, centre, scale)
    landmarks = projected[:68]
    forehead_px = projected[68:79]
    hairline_px = projected[79:]
    unit = scale  # pixels per template unit

    # Background: a gradient between two colours plus low-frequency blotches.
    canvas = np.empty((size, size, 3), dtype=np.float32)
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)
    direction = rng.uniform(0, 2 * np.pi)
    gradient = (np.cos(direction) * ramp[None, :] + np.sin(direction) * ramp[:, None] + 1.0) / 2.0
    bg_a, bg_b = _random_colour(rng, 20, 235), _random_colour(rng, 20, 235)
    canvas[:] = bg_a + (bg_b - bg_a) * gradient[:, :, None]

    skin = _skin_colour(rng)
    hair = rng.choice([np.array([25.0, 20, 18]), np.array([80.0, 50, 30]), np.array([160.0, 120, 70]),
                       np.array([200.0, 190, 170]), np.array([110.0, 30, 20])]) + rng.normal(0, 10, 3)
    clothes = _random_colour(rng, 20, 230)

    # Hair behind the head and shoulders.
    head_centre = (forehead_px[5] + landmarks[8]) / 2.0
    roll_deg = float(roll)
    long_hair = rng.random() < 0.45
    _ellipse(canvas, head_centre - np.array([0, 0.25 * unit]), (1.25 * unit * jaw_half_width, 1.35 * unit), roll_deg, hair)
    if long_hair:
        _fill(canvas, np.array([landmarks[0] + [-0.35 * unit, -0.2 * unit], landmarks[16] + [0.35 * unit, -0.2 * unit],
                                landmarks[16] + [0.45 * unit, 1.4 * unit], landmarks[0] + [-0.45 * unit, 1.4 * unit]]), hair)
    neck_top = landmarks[8] - np.array([0.0, 0.3 * unit])
    _fill(canvas, np.array([neck_top + [-0.45 * unit, -0.3 * unit], neck_top + [0.45 * unit, -0.3 * unit],
                            neck_top + [0.5 * unit, 1.2 * unit], neck_top + [-0.5 * unit, 1.2 * unit]]), skin * 0.8)
    _ellipse(canvas, landmarks[8] + [0.0, 1.25 * unit], (1.6 * unit, 0.75 * unit), 0.0, clothes)

    # Ears, then the face.
    for jaw_index, side in ((1, -1.0), (15, 1.0)):
        ear = landmarks[jaw_index] + np.array([side * 0.06 * unit, -0.18 * unit])
        _ellipse(canvas, ear, (0.13 * unit, 0.24 * unit), roll_deg, skin * 0.88)
    face_outline = np.vstack([_smooth_curve(landmarks[:17], 48), forehead_px[1:-1]])
    face_mask = np.zeros((size, size), dtype=np.uint8)
    _fill(face_mask, face_outline, 255)
    face_alpha = face_mask.astype(np.float32) / 255.0
    rows, cols, _ = _roi(np.vstack([face_outline, hairline_px]), 2.0, size)
    box = (rows, cols)

    # Lighting: a directional gradient and a darker rim, so the face looks round.
    yy = np.arange(rows.start, rows.stop, dtype=np.float32)[:, None]
    xx = np.arange(cols.start, cols.stop, dtype=np.float32)[None, :]
    face_centre = landmarks[27:36].mean(axis=0)
    dx = (xx - face_centre[0]) / (unit * max(jaw_half_width, 0.5))
    dy = (yy - face_centre[1]) / (unit * 1.1)
    light = rng.uniform(0, 2 * np.pi)
    strength = rng.uniform(0.05, 0.3)
    shading = 1.0 + strength * (np.cos(light) * dx + np.sin(light) * dy) - 0.22 * np.clip(dx**2 + dy**2, 0, 1.6)
    box_shape = (max(1, cols.stop - cols.start), max(1, rows.stop - rows.start))
    blotch = cv2.resize(rng.normal(0.0, 1.0, (6, 6)).astype(np.float32), box_shape, interpolation=cv2.INTER_CUBIC)
    shading += 0.04 * blotch[: shading.shape[0], : shading.shape[1]]
    face_layer = shading[:, :, None] * skin.astype(np.float32)
    _blend(canvas[box], face_layer, face_alpha[box])
    brightness = rng.uniform(0.75, 1.15)  # global exposure, drawn independently of the class

    # Cheek colour, stronger when the cheeks are raised (AU6).
    cheek_alpha = np.zeros((size, size), dtype=np.float32)
    cheek_lift = au_intensities.get(6, 0.0)
    for eye, jaw_index in ((slice(36, 42), 3), (slice(42, 48), 13)):
        cheek = 0.45 * landmarks[eye].mean(axis=0) + 0.55 * landmarks[jaw_index] - np.array([0, 0.05 * unit * cheek_lift])
        _ellipse(cheek_alpha, cheek, (0.2 * unit, 0.14 * unit), roll_deg, 0.12 + 0.2 * cheek_lift)
    # Blurring only the face box keeps the cost independent of the background.
    cheek_alpha[box] = cv2.GaussianBlur(cheek_alpha[box], (0, 0), 0.08 * unit)
    _blend(canvas, skin * np.array([1.0, 0.72, 0.72]), cheek_alpha, box)

    # Wrinkles that action units cause: nasolabial folds (AU6, AU9, AU12),
    # glabella lines (AU4), bridge wrinkles (AU9), forehead lines (AU1, AU2).
    wrinkle = skin * 0.72
    thin = max(1.0, 0.025 * unit)
    fold = 0.15 + 0.6 * max(au_intensities.get(12, 0.0), au_intensities.get(9, 0.0), au_intensities.get(6, 0.0) * 0.6)
    folds = np.zeros((size, size), dtype=np.float32)
    for nose_index, mouth_index, side in ((31, 48, -1.0), (35, 54, 1.0)):
        start = landmarks[nose_index] + np.array([side * 0.06 * unit, -0.02 * unit])
        end = landmarks[mouth_index] + np.array([side * 0.08 * unit, 0.03 * unit])
        middle = (start + end) / 2.0 + np.array([side * 0.06 * unit, 0.0])
        _line(folds, _smooth_curve(np.array([start, middle, end]), 8), fold, thin)
    brow_lower = au_intensities.get(4, 0.0)
    if brow_lower > 0:
        for offset in (-0.05, 0.05):
            base = (landmarks[21] + landmarks[22]) / 2.0 + np.array([offset * unit, 0.0])
            _line(folds, np.array([base - [0, 0.12 * unit], base + [0, 0.02 * unit]]), 0.7 * brow_lower, thin)
    nose_wrinkle = au_intensities.get(9, 0.0)
    if nose_wrinkle > 0:
        for k in range(3):
            y = landmarks[27, 1] + (0.03 + 0.05 * k) * unit
            x = landmarks[28, 0]
            _line(folds, np.array([[x - 0.1 * unit, y], [x, y - 0.02 * unit], [x + 0.1 * unit, y]]), 0.8 * nose_wrinkle, thin)
    brow_raise = max(au_intensities.get(1, 0.0), au_intensities.get(2, 0.0))
    if brow_raise > 0:
        for k in range(3):
            y_shift = (0.12 + 0.07 * k) * unit
            arc = (landmarks[18:26] - np.array([0.0, y_shift]))
            _line(folds, _smooth_curve(arc[::2], 12), 0.55 * brow_raise, thin)
    folds[box] = cv2.GaussianBlur(folds[box], (0, 0), max(0.4, 0.015 * unit))
    folds *= face_alpha
    _blend(canvas, wrinkle, np.clip(folds, 0, 1), box)

    # Hair on the forehead.
    fringe = np.vstack([forehead_px, hairline_px[::-1]])
    _fill(canvas, fringe, hair)

    # Eyes: sclera, iris and pupil clipped to the eye outline, lash line, crease.
    iris_colour = rng.choice([np.array([70.0, 45, 25]), np.array([60.0, 100, 150]), np.array([70.0, 110, 70]),
                              np.array([35.0, 25, 20])])
    gaze = rng.normal(0.0, 0.03, 2) * unit
    for eye in (slice(36, 42), slice(42, 48)):
        outline = landmarks[eye]
        _draw_eye(canvas, outline, iris_colour, gaze, unit, skin)

    # Brows as tapered filled shapes.
    brow_colour = hair * 0.75
    thickness = rng.uniform(0.045, 0.08) * unit
    for brow in (landmarks[17:22], landmarks[22:27][::-1]):
        curve = _smooth_curve(brow, 16)
        taper = np.linspace(0.55, 1.0, len(curve))[:, None]
        normal = np.array([0.0, 1.0])
        _fill(canvas, np.vstack([curve - normal * thickness * taper, (curve + normal * thickness * taper)[::-1]]), brow_colour)

    # Nose: side shadow, nostrils, tip highlight.
    shadow_side = 1.0 if math.cos(light) < 0 else -1.0
    bridge = landmarks[27:31] + np.array([shadow_side * 0.07 * unit, 0.0])
    _line(canvas, bridge, skin * 0.78, max(1.0, 0.04 * unit))
    _fill(canvas, _smooth_curve(landmarks[31:36], 12), skin * 0.82)
    for nostril in (32, 34):
        _ellipse(canvas, landmarks[nostril] - np.array([0, 0.015 * unit]), (0.045 * unit, 0.025 * unit), roll_deg, skin * 0.35)
    _ellipse(canvas, landmarks[30] - np.array([0, 0.03 * unit]), (0.05 * unit, 0.035 * unit), 0, np.minimum(skin * 1.12, 255))

    _draw_mouth(canvas, landmarks, skin, rng, unit)

    occluder = "none"
    if dataset.occluders:
        occluder = str(rng.choice(OCCLUDERS, p=_OCCLUDER_PROBS))
        _draw_occluder(canvas, occluder, landmarks, rng, unit, skin, hair)

    # Sensor: exposure, blur and noise.
    canvas *= brightness
    canvas = cv2.GaussianBlur(canvas, (0, 0), rng.uniform(0.3, 0.9) * size / 112.0)
    noise = rng.standard_normal(canvas.shape, dtype=np.float32)
    noise *= rng.uniform(2.0, 7.0)
    canvas += noise
    canvas += 0.5  # so that the truncating cast below rounds
    np.clip(canvas, 0.0, 255.0, out=canvas)
    image = canvas.astype(np.uint8)

    params = FaceParams(
        label=label,
        intensity=intensity,
        au_intensities=au_intensities,
        occluder=occluder,
        roll_deg=float(roll),
        yaw_deg=float(yaw),
        pitch_deg=float(pitch),
    )
    return SyntheticFace(image=image, landmarks=landmarks.astype(np.float32), params=params)


def _roi(points: np.ndarray, margin: float, size: int) -> tuple[slice, slice, np.ndarray]:
    low = np.floor(points.min(axis=0) - margin).astype(int)
    high = np.ceil(points.max(axis=0) + margin).astype(int)
    low = np.clip(low, 0, size)
    high = np.clip(high, 0, size)
    return slice(low[1], high[1]), slice(low[0], high[0]), low.astype(np.float64)


def _draw_eye(canvas: np.ndarray, outline: np.ndarray, iris_colour: np.ndarray, gaze: np.ndarray,
              unit: float, skin: np.ndarray) -> None:
    size = canvas.shape[0]
    rows, cols, origin = _roi(outline, 0.2 * unit, size)
    if rows.stop <= rows.start or cols.stop <= cols.start:
        return
    local = outline - origin
    region = canvas[rows, cols]
    mask = np.zeros(region.shape[:2], dtype=np.uint8)
    _fill(mask, _smooth_curve(local[[0, 1, 2, 3, 4, 5, 0]], 24), 255)
    eye = np.empty_like(region)
    eye[:] = (235.0, 230.0, 225.0)
    centre = local.mean(axis=0) + gaze
    width = np.linalg.norm(local[3] - local[0])
    _ellipse(eye, centre, (0.2 * width, 0.2 * width), 0, iris_colour)
    _ellipse(eye, centre, (0.09 * width, 0.09 * width), 0, (15, 12, 12))
    _ellipse(eye, centre - 0.05 * width, (0.035 * width, 0.035 * width), 0, (250, 250, 250))
    _blend(region, eye, mask.astype(np.float32) / 255.0)
    upper = _smooth_curve(local[[0, 1, 2, 3]], 12)
    _line(region, upper, (30, 22, 20), max(1.0, 0.035 * unit))
    _line(region, upper - np.array([0.0, 0.08 * unit]), skin * 0.75, max(1.0, 0.02 * unit))
    _line(region, _smooth_curve(local[[3, 4, 5, 0]], 12), skin * 0.7, max(1.0, 0.015 * unit))


def _draw_mouth(canvas: np.ndarray, landmarks: np.ndarray, skin: np.ndarray, rng: np.random.Generator,
                unit: float) -> None:
    size = canvas.shape[0]
    outer = landmarks[48:60]
    inner = landmarks[60:68]
    rows, cols, origin = _roi(outer, 0.1 * unit, size)
    if rows.stop <= rows.start or cols.stop <= cols.start:
        return
    region = canvas[rows, cols]
    lip = skin * np.array([0.85, 0.55, 0.55]) + rng.normal(0, 6, 3)
    _fill(region, _smooth_curve((outer - origin)[list(range(12)) + [0]], 36), lip)
    inner_local = inner - origin
    opening = np.linalg.norm(inner[6] - inner[2])
    interior = _smooth_curve(inner_local[[0, 1, 2, 3, 4, 5, 6, 7, 0]], 32)
    if opening < 0.06 * unit:
        _line(region, interior, (60, 25, 25), max(1.0, 0.025 * unit), closed=True)
        return
    mask = np.zeros(region.shape[:2], dtype=np.uint8)
    _fill(mask, interior, 255)
    mouth = np.empty_like(region)
    mouth[:] = (70, 20, 25)
    # Upper teeth hang from the upper inner lip.
    teeth_depth = min(0.09 * unit, 0.45 * opening)
    upper = inner_local[[0, 1, 2, 3, 4]]
    _fill(mouth, np.vstack([upper, (upper + np.array([0.0, teeth_depth]))[::-1]]), (232, 228, 215))
    _blend(region, mouth, mask.astype(np.float32) / 255.0)


def _draw_occluder(canvas: np.ndarray, occluder: str, landmarks: np.ndarray, rng: np.random.Generator,
                   unit: float, skin: np.ndarray, hair: np.ndarray) -> None:
    size = canvas.shape[0]
    if occluder in ("glasses", "sunglasses"):
        frame = _random_colour(rng, 10, 120)
        radius = rng.uniform(0.17, 0.23) * unit
        centres = [landmarks[36:42].mean(axis=0), landmarks[42:48].mean(axis=0)]
        angle = math.degrees(math.atan2(*(centres[1] - centres[0])[::-1]))
        if occluder == "sunglasses":
            lens = np.zeros((size, size), dtype=np.float32)
            for centre in centres:
                _ellipse(lens, centre, (radius * 1.1, radius * 0.85), angle, 1.0)
            _blend(canvas, _random_colour(rng, 5, 50), lens * rng.uniform(0.8, 0.95))
        for centre in centres:
            _ellipse(canvas, centre, (radius * 1.1, radius * 0.85), angle, frame, max(1, int(0.04 * unit)))
        _line(canvas, np.array([centres[0] + [radius * 1.05, 0], centres[1] - [radius * 1.05, 0]]), frame,
              max(1.0, 0.035 * unit))
        for centre, jaw_index in ((centres[0], 0), (centres[1], 16)):
            _line(canvas, np.array([centre, landmarks[jaw_index] - [0, 0.05 * unit]]), frame, max(1.0, 0.03 * unit))
    elif occluder == "hand":
        # A palm with four fingers over the mouth, a cheek or the chin.
        target = landmarks[rng.choice([3, 13, 57, 8, 48, 54])]
        angle = rng.uniform(-0.8, 0.8)
        direction = np.array([math.sin(angle), -math.cos(angle)])
        across = np.array([direction[1], -direction[0]])
        palm = target + direction * rng.uniform(-0.5, -0.2) * unit
        hand_skin = _skin_colour(rng)
        _ellipse(canvas, palm, (0.32 * unit, 0.4 * unit), math.degrees(angle), hand_skin)
        for k in range(4):
            base = palm + across * (k - 1.5) * 0.15 * unit + direction * 0.3 * unit
            tip = base + direction * rng.uniform(0.3, 0.45) * unit
            _line(canvas, np.array([base, tip]), hand_skin * 0.97, 0.13 * unit)
            _line(canvas, np.array([base, tip]), hand_skin * 0.8, max(1.0, 0.015 * unit))
    elif occluder == "hair":
        side = rng.choice([0, 1])
        eye = landmarks[36:42] if side == 0 else landmarks[42:48]
        top = eye.mean(axis=0) - np.array([0.0, 0.7 * unit])
        bottom = eye.mean(axis=0) + np.array([rng.uniform(-0.2, 0.2) * unit, 0.35 * unit])
        width = rng.uniform(0.12, 0.22) * unit
        _fill(canvas, np.array([top - [width, 0], top + [width, 0], bottom + [width * 0.4, 0], bottom - [width * 0.4, 0]]), hair)


# --------------------------------------------------------------------------
# Photographic samples: a real face warped by the action units

# Distance between the outer eye corners (36, 45) of the template, in template units.
_TEMPLATE_EYE_SPAN = float(np.linalg.norm(_TEMPLATE[45] - _TEMPLATE[36]))


def express_photo(image, landmarks, label: int, intensity: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Warp a real face so that it shows a class's action units.

    The 68 landmarks move by :data:`AU_DISPLACEMENTS` (scaled by the distance
    between the outer eye corners and turned with the eye line), and the image
    follows by a piecewise-affine warp on the landmarks. A ring of fixed points
    around the face and the image border keep the background in place. The
    result is **generated data** made from a photograph, not a photograph of
    that expression.

    Args:
        image: anything :func:`oaenet_helpers.faces.load_image` accepts.
        landmarks: ``(68, 2)`` pixel ``(x, y)`` of the face.
        label: canonical label 0-6 (6, neutral, returns a copy).
        intensity: multiplies every unit's displacement.

    Returns:
        ``(image, landmarks)``: ``(H, W, 3)`` uint8 and ``(68, 2)`` float32.
    """
    from skimage.transform import PiecewiseAffineTransform, warp

    from oaenet_helpers.faces import check_landmarks, load_image

    rgb = load_image(image)
    points = check_landmarks(landmarks).astype(np.float64)
    name = CLASS_NAMES[_check_label(label)]
    motion = np.zeros((68, 2))
    for unit in CLASS_ACTION_UNITS[name]:
        motion += AU_DISPLACEMENTS[unit]
    if not motion.any() or intensity == 0:
        return rgb.copy(), points.astype(np.float32)

    eye_line = points[45] - points[36]
    pixels_per_unit = float(np.linalg.norm(eye_line)) / _TEMPLATE_EYE_SPAN
    angle = math.atan2(eye_line[1], eye_line[0])
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    moved = points + intensity * pixels_per_unit * motion @ rotation.T

    height, width = rgb.shape[:2]
    centre = points.mean(axis=0)
    ring_angles = np.linspace(0.0, 2 * np.pi, 16, endpoint=False)
    radius = 1.5 * np.abs(points - centre).max(axis=0)
    ring = centre + radius * np.stack([np.cos(ring_angles), np.sin(ring_angles)], axis=1)
    border = np.array(
        [[0, 0], [width - 1, 0], [0, height - 1], [width - 1, height - 1],
         [(width - 1) / 2, 0], [(width - 1) / 2, height - 1], [0, (height - 1) / 2], [width - 1, (height - 1) / 2]],
        dtype=np.float64,
    )
    fixed = np.vstack([ring, border])
    # warp() needs the map from output pixels to input pixels.
    source, target = np.vstack([moved, fixed]), np.vstack([points, fixed])
    if hasattr(PiecewiseAffineTransform, "from_estimate"):  # scikit-image >= 0.26
        transform = PiecewiseAffineTransform.from_estimate(source, target)
    else:
        transform = PiecewiseAffineTransform()
        transform = transform if transform.estimate(source, target) else None
    if not transform:
        raise ValueError("The landmarks do not give a valid triangulation; check they are 68 distinct iBUG points.")
    warped = warp(rgb, transform, output_shape=(height, width), order=1, preserve_range=True, mode="edge")
    return np.clip(np.round(warped), 0, 255).astype(np.uint8), moved.astype(np.float32)
