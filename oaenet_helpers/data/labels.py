"""One label space for every dataset, and the maps from each native coding.

The canonical order is the one the official OAENet README lists:
0 surprise, 1 fear, 2 disgust, 3 happy, 4 sad, 5 angry, 6 neutral, with
7 contempt as an optional eighth class (AffectNet-8, CK+).

Each dataset codes its labels differently. :data:`NATIVE_TO_CANONICAL` contains
one explicit table per dataset, and :func:`to_canonical` / :func:`to_native`
convert in both directions. Native codes that name no expression (AffectNet's
8 "none", 9 "uncertain", 10 "no-face") are listed in :data:`EXCLUDED` so that
loaders can count them instead of raising.
"""

from __future__ import annotations

import os
from typing import Mapping

#: Canonical class names, index = canonical label.
CLASS_NAMES: tuple[str, ...] = (
    "surprise",
    "fear",
    "disgust",
    "happy",
    "sad",
    "angry",
    "neutral",
    "contempt",
)
NUM_BASIC = 7  # surprise ... neutral
CONTEMPT = 7

#: Native label -> canonical label, one table per dataset.
NATIVE_TO_CANONICAL: dict[str, dict[int, int]] = {
    # RAF-DB basic, list_patition_label.txt: 1 surprise, 2 fear, 3 disgust,
    # 4 happiness, 5 sadness, 6 anger, 7 neutral.
    "rafdb": {1: 0, 2: 1, 3: 2, 4: 3, 5: 4, 6: 5, 7: 6},
    # AffectNet training.csv / validation.csv: 0 neutral, 1 happy, 2 sad,
    # 3 surprise, 4 fear, 5 disgust, 6 anger, 7 contempt.
    "affectnet": {0: 6, 1: 3, 2: 4, 3: 0, 4: 1, 5: 2, 6: 5, 7: 7},
    # FER2013 fer2013.csv: 0 angry, 1 disgust, 2 fear, 3 happy, 4 sad,
    # 5 surprise, 6 neutral.
    "fer2013": {0: 5, 1: 2, 2: 1, 3: 3, 4: 4, 5: 0, 6: 6},
    # CK+ Emotion/*.txt: 0 neutral, 1 anger, 2 contempt, 3 disgust, 4 fear,
    # 5 happy, 6 sadness, 7 surprise.
    "ckplus": {0: 6, 1: 5, 2: 7, 3: 2, 4: 1, 5: 3, 6: 4, 7: 0},
    # The seed list (relative/path.jpg<TAB>label) is written in canonical order.
    "seed": {label: label for label in range(len(CLASS_NAMES))},
}

#: Native codes that carry no expression; loaders count and skip them.
EXCLUDED: dict[str, dict[int, str]] = {
    "affectnet": {8: "none", 9: "uncertain", 10: "no-face"},
}

#: Folder names of the FER2013 image-folder variant -> canonical label.
FER_FOLDER_NAMES: dict[str, int] = {
    "angry": 5,
    "disgust": 2,
    "fear": 1,
    "happy": 3,
    "sad": 4,
    "surprise": 0,
    "neutral": 6,
}


class LabelError(ValueError):
    """A native label is outside its dataset's coding."""


def class_names(num_classes: int = NUM_BASIC) -> tuple[str, ...]:
    """Return the canonical names of the first ``num_classes`` classes (7 or 8)."""
    if num_classes not in (NUM_BASIC, NUM_BASIC + 1):
        raise ValueError(f"num_classes must be 7 or 8 (with contempt), got {num_classes}.")
    return CLASS_NAMES[:num_classes]


def _table(dataset: str) -> Mapping[int, int]:
    try:
        return NATIVE_TO_CANONICAL[dataset]
    except KeyError:
        raise ValueError(
            f"Unknown dataset {dataset!r}; choose one of {sorted(NATIVE_TO_CANONICAL)}."
        ) from None


def _where(source: str | os.PathLike | None, line: int | None) -> str:
    if source is None:
        return ""
    place = f" in '{os.fspath(source)}'"
    return place + (f", line {line}" if line is not None else "")


def parse_native(text: str, dataset: str, source: str | os.PathLike | None = None, line: int | None = None) -> int:
    """Parse a native label written as an integer (``"3"``, ``" 3.0000000e+00"``).

    CK+ writes its labels as floats, so whole-number floats are accepted.

    Raises:
        LabelError: the text is not a whole number; the message names the file and line.
    """
    stripped = text.strip()
    try:
        value = float(stripped)
    except ValueError:
        raise LabelError(
            f"Label {stripped!r}{_where(source, line)} is not a number; {dataset} labels are integers."
        ) from None
    if not value.is_integer():
        raise LabelError(f"Label {stripped!r}{_where(source, line)} is not a whole number.")
    return int(value)


def is_excluded(dataset: str, native: int) -> bool:
    """Tell whether ``native`` is a code that names no expression (AffectNet 8-10)."""
    return native in EXCLUDED.get(dataset, {})


def to_canonical(
    dataset: str,
    native: int,
    num_classes: int = NUM_BASIC,
    source: str | os.PathLike | None = None,
    line: int | None = None,
) -> int | None:
    """Map a native label to the canonical label.

    Args:
        dataset: ``"rafdb"``, ``"affectnet"``, ``"fer2013"``, ``"ckplus"`` or ``"seed"``.
        native: the label as the dataset writes it.
        num_classes: 7 drops contempt (returns ``None``), 8 keeps it as label 7.
        source, line: where the label was read, for the error message.

    Returns:
        The canonical label, or ``None`` for codes the caller should count and
        skip: AffectNet 8-10 and contempt when ``num_classes`` is 7.

    Raises:
        LabelError: ``native`` is outside the dataset's coding; the message
            names the file and line when given.
    """
    class_names(num_classes)
    table = _table(dataset)
    if is_excluded(dataset, native):
        return None
    if native not in table:
        valid = sorted(set(table) | set(EXCLUDED.get(dataset, {})))
        raise LabelError(
            f"Label {native}{_where(source, line)} is out of range for {dataset}: "
            f"valid labels are {valid[0]}..{valid[-1]}. Fix that line or check the file is a {dataset} label file."
        )
    canonical = table[native]
    if canonical >= num_classes:
        return None
    return canonical


def to_native(dataset: str, canonical: int) -> int:
    """Map a canonical label back to the dataset's native code.

    Raises:
        LabelError: the dataset has no code for that class (RAF-DB and FER2013
            have no contempt) or ``canonical`` is not a class index.
    """
    for native, value in _table(dataset).items():
        if value == canonical:
            return native
    raise LabelError(
        f"Canonical label {canonical} has no code in {dataset}; "
        f"valid canonical labels there are {sorted(_table(dataset).values())}."
    )
