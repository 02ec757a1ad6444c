"""Landmarks on any image: a friendly prediction API and the `predict` command.

Python API
----------
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
of the model with LiteRT (a .tflite path, or the model converted when loading); the Keras
backend runs one crop through a compiled fixed-shape [1, S, S, 3] function.

Command line
------------
    python -m fadenn_tf.predict IMAGE_OR_DIR... --model M --out DIR
        [--boxes FILE] [--detector default] [--no-equalize] [--detect-width PX] ...
        [--backend keras|litert] [--all-faces] [--batch-size 32] [--no-overlay]

Writes, per image NAME: NAME.pts (one face) or NAME_0.pts, NAME_1.pts ... (several faces,
largest first), NAME_overlay.png (landmarks and box drawn), and DIR/summary.json (per image:
faces, boxes, box source, noise class and probabilities, timing; images with no face and
unreadable images with their problem). Images in folders are found recursively and keep
their relative sub-folder under DIR. --boxes: a JSON or CSV boxes file
(fadenn_tf.detect.load_boxes_file); images it does not list use the detector. Exit status
(the same rule as `track`): 0 when at least one face was found, 1 when no face was found in
any input, 2 on bad arguments, model or boxes file.
"""
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import numpy as np
from fadenn_tf.utils.cli_args import positive_int
from fadenn_tf.utils.lock import one_writer, take_lock

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
COLORS = ("rgb", "bgr")


# ------------------------------------------------------------------------------- results

@dataclass
class FaceResult:
    """One face. landmarks (68, 2) float64 image pixels (0-based pixel centres); box
    (4,) float64 (x0, y0, x1, y1) edge coordinates; box_source "given" or "detector";
    noise_probs (5,) softmax over NOISE_NAMES or None; noise_class its argmax or None."""
    landmarks: np.ndarray
    box: np.ndarray
    box_source: str
    noise_class: Optional[int] = None
    noise_probs: Optional[np.ndarray] = None

    @property
    def noise_name(self):
        """Name of noise_class (fadenn_tf.noise.NOISE_NAMES), or None."""
        if self.noise_class is None:
            return None
        from fadenn_tf.noise import NOISE_NAMES
        return NOISE_NAMES[self.noise_class]

    def to_dict(self, landmarks=True):
        d = {"box": [float(v) for v in self.box], "box_source": self.box_source,
             "noise_class": self.noise_class, "noise_name": self.noise_name,
             "noise_probs": None if self.noise_probs is None
             else [float(v) for v in self.noise_probs]}
        if landmarks:
            d["landmarks"] = np.asarray(self.landmarks).round(3).tolist()
        return d


