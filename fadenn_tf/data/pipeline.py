"""Decoded data for the tf.data streams: training pre-crops and evaluation crops.

Training data is decoded ONCE (`load_train_data`): each image is pre-cropped with
`crop_image` to a generous region (`precrop_scale` = 3 x the landmark box, clipped), resized
to a square of side round(size * precrop_scale / 2 * oversample) and kept in memory (uint8)
with its landmarks in pre-crop coordinates. The region a jittered training crop can cover
(box jitter of the field notes, crop 2x the box) lies inside that 3x region, so clipping the
crop to the pre-crop is clipping it to the image, and every per-step operation is small:
crop_and_resize from the pre-crop (about 1:1 in scale for the un-jittered box), rotation,
flip, occlusion, noise. The pre-crop affine is axis-aligned, so box jitter and the 2x rule
are the same in either frame and landmarks stay exact.

Evaluation data (`load_eval_data`) is cropped once, without jitter, at the reference side.

The streams built on them apply the noise conditions of `fadenn_tf.noise`, so they live
above it: the training stream in `fadenn_tf.training.stream` (make_train_dataset), the
evaluation batches of one condition in `fadenn_tf.evaluation.scoring` (make_eval_dataset).
"""
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from fadenn_tf.data.crop import CROP_SCALE, CropTransform, crop_image, landmark_box
from fadenn_tf.data.datasets import read_sample_image
from fadenn_tf.data.images import VideoFrameReader
from fadenn_tf.errors import DataError
from fadenn_tf.utils.progress import progress as _progress

NUM_POINTS = 68


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
    (region, S) maps back); indices [N] positions in the sample list given; problems;
    boxes [N, 4] float64 the face box of each crop (Sample.box, else the landmark box) in
    crop edge coordinates (where a model cropping tighter finds its window: noise.model_windows)."""
    images: np.ndarray
    landmarks: np.ndarray
    regions: np.ndarray
    indices: np.ndarray
    samples: list
    size: int
    problems: list = field(default_factory=list)
    boxes: np.ndarray = None

    def transform(self, i):
        return CropTransform(self.regions[i], self.size)

    def __len__(self):
        return len(self.samples)


def _where(sample):
    return sample.image_path if sample.frame is None else f"{sample.image_path} (frame {sample.frame})"


def _iter_images(samples, progress=False, desc="decoding"):
    """Yield (i, sample, image or None, problem or None) in the given order; videos are read
    through one shared VideoFrameReader in (video, frame) order."""

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
        out[i] = (crop_image(img, t), lm.astype(np.float32), t.region, s, t.apply_box(box))
    if not out:
        raise DataError(samples[0].image_path if samples else "<no samples>",
                        f"no usable evaluation sample among {len(samples)} "
                        f"({len(problems)} skipped)")
    idx = sorted(out)
    return EvalData(images=np.stack([out[i][0] for i in idx]),
                    landmarks=np.stack([out[i][1] for i in idx]),
                    regions=np.stack([out[i][2] for i in idx]),
                    indices=np.array(idx, np.int32), samples=[out[i][3] for i in idx],
                    size=int(size), problems=problems,
                    boxes=np.stack([out[i][4] for i in idx]))


def as_loaded(data, loader, size, what):
    """`data` if it is loaded already (TrainData / EvalData), else loader(data, size) with a
    warning naming `what` when samples were skipped."""
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
