"""dlib's 68-point ERT shape predictor (Kazemi and Sullivan 2014) as a peer "model".

Optional: needs the dlib extra (`pip install 'fadenn_tf[dlib]'`, i.e. dlib-bin) and the
model file shape_predictor_68_face_landmarks.dat (Debian/Ubuntu: `apt-get install
libdlib-data` puts it in /usr/share/dlib/). `load_dlib_peer` raises DlibUnavailable with the reason otherwise.

Fairness: dlib runs on the same noisy crops as the other models, started from the same face
box: it has no fixed input size, so the evaluation engine feeds it the reference crop itself
(side R, noise applied there: the protocol of `fadenn_tf.noise`), the pixels every other
model gets resized to its input. Its predictor expects the box of dlib's own HOG face detector, not the tight landmark
box: the mapping between the two is measured from the predictor itself (on a flat image its
cascade returns its mean shape inside the given rectangle; see `calibrate`). dlib returns
integer pixel positions, so crops are enlarged (bilinear) to at least UPSCALE_TO px first and
points mapped back, which keeps the rounding error under 0.5 / factor crop pixels.
"""
import math
from pathlib import Path

import cv2
import numpy as np

from fadenn_tf.data.crop import landmark_box
from fadenn_tf.evaluation.engine import ModelEntry

DEFAULT_MODEL_PATHS = ("/usr/share/dlib/shape_predictor_68_face_landmarks.dat",
                       "/usr/local/share/dlib/shape_predictor_68_face_landmarks.dat")
UPSCALE_TO = 256
LABEL = "dlib-ERT"


class DlibUnavailable(RuntimeError):
    """dlib or its 68-point model file is missing (message says which and how to get it)."""


def _import_dlib():
    """The dlib module; DlibUnavailable saying how to install it when it is missing."""
    try:
        import dlib  # lazy: optional dependency dlib
    except ImportError as exc:
        raise DlibUnavailable(f"dlib is not installed ({exc}); pip install 'fadenn_tf[dlib]' "
                              "(or pip install dlib-bin)") from None
    return dlib


def find_model(path=None):
    """The 68-point model file: `path` if given (must exist), else the first default path
    that exists. Raises DlibUnavailable."""
    if path:
        if not Path(path).is_file():
            raise DlibUnavailable(f"{path}: dlib model file not found")
        return str(path)
    for p in DEFAULT_MODEL_PATHS:
        if Path(p).is_file():
            return p
    raise DlibUnavailable("dlib's shape_predictor_68_face_landmarks.dat not found in "
                          f"{', '.join(DEFAULT_MODEL_PATHS)} (apt-get install libdlib-data, "
                          "or pass --dlib-model PATH)")


def _points(shape):
    return np.array([[shape.part(i).x, shape.part(i).y] for i in range(shape.num_parts)],
                    np.float64)


def calibrate(predictor, side=2000):
    """(dcx, dcy, sx, sy): the landmark box of dlib's mean shape relative to the rectangle
    it was given (centre shift in box sizes, size ratios), measured on a flat grey image."""
    dlib = _import_dlib()
    img = np.full((side, side, 3), 128, np.uint8)
    a, b = side // 4, 3 * side // 4
    rect = np.array([a, a, b + 1, b + 1], np.float64)  # dlib's right/bottom are inclusive
    lb = landmark_box(_points(predictor(img, dlib.rectangle(a, a, b, b))))
    w, h = rect[2] - rect[0], rect[3] - rect[1]
    return (((lb[0] + lb[2]) - (rect[0] + rect[2])) / 2 / w,
            ((lb[1] + lb[3]) - (rect[1] + rect[3])) / 2 / h,
            (lb[2] - lb[0]) / w, (lb[3] - lb[1]) / h)


def dlib_rect_for(box, correction):
    """Edge-coordinate landmark-convention box (x0, y0, x1, y1) -> the rectangle
    (x0, y0, x1, y1) dlib's predictor expects, by inverting `correction`."""
    dcx, dcy, sx, sy = correction
    x0, y0, x1, y1 = box
    w, h = (x1 - x0) / sx, (y1 - y0) / sy
    cx, cy = (x0 + x1) / 2 - dcx * w, (y0 + y1) / 2 - dcy * h
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


class DlibPeer:
    """predict(images, start) over crops [B,S,S,3] of 0..255 pixels; `prepare(eval_data)` must be
    called first with the EvalData the crops come from (it gives each row's face box)."""

    def __init__(self, model_path):
        self._dlib = _import_dlib()
        self.predictor = self._dlib.shape_predictor(str(model_path))
        self.correction = calibrate(self.predictor)
        self.model_path = str(model_path)
        self.crop_boxes = None

    def prepare(self, eval_data):
        """Face box of every row in crop edge coordinates (Sample.box, else the landmark
        box, through the row's crop transform)."""
        boxes = []
        for i, s in enumerate(eval_data.samples):
            box = np.asarray(s.box if s.box is not None else landmark_box(s.landmarks))
            t = eval_data.transform(i)
            rx0, ry0 = t.region[:2]
            boxes.append([(box[0] - rx0) * t.sx, (box[1] - ry0) * t.sy,
                          (box[2] - rx0) * t.sx, (box[3] - ry0) * t.sy])
        self.crop_boxes = np.asarray(boxes, np.float64)

    def predict_one(self, crop_u8, box):
        """One uint8 RGB crop and its face box (crop edge coords) -> (68, 2) crop points."""
        s = crop_u8.shape[0]
        f = max(1, math.ceil(UPSCALE_TO / s))
        big = cv2.resize(crop_u8, (s * f, s * f), interpolation=cv2.INTER_LINEAR) if f > 1 \
            else crop_u8
        r = dlib_rect_for(np.asarray(box) * f, self.correction)
        rect = self._dlib.rectangle(int(round(r[0])), int(round(r[1])),
                                    int(round(r[2])) - 1, int(round(r[3])) - 1)
        pts = _points(self.predictor(np.ascontiguousarray(big), rect))
        return (pts + 0.5) / f - 0.5

    def predict(self, images, start):
        if self.crop_boxes is None:
            raise RuntimeError("DlibPeer.prepare(eval_data) must be called first")
        u8 = np.clip(np.round(np.asarray(images, np.float32)), 0, 255).astype(np.uint8)
        out = np.stack([self.predict_one(u8[j], self.crop_boxes[start + j])
                        for j in range(len(u8))])
        return {"landmarks": out}


def load_dlib_peer(model_path=None, label=LABEL):
    """A fadenn_tf.evaluation.engine.ModelEntry running dlib's ERT; raises DlibUnavailable
    with the reason when dlib or its model file is missing."""
    _import_dlib()
    path = find_model(model_path)
    peer = DlibPeer(path)
    return ModelEntry(label, path, "dlib", None, peer.predict, prepare=peer.prepare)
