"""Crop maths of reference/hsmr.md §2 and the full-image camera of §3 on known boxes."""

import numpy as np
import pytest

from hsmr_backend.hsmr.crop import (
    box_from_keypoints,
    box_to_square,
    crop_patch,
    full_cam_t,
    normalise,
    patch_cam_t,
)


def test_box_to_square_enlarges_the_short_side_only():
    boxes = np.array([
        [100, 50, 160, 250],  # tall 60x200: width -> 150 (192:256), square side 200
        [0, 0, 300, 100],  # wide 300x100: height -> 400, square side 400
        [10, 20, 85, 120],  # exactly 192:256 (75x100): unchanged, side 100
    ])  # fmt: skip
    np.testing.assert_allclose(box_to_square(boxes), [[130, 150, 200], [150, 50, 400], [47.5, 70, 100]])
    with pytest.raises(ValueError, match="x1 > x0"):
        box_to_square(np.array([[10, 10, 5, 20]]))


def _gradient_image(h=400, w=500):
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([(x * 7 + y * 3) % 256, (x * 2 + y * 5) % 256, (x + y) % 256], -1).astype(np.uint8)


def test_crop_at_native_scale_is_a_plain_slice():
    img = _gradient_image()
    patch = crop_patch(img, 200, 150, 256)
    np.testing.assert_array_equal(patch, img[150 - 128 : 150 + 128, 200 - 128 : 200 + 128])


def test_crop_at_half_scale_averages_pixel_pairs():
    img = np.random.default_rng(0).integers(0, 256, (600, 600, 3)).astype(np.float64)
    patch = crop_patch(img.astype(np.uint8), 300, 300, 512).astype(np.float64)
    blocks = img[44:556, 44:556].reshape(256, 2, 256, 2, 3).mean(axis=(1, 3))
    assert np.abs(patch - blocks).max() <= 1.0  # bilinear at the pair midpoints, uint8 rounding


def test_crop_pads_with_zeros_outside_the_image():
    img = np.full((100, 100, 3), 200, np.uint8)
    patch = crop_patch(img, 0, 50, 256)  # native scale: image (x, y) lands on patch (x + 128, y + 78)
    assert (patch[78:178, 128:228] == 200).all()
    inside = np.zeros((256, 256), bool)
    inside[78:178, 128:228] = True
    assert (patch[~inside] == 0).all()


def test_normalise_uses_imagenet_statistics_times_255():
    px = np.array([[[[0.485 * 255, 0.456 * 255, 0.406 * 255]]]])
    np.testing.assert_allclose(normalise(px.astype(np.float32)), np.zeros((1, 3, 1, 1)), atol=1e-5)
    out = normalise(np.full((2, 4, 5, 3), 255, np.uint8))
    assert out.shape == (2, 3, 4, 5) and out.dtype == np.float32
    np.testing.assert_allclose(out[0, :, 0, 0], (1 - np.array([0.485, 0.456, 0.406])) / [0.229, 0.224, 0.225],
                               rtol=1e-6)  # fmt: skip


def test_full_camera_matches_the_official_formula_at_focal_5000():
    cam = np.array([[0.9, 0.1, -0.2], [1.3, 0.0, 0.05]])
    squares = np.array([[700.0, 300.0, 400.0], [100.0, 600.0, 128.0]])
    wh = np.array([1280, 720])
    z = 2 * 5000 / (256 * cam[:, 0])
    z_full = z * 256 / squares[:, 2]
    want = np.stack([cam[:, 1] + (squares[:, 0] - 640) * z_full / 5000,
                     cam[:, 2] + (squares[:, 1] - 360) * z_full / 5000, z_full], 1)  # fmt: skip
    np.testing.assert_allclose(full_cam_t(cam, squares, wh), want, rtol=1e-9)
    np.testing.assert_allclose(patch_cam_t(cam)[:, 2], z, rtol=1e-9)


def test_full_camera_with_a_true_focal_reprojects_like_the_patch_camera():
    cam = np.array([[0.8, 0.05, 0.12]])
    sq = np.array([[820.0, 410.0, 360.0]])
    wh, f = np.array([1920, 1080]), 1400.0
    t_full = full_cam_t(cam, sq, wh, focal_px=f)[0]
    t_patch = patch_cam_t(cam)[0]
    pts = np.random.default_rng(1).normal(0, 0.5, (20, 3))
    pts[:, 2] = 0  # the official shift is exact on the body's depth plane (weak-perspective crop)
    # patch camera: focal 5000 on a 256-pixel patch, principal point at its centre -> image pixels
    pp = pts + t_patch
    uv_patch = 5000 * pp[:, :2] / pp[:, 2:] * (sq[0, 2] / 256) + sq[0, :2]
    pf = pts + t_full
    uv_full = f * pf[:, :2] / pf[:, 2:] + wh / 2
    np.testing.assert_allclose(uv_full, uv_patch, atol=1e-6)


def test_box_from_keypoints_uses_confident_points_with_a_margin():
    xy = np.array([[100, 100], [200, 300], [150, 200], [900, 900]], float)
    conf = np.array([0.9, 0.9, 0.8, 0.1])
    np.testing.assert_allclose(box_from_keypoints(xy, conf, margin=1.2), [90, 80, 210, 320])
    assert box_from_keypoints(xy, np.array([0.9, 0, 0, 0])) is None
