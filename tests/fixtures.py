"""Write small fixture datasets in exactly the real layouts (300-W, Menpo 2D, 300-VW, folder).

Every helper writes real image files (cv2.imwrite), real videos (cv2.VideoWriter, MJPG in
.avi) and real 1-based .pts files (fadenn_tf.data.pts.write_pts) holding a plausible
68-point face, and returns what it wrote so tests can compare. Sizes are (height, width).
Landmarks returned are 0-based (x, y), as read_pts gives them back.
"""
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fadenn_tf.data.pts import write_pts


@dataclass(frozen=True)
class Written:
    """One image + .pts written by a fixture helper."""
    image_path: Path
    pts_path: Path
    landmarks: np.ndarray  # (N, 2) 0-based (x, y)
    subset: str


@dataclass(frozen=True)
class WrittenVideo:
    """One 300-VW video folder written by make_300vw."""
    video_id: str
    video_path: Path
    annot_dir: Path
    landmarks: np.ndarray  # (frames, 68, 2) 0-based (x, y)
    levels: tuple  # background grey level of each frame (see frame_level)


def _unit_face68():
    """A 68-point face in unit coordinates: centre (0, 0), half-width 1, y down."""
    pts = []
    a = np.linspace(0.0, np.pi, 17)  # jaw 0-16, subject's right ear -> chin -> left ear
    pts += list(zip(-np.cos(a), -0.1 + 0.9 * np.sin(a)))
    for sign in (-1, 1):  # brows 17-21 (image left), 22-26 (image right)
        xs = np.linspace(-0.8, -0.15, 5) if sign < 0 else np.linspace(0.15, 0.8, 5)
        pts += [(x, -0.45 - 0.08 * np.sin(np.pi * (abs(x) - 0.15) / 0.65)) for x in xs]
    pts += [(0.0, y) for y in np.linspace(-0.3, 0.1, 4)]  # nose bridge 27-30
    pts += [(x, 0.2 + 0.05 * (1 - abs(x) / 0.2)) for x in np.linspace(-0.2, 0.2, 5)]  # 31-35
    for cx in (-0.4, 0.4):  # eyes 36-41, 42-47: corner, 2 upper, corner, 2 lower
        ang = np.deg2rad([180, 120, 60, 0, -60, -120])
        pts += list(zip(cx + 0.15 * np.cos(ang), -0.22 - 0.06 * np.sin(ang)))
    ang = np.deg2rad(np.linspace(180, -150, 12))  # outer mouth 48-59
    pts += list(zip(0.35 * np.cos(ang), 0.5 - 0.15 * np.sin(ang)))
    ang = np.deg2rad([180, 135, 90, 45, 0, -45, -90, -135])  # inner mouth 60-67
    pts += list(zip(0.25 * np.cos(ang), 0.5 - 0.06 * np.sin(ang)))
    out = np.asarray(pts, dtype=np.float64)
    assert out.shape == (68, 2)
    return out


UNIT_FACE68 = _unit_face68()


def face_landmarks(size=(100, 120), rng=None, n_points=68):
    """A plausible face's (n_points, 2) 0-based landmarks inside an image of size (h, w).

    The face is centred near the middle, about half the image wide, with a little jitter;
    coordinates have 3 decimals so .pts files round-trip exactly. n_points=39 gives a
    profile-like half face (for Menpo).
    """
    rng = np.random.default_rng(rng)
    h, w = size
    scale = 0.25 * min(h, w) * rng.uniform(0.9, 1.1)
    centre = np.array([w / 2, h / 2]) + rng.uniform(-0.05, 0.05, 2) * (w, h)
    pts = UNIT_FACE68 * scale + centre + rng.normal(0, 0.01 * scale, (68, 2))
    if n_points == 39:
        pts = np.concatenate([pts[:9], pts[17:22], pts[27:42], pts[48:58]])
    elif n_points != 68:
        raise ValueError("n_points must be 68 or 39")
    return np.round(pts, 3)


def face_image(size=(100, 120), landmarks=None, rng=None, background=None):
    """An (h, w, 3) uint8 RGB picture of a face: noisy background, skin ellipse, dark eyes
    and mouth drawn at the landmarks. background: a grey level for a flat background."""
    rng = np.random.default_rng(rng)
    h, w = size
    if background is None:
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    else:
        img = np.full((h, w, 3), background, np.uint8)
    if landmarks is not None and len(landmarks) == 68:
        lm = np.asarray(landmarks)
        c = lm.mean(axis=0)
        ax = (lm.max(axis=0) - lm.min(axis=0)) / 2
        cv2.ellipse(img, (int(c[0]), int(c[1])), (int(ax[0]), int(ax[1] * 1.1)), 0, 0, 360,
                    (200, 160, 130), -1)
        for idx in (range(36, 42), range(42, 48), range(48, 60)):
            cv2.fillPoly(img, [np.round(lm[list(idx)]).astype(np.int32)], (40, 20, 20))
    return img


