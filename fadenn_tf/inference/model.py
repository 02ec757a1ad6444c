"""Load any trained model as one object on 0..255 crops: a training workdir, a `.keras` file
(FADeNN-D/S/M, the FLL baseline, or the FLL alone; old-format files too, see
fadenn_tf.models.io) or an exported SavedModel.

    model = load_any("runs/cpu")            # joint-<V>/model.keras, else fll/model.keras
    out = model.predict_crops(crops)        # crops [B,S,S,3] RGB pixels 0..255 (uint8/float)
    out["landmarks"]                        # [B,68,2] 0-based pixel coords in the crop
    out["noise_probs"], out["denoised"]     # [B,5] (None if the model has none), [B,S,S,3] 0..255
    landmarks, probs = model.fit_box(image, box)   # (68,2) image pixels for a face box

`model.size` is the crop side S the model expects; `model.crop(image, box)` cuts it with
the one crop transform (fadenn_tf.data.crop). Nobody scales pixels by hand: the input
scaling is inside the model's graph (Keras) or its serving signature (SavedModel).
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import tensorflow as tf

from fadenn_tf.deploy.saved_model import resolve_model_path
from fadenn_tf.errors import DataError
from fadenn_tf.inference.crop_model import CropModel


@dataclass
class LoadedModel(CropModel):
    """A landmark model on 0..255 crops. fn: [B,S,S,3] float32 pixels -> dict of tensors
    (see the module docstring). kind: "fadenn" (any end-to-end model with the FADeNN
    outputs), "fll" (FLL alone) or "saved_model". metadata: the model's format-1 metadata
    (fadenn_tf.models.io; described from the graph for older files)."""
    fn: Callable
    size: int
    kind: str
    path: str
    label: str
    keras_model: Optional[object] = None
    has_classifier: bool = False
    has_denoiser: bool = False
    metadata: dict = field(default_factory=dict)

    def __call__(self, crops):
        """crops [B,S,S,3] pixels 0..255 -> dict of tensors: "landmarks" [B,68,2] crop
        pixels, "noise_probs" [B,5] or None, "denoised" [B,S,S,3] 0..255 or None."""
        x = tf.cast(crops, tf.float32) if tf.is_tensor(crops) else np.asarray(crops, np.float32)
        out = self.fn(tf.convert_to_tensor(x))
        return {"landmarks": out["landmarks"], "noise_probs": out.get("noise_probs"),
                "denoised": out.get("denoised")}

def _from_keras(model, meta, path, label):
    from fadenn_tf.models import to_points
    size = int(model.inputs[0].shape[1])
    flags = {"has_classifier": bool(meta["has_classifier"]),
             "has_denoiser": bool(meta["has_denoiser"]), "metadata": meta}
    if meta["kind"] == "fadenn":
        fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        return LoadedModel(fn, size, "fadenn", str(path), label, model, **flags)
    if meta["kind"] == "fll":
        fn = tf.function(lambda x: {"landmarks": to_points(model(x, training=False))},
                         reduce_retracing=True)
        return LoadedModel(fn, size, "fll", str(path), label, model, **flags)
    raise DataError(path, f"not a landmark model but a {meta['kind']!r} (expected FADeNN "
                          "outputs or an FLL's [B, 136] coordinates)")


def _from_saved_model(path, label):
    from fadenn_tf.models.io import read_metadata
    meta = read_metadata(path) or {}  # exports made before format 1 have none
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
    outs = set(sig.structured_outputs)

    def fn(x):  # serving_default takes and returns 0..255 pixels (fadenn_tf.deploy)
        out = sig(**{name: x})
        return {k: out[k] for k in ("landmarks", "noise_probs", "denoised") if k in out}
    m = LoadedModel(fn, size, "saved_model", str(path), label,
                    has_classifier=meta.get("has_classifier", "noise_probs" in outs),
                    has_denoiser=meta.get("has_denoiser", "denoised" in outs), metadata=meta)
    m.saved_model = loaded
    return m


def load_any(path, label=None, flip_test=False):
    """Load a model from a workdir, .keras file or SavedModel (see module docstring);
    flip_test=True wraps it in inference.flip_test.FlipAveraged (two calls per batch).
    Raises DataError naming the path when it holds no usable model."""
    if flip_test:
        from fadenn_tf.inference.flip_test import FlipAveraged
        return FlipAveraged(load_any(path, label))
    import fadenn_tf.models  # noqa: F401  (registers custom layers)
    from fadenn_tf.models import load_model_and_metadata
    p = resolve_model_path(path)
    label = label or Path(path).name
    if p.is_dir():
        return _from_saved_model(p, label)
    if p.suffix != ".keras":
        raise DataError(p, "unsupported model file (expected .keras or a SavedModel folder)")
    return _from_keras(*load_model_and_metadata(p), p, label)
