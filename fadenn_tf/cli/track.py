"""`track`: model-free face tracking on a video, or its 300-VW evaluation (library:
fadenn_tf.tracking).

    python -m fadenn_tf.track VIDEO --model M --out DIR [--failure-detector FILE|auto|none]
        [--failure-threshold P] [--detector default] [--min-score S] [--detector-input WxH] ...
        [--init-pts FILE | --init-box x0,y0,x1,y1] [--no-shot-cuts] [--no-overlay]
        [--backend auto|keras|litert|litert-int8]
writes DIR/annot/%06d.pts (300-VW layout, 1-based frame numbers; frames with no face have
no file and are listed in the log), DIR/overlay.avi (MJPG; box green = tracked, orange =
detector, blue = given) and DIR/track_log.json (per frame: box source, failure score and
reason, re-initialised yes/no, times), and prints frames/s with and without detector time.
The shipped models run on their LiteRT copies by default (--backend auto), other models on
Keras. In a log file, a progress line every 10% of the frames gives the ETA.

    python -m fadenn_tf.track --evaluate ROOT --model M [--category 3 | --videos 410 411]
        [--normalizer diagonal] [--nme-threshold 0.08] [--init-from-gt] [--out DIR]
tracks every video of a 300-VW layout (ROOT "synthetic" = the built-in synthetic videos)
and prints per-video and pooled NME, AUC@0.08 and FR@0.08 (normaliser named; frames where
tracking gave no face count as failures), writing DIR/tracking_results.json.
"""
import sys
from pathlib import Path

from fadenn_tf.config import load_config
from fadenn_tf.detect import add_detector_arguments, detector_kwargs_from_args, parse_box
from fadenn_tf.errors import DataError
from fadenn_tf.inference.predictor import BACKENDS
from fadenn_tf.tracking.options import TrackOptions, TrackScoring
from fadenn_tf.utils.cli import (EXIT_BAD_INPUT, EXIT_CODES, EXIT_DONE, EXIT_NOTHING_FOUND,
                                 add_alias, add_config_arguments, add_no_progress, command,
                                 defaults_from_config, make_parser)
from fadenn_tf.utils.cli_args import argparse_type, positive_float
from fadenn_tf.utils.lock import take_lock
from fadenn_tf.utils.outdir import TRACK_OUTPUTS, prepare_output


def _parser():
    """The parser; option dests follow the config's `track` keys (TrackConfig), so the
    config fills what the command line leaves out (utils.cli.config_flags)."""
    p = make_parser(
        "track", raw=False,
        description="Model-free face tracking (paper IV-D): the box of frame t is the "
                    "landmark box of frame t-1; a failure detector and sanity checks "
                    "trigger re-initialisation by the face detector.",
        epilog="Train a failure detector with: python -m fadenn_tf.train_failure_detector "
               "--out fd.npz [--data DIR]. An --out holding an earlier track "
               "run is refused unless --overwrite. " + EXIT_CODES + " Tracking a video "
               "exits 1 when no frame had a face; --evaluate exits 0 once the evaluation "
               "is written.")
    p.add_argument("video", nargs="?", help="video file to track (not with --evaluate)")
    p.add_argument("--model", required=True, metavar="PATH",
                   help="pretrained, pretrained-fll (shipped), a training workdir, .keras "
                        "file or SavedModel folder")
    p.add_argument("--out", help="output folder (required for a video)")
    p.add_argument("--overwrite", action="store_true",
                   help="--out holds an earlier run: delete its annot/, overlay.avi, "
                        "track_log.json (and --evaluate's per-video folders) first")
    p.add_argument("--failure-detector", default="auto",
                   help="FailureDetector .npz, 'none' (sanity checks only) or 'auto' (the "
                        "default: the one shipped with the model, as with pretrained and "
                        "pretrained-fll; sanity checks only for models without one)")
    p.add_argument("--failure-threshold", type=positive_float, default=None,
                   metavar="P", help="P(good fit) below which a fit fails (default: the "
                                     "failure detector's, 0.5; was --threshold)")
    p.add_argument("--no-shot-cuts", dest="shot_cuts", action="store_false",
                   help="do not look for shot cuts (by default a cut drops the track and "
                        "asks the detector)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--init-pts", help=".pts file with the first frame's landmarks")
    g.add_argument("--init-box", type=argparse_type(parse_box, what="--init-box"),
                   help="first frame's box x0,y0,x1,y1")
    p.add_argument("--no-overlay", action="store_true", help="do not write overlay.avi")
    p.add_argument("--device", default=None, help="TensorFlow device, e.g. /GPU:0")
    p.add_argument("--backend", default="auto", choices=BACKENDS,
                   help="auto (default: litert-int8 on the LiteRT files shipped with "
                        "pretrained / pretrained-fll, no TensorFlow, about 6x the frames/s "
                        "of keras; keras for other models), keras (TensorFlow), litert "
                        "(float32 TFLite; --model may be a .tflite file) or litert-int8 "
                        "(int8 weights)")
    p.add_argument("--evaluate", metavar="ROOT",
                   help="evaluate on a 300-VW layout ('synthetic' = the built-in videos)")
    p.add_argument("--category", default="3", help="300-VW category: 1, 2, 3, test, all (3)")
    p.add_argument("--videos", nargs="+", help="explicit video ids (override --category)")
    p.add_argument("--normalizer", default="diagonal",
                   choices=("diagonal", "box", "interocular"), help="NME normaliser (diagonal)")
    p.add_argument("--nme-threshold", type=positive_float, default=0.08,
                   help="NME cut-off of AUC and failure rate (0.08; was --threshold-nme)")
    p.add_argument("--init-from-gt", action="store_true",
                   help="evaluation: start each video from its first frame's ground truth")
    add_detector_arguments(p)
    add_config_arguments(p, "config whose track section gives the defaults (default cpu)")
    add_no_progress(p)
    add_alias(p, "--threshold", "--failure-threshold")
    add_alias(p, "--threshold-nme", "--nme-threshold")
    return p


