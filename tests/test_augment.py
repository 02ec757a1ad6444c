"""Augmentation: image and landmarks move together (dot tests), flip permutes, occlusion."""
import math

import numpy as np
import pytest

from fadenn_tf.config import AugmentConfig
from fadenn_tf.data.augment import (
    augment_batch, flip, flip_points, occlude, occlusion_masks, rotate)
from tests.fixtures import centroid, dot_image

S = 64


def dot(x, y, sigma=1.5, size=S):
    return dot_image(size, size, x, y, sigma)


def face_points(rng, size=S):
    """68 points spread over the crop, right eye (36-41) on the image's left, left eye right."""
    p = rng.uniform(0.25 * size, 0.75 * size, size=(68, 2))
    p[36:42, 0] = rng.uniform(0.2 * size, 0.35 * size, 6)
    p[42:48, 0] = rng.uniform(0.65 * size, 0.8 * size, 6)
    return p.astype(np.float32)


@pytest.mark.parametrize("deg", [30.0, -45.0, 90.0, 7.0])
def test_rotation_moves_dot_with_points(deg):
    x, y = 40.3, 21.7
    imgs = dot(x, y)[None]
    pts = np.array([[[x, y], [10.0, 50.0]]], np.float32)
    a = np.array([math.radians(deg)], np.float32)
    out, out_pts = rotate(imgs, pts, a, fill_mode="CONSTANT")
    np.testing.assert_allclose(centroid(out[0].numpy()), out_pts[0, 0].numpy(), atol=0.05)
    # a rotation about the centre keeps the distance to the centre and turns by `deg`
    c = (S - 1) / 2
    v0 = np.array([x - c, y - c])
    v1 = out_pts[0, 0].numpy() - c
    assert np.linalg.norm(v1) == pytest.approx(np.linalg.norm(v0), rel=1e-5)
    turn = math.degrees(math.atan2(v1[1], v1[0]) - math.atan2(v0[1], v0[0]))
    assert (turn - deg + 180) % 360 - 180 == pytest.approx(0, abs=1e-3)


def test_rotation_by_zero_is_identity():
    rng = np.random.default_rng(0)
    imgs = rng.uniform(0, 255, (2, S, S, 3)).astype(np.float32)
    pts = np.stack([face_points(rng), face_points(rng)])
    out, out_pts = rotate(imgs, pts, np.zeros(2, np.float32))
    np.testing.assert_allclose(out.numpy(), imgs, atol=1e-3)
    np.testing.assert_allclose(out_pts.numpy(), pts, atol=1e-4)


def test_flip_mirrors_and_permutes():
    rng = np.random.default_rng(1)
    pts = face_points(rng)[None]
    img = dot(*pts[0, 45])[None]                     # a dot on the left eye's outer corner
    out, out_pts = flip(img, pts, np.array([True]))
    out_pts = out_pts.numpy()[0]
    # index 36 (right eye outer corner) now holds the mirror of old point 45 ...
    np.testing.assert_allclose(out_pts[36], [S - 1 - pts[0, 45, 0], pts[0, 45, 1]], atol=1e-5)
    np.testing.assert_allclose(out_pts[45], [S - 1 - pts[0, 36, 0], pts[0, 36, 1]], atol=1e-5)
    # ... it lies on the image's left side, like a right eye in an unflipped face
    assert out_pts[36, 0] < S / 2 and out_pts[45, 0] > S / 2
    assert out_pts[36:42, 0].max() < out_pts[42:48, 0].min()
    # jaw 0 <-> 16, nose bridge keeps its index
    np.testing.assert_allclose(out_pts[0], [S - 1 - pts[0, 16, 0], pts[0, 16, 1]], atol=1e-5)
    np.testing.assert_allclose(out_pts[30], [S - 1 - pts[0, 30, 0], pts[0, 30, 1]], atol=1e-5)
    # the image moved the same way: the dot sits at the new point 36
    np.testing.assert_allclose(centroid(out[0].numpy()), out_pts[36], atol=0.05)


