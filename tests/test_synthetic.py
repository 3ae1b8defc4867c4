import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from oaenet_helpers.data import synthetic
from oaenet_helpers.data.labels import CLASS_NAMES
from oaenet_helpers.data.synthetic import CLASS_ACTION_UNITS, SyntheticExpressions, expression_landmarks


def test_item_types_and_shapes():
    data = SyntheticExpressions(length=5, size=64, seed=3)
    image, landmarks, label = data[2]
    assert image.shape == (64, 64, 3)
    assert image.dtype == np.uint8
    assert landmarks.shape == (68, 2)
    assert landmarks.dtype == np.float32
    assert 0 <= label < 7
    assert np.isfinite(landmarks).all()


def test_deterministic_per_seed_and_index():
    first = SyntheticExpressions(length=20, size=48, seed=7)
    second = SyntheticExpressions(length=20, size=48, seed=7)
    # Reverse order: an item must not depend on what was generated before.
    for index in (19, 4, 0):
        a, b = first[index], second[index]
        np.testing.assert_array_equal(a.image, b.image)
        np.testing.assert_array_equal(a.landmarks, b.landmarks)
        assert a.label == b.label
    other_seed = SyntheticExpressions(length=20, size=48, seed=8)
    assert not np.array_equal(first[4].image, other_seed[4].image)


def test_length_does_not_change_items():
    short = SyntheticExpressions(length=5, size=48, seed=1)
    long = SyntheticExpressions(length=500, size=48, seed=1)
    np.testing.assert_array_equal(short[3].image, long[3].image)
    np.testing.assert_array_equal(short.labels, long.labels[:5])


def test_labels_property_matches_items():
    data = SyntheticExpressions(length=30, size=32, seed=0)
    assert data.labels.shape == (30,)
    assert [data[i].label for i in range(30)] == data.labels.tolist()


def test_classes_balanced_by_default():
    counts = np.bincount(SyntheticExpressions(length=3500, size=32).labels, minlength=7)
    assert counts.min() > 400
    assert counts.max() < 600


def test_class_probs_skew_labels():
    probs = [0.0, 0.0, 0.0, 0.7, 0.0, 0.0, 0.3]
    counts = np.bincount(SyntheticExpressions(length=1000, size=32, class_probs=probs).labels, minlength=7)
    assert counts[[0, 1, 2, 4, 5]].sum() == 0
    assert 620 < counts[3] < 780


def test_landmarks_lie_on_the_face():
    data = SyntheticExpressions(length=40, size=96, seed=2, occluders=False)
    for index in range(40):
        points = data[index].landmarks
        assert points.min() > 0
        assert points.max() < 96
        # Eye on the picture's left (36-41) is left of the other eye; mouth below nose.
        assert points[36:42, 0].mean() < points[42:48, 0].mean()
        assert points[48:68, 1].mean() > points[27:36, 1].mean()


def test_rendered_mouth_matches_landmarks():
    # An open mouth is drawn dark inside the inner-lip outline.
    data = SyntheticExpressions(length=200, size=128, seed=4, intensity_range=(1.0, 1.0), occluders=False)
    surprised = next(i for i in range(200) if data.labels[i] == 0)
    image, points, _ = data[surprised]
    # Three quarters of the way down the opening, below the upper teeth.
    centre = (0.25 * points[62] + 0.75 * points[66]).round().astype(int)
    mouth_value = image[centre[1] - 1 : centre[1] + 2, centre[0] - 1 : centre[0] + 2].mean()
    cheek = points[[3, 13]].mean(axis=0) * 0.5 + points[[36, 45]].mean(axis=0) * 0.5
    cheek = cheek.round().astype(int)
    assert mouth_value < image[cheek[1] - 1 : cheek[1] + 2, cheek[0] - 1 : cheek[0] + 2].mean()


