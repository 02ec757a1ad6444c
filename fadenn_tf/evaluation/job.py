"""What `evaluate` runs: the --model specs, the entries (models and the dlib peer), the
samples and their boxes, the run and the written outputs."""
import os
import sys
import time
from dataclasses import dataclass

from fadenn_tf import metrics


def parse_model_specs(specs):
    """["LABEL=PATH" or "PATH", ...] -> [(label, path)]; a bare PATH is labelled by its
    folder or file name. ValueError on an empty part or a repeated label."""
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


@dataclass
class JobResult:
    evaluation: object          # engine.Evaluation
    paths: list                 # files written
    seconds: float              # the run, data loading included
    n_predictions: int


def run_job(models, config, *, out, dlib=False, dlib_model=None, data=None, format="auto",
            split=None, max_images=0, frame_step=1, conditions="all", noisy_from=None,
            crop_size=0, detector=None, detector_name=None, batch_size=32, seed=0,
            normalizer=metrics.DEFAULT_NORMALIZER, threshold=metrics.DEFAULT_THRESHOLD,
            grid_images=4, progress=True, command=None, log=None) -> JobResult:
    """Evaluate loaded models (fadenn_tf.inference.LoadedModel) and, with `dlib`, dlib's
    ERT on the selected samples, then write results into `out`.

    config: an ExperimentConfig (the reference side and `split="val"`), or a name / path.
    conditions: a parse_conditions string or (type, level) pairs. detector: a box provider
    for detector boxes, None for the ground-truth landmark box; detector_name: its name in
    the outputs. log: default sys.stderr.
    """
    log = log or sys.stderr
    from fadenn_tf.evaluation import engine, write_outputs
    from fadenn_tf.noise import parse_conditions
    if isinstance(config, (str, os.PathLike)):
        from fadenn_tf.config import load_config
        config = load_config(config)
    conds = parse_conditions(conditions) if isinstance(conditions, str) else list(conditions)
    reference = crop_size or None
    if noisy_from:
        from fadenn_tf.evaluation.degraded import noisy_source
        data, reference = noisy_source(noisy_from, data, reference)
    if reference is None:
        reference = config.noise.reference_size
    entries = [engine.model_entry(m) for m in models]
    if dlib:
        from fadenn_tf.evaluation.dlib_peer import DlibUnavailable, load_dlib_peer
        try:
            entries.append(load_dlib_peer(dlib_model))
        except DlibUnavailable as exc:
            print(f"dlib peer skipped: {exc}", file=log)
    if not entries:
        raise ValueError("no model left to evaluate")
    eval_set = engine.select_samples(data, format, split, config, max_images, frame_step)
    for rep in eval_set.reports:
        if rep.skipped:
            print(rep.summary(len(rep.skipped)), file=log)  # every one, by name
    if detector is not None:
        engine.attach_detector_boxes(eval_set, detector, progress=progress, name=detector_name)
    n_images = len(eval_set.samples) + len(eval_set.missed)
    print(f"evaluating {', '.join(e.label for e in entries)} on {eval_set.dataset} "
          f"[{eval_set.split}]: {n_images} images x {len(conds)} conditions", file=log)
    if eval_set.missed:
        print(f"detector: no face found (overlapping the ground truth) in "
              f"{len(eval_set.missed)} of {n_images} images; they count as failures "
              "(NME = inf)", file=log)
    t0 = time.perf_counter()
    ev = engine.evaluate(entries, eval_set, conds, crop_size=reference, noisy_from=noisy_from,
                         batch_size=batch_size, seed=seed, normalizer=normalizer,
                         threshold=threshold, grid_images=grid_images, progress=progress)
    dt = time.perf_counter() - t0
    for path, why in ev.problems:
        print(f"skipped {path}: {why}", file=log)
    # results.json's "skipped" lists what indexing dropped as well as unreadable images
    ev.problems = [s for rep in eval_set.reports for s in rep.skipped] + list(ev.problems)
    paths = write_outputs(ev, out, command)
    if ev.problems:
        print(f"{len(ev.problems)} input(s) skipped (listed above and in results.json)",
              file=log)
    n = ev.meta["n_evaluated"] * len(conds) * len(entries)
    return JobResult(ev, paths, dt, n)


def job_summary(result: JobResult):
    """The closing line of `evaluate`: predictions, time and rate, files written."""
    dt, n = result.seconds, result.n_predictions
    return (f"{n} predictions in {dt:.1f} s ({n / max(dt, 1e-9):.0f}/s incl. loading); "
            "wrote " + ", ".join(str(p) for p in result.paths))
