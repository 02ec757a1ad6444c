"""The image degradations of the paper (section IV-A): 4 noise types x 3 levels, plus clean,
and the one protocol that says WHERE they are applied.

This is the ONE noise implementation of the project: training pipelines (inside `tf.data`,
on batches), training-time validation, `evaluate`, the dlib peer and noisy test-set making
(`fadenn_tf.degrade`) all call it.

Protocol (the same for every model, whatever its input size)
------------------------------------------------------------
1. Crop: the face box (the tight 68-point landmark box, or a detector box) is grown to 2x its
   width and height, clipped to the image and resampled to a square of REFERENCE side R
   (`reference_crop`; config key `noise.reference_size`, default 224 = the paper's IID input).
   This is `fadenn_tf.data.crop.CropTransform`, area-filtered when shrinking.
2. Degrade: the condition is applied to the R x R crop (`apply_noise`).
3. Resize: the (noisy) crop is resized to the model's input side s (`to_model_size`:
   bilinear, antialiased when shrinking; identity when s == R). Points map between the two
   with `rescale_points`. A model that crops tighter than the reference (its crop_scale
   below 2: config model.crop_scale) takes its WINDOW of the reference crop instead, the
   face box grown to crop_scale x and clipped (`model_windows`), resampled to s
   (`to_model_input`); points map through `window_points` / `reference_points`. The noise
   is the same pixels either way: only what the model sees of them changes.
`noisy_model_input` does steps 2 and 3: it is the one function that owns the protocol on
batches. A "blur-2" image is therefore the same pixels at R for a 64-px model, a 224-px model
and dlib (which is fed the R crop itself), and the same condition for the same image, seed
and condition gives the same noisy reference crop in every tool.

Classes (the noise classifier's labels) and levels 1..3:

| type | name            | operation                                          | level 1, 2, 3       |
|------|-----------------|----------------------------------------------------|---------------------|
| 0    | clean           | identity (bit-exact; the level is ignored)         | -                   |
| 1    | downsample      | resize to floor(size / 2**k) with "area", then     | k = 1, 2, 3         |
|      |                 | back to size with "bilinear" (no antialias)        | (1/2, 1/4, 1/8)     |
| 2    | blur            | 2-D gaussian, separable depthwise conv, radius     | sigma = 1, 3, 5 px  |
|      |                 | ceil(3 sigma), border "REFLECT" (= OpenCV's        |                     |
|      |                 | BORDER_REFLECT_101: mirror, edge not repeated)     |                     |
| 3    | gaussian_noise  | x + N(0, variance), then clipped to [0, 1]         | var = .001,.005,.01 |
| 4    | color_scale     | x * s                                              | s = 0.8, 0.5, 0.2   |

Fixes to the authors' code: their gaussian noise wrapped around in uint8 (we clip), and their
down-sampling used a library-default interpolation that changed between versions (we name
"area" down and "bilinear" up explicitly).

Randomness is stateless (`tf.random.stateless_normal`): the same images, labels and seed give
the same bytes. Each sample of a batch draws its own noise from a per-sample seed, so a sample's
output does not depend on the other samples of the batch (see `sample_seeds`).

Images are float32 RGB in [0, 1], [B, H, W, 3] (or one [H, W, 3] image). Blur needs
H, W > 15 (the level-3 kernel radius); every other type works on any size.
"""
import math

import numpy as np
import tensorflow as tf

from fadenn_tf.config import REFERENCE_SIZE  # default side R (config noise.reference_size)
from fadenn_tf.data.crop import (CROP_SCALE, CropTransform, crop_and_resize_tf, crop_image,
                                  crop_regions_tf, transform_points_tf)

from fadenn_tf.noise_names import NOISE_NAMES  # noqa: E402  (class names, TF-free home)
NUM_TYPES = len(NOISE_NAMES)
LEVELS = (1, 2, 3)

# type -> parameter of levels 1, 2, 3.
LEVEL_PARAMS = {
    1: (1, 2, 3),              # number of halvings of the resolution (1/2, 1/4, 1/8)
    2: (1.0, 3.0, 5.0),        # gaussian blur sigma, pixels
    3: (0.001, 0.005, 0.01),   # gaussian noise variance on [0, 1] pixels
    4: (0.8, 0.5, 0.2),        # colour (intensity) scale factor
}
DOWN_METHOD = "area"            # tf.image.resize method used to shrink
UP_METHOD = "bilinear"          # tf.image.resize method used to grow back (antialias=False)
BLUR_RADIUS_SIGMAS = 3.0        # kernel radius = ceil(3 * sigma): 3, 9, 15 px
BLUR_PADDING = "REFLECT"        # border: mirror without repeating the edge (tf.pad "REFLECT",
                                # OpenCV BORDER_REFLECT_101, scipy "mirror")