def _options(args):
    """The TrackOptions of the command line (after the config filled its defaults)."""
    return TrackOptions(detector=args.detector, detector_options=detector_kwargs_from_args(args),
                        failure_detector=args.failure_detector,
                        failure_threshold=args.failure_threshold, shot_cuts=args.shot_cuts,
                        device=args.device, backend=args.backend,
                        progress=not args.no_progress)


def _main_video(args):
    from fadenn_tf.tracking import records, video  # lazy: the tracker (NumPy, OpenCV, models)
    if not args.video:
        print("error: give a VIDEO (or --evaluate ROOT)", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not args.out:
        print("error: --out DIR is required", file=sys.stderr)
        return EXIT_BAD_INPUT
    init_box, init_lm = video.initial_fit(args.video, args.init_pts, args.init_box)
    res = video.track_video(args.model, args.video, _options(args), init_box=init_box,
                            init_landmarks=init_lm, out_dir=args.out,
                            overlay=not args.no_overlay)
    if res.info.get("warning"):
        print(f"warning: {res.info['warning']}", file=sys.stderr)
    print(f"{args.video}: {res.counts_line()}")
    if res.no_face_frames:
        print(res.no_face_line(), file=sys.stderr)
    print(records.speed_line(res))
    print(f"wrote {Path(args.out) / 'annot'}, {Path(args.out) / 'track_log.json'}"
          + ("" if args.no_overlay else f", {Path(args.out) / 'overlay.avi'}"))
    return EXIT_DONE if len(res.no_face_frames) < len(res.frames) else EXIT_NOTHING_FOUND


def _main_evaluate(args):
    from fadenn_tf.tracking import evaluation  # lazy: the tracker (NumPy, OpenCV, models)
    scoring = TrackScoring(category=args.category, videos=args.videos,
                           normalizer=args.normalizer, nme_threshold=args.nme_threshold,
                           init_from_gt=args.init_from_gt)
    res = evaluation.evaluate_tracking(args.model, args.evaluate, _options(args), scoring,
                                       out_dir=args.out)
    print(evaluation.format_evaluation(res))
    if res["skipped"]:
        print(evaluation.format_skipped(res, in_file=bool(args.out)), file=sys.stderr)
    if args.out:
        print(f"wrote {evaluation.write_evaluation(res, args.out)}")
    return EXIT_DONE


@command
def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    defaults_from_config(parser, args, argv, load_config(args.config, sets=args.sets).track)
    if args.video and not args.evaluate and not Path(args.video).is_file():
        raise DataError(args.video, "video not found")  # before --out is created
    if args.out:
        take_lock(args.out, "track")  # one writer per --out
        prepare_output(args.out, TRACK_OUTPUTS, args.overwrite)
    return (_main_evaluate if args.evaluate else _main_video)(args)


if __name__ == "__main__":
    sys.exit(main())