@dataclass
class ImageResult:
    """Result for one image: `faces` (largest / first given first, possibly empty) and the
    first face's fields as shortcuts (None when no face was found).

    timing: seconds spent on this image: "detect", "crop", "model" (its share of the batch
    by number of faces), "total" (their sum).
    """
    faces: List[FaceResult] = field(default_factory=list)
    image_shape: tuple = ()
    timing: dict = field(default_factory=dict)

    @property
    def found(self):
        return bool(self.faces)

    def _first(self, name):
        return getattr(self.faces[0], name) if self.faces else None

    @property
    def landmarks(self):
        return self._first("landmarks")

    @property
    def box(self):
        return self._first("box")

    @property
    def box_source(self):
        return self._first("box_source")

    @property
    def noise_class(self):
        return self._first("noise_class")

    @property
    def noise_name(self):
        return self._first("noise_name")

    @property
    def noise_probs(self):
        return self._first("noise_probs")


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
    """

    def __init__(self, model, detector="default", device=None, detector_kwargs=None):
        self.model = model
        self.size = int(model.size)
        self.device = device
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
        """The model's fit_box on this predictor's device: (landmarks (68, 2) image pixels,
        noise_probs (5,) or None) for face `box` of an RGB uint8 image; ValueError when the
        box lies outside the image."""
        return self._on_device(self.model.fit_box, image, box)

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
            results[i].faces.append(FaceResult(
                landmarks=pts, box=p.boxes[k].copy(), box_source=p.source,
                noise_class=None if pr is None else int(np.argmax(pr)), noise_probs=pr))
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


BACKENDS = ("keras", "litert")


def load(path, detector="default", device=None, backend="keras", num_threads=None,
         **detector_kwargs):
    """Load a model for prediction -> Predictor.

    path: a training workdir, a .keras file or an exported SavedModel
    (fadenn_tf.inference.load_any); with backend="litert" also a .tflite file.
    detector: "default" (fadenn_tf.detect.DEFAULT_DETECTOR), "haar" (OpenCV's cascade),
    "dlib", a chain like "haar+profile", another registered name, a BoxProvider callable,
    or None (always pass boxes). device: e.g. "/CPU:0" or "/GPU:0", None for TensorFlow's
    default (keras backend only). backend: "keras" (TensorFlow) or "litert" (a float32
    TFLite model run by LiteRT: a .tflite path, or the model at `path` converted at batch 1
    when loading; num_threads: LiteRT threads, None = every usable core). detector_kwargs
    go to the named detector (e.g. min_neighbors=3). Raises fadenn_tf.errors.DataError if
    no model is found.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "litert":
        from fadenn_tf.tflite_runner import load_litert
        return Predictor(load_litert(path, num_threads), detector, None, detector_kwargs)
    from fadenn_tf.inference import load_any
    if device is None:
        model = load_any(path)
    else:
        import tensorflow as tf
        with tf.device(device):
            model = load_any(path)
    return Predictor(model, detector, device, detector_kwargs)


# --------------------------------------------------------------------------------- CLI

def find_images(inputs):
    """Expand files and folders (searched recursively for IMAGE_EXTENSIONS) into
    (path, output name without extension) pairs; names keep the sub-folder of a folder
    argument and are made unique. Missing inputs come back with name None."""
    out, used = [], set()
    for arg in inputs:
        p = Path(arg)
        if p.is_dir():
            files = sorted(f for f in p.rglob("*")
                           if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
            pairs = [(f, f.relative_to(p).with_suffix("").as_posix()) for f in files]
        elif p.exists():
            pairs = [(p, p.stem)]
        else:
            out.append((p, None))
            continue
        for f, name in pairs:
            base, k = name, 1
            while name in used:
                k += 1
                name = f"{base}-{k}"
            used.add(name)
            out.append((f, name))
    return out


def _parser():
    from fadenn_tf.utils.cli import EXIT_CODES_FACES, add_no_progress, make_parser
    p = make_parser(
        "predict", raw=False,
        description="68 facial landmarks for images (any size; faces found by a detector "
                    "unless --boxes gives them).",
        epilog="Writes NAME.pts (or NAME_k.pts per face, k = 0 largest), NAME_overlay.png and "
               "summary.json into --out. " + EXIT_CODES_FACES)
    p.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR",
                   help="image files and/or folders (searched recursively)")
    p.add_argument("--model", required=True, metavar="PATH",
                   help="training workdir, .keras file or SavedModel folder")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--boxes", help="boxes file (.json {name: [x0,y0,x1,y1] or list of boxes} "
                                   "or .csv image,x0,y0,x1,y1); unlisted images use the detector")
    p.add_argument("--all-faces", action="store_true",
                   help="landmarks for every detected face (default: the largest only)")
    p.add_argument("--batch-size", type=positive_int, default=32,
                   help="crops per model call (32)")
    p.add_argument("--no-overlay", action="store_true", help="do not write overlay PNGs")
    p.add_argument("--device", default=None, help="TensorFlow device, e.g. /GPU:0")
    p.add_argument("--backend", default="keras", choices=BACKENDS,
                   help="keras (TensorFlow) or litert (float32 TFLite; --model may be a "
                        ".tflite file)")
    from fadenn_tf.detect import add_detector_arguments
    add_detector_arguments(p)
    add_no_progress(p)
    return p


def _write_image_outputs(out_dir, name, result, image, overlay):
    from fadenn_tf.data.pts import write_pts
    files = []
    for k, face in enumerate(result.faces):
        suffix = "" if len(result.faces) == 1 else f"_{k}"
        path = out_dir / f"{name}{suffix}.pts"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_pts(path, face.landmarks)
        files.append(str(path))
    overlay_path = None
    if overlay:
        import cv2
        from fadenn_tf.drawing import RED, draw_face, draw_text
        img = image
        for k, face in enumerate(result.faces):
            label = face.box_source + (f" {face.noise_name}" if face.noise_name else "")
            if len(result.faces) > 1:
                label = f"{k}: {label}"
            img = draw_face(img, face.landmarks, face.box, face.box_source, label)
        if not result.faces:
            img = draw_text(img, "no face", (6, 22), RED)
        overlay_path = out_dir / f"{name}_overlay.png"
        overlay_path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(overlay_path), np.ascontiguousarray(img[:, :, ::-1]))
    return files, overlay_path


