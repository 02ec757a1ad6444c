"""What `evaluate` runs: the --model specs, the entries (models and the dlib peer), the
samples and their boxes, the run and the written outputs."""
import os
import sys
import time
from dataclasses import dataclass
from typing import Callable, Optional

from fadenn_tf.config import load_config
from fadenn_tf.evaluation import engine, write_outputs
from fadenn_tf.evaluation.degraded import noisy_source
from fadenn_tf.evaluation.dlib_peer import DlibUnavailable, load_dlib_peer
from fadenn_tf.inference import load_any
from fadenn_tf.noise import parse_conditions


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


def load_models(specs, flip_test=False):
    """[(label, path)] -> loaded models (fadenn_tf.inference.load_any), each averaged with
    its mirrored fit when `flip_test`."""
    return [load_any(path, label, flip_test=flip_test) for label, path in specs]


@dataclass
class JobResult:
    evaluation: object          # engine.Evaluation
    paths: list                 # files written
    seconds: float              # the run, data loading included
    n_predictions: int


@dataclass
class EvalJob:
    """What one `evaluate` run reads and writes besides the models and the `eval` config
    section; each field is the `evaluate` flag of the same name, with its default.

    out: the output folder. data, format, split, max_images, frame_step: the images
    (engine.select_samples). noisy_from: a fadenn_tf.degrade output to read the noisy images
    from. crop_size: the reference side R in pixels (0: the degrade output's, else the
    config's noise.reference_size). dlib, dlib_model: add dlib's ERT as a peer. detector: a
    box provider (image -> (K, 4) boxes) for detector boxes, None for the ground-truth
    landmark box; detector_name: its name in the outputs. progress: a progress bar.
    command: the command line recorded in results.json.
    """
    out: str = "results/evaluate"
    data: Optional[str] = None
    format: str = "auto"
    split: Optional[str] = None
    max_images: int = 0
    frame_step: int = 1
    noisy_from: Optional[str] = None
    crop_size: int = 0
    dlib: bool = False
    dlib_model: Optional[str] = None
    detector: Optional[Callable] = None
    detector_name: Optional[str] = None
    progress: bool = True
    command: Optional[str] = None

    @classmethod
    def of(cls, args, **given):
        """The job of a parsed `evaluate` command line (an argparse Namespace): each field
        takes the option of the same name; `given` values win (progress: not
        --no-progress)."""
        given.setdefault("progress", not getattr(args, "no_progress", False))
        return cls(**{f: getattr(args, f) for f in cls.__dataclass_fields__
                      if f not in given and hasattr(args, f)}, **given)


def run_job(models, config, job, log=None) -> JobResult:
    """Evaluate loaded models (fadenn_tf.inference.LoadedModel) and, with job.dlib, dlib's
    ERT on the selected samples, then write results into job.out.

    config: an ExperimentConfig, or a config name / path: its `eval` section holds the
    conditions, normaliser, threshold, batch size, seed and grid size; noise.reference_size
    the reference side; its data section the `--split val` images. job: an EvalJob.
    log: where progress lines go (default sys.stderr).
    """
    log = log or sys.stderr
    if isinstance(config, (str, os.PathLike)):
        config = load_config(config)
    conds = parse_conditions(config.eval.conditions)
    data, reference = job.data, job.crop_size or None
    if job.noisy_from:
        data, reference = noisy_source(job.noisy_from, data, reference)
    if reference is None:
        reference = config.noise.reference_size
    entries = [engine.model_entry(m) for m in models]
    if job.dlib:
        try:
            entries.append(load_dlib_peer(job.dlib_model))
        except DlibUnavailable as exc:
            print(f"dlib peer skipped: {exc}", file=log)
    if not entries:
        raise ValueError("no model left to evaluate")
    eval_set = engine.select_samples(data, job.format, job.split, config, job.max_images,
                                     job.frame_step)
    for rep in eval_set.reports:
        if rep.skipped:
            print(rep.summary(len(rep.skipped)), file=log)  # every one, by name
    if job.detector is not None:
        engine.attach_detector_boxes(eval_set, job.detector, progress=job.progress,
                                     name=job.detector_name)
    n_images = len(eval_set.samples) + len(eval_set.missed)
    print(f"evaluating {', '.join(e.label for e in entries)} on {eval_set.dataset} "
          f"[{eval_set.split}]: {n_images} images x {len(conds)} conditions", file=log)
    if eval_set.missed:
        print(f"detector: no face found (overlapping the ground truth) in "
              f"{len(eval_set.missed)} of {n_images} images; they count as failures "
              "(NME = inf)", file=log)
    t0 = time.perf_counter()
    ev = engine.evaluate(entries, eval_set, conds, config.eval, crop_size=reference,
                         noisy_from=job.noisy_from, progress=job.progress)
    dt = time.perf_counter() - t0
    for path, why in ev.problems:
        print(f"skipped {path}: {why}", file=log)
    # results.json's "skipped" lists what indexing dropped as well as unreadable images
    ev.problems = [s for rep in eval_set.reports for s in rep.skipped] + list(ev.problems)
    paths = write_outputs(ev, job.out, job.command)
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
