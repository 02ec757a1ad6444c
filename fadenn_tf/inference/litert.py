"""A TFLite landmark model run by LiteRT as a model on crops (LiteRTModel, kind "litert").

The interpreter helpers (load_tflite, TFLiteRunner, check_builtin_only, the TFLite signature)
live with the TFLite files they run, in fadenn_tf.deploy.litert. A FADeNN-S/M split into
parts that run only the chosen expert is inference.routed.RoutedLiteRTModel.
"""
import numpy as np

from fadenn_tf.deploy.litert import TFLiteRunner
from fadenn_tf.errors import DataError
from fadenn_tf.inference.crop_model import CropModel, crop_geometry


class LiteRTModel(CropModel):
    """A TFLite landmark model as a callable on crops, like fadenn_tf.inference.LoadedModel:
    crops [B, S, S, 3] float32 pixels 0..255 -> {"landmarks": [B, 68, 2] crop pixels,
    "noise_probs": [B, 5] or None, "denoised": [B, S, S, 3] 0..255 or None} (NumPy).

    Runs through deploy.litert.TFLiteRunner (direct tensor access, no resize while the batch
    size stays the same). A fixed-batch file (e.g. batch 1, the fastest on CPU) runs larger
    batches one crop at a time. kind = "litert". tflite_bytes: the model's bytes when it was
    converted while loading (write them to a .tflite file to skip the conversion next
    time), else None. metadata: the format-1 metadata of the model it was converted from
    (read from `metadata_file`; inference.litert_load finds it) or None; size and
    crop_scale come from it (crop_model.crop_geometry: without it the graph's input side
    and crop_scale 2.0).
    """

    kind = "litert"
    has_classifier = True

    def __init__(self, interpreter, path="<tflite bytes>", label="litert", metadata=None,
                 metadata_file=None):
        self.interpreter = interpreter
        self.path, self.label = str(path), label
        self.tflite_bytes = None
        self._run = TFLiteRunner(interpreter, path)
        outs = self._run.outputs
        if "landmarks" not in outs:
            raise DataError(path, f"TFLite signature has no 'landmarks' output "
                                  f"(outputs: {sorted(outs)})")
        self.has_classifier = "noise_probs" in outs
        self.metadata = dict(metadata or {})
        self.size, self.crop_scale = crop_geometry(metadata, metadata_file or path,
                                                   self._run.input_shape[1])
        self.fixed_batch = self._run.fixed_batch

    def __call__(self, crops):
        x = np.asarray(crops, np.float32)
        if x.ndim != 4 or x.shape[1:] != (self.size, self.size, 3):
            raise ValueError(f"expected crops [B, {self.size}, {self.size}, 3], got {x.shape}")
        step = self.fixed_batch or max(1, len(x))
        parts = [self._run(np.ascontiguousarray(x[i:i + step]))
                 for i in range(0, len(x), step)] if len(x) else []
        out = {k: (np.concatenate([p[k] for p in parts]) if parts else
                   np.zeros((0,) + self._run.output_shape(k)[1:], np.float32))
               for k in self._run.outputs}
        return {"landmarks": out["landmarks"], "noise_probs": out.get("noise_probs"),
                "denoised": out.get("denoised")}
