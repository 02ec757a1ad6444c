"""TFLite conversion of an exported SavedModel: float32, float16, dynamic_int8 and int8
variants, builtin ops only, float32 I/O (run them with fadenn_tf.deploy.litert)."""
import tempfile
from pathlib import Path

import numpy as np

from fadenn_tf.utils.lazy import lazy_import
tf = lazy_import("tensorflow")

from fadenn_tf.deploy.litert import check_builtin_only, load_tflite
from fadenn_tf.deploy.saved_model import fixed_batch_saved_model
from fadenn_tf.deploy.signatures import SERVING_SIGNATURE
from fadenn_tf.utils.atomic import atomic_path, write_json_atomic


TFLITE_VARIANTS = ("float32", "float16", "dynamic_int8", "int8")


def convert_tflite(saved_model_dir, variant, representative=None, batch_size=None,
                   model=None, endpoint=None):
    """Convert the SavedModel's serving_default to TFLite bytes (builtin ops only).

    variant: float32 | float16 (fp16 weights) | dynamic_int8 (int8 weights, float
    activations) | int8 (full integer: weights and activations int8, calibrated on
    `representative` [N,S,S,3] 0..255; float32 input/output tensors).
    batch_size: None keeps the SavedModel's dynamic batch; an int converts `model` (the Keras
    model the SavedModel came from, required then) at that fixed batch: every shape folds
    to a constant, so no SHAPE/STRIDED_SLICE/PACK chains split the XNNPACK delegate; the
    TFLite then runs only at that batch (its reshapes are baked in). saved_model_dir=None
    with `model` and batch_size=None converts `model` with a dynamic batch (one invoke
    for several crops; about as fast at batch 1 with LiteRT 2.3). endpoint: the signature
    maker for that conversion (saved_model.fixed_batch_saved_model; default: serving_default's
    FADeNN outputs). Raises RuntimeError naming the variant when the model needs non-builtin
    (Flex) ops."""
    if variant not in TFLITE_VARIANTS:
        raise ValueError(f"unknown TFLite variant {variant!r}; choose {', '.join(TFLITE_VARIANTS)}")
    if batch_size is not None or (saved_model_dir is None and model is not None):
        if model is None:
            raise ValueError("a fixed-batch TFLite conversion needs the Keras model")
        with tempfile.TemporaryDirectory() as tmp:
            fixed = fixed_batch_saved_model(model, Path(tmp) / "fixed", batch_size, endpoint)
            return convert_tflite(fixed, variant, representative)
    conv = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir),
                                                    signature_keys=[SERVING_SIGNATURE])
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if variant != "float32":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "float16":
        conv.target_spec.supported_types = [tf.float16]
    if variant == "int8":
        if representative is None or len(representative) == 0:
            raise ValueError("full int8 needs representative images")
        rep = np.asarray(representative, dtype=np.float32)

        def gen():
            for x in rep:
                yield {"images": x[None]}
        conv.representative_dataset = gen
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.float32
        conv.inference_output_type = tf.float32
    try:
        return conv.convert()
    except Exception as exc:  # converter errors are ConverterError/RuntimeError/ValueError
        raise RuntimeError(f"TFLite {variant} conversion failed with builtin ops only "
                           f"(no Flex): {str(exc)[:2000]}") from exc


def write_tflite_variants(saved_model_dir, out_dir, variants, representative=None,
                          batch_size=None, model=None, metadata=None):
    """Convert and write each variant to out_dir/fadenn_<variant>.tflite (atomic), checking
    that it loads in LiteRT with builtin ops only (batch_size/model: see convert_tflite).
    metadata: the model's metadata dict (its SavedModel's model.json), written first as
    fadenn_<variant>.json beside each file (atomic) so a LiteRT load crops as the model
    does (crop_scale, input_size); None writes none. Returns {variant: Path}."""
    out_dir = Path(out_dir)
    paths = {}
    for v in variants:
        data = convert_tflite(saved_model_dir, v, representative, batch_size, model)
        check_builtin_only(load_tflite(data), f"{out_dir}/fadenn_{v}.tflite")
        path = out_dir / f"fadenn_{v}.tflite"
        if metadata is not None:
            write_json_atomic(path.with_suffix(".json"), metadata)
        with atomic_path(path) as tmp:
            Path(tmp).write_bytes(data)
        paths[v] = path
    return paths
