"""Procedural synthetic faces with exact 68-point ground truth (ibug / 300-W markup).

What it is: a toy renderer for trying every command, tests, demos and sanity checks of
training. A model trained on it is NOT a model for real faces.

The face model (units: half the face width; x right, y down, z towards the camera):
- a 3-D 68-point shape built from identity parameters (face width/height, jaw squareness,
  eye spacing and size, nose length/width, mouth width, lip thickness, brow height) and
  expression parameters (mouth opening, smile, brow raise, eye openness); all zero = the
  mean shape. The model is left/right symmetric, so mirroring the pose (yaw -> -yaw,
  roll -> -roll, centre x -> W - 1 - x) mirrors the landmarks with
  fadenn_tf.data.landmarks68.FLIP_PERM.
- rotated by R = Rz(roll) Rx(pitch) Ry(yaw) (degrees in the params) and projected with
  weak perspective: p = scale * (R X)[:2] + t.
- jaw-line points follow the 300-W convention: each jaw point has a horizontal arc on the
  head surface from the jaw point towards the face centre line; the projected point is the
  arc's outermost point (landmark marching), so a self-occluded jaw point moves onto the
  visible silhouette.

Images are drawn with OpenCV (anti-aliased polygons, ellipses, polylines): background
(gradient, texture, clutter shapes, partial other faces), hair, neck, skin shaded by a light
direction, eyebrows, eyes (sclera, iris, pupil, lids), nose, lips and mouth interior, then
random occluders, colour cast, blur, noise and JPEG artefacts.

Arrays: images (H, W, 3) uint8 RGB; landmarks (68, 2) float64 0-based pixel-centre (x, y).
"""
import copy
import math
from pathlib import Path

import cv2
import numpy as np

from fadenn_tf.data.landmarks68 import FLIP_PERM, NUM_POINTS

_SHIFT = 4                    # sub-pixel bits for cv2 drawing
_ONE = 1 << _SHIFT
_AA = cv2.LINE_AA
_SPLITS = ("train", "ibug")
_HEAD_C, _HEAD_B = -0.35, 0.8   # head cross-section: z = C + B cos(phi)

_SKIN_TONES = np.array([[238, 206, 180], [222, 178, 146], [196, 144, 108],
                        [160, 110, 76], [118, 78, 52], [86, 56, 40]], np.float64)
_HAIR_TONES = np.array([[20, 16, 14], [55, 38, 26], [100, 70, 40], [160, 120, 70],
                        [200, 170, 120], [130, 130, 130], [90, 40, 25]], np.float64)
_IRIS_TONES = np.array([[70, 45, 25], [110, 75, 40], [60, 90, 130], [80, 110, 70],
                        [40, 30, 25]], np.float64)


# ----------------------------------------------------------------------------- parameters

def _u(rng, lo, hi):
    return float(rng.uniform(lo, hi))


def sample_params(rng, split="train", image_size=None):
    """Draw every random choice of one still image into a JSON-able dict.

    rng: numpy Generator. split: "train" (300-W-like) or "ibug" (bigger poses, more
    occlusion, harsher imaging). image_size: None (random 200-500 px sides, as in 300-W),
    an int (square) or (H, W).
    Keys: image_size [H, W]; identity; expression; pose {yaw, pitch, roll} in degrees;
    scale (pixels per model unit; the face box is about 2*scale wide); center [x, y] of the
    landmark box; appearance; background; occluders (list); others (partial other faces);
    post (colour cast, blur, noise, jpeg_quality).
    """
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
    hard = split == "ibug"
    if image_size is None:
        h, w = int(rng.integers(200, 501)), int(rng.integers(200, 501))
    elif np.isscalar(image_size):
        h = w = int(image_size)
    else:
        h, w = (int(v) for v in image_size)
    if min(h, w) < 48:
        raise ValueError(f"image_size {h}x{w} is too small (need at least 48 px)")
    if hard:
        yaw, pitch, roll = _u(rng, -60, 60), _u(rng, -25, 25), _u(rng, -35, 35)
    elif rng.random() < 0.7:
        yaw = float(np.clip(rng.normal(0, 15), -50, 50))
        pitch = float(np.clip(rng.normal(0, 8), -25, 25))
        roll = float(np.clip(rng.normal(0, 8), -35, 35))
    else:
        yaw, pitch, roll = _u(rng, -50, 50), _u(rng, -25, 25), _u(rng, -35, 35)
    side = min(h, w)
    box = _u(rng, min(80.0, 0.3 * side), min(250.0, 0.75 * side))
    scale = box / 2.0
    cx, cy = _u(rng, 0.3 * w, 0.7 * w), _u(rng, 0.3 * h, 0.7 * h)
    light = rng.normal(size=2)
    light = light / (np.linalg.norm(light) + 1e-9)
    params = {
        "split": split,
        "image_size": [h, w],
        "identity": {
            "face_w": _u(rng, -1, 1), "face_h": _u(rng, -1, 1), "jaw_sq": _u(rng, -1, 1),
            "eye_sep": _u(rng, -1, 1), "eye_size": _u(rng, -1, 1), "nose_len": _u(rng, -1, 1),
            "nose_w": _u(rng, -1, 1), "mouth_w": _u(rng, -1, 1), "lip_th": _u(rng, -1, 1),
            "brow_h": _u(rng, -1, 1),
        },
        "expression": {
            "open": float(rng.random() ** (1.5 if hard else 3.0)) if rng.random() < 0.5 else 0.0,
            "smile": _u(rng, -0.3, 1.0), "brow": _u(rng, -1, 1),
            "eye_open": float(np.clip(rng.normal(1.0, 0.15), 0.35, 1.3)),
            "gaze": [_u(rng, -0.4, 0.4), _u(rng, -0.3, 0.3)],
        },
        "pose": {"yaw": yaw, "pitch": pitch, "roll": roll},
        "scale": scale,
        "center": [cx, cy],
        "appearance": _sample_appearance(rng, light),
        "background": {"seed": int(rng.integers(2**31)), "n_clutter": int(rng.integers(0, 12))},
        "occluders": _sample_occluders(rng, 0.6 if hard else 0.25),
        "others": [_sample_other(rng) for _ in range(int(rng.random() < (0.35 if hard else 0.2)))],
        "post": {
            "cast": [_u(rng, 0.85, 1.15) for _ in range(3)],
            "gain": _u(rng, 0.45, 1.2) if hard else _u(rng, 0.7, 1.15),
            "contrast": _u(rng, 0.7, 1.15),
            "blur": _u(rng, 0, 2.5) if hard and rng.random() < 0.5 else _u(rng, 0, 0.9),
            "noise": _u(rng, 0, 12) if hard else _u(rng, 0, 5),
            "jpeg_quality": int(rng.integers(30, 96)) if rng.random() < 0.85 else None,
            "seed": int(rng.integers(2**31)),
        },
    }
    return params


