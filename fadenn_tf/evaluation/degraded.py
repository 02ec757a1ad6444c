"""Degraded copies of a dataset (`degrade`): every noise condition of fadenn_tf.noise applied
to the reference crops (or whole images, videos) and written as datasets, with manifest.json
(layout and modes: fadenn_tf.cli.degrade). The items themselves: evaluation.degrade_items.
A journal (utils.journal) records each finished item, so `resume=True` continues an
interrupted run without redoing what it finished. Options: evaluation.degrade_options."""
import dataclasses
import json
import os
import time
from pathlib import Path

from fadenn_tf.data.datasets import (detect_format, index_300vw, index_folder, index_menpo,
                                     open_dataset)
from fadenn_tf.errors import DataError
from fadenn_tf.evaluation.degrade_items import image_seed  # noqa: F401 (part of the API)
from fadenn_tf.evaluation.degrade_items import (degrade_still, degrade_video, init_worker,
                                                remove_temporaries, write_atomic)
from fadenn_tf.evaluation.degrade_options import IMAGE_FORMATS, DegradeOptions
from fadenn_tf.noise import condition_name, noise_conditions
from fadenn_tf.utils.atomic import write_json_atomic
from fadenn_tf.utils.journal import Journal
from fadenn_tf.utils.processes import run_in_workers
from fadenn_tf.utils.progress import progress as make_progress

JOURNAL_NAME = ".degrade-journal.jsonl"


def index_all(root, fmt="auto", split=None, check_images=True):
    """(samples, report, format) of every annotated sample of a dataset, or of `split`.
    check_images=False skips the indexers' decode check (degrade's workers read every image
    anyway and report the unreadable ones)."""
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


class _Timing:
    """Wall time per image-condition of a run, overall and after every worker has finished
    its first image (start-up and tracing excluded)."""

    def __init__(self, n_conditions, warm_after):
        self.k, self.warm_after = n_conditions, warm_after
        self.done, self.t0 = 0, time.perf_counter()
        self.warm, self.pids = None, set()     # warm: (items done, time) once all warmed up

    def update(self, pid):
        self.done += 1
        self.pids.add(pid)
        if self.warm is None and len(self.pids) >= self.warm_after:
            self.warm = (self.done, time.perf_counter())

    def steady_ms(self):
        """Wall ms per image-condition after the warm-up, or None when too few images."""
        if self.warm is None or self.done <= self.warm[0]:
            return None
        dt = time.perf_counter() - self.warm[1]
        return 1000 * dt / ((self.done - self.warm[0]) * self.k)


def _check_output(out, folders, overwrite, resume):
    """Refuse an earlier run in `out` unless overwrite or resume (DataError naming it);
    remove the temporary files a killed run left."""
    earlier = [out / n for n in folders if (out / n).exists()]
    if (out / JOURNAL_NAME).exists():
        earlier.append(out / JOURNAL_NAME)
    if earlier and not (overwrite or resume):
        raise DataError(earlier[0], "already exists: pass --resume to continue an "
                                    "interrupted run, or --overwrite to replace it")
    for p in earlier:
        if p.is_dir():
            remove_temporaries(p)


