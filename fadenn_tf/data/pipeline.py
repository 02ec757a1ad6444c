"""tf.data input pipelines: training (jitter, augmentation, noise) and evaluation crops.

Training data is decoded ONCE (`load_train_data`): each image is pre-cropped with
`crop_image` to a generous region (`precrop_scale` = 3 x the landmark box, clipped), resized
to a square of side round(size * precrop_scale / 2 * oversample) and kept in memory (uint8)
with its landmarks in pre-crop coordinates. The region a jittered training crop can cover
(box jitter of the field notes, crop 2x the box) lies inside that 3x region, so clipping the
crop to the pre-crop is clipping it to the image, and every per-step operation is small:
crop_and_resize from the pre-crop (about 1:1 in scale for the un-jittered box), rotation,
flip, occlusion, noise. The pre-crop affine is axis-aligned, so box jitter and the 2x rule
are the same in either frame and landmarks stay exact.

The training stream is a pure function of (seed, step): batch `step` draws its samples from
a per-epoch stateless permutation (seeded by (seed, epoch)) and all its random numbers from
stateless seeds derived from (seed, step). `start_step=N` therefore resumes the stream at
batch N for free (tf.data.Dataset.range(N, ...)), with no replay.

Noise follows the protocol of `fadenn_tf.noise`: a noisy stream crops (and augments) at the
reference side R, applies the condition there and resizes to the network side S
(`noise.noisy_model_input`), so its TrainData must be loaded for R; a clean stream (FLL
stage) crops straight to S.

Batches are dicts (train): image [B,S,S,3] float32 RGB pixels in 0..255 (noisy; what every
model takes, fadenn_tf.models.pixels), clean (same crop without noise, 0..255), landmarks
[B,68,2] float32 crop pixel coords, noise_type [B] int32, noise_level [B] int32 (0 for
clean), index [B] int32 (row of the loaded data).
With expert_noise: expert_images [B,4,S,S,3] in 0..255 (type k+1, random level, at index k).
"""
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from fadenn_tf.config import AugmentConfig
from fadenn_tf.data.augment import _seeds, flip_points, occlude, rotate_points
from fadenn_tf.data.crop import (
    CROP_SCALE, CropTransform, crop_image, crop_regions_tf, jitter_boxes_tf,
    landmark_box, transform_points_tf)
from fadenn_tf.errors import DataError
from fadenn_tf.utils.progress import progress as _progress

NUM_POINTS = 68
_INT64_MAX = np.iinfo(np.int64).max


@dataclass
class TrainData:
    """Decoded training pre-crops.

    images: [N, P+2, P+2, 3] uint8, the P x P pre-crops replicate-padded by one pixel.
    landmarks: [N, 68, 2] float32 pre-crop pixel-centre coords. boxes: [N, 4] float32 tight
    landmark boxes (edge coords, pre-crop frame). transforms: image -> pre-crop CropTransform
    per row. samples: the Sample of each row. problems: (path, problem) of skipped samples.
    """
    images: np.ndarray
    landmarks: np.ndarray
    boxes: np.ndarray
    transforms: list
    samples: list
    problems: list = field(default_factory=list)

    @property
    def precrop_size(self):
        return self.images.shape[1] - 2

    def __len__(self):
        return len(self.samples)


@dataclass
class EvalData:
    """Evaluation crops: images [N, S, S, 3] uint8; landmarks [N, 68, 2] float32 crop coords
    (NaN where a sample has none); regions [N, 4] float64 image edge coords (CropTransform
    (region, S) maps back); indices [N] positions in the sample list given; problems."""
    images: np.ndarray
    landmarks: np.ndarray
    regions: np.ndarray
    indices: np.ndarray
    samples: list
    size: int
    problems: list = field(default_factory=list)

    def transform(self, i):
        return CropTransform(self.regions[i], self.size)

    def __len__(self):
        return len(self.samples)


def _where(sample):
    return sample.image_path if sample.frame is None else f"{sample.image_path} (frame {sample.frame})"


def _iter_images(samples, progress=False, desc="decoding"):
    """Yield (i, sample, image or None, problem or None) in the given order; videos are read
    through one shared VideoFrameReader in (video, frame) order."""
    from fadenn_tf.data.datasets import read_sample_image
    from fadenn_tf.data.images import VideoFrameReader

    def key(i):
        s = samples[i]
        return (0, "", 0, i) if s.frame is None else (1, s.image_path, s.frame, i)

    order = sorted(range(len(samples)), key=key)
    with VideoFrameReader() as reader:
        for i in _progress(order, total=len(order), desc=desc, enabled=progress, unit="img"):
            s = samples[i]
            try:
                yield i, s, read_sample_image(s, reader), None
            except DataError as exc:
                yield i, s, None, exc.problem


