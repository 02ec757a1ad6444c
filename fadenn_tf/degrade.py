"""Write the paper's noisy test sets: every noise type x level of a dataset, same layout.

  python -m fadenn_tf.degrade --data 300W --out noisy300w
  python -m fadenn_tf.degrade --data 300W --split test --out noisy300w --conditions blur
  python -m fadenn_tf.evaluate --model M=runs/cpu --data 300W --noisy-from noisy300w

Input: any dataset the indexers read (300-W, Menpo 2D, 300-VW, a folder of images + .pts;
default: the built-in synthetic stills). Every annotated image (or every 300-VW video) is
degraded with fadenn_tf.noise (the one noise implementation; full image, paper section IV-A)
and written to OUT/<condition>/<same relative path> for each of the 12 conditions
(downsample-1 .. color_scale-3), with its .pts copied byte for byte. Still images are
re-encoded as lossless PNG by default (JPEG would add its own artefacts on top of the noise;
--keep-format keeps the original extension), so `x.jpg` becomes `x.png` beside `x.pts`.
300-VW videos are re-encoded losslessly (FFV1 in vid.avi; every frame, annotated or not).
Each image's noise is seeded by (--seed, its relative path, condition[, frame]): the output
does not depend on the order or on which other files are processed. OUT/manifest.json lists
the source, conditions, seed, formats and counts; each OUT/<condition> is itself a dataset
the indexers read.
"""
import argparse
import os
import shutil
import sys
import zlib
from pathlib import Path
from fadenn_tf.utils.cli_args import non_negative_int
from fadenn_tf.utils.lock import one_writer, take_lock


def build_parser():
    p = argparse.ArgumentParser(prog="python -m fadenn_tf.degrade", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=None, help="dataset folder (default: synthetic stills)")
    p.add_argument("--out", required=True, help="output folder (must not hold a previous run "
                   "of the same conditions unless --overwrite)")
    p.add_argument("--format", default="auto", help="auto|300w|300vw|menpo|folder")
    p.add_argument("--split", default=None, help="only this split (default: every annotated "
                   "image / every video)")
    p.add_argument("--conditions", default="noisy",
                   help="noisy (the 12, default) | a type | comma list such as blur-2,blur-3")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--keep-format", action="store_true",
                   help="keep each image's format (JPEG stays JPEG: lossy on top of the noise)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--no-progress", action="store_true")
    return p


def image_seed(seed, rel, condition, frame=None):
    """Deterministic 63-bit seed of one image (or video frame) under one condition."""
    key = f"{rel}|{condition}" + ("" if frame is None else f"|{frame}")
    return (int(seed) << 32) ^ zlib.crc32(key.encode("utf-8")) ^ (zlib.adler32(
        key.encode("utf-8")) << 16)


def index_all(root, fmt="auto", split=None):
    """(samples, report, format) of every annotated sample of a dataset, or of `split`."""
    from fadenn_tf.data.datasets import (detect_format, index_300vw, index_folder,
                                         index_menpo, open_dataset)
    fmt = detect_format(root) if fmt == "auto" else fmt
    if split:
        samples, report = open_dataset(root, fmt, split)
    elif fmt == "300vw":
        samples, report = index_300vw(root)
    elif fmt == "menpo":
        samples, report = index_menpo(root)
    else:  # 300-W and plain folders: every image with a .pts beside it, any depth
        samples, report = index_folder(root)
    return samples, report, fmt


def _write_png_or_same(path, rgb):
    import cv2
    from fadenn_tf.errors import DataError
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), rgb[:, :, ::-1].copy()):
        raise DataError(path, "cv2.imwrite failed")


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


