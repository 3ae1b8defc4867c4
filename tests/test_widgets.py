"""mask_explorer: widgets drive the mask, and the figure is redrawn in place."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from oaenet_helpers import faces, mask
from oaenet_helpers.widgets import MaskExplorer, mask_explorer


@pytest.fixture(scope="module")
def aligned():
    return faces.detect_and_align(faces.sample_image("astronaut"))


@pytest.fixture
def explorer(aligned):
    return mask_explorer(aligned)


def expected_mask(aligned, **kwargs):
    return mask.weighted_mask(aligned.image, aligned.landmarks, **kwargs)


def test_initial_mask_is_paper_default(explorer, aligned):
    np.testing.assert_array_equal(explorer.mask, expected_mask(aligned))
    assert bytes(explorer.image.value[:8]) == b"\x89PNG\r\n\x1a\n"


def test_sliders_change_mask(explorer, aligned):
    before = explorer.mask.copy()
    explorer.n_slider.value = 8
    explorer.k_slider.value = 12
    explorer.m_slider.value = 5
    np.testing.assert_array_equal(explorer.mask, expected_mask(aligned, n_regions=8, orientations=12, patch_size=5))
    assert not np.array_equal(explorer.mask, before)


def test_mode_toggle_uses_official(explorer, aligned):
    explorer.mode_toggle.value = "official"
    np.testing.assert_array_equal(explorer.mask, expected_mask(aligned, mode="official"))


def test_unchecked_groups_lose_patches(explorer, aligned):
    for name in ("jaw", "brows", "nose", "eyes"):
        explorer.group_boxes[name].value = False
    assert explorer.groups == ["mouth"]
    np.testing.assert_array_equal(explorer.mask, expected_mask(aligned, landmark_groups=["mouth"]))
    eye = aligned.landmarks[36].round().astype(int)
    assert explorer.mask[eye[1], eye[0]] < 1.0
    mouth = aligned.landmarks[48].round().astype(int)
    assert explorer.mask[mouth[1], mouth[0]] == 1.0


def test_redraws_in_place(explorer):
    figures_before = plt.get_fignums()
    figure, image_widget = explorer.figure, explorer.image
    first_png = bytes(explorer.image.value)
    explorer.n_slider.value = 2
    assert explorer.figure is figure
    assert explorer.image is image_widget
    assert bytes(explorer.image.value) != first_png
    assert plt.get_fignums() == figures_before


def test_opacity_changes_picture_not_mask(explorer):
    mask_before = explorer.mask.copy()
    png_before = bytes(explorer.image.value)
    explorer.opacity_slider.value = 1.0
    np.testing.assert_array_equal(explorer.mask, mask_before)
    assert explorer._overlay.get_alpha() == 1.0
    assert bytes(explorer.image.value) != png_before


def test_patch_slider_moves_in_odd_steps(explorer):
    assert explorer.m_slider.step == 2
    assert explorer.m_slider.min == 1
    assert explorer.m_slider.max == 223


def test_square_crop_with_landmarks_used_as_is():
    rng = np.random.default_rng(1)
    face = rng.integers(0, 256, (48, 48), dtype=np.uint8)  # FER2013-sized grayscale crop
    points = rng.uniform(0, 48, (68, 2))
    explorer = mask_explorer(face, landmarks=points, patch_size=7)
    assert explorer.face.shape == (48, 48, 3)
    np.testing.assert_array_equal(explorer.mask, mask.weighted_mask(face, points, patch_size=7))


def test_non_square_face_rejected():
    with pytest.raises(ValueError, match="must be square"):
        MaskExplorer(np.zeros((40, 60, 3), np.uint8), np.zeros((68, 2)))


def test_displayable(explorer):
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_photo_without_face_raises():
    with pytest.raises(faces.NoFaceError, match="No face found"):
        mask_explorer(np.full((200, 240, 3), 127, np.uint8))
