"""`predict`: landmarks for image files and folders (library: fadenn_tf.inference).

    python -m fadenn_tf.predict IMAGE_OR_DIR... --model M --out DIR
        [--boxes FILE] [--detector default] [--no-equalize] [--detect-width PX] ...
        [--backend keras|litert|litert-int8] [--all-faces] [--batch-size 32] [--no-overlay]

Writes, per image NAME: NAME.pts (one face) or NAME_0.pts, NAME_1.pts ... (several faces,
largest first), NAME_overlay.png (landmarks and box drawn), and DIR/summary.json (per image:
faces, boxes, box source, noise class and probabilities, timing; images with no face and
unreadable images with their problem). Images in folders are found recursively and keep
their relative sub-folder under DIR. --boxes: a JSON or CSV boxes file
(fadenn_tf.detect.load_boxes_file); images it does not list use the detector. Exit status
(the same rule as `track`): 0 when at least one face was found, 1 when no face was found in
any input, 2 on bad arguments, model or boxes file.
"""
import sys
import time
from pathlib import Path

from fadenn_tf.utils.cli_args import positive_int
from fadenn_tf.utils.lock import one_writer, take_lock


def _parser():
    from fadenn_tf.inference.predictor import BACKENDS
    from fadenn_tf.utils.cli import EXIT_CODES_FACES, add_no_progress, make_parser
    p = make_parser(
        "predict", raw=False,
        description="68 facial landmarks for images (any size; faces found by a detector "
                    "unless --boxes gives them).",
        epilog="Writes NAME.pts (or NAME_k.pts per face, k = 0 largest), NAME_overlay.png and "
               "summary.json into --out. " + EXIT_CODES_FACES)
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR",
                   help="image files and/or folders (searched recursively)")
    p.add_argument("--model", required=True, metavar="PATH",
                   help="training workdir, .keras file or SavedModel folder")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--boxes", help="boxes file (.json {name: [x0,y0,x1,y1] or list of boxes} "
                                   "or .csv image,x0,y0,x1,y1); unlisted images use the detector")
    p.add_argument("--all-faces", action="store_true",
                   help="landmarks for every detected face (default: the largest only)")
    p.add_argument("--batch-size", type=positive_int, default=32,
                   help="crops per model call (32)")
    p.add_argument("--no-overlay", action="store_true", help="do not write overlay PNGs")
    p.add_argument("--device", default=None, help="TensorFlow device, e.g. /GPU:0")
    p.add_argument("--backend", default="keras", choices=BACKENDS,
                   help="keras (TensorFlow), litert (float32 TFLite) or litert-int8 (int8 "
                        "weights, ~3x faster on x86; --model may be a .tflite file)")
    p.add_argument("--failure-detector", default="auto",
                   help="score every fit (fit_score in summary.json, P(good fit)): 'auto' "
                        "(default: the failure detector shipped with the model, as with "
                        "pretrained and pretrained-fll; none for other models), 'none', or "
                        "a FailureDetector .npz")
    from fadenn_tf.detect import add_detector_arguments
    add_detector_arguments(p)
    add_no_progress(p)
    return p


@one_writer
def main(argv=None):
    args = _parser().parse_args(argv)
    from fadenn_tf.data.images import read_image
    from fadenn_tf.detect import load_boxes_file, lookup_boxes
    from fadenn_tf.errors import FadennError
    from fadenn_tf.inference.outputs import (find_images, record_result, write_image_outputs,
                                             write_summary)
    from fadenn_tf.inference.predictor import load
    out_dir = Path(args.out)
    try:
        boxes_by_name = load_boxes_file(args.boxes) if args.boxes else None
        from fadenn_tf.detect import detector_kwargs_from_args
        predictor = load(args.model, detector=args.detector, device=args.device,
                         backend=args.backend, failure_detector=args.failure_detector,
                         **detector_kwargs_from_args(args))
        if not args.boxes:
            predictor.detector  # build it now: unknown names or options fail here, clearly
    except (FadennError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    take_lock(out_dir, "predict")  # one writer per --out
    warm = predictor.warm_up()
    t_start = time.perf_counter()
    entries = []                       # summary entry per input, in order
    pending = []                       # (entry, prepared, name)

    def flush():
        if not pending:
            return
        results = predictor.run([p for _, p, _ in pending], args.batch_size)
        for (entry, prep, name), res in zip(pending, results):
            record_result(entry, res, *write_image_outputs(out_dir, name, res, prep.image,
                                                           not args.no_overlay))
            if not res.faces:
                print(f"{entry['image']}: no face found ({prep.source})", file=sys.stderr)
        pending.clear()

    from fadenn_tf.utils.progress import progress
    for path, name in progress(find_images(args.inputs), desc="predicting", unit="img",
                               enabled=not args.no_progress):
        entry = {"image": str(path), "name": name}
        entries.append(entry)
        if name is None:
            entry.update(status="error", problem="file or folder not found")
            print(f"{path}: file or folder not found", file=sys.stderr)
            continue
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
    if not entries:
        print("error: no images found in the inputs", file=sys.stderr)
    settings = {"detector": args.detector, "detector_options": detector_kwargs_from_args(args),
                "backend": args.backend, "boxes_file": args.boxes, "all_faces": args.all_faces}
    total = time.perf_counter() - t_start
    path, summary = write_summary(out_dir, entries, predictor, settings, total, warm)
    n_faces = sum(e.get("n_faces", 0) for e in entries)
    print(f"{summary['n_processed']}/{len(entries)} images processed, {n_faces} faces, "
          f"{summary['n_no_face']} without a face, {summary['n_errors']} errors in "
          f"{total:.2f} s -> {path}")
    return 0 if n_faces > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
