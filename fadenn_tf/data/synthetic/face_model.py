"""The face model (units: half the face width; x right, y down, z towards the camera):
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
"""
import math

import numpy as np

from fadenn_tf.data.landmarks68 import NUM_POINTS

_HEAD_C, _HEAD_B = -0.35, 0.8   # head cross-section: z = C + B cos(phi)


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
