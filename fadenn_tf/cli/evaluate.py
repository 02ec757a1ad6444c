"""Evaluate landmark models under the paper's protocol: clean + 4 noise types x 3 levels.

  python -m fadenn_tf.evaluate --model M=runs/cpu --model FLL=runs/cpu/fll/model.keras
  python -m fadenn_tf.evaluate --model M=runs/cpu --data 300W --split challenging --dlib
  python -m fadenn_tf.evaluate --model M=runs/cpu --noisy-from noisy300w/ --box-source detector

Inputs: models as --model [LABEL=]PATH (a training workdir, a .keras file or an exported
SavedModel); a dataset (--data; default the built-in synthetic faces, 300-W layout) and split
(default: 300-W full test set / 300-VW test videos / every image of a folder or Menpo set,
as predict sees it; only the --config's own dataset defaults to its held-out part; "val" =
exactly the validation split training picked with --config, "all" = every image; the
printed table and results.json name the split used); noise conditions (default all 13,
synthesised with --seed on the reference crops of the fadenn_tf.noise protocol, or read from
a `fadenn_tf.degrade` output with --noisy-from). Face boxes (--box-source): the tight
ground-truth landmark box (paper) or a face detector (--detector: the same names and options
as predict and track; giving --detector alone implies --box-source detector). Progress: a
bar on a terminal, lines in a log; --no-progress for neither.
An --out holding an earlier evaluation is refused unless --overwrite (which deletes its
results.json, errors.csv, results.md and figures first).
Outputs in --out: results.json (every figure with data set, split, noise type and level,
normaliser, threshold, model; IID diagnostics; timing), errors.csv (per image, model and
condition, NME under all three normalisers), results.md (the paper-style table),
auc_vs_level.png (Figure 4), ced.png, landmarks_<model>.png (Figures 5-6),
confusion_<model>.png (noise classifier).
"""
import dataclasses
import os
import shlex
import sys
from pathlib import Path

from fadenn_tf.config import NORMALIZERS, EvalConfig, load_config
from fadenn_tf.detect import (add_detector_arguments, default_detector_name,
                              detector_kwargs_from_args, get_detector)
from fadenn_tf.errors import DataError
from fadenn_tf.utils.cli import (EXIT_CODES, EXIT_DONE, add_alias, add_config_arguments,
                                 add_no_progress, command, config_flags, defaults_from_config,
                                 given_on_command_line, make_parser)
from fadenn_tf.utils.cli_args import non_negative_int, positive_float, positive_int
from fadenn_tf.utils.lock import take_lock
from fadenn_tf.utils.outdir import EVALUATE_OUTPUTS, prepare_output

# the config keys whose flag has another name (each other `eval` key: the flag of its name)
RENAMED_FLAGS = {"nme_threshold": "threshold", "box_source": "boxes"}


