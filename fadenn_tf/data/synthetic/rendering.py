"""Images are drawn with OpenCV (anti-aliased polygons, ellipses, polylines): background
(gradient, texture, clutter shapes, partial other faces), hair, neck, skin shaded by a light
direction, eyebrows, eyes (sclera, iris, pupil, lids), nose, lips and mouth interior, then
random occluders, colour cast, blur, noise and JPEG artefacts.
"""
import math
import time

import cv2
import numpy as np

from fadenn_tf.data.synthetic.face_model import _Projector, model_points, rotation
from fadenn_tf.data.synthetic.sampling import merge_params, sample_params

_SHIFT = 4                    # sub-pixel bits for cv2 drawing
_ONE = 1 << _SHIFT
_AA = cv2.LINE_AA


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





def render_speed(size=256, n=200, seed=0):
    """Images per second of render_face at size x size on this process (one core)."""
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        for i in range(5):
            render_face(np.random.default_rng([seed, i]), image_size=size)
        t0 = time.perf_counter()
        for i in range(n):
            render_face(np.random.default_rng([seed, 10 + i]), image_size=size)
        return n / (time.perf_counter() - t0)
    finally:
        cv2.setNumThreads(threads)
