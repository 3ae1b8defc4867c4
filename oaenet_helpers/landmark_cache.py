"""Detect the 68 landmarks of many images once, and keep them on disk.

Datasets such as RAF-DB, FER2013 and CK+ without its landmark files come
without 68-point landmarks, and dlib takes tens of milliseconds per image.
:func:`landmarks_for` runs the detector over a list of files in several
processes and stores one small file per image, named by the SHA-256 of the
file's bytes, in a folder named by the detector settings. Hence:

* a renamed or copied image is not detected again, and an edited one is;
* changing the detector settings starts a separate cache;
* an interrupted run loses at most the images in flight. Every result is
  written to a temporary file and renamed into place (``os.replace`` is atomic
  on one file system), so a rerun finds every finished image and computes only
  the rest.

Images where no face was found or that could not be decoded are cached too, so
they are reported on every run without running the detector again.

Layout::

    cache_dir/landmarks-v1/<settings key>/settings.json
    cache_dir/landmarks-v1/<settings key>/ab/abcdef....npy   # (68, 2) float32
    cache_dir/landmarks-v1/<settings key>/12/123456....fail  # reason, UTF-8 text
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import logging
import multiprocessing
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional, Protocol, Sequence, Union

import numpy as np
from tqdm.auto import tqdm

from oaenet_helpers.faces import ImageLoadError, NoFaceError, check_landmarks, detect_face, landmark_model_path, load_image

logger = logging.getLogger(__name__)

CACHE_VERSION = 1
PathLike = Union[str, os.PathLike]


class LandmarkDetector(Protocol):
    """A picklable callable that returns ``(68, 2)`` landmarks of the main face.

    It raises :class:`~oaenet_helpers.faces.NoFaceError` when there is no face,
    and ``key`` names its settings (part of the cache key).
    """

    key: str

    def __call__(self, image: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class DlibDetector:
    """dlib's frontal detector and 68-point predictor (see :func:`~oaenet_helpers.faces.detect_face`).

    Attributes:
        upsample: times the image is doubled before detection; 1 or 2 finds
            faces smaller than about 80 px (FER2013's 48 px crops) at about
            4x or 16x the time.
    """

    upsample: int = 0

    @property
    def key(self) -> str:
        model = landmark_model_path()
        return f"dlib-frontal+{model.name}:{model.stat().st_size}:upsample={self.upsample}"

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return detect_face(image, upsample=self.upsample).landmarks


@dataclass(frozen=True)
class LandmarkFailure:
    """An image without landmarks: its path and why (no face, unreadable, missing)."""

    path: str
    reason: str


@dataclass
class LandmarkResult:
    """Landmarks of every input path, the failures and where they came from.

    Attributes:
        landmarks: one entry per input path, in input order: ``(68, 2)``
            float32 pixels, or ``None`` where the image is listed in ``failures``.
        failures: every path without landmarks, with the reason.
        computed: images the detector ran on in this call.
        cached: images whose result came from the cache.
    """

    landmarks: list[Optional[np.ndarray]]
    failures: list[LandmarkFailure] = field(default_factory=list)
    computed: int = 0
    cached: int = 0

    def summary(self) -> str:
        """Return one line with the counts."""
        found = sum(item is not None for item in self.landmarks)
        return (
            f"{found} of {len(self.landmarks)} images have landmarks "
            f"({self.computed} detected now, {self.cached} from the cache, {len(self.failures)} without)"
        )


def settings_key(detector: LandmarkDetector) -> str:
    """Return the folder name for a detector's results (16 hex digits)."""
    return hashlib.sha256(f"v{CACHE_VERSION}|{detector.key}".encode()).hexdigest()[:16]


def file_digest(path: PathLike) -> str:
    """Return the SHA-256 of a file's bytes as 64 hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _entry(folder: Path, digest: str) -> Path:
    return folder / digest[:2] / digest


def _read_entry(base: Path) -> Optional[Union[np.ndarray, str]]:
    """Return cached landmarks, a cached failure reason, or None when not cached."""
    found = base.with_suffix(".npy")
    if found.is_file():
        return np.load(found)
    failed = base.with_suffix(".fail")
    if failed.is_file():
        return failed.read_text(encoding="utf-8")
    return None


def _write_atomic(target: Path, write: Callable[[Path], None]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    write(temporary)
    os.replace(temporary, target)


def _save_array(array: np.ndarray) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        with open(path, "wb") as handle:
            np.save(handle, array)

    return write


def _detect_and_store(path: str, base: Path, detector: LandmarkDetector) -> Union[np.ndarray, str]:
    """Run the detector on one file and cache the outcome (runs in a worker)."""
    try:
        image = load_image(path)
        landmarks = check_landmarks(detector(image))
    except NoFaceError:
        reason = "no face found"
    except ImageLoadError as err:
        reason = f"unreadable: {err}"
    else:
        _write_atomic(base.with_suffix(".npy"), _save_array(landmarks))
        return landmarks
    _write_atomic(base.with_suffix(".fail"), lambda target: target.write_text(reason, encoding="utf-8"))
    return reason


def landmarks_for(
    paths: Sequence[PathLike],
    cache_dir: PathLike,
    workers: int = 1,
    detector: Optional[LandmarkDetector] = None,
    progress: bool = True,
) -> LandmarkResult:
    """Detect and cache the 68 landmarks of every image; reuse cached ones.

    Args:
        paths: image files. Duplicates (same bytes) are detected once.
        cache_dir: folder for the cache; created if missing.
        workers: processes that run the detector; 1 runs in this process.
            Each worker loads its own dlib models (about 100 MB).
        detector: defaults to :class:`DlibDetector` with ``upsample=0``.
        progress: show a tqdm bar over the images still to detect.

    Returns:
        A :class:`LandmarkResult` whose ``landmarks`` follow the order of
        ``paths``. Missing files, unreadable files and images without a face
        are listed in ``failures`` with their reason, never dropped silently.

    Raises:
        ValueError: ``workers`` is below 1.
        Exception: whatever the detector raises other than ``NoFaceError`` or
            ``ImageLoadError`` (a bug is not turned into a failure entry).
    """
    if int(workers) != workers or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}.")
    detector = detector if detector is not None else DlibDetector()
    folder = Path(cache_dir) / f"landmarks-v{CACHE_VERSION}" / settings_key(detector)
    folder.mkdir(parents=True, exist_ok=True)
    settings_file = folder / "settings.json"
    if not settings_file.exists():
        text = json.dumps({"cache_version": CACHE_VERSION, "detector": detector.key}, indent=2)
        _write_atomic(settings_file, lambda target: target.write_text(text, encoding="utf-8"))

    names = [os.fspath(path) for path in paths]
    outcomes: dict[str, Union[np.ndarray, str]] = {}
    digests: list[Optional[str]] = []
    missing: dict[str, str] = {}
    todo: dict[str, str] = {}  # digest -> one path with that content
    cached = 0
    for name in names:
        if not os.path.isfile(name):
            digests.append(None)
            missing[name] = "file not found"
            continue
        digest = file_digest(name)
        digests.append(digest)
        if digest in outcomes or digest in todo:
            continue
        stored = _read_entry(_entry(folder, digest))
        if stored is None:
            todo[digest] = name
        else:
            outcomes[digest] = stored
            cached += 1

    logger.info(
        "Landmarks for %d images: %d unique cached, %d to detect with %d worker(s) in %s",
        len(names), cached, len(todo), workers, folder,
    )
    bar = tqdm(total=len(todo), desc="landmarks", unit="img", disable=not progress or not todo)
    try:
        if workers == 1 or len(todo) <= 1:
            for digest, name in todo.items():
                outcomes[digest] = _detect_and_store(name, _entry(folder, digest), detector)
                bar.update()
        else:
            _detect_in_processes(todo, folder, detector, workers, outcomes, bar)
    finally:
        bar.close()

    result = LandmarkResult(landmarks=[], computed=len(todo), cached=cached)
    for name, digest in zip(names, digests):
        outcome = missing[name] if digest is None else outcomes[digest]
        if isinstance(outcome, str):
            result.landmarks.append(None)
            result.failures.append(LandmarkFailure(name, outcome))
        else:
            result.landmarks.append(outcome.astype(np.float32, copy=True))
    if result.failures:
        logger.warning("%s; the failures list names each file and reason.", result.summary())
    else:
        logger.info(result.summary())
    return result


def _detect_in_processes(
    todo: dict[str, str],
    folder: Path,
    detector: LandmarkDetector,
    workers: int,
    outcomes: dict[str, Union[np.ndarray, str]],
    bar: tqdm,
) -> None:
    # "spawn" because dlib and torch threads do not survive fork reliably.
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {
            pool.submit(_detect_and_store, name, _entry(folder, digest), detector): digest
            for digest, name in todo.items()
        }
        try:
            for future in concurrent.futures.as_completed(futures):
                outcomes[futures[future]] = future.result()
                bar.update()
        except BaseException:
            # Finished images are already on disk; drop the queue so an
            # interrupt returns at once.
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def cached_paths(paths: Iterable[PathLike], cache_dir: PathLike, detector: Optional[LandmarkDetector] = None) -> int:
    """Count how many of ``paths`` already have a cached result (landmarks or failure)."""
    detector = detector if detector is not None else DlibDetector()
    folder = Path(cache_dir) / f"landmarks-v{CACHE_VERSION}" / settings_key(detector)
    count = 0
    for path in paths:
        if os.path.isfile(path) and _read_entry(_entry(folder, file_digest(path))) is not None:
            count += 1
    return count
