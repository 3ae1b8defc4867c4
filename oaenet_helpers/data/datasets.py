"""Loaders for the real expression datasets, from a folder the user names.

Every loader returns a :class:`FaceDataset`, a ``torch.utils.data.Dataset``
whose items are :class:`~oaenet_helpers.data.sample.Sample` ``(image,
landmarks, label)`` with canonical labels (:mod:`oaenet_helpers.data.labels`).

Expected layouts (only the parts read here):

* RAF-DB basic: ``EmoLabel/list_patition_label.txt`` and ``Image/aligned/``
  (``train_00001_aligned.jpg``) or ``Image/original/`` (``train_00001.jpg``).
* AffectNet: ``training.csv``, ``validation.csv`` and
  ``Manually_Annotated_Images/<subDirectory_filePath>``.
* CK+: ``cohn-kanade-images/S005/001/S005_001_00000001.png``,
  ``Emotion/S005/001/S005_001_00000011_emotion.txt`` and, when present,
  ``Landmarks/S005/001/S005_001_00000001_landmarks.txt``.
* FER2013: ``fer2013.csv`` (``emotion,pixels,Usage``) or the image-folder
  variant ``train/<class name>/*.png`` and ``test/<class name>/*.png``.
* Seed list: a text file of ``relative/path.jpg<TAB>label`` lines, labels in
  canonical order, paths relative to the list's folder.

Landmarks come from the dataset where it has 68 points (AffectNet, CK+) and
otherwise from the landmark cache (:func:`oaenet_helpers.landmark_cache.landmarks_for`),
which needs ``cache_dir``. Missing files, malformed rows, unreadable images and
faces without landmarks are left out of the dataset and listed in its
:class:`DatasetReport` (counts in the log, one line per problem in a TSV file).
With ``landmarks="skip"`` no image is decoded up front, so an unreadable file
raises :class:`~oaenet_helpers.faces.ImageLoadError` naming it when it is read,
and :func:`~oaenet_helpers.data.prepare.prepare` lists it in its failures.
A label outside the dataset's coding raises :class:`~oaenet_helpers.data.labels.LabelError`.
"""

from __future__ import annotations

import collections
import csv
import hashlib
import logging
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Literal, Optional, Sequence, Union

import numpy as np
from torch.utils.data import Dataset

from oaenet_helpers.data.labels import (
    CLASS_NAMES,
    EXCLUDED,
    FER_FOLDER_NAMES,
    LabelError,
    NUM_BASIC,
    class_names,
    parse_native,
    to_canonical,
)
from oaenet_helpers.data.sample import Sample, no_landmarks
from oaenet_helpers.faces import ImageLoadError, load_image

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]
LandmarkMode = Literal["auto", "skip"]
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class Record:
    """One labelled image as the index file describes it.

    Attributes:
        path: image file, or ``<csv>#<line>`` for FER2013 rows held in ``pixels``.
        label: canonical label.
        landmarks: ``(68, 2)`` float32 from the dataset, or None.
        split: the dataset's split name (``train``, ``test``, ``validation``, ...).
        subject: subject id where the dataset has one (CK+).
        pixels: ``(H, W)`` uint8 image for datasets stored inside a CSV file.
    """

    path: str
    label: int
    landmarks: Optional[np.ndarray] = None
    split: str = ""
    subject: str = ""
    pixels: Optional[np.ndarray] = None


@dataclass(frozen=True)
class Problem:
    """A file or row left out of a dataset, with where and why."""

    path: str
    line: Optional[int]
    reason: str

    @property
    def kind(self) -> str:
        """The reason up to its first colon, used to count problems by kind."""
        return self.reason.split(":", 1)[0]