_NUM_CONDITIONS = 1 + (NUM_TYPES - 1) * len(LEVELS)  # 13


def noise_conditions():
    """All 13 (type, level) conditions: (0, 0) for clean, then (t, l) for t 1..4, l 1..3."""
    return [(0, 0)] + [(t, lv) for t in range(1, NUM_TYPES) for lv in LEVELS]


def condition_name(noise_type, level=0):
    """Readable name of a condition: "clean", "downsample-1", ..., "color_scale-3"."""
    noise_type, level = int(noise_type), int(level)
    if not 0 <= noise_type < NUM_TYPES:
        raise ValueError(f"noise type {noise_type} not in 0..{NUM_TYPES - 1} {NOISE_NAMES}")
    if noise_type == 0:
        return "clean"
    if level not in LEVELS:
        raise ValueError(f"noise level {level} not in {LEVELS}")
    return f"{NOISE_NAMES[noise_type]}-{level}"


def parse_condition(name):
    """Inverse of `condition_name`: "blur-3" -> (2, 3), "clean" -> (0, 0)."""
    for cond in noise_conditions():
        if condition_name(*cond) == name:
            return cond
    valid = ", ".join(condition_name(*c) for c in noise_conditions())
    raise ValueError(f"unknown noise condition {name!r}; valid: {valid}")


def gaussian_kernel_1d(sigma):
    """Normalised 1-D gaussian taps, length 2 * ceil(3 sigma) + 1, float32 numpy array."""
    radius = int(math.ceil(BLUR_RADIUS_SIGMAS * sigma))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).astype(np.float32)


def sample_seeds(seed, n):
    """Per-sample seeds [n, 2] int64 derived from one stateless seed [2] (deterministic).

    Counter-based: sample_seeds(seed, n)[:k] == sample_seeds(seed, k) (tested), so sample i
    of a batch gets the same noise whatever the batch size.
    """
    seed = tf.convert_to_tensor(seed)
    shape = tf.stack([tf.cast(n, tf.int32), 2])
    return tf.random.stateless_uniform(shape, seed=seed, minval=None, maxval=None,
                                       dtype=tf.int64)


def sample_noise_labels(batch_size, seed, clean_prob=0.2):
    """Draw training labels: (noise_type [B] int32, level [B] int32), stateless.

    noise_type is 0 (clean) with probability `clean_prob`, otherwise uniform over 1..4;
    with the default 0.2 the type is uniform over {clean, 1..4} as in the paper.
    level is uniform over 1..3 (also drawn, and meaningless, for clean samples).
    batch_size: int or scalar tensor; seed: [2] int32/int64 tensor.
    """
    if not isinstance(clean_prob, tf.Tensor) and not 0.0 <= float(clean_prob) <= 1.0:
        raise ValueError(f"clean_prob must be in [0, 1], got {clean_prob}")
    seeds = tf.random.experimental.stateless_split(tf.convert_to_tensor(seed), num=3)
    shape = tf.reshape(tf.cast(batch_size, tf.int32), [1])
    u = tf.random.stateless_uniform(shape, seed=seeds[0], dtype=tf.float32)
    noisy = tf.random.stateless_uniform(shape, seed=seeds[1], minval=1, maxval=NUM_TYPES,
                                        dtype=tf.int32)
    noise_type = tf.where(u < tf.cast(clean_prob, tf.float32), tf.zeros_like(noisy), noisy)
    level = tf.random.stateless_uniform(shape, seed=seeds[2], minval=1,
                                        maxval=len(LEVELS) + 1, dtype=tf.int32)
    return noise_type, level


# ----------------------------------------------------------------------------- operations
# Each takes images [n, H, W, 3] float32 (n may be 0) and returns the same shape in [0, 1].