def build_parser():
    p = make_parser("evaluate", __doc__, epilog=EXIT_CODES)
    p.add_argument("--model", action="append", default=[], metavar="[LABEL=]PATH",
                   help="a model to evaluate (repeatable); PATH: workdir, .keras or SavedModel; "
                        "LABEL names it in the tables (default: the folder or file name)")
    p.add_argument("--data", default=None,
                   help="dataset folder (300-W, 300-VW, Menpo or folder); default: synthetic")
    p.add_argument("--format", default="auto", help="auto|300w|300vw|menpo|folder")
    p.add_argument("--split", default=None,
                   help="300-W: test/full, common, challenging, private...; 300-VW: test, "
                        "cat1, cat2, cat3; folder/Menpo: all (default), train, val; any: "
                        "val (= training's held-out part under --config)")
    p.add_argument("--config", default="cpu", help="config whose data settings define "
                   "--split val (default cpu)")
    p.add_argument("--conditions", default="all",
                   help="all | clean | noisy | a type (downsample, blur, gaussian_noise, "
                        "color_scale) | comma list such as clean,blur-2 (default all 13)")
    p.add_argument("--noisy-from", default=None, metavar="DIR",
                   help="read noisy images from a fadenn_tf.degrade output instead of "
                        "synthesising the noise on the crops")
    p.add_argument("--normalizer", default=EvalConfig.normalizer,
                   choices=NORMALIZERS, help="NME normaliser of the tables (default "
                   "diagonal, the paper's); the CSV has all three")
    p.add_argument("--nme-threshold", dest="threshold", type=positive_float,
                   default=EvalConfig.nme_threshold,
                   help="NME cut-off of AUC and failure rate (default 0.08; was --threshold)")
    p.add_argument("--box-source", dest="boxes", default="gt", choices=["gt", "detector"],
                   help="face box: gt = tight ground-truth landmark box (paper); detector = "
                        "the --detector box overlapping it most (no detection = failure, "
                        "NME inf)")
    p.add_argument("--dlib", action="store_true",
                   help="add dlib's 68-point ERT predictor as a peer (needs pip install "
                        "'fadenn_tf[dlib]' and its model file)")
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
    p.add_argument("--overwrite", action="store_true",
                   help="--out holds an earlier evaluation: delete its results first")
    p.add_argument("--batch-size", type=positive_int, default=32, help="crops per model call (32)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="noise seed (on-the-fly noise)")
    add_config_arguments(p)
    add_detector_arguments(p)
    add_no_progress(p)
    add_alias(p, "--threshold", "--nme-threshold")
    add_alias(p, "--boxes", "--box-source")
    return p


@command
def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    cfg = load_config(args.config, sets=args.sets)
    flags = config_flags(parser, cfg.eval, RENAMED_FLAGS)
    defaults_from_config(parser, args, argv, cfg.eval, flags)
    given = given_on_command_line(parser, argv, {"detector", "boxes"})
    if "detector" in given and "boxes" not in given:
        args.boxes = "detector"  # --detector alone asks for detector boxes
    # the eval section as this run uses it: the config's values, the flags given winning
    section = dataclasses.replace(cfg.eval,
                                  **{key: getattr(args, dest) for key, (dest, _) in flags.items()})
    return _run(args, argv, dataclasses.replace(cfg, eval=section))


def _run(args, argv, cfg):
    from fadenn_tf.evaluation import job, report  # lazy: TensorFlow
    specs = job.parse_model_specs(args.model)
    if not specs and not args.dlib:
        raise ValueError("nothing to evaluate: give --model LABEL=PATH (and/or --dlib)")
    job.parse_conditions(args.conditions)  # a bad --conditions fails before any loading
    detector = None
    if args.boxes == "detector":  # the detector predict and track use, by the same name
        try:
            detector = get_detector(args.detector, **detector_kwargs_from_args(args))
        except TypeError as exc:  # an option no detector of the chain takes
            raise ValueError(f"--detector {args.detector}: {exc}") from None
    models = job.load_models(specs, flip_test=args.flip_test)
    for flag, folder in (("--data", args.data), ("--noisy-from", args.noisy_from)):
        if folder not in (None, "synthetic") and not Path(folder).exists():
            raise DataError(folder, f"{flag} folder not found")  # before --out is created
    take_lock(args.out, "evaluate")  # one writer per --out
    prepare_output(args.out, EVALUATE_OUTPUTS, args.overwrite)
    command = "python -m fadenn_tf.evaluate " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    res = job.run_job(models, cfg, job.EvalJob.of(
        args, detector=detector, command=command,
        detector_name=_detector_name(args.detector) if detector is not None else None))
    print(report.stdout_table(res.evaluation))
    print("\n" + job.job_summary(res))
    return EXIT_DONE


def _detector_name(name):
    """--detector as the outputs name it: "default" with the chain it stands for."""
    return f"default ({default_detector_name()})" if name == "default" else name


if __name__ == "__main__":
    sys.exit(main())