@pytest.mark.parametrize(
    "name, check",
    [
        ("happy", lambda n, e: e[48, 1] < n[48, 1] - 0.05 and e[54, 1] < n[54, 1] - 0.05),
        ("sad", lambda n, e: e[48, 1] > n[48, 1] + 0.05 and e[21, 0] > n[21, 0] + 0.03),
        ("surprise", lambda n, e: e[66, 1] - e[62, 1] > 0.15 and e[19, 1] < n[19, 1] - 0.05),
        ("fear", lambda n, e: e[48, 0] < n[48, 0] - 0.05 and e[66, 1] - e[62, 1] > 0.15),
        ("angry", lambda n, e: e[21, 1] > n[21, 1] + 0.05 and e[21, 0] > n[21, 0]),
        ("disgust", lambda n, e: e[33, 1] < n[33, 1] - 0.03 and e[57, 1] > n[57, 1]),
    ],
)
def test_action_units_move_landmarks(name, check):
    neutral = expression_landmarks(CLASS_NAMES.index("neutral"))
    expressed = expression_landmarks(CLASS_NAMES.index(name), intensity=1.0)
    assert check(neutral, expressed)


def test_action_unit_table():
    assert CLASS_ACTION_UNITS["happy"] == (6, 12)
    assert CLASS_ACTION_UNITS["fear"] == (1, 2, 4, 5, 20, 26)
    assert CLASS_ACTION_UNITS["neutral"] == ()
    for units in CLASS_ACTION_UNITS.values():
        for unit in units:
            assert synthetic.AU_DISPLACEMENTS[unit].shape == (68, 2)
            assert np.abs(synthetic.AU_DISPLACEMENTS[unit]).max() > 0


def test_intensity_range_respected():
    data = SyntheticExpressions(length=60, size=32, intensity_range=(0.2, 0.4))
    for index in range(60):
        params = data.render(index).params
        if CLASS_NAMES[params.label] == "neutral":
            assert params.intensity == 0.0
        else:
            assert 0.2 <= params.intensity <= 0.4


def test_occluders_appear_and_can_be_disabled():
    with_occluders = {SyntheticExpressions(length=200, size=32).render(i).params.occluder for i in range(200)}
    assert {"none", "glasses", "hand"} <= with_occluders
    without = {SyntheticExpressions(length=50, size=32, occluders=False).render(i).params.occluder for i in range(50)}
    assert without == {"none"}


def test_mean_colour_does_not_give_class_away():
    data = SyntheticExpressions(length=700, size=32, seed=5)
    means = np.array([data[i].image.reshape(-1, 3).mean(axis=0) for i in range(700)])
    labels = data.labels
    per_class = np.array([means[labels == c].mean(axis=0) for c in range(7)])
    spread_between = per_class.std(axis=0)
    spread_within = means.std(axis=0)
    assert np.all(spread_between < 0.25 * spread_within)