def _downsample(images, halvings):
    size = tf.shape(images)[1:3]
    small = tf.maximum(size // (2 ** halvings), 1)
    x = tf.image.resize(images, small, method=DOWN_METHOD)
    x = tf.image.resize(x, size, method=UP_METHOD, antialias=False)
    return tf.clip_by_value(x, 0.0, 1.0)


def _reflect_index(n, r):
    """Source indices of a REFLECT-padded axis (d c b | a b c d | c b a), length n + 2r.

    Done by gather rather than tf.pad(mode="REFLECT"), which rejects an empty batch.
    """
    i = tf.abs(tf.range(-r, n + r))
    i = tf.where(i >= n, 2 * (n - 1) - i, i)
    return tf.clip_by_value(i, 0, tf.maximum(n - 1, 0))  # only matters for an empty partition


def _blur(images, sigma):
    taps = gaussian_kernel_1d(sigma)
    r = (len(taps) - 1) // 2
    size = tf.shape(images)[1:3]
    check = tf.debugging.Assert(
        (tf.shape(images)[0] == 0) | (tf.reduce_min(size) > r),
        [f"apply_noise: gaussian blur sigma {sigma} needs images larger than {r} px per side,"
         " got", size])
    with tf.control_dependencies([check]):
        x = tf.gather(images, _reflect_index(size[0], r), axis=1)
        x = tf.gather(x, _reflect_index(size[1], r), axis=2)
    k = tf.constant(taps)
    kx = tf.tile(tf.reshape(k, [1, -1, 1, 1]), [1, 1, 3, 1])  # [1, K, 3, 1]
    ky = tf.tile(tf.reshape(k, [-1, 1, 1, 1]), [1, 1, 3, 1])  # [K, 1, 3, 1]
    x = tf.nn.depthwise_conv2d(x, kx, strides=[1, 1, 1, 1], padding="VALID")
    x = tf.nn.depthwise_conv2d(x, ky, strides=[1, 1, 1, 1], padding="VALID")
    # An empty batch comes back unshrunk from depthwise_conv2d: restate the shape.
    return tf.clip_by_value(tf.reshape(x, tf.shape(images)), 0.0, 1.0)


def _gaussian_noise(images, variance, seeds):
    shape = tf.shape(images)[1:]
    # One extra (discarded) draw keeps map_fn's output non-empty: stacking an empty list
    # fails when H and W are unknown at trace time (a batch with no noisy-type-3 sample).
    seeds = tf.concat([seeds, tf.zeros([1, 2], seeds.dtype)], axis=0)
    z = tf.map_fn(lambda s: tf.random.stateless_normal(shape, seed=s, dtype=tf.float32),
                  seeds, fn_output_signature=tf.float32)[:-1]
    z = tf.reshape(z, tf.shape(images))
    return tf.clip_by_value(images + math.sqrt(variance) * z, 0.0, 1.0)


def _color_scale(images, scale):
    return tf.clip_by_value(images * scale, 0.0, 1.0)


def _apply_condition(cond_index, images, seeds):
    """Apply condition `noise_conditions()[cond_index]` to every image of the partition."""
    t, lv = noise_conditions()[cond_index]
    if t == 0:
        return images
    p = LEVEL_PARAMS[t][lv - 1]
    if t == 1:
        return _downsample(images, p)
    if t == 2:
        return _blur(images, p)
    if t == 3:
        return _gaussian_noise(images, p, seeds)
    return _color_scale(images, p)


# ----------------------------------------------------------------------------- public ops

def apply_noise(images, noise_type, level, seed):
    """Degrade images, each with its own noise type and level (graph- and tf.data-safe).

    images:     float32 [B, H, W, 3] in [0, 1] (B may be unknown), or one [H, W, 3] image.
    noise_type: int [B] in 0..4 (scalar for one image); 0 = clean returns the input untouched.
    level:      int [B] in 1..3 (scalar for one image); ignored where noise_type is 0.
    seed:       int32/int64 [2] (per-sample seeds derived with `sample_seeds(seed, B)`), or
                [B, 2] per-sample seeds. Output depends only on (image, type, level, sample seed).
    Returns float32, same shape, in [0, 1] (clean samples are returned as given).
    Works by splitting the batch into the 13 conditions (tf.dynamic_partition), degrading each
    part once and stitching back, so every sample costs one operation, whatever the mix.
    """
    images = tf.convert_to_tensor(images, dtype=tf.float32)
    if images.shape.rank == 3:
        return apply_noise_single(images, noise_type, level, seed)
    if images.shape.rank != 4:
        raise ValueError(f"images must be [B, H, W, 3] or [H, W, 3], got shape {images.shape}")
    noise_type = tf.reshape(tf.cast(noise_type, tf.int32), [-1])
    level = tf.reshape(tf.cast(level, tf.int32), [-1])
    n = tf.shape(images)[0]
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    if seed.shape.rank == 1:
        seeds = sample_seeds(seed, n)
    elif seed.shape.rank == 2:
        seeds = seed
    else:
        raise ValueError(f"seed must have shape [2] or [B, 2], got {seed.shape}")

    checks = [
        tf.debugging.assert_equal(tf.shape(noise_type)[0], n,
                                  message="apply_noise: noise_type must have one entry per image"),
        tf.debugging.assert_equal(tf.shape(level)[0], n,
                                  message="apply_noise: level must have one entry per image"),
        tf.debugging.assert_equal(tf.shape(seeds)[0], n,
                                  message="apply_noise: per-sample seed must be [B, 2]"),
        tf.debugging.assert_equal(tf.shape(images)[-1], 3,
                                  message="apply_noise: images must have 3 channels (RGB)"),
        tf.debugging.Assert(
            tf.reduce_all((noise_type >= 0) & (noise_type < NUM_TYPES)),
            ["apply_noise: noise_type must be in 0..4, got", noise_type]),
        tf.debugging.Assert(
            tf.reduce_all((noise_type == 0) | ((level >= 1) & (level <= len(LEVELS)))),
            ["apply_noise: level must be in 1..3 for noisy samples, got", level]),
    ]
    with tf.control_dependencies(checks):
        cond = tf.where(noise_type == 0, 0, 1 + (noise_type - 1) * len(LEVELS) + (level - 1))

    idx = tf.range(n)
    parts_img = tf.dynamic_partition(images, cond, _NUM_CONDITIONS)
    parts_seed = tf.dynamic_partition(seeds, cond, _NUM_CONDITIONS)
    parts_idx = tf.dynamic_partition(idx, cond, _NUM_CONDITIONS)
    outs = [_apply_condition(c, parts_img[c], parts_seed[c]) for c in range(_NUM_CONDITIONS)]
    out = tf.dynamic_stitch(parts_idx, outs)
    return tf.ensure_shape(out, images.shape)


def apply_noise_single(image, noise_type, level, seed):
    """One image [H, W, 3] with scalar type and level; same result as a batch of one.

    seed: [2] (then derived like `apply_noise` does for a batch of one) or [1, 2].
    """
    image = tf.convert_to_tensor(image, dtype=tf.float32)
    if image.shape.rank != 3:
        raise ValueError(f"image must be [H, W, 3], got shape {image.shape}")
    out = apply_noise(image[None], tf.reshape(noise_type, [1]), tf.reshape(level, [1]), seed)
    return out[0]


def _seed_tensor(seed):
    """Python int seed -> stateless seed [2] int64 (the int's low and high 63-bit halves)."""
    seed = int(seed)
    return tf.constant([seed & 0x7FFFFFFFFFFFFFFF, seed >> 63], dtype=tf.int64)


def degrade_images(images_uint8, noise_type, level, seed):
    """NumPy wrapper: uint8 RGB [N, H, W, 3], int types/levels [N], int seed -> uint8 [N, H, W, 3].

    Runs `apply_noise` on x / 255, then rounds and clips to 0..255.
    """
    arr = np.asarray(images_uint8)
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"expected uint8 RGB images [N, H, W, 3], got {arr.dtype} {arr.shape}")
    x = tf.constant(arr, dtype=tf.float32) / 255.0
    t = np.broadcast_to(np.asarray(noise_type, np.int32), (arr.shape[0],))
    lv = np.broadcast_to(np.asarray(level, np.int32), (arr.shape[0],))
    y = apply_noise(x, t, lv, _seed_tensor(seed)).numpy()
    return np.clip(np.round(y * 255.0), 0, 255).astype(np.uint8)


