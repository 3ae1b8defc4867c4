"""Loading images, finding faces and 68 landmarks, aligning and cropping.

OAENet works on a face that is rotated so the eyes are level and cropped to a
square around eyes and mouth. This module does each step with dlib's frontal
face detector (HOG + linear SVM) and its 68-point shape predictor, which is
trained on iBUG 300-W and ships in the ``face-recognition-models`` package.

Landmarks are ``(68, 2)`` float32 arrays of ``(x, y)`` pixel coordinates in the
iBUG 68-point order: 0-16 jaw, 17-21 and 22-26 brows, 27-35 nose, 36-41 and
42-47 eyes, 48-67 mouth. Points 36-41 are the subject's right eye, which sits
on the left of the picture.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

logger = logging.getLogger(__name__)

ImageSource = Union[str, os.PathLike, bytes, bytearray, Image.Image, np.ndarray]

N_LANDMARKS = 68

#: Index ranges of the iBUG 68-point groups, as ``slice`` objects.
LANDMARK_GROUPS: dict[str, slice] = {
    "jaw": slice(0, 17),
    "brows": slice(17, 27),
    "nose": slice(27, 36),
    "eyes": slice(36, 48),
    "mouth": slice(48, 68),
}

RIGHT_EYE = slice(36, 42)  # subject's right eye, left side of the picture
LEFT_EYE = slice(42, 48)
MOUTH = slice(48, 68)

# Rule of the official crop: the box starts this fraction of the eye-to-mouth
# distance above the eye line and ends one such distance below the mouth.
CROP_ABOVE_EYES = 6 / 7
CROP_BELOW_MOUTH = 1.0

_PREDICTOR_PACKAGE = "face_recognition_models"
_PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"


class ImageLoadError(ValueError):
    """An image source could not be read or converted to RGB."""


class NoFaceError(RuntimeError):
    """The detector found no face in an image."""


class LandmarkModelNotFoundError(ImportError):
    """dlib's 68-point shape predictor file is not installed."""


@dataclass(frozen=True)
class Face:
    """One detected face.

    Attributes:
        box: ``(left, top, right, bottom)`` in pixels; may reach outside the image.
        landmarks: ``(68, 2)`` float32 ``(x, y)`` in the iBUG order.
        score: detector confidence (dlib's SVM margin; larger is surer).
    """

    box: tuple[int, int, int, int]
    landmarks: np.ndarray
    score: float

    @property
    def area(self) -> int:
        left, top, right, bottom = self.box
        return max(0, right - left) * max(0, bottom - top)


@dataclass(frozen=True)
class AlignedFace:
    """A face rotated so the eyes are level and cropped to a square.

    Attributes:
        image: ``(size, size, 3)`` uint8 RGB.
        landmarks: ``(68, 2)`` float32 in the crop's pixel coordinates.
        matrix: ``(2, 3)`` float64 affine map from source to crop pixels.
    """

    image: np.ndarray
    landmarks: np.ndarray
    matrix: np.ndarray


# --------------------------------------------------------------------------
# Loading


def _describe(source: ImageSource) -> str:
    if isinstance(source, (str, os.PathLike)):
        return f"'{os.fspath(source)}'"
    if isinstance(source, (bytes, bytearray)):
        return f"<{len(source)} bytes>"
    if isinstance(source, np.ndarray):
        return f"<array shape={source.shape} dtype={source.dtype}>"
    return f"<{type(source).__name__}>"


def load_image(source: ImageSource) -> np.ndarray:
    """Load an image as a ``(H, W, 3)`` uint8 RGB array.

    Accepts a file path, encoded bytes, a PIL image or a NumPy array. EXIF
    orientation is applied. Grayscale (2-D or one channel) is repeated to three
    channels, and an alpha channel is composited onto white. Pillow converts
    palette, CMYK and YCbCr images. 16-bit data is scaled to 8 bits
    (``round(v / 257)``), not truncated. Float arrays are read as ``[0, 1]``
    when their maximum is at most 1, else as ``[0, 255]``.
    The input is never modified and the result never shares its memory.

    Raises:
        ImageLoadError: the source is missing, empty, truncated, not an image,
            or an array of unsupported shape, dtype or with NaN values. The
            message names the source.
    """
    name = _describe(source)
    if isinstance(source, np.ndarray):
        return _array_to_rgb(source, name)
    if isinstance(source, Image.Image):
        return _pil_to_rgb(source, name)
    if isinstance(source, (bytes, bytearray)):
        if len(source) == 0:
            raise ImageLoadError(f"Cannot load image from {name}: the byte string is empty.")
        return _open_and_convert(io.BytesIO(bytes(source)), name)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            raise ImageLoadError(f"Cannot load image {name}: it is a directory; pass the path of an image file.")
        if not path.is_file():
            raise ImageLoadError(f"Cannot load image {name}: file not found.")
        if path.stat().st_size == 0:
            raise ImageLoadError(f"Cannot load image {name}: the file is empty (0 bytes).")
        return _open_and_convert(path, name)
    raise ImageLoadError(
        f"Cannot load image from {name}: expected a path, bytes, a PIL image or a NumPy array."
    )


