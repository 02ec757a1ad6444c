"""UltraFace: a 1 MB CNN face detector (RFB and slim variants, MIT licence), shipped as TFLite
files in fadenn_tf/detect/models and run by LiteRT; no TensorFlow import on this path.

The network sees the whole image resized to its input (by default about 320x240 pixels with
the image's aspect ratio) as RGB scaled by (x - 127) / 128; anchors, decoding and NMS are in
detect.ultraface_decode. Its boxes (forehead to chin) are mapped to the 68-point landmark-box
convention by the fitted corrections below.
"""
from pathlib import Path

import cv2
import numpy as np

from fadenn_tf.detect.boxes import _check_image, apply_box_correction, clip_boxes, empty_boxes
from fadenn_tf.detect.ultraface_decode import decode_boxes, make_anchors, nms
from fadenn_tf.errors import DataError

MODELS_DIR = Path(__file__).resolve().parent / "models"
ULTRAFACE_FILES = {"rfb": "ultraface-rfb-320.tflite", "slim": "ultraface-slim-320.tflite"}

# UltraFace box -> 68-point landmark box, (dcx, dcy, sx, sy) for apply_box_correction: its
# boxes run from the forehead to the chin (the landmark box is 0.77x as tall, centre 0.13 of
# the height lower) and are slightly narrower. Fitted by experiments/fit_ultraface.py
# (fit_box_correction on raw boxes at input "auto" paired with the annotated faces by the
# centre-inside rule: rfb 337 pairs, slim 335) on the 185 whole AFW photos of the 300-W
# training set scaled to a longer side of at most 1,024 px (337 faces, 34-405 px;
# ../shared/data/afw-photos). Mean IoU with the landmark box on photos the fit did not
# see (2-fold by photo): 0.83. Command:
#   python experiments/fit_ultraface.py --photos ../shared/data/afw-photos
ULTRAFACE_TO_LANDMARK_BOX = {"rfb": (0.010, 0.130, 1.065, 0.773),
                             "slim": (0.008, 0.126, 1.050, 0.765)}
# min_score 0.7: the highest that keeps 99% of the AFW faces of 40 px or more (RFB, auto:
# 329/332; 0.8 finds 328); most boxes below it that match no annotation are not faces
# (hands, objects), most above it are faces 300-W left unannotated. Input "auto": as many
# faces as 640x480 (333/337) at the cost of 320x240 (a 4:3 photo gets 320x240, a 3:4 one
# 240x320); fixed 320x240 squeezes portrait photos and finds 329/337.
ULTRAFACE_DEFAULTS = {"min_score": 0.7, "iou_threshold": 0.3, "input_size": "auto",
                      "num_threads": 2}
# Order of the boxes (the first is the face predict uses without all_faces): those scoring
# at least CONFIDENT_SCORE first, each group largest first. Largest-first alone put a
# larger, less sure box (0.76-0.80) before the face on 3 of the 302 held-out canvases of
# `bench --sections detect` (found 297 -> 300); on the 185 AFW photos the first box is an
# annotated face on 163 instead of 161.
CONFIDENT_SCORE = 0.9


