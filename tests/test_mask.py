"""Weighted mask: band correlations, patches, parameters, odd inputs, batch and torch versions."""

import logging

import numpy as np
import pytest
import torch

from oaenet_helpers import faces, mask
from oaenet_helpers.mask_torch import weighted_mask_torch


def striped_face(size: int = 64) -> np.ndarray:
    """Vertical stripes two pixels wide: every interior |g_col| is 40, every g_row is 0."""
    columns = np.where((np.arange(size) // 2) % 2 == 0, 100, 140).astype(np.uint8)
    return np.repeat(np.tile(columns, (size, 1))[:, :, None], 3, axis=2)


def textured_face(rng, size: int = 64) -> np.ndarray:
    """A smooth random face-like texture with every orientation present."""
    import cv2

    noise = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), 2.0)


def reference_paper_rho(face: np.ndarray, n_regions: int, orientations: int) -> np.ndarray:
    """Paper-mode ρ written directly from its definition, without lookup tables."""
    image = face.astype(np.float64)
    g_row = np.zeros_like(image)
    g_col = np.zeros_like(image)
    g_row[1:-1] = image[2:] - image[:-2]
    g_col[:, 1:-1] = image[:, 2:] - image[:, :-2]
    strongest = np.hypot(g_row, g_col).argmax(axis=2)[:, :, None]
    g_row = np.take_along_axis(g_row, strongest, axis=2)[:, :, 0]
    g_col = np.take_along_axis(g_col, strongest, axis=2)[:, :, 0]
    magnitude = np.hypot(g_row, g_col)
    degrees = np.degrees(np.arctan2(g_row, g_col)) % 180
    bins = np.minimum((degrees // (180 / orientations)).astype(int), orientations - 1)

    def histogram(rows: slice) -> np.ndarray:
        return np.array([magnitude[rows][bins[rows] == k].sum() for k in range(orientations)])

    size = face.shape[0]
    whole = histogram(slice(0, size))
    rho = []
    for i in range(n_regions):
        band = histogram(slice(i * size // n_regions, (i + 1) * size // n_regions))
        if band.std() == 0 or whole.std() == 0:
            rho.append(0.0)
        else:
            rho.append(float(np.clip(np.corrcoef(band, whole)[0, 1], 0.0, 1.0)))
    return np.array(rho)


def all_at(point, count: int = 68) -> np.ndarray:
    return np.tile(np.asarray(point, dtype=np.float32), (count, 1))


# --------------------------------------------------------------------------
# Band correlations


def test_stripes_band_histograms_exact():
    bands, whole = mask.band_histograms(striped_face(64), n_regions=4, orientations=8)
    # Each row has 62 interior columns with magnitude 40, all at 0 degrees.
    expected_band = np.zeros(8)
    expected_band[0] = 16 * 62 * 40
    for band in bands:
        np.testing.assert_array_equal(band, expected_band)
    np.testing.assert_array_equal(whole, 4 * expected_band)


@pytest.mark.parametrize("mode", ["paper", "official"])
def test_stripes_correlate_fully(mode):
    rho = mask.region_correlations(striped_face(64), n_regions=4, orientations=8, mode=mode)
    np.testing.assert_allclose(rho, np.ones(4), atol=1e-12)


@pytest.mark.parametrize("size,n_regions,orientations", [(64, 4, 8), (100, 3, 9), (48, 5, 6), (224, 4, 8)])
def test_paper_rho_matches_definition(rng, size, n_regions, orientations):
    face = textured_face(rng, size)
    expected = reference_paper_rho(face, n_regions, orientations)
    actual = mask.region_correlations(face, n_regions, orientations)
    np.testing.assert_allclose(actual, expected, atol=1e-9)


def test_constant_face_has_defined_rho():
    face = np.full((64, 64, 3), 90, np.uint8)
    paper = mask.region_correlations(face)
    official = mask.region_correlations(face, mode="official")
    np.testing.assert_array_equal(paper, np.zeros(4))
    np.testing.assert_array_equal(official, np.ones(4))


def test_flat_band_gets_zero(rng):
    face = textured_face(rng, 64)
    face[40:] = 128  # rows 48-63 (band 3) and their neighbours are flat
    rho = mask.region_correlations(face, n_regions=4)
    assert rho[3] == 0.0
    assert np.all(rho[:2] > 0.5)


def test_constant_face_mask_has_no_nan():
    face = np.full((64, 64, 3), 90, np.uint8)
    for mode in ("paper", "official"):
        result = mask.weighted_mask(face, all_at((30, 30)), mode=mode)
        assert np.isfinite(result).all()


# --------------------------------------------------------------------------
# Patches


def test_patch_follows_formula():
    face = np.full((64, 64, 3), 50, np.uint8)  # every band gets 0 in paper mode
    result = mask.weighted_mask(face, all_at((20.3, 30.4)), patch_size=7)
    expected = np.zeros((64, 64), np.float32)
    for dy in range(-3, 4):
        for dx in range(-3, 4):
            expected[30 + dy, 20 + dx] = 1 - abs(dy) / 7 - abs(dx) / 7
    assert result[30, 20] == 1.0
    np.testing.assert_allclose(result, expected, atol=1e-7)


def test_patch_weights_values():
    weights = mask.patch_weights(15)
    assert weights.shape == (15, 15)
    assert weights[7, 7] == 1.0
    assert weights[0, 0] == pytest.approx(1 / 15)
    assert weights[7, 0] == pytest.approx(8 / 15)


def test_overlap_max_keeps_larger():
    face = np.full((64, 64, 3), 50, np.uint8)
    points = np.concatenate([all_at((20, 20), 34), all_at((24, 20), 34)])
    result = mask.weighted_mask(face, points, patch_size=9, combine="max")
    assert result[20, 21] == pytest.approx(1 - 1 / 9)
    assert result[20, 23] == pytest.approx(1 - 1 / 9)
    assert result[20, 22] == pytest.approx(1 - 2 / 9)


def test_overlap_overwrite_last_wins():
    face = np.full((64, 64, 3), 50, np.uint8)
    points = np.concatenate([all_at((20, 20), 34), all_at((24, 20), 34)])
    result = mask.weighted_mask(face, points, patch_size=9, combine="overwrite")
    assert result[20, 21] == pytest.approx(1 - 3 / 9)  # written by the later patch at x = 24
    assert result[20, 24] == 1.0
    assert result[20, 17] == pytest.approx(1 - 3 / 9)  # only the first patch reaches x = 17


def test_landmarks_outside_paint_partial_patches():
    face = np.full((48, 48), 77, np.uint8)  # 48x48 grayscale, the FER2013 size
    points = np.concatenate([all_at((-5, 24), 34), all_at((48 + 3, 24), 34)])
    result = mask.weighted_mask(face, points, patch_size=15)
    assert result.shape == (48, 48)
    assert result[24, 0] == pytest.approx(1 - 5 / 15)
    assert result[24, 2] == pytest.approx(1 - 7 / 15)
    assert result[24, 3] == 0.0
    assert result[24, 47] == pytest.approx(1 - 4 / 15)
    assert result[24, 43] == 0.0


def test_landmarks_outside_skipped_in_official_mode():
    face = np.full((48, 48), 77, np.uint8)
    points = np.concatenate([all_at((-5, 24), 34), all_at((48 + 3, 24), 34)])
    result = mask.weighted_mask(face, points, patch_size=15, mode="official")
    # A constant face gives ρ = 1 in official mode, and no patch is painted.
    np.testing.assert_array_equal(result, np.ones((48, 48), np.float32))


def test_far_landmarks_logged_not_crashing(caplog):
    face = np.full((64, 64, 3), 50, np.uint8)
    points = all_at((1e30, -1e30))
    with caplog.at_level(logging.WARNING, logger="oaenet_helpers.mask"):
        result = mask.weighted_mask(face, points)
    np.testing.assert_array_equal(result, np.zeros((64, 64), np.float32))
    assert "68 landmark(s) lie so far outside" in caplog.text


def test_landmark_groups_limit_patches():
    face = np.full((64, 64, 3), 50, np.uint8)
    points = np.zeros((68, 2), np.float32)
    points[:, 0] = np.arange(68) % 60 + 2
    points[:, 1] = 10
    points[48:68] = (40, 50)  # mouth
    only_mouth = mask.weighted_mask(face, points, landmark_groups=["mouth"])
    assert only_mouth[50, 40] == 1.0
    assert only_mouth[10, 5] == 0.0
    with pytest.raises(ValueError, match="Unknown landmark group 'ears'"):
        mask.weighted_mask(face, points, landmark_groups=["ears"])


# --------------------------------------------------------------------------
# Shapes, ranges and parameters


@pytest.mark.parametrize("size", [32, 48, 97, 224])
@pytest.mark.parametrize("mode", ["paper", "official"])
def test_mask_shape_and_range(rng, size, mode):
    face = textured_face(rng, size)
    points = rng.uniform(0, size, (68, 2))
    result = mask.weighted_mask(face, points, patch_size=min(15, size // 2 * 2 - 1), mode=mode)
    assert result.shape == (size, size)
    assert result.dtype == np.float32
    assert np.isfinite(result).all()
    low = 0.0 if mode == "paper" else -1.0
    assert result.min() >= low
    assert result.max() <= 1.0


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"n_regions": 0}, "n_regions must be in"),
        ({"n_regions": 17}, "n_regions must be in"),
        ({"orientations": 1}, "orientations must be in"),
        ({"orientations": 33}, "orientations must be in"),
        ({"patch_size": 14}, "patch_size must be odd"),
        ({"patch_size": 65}, "patch_size must be in"),
        ({"patch_size": 2.0}, "patch_size must be an integer"),
        ({"mode": "fast"}, "mode must be one of"),
        ({"combine": "sum"}, "combine must be one of"),
        ({"mode": "official", "combine": "max"}, "always overwrites"),
    ],
)
def test_invalid_parameters_rejected(kwargs, message):
    face = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(ValueError, match=message):
        mask.weighted_mask(face, all_at((10, 10)), **kwargs)


def test_small_face_rejected():
    with pytest.raises(ValueError, match="at least 32x32"):
        mask.weighted_mask(np.zeros((31, 31, 3), np.uint8), all_at((10, 10)))


@pytest.mark.parametrize("n_regions", [17, 40, 225])
def test_more_regions_than_allowed_rejected(n_regions):
    # The range check comes first, so the message gives the real limit.
    with pytest.raises(ValueError, match=r"n_regions must be in \[1, 16\]"):
        mask.check_params(32, n_regions=n_regions)


def test_non_square_face_rejected():
    with pytest.raises(ValueError, match="must be square"):
        mask.weighted_mask(np.zeros((64, 80, 3), np.uint8), all_at((10, 10)))


def test_nan_landmark_names_index():
    points = all_at((10, 10))
    points[5, 1] = np.nan
    with pytest.raises(ValueError, match="index 5"):
        mask.weighted_mask(np.zeros((64, 64, 3), np.uint8), points)


def test_wrong_landmark_shape_rejected():
    with pytest.raises(ValueError, match=r"shape \(68, 2\)"):
        mask.weighted_mask(np.zeros((64, 64, 3), np.uint8), np.zeros((5, 2)))


# --------------------------------------------------------------------------
# Input forms


def test_landmark_types_agree(rng):
    face = textured_face(rng, 64)
    points = rng.integers(0, 64, (68, 2))
    as_float = mask.weighted_mask(face, points.astype(np.float32))
    as_int = mask.weighted_mask(face, points)
    as_list = mask.weighted_mask(face, points.tolist())
    np.testing.assert_array_equal(as_int, as_float)
    np.testing.assert_array_equal(as_list, as_float)


def test_face_forms_agree(rng):
    rgb = textured_face(rng, 64)
    gray = rgb[:, :, 0].copy()
    points = rng.uniform(0, 64, (68, 2))
    reference_gray = mask.weighted_mask(np.repeat(gray[:, :, None], 3, axis=2), points)
    np.testing.assert_array_equal(mask.weighted_mask(gray, points), reference_gray)
    np.testing.assert_array_equal(mask.weighted_mask(gray[:, :, None], points), reference_gray)

    reference = mask.weighted_mask(rgb, points)
    rgba = np.dstack([rgb, np.full((64, 64), 255, np.uint8)])
    view = rgba[:, :, :3]
    assert not view.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(mask.weighted_mask(rgba, points), reference)
    np.testing.assert_array_equal(mask.weighted_mask(view, points), reference)
    np.testing.assert_array_equal(mask.weighted_mask(rgb.astype(np.uint16) * 257, points), reference)
    np.testing.assert_array_equal(mask.weighted_mask(rgb / 255.0, points), reference)


def test_inputs_not_modified(rng):
    face = textured_face(rng, 64)
    points = rng.uniform(0, 64, (68, 2))
    face_before, points_before = face.copy(), points.copy()
    mask.weighted_mask(face, points)
    mask.weighted_mask_batch(face[None], points[None], mode="official")
    np.testing.assert_array_equal(face, face_before)
    np.testing.assert_array_equal(points, points_before)


def test_face_half_outside_top_left(astronaut, astronaut_face):
    left, top, right, bottom = astronaut_face.box
    x0, y0 = (left + right) // 2, (top + bottom) // 2
    shifted = astronaut[y0:, x0:]
    points = astronaut_face.landmarks - np.array([x0, y0], np.float32)
    aligned = faces.align_and_crop(shifted, points, size=224)
    result = mask.weighted_mask(aligned.image, aligned.landmarks)
    assert np.isfinite(result).all()
    assert result.min() >= 0.0
    assert result.max() == 1.0  # some landmark patch lies inside the crop


# --------------------------------------------------------------------------
# Batch and torch versions


@pytest.mark.parametrize("mode,combine", [("paper", "max"), ("paper", "overwrite"), ("official", None)])
def test_batch_equals_single(rng, mode, combine):
    batch = np.stack([textured_face(rng, 96) for _ in range(6)])
    batch[2] = 33  # a constant face in the batch
    points = rng.uniform(-10, 106, (6, 68, 2))
    masks = mask.weighted_mask_batch(batch, points, n_regions=3, mode=mode, combine=combine)
    assert masks.shape == (6, 96, 96)
    for face, face_points, result in zip(batch, points, masks):
        expected = mask.weighted_mask(face, face_points, n_regions=3, mode=mode, combine=combine)
        np.testing.assert_array_equal(result, expected)


def test_batch_nan_names_face_and_index(rng):
    points = rng.uniform(0, 64, (3, 68, 2))
    points[2, 7, 0] = np.inf
    with pytest.raises(ValueError, match="face 2 .* index 7"):
        mask.weighted_mask_batch(np.zeros((3, 64, 64, 3), np.uint8), points)


def sample_batch(rng):
    aligned = [faces.detect_and_align(faces.sample_image(name)) for name in ("astronaut", "grace_hopper")]
    generated = [textured_face(rng, 224), np.full((224, 224, 3), 9, np.uint8)]
    images = np.stack([a.image for a in aligned] + generated)
    points = np.stack([a.landmarks for a in aligned] + [rng.uniform(-5, 227, (68, 2)) for _ in generated])
    return images, points


@pytest.mark.parametrize("combine", ["max", "overwrite"])
def test_torch_paper_equals_numpy(rng, combine):
    images, points = sample_batch(rng)
    expected = mask.weighted_mask_batch(images, points, combine=combine)
    actual = weighted_mask_torch(torch.from_numpy(images), torch.from_numpy(points), combine=combine)
    assert actual.dtype == torch.float32
    assert actual.device == torch.device("cpu")
    np.testing.assert_allclose(actual.numpy(), expected, atol=1e-5)


def test_torch_official_close_to_numpy(rng):
    images, points = sample_batch(rng)
    expected = mask.weighted_mask_batch(images, points, mode="official")
    actual = weighted_mask_torch(torch.from_numpy(images), torch.from_numpy(points), mode="official")
    # float64 cell sums instead of scikit-image's float32 ones (see mask_torch).
    np.testing.assert_allclose(actual.numpy(), expected, atol=1e-4)


@pytest.mark.parametrize("size,n_regions,orientations,patch_size", [(48, 2, 9, 5), (100, 3, 7, 9), (65, 16, 32, 1)])
def test_torch_other_sizes(rng, size, n_regions, orientations, patch_size):
    images = np.stack([textured_face(rng, size) for _ in range(3)])
    points = rng.uniform(-5, size + 3, (3, 68, 2))
    args = (n_regions, orientations, patch_size)
    expected = mask.weighted_mask_batch(images, points, *args)
    actual = weighted_mask_torch(torch.from_numpy(images), torch.from_numpy(points), *args)
    np.testing.assert_allclose(actual.numpy(), expected, atol=1e-5)


def test_torch_single_face_and_errors(rng):
    face = torch.from_numpy(textured_face(rng, 64))
    points = torch.from_numpy(rng.uniform(0, 64, (68, 2)))
    assert weighted_mask_torch(face, points).shape == (64, 64)
    with pytest.raises(ValueError, match="uint8"):
        weighted_mask_torch(face.float(), points)
    with pytest.raises(ValueError, match=r"permute"):
        weighted_mask_torch(face.permute(2, 0, 1), points)
    bad = points.clone()
    bad[3, 0] = float("nan")
    with pytest.raises(ValueError, match="index 3"):
        weighted_mask_torch(face, bad)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_torch_on_cuda_equals_numpy(rng):
    images, points = sample_batch(rng)
    expected = mask.weighted_mask_batch(images, points)
    actual = weighted_mask_torch(torch.from_numpy(images).cuda(), torch.from_numpy(points).cuda())
    assert actual.device.type == "cuda"
    np.testing.assert_allclose(actual.cpu().numpy(), expected, atol=1e-5)
