"""The training stream: tf.data batches of jittered, augmented and degraded crops.

Built on the decoded pre-crops of `fadenn_tf.data.pipeline` (load_train_data). The stream is
a pure function of (seed, step): batch `step` draws its samples from a per-epoch stateless
permutation (seeded by (seed, epoch)) and all its random numbers from stateless seeds
derived from (seed, step). `start_step=N` therefore resumes the stream at batch N for free
(tf.data.Dataset.range(N, ...)), with no replay.

Noise follows the protocol of `fadenn_tf.noise`: a noisy stream crops (and augments) at the
reference side R, applies the condition there and resizes to the network side S
(`noise.noisy_model_input`), so its TrainData must be loaded for R; a clean stream (FLL
stage) crops straight to S. A model that crops tighter than 2x the face box (crop_scale
below 2, config model.crop_scale) gets its window of the augmented 2x crop (noise.model_windows
of the jittered box, moved by the same rotation and flip): a clean stream then crops the 2x
region at `clean_work_size`, where that window is about S pixels.

Batches are dicts: image [B,S,S,3] float32 RGB pixels in 0..255 (noisy; what every model
takes, fadenn_tf.models.pixels), clean (same crop without noise, 0..255), landmarks
[B,68,2] float32 crop pixel coords, noise_type [B] int32, noise_level [B] int32 (0 for
clean), index [B] int32 (row of the loaded data).
With expert_noise: expert_images [B,4,S,S,3] in 0..255 (type k+1, random level, at index k).
"""
import dataclasses
import math

import numpy as np
import tensorflow as tf

from fadenn_tf import noise as noise_mod
from fadenn_tf.config import AugmentConfig
from fadenn_tf.data.augment import crop_augmented, occlude
from fadenn_tf.data.crop import CROP_SCALE, crop_regions_tf, jitter_boxes_tf
from fadenn_tf.data.pipeline import as_loaded, load_train_data, steps_per_epoch

_INT64_MAX = np.iinfo(np.int64).max


@dataclasses.dataclass(frozen=True)
class StreamOptions:
    """What a training stream holds. augment: AugmentConfig (None: its defaults); clean_prob:
    share of clean crops in a noisy stream; seed: of every random draw; occlusion: random
    occluders (if augment.occlusion_prob > 0); noise: one noise condition per crop;
    expert_noise: expert_images too; reference_size: side R where noise is applied (None:
    noise.REFERENCE_SIZE); keep_reference: the noisy crops at R too; crop_scale: the model's
    crop as a multiple of the face box (config model.crop_scale; below 2: its window)."""
    augment: object = None
    clean_prob: float = 0.2
    seed: int = 0
    occlusion: bool = True
    noise: bool = True
    expert_noise: bool = False
    reference_size: object = None
    keep_reference: bool = False
    crop_scale: float = CROP_SCALE

    @classmethod
    def for_task(cls, task, cfg):
        """The stream of a training task (fadenn_tf.training.tasks: its noise, expert_noise
        and occlusion flags) under ExperimentConfig `cfg` (data.augment, data.clean_prob,
        train.seed, noise.reference_size, model.crop_scale)."""
        return cls(augment=cfg.data.augment, clean_prob=cfg.data.clean_prob,
                   seed=cfg.train.seed, occlusion=task.occlusion, noise=task.noise,
                   expert_noise=task.expert_noise, reference_size=cfg.noise.reference_size,
                   crop_scale=float(cfg.model.crop_scale))


def clean_work_size(size, crop_scale=CROP_SCALE):
    """Side of the 2x crop a clean stream takes for a model of input side `size` that crops
    `crop_scale` x the face box: `size` itself at 2, else the side at which the model's
    window of that crop is `size` pixels (ceil(size * 2 / crop_scale))."""
    if not noise_mod.uses_window(crop_scale):
        return int(size)
    return int(math.ceil(int(size) * CROP_SCALE / float(crop_scale) - 1e-6))


