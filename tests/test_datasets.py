import csv
import os
from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image

from oaenet_helpers.data import datasets
from oaenet_helpers.data.labels import LabelError
from oaenet_helpers.data.synthetic import SyntheticExpressions, expression_landmarks
from oaenet_helpers.faces import NoFaceError

FACES = SyntheticExpressions(length=40, size=64, seed=11)


@dataclass(frozen=True)
class TemplateDetector:
    """Returns the template face scaled to the image; a flat image has no face."""

    key: str = "test-template-detector"

    def __call__(self, image):
        if image.std() < 1.0:
            raise NoFaceError("flat image")
        height, width = image.shape[:2]
        return (expression_landmarks(6) * 0.3 * width + [width / 2, 0.53 * height]).astype(np.float32)


class FailingDetector:
    key = "must-not-run"

    def __call__(self, image):
        raise AssertionError("the detector ran although the dataset has landmarks")


def save_face(path, index, size=None, flat=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = FACES[index].image
    if flat:
        image = np.full_like(image, 128)
    if size is not None:
        image = np.array(Image.fromarray(image).resize((size, size)))
    Image.fromarray(image).save(path)
    return path


def landmark_text(points, separator=";"):
    return separator.join(f"{value:.2f}" for value in np.asarray(points).reshape(-1))


# -- RAF-DB -----------------------------------------------------------------


@pytest.fixture
def rafdb_root(tmp_path):
    root = tmp_path / "RAF-DB" / "basic"
    rows = ["train_00001.jpg 1", "train_00002.jpg 4", "train_00003.jpg 7", "train_00004.jpg 5",
            "test_0001.jpg 6", "test_0002.jpg 2",
            "train_00005.jpg",  # malformed: no label
            "train_00006.jpg 3",  # listed, but the file is missing
            "train_00007.jpg 3"]  # a flat image: no face
    for index, row in enumerate(rows[:6]):
        stem = row.split()[0][:-4]
        save_face(root / "Image" / "aligned" / f"{stem}_aligned.jpg", index)
    save_face(root / "Image" / "aligned" / "train_00007_aligned.jpg", 7, flat=True)
    (root / "EmoLabel").mkdir(parents=True)
    (root / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(rows) + "\n")
    return root


def test_rafdb_train_split_and_report(rafdb_root, tmp_path):
    cache = tmp_path / "cache"
    data = datasets.rafdb(rafdb_root, split="train", cache_dir=cache, detector=TemplateDetector())
    assert len(data) == 4
    assert data.labels.tolist() == [0, 3, 6, 4]  # surprise, happy, neutral, sad
    assert data.report.counts() == {"malformed row": 1, "file not found": 1, "no face found": 1}
    lines = data.report_file.read_text().splitlines()
    assert lines[0] == "path\tline\treason"
    assert len(lines) == 4
    assert any("train_00006_aligned.jpg\t8\tfile not found" in line for line in lines)
    assert any("list_patition_label.txt\t7\tmalformed row" in line for line in lines)


def test_rafdb_items(rafdb_root, tmp_path):
    data = datasets.rafdb(rafdb_root, split="test", cache_dir=tmp_path / "cache", detector=TemplateDetector())
    assert len(data) == 2
    image, landmarks, label = data[0]
    assert image.shape == (64, 64, 3)
    assert landmarks.shape == (68, 2)
    assert landmarks.dtype == np.float32
    assert label == 5


def test_rafdb_without_cache_dir_asks_for_one(rafdb_root):
    with pytest.raises(ValueError, match="pass cache_dir="):
        datasets.rafdb(rafdb_root)
    skipped = datasets.rafdb(rafdb_root, landmarks="skip")
    assert skipped[0].landmarks.shape == (0, 2)


def test_rafdb_out_of_range_label(rafdb_root):
    label_file = rafdb_root / "EmoLabel" / "list_patition_label.txt"
    label_file.write_text("train_00001.jpg 1\ntrain_00002.jpg 9\n")
    with pytest.raises(LabelError) as info:
        datasets.rafdb(rafdb_root, landmarks="skip")
    assert f"'{label_file}', line 2" in str(info.value)


def test_rafdb_missing_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="RAF-DB label file not found"):
        datasets.rafdb(tmp_path)


# -- AffectNet ----------------------------------------------------------------