def degrade_image(image_uint8, noise_type, level, seed):
    """NumPy wrapper for one uint8 RGB image [H, W, 3] -> uint8 [H, W, 3] (see degrade_images).

    Equals `degrade_images(image[None], [noise_type], [level], seed)[0]`.
    """
    arr = np.asarray(image_uint8)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"expected a uint8 RGB image [H, W, 3], got {arr.dtype} {arr.shape}")
    return degrade_images(arr[None], [int(noise_type)], [int(level)], seed)[0]


# ----------------------------------------------------------------------------- protocol

MODEL_RESIZE = "bilinear"       # reference -> model side: tf.image.resize, antialias=True


def reference_crop(image, box, size=REFERENCE_SIZE):
    """Protocol step 1: (crop, transform) of one image.

    image: uint8 [H, W, 3]; box: face box (x0, y0, x1, y1) in pixel-edge coordinates (see
    fadenn_tf.data.crop). Returns the [size, size, 3] uint8 crop of the 2x box clipped to the
    image (area-filtered when shrinking) and its CropTransform (image -> crop points).
    Raises ValueError when the box lies outside the image.
    """
    t = CropTransform.from_box(box, np.shape(image)[:2], int(size), scale=CROP_SCALE)
    return crop_image(image, t), t


def to_model_size(images, size):
    """Protocol step 3: [B, R, R, C] float images -> [B, size, size, C] float32 (bilinear,
    antialiased when shrinking, half-pixel centres). Returns the input as float32 when R is
    already `size`."""
    images = tf.convert_to_tensor(images, tf.float32)
    if images.shape[1] == int(size) and images.shape[2] == int(size):
        return images
    return tf.image.resize(images, [int(size), int(size)], method=MODEL_RESIZE,
                           antialias=True)


