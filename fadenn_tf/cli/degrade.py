"""Write the paper's noisy test sets: every noise type x level of a dataset, as a dataset.

  python -m fadenn_tf.degrade --data 300W --split test --out noisy300w          # face crops
  python -m fadenn_tf.evaluate --model M=runs/cpu --data noisy300w/clean --noisy-from noisy300w
  python -m fadenn_tf.degrade --data 300W --out noisy300w-full --full-image     # whole images

Input: any dataset the indexers read (300-W, Menpo 2D, 300-VW, a folder of images + .pts;
default: the built-in synthetic stills). Noise is `fadenn_tf.noise` (the one implementation).

Crop mode (default for annotated stills; the protocol of `fadenn_tf.noise`): each face is
cropped to 2x its landmark box, clipped, resampled to the reference side R (--reference-size,
default noise.REFERENCE_SIZE = 224) and written as OUT/clean/<relative path> with its .pts
in crop pixels; each of the 12 conditions is applied to that crop and written to
OUT/<condition>/<same path> with the same .pts. Every OUT/<folder> is itself a dataset the
indexers, `evaluate --data OUT/clean --noisy-from OUT` and outside tools read; OUT/crops.json
gives each crop's source image and region (image pixel-edge coordinates) to map points back.

Full-image mode (--full-image; always for 300-VW videos): the whole image (every frame of a
video) is degraded and written to OUT/<condition>/<same relative path> with its .pts copied
byte for byte; note that a down-sampled multi-megapixel photo still holds a face larger than
any model input, so conditions are milder than the paper's.

Images are written as lossless PNG by default (`x.jpg` becomes `x.png` beside `x.pts`), or
JPEG with --image-format jpg --quality Q (JPEG adds its own artefacts on top of the noise);
--keep-format (full-image mode) keeps each image's format. 300-VW videos are re-encoded
losslessly (FFV1 in vid.avi). Each image's noise is seeded by (--seed, its relative path,
condition[, frame]): the output does not depend on the order, the workers or which other
files are processed. Stills are processed by --workers processes (default: both cores),
which end with the command however it ends (Ctrl-C, SIGTERM, SIGKILL). A bar shows progress
on a terminal, else a line every 10% of the items (or every --log-every items) with the ETA.
Files are written atomically; unreadable images and unusable annotations are skipped and
listed in OUT/manifest.json (source, mode, conditions, seed, encoding, counts, wall time).

An existing run in OUT is refused unless --resume or --overwrite. Each finished item is
recorded in OUT/.degrade-journal.jsonl (with its files' sizes), so after an interruption the
same command plus --resume keeps every item finished intact and does the rest (resuming
with other settings is refused); --overwrite writes every item again.
"""
import os
import sys
from pathlib import Path

from fadenn_tf.config import REFERENCE_SIZE
from fadenn_tf.errors import FadennError
from fadenn_tf.evaluation.degrade_options import IMAGE_FORMATS, DegradeOptions
from fadenn_tf.utils.cli import EXIT_CODES, add_no_progress, command, exit_status, make_parser
from fadenn_tf.utils.cli_args import non_negative_int, positive_int
from fadenn_tf.utils.lock import take_lock
from fadenn_tf.utils.processes import sigterm_interrupts