@pytest.fixture
def affectnet_root(tmp_path):
    root = tmp_path / "AffectNet"
    header = ["subDirectory_filePath", "face_x", "face_y", "face_width", "face_height",
              "facial_landmarks", "expression", "valence", "arousal"]
    rows = []
    for index, expression in enumerate([1, 3, 0, 6]):
        relative = f"{100 + index}/face{index}.jpg"
        save_face(root / "Manually_Annotated_Images" / relative, index)
        rows.append([relative, 0, 0, 64, 64, landmark_text(FACES[index].landmarks), expression, 0.1, 0.2])
    save_face(root / "Manually_Annotated_Images" / "200/contempt.jpg", 4)
    rows.append(["200/contempt.jpg", 0, 0, 64, 64, landmark_text(FACES[4].landmarks), 7, 0, 0])
    rows.append(["200/none.jpg", 0, 0, 64, 64, landmark_text(FACES[5].landmarks), 8, 0, 0])
    rows.append(["200/uncertain.jpg", 0, 0, 64, 64, landmark_text(FACES[5].landmarks), 9, 0, 0])
    rows.append(["200/short.jpg", 0, 0, 64, 64, landmark_text(FACES[5].landmarks[:-1]), 2, 0, 0])
    rows.append(["200/missing.jpg", 0, 0, 64, 64, landmark_text(FACES[5].landmarks), 2, 0, 0])
    with open(root / "training.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return root


def test_affectnet_seven_classes(affectnet_root):
    data = datasets.affectnet(affectnet_root, detector=FailingDetector())
    assert data.labels.tolist() == [3, 0, 6, 5]  # happy, surprise, neutral, angry
    assert dict(data.report.excluded) == {"none": 1, "uncertain": 1, "contempt (num_classes=7)": 1}
    assert data.report.counts() == {"malformed landmarks": 1, "file not found": 1}
    malformed = next(problem for problem in data.report.problems if problem.kind == "malformed landmarks")
    assert malformed.line == 9
    assert "got 134" in malformed.reason
    np.testing.assert_allclose(data[0].landmarks, FACES[0].landmarks, atol=0.006)


def test_affectnet_empty_landmarks_detected(affectnet_root, tmp_path):
    csv_file = affectnet_root / "training.csv"
    lines = csv_file.read_text().splitlines()
    fields = lines[1].split(",")
    fields[5] = ""
    lines[1] = ",".join(fields)
    csv_file.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match="pass cache_dir="):
        datasets.affectnet(affectnet_root)
    data = datasets.affectnet(affectnet_root, cache_dir=tmp_path / "cache", detector=TemplateDetector())
    assert len(data) == 4
    np.testing.assert_allclose(data[0].landmarks, TemplateDetector()(data[0].image))


def test_affectnet_eight_classes_keeps_contempt(affectnet_root):
    data = datasets.affectnet(affectnet_root, num_classes=8)
    assert data.labels.tolist() == [3, 0, 6, 5, 7]
    assert data.classes[-1] == "contempt"
    assert "contempt (num_classes=7)" not in data.report.excluded


