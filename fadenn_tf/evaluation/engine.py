"""The evaluation protocol: which images, which boxes, which noise, every model, every figure.

    eval_set = select_samples(data=None, split="test")          # synthetic 300-W test split
    entries = [model_entry(load_any("runs/cpu", "M"))]
    ev = evaluate(entries, eval_set)                              # all 13 conditions
    ev.summary("M", "blur-2")["auc"]                              # diagonal NME, AUC@0.08

Protocol (paper section IV; the noise protocol of `fadenn_tf.noise`): each image is cropped
once around its face box (the tight ground-truth landmark box, or a face detector's box
closest to it), 2x the box, clipped, resized to the REFERENCE side R (config
noise.reference_size, default 224, whatever the models' inputs). Noise is either synthesised
on that R crop on the fly (fadenn_tf.noise through scoring.condition_batches, seeded per
batch) or read from a `fadenn_tf.degrade` output (`degrade --crop`: the same R crops,
degraded and stored; evaluate them with --data NOISY/clean; or full images degraded by
`degrade --full-image`). Each model then gets the noisy R crop resized to its input side s
(noise.to_model_size) and its points mapped back with u_R = (u_s + 0.5) * R / s - 0.5; a
model that crops tighter than 2x the box (its metadata's crop_scale) gets its window of
the noisy R crop instead (noise.model_windows); a model of any size (the dlib peer) gets
the R crop itself. So every model and the peer see
the same noisy reference pixels. The batches run through scoring.run_condition and are
scored by fadenn_tf.evaluation.reduction, the loop and the reduction training's validation
uses: predictions go back to IMAGE pixels and are scored against the original annotations
with fadenn_tf.metrics under all three normalisers.
"""
import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from fadenn_tf import metrics
from fadenn_tf.config import EvalConfig, ExperimentConfig, load_config
from fadenn_tf.data.crop import landmark_box
from fadenn_tf.data.datasets import detect_format, iter_sample_images, open_dataset
from fadenn_tf.data.pipeline import EvalData, load_eval_data
from fadenn_tf.data.splits import load_splits, resolve_root
from fadenn_tf.errors import DataError
from fadenn_tf.evaluation.degraded import noisy_sample_paths, read_degrade_manifest
from fadenn_tf.evaluation.reduction import condition_summary, reduce_aggregated_logs
from fadenn_tf.evaluation.scoring import ValidationSpec, run_condition
from fadenn_tf.data.crop import CROP_SCALE
from fadenn_tf.noise import (REFERENCE_SIZE, condition_name, model_windows, parse_conditions,
                             reference_points, to_model_input, uses_window)
from fadenn_tf.utils.progress import progress as progress_bar


# ------------------------------------------------------------------------------ data set

@dataclass
class EvalSet:
    """The images to evaluate. samples: Samples (Sample.box set in detector mode);
    missed: Samples the detector found no face in (scored as failures, NME = inf);
    dataset: readable name ("synthetic" or the path); root: the indexed folder; format;
    split: what part of it (description); reports: IndexReports; notes: remarks;
    boxes: "gt" or "detector"; detector: the detector's name in detector mode."""
    samples: list
    dataset: str
    root: Path
    format: str
    split: str
    reports: list = field(default_factory=list)
    missed: list = field(default_factory=list)
    boxes: str = "gt"
    notes: list = field(default_factory=list)
    detector: str = ""


def default_split(fmt, own_dataset=False):
    """The split evaluated when none is given: 300-W full test set, all 300-VW test videos;
    a folder / Menpo set is scored whole ("all"), except the config's own training dataset
    (`own_dataset`), whose held-out part ("val") is the part training did not see."""
    if fmt in ("300w", "300vw"):
        return "test"
    return "val" if own_dataset else "all"