def rescale_points(points, from_size, to_size):
    """Pixel-centre points (..., 2) of a from_size crop -> the same points in the to_size
    resize of that crop: u' = (u + 0.5) * to / from - 0.5 (NumPy or tf, float)."""
    f = float(to_size) / float(from_size)
    return (points + 0.5) * f - 0.5


def uses_window(crop_scale):
    """Whether a model cropping `crop_scale` x the face box takes a window of the reference
    crop (crop_scale < 2) rather than all of it. Raises ValueError above 2 (the reference
    crop does not hold such a crop) or at 1 or below (the crop would cut the face box)."""
    scale = float(crop_scale)
    if not 1.0 < scale <= CROP_SCALE + 1e-9:
        raise ValueError(f"crop_scale {crop_scale!r}: a model crop must be more than 1 and at "
                         f"most {CROP_SCALE:g} x the face box (the reference crop)")
    return not math.isclose(scale, CROP_SCALE)


def model_windows(boxes, reference_size, crop_scale):
    """[B, 4] face boxes in reference-crop edge coordinates -> [B, 4] float32 windows: the
    box grown to `crop_scale` x about its centre and clipped to the R x R crop, i.e. the
    region a model with that crop_scale crops from the image (the reference crop is the 2x
    region clipped to the image, so clipping to it is clipping to the image)."""
    r = int(reference_size)
    return crop_regions_tf(boxes, [r, r], scale=float(crop_scale))


def to_model_input(images, size, windows=None):
    """Protocol step 3 for any model: [B, R, R, C] reference crops -> [B, size, size, C]
    float32. windows None: the whole crop (to_model_size); else [B, 4] windows of the crops
    (model_windows) resampled bilinearly to `size` (data.crop.crop_and_resize_tf: no
    anti-alias filter; windows of 0.5-1 x R shrink by at most R / size)."""
    if windows is None:
        return to_model_size(images, size)
    return crop_and_resize_tf(tf.convert_to_tensor(images, tf.float32), windows, int(size))


def window_points(points, reference_size, size, windows=None):
    """[B, N, 2] pixel-centre points of the R crops -> the same points in the model input
    of side `size` (to_model_input with the same windows); tf or NumPy in, float32 tensor
    out when windows are given."""
    if windows is None:
        return rescale_points(points, reference_size, size)
    return transform_points_tf(tf.cast(points, tf.float32), windows, int(size))


def reference_points(points, size, reference_size, windows=None):
    """Inverse of window_points, in NumPy float64: [B, N, 2] points predicted on the model
    input of side `size` -> the R reference crops' pixel-centre coordinates."""
    points = np.asarray(points, np.float64)
    if windows is None:
        return rescale_points(points, size, reference_size)
    return np.stack([CropTransform(w, int(size)).invert(p)
                     for w, p in zip(np.asarray(windows, np.float64), points)]) \
        if len(points) else points


