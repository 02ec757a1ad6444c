"""Landmarks on any image: the friendly prediction API (Predictor, load).

    import fadenn_tf
    predictor = fadenn_tf.load("runs/cpu")              # workdir, .keras or SavedModel
    results = predictor.predict(image)                  # (H, W, 3) uint8, RGB by default
    r = results[0]                                      # one ImageResult per image
    r.landmarks                                         # (68, 2) image pixels, or None
    r.box, r.box_source                                 # (x0, y0, x1, y1), "detector"/"given"
    r.noise_class, r.noise_name, r.noise_probs          # None for models without classifier

    predictor.predict([img_a, img_b], color="bgr")      # any sizes in one call (OpenCV BGR)
    predictor.predict(img, boxes=[x0, y0, x1, y1])      # a known face box, no detector
    predictor.predict(img, all_faces=True).faces        # every detected face, largest first
    predictor.predict_file("face.jpg")                  # read + predict one file

Coordinates: landmarks are 0-based pixel-centre (x, y) of the ORIGINAL image (the top-left
pixel's centre is (0, 0)); boxes are (x0, y0, x1, y1) pixel-edge coordinates, the tight
68-point landmark box convention the model was trained on (fadenn_tf.detect explains it and
how to adapt another detector's boxes).

How it works: each face is cropped with fadenn_tf.data.crop (the box grown to 2x, clipped,
resized to the model's input side), the crops of all images are batched through the model,
and the predicted crop landmarks are mapped back through the exact inverse transform.

Images without a face give an ImageResult with `landmarks is None` and `faces == []`, never
an exception. The default face detector is fadenn_tf.detect.DEFAULT_DETECTOR
(`detector="default"`, chosen from measurements on real faces, see the README); pass
"haar", "dlib", "haar+profile", any BoxProvider callable or a registered name instead.

Fast single-face path: `fadenn_tf.load(path, backend="litert")` runs a float32 TFLite copy
of the model with LiteRT (a .tflite path, a routed folder, or the model converted when
loading; a FADeNN-S/M is converted to routed parts that run only the chosen expert); the
Keras backend runs one crop through a compiled fixed-shape [1, S, S, 3] function.
"""
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fadenn_tf.inference.results import FaceResult, ImageResult

COLORS = ("rgb", "bgr")


@dataclass
class _Prepared:
    """An image checked, converted to RGB, with its face boxes and crops."""
    image: np.ndarray
    boxes: np.ndarray          # (K, 4)
    source: str
    crops: np.ndarray          # (K, S, S, 3) float32 pixels 0..255
    transforms: list
    t_detect: float
    t_crop: float


# ----------------------------------------------------------------------------- helpers

def to_rgb_uint8(image, color="rgb"):
    """Check one image and return it as a C-contiguous (H, W, 3) uint8 RGB array.

    image: (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) uint8 (alpha dropped). color: "rgb" or
    "bgr", the channel order of `image`. Raises ValueError on anything else.
    """
    c = str(color).lower()
    if c not in COLORS:
        raise ValueError(f"color must be 'rgb' or 'bgr', got {color!r}")
    img = np.asarray(image)
    if img.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image (0-255), got dtype {img.dtype}; convert "
                         "with np.clip(x, 0, 255).astype(np.uint8)")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] not in (3, 4) or img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f"expected an (H, W, 3) image, got shape {img.shape}")
    img = img[:, :, :3]
    if c == "bgr":
        img = img[:, :, ::-1]
    return np.ascontiguousarray(img)


def _split_images(images):
    """-> (list of arrays, single) where single means one image was given (not a batch)."""
    if isinstance(images, np.ndarray):
        if images.ndim == 4:
            return list(images), False
        return [images], True
    if isinstance(images, (list, tuple)):
        return list(images), False
    raise TypeError(f"images must be a NumPy image, a (B, H, W, 3) array or a list of "
                    f"images, got {type(images).__name__}")


def _split_boxes(boxes, n, single):
    """Per-image box entries (None = use the detector) for n images."""
    if boxes is None:
        return [None] * n
    if single:
        return [boxes]
    if isinstance(boxes, np.ndarray) and boxes.ndim == 2 and boxes.shape == (n, 4):
        return list(boxes)
    if not isinstance(boxes, (list, tuple, np.ndarray)) or len(boxes) != n:
        raise ValueError(f"boxes: expected one entry per image ({n}), got "
                         f"{len(boxes) if hasattr(boxes, '__len__') else type(boxes).__name__}")
    return list(boxes)