def test_flip_twice_is_identity_and_mask_selects():
    rng = np.random.default_rng(2)
    imgs = rng.uniform(0, 255, (3, S, S, 3)).astype(np.float32)
    pts = np.stack([face_points(rng) for _ in range(3)])
    sel = np.array([True, False, True])
    once_i, once_p = flip(imgs, pts, sel)
    twice_i, twice_p = flip(once_i, once_p, sel)
    np.testing.assert_array_equal(twice_i.numpy(), imgs)
    np.testing.assert_allclose(twice_p.numpy(), pts, atol=1e-5)
    np.testing.assert_array_equal(once_i.numpy()[1], imgs[1])
    assert not np.allclose(once_i.numpy()[0], imgs[0])
    np.testing.assert_allclose(flip_points(flip_points(pts, S), S).numpy(), pts, atol=1e-5)


def test_occlusion_masks_are_one_rectangle_of_the_right_size():
    m = occlusion_masks(400, S, [5, 6], 1.0).numpy()[..., 0]
    for mask in m:
        ys, xs = np.nonzero(mask)
        assert len(ys) > 0
        h = ys.max() - ys.min() + 1
        w = xs.max() - xs.min() + 1
        assert mask.sum() == h * w                       # one filled rectangle
        short, long_ = sorted((h, w))
        assert 0.1 * S - 1 <= short <= 0.4 * S + 1
        assert long_ == S or long_ <= 0.4 * S + 1        # stripe (full side) or block
    kinds = [(mask.any(axis=1).all(), mask.any(axis=0).all()) for mask in m]
    assert any(k[0] and not k[1] for k in kinds) and any(k[1] and not k[0] for k in kinds)
    half = occlusion_masks(400, S, [7, 8], 0.5).numpy()
    frac = (half.reshape(400, -1).max(axis=1) > 0).mean()
    assert 0.4 < frac < 0.6
    assert occlusion_masks(50, S, [7, 8], 0.0).numpy().max() == 0


def test_occlude_fills_inside_mask_only():
    imgs = np.full((64, S, S, 3), 100.0, np.float32)
    out = occlude(imgs, [3, 3], 1.0).numpy()
    changed = np.abs(out - 100.0).max(axis=3) > 1e-3
    assert changed.reshape(64, -1).any(axis=1).mean() > 0.9
    assert out.min() >= 0 and out.max() <= 255
    grey_like = [np.allclose(o[c][:, 0], o[c][:, 1]) for o, c in zip(out, changed) if c.any()]
    assert any(grey_like) and not all(grey_like)
    np.testing.assert_array_equal(occlude(imgs, [3, 3], 0.0).numpy(), imgs)


def test_augment_batch_consistent_and_deterministic():
    rng = np.random.default_rng(3)
    pts = np.stack([face_points(rng) for _ in range(16)])
    imgs = np.stack([dot(*p[45]) for p in pts])
    cfg = AugmentConfig(rotation_deg=45.0, flip=True, occlusion_prob=0.0)
    out, out_pts = augment_batch(imgs, pts, [11, 12], cfg, fill_mode="CONSTANT")
    out, out_pts = out.numpy(), out_pts.numpy()
    flipped = []
    for o, p in zip(out, out_pts):
        c = centroid(o)
        d45, d36 = np.linalg.norm(c - p[45]), np.linalg.norm(c - p[36])
        assert min(d45, d36) < 0.1
        flipped.append(d36 < d45)
    assert any(flipped) and not all(flipped)
    again, again_pts = augment_batch(imgs, pts, [11, 12], cfg, fill_mode="CONSTANT")
    np.testing.assert_array_equal(again.numpy(), out)
    other, _ = augment_batch(imgs, pts, [11, 13], cfg, fill_mode="CONSTANT")
    assert not np.allclose(other.numpy(), out)
