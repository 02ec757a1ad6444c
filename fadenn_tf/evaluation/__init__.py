"""Evaluation under the paper's protocol: models x noise conditions -> tables and figures.

    from fadenn_tf.evaluation import select_samples, model_entry, evaluate, write_outputs
    from fadenn_tf.inference import load_any
    ev = evaluate([model_entry(load_any("runs/cpu", "M"))], select_samples(None))
    write_outputs(ev, "results/")

engine: data selection, boxes, models, the run (Evaluation); job: what `evaluate` runs
(--model specs, dlib peer, run, outputs); scoring: a model over the noisy crops of one
condition (run_condition) and training-time validation's evaluate_*; reduction: per-batch
logs and the validation figures, for both; degraded: the noisy copies of data sets
(`degrade`, --noisy-from); report: results.json, CSV, Markdown; plots: PNG figures;
dlib_peer: dlib's ERT as a peer model (optional).
"""
import importlib
from pathlib import Path

_ENGINE = ("EvalSet", "Evaluation", "ModelEntry", "attach_detector_boxes", "evaluate",
           "model_entry", "select_samples")


def __getattr__(name):   # the engine (TensorFlow) is imported on first use
    if name in _ENGINE:
        return getattr(importlib.import_module("fadenn_tf.evaluation.engine"), name)
    if name == "parse_conditions":      # its home is the noise module
        return importlib.import_module("fadenn_tf.noise").parse_conditions
    raise AttributeError(f"module 'fadenn_tf.evaluation' has no attribute {name!r}")


def write_outputs(ev, out_dir, command=None):
    """results.json, errors.csv, results.md and the PNG plots into out_dir -> paths."""
    from fadenn_tf.evaluation import plots, report  # lazy: matplotlib; the package stays light
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [report.write_results_json(ev, out / "results.json", command),
             report.write_errors_csv(ev, out / "errors.csv"),
             report.write_markdown(ev, out / "results.md")]
    return paths + plots.write_all(ev, out)


__all__ = ["EvalSet", "Evaluation", "ModelEntry", "attach_detector_boxes", "evaluate",
           "model_entry", "parse_conditions", "select_samples", "write_outputs"]