def _sample_appearance(rng, light):
    t = rng.random() * (len(_SKIN_TONES) - 1)
    i = int(t)
    skin = _SKIN_TONES[i] + (t - i) * (_SKIN_TONES[min(i + 1, len(_SKIN_TONES) - 1)] - _SKIN_TONES[i])
    skin = np.clip(skin * rng.uniform(0.92, 1.08, 3), 0, 255)
    lip = np.clip(skin * np.array([0.85, 0.52, 0.55]) + np.array([25, 0, 5]), 0, 255)
    hair = _HAIR_TONES[rng.integers(len(_HAIR_TONES))] * rng.uniform(0.8, 1.2)
    return {
        "skin": skin.tolist(), "lip": lip.tolist(),
        "hair": np.clip(hair, 0, 255).tolist(),
        "hair_style": ["short", "long", "bald", "short", "long"][int(rng.integers(5))],
        "iris": _IRIS_TONES[rng.integers(len(_IRIS_TONES))].tolist(),
        "light": light.tolist(), "light_strength": _u(rng, 0.1, 0.45),
        "ambient": _u(rng, 0.75, 1.05),
    }


def _sample_occluders(rng, prob):
    occ = []
    if rng.random() < prob:
        for _ in range(int(rng.integers(1, 3))):
            occ.append({
                "kind": ["bar", "blob", "hand"][int(rng.integers(3))],
                # position relative to the landmark box: (0, 0) centre, +-1 box edges
                "at": [_u(rng, -1.1, 1.1), _u(rng, -1.1, 1.1)],
                "size": [_u(rng, 0.15, 0.6), _u(rng, 0.1, 0.35)],
                "angle": _u(rng, 0, 180),
                "color": rng.integers(0, 256, 3).tolist(),
            })
    return occ


def _sample_other(rng):
    return {"seed": int(rng.integers(2**31)), "side": int(rng.integers(4)),
            "rel_scale": _u(rng, 0.5, 1.0), "along": _u(rng, 0.1, 0.9)}


