"""The crop transform: exact point mapping, image content where the points say, TF == NumPy."""
import cv2
import numpy as np
import pytest
import tensorflow as tf

from fadenn_tf.data.crop import (
    CropTransform, box_from_xywh, crop_and_resize_tf, crop_image, crop_region,
    crop_regions_tf, invert_points_tf, jitter_box, jitter_boxes_tf, landmark_box,
    landmark_boxes_tf, transform_points_tf)
from tests.fixtures import centroid, dot_image


def smooth_image(h, w):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 127 + 100 * np.sin(xx / 23.0) * np.cos(yy / 31.0)
    g = 127 + 100 * np.cos((xx + yy) / 40.0)
    b = 60 + 0.3 * xx
    return np.clip(np.stack([r, g, b], axis=2), 0, 255).astype(np.float32)


def test_landmark_box_and_region_and_clip():
    pts = np.array([[10.0, 20.0], [30.0, 60.0], [20.0, 40.0]])
    box = landmark_box(pts)
    np.testing.assert_allclose(box, [10.5, 20.5, 30.5, 60.5])
    r = crop_region(box, (1000, 1000))
    np.testing.assert_allclose(r, [0.5, 0.5, 40.5, 80.5])   # extended by w/2, h/2 per side
    r = crop_region(box, (70, 35))                          # clipped to W=35, H=70
    np.testing.assert_allclose(r, [0.5, 0.5, 35.0, 70.0])
    r = crop_region(box, (70, 35), clip=False)
    np.testing.assert_allclose(r, [0.5, 0.5, 40.5, 80.5])
    np.testing.assert_allclose(box_from_xywh((5, 6, 10, 20)), [5, 6, 15, 26])
    with pytest.raises(ValueError):
        crop_region([100, 100, 110, 110], (20, 20))         # entirely outside the image


def test_transform_maps_region_edges_and_round_trips():
    t = CropTransform([10.0, 20.0, 50.0, 100.0], 64)        # non-square region
    # region edges (edge coords) -> crop edges: centre of first pixel of the region
    np.testing.assert_allclose(t.apply([[10.0 - 0.5, 20.0 - 0.5]]), [[-0.5, -0.5]])
    np.testing.assert_allclose(t.apply([[50.0 - 0.5, 100.0 - 0.5]]), [[63.5, 63.5]])
    assert t.sx == pytest.approx(64 / 40) and t.sy == pytest.approx(64 / 80)
    rng = np.random.default_rng(0)
    p = rng.uniform(-50, 300, size=(68, 2))
    np.testing.assert_allclose(t.invert(t.apply(p)), p, atol=1e-9)
    np.testing.assert_allclose(t.apply(t.invert(p)), p, atol=1e-9)
    m = t.matrix
    np.testing.assert_allclose(p @ m[:, :2].T + m[:, 2], t.apply(p), atol=1e-9)
    t2 = CropTransform.from_box([20.0, 40.0, 40.0, 80.0], (200, 200), 64)
    np.testing.assert_allclose(t2.region, [10.0, 20.0, 50.0, 100.0])


@pytest.mark.parametrize("region,size", [
    ([37.3, 21.9, 161.7, 139.2], 64),     # mild down-scaling, non-square
    ([0.0, 0.0, 300.0, 200.0], 48),       # strong down-scaling (anti-alias path)
    ([80.2, 60.7, 110.9, 85.3], 64),      # up-scaling
])
def test_dot_lands_where_apply_says(region, size):
    h, w = 200, 300
    t = CropTransform(region, size)
    rx0, ry0, rx1, ry1 = region
    x, y = rx0 + 0.43 * (rx1 - rx0), ry0 + 0.57 * (ry1 - ry0)
    sigma = 0.06 * (rx1 - rx0)                           # ~3 crop pixels, far from borders
    img = dot_image(h, w, x, y, sigma)
    want = t.apply([[x, y]])[0]
    got_np = centroid(crop_image(img, t))
    got_tf = centroid(crop_and_resize_tf(img[None], np.array([region]), size)[0].numpy())
    # the dot is anisotropic in the crop but its centroid still maps through the affine
    np.testing.assert_allclose(got_np, want, atol=0.05)
    np.testing.assert_allclose(got_tf, want, atol=0.05)


def test_numpy_and_tf_crops_agree_on_smooth_images_batch():
    imgs = [smooth_image(150, 210), smooth_image(150, 210)[::-1].copy()]
    regions = np.array([[12.3, 8.1, 140.6, 130.4], [0.0, 20.0, 210.0, 150.0]])
    size = 96
    tf_out = crop_and_resize_tf(np.stack(imgs), regions, size).numpy()
    for i in range(2):
        np_out = crop_image(imgs[i], CropTransform(regions[i], size), antialias=False)
        assert np.abs(np_out - tf_out[i]).max() < 1.0            # same mapping, both bilinear
    # with the area pre-filter the smooth image still matches closely
    np_aa = crop_image(imgs[1], CropTransform(regions[1], 48))
    tf_aa = crop_and_resize_tf(imgs[1][None], regions[1:], 48)[0].numpy()
    assert np.abs(np_aa - tf_aa).mean() < 1.5


