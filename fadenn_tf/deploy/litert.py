"""Run exported TFLite models with the LiteRT interpreter (`ai_edge_litert`).

Every FADeNN TFLite file has one signature, "serving_default", with the same interface as the
SavedModel's serving_default:
  input  "images"      float32 [B,S,S,3] RGB in 0..255 (B is dynamic)
  output "landmarks"   float32 [B,68,2] 0-based pixel coordinates in the S x S crop
         "noise_probs" float32 [B,5]
         "denoised"    float32 [B,S,S,3] RGB in 0..255
The full-int8 variant keeps this float32 interface (quantise/dequantise ops at the edges).
`tf.lite.Interpreter` is deprecated; this module uses `ai_edge_litert.interpreter`.
fadenn_tf.inference.litert.LiteRTModel runs such a file as a model on crops.
"""
import os
import statistics
import time
from pathlib import Path

import ai_edge_litert.interpreter as litert_interpreter
import numpy as np

from fadenn_tf.errors import DataError

SIGNATURE = "serving_default"
_NON_BUILTIN_PREFIXES = ("Flex", "CUSTOM")


def default_num_threads():
    """CPU cores this process may use (sched affinity where available, else os.cpu_count())."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def load_tflite(model, num_threads=None):
    """LiteRT Interpreter for a .tflite path or the model's bytes, on `num_threads` threads
    (None: every usable core, default_num_threads(); LiteRT's own default would be ONE thread.
    On a busy shared host 1 thread can be faster: XNNPACK's pool waits on the busy core).
    Raises DataError naming the file when it is missing or not a TFLite flatbuffer."""
    num_threads = default_num_threads() if num_threads is None else int(num_threads)
    if isinstance(model, (bytes, bytearray)):
        where, kwargs = "<tflite bytes>", {"model_content": bytes(model)}
    else:
        where = Path(model)
        if not where.is_file():
            raise DataError(where, "TFLite model file not found")
        kwargs = {"model_path": str(where)}
    try:
        return litert_interpreter.Interpreter(num_threads=num_threads, **kwargs)
    except (ValueError, RuntimeError) as exc:
        raise DataError(where, f"not a loadable TFLite model ({exc})") from exc


def op_names(interpreter):
    """Sorted set of the operator names in the model (e.g. "CONV_2D", "SELECT_V2")."""
    return sorted({d["op_name"] for d in interpreter._get_ops_details()})


def non_builtin_ops(interpreter):
    """Operators that are not TFLite builtins (Flex/select-TF ops, custom ops); [] if none.
    "DELEGATE" (XNNPACK's fused partitions, applied at load) counts as builtin."""
    return [n for n in op_names(interpreter)
            if n.startswith(_NON_BUILTIN_PREFIXES) or n.lower().startswith("flex")]


def check_builtin_only(interpreter, where="<tflite>"):
    """Raise DataError(where, ...) when the model uses Flex or custom ops (they need the
    select-TF-ops runtime, which LiteRT's default build lacks). Returns the op names."""
    bad = non_builtin_ops(interpreter)
    if bad:
        raise DataError(where, f"uses non-builtin TFLite ops {bad}: the model would need the "
                               f"Flex delegate; only builtin ops are supported")
    return op_names(interpreter)


def signature_io(interpreter, signature=SIGNATURE):
    """{"inputs": {name: (shape, dtype)}, "outputs": {...}} of a signature (shapes as lists)."""
    runner = interpreter.get_signature_runner(signature)
    return {side: {k: (list(map(int, v["shape"])), np.dtype(v["dtype"]).name)
                   for k, v in details.items()}
            for side, details in (("inputs", runner.get_input_details()),
                                  ("outputs", runner.get_output_details()))}


class TFLiteRunner:
    """One signature of a LiteRT interpreter, driven directly (set_tensor / invoke /
    get_tensor): no signature-runner checks per call, and the input is resized only when
    the batch size changes, so a call costs little more than the model's compute.
    runner(x) -> {output name: NumPy copy}; x [B, ...] float32 C-contiguous.
    input_shape: the input's shape as converted; fixed_batch: its batch when the file was
    converted at a fixed batch (the file then runs only at that batch), else None.
    Raises DataError naming `where` when the signature is missing or has several inputs."""

    def __init__(self, interpreter, where="<tflite bytes>", signature=SIGNATURE):
        self.interpreter = interpreter
        sig = interpreter._get_full_signature_list().get(signature)
        if sig is None or len(sig["inputs"]) != 1:
            raise DataError(where, f"TFLite model has no one-input {signature} signature")
        (self._in,) = sig["inputs"].values()
        self.outputs = dict(sig["outputs"])
        inp = next(d for d in interpreter.get_input_details() if d["index"] == self._in)
        self.input_shape = tuple(int(v) for v in inp["shape"])
        self.fixed_batch = None if int(inp["shape_signature"][0]) < 0 else self.input_shape[0]
        interpreter.allocate_tensors()
        self._batch = int(interpreter.get_tensor(self._in).shape[0])

    def output_shape(self, name):
        """The current shape of output `name` (its batch is the last call's; before the
        first call of a dynamic-batch model, the shape as converted)."""
        index = self.outputs[name]
        try:
            return tuple(self.interpreter.get_tensor(index).shape)
        except ValueError:   # dynamic outputs hold no data before the first invoke
            d = next(d for d in self.interpreter.get_output_details() if d["index"] == index)
            return tuple(int(v) for v in d["shape"])

    def __call__(self, x):
        it = self.interpreter
        if x.shape[0] != self._batch:
            it.resize_tensor_input(self._in, list(x.shape), strict=False)
            it.allocate_tensors()
            self._batch = x.shape[0]
        it.set_tensor(self._in, x)
        it.invoke()
        return {k: it.get_tensor(i).copy() for k, i in self.outputs.items()}


def run_tflite(interpreter, images, batch_size=1, signature=SIGNATURE):
    """Run `images` [N,S,S,3] float32 0..255 through the signature in chunks of `batch_size`
    (the runner resizes the dynamic batch dimension). Returns {output name: [N,...] array}."""
    runner = interpreter.get_signature_runner(signature)
    (name,) = runner.get_input_details()
    images = np.asarray(images, dtype=np.float32)
    outs = {}
    for i in range(0, len(images), max(1, int(batch_size))):
        res = runner(**{name: images[i:i + batch_size]})
        for k, v in res.items():
            outs.setdefault(k, []).append(np.array(v))
    return {k: np.concatenate(v) for k, v in outs.items()}


def median_latency_ms(fn, repeats=20, warmup=3, clock=time.perf_counter):
    """Median wall time of fn() in milliseconds over `repeats` calls after `warmup` calls
    (clock=time.process_time: the CPU time of this process instead)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(1, int(repeats))):
        t0 = clock()
        fn()
        times.append((clock() - t0) * 1e3)
    return statistics.median(times)


def tflite_latency_ms(interpreter, image, repeats=20, warmup=3, signature=SIGNATURE):
    """Median latency (ms) of one batch-1 call on `image` [S,S,3] or [1,S,S,3] (0..255)."""
    runner = interpreter.get_signature_runner(signature)
    (name,) = runner.get_input_details()
    x = np.asarray(image, dtype=np.float32).reshape((1,) + np.shape(image)[-3:])
    return median_latency_ms(lambda: runner(**{name: x}), repeats, warmup)