def preferred_order(boxes, scores, confident=CONFIDENT_SCORE):
    """Indices ordering (K, 4) boxes with scores (K,): score >= confident first, each group
    by area, largest first (stable)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return np.lexsort((-area, np.asarray(scores).reshape(-1) < confident))


def ultraface_path(variant="rfb"):
    """Path of the packaged TFLite file of `variant` ("rfb" or "slim")."""
    if variant not in ULTRAFACE_FILES:
        raise ValueError(f"UltraFace variant must be one of {sorted(ULTRAFACE_FILES)}, got "
                         f"{variant!r}")
    return MODELS_DIR / ULTRAFACE_FILES[variant]


AUTO_AREA = 320 * 240     # input_size="auto": about this many input pixels
# Input sides LiteRT accepts for both files are multiples of 80 (the RFB file's dilated
# convolutions, SPACE_TO_BATCH_ND, reject other sizes; the slim file takes multiples of 16).
SIDE_STEP = 80


def auto_input_size(image_hw, area=AUTO_AREA):
    """(width, height) of about `area` pixels with the image's aspect ratio, sides multiples
    of SIDE_STEP (at least one step): the input size "auto" picks for an image of shape
    (H, W). A 4:3 landscape photo gets 320x240, a 3:4 portrait one 240x320."""
    h, w = float(image_hw[0]), float(image_hw[1])
    if h <= 0 or w <= 0:
        raise ValueError(f"image size must be positive, got {image_hw}")
    s = (area / (w * h)) ** 0.5
    step = SIDE_STEP
    return (max(step, int(round(w * s / step)) * step), max(step, int(round(h * s / step)) * step))


def _check_input_size(input_size):
    if isinstance(input_size, str) and input_size == "auto":
        return input_size
    try:
        w, h = (int(v) for v in input_size)
    except (TypeError, ValueError):
        raise ValueError(f"input_size must be (width, height) in pixels or 'auto', got "
                         f"{input_size!r}") from None
    if w < 32 or h < 32 or w > 4096 or h > 4096:
        raise ValueError(f"input_size must be 32-4096 px per side, got {w}x{h}")
    return w, h


class UltraFaceDetector:
    """UltraFace face detector (LiteRT) -> boxes in the landmark-box convention, with scores.

    variant: "rfb" (default, more accurate) or "slim" (a little faster); model_path: another
        UltraFace-style TFLite file instead of the packaged one.
    input_size: "auto" (default: about 320x240 pixels with the image's aspect ratio, sides
        multiples of 80, auto_input_size) or (width, height) the image is resized to
        (aspect not kept), set with LiteRT's resize_tensor_input; sides must be multiples
        of 80 (640x480 finds smaller faces at about 3x the cost). One interpreter is kept
        per input size.
    min_score: keep detections whose face probability (0-1) is at least this.
    iou_threshold: NMS drops a box overlapping a better one by more than this IoU.
    correction: (dcx, dcy, sx, sy) for apply_box_correction, default the fitted
        ULTRAFACE_TO_LANDMARK_BOX[variant]; None for the network's raw boxes.
    num_threads: LiteRT threads (default 2).
    Calling it returns (K, 4) float64 boxes clipped to the image, the confident ones
    (score >= CONFIDENT_SCORE) first, each group largest first; (0, 4) if none.
    detect(image) returns (boxes, scores) in the same order; `last_scores` holds the scores
    of the last call.
    """

    def __init__(self, variant="rfb", min_score=None, iou_threshold=None, input_size=None,
                 correction="fitted", num_threads=None, model_path=None):
        d = ULTRAFACE_DEFAULTS
        self.variant = variant
        path = Path(model_path) if model_path is not None else ultraface_path(variant)
        self.min_score = float(d["min_score"] if min_score is None else min_score)
        if not 0.0 <= self.min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], got {min_score}")
        self.iou_threshold = float(d["iou_threshold"] if iou_threshold is None
                                   else iou_threshold)
        if not 0.0 < self.iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
        self.input_size = _check_input_size(d["input_size"] if input_size is None
                                            else input_size)
        if isinstance(correction, str) and correction == "fitted":
            correction = ULTRAFACE_TO_LANDMARK_BOX.get(variant, (0.0, 0.0, 1.0, 1.0))
        self.correction = None if correction is None else tuple(float(v) for v in correction)
        self.num_threads = int(d["num_threads"] if num_threads is None else num_threads)
        self.model_path = path
        self._interpreters = {}         # (width, height) -> (interpreter, input, outputs)
        self._anchors = {}              # (width, height) -> anchors
        self._get(self.input_size if self.input_size != "auto" else (320, 240))
        self.last_scores = np.zeros((0,), np.float64)

    def _load(self, path):
        from ai_edge_litert.interpreter import Interpreter  # lazy: LiteRT (detect/ is light)
        if not path.is_file():
            packaged = path.parent == MODELS_DIR
            raise DataError(path, "UltraFace TFLite file not found" + (
                " (the installed package is incomplete: reinstall fadenn_tf)" if packaged
                else ""))
        try:
            it = Interpreter(model_path=str(path), num_threads=self.num_threads)
        except (ValueError, RuntimeError) as exc:
            raise DataError(path, f"not a TFLite model LiteRT can load ({exc})") from None
        ins = it.get_input_details()
        if len(ins) != 1 or len(ins[0]["shape"]) != 4 or ins[0]["shape"][3] != 3:
            raise DataError(path, f"expected one (1, H, W, 3) input, got "
                                  f"{[list(i['shape']) for i in ins]}")
        return it, ins[0]["index"], [o["index"] for o in it.get_output_details()]

    def _get(self, size):
        """(interpreter, input index, output indices, anchors) for input `size` (w, h): one
        interpreter per size, allocated once (at most 8 are kept: the oldest goes first)."""
        if size not in self._interpreters:
            if len(self._interpreters) >= 8:
                oldest = next(iter(self._interpreters))
                del self._interpreters[oldest], self._anchors[oldest]
            it, i, o = self._load(self.model_path)
            w, h = size
            if list(it.get_input_details()[0]["shape"]) != [1, h, w, 3]:
                it.resize_tensor_input(i, [1, h, w, 3])
            try:
                it.allocate_tensors()
            except RuntimeError as exc:
                raise ValueError(f"{self.model_path.name} cannot run at input size {w}x{h} "
                                 f"(sides that are multiples of {SIDE_STEP} px work): "
                                 f"{str(exc).splitlines()[0]}") from None
            self._interpreters[size] = (it, i, o)
            self._anchors[size] = make_anchors(w, h)
        return self._interpreters[size] + (self._anchors[size],)

    def network_outputs(self, image):
        """Run the network on an image -> (regressions (N, 4), face probabilities (N,),
        anchors (N, 4)) at the input size in use (input_size, or what "auto" picks for this
        image). The two outputs are told apart by their last dimension (4: regressions, 2:
        class scores with column 1 = face)."""
        img = _check_image(image)
        if img.dtype != np.uint8:
            raise ValueError(f"expected a uint8 image, got {img.dtype}")
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        elif img.shape[2] != 3:
            img = np.repeat(img[:, :, :1], 3, axis=2) if img.shape[2] == 1 else img[:, :, :3]
        w, h = (auto_input_size(img.shape[:2]) if self.input_size == "auto"
                else self.input_size)
        it, idx_in, idx_out, anchors = self._get((w, h))
        small = cv2.resize(np.ascontiguousarray(img), (w, h), interpolation=cv2.INTER_LINEAR)
        x = (small.astype(np.float32) - 127.0) * (1.0 / 128.0)
        it.set_tensor(idx_in, x[None])
        it.invoke()
        outs = {}
        for idx in idx_out:
            t = it.get_tensor(idx)
            outs[t.shape[-1]] = t.reshape(-1, t.shape[-1])
        if set(outs) != {2, 4} or len(outs[4]) != len(anchors) or len(outs[2]) != len(anchors):
            raise DataError(self.model_path, f"expected outputs ({len(anchors)}, 4) and "
                                             f"({len(anchors)}, 2) for a {w}x{h} input, got "
                                             f"{[v.shape for v in outs.values()]}")
        return outs[4], outs[2][:, 1], anchors

    def raw_detect(self, image):
        """Uncorrected detections: (boxes (K, 4) float64 image pixels, scores (K,)), highest
        score first, after the min_score cut and NMS (boxes not clipped)."""
        reg, prob, anchors = self.network_outputs(image)
        keep = np.flatnonzero(prob >= self.min_score)
        if len(keep) == 0:
            return empty_boxes(), np.zeros((0,), np.float64)
        boxes = decode_boxes(reg[keep], anchors[keep])
        scores = prob[keep]
        order = nms(boxes, scores, self.iou_threshold)
        hh, ww = np.shape(image)[:2]
        out = boxes[order].astype(np.float64) * [ww, hh, ww, hh]
        return out, scores[order].astype(np.float64)

    def detect(self, image):
        """(boxes (K, 4) float64, scores (K,) face probabilities): boxes corrected to the
        landmark-box convention, clipped; those scoring >= CONFIDENT_SCORE first, each
        group largest first; (0, 4) and (0,) when none."""
        boxes, scores = self.raw_detect(image)
        if len(boxes) and self.correction is not None:
            boxes = apply_box_correction(boxes, self.correction)
        if len(boxes):
            clipped = np.clip(boxes, 0.0, [np.shape(image)[1], np.shape(image)[0]] * 2)
            ok = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
            boxes, scores = clipped[ok], scores[ok]
            order = preferred_order(boxes, scores)
            boxes, scores = boxes[order], scores[order]
        self.last_scores = scores
        return (boxes if len(boxes) else empty_boxes()), scores

    def __call__(self, image):
        return clip_boxes(self.detect(image)[0], np.shape(image))


def ultraface_slim(min_score=None, iou_threshold=None, input_size=None, correction="fitted",
                   num_threads=None, model_path=None):
    """UltraFaceDetector(variant="slim", ...): the registry's "ultraface-slim"."""
    return UltraFaceDetector("slim", min_score, iou_threshold, input_size, correction,
                             num_threads, model_path)
