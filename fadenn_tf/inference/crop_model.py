"""CropModel: what every landmark model on 0..255 crops offers once it has `size`,
`crop_scale` and `__call__`: batched prediction, its crop of a face box, fitting face boxes
of an image (the one place that maps crop landmarks back to the image) and the resize of
the evaluation's reference crops to its input.

The crop geometry is the model's own, read from its metadata (model.json beside the model,
fadenn_tf.models.io) by `crop_geometry`: `input_size` S, the crop side, and `crop_scale`,
the crop region as a multiple of the face box (grown about its centre, then clipped to the
image: fadenn_tf.data.crop). A model without metadata, or metadata without crop_scale
(older files), crops at fadenn_tf.data.crop.CROP_SCALE (2.0).

    fits = model.fit_boxes(image, [[x0, y0, x1, y1], ...])   # (H, W, 3) uint8 RGB
    fits.landmarks, fits.noise_probs, fits.regions           # (K,68,2) image pixels, ...
"""
import math
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np

from fadenn_tf.data.crop import CROP_SCALE, CropTransform, checked_crop_scale, crop_image
from fadenn_tf.errors import DataError


def crop_geometry(metadata, where, graph_size):
    """(S, crop_scale) of a model: S its crop side, `input_size` of `metadata` (a dict, or
    None for none) else `graph_size` (the side its graph takes; None when unknown);
    crop_scale > 0 from `metadata`, CROP_SCALE (2.0) when absent. Raises DataError naming
    `where` (the metadata file) when crop_scale is not a number > 0, or input_size is not
    an integer >= 2 or differs from graph_size."""
    meta = metadata or {}
    scale = checked_crop_scale(meta.get("crop_scale", CROP_SCALE), where)
    size = meta.get("input_size")
    if size is None:
        size = graph_size
    elif isinstance(size, bool) or not isinstance(size, int) or size < 2:
        raise DataError(where, f"input_size must be an integer >= 2, got {size!r}")
    elif graph_size is not None and int(graph_size) != size:
        raise DataError(where, f"input_size {size} does not match the model, whose input is "
                               f"{int(graph_size)} x {int(graph_size)}")
    return (None if size is None else int(size)), float(scale)


@dataclass
class FaceCrops:
    """Faces of one image cut for a model (CropModel.crop_faces). pixels: (K, S, S, 3)
    float32 0..255. regions: (K, 4) float64 (x0, y0, x1, y1) pixel-edge image coords of
    each crop (crop_scale x its face box, clipped to the image)."""
    pixels: np.ndarray
    regions: np.ndarray

    def __len__(self):
        return len(self.regions)


@dataclass
class BoxFits:
    """The fits of K face boxes of one image (CropModel.fit_boxes / fit_crops).
    landmarks: (K, 68, 2) float64 0-based pixel-centre IMAGE coords; noise_probs: (K, 5)
    float64 or None (no classifier); regions: (K, 4) the crop regions (FaceCrops.regions);
    denoised: (K, S, S, 3) float32 0..255 crop pixels or None (no denoiser); seconds: the
    model's time for these faces (their share of the batched calls)."""
    landmarks: np.ndarray
    noise_probs: Optional[np.ndarray]
    regions: np.ndarray
    denoised: Optional[np.ndarray] = None
    seconds: float = 0.0