@dataclass
class DatasetReport:
    """Everything a loader left out.

    Attributes:
        problems: files or rows that could not be used (missing, malformed,
            unreadable, no face found).
        excluded: counts of rows skipped on purpose by their native label
            (AffectNet "none", "uncertain", "no-face"; contempt with 7 classes).
    """

    problems: list[Problem] = field(default_factory=list)
    excluded: collections.Counter = field(default_factory=collections.Counter)

    def counts(self) -> dict[str, int]:
        """Return the number of problems of each kind (``file not found``, ...)."""
        return dict(collections.Counter(problem.kind for problem in self.problems))

    def summary(self) -> str:
        """Return one line with all counts."""
        parts = [f"{count} {kind}" for kind, count in sorted(self.counts().items())]
        parts += [f"{count} excluded ({name})" for name, count in sorted(self.excluded.items())]
        return ", ".join(parts) if parts else "no problems"

    def write(self, path: PathLike) -> Path:
        """Write one tab-separated line per problem (path, line, reason); return the path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
            writer.writerow(["path", "line", "reason"])
            for problem in self.problems:
                writer.writerow([problem.path, "" if problem.line is None else problem.line, problem.reason])
        return target


class FaceDataset(Dataset):
    """A labelled face dataset read from disk.

    Args:
        records: the usable images (already filtered for existence).
        report: problems found while reading the index.
        name: short dataset name, used in logs and file names.
        landmarks: ``"auto"`` takes the dataset's landmarks or detects them
            through the cache. ``"skip"`` yields ``(0, 2)`` landmarks and
            opens no detector, for models that need no mask.
        cache_dir: landmark cache folder; required when ``"auto"`` must detect.
        workers: processes for landmark detection.
        detector: see :func:`oaenet_helpers.landmark_cache.landmarks_for`.
        report_file: where to write the problem list; defaults to
            ``cache_dir/<name>-problems.tsv`` when ``cache_dir`` is given.
        num_classes: 7, or 8 to keep contempt.
        transform: applied to each :class:`Sample` before it is returned.
    """

    def __init__(
        self,
        records: Sequence[Record],
        report: DatasetReport,
        name: str,
        landmarks: LandmarkMode = "auto",
        cache_dir: Optional[PathLike] = None,
        workers: int = 1,
        detector=None,
        report_file: Optional[PathLike] = None,
        num_classes: int = NUM_BASIC,
        transform: Optional[Callable[[Sample], object]] = None,
    ) -> None:
        if landmarks not in ("auto", "skip"):
            raise ValueError(f"landmarks must be 'auto' or 'skip', got {landmarks!r}.")
        self.name = name
        self.num_classes = num_classes
        self.landmark_mode = landmarks
        self.transform = transform
        self.report = report
        records = list(records)
        if landmarks == "auto":
            records = self._fill_landmarks(records, cache_dir, workers, detector)
        self.records = records
        self.report_file: Optional[Path] = None
        if report_file is None and cache_dir is not None and report.problems:
            report_file = Path(cache_dir) / f"{name}-problems.tsv"
        if report_file is not None:
            self.report_file = report.write(report_file)
        message = "%s: %d images; left out: %s%s"
        where = f" (details in {self.report_file})" if self.report_file else ""
        if report.problems:
            hint = where or " (details in dataset.report.problems; pass report_file= to write them)"
            logger.warning(message, name, len(records), report.summary(), hint)
        else:
            logger.info(message, name, len(records), report.summary(), where)

    # -- landmarks ---------------------------------------------------------

    def _fill_landmarks(self, records: list[Record], cache_dir, workers: int, detector) -> list[Record]:
        need = [index for index, record in enumerate(records) if record.landmarks is None]
        if not need:
            return records
        if cache_dir is None:
            raise ValueError(
                f"{self.name}: {len(need)} images have no landmarks in the dataset, so they must be "
                "detected: pass cache_dir= (a folder for the landmark cache), or landmarks='skip'."
            )
        from oaenet_helpers.landmark_cache import landmarks_for

        paths = [self._image_file(records[index], Path(cache_dir)) for index in need]
        result = landmarks_for(paths, cache_dir, workers=workers, detector=detector)
        failed = {}
        for index, points, path in zip(need, result.landmarks, paths):
            if points is None:
                failed[index] = path
            else:
                records[index] = replace(records[index], landmarks=points)
        reasons = {failure.path: failure.reason for failure in result.failures}
        for index, path in failed.items():
            self.report.problems.append(Problem(records[index].path, None, reasons[path]))
        return [record for index, record in enumerate(records) if index not in failed]

    @staticmethod
    def _image_file(record: Record, cache_dir: Path) -> str:
        """Return a file holding the record's image; CSV rows are written out as PNG once."""
        if record.pixels is None:
            return record.path
        from PIL import Image

        digest = hashlib.sha256(record.pixels.tobytes()).hexdigest()
        target = cache_dir / "csv-images" / digest[:2] / f"{digest}.png"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            Image.fromarray(record.pixels).save(temporary, format="PNG")
            os.replace(temporary, target)
        return os.fspath(target)

    # -- Dataset protocol ----------------------------------------------------

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> Sample:
        record = self.records[index]
        image = load_image(record.pixels if record.pixels is not None else record.path)
        if self.landmark_mode == "skip" or record.landmarks is None:
            points = no_landmarks()
        else:
            points = record.landmarks.astype(np.float32, copy=True)
        sample = Sample(image, points, record.label)
        return self.transform(sample) if self.transform is not None else sample

    @property
    def labels(self) -> np.ndarray:
        """``(N,)`` int64 canonical label of every item."""
        return np.array([record.label for record in self.records], dtype=np.int64)

    @property
    def classes(self) -> tuple[str, ...]:
        """Canonical class names of this dataset's label space."""
        return class_names(self.num_classes)

    def class_counts(self):
        """Return a pandas DataFrame with one row per (split, class): ``split, label, class, count``."""
        import pandas as pd

        counter = collections.Counter((record.split, record.label) for record in self.records)
        splits = sorted({record.split for record in self.records})
        rows = [
            {"split": split, "label": label, "class": CLASS_NAMES[label], "count": counter.get((split, label), 0)}
            for split in splits
            for label in range(self.num_classes)
        ]
        return pd.DataFrame(rows, columns=["split", "label", "class", "count"])

    def fingerprint(self) -> str:
        """Return a key that changes when any record, file size or file time changes.

        NOTE: file contents are not hashed, because that would read the whole
        dataset. An edit that keeps a file's size and modification time is not seen.
        """
        digest = hashlib.sha256(f"{type(self).__name__}|{self.name}|{self.landmark_mode}".encode())
        for record in self.records:
            if record.pixels is not None:
                digest.update(record.pixels.tobytes())
            else:
                stat = os.stat(record.path)
                digest.update(f"{record.path}|{stat.st_size}|{stat.st_mtime_ns}".encode())
            digest.update(f"|{record.label}|{record.split}".encode())
            if record.landmarks is not None and self.landmark_mode == "auto":
                digest.update(np.ascontiguousarray(record.landmarks, dtype=np.float32).tobytes())
        return digest.hexdigest()[:16]

    def subset(self, indices: Iterable[int]) -> "FaceDataset":
        """Return a dataset of the given items that shares this one's settings."""
        chosen = [self.records[int(index)] for index in indices]
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.records = chosen
        return clone


