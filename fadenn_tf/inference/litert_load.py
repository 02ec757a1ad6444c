"""Load a model for the LiteRT backend (load_litert): a .tflite file, a routed folder, or a
Keras model converted at batch 1 (routed parts for FADeNN-S/M, one graph otherwise) with the
conversion cached on disk (deploy.conversion_cache)."""
from pathlib import Path


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
    DataError naming the path when it holds no usable model."""
    from fadenn_tf.deploy import conversion_cache
    from fadenn_tf.deploy.litert import load_tflite
    from fadenn_tf.deploy.routed import is_routed_dir
    from fadenn_tf.inference.litert import LiteRTModel
    p = Path(path)
    if p.suffix == ".tflite":
        return LiteRTModel(load_tflite(p, num_threads), p, p.stem)
    if is_routed_dir(p):
        return _routed_from_dir(p, p, p.name, num_threads)
    from fadenn_tf.deploy.saved_model import resolve_model_file
    source = resolve_model_file(p)
    from fadenn_tf.errors import DataError
    for kind in ("routed", "graph"):
        cached = conversion_cache.entry(source, variant, kind)
        if cached is not None and cached.exists():
            try:
                return (_routed_from_dir(cached, source, p.name, num_threads)
                        if kind == "routed"
                        else LiteRTModel(load_tflite(cached, num_threads), source, p.name))
            except DataError as exc:  # corrupt or cut entry: rebuilt below, once
                conversion_cache.discard(cached, exc)
    return _convert_for_litert(p, variant, num_threads)


def _routed_from_dir(folder, path, label, num_threads):
    from fadenn_tf.deploy.routed import read_routed
    from fadenn_tf.inference.routed import RoutedLiteRTModel
    return RoutedLiteRTModel(read_routed(folder, num_threads)[1], path, label)


def _convert_for_litert(p, variant, num_threads):
    """load_litert's conversion of a Keras model (and its cache entry)."""
    from fadenn_tf.deploy import conversion_cache
    from fadenn_tf.deploy.litert import check_builtin_only, load_tflite
    from fadenn_tf.deploy.routed import convert_routed, write_routed
    from fadenn_tf.deploy.saved_model import load_export_model
    from fadenn_tf.deploy.tflite import convert_tflite
    from fadenn_tf.inference.litert import LiteRTModel
    from fadenn_tf.inference.routed import RoutedLiteRTModel
    from fadenn_tf.models import routed_parts
    model, source = load_export_model(p)
    try:
        parts = routed_parts(model)
    except ValueError:  # no classifier and experts: one graph
        data = convert_tflite(None, variant, batch_size=1, model=model)
        interpreter = load_tflite(data, num_threads)
        check_builtin_only(interpreter, f"{source} ({variant} TFLite)")
        conversion_cache.store(conversion_cache.entry(source, variant, "graph"),
                               lambda f: _write_file(f, data))
        m = LiteRTModel(interpreter, source, p.name)
    else:
        meta, data = convert_routed(model, variant, source, parts)
        interpreters = {k: load_tflite(b, num_threads) for k, b in data.items()}
        for k, it in interpreters.items():
            check_builtin_only(it, f"{source} ({variant} TFLite part {k})")
        conversion_cache.store(conversion_cache.entry(source, variant, "routed"),
                               lambda f: write_routed(meta, data, f))
        m = RoutedLiteRTModel(interpreters, source, p.name)
    m.tflite_bytes = data
    return m


def _write_file(path, data):
    from fadenn_tf.utils.atomic import atomic_path
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)
