import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from PIL import Image

from oaenet_helpers import faces
from oaenet_helpers.landmark_cache import CACHE_VERSION, cached_paths, landmarks_for, settings_key

# Written to a file so that spawned worker processes and a child Python can import it.
DETECTOR_MODULE = textwrap.dedent(
    '''
    import time

    import numpy as np

    from oaenet_helpers.faces import NoFaceError


    class MeanDetector:
        """Landmarks derived from the image's mean colour; a flat image has no face."""

        key = "mean-colour-test-detector"

        def __init__(self, delay=0.0):
            self.delay = delay
            self.calls = 0

        def __call__(self, image):
            self.calls += 1
            if self.delay:
                time.sleep(self.delay)
            if image.std() < 1.0:
                raise NoFaceError("flat image")
            mean = image.reshape(-1, 3).mean(axis=0)
            index = np.arange(68, dtype=np.float32)
            return np.stack([index + mean[0], 0.5 * index + mean[1]], axis=1).astype(np.float32)


    class OtherDetector(MeanDetector):
        key = "another-test-detector"
    '''
)


@pytest.fixture
def detectors(tmp_path, monkeypatch):
    folder = tmp_path / "detector_module"
    folder.mkdir()
    (folder / "fake_detectors.py").write_text(DETECTOR_MODULE)
    monkeypatch.syspath_prepend(str(folder))
    import importlib

    import fake_detectors

    return importlib.reload(fake_detectors)


def make_images(folder, count, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        image = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
        path = folder / f"img{index:03d}.png"
        Image.fromarray(image).save(path)
        paths.append(path)
    return paths


def expected(detectors, path):
    return detectors.MeanDetector()(faces.load_image(path))


def test_results_and_failure_reasons(tmp_path, detectors):
    paths = make_images(tmp_path / "images", 4)
    flat = tmp_path / "images" / "flat.png"
    Image.fromarray(np.full((24, 24, 3), 90, np.uint8)).save(flat)
    text = tmp_path / "images" / "text.jpg"
    text.write_text("this is not an image")
    missing = tmp_path / "images" / "missing.png"
    detector = detectors.MeanDetector()
    result = landmarks_for([*paths, flat, text, missing], tmp_path / "cache", detector=detector, progress=False)

    assert len(result.landmarks) == 7
    for path, points in zip(paths, result.landmarks):
        np.testing.assert_array_equal(points, expected(detectors, path))
    assert result.landmarks[4:] == [None, None, None]
    reasons = {failure.path: failure.reason for failure in result.failures}
    assert reasons[str(flat)] == "no face found"
    assert reasons[str(text)].startswith("unreadable: ")
    assert reasons[str(missing)] == "file not found"
    assert result.computed == 6
    assert detector.calls == 5  # the unreadable file fails before the detector


def test_rerun_reads_everything_from_cache(tmp_path, detectors):
    paths = make_images(tmp_path / "images", 5)
    flat = tmp_path / "images" / "flat.png"
    Image.fromarray(np.zeros((24, 24, 3), np.uint8)).save(flat)
    first = landmarks_for([*paths, flat], tmp_path / "cache", detector=detectors.MeanDetector(), progress=False)
    detector = detectors.MeanDetector()
    second = landmarks_for([*paths, flat], tmp_path / "cache", detector=detector, progress=False)
    assert detector.calls == 0
    assert second.computed == 0
    assert second.cached == 6
    assert second.failures == first.failures
    for a, b in zip(first.landmarks[:5], second.landmarks[:5]):
        np.testing.assert_array_equal(a, b)


def test_keyed_on_content(tmp_path, detectors):
    paths = make_images(tmp_path / "images", 3)
    landmarks_for(paths, tmp_path / "cache", detector=detectors.MeanDetector(), progress=False)
    # A renamed copy is found by content; an edited file is detected again.
    copy = tmp_path / "images" / "renamed.png"
    copy.write_bytes(paths[0].read_bytes())
    Image.fromarray(np.random.default_rng(99).integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(paths[1])
    detector = detectors.MeanDetector()
    result = landmarks_for([copy, *paths], tmp_path / "cache", detector=detector, progress=False)
    assert detector.calls == 1
    np.testing.assert_array_equal(result.landmarks[2], expected(detectors, paths[1]))


def test_duplicates_detected_once(tmp_path, detectors):
    paths = make_images(tmp_path / "images", 2)
    detector = detectors.MeanDetector()
    result = landmarks_for([paths[0], paths[1], paths[0]], tmp_path / "cache", detector=detector, progress=False)
    assert detector.calls == 2
    np.testing.assert_array_equal(result.landmarks[0], result.landmarks[2])


def test_detector_settings_keep_separate_caches(tmp_path, detectors):
    paths = make_images(tmp_path / "images", 2)
    landmarks_for(paths, tmp_path / "cache", detector=detectors.MeanDetector(), progress=False)
    other = detectors.OtherDetector()
    landmarks_for(paths, tmp_path / "cache", detector=other, progress=False)
    assert other.calls == 2
    assert settings_key(detectors.MeanDetector()) != settings_key(other)
    root = tmp_path / "cache" / f"landmarks-v{CACHE_VERSION}"
    assert len([entry for entry in root.iterdir() if entry.is_dir()]) == 2


def test_workers_match_single_process(tmp_path, detectors):
    paths = make_images(tmp_path / "images", 6)
    single = landmarks_for(paths, tmp_path / "cache1", detector=detectors.MeanDetector(), progress=False)
    pooled = landmarks_for(paths, tmp_path / "cache2", workers=2, detector=detectors.MeanDetector(), progress=False)
    assert pooled.computed == 6
    for a, b in zip(single.landmarks, pooled.landmarks):
        np.testing.assert_array_equal(a, b)


def test_invalid_workers(tmp_path):
    with pytest.raises(ValueError, match="workers must be a positive integer"):
        landmarks_for([], tmp_path, workers=0)


def test_faces_wrapper_calls_cache(tmp_path, detectors):
    paths = make_images(tmp_path / "images", 2)
    result = faces.landmarks_for(paths, tmp_path / "cache", detector=detectors.MeanDetector(), progress=False)
    assert result.computed == 2


def test_interrupt_then_resume(tmp_path, detectors):
    count = 24
    paths = make_images(tmp_path / "images", count)
    cache = tmp_path / "cache"
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(tmp_path / "detector_module")!r})
        from fake_detectors import MeanDetector
        from oaenet_helpers.landmark_cache import landmarks_for
        paths = {[str(path) for path in paths]!r}
        landmarks_for(paths, {str(cache)!r}, workers=2, detector=MeanDetector(delay=0.25), progress=False)
        """
    )
    # Its own session, so one signal stops the parent and its workers at once.
    child = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    deadline = time.monotonic() + 120
    try:
        while cached_paths(paths, cache, detectors.MeanDetector()) < count // 3:
            assert child.poll() is None, "the child finished before it could be interrupted"
            assert time.monotonic() < deadline, "the child cached too few images in 120 s"
            time.sleep(0.05)
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()

    done_before = cached_paths(paths, cache, detectors.MeanDetector())
    assert count // 3 <= done_before < count
    detector = detectors.MeanDetector()
    resumed = landmarks_for(paths, cache, detector=detector, progress=False)
    assert detector.calls == count - done_before  # nothing computed twice
    assert resumed.cached == done_before
    assert resumed.failures == []  # nothing lost
    for path, points in zip(paths, resumed.landmarks):
        np.testing.assert_array_equal(points, expected(detectors, path))