def _as_boxes(entry):
    b = np.asarray(entry, np.float64)
    if b.size == 0:
        return np.zeros((0, 4))
    if b.ndim == 1:
        b = b[None]
    if b.ndim != 2 or b.shape[1] != 4 or not np.isfinite(b).all():
        raise ValueError(f"a box must be 4 finite numbers (x0, y0, x1, y1), got {entry!r}")
    return b


# ---------------------------------------------------------------------------- predictor

class Predictor:
    """Landmarks for images of any size: detector (or given boxes) -> crop -> model -> image
    coordinates. Build it with `fadenn_tf.load(path)` (or `load` here).

    model: a fadenn_tf.inference.LoadedModel. detector: a BoxProvider (callable RGB image ->
    (K, 4) boxes, best first), a registered detector name (fadenn_tf.detect.get_detector,
    built on first use), or None (then every call must give boxes). device: a TensorFlow
    device string ("/CPU:0", "/GPU:0") the model runs on, None for TensorFlow's choice.
    failure_detector: a fadenn_tf.fitcheck.detector.FailureDetector scoring every
    face (FaceResult.fit_score), or None.
    """

    def __init__(self, model, detector="default", device=None, detector_kwargs=None,
                 failure_detector=None):
        self.model = model
        self.size = int(model.size)
        self.device = device
        self.failure_detector = failure_detector
        self._detector = detector
        self._detector_kwargs = dict(detector_kwargs or {})
        self._one = None           # concrete function for one crop [1, S, S, 3] (Keras)

    @property
    def detector(self):
        """The BoxProvider (a registered name is built here, on first use)."""
        if isinstance(self._detector, str):
            from fadenn_tf.detect import get_detector
            try:
                self._detector = get_detector(self._detector, **self._detector_kwargs)
            except TypeError as exc:
                raise ValueError(f"detector {self._detector!r} does not take the options "
                                 f"{sorted(self._detector_kwargs)}: {exc}") from None
        return self._detector

    @property
    def has_classifier(self):
        """True when the model predicts noise classes."""
        return bool(getattr(self.model, "has_classifier", False))

    def __repr__(self):
        det = self._detector if isinstance(self._detector, str) else type(self._detector).__name__
        return (f"Predictor(model={self.model.path!r}, kind={self.model.kind}, size={self.size}, "
                f"detector={det})")

    def warm_up(self):
        """Trace the model once for any batch size (so later timings exclude tracing);
        returns the seconds it took."""
        t0 = time.perf_counter()
        fn = getattr(self.model, "fn", None)
        if hasattr(fn, "get_concrete_function"):
            import tensorflow as tf
            try:
                fn.get_concrete_function(tf.TensorSpec([None, self.size, self.size, 3],
                                                       tf.float32))
            except (TypeError, ValueError):
                pass
        self.run_crops(np.zeros((1, self.size, self.size, 3), np.float32))  # first run
        return time.perf_counter() - t0

    # -------------------------------------------------------------------------- pieces
    def boxes_for(self, image, all_faces=False):
        """Detector boxes for an RGB uint8 image: (K, 4), largest first; K <= 1 unless
        all_faces. Raises ValueError if this predictor has no detector."""
        if self._detector is None:
            raise ValueError("no face detector configured (Predictor(detector=None)): pass "
                             "boxes=")
        b = np.asarray(self.detector(image), np.float64).reshape(-1, 4)
        return b if all_faces else b[:1]

    def prepare(self, image, boxes=None, color="rgb", all_faces=False):
        """Check/convert one image, find its faces and crop them (no model call).

        boxes: None (detector), (4,) or (K, 4) given boxes, or [] for 'no face'.
        Raises ValueError on a bad image or a given box with no area or outside the image.
        """
        img = to_rgb_uint8(image, color)
        t0 = time.perf_counter()
        if boxes is None:
            b, source = self.boxes_for(img, all_faces), "detector"
        else:
            b, source = _as_boxes(boxes), "given"
        t1 = time.perf_counter()
        crops, transforms = [], []
        for box in b:
            try:
                crop, tr = self.model.crop(img, box)
            except ValueError as exc:
                raise ValueError(f"{source} box {np.round(box, 2).tolist()} is unusable for "
                                 f"the {img.shape[1]}x{img.shape[0]} image: {exc}") from None
            crops.append(crop)
            transforms.append(tr)
        crops = (np.stack(crops) if crops else
                 np.zeros((0, self.size, self.size, 3), np.float32))
        return _Prepared(img, b, source, crops, transforms, t1 - t0, time.perf_counter() - t1)

    def _on_device(self, fn, *args):
        if self.device is None:
            return fn(*args)
        import tensorflow as tf
        with tf.device(self.device):
            return fn(*args)

    def _one_crop_function(self):
        """The model's function traced once for [1, S, S, 3] float32 (a concrete function:
        no retracing and no argument dispatch per call), or None for models without a
        tf.function (LiteRT, SavedModel)."""
        if self._one is None:
            fn = getattr(self.model, "fn", None)
            if not hasattr(fn, "get_concrete_function"):
                self._one = False
            else:
                import tensorflow as tf
                self._one = fn.get_concrete_function(
                    tf.TensorSpec([1, self.size, self.size, 3], tf.float32))
        return self._one or None

    def _call_model(self, crops):
        one = self._one_crop_function() if len(crops) == 1 else None
        if one is None:
            out = self.model(crops)
            return out["landmarks"], out["noise_probs"]
        import tensorflow as tf
        out = one(tf.constant(crops, tf.float32))
        return out["landmarks"], out.get("noise_probs")

    def run_crops(self, crops):
        """Model outputs for (N, S, S, 3) float32 crops of 0..255 pixels (one call, no
        batching): (landmarks (N, 68, 2) crop pixels, noise_probs (N, 5) or None). One crop
        runs through a function compiled for [1, S, S, 3] (the fast single-face path)."""
        lm, probs = self._on_device(self._call_model, crops)
        return (np.asarray(lm, np.float64),
                None if probs is None else np.asarray(probs, np.float64))

    def fit_box(self, image, box):
        """The model's fit_box through the single-crop fast path (run_crops) on this
        predictor's device: (landmarks (68, 2) image pixels, noise_probs (5,) or None) for
        face `box` of an RGB uint8 image; ValueError when the box lies outside the image."""
        crop, tr = self.model.crop(image, box)
        lm, probs = self.run_crops(crop[None])
        return tr.invert(lm[0]), None if probs is None else probs[0]

    def run(self, prepared, batch_size=32):
        """Batch the crops of prepared images through the model -> list of ImageResult."""
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        owners = [(i, k) for i, p in enumerate(prepared) for k in range(len(p.boxes))]
        all_crops = (np.concatenate([p.crops for p in prepared]) if owners
                     else np.zeros((0, self.size, self.size, 3), np.float32))
        lms, probs = [], []
        share = np.zeros(len(prepared))
        for s in range(0, len(owners), batch_size):
            t0 = time.perf_counter()
            lm, pr = self.run_crops(all_crops[s:s + batch_size])
            dt = time.perf_counter() - t0
            lms.append(lm)
            probs.append(pr)
            chunk = owners[s:s + batch_size]
            for i, _ in chunk:
                share[i] += dt / len(chunk)
        lm_all = np.concatenate(lms) if lms else np.zeros((0, 68, 2))
        pr_all = None if not probs or probs[0] is None else np.concatenate(probs)
        results = [ImageResult(image_shape=p.image.shape) for p in prepared]
        for j, (i, k) in enumerate(owners):
            p = prepared[i]
            pts = p.transforms[k].invert(lm_all[j])
            pr = None if pr_all is None else pr_all[j]
            score = None
            if self.failure_detector is not None and np.isfinite(pts).all():
                score = float(self.failure_detector.score(p.image, pts))
            results[i].faces.append(FaceResult(
                landmarks=pts, box=p.boxes[k].copy(), box_source=p.source,
                noise_class=None if pr is None else int(np.argmax(pr)), noise_probs=pr,
                fit_score=score))
        for r, p, m in zip(results, prepared, share):
            r.timing = {"detect": p.t_detect, "crop": p.t_crop, "model": float(m),
                        "total": p.t_detect + p.t_crop + float(m)}
        return results

    # ------------------------------------------------------------------------- the API
    def predict(self, images, boxes=None, color="rgb", batch_size=32, all_faces=False):
        """Landmarks for one image or many images of any sizes.

        images: one (H, W, 3) uint8 image (also (H, W) gray or (H, W, 4)), a (B, H, W, 3)
            array, or a list of images of mixed sizes.
        boxes: None -> the face detector (the largest face, or every face with all_faces);
            otherwise per image a box (x0, y0, x1, y1), a (K, 4) array of boxes or [] (no
            face): for one image give its entry directly, for a batch a list with one entry
            per image (None in the list = use the detector for that image).
        color: "rgb" (default) or "bgr" (e.g. straight from cv2.imread), the channel order
            of `images`.
        batch_size: crops per model call (all faces of all images are batched together).
        Returns a list with one ImageResult per image (also for a single image); an image
        without a face has `landmarks is None`.
        Raises ValueError for malformed images, colours or boxes.
        """
        imgs, single = _split_images(images)
        entries = _split_boxes(boxes, len(imgs), single)
        prepared = []
        for i, (img, entry) in enumerate(zip(imgs, entries)):
            try:
                prepared.append(self.prepare(img, entry, color, all_faces))
            except ValueError as exc:
                raise ValueError(f"image {i}: {exc}") from None
        return self.run(prepared, batch_size)

    def predict_file(self, path, boxes=None, all_faces=False):
        """Read an image file (fadenn_tf.data.images.read_image; DataError naming the file if
        it is unreadable) and predict it -> one ImageResult."""
        from fadenn_tf.data.images import read_image
        return self.predict(read_image(path), boxes=boxes, all_faces=all_faces)[0]


