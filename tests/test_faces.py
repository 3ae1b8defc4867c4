"""Loading, detection and alignment on real portraits and generated files."""

import io
import math

import cv2
import numpy as np
import pytest
from PIL import Image

from oaenet_helpers import faces
from oaenet_helpers.faces import ImageLoadError, NoFaceError


# --------------------------------------------------------------------------
# load_image


def gradient_rgb(height=40, width=60):
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 4, y * 6, (x + y) * 2], axis=2).astype(np.uint8)


def test_load_path_bytes_pil_array_agree(tmp_path):
    rgb = gradient_rgb()
    path = tmp_path / "face.png"
    Image.fromarray(rgb).save(path)
    from_path = faces.load_image(path)
    from_str = faces.load_image(str(path))
    from_bytes = faces.load_image(path.read_bytes())
    from_pil = faces.load_image(Image.fromarray(rgb))
    from_array = faces.load_image(rgb)
    for loaded in (from_path, from_str, from_bytes, from_pil, from_array):
        assert loaded.dtype == np.uint8
        assert loaded.shape == (40, 60, 3)
        np.testing.assert_array_equal(loaded, rgb)


def test_load_array_is_a_copy():
    rgb = gradient_rgb()
    loaded = faces.load_image(rgb)
    loaded[:] = 0
    assert rgb.max() > 0
    assert not np.shares_memory(loaded, rgb)


def test_load_grayscale_2d_and_one_channel():
    gray = gradient_rgb()[:, :, 0]
    for array in (gray, gray[:, :, None]):
        loaded = faces.load_image(array)
        assert loaded.shape == (40, 60, 3)
        for channel in range(3):
            np.testing.assert_array_equal(loaded[:, :, channel], gray)


def test_load_rgba_composites_onto_white():
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., :3] = (10, 20, 30)
    rgba[:2, :, 3] = 255  # opaque top half
    rgba[2:, :, 3] = 0  # transparent bottom half
    loaded = faces.load_image(rgba)
    np.testing.assert_array_equal(loaded[0, 0], [10, 20, 30])
    np.testing.assert_array_equal(loaded[3, 3], [255, 255, 255])


def test_load_opaque_rgba_view_equals_rgb():
    rgb = gradient_rgb()
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    view = rgba[:, :, :3]
    assert not view.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(faces.load_image(view), rgb)
    np.testing.assert_array_equal(faces.load_image(rgba), rgb)
    loaded = faces.load_image(view)
    assert loaded.flags["C_CONTIGUOUS"]


def test_load_la_png(tmp_path):
    gray = gradient_rgb()[:, :, 1]
    la = np.dstack([gray, np.full_like(gray, 255)])
    path = tmp_path / "la.png"
    Image.fromarray(la, mode="LA").save(path)
    loaded = faces.load_image(path)
    np.testing.assert_array_equal(loaded[:, :, 2], gray)


def test_load_palette_png(tmp_path):
    rgb = gradient_rgb()
    path = tmp_path / "palette.png"
    Image.fromarray(rgb).quantize(colors=16).save(path)
    reference = np.asarray(Image.open(path).convert("RGB"))
    loaded = faces.load_image(path)
    np.testing.assert_array_equal(loaded, reference)


