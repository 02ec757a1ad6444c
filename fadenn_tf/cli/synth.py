"""Generate the built-in synthetic face dataset (300-W and 300-VW layouts), or benchmark it.

  python -m fadenn_tf.synth --out DIR [--train N] [--test M] [--videos V] [--frames F]
                            [--seed S] [--size PX | --size HxW] [--workers K]
  python -m fadenn_tf.synth --bench [--size 256]

Output DIR (must not exist or be empty): 300w/{afw, helen/trainset, lfpw/trainset} (train),
300w/{helen/testset, lfpw/testset} (common test) and 300w/ibug (challenging test), images
beside 68-point .pts files; 300vw/<id>/vid.avi + annot/000001.pts ... (ids of 300-VW
category 3 first); README.txt and manifest.json. Same seed -> same bytes.
The faces are cartoons for trying commands, tests and demos, not for real-face models.
"""
import argparse
import sys
import time

from fadenn_tf.utils.cli import EXIT_CODES, EXIT_DONE, add_no_progress, command, make_parser
from fadenn_tf.utils.cli_args import non_negative_int, positive_int


def _size(text):
    if text is None:
        return None
    parts = text.lower().split("x")
    try:
        vals = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size wants PX or HxW, got {text!r}") from None
    if len(vals) not in (1, 2) or min(vals) < 48:
        raise argparse.ArgumentTypeError(f"--size wants PX or HxW (at least 48), got {text!r}")
    return vals[0] if len(vals) == 1 else tuple(vals)


def build_parser():
    ap = make_parser("synth", __doc__,
                     epilog=EXIT_CODES + " An --out that exists and is not empty is refused "
                     "(2); this command never exits 1.")
    ap.add_argument("--out", help="output folder (must not exist or be empty)")
    ap.add_argument("--train", type=non_negative_int, default=1200,
                    help="train images (0 or >= 3; default 1200)")
    ap.add_argument("--test", type=non_negative_int, default=300,
                    help="test images, ~20%% of them ibug (0 or >= 3; default 300)")
    ap.add_argument("--videos", type=non_negative_int, default=6,
                    help="videos (default 6, at most 24)")
    ap.add_argument("--frames", type=positive_int, default=120,
                    help="frames per video (default 120)")
    ap.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    ap.add_argument("--size", type=_size, default=None,
                    help="still image size PX or HxW (default: random 200-500 px sides)")
    ap.add_argument("--workers", type=positive_int, default=1,
                    help="processes for the stills (default 1)")
    ap.add_argument("--bench", action="store_true",
                    help="print images per second at --size (default 256) on one core and exit")
    add_no_progress(ap)
    return ap


@command
def main(argv=None):
    ap = build_parser()
    args = ap.parse_args(argv)
    if not args.bench and not args.out:
        ap.error("--out is required (or use --bench)")
    from fadenn_tf.data import synthetic  # lazy: the renderer (OpenCV, NumPy); fast --help
    if args.bench:
        size = args.size or 256
        rate = synthetic.render_speed(size)
        print(f"synthetic renderer: {rate:.1f} images/s at {size} px, one core")
        return EXIT_DONE
    t0 = time.perf_counter()
    spec = synthetic.SynthSpec(n_train=args.train, n_test=args.test, n_videos=args.videos,
                               n_frames=args.frames, seed=args.seed, image_size=args.size)
    # a bad count or a non-empty --out: exit 2; a failed write (full disk): 3, nothing left
    out = synthetic.generate_dataset(args.out, spec, progress=not args.no_progress,
                                     workers=args.workers)
    print(f"wrote {out}: {args.train} train + {args.test} test images, {args.videos} videos "
          f"x {args.frames} frames, seed {args.seed} ({time.perf_counter() - t0:.1f} s)")
    return EXIT_DONE


if __name__ == "__main__":
    sys.exit(main())