BACKENDS = ("keras", "litert", "litert-int8")


def load(path, detector="default", device=None, backend="keras", num_threads=None,
         failure_detector="auto", flip_test=False, **detector_kwargs):
    """Load a model for prediction -> Predictor.

    path: a training workdir, a .keras file or an exported SavedModel
    (fadenn_tf.inference.load_any); with backend="litert" also a .tflite file.
    detector: "default" (fadenn_tf.detect.DEFAULT_DETECTOR), "haar" (OpenCV's cascade),
    "dlib", a chain like "haar+profile", another registered name, a BoxProvider callable,
    or None (always pass boxes). device: e.g. "/CPU:0" or "/GPU:0", None for TensorFlow's
    default (keras backend only). backend: "keras" (TensorFlow) or "litert" (a float32
    TFLite model run by LiteRT: a .tflite path, or the model at `path` converted at batch 1
    when loading; num_threads: LiteRT threads, None = every usable core) or "litert-int8"
    (the same with int8 weights and float activations, dynamic_int8: ~3x faster on x86
    CPUs with VNNI, the same NME for pretrained-fll on held-out faces). detector_kwargs
    go to the named detector (e.g. min_neighbors=3). failure_detector: "auto" (default: the
    one shipped beside the model file, as with pretrained / pretrained-fll: every face gets
    a fit_score), None, a FailureDetector or a .npz path. flip_test: average each fit with
    the fit of the mirrored crop (inference.flip_test; about 2x the model's cost). Raises
    fadenn_tf.errors.DataError if no model is found.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend in ("litert", "litert-int8"):
        from fadenn_tf.inference.litert_load import load_litert
        model = load_litert(path, num_threads,
                            "dynamic_int8" if backend == "litert-int8" else "float32")
        if flip_test:
            from fadenn_tf.inference.flip_test import FlipAveraged
            model = FlipAveraged(model)
        return Predictor(model, detector, None, detector_kwargs,
                         _failure_detector(failure_detector, model))
    from fadenn_tf.inference.model import load_any
    if device is None:
        model = load_any(path, flip_test=flip_test)
    else:
        import tensorflow as tf
        with tf.device(device):
            model = load_any(path, flip_test=flip_test)
    return Predictor(model, detector, device, detector_kwargs,
                     _failure_detector(failure_detector, model))


def _failure_detector(spec, model):
    """load's failure_detector argument -> FailureDetector or None ("auto": the one shipped
    beside the model file)."""
    from fadenn_tf.fitcheck.detector import failure_detector_from_spec
    return failure_detector_from_spec(spec, getattr(model, "path", None))