def is_config_dataset(root, config):
    """True when the dataset folder `root` is the one `config` (name, path or
    ExperimentConfig) trains on (data.dataset; the synthetic data is handled by the caller,
    so it is never generated here just to compare)."""
    cfg = config if isinstance(config, ExperimentConfig) else load_config(config)
    if cfg.data.dataset == "synthetic":
        return False
    try:
        own = resolve_root(cfg.data.dataset)
    except DataError:  # the config's dataset is not on this machine
        return False
    return Path(own).resolve() == Path(root).resolve()


def subsample(samples, max_images=0, frame_step=1):
    """Every `frame_step`-th frame of each video (stills untouched), then at most
    `max_images` samples spread evenly over the list (deterministic, order kept)."""
    out = list(samples)
    if frame_step > 1:
        out = [s for s in out if s.frame is None or s.frame % frame_step == 0]
    if max_images and len(out) > max_images:
        keep = np.unique(np.round(np.linspace(0, len(out) - 1, max_images)).astype(int))
        out = [out[i] for i in keep]
    return out


def select_samples(data=None, format="auto", split=None, config="cpu", max_images=0,
                   frame_step=1, check_images=True):
    """Index the evaluation images -> EvalSet.

    data: dataset folder, or None / "synthetic" for the built-in synthetic stills.
    split: an indexer split (300-W: full/test, common, challenging, train, private...; 300-VW:
    test, cat1, cat2, cat3, all; folder / Menpo: all), or "val": exactly the validation split
    a training run with `config` picks (fadenn_tf.data.splits.load_splits: 300-W
    data.val_split, else the seeded held-out fraction). Default: `default_split`: a folder
    is scored whole unless it is the config's own dataset. The EvalSet's split text says
    which split was used and, for a default, why.
    config: a config name / YAML path, or an ExperimentConfig (e.g. loaded with --set).
    """
    synthetic = data in (None, "synthetic")
    root = resolve_root(None if synthetic else data)
    fmt = detect_format(root) if format in ("auto", None) else format
    chosen = split
    if not split:
        split = default_split(fmt, synthetic or (fmt not in ("300w", "300vw")
                                                 and is_config_dataset(root, config)))
    name = "synthetic" if synthetic else str(root)
    if split == "val":
        cfg = _val_config(config, fmt)
        splits = load_splits(cfg.data, str(root))
        samples, reports = splits.val, splits.reports
        desc = f"val (as training with config {cfg.name!r} picks it: {splits.description})"
    else:
        samples, report = open_dataset(root, fmt, split, check_images=check_images)
        reports = [report]
        desc = report.split or split
    if not chosen and split == "all":
        desc = "all (every image: a folder that is not the config's dataset is scored whole)"
    elif not chosen and split == "val":
        desc += " (default for the config's own dataset; --split all scores every image)"
    n_all = len(samples)
    samples = subsample(samples, max_images, frame_step)
    notes = []
    if frame_step > 1:
        notes.append(f"every {frame_step}th video frame")
    if len(samples) < n_all:
        notes.append(f"{len(samples)} of {n_all} images (evenly spread)")
    if notes:
        desc += " [" + "; ".join(notes) + "]"
    if not samples:
        raise DataError(root, f"split {split!r} holds no samples")
    return EvalSet(samples, name, root, fmt, desc, reports)


def _val_config(config, fmt):
    """The ExperimentConfig whose data section picks the val split, with data.format = fmt."""
    if not isinstance(config, ExperimentConfig):
        return load_config(config, {"data": {"format": fmt}} if fmt != "auto" else None)
    if fmt == "auto":
        return config
    return dataclasses.replace(config, data=dataclasses.replace(config.data, format=fmt))


