"""Load a model for the LiteRT backend (load_litert): a .tflite file, a routed folder, or a
Keras model converted at batch 1 (routed parts for FADeNN-S/M, one graph otherwise) with the
conversion cached on disk (deploy.conversion_cache). Only a conversion imports TensorFlow.

The model's crop (input side, crop_scale) comes from the metadata of the model the LiteRT
copy was made from (metadata_file; crop_model.crop_geometry), so a LiteRT copy crops as its
Keras model does.
"""
from pathlib import Path

from fadenn_tf.deploy import conversion_cache
from fadenn_tf.deploy.litert import check_builtin_only, load_tflite
from fadenn_tf.deploy.routed import convert_routed, is_routed_dir, read_routed, write_routed
from fadenn_tf.deploy.saved_model import load_export_model, resolve_model_file
from fadenn_tf.errors import DataError
from fadenn_tf.utils.metadata_json import read_metadata_json
from fadenn_tf.inference.litert import LiteRTModel
from fadenn_tf.inference.routed import RoutedLiteRTModel
from fadenn_tf.pretrained import SHIPPED_JSON
from fadenn_tf.utils.atomic import atomic_path


def load_litert(path, num_threads=None, variant="float32"):
    """A LiteRT model on crops for `path`:
    - a .tflite file: runs as it is (inference.litert.LiteRTModel);
    - a routed folder (export --tflite-routed; deploy.routed): RoutedLiteRTModel;
    - any model fadenn_tf.deploy reads (training workdir, .keras file), converted at batch
      1: a FADeNN-S/M to routed parts (only the chosen expert runs, inference.routed), any
      other model to one graph. Converting takes seconds (FADeNN-M: 10-30 s); the result
      is cached on disk (deploy.conversion_cache), so later loads of the same file skip it;
      a cache entry that does not load is deleted, with a warning, and converted again.
    variant: the conversion, "float32" or "dynamic_int8" (int8 weights, float activations:
    XNNPACK's dynamically quantised kernels, ~2-3x faster on x86 with VNNI). Raises
    DataError naming the path (or the metadata file) when it holds no usable model."""
    p = Path(path)
    if p.suffix == ".tflite":
        return LiteRTModel(load_tflite(p, num_threads), p, p.stem, *_metadata(p))
    if is_routed_dir(p):
        return _routed_from_dir(p, p, p.name, num_threads)
    source = resolve_model_file(p)
    for kind in ("routed", "graph"):
        cached = conversion_cache.entry(source, variant, kind)
        if cached is not None and cached.exists():
            try:
                return (_routed_from_dir(cached, source, p.name, num_threads)
                        if kind == "routed"
                        else LiteRTModel(load_tflite(cached, num_threads), source, p.name,
                                         *_metadata(cached, source)))
            except DataError as exc:  # corrupt or cut entry: rebuilt below, once
                conversion_cache.discard(cached, exc)
    return _convert_for_litert(p, variant, num_threads)


def metadata_file(path, source=None):
    """The metadata file of the model a LiteRT copy at `path` was made from, or None:
    - converted from the .keras file `source` (while loading): NAME.json beside it;
    - a .tflite file X.tflite: X.json beside it; a routed folder: model.json inside it;
    - else the shipped layout (fadenn_tf.pretrained): shipped.json in the copy's folder
      names its source model file, in the folder above; that file's NAME.json."""
    if source is not None:
        return Path(source).with_suffix(".json")
    p = Path(path)
    own = p / "model.json" if p.is_dir() else p.with_suffix(".json")
    if own.is_file():
        return own
    folder = p if p.is_dir() else p.parent
    shipped = read_metadata_json(folder / SHIPPED_JSON) or {}
    src = shipped.get("source")
    return (folder.parent / src).with_suffix(".json") if isinstance(src, str) and src else None


def _metadata(path, source=None):
    """(metadata dict or None, its file) for a LiteRT model (metadata_file). For a
    stand-alone FLL converted from `source`, its input_size is left out: the conversion
    wraps it in an end-to-end model whose input side may differ (deploy.saved_model)."""
    file = metadata_file(path, source)
    meta = None if file is None else read_metadata_json(file)
    if meta is not None and source is not None and meta.get("kind") == "fll":
        meta = {k: v for k, v in meta.items() if k != "input_size"}
    return meta, file


def _routed_from_dir(folder, path, label, num_threads):
    source = path if Path(path).suffix == ".keras" else None
    return RoutedLiteRTModel(read_routed(folder, num_threads)[1], path, label,
                             *_metadata(folder, source))


def _convert_for_litert(p, variant, num_threads):
    """load_litert's conversion of a Keras model (and its cache entry)."""
    from fadenn_tf.deploy.tflite import convert_tflite  # lazy: TensorFlow (conversion only)
    from fadenn_tf.models import routed_parts  # lazy: TensorFlow (conversion only)
    model, source = load_export_model(p)
    meta = _metadata(p, source)
    try:
        parts = routed_parts(model)
    except ValueError:  # no classifier and experts: one graph
        data = convert_tflite(None, variant, batch_size=1, model=model)
        interpreter = load_tflite(data, num_threads)
        check_builtin_only(interpreter, f"{source} ({variant} TFLite)")
        conversion_cache.store(conversion_cache.entry(source, variant, "graph"),
                               lambda f: _write_file(f, data))
        m = LiteRTModel(interpreter, source, p.name, *meta)
    else:
        routed_meta, data = convert_routed(model, variant, source, parts)
        interpreters = {k: load_tflite(b, num_threads) for k, b in data.items()}
        for k, it in interpreters.items():
            check_builtin_only(it, f"{source} ({variant} TFLite part {k})")
        conversion_cache.store(conversion_cache.entry(source, variant, "routed"),
                               lambda f: write_routed(routed_meta, data, f))
        m = RoutedLiteRTModel(interpreters, source, p.name, *meta)
    m.tflite_bytes = data
    return m


def _write_file(path, data):
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)