def degrade_dataset(root, out, conditions=None, seed=0, fmt="auto", split=None,
                    keep_format=False, overwrite=False, progress=False):
    """Write OUT/<condition>/... for each (type, level) in `conditions` (default the 12
    noisy ones). Returns the manifest dict (also written to OUT/manifest.json)."""
    import numpy as np  # noqa: F401
    from fadenn_tf.data.datasets import read_sample_image
    from fadenn_tf.errors import DataError
    from fadenn_tf.noise import condition_name, degrade_image, noise_conditions
    from fadenn_tf.utils.atomic import write_json_atomic
    from fadenn_tf.utils.progress import progress as bar

    root, out = Path(root), Path(out)
    conditions = [c for c in (conditions or noise_conditions()[1:]) if c[0] != 0]
    conds = [(c, condition_name(*c)) for c in conditions]
    samples, report, fmt = index_all(root, fmt, split)
    if out.resolve() == root.resolve() or root.resolve() in out.resolve().parents:
        raise DataError(out, f"output folder lies inside the source dataset {root}")
    if not overwrite:
        for _, name in conds:
            if (out / name).exists():
                raise DataError(out / name, "already exists (pass --overwrite to replace it)")
    # what to write: unique images, or unique videos with their annotation folders
    items, seen, targets = [], set(), {}
    for s in samples:
        src = Path(s.image_path)
        if src in seen:
            continue
        seen.add(src)
        rel = src.relative_to(root)
        if s.frame is None and not keep_format:
            rel_out = rel.with_suffix(".png")
        else:
            rel_out = rel
        if rel_out in targets:
            raise DataError(src, f"and {targets[rel_out]} would both be written as {rel_out}"
                                 " (use --keep-format)")
        targets[rel_out] = src
        items.append((s, src, rel, rel_out))
    pts_files = sorted({Path(s.pts_path) for s in samples if s.pts_path})
    n_written = 0
    with bar(items, total=len(items), desc="degrading", enabled=progress,
             unit="video" if fmt == "300vw" else "img") as it:
        for s, src, rel, rel_out in it:
            if s.frame is not None:
                _degrade_video(src, {n: out / n / rel_out for _, n in conds}, conds, seed,
                               rel.as_posix(), it)
                n_written += 1
                continue
            img = read_sample_image(s)
            for (t, lv), name in conds:
                noisy = degrade_image(img, t, lv, image_seed(seed, rel.as_posix(), name))
                _write_png_or_same(out / name / rel_out, noisy)
            n_written += 1
    for pts in pts_files:
        rel = pts.relative_to(root)
        for _, name in conds:
            dst = out / name / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(pts, dst)
    manifest = {
        "tool": "fadenn_tf.degrade", "source": str(root.resolve()), "format": fmt,
        "split": split or "all", "conditions": [n for _, n in conds], "seed": int(seed),
        "image_ext": None if keep_format else ".png",
        "image_encoding": ("original format" if keep_format else "PNG (lossless)"),
        "video_encoding": "FFV1 (lossless) in the original file name",
        "noise": "fadenn_tf.noise.degrade_image on the full image, uint8 rounding",
        "n_images" if fmt != "300vw" else "n_videos": n_written,
        "n_pts": len(pts_files), "n_skipped": len(report.skipped),
        "skipped": [{"path": p, "problem": why} for p, why in report.skipped],
    }
    write_json_atomic(out / "manifest.json", manifest)
    return manifest


@one_writer
def main(argv=None):
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from fadenn_tf.errors import FadennError
    from fadenn_tf.evaluation.engine import parse_conditions
    from fadenn_tf.training.data import resolve_root
    try:
        root = resolve_root(args.data)
        conditions = [c for c in parse_conditions(args.conditions) if c[0] != 0]
        if not conditions:
            raise ValueError("--conditions: nothing to degrade (clean is the source itself)")
        take_lock(args.out, "degrade")  # one writer per --out
        m = degrade_dataset(root, args.out, conditions, args.seed, args.format, args.split,
                            args.keep_format, args.overwrite, progress=not args.no_progress)
    except (FadennError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    n = m.get("n_images", m.get("n_videos"))
    print(f"wrote {len(m['conditions'])} conditions x {n} "
          f"{'images' if 'n_images' in m else 'videos'} "
          f"({m['image_encoding'] if 'n_images' in m else m['video_encoding']}) + "
          f"{m['n_pts']} .pts each into {args.out}; {m['n_skipped']} bad samples skipped; "
          f"manifest {Path(args.out) / 'manifest.json'}")
    for item in m["skipped"]:  # every one, by name (also in the manifest)
        print(f"skipped {item['path']}: {item['problem']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