def noisy_model_input(reference, noise_type, level, seed, size, windows=None):
    """Protocol steps 2 and 3 on a batch (graph- and tf.data-safe).

    reference: float32 [B, R, R, 3] clean reference crops in [0, 1]; noise_type, level, seed:
    as `apply_noise`; size: the model's input side s; windows: [B, 4] model windows of a
    model cropping tighter than the reference (model_windows), None for the whole crop.
    Returns (noisy [B, s, s, 3], clean [B, s, s, 3], noisy_reference [B, R, R, 3]), float32
    in [0, 1]; noisy and clean went through the same resize.
    """
    noisy_ref = apply_noise(reference, noise_type, level, seed)
    noisy = tf.clip_by_value(to_model_input(noisy_ref, size, windows), 0.0, 1.0)
    clean = tf.clip_by_value(to_model_input(reference, size, windows), 0.0, 1.0)
    return noisy, clean, noisy_ref


_noisy_input_fns = {}


def noisy_model_input_fn(ref, size):
    """noisy_model_input for reference side `ref` and model side `size` as one tf.function
    (reference [B, ref, ref, 3], noise_type [B] int32, level [B] int32, seed [2] int64),
    traced once per (ref, size): the condition is a tensor, so the datasets of every
    evaluation condition share one trace of the noise ops (tracing them takes about a
    second)."""
    key = (int(ref), int(size))
    if key not in _noisy_input_fns:
        _noisy_input_fns[key] = tf.function(
            lambda reference, ntype, lev, seed: noisy_model_input(
                reference, ntype, lev, seed, key[1]),
            input_signature=[tf.TensorSpec([None, key[0], key[0], 3], tf.float32),
                             tf.TensorSpec([None], tf.int32), tf.TensorSpec([None], tf.int32),
                             tf.TensorSpec([2], tf.int64)])
    return _noisy_input_fns[key]


_conditions_fn = None


def degrade_conditions(image_uint8, conditions, seeds):
    """One uint8 RGB image [H, W, 3] under several conditions in one batch -> list of uint8
    [H, W, 3], equal to [degrade_image(image, t, lv, s) for (t, lv), s in zip(conditions,
    seeds)]. Meant for small images (reference crops): memory is 12 float copies."""
    global _conditions_fn
    arr = np.asarray(image_uint8)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"expected a uint8 RGB image [H, W, 3], got {arr.dtype} {arr.shape}")
    if len(conditions) != len(seeds):
        raise ValueError(f"{len(conditions)} conditions but {len(seeds)} seeds")
    if not conditions:
        return []
    if _conditions_fn is None:
        def fn(image, t, lv, raw_seeds):          # raw_seeds [n, 2]: _seed_tensor of each
            x = tf.broadcast_to(image[None], tf.concat([tf.shape(t), tf.shape(image)], axis=0))
            per_sample = tf.map_fn(lambda sd: sample_seeds(sd, 1)[0], raw_seeds)
            return apply_noise(x, t, lv, per_sample)
        _conditions_fn = tf.function(fn, input_signature=[
            tf.TensorSpec([None, None, 3], tf.float32), tf.TensorSpec([None], tf.int32),
            tf.TensorSpec([None], tf.int32), tf.TensorSpec([None, 2], tf.int64)])
    raw = np.array([[int(s) & 0x7FFFFFFFFFFFFFFF, int(s) >> 63] for s in seeds], np.int64)
    t = np.array([c[0] for c in conditions], np.int32)
    lv = np.array([c[1] for c in conditions], np.int32)
    x = tf.constant(arr, dtype=tf.float32) / 255.0     # as degrade_images: same bytes
    y = _conditions_fn(x, t, lv, raw).numpy()
    out = np.clip(np.round(y * 255.0), 0, 255).astype(np.uint8)
    return list(out)


def parse_conditions(spec):
    """"all" -> 13 conditions; "clean"; "noisy" -> 12; a noise type name ("blur") -> its 3
    levels; or a comma list of those and condition names ("clean,blur-2")."""
    out = []
    for part in str(spec).split(","):
        part = part.strip()
        if part == "all":
            new = noise_conditions()
        elif part == "noisy":
            new = noise_conditions()[1:]
        elif part in NOISE_NAMES[1:]:
            t = NOISE_NAMES.index(part)
            new = [c for c in noise_conditions() if c[0] == t]
        else:
            new = [parse_condition(part)]
        out += [c for c in new if c not in out]
    if not out:
        raise ValueError(f"no noise condition in {spec!r}")
    return out
