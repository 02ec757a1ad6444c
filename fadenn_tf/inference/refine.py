"""The photo path's second pass (`predict(..., refine=...)`, `predict --refine`): a face is
cut again on the tight box of its first fit's landmarks and fitted again. By default
("auto") the faces a detector found get it; given boxes do not (True: every face).

A detector's box sits about the face differently from the landmark box the models are
trained around (a shift of ~5% of the box and a size off by up to 10%: the training jitter
only partly covers it); the first fit's landmark box is much closer to it. On the AFW photos
the second pass brings the end-to-end error to about the error with the ground-truth box
given, for twice the model's time (docs/results.md, experiments/photo_end_to_end.py).
"""
import time

import numpy as np

from fadenn_tf.data.crop import landmark_box
from fadenn_tf.inference.crop_model import FaceCrops

REFINE_CHOICES = ("auto", True, False)


def check_refine(refine):
    """`refine` if it is "auto", True or False (REFINE_CHOICES); ValueError otherwise."""
    if not any(refine is c or (isinstance(c, str) and refine == c) for c in REFINE_CHOICES):
        raise ValueError(f"refine must be 'auto', True or False, got {refine!r}")
    return refine


def refit(model, images, fits, batch_size=32):
    """Second pass of `model` (a CropModel) over the first `fits` (one BoxFits per image of
    `images`, (H, W, 3) uint8 RGB, from model.fit_crops) -> one new BoxFits per image.

    Each face is re-cropped on landmark_box of its first landmarks (pixel-edge image
    coords) and all faces are fitted in one batched pass. A face whose first landmarks are
    not finite, or whose landmark box is unusable (no area inside the image), keeps its
    first fit. BoxFits.seconds is the sum of both passes and of the second crops; regions
    are the second crops."""
    t0 = time.perf_counter()
    faces, redo = [], []
    for image, fit in zip(images, fits):
        pieces, kept = [], []
        for k, points in enumerate(fit.landmarks):
            if not np.isfinite(points).all():
                continue
            try:
                pieces.append(model.crop_faces(image, landmark_box(points)[None]))
            except ValueError:
                continue
            kept.append(k)
        faces.append(FaceCrops(
            np.concatenate([c.pixels for c in pieces]) if pieces else
            np.zeros((0, model.size, model.size, 3), np.float32),
            np.concatenate([c.regions for c in pieces]) if pieces else np.zeros((0, 4))))
        redo.append(kept)
    crop_s = (time.perf_counter() - t0) / max(1, len(images))
    second = model.fit_crops(faces, batch_size)
    out = []
    for fit, new, kept in zip(fits, second, redo):
        lm, regions = fit.landmarks.copy(), fit.regions.copy()
        probs = None if fit.noise_probs is None else fit.noise_probs.copy()
        denoised = None if fit.denoised is None else fit.denoised.copy()
        for j, k in enumerate(kept):
            lm[k], regions[k] = new.landmarks[j], new.regions[j]
            if probs is not None:
                probs[k] = new.noise_probs[j]
            if denoised is not None and new.denoised is not None:
                denoised[k] = new.denoised[j]
        out.append(type(fit)(lm, probs, regions, denoised, fit.seconds + new.seconds + crop_s))
    return out
