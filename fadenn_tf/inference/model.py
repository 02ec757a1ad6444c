"""Load any trained model as one object on 0..255 crops: a training workdir, a `.keras` file
(FADeNN-D/S/M, the FLL baseline, or the FLL alone; old-format files too, see
fadenn_tf.models.io) or an exported SavedModel.

    model = load_any("runs/cpu")            # joint-<V>/model.keras, else fll/model.keras
    out = model.predict_crops(crops)        # crops [B,S,S,3] RGB pixels 0..255 (uint8/float)
    out["landmarks"]                        # [B,68,2] 0-based pixel coords in the crop
    out["noise_probs"], out["denoised"]     # [B,5] (None if the model has none), [B,S,S,3] 0..255
    fits = model.fit_boxes(image, boxes)    # (K,68,2) image pixels for K face boxes
    landmarks, probs = model.fit_box(image, box)   # one face

`model.size` is the crop side S the model expects and `model.crop_scale` the crop region as a
multiple of the face box, both from the model's metadata (inference.crop_model.crop_geometry);
`model.crop(image, box)` cuts that crop (fadenn_tf.data.crop). Nobody scales pixels by hand:
the input scaling is inside the model's graph (Keras) or its serving signature (SavedModel).
One crop runs through a function traced once for [1, S, S, 3] (the single-face fast path).
"""
import contextlib
import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import tensorflow as tf

from fadenn_tf.data.crop import CROP_SCALE
from fadenn_tf.deploy.saved_model import resolve_model_path
from fadenn_tf.errors import DataError
from fadenn_tf.inference.crop_model import CropModel, crop_geometry
from fadenn_tf.inference.devices import check_device
from fadenn_tf.inference.flip_test import FlipAveraged
from fadenn_tf.models import load_model_and_metadata, to_points
from fadenn_tf.models.io import metadata_path, read_metadata


@dataclass
class LoadedModel(CropModel):
    """A landmark model on 0..255 crops. fn: [B,S,S,3] float32 pixels -> dict of tensors
    (see the module docstring). kind: "fadenn" (any end-to-end model with the FADeNN
    outputs), "fll" (FLL alone) or "saved_model". metadata: the model's format-1 metadata
    (fadenn_tf.models.io; described from the graph for older files). crop_scale: the crop
    region / face box (its metadata's, default 2.0). device: the TensorFlow device it runs
    on (None: TensorFlow's choice; on_device sets it)."""
    fn: Callable
    size: int
    kind: str
    path: str
    label: str
    keras_model: Optional[object] = None
    has_classifier: bool = False
    has_denoiser: bool = False
    metadata: dict = field(default_factory=dict)
    crop_scale: float = CROP_SCALE
    device: Optional[str] = None
    _one: Optional[object] = field(default=None, init=False, repr=False, compare=False)

    def __call__(self, crops):
        """crops [B,S,S,3] pixels 0..255 -> dict of tensors: "landmarks" [B,68,2] crop
        pixels, "noise_probs" [B,5] or None, "denoised" [B,S,S,3] 0..255 or None."""
        with self._scope():
            x = (tf.cast(crops, tf.float32) if tf.is_tensor(crops)
                 else tf.constant(np.asarray(crops, np.float32)))
            one = self._one_crop_function() if x.shape[0] == 1 else None
            out = (one or self.fn)(x)
        return {"landmarks": out["landmarks"], "noise_probs": out.get("noise_probs"),
                "denoised": out.get("denoised")}

    def _scope(self):
        return tf.device(self.device) if self.device else contextlib.nullcontext()

    def _one_crop_function(self):
        """fn traced once for [1, S, S, 3] float32 (a concrete function: no retracing and no
        argument dispatch per call), or None when fn is no tf.function (SavedModel)."""
        if self._one is None:
            self._one = (self.fn.get_concrete_function(
                tf.TensorSpec([1, self.size, self.size, 3], tf.float32))
                if hasattr(self.fn, "get_concrete_function") else False)
        return self._one or None

    def warm_up(self):
        """Trace fn for any batch size and run one blank crop (so later timings exclude
        tracing); returns the seconds it took."""
        t0 = time.perf_counter()
        if hasattr(self.fn, "get_concrete_function"):
            with self._scope():
                self.fn.get_concrete_function(
                    tf.TensorSpec([None, self.size, self.size, 3], tf.float32))
        super().warm_up()
        return time.perf_counter() - t0

    def on_device(self, device):
        """A copy of this model running on TensorFlow `device` ("/CPU:0", "/GPU:0", ...).
        Raises inference.devices.DeviceError naming the devices that exist when it does
        not exist here."""
        moved = copy.copy(self)
        moved.device, moved._one = check_device(device), None
        return moved


def _geometry(meta, where, graph_size):
    """{"size", "crop_scale"} for LoadedModel from the model's metadata (crop_geometry)."""
    size, scale = crop_geometry(meta, where, graph_size)
    return {"size": size, "crop_scale": scale}


def _from_keras(model, meta, path, label):
    geometry = _geometry(meta, metadata_path(path), int(model.inputs[0].shape[1]))
    flags = {"has_classifier": bool(meta["has_classifier"]),
             "has_denoiser": bool(meta["has_denoiser"]), "metadata": meta}
    if meta["kind"] == "fadenn":
        fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    elif meta["kind"] == "fll":
        fn = tf.function(lambda x: {"landmarks": to_points(model(x, training=False))},
                         reduce_retracing=True)
    else:
        raise DataError(path, f"not a landmark model but a {meta['kind']!r} (expected "
                              "FADeNN outputs or an FLL's [B, 136] coordinates)")
    return LoadedModel(fn, kind=meta["kind"], path=str(path), label=label, keras_model=model,
                       **geometry, **flags)


def _from_saved_model(path, label):
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
    outs = set(sig.structured_outputs)

    def fn(x):  # serving_default takes and returns 0..255 pixels (fadenn_tf.deploy)
        out = sig(**{name: x})
        return {k: out[k] for k in ("landmarks", "noise_probs", "denoised") if k in out}
    m = LoadedModel(fn, kind="saved_model", path=str(path), label=label,
                    has_classifier=meta.get("has_classifier", "noise_probs" in outs),
                    has_denoiser=meta.get("has_denoiser", "denoised" in outs), metadata=meta,
                    **_geometry(meta, metadata_path(path), int(spec.shape[1])))
    m.saved_model = loaded
    return m


def load_any(path, label=None, flip_test=False, device=None):
    """Load a model from a workdir, .keras file or SavedModel (see module docstring);
    flip_test=True wraps it in inference.flip_test.FlipAveraged (two calls per batch);
    device: a TensorFlow device to load and run it on (None: TensorFlow's choice; one that
    does not exist raises inference.devices.DeviceError). Raises DataError naming the path
    (or its metadata file) when it holds no usable model."""
    if device is not None:
        device = check_device(device)
        with tf.device(device):
            return load_any(path, label, flip_test).on_device(device)
    if flip_test:
        return FlipAveraged(load_any(path, label))
    p = resolve_model_path(path)
    label = label or Path(path).name
    if p.is_dir():
        return _from_saved_model(p, label)
    if p.suffix != ".keras":
        raise DataError(p, "unsupported model file (expected .keras or a SavedModel folder)")
    return _from_keras(*load_model_and_metadata(p), p, label)
