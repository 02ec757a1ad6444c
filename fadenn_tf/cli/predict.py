"""`predict`: landmarks for image files and folders (library: fadenn_tf.inference).

    python -m fadenn_tf.predict IMAGE_OR_DIR... --model M --out DIR
        [--boxes FILE] [--detector default] [--min-score S] [--detector-input WxH] ...
        [--backend auto|keras|litert|litert-int8] [--all-faces] [--batch-size 32]
        [--no-overlay] [--min-fit-score P|auto] [--drop-rejected]

Writes, per image NAME: NAME.pts (one face) or NAME_0.pts, NAME_1.pts ... (several faces,
in the detector's order: largest first), NAME_overlay.png (landmarks and box drawn), and DIR/summary.json (per image:
faces, boxes, box source, noise class and probabilities, fit_score, detector_score, status,
timing; images with no face and unreadable images with their problem). A fit whose
fit_score is below --min-fit-score is not a face: status "rejected", counted apart
(n_rejected), written as NAME_rejected.pts and drawn as a red box with grey points, or left
out with --drop-rejected. Images in folders are found recursively and keep
their relative sub-folder under DIR. --boxes: a JSON or CSV boxes file
(fadenn_tf.detect.load_boxes_file); images it does not list use the detector. A DIR holding
an earlier run is refused unless --overwrite (which deletes its summary.json, .pts and
overlay files first) or --resume (an interrupted run: the images it finished, recorded in
DIR/.predict-journal.jsonl with their files' sizes, are kept and not run again). Exit status (fadenn_tf.utils.cli.EXIT_CODES): 0 when at least one
face was found, 1 when no face was found in any input, 2 on bad arguments (a missing input,
no image in the inputs, none readable), model or boxes file, 3 when an output could not be
written (the run stops; summary.json lists only the files written).
"""
import sys
import time
from pathlib import Path

from fadenn_tf.utils.cli import EXIT_BAD_INPUT, EXIT_DONE, EXIT_NOTHING_FOUND, command
from fadenn_tf.utils.cli_args import positive_int
from fadenn_tf.utils.lock import take_lock


def _parser():
    from fadenn_tf.fitcheck.detector import DEFAULT_MIN_FIT_SCORE
    from fadenn_tf.inference.predictor import BACKENDS
    from fadenn_tf.utils.cli import EXIT_CODES, add_no_progress, make_parser
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
    from fadenn_tf.detect import add_detector_arguments
    add_detector_arguments(p)
    add_no_progress(p)
    return p


def _fit_score(text):
    """--min-fit-score: 'auto' or a number in [0, 1]."""
    import argparse
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


def _journal(out_dir, args):
    """The record of the images this run finished (utils.journal), continued with --resume
    when the settings that decide the outputs are the same."""
    from fadenn_tf.utils.journal import Journal
    keys = ("model", "backend", "detector", "boxes", "all_faces", "no_overlay",
            "failure_detector", "min_fit_score", "drop_rejected", "min_score", "input_size")
    settings = {k: str(getattr(args, k, None)) for k in keys}
    return Journal.start(out_dir / ".predict-journal.jsonl", settings, resume=args.resume)