def write_image(path, rgb):
    """Write an RGB uint8 image (or a 2-D/other array as is) with cv2.imwrite."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = rgb[:, :, ::-1] if rgb.ndim == 3 and rgb.shape[2] == 3 else rgb
    if not cv2.imwrite(str(path), np.ascontiguousarray(arr)):
        raise OSError(f"cv2.imwrite failed for {path}")
    return path


def write_sample(folder, stem, ext=".jpg", size=(100, 120), rng=None, subset="",
                 n_points=68):
    """Write folder/stem{ext} and folder/stem.pts with a random face; return a Written."""
    rng = np.random.default_rng(rng)
    folder = Path(folder)
    lms = face_landmarks(size, rng, n_points)
    img = face_image(size, lms if n_points == 68 else None, rng)
    image_path = write_image(folder / f"{stem}{ext}", img)
    pts_path = folder / f"{stem}.pts"
    write_pts(pts_path, lms)
    return Written(image_path, pts_path, lms, subset)


# 300-W folders and the image extension each uses in the real release.
FOLDERS_300W = {"afw": ".jpg", "helen/trainset": ".jpg", "helen/testset": ".jpg",
                "lfpw/trainset": ".png", "lfpw/testset": ".png", "ibug": ".jpg"}
FOLDERS_300W_PRIVATE = {"01_Indoor": ".png", "02_Outdoor": ".png"}


def make_300w(root, n_per_folder=2, size=(100, 120), private=False, seed=0):
    """Write a 300-W tree under root: afw, helen/{trainset,testset}, lfpw/{trainset,testset},
    ibug (and 01_Indoor, 02_Outdoor if private). Returns {folder: [Written, ...]}."""
    rng = np.random.default_rng(seed)
    folders = dict(FOLDERS_300W, **(FOLDERS_300W_PRIVATE if private else {}))
    out = {}
    for sub, ext in folders.items():
        prefix = {"01_Indoor": "indoor_", "02_Outdoor": "outdoor_"}.get(sub, "image_")
        out[sub] = [write_sample(Path(root) / sub, f"{prefix}{i + 1:03d}", ext, size, rng, sub)
                    for i in range(n_per_folder)]
    return out


def make_menpo(root, n_frontal=3, n_profile=2, size=(100, 120), seed=0):
    """Write a Menpo 2D folder: n_frontal 68-point and n_profile 39-point samples mixed in
    one folder. Returns {"frontal": [Written], "profile": [Written]}."""
    rng = np.random.default_rng(seed)
    frontal = [write_sample(root, f"aflw__face_{i:05d}", ".jpg", size, rng, "menpo")
               for i in range(n_frontal)]
    profile = [write_sample(root, f"aflw__face_{i + 500:05d}", ".jpg", size, rng, "menpo",
                            n_points=39) for i in range(n_profile)]
    return {"frontal": frontal, "profile": profile}


def make_folder(root, n=3, subfolders=("", "more"), size=(100, 120), ext=".png", seed=0):
    """Write a generic folder: n samples in each of `subfolders` ("" = root itself).
    Returns [Written] with subset = the subfolder (or the root's name)."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    out = []
    for sub in subfolders:
        for i in range(n):
            out.append(write_sample(root / sub, f"face{i:02d}", ext, size, rng,
                                    sub or root.name))
    return out


def frame_level(i):
    """Background grey level of frame i in make_300vw videos (distinct per frame mod 6)."""
    return 20 + 40 * (i % 6)


def write_video(path, frames_rgb, fps=25.0):
    """Write RGB uint8 frames to an MJPG .avi with cv2.VideoWriter."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames_rgb[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    if not writer.isOpened():
        raise OSError(f"cv2.VideoWriter cannot write {path}")
    for f in frames_rgb:
        writer.write(np.ascontiguousarray(f[:, :, ::-1]))
    writer.release()
    return path


def make_300vw(root, video_ids=("114", "410"), frames=5, size=(100, 120), seed=0):
    """Write a 300-VW tree: root/<id>/vid.avi (MJPG, `frames` frames, flat grey background
    frame_level(i) with a face) and root/<id>/annot/000001.pts ... (1-based).
    Returns {video_id: WrittenVideo}."""
    rng = np.random.default_rng(seed)
    out = {}
    for vid in video_ids:
        folder = Path(root) / vid
        base = face_landmarks(size, rng)
        lms, imgs = [], []
        for i in range(frames):
            lm = np.round(base + i * 0.5, 3)  # drifts half a pixel per frame
            lms.append(lm)
            imgs.append(face_image(size, lm, rng, background=frame_level(i)))
            write_pts(folder / "annot" / f"{i + 1:06d}.pts", lm)
        video = write_video(folder / "vid.avi", imgs)
        out[vid] = WrittenVideo(vid, video, folder / "annot", np.stack(lms),
                                tuple(frame_level(i) for i in range(frames)))
    return out


def dot_image(h, w, x, y, sigma):
    """Float32 image (h, w, 3) with a gaussian dot centred at pixel-centre (x, y), peak 255."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    g = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma ** 2)) * 255
    return np.repeat(g[:, :, None], 3, axis=2).astype(np.float32)


def centroid(img):
    g = np.asarray(img, np.float64)[..., 0]
    yy, xx = np.mgrid[0:g.shape[0], 0:g.shape[1]]
    return np.array([(g * xx).sum() / g.sum(), (g * yy).sum() / g.sum()])


def walk_layers(layer):
    """`layer` and every layer nested in it, depth first (Keras models nest models)."""
    yield layer
    for sub in getattr(layer, "layers", []):
        yield from walk_layers(sub)


def load_experiment(name):
    """The module of experiments/NAME.py (the scripts are not a package)."""
    import importlib.util
    path = Path(__file__).resolve().parents[1] / "experiments" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
