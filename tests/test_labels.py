import pytest

from oaenet_helpers.data import labels
from oaenet_helpers.data.labels import LabelError, to_canonical, to_native

# Native code -> class name, written out from each dataset's documentation.
NATIVE_NAMES = {
    "rafdb": {1: "surprise", 2: "fear", 3: "disgust", 4: "happy", 5: "sad", 6: "angry", 7: "neutral"},
    "affectnet": {0: "neutral", 1: "happy", 2: "sad", 3: "surprise", 4: "fear", 5: "disgust", 6: "angry", 7: "contempt"},
    "fer2013": {0: "angry", 1: "disgust", 2: "fear", 3: "happy", 4: "sad", 5: "surprise", 6: "neutral"},
    "ckplus": {0: "neutral", 1: "angry", 2: "contempt", 3: "disgust", 4: "fear", 5: "happy", 6: "sad", 7: "surprise"},
    "seed": {i: name for i, name in enumerate(labels.CLASS_NAMES)},
}


def test_canonical_order():
    assert labels.CLASS_NAMES[:7] == ("surprise", "fear", "disgust", "happy", "sad", "angry", "neutral")
    assert labels.class_names(8)[7] == "contempt"
    with pytest.raises(ValueError, match="7 or 8"):
        labels.class_names(6)


@pytest.mark.parametrize("dataset", sorted(NATIVE_NAMES))
def test_native_maps_match_names(dataset):
    for native, name in NATIVE_NAMES[dataset].items():
        canonical = to_canonical(dataset, native, num_classes=8)
        assert labels.CLASS_NAMES[canonical] == name, (dataset, native)


@pytest.mark.parametrize("dataset", sorted(NATIVE_NAMES))
def test_round_trip(dataset):
    for native in NATIVE_NAMES[dataset]:
        assert to_native(dataset, to_canonical(dataset, native, num_classes=8)) == native
    for canonical in set(labels.NATIVE_TO_CANONICAL[dataset].values()):
        assert to_canonical(dataset, to_native(dataset, canonical), num_classes=8) == canonical


def test_contempt_dropped_with_seven_classes():
    assert to_canonical("affectnet", 7, num_classes=7) is None
    assert to_canonical("ckplus", 2, num_classes=7) is None
    assert to_canonical("affectnet", 7, num_classes=8) == 7


def test_affectnet_codes_excluded():
    for native in (8, 9, 10):
        assert labels.is_excluded("affectnet", native)
        assert to_canonical("affectnet", native) is None
    assert labels.EXCLUDED["affectnet"][10] == "no-face"


@pytest.mark.parametrize("dataset, native", [("rafdb", 0), ("rafdb", 8), ("fer2013", 7), ("affectnet", 11), ("ckplus", 8), ("seed", -1)])
def test_out_of_range_names_file_and_line(dataset, native):
    with pytest.raises(LabelError) as info:
        to_canonical(dataset, native, source="labels.txt", line=12)
    message = str(info.value)
    assert "'labels.txt'" in message
    assert "line 12" in message
    assert str(native) in message


def test_no_contempt_code_in_rafdb():
    with pytest.raises(LabelError, match="no code in rafdb"):
        to_native("rafdb", 7)


def test_parse_native_accepts_ckplus_floats():
    assert labels.parse_native("   3.0000000e+00", "ckplus") == 3
    with pytest.raises(LabelError, match="not a whole number"):
        labels.parse_native("2.5", "ckplus", "a.txt", 1)
    with pytest.raises(LabelError, match="'a.txt', line 4"):
        labels.parse_native("happy", "seed", "a.txt", 4)


def test_unknown_dataset_rejected():
    with pytest.raises(ValueError, match="Unknown dataset 'jaffe'"):
        to_canonical("jaffe", 1)


def test_fer_folder_names_agree_with_csv_codes():
    for native, name in NATIVE_NAMES["fer2013"].items():
        assert labels.FER_FOLDER_NAMES[name] == to_canonical("fer2013", native)
