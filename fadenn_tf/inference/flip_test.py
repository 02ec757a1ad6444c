"""Test-time flip averaging: a CropModel that runs its base model on each crop and on the
crop's mirror image and averages the two fits.

    model = FlipAveraged(load_any("pretrained"))   # or load_any(..., flip_test=True)

Landmarks of the mirrored crop are mapped back (u = S - 1 - u', indices through FLIP_PERM)
and averaged with the direct fit; noise_probs are averaged; "denoised" is the direct crop's.
It costs two model calls per batch. Works with any CropModel (Keras, SavedModel, LiteRT,
including fixed batch-1 LiteRT models, since each half is its own call).
"""
import numpy as np

from fadenn_tf.data.landmarks68 import flip_landmarks
from fadenn_tf.inference.crop_model import CropModel


def unflip_landmarks(points, size):
    """[B,68,2] landmarks fitted on mirrored S x S crops -> the same points in the original
    crops (mirroring is its own inverse: data.landmarks68.flip_landmarks)."""
    return flip_landmarks(points, size)


class FlipAveraged(CropModel):
    """`base` (a CropModel) with test-time flip averaging; every other attribute (size, path,
    label, metadata, ...) is the base model's."""

    flip_test = True
    fn = None          # not the base's: this model is no single tf.function

    def __init__(self, base):
        self.base = base

    @property
    def crop_scale(self):
        """The base model's crop (CropModel's class default would hide it)."""
        return self.base.crop_scale

    def on_device(self, device):
        """Flip averaging of the base model moved to `device` (CropModel.on_device)."""
        return FlipAveraged(self.base.on_device(device))

    @property
    def kind(self):
        """The base model's kind + "+flip-test" (what results.json records)."""
        return f"{self.base.kind}+flip-test"

    def __getattr__(self, name):
        if name == "base":
            raise AttributeError(name)
        return getattr(self.base, name)

    def __call__(self, crops):
        """crops [B,S,S,3] pixels 0..255 -> dict of NumPy arrays, as the base model's."""
        crops = np.asarray(crops, np.float32)
        direct, mirrored = self.base(crops), self.base(crops[:, :, ::-1].copy())
        pts = 0.5 * (np.asarray(direct["landmarks"], np.float64)
                     + unflip_landmarks(mirrored["landmarks"], self.size))
        probs = direct.get("noise_probs")
        if probs is not None:
            probs = 0.5 * (np.asarray(probs) + np.asarray(mirrored["noise_probs"]))
        den = direct.get("denoised")
        return {"landmarks": pts, "noise_probs": probs,
                "denoised": None if den is None else np.asarray(den)}