def _open_and_convert(fp, name: str) -> np.ndarray:
    try:
        with Image.open(fp) as img:
            # load() decodes the pixels now, so a truncated file fails here
            # with its name rather than later inside a numpy call.
            img.load()
            return _pil_to_rgb(img, name)
    except UnidentifiedImageError as err:
        raise ImageLoadError(f"Cannot load image {name}: not a recognised image format.") from err
    except (OSError, SyntaxError, ValueError) as err:
        if isinstance(err, ImageLoadError):
            raise
        raise ImageLoadError(f"Cannot load image {name}: the file is corrupt or truncated ({err}).") from err


def _pil_to_rgb(img: Image.Image, name: str) -> np.ndarray:
    img = ImageOps.exif_transpose(img)
    mode = img.mode
    if mode in ("RGB", "L", "RGBA", "LA"):
        return _array_to_rgb(np.asarray(img), name)
    if mode == "1":
        return _array_to_rgb(np.asarray(img.convert("L")), name)
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in img.info
        return _array_to_rgb(np.asarray(img.convert("RGBA" if has_alpha else "RGB")), name)
    if mode.startswith("I;16") or mode in ("I", "F"):
        array = np.asarray(img)
        if mode == "I" and array.size and array.max() > 255:
            array = array.astype(np.uint16) if array.max() <= 65535 else array
        if mode.startswith("I;16"):
            array = array.astype(np.uint16)
        return _array_to_rgb(array, name)
    # Pillow converts the remaining modes (CMYK, YCbCr, LAB, HSV, RGBX) itself.
    return _array_to_rgb(np.asarray(img.convert("RGB")), name)


def _to_uint8(array: np.ndarray, name: str) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if array.dtype == np.uint16:
        return np.round(array.astype(np.float32) / 257.0).astype(np.uint8)
    if np.issubdtype(array.dtype, np.integer):
        if array.size and (array.min() < 0 or array.max() > 65535):
            raise ImageLoadError(
                f"Cannot load image from {name}: integer values span "
                f"[{array.min()}, {array.max()}], outside 8- or 16-bit range."
            )
        if array.size and array.max() > 255:
            return np.round(array.astype(np.float32) / 257.0).astype(np.uint8)
        return array.astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            raise ImageLoadError(f"Cannot load image from {name}: the array contains NaN or infinite values.")
        scale = 255.0 if array.size and array.max() <= 1.0 else 1.0
        return np.clip(np.round(array.astype(np.float32) * scale), 0, 255).astype(np.uint8)
    raise ImageLoadError(f"Cannot load image from {name}: unsupported dtype {array.dtype}.")


def _array_to_rgb(array: np.ndarray, name: str) -> np.ndarray:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (2, 3, 4)):
        raise ImageLoadError(
            f"Cannot load image from {name}: expected shape (H, W), (H, W, 1), (H, W, 3) "
            f"or (H, W, 4), got {array.shape}."
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageLoadError(f"Cannot load image from {name}: the image has no pixels {array.shape}.")
    array = _to_uint8(array, name)
    if array.ndim == 2:
        return np.repeat(array[:, :, None], 3, axis=2)
    channels = array.shape[2]
    if channels in (2, 4):
        colour = array[:, :, :1] if channels == 2 else array[:, :, :3]
        alpha = array[:, :, -1:].astype(np.float32) / 255.0
        blended = colour.astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        rgb = np.round(blended).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(rgb, 3, axis=2) if channels == 2 else rgb)
    return np.array(array, dtype=np.uint8, copy=True, order="C")


def sample_image(name: str) -> np.ndarray:
    """Load one of the public-domain portraits that ship in installed packages.

    Args:
        name: ``"astronaut"`` (Eileen Collins, NASA, from scikit-image) or
            ``"grace_hopper"`` (U.S. Navy, from matplotlib's sample data).

    Returns:
        ``(H, W, 3)`` uint8 RGB.
    """
    if name == "astronaut":
        from skimage import data

        return load_image(data.astronaut())
    if name == "grace_hopper":
        from matplotlib import cbook

        with cbook.get_sample_data("grace_hopper.jpg") as handle:
            return load_image(handle.read())
    raise ValueError(f"Unknown sample image {name!r}; choose 'astronaut' or 'grace_hopper'.")


