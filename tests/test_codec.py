import numpy as np
import pytest

from tfpose.codec import HeatmapCodec, blur_kernel, matched_filter


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


def test_matched_filter_is_a_gaussian_blur_inside_the_map():
    import cv2

    maps = np.random.default_rng(0).random((2, 24, 32, 3), dtype=np.float32)
    kernel = blur_kernel(2.0, 23)
    blurred = np.stack([cv2.sepFilter2D(m, -1, kernel, kernel, borderType=cv2.BORDER_CONSTANT) for m in maps])
    filtered = matched_filter(maps, 2.0)
    assert kernel.shape == (13,) and abs(kernel.sum() - 1) < 1e-6
    inner = (slice(None), slice(6, -6), slice(6, -6))
    np.testing.assert_allclose(filtered[inner] / blurred[inner], 1 / np.sqrt((kernel**2).sum()) ** 2, rtol=1e-4)


def test_matched_filter_finds_the_nearest_cell_up_to_the_border():
    """Peaks on and next to every edge: a zero border would push them in by a cell, a mirrored one pull them
    onto the edge by up to two and a quarter cells."""
    codec = HeatmapCodec((192, 256), 4, 2.0, "none", peak_blur=2.0)
    edge = codec.cells_to_pixels(np.arange(0, 3.1, 0.25))
    kp = np.concatenate([np.stack([edge, 191 - edge[::-1]], 1), np.stack([96 + 0 * edge, edge], 1),
                         np.stack([96 + 0 * edge, 255 - edge], 1)]).astype(np.float32)
    decoded, _ = codec.decode(codec.encode(kp, np.full(len(kp), 2))[0])
    assert np.abs(decoded - kp).max() <= codec.stride / 2 + 1e-3


def test_peak_blur_prefers_the_blob_to_a_higher_lone_cell():
    """A flat, low blob (a distilled student's typical joint) and one noisy cell a little higher: the raw
    argmax takes the cell, the matched filter the blob; the score stays the raw map's value at the peak."""
    codec = HeatmapCodec((96, 128), 4, 2.0, "none")
    heatmaps, _ = codec.encode(np.array([[40.0, 60.0]]), np.array([2]))
    heatmaps *= 0.2
    heatmaps[5, 20, 0] = 0.25
    raw_kp, _ = codec.decode(heatmaps)
    kp, score = HeatmapCodec((96, 128), 4, 2.0, "none", peak_blur=2.0).decode(heatmaps)
    assert np.allclose(raw_kp[0], codec.cells_to_pixels([20, 5]))
    assert np.abs(kp[0] - [40, 60]).max() <= 2.0
    cx, cy = np.rint(codec.pixels_to_cells(kp[0])).astype(int)
    assert score[0] == heatmaps[cy, cx, 0]