def make_train_dataset(data, size, batch_size, options=None, *, start_step=0, shard_index=0,
                       num_shards=1, repeat=True):
    """Training batches (dicts, see module docstring) from TrainData or a list of Samples,
    as `options` (StreamOptions; default StreamOptions()) say.

    Per sample: landmark box jittered (augment.box_jitter: paper | detector | none) -> 2x
    region clipped -> bilinear crop to the working side W -> rotation / flip / occlusion (if
    `occlusion`) -> [0, 1] -> (crop_scale below 2) the model's window of it;
    per batch: noise labels from noise.sample_noise_labels(B, seed, clean_prob) and
    noise.noisy_model_input (if `noise`: condition at W, then resized to `size`).
    W = reference_size (default noise.REFERENCE_SIZE) when the stream is noisy (`noise` or
    `expert_noise`), else clean_work_size(size, crop_scale); TrainData should be loaded for
    W (load_train_data(.., W)).
    expert_noise: also yield expert_images (each noise type 1..4 at a random level, for the
    experts stage). keep_reference: also yield reference [B,W,W,3] (noisy crop at W, [0, 1]).
    Batch `step` depends only on (seed, step, shard), so `start_step=N` continues an
    interrupted stream exactly. `shard_index`/`num_shards` give each worker its own disjoint
    part of the global stream. repeat=False: one epoch of whole batches (steps_per_epoch),
    starting at start_step.
    """
    opt = options or StreamOptions()
    augment = opt.augment if opt.augment is not None else AugmentConfig()
    noise, expert_noise, clean_prob = opt.noise, opt.expert_noise, opt.clean_prob
    windowed = noise_mod.uses_window(opt.crop_scale)
    work = clean_work_size(size, opt.crop_scale)
    if noise or expert_noise:
        work = int(opt.reference_size or noise_mod.REFERENCE_SIZE)
    data = as_loaded(data, load_train_data, work, "make_train_dataset")
    n = len(data)
    b = int(batch_size)
    p = data.precrop_size
    n_epochs_per_batch = b // n + 2
    images = tf.constant(data.images)
    landmarks = tf.constant(data.landmarks)
    boxes = tf.constant(data.boxes)
    seed = int(opt.seed)

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
        if augment.jitter_kind():
            bx = jitter_boxes_tf(bx, keys[0], augment.jitter_kind())
        regions = crop_regions_tf(bx, [p, p], scale=CROP_SCALE)
        pts = tf.gather(landmarks, idx)
        if windowed:      # the box centre rides along with the points (rotation, flip)
            pts = tf.concat([pts, (bx[:, None, :2] + bx[:, None, 2:]) / 2.0 - 0.5], axis=1)
        crops, pts, s_occ = crop_augmented(images, idx, regions, pts, work, keys[1], augment)
        windows = None
        if windowed:
            pts, centre = pts[:, :-1], pts[:, -1] + 0.5               # edge coordinates
            half = (bx[:, 2:] - bx[:, :2]) / 2.0 * work / (regions[:, 2:] - regions[:, :2])
            windows = noise_mod.model_windows(tf.concat([centre - half, centre + half], -1),
                                              work, opt.crop_scale)
        if opt.occlusion and augment.occlusion_prob > 0:
            crops = occlude(crops, s_occ, augment.occlusion_prob, 255.0)
        clean = tf.clip_by_value(crops / 255.0, 0.0, 1.0)
        out = {}
        ntype = level = tf.zeros([b], tf.int32)
        if work != size or windowed:
            pts = noise_mod.window_points(pts, work, size, windows)
        if noise:
            ntype, level = noise_mod.sample_noise_labels(b, keys[2], clean_prob)
            ntype = tf.cast(ntype, tf.int32)
            level = tf.where(ntype == 0, 0, tf.cast(level, tf.int32))   # no level when clean
            noisy, clean_s, noisy_ref = noise_mod.noisy_model_input(clean, ntype, level,
                                                                    keys[3], size, windows)
        else:
            noisy_ref = clean
            noisy = clean_s = clean if work == size and not windowed \
                else noise_mod.to_model_input(clean, size, windows)
        if expert_noise:
            levels = tf.random.stateless_uniform([b, 4], keys[4], minval=1, maxval=4,
                                                 dtype=tf.int32)
            kinds = tf.tile(tf.range(1, 5, dtype=tf.int32)[None], [b, 1])
            rep = tf.repeat(clean, 4, axis=0)                        # [4B, W, W, 3], k fastest
            ex, _, _ = noise_mod.noisy_model_input(
                rep, tf.reshape(kinds, [-1]), tf.reshape(levels, [-1]), keys[5], size,
                None if windows is None else tf.repeat(windows, 4, axis=0))
            out["expert_images"] = tf.reshape(ex, [b, 4, size, size, 3]) * 255.0
        if opt.keep_reference:
            out["reference"] = noisy_ref
        out.update({"image": noisy * 255.0, "clean": clean_s * 255.0,
                    "landmarks": pts, "noise_type": ntype, "noise_level": level,
                    "index": idx})
        return out

    stop = _INT64_MAX if repeat else steps_per_epoch(n, b, num_shards)
    ds = tf.data.Dataset.range(int(start_step), stop)
    ds = ds.map(make_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)
