"""Which samples a training run uses: train and validation splits of the configured data."""
from dataclasses import dataclass, field
from pathlib import Path

from fadenn_tf.data.cache import resolve_data
from fadenn_tf.data.datasets import detect_format, index_300w, open_dataset, split_holdout
from fadenn_tf.errors import DataError

SHORT_RUN_STEPS = 200   # a run whose longest stage has at most this many steps is "short"


@dataclass
class Splits:
    """train/val: lists of Samples; description: what they are (printed with every figure);
    reports: IndexReports of the indexing (skipped samples)."""
    train: list
    val: list
    description: str
    reports: list = field(default_factory=list)


def resolve_root(data_arg):
    """None or "synthetic" -> the built-in synthetic dataset (generated once into the cache);
    else the given folder. A synthetic dataset's stills are its `300w/` subfolder."""
    if data_arg in (None, "synthetic"):
        root = Path(resolve_data(None))
    else:
        root = Path(data_arg)
        if not root.exists():
            raise DataError(root, "dataset folder not found")
    if (root / "300w").is_dir() and not any((root / d).is_dir() for d in ("afw", "ibug")):
        root = root / "300w"
    return root


def load_splits(data_cfg, data_arg=None, progress=False, longest_stage_steps=0):
    """Index the training data and pick the validation split.

    300-W: train = afw + helen/trainset + lfpw/trainset; val = `data_cfg.val_split` (e.g.
    full, common, challenging) when its folders exist, else a seeded `val_fraction` of each
    training folder held out. Menpo / folder: a seeded held-out part (split_holdout).
    data_cfg.val_fraction 0 (with no val folder): every image trains and val is empty (the
    stages then skip validation; for the final weights of a recipe chosen on a held-out run).
    Validation keeps the first data_cfg.max_val_images images when that is set; else a short
    run (longest_stage_steps, the most steps of a stage it trains, at most SHORT_RUN_STEPS)
    keeps the first data_cfg.short_run_val_images (validating 13 conditions of every image
    would take longer than such a run trains), and the description says so.
    """
    arg = data_arg if data_arg is not None else data_cfg.dataset
    synthetic = arg in (None, "synthetic")
    root = resolve_root(None if synthetic else arg)
    fmt = data_cfg.format if data_cfg.format not in ("auto", "synthetic") else detect_format(root)
    name = "synthetic" if synthetic else str(root)
    reports = []
    if fmt == "300w":
        train, rep = index_300w(root, "train")
        reports.append(rep)
        try:
            val, vrep = index_300w(root, data_cfg.val_split)
            reports.append(vrep)
            desc = f"{name} (300-W layout): train split, val split '{data_cfg.val_split}'"
        except DataError:
            if data_cfg.val_fraction == 0:
                val, desc = [], f"{name} (300-W layout): the whole train split"
            else:
                train, val = split_holdout(train, data_cfg.val_fraction, data_cfg.split_seed)
                desc = (f"{name} (300-W layout): train split minus a held-out "
                        f"{data_cfg.val_fraction:.0%} of each folder (seed "
                        f"{data_cfg.split_seed}) as val")
    elif data_cfg.val_fraction == 0:
        train, rep = open_dataset(root, fmt, "all")
        reports.append(rep)
        val, desc = [], f"{name} ({fmt}): every image"
    else:
        train, rep = open_dataset(root, fmt, "train", val_fraction=data_cfg.val_fraction,
                                  seed=data_cfg.split_seed)
        val, vrep = open_dataset(root, fmt, "val", val_fraction=data_cfg.val_fraction,
                                 seed=data_cfg.split_seed)
        reports += [rep, vrep]
        desc = (f"{name} ({fmt}): held-out {data_cfg.val_fraction:.0%} of each folder "
                f"(seed {data_cfg.split_seed}) as val")
    if data_cfg.max_val_images and len(val) > data_cfg.max_val_images:
        val = val[:data_cfg.max_val_images]
        desc += f", first {data_cfg.max_val_images} val images"
    elif (0 < longest_stage_steps <= SHORT_RUN_STEPS and data_cfg.short_run_val_images
          and len(val) > data_cfg.short_run_val_images):
        n = data_cfg.short_run_val_images
        desc += (f", first {n} of {len(val)} val images (a short run: at most "
                 f"{longest_stage_steps} steps per stage; --set data.short_run_val_images=0 "
                 f"validates on all)")
        val = val[:n]
    if not train:
        raise DataError(root, "no usable training samples")
    if not val and data_cfg.val_fraction > 0:
        raise DataError(root, "no usable validation samples")
    if not val:
        desc += " (data.val_fraction 0: no held-out images, no training-time validation)"
    return Splits(train, val, f"{desc} [{len(train)} train / {len(val)} val images]", reports)
