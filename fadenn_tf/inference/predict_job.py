"""What `predict` runs: image files and folders -> per-image .pts files, overlays and
summary.json in one output folder (the command, its options and the files: fadenn_tf.cli.predict,
fadenn_tf.inference.outputs)."""
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from fadenn_tf.data.images import IMAGE_EXTENSIONS, read_image
from fadenn_tf.detect import load_boxes_file, lookup_boxes
from fadenn_tf.errors import FadennError, WriteError
from fadenn_tf.inference.outputs import (find_images, record_result, write_image_outputs,
                                         write_summary)
from fadenn_tf.inference.predictor import load
from fadenn_tf.utils.journal import Journal
from fadenn_tf.utils.lock import take_lock
from fadenn_tf.utils.outdir import PREDICT_OUTPUTS, prepare_output
from fadenn_tf.utils.progress import progress


@dataclass
class PredictOptions:
    """One `predict` run (the flags of the same names: fadenn_tf.cli.predict)."""
    inputs: list                            # image files and folders (searched recursively)
    out: str                                # output folder
    model: str                              # shipped name, workdir, .keras, SavedModel, .tflite
    backend: str = "auto"                   # inference.predictor.BACKENDS
    device: Optional[str] = None            # TensorFlow device (keras backend)
    detector: str = "default"
    detector_options: dict = field(default_factory=dict)  # detect.detector_kwargs_from_args
    boxes: Optional[str] = None             # boxes file; unlisted images use the detector
    all_faces: bool = False                 # every detected face, not only the first
    refine: object = "auto"                 # second pass: "auto", True, False (inference.refine)
    batch_size: int = 32                    # crops per model call
    overlay: bool = True                    # write NAME_overlay.png
    failure_detector: str = "auto"          # "auto", "none" or a .npz
    min_fit_score: object = "auto"          # "auto" or P in [0, 1]
    drop_rejected: bool = False             # write and draw no rejected fit
    overwrite: bool = False                 # clear an earlier run's outputs first
    resume: bool = False                    # continue an interrupted run (its journal)
    progress: bool = True                   # show the progress bar


@dataclass
class PredictRun:
    """The written summary.json (path, its content) and the run's wall time in seconds."""
    path: Path
    summary: dict
    seconds: float


def _journal(out_dir, opts):
    """The record of the images this run finished (utils.journal), continued with resume
    when the settings that decide the outputs are the same."""
    det = opts.detector_options
    settings = {"model": opts.model, "backend": opts.backend, "detector": opts.detector,
                "boxes": opts.boxes, "all_faces": opts.all_faces, "refine": opts.refine,
                "no_overlay": not opts.overlay, "failure_detector": opts.failure_detector,
                "min_fit_score": opts.min_fit_score, "drop_rejected": opts.drop_rejected,
                "min_score": det.get("min_score"), "input_size": det.get("input_size")}
    return Journal.start(out_dir / ".predict-journal.jsonl",
                         {k: str(v) for k, v in settings.items()}, resume=opts.resume)


