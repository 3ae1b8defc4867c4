import numpy as np
import pytest
import torch

from oaenet_helpers.data import augment
from oaenet_helpers.data.augment import FLIP_PERMUTATION, FaceAugment, hflip, hflip_landmarks
from oaenet_helpers.data.sample import MaskedSample, Sample
from oaenet_helpers.data.synthetic import SyntheticExpressions
from oaenet_helpers.faces import align_and_crop

try:
    from oaenet_helpers.mask import weighted_mask
except ImportError:
    weighted_mask = None
needs_mask = pytest.mark.skipif(weighted_mask is None, reason="oaenet_helpers.mask cannot be imported")


@pytest.fixture(scope="module")
def face():
    sample = SyntheticExpressions(length=3, size=160, seed=21, occluders=False)[1]
    aligned = align_and_crop(sample.image, sample.landmarks, size=96)
    return Sample(aligned.image, aligned.landmarks, sample.label)


def test_permutation_is_an_involution():
    assert sorted(FLIP_PERMUTATION.tolist()) == list(range(68))
    np.testing.assert_array_equal(FLIP_PERMUTATION[FLIP_PERMUTATION], np.arange(68))
    assert FLIP_PERMUTATION[36] == 45
    assert FLIP_PERMUTATION[48] == 54
    assert FLIP_PERMUTATION[0] == 16
    for midline in (8, 27, 28, 29, 30, 33, 51, 57, 62, 66):
        assert FLIP_PERMUTATION[midline] == midline


