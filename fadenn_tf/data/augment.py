"""Training augmentation (paper section III-D) as batched, stateless TensorFlow ops.

All functions take crops [B, S, S, C] float32 and landmarks [B, N, 2] float32 in 0-based
pixel-centre crop coordinates, work per sample (each sample its own random draw) and are
deterministic for a given int seed [2]. They run inside tf.data / tf.function.

- Rotation by an angle in [-rotation_deg, rotation_deg] about the crop centre
  ((S - 1) / 2, (S - 1) / 2), image and points through the same map (bilinear resampling with
  tf.raw_ops.ImageProjectiveTransformV3; corners uncovered by the rotated crop are filled by
  reflection, fill mode configurable). Positive angles turn the picture clockwise on screen
  (image y points down).
- Horizontal flip: u' = S - 1 - u and landmark indices permuted with FLIP_PERM (so index 36,
  the right eye's outer corner, holds the mirror of old point 45).
- Occlusion (FLL training): with probability p one horizontal stripe, vertical stripe or
  block whose sides are 10-40 % of the crop side, filled with a random grey, a random colour
  or uniform noise.
"""
import math

import numpy as np
import tensorflow as tf

from fadenn_tf.data.crop import transform_points_tf
from fadenn_tf.data.landmarks68 import FLIP_PERM

OCCLUSION_MIN, OCCLUSION_MAX = 0.10, 0.40


def _seeds(seed, n):
    return tf.unstack(tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), n))


def rotation_transforms(angles, size):
    """[B] angles (radians) -> [B, 8] ImageProjectiveTransformV3 transforms rotating by angle
    about the crop centre. The transform maps OUTPUT pixel (x, y) to its INPUT position."""
    angles = tf.cast(angles, tf.float32)
    c = (float(size) - 1.0) / 2.0
    cos, sin = tf.cos(angles), tf.sin(angles)
    zero = tf.zeros_like(angles)
    # input = R(-a) (out - c) + c
    return tf.stack([cos, sin, c - cos * c - sin * c,
                     -sin, cos, c + sin * c - cos * c, zero, zero], axis=-1)


def rotate_points(points, angles, size):
    """[B, N, 2] crop points rotated by [B] angles (radians) about the crop centre."""
    points = tf.cast(points, tf.float32)
    angles = tf.cast(angles, tf.float32)[:, None]
    c = (float(size) - 1.0) / 2.0
    x, y = points[..., 0] - c, points[..., 1] - c
    cos, sin = tf.cos(angles), tf.sin(angles)
    return tf.stack([cos * x - sin * y + c, sin * x + cos * y + c], axis=-1)


def rotate(images, points, angles, fill_mode="REFLECT", fill_value=0.0):
    """Rotate [B, S, S, C] crops and their [B, N, 2] points by [B] angles (radians)."""
    images = tf.cast(images, tf.float32)
    size = images.shape[1] if images.shape[1] is not None else tf.shape(images)[1]
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=rotation_transforms(angles, size),
        output_shape=tf.shape(images)[1:3], fill_value=tf.cast(fill_value, tf.float32),
        interpolation="BILINEAR", fill_mode=fill_mode)
    return out, rotate_points(points, angles, size)


def flip_points(points, size, perm=FLIP_PERM):
    """Mirror [B, N, 2] crop points horizontally (u' = size - 1 - u) and permute indices
    (points past the permutation's length keep their index)."""
    points = tf.cast(points, tf.float32)
    if points.shape[1] is not None and points.shape[1] > len(perm):
        perm = list(perm) + list(range(len(perm), points.shape[1]))
    mirrored = tf.stack([float(size) - 1.0 - points[..., 0], points[..., 1]], axis=-1)
    return tf.gather(mirrored, tf.constant(perm, tf.int32), axis=1)


def flip(images, points, do_flip, perm=FLIP_PERM):
    """Flip the samples where [B] bool `do_flip` holds; others pass through unchanged."""
    images = tf.cast(images, tf.float32)
    size = images.shape[2] if images.shape[2] is not None else tf.shape(images)[2]
    do_flip = tf.cast(do_flip, tf.bool)
    images = tf.where(do_flip[:, None, None, None], tf.reverse(images, axis=[2]), images)
    points = tf.where(do_flip[:, None, None], flip_points(points, size, perm), points)
    return images, points


def occlusion_masks(batch, size, seed, prob):
    """[B, S, S, 1] float32 masks (1 = occluded): with probability `prob` per sample one
    horizontal stripe, vertical stripe or block of sides 10-40 % of `size`."""
    s_apply, s_kind, s_size, s_pos = _seeds(seed, 4)
    apply = tf.random.stateless_uniform([batch], s_apply) < prob
    kind = tf.random.stateless_uniform([batch], s_kind, minval=0, maxval=3, dtype=tf.int32)
    frac = tf.random.stateless_uniform([batch, 2], s_size, OCCLUSION_MIN, OCCLUSION_MAX)
    sz = float(size)
    ext = frac * sz                                        # (w, h) of a block
    w = tf.where(kind == 0, sz, ext[:, 0])                 # kind 0: horizontal stripe
    h = tf.where(kind == 1, sz, ext[:, 1])                 # kind 1: vertical stripe, 2: block
    pos = tf.random.stateless_uniform([batch, 2], s_pos)
    x0 = pos[:, 0] * (sz - w)
    y0 = pos[:, 1] * (sz - h)
    coord = tf.range(size, dtype=tf.float32) + 0.5         # pixel centres in edge coords
    in_x = (coord[None, :] >= x0[:, None]) & (coord[None, :] < (x0 + w)[:, None])
    in_y = (coord[None, :] >= y0[:, None]) & (coord[None, :] < (y0 + h)[:, None])
    mask = in_y[:, :, None] & in_x[:, None, :] & apply[:, None, None]
    return tf.cast(mask, tf.float32)[..., None]