def _check_landmarks(s, need=True):
    if s.landmarks is None:
        return None if not need else "no landmarks"
    lm = np.asarray(s.landmarks, np.float64)
    if lm.shape != (NUM_POINTS, 2):
        return f"expected {NUM_POINTS} landmarks, got shape {lm.shape}"
    if not np.isfinite(lm).all():
        return "non-finite landmark coordinates"
    return None


def precrop_side(size, precrop_scale=3.0, oversample=1.0):
    """Pre-crop side P for network size `size` (1:1 scale for the un-jittered 2x crop)."""
    return int(round(size * precrop_scale / 2.0 * oversample))


def load_train_data(samples, size, precrop_scale=3.0, oversample=1.0, progress=False):
    """Decode training samples once into pre-crops (see module docstring) -> TrainData.

    Samples that cannot be used (unreadable image or video frame, missing / wrong-count /
    non-finite landmarks, landmark box outside the image) are skipped and listed in
    `.problems` as (path, problem). Raises DataError if no sample is usable.
    """
    samples = list(samples)
    p = precrop_side(size, precrop_scale, oversample)
    rows = {}
    problems = []
    for i, s, img, problem in _iter_images(samples, progress):
        problem = problem or _check_landmarks(s)
        if problem is None:
            try:
                t = CropTransform.from_box(landmark_box(s.landmarks), img.shape[:2], p,
                                           scale=precrop_scale)
            except ValueError as exc:
                problem = str(exc)
        if problem is not None:
            problems.append((_where(s), problem))
            continue
        crop = crop_image(img, t)
        padded = np.pad(crop, ((1, 1), (1, 1), (0, 0)), mode="edge")
        lm = t.apply(s.landmarks)
        rows[i] = (padded, lm.astype(np.float32), landmark_box(lm).astype(np.float32), t, s)
    if not rows:
        raise DataError(samples[0].image_path if samples else "<no samples>",
                        f"no usable training sample among {len(samples)} "
                        f"({len(problems)} skipped)")
    keep = [rows[i] for i in sorted(rows)]
    return TrainData(images=np.stack([r[0] for r in keep]),
                     landmarks=np.stack([r[1] for r in keep]),
                     boxes=np.stack([r[2] for r in keep]),
                     transforms=[r[3] for r in keep], samples=[r[4] for r in keep],
                     problems=problems)



def load_eval_data(samples, size, scale=CROP_SCALE, progress=False):
    """Crop evaluation samples once (no jitter): box = Sample.box if set, else the landmark
    box; region = `scale` x box clipped; area-filtered crop_image -> EvalData. Samples without
    a box and without landmarks, unreadable images etc. are skipped into `.problems`."""
    samples = list(samples)
    out = {}
    problems = []
    for i, s, img, problem in _iter_images(samples, progress):
        problem = problem or _check_landmarks(s, need=s.box is None)
        if problem is None:
            try:
                box = s.box if s.box is not None else landmark_box(s.landmarks)
                t = CropTransform.from_box(box, img.shape[:2], size, scale=scale)
            except ValueError as exc:
                problem = str(exc)
        if problem is not None:
            problems.append((_where(s), problem))
            continue
        lm = (t.apply(s.landmarks) if s.landmarks is not None
              else np.full((NUM_POINTS, 2), np.nan))
        out[i] = (crop_image(img, t), lm.astype(np.float32), t.region, s)
    if not out:
        raise DataError(samples[0].image_path if samples else "<no samples>",
                        f"no usable evaluation sample among {len(samples)} "
                        f"({len(problems)} skipped)")
    idx = sorted(out)
    return EvalData(images=np.stack([out[i][0] for i in idx]),
                    landmarks=np.stack([out[i][1] for i in idx]),
                    regions=np.stack([out[i][2] for i in idx]),
                    indices=np.array(idx, np.int32), samples=[out[i][3] for i in idx],
                    size=int(size), problems=problems)