def test_flip_twice_is_identity(face):
    masked = MaskedSample(face.image, face.landmarks, np.random.default_rng(0).random((96, 96), dtype=np.float32), 3)
    twice = hflip(hflip(masked))
    np.testing.assert_array_equal(twice.image, masked.image)
    # W - 1 - (W - 1 - x) in float32 may differ from x in the last bit.
    np.testing.assert_allclose(twice.landmarks, masked.landmarks, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(twice.mask, masked.mask)
    assert twice.label == 3


def test_flip_keeps_eye_indices_on_their_side(face):
    flipped = hflip(face)
    # Points 36-41 stay the eye on the picture's left, 42-47 the one on its right.
    assert flipped.landmarks[36:42, 0].mean() < flipped.landmarks[42:48, 0].mean()
    assert flipped.landmarks[48, 0] < flipped.landmarks[54, 0]
    assert flipped.landmarks[0, 0] < flipped.landmarks[16, 0]
    # x' = W - 1 - x on the permuted point.
    np.testing.assert_allclose(flipped.landmarks[36], [95 - face.landmarks[45, 0], face.landmarks[45, 1]])


def test_flipped_landmarks_sit_on_flipped_pixels():
    image = np.zeros((40, 50, 3), np.uint8)
    points = np.tile(np.array([[7.0, 11.0]], np.float32), (68, 1))
    image[11, 7] = 255
    flipped = hflip(Sample(image, points, 0))
    x, y = flipped.landmarks[0].astype(int)
    assert flipped.image[y, x, 0] == 255


@needs_mask
def test_mask_of_flipped_face_equals_flipped_mask(face):
    # One band makes rho 1 everywhere, so the mask is the landmark patches alone.
    mask = weighted_mask(face.image, face.landmarks, n_regions=1)
    flipped = hflip(MaskedSample(face.image, face.landmarks, mask, face.label))
    recomputed = weighted_mask(flipped.image, flipped.landmarks, n_regions=1)
    difference = np.abs(recomputed - flipped.mask)
    # Rounding of landmarks that sit on .5 may move a patch by one pixel.
    assert np.mean(difference > 1e-6) < 0.01
    assert difference.mean() < 1e-3


@needs_mask
def test_flipped_band_values_stay_close(astronaut_face, astronaut):
    # NOTE: band rho is not exactly mirror-invariant: a horizontal gradient
    # (0 degrees) stays in orientation bin 0 when mirrored, while every other
    # angle t moves to 180 - t. On a photograph the change is small.
    aligned = align_and_crop(astronaut, astronaut_face.landmarks, size=224)
    mask = weighted_mask(aligned.image, aligned.landmarks)
    flipped = hflip(MaskedSample(aligned.image, aligned.landmarks, mask, 0))
    recomputed = weighted_mask(flipped.image, flipped.landmarks)
    assert np.abs(recomputed - flipped.mask).mean() < 0.06


def test_hflip_landmarks_rejects_bad_shape():
    with pytest.raises(ValueError, match=r"shape \(68, 2\)"):
        hflip_landmarks(np.zeros((5, 2)), 10)


def test_rotate_scale_moves_landmarks_with_pixels():
    image = np.zeros((64, 64, 3), np.uint8)
    points = np.tile(np.array([[40.0, 20.0]], np.float32), (68, 1))
    image[19:22, 39:42] = 255
    mask = np.zeros((64, 64), np.float32)
    mask[19:22, 39:42] = 1.0
    moved = augment.rotate_scale(MaskedSample(image, points, mask, 0), angle_deg=30.0, scale=1.2)
    x, y = np.round(moved.landmarks[0]).astype(int)
    assert moved.image[y, x, 0] > 128
    assert moved.mask[y, x] > 0.5
    assert not np.allclose(moved.landmarks[0], points[0])


def test_random_erase_zeroes_rectangles():
    image = np.full((224, 224, 3), 200, np.uint8)
    counts = set()
    for seed in range(40):
        erased = augment.random_erase(image, np.random.default_rng(seed))
        zero = (erased == 0).all(axis=2)
        counts.add(int(zero.sum()) // (15 * 25) if zero.sum() else 0)
        assert zero.sum() <= 4 * 15 * 25
    assert 0 in counts
    assert max(counts) >= 2
    assert (image == 200).all()  # input untouched


def test_random_erase_scales_with_size():
    image = np.full((112, 112, 3), 200, np.uint8)
    rng = np.random.default_rng(3)
    for _ in range(20):
        erased = augment.random_erase(image, rng, max_count=1)
        zero = (erased == 0).all(axis=2)
        if zero.any():
            rows, cols = np.nonzero(zero)
            assert rows.max() - rows.min() + 1 == 8
            assert cols.max() - cols.min() + 1 == 12
            return
    pytest.fail("no rectangle was erased in 20 draws")


def test_colour_jitter_changes_colour_only(face):
    jittered = augment.colour_jitter(face.image, np.random.default_rng(1))
    assert jittered.shape == face.image.shape
    assert jittered.dtype == np.uint8
    assert not np.array_equal(jittered, face.image)
    unchanged = augment.colour_jitter(face.image, np.random.default_rng(1), 0.0, 0.0, 0.0)
    assert np.abs(unchanged.astype(int) - face.image).max() <= 1


def test_face_augment_consistent(face):
    masked = MaskedSample(face.image, face.landmarks, np.ones((96, 96), np.float32), face.label)
    transform = FaceAugment(flip_p=1.0, max_rotation_deg=0.0, scale_range=(1.0, 1.0), jitter_p=0.0, erase_max=0, seed=0)
    out = transform(masked)
    np.testing.assert_array_equal(out.image, masked.image[:, ::-1])
    np.testing.assert_array_equal(out.landmarks, hflip(masked).landmarks)
    assert out.label == face.label


def test_face_augment_seeded_from_torch(face):
    transform = FaceAugment()
    torch.manual_seed(5)
    first = transform(face)
    torch.manual_seed(5)
    second = transform(face)
    np.testing.assert_array_equal(first.image, second.image)
    np.testing.assert_array_equal(first.landmarks, second.landmarks)


def test_to_tensors(face):
    masked = MaskedSample(face.image, face.landmarks, np.ones((96, 96), np.float32), 2)
    out = augment.to_tensors(masked)
    assert out.image.shape == (3, 96, 96)
    assert out.image.dtype == torch.float32
    expected = (face.image[0, 0, 0] / 255.0 - 0.456) / 0.225
    assert out.image[0, 0, 0].item() == pytest.approx(expected, abs=1e-5)
    assert out.mask.shape == (96, 96)
    assert out.label == 2


def test_train_val_split_stratified():
    labels = np.array([0] * 50 + [1] * 30 + [2] * 2 + [3])
    train, val = augment.train_val_split(labels, val_fraction=0.2, seed=0)
    assert np.intersect1d(train, val).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(labels.size))
    assert np.sum(labels[val] == 0) == 10
    assert np.sum(labels[val] == 1) == 6
    assert np.sum(labels[val] == 2) == 1  # a rare class is in both parts
    assert np.sum(labels[val] == 3) == 0  # a single item stays in training
    again = augment.train_val_split(labels, val_fraction=0.2, seed=0)
    np.testing.assert_array_equal(again[1], val)


def test_train_val_split_invalid():
    with pytest.raises(ValueError, match=r"val_fraction must be in \(0, 1\)"):
        augment.train_val_split([0, 1, 2], val_fraction=1.0)


def test_class_weights():
    weights = augment.class_weights([0, 0, 0, 1], num_classes=2)
    np.testing.assert_allclose(weights.numpy(), [4 / 6, 2.0])
    balanced = augment.class_weights([0, 1, 2], num_classes=3)
    np.testing.assert_allclose(balanced.numpy(), [1, 1, 1])
    missing = augment.class_weights([0, 0, 1], num_classes=3)
    assert missing[2].item() == 0.0
    assert torch.isfinite(missing).all()
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        augment.class_weights([0, 5], num_classes=3)


def test_weighted_sampler_balances_classes():
    labels = np.array([0] * 90 + [1] * 10)
    sampler = augment.weighted_sampler(labels, num_classes=2, num_samples=4000, seed=0)
    drawn = labels[list(sampler)]
    assert 0.45 < drawn.mean() < 0.55
    again = list(augment.weighted_sampler(labels, num_classes=2, num_samples=50, seed=0))
    assert again == list(augment.weighted_sampler(labels, num_classes=2, num_samples=50, seed=0))