# --------------------------------------------------------------------------
# Parsing helpers


def _existing(path: Path, report: DatasetReport, line: Optional[int], index_file: Path) -> bool:
    if path.is_file():
        return True
    report.problems.append(
        Problem(os.fspath(path), line, f"file not found: listed in '{index_file}' but missing on disk")
    )
    return False


def _require(path: Path, description: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{description} not found at '{path}'. Check the dataset root and its folder layout.")
    return path


def _check_split(split: str, valid: Sequence[str]) -> str:
    if split not in valid:
        raise ValueError(f"split must be one of {list(valid)}, got {split!r}.")
    return split


def parse_landmark_text(text: str, source: str) -> np.ndarray:
    """Parse 68 ``(x, y)`` pairs written as 136 numbers separated by ``;``, commas or whitespace.

    Raises:
        ValueError: not exactly 136 finite numbers; the message names ``source``.
    """
    fields = [item for item in re.split(r"[;,\s]+", text.strip()) if item]
    try:
        values = np.array([float(item) for item in fields], dtype=np.float32)
    except ValueError as err:
        raise ValueError(f"malformed landmarks: {err} in {source}") from None
    if values.size != 136:
        raise ValueError(f"malformed landmarks: expected 136 numbers (68 x, y pairs), got {values.size} in {source}")
    if not np.isfinite(values).all():
        raise ValueError(f"malformed landmarks: NaN or infinite values in {source}")
    return values.reshape(68, 2)


# --------------------------------------------------------------------------
# Loaders


def rafdb(
    root: PathLike,
    split: str = "train",
    variant: Literal["aligned", "original"] = "aligned",
    **options,
) -> FaceDataset:
    """Open RAF-DB basic (7 classes); the split comes from the file name prefix.

    Args:
        root: the folder holding ``EmoLabel/`` and ``Image/``.
        split: ``"train"``, ``"test"`` or ``"all"``.
        variant: ``"aligned"`` (100x100 crops) or ``"original"`` (full images).
        **options: passed to :class:`FaceDataset` (``cache_dir``, ``workers``, ...).
    """
    _check_split(split, ("train", "test", "all"))
    if variant not in ("aligned", "original"):
        raise ValueError(f"variant must be 'aligned' or 'original', got {variant!r}.")
    root = Path(root)
    index_file = _require(root / "EmoLabel" / "list_patition_label.txt", "RAF-DB label file")
    image_dir = _require(root / "Image" / variant, f"RAF-DB image folder ({variant})")
    report = DatasetReport()
    records = []
    for line_number, line in enumerate(index_file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2:
            report.problems.append(
                Problem(os.fspath(index_file), line_number, f"malformed row: expected 'name label', got {line!r}")
            )
            continue
        name, text = fields
        label = to_canonical("rafdb", parse_native(text, "rafdb", index_file, line_number), source=index_file, line=line_number)
        row_split = name.split("_", 1)[0]
        if split != "all" and row_split != split:
            continue
        stem, suffix = os.path.splitext(name)
        path = image_dir / (f"{stem}_aligned{suffix}" if variant == "aligned" else name)
        if _existing(path, report, line_number, index_file):
            records.append(Record(os.fspath(path), label, split=row_split))
    return FaceDataset(records, report, name=f"rafdb-{variant}-{split}", **options)


def affectnet(
    root: PathLike,
    split: Literal["train", "validation"] = "train",
    num_classes: int = NUM_BASIC,
    **options,
) -> FaceDataset:
    """Open AffectNet (manually annotated part) with its 68 landmarks.

    Rows with an empty landmark field get landmarks from the cache (pass
    ``cache_dir``); rows with malformed landmarks are reported.

    Rows labelled 8 (none), 9 (uncertain), 10 (no face), and 7 (contempt)
    when ``num_classes`` is 7, are counted in ``report.excluded``.
    """
    _check_split(split, ("train", "validation"))
    class_names(num_classes)
    root = Path(root)
    index_file = _require(root / ("training.csv" if split == "train" else "validation.csv"), "AffectNet CSV")
    image_dir = _require(root / "Manually_Annotated_Images", "AffectNet image folder")
    report = DatasetReport()
    records = []
    with open(index_file, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        required = ("subDirectory_filePath", "facial_landmarks", "expression")
        if header is None or any(column not in header for column in required):
            raise ValueError(f"'{index_file}' is not an AffectNet CSV: its header must contain {list(required)}, got {header}.")
        column = {name: position for position, name in enumerate(header)}
        for line_number, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                report.problems.append(
                    Problem(os.fspath(index_file), line_number, f"malformed row: {len(row)} fields, expected {len(header)}")
                )
                continue
            native = parse_native(row[column["expression"]], "affectnet", index_file, line_number)
            label = to_canonical("affectnet", native, num_classes, source=index_file, line=line_number)
            if label is None:
                reason = EXCLUDED["affectnet"].get(native, "contempt (num_classes=7)")
                report.excluded[reason] += 1
                continue
            # An empty landmark field falls back to detection through the cache.
            points = None
            if row[column["facial_landmarks"]].strip():
                try:
                    points = parse_landmark_text(row[column["facial_landmarks"]], f"'{index_file}' line {line_number}")
                except ValueError as err:
                    report.problems.append(Problem(os.fspath(index_file), line_number, str(err)))
                    continue
            path = image_dir / row[column["subDirectory_filePath"]]
            if _existing(path, report, line_number, index_file):
                records.append(Record(os.fspath(path), label, landmarks=points, split=split))
    return FaceDataset(records, report, name=f"affectnet{num_classes}-{split}", num_classes=num_classes, **options)


def ckplus(
    root: PathLike,
    last_frames: int = 3,
    neutral_first_frame: bool = True,
    num_classes: int = NUM_BASIC,
    n_folds: int = 10,
    fold: Optional[int] = None,
    split: Literal["all", "train", "test"] = "all",
    **options,
) -> FaceDataset:
    """Open CK+ (the sequences that have an emotion label).

    Args:
        last_frames: how many frames from the end of a sequence carry its label.
        neutral_first_frame: add each labelled sequence's first frame as neutral.
        num_classes: 7 leaves contempt sequences out (counted), 8 keeps them.
        n_folds, fold, split: subject-independent folds. Subjects are sorted
            and dealt round-robin into ``n_folds`` folds; ``split="test"`` keeps
            the subjects of ``fold``, ``"train"`` all others, so no subject is
            in both.
    """
    _check_split(split, ("all", "train", "test"))
    class_names(num_classes)
    if last_frames < 1:
        raise ValueError(f"last_frames must be at least 1, got {last_frames}.")
    if split != "all" and (fold is None or not 0 <= fold < n_folds):
        raise ValueError(f"split={split!r} needs fold in 0..{n_folds - 1}, got {fold!r}.")
    root = Path(root)
    image_root = _require(root / "cohn-kanade-images", "CK+ image folder")
    emotion_root = _require(root / "Emotion", "CK+ Emotion folder")
    landmark_root = root / "Landmarks"
    report = DatasetReport()
    records = []
    for emotion_file in sorted(emotion_root.glob("*/*/*_emotion.txt")):
        subject, sequence = emotion_file.parent.parent.name, emotion_file.parent.name
        lines = [line for line in emotion_file.read_text(encoding="utf-8").splitlines() if line.strip()]
        if len(lines) != 1:
            report.problems.append(
                Problem(os.fspath(emotion_file), None, f"malformed row: expected one label line, got {len(lines)}")
            )
            continue
        label = to_canonical("ckplus", parse_native(lines[0], "ckplus", emotion_file, 1), num_classes, emotion_file, 1)
        if label is None:
            report.excluded["contempt (num_classes=7)"] += 1
            continue
        frames = sorted((image_root / subject / sequence).glob("*.png"))
        if not frames:
            report.problems.append(
                Problem(os.fspath(image_root / subject / sequence), None, "file not found: no frames for this labelled sequence")
            )
            continue
        chosen = [(frame, label) for frame in frames[-last_frames:]]
        if neutral_first_frame and len(frames) > last_frames:
            chosen.insert(0, (frames[0], 6))
        for frame, frame_label in chosen:
            points = None
            landmark_file = landmark_root / subject / sequence / f"{frame.stem}_landmarks.txt"
            if landmark_file.is_file():
                try:
                    points = parse_landmark_text(landmark_file.read_text(encoding="utf-8"), f"'{landmark_file}'")
                except ValueError as err:
                    report.problems.append(Problem(os.fspath(landmark_file), None, str(err)))
                    continue
            records.append(Record(os.fspath(frame), frame_label, landmarks=points, split="all", subject=subject))
    subjects = sorted({record.subject for record in records})
    fold_of = {subject: position % n_folds for position, subject in enumerate(subjects)}
    if split != "all":
        keep_test = split == "test"
        records = [record for record in records if (fold_of[record.subject] == fold) == keep_test]
        records = [replace(record, split=split) for record in records]
    name = f"ckplus{num_classes}-{split}" + (f"-fold{fold}of{n_folds}" if fold is not None else "")
    return FaceDataset(records, report, name=name, num_classes=num_classes, **options)


def ckplus_subject_folds(dataset: FaceDataset, n_folds: int = 10) -> dict[str, int]:
    """Return the fold of each subject, as :func:`ckplus` assigns it."""
    subjects = sorted({record.subject for record in dataset.records})
    return {subject: position % n_folds for position, subject in enumerate(subjects)}


FER_USAGE = {"Training": "train", "PublicTest": "public_test", "PrivateTest": "private_test"}


def fer2013_csv(
    csv_file: PathLike,
    split: Literal["all", "train", "public_test", "private_test"] = "train",
    **options,
) -> FaceDataset:
    """Open ``fer2013.csv``: 48x48 grayscale faces as space-separated pixels, with ``Usage``.

    ``Usage`` maps to ``split``: Training -> ``train``, PublicTest ->
    ``public_test`` (the usual validation set), PrivateTest -> ``private_test``.
    """
    _check_split(split, ("all", *FER_USAGE.values()))
    index_file = _require(Path(csv_file), "FER2013 CSV")
    report = DatasetReport()
    records = []
    with open(index_file, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or [name.strip() for name in header[:3]] != ["emotion", "pixels", "Usage"]:
            raise ValueError(f"'{index_file}' is not fer2013.csv: expected the header 'emotion,pixels,Usage', got {header}.")
        for line_number, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) < 3:
                report.problems.append(Problem(os.fspath(index_file), line_number, f"malformed row: {len(row)} fields, expected 3"))
                continue
            usage = row[2].strip()
            if usage not in FER_USAGE:
                report.problems.append(
                    Problem(os.fspath(index_file), line_number, f"malformed row: Usage {usage!r} is not one of {list(FER_USAGE)}")
                )
                continue
            label = to_canonical("fer2013", parse_native(row[0], "fer2013", index_file, line_number), source=index_file, line=line_number)
            row_split = FER_USAGE[usage]
            if split != "all" and row_split != split:
                continue
            try:
                pixels = np.array(row[1].split(), dtype=np.int64)
            except ValueError:
                report.problems.append(Problem(os.fspath(index_file), line_number, "malformed row: pixels are not integers"))
                continue
            side = int(round(np.sqrt(pixels.size)))
            if pixels.size == 0 or side * side != pixels.size or pixels.min() < 0 or pixels.max() > 255:
                report.problems.append(
                    Problem(
                        os.fspath(index_file), line_number,
                        f"malformed row: {pixels.size} pixels, expected a square image of values 0-255 (48x48 = 2304)",
                    )
                )
                continue
            records.append(
                Record(f"{index_file}#{line_number}", label, split=row_split, pixels=pixels.reshape(side, side).astype(np.uint8))
            )
    return FaceDataset(records, report, name=f"fer2013-{split}", **options)


def fer2013_folder(root: PathLike, split: str = "train", **options) -> FaceDataset:
    """Open the FER2013 image-folder variant: ``<root>/<split>/<class name>/*.png``.

    Class folder names: angry, disgust, fear, happy, sad, surprise, neutral.
    Files with other suffixes are reported, as are folders with other names.
    """
    root = Path(root)
    split_dir = _require(root / split, f"FER2013 split folder '{split}'")
    report = DatasetReport()
    records = []
    for class_dir in sorted(path for path in split_dir.iterdir() if path.is_dir()):
        label = FER_FOLDER_NAMES.get(class_dir.name.lower())
        if label is None:
            raise ValueError(
                f"Unknown class folder '{class_dir}'; FER2013 folders are named {sorted(FER_FOLDER_NAMES)}."
            )
        for path in sorted(class_dir.iterdir()):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                records.append(Record(os.fspath(path), label, split=split))
            else:
                report.problems.append(Problem(os.fspath(path), None, f"unreadable: suffix {path.suffix!r} is not an image type"))
    return FaceDataset(records, report, name=f"fer2013-folder-{split}", **options)


def seed_list(list_file: PathLike, root: Optional[PathLike] = None, split: str = "", **options) -> FaceDataset:
    """Open a seed list: ``relative/path.jpg<TAB>label`` lines, labels in canonical order.

    Blank lines and lines starting with ``#`` are ignored. Paths are relative
    to ``root`` (default: the list's folder). Labels 0-7 are accepted, 7 being
    contempt when ``num_classes=8`` is passed.
    """
    index_file = _require(Path(list_file), "seed list")
    base = Path(root) if root is not None else index_file.parent
    num_classes = options.get("num_classes", NUM_BASIC)
    report = DatasetReport()
    records = []
    for line_number, line in enumerate(index_file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.rstrip("\r\n").split("\t")
        if len(fields) != 2 or not fields[0].strip():
            report.problems.append(
                Problem(os.fspath(index_file), line_number, f"malformed row: expected 'path<TAB>label', got {line!r}")
            )
            continue
        native = parse_native(fields[1], "seed", index_file, line_number)
        label = to_canonical("seed", native, num_classes, source=index_file, line=line_number)
        if label is None:
            raise LabelError(
                f"Label {native} in '{index_file}', line {line_number} is contempt, but num_classes is 7; "
                "pass num_classes=8 or relabel that line."
            )
        path = base / fields[0].strip()
        if _existing(path, report, line_number, index_file):
            records.append(Record(os.fspath(path), label, split=split))
    return FaceDataset(records, report, name=f"seed-{index_file.stem}", **options)


def load_dataset(kind: str, root: PathLike, **options) -> FaceDataset:
    """Open a dataset by name: ``rafdb``, ``affectnet``, ``ckplus``, ``fer2013``, ``fer2013_folder`` or ``seed``."""
    loaders = {
        "rafdb": rafdb,
        "affectnet": affectnet,
        "ckplus": ckplus,
        "fer2013": fer2013_csv,
        "fer2013_folder": fer2013_folder,
        "seed": seed_list,
    }
    if kind not in loaders:
        raise ValueError(f"Unknown dataset kind {kind!r}; choose one of {sorted(loaders)}.")
    return loaders[kind](root, **options)


__all__ = [
    "DatasetReport",
    "FaceDataset",
    "ImageLoadError",
    "Problem",
    "Record",
    "affectnet",
    "ckplus",
    "ckplus_subject_folds",
    "fer2013_csv",
    "fer2013_folder",
    "load_dataset",
    "parse_landmark_text",
    "rafdb",
    "seed_list",
]