def test_load_16bit_png_is_scaled_not_truncated(tmp_path):
    values = np.array([[0, 257, 384, 32896, 65535, 65280]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    loaded = faces.load_image(path)
    # round(v / 257): 384 -> 1 (truncating to the low byte would give 128).
    np.testing.assert_array_equal(loaded[0, :, 0], [0, 1, 1, 128, 255, 254])


def test_load_16bit_array():
    values = np.array([[0, 65535]], dtype=np.uint16)
    np.testing.assert_array_equal(faces.load_image(values)[0, :, 1], [0, 255])


def test_load_float_arrays():
    unit = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)
    np.testing.assert_array_equal(faces.load_image(unit)[0, :, 0], [0, 128, 255])
    wide = np.array([[0.0, 128.0, 300.0]])
    np.testing.assert_array_equal(faces.load_image(wide)[0, :, 0], [0, 128, 255])


def test_load_cmyk_jpeg(tmp_path):
    rgb = np.zeros((32, 32, 3), dtype=np.uint8)
    rgb[:, :16] = (200, 30, 30)
    rgb[:, 16:] = (30, 30, 200)
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(rgb).convert("CMYK").save(path, quality=95)
    assert Image.open(path).mode == "CMYK"
    loaded = faces.load_image(path)
    assert loaded.shape == (32, 32, 3)
    assert np.abs(loaded[16, 4].astype(int) - [200, 30, 30]).max() < 20
    assert np.abs(loaded[16, 28].astype(int) - [30, 30, 200]).max() < 20


def test_load_exif_rotated_jpeg(tmp_path):
    stored = np.zeros((20, 40, 3), dtype=np.uint8)
    stored[:5, :10] = 255  # bright block at the stored top-left corner
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif, quality=95)
    loaded = faces.load_image(path)
    assert loaded.shape == (40, 20, 3)
    # Rotating clockwise moves the stored top-left corner to the top-right.
    assert loaded[2, 17].mean() > 200
    assert loaded[2, 2].mean() < 50


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "empty"),
        (b"these are not the pixels you are looking for\n", "not a recognised image"),
    ],
)
def test_load_bad_files_name_the_path(tmp_path, content, expected):
    path = tmp_path / "photo.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageLoadError, match=expected) as info:
        faces.load_image(path)
    assert "photo.jpg" in str(info.value)


