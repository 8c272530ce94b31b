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


def test_box_shift_moves_the_crop_centre_by_the_detector_error_and_draws_nothing_when_off():
    from tfpose.data.transforms import CropParams, random_crop_params

    base = CropParams((100.0, 200.0), (80.0, 120.0))
    plain = [random_crop_params(base, np.random.default_rng(s), 0.25, 30, 0.6, True) for s in range(50)]
    off = [random_crop_params(base, np.random.default_rng(s), 0.25, 30, 0.6, True, shift=0.0) for s in range(50)]
    assert plain == off, "shift 0 leaves every earlier config's random stream as it was"
    shifted = np.array([random_crop_params(base, np.random.default_rng(s), 0.0, 0, 0.0, False, shift=0.05).centre
                        for s in range(4000)])
    offsets = (shifted - base.centre) / base.size
    np.testing.assert_allclose(offsets.mean(0), 0, atol=0.004)
    assert 0.04 < offsets.std(0).min() and offsets.std(0).max() < 0.05     # 0.05, clipped at 2 std
    assert np.abs(offsets).max() <= 0.1 + 1e-12
