"""CropModel: what every landmark model on 0..255 crops offers (batched prediction, the one
crop transform, fitting a face box) once it has `size` and `__call__`."""
import numpy as np


class CropModel:
    """What every landmark model on crops offers once it has `size` (S) and `__call__`
    (crops [B,S,S,3] float32 pixels 0..255 -> dict with "landmarks" [B,68,2] crop pixels,
    "noise_probs" [B,5] or None, "denoised" [B,S,S,3] 0..255 or None): batched prediction,
    the one crop transform and fitting a face box. LoadedModel (Keras, SavedModel) and
    inference.litert.LiteRTModel share it."""

    def predict_crops(self, crops, batch_size=32):
        """Run the model over (N,S,S,3) crops of 0..255 pixels in batches -> dict of NumPy
        arrays: "landmarks" (N,68,2) float64 crop pixels, "noise_probs" (N,5) or None,
        "denoised" (N,S,S,3) float32 0..255 or None."""
        crops = np.asarray(crops)
        if crops.ndim != 4 or crops.shape[1:] != (self.size, self.size, 3):
            raise ValueError(f"crops must be [N,{self.size},{self.size},3] pixels 0..255 for "
                             f"{self.path}, got shape {crops.shape}")
        outs = {"landmarks": [], "noise_probs": [], "denoised": []}
        for i in range(0, len(crops), int(batch_size)):
            for k, v in self(crops[i:i + int(batch_size)]).items():
                if v is not None:
                    outs[k].append(np.asarray(v))
        res = {k: np.concatenate(v) if v else None for k, v in outs.items()}
        if res["landmarks"] is None:
            res["landmarks"] = np.zeros((0, 68, 2))
        res["landmarks"] = res["landmarks"].astype(np.float64)
        return res

    def crop(self, image, box):
        """Cut face `box` (x0, y0, x1, y1) pixel-edge coords from an (H,W,3) uint8 RGB image
        with the one crop transform -> (crop (S,S,3) float32 0..255, CropTransform). Raises
        ValueError when the box has no area or lies outside the image."""
        from fadenn_tf.data.crop import CropTransform, crop_image
        tr = CropTransform.from_box(box, image.shape[:2], self.size)
        return crop_image(image, tr).astype(np.float32), tr

    def fit_box(self, image, box):
        """Landmarks of the face in `box` (x0, y0, x1, y1 pixel-edge coords) of an (H,W,3)
        uint8 RGB image: crop -> model -> inverse crop transform. Returns (landmarks (68,2)
        float64 0-based pixel-centre IMAGE coords, noise_probs (5,) or None). Raises
        ValueError when the box has no area or lies outside the image."""
        crop, tr = self.crop(image, box)
        out = self(crop[None])
        probs = out["noise_probs"]
        return (tr.invert(np.asarray(out["landmarks"], np.float64)[0]),
                None if probs is None else np.asarray(probs, np.float64)[0])