# --------------------------------------------------------------------------
# Detection


def landmark_model_path() -> Path:
    """Locate dlib's 68-point predictor inside ``face_recognition_models``.

    The package is located without importing it, because its ``__init__``
    imports ``pkg_resources``, which current setuptools no longer provides.

    Raises:
        LandmarkModelNotFoundError: the package or its model file is missing.
    """
    spec = importlib.util.find_spec(_PREDICTOR_PACKAGE)
    hint = "Install it with: pip install face-recognition-models==0.3.0"
    if spec is None or not spec.submodule_search_locations:
        raise LandmarkModelNotFoundError(
            f"The package 'face-recognition-models' (module {_PREDICTOR_PACKAGE}) is not installed. {hint}"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "models" / _PREDICTOR_FILE
        if candidate.is_file():
            return candidate
    raise LandmarkModelNotFoundError(
        f"'{_PREDICTOR_FILE}' was not found inside the installed 'face-recognition-models' "
        f"({list(spec.submodule_search_locations)}). Reinstall it. {hint}"
    )


@functools.lru_cache(maxsize=1)
def _dlib_models():
    import dlib

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(landmark_model_path()))
    logger.debug("Loaded dlib detector and predictor from %s", landmark_model_path())
    return detector, predictor


def predict_landmarks(image: ImageSource, box: tuple[int, int, int, int]) -> np.ndarray:
    """Fit the 68 landmarks inside a given face box ``(left, top, right, bottom)``.

    Use this when a dataset provides face boxes (AffectNet does) or when the
    detector misses a face whose box you know.
    """
    import dlib

    rgb = load_image(image)
    _, predictor = _dlib_models()
    left, top, right, bottom = (int(round(v)) for v in box)
    if right <= left or bottom <= top:
        raise ValueError(f"Invalid face box {box}: right must exceed left and bottom must exceed top.")
    shape = predictor(rgb, dlib.rectangle(left, top, right, bottom))
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)


def detect_faces(image: ImageSource, upsample: int = 0) -> list[Face]:
    """Find every frontal face and its 68 landmarks, largest face first.

    Args:
        image: anything :func:`load_image` accepts.
        upsample: how many times dlib doubles the image before detecting.
            The detector's smallest face is about 80×80 pixels; each step
            halves that and costs about four times the time.

    Returns:
        A list of :class:`Face`, possibly empty.
    """
    if not isinstance(upsample, int) or upsample < 0:
        raise ValueError(f"upsample must be a non-negative integer, got {upsample!r}.")
    import dlib

    rgb = load_image(image)
    detector, predictor = _dlib_models()
    rects, scores, _ = detector.run(rgb, upsample, 0.0)
    faces = []
    for rect, score in zip(rects, scores):
        shape = predictor(rgb, rect)
        points = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)
        box = (rect.left(), rect.top(), rect.right(), rect.bottom())
        faces.append(Face(box=box, landmarks=points, score=float(score)))
    faces.sort(key=lambda face: face.area, reverse=True)
    logger.debug("Found %d face(s) in a %dx%d image", len(faces), rgb.shape[1], rgb.shape[0])
    return faces


def detect_face(image: ImageSource, upsample: int = 0) -> Face:
    """Return the largest face, or raise :class:`NoFaceError` if there is none."""
    rgb = load_image(image)
    faces = detect_faces(rgb, upsample=upsample)
    if not faces:
        height, width = rgb.shape[:2]
        raise NoFaceError(
            f"No face found in the {width}x{height} image (upsample={upsample}). "
            "For small faces try upsample=1 or 2; if the image is already a face crop "
            "(FER2013, aligned RAF-DB), pass the dataset's landmarks instead of detecting."
        )
    return faces[0]


# --------------------------------------------------------------------------
# Alignment


