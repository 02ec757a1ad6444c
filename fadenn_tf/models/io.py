"""Save and load models: native `.keras` files (atomic) and TF checkpoints of the weights.

`.keras` holds architecture + weights; loading needs no custom_objects because importing
fadenn_tf.models registers the custom layers. Checkpoints (tf.train.Checkpoint of the model)
hold weights only: restore them into a model built from the same config.
"""
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
    return path


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