def degrade_dataset(root, out, options=None):
    """Write OUT/<condition>/... for each (type, level) of options.conditions (default the
    12 noisy ones) and, in crop mode, OUT/clean (see the module docstring). options: a
    DegradeOptions (seed, mode, encoding, workers, progress, resume / overwrite; resume
    reads OUT/.degrade-journal.jsonl). Returns the manifest dict (also written to
    OUT/manifest.json)."""
    o = options or DegradeOptions()
    seed, split, quality, image_format = o.seed, o.split, o.quality, o.image_format
    keep_format, max_images = o.keep_format, o.max_images
    root, out = Path(root), Path(out)
    conditions = [c for c in (o.conditions or noise_conditions()[1:]) if c[0] != 0]
    conds = [(c, condition_name(*c)) for c in conditions]
    ref = int(o.reference_size)
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"image format {image_format!r}: choose one of {sorted(IMAGE_FORMATS)}")
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"JPEG quality {quality} not in 1..100")
    if not o.full_image and not 32 <= ref <= 1024:
        raise ValueError(f"reference size {ref} not in [32, 1024] pixels")
    samples, report, fmt = index_all(root, o.format, split, check_images=False)
    full_image = o.full_image or fmt == "300vw"      # videos: whole frames only
    if out.resolve() == root.resolve() or root.resolve() in out.resolve().parents:
        raise DataError(out, f"output folder lies inside the source dataset {root}")
    folders = [name for _, name in conds] + ([] if full_image else ["clean"])
    _check_output(out, folders, o.overwrite, o.resume)
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
    settings = {"source": str(root.resolve()), "format": fmt, "split": split or "all",
                "full_image": full_image, "conditions": [n for _, n in conds],
                "seed": int(seed), "reference_size": None if full_image else ref,
                "image_ext": None if keep_format and full_image else ext,
                "quality": int(quality), "max_images": int(max_images or 0)}
    journal = Journal.start(out / JOURNAL_NAME, settings, resume=o.resume)
    todo = [it for it in items if it[2].as_posix() not in journal.done]
    videos = [it for it in todo if it[0].frame is not None]
    jobs = [{"sample": s, "rel": rel.as_posix(), "rel_out": str(rel_out), "out": str(out),
             "conds": conds, "seed": int(seed), "full_image": full_image,
             "reference_size": ref, "quality": int(quality)}
            for s, rel, rel_out in todo if s.frame is None]
    rel_outs = {job["rel"]: job["rel_out"] for job in jobs}
    workers = int(o.workers) or min(2, os.cpu_count() or 1)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the workers import TensorFlow quietly
    skipped = [(p, why) for p, why in report.skipped]
    is_video = any(s.frame is not None for s, _, _ in items)
    timing = _Timing(len(conds), min(workers, max(len(jobs), 1)))
    bar = make_progress(total=len(items), desc="degrading", enabled=o.progress,
                        unit="video" if is_video else "img", every=o.log_every)
    n_new = 0                          # items written by this run
    with bar:
        if journal.kept:
            bar.update(journal.kept)
            bar.set_postfix_str(f"{journal.kept} kept from the interrupted run")
        for s, rel, rel_out in videos:
            files = degrade_video(s.image_path, {n: out / n / rel_out for _, n in conds},
                                  conds, seed, rel.as_posix())
            journal.add(rel_out.as_posix(), files)
            n_new += 1
            timing.update(os.getpid())
            bar.update(1)
        for rel, problem, info, files, pid in run_in_workers(
                degrade_still, jobs, workers, init_worker):
            timing.update(pid)
            bar.update(1)
            if problem is not None:
                skipped.append((str(root / rel), problem))
                continue
            n_new += 1
            journal.add(Path(rel_outs[rel]).as_posix(), files,
                        **({} if info is None else {"info": info}))
    done = journal.done
    wall = time.perf_counter() - timing.t0
    if full_image:    # annotations unchanged: copy every .pts of the written images
        kept = {root / rel for s, rel, rel_out in items if rel_out.as_posix() in done}
        for pts in sorted({Path(s.pts_path) for s in samples
                           if s.pts_path and Path(s.image_path) in kept}):
            for name in folders:
                write_atomic(out / name / pts.relative_to(root), pts.read_bytes())
    else:
        crops = {}
        for rec in done.values():
            info = dict(rec["info"])
            crops[info.pop("crop")] = info
        write_json_atomic(out / "crops.json", dict(sorted(crops.items())))
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
        "n_images" if not is_video else "n_videos": len(done),
        "n_files": sum(len(rec["files"]) for rec in done.values()),
        "n_kept_from_earlier_run": journal.kept, "n_skipped": len(skipped),
        "workers": workers, "wall_s": round(wall, 3),
        "ms_per_image_condition": (round(1000 * wall / (n_new * len(conds)), 3) if n_new
                                   else None),
        "steady_ms_per_image_condition": (None if timing.steady_ms() is None
                                          else round(timing.steady_ms(), 3)),
        "timing_note": ("wall time of this run over the noisy image-conditions it wrote "
                        "(clean crops and items kept from an interrupted run not counted); "
                        "steady_: after the first image of each worker (start-up and "
                        "tracing excluded)"),
        "journal": JOURNAL_NAME,
        "skipped": [{"path": str(p), "problem": why} for p, why in skipped],
    }
    write_json_atomic(out / "manifest.json", manifest)
    return manifest


def read_degrade_manifest(noisy_from):
    """The manifest.json a `fadenn_tf.degrade` run wrote (dict)."""
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