def predict_files(opts):
    """Run `opts` (PredictOptions): every image found in opts.inputs through one loaded
    model, its files written into opts.out as they are done. Returns a PredictRun.

    Raises FileNotFoundError for a missing input, FadennError when no image is found or
    opts.out lies inside an input folder, DataError / ValueError for a bad model, boxes
    file or option, WriteError when a file cannot be written (the run stops after a
    summary of what was written). An unreadable image is an "error" entry, not a stop."""
    out_dir = Path(opts.out)
    images = find_images(opts.inputs)
    missing = [str(path) for path, name in images if name is None]
    if missing:
        raise FileNotFoundError(f"{', '.join(missing)}: file or folder not found")
    inside = [a for a in opts.inputs if Path(a).is_dir()
              and out_dir.resolve().is_relative_to(Path(a).resolve())]
    if inside:  # its overlays would be read as inputs, overwrite would delete its .pts
        raise FadennError(f"--out {out_dir} is inside the input folder {inside[0]}; choose "
                          "an output folder outside the inputs")
    if not images:
        raise FadennError(f"no images ({' '.join(IMAGE_EXTENSIONS)}) found in "
                          f"{', '.join(map(str, opts.inputs))}")
    boxes_by_name = load_boxes_file(opts.boxes) if opts.boxes else None
    predictor = load(opts.model, detector=opts.detector, device=opts.device,
                     backend=opts.backend, failure_detector=opts.failure_detector,
                     min_fit_score=opts.min_fit_score, **opts.detector_options)
    if not opts.boxes:
        predictor.detector  # build it now: unknown names or options fail here, clearly
    take_lock(out_dir, "predict")  # one writer per output folder
    if opts.resume and opts.overwrite:
        raise ValueError("--resume and --overwrite: choose one")
    if not opts.resume:
        prepare_output(out_dir, PREDICT_OUTPUTS, opts.overwrite)
    journal = _journal(out_dir, opts)
    warm = predictor.warm_up()
    t_start = time.perf_counter()
    entries = []                       # summary entry per input, in order
    pending = []                       # (entry, prepared, name)
    failed = []                        # the WriteError that stopped the run

    def flush():
        if not pending:
            return
        results = predictor.run([p for _, p, _ in pending], opts.batch_size,
                                refine=opts.refine)
        for (entry, prep, name), res in zip(pending, results):
            if failed:
                entry.update(status="error", problem="not written: the run stopped")
                continue
            try:
                written = write_image_outputs(out_dir, name, res, prep.image, opts.overlay,
                                              opts.drop_rejected)
            except WriteError as exc:
                entry.update(status="error", problem=str(exc))
                failed.append(exc)
                continue
            record_result(entry, res, *written, drop_rejected=opts.drop_rejected)
            journal.add(name, written[0] + ([written[1]] if written[1] else []), entry=entry)
            if res.rejected:
                scores = ", ".join(f"{f.fit_score:.3f}" for f in res.rejected)
                print(f"{entry['image']}: {len(res.rejected)} fit(s) rejected as not a face "
                      f"(fit_score {scores} < {predictor.min_fit_score})", file=sys.stderr)
            if not res.faces:
                print(f"{entry['image']}: no face found ({prep.source})", file=sys.stderr)
        pending.clear()

    for path, name in progress(images, desc="predicting", unit="img", enabled=opts.progress):
        if failed:
            break
        if name in journal.done:       # resume: finished by the interrupted run
            entries.append(journal.done[name]["entry"])
            continue
        entry = {"image": str(path), "name": name}
        entries.append(entry)
        try:
            image = read_image(path)
            given = None if boxes_by_name is None else lookup_boxes(boxes_by_name, path)
            prep = predictor.prepare(image, given, "rgb", opts.all_faces)
        except (FadennError, ValueError) as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            entry.update(status="error", problem=problem)
            print(f"{path}: {problem}", file=sys.stderr)
            continue
        entry["size"] = [int(image.shape[0]), int(image.shape[1])]
        pending.append((entry, prep, name))
        if sum(len(p.boxes) for _, p, _ in pending) >= opts.batch_size:
            flush()
    flush()
    settings = {"detector": opts.detector, "detector_options": opts.detector_options,
                "backend": opts.backend, "boxes_file": opts.boxes, "all_faces": opts.all_faces,
                "refine": opts.refine, "drop_rejected": opts.drop_rejected}
    total = time.perf_counter() - t_start
    if failed:  # a summary of what was written, if the disk still takes it
        try:
            write_summary(out_dir, entries, predictor, settings, total, warm)
        except WriteError:
            pass
        raise failed[0]
    path, summary = write_summary(out_dir, entries, predictor, settings, total, warm)
    return PredictRun(path, summary, total)
