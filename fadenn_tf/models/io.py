"""Save and load models: native `.keras` files with a versioned metadata file beside them
(atomic), and TF checkpoints of the weights.

Model format 1 (docs/models.md): every saved model takes float32 RGB pixels in 0..255 (its
graph scales them, fadenn_tf.models.pixels) and `NAME.keras` has `NAME.json` beside it (a
SavedModel export has `model.json` inside its version folder):

    format_version  1                       input_range   [0, 255]
    kind            fadenn | fll | dae | stc | mtc       variant  fll | D | S | M | null
    input_size      S (square crop side)    crop_scale    2.0 (fadenn_tf.data.crop)
    num_points      68 (landmark kinds)     landmark_layout  where the landmarks are
    outputs         output names            image_output_range  [0, 255]
    has_classifier, has_denoiser            config_name   e.g. "cpu" (or null)
    written_by      "fadenn_tf <version>"

A `.keras` file written before format 1 (no metadata, a graph working in [-1, 1]) still
loads: `load_model` wraps it with pixel_model so it takes 0..255 like a new one and warns
once (`LegacyModelWarning`). `upgrade(path)` rewrites such files (or a whole workdir) in
format 1; the landmarks stay the same. Loading needs no custom_objects because importing
fadenn_tf.models registers the custom layers. Checkpoints (tf.train.Checkpoint of the
model) hold weights only: restore them into a model built from the same config.
"""
import io
import json
import warnings
import zipfile
from pathlib import Path

import h5py
import keras
import numpy as np
import tensorflow as tf
import yaml

from fadenn_tf.data.crop import CROP_SCALE
from fadenn_tf.utils.metadata_json import read_metadata_json
from fadenn_tf.errors import DataError
from fadenn_tf.models import layers as _layers  # noqa: F401  (registers the custom layers)
from fadenn_tf.models.pixels import PIXEL_RANGE, core_of, is_pixel_model, pixel_model
from fadenn_tf.utils.atomic import atomic_path, write_json_atomic
from fadenn_tf.version import __version__

FORMAT_VERSION = 1
NUM_CLASSES = 5
KINDS = ("fadenn", "fll", "dae", "stc", "mtc")


class LegacyModelWarning(UserWarning):
    """A model file saved before format 1 was loaded (and wrapped to take 0..255)."""


def metadata_path(path):
    """The metadata file of a model: NAME.keras -> NAME.json beside it; a SavedModel folder
    -> model.json inside it."""
    path = Path(path)
    return path / "model.json" if path.is_dir() else path.with_suffix(".json")


def _variant(model, names):
    if "dae" in names:
        return "D"
    if "classifier" in names:
        tail = model.name.rsplit("_", 1)[-1].upper()
        return tail if tail in ("S", "M") else None  # the routing graph of S and M is the same
    return "fll"


def describe(model, variant=None, config_name=None, crop_scale=None):
    """Format-1 metadata (dict) of a model taking pixels (see the module docstring).
    variant: the FADeNN variant when known (S and M share one graph; default: the model's
    name "fadenn_s"/"fadenn_m"); crop_scale: the crop it was trained on, as a multiple of
    the face box (config model.crop_scale; default data.crop.CROP_SCALE, 2). Raises
    ValueError for a model of no known kind."""
    core = core_of(model)
    names = {layer.name for layer in model.layers} | {layer.name for layer in core.layers}
    out = model.output
    size = int(model.inputs[0].shape[1])
    layout, points = None, None
    if isinstance(out, dict) and "landmarks" in out:
        kind, variant = "fadenn", variant or _variant(model, names)
        points = int(out["landmarks"].shape[1])
        layout = "landmarks [B,N,2]: (x, y) 0-based pixel-centre coordinates in the input crop"
    elif isinstance(out, dict) and {"logits", "reconstruction"} <= set(out):
        kind = "mtc"
    elif not isinstance(out, dict) and tuple(out.shape[1:]) == tuple(model.inputs[0].shape[1:]):
        kind = "dae"
    elif not isinstance(out, dict) and len(out.shape) == 2 and out.shape[-1] == NUM_CLASSES:
        kind = "stc"
    elif not isinstance(out, dict) and len(out.shape) == 2 and out.shape[-1] % 2 == 0:
        kind, points = "fll", int(out.shape[-1]) // 2
        layout = "[B,2N] = [x0..x_{N-1}, y0..y_{N-1}] 0-based pixel-centre coordinates in " \
                 "the input crop"
    else:
        raise ValueError(f"model {model.name!r}: not a FADeNN, FLL, DAE or noise-classifier "
                         f"model (outputs {out})")
    return {"format_version": FORMAT_VERSION, "kind": kind,
            "variant": variant if kind == "fadenn" else ("fll" if kind == "fll" else None),
            "input_range": list(PIXEL_RANGE), "input_size": size,
            "image_output_range": list(PIXEL_RANGE), "crop_scale": float(crop_scale or CROP_SCALE),
            "num_points": points, "landmark_layout": layout,
            "outputs": sorted(out) if isinstance(out, dict) else ["output"],
            "has_classifier": kind in ("stc", "mtc") or "classifier" in names,
            "has_denoiser": kind in ("dae", "mtc") or bool(names & {"dae", "experts"}),
            "config_name": config_name, "written_by": f"fadenn_tf {_version()}"}


def _version():
    return __version__


