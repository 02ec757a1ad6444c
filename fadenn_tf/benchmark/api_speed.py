"""Speed of what users call: the dlib peer, degrade, and predict/track through the public API
on a synthetic clip."""
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from fadenn_tf.benchmark.machine import median_seconds
from fadenn_tf.benchmark.report import _row
from fadenn_tf.benchmark.settings import DLIB_MODEL


def bench_dlib(samples, model_path=DLIB_MODEL, repeats=5):
    """dlib ERT 68-point per-face latency (ms, median over faces of the median of `repeats`
    calls) on the images of `samples`, box = the tight landmark box. Returns a dict with
    "error" when dlib or its model file is missing."""
    try:
        import dlib
    except ImportError:
        return {"error": "dlib not installed (pip install dlib-bin)"}
    if not Path(model_path).is_file():
        return {"error": f"{model_path}: dlib 68-point model not found (apt-get install "
                         "libdlib-data, or pass --dlib-model)"}
    from fadenn_tf.data.crop import landmark_box
    from fadenn_tf.data.datasets import read_sample_image
    predictor = dlib.shape_predictor(str(model_path))
    per_face = []
    for s in samples:
        img = np.ascontiguousarray(read_sample_image(s))
        x0, y0, x1, y1 = [int(round(v)) for v in landmark_box(s.landmarks)]
        rect = dlib.rectangle(x0, y0, x1, y1)
        per_face.append(median_seconds(lambda: predictor(img, rect), repeats, 1) * 1e3)
    ms = statistics.median(per_face)
    return {"latency_ms_b1": ms, "images_per_s": 1e3 / ms, "faces": len(per_face),
            "dlib": dlib.__version__}


def bench_degrade(data=None, n_images=32, workers=2):
    """Wall time of `degrade --crop` (12 conditions + clean, 224-px PNG crops, `workers`
    processes) on n_images test stills of `data` (default synthetic), written to a temporary
    folder. Returns the manifest's timing figures and counts."""
    from fadenn_tf.data.cache import resolve_data
    from fadenn_tf.evaluation.degraded import degrade_dataset
    from fadenn_tf.noise import REFERENCE_SIZE
    root = Path(resolve_data(data))
    if (root / "300w").is_dir():
        root = root / "300w"
    with tempfile.TemporaryDirectory(prefix="bench-degrade-") as tmp:
        m = degrade_dataset(root, Path(tmp) / "out", split="test", workers=workers,
                            max_images=n_images, reference_size=REFERENCE_SIZE)
    return {k: m[k] for k in ("n_images", "ms_per_image_condition",
                              "steady_ms_per_image_condition", "wall_s", "workers",
                              "reference_size", "n_skipped")}


def synthetic_clip(n_frames=100, size=(360, 640), face_px=110.0, seed=0, detector=None,
                   tries=20):
    """(frames (N, H, W, 3) uint8 RGB, box of frame 0, seed): one frontal synthetic face
    about face_px wide drifting slowly (a shift of <= 1.5 px per frame) over a 640x360
    frame. With a detector, the first of `tries` seeds from `seed` whose face it finds."""
    import cv2
    from fadenn_tf.data.crop import landmark_box
    from fadenn_tf.data.synthetic import render_face
    h, w = size
    params = {"pose": {"yaw": 0.0, "pitch": 0.0, "roll": 0.0}, "occluders": [],
              "others": [], "scale": face_px / 2, "center": [w / 2, h / 2]}
    for s in range(seed, seed + (tries if detector is not None else 1)):
        img, lm, _ = render_face(s, params=params, image_size=(h, w))
        if detector is None or len(detector(img)):
            seed = s
            break
    frames = []
    for t in range(n_frames):
        dx, dy = 40 * np.sin(t / 30), 15 * np.sin(t / 45)
        m = np.float32([[1, 0, dx], [0, 1, dy]])
        frames.append(cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT))
    return np.stack(frames), landmark_box(lm), seed


def bench_api(model_path, detector="default", repeats=5, num_threads=None, n_frames=100,
              failure_detector=None, note=""):
    """API rows: one face from image to landmarks at batch 1 (Predictor.predict(image,
    boxes=box) on a 640x360 frame: crop + model + uncrop), Keras vs LiteRT; the detector on
    a 640x360 frame; tracking frames/s (Tracker.step, detector and checks included) on a
    synthetic 640x360 clip with each backend. Returns a list of row dicts."""
    from fadenn_tf.inference.predictor import load
    from fadenn_tf.inference.litert import median_latency_ms
    from fadenn_tf.tracking.tracker import Tracker, _as_detector, _as_failure_detector
    det = _as_detector(detector)
    frames, box, seed = synthetic_clip(n_frames, detector=det)
    rows = []
    det_name = detector if isinstance(detector, str) else type(detector).__name__
    ms = median_latency_ms(lambda: det(frames[0]), repeats * 4, 2)
    rows.append(_row("api", "-", f"detector {det_name}", "detect(640x360 frame)",
                     batch=1, latency_ms_b1=ms,
                     note=f"{len(det(frames[0]))} face(s) found in the clip's first frame "
                          f"(synthetic face seed {seed})"))
    fd = _as_failure_detector(failure_detector)
    for backend in ("keras", "litert"):
        try:
            pred = load(model_path, detector=None, backend=backend, num_threads=num_threads)
        except Exception as exc:  # e.g. no LiteRT, conversion failure: report, continue
            rows.append(_row("api", "-", str(model_path), f"{backend}: predict(image, box)",
                             error=f"{type(exc).__name__}: {str(exc)[:300]}"))
            continue
        pred.warm_up()
        ms = median_latency_ms(lambda: pred.predict(frames[0], boxes=box), repeats * 10, 3)
        rows.append(_row("api", "-", str(model_path), f"{backend}: predict(image, box)",
                         batch=1, latency_ms_b1=ms, crop=pred.size,
                         note=f"one face, 640x360 image to landmarks{note}"))
        fps = []
        for _ in range(max(1, repeats // 2)):
            tracker = Tracker(pred, det, fd)
            tracker.warm_up()
            t0 = time.perf_counter()
            recs = [tracker.step(f) for f in frames]
            fps.append(len(frames) / (time.perf_counter() - t0))
        counts = {k: sum(r.status == k for r in recs) for k in ("tracked", "re-detected",
                                                                "lost")}
        rows.append(_row("api", "-", str(model_path), f"{backend}: track 640x360 clip",
                         images_per_s=statistics.median(fps), crop=pred.size,
                         note=f"frames/s over {len(frames)} synthetic frames, detector "
                              f"{det_name}, failure detector "
                              f"{'yes' if fd is not None else 'no'}; last run: "
                              + ", ".join(f"{v} {k}" for k, v in counts.items()) + note))
    return rows
