"""FADeNN-S/M on crops through routed LiteRT parts (RoutedLiteRTModel, kind "litert-routed").

Per crop: classify -> expert_c only when the class c > 0 (class 0, clean, skips denoising)
-> landmarks. The single-graph TFLite runs all 4 experts on every crop and selects one
(models.experts); this runs one, so a noisy crop costs about classify + 1 expert +
landmarks and a clean one classify + landmarks. The outputs equal the model's to float
rounding. The parts come from deploy.routed (a folder written by export --tflite-routed,
or converted while loading: fadenn_tf.load(path, backend="litert")).
"""
import numpy as np

from fadenn_tf.deploy.routed import RoutedRunner
from fadenn_tf.inference.crop_model import CropModel, crop_geometry


class RoutedLiteRTModel(CropModel):
    """Routed FADeNN-S/M parts as a callable on crops: crops [B,S,S,3] float32 0..255 ->
    {"landmarks" [B,68,2] crop pixels, "noise_probs" [B,5], "denoised" [B,S,S,3] 0..255
    (the crop itself for class 0)} as NumPy arrays, through deploy.routed.RoutedRunner
    (`parts`): parts with a dynamic batch (the shipped ones) take all crops of a call in one
    invoke per part, parts converted at batch 1 run one crop at a time. interpreters:
    {part name: LiteRT interpreter} (see RoutedRunner). tflite_bytes: {part name: bytes}
    when converted while loading (deploy.routed.write_routed saves a folder), else None.
    Raises DataError naming `path` when a part is missing or has the wrong inputs or
    outputs. metadata / metadata_file: as inference.litert.LiteRTModel's (size and
    crop_scale)."""

    kind = "litert-routed"
    has_classifier = True
    has_denoiser = True

    def __init__(self, interpreters, path="<tflite bytes>", label="litert-routed",
                 metadata=None, metadata_file=None):
        self.path, self.label = str(path), label
        self.tflite_bytes = None
        self.parts = RoutedRunner(interpreters, path)
        self.metadata = dict(metadata or {})
        self.size, self.crop_scale = crop_geometry(metadata, metadata_file or path,
                                                   self.parts.size)

    def __call__(self, crops):
        x = np.asarray(crops, np.float32)
        if x.ndim != 4 or x.shape[1:] != (self.size, self.size, 3):
            raise ValueError(f"expected crops [B, {self.size}, {self.size}, 3], got {x.shape}")
        if not len(x):
            return {"landmarks": np.zeros((0, 68, 2), np.float32),
                    "noise_probs": np.zeros((0, 5), np.float32), "denoised": x.copy()}
        _, probs, den, lm = self.parts.route_batch(np.ascontiguousarray(x))
        return {"landmarks": lm, "noise_probs": probs, "denoised": den}