def build_parser():
    p = make_parser("degrade", __doc__, epilog=EXIT_CODES)
    p.add_argument("--data", default=None, help="dataset folder (default: synthetic stills)")
    p.add_argument("--out", required=True, help="output folder (must not hold a previous run "
                   "of the same conditions unless --resume or --overwrite)")
    p.add_argument("--format", default="auto", help="dataset format: auto|300w|300vw|menpo|folder")
    p.add_argument("--split", default=None, help="only this split (default: every annotated "
                   "image / every video)")
    p.add_argument("--conditions", default="noisy",
                   help="noisy (the 12, default) | a type | comma list such as blur-2,blur-3")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="noise seed (default 0); each image's seed derives from it and its path")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--crop", dest="full_image", action="store_false",
                      help="(default) reference-resolution face crops + clean folder")
    mode.add_argument("--full-image", dest="full_image", action="store_true",
                      help="degrade whole images instead of face crops")
    p.set_defaults(full_image=False)
    p.add_argument("--reference-size", type=positive_int, default=REFERENCE_SIZE,
                   help=f"crop side R in pixels (crop mode; default {REFERENCE_SIZE})")
    p.add_argument("--image-format", default="png", choices=sorted(IMAGE_FORMATS),
                   help="png (lossless, default) or jpg (lossy, see --quality)")
    p.add_argument("--quality", type=positive_int, default=95,
                   help="JPEG quality 1..100 (default 95)")
    p.add_argument("--keep-format", action="store_true",
                   help="full-image mode: keep each image's format (JPEG stays JPEG)")
    p.add_argument("--workers", type=int, default=0,
                   help="worker processes for still images (default: min(2, CPU cores))")
    p.add_argument("--log-every", type=positive_int, default=None,
                   help="without a terminal, print a progress line every N images (default: "
                        "every 10%% of them, and at least once a minute)")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="continue an interrupted run in --out (same options): keep the "
                            "items it finished, do the rest")
    again.add_argument("--overwrite", action="store_true",
                       help="replace an earlier run's output files")
    add_no_progress(p)
    return p


@command
def main(argv=None):
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from fadenn_tf.data.splits import resolve_root  # lazy: the data readers (OpenCV, NumPy)
    from fadenn_tf.evaluation.degraded import degrade_dataset  # lazy: TensorFlow
    from fadenn_tf.noise import parse_conditions  # lazy: TensorFlow
    try:
        root = resolve_root(args.data)
        conditions = [c for c in parse_conditions(args.conditions) if c[0] != 0]
        if not conditions:
            raise ValueError("--conditions: nothing to degrade (clean is the source itself)")
        take_lock(args.out, "degrade")  # one writer per --out
        with sigterm_interrupts():      # SIGTERM stops the workers, as Ctrl-C does
            m = degrade_dataset(root, args.out, DegradeOptions(
                conditions=conditions, seed=args.seed, format=args.format, split=args.split,
                full_image=args.full_image, reference_size=args.reference_size,
                image_format=args.image_format, quality=args.quality,
                keep_format=args.keep_format, workers=args.workers,
                progress=not args.no_progress, log_every=args.log_every, resume=args.resume,
                overwrite=args.overwrite))
    except (FadennError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_status(exc)  # 3 for a failed write, else 2
    except KeyboardInterrupt:
        print("interrupted: the items finished so far are kept; continue with the same "
              "command plus --resume", file=sys.stderr)
        return 130
    n = m.get("n_images", m.get("n_videos"))
    what = ("clean + " if m["mode"] == "crop" else "") + f"{len(m['conditions'])} conditions"
    shape = (f"{m['reference_size']}x{m['reference_size']} face crops" if m["mode"] == "crop"
             else "full images" if "n_images" in m else "videos")
    kept = m.get("n_kept_from_earlier_run", 0)
    ms = m["ms_per_image_condition"]
    print(f"wrote {what} x {n} {shape} "
          f"({m['image_encoding'] if 'n_images' in m else m['video_encoding']}) with their "
          f".pts into {args.out}"
          f"{f' ({kept} of them kept from the interrupted run)' if kept else ''}; "
          f"{m['n_skipped']} bad samples skipped; {m['wall_s']:.1f} s wall"
          f"{f', {ms:.1f} ms wall per image-condition' if ms is not None else ''} on "
          f"{m['workers']} worker(s); manifest {Path(args.out) / 'manifest.json'}")
    for item in m["skipped"]:  # every one, by name (also in the manifest)
        print(f"skipped {item['path']}: {item['problem']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
