"""The numba kernels and the NumPy path of the weighted mask give the same masks."""

import numpy as np
import pytest

from oaenet_helpers import mask

kernels = pytest.importorskip("oaenet_helpers._mask_kernels", reason="numba is not installed")


def faces_for(size, rng):
    """Return a batch of hard faces: noise, flat, saturated, gray-as-RGB and a smooth ramp."""
    noise = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    flat = np.full((size, size, 3), 77, np.uint8)
    saturated = np.where(rng.random((size, size, 1)) < 0.5, 0, 255).astype(np.uint8).repeat(3, axis=2)
    gray = np.repeat(rng.integers(0, 256, (size, size, 1), dtype=np.uint8), 3, axis=2)
    y, x = np.mgrid[0:size, 0:size]
    ramp = np.stack([x * 3 % 256, y * 5 % 256, (x + y) % 256], axis=2).astype(np.uint8)
    return np.stack([noise, flat, saturated, gray, ramp])


def landmarks_for(count, size, rng):
    points = rng.uniform(-0.1 * size, 1.1 * size, (count, 68, 2))
    points[:, 0] = (-5, size / 2)  # left of the face
    points[:, 1] = (size + 3, size / 2)  # right of the face
    points[:, 2] = (size - 1.5, size - 1.2)  # on the last row and column
    return points


def both_backends(monkeypatch, function):
    monkeypatch.setenv("OAENET_MASK_BACKEND", "numpy")
    assert mask.compiled_kernels() is None
    reference = function()
    monkeypatch.setenv("OAENET_MASK_BACKEND", "auto")
    assert mask.compiled_kernels() is kernels
    return reference, function()


@pytest.mark.parametrize("size", [32, 57, 96, 224])
@pytest.mark.parametrize(
    ("mode", "combine", "n_regions", "orientations", "patch_size"),
    [
        ("paper", "max", 4, 8, 15),
        ("paper", "overwrite", 5, 9, 7),
        ("paper", "max", 16, 2, 1),
        ("official", None, 4, 8, 15),
        ("official", None, 3, 32, 9),
    ],
)
def test_backends_give_equal_masks(monkeypatch, size, mode, combine, n_regions, orientations, patch_size):
    rng = np.random.default_rng(size)
    faces = faces_for(size, rng)
    points = landmarks_for(len(faces), size, rng)

    def compute():
        return mask.weighted_mask_batch(faces, points, n_regions, orientations, patch_size, mode, combine)

    reference, compiled = both_backends(monkeypatch, compute)
    assert compiled.dtype == np.float32
    np.testing.assert_array_equal(compiled, reference)


@pytest.mark.parametrize("mode", ["paper", "official"])
def test_backends_give_equal_histograms(monkeypatch, mode):
    rng = np.random.default_rng(1)
    faces = faces_for(64, rng)
    params = mask.check_params(64, 4, 8, 15, mode, None)
    reference, compiled = both_backends(monkeypatch, lambda: mask.region_histograms(faces, params))
    np.testing.assert_array_equal(compiled[0], reference[0])
    np.testing.assert_array_equal(compiled[1], reference[1])


def test_kernel_gradients_match_select_gradients():
    rng = np.random.default_rng(2)
    faces = faces_for(48, rng)
    magnitude, _ = mask.orientation_tables(8)
    for face in faces:
        planes = np.ascontiguousarray(np.moveaxis(face, -1, 0), dtype=np.int32)
        codes, squares = kernels.strongest_gradients(
            planes, magnitude, mask._ambiguous_squares(), mask._smallest_ambiguous_square()
        )
        expected_codes, expected_squares = mask.select_gradients(face[None])
        np.testing.assert_array_equal(codes, expected_codes[0])
        np.testing.assert_array_equal(squares, expected_squares[0])


def test_numpy_backend_chosen_by_environment(monkeypatch):
    monkeypatch.setenv("OAENET_MASK_BACKEND", "numpy")
    assert mask.compiled_kernels() is None
    monkeypatch.setenv("OAENET_MASK_BACKEND", "NumPy")
    assert mask.compiled_kernels() is None
