import numpy as np

from tfpose.data.transforms import CropParams, apply_matrix, box_to_crop, crop_matrix, invert_matrix


def test_box_is_enlarged_and_fixed_to_the_input_aspect():
    crop = box_to_crop([10, 20, 30, 120], (192, 256), 1.25)
    assert crop.centre == (25.0, 80.0)
    w, h = crop.size
    assert abs(w / h - 192 / 256) < 1e-9 and abs(h - 150) < 1e-9


def test_matrix_maps_the_box_centre_to_the_input_centre_and_inverts():
    m = crop_matrix(CropParams((100.0, 50.0), (60.0, 80.0), rotation=17.0), (48, 64))
    np.testing.assert_allclose(apply_matrix([[100.0, 50.0]], m), [[23.5, 31.5]], atol=1e-9)
    pts = np.array([[90.0, 40.0], [120.0, 75.0]])
    np.testing.assert_allclose(apply_matrix(apply_matrix(pts, m), invert_matrix(m)), pts, atol=1e-9)


def test_flip_mirrors_about_the_input_centre():
    plain = crop_matrix(CropParams((50.0, 50.0), (40.0, 40.0)), (40, 40))
    flipped = crop_matrix(CropParams((50.0, 50.0), (40.0, 40.0), flip=True), (40, 40))
    p = np.array([[60.0, 45.0]])
    a, b = apply_matrix(p, plain)[0], apply_matrix(p, flipped)[0]
    assert abs(a[0] + b[0] - 39) < 1e-9 and abs(a[1] - b[1]) < 1e-9