def save_model(model, path, variant=None, config_name=None, crop_scale=None):
    """Write `model` to `path` (must end in .keras) and its metadata to NAME.json, each
    atomically (a temporary file beside it is renamed onto it once complete). A model
    working in [-1, 1] (a core from the build_* functions) is saved wrapped by pixel_model,
    so every saved file takes 0..255. variant / config_name / crop_scale (describe) go into
    the metadata.
    Returns the Path of the .keras file."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"{path}: a native Keras model file must end in .keras")
    if not is_pixel_model(model):
        model = pixel_model(model)
    meta = describe(model, variant, config_name, crop_scale)
    with atomic_path(path) as tmp:
        model.save(tmp)
        _float32_policies(tmp)
    write_json_atomic(metadata_path(path), meta)
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


def read_metadata(path):
    """The metadata dict of model file `path`, or None when it has no NAME.json (a file saved
    before format 1). Raises DataError naming the metadata file when it is unreadable, of an
    unknown format_version or not for 0..255 input."""
    meta_file = metadata_path(path)
    meta = read_metadata_json(meta_file)
    if meta is None:
        return None
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise DataError(meta_file, f"model format_version {version!r} is unknown: this "
                                   f"fadenn_tf ({_version()}) reads format {FORMAT_VERSION}")
    if meta.get("input_range") != list(PIXEL_RANGE) or meta.get("kind") not in KINDS:
        raise DataError(meta_file, f"unsupported model metadata: kind {meta.get('kind')!r}, "
                                   f"input_range {meta.get('input_range')!r}")
    return meta


def load_model_and_metadata(path, compile=False):
    """(model taking 0..255 pixels, metadata dict) of a `.keras` file. A file without
    metadata saved before format 1 is wrapped by pixel_model (with a LegacyModelWarning) and
    described from its graph. Raises DataError naming the file when it is missing, not a
    loadable Keras model, or does not match its metadata."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "model file not found")
    meta = read_metadata(path)
    try:
        model = keras.models.load_model(path, compile=compile)
    except Exception as exc:  # zip, JSON or weight errors: report them against the file
        raise DataError(path, f"not a loadable .keras model ({type(exc).__name__}: {exc})") \
            from exc
    if meta is not None:
        if not is_pixel_model(model):
            raise DataError(path, f"its metadata {metadata_path(path).name} says it takes "
                                  "0..255 but the graph has no input scaling")
        return model, meta
    if not is_pixel_model(model):
        warnings.warn(f"{path}: saved before model format {FORMAT_VERSION} (no "
                      f"{metadata_path(path).name}); loaded as [-1, 1] model wrapped to take "
                      f"0..255 (convert with fadenn_tf.models.upgrade)",
                      LegacyModelWarning, stacklevel=3)
        model = pixel_model(model)
    try:
        return model, describe(model)
    except ValueError as exc:
        raise DataError(path, str(exc)) from None


def load_model(path, compile=False):
    """Load a `.keras` file -> a Keras model taking float32 0..255 pixels (see
    load_model_and_metadata; old files are wrapped). Raises DataError naming the file."""
    return load_model_and_metadata(path, compile)[0]


def _config_name(model_file):
    """The "name" of the config.yaml beside a stage's model file, or None."""
    cfg = Path(model_file).parent / "config.yaml"
    try:
        data = yaml.safe_load(cfg.read_text(encoding="utf-8")) if cfg.is_file() else None
    except (OSError, yaml.YAMLError):
        return None
    return data.get("name") if isinstance(data, dict) else None


def upgrade(path, variant=None, config_name=None):
    """Rewrite model files saved before format 1 in format 1, in place (atomic): `path` is a
    `.keras` file or a folder (a training workdir: every `*.keras` under it). Files already
    in format 1 are left alone. Predictions are unchanged (the same weights behind the input
    scaling). config_name defaults to the "name" in a config.yaml beside the file (a stage
    folder has one). Returns the list of rewritten files."""
    path = Path(path)
    files = sorted(path.rglob("*.keras")) if path.is_dir() else [path]
    done = []
    for f in files:
        if read_metadata(f) is not None:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LegacyModelWarning)
            model, meta = load_model_and_metadata(f)
        save_model(model, f, variant or meta["variant"], config_name or _config_name(f))
        done.append(f)
    return done


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


def save_float16_copy(src, dst):
    """Copy the format-1 model file `src` (.keras + its .json) to `dst` with its float32
    weights stored as float16: half the size, loaded back into float32 variables (Keras
    casts on assignment), about 1e-4 px of landmark change at 128 px. For shipping weights
    inside the package (fadenn_tf.pretrained). Atomic; returns the Path of `dst`."""
    src, dst = Path(src), Path(dst)
    if read_metadata(src) is None:
        raise DataError(src, "not a format-1 model (no metadata): run models.upgrade first")
    with zipfile.ZipFile(src) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    buf = io.BytesIO()
    with h5py.File(io.BytesIO(entries["model.weights.h5"]), "r") as h_in, \
            h5py.File(buf, "w") as h_out:
        def copy(name, obj):
            if isinstance(obj, h5py.Dataset):
                data = obj[()]
                h_out.create_dataset(name, data=data.astype(np.float16)
                                     if data.dtype == np.float32 else data)
            else:
                group = h_out.require_group(name)
                group.attrs.update(dict(obj.attrs))
        h_out.attrs.update(dict(h_in.attrs))
        h_in.visititems(copy)
    entries["model.weights.h5"] = buf.getvalue()
    with atomic_path(dst) as tmp:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in entries.items():
                z.writestr(name, data)
    write_json_atomic(metadata_path(dst), read_metadata(src))
    return dst
