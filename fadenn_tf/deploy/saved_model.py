"""The SavedModel export: the end-to-end model taking 0..255 pixels, its serving_default
signature, and the TF Serving version folder written atomically with its model.json
(signatures and layout: fadenn_tf.cli.export, docs/export.md)."""
from pathlib import Path

from fadenn_tf.utils.lazy import lazy_import
keras = lazy_import("keras")          # imported at first use: this module is on the LiteRT path

from fadenn_tf import pretrained
from fadenn_tf.deploy.signatures import (BYTES_SIGNATURE, SERVING_SIGNATURE, bytes_function,
                                         serving_function)
from fadenn_tf.errors import DataError
from fadenn_tf.utils.atomic import atomic_path, write_json_atomic


def resolve_model_path(path):
    """A shipped name ("pretrained", "pretrained-fll": fadenn_tf.pretrained) -> its file; a
    workdir -> its final model file; an exported model root -> its newest version."""
    if pretrained.is_name(path):
        return pretrained.resolve(path)
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


def resolve_model_file(path):
    """--model argument (a shipped name, a .keras file or a training workdir: see
    resolve_model_path) -> a .keras file. Raises DataError."""
    f = resolve_model_path(path)
    if f.suffix != ".keras":
        raise DataError(f, "expected a .keras model file or a training workdir (an exported "
                           "SavedModel is already an export)")
    return f


def _model_cfg_for_fll(fll, model_file):
    """ModelConfig for wrapping a stand-alone FLL: the stage's config.yaml when present,
    else IID size = FLL size (no resize in the wrapper)."""
    from fadenn_tf.config import (FLLConfig, IIDConfig,  # lazy: YAML, off the LiteRT path
                                  ModelConfig, load_config)
    cfg_file = Path(model_file).parent / "config.yaml" if model_file else None
    s = int(fll.inputs[0].shape[1])
    n = int(fll.outputs[0].shape[-1]) // 2
    if cfg_file is not None and cfg_file.is_file():
        cfg = load_config(cfg_file).model
        if cfg.fll.input_size == s and cfg.fll.num_points == n:
            return cfg
    return ModelConfig(iid=IIDConfig(input_size=s), fll=FLLConfig(input_size=s, num_points=n))


def as_end_to_end(model, model_file=None):
    """An end-to-end FADeNN-interface Keras model (dict outputs landmarks/noise_probs/
    denoised); a stand-alone FLL ([B,s,s,3] -> [B,2P]) is wrapped with build_fll_baseline."""
    from fadenn_tf.models import build_fll_baseline  # lazy: TensorFlow (LiteRT path)
    if isinstance(model.output, dict) and "landmarks" in model.output:
        return model
    if len(model.outputs) == 1 and len(model.outputs[0].shape) == 2 \
            and model.outputs[0].shape[-1] % 2 == 0:
        return build_fll_baseline(_model_cfg_for_fll(model, model_file), model)
    raise DataError(model_file or model.name, "not a landmark model (expected FADeNN outputs "
                                              "or an FLL's [B, 2P] coordinates)")


def load_export_model(path):
    """(end-to-end Keras model taking 0..255 pixels, the .keras file it came from) for a
    --model argument (a file saved before model format 1 is wrapped, fadenn_tf.models.io)."""
    from fadenn_tf.models import load_model  # lazy: TensorFlow (LiteRT path)
    f = resolve_model_file(path)
    return as_end_to_end(load_model(f), f), f


def build_archive(model, crop_scale):
    """keras.export.ExportArchive with both endpoints of `model` (predict_image_bytes crops
    `crop_scale` x each face box: signatures.bytes_function).

    The model is not given to archive.track(): the archive saves the variables its
    endpoints use (as `_all_variables`), and tracking the model as well would save each
    weight a second time through its Keras wrapper (`variables/*`), doubling the
    SavedModel (the model has no lookup tables or other assets that need tracking)."""
    archive = keras.export.ExportArchive()
    archive.add_endpoint(SERVING_SIGNATURE, serving_function(model))
    archive.add_endpoint(BYTES_SIGNATURE, bytes_function(model, crop_scale))
    return archive


def next_version(root):
    """1 + the largest numeric sub-folder of `root` (1 if none)."""
    root = Path(root)
    nums = [int(d.name) for d in root.iterdir() if d.is_dir() and d.name.isdigit()] \
        if root.is_dir() else []
    return max(nums, default=0) + 1


def export_saved_model(model, out_root, version=None, variant=None, config_name=None,
                       crop_scale=None):
    """Write the SavedModel of `model` (an end-to-end model taking 0..255 pixels) and its
    model.json (variant / config_name: see fadenn_tf.models.io.describe) to
    out_root/<version>/ (default: next free version) atomically. crop_scale: the crop
    region as a multiple of the face box, from the metadata of the model file (None: the
    default, data.crop.CROP_SCALE); predict_image_bytes crops at it and model.json records
    it. Raises FileExistsError if that version exists. Returns the version folder."""
    from fadenn_tf.models import describe  # lazy: TensorFlow (LiteRT path)
    version = next_version(out_root) if version is None else int(version)
    if version < 1:
        raise ValueError(f"version must be >= 1, got {version}")
    final = Path(out_root) / str(version)
    if final.exists():
        raise FileExistsError(f"{final}: version {version} already exists; refusing to "
                              "overwrite it (leave --version out to use the next free one)")
    meta = describe(model, variant, config_name)
    if crop_scale is not None:
        meta["crop_scale"] = float(crop_scale)
    archive = build_archive(model, meta["crop_scale"])
    with atomic_path(final, is_dir=True) as tmp:
        archive.write_out(str(tmp), verbose=False)
        write_json_atomic(Path(tmp) / "model.json", meta)
    return final




def fixed_batch_saved_model(model, out_dir, batch_size=1, endpoint=None):
    """Write a SavedModel with only serving_default at a FIXED batch [batch_size,S,S,3]
    (batch_size=None: a dynamic batch [None,S,S,3] instead) (keras ExportArchive, so
    variables stay resource variables the converter can freeze; a tf.Module SavedModel
    converts to a broken TFLite, see the field notes). endpoint: a function of (model,
    batch_size) making the signature's tf.function (default signatures.serving_function).
    Returns out_dir."""
    if batch_size is not None and int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(SERVING_SIGNATURE, (endpoint or serving_function)(
        model, None if batch_size is None else int(batch_size)))
    archive.write_out(str(out_dir), verbose=False)
    return Path(out_dir)
