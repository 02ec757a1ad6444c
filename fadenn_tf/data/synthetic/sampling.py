"""Random parameters of a synthetic face: pose, identity, expression, appearance, occluders,
other faces; their mirror image."""
import copy

import numpy as np

_SPLITS = ("train", "ibug")


_SKIN_TONES = np.array([[238, 206, 180], [222, 178, 146], [196, 144, 108],
                        [160, 110, 76], [118, 78, 52], [86, 56, 40]], np.float64)


_HAIR_TONES = np.array([[20, 16, 14], [55, 38, 26], [100, 70, 40], [160, 120, 70],
                        [200, 170, 120], [130, 130, 130], [90, 40, 25]], np.float64)


_IRIS_TONES = np.array([[70, 45, 25], [110, 75, 40], [60, 90, 130], [80, 110, 70],
                        [40, 30, 25]], np.float64)


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


