"""Evaluate landmark models under the paper's protocol: clean + 4 noise types x 3 levels.

  python -m fadenn_tf.evaluate --model M=runs/cpu --model FLL=runs/cpu/fll/model.keras
  python -m fadenn_tf.evaluate --model M=runs/cpu --data 300W --split challenging --dlib
  python -m fadenn_tf.evaluate --model M=runs/cpu --noisy-from noisy300w/ --box-source detector

Inputs: models as --model [LABEL=]PATH (a training workdir, a .keras file or an exported
SavedModel); a dataset (--data; default the built-in synthetic faces, 300-W layout) and split (default:
300-W full test set / 300-VW test videos / the held-out part of a folder; "val" = exactly
the validation split training picked with --config); noise conditions (default all 13,
synthesised with --seed on the reference crops of the fadenn_tf.noise protocol, or read from
a `fadenn_tf.degrade` output with --noisy-from). Face boxes (--box-source): the tight
ground-truth landmark box (paper) or the Haar detector. Progress: a bar on a terminal, lines
in a log; --no-progress for neither.
Outputs in --out: results.json (every figure with data set, split, noise type and level,
normaliser, threshold, model; IID diagnostics; timing), errors.csv (per image, model and
condition, NME under all three normalisers), results.md (the paper-style table),
auc_vs_level.png (Figure 4), ced.png, landmarks_<model>.png (Figures 5-6),
confusion_<model>.png (noise classifier).
"""
import os
import shlex
import sys
import time
from fadenn_tf.utils.cli_args import non_negative_int, positive_float, positive_int
from fadenn_tf.utils.lock import one_writer, take_lock