def test_uint8_image_clipped_borders_have_no_dark_rim():
    img = np.full((40, 60, 3), 200, np.uint8)
    t = CropTransform.from_box([0.0, 0.0, 30.0, 20.0], (40, 60), 128)   # clipped at top-left
    out = crop_image(img, t)
    assert out.dtype == np.uint8 and out.shape == (128, 128, 3)
    assert out.min() == 200
    out_tf = crop_and_resize_tf(img[None], t.region[None], 128)[0].numpy()
    assert out_tf.min() == pytest.approx(200.0)
    # an unclipped region beyond the image reads 0 there
    t2 = CropTransform([-30.0, 0.0, 30.0, 40.0], 32)
    assert crop_image(img, t2)[:, :10].max() == 0
    assert crop_and_resize_tf(img[None], t2.region[None], 32)[0].numpy()[:, :10].max() == 0


def test_prediction_maps_back_to_image_pixel():
    h, w = 180, 240
    img = np.zeros((h, w, 3), np.uint8)
    x, y = 151, 47
    cv2.circle(img, (x, y), 3, (255, 255, 255), -1)
    box = [120.0, 20.0, 190.0, 110.0]
    t = CropTransform.from_box(box, (h, w), 64)             # clipped, non-square region
    crop = crop_image(img, t)
    u, v = centroid(crop.astype(np.float64))                 # "prediction" in the crop
    back = t.invert([[u, v]])[0]
    assert np.abs(back - [x, y]).max() < 0.5


def test_tf_point_ops_match_numpy():
    rng = np.random.default_rng(1)
    regions = np.array([[10.0, 20.0, 50.0, 100.0], [0.0, 0.0, 300.0, 123.0]])
    pts = rng.uniform(0, 200, size=(2, 68, 2))
    got = transform_points_tf(pts, regions, 128).numpy()
    for i in range(2):
        np.testing.assert_allclose(got[i], CropTransform(regions[i], 128).apply(pts[i]), atol=1e-3)
    back = invert_points_tf(got, regions, 128).numpy()
    np.testing.assert_allclose(back, pts, atol=1e-3)
    np.testing.assert_allclose(landmark_boxes_tf(pts).numpy()[0], landmark_box(pts[0]), atol=1e-4)
    r = crop_regions_tf(landmark_boxes_tf(pts), [150, 180]).numpy()
    for i in range(2):
        np.testing.assert_allclose(r[i], crop_region(landmark_box(pts[i]), (150, 180)), atol=1e-3)


def test_crop_works_in_tf_function_with_box_indices():
    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8),
                                  tf.TensorSpec([None, 4], tf.float32),
                                  tf.TensorSpec([None], tf.int32)])
    def f(images, regions, idx):
        return crop_and_resize_tf(images, regions, 32, box_indices=idx)

    a = np.full((50, 70, 3), 10, np.uint8)
    b = np.full((50, 70, 3), 90, np.uint8)
    out = f(np.stack([a, b]), np.array([[5, 5, 40, 40], [10, 0, 70, 50]], np.float32),
            np.array([1, 0], np.int32)).numpy()
    assert out.shape == (2, 32, 32, 3)
    assert np.allclose(out[0], 90) and np.allclose(out[1], 10)


def test_jitter_ranges_numpy_and_tf():
    box = np.array([100.0, 50.0, 200.0, 250.0])            # w = 100, h = 200
    rng = np.random.default_rng(0)
    d = np.array([jitter_box(box, rng) - box for _ in range(2000)]) / [100, 200, 100, 200]
    dt = (jitter_boxes_tf(np.tile(box, (2000, 1)), [3, 4]).numpy() - box) / [100, 200, 100, 200]
    for arr in (d, dt):
        assert arr[:, :3].min() >= -0.25 - 1e-6 and arr[:, :3].max() <= 0.25 + 1e-6
        assert arr[:, 3].min() >= 0.05 - 1e-6 and arr[:, 3].max() <= 0.25 + 1e-6
        assert arr[:, :3].min() < -0.2 and arr[:, :3].max() > 0.2 and arr[:, 3].min() < 0.1
    again = jitter_boxes_tf(np.tile(box, (2000, 1)), [3, 4]).numpy()
    np.testing.assert_array_equal(again, dt * [100, 200, 100, 200] + box)


def _whole_image_crop(img, transform):
    """crop_image's pixel rule applied the direct way (no antialias): pad the WHOLE image by
    one replicated pixel, warp, 0 beyond. crop_image warps only a window of the image."""
    padded = cv2.copyMakeBorder(img, 1, 1, 1, 1, cv2.BORDER_REPLICATE)
    m = transform.matrix.copy()
    m[:, 2] -= np.diag(m[:, :2])
    return cv2.warpAffine(padded, m, (transform.size, transform.size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


@pytest.mark.parametrize("clip", [True, False])
def test_windowed_crop_equals_the_whole_image_rule(clip):
    """Boxes inside, across the edges of and partly outside a noise image, clipped or not:
    the windowed crop is bit-exact with the whole-image rule."""
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (300, 420, 3), dtype=np.uint8)
    boxes = [[150, 100, 230, 190], [-30, -20, 60, 70], [380, 250, 470, 330],
             [0, 0, 420, 300], [200, -50, 260, 20], [10, 120, 400, 200]]
    for box in boxes:
        tr = CropTransform.from_box(box, img.shape[:2], 96, clip=clip)
        got = crop_image(img, tr, antialias=False)
        np.testing.assert_array_equal(got, _whole_image_crop(img, tr), err_msg=str(box))