def merge_params(base, override):
    """A deep copy of `base` with the (possibly nested, partial) dict `override` applied."""
    out = copy.deepcopy(base)
    for k, v in (override or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge_params(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


# ----------------------------------------------------------------------------- 3-D shape

def _mirror(p):
    return np.array([-p[0], p[1], p[2]])


def _surface_z(x):
    """z of the head surface (cross-section ellipse of half-width 1) at model x."""
    return _HEAD_C + _HEAD_B * math.sqrt(max(0.0, 1.0 - x * x))


def model_points(identity, expression):
    """The 3-D model: (68, 3) landmarks, and a dict of auxiliary 3-D points for drawing.

    The jaw points (0-16) are returned together with their marching arcs
    aux["jaw_arcs"] (17, K, 3): candidate surface points from the jaw point (index 0)
    to the face centre line (index K-1). All-zero identity/expression gives the mean shape.
    """
    idn, ex = identity, expression
    fw = 1.0 + 0.08 * idn["face_w"]
    fh = 1.0 + 0.07 * idn["face_h"]
    opening = 0.32 * float(np.clip(ex["open"], 0, 1))
    smile = float(ex["smile"])
    P = np.zeros((NUM_POINTS, 3))
    K = 13
    arcs = np.zeros((17, K, 3))
    # jaw
    e = 0.8 - 0.15 * idn["jaw_sq"]
    for i in range(17):
        u = math.pi * i / 16
        cu, su = math.cos(u), math.sin(u)
        x = -math.copysign(abs(cu) ** e, cu) * (1.0 - 0.12 * su ** 4)
        y = -0.3 + 1.58 * su ** 1.1 + opening * su ** 6
        phi = 0.5 * math.pi * abs(cu) ** 0.55
        a = abs(x) / math.sin(phi) if phi > 1e-6 else 0.0
        phis = np.linspace(phi, 0.0, K)
        arcs[i, :, 0] = math.copysign(1.0, x) * a * np.sin(phis) if i != 8 else 0.0
        arcs[i, :, 1] = y
        arcs[i, :, 2] = _HEAD_C + _HEAD_B * np.cos(phis)
        P[i] = arcs[i, 0]
    # brows (17-21 image left, outer -> inner), mirrored to 26-22
    by = -0.64 - 0.05 * idn["brow_h"]
    for t in range(5):
        x = -0.86 + 0.66 * t / 4
        y = by - 0.11 * math.sin(math.pi * (t + 0.7) / 5.4) - ex["brow"] * (0.06 + 0.04 * t / 4)
        P[17 + t] = (x, y, _surface_z(x) + 0.01)
        P[26 - t] = _mirror(P[17 + t])
    # nose bridge and nostrils
    nl = 1.0 + 0.08 * idn["nose_len"]
    for k, (y, z) in enumerate([(-0.32, 0.5), (-0.11, 0.62), (0.1, 0.77), (0.3, 0.93)]):
        P[27 + k] = (0.0, y * nl if y > 0 else y, z)
    nw = 1.0 + 0.12 * idn["nose_w"]
    ny = 0.44 * nl
    P[31] = (-0.23 * nw, ny - 0.03, 0.58)
    P[32] = (-0.12 * nw, ny + 0.02, 0.68)
    P[33] = (0.0, ny + 0.04, 0.74)
    P[34], P[35] = _mirror(P[32]), _mirror(P[31])
    # eyes: right eye 36-41 (image left), mirrored to the left eye 42-47
    cx = -0.44 * (1.0 + 0.06 * idn["eye_sep"])
    ey = -0.3
    ew = 0.19 * (1.0 + 0.08 * idn["eye_size"])
    eh = 0.085 * (1.0 + 0.1 * idn["eye_size"]) * ex["eye_open"]
    eye = [(cx - ew, ey + 0.01), (cx - 0.4 * ew, ey - eh), (cx + 0.35 * ew, ey - eh * 0.95),
           (cx + ew, ey + 0.015), (cx + 0.35 * ew, ey + 0.8 * eh), (cx - 0.4 * ew, ey + 0.8 * eh)]
    for k, (x, y) in enumerate(eye):
        P[36 + k] = (x, y, _surface_z(x) - 0.05)
    for k, j in enumerate([39, 38, 37, 36, 41, 40]):
        P[42 + k] = _mirror(P[j])
    # mouth
    mw = 0.4 * (1.0 + 0.1 * idn["mouth_w"]) * (1.0 + 0.12 * max(smile, 0))
    my = 0.8 + 0.03 * idn["face_h"]
    lt = 1.0 + 0.2 * idn["lip_th"]
    corner_up = 0.07 * smile
    outer_up = [(-1.0, -corner_up), (-0.6, -0.11 * lt), (-0.2, -0.145 * lt), (0.0, -0.12 * lt)]
    outer_lo = [(0.6, 0.13 * lt + opening), (0.25, 0.17 * lt + opening), (0.0, 0.175 * lt + opening)]
    inner_up = [(-0.86, -corner_up), (-0.4, -0.01 - 0.15 * opening), (0.0, -0.012 - 0.15 * opening)]
    inner_lo = [(0.4, 0.01 + 0.85 * opening), (0.0, 0.012 + 0.85 * opening)]

    def mpt(fx, dy):
        return (fx * mw, my + dy, 0.58 - 0.2 * fx * fx)
    for k, (fx, dy) in enumerate(outer_up):
        P[48 + k] = mpt(fx, dy)
    P[52], P[53], P[54] = _mirror(P[50]), _mirror(P[49]), _mirror(P[48])
    for k, (fx, dy) in enumerate(outer_lo):
        P[55 + k] = mpt(fx, dy)
    P[58], P[59] = _mirror(P[56]), _mirror(P[55])
    for k, (fx, dy) in enumerate(inner_up):
        P[60 + k] = mpt(fx, dy)
    P[63], P[64] = _mirror(P[61]), _mirror(P[60])
    for k, (fx, dy) in enumerate(inner_lo):
        P[65 + k] = mpt(fx, dy)
    P[67] = _mirror(P[65])
    # auxiliary points (drawing only)
    aux = {}
    w = np.linspace(0, math.pi, 15)[1:-1]          # forehead arc, image left -> right
    fx = -np.cos(w) * 0.98
    fy = -0.3 - 1.15 * np.sin(w) ** 0.8
    fphi = 0.5 * math.pi * np.abs(np.cos(w)) ** 0.55
    fa = np.where(fphi > 1e-6, np.abs(fx) / np.maximum(np.sin(fphi), 1e-6), 0.0)
    farcs = np.zeros((len(w), K, 3))
    for k in range(len(w)):
        phis = np.linspace(fphi[k], 0.0, K)
        farcs[k, :, 0] = np.sign(fx[k]) * fa[k] * np.sin(phis)
        farcs[k, :, 1] = fy[k]
        farcs[k, :, 2] = _HEAD_C + _HEAD_B * np.cos(phis)
    aux["forehead_arcs"] = farcs
    hx = np.linspace(-1.0, 1.0, 13)
    hphi = np.arcsin(np.clip(hx, -1, 1))
    aux["hairline"] = np.stack([hx * 0.97, -1.0 + 0.42 * hx ** 4 + 0.06 * idn["brow_h"] * 0,
                                _HEAD_C + _HEAD_B * np.cos(hphi)], axis=1)
    ring = np.linspace(0, 2 * math.pi, 24, endpoint=False)
    aux["hair_back"] = np.stack([1.18 * np.cos(ring), -0.55 + 1.25 * np.sin(ring),
                                 np.full_like(ring, -0.6)], axis=1)
    aux["hair_long"] = np.array([[-1.2, -0.5, -0.6], [-1.3, 1.1, -0.6], [-0.9, 1.6, -0.7],
                                 [0.9, 1.6, -0.7], [1.3, 1.1, -0.6], [1.2, -0.5, -0.6]])
    aux["neck"] = np.array([[-0.55, 0.6, -0.3], [-0.62, 2.6, -0.3], [0.62, 2.6, -0.3],
                            [0.55, 0.6, -0.3]])
    gx, gy = ex["gaze"]
    for name, c in (("iris_r", (cx, ey)), ("iris_l", (-cx, ey))):
        aux[name] = np.array([c[0] + gx * ew * 0.45, c[1] + gy * eh * 0.35, _surface_z(c[0]) - 0.03])
    aux["eye_w"] = ew
    # identity height scale, applied about the eye line
    P[:, 0] *= fw
    P[:, 1] = ey + (P[:, 1] - ey) * fh
    for key in ("forehead_arcs", "hairline", "hair_back", "hair_long", "neck", "iris_r", "iris_l"):
        aux[key] = aux[key].copy()
        aux[key][..., 0] *= fw
        aux[key][..., 1] = ey + (aux[key][..., 1] - ey) * fh
    arcs[..., 0] *= fw
    arcs[..., 1] = ey + (arcs[..., 1] - ey) * fh
    aux["jaw_arcs"] = arcs
    return P, aux


def rotation(yaw, pitch, roll):
    """R = Rz(roll) @ Rx(pitch) @ Ry(yaw), angles in degrees."""
    a, b, c = (math.radians(v) for v in (yaw, pitch, roll))
    ry = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return rz, rx @ ry


def _march(arcs, r3, left):
    """Pick each arc's outermost projected point: arcs (N, K, 3) -> (N, 3) rotated points."""
    q = arcs @ r3.T
    idx = np.where(left, np.argmin(q[..., 0], axis=1), np.argmax(q[..., 0], axis=1))
    return q[np.arange(len(arcs)), idx]


class _Projector:
    """Maps model points to image pixels for one pose: p = s * Rz (R3 X)[:2] + t."""

    def __init__(self, pose, scale, center, P, aux):
        rz, r3 = rotation(pose["yaw"], pose["pitch"], pose["roll"])
        self.r2 = rz[:2, :2]
        self.r3 = r3
        self.s = float(scale)
        q = P @ r3.T
        jaw_left = np.arange(17) < 8
        q[:17] = _march(aux["jaw_arcs"], r3, jaw_left)
        q[8] = aux["jaw_arcs"][8, 0] @ r3.T
        xy = (q[:, :2] @ self.r2.T) * self.s
        lo, hi = xy.min(axis=0), xy.max(axis=0)
        self.t = np.asarray(center, np.float64) - (lo + hi) / 2
        self.landmarks = xy + self.t
        self.depth = q[:, 2]
        fore = aux["forehead_arcs"]
        self.forehead = self._xy(_march(fore, r3, np.arange(len(fore)) < len(fore) // 2))

    def _xy(self, q):
        return (q[..., :2] @ self.r2.T) * self.s + self.t

    def __call__(self, X):
        return self._xy(np.asarray(X) @ self.r3.T)

    def normal_z(self):
        """z of the rotated face normal (1 frontal, cos yaw*cos pitch)."""
        return float(self.r3[2, 2])


# ----------------------------------------------------------------------------- drawing

def _ip(pts):
    return np.round(np.asarray(pts, np.float64) * _ONE).astype(np.int32).reshape(-1, 1, 2)


def _col(c, k=1.0):
    return tuple(float(np.clip(v * k, 0, 255)) for v in c)


def _catmull(pts, closed, n=4):
    """A Catmull-Rom curve through `pts` (M, 2) with n samples per segment."""
    pts = np.asarray(pts, np.float64)
    m = len(pts)
    if closed:
        ext = np.concatenate([pts[-1:], pts, pts[:2]])
        segs = m
    else:
        ext = np.concatenate([pts[:1], pts, pts[-1:]])
        segs = m - 1
    t = np.arange(n) / n
    basis = 0.5 * np.stack([-t + 2 * t ** 2 - t ** 3, 2 - 5 * t ** 2 + 3 * t ** 3,
                            t + 4 * t ** 2 - 3 * t ** 3, -t ** 2 + t ** 3], axis=1)   # (n, 4)
    idx = np.arange(segs)[:, None] + np.arange(4)[None, :]                            # (segs, 4)
    out = np.einsum("nk,skd->snd", basis, ext[idx]).reshape(-1, 2)
    return out if closed else np.concatenate([out, pts[-1:]])


def _fill(img, pts, color):
    cv2.fillPoly(img, [_ip(pts)], _col(color), _AA, _SHIFT)


def _line(img, pts, color, thick, closed=False):
    cv2.polylines(img, [_ip(pts)], closed, _col(color), max(1, int(round(thick))), _AA, _SHIFT)


def _ellipse(img, c, axes, angle, color, thick=-1):
    cv2.ellipse(img, (int(round(c[0] * _ONE)), int(round(c[1] * _ONE))),
                (max(1, int(round(axes[0] * _ONE))), max(1, int(round(axes[1] * _ONE)))),
                float(angle), 0, 360, _col(color), thick, _AA, _SHIFT)


def _background(h, w, bg, rng_seed):
    rng = np.random.default_rng(rng_seed)
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    ang = rng.uniform(0, 2 * math.pi)
    hs, ws = max(h // 4, 2), max(w // 4, 2)      # smooth parts at 1/4 resolution
    g = np.add.outer(np.arange(hs, dtype=np.float32) * np.float32(math.sin(ang)),
                     np.arange(ws, dtype=np.float32) * np.float32(math.cos(ang)))
    g = (g - g.min()) / max(float(np.ptp(g)), 1.0)
    img = c0.astype(np.float32) + g[..., None] * (c1 - c0).astype(np.float32)
    cells = int(rng.integers(3, 24))
    tex = rng.normal(0, 1, (cells, cells, 3)).astype(np.float32)
    img += cv2.resize(tex, (ws, hs), interpolation=cv2.INTER_CUBIC) * float(rng.uniform(5, 40))
    img = cv2.resize(np.clip(img, 0, 255).astype(np.uint8), (w, h), interpolation=cv2.INTER_LINEAR)
    for _ in range(bg.get("n_clutter", 0)):
        col = rng.integers(0, 256, 3).tolist()
        kind = int(rng.integers(4))
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        size = rng.uniform(0.05, 0.4) * min(h, w)
        if kind == 0:
            _fill(img, cv2.boxPoints(((x, y), (size, size * rng.uniform(0.2, 1.5)),
                                      rng.uniform(0, 180))), col)
        elif kind == 1:
            _ellipse(img, (x, y), (size / 2, size / 2 * rng.uniform(0.3, 1)), rng.uniform(0, 180), col)
        elif kind == 2:
            _line(img, [(x, y), (x + rng.normal() * size * 2, y + rng.normal() * size * 2)], col,
                  rng.uniform(1, 6))
        else:
            _fill(img, np.stack([x + rng.normal(0, size / 2, 5), y + rng.normal(0, size / 2, 5)], 1), col)
    return img


def _shade_skin(img, poly_list, skin, proj, app, center, radius):
    """Composite skin shaded by a light ramp and a radial fall-off over the union of polys."""
    h, w = img.shape[:2]
    allp = np.concatenate(poly_list)
    x0, y0 = np.floor(allp.min(axis=0)).astype(int) - 2
    x1, y1 = np.ceil(allp.max(axis=0)).astype(int) + 3
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 <= x0 or y1 <= y0:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    off = np.array([x0, y0], np.float64)
    for p in poly_list:
        cv2.fillPoly(mask, [_ip(p - off)], 255, _AA, _SHIFT)
    dx = (np.arange(x0, x1, dtype=np.float32) - np.float32(center[0])) / np.float32(radius)
    dy = (np.arange(y0, y1, dtype=np.float32) - np.float32(center[1])) / np.float32(radius)
    lx, ly = app["light"]
    k = np.float32(app["light_strength"])
    shade = (np.float32(app["ambient"]) + (k * lx * dx - 0.18 * dx * dx)[None, :]
             + (k * ly * dy - 0.18 * dy * dy)[:, None])
    layer = np.clip(shade, 0.2, 1.4)[..., None] * np.asarray(skin, np.float32)
    a = mask.astype(np.float32)[..., None] / 255.0
    roi = img[y0:y1, x0:x1].astype(np.float32)
    img[y0:y1, x0:x1] = np.clip(roi + a * (layer - roi), 0, 255).astype(np.uint8)


def _light_at(app, p, center, radius):
    d = (np.asarray(p) - center) / radius
    v = app["ambient"] + app["light_strength"] * (d[0] * app["light"][0] + d[1] * app["light"][1])
    return float(np.clip(v - 0.18 * float(d @ d), 0.2, 1.4))


def _draw_eye(img, lm, iris_c, iris_r, squash, roll, app, k):
    """Sclera, iris (clipped to the eye opening), pupil, lids. lm: (6, 2) eye points."""
    h, w = img.shape[:2]
    curve = _catmull(lm, closed=True, n=5)
    x0, y0 = np.floor(curve.min(axis=0)).astype(int) - 3
    x1, y1 = np.ceil(curve.max(axis=0)).astype(int) + 4
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    off = np.array([x0, y0], np.float64)
    roi = img[y0:y1, x0:x1]
    mask = np.zeros(roi.shape[:2], np.uint8)
    cv2.fillPoly(mask, [_ip(curve - off)], 255, _AA, _SHIFT)
    layer = np.empty_like(roi)
    layer[:] = _col((232, 226, 220), k)
    _ellipse(layer, iris_c - off, (iris_r * squash, iris_r), roll, _col(app["iris"], k))
    pr = max(iris_r * 0.6, 1.0)
    _ellipse(layer, iris_c - off, (pr * squash, pr), roll, (12, 10, 10))
    if iris_r > 4:
        _ellipse(layer, iris_c - off + np.array([0.45, -0.45]) * iris_r, (iris_r * 0.12,) * 2,
                 0, (250, 250, 250))
    a = mask.astype(np.float32)[..., None] / 255.0
    roi[:] = np.clip(roi + a * (layer.astype(np.float32) - roi), 0, 255).astype(np.uint8)
    ew = float(np.linalg.norm(lm[3] - lm[0]))
    upper = _catmull(lm[[0, 1, 2, 3]], closed=False, n=5)
    lower = _catmull(lm[[3, 4, 5, 0]], closed=False, n=5)
    _line(img, upper, (25, 18, 16), max(1.0, 0.09 * ew))
    _line(img, lower, _col(app["skin"], 0.45 * k), max(1.0, 0.05 * ew))
    crease = upper + np.array([0.0, -0.22 * ew]) @ np.eye(2)
    _line(img, crease[2:-2], _col(app["skin"], 0.72 * k), max(1.0, 0.03 * ew))


def _draw_face(img, params, P, aux, proj, app, with_features=True):
    lm = proj.landmarks
    s = proj.s
    center = lm.mean(axis=0)
    radius = 1.3 * s
    hair = app["hair"]
    style = app["hair_style"]
    # hair behind the head, neck
    if style != "bald":
        _fill(img, _catmull(proj(aux["hair_back"]), True, 3), _col(hair, 0.8))
        if style == "long":
            _fill(img, proj(aux["hair_long"]), _col(hair, 0.75))
    neck = proj(aux["neck"])
    _shade_skin(img, [neck], np.asarray(app["skin"]) * 0.78, proj, app, center, radius)
    face = np.concatenate([lm[:17], proj.forehead[::-1]])
    nose = lm[[27, 31, 32, 33, 34, 35]]
    _shade_skin(img, [face, cv2.convexHull(nose.astype(np.float32)).reshape(-1, 2).astype(np.float64)],
                app["skin"], proj, app, center, radius)
    if style != "bald":
        fc = proj.forehead.mean(axis=0)
        outline = fc + (proj.forehead - fc) * 1.05
        cap = np.concatenate([_catmull(proj(aux["hairline"]), False, 3), outline[::-1]])
        _fill(img, cap, hair)
    if not with_features:
        return
    skin = np.asarray(app["skin"])
    # nose
    k = _light_at(app, lm[30], center, radius)
    _line(img, _catmull(lm[27:31], False, 4), skin * 0.86 * k, 0.05 * s)
    for a, b in ((31, 32), (35, 34)):
        ala = _catmull(np.array([lm[29] * 0.35 + lm[a] * 0.65, lm[a], lm[b]]), False, 4)
        _line(img, ala, skin * 0.62 * k, 0.022 * s)
    for c in (lm[32] * 0.75 + lm[31] * 0.25, lm[34] * 0.75 + lm[35] * 0.25):
        cc = c + (lm[30] - lm[33]) * 0.12
        _ellipse(img, cc, (0.045 * s * max(abs(proj.normal_z()), 0.4), 0.024 * s),
                 params["pose"]["roll"], skin * 0.3 * k)
    _ellipse(img, lm[30] + (lm[29] - lm[30]) * 0.15, (0.05 * s, 0.04 * s), 0, skin * 1.08 * k)
    # brows
    for a, b in ((17, 22), (22, 27)):
        pts = _catmull(lm[a:b], False, 4)
        kk = _light_at(app, lm[(a + b) // 2], center, radius)
        thick = 0.075 * s
        _line(img, pts, np.asarray(hair) * 0.8 * kk + 10, thick)
        _line(img, pts[:len(pts) // 3] if a == 17 else pts[-len(pts) // 3:],
              np.asarray(hair) * 0.8 * kk + 10, thick * 0.7)
    # eyes
    squash = max(abs(proj.normal_z()), 0.3)
    for a, name in ((36, "iris_r"), (42, "iris_l")):
        ic = proj(aux[name])
        kk = _light_at(app, ic, center, radius)
        _draw_eye(img, lm[a:a + 6], ic, 0.3 * aux["eye_w"] * s, squash,
                  params["pose"]["roll"], app, kk)
    # mouth
    kk = _light_at(app, lm[62], center, radius)
    lip = np.asarray(app["lip"])
    inner = np.concatenate([_catmull(lm[60:65], False, 3), _catmull(lm[[64, 65, 66, 67, 60]], False, 3)])
    if np.linalg.norm(lm[66] - lm[62]) > 0.02 * s:
        _fill(img, inner, (60 * kk, 22 * kk, 28 * kk))
        teeth = np.concatenate([_catmull(lm[60:65], False, 3),
                                _catmull(lm[60:65], False, 3)[::-1] + (lm[66] - lm[62]) * 0.3])
        _fill(img, teeth, _col((225, 220, 205), kk))
    upper = np.concatenate([_catmull(lm[48:55], False, 3), _catmull(lm[[64, 63, 62, 61, 60]], False, 3)])
    lower = np.concatenate([_catmull(lm[[54, 55, 56, 57, 58, 59, 48]], False, 3),
                            _catmull(lm[[60, 67, 66, 65, 64]], False, 3)])
    _fill(img, upper, lip * 0.9 * kk)
    _fill(img, lower, lip * kk)
    _line(img, _catmull(lm[60:65], False, 3), lip * 0.45 * kk, 0.015 * s)


def _draw_occluders(img, occ_list, lm, mask):
    lo, hi = lm.min(axis=0), lm.max(axis=0)
    c, half = (lo + hi) / 2, (hi - lo) / 2
    size = float(max(hi - lo))
    for o in occ_list:
        p = c + np.asarray(o["at"]) * half
        w, h = o["size"][0] * size * 2, o["size"][1] * size
        if o["kind"] == "bar":
            poly = cv2.boxPoints(((float(p[0]), float(p[1])), (w * 2, h * 0.6), o["angle"]))
            for m in (img, mask):
                _fill(m, poly, o["color"] if m is img else (255, 255, 255))
        else:
            col = o["color"]
            for m in (img, mask):
                _ellipse(m, p, (w / 2, h / 2), o["angle"], col if m is img else (255, 255, 255))


def _post(img, post):
    """Blur, contrast, colour cast and gain, gaussian noise; (H, W, 3) uint8 -> uint8."""
    out = img
    if post["blur"] > 0.3:
        out = cv2.GaussianBlur(out, (0, 0), post["blur"])
    mean = np.asarray(cv2.mean(out)[:3])
    gain = np.asarray(post["cast"]) * post["gain"]
    c = post["contrast"]
    v = np.arange(256, dtype=np.float64)[:, None]
    lut = np.clip(np.rint((v - mean) * c * gain + mean * gain), 0, 255).astype(np.uint8)
    out = cv2.LUT(out, lut.reshape(256, 1, 3))
    if post["noise"] > 1.0:
        rng = np.random.default_rng(post["seed"])
        noise = rng.standard_normal(out.shape, dtype=np.float32) * np.float32(post["noise"])
        out = np.clip(np.rint(out + noise), 0, 255).astype(np.uint8)
    return out


def _other_face(img, other, main_lm):
    """A partial other face at an image border, not overlapping the main landmark box."""
    rng = np.random.default_rng(other["seed"])
    h, w = img.shape[:2]
    p = sample_params(rng, "train", (h, w))
    lo, hi = main_lm.min(axis=0), main_lm.max(axis=0)
    size = float(max(hi - lo)) * other["rel_scale"]
    s = size / 2.0
    side, along = other["side"], other["along"]
    c = [(0.0, along * h), (w - 1.0, along * h), (along * w, 0.0), (along * w, h - 1.0)][side]
    P, aux = model_points(p["identity"], p["expression"])
    proj = _Projector(p["pose"], s, c, P, aux)
    olo, ohi = proj.landmarks.min(axis=0) - 0.3 * s, proj.landmarks.max(axis=0) + 0.3 * s
    if (olo < hi).all() and (ohi > lo).all():
        return
    _draw_face(img, p, P, aux, proj, p["appearance"])


def draw_sample(params, background=None):
    """Render `params` (see sample_params) deterministically, without JPEG encoding.

    background: optional (H, W, 3) uint8 to draw on instead of the generated one (videos
    reuse one). Returns (image (H, W, 3) uint8 RGB, landmarks (68, 2) float64, meta) where
    meta holds "occluded" (68,) bool (landmark under an occluder), "iris_centers" (2, 2)
    (right eye then left eye, image coordinates), "visible_jaw" (17,) bool (False where a
    jaw point was moved to the silhouette), "pose", and "jpeg_quality".
    """
    h, w = params["image_size"]
    P, aux = model_points(params["identity"], params["expression"])
    proj = _Projector(params["pose"], params["scale"], params["center"], P, aux)
    lm = proj.landmarks.copy()
    # keep the whole landmark box inside the image (2 px margin)
    lo, hi = lm.min(axis=0), lm.max(axis=0)
    shift = np.maximum(0.0, 2.0 - lo) - np.maximum(0.0, hi - (np.array([w, h]) - 3.0))
    proj.t = proj.t + shift
    proj.landmarks = lm + shift
    proj.forehead = proj.forehead + shift
    lm = proj.landmarks
    if background is None:
        img = _background(h, w, params["background"], params["background"]["seed"])
        for other in params.get("others", []):
            _other_face(img, other, lm)
    else:
        img = background.copy()
    _draw_face(img, params, P, aux, proj, params["appearance"])
    mask = np.zeros((h, w), np.uint8)
    _draw_occluders(img, params.get("occluders", []), lm, mask)
    img = _post(img, params["post"])
    xi = np.clip(np.round(lm[:, 0]).astype(int), 0, w - 1)
    yi = np.clip(np.round(lm[:, 1]).astype(int), 0, h - 1)
    rz, r3 = rotation(params["pose"]["yaw"], params["pose"]["pitch"], params["pose"]["roll"])
    jaw_native = aux["jaw_arcs"][:, 0] @ r3.T
    jaw_native = (jaw_native[:, :2] @ rz[:2, :2].T) * proj.s + proj.t
    meta = {
        "occluded": mask[yi, xi] > 127,
        "iris_centers": np.stack([proj(aux["iris_r"]), proj(aux["iris_l"])]),
        "visible_jaw": np.linalg.norm(jaw_native - lm[:17], axis=1) < 1e-6 * max(proj.s, 1),
        "pose": dict(params["pose"]),
        "jpeg_quality": params["post"]["jpeg_quality"],
        "skin": list(params["appearance"]["skin"]),
        "lip": list(params["appearance"]["lip"]),
    }
    return img, lm, meta


def jpeg_roundtrip(img, quality):
    """Encode (H, W, 3) RGB uint8 as JPEG at `quality` and decode it back."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def render_face(rng, params=None, image_size=None, split="train"):
    """Render one synthetic face.

    rng: numpy Generator (or int seed) drawing every random choice. params: optional
    (partial, nested) dict overriding the drawn ones (see sample_params), e.g.
    {"pose": {"yaw": 40}, "occluders": []}. image_size: None (random 200-500 px), int or
    (H, W). Returns (image (H, W, 3) uint8 RGB with JPEG artefacts when
    params["post"]["jpeg_quality"] is set, landmarks (68, 2) float64 0-based, meta dict
    (see draw_sample) with "params" added).
    """
    rng = np.random.default_rng(rng)
    full = merge_params(sample_params(rng, split, image_size), params)
    img, lm, meta = draw_sample(full)
    if full["post"]["jpeg_quality"]:
        img = jpeg_roundtrip(img, full["post"]["jpeg_quality"])
    meta["params"] = full
    return img, lm, meta


def mirror_params(params):
    """Params of the mirror image: yaw -> -yaw, roll -> -roll, centre x -> W - 1 - x, gaze
    and light mirrored. Landmarks of the result = mirrored landmarks permuted by FLIP_PERM."""
    out = copy.deepcopy(params)
    w = out["image_size"][1]
    out["pose"]["yaw"] = -out["pose"]["yaw"]
    out["pose"]["roll"] = -out["pose"]["roll"]
    out["center"][0] = w - 1 - out["center"][0]
    out["expression"]["gaze"][0] = -out["expression"]["gaze"][0]
    out["appearance"]["light"][0] = -out["appearance"]["light"][0]
    return out


def flip_landmarks(lm, width):
    """Landmarks of the horizontally mirrored image (0-based), indices permuted."""
    out = np.asarray(lm, np.float64).copy()
    out[:, 0] = width - 1 - out[:, 0]
    return out[FLIP_PERM]


# ----------------------------------------------------------------------------- datasets

DATASET_VERSION = 1
# 300-W folders and their share of the official image counts.
TRAIN_FOLDERS = (("afw", 337), ("helen/trainset", 2000), ("lfpw/trainset", 811))
TEST_FOLDERS = (("helen/testset", 330), ("lfpw/testset", 224), ("ibug", 135))
# 300-VW category-3 test ids first, then categories 1 and 2, so index_300vw(root, 3) finds them.
VIDEO_IDS = ("410", "411", "516", "517", "526", "528", "529", "530", "531", "533", "557", "558",
             "559", "562", "114", "124", "125", "126", "150", "158", "401", "402", "505", "506")
_KIND = {"train": 1, "test": 2, "video": 3}


def sample_rng(seed, kind, index):
    """The Generator of sample `index` of `kind` ("train", "test", "video") for `seed`."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), _KIND[kind], int(index)]))


def _allocate(n, folders):
    """Split n images over folders in proportion to their weights, at least 1 each."""
    weights = np.array([w for _, w in folders], np.float64)
    counts = np.maximum(1, np.floor(n * weights / weights.sum())).astype(int)
    while counts.sum() < n:
        counts[int(np.argmax(n * weights / weights.sum() - counts))] += 1
    while counts.sum() > n:
        counts[int(np.argmax(counts))] -= 1
    out = []
    for (name, _), c in zip(folders, counts):
        out += [name] * int(c)
    return out


def still_jobs(n_train, n_test, seed, image_size=None):
    """The list of still images to make: dicts with kind, index, folder, name, ext, split."""
    for n, what in ((n_train, "train"), (n_test, "test")):
        if n != 0 and n < 3:
            raise ValueError(f"n_{what} must be 0 or at least 3 (one per 300-W folder), got {n}")
    jobs = []
    for kind, n, folders in (("train", n_train, TRAIN_FOLDERS), ("test", n_test, TEST_FOLDERS)):
        for i, folder in enumerate(_allocate(n, folders) if n else []):
            jobs.append({"kind": kind, "index": i, "folder": folder, "seed": int(seed),
                         "name": f"synth_{kind}_{i:05d}",
                         "ext": ".png" if folder.startswith("lfpw") else ".jpg",
                         "split": "ibug" if folder == "ibug" else "train",
                         "image_size": image_size})
    return jobs


def make_still(job, root):
    """Render and write one still (image + .pts) under root/300w; returns its manifest entry."""
    from fadenn_tf.data.pts import write_pts
    rng = sample_rng(job["seed"], job["kind"], job["index"])
    params = sample_params(rng, job["split"], job["image_size"])
    img, lm, meta = draw_sample(params)
    q = params["post"]["jpeg_quality"]
    bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    if job["ext"] == ".jpg":
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(q or 95)])
    else:
        if q:
            bgr = cv2.cvtColor(jpeg_roundtrip(img, q), cv2.COLOR_RGB2BGR)
        ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise RuntimeError(f"cannot encode {job['name']}{job['ext']}")
    folder = Path(root) / "300w" / job["folder"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / (job["name"] + job["ext"])).write_bytes(buf.tobytes())
    write_pts(folder / (job["name"] + ".pts"), lm)
    pose = params["pose"]
    return {"file": f"300w/{job['folder']}/{job['name']}{job['ext']}",
            "size": [int(img.shape[0]), int(img.shape[1])],
            "yaw": round(pose["yaw"], 2), "pitch": round(pose["pitch"], 2),
            "roll": round(pose["roll"], 2), "occluded_points": int(meta["occluded"].sum())}


def _readme(counts, seed):
    return f"""fadenn_tf synthetic faces (version {DATASET_VERSION})

Procedurally drawn cartoon faces with exact 68-point landmarks (ibug / 300-W markup),
made by `python -m fadenn_tf.synth` (fadenn_tf.data.synthetic), seed {seed}.
For trying every command, tests, demos and sanity checks of training. A model trained on
it is NOT a model for real faces: use 300-W / Menpo / 300-VW for that.

300w/   the 300-W layout: train = afw + helen/trainset + lfpw/trainset ({counts['train']} images),
        common test = helen/testset + lfpw/testset, challenging = ibug (harder poses,
        occlusion, imaging); {counts['test']} test images in all. NAME.jpg/.png beside NAME.pts
        (1-based ibug coordinates).
300vw/  the 300-VW layout: {counts['videos']} videos of {counts['frames']} frames, <id>/vid.avi (MJPG)
        + <id>/annot/000001.pts ...; ids are real 300-VW category-3 test ids first.
manifest.json  counts, seed and per-image pose / occlusion.
"""


def generate_dataset(out, n_train=1200, n_test=300, n_videos=6, n_frames=120, seed=0,
                     progress=False, image_size=None, frame_size=None, workers=1):
    """Generate a synthetic dataset in the 300-W and 300-VW layouts under `out`.

    out must not exist or be an empty folder; the dataset is written into a temporary
    folder beside it and renamed onto `out` at the end, so it appears complete or not at all.
    Every sample has its own seed derived from (seed, kind, index): the same arguments give
    the same bytes, whatever `workers` (processes) is. image_size: None (random 200-500 px
    sides) or an int / (H, W) for every still; frame_size (H, W) of the videos.
    progress: show a progress bar (CLIs only). Returns the Path of `out`.
    """
    from fadenn_tf.data.synthetic_video import DEFAULT_FRAME_SIZE, write_video
    from fadenn_tf.utils.atomic import atomic_path, write_json_atomic, write_text_atomic
    from fadenn_tf.utils.progress import progress as bar
    out = Path(out)
    if n_videos > len(VIDEO_IDS):
        raise ValueError(f"at most {len(VIDEO_IDS)} videos, got {n_videos}")
    if n_videos and n_frames < 1:
        raise ValueError(f"n_frames must be at least 1, got {n_frames}")
    if out.exists():
        if not out.is_dir() or any(out.iterdir()):
            raise FileExistsError(f"{out}: already exists and is not an empty folder")
        out.rmdir()
    frame_size = tuple(frame_size or DEFAULT_FRAME_SIZE)
    jobs = still_jobs(n_train, n_test, seed, image_size)
    total = len(jobs) + n_videos
    with atomic_path(out, is_dir=True) as tmp:
        with bar(total=total, desc="synthetic faces", enabled=progress, unit="item") as pb:
            entries = []
            if workers > 1 and len(jobs) > 1:
                import functools
                import multiprocessing
                with multiprocessing.get_context("spawn").Pool(workers) as pool:
                    for e in pool.imap(functools.partial(make_still, root=tmp), jobs, chunksize=8):
                        entries.append(e)
                        pb.update(1)
            else:
                for job in jobs:
                    entries.append(make_still(job, tmp))
                    pb.update(1)
            videos = []
            for v in range(n_videos):
                vid = VIDEO_IDS[v]
                n = write_video(tmp / "300vw" / vid, sample_rng(seed, "video", v), n_frames,
                                frame_size)
                videos.append({"id": vid, "frames": n, "size": list(frame_size)})
                pb.update(1)
        counts = {"train": n_train, "test": n_test, "videos": n_videos, "frames": n_frames}
        write_text_atomic(tmp / "README.txt", _readme(counts, seed))
        write_json_atomic(tmp / "manifest.json", {
            "name": "fadenn_tf synthetic faces", "version": DATASET_VERSION, "seed": int(seed),
            "counts": counts, "image_size": image_size, "frame_size": list(frame_size),
            "complete": True, "videos": videos, "stills": entries})
    return out
