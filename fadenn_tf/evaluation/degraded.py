"""Degraded copies of a dataset (`degrade`): every noise condition of fadenn_tf.noise applied
to the reference crops (or whole images, videos) and written as datasets, with manifest.json
(layout and modes: fadenn_tf.cli.degrade)."""
import dataclasses
import os
import sys
import time
import zlib
from pathlib import Path

from fadenn_tf.errors import DataError

IMAGE_FORMATS = {"png": ".png", "jpg": ".jpg"}


def image_seed(seed, rel, condition, frame=None):
    """Deterministic 63-bit seed of one image (or video frame) under one condition."""
    key = f"{rel}|{condition}" + ("" if frame is None else f"|{frame}")
    return (int(seed) << 32) ^ zlib.crc32(key.encode("utf-8")) ^ (zlib.adler32(
        key.encode("utf-8")) << 16)


def index_all(root, fmt="auto", split=None, check_images=True):
    """(samples, report, format) of every annotated sample of a dataset, or of `split`.
    check_images=False skips the indexers' decode check (degrade's workers read every image
    anyway and report the unreadable ones)."""
    from fadenn_tf.data.datasets import (detect_format, index_300vw, index_folder,
                                         index_menpo, open_dataset)
    fmt = detect_format(root) if fmt == "auto" else fmt
    if split:
        samples, report = open_dataset(root, fmt, split, check_images=check_images)
    elif fmt == "300vw":
        samples, report = index_300vw(root, check_images=check_images)
    elif fmt == "menpo":
        samples, report = index_menpo(root, check_images=check_images)
    else:  # 300-W and plain folders: every image with a .pts beside it, any depth
        samples, report = index_folder(root, check_images=check_images)
    return samples, report, fmt


def _degrade_video(src, dst, conds, seed, rel, progress):
    """Every frame of `src` under each condition -> dst[condition] (lossless FFV1)."""
    import cv2
    from fadenn_tf.data.images import read_video_frames
    from fadenn_tf.errors import DataError
    from fadenn_tf.noise import degrade_image
    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    cap.release()
    writers = {}
    try:
        for k, frame in enumerate(read_video_frames(src)):
            for (t, lv), name in conds:
                if name not in writers:
                    dst[name].parent.mkdir(parents=True, exist_ok=True)
                    h, w = frame.shape[:2]
                    wr = cv2.VideoWriter(str(dst[name]), cv2.VideoWriter_fourcc(*"FFV1"), fps,
                                         (w, h))
                    if not wr.isOpened():
                        raise DataError(dst[name], "cannot open an FFV1 video writer")
                    writers[name] = wr
                noisy = degrade_image(frame, t, lv, image_seed(seed, rel, name, k))
                writers[name].write(noisy[:, :, ::-1].copy())
            if progress is not None:
                progress.set_postfix_str(f"{rel} frame {k}")
    finally:
        for wr in writers.values():
            wr.release()


def _encode(rgb, ext, quality):
    """uint8 RGB [H, W, 3] -> encoded bytes of `ext` (.png lossless, .jpg at `quality`)."""
    import cv2
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if ext in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(ext, rgb[:, :, ::-1].copy(), params)
    if not ok:
        raise ValueError(f"cv2.imencode({ext}) failed for an image of shape {rgb.shape}")
    return buf.tobytes()