@one_writer
def main(argv=None):
    args = _parser().parse_args(argv)
    from fadenn_tf.data.images import read_image
    from fadenn_tf.detect import load_boxes_file, lookup_boxes
    from fadenn_tf.errors import FadennError
    out_dir = Path(args.out)
    try:
        boxes_by_name = load_boxes_file(args.boxes) if args.boxes else None
        from fadenn_tf.detect import detector_kwargs_from_args
        predictor = load(args.model, detector=args.detector, device=args.device,
                         backend=args.backend, **detector_kwargs_from_args(args))
        if not args.boxes:
            predictor.detector  # build it now: unknown names or options fail here, clearly
    except (FadennError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    take_lock(out_dir, "predict")  # one writer per --out
    warm = predictor.warm_up()
    t_start = time.perf_counter()
    entries = []                       # summary entry per input, in order
    pending = []                       # (entry, prepared, name)
    n_ok = 0

    def flush():
        nonlocal n_ok
        if not pending:
            return
        results = predictor.run([p for _, p, _ in pending], args.batch_size)
        for (entry, prep, name), res in zip(pending, results):
            files, overlay = _write_image_outputs(out_dir, name, res, prep.image,
                                                  not args.no_overlay)
            entry["status"] = "ok" if res.faces else "no face"
            entry["n_faces"] = len(res.faces)
            entry["faces"] = [dict(f.to_dict(landmarks=False), pts=fp)
                              for f, fp in zip(res.faces, files)]
            entry["overlay"] = None if overlay is None else str(overlay)
            entry["timing"] = {k: round(v, 5) for k, v in res.timing.items()}
            n_ok += 1
            if not res.faces:
                print(f"{entry['image']}: no face found ({prep.source})", file=sys.stderr)
        pending.clear()

    from fadenn_tf.utils.progress import progress
    for path, name in progress(find_images(args.inputs), desc="predicting", unit="img",
                               enabled=not args.no_progress):
        entry = {"image": str(path), "name": name}
        entries.append(entry)
        if name is None:
            entry.update(status="error", problem="file or folder not found")
            print(f"{path}: file or folder not found", file=sys.stderr)
            continue
        try:
            image = read_image(path)
            given = None if boxes_by_name is None else lookup_boxes(boxes_by_name, path)
            prep = predictor.prepare(image, given, "rgb", args.all_faces)
        except (FadennError, ValueError) as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            entry.update(status="error", problem=problem)
            print(f"{path}: {problem}", file=sys.stderr)
            continue
        entry["size"] = [int(image.shape[0]), int(image.shape[1])]
        pending.append((entry, prep, name))
        if sum(len(p.boxes) for _, p, _ in pending) >= args.batch_size:
            flush()
    flush()
    if not entries:
        print("error: no images found in the inputs", file=sys.stderr)
    total = time.perf_counter() - t_start
    n_no_face = sum(e.get("status") == "no face" for e in entries)
    n_err = sum(e.get("status") == "error" for e in entries)
    summary = {
        "model": predictor.model.path, "model_kind": predictor.model.kind,
        "input_size": predictor.size,
        "detector": args.detector,
        "detector_options": detector_kwargs_from_args(args), "backend": args.backend,
        "boxes_file": args.boxes, "all_faces": args.all_faces,
        "coordinates": ".pts files are 1-based (ibug convention; fadenn_tf.data.pts.read_pts "
                       "returns 0-based pixel centres); boxes are (x0, y0, x1, y1) pixel-edge "
                       "coordinates",
        "n_images": len(entries), "n_processed": n_ok, "n_no_face": n_no_face,
        "n_errors": n_err, "total_s": round(total, 3), "warm_up_s": round(warm, 3),
        "images": entries}
    from fadenn_tf.utils.atomic import write_json_atomic
    write_json_atomic(out_dir / "summary.json", summary)
    n_faces = sum(e.get("n_faces", 0) for e in entries)
    print(f"{n_ok}/{len(entries)} images processed, {n_faces} faces, {n_no_face} without a "
          f"face, {n_err} errors in {total:.2f} s -> {out_dir / 'summary.json'}")
    return 0 if n_faces > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
