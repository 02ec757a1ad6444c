"""Speed of the inference paths: Keras, SavedModel and the TFLite variants, at batch 1 and
batch B."""
import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from fadenn_tf.benchmark.machine import median_seconds
from fadenn_tf.deploy.saved_model import export_saved_model
from fadenn_tf.deploy.tflite import convert_tflite


TFLITE_OPTIONS = ("1thread", "no-xnnpack", "latest")


def _tflite_interpreter(content, num_threads, option=None):
    """LiteRT interpreter on `num_threads` threads. option: None; "1thread" (LiteRT's default
    when num_threads is not given, as fadenn_tf.deploy.litert.load_tflite does); "no-xnnpack"
    (builtin kernels without the default XNNPACK delegate); "latest" (XNNPACK with
    experimental_default_delegate_latest_features)."""
    if option not in (None,) + TFLITE_OPTIONS:
        raise ValueError(f"unknown TFLite option {option!r}; choose {', '.join(TFLITE_OPTIONS)}")
    kw = {"model_content": bytes(content), "num_threads": 1 if option == "1thread" else num_threads}
    if option == "no-xnnpack":
        kw["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    if option == "latest":
        kw["experimental_default_delegate_latest_features"] = True
    return Interpreter(**kw)


def bench_callable(fn, x1, xb, repeats=5, warmup=2):
    """(ms per face at batch 1, images/s at batch len(xb)) of fn(x) (which must return
    host arrays or tensors it has synchronised)."""
    lat = median_seconds(lambda: fn(x1), max(repeats, 10), warmup) * 1e3
    sec = median_seconds(lambda: fn(xb), repeats, warmup)
    return lat, len(xb) / sec


def _sync(out):
    """Force host results (TF is asynchronous only in appearance on CPU, but be explicit)."""
    return {k: np.asarray(v) for k, v in out.items()}


def keras_predict_fn(model):
    """Compiled predict function images [B,S,S,3] float32 0..255 -> outputs (host); the
    model scales its input itself, as in the SavedModel's serving_default."""
    s = int(model.inputs[0].shape[1])

    @tf.function(input_signature=[tf.TensorSpec([None, s, s, 3], tf.float32)])
    def predict(images):
        return model(images, training=False)
    return lambda x: _sync(predict(tf.constant(x)))


def tflite_predict_fn(interpreter):
    """images [B,S,S,3] float32 0..255 -> outputs, through the serving_default runner."""
    runner = interpreter.get_signature_runner("serving_default")
    (name,) = runner.get_input_details()
    return lambda x: runner(**{name: x})


def bench_inference(model, crops, settings, num_threads=None, workdir=None,
                    representative=None):
    """Rows {path, latency_ms_b1, images_per_s, ...} for each inference path of `model`
    (an end-to-end FADeNN-interface Keras model) in settings.infer_paths (keras |
    saved_model | tflite_<float32|float16|dynamic_int8|int8>[@<TFLITE_OPTIONS>]), timed with
    settings.repeats and settings.warmup (benchmark.settings.Settings). crops [N,S,S,3]
    float32 0..255 (N >= 1; tiled to settings.infer_batch). Paths that cannot run give a row
    with "error"."""
    paths, batch = settings.infer_paths, settings.infer_batch
    repeats, warmup = settings.repeats, settings.warmup
    x1 = np.ascontiguousarray(crops[:1], np.float32)
    reps = int(np.ceil(batch / len(crops)))
    xb = np.ascontiguousarray(np.concatenate([crops] * reps)[:batch], np.float32)
    rows = []
    saved = None
    converted = {}
    tmp = tempfile.TemporaryDirectory(dir=workdir)
    try:
        for path in paths:
            row = {"path": path}
            try:
                t0 = time.perf_counter()
                if path == "keras":
                    fn = keras_predict_fn(model)
                elif path == "saved_model" or path.startswith("tflite_"):
                    if saved is None:
                        saved = export_saved_model(model, Path(tmp.name) / "sm", 1)
                    if path == "saved_model":
                        sig = tf.saved_model.load(str(saved)).signatures["serving_default"]
                        fn = (lambda s: lambda x: _sync(s(images=tf.constant(x))))(sig)
                    else:
                        variant, _, option = path[len("tflite_"):].partition("@")
                        if variant not in converted:
                            converted[variant] = convert_tflite(saved, variant,
                                                                       representative)
                        content = converted[variant]
                        row["size_mb"] = len(content) / 1e6
                        fn = tflite_predict_fn(_tflite_interpreter(content, num_threads,
                                                                   option or None))
                else:
                    raise ValueError(f"unknown inference path {path!r}")
                row["prepare_s"] = time.perf_counter() - t0
                row["latency_ms_b1"], row["images_per_s"] = bench_callable(
                    fn, x1, xb, repeats, warmup)
                row["batch"] = batch
            except Exception as exc:  # report, do not abort the whole benchmark
                row["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
            rows.append(row)
    finally:
        tmp.cleanup()
    return rows