def _write_atomic(path, data):
    """Write bytes to `path` atomically: a hidden temporary file beside it, then os.replace.
    (utils.atomic.atomic_path makes a temporary folder per file, whose removal costs a few
    ms: too much for 13 small files per image.)"""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _init_worker():
    """Worker process: quiet TensorFlow, one thread per op (the workers share the cores)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)


def degrade_still(job):
    """Degrade one annotated still (runs in a worker). job: dict with sample, rel, rel_out,
    out, conds [((type, level), name)], seed, full_image, reference_size, ext, quality.
    Returns (rel, problem or None, crop info dict or None, files written, worker pid)."""
    import numpy as np
    from fadenn_tf.data.crop import landmark_box
    from fadenn_tf.data.datasets import read_sample_image
    from fadenn_tf.data.pts import format_pts
    from fadenn_tf.errors import DataError
    from fadenn_tf.noise import degrade_conditions, degrade_image, reference_crop
    s, rel, rel_out, out = job["sample"], job["rel"], Path(job["rel_out"]), Path(job["out"])
    conds, seed = job["conds"], job["seed"]
    seeds = [image_seed(seed, rel, name) for _, name in conds]
    try:
        img = read_sample_image(s)
    except DataError as exc:
        return rel, exc.problem, None, 0, os.getpid()
    n = 0
    if job["full_image"]:
        for ((t, lv), name), sd in zip(conds, seeds):   # one at a time: full images are big
            _write_atomic(out / name / rel_out, _encode(degrade_image(img, t, lv, sd),
                                                        rel_out.suffix, job["quality"]))
            n += 1
        return rel, None, None, n, os.getpid()
    lm = None if s.landmarks is None else np.asarray(s.landmarks, np.float64)
    if lm is None or lm.ndim != 2 or lm.shape[1] != 2 or not np.isfinite(lm).all():
        return (rel, "no usable landmarks for the face box (crop mode needs them)", None, 0,
                os.getpid())
    try:
        crop, tr = reference_crop(img, s.box if s.box is not None else landmark_box(lm),
                                  job["reference_size"])
    except ValueError as exc:
        return rel, str(exc), None, 0, os.getpid()
    pts = format_pts(tr.apply(lm))
    names = ["clean"] + [name for _, name in conds]
    images = [crop] + degrade_conditions(crop, [c for c, _ in conds], seeds)
    for name, im in zip(names, images):
        _write_atomic(out / name / rel_out, _encode(im, rel_out.suffix, job["quality"]))
        _write_atomic((out / name / rel_out).with_suffix(".pts"), pts.encode("utf-8"))
        n += 2
    info = {"crop": rel_out.as_posix(), "source": rel,
            "region": [float(v) for v in tr.region], "size": int(job["reference_size"])}
    return rel, None, info, n, os.getpid()


class _Reporter:
    """Progress of a run: a tqdm bar on a terminal, else a line on stderr every `every`
    images (nothing when disabled)."""

    def __init__(self, total, n_conditions, enabled, every, unit="img"):
        from fadenn_tf.utils.progress import progress as bar
        self.total, self.k, self.every = total, n_conditions, max(1, int(every))
        self.bar = bar(total=total, desc="degrading", enabled=enabled, unit=unit)
        self.lines = enabled and self.bar.disable
        self.done, self.t0 = 0, time.perf_counter()
        self.warm, self.pids = None, set()   # warm: (images done, time) once every worker
                                             # has finished an image (see steady_ms)

    def update(self, note="", pid=None):
        self.done += 1
        self.pids.add(pid)
        if self.warm is None and len(self.pids) >= self.warm_after:
            self.warm = (self.done, time.perf_counter())
        self.bar.update(1)
        if note:
            self.bar.set_postfix_str(note)
        if self.lines and (self.done % self.every == 0 or self.done == self.total):
            dt = time.perf_counter() - self.t0
            print(f"degrade: {self.done}/{self.total} images done, {dt:.1f} s wall, "
                  f"{1000 * dt / max(self.done * self.k, 1):.1f} ms wall per image-condition",
                  file=sys.stderr, flush=True)

    warm_after = 1            # number of workers

    def steady_ms(self):
        """Wall ms per image-condition after every worker has finished its first image
        (start-up and tracing excluded), or None when too few images."""
        if self.warm is None or self.done <= self.warm[0]:
            return None
        dt = time.perf_counter() - self.warm[1]
        return 1000 * dt / ((self.done - self.warm[0]) * self.k)

    def close(self):
        self.bar.close()


def _run_jobs(jobs, workers, reporter):
    """degrade_still over jobs, in `workers` spawned processes (in-process if 1); yields
    results as they finish."""
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            r = degrade_still(job)
            reporter.update(r[0], r[4])
            yield r
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_init_worker) as pool:
        futures = [pool.submit(degrade_still, job) for job in jobs]
        for f in as_completed(futures):
            r = f.result()
            reporter.update(r[0], r[4])
            yield r


def degrade_dataset(root, out, conditions=None, seed=0, fmt="auto", split=None,
                    keep_format=False, overwrite=False, progress=False, full_image=False,
                    reference_size=None, image_format="png", quality=95, workers=0,
                    log_every=100, max_images=0):
    """Write OUT/<condition>/... for each (type, level) in `conditions` (default the 12
    noisy ones) and, in crop mode, OUT/clean (see the module docstring). max_images: at
    most this many images, evenly spread (0 = all). Returns the manifest dict (also written
    to OUT/manifest.json)."""
    from fadenn_tf.errors import DataError
    from fadenn_tf.noise import REFERENCE_SIZE, condition_name, noise_conditions
    from fadenn_tf.utils.atomic import write_json_atomic

    root, out = Path(root), Path(out)
    conditions = [c for c in (conditions or noise_conditions()[1:]) if c[0] != 0]
    conds = [(c, condition_name(*c)) for c in conditions]
    ref = int(reference_size or REFERENCE_SIZE)
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"image format {image_format!r}: choose one of {sorted(IMAGE_FORMATS)}")
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"JPEG quality {quality} not in 1..100")
    if not full_image and not 32 <= ref <= 1024:
        raise ValueError(f"reference size {ref} not in [32, 1024] pixels")
    samples, report, fmt = index_all(root, fmt, split, check_images=False)
    full_image = full_image or fmt == "300vw"      # videos: whole frames only
    if out.resolve() == root.resolve() or root.resolve() in out.resolve().parents:
        raise DataError(out, f"output folder lies inside the source dataset {root}")
    folders = [name for _, name in conds] + ([] if full_image else ["clean"])
    if not overwrite:
        for name in folders:
            if (out / name).exists():
                raise DataError(out / name, "already exists (pass --overwrite to replace it)")
    ext = IMAGE_FORMATS[image_format]
    # what to write: unique images, or unique videos with their annotation folders
    items, seen, targets = [], set(), {}
    for s in samples:
        src = Path(s.image_path)
        if src in seen:
            continue
        seen.add(src)
        rel = src.relative_to(root)
        rel_out = rel if (s.frame is not None or (keep_format and full_image)) \
            else rel.with_suffix(ext)
        if rel_out in targets:
            raise DataError(src, f"and {targets[rel_out]} would both be written as {rel_out}"
                                 " (use --keep-format)")
        targets[rel_out] = src
        items.append((s, rel, rel_out))
    if max_images and len(items) > max_images:
        items = items[::-(-len(items) // int(max_images))]
    videos = [it for it in items if it[0].frame is not None]
    jobs = [{"sample": s, "rel": rel.as_posix(), "rel_out": str(rel_out), "out": str(out),
             "conds": conds, "seed": int(seed), "full_image": full_image,
             "reference_size": ref, "quality": int(quality)}
            for s, rel, rel_out in items if s.frame is None]
    workers = int(workers) or min(2, os.cpu_count() or 1)
    skipped = [(p, why) for p, why in report.skipped]
    crops, n_written, n_files = {}, 0, 0
    t0 = time.perf_counter()
    rep = _Reporter(len(items), len(conds), progress, log_every,
                    unit="video" if videos else "img")
    rep.warm_after = min(workers, max(len(jobs), 1))
    try:
        for s, rel, rel_out in videos:
            _degrade_video(s.image_path, {n: out / n / rel_out for _, n in conds}, conds,
                           seed, rel.as_posix(), None)
            rep.update(rel.as_posix())
            n_written += 1
        for rel, problem, info, n, _ in _run_jobs(jobs, workers, rep):
            if problem is not None:
                skipped.append((str(root / rel), problem))
                continue
            n_written += 1
            n_files += n
            if info is not None:
                crops[info.pop("crop")] = info
    finally:
        rep.close()
    wall = time.perf_counter() - t0
    if full_image:    # annotations unchanged: copy every .pts of the written images
        done = {Path(s.image_path) for s, _, _ in items} - {Path(p) for p, _ in skipped}
        for pts in sorted({Path(s.pts_path) for s in samples
                           if s.pts_path and Path(s.image_path) in done}):
            for name in folders:
                _write_atomic(out / name / pts.relative_to(root), pts.read_bytes())
    else:
        write_json_atomic(out / "crops.json", crops)
    encoding = ("original format" if keep_format and full_image else
                "PNG (lossless)" if ext == ".png" else f"JPEG quality {int(quality)}")
    manifest = {
        "tool": "fadenn_tf.degrade", "source": str(root.resolve()), "format": fmt,
        "split": split or "all", "mode": "full-image" if full_image else "crop",
        "conditions": [n for _, n in conds], "seed": int(seed),
        "reference_size": None if full_image else ref,
        "crop": None if full_image else (
            f"2x the landmark box (or Sample.box), clipped to the image, resampled to "
            f"{ref}x{ref} (fadenn_tf.noise.reference_crop); clean crops in clean/, regions "
            f"in crops.json"),
        "image_ext": None if keep_format and full_image else ext,
        "image_encoding": encoding,
        "video_encoding": "FFV1 (lossless) in the original file name",
        "noise": ("fadenn_tf.noise on the " + ("full image" if full_image else
                                               f"{ref}x{ref} reference crop")
                  + ", uint8 rounding"),
        "n_images" if not videos else "n_videos": n_written,
        "n_files": n_files, "n_skipped": len(skipped), "workers": workers,
        "wall_s": round(wall, 3),
        "ms_per_image_condition": round(1000 * wall / max(n_written * len(conds), 1), 3),
        "steady_ms_per_image_condition": (None if rep.steady_ms() is None
                                          else round(rep.steady_ms(), 3)),
        "timing_note": ("wall time of the whole run over its noisy image-conditions (clean "
                        "crops not counted); steady_: after the first image of each worker "
                        "(start-up and tracing excluded)"),
        "skipped": [{"path": str(p), "problem": why} for p, why in skipped],
    }
    write_json_atomic(out / "manifest.json", manifest)
    return manifest


def read_degrade_manifest(noisy_from):
    """The manifest.json a `fadenn_tf.degrade` run wrote (dict)."""
    import json
    p = Path(noisy_from) / "manifest.json"
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except OSError:
        raise DataError(p, "not found: --noisy-from expects a fadenn_tf.degrade output "
                           "folder") from None
    except ValueError as exc:
        raise DataError(p, f"not valid JSON ({exc})") from None


def noisy_sample_paths(samples, root, noisy_from, condition, manifest):
    """Samples of the degraded copy of `condition`: same landmarks, frame and box, image
    path NOISY/<condition>/<path relative to the source root> (still images with the
    manifest's image extension)."""
    source = Path(manifest.get("source", root))
    folder = Path(noisy_from) / condition
    if not folder.is_dir():
        raise DataError(folder, f"no degraded copy for condition {condition!r} (have: "
                                f"{', '.join(manifest.get('conditions', []))})")
    ext = manifest.get("image_ext")
    out = []
    for s in samples:
        p = Path(s.image_path)
        for base in (source, Path(root)):
            try:
                rel = p.resolve().relative_to(base.resolve())
                break
            except ValueError:
                rel = None
        if rel is None:
            raise DataError(p, f"not under the degraded data's source {source}: run "
                               f"fadenn_tf.degrade on the data you evaluate")
        if s.frame is None and ext:
            rel = rel.with_suffix(ext)
        q = folder / rel
        if not q.is_file():
            raise DataError(q, f"degraded copy of {p} not found")
        out.append(dataclasses.replace(s, image_path=str(q)))
    return out


def noisy_source(noisy_from, data=None, reference=None):
    """(data folder, reference side) to evaluate against a `degrade` output: its clean crops
    (crop mode) or its source (full-image mode) unless `data` is given; in crop mode the side
    R it cut at unless `reference` is given."""
    manifest = read_degrade_manifest(noisy_from)
    crops = manifest.get("mode") == "crop"    # degrade --crop: its clean crops are the data
    if data is None:
        data = str(Path(noisy_from) / "clean") if crops else manifest.get("source")
    if crops and reference is None:
        reference = manifest.get("reference_size")
    return data, reference
