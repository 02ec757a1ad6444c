"""Load any trained model as one callable on crops: a training workdir, a `.keras` file
(FADeNN-D/S/M, the FLL baseline, or the FLL alone) or an exported SavedModel.

    model = load_any("runs/cpu")            # joint-<V>/model.keras, else fll/model.keras
    out = model(crops)                      # crops [B,S,S,3] float32 in [-1, 1]
    out["landmarks"]                        # [B,68,2] 0-based pixel coords in the crop
    out["noise_probs"], out["denoised"]     # [B,5] (None if the model has none), [B,S,S,3]

`model.size` is the crop side S the model expects; crop with fadenn_tf.data.crop at that size.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import tensorflow as tf

from fadenn_tf.errors import DataError


@dataclass
class LoadedModel:
    """fn: [B,S,S,3] float32 in [-1,1] -> dict (see module docstring). kind: "fadenn" (any
    end-to-end model with the FADeNN outputs), "fll" (FLL alone) or "saved_model"."""
    fn: Callable
    size: int
    kind: str
    path: str
    label: str
    keras_model: Optional[object] = None
    has_classifier: bool = False

    def __call__(self, crops):
        out = self.fn(tf.convert_to_tensor(crops, tf.float32))
        return {"landmarks": out["landmarks"], "noise_probs": out.get("noise_probs"),
                "denoised": out.get("denoised")}


def resolve_model_path(path):
    """A workdir -> its final model file; an exported model root -> its newest version."""
    p = Path(path)
    if not p.exists():
        raise DataError(p, "model not found")
    if p.is_file():
        return p
    if (p / "saved_model.pb").is_file():
        return p
    versions = sorted((d for d in p.iterdir() if d.is_dir() and d.name.isdigit()
                       and (d / "saved_model.pb").is_file()), key=lambda d: int(d.name))
    if versions:
        return versions[-1]
    joints = sorted(p.glob("joint-*/model.keras"))
    if len(joints) == 1:
        return joints[0]
    if len(joints) > 1:
        raise DataError(p, "holds several trained FADeNN variants ("
                        + ", ".join(str(j) for j in joints) + "); pass the model.keras you want")
    if (p / "fll" / "model.keras").is_file():
        return p / "fll" / "model.keras"
    if (p / "model.keras").is_file():
        return p / "model.keras"
    raise DataError(p, "no model found: expected a .keras file, a training workdir (with "
                       "joint-<V>/model.keras or fll/model.keras) or a SavedModel folder")


def _from_keras(model, path, label):
    from fadenn_tf.models import to_points
    size = int(model.inputs[0].shape[1])
    if isinstance(model.output, dict) and "landmarks" in model.output:
        fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        names = {layer.name for layer in model.layers}
        return LoadedModel(fn, size, "fadenn", str(path), label, model,
                           has_classifier="classifier" in names)
    if len(model.outputs) == 1 and model.outputs[0].shape[-1] % 2 == 0:
        fn = tf.function(lambda x: {"landmarks": to_points(model(x, training=False))},
                         reduce_retracing=True)
        return LoadedModel(fn, size, "fll", str(path), label, model)
    raise DataError(path, "not a landmark model (expected FADeNN outputs or an FLL's "
                          "[B, 136] coordinates)")


def _from_saved_model(path, label):
    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as exc:  # noqa: BLE001 (OSError, DecodeError, ...: a corrupt export)
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise DataError(path, f"not a loadable SavedModel ({type(exc).__name__}: {first})") \
            from None
    if "serving_default" not in loaded.signatures:
        raise DataError(path, "SavedModel has no serving_default signature")
    sig = loaded.signatures["serving_default"]
    (name, spec), = sig.structured_input_signature[1].items()
    size = int(spec.shape[1])

    def fn(x):
        out = sig(**{name: (x + 1.0) * 127.5})
        res = {"landmarks": out["landmarks"]}
        if "noise_probs" in out:
            res["noise_probs"] = out["noise_probs"]
        if "denoised" in out:
            res["denoised"] = out["denoised"] / 127.5 - 1.0  # exports return 0-255
        return res
    m = LoadedModel(fn, size, "saved_model", str(path), label)
    m.saved_model = loaded
    return m


def load_any(path, label=None):
    """Load a model from a workdir, .keras file or SavedModel (see module docstring).
    Raises DataError naming the path when it holds no usable model."""
    import fadenn_tf.models  # noqa: F401  (registers custom layers)
    from fadenn_tf.models import load_model
    p = resolve_model_path(path)
    label = label or Path(path).name
    if p.is_dir():
        return _from_saved_model(p, label)
    if p.suffix != ".keras":
        raise DataError(p, "unsupported model file (expected .keras or a SavedModel folder)")
    return _from_keras(load_model(p), p, label)


def predict_in_batches(model, crops, batch_size=32):
    """Run `model` (a LoadedModel) over (N,S,S,3) float32 crops in [-1,1]; returns a dict of
    NumPy arrays ("landmarks" (N,68,2) crop px, "noise_probs" (N,5) if any)."""
    outs = {"landmarks": [], "noise_probs": []}
    for i in range(0, len(crops), batch_size):
        res = model(crops[i:i + batch_size])
        outs["landmarks"].append(np.asarray(res["landmarks"]))
        if res["noise_probs"] is not None:
            outs["noise_probs"].append(np.asarray(res["noise_probs"]))
    return {k: np.concatenate(v) for k, v in outs.items() if v}