def _as_loaded(data, loader, size, what):
    if isinstance(data, (TrainData, EvalData)):
        return data
    loaded = loader(data, size)
    if loaded.problems:
        warnings.warn(f"{what}: {len(loaded.problems)} bad samples skipped (load the data "
                      f"first to see the list), first: {loaded.problems[0]}", stacklevel=3)
    return loaded


def steps_per_epoch(n_samples, batch_size, num_shards=1):
    """Whole batches per pass over the data (at least 1)."""
    return max(1, n_samples // (batch_size * num_shards))


def _noise_module():
    try:
        from fadenn_tf import noise
    except ImportError as exc:
        raise ImportError(f"the training pipeline needs fadenn_tf.noise ({exc}); "
                          f"pass noise=False to train without degradations") from None
    return noise


def _crop_augmented(images, idx, regions, points, size, seed, augment):
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


def make_train_dataset(data, size, batch_size, *, augment=None, clean_prob=0.2, seed=0,
                       occlusion=True, noise=True, repeat=True, start_step=0,
                       shard_index=0, num_shards=1, num_parallel_calls=tf.data.AUTOTUNE,
                       reference_size=None, expert_noise=False, keep_reference=False):
    """Training batches (dicts, see module docstring) from TrainData or a list of Samples.

    Per sample: landmark box jittered (augment.box_jitter) -> 2x region clipped -> bilinear
    crop to the working side W -> rotation / flip / occlusion (if `occlusion`) -> [0, 1];
    per batch: noise labels from noise.sample_noise_labels(B, seed, clean_prob) and
    noise.noisy_model_input (if `noise`: condition at W, then resized to `size`).
    W = reference_size (default noise.REFERENCE_SIZE) when the stream is noisy (`noise` or
    `expert_noise`), else `size`; TrainData should be loaded for W (load_train_data(.., W)).
    expert_noise: also yield expert_images (each noise type 1..4 at a random level, for the
    experts stage). keep_reference: also yield reference [B,W,W,3] (noisy crop at W, [0, 1]).
    Batch `step` depends only on (seed, step, shard), so `start_step=N` continues an
    interrupted stream exactly. `shard_index`/`num_shards` give each worker its own disjoint
    part of the global stream. repeat=False: one epoch of whole batches (steps_per_epoch),
    starting at start_step.
    """
    augment = augment if augment is not None else AugmentConfig()
    noise_mod = _noise_module() if (noise or expert_noise) else None
    work = int(size)
    if noise_mod is not None:
        work = int(reference_size or noise_mod.REFERENCE_SIZE)
    data = _as_loaded(data, load_train_data, work, "make_train_dataset")
    n = len(data)
    b = int(batch_size)
    p = data.precrop_size
    n_epochs_per_batch = b // n + 2
    images = tf.constant(data.images)
    landmarks = tf.constant(data.landmarks)
    boxes = tf.constant(data.boxes)
    seed = int(seed)

    def make_batch(step):
        g = step * num_shards + shard_index                       # global batch number
        keys = tf.random.experimental.stateless_split(tf.stack([tf.constant(seed, tf.int64), g]), 6)
        e = g * b + tf.range(b, dtype=tf.int64)                   # global element numbers
        epoch = e // n
        pos = tf.cast(e % n, tf.int32)
        first = epoch[0]
        epochs = first + tf.range(n_epochs_per_batch, dtype=tf.int64)
        perms = tf.map_fn(
            lambda ep: tf.argsort(tf.random.stateless_uniform(
                [n], tf.stack([tf.constant(seed, tf.int64) + 7919, ep]))),
            epochs, fn_output_signature=tf.int32)
        idx = tf.gather_nd(perms, tf.stack([tf.cast(epoch - first, tf.int32), pos], axis=1))
        bx = tf.gather(boxes, idx)
        if augment.box_jitter:
            bx = jitter_boxes_tf(bx, keys[0])
        regions = crop_regions_tf(bx, [p, p], scale=CROP_SCALE)
        crops, pts, s_occ = _crop_augmented(images, idx, regions, tf.gather(landmarks, idx),
                                            work, keys[1], augment)
        if occlusion and augment.occlusion_prob > 0:
            crops = occlude(crops, s_occ, augment.occlusion_prob, 255.0)
        clean = tf.clip_by_value(crops / 255.0, 0.0, 1.0)
        out = {}
        ntype = level = tf.zeros([b], tf.int32)
        if work != size:
            pts = noise_mod.rescale_points(pts, work, size)
        if noise:
            ntype, level = noise_mod.sample_noise_labels(b, keys[2], clean_prob)
            ntype = tf.cast(ntype, tf.int32)
            level = tf.where(ntype == 0, 0, tf.cast(level, tf.int32))   # no level when clean
            noisy, clean_s, noisy_ref = noise_mod.noisy_model_input(clean, ntype, level,
                                                                    keys[3], size)
        else:
            noisy_ref = clean
            noisy = clean_s = clean if work == size else noise_mod.to_model_size(clean, size)
        if expert_noise:
            levels = tf.random.stateless_uniform([b, 4], keys[4], minval=1, maxval=4,
                                                 dtype=tf.int32)
            kinds = tf.tile(tf.range(1, 5, dtype=tf.int32)[None], [b, 1])
            rep = tf.repeat(clean, 4, axis=0)                        # [4B, W, W, 3], k fastest
            ex, _, _ = noise_mod.noisy_model_input(rep, tf.reshape(kinds, [-1]),
                                                   tf.reshape(levels, [-1]), keys[5], size)
            out["expert_images"] = tf.reshape(ex, [b, 4, size, size, 3]) * 255.0
        if keep_reference:
            out["reference"] = noisy_ref
        out.update({"image": noisy * 255.0, "clean": clean_s * 255.0,
                    "landmarks": pts, "noise_type": ntype, "noise_level": level,
                    "index": idx})
        return out

    stop = _INT64_MAX if repeat else steps_per_epoch(n, b, num_shards)
    ds = tf.data.Dataset.range(int(start_step), stop)
    ds = ds.map(make_batch, num_parallel_calls=num_parallel_calls, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def make_eval_dataset(data, size, batch_size, noise_type=0, level=1, seed=0,
                      reference_size=None, keep_reference=False):
    """Evaluation batches at model side `size` from reference crops, fixed noise condition.

    data: EvalData loaded at the reference side R (its .size; load_eval_data(samples, R)), or
    a list of Samples (loaded at `reference_size`, default noise.REFERENCE_SIZE). The
    condition is applied to the R crops and the result resized to `size`
    (noise.noisy_model_input). Keys: image (noisy, 0..255 pixels), clean, landmarks (crop coords at
    `size`, NaN if unannotated), region [B, 4] float32 (image edge coords;
    CropTransform(region, size).invert maps predictions back; EvalData.regions has them in
    float64), index [B] int32 (position in the sample list), noise_type, noise_level [B]
    int32; reference [B, R, R, 3] (noisy crop at R, [0, 1]) if keep_reference. Noise of
    batch k is seeded by (seed, k), so a condition is reproducible. noise_type 0 = clean
    (level reported 0).
    """
    from fadenn_tf import noise as noise_mod
    data = _as_loaded(data, load_eval_data, int(reference_size or noise_mod.REFERENCE_SIZE),
                      "make_eval_dataset")
    ref, size = int(data.size), int(size)
    ds = tf.data.Dataset.from_tensor_slices({
        "image": data.images, "landmarks": data.landmarks,
        "region": data.regions.astype(np.float32), "index": data.indices})
    ds = ds.batch(int(batch_size)).enumerate()

    def degrade(k, batch):
        reference = tf.cast(batch["image"], tf.float32) / 255.0
        nb = tf.shape(reference)[0]
        ntype = tf.fill([nb], tf.constant(int(noise_type), tf.int32))
        lev = tf.fill([nb], tf.constant(int(level) if noise_type else 0, tf.int32))
        noisy, clean, noisy_ref = noise_mod.noisy_model_input(
            reference, ntype, lev, tf.stack([tf.constant(int(seed), tf.int64), k]), size)
        out = dict(batch)
        out.update(image=noisy * 255.0, clean=clean * 255.0,
                   noise_type=ntype, noise_level=lev)
        if ref != size:
            out["landmarks"] = noise_mod.rescale_points(batch["landmarks"], ref, size)
        if keep_reference:
            out["reference"] = noisy_ref
        return out

    ds = ds.map(degrade, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def benchmark_pipeline(dataset, steps=20, warmup=3):
    """Images per second delivered by `dataset` (batches with an "image" key) over `steps`
    batches after `warmup` batches. Returns (images_per_s, seconds)."""
    it = iter(dataset)
    for _ in range(warmup):
        next(it)
    n = 0
    t0 = time.perf_counter()
    for _ in range(steps):
        batch = next(it)
        n += int(batch["image"].shape[0])
    dt = time.perf_counter() - t0
    return n / dt, dt