def build_parser():
    from fadenn_tf import metrics
    from fadenn_tf.utils.cli import add_alias, add_config_arguments, add_no_progress, make_parser
    p = make_parser("evaluate", __doc__)
    p.add_argument("--model", action="append", default=[], metavar="[LABEL=]PATH",
                   help="a model to evaluate (repeatable); PATH: workdir, .keras or SavedModel; "
                        "LABEL names it in the tables (default: the folder or file name)")
    p.add_argument("--data", default=None,
                   help="dataset folder (300-W, 300-VW, Menpo or folder); default: synthetic")
    p.add_argument("--format", default="auto", help="auto|300w|300vw|menpo|folder")
    p.add_argument("--split", default=None,
                   help="300-W: test/full, common, challenging, private...; 300-VW: test, "
                        "cat1, cat2, cat3; folder/Menpo: val, all; any: val (= training's)")
    p.add_argument("--config", default="cpu", help="config whose data settings define "
                   "--split val (default cpu)")
    p.add_argument("--conditions", default="all",
                   help="all | clean | noisy | a type (downsample, blur, gaussian_noise, "
                        "color_scale) | comma list such as clean,blur-2 (default all 13)")
    p.add_argument("--noisy-from", default=None, metavar="DIR",
                   help="read noisy images from a fadenn_tf.degrade output instead of "
                        "synthesising the noise on the crops")
    p.add_argument("--normalizer", default=metrics.DEFAULT_NORMALIZER,
                   choices=metrics.NORMALIZERS, help="NME normaliser of the tables (default "
                   "diagonal, the paper's); the CSV has all three")
    p.add_argument("--nme-threshold", dest="threshold", type=positive_float,
                   default=metrics.DEFAULT_THRESHOLD,
                   help="NME cut-off of AUC and failure rate (default 0.08; was --threshold)")
    p.add_argument("--box-source", dest="boxes", default="gt", choices=["gt", "detector"],
                   help="face box: gt = tight ground-truth landmark box (paper); detector = "
                        "Haar box overlapping it most (no detection = failure, NME inf)")
    p.add_argument("--dlib", action="store_true",
                   help="add dlib's 68-point ERT predictor as a peer (needs dlib + its model)")
    p.add_argument("--dlib-model", default=None,
                   help="dlib's shape_predictor_68_face_landmarks.dat (for --dlib)")
    p.add_argument("--max-images", type=non_negative_int, default=0,
                   help="evaluate at most N images, spread evenly over the split")
    p.add_argument("--frame-step", type=positive_int, default=1,
                   help="300-VW: every k-th annotated frame of each video")
    p.add_argument("--crop-size", type=non_negative_int, default=0,
                   help="reference crop side where noise is applied; each model gets it "
                        "resized to its input (default: the config's noise.reference_size, "
                        "224; with a degrade --crop folder its reference side)")
    p.add_argument("--flip-test", action="store_true",
                   help="average each fit with the fit of the mirrored crop (2x the cost; "
                        "results.json records the kind as '<kind>+flip-test')")
    p.add_argument("--grid-images", type=non_negative_int, default=4,
                   help="images (columns) in the landmark figure")
    p.add_argument("--out", default="results/evaluate", help="output folder")
    p.add_argument("--batch-size", type=positive_int, default=32, help="crops per model call (32)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="noise seed (on-the-fly noise)")
    add_config_arguments(p)
    add_no_progress(p)
    add_alias(p, "--threshold", "--nme-threshold")
    add_alias(p, "--boxes", "--box-source")
    return p


def _parse_models(specs):
    out = []
    for spec in specs:
        label, sep, path = spec.partition("=")
        if not sep:
            label, path = os.path.basename(os.path.normpath(spec)), spec
        if not label or not path:
            raise ValueError(f"--model {spec!r}: expected LABEL=PATH")
        if label in [m[0] for m in out]:
            raise ValueError(f"--model label {label!r} given twice")
        out.append((label, path))
    return out


@one_writer
def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from fadenn_tf.config import load_config
    from fadenn_tf.errors import FadennError
    from fadenn_tf.utils.cli import defaults_from_config
    try:
        cfg = load_config(args.config, sets=args.sets)
        defaults_from_config(parser, args, argv, cfg.eval, {
            "conditions": "conditions", "normalizer": "normalizer",
            "nme_threshold": "threshold", "box_source": "boxes", "batch_size": "batch_size",
            "seed": "seed", "grid_images": "grid_images", "flip_test": "flip_test"})
        return _run(args, argv, cfg)
    except (FadennError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(args, argv, cfg):
    from fadenn_tf import evaluation as E
    from fadenn_tf.evaluation import report
    from fadenn_tf.inference import load_any
    from fadenn_tf.noise import parse_conditions

    take_lock(args.out, "evaluate")  # one writer per --out
    specs = _parse_models(args.model)
    if not specs and not args.dlib:
        raise ValueError("nothing to evaluate: give --model LABEL=PATH (and/or --dlib)")
    conditions = parse_conditions(args.conditions)
    progress = not args.no_progress
    data, reference = args.data, args.crop_size or None
    if args.noisy_from:
        from fadenn_tf.evaluation.degraded import noisy_source
        data, reference = noisy_source(args.noisy_from, data, reference)
    if reference is None:
        reference = cfg.noise.reference_size
    entries = [E.model_entry(load_any(path, label, flip_test=args.flip_test))
               for label, path in specs]
    if args.dlib:
        from fadenn_tf.evaluation.dlib_peer import DlibUnavailable, load_dlib_peer
        try:
            entries.append(load_dlib_peer(args.dlib_model))
        except DlibUnavailable as exc:
            print(f"dlib peer skipped: {exc}", file=sys.stderr)
    if not entries:
        raise ValueError("no model left to evaluate")
    eval_set = E.select_samples(data, args.format, args.split, args.config, args.max_images,
                                args.frame_step)
    for rep in eval_set.reports:
        if rep.skipped:
            print(rep.summary(len(rep.skipped)), file=sys.stderr)  # every one, by name
    if args.boxes == "detector":
        from fadenn_tf.detect import get_detector
        E.attach_detector_boxes(eval_set, get_detector("haar"), progress=progress)
    print(f"evaluating {', '.join(e.label for e in entries)} on {eval_set.dataset} "
          f"[{eval_set.split}]: {len(eval_set.samples) + len(eval_set.missed)} images x "
          f"{len(conditions)} conditions", file=sys.stderr)
    if eval_set.missed:
        print(f"detector: no face found (overlapping the ground truth) in "
              f"{len(eval_set.missed)} of {len(eval_set.samples) + len(eval_set.missed)} "
              "images; they count as failures (NME = inf)", file=sys.stderr)
    t0 = time.perf_counter()
    ev = E.evaluate(entries, eval_set, conditions, crop_size=reference,
                    noisy_from=args.noisy_from, batch_size=args.batch_size, seed=args.seed,
                    normalizer=args.normalizer, threshold=args.threshold,
                    grid_images=args.grid_images, progress=progress)
    dt = time.perf_counter() - t0
    command = "python -m fadenn_tf.evaluate " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    for path, why in ev.problems:
        print(f"skipped {path}: {why}", file=sys.stderr)
    # results.json's "skipped" lists what indexing dropped as well as unreadable images
    ev.problems = [s for rep in eval_set.reports for s in rep.skipped] + list(ev.problems)
    paths = E.write_outputs(ev, args.out, command)
    if ev.problems:
        print(f"{len(ev.problems)} input(s) skipped (listed above and in results.json)",
              file=sys.stderr)
    print(report.stdout_table(ev))
    n = ev.meta["n_evaluated"] * len(conditions) * len(entries)
    print(f"\n{n} predictions in {dt:.1f} s ({n / max(dt, 1e-9):.0f}/s incl. loading); wrote "
          + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