def _iou(boxes, box):
    x0 = np.maximum(boxes[:, 0], box[0])
    y0 = np.maximum(boxes[:, 1], box[1])
    x1 = np.minimum(boxes[:, 2], box[2])
    y1 = np.minimum(boxes[:, 3], box[3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / (area(boxes) + area(box) - inter)


def attach_detector_boxes(eval_set, detector, progress=False, name=None):
    """Detector mode: run `detector` (image -> (K, 4) boxes) on each CLEAN image and set
    Sample.box to the detection overlapping the ground-truth landmark box most (IoU). Images
    with no detection overlapping it go to eval_set.missed (failures). `name`: the
    detector's name in the outputs (default: its class). Returns eval_set."""
    kept, missed = [], []
    it = iter_sample_images(eval_set.samples)
    for s, img in progress_bar(it, total=len(eval_set.samples), desc="detecting",
                               enabled=progress, unit="img"):
        boxes = np.asarray(detector(img), np.float64).reshape(-1, 4)
        iou = _iou(boxes, landmark_box(s.landmarks)) if len(boxes) else np.zeros(0)
        if len(iou) and iou.max() > 0:
            kept.append(dataclasses.replace(s, box=tuple(float(v) for v in
                                                         boxes[int(np.argmax(iou))])))
        else:
            missed.append(s)
    eval_set.samples, eval_set.missed, eval_set.boxes = kept, missed, "detector"
    eval_set.detector = name or type(detector).__name__
    return eval_set


# ------------------------------------------------------------------------------ models

@dataclass
class ModelEntry:
    """One evaluated "model" (a row of every table).

    predict(images, start) -> dict: images [B,s,s,3] float32 pixels 0..255 (s = size),
    start = row of the first image in the current EvalData; returns "landmarks" [B,68,2]
    crop pixels and optionally "noise_probs" [B,5], "denoised" [B,s,s,3] 0..255.
    size: input side s, or None for "any" (fed the evaluation crop as is).
    classifier / denoiser: whether the noise-classifier and denoiser diagnostics apply.
    prepare(eval_data): optional hook called before each pass over an EvalData.
    crop_scale: the model's crop as a multiple of the face box (its metadata's): below 2,
    it gets its window of each reference crop (noise.model_windows).
    """
    label: str
    path: str
    kind: str
    size: Optional[int]
    predict: Callable
    classifier: bool = False
    denoiser: bool = False
    prepare: Optional[Callable] = None
    crop_scale: float = CROP_SCALE


def model_entry(loaded):
    """ModelEntry of a fadenn_tf.inference.LoadedModel. The denoiser diagnostics apply to
    models with a denoiser, the classifier diagnostics to models with a noise classifier
    (as the model's metadata says)."""
    return ModelEntry(loaded.label, loaded.path, loaded.kind, loaded.size,
                      lambda images, start: loaded(images), bool(loaded.has_classifier),
                      bool(loaded.has_denoiser), crop_scale=loaded.crop_scale)



# ------------------------------------------------------------------------------ running

class _ModelSide:
    """One ModelEntry as `scoring.run_condition` calls it on batches of reference crops
    (side `size`): resizes them to the model's side (noise.to_model_input: the whole crop,
    or the model's window of it), maps its points
    back to the reference crop, keeps the noisy crops of the grid rows and ticks `bar`."""

    def __init__(self, entry, size, keep_rows, bar=None):
        self.entry, self.size, self.bar = entry, size, bar
        self.keep_rows = set(keep_rows)
        self.kept = {}

    def __call__(self, batch):
        """Outputs (reduction.validation_step) of the model on one batch of crops."""
        images, start = batch["image"], batch["start"]
        b = int(images.shape[0])
        s = self.entry.size or self.size
        windows = np.asarray(model_windows(batch["box"], self.size, self.entry.crop_scale)) \
            if uses_window(self.entry.crop_scale) else None
        moved = s != self.size or windows is not None

        def resize(crops):
            return np.asarray(to_model_input(crops, s, windows)) if moved else crops
        x = resize(images)
        res = self.entry.predict(x, start)
        lm = np.asarray(res["landmarks"], np.float64)
        if moved:
            lm = reference_points(lm, s, self.size, windows)
        out = {"landmarks": lm}
        if self.entry.classifier and res.get("noise_probs") is not None:
            out["noise_probs"] = res["noise_probs"]
        if self.entry.denoiser and res.get("denoised") is not None:
            clean = batch["clean"]
            clean = resize(clean)
            out.update(denoised=res["denoised"], input=x, clean=clean)
        for r in self.keep_rows:
            if start <= r < start + b:
                img = np.asarray(images[r - start])
                self.kept[r] = np.clip(np.round(img), 0, 255).astype(np.uint8)
        if self.bar is not None:
            self.bar.update(1)
        return out


@dataclass
class Evaluation:
    """Everything one evaluation produced (see fadenn_tf.evaluation.report for the files).

    meta: context of every figure (dataset, split, boxes, noise source, crop size,
    normaliser, threshold, seed ...). models: [{"label", "path", "kind", "size"}].
    conditions: condition names in order. samples: the scored samples (evaluated ones, then
    detector misses). errors[label][condition][normalizer]: (len(samples),) NME, inf for a
    miss. iid[label]: classifier / denoiser diagnostics. grid: rows, crops and points for the
    landmark figure. timing: seconds per model and condition.
    """
    meta: dict
    models: list
    conditions: list
    samples: list
    errors: dict
    iid: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)
    timing: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)

    @property
    def normalizer(self):
        return self.meta["normalizer"]

    @property
    def threshold(self):
        return self.meta["threshold"]

    def summary(self, label, condition, normalizer=None):
        """metrics.summarize of one model under one condition (or "noisy" pooled), as
        reduction.condition_summary computes it."""
        return condition_summary(self.errors[label], condition, self.threshold,
                                 normalizer or self.normalizer)

    def has_noisy(self):
        return any(c != "clean" for c in self.conditions)