def occlude(images, seed, prob, value_range=255.0):
    """Paste one random occluder into each crop with probability `prob` ([B, S, S, C] float32,
    values in [0, value_range]). Fill: random grey, random colour or uniform noise."""
    images = tf.cast(images, tf.float32)
    shape = tf.shape(images)
    batch, size, ch = shape[0], images.shape[1], shape[3]
    s_mask, s_mode, s_col, s_noise = _seeds(seed, 4)
    mask = occlusion_masks(batch, size, s_mask, prob)
    mode = tf.random.stateless_uniform([batch], s_mode, minval=0, maxval=3, dtype=tf.int32)
    col = tf.random.stateless_uniform(tf.stack([batch, 1, 1, ch]), s_col)
    grey = tf.broadcast_to(col[..., :1], tf.shape(col))
    const = tf.where((mode == 0)[:, None, None, None], grey, col)
    noise = tf.random.stateless_uniform(shape, s_noise)
    fill = tf.where((mode == 2)[:, None, None, None], noise, const + tf.zeros_like(noise))
    return images * (1.0 - mask) + fill * value_range * mask


def augment_batch(images, points, seed, config, occlusion=True, value_range=255.0,
                  fill_mode="REFLECT"):
    """Rotation, flip and (if `occlusion`) occlusion of a batch per an AugmentConfig.

    images: [B, S, S, C] float32 in [0, value_range]; points [B, N, 2] crop coordinates (68
    points when flipping). Returns (images, points), float32.
    """
    images = tf.cast(images, tf.float32)
    points = tf.cast(points, tf.float32)
    batch = tf.shape(images)[0]
    s_rot, s_flip, s_occ = _seeds(seed, 3)
    if config.rotation_deg > 0:
        limit = math.radians(config.rotation_deg)
        angles = tf.random.stateless_uniform([batch], s_rot, -limit, limit)
        images, points = rotate(images, points, angles, fill_mode=fill_mode)
    if config.flip:
        do_flip = tf.random.stateless_uniform([batch], s_flip) < 0.5
        images, points = flip(images, points, do_flip)
    if occlusion and config.occlusion_prob > 0:
        images = occlude(images, s_occ, config.occlusion_prob, value_range)
    return images, points


def crop_augmented(images, idx, regions, points, size, seed, augment):
    """Crop, rotation and flip of a training batch in ONE bilinear resample.

    images: [N, P+2, P+2, 3] padded pre-crops; idx [B] rows; regions [B, 4] pre-crop edge
    coordinates; points [B, 68, 2] pre-crop points. Draws the angles and flips of
    `augment_batch` from the same `seed` and maps points with its functions; the image is
    sampled once from the pre-crop through crop o rotation o flip (ImageProjectiveTransformV3,
    REFLECT outside the pre-crop), so corners uncovered by the rotation show real image
    content. Returns (crops [B, size, size, 3] float32 in [0, 255], points, occlusion seed).
    """
    b = tf.shape(idx)[0]
    s_rot, s_flip, s_occ = _seeds(seed, 3)
    pts = transform_points_tf(points, regions, size)
    angles = tf.zeros([b])
    if augment.rotation_deg > 0:
        limit = np.radians(augment.rotation_deg)
        angles = tf.random.stateless_uniform([b], s_rot, -limit, limit)
    pts = rotate_points(pts, angles, size)
    fs = tf.ones([b])                                       # u_pre-flip = fs * u + ft
    if augment.flip:
        do_flip = tf.random.stateless_uniform([b], s_flip) < 0.5
        pts = tf.where(do_flip[:, None, None], flip_points(pts, size), pts)
        fs = tf.where(do_flip, -1.0, 1.0)
    ft = (1.0 - fs) * 0.5 * (size - 1.0)
    c = (size - 1.0) / 2.0
    cos, sin = tf.cos(angles), tf.sin(angles)
    rx0, ry0, rx1, ry1 = tf.unstack(regions, axis=-1)
    sx, sy = (rx1 - rx0) / size, (ry1 - ry0) / size          # pre-crop px per crop px
    ox = 0.5 * sx + rx0 + 0.5                                 # crop index -> padded index
    oy = 0.5 * sy + ry0 + 0.5
    r0, r1 = c - cos * c - sin * c, c + sin * c - cos * c     # rotation about the centre
    zero = tf.zeros_like(angles)
    transforms = tf.stack([sx * cos * fs, sx * sin, sx * (cos * ft + r0) + ox,
                           -sy * sin * fs, sy * cos, sy * (r1 - sin * ft) + oy,
                           zero, zero], axis=-1)
    crops = tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.cast(tf.gather(images, idx), tf.float32), transforms=transforms,
        output_shape=[size, size], fill_value=0.0, interpolation="BILINEAR",
        fill_mode="REFLECT")
    return crops, pts, s_occ
