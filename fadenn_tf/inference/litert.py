"""A TFLite landmark model run by LiteRT as a model on crops (LiteRTModel, kind "litert").

The interpreter helpers (load_tflite, check_builtin_only, run_tflite, the TFLite signature)
live with the TFLite files they run, in fadenn_tf.deploy.litert.
"""
import numpy as np

from fadenn_tf.deploy.litert import SIGNATURE
from fadenn_tf.errors import DataError
from fadenn_tf.inference.crop_model import CropModel


class LiteRTModel(CropModel):
    """A TFLite landmark model as a callable on crops, like fadenn_tf.inference.LoadedModel:
    crops [B, S, S, 3] float32 pixels 0..255 -> {"landmarks": [B, 68, 2] crop pixels,
    "noise_probs": [B, 5] or None, "denoised": [B, S, S, 3] 0..255 or None} (NumPy).

    The interpreter is driven directly (set_tensor / invoke / get_tensor): no signature
    runner and no resize while the batch size stays the same, so one face costs little more
    than the model's compute. A fixed-batch file (e.g. batch 1, the fastest on CPU) runs
    larger batches one crop at a time. kind = "litert". tflite_bytes: the model's bytes when
    it was converted while loading (write them to a .tflite file to skip the conversion
    next time), else None.
    """

    kind = "litert"
    has_classifier = True

    def __init__(self, interpreter, path="<tflite bytes>", label="litert"):
        self.interpreter = interpreter
        self.path, self.label = str(path), label
        self.tflite_bytes = None
        sig = interpreter._get_full_signature_list().get(SIGNATURE)
        if sig is None or len(sig["inputs"]) != 1:
            raise DataError(path, f"TFLite model has no one-input {SIGNATURE} signature")
        (self._in,) = sig["inputs"].values()
        self._outs = dict(sig["outputs"])
        if "landmarks" not in self._outs:
            raise DataError(path, f"TFLite signature {SIGNATURE} has no 'landmarks' output "
                                  f"(outputs: {sorted(self._outs)})")
        self.has_classifier = "noise_probs" in self._outs
        inp = next(d for d in interpreter.get_input_details() if d["index"] == self._in)
        self.size = int(inp["shape"][1])
        self.fixed_batch = None if int(inp["shape_signature"][0]) < 0 else int(inp["shape"][0])
        interpreter.allocate_tensors()
        self._batch = int(interpreter.get_tensor(self._in).shape[0])

    def _invoke(self, x):
        it = self.interpreter
        if x.shape[0] != self._batch:
            it.resize_tensor_input(self._in, list(x.shape), strict=False)
            it.allocate_tensors()
            self._batch = x.shape[0]
        it.set_tensor(self._in, x)
        it.invoke()
        return {k: it.get_tensor(i).copy() for k, i in self._outs.items()}

    def __call__(self, crops):
        x = np.asarray(crops, np.float32)
        if x.ndim != 4 or x.shape[1:] != (self.size, self.size, 3):
            raise ValueError(f"expected crops [B, {self.size}, {self.size}, 3], got {x.shape}")
        step = self.fixed_batch or max(1, len(x))
        parts = [self._invoke(np.ascontiguousarray(x[i:i + step]))
                 for i in range(0, len(x), step)] if len(x) else []
        out = {k: (np.concatenate([p[k] for p in parts]) if parts else
                   np.zeros((0,) + tuple(self.interpreter.get_tensor(i).shape[1:]), np.float32))
               for k, i in self._outs.items()}
        return {"landmarks": out["landmarks"], "noise_probs": out.get("noise_probs"),
                "denoised": out.get("denoised")}