def test_dataloader_batches_samples():
    loader = DataLoader(SyntheticExpressions(length=6, size=32), batch_size=3)
    images, landmarks, labels = next(iter(loader))
    assert images.shape == (3, 32, 32, 3)
    assert landmarks.shape == (3, 68, 2)
    assert labels.dtype == torch.int64


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"size": 16}, "at least 32"),
        ({"length": -1}, "non-negative"),
        ({"class_probs": [1, 2]}, "7 non-negative"),
        ({"intensity_range": (0.5, 0.2)}, "low <= high"),
        ({"max_shift": 0.5}, "max_shift"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SyntheticExpressions(**kwargs)


def test_index_out_of_range():
    data = SyntheticExpressions(length=3, size=32)
    assert np.array_equal(data[-1].image, data[2].image)
    with pytest.raises(IndexError, match="index 3 is out of range"):
        data[3]


def test_fingerprint_tracks_settings():
    base = SyntheticExpressions(length=10, size=32).fingerprint()
    assert SyntheticExpressions(length=10, size=32).fingerprint() == base
    assert SyntheticExpressions(length=10, size=64).fingerprint() != base
    assert SyntheticExpressions(length=10, size=32, seed=1).fingerprint() != base


def _tensors(data):
    images = np.stack([data[i].image for i in range(len(data))])
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0, torch.from_numpy(data.labels)


def _block(channels_in, channels_out):
    return nn.Sequential(
        nn.Conv2d(channels_in, channels_out, 3, padding=1), nn.BatchNorm2d(channels_out), nn.ReLU(), nn.MaxPool2d(2)
    )


def test_linear_probe_stays_far_below_cnn():
    """Classes are learnable from shapes, but raw pixels are not linearly separable.

    Clearly expressed faces (intensity 0.7-1) without occluders keep the run
    short; faces still vary in place, scale, pose, colours and lighting.
    """
    torch.manual_seed(0)
    kwargs = dict(size=48, intensity_range=(0.7, 1.0), occluders=False)
    train_x, train_y = _tensors(SyntheticExpressions(length=1400, seed=0, **kwargs))
    test_x, test_y = _tensors(SyntheticExpressions(length=490, seed=1, **kwargs))

    flat = train_x.flatten(1)
    mean, std = flat.mean(0), flat.std(0) + 1e-3
    probe = nn.Linear(flat.shape[1], 7)
    optimiser = torch.optim.Adam(probe.parameters(), 1e-3, weight_decay=1e-3)
    for _ in range(200):
        optimiser.zero_grad()
        nn.functional.cross_entropy(probe((flat - mean) / std), train_y).backward()
        optimiser.step()
    with torch.no_grad():
        probe_accuracy = (probe((test_x.flatten(1) - mean) / std).argmax(1) == test_y).float().mean().item()
        probe_train_accuracy = (probe((flat - mean) / std).argmax(1) == train_y).float().mean().item()

    cnn = nn.Sequential(
        _block(3, 8), _block(8, 16), _block(16, 32), _block(32, 64),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 7),
    )
    epochs, batch = 10, 64
    optimiser = torch.optim.Adam(cnn.parameters(), 2e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, 4e-3, total_steps=epochs * ((len(train_y) + batch - 1) // batch))
    for _ in range(epochs):
        cnn.train()
        order = torch.randperm(len(train_y))
        for start in range(0, len(train_y), batch):
            rows = order[start : start + batch]
            optimiser.zero_grad()
            nn.functional.cross_entropy(cnn(train_x[rows]), train_y[rows]).backward()
            optimiser.step()
            schedule.step()
    cnn.eval()
    with torch.no_grad():
        cnn_accuracy = (cnn(test_x).argmax(1) == test_y).float().mean().item()

    assert probe_train_accuracy > 0.9  # the probe fits its training set, so its test score is not underfitting
    assert probe_accuracy < 0.45, f"linear probe test accuracy {probe_accuracy:.3f}"
    assert cnn_accuracy > probe_accuracy + 0.15, f"CNN {cnn_accuracy:.3f} vs linear probe {probe_accuracy:.3f}"


@pytest.fixture(scope="module")
def aligned_astronaut():
    from oaenet_helpers import faces

    image = faces.sample_image("astronaut")
    return faces.align_and_crop(image, faces.detect_face(image).landmarks, size=160)


def test_express_photo_moves_landmarks(aligned_astronaut):
    happy = CLASS_NAMES.index("happy")
    image, moved = synthetic.express_photo(aligned_astronaut.image, aligned_astronaut.landmarks, happy)
    original = aligned_astronaut.landmarks
    assert image.shape == aligned_astronaut.image.shape
    assert image.dtype == np.uint8
    # Lip corners go up; the inner eye corners, which happy does not move, stay.
    assert moved[48, 1] < original[48, 1] - 2
    assert moved[54, 1] < original[54, 1] - 2
    np.testing.assert_allclose(moved[[39, 42]], original[[39, 42]], atol=1e-4)
    # The face changes near the mouth; the image corners do not.
    mouth = original[48:68].mean(axis=0).astype(int)
    window = (slice(mouth[1] - 8, mouth[1] + 8), slice(mouth[0] - 20, mouth[0] + 20))
    assert np.abs(image[window].astype(int) - aligned_astronaut.image[window]).mean() > 2
    np.testing.assert_array_equal(image[:3, :3], aligned_astronaut.image[:3, :3])


def test_express_photo_neutral_is_a_copy(aligned_astronaut):
    image, moved = synthetic.express_photo(aligned_astronaut.image, aligned_astronaut.landmarks, CLASS_NAMES.index("neutral"))
    np.testing.assert_array_equal(image, aligned_astronaut.image)
    np.testing.assert_array_equal(moved, aligned_astronaut.landmarks)
    with pytest.raises(ValueError, match="labels 0-6"):
        synthetic.express_photo(aligned_astronaut.image, aligned_astronaut.landmarks, 7)