def test_affectnet_rejects_other_csv(tmp_path):
    (tmp_path / "Manually_Annotated_Images").mkdir()
    (tmp_path / "training.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="is not an AffectNet CSV"):
        datasets.affectnet(tmp_path)


# -- CK+ --------------------------------------------------------------------


@pytest.fixture
def ckplus_root(tmp_path):
    root = tmp_path / "CK+"
    sequences = {("S005", "001"): 3, ("S010", "002"): 5, ("S011", "004"): 1, ("S022", "003"): 2, ("S026", "001"): 7}
    face = 0
    for (subject, sequence), emotion in sequences.items():
        for frame in range(1, 6):
            save_face(root / "cohn-kanade-images" / subject / sequence / f"{subject}_{sequence}_{frame:08d}.png", face % 40)
            face += 1
        emotion_dir = root / "Emotion" / subject / sequence
        emotion_dir.mkdir(parents=True)
        (emotion_dir / f"{subject}_{sequence}_00000005_emotion.txt").write_text(f"   {emotion:.7e}\n")
    # Dataset landmarks for one sequence: 68 lines of "x y".
    for frame in range(1, 6):
        points = FACES[frame].landmarks
        landmark_dir = root / "Landmarks" / "S005" / "001"
        landmark_dir.mkdir(parents=True, exist_ok=True)
        text = "\n".join(f"   {x:.7e}   {y:.7e}" for x, y in points)
        (landmark_dir / f"S005_001_{frame:08d}_landmarks.txt").write_text(text)
    # A malformed label file (two lines) and a labelled sequence without frames.
    (root / "Emotion" / "S030" / "001").mkdir(parents=True)
    (root / "Emotion" / "S030" / "001" / "S030_001_00000003_emotion.txt").write_text("1\n2\n")
    (root / "Emotion" / "S031" / "001").mkdir(parents=True)
    (root / "Emotion" / "S031" / "001" / "S031_001_00000003_emotion.txt").write_text("5\n")
    return root


def test_ckplus_frames_and_labels(ckplus_root, tmp_path):
    data = datasets.ckplus(ckplus_root, last_frames=3, cache_dir=tmp_path / "cache", detector=TemplateDetector())
    # Four labelled sequences (contempt left out), each: first frame neutral + last three.
    assert len(data) == 16
    assert data.labels.tolist() == [6, 2, 2, 2, 6, 3, 3, 3, 6, 5, 5, 5, 6, 0, 0, 0]
    assert data.report.excluded == {"contempt (num_classes=7)": 1}
    assert data.report.counts() == {"malformed row": 1, "file not found": 1}
    # S005 landmarks come from the dataset's files.
    first = data.records[0]
    assert first.subject == "S005"
    np.testing.assert_allclose(first.landmarks, FACES[1].landmarks, atol=1e-4)


def test_ckplus_folds_are_subject_independent(ckplus_root, tmp_path):
    options = dict(landmarks="skip", n_folds=2)
    train = datasets.ckplus(ckplus_root, fold=0, split="train", **options)
    test = datasets.ckplus(ckplus_root, fold=0, split="test", **options)
    train_subjects = {record.subject for record in train.records}
    test_subjects = {record.subject for record in test.records}
    assert train_subjects and test_subjects
    assert not train_subjects & test_subjects
    assert train_subjects | test_subjects == {"S005", "S010", "S011", "S026"}
    with pytest.raises(ValueError, match="needs fold"):
        datasets.ckplus(ckplus_root, split="test", **options)


def test_ckplus_without_neutral(ckplus_root):
    data = datasets.ckplus(ckplus_root, last_frames=1, neutral_first_frame=False, num_classes=8, landmarks="skip")
    assert data.labels.tolist() == [2, 3, 5, 7, 0]


# -- FER2013 ------------------------------------------------------------------


def fer_pixels(index, size=48):
    grey = np.array(Image.fromarray(FACES[index].image).convert("L").resize((size, size)))
    return " ".join(str(value) for value in grey.reshape(-1))


@pytest.fixture
def fer_csv(tmp_path):
    path = tmp_path / "fer2013.csv"
    rows = [["emotion", "pixels", "Usage"],
            [0, fer_pixels(0), "Training"],
            [3, fer_pixels(1), "Training"],
            [6, fer_pixels(2), "PublicTest"],
            [5, fer_pixels(3), "PrivateTest"],
            [4, " ".join(["7"] * 2000), "Training"],  # malformed: 2000 pixels
            [2, fer_pixels(4), "Validation"]]  # malformed: unknown Usage
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


def test_fer2013_csv_splits(fer_csv):
    train = datasets.fer2013_csv(fer_csv, split="train", landmarks="skip")
    assert train.labels.tolist() == [5, 3]  # angry, happy
    image, landmarks, _ = train[0]
    assert image.shape == (48, 48, 3)
    assert np.array_equal(image[:, :, 0], image[:, :, 2])
    assert train.report.counts() == {"malformed row": 2}
    everything = datasets.fer2013_csv(fer_csv, split="all", landmarks="skip")
    assert sorted({record.split for record in everything.records}) == ["private_test", "public_test", "train"]


def test_fer2013_csv_landmarks_through_cache(fer_csv, tmp_path):
    data = datasets.fer2013_csv(fer_csv, split="train", cache_dir=tmp_path / "cache", detector=TemplateDetector())
    assert data[1].landmarks.shape == (68, 2)
    assert len(list((tmp_path / "cache" / "csv-images").rglob("*.png"))) == 2


def test_fer2013_csv_out_of_range(tmp_path):
    path = tmp_path / "fer2013.csv"
    path.write_text("emotion,pixels,Usage\n7," + " ".join(["1"] * 2304) + ",Training\n")
    with pytest.raises(LabelError, match="line 2"):
        datasets.fer2013_csv(path, landmarks="skip")


def test_fer2013_folder(tmp_path):
    root = tmp_path / "fer"
    save_face(root / "train" / "happy" / "a.png", 0, size=48)
    save_face(root / "train" / "happy" / "b.png", 1, size=48)
    save_face(root / "train" / "sad" / "c.png", 2, size=48)
    (root / "train" / "sad" / "notes.txt").write_text("not an image")
    data = datasets.fer2013_folder(root, "train", landmarks="skip")
    assert data.labels.tolist() == [3, 3, 4]
    assert data.report.counts() == {"unreadable": 1}
    (root / "train" / "joy").mkdir()
    with pytest.raises(ValueError, match="Unknown class folder"):
        datasets.fer2013_folder(root, "train", landmarks="skip")


# -- Seed list ----------------------------------------------------------------


@pytest.fixture
def seed_file(tmp_path):
    save_face(tmp_path / "faces" / "one.png", 0)
    save_face(tmp_path / "faces" / "two.png", 1)
    lines = ["# canonical labels", "faces/one.png\t3", "", "faces/two.png\t6",
             "faces/three.png 2",  # malformed: a space, not a tab
             "faces/gone.png\t1"]  # missing file
    path = tmp_path / "seed.tsv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_seed_list(seed_file, tmp_path):
    data = datasets.seed_list(seed_file, cache_dir=tmp_path / "cache", detector=TemplateDetector())
    assert data.labels.tolist() == [3, 6]
    assert data.report.counts() == {"malformed row": 1, "file not found": 1}
    problems = {problem.line: problem.reason for problem in data.report.problems}
    assert problems[5].startswith("malformed row")
    assert problems[6].startswith("file not found")


def test_seed_list_out_of_range(tmp_path):
    path = tmp_path / "seed.tsv"
    path.write_text("a.png\t3\nb.png\t12\n")
    with pytest.raises(LabelError) as info:
        datasets.seed_list(path, landmarks="skip")
    assert f"'{path}', line 2" in str(info.value)


# -- Shared behaviour ---------------------------------------------------------


def test_class_counts_table(rafdb_root, tmp_path):
    data = datasets.rafdb(rafdb_root, split="all", landmarks="skip")
    table = data.class_counts()
    assert list(table.columns) == ["split", "label", "class", "count"]
    assert len(table) == 14
    assert table["count"].sum() == len(data)
    row = table[(table["split"] == "train") & (table["class"] == "happy")]
    assert int(row["count"].iloc[0]) == 1


def test_fingerprint_follows_files(seed_file):
    data = datasets.seed_list(seed_file, landmarks="skip")
    before = data.fingerprint()
    assert datasets.seed_list(seed_file, landmarks="skip").fingerprint() == before
    target = seed_file.parent / "faces" / "one.png"
    os.utime(target, ns=(1, 1))
    assert datasets.seed_list(seed_file, landmarks="skip").fingerprint() != before


def test_unreadable_image_raises_with_name(tmp_path):
    (tmp_path / "bad.jpg").write_text("not a jpeg")
    (tmp_path / "seed.tsv").write_text("bad.jpg\t1\n")
    data = datasets.seed_list(tmp_path / "seed.tsv", landmarks="skip")
    with pytest.raises(datasets.ImageLoadError, match="bad.jpg"):
        data[0]


def test_unreadable_image_reported_when_detecting(tmp_path):
    (tmp_path / "bad.jpg").write_text("not a jpeg")
    save_face(tmp_path / "good.png", 3)
    (tmp_path / "seed.tsv").write_text("bad.jpg\t1\ngood.png\t2\n")
    data = datasets.seed_list(tmp_path / "seed.tsv", cache_dir=tmp_path / "cache", detector=TemplateDetector())
    assert len(data) == 1
    assert data.report.counts() == {"unreadable": 1}


def test_subset_keeps_settings(rafdb_root):
    data = datasets.rafdb(rafdb_root, split="all", landmarks="skip")
    part = data.subset([0, 2])
    assert len(part) == 2
    assert part.labels.tolist() == data.labels[[0, 2]].tolist()
    assert part.landmark_mode == "skip"


def test_load_dataset_by_name(seed_file):
    assert len(datasets.load_dataset("seed", seed_file, landmarks="skip")) == 2
    with pytest.raises(ValueError, match="Unknown dataset kind"):
        datasets.load_dataset("jaffe", seed_file)