def test_load_truncated_jpeg(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(gradient_rgb(200, 200)).save(buffer, format="JPEG", quality=95)
    path = tmp_path / "cut.jpg"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(ImageLoadError, match="truncated") as info:
        faces.load_image(path)
    assert "cut.jpg" in str(info.value)


def test_load_missing_file(tmp_path):
    with pytest.raises(ImageLoadError, match="not found"):
        faces.load_image(tmp_path / "nowhere.png")


def test_load_empty_bytes():
    with pytest.raises(ImageLoadError, match="empty"):
        faces.load_image(b"")


@pytest.mark.parametrize(
    "array",
    [np.zeros((4, 4, 5), np.uint8), np.zeros((2, 3, 4, 3), np.uint8), np.zeros((0, 4, 3), np.uint8)],
)
def test_load_rejects_bad_shapes(array):
    with pytest.raises(ImageLoadError, match=r"shape|no pixels"):
        faces.load_image(array)


def test_load_rejects_nan():
    array = np.zeros((4, 4), dtype=np.float32)
    array[1, 1] = np.nan
    with pytest.raises(ImageLoadError, match="NaN"):
        faces.load_image(array)


def test_load_rejects_unknown_type():
    with pytest.raises(ImageLoadError, match="expected a path"):
        faces.load_image(12)


def test_sample_images_are_rgb(astronaut, grace_hopper):
    assert astronaut.shape == (512, 512, 3)
    assert grace_hopper.shape == (600, 512, 3)
    with pytest.raises(ValueError, match="astronaut"):
        faces.sample_image("mona_lisa")


# --------------------------------------------------------------------------
# Detection


def test_landmark_model_is_found():
    path = faces.landmark_model_path()
    assert path.name == "shape_predictor_68_face_landmarks.dat"
    assert path.stat().st_size > 90_000_000


def test_missing_landmark_package_names_it(monkeypatch):
    monkeypatch.setattr(faces.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(faces.LandmarkModelNotFoundError, match="face-recognition-models"):
        faces.landmark_model_path()


def test_astronaut_landmarks_inside_box(astronaut_face):
    left, top, right, bottom = astronaut_face.box
    points = astronaut_face.landmarks
    assert points.shape == (68, 2)
    assert points.dtype == np.float32
    # The jaw line may leave dlib's box slightly; inner points must not.
    inner = points[17:]
    margin = 0.1 * (right - left)
    assert (inner[:, 0] >= left - margin).all()
    assert (inner[:, 0] <= right + margin).all()
    assert (inner[:, 1] >= top - margin).all()
    assert (inner[:, 1] <= bottom + margin).all()
    # iBUG order: eyes above the mouth, the picture-left eye on the left.
    right_eye, left_eye = faces.eye_centres(points)
    assert right_eye[0] < left_eye[0]
    assert points[faces.MOUTH, 1].mean() > right_eye[1]


def box_centre(box):
    left, top, right, bottom = box
    return (left + right) / 2, (top + bottom) / 2


def test_detect_faces_largest_first(astronaut, grace_hopper, astronaut_face):
    canvas = np.full((700, 1100, 3), 128, np.uint8)
    canvas[:512, :512] = astronaut
    canvas[50:650, 560:1072] = grace_hopper  # Grace Hopper's face is the larger one
    found = faces.detect_faces(canvas)
    areas = [face.area for face in found]
    assert areas == sorted(areas, reverse=True)
    assert all(np.isfinite(face.score) for face in found)
    first_x, first_y = box_centre(found[0].box)
    assert first_x > 560  # Grace Hopper
    astronaut_x, astronaut_y = box_centre(astronaut_face.box)
    distances = [np.hypot(*np.subtract(box_centre(face.box), (astronaut_x, astronaut_y))) for face in found]
    assert min(distances) < 5


def test_no_face_error_names_size():
    blank = np.full((120, 90, 3), 200, np.uint8)
    assert faces.detect_faces(blank) == []
    with pytest.raises(NoFaceError, match="90x120") as info:
        faces.detect_face(blank)
    assert "upsample" in str(info.value)
    assert "landmarks" in str(info.value)


def test_detect_rejects_negative_upsample(astronaut):
    with pytest.raises(ValueError, match="upsample"):
        faces.detect_faces(astronaut, upsample=-1)


def test_predict_landmarks_in_known_box(astronaut, astronaut_face):
    points = faces.predict_landmarks(astronaut, astronaut_face.box)
    np.testing.assert_allclose(points, astronaut_face.landmarks, atol=1e-4)
    with pytest.raises(ValueError, match="Invalid face box"):
        faces.predict_landmarks(astronaut, (10, 10, 5, 20))


# --------------------------------------------------------------------------
# Alignment


def eye_angle_degrees(points):
    right_eye, left_eye = faces.eye_centres(points)
    return math.degrees(math.atan2(left_eye[1] - right_eye[1], left_eye[0] - right_eye[0]))


def rotate_image(image, degrees):
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    return cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REFLECT)


@pytest.mark.parametrize("degrees", [-20, 12])
def test_alignment_levels_rotated_portrait(astronaut, degrees):
    rotated = rotate_image(astronaut, degrees)
    face = faces.detect_face(rotated, upsample=1)
    assert abs(eye_angle_degrees(face.landmarks)) > abs(degrees) / 2
    aligned = faces.align_and_crop(rotated, face.landmarks, size=224)
    assert aligned.image.shape == (224, 224, 3)
    # Landmarks transformed by the matrix are level ...
    assert abs(eye_angle_degrees(aligned.landmarks)) < 0.5
    # ... and so are the landmarks the detector finds again in the crop.
    refit = faces.predict_landmarks(aligned.image, (0, 0, 223, 223))
    assert abs(eye_angle_degrees(refit)) < 3.0


def test_alignment_follows_crop_rule(astronaut_face, astronaut):
    size = 210
    aligned = faces.align_and_crop(astronaut, astronaut_face.landmarks, size=size)
    right_eye, left_eye = faces.eye_centres(aligned.landmarks)
    eye_y = (right_eye[1] + left_eye[1]) / 2
    mouth_y = aligned.landmarks[faces.MOUTH, 1].mean()
    distance = mouth_y - eye_y
    # top = eyes - 6/7 d, bottom = mouth + d, so the side is (6/7 + 2) d.
    np.testing.assert_allclose(distance * (6 / 7 + 2), size, rtol=1e-4)
    np.testing.assert_allclose(eye_y, distance * 6 / 7, rtol=1e-4)


def test_alignment_does_not_modify_inputs(astronaut, astronaut_face):
    image = astronaut.copy()
    points = astronaut_face.landmarks.copy()
    faces.align_and_crop(image, points, size=96)
    np.testing.assert_array_equal(image, astronaut)
    np.testing.assert_array_equal(points, astronaut_face.landmarks)


def test_alignment_pads_instead_of_shifting(astronaut, astronaut_face):
    # Put the face in the top-left corner so the crop box leaves the image.
    shift_x, shift_y = -170, -110
    moved = np.zeros_like(astronaut)
    moved[: 512 + shift_y, : 512 + shift_x] = astronaut[-shift_y:, -shift_x:]
    moved_points = astronaut_face.landmarks + np.array([shift_x, shift_y], np.float32)
    reference = faces.align_and_crop(astronaut, astronaut_face.landmarks, size=128)
    padded = faces.align_and_crop(moved, moved_points, size=128)
    np.testing.assert_allclose(padded.landmarks, reference.landmarks, atol=1e-3)
    # Pixels whose source lies inside the moved content match the reference;
    # the rest is black padding.
    inside = np.zeros(moved.shape[:2], np.uint8)
    inside[: 512 + shift_y - 1, : 512 + shift_x - 1] = 1
    inside = cv2.erode(inside, np.ones((3, 3), np.uint8))
    valid = cv2.warpAffine(inside, padded.matrix, (128, 128), flags=cv2.INTER_NEAREST) == 1
    assert 0.3 < valid.mean() < 0.95  # the box really reaches outside the image
    difference = np.abs(padded.image.astype(int) - reference.image)
    assert difference[valid].mean() < 1.0
    covered = cv2.warpAffine(np.ones_like(inside), padded.matrix, (128, 128), flags=cv2.INTER_NEAREST)
    # One pixel of margin: bilinear sampling blends the image edge into the padding.
    outside = cv2.dilate(covered, np.ones((3, 3), np.uint8)) == 0
    assert outside.any()
    assert (padded.image[outside] == 0).all()


def test_check_landmarks_accepts_lists_and_ints(astronaut_face):
    as_list = astronaut_face.landmarks.astype(int).tolist()
    points = faces.check_landmarks(as_list)
    assert points.dtype == np.float32
    assert points.shape == (68, 2)


def test_check_landmarks_names_nan_index(astronaut_face):
    points = astronaut_face.landmarks.copy()
    points[30, 1] = np.nan
    with pytest.raises(ValueError, match="index 30"):
        faces.check_landmarks(points)
    with pytest.raises(ValueError, match=r"\(68, 2\)"):
        faces.check_landmarks(points[:10])


def test_alignment_rejects_upside_down_landmarks(astronaut_face):
    # Mirroring y puts the mouth above the eyes while keeping the eye order.
    upside_down = astronaut_face.landmarks * np.array([1, -1], np.float32)
    with pytest.raises(ValueError, match="mouth"):
        faces.alignment_matrix(upside_down, size=64)


def test_face_half_outside_top_left(astronaut, astronaut_face):
    # Shift the portrait so the face box starts left of and above the image.
    shift_x, shift_y = -215, -125
    moved = np.zeros_like(astronaut)
    moved[: 512 + shift_y, : 512 + shift_x] = astronaut[-shift_y:, -shift_x:]
    with pytest.raises(NoFaceError, match="pass the dataset's landmarks"):
        faces.detect_face(moved, upsample=1)
    # With known landmarks (a dataset's), the crop is padded and the points stay put.
    moved_points = astronaut_face.landmarks + np.array([shift_x, shift_y], np.float32)
    assert moved_points[:, 0].min() < 0
    aligned = faces.align_and_crop(moved, moved_points, size=96)
    reference = faces.align_and_crop(astronaut, astronaut_face.landmarks, size=96)
    np.testing.assert_allclose(aligned.landmarks, reference.landmarks, atol=1e-3)
    assert (aligned.image[:, :5] == 0).all()


def test_load_directory_says_so(tmp_path):
    with pytest.raises(ImageLoadError, match="directory"):
        faces.load_image(tmp_path)
