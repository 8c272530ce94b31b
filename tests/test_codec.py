import numpy as np
import pytest

from tfpose.codec import HeatmapCodec


@pytest.mark.parametrize("refine, tolerance", [("dark", 0.25), ("quarter", 2.1), ("none", 2.9)])
def test_encode_decode_round_trip(refine, tolerance):
    codec = HeatmapCodec((192, 256), 4, 2.0, refine)
    rng = np.random.default_rng(0)
    kp = rng.uniform(20, 170, (17, 2)).astype(np.float32)
    heatmaps, weights = codec.encode(kp, np.full(17, 2))
    decoded, scores = codec.decode(heatmaps)
    assert heatmaps.shape == (64, 48, 17) and weights.tolist() == [1.0] * 17
    assert np.abs(decoded - kp).max() < tolerance   # input pixels
    assert scores.min() > 0.85


def test_cells_tile_the_input_exactly():
    codec = HeatmapCodec((8, 8), 4)
    # cell 0 covers pixels 0..3 (centre 1.5), cell 1 pixels 4..7 (centre 5.5): MoveNet's alignment
    np.testing.assert_allclose(codec.cells_to_pixels(np.array([0.0, 1.0])), [1.5, 5.5])
    np.testing.assert_allclose(codec.pixels_to_cells(codec.cells_to_pixels(np.array([0.3, 7.7]))), [0.3, 7.7])


def test_unlabelled_and_far_outside_joints_get_zero_weight():
    codec = HeatmapCodec((64, 64), 4, 2.0)
    kp = np.array([[10, 10], [10, 10], [-100, 10], [66, 30]], np.float32)
    heatmaps, weights = codec.encode(kp, np.array([2, 0, 2, 1]))
    assert weights.tolist() == [1, 0, 0, 1]
    assert heatmaps[..., 1].max() == 0 and heatmaps[..., 2].max() == 0
    assert heatmaps[..., 3].max() > 0.1   # just outside the crop, its Gaussian still reaches in


def test_batch_decode_matches_single():
    codec = HeatmapCodec((64, 64), 4, 2.0)
    rng = np.random.default_rng(1)
    maps = np.stack([codec.encode(rng.uniform(5, 58, (3, 2)), np.ones(3))[0] for _ in range(4)])
    batch_kp, batch_sc = codec.decode(maps)
    for i in range(4):
        kp, sc = codec.decode(maps[i])
        np.testing.assert_allclose(batch_kp[i], kp)
        np.testing.assert_allclose(batch_sc[i], sc)


def test_input_size_must_divide_by_stride():
    with pytest.raises(ValueError, match="divisible"):
        HeatmapCodec((30, 64), 4)
