import json

import numpy as np
import pytest
from torch.utils.data import DataLoader

from oaenet_helpers.data.augment import Compose, FaceAugment, to_tensors
from oaenet_helpers.data.sample import MaskedSample, Sample
from oaenet_helpers.data.synthetic import SyntheticExpressions
from oaenet_helpers.faces import ImageLoadError, align_and_crop

try:
    from oaenet_helpers.mask import weighted_mask
except ImportError:
    weighted_mask = None

pytestmark = pytest.mark.skipif(weighted_mask is None, reason="oaenet_helpers.mask cannot be imported")

if weighted_mask is not None:
    from oaenet_helpers.data.prepare import PreparedDataset, prepare, prepare_key


class CountingFaces(SyntheticExpressions):
    """Counts item reads; optionally interrupts at one read or breaks some items."""

    def __init__(self, *args, interrupt_at=None, no_landmarks=(), unreadable=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.reads = 0
        self.interrupt_at = interrupt_at
        self.no_landmarks = set(no_landmarks)
        self.unreadable = set(unreadable)

    def __getitem__(self, index):
        self.reads += 1
        if self.interrupt_at is not None and self.reads == self.interrupt_at:
            raise KeyboardInterrupt
        if index in self.unreadable:
            raise ImageLoadError(f"Cannot load image 'face{index}.jpg': the file is corrupt or truncated.")
        sample = super().__getitem__(index)
        if index in self.no_landmarks:
            return Sample(sample.image, np.zeros((0, 2), np.float32), sample.label)
        return sample


SETTINGS = dict(length=24, size=96, seed=3)


def test_rows_equal_aligned_crop_and_mask(tmp_path):
    data = SyntheticExpressions(**SETTINGS)
    prepared = prepare(data, size=64, cache_dir=tmp_path, chunk_size=5, progress=False)
    assert len(prepared) == 24
    assert prepared.size == 64
    for index in (0, 7, 23):
        image, landmarks, label = data[index]
        aligned = align_and_crop(image, landmarks, size=64)
        item = prepared[index]
        assert isinstance(item, MaskedSample)
        np.testing.assert_array_equal(item.image, aligned.image)
        np.testing.assert_allclose(item.landmarks, aligned.landmarks, atol=1e-5)
        np.testing.assert_allclose(item.mask, weighted_mask(aligned.image, aligned.landmarks), atol=1e-3)
        assert item.mask.dtype == np.float32
        assert item.label == label
    np.testing.assert_array_equal(prepared.labels, data.labels)


def test_rerun_recomputes_nothing(tmp_path):
    prepare(CountingFaces(**SETTINGS), size=64, cache_dir=tmp_path, progress=False)
    again = CountingFaces(**SETTINGS)
    prepared = prepare(again, size=64, cache_dir=tmp_path, progress=False)
    assert again.reads == 0
    assert len(prepared) == 24


def test_interrupt_then_resume(tmp_path):
    clean = prepare(SyntheticExpressions(**SETTINGS), size=64, cache_dir=tmp_path / "clean", progress=False)
    interrupted = CountingFaces(**SETTINGS, interrupt_at=14)
    with pytest.raises(KeyboardInterrupt):
        prepare(interrupted, size=64, cache_dir=tmp_path / "cache", chunk_size=4, progress=False)
    folder = next((tmp_path / "cache").glob("prepared-v1/*"))
    done_before = int(np.sum(np.load(folder / "status.npy") == 1))
    assert done_before == 12  # three chunks of 4 finished; the fourth was cut
    with pytest.raises(RuntimeError, match="partly prepared"):
        PreparedDataset(folder)

    resumed_data = CountingFaces(**SETTINGS)
    resumed = prepare(resumed_data, size=64, cache_dir=tmp_path / "cache", chunk_size=4, progress=False)
    assert resumed_data.reads == 24 - done_before  # nothing computed twice
    assert len(resumed) == 24  # nothing lost
    for index in range(24):
        np.testing.assert_array_equal(resumed[index].image, clean[index].image)
        np.testing.assert_array_equal(resumed[index].mask, clean[index].mask)


def test_failures_reported_not_dropped_silently(tmp_path, caplog):
    data = CountingFaces(**SETTINGS, no_landmarks={2, 5}, unreadable={9})
    prepared = prepare(data, size=64, cache_dir=tmp_path, progress=False)
    assert len(prepared) == 21
    assert [failure.index for failure in prepared.failures] == [2, 5, 9]
    assert prepared.failures[0].reason.startswith("invalid landmarks: ")
    assert prepared.failures[2].reason.startswith("unreadable: ")
    assert "face9.jpg" in prepared.failures[2].reason
    stored = json.loads((prepared.folder / "failures.json").read_text())
    assert sorted(stored) == ["2", "5", "9"]
    assert "3 failed" in caplog.text
    assert 2 not in prepared.indices
    # Items keep their labels after the gap.
    assert prepared[2].label == data.labels[3]


def test_retry_failed(tmp_path):
    prepare(CountingFaces(**SETTINGS, unreadable={4}), size=64, cache_dir=tmp_path, progress=False)
    fixed = CountingFaces(**SETTINGS)
    prepared = prepare(fixed, size=64, cache_dir=tmp_path, retry_failed=True, progress=False)
    assert fixed.reads == 1
    assert len(prepared) == 24
    assert prepared.failures == []


def test_key_depends_on_parameters():
    data = SyntheticExpressions(**SETTINGS)
    base = prepare_key(data, 64, {})
    assert prepare_key(SyntheticExpressions(**SETTINGS), 64, {}) == base
    assert prepare_key(data, 96, {}) != base
    assert prepare_key(data, 64, {"n_regions": 8}) != base
    assert prepare_key(SyntheticExpressions(length=24, size=96, seed=4), 64, {}) != base


def test_mask_options_are_used(tmp_path):
    data = SyntheticExpressions(**SETTINGS)
    prepared = prepare(data, size=64, cache_dir=tmp_path, mask_options={"n_regions": 2, "patch_size": 5}, progress=False)
    image, landmarks, _ = data[1]
    aligned = align_and_crop(image, landmarks, size=64)
    expected = weighted_mask(aligned.image, aligned.landmarks, n_regions=2, patch_size=5)
    np.testing.assert_allclose(prepared[1].mask, expected, atol=1e-3)
    with pytest.raises(ValueError, match="patch_size must be odd"):
        prepare(data, size=64, cache_dir=tmp_path, mask_options={"patch_size": 4}, progress=False)


def test_workers_match_single_process(tmp_path):
    data = SyntheticExpressions(length=16, size=96, seed=5)
    single = prepare(data, size=64, cache_dir=tmp_path / "one", progress=False)
    pooled = prepare(data, size=64, cache_dir=tmp_path / "two", workers=2, chunk_size=4, progress=False)
    np.testing.assert_array_equal(np.asarray(single.images), np.asarray(pooled.images))
    np.testing.assert_array_equal(np.asarray(single.masks), np.asarray(pooled.masks))


def test_invalid_inputs(tmp_path):
    data = SyntheticExpressions(length=2, size=64)
    data.transform = lambda sample: sample
    with pytest.raises(ValueError, match="has a transform"):
        prepare(data, size=64, cache_dir=tmp_path)
    with pytest.raises(TypeError, match="no fingerprint"):
        prepare([(np.zeros((64, 64, 3), np.uint8), np.zeros((68, 2)), 0)], size=64, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="at least 32"):
        prepare(SyntheticExpressions(length=2, size=64), size=16, cache_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="not a prepared dataset"):
        PreparedDataset(tmp_path)


def test_loader_with_augmentation(tmp_path):
    transform = Compose(FaceAugment(), to_tensors)
    prepared = prepare(SyntheticExpressions(**SETTINGS), size=64, cache_dir=tmp_path, transform=transform, progress=False)
    images, landmarks, masks, labels = next(iter(DataLoader(prepared, batch_size=8)))
    assert images.shape == (8, 3, 64, 64)
    assert landmarks.shape == (8, 68, 2)
    assert masks.shape == (8, 64, 64)
    assert labels.shape == (8,)
