"""`predict`: landmarks for image files and folders (library: fadenn_tf.inference).

    python -m fadenn_tf.predict IMAGE_OR_DIR... --model M --out DIR
        [--boxes FILE] [--detector default] [--min-score S] [--detector-input WxH] ...
        [--backend auto|keras|litert|litert-int8] [--all-faces] [--batch-size 32]
        [--refine auto|on|off] [--no-overlay] [--min-fit-score P|auto] [--drop-rejected]

Writes, per image NAME: NAME.pts (one face) or NAME_0.pts, NAME_1.pts ... (several faces,
in the detector's order: largest first), NAME_overlay.png (landmarks and box drawn), and DIR/summary.json (per image:
faces, boxes, box source, noise class and probabilities, fit_score, detector_score, status,
timing; images with no face and unreadable images with their problem). A fit whose
fit_score is below --min-fit-score is not a face: status "rejected", counted apart
(n_rejected), written as NAME_rejected.pts and drawn as a red box with grey points, or left
out with --drop-rejected. Images in folders are found recursively and keep
their relative sub-folder under DIR. A face the detector found is fitted twice, the second
time in its first fit's landmark box (--refine auto; on: --boxes faces too; off: once). --boxes: a JSON or CSV boxes file
(fadenn_tf.detect.load_boxes_file); images it does not list use the detector. A DIR holding
an earlier run is refused unless --overwrite (which deletes its summary.json, .pts and
overlay files first) or --resume (an interrupted run: the images it finished, recorded in
DIR/.predict-journal.jsonl with their files' sizes, are kept and not run again). Exit status (fadenn_tf.utils.cli.EXIT_CODES): 0 when at least one
face was found, 1 when no face was found in any input, 2 on bad arguments (a missing input,
no image in the inputs, none readable), model or boxes file, 3 when an output could not be
written (the run stops; summary.json lists only the files written).
"""
import argparse
import sys

from fadenn_tf.detect import add_detector_arguments, detector_kwargs_from_args
from fadenn_tf.fitcheck.detector import DEFAULT_MIN_FIT_SCORE
from fadenn_tf.inference.predict_job import PredictOptions, predict_files
from fadenn_tf.inference.predictor import BACKENDS
from fadenn_tf.utils.cli import (EXIT_BAD_INPUT, EXIT_CODES, EXIT_DONE, EXIT_NOTHING_FOUND,
                                 add_no_progress, command, make_parser)
from fadenn_tf.utils.cli_args import positive_int


def _parser():
    p = make_parser(
        "predict", raw=False,
        description="68 facial landmarks for images (any size; faces found by a detector "
                    "unless --boxes gives them).",
        epilog="Writes NAME.pts (or NAME_k.pts per face, k = 0 largest), NAME_overlay.png and "
               "summary.json into --out. " + EXIT_CODES)
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR",
                   help="image files and/or folders (searched recursively)")
    p.add_argument("--model", required=True, metavar="PATH",
                   help="pretrained, pretrained-fll (shipped), a training workdir, .keras "
                        "file or SavedModel folder")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true",
                   help="--out holds an earlier run: delete its summary.json, .pts and "
                        "overlay files first (without it such a folder is refused)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run into --out (same inputs and options): "
                        "keep the images it finished (.predict-journal.jsonl), do the rest")
    p.add_argument("--boxes", help="boxes file (.json {name: [x0,y0,x1,y1] or list of boxes} "
                                   "or .csv image,x0,y0,x1,y1); unlisted images use the detector")
    p.add_argument("--all-faces", action="store_true",
                   help="landmarks for every detected face (default: only the detector's "
                        "first: the largest, with UltraFace the largest of the faces it is "
                        "sure of, score >= 0.9)")
    p.add_argument("--refine", choices=sorted(REFINE_FLAGS), default="auto",
                   help="a second pass: a face cut again on its first fit's landmark box "
                        "and fitted again (twice the model's time): auto (default) for the "
                        "faces the detector found, on for every face (--boxes too), off")
    p.add_argument("--batch-size", type=positive_int, default=32,
                   help="crops per model call (32)")
    p.add_argument("--no-overlay", action="store_true", help="do not write overlay PNGs")
    p.add_argument("--device", default=None, help="TensorFlow device, e.g. /GPU:0")
    p.add_argument("--backend", default="auto", choices=BACKENDS,
                   help="auto (default: litert-int8 on the LiteRT files shipped with "
                        "pretrained / pretrained-fll, no TensorFlow; keras for other "
                        "models), keras (TensorFlow), litert (float32 TFLite) or "
                        "litert-int8 (int8 weights, ~3x faster on x86; --model may be a "
                        ".tflite file)")
    p.add_argument("--failure-detector", default="auto",
                   help="score every fit (fit_score in summary.json, P(good fit)): 'auto' "
                        "(default: the failure detector shipped with the model, as with "
                        "pretrained and pretrained-fll; none for other models), 'none', or "
                        "a FailureDetector .npz")
    p.add_argument("--min-fit-score", type=_fit_score, default="auto", metavar="P",
                   help="a fit whose fit_score is below P (0-1) is not a face: it is "
                        "reported with status 'rejected' in summary.json, written as "
                        "NAME_rejected.pts and drawn with a red box; 'auto' (default) = "
                        f"{DEFAULT_MIN_FIT_SCORE}, chosen on held-out faces; 0 rejects "
                        "nothing")
    p.add_argument("--drop-rejected", action="store_true",
                   help="write and draw no rejected fit (summary.json still counts them)")
    add_detector_arguments(p)
    add_no_progress(p)
    return p


REFINE_FLAGS = {"auto": "auto", "on": True, "off": False}   # --refine -> predict's refine


def _fit_score(text):
    """--min-fit-score: 'auto' or a number in [0, 1]."""
    if text == "auto":
        return text
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a number in [0, 1], got "
                                         f"{text!r}") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return v


@command
def main(argv=None):
    args = _parser().parse_args(argv)
    run = predict_files(PredictOptions(
        inputs=args.inputs, out=args.out, model=args.model, backend=args.backend,
        device=args.device, detector=args.detector,
        detector_options=detector_kwargs_from_args(args), boxes=args.boxes,
        all_faces=args.all_faces, refine=REFINE_FLAGS[args.refine],
        batch_size=args.batch_size, overlay=not args.no_overlay,
        failure_detector=args.failure_detector, min_fit_score=args.min_fit_score,
        drop_rejected=args.drop_rejected, overwrite=args.overwrite, resume=args.resume,
        progress=not args.no_progress))
    s = run.summary
    print(f"{s['n_processed']}/{s['n_images']} images processed, {s['n_faces']} faces, "
          f"{s['n_rejected']} fits rejected as not a face, "
          f"{s['n_no_face'] + s['n_only_rejected']} without a face, {s['n_errors']} errors "
          f"in {run.seconds:.2f} s -> {run.path}")
    if s["n_processed"] == 0:
        print(f"error: none of the {s['n_images']} images could be read", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_DONE if s["n_faces"] > 0 else EXIT_NOTHING_FOUND


if __name__ == "__main__":
    sys.exit(main())