def check_landmarks(landmarks, name: str = "landmarks") -> np.ndarray:
    """Validate and convert landmarks to a ``(68, 2)`` float32 array.

    Accepts lists, tuples or arrays of ints or floats.

    Raises:
        ValueError: wrong shape, or a NaN/infinite coordinate (the message names
            the first bad index).
    """
    try:
        points = np.asarray(landmarks, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be numbers of shape (68, 2): {err}") from err
    if points.shape != (N_LANDMARKS, 2):
        raise ValueError(f"{name} must have shape (68, 2) as (x, y) pairs, got {points.shape}.")
    bad = np.flatnonzero(~np.isfinite(points).all(axis=1))
    if bad.size:
        raise ValueError(
            f"{name} contain NaN or infinite coordinates at index {int(bad[0])} "
            f"({bad.size} point(s) in all); drop that face or re-run the detector."
        )
    return points


def eye_centres(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the centres of the eye on the picture's left and on its right."""
    points = check_landmarks(landmarks)
    return points[RIGHT_EYE].mean(axis=0), points[LEFT_EYE].mean(axis=0)


def alignment_matrix(landmarks, size: int = 224) -> np.ndarray:
    """Compute the ``(2, 3)`` affine map from image pixels to the aligned crop.

    The map rotates about the midpoint between the eyes so the eye line is
    level, then scales and shifts so the square box that spans from
    ``CROP_ABOVE_EYES`` × *d* above the eye line to ``CROP_BELOW_MOUTH`` × *d*
    below the mouth centre (*d* = eye-to-mouth distance) fills ``size`` pixels.
    The box is centred horizontally between the eye midpoint and the mouth.
    """
    points = check_landmarks(landmarks)
    if size < 8:
        raise ValueError(f"size must be at least 8 pixels, got {size}.")
    eye_a, eye_b = eye_centres(points)
    mouth = points[MOUTH].mean(axis=0)
    eye_mid = (eye_a + eye_b) / 2.0
    angle = math.atan2(float(eye_b[1] - eye_a[1]), float(eye_b[0] - eye_a[0]))
    cos, sin = math.cos(-angle), math.sin(-angle)
    rotation = np.array([[cos, -sin], [sin, cos]])

    # Positions in a frame centred on the eye midpoint with a level eye line.
    mouth_r = rotation @ (mouth - eye_mid)
    eye_to_mouth = float(mouth_r[1])
    if eye_to_mouth <= 1.0:
        raise ValueError(
            "Landmarks give a mouth that is not below the eyes after levelling "
            f"(eye-to-mouth distance {eye_to_mouth:.2f} px); check the landmark order is iBUG 68."
        )
    top = -CROP_ABOVE_EYES * eye_to_mouth
    bottom = eye_to_mouth + CROP_BELOW_MOUTH * eye_to_mouth
    side = bottom - top
    centre_x = float(mouth_r[0]) / 2.0
    left = centre_x - side / 2.0

    scale = size / side
    linear = scale * rotation
    offset = -linear @ eye_mid - scale * np.array([left, top])
    return np.hstack([linear, offset[:, None]])


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a ``(2, 3)`` affine matrix to ``(N, 2)`` points."""
    points = np.asarray(points, dtype=np.float64)
    return (points @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)


def align_and_crop(image: ImageSource, landmarks, size: int = 224) -> AlignedFace:
    """Rotate the eye line level and crop a ``size``×``size`` face.

    Parts of the box outside the image are filled with black (padded, never
    shifted back inside), so the face keeps the same place in every crop.
    Neither input is modified.
    """
    rgb = load_image(image)
    matrix = alignment_matrix(landmarks, size=size)
    # Downscaling a large photo with bilinear sampling aliases; blur first by
    # the amount the crop shrinks it.
    scale = math.hypot(matrix[0, 0], matrix[1, 0])
    source = rgb
    if scale < 0.5:
        sigma = 0.5 / scale
        source = cv2.GaussianBlur(rgb, (0, 0), sigmaX=sigma, sigmaY=sigma)
    crop = cv2.warpAffine(
        source,
        matrix,
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )
    points = transform_points(check_landmarks(landmarks), matrix)
    return AlignedFace(image=crop, landmarks=points, matrix=matrix)


def detect_and_align(image: ImageSource, size: int = 224, upsample: int = 0, landmarks=None) -> AlignedFace:
    """Detect the largest face (unless ``landmarks`` are given) and align it."""
    rgb = load_image(image)
    if landmarks is None:
        landmarks = detect_face(rgb, upsample=upsample).landmarks
    return align_and_crop(rgb, landmarks, size=size)


def landmarks_for(paths, cache_dir, workers: int = 1, **kwargs):
    """Detect and cache the 68 landmarks of many image files.

    See :func:`oaenet_helpers.landmark_cache.landmarks_for`; imported on call
    because that module imports this one.
    """
    from oaenet_helpers.landmark_cache import landmarks_for as _landmarks_for

    return _landmarks_for(paths, cache_dir, workers=workers, **kwargs)
