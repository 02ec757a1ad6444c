"""One item of a `degrade` run: an annotated still (in a worker process) or a video, under
every noise condition, each output written atomically (fadenn_tf.evaluation.degraded runs
them). Each image's noise is seeded by (seed, its relative path, condition[, frame]), so an
item's output does not depend on the order or on the other items."""
import contextlib
import os
import shutil
import zlib
from pathlib import Path

import cv2
import numpy as np
import tensorflow as tf

from fadenn_tf.data.crop import landmark_box
from fadenn_tf.data.datasets import read_sample_image
from fadenn_tf.data.images import read_video_frames
from fadenn_tf.data.pts import format_pts
from fadenn_tf.data.video_writer import checked_video_writer
from fadenn_tf.errors import DataError
from fadenn_tf.noise import degrade_conditions, degrade_image, reference_crop
from fadenn_tf.utils.atomic import checked_write


def image_seed(seed, rel, condition, frame=None):
    """Deterministic 63-bit seed of one image (or video frame) under one condition."""
    key = f"{rel}|{condition}" + ("" if frame is None else f"|{frame}")
    return (int(seed) << 32) ^ zlib.crc32(key.encode("utf-8")) ^ (zlib.adler32(
        key.encode("utf-8")) << 16)


def temporary_name(path):
    """The hidden name `path` is written under before its rename: .NAME.tmp-PID.EXT (the
    extension kept, for writers that pick the format from it)."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}{path.suffix}")


def remove_temporaries(folder):
    """Delete the .NAME.tmp-* files (write_atomic) and folders (utils.atomic.atomic_path,
    e.g. a video's) killed writers left anywhere under `folder` (call it while holding the
    folder's lock). Returns how many."""
    n = 0
    for dirpath, dirs, files in os.walk(folder):
        for name in [d for d in dirs if d.startswith(".") and ".tmp-" in d]:
            shutil.rmtree(os.path.join(dirpath, name), ignore_errors=True)
            dirs.remove(name)
            n += 1
        for name in files:
            if name.startswith(".") and ".tmp-" in name:
                os.unlink(os.path.join(dirpath, name))
                n += 1
    return n


def degrade_video(src, dst, conds, seed, rel):
    """Every frame of video `src` under each condition -> dst[condition name] (lossless
    FFV1, at the source's frame rate), each written through the checked video writer
    (data.video_writer: renamed into place once it reads back complete, else WriteError).
    conds: [((type, level), name)]. Returns the files written."""
    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    cap.release()
    writers = {}
    with contextlib.ExitStack() as stack:   # every video is finished (verified) on leaving
        for k, frame in enumerate(read_video_frames(src)):
            for (t, lv), name in conds:
                if name not in writers:   # (atomic_path makes the parent folders)
                    writers[name] = stack.enter_context(
                        checked_video_writer(dst[name], fps, fourcc="FFV1"))
                writers[name].write(degrade_image(frame, t, lv, image_seed(seed, rel, name, k)))
    return [dst[name] for name in writers]


def encode_image(rgb, ext, quality):
    """uint8 RGB [H, W, 3] -> encoded bytes of `ext` (.png lossless, .jpg at `quality`)."""
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if ext in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(ext, rgb[:, :, ::-1].copy(), params)
    if not ok:
        raise ValueError(f"cv2.imencode({ext}) failed for an image of shape {rgb.shape}")
    return buf.tobytes()


def write_atomic(path, data):
    """Write bytes to `path` atomically: a hidden temporary file beside it, then os.replace
    (utils.atomic.atomic_path makes a temporary folder per file, whose removal costs a few
    ms: too much for 26 small files per image). A failed write raises WriteError."""
    path = Path(path)
    tmp = temporary_name(path)
    with checked_write(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            tmp.write_bytes(data)
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
    return path


def init_worker():
    """Worker process: one thread per op (the workers share the cores). TensorFlow's log
    level comes from the parent's environment (degraded.degrade_dataset quiets it)."""
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)


def degrade_still(job):
    """Degrade one annotated still (runs in a worker). job: dict with sample, rel, rel_out,
    out, conds [((type, level), name)], seed, full_image, reference_size, quality.
    Returns (rel, problem or None, crop info dict or None, files written, worker pid)."""
    s, rel, rel_out, out = job["sample"], job["rel"], Path(job["rel_out"]), Path(job["out"])
    conds, seed = job["conds"], job["seed"]
    seeds = [image_seed(seed, rel, name) for _, name in conds]
    try:
        img = read_sample_image(s)
    except DataError as exc:
        return rel, exc.problem, None, [], os.getpid()
    files = []
    if job["full_image"]:
        for ((t, lv), name), sd in zip(conds, seeds):   # one at a time: full images are big
            files.append(write_atomic(out / name / rel_out, encode_image(
                degrade_image(img, t, lv, sd), rel_out.suffix, job["quality"])))
        return rel, None, None, files, os.getpid()
    lm = None if s.landmarks is None else np.asarray(s.landmarks, np.float64)
    if lm is None or lm.ndim != 2 or lm.shape[1] != 2 or not np.isfinite(lm).all():
        return (rel, "no usable landmarks for the face box (crop mode needs them)", None, [],
                os.getpid())
    try:
        crop, tr = reference_crop(img, s.box if s.box is not None else landmark_box(lm),
                                  job["reference_size"])
    except ValueError as exc:
        return rel, str(exc), None, [], os.getpid()
    pts = format_pts(tr.apply(lm))
    names = ["clean"] + [name for _, name in conds]
    images = [crop] + degrade_conditions(crop, [c for c, _ in conds], seeds)
    for name, im in zip(names, images):
        files.append(write_atomic(out / name / rel_out,
                                  encode_image(im, rel_out.suffix, job["quality"])))
        files.append(write_atomic((out / name / rel_out).with_suffix(".pts"),
                                  pts.encode("utf-8")))
    info = {"crop": rel_out.as_posix(), "source": rel,
            "region": [float(v) for v in tr.region], "size": int(job["reference_size"])}
    return rel, None, info, files, os.getpid()
