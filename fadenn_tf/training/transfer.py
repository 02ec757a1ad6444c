"""Transfer learning: start a model from the weights of another one (`--init-from`).

The source can be a `.keras` file, a stage folder (`runs/x/fll`: its `model.keras`, else its
newest checkpoint rebuilt from its `config.yaml`) or a training workdir (`runs/x`: the folder
of the stage being trained; experts and classifiers also start from a general `dae`). Every
layer of the target whose path (nested model names, then the layer name, without the
outermost model's name) or, failing that, whose unique layer name is found in the source
with the same weight shapes is copied; the rest keep their initialisation. So a backbone
pretrained at another width of head, a DAE into each of the four experts, or an FLL trained
on synthetic faces into the real-face FLL all transfer what fits.
"""
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
import yaml

from fadenn_tf.config import config_from_dict
from fadenn_tf.errors import DataError
from fadenn_tf.models.io import load_model
from fadenn_tf.models.pixels import core_of
from fadenn_tf.training.tasks import get_task, stage_of_folder


@dataclass
class TransferReport:
    """What init_from copied: counts of layers and parameters, the source, the layers of the
    target that found no compatible source layer."""
    source: str
    copied_layers: int = 0
    copied_params: int = 0
    total_layers: int = 0
    total_params: int = 0
    unmatched: list = field(default_factory=list)

    def __str__(self):
        miss = (f"; kept their own initialisation: {', '.join(self.unmatched[:6])}"
                + (" ..." if len(self.unmatched) > 6 else "") if self.unmatched else "")
        return (f"initialised {self.copied_layers}/{self.total_layers} layers "
                f"({self.copied_params:,}/{self.total_params:,} parameters) from "
                f"{self.source}{miss}")


def weighted_layers(model, prefix=()):
    """{path: layer} for every layer holding weights, nested models flattened; a path is the
    tuple of nested model names and the layer name, outermost model excluded."""
    out = {}
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            out.update(weighted_layers(layer, prefix + (layer.name,)))
        elif layer.weights:
            out[prefix + (layer.name,)] = layer
    return out


def copy_matching(target, source, source_name="<model>"):
    """Copy weights from `source` into `target` layer by layer (path, else unique name, with
    equal weight shapes). Pixel-interface wrappers are looked through (their [-1, 1] cores
    hold the weights). Returns a TransferReport."""
    target, source = core_of(target), core_of(source)
    src = weighted_layers(source)
    by_name = {}
    for path, layer in src.items():
        by_name.setdefault(path[-1], []).append(layer)
    report = TransferReport(source_name)
    for path, layer in weighted_layers(target).items():
        n = sum(int(np.prod(w.shape)) for w in layer.weights)
        report.total_layers += 1
        report.total_params += n
        cand = src.get(path)
        if cand is None and len(by_name.get(path[-1], ())) == 1:
            cand = by_name[path[-1]][0]
        if cand is None or [tuple(w.shape) for w in cand.weights] != \
                [tuple(w.shape) for w in layer.weights]:
            report.unmatched.append("/".join(path))
            continue
        layer.set_weights(cand.get_weights())
        report.copied_layers += 1
        report.copied_params += n
    if report.copied_layers == 0:
        raise DataError(source_name, f"no layer fits the model {target.name!r} (is it a "
                                     f"model of the same kind?)")
    return report


def model_from_checkpoint(stage_dir):
    """(model, checkpoint path) of a single-model stage folder (its name a registered
    stage's) rebuilt by its task from the folder's config.yaml, with its newest checkpoint
    restored; None when there is none."""
    stage_dir = Path(stage_dir)
    task = stage_of_folder(stage_dir)
    latest = tf.train.latest_checkpoint(str(stage_dir / "checkpoints"))
    if task is None or len(task.outputs) != 1 or latest is None \
            or not (stage_dir / "config.yaml").is_file():
        return None
    cfg = config_from_dict(yaml.safe_load((stage_dir / "config.yaml").read_text()),
                           str(stage_dir / "config.yaml"))
    cores = task.fresh_parts(cfg).cores
    tf.train.Checkpoint(**cores).read(latest).expect_partial()
    return next(iter(cores.values())), latest


def resolve_sources(path, stage, count=1):
    """The source model for each of `count` targets of `stage` (experts: 4) -> list of
    (keras.Model, description). Raises DataError naming the path when nothing fits."""
    p = Path(path)
    if not p.exists():
        raise DataError(p, "--init-from: not found")
    if p.is_file():
        model = load_model(p)
        return [(model, str(p))] * count
    if (p / "model.keras").is_file():
        model = load_model(p / "model.keras")
        return [(model, str(p / "model.keras"))] * count
    patterns = get_task(stage).sources()
    for pattern in patterns:
        files = [p / pattern.format(k=k) for k in range(1, count + 1)]
        if all(f.is_file() for f in files):
            return [(load_model(f), str(f)) for f in files]
    for d in (p, p / stage):
        rebuilt = model_from_checkpoint(d) if (d / "checkpoints").is_dir() else None
        if rebuilt:
            return [rebuilt] * count
    raise DataError(p, f"--init-from: holds no model for stage {stage!r} (looked for "
                       f"{', '.join(patterns)} and checkpoints)")


def init_from(model, path, stage="fll"):
    """Initialise `model` from `path` (see the module docstring). Returns a TransferReport."""
    source, desc = resolve_sources(path, stage)[0]
    return copy_matching(model, source, desc)