class CropModel:
    """What every landmark model on crops offers once it has `size` (S), `crop_scale` and
    `__call__` (crops [B,S,S,3] float32 pixels 0..255 -> dict with "landmarks" [B,68,2] crop
    pixels, "noise_probs" [B,5] or None, "denoised" [B,S,S,3] 0..255 or None): batched
    prediction, its crop, fitting face boxes and the reference-crop resize. LoadedModel
    (Keras, SavedModel), inference.litert.LiteRTModel and inference.routed.
    RoutedLiteRTModel share it; their loaders set size and crop_scale from the model's
    metadata (crop_geometry)."""

    crop_scale = CROP_SCALE

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

    def warm_up(self):
        """Run the model once on a blank crop (so later timings exclude the first call's
        set-up); returns the seconds it took."""
        t0 = time.perf_counter()
        self(np.zeros((1, self.size, self.size, 3), np.float32))
        return time.perf_counter() - t0

    def on_device(self, device):
        """This model running on TensorFlow `device`. Only Keras and SavedModel models
        (LoadedModel) run on a chosen device: raises ValueError here."""
        raise ValueError(f"{self.path}: a {self.kind} model runs through LiteRT on the CPU; "
                         f"device={device!r} applies to the keras backend only")

    # ------------------------------------------------------------------------ the crop
    def _transform(self, image_hw, box):
        return CropTransform.from_box(box, image_hw, self.size, scale=self.crop_scale)

    def crop(self, image, box):
        """Cut face `box` (x0, y0, x1, y1) pixel-edge coords from an (H,W,3) uint8 RGB image
        with this model's crop -> (crop (S,S,3) float32 0..255, region (4,) float64 pixel-
        edge image coords). Raises ValueError when the box has no area or lies outside the
        image."""
        faces = self.crop_faces(image, np.asarray(box, np.float64).reshape(1, 4))
        return faces.pixels[0], faces.regions[0]

    def crop_faces(self, image, boxes):
        """Cut face `boxes` (K, 4) (x0, y0, x1, y1) pixel-edge coords from an (H,W,3) uint8
        RGB image -> FaceCrops: each region is crop_scale x its box, clipped to the image,
        resized to S x S (fadenn_tf.data.crop). Raises ValueError naming the box when one
        has no area or lies outside the image."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        h, w = np.shape(image)[:2]
        pixels, regions = [], []
        for box in boxes:
            try:
                tr = self._transform((h, w), box)
            except ValueError as exc:
                raise ValueError(f"box {np.round(box, 2).tolist()} is unusable for the {w}x{h} "
                                 f"image: {exc}") from None
            pixels.append(crop_image(image, tr).astype(np.float32))
            regions.append(tr.region)
        return FaceCrops(np.stack(pixels) if pixels else
                         np.zeros((0, self.size, self.size, 3), np.float32),
                         np.stack(regions) if regions else np.zeros((0, 4)))

    # ------------------------------------------------------------------------- fitting
    def fit_crops(self, faces, batch_size=32):
        """Fit the FaceCrops of several images in batches of `batch_size` crops (faces of
        different images share a batch) -> one BoxFits per FaceCrops, the landmarks mapped
        back to each image through the exact inverse of its crop."""
        faces = list(faces)
        counts = [len(f) for f in faces]
        pixels = (np.concatenate([f.pixels for f in faces]) if sum(counts) else
                  np.zeros((0, self.size, self.size, 3), np.float32))
        t0 = time.perf_counter()
        out = self.predict_crops(pixels, batch_size)
        per_face = (time.perf_counter() - t0) / max(1, len(pixels))
        regions = (np.concatenate([f.regions for f in faces]) if sum(counts) else
                   np.zeros((0, 4)))
        image_lm = np.array([CropTransform(r, self.size).invert(p)
                             for r, p in zip(regions, out["landmarks"])]).reshape(-1, 68, 2)
        probs = out["noise_probs"]
        probs = None if probs is None else np.asarray(probs, np.float64)
        fits, start = [], 0
        for f, n in zip(faces, counts):
            part = slice(start, start + n)
            fits.append(BoxFits(image_lm[part], None if probs is None else probs[part],
                                f.regions, None if out["denoised"] is None
                                else out["denoised"][part], per_face * n))
            start += n
        return fits

    def fit_boxes(self, image, boxes, batch_size=32):
        """Landmarks of the faces in `boxes` (K, 4) (x0, y0, x1, y1) pixel-edge coords of an
        (H,W,3) uint8 RGB image: this model's crop -> model -> inverse crop -> BoxFits
        (landmarks (K,68,2) image pixels, noise_probs, the crop regions, denoised crops).
        Raises ValueError naming the box when one has no area or lies outside the image."""
        return self.fit_crops([self.crop_faces(image, boxes)], batch_size)[0]

    def fit_box(self, image, box):
        """One face: (landmarks (68,2) float64 image pixels, noise_probs (5,) or None) for
        `box` (fit_boxes). Raises ValueError when the box has no area or lies outside."""
        fit = self.fit_boxes(image, np.asarray(box, np.float64).reshape(1, 4))
        return fit.landmarks[0], None if fit.noise_probs is None else fit.noise_probs[0]

    # ---------------------------------------------------------------- evaluation input
    def from_reference(self, crops, boxes=None, reference_scale=CROP_SCALE):
        """The evaluation's reference crops [B,R,R,3] float 0..255 (reference_scale x the
        face box, clipped, at side R: fadenn_tf.noise) -> this model's input [B,S,S,3]
        float32 0..255: the crops resized (noise.to_model_size) when the model crops at
        reference_scale, else each crop's window (noise.model_windows of `boxes` [B,4], the
        face boxes in reference-crop edge coordinates) resampled to S. Points predicted on
        the result go back with noise.reference_points. Raises ValueError when the model
        crops wider than the reference crops, or tighter without `boxes`."""
        from fadenn_tf import noise  # lazy: TensorFlow (the LiteRT path has none)
        size = int(np.shape(crops)[1])
        if math.isclose(float(reference_scale), self.crop_scale):
            return np.asarray(noise.to_model_size(crops, self.size), np.float32)
        if self.crop_scale > float(reference_scale):
            raise ValueError(f"{self.path} crops {self.crop_scale:g} x the face box "
                             f"(crop_scale in its metadata) but the reference crops are "
                             f"{float(reference_scale):g} x the box: they cannot be resized "
                             f"to its input")
        if boxes is None:
            raise ValueError(f"{self.path} crops {self.crop_scale:g} x the face box, inside "
                             f"reference crops of {float(reference_scale):g} x the box: its "
                             f"window needs the face boxes (boxes=)")
        windows = noise.model_windows(np.asarray(boxes, np.float32), size, self.crop_scale)
        return np.asarray(noise.to_model_input(crops, self.size, windows), np.float32)