@command
def main(argv=None):
    args = _parser().parse_args(argv)
    from fadenn_tf.data.images import read_image
    from fadenn_tf.detect import detector_kwargs_from_args, load_boxes_file, lookup_boxes
    from fadenn_tf.errors import FadennError, WriteError
    from fadenn_tf.inference.outputs import (find_images, record_result, write_image_outputs,
                                             write_summary)
    from fadenn_tf.inference.predictor import load
    from fadenn_tf.utils.outdir import PREDICT_OUTPUTS, prepare_output
    from fadenn_tf.utils.progress import progress
    out_dir = Path(args.out)
    images = find_images(args.inputs)
    missing = [str(path) for path, name in images if name is None]
    if missing:
        raise FileNotFoundError(f"{', '.join(missing)}: file or folder not found")
    inside = [a for a in args.inputs if Path(a).is_dir()
              and out_dir.resolve().is_relative_to(Path(a).resolve())]
    if inside:  # its overlays would be read as inputs, --overwrite would delete its .pts
        raise FadennError(f"--out {out_dir} is inside the input folder {inside[0]}; choose "
                          "an output folder outside the inputs")
    if not images:
        from fadenn_tf.data.images import IMAGE_EXTENSIONS
        raise FadennError(f"no images ({' '.join(IMAGE_EXTENSIONS)}) found in "
                          f"{', '.join(args.inputs)}")
    boxes_by_name = load_boxes_file(args.boxes) if args.boxes else None
    predictor = load(args.model, detector=args.detector, device=args.device,
                     backend=args.backend, failure_detector=args.failure_detector,
                     min_fit_score=args.min_fit_score, **detector_kwargs_from_args(args))
    if not args.boxes:
        predictor.detector  # build it now: unknown names or options fail here, clearly
    take_lock(out_dir, "predict")  # one writer per --out
    if args.resume and args.overwrite:
        raise ValueError("--resume and --overwrite: choose one")
    if not args.resume:
        prepare_output(out_dir, PREDICT_OUTPUTS, args.overwrite)
    journal = _journal(out_dir, args)
    warm = predictor.warm_up()
    t_start = time.perf_counter()
    entries = []                       # summary entry per input, in order
    pending = []                       # (entry, prepared, name)
    failed = []                        # the WriteError that stopped the run

    def flush():
        if not pending:
            return
        results = predictor.run([p for _, p, _ in pending], args.batch_size)
        for (entry, prep, name), res in zip(pending, results):
            if failed:
                entry.update(status="error", problem="not written: the run stopped")
                continue
            try:
                written = write_image_outputs(out_dir, name, res, prep.image,
                                              not args.no_overlay, args.drop_rejected)
            except WriteError as exc:
                entry.update(status="error", problem=str(exc))
                failed.append(exc)
                continue
            record_result(entry, res, *written, drop_rejected=args.drop_rejected)
            journal.add(name, written[0] + ([written[1]] if written[1] else []), entry=entry)
            if res.rejected:
                scores = ", ".join(f"{f.fit_score:.3f}" for f in res.rejected)
                print(f"{entry['image']}: {len(res.rejected)} fit(s) rejected as not a face "
                      f"(fit_score {scores} < {predictor.min_fit_score})", file=sys.stderr)
            if not res.faces:
                print(f"{entry['image']}: no face found ({prep.source})", file=sys.stderr)
        pending.clear()

    for path, name in progress(images, desc="predicting", unit="img",
                               enabled=not args.no_progress):
        if failed:
            break
        if name in journal.done:       # --resume: finished by the interrupted run
            entries.append(journal.done[name]["entry"])
            continue
        entry = {"image": str(path), "name": name}
        entries.append(entry)
        try:
            image = read_image(path)
            given = None if boxes_by_name is None else lookup_boxes(boxes_by_name, path)
            prep = predictor.prepare(image, given, "rgb", args.all_faces)
        except (FadennError, ValueError) as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            entry.update(status="error", problem=problem)
            print(f"{path}: {problem}", file=sys.stderr)
            continue
        entry["size"] = [int(image.shape[0]), int(image.shape[1])]
        pending.append((entry, prep, name))
        if sum(len(p.boxes) for _, p, _ in pending) >= args.batch_size:
            flush()
    flush()
    settings = {"detector": args.detector, "detector_options": detector_kwargs_from_args(args),
                "backend": args.backend, "boxes_file": args.boxes, "all_faces": args.all_faces,
                "drop_rejected": args.drop_rejected}
    total = time.perf_counter() - t_start
    if failed:  # a summary of what was written, if the disk still takes it
        try:
            write_summary(out_dir, entries, predictor, settings, total, warm)
        except WriteError:
            pass
        raise failed[0]
    path, summary = write_summary(out_dir, entries, predictor, settings, total, warm)
    n_faces = sum(e.get("n_faces", 0) for e in entries)
    print(f"{summary['n_processed']}/{len(entries)} images processed, {n_faces} faces, "
          f"{summary['n_rejected']} fits rejected as not a face, "
          f"{summary['n_no_face'] + summary['n_only_rejected']} without a face, "
          f"{summary['n_errors']} errors in "
          f"{total:.2f} s -> {path}")
    if summary["n_processed"] == 0:
        print(f"error: none of the {len(entries)} images could be read", file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_DONE if n_faces > 0 else EXIT_NOTHING_FOUND


if __name__ == "__main__":
    sys.exit(main())
