"""mode="official" against an oracle of the official algorithm built on skimage.feature.hog.

The oracle follows the description of the official ``utils/weight_mask.py``.
It computes HOG cells of (S, S // N) and (S, S) pixels with one cell per
block, the L1 block norm and K orientations over the 3 channels. np.corrcoef
compares each column cell with the whole face, and NaN or out-of-range values
become 1. Those values fill bands of S // N rows in a mask padded by M // 2
ones. Each landmark's M x M patch is then written over it in order, unless its
padded window starts left of or above the padding or reaches the last padded
row or column.
"""

import cv2
import numpy as np
import pytest
from skimage.feature import hog

from oaenet_helpers import faces, mask


def oracle_rho(face: np.ndarray, n_regions: int = 4, orientations: int = 8) -> np.ndarray:
    size = face.shape[0]
    options = dict(orientations=orientations, cells_per_block=(1, 1), block_norm="L1", channel_axis=2)
    columns = hog(face, pixels_per_cell=(size, size // n_regions), **options).reshape(-1, orientations)
    whole = hog(face, pixels_per_cell=(size, size), **options)
    rho = np.empty(n_regions)
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(n_regions):
            value = np.corrcoef(columns[i], whole)[0, 1]
            rho[i] = value if -1 <= value <= 1 else 1.0
    return rho


def oracle_mask(face, landmarks, n_regions=4, orientations=8, patch_size=15) -> np.ndarray:
    size = face.shape[0]
    rho = oracle_rho(face, n_regions, orientations)
    height = size // n_regions
    half = patch_size // 2
    pad = half
    bands = np.zeros((size, size))
    for i in range(n_regions):
        bands[i * height : (i + 1) * height] = rho[i]
    padded = np.ones((size + 2 * pad, size + 2 * pad))
    padded[pad : pad + size, pad : pad + size] = bands
    offsets = np.abs(np.arange(patch_size) - half)
    patch = 1 - offsets[:, None] / patch_size - offsets[None, :] / patch_size
    for x, y in landmarks:
        x, y = int(x), int(y)
        top, bottom = y - half + pad, y + half + 1 + pad
        left, right = x - half + pad, x + half + 1 + pad
        if top < 0 or left < 0 or bottom >= size + 2 * pad or right >= size + 2 * pad:
            continue
        padded[top:bottom, left:right] = patch
    return padded[pad : pad + size, pad : pad + size]


@pytest.fixture(scope="module")
def portraits():
    return [faces.detect_and_align(faces.sample_image(name)) for name in ("astronaut", "grace_hopper")]


def generated_faces(size: int, rng) -> dict[str, np.ndarray]:
    noise = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    ramp = np.tile(np.linspace(0, 255, size).astype(np.uint8)[None, :, None], (size, 1, 3))
    gray = cv2.GaussianBlur(noise[:, :, 0], (0, 0), 1.5)
    return {
        "noise": noise,
        "blurred": cv2.GaussianBlur(noise, (0, 0), 3.0),
        "constant": np.full((size, size, 3), 200, np.uint8),
        "ramp": ramp,
        "gray": np.repeat(gray[:, :, None], 3, axis=2),
    }


def test_portraits_match_oracle(portraits):
    for aligned in portraits:
        expected = oracle_mask(aligned.image, aligned.landmarks)
        actual = mask.weighted_mask(aligned.image, aligned.landmarks, mode="official")
        np.testing.assert_allclose(actual, expected, atol=1e-6)
        rho = mask.region_correlations(aligned.image, mode="official")
        np.testing.assert_allclose(rho, oracle_rho(aligned.image), atol=1e-6)


def test_portraits_batch_matches_oracle(portraits):
    images = np.stack([a.image for a in portraits])
    points = np.stack([a.landmarks for a in portraits])
    masks = mask.weighted_mask_batch(images, points, mode="official")
    for aligned, actual in zip(portraits, masks):
        np.testing.assert_allclose(actual, oracle_mask(aligned.image, aligned.landmarks), atol=1e-6)


@pytest.mark.parametrize(
    "size,n_regions,orientations,patch_size",
    [(224, 4, 8, 15), (100, 3, 7, 9), (65, 5, 8, 15), (48, 2, 9, 5), (224, 16, 32, 1), (33, 1, 2, 33)],
)
def test_generated_faces_match_oracle(rng, size, n_regions, orientations, patch_size):
    for name, face in generated_faces(size, rng).items():
        points = rng.uniform(-5, size + 3, (68, 2))
        expected = oracle_mask(face, points, n_regions, orientations, patch_size)
        actual = mask.weighted_mask(face, points, n_regions, orientations, patch_size, mode="official")
        np.testing.assert_allclose(actual, expected, atol=1e-6, err_msg=name)


def test_landmark_skip_rule():
    face = np.full((224, 224, 3), 10, np.uint8)  # ρ = 1 everywhere, so a patch shows as values < 1
    cases = [(0.0, True), (-0.5, True), (-1.0, False), (222.9, True), (222.999999, True), (223.0, False), (224.5, False)]
    for x, painted in cases:
        points = np.tile([[x, 100.0]], (68, 1))
        result = mask.weighted_mask(face, points, mode="official")
        assert (result.min() < 1.0) == painted, f"landmark at x={x}"
        np.testing.assert_array_equal(mask.official_painted(points, 224), np.full(68, painted))


def test_columns_painted_as_bands():
    # Strong horizontal stripes fill the right three 56-px columns, and the left
    # column has faint vertical stripes. Its histogram is then anti-correlated
    # with the whole face's, and the official code keeps the negative value.
    face = np.full((224, 224, 3), 128, np.uint8)
    rows = np.where((np.arange(224) // 2) % 2 == 0, 0, 255).astype(np.uint8)
    face[:, 56:] = rows[:, None, None]
    columns = np.where((np.arange(56) // 2) % 2 == 0, 120, 136).astype(np.uint8)
    face[:, :56] = columns[None, :, None]
    rho = mask.region_correlations(face, mode="official")
    np.testing.assert_allclose(rho, oracle_rho(face), atol=1e-6)
    assert rho[0] < 0
    far = np.full((68, 2), -100.0)
    result = mask.weighted_mask(face, far, mode="official")
    # Column 0's value fills the top band (rows 0-55), not the left column.
    np.testing.assert_allclose(result[:56], np.full((56, 224), rho[0]), atol=1e-6)
    np.testing.assert_allclose(result[168:], np.full((56, 224), rho[3]), atol=1e-6)
    paper = mask.weighted_mask(face, far)
    assert paper.min() >= 0.0