def _grid_rows(n, k):
    if k <= 0 or n == 0:
        return []
    return sorted(set(np.round(np.linspace(0, n - 1, min(k, n))).astype(int).tolist()))


def evaluate(entries, eval_set, conditions=None, settings=None, *, crop_size=None,
             noisy_from=None, progress=False):
    """Evaluate every ModelEntry on `eval_set` under every (type, level) condition.

    conditions: (type, level) pairs (default: settings.conditions). settings: the `eval`
    config section (fadenn_tf.config.EvalConfig: normalizer, nme_threshold, batch_size, seed,
    grid_images; default its defaults). crop_size: the reference crop side R where noise is
    applied (default noise.REFERENCE_SIZE); every model gets the R crop resized to its input.
    noisy_from: a fadenn_tf.degrade output folder to read the noisy images from (else noise
    is synthesised on the R crops with settings.seed). Returns an Evaluation.
    """
    settings = settings or EvalConfig()
    conditions = list(conditions or parse_conditions(settings.conditions))
    seed, normalizer, threshold = settings.seed, settings.normalizer, settings.nme_threshold
    size = int(crop_size or REFERENCE_SIZE)
    if eval_set.samples:
        clean_ed = load_eval_data(eval_set.samples, size, progress=progress)
    else:  # the detector found no face at all: every image is a failure
        clean_ed = EvalData(np.zeros((0, size, size, 3), np.uint8), np.zeros((0, 68, 2)),
                            np.zeros((0, 4)), np.zeros(0, np.int32), [], size,
                            boxes=np.zeros((0, 4)))
    n_eval = len(clean_ed)
    manifest = read_degrade_manifest(noisy_from) if noisy_from else None
    crops_mode = bool(manifest) and manifest.get("mode") == "crop"
    if crops_mode and Path(eval_set.root).resolve() != (Path(noisy_from) / "clean").resolve():
        clean_dir = Path(noisy_from) / "clean"
        raise DataError(noisy_from, f"holds face crops (degrade --crop) whose .pts are in crop "
                                    f"pixels: evaluate them with --data {clean_dir}"
                                    f" (not {eval_set.root})")
    spec = ValidationSpec(None, int(settings.batch_size), int(seed), metrics.NORMALIZERS)
    n_batches = -(-n_eval // spec.batch_size)
    rows = _grid_rows(n_eval, settings.grid_images)
    missed = len(eval_set.missed)
    names = [condition_name(*c) for c in conditions]
    logs = {e.label: {} for e in entries}
    timing = {e.label: {} for e in entries}
    grid = {"rows": rows, "conditions": names,
            "true": clean_ed.landmarks[rows].astype(np.float64), "crops": {},
            "pred": {e.label: {} for e in entries},
            "images": [clean_ed.samples[r].image_path for r in rows]}
    bar = progress_bar(total=len(conditions) * len(entries) * n_batches, enabled=progress,
                       desc="evaluating", unit="batch")
    try:
        for (t, lv), name in zip(conditions, names):
            ed, run_type = clean_ed, t
            if noisy_from and t != 0 and n_eval:
                noisy = noisy_sample_paths(clean_ed.samples, eval_set.root, noisy_from, name,
                                           manifest)
                ed = load_eval_data(noisy, size)
                if len(ed) != n_eval:
                    p, why = ed.problems[0]
                    raise DataError(p, f"degraded copy ({name}) unreadable: {why}")
                run_type = 0
            for e in entries:
                if n_eval == 0:  # nothing to run: the detector misses alone
                    logs[e.label][name] = {f"nme_{n}": [] for n in metrics.NORMALIZERS}
                    continue
                bar.set_postfix_str(f"{e.label} {name}")
                if e.prepare is not None:
                    e.prepare(ed)
                model = _ModelSide(e, size, rows, bar)
                t0 = time.perf_counter()
                state = run_condition(model, ed, (run_type, lv), spec, true_type=t,
                                      clean=None if ed is clean_ed else clean_ed)
                timing[e.label][name] = time.perf_counter() - t0
                logs[e.label][name] = state
                grid["pred"][e.label][name] = np.concatenate(state["crop_landmarks"])[rows]
                grid["crops"].setdefault(name, np.stack([model.kept[r] for r in rows])
                                         if rows else np.zeros((0, size, size, 3), np.uint8))
    finally:
        bar.close()
    errors, iid = {}, {}
    for e in entries:
        figures = reduce_aggregated_logs(logs[e.label], threshold, normalizer, failures=missed)
        errors[e.label] = figures["errors"]
        out = {k: figures[k] for k in ("classifier", "denoiser")
               if k in figures and getattr(e, k)}
        if out:
            iid[e.label] = out
    if not noisy_from:
        noise_src = (f"synthesised on the {size}x{size} reference crops by fadenn_tf.noise "
                     f"(seed {seed}), then resized to each model's input")
    elif crops_mode:
        noise_src = (f"degraded reference crops ({manifest.get('reference_size')} px) read "
                     f"from {noisy_from} (fadenn_tf.degrade --crop, seed {manifest.get('seed')})")
    else:
        noise_src = (f"degraded full images read from {noisy_from} (fadenn_tf.degrade "
                     f"--full-image, seed {manifest.get('seed')})")
    meta = {
        "dataset": eval_set.dataset, "root": str(eval_set.root), "format": eval_set.format,
        "split": eval_set.split, "n_images": n_eval + missed, "n_evaluated": n_eval,
        "n_detector_missed": missed, "n_unreadable_skipped": len(clean_ed.problems),
        "boxes": (f"detector {eval_set.detector} (its box overlapping the ground-truth "
                  "landmark box most)" if eval_set.boxes == "detector"
                  else "ground truth (tight 68-point landmark box)"),
        "crop": f"2x the box, clipped, resized to the {size}x{size} reference crop (noise "
                f"applied there), then to each model's input side", "crop_size": size,
        "noise": noise_src, "seed": int(seed),
        "normalizer": normalizer, "normalizer_info": metrics.NORMALIZER_INFO[normalizer],
        "threshold": float(threshold), "auc_method": "exact",
        "auc_info": "integral of the CED over [0, t] / t, exact for the step function",
    }
    models = [{"label": e.label, "path": e.path, "kind": e.kind, "size": e.size}
              for e in entries]
    return Evaluation(meta, models, names, list(clean_ed.samples) + list(eval_set.missed),
                      errors, iid, grid, timing, list(clean_ed.problems))
