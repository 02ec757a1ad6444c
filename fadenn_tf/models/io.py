"""Save and load models: native `.keras` files (atomic) and TF checkpoints of the weights.

`.keras` holds architecture + weights; loading needs no custom_objects because importing
fadenn_tf.models registers the custom layers. Checkpoints (tf.train.Checkpoint of the model)
hold weights only: restore them into a model built from the same config.
"""
import json
import zipfile
from pathlib import Path

import keras
import tensorflow as tf

from fadenn_tf.errors import DataError
from fadenn_tf.models import layers as _layers  # noqa: F401  (registers the custom layers)
from fadenn_tf.utils.atomic import atomic_path


def save_model(model, path):
    """Write `model` to `path` (must end in .keras) atomically: a temporary file beside it is
    renamed onto `path` only once complete. Returns the Path."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"{path}: a native Keras model file must end in .keras")
    with atomic_path(path) as tmp:
        model.save(tmp)
        _float32_policies(tmp)
    return path


def _float32_policies(keras_file):
    """Rewrite the mixed-precision dtype policies of a saved `.keras` file to float32.

    A model trained under mixed_float16/mixed_bfloat16 keeps float32 variables, but its
    layers remember the mixed policy and would compute in 16 bits after loading. The saved
    model is meant for inference and export, so it is stored as a plain float32 model (the
    weights file is untouched)."""
    with zipfile.ZipFile(keras_file) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    config = json.loads(entries["config.json"])

    def fix(node):
        if isinstance(node, dict):
            if node.get("class_name") == "DTypePolicy" and \
                    str(node.get("config", {}).get("name", "")).startswith("mixed_"):
                return "float32"
            return {k: fix(v) for k, v in node.items()}
        if isinstance(node, list):
            return [fix(v) for v in node]
        return node

    fixed = fix(config)
    if fixed == config:
        return
    entries["config.json"] = json.dumps(fixed).encode("utf-8")
    with zipfile.ZipFile(keras_file, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)


def load_model(path, compile=False):
    """Load a `.keras` file written by save_model (or model.save). Raises DataError naming
    the file when it is missing or not a loadable Keras model."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "model file not found")
    try:
        return keras.models.load_model(path, compile=compile)
    except Exception as exc:  # zip, JSON or weight errors: report them against the file
        raise DataError(path, f"not a loadable .keras model ({type(exc).__name__}: {exc})") \
            from exc


def save_checkpoint(model, prefix):
    """Write the model's variables as a TF checkpoint at `prefix` (e.g. ckpt/model).
    Returns the checkpoint path (prefix + '-1'-style suffix chosen by TF)."""
    Path(prefix).parent.mkdir(parents=True, exist_ok=True)
    return tf.train.Checkpoint(model=model).write(str(prefix))


def restore_checkpoint(model, path):
    """Restore variables written by save_checkpoint into `model` (same architecture).
    Every model variable must be matched by the checkpoint with the same shape, or DataError
    is raised. Returns the model."""
    if not tf.io.gfile.exists(str(path) + ".index"):
        raise DataError(path, "checkpoint not found (no .index file)")
    stored = sorted(tuple(shape) for name, shape in tf.train.list_variables(str(path))
                    if name.startswith("model/") and name.endswith("/.ATTRIBUTES/VARIABLE_VALUE"))
    wanted = sorted(tuple(v.shape) for v in model.weights)  # not RNG seed states
    if stored != wanted:  # checked first so that a mismatch leaves the model untouched
        raise DataError(path, f"checkpoint does not match the model: {len(stored)} variables "
                              f"stored, the model has {len(wanted)} (or their shapes differ)")
    status = None
    try:
        status = tf.train.Checkpoint(model=model).read(str(path))
        status.assert_existing_objects_matched()
    except (AssertionError, ValueError) as exc:  # unmatched objects or wrong variable shapes
        if status is not None:
            status.expect_partial()  # silence TF's "value not found" warnings at exit
        raise DataError(path, f"checkpoint does not match the model "
                              f"(it may be partly restored): {str(exc)[:500]}") from None
    return model
