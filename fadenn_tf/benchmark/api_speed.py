"""Speed of what users call: the dlib peer, degrade, predict/track through the public API
on a synthetic clip, and the face detectors on held-out real faces (detect rows)."""
import collections
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from fadenn_tf.benchmark.machine import median_seconds
from fadenn_tf.benchmark.report import _row
from fadenn_tf.benchmark.settings import DLIB_MODEL
from fadenn_tf.data.cache import resolve_data
from fadenn_tf.data.crop import landmark_box
from fadenn_tf.data.datasets import open_dataset, read_sample_image, split_holdout
from fadenn_tf.data.synthetic import render_face
from fadenn_tf.deploy.litert import median_latency_ms
from fadenn_tf.detect.registry import default_detector_name
from fadenn_tf.evaluation import detectors as dev
from fadenn_tf.evaluation.degrade_options import DegradeOptions
from fadenn_tf.evaluation.degraded import degrade_dataset
from fadenn_tf.fitcheck.detector import failure_detector_from_spec
from fadenn_tf.inference.predictor import load
from fadenn_tf.noise import REFERENCE_SIZE, degrade_image
from fadenn_tf.tracking.tracker import Tracker, _as_detector, _fd_name


def bench_dlib(samples, model_path=DLIB_MODEL, repeats=5):
    """dlib ERT 68-point per-face latency (ms, median over faces of the median of `repeats`
    calls) on the images of `samples`, box = the tight landmark box. Returns a dict with
    "error" when dlib or its model file is missing."""
    try:
        import dlib  # lazy: optional dependency dlib
    except ImportError:
        return {"error": "dlib not installed (pip install 'fadenn_tf[dlib]')"}
    if not Path(model_path).is_file():
        return {"error": f"{model_path}: dlib 68-point model not found (apt-get install "
                         "libdlib-data, or pass --dlib-model)"}
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
    root = Path(resolve_data(data))
    if (root / "300w").is_dir():
        root = root / "300w"
    with tempfile.TemporaryDirectory(prefix="bench-degrade-") as tmp:
        m = degrade_dataset(root, Path(tmp) / "out", DegradeOptions(
            split="test", workers=workers, max_images=n_images, reference_size=REFERENCE_SIZE))
    return {k: m[k] for k in ("n_images", "ms_per_image_condition",
                              "steady_ms_per_image_condition", "wall_s", "workers",
                              "reference_size", "n_skipped")}


def synthetic_clip(n_frames=100, size=(360, 640), face_px=110.0, seed=0, detector=None,
                   tries=20):
    """(frames (N, H, W, 3) uint8 RGB, box of frame 0, seed): one frontal synthetic face
    about face_px wide drifting slowly (a shift of <= 1.5 px per frame) over a 640x360
    frame. With a detector, the first of `tries` seeds from `seed` whose face it finds."""
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


def median_cpu_ms(fn, repeats=20, warmup=3):
    """Median CPU time of this process (all its threads) per fn() call in milliseconds:
    on a CPU shared with other jobs it moves far less than the wall time (waiting for a
    core is not counted), so it estimates the cost on an idle machine (single-core
    equivalent; several threads of one call add up)."""
    return median_latency_ms(fn, repeats, warmup, clock=time.process_time)


def bench_api(model_path, settings, num_threads=None, note="", n_real=40):
    """API rows: one face from image to landmarks at batch 1 (Predictor.predict(image,
    boxes=box) on a 640x360 frame: crop + model + uncrop), Keras vs LiteRT; the detector on
    a 640x360 frame; tracking frames/s (Tracker.step, detector and checks included) on a
    synthetic 640x360 clip of settings.api_frames frames with each backend. settings: a
    benchmark.settings.Settings (detector, failure_detector, repeats, data). With
    settings.data (a 300-W layout), also one face on each of `n_real` held-out real photos
    (_real_faces_row). Returns a list of row dicts."""
    detector, failure_detector = settings.detector, settings.failure_detector
    repeats, n_frames, data = settings.repeats, settings.api_frames, settings.data
    det = _as_detector(detector)
    frames, box, seed = synthetic_clip(n_frames, detector=det)
    rows = []
    det_name = detector if isinstance(detector, str) else type(detector).__name__
    ms = median_latency_ms(lambda: det(frames[0]), repeats * 4, 2)
    cpu = median_cpu_ms(lambda: det(frames[0]), repeats * 4, 1)
    rows.append(_row("api", "-", f"detector {det_name}", "detect(640x360 frame)",
                     batch=1, latency_ms_b1=ms, cpu_ms=cpu,
                     note=f"{len(det(frames[0]))} face(s) found in the clip's first frame "
                          f"(synthetic face seed {seed}); CPU {cpu:.1f} ms"))
    empty = frames[0].copy()  # the face blurred out: every detector of a chain runs
    x0, y0, x1, y1 = (int(v) for v in np.round(box))
    grow = (x1 - x0) // 4
    x0, y0, x1, y1 = max(0, x0 - grow), max(0, y0 - grow), x1 + grow, y1 + grow
    empty[y0:y1, x0:x1] = cv2.GaussianBlur(empty[y0:y1, x0:x1], (0, 0), (x1 - x0) / 8)
    ms = median_latency_ms(lambda: det(empty), repeats * 4, 2)
    cpu = median_cpu_ms(lambda: det(empty), repeats * 4, 1)
    rows.append(_row("api", "-", f"detector {det_name}", "detect(640x360 frame, no face)",
                     batch=1, latency_ms_b1=ms, cpu_ms=cpu,
                     note=f"the first frame with its face blurred out; "
                          f"{len(det(empty))} box(es) found; CPU {cpu:.1f} ms"))
    fd = failure_detector_from_spec(failure_detector, model_path)
    for backend in ("keras", "litert", "litert-int8"):
        try:
            pred = load(model_path, detector=None, backend=backend, num_threads=num_threads,
                        failure_detector=None)
        except Exception as exc:  # e.g. no LiteRT, conversion failure: report, continue
            rows.append(_row("api", "-", str(model_path), f"{backend}: predict(image, box)",
                             error=f"{type(exc).__name__}: {str(exc)[:300]}"))
            continue
        pred.warm_up()
        ms = median_latency_ms(lambda: pred.predict(frames[0], boxes=box), repeats * 10, 3)
        cpu = median_cpu_ms(lambda: pred.predict(frames[0], boxes=box), repeats * 10, 1)
        extra = ""
        if fd is not None:  # what load()'s default fit_score adds per face
            lm = pred.predict(frames[0], boxes=box)[0].landmarks
            extra = (f"; the fit score (failure detector, on by default for shipped models) "
                     f"adds {median_latency_ms(lambda: fd.score(frames[0], lm), repeats * 10, 3):.2f} ms")
        cls = pred.predict(frames[0], boxes=box)[0].noise_class
        rows.append(_row("api", "-", str(model_path), f"{backend}: predict(image, box)",
                         batch=1, latency_ms_b1=ms, crop=pred.size, cpu_ms=cpu,
                         note=f"one face, 640x360 image to landmarks; CPU {cpu:.2f} ms"
                              f"{_routed_note(pred, cls)}{extra}{note}"))
        if getattr(pred.model, "kind", "") == "litert-routed":
            rows.append(_noisy_face_row(pred, frames[0], box, repeats, str(model_path),
                                        backend, note))
        if data is not None and backend != "keras":
            rows.append(_real_faces_row(pred, fd, data, n_real, repeats, str(model_path),
                                        backend, note))
        fps, cpu_fps = [], []
        for _ in range(max(1, repeats // 2)):
            tracker = Tracker(pred, det, fd)
            tracker.warm_up()
            c0, t0 = time.process_time(), time.perf_counter()
            recs = [tracker.step(f) for f in frames]
            fps.append(len(frames) / (time.perf_counter() - t0))
            cpu_fps.append(len(frames) / max(1e-9, time.process_time() - c0))
        counts = {k: sum(r.status == k for r in recs) for k in ("tracked", "re-detected",
                                                                "lost")}
        rows.append(_row("api", "-", str(model_path), f"{backend}: track 640x360 clip",
                         images_per_s=statistics.median(fps), crop=pred.size,
                         cpu_frames_per_s=statistics.median(cpu_fps),
                         note=f"frames/s over {len(frames)} synthetic frames ("
                              f"{statistics.median(cpu_fps):.0f} per CPU second), detector "
                              f"{det_name}, failure detector "
                              f"{_fd_name(fd) or 'none'}; last run: "
                              + ", ".join(f"{v} {k}" for k, v in counts.items()) + note))
    return rows


# ----------------------------------------------------------------------- detect rows

def _routed_note(pred, cls):
    if getattr(pred.model, "kind", "") != "litert-routed":
        return ""
    return (f"; routed parts: classify, then {'no expert' if not cls else f'expert {cls}'} "
            f"(noise class {cls}), then landmarks")


def _noisy_face_row(pred, frame, box, repeats, model_path, backend, note):
    """The one-face row on the frame blurred at level 3 (noise.degrade_image), so that a
    routed model runs an expert: what a noisy face costs."""
    noisy = degrade_image(frame, 2, 3, 0)
    ms = median_latency_ms(lambda: pred.predict(noisy, boxes=box), repeats * 10, 3)
    cls = pred.predict(noisy, boxes=box)[0].noise_class
    return _row("api", "-", model_path, f"{backend}: predict(blurred image, box)", batch=1,
                latency_ms_b1=ms, crop=pred.size,
                note=f"one face, the 640x360 frame with blur level 3{_routed_note(pred, cls)}"
                     f"{note}")


def _held_out_faces(data):
    """(annotated 68-point samples of the "train" split of `data`, the held-out part of them:
    split_holdout(0.15, seed 0), the project's split). data: a dataset folder, None for the
    built-in synthetic set."""
    found, _ = open_dataset(resolve_data(data), split="train")
    found = [s for s in found if s.landmarks is not None and len(s.landmarks) == 68]
    return found, split_holdout(found, 0.15, 0)[1]


def _real_faces_row(pred, fd, data, n_faces, repeats, model_path, backend, note):
    """One face on each of the first `n_faces` held-out real photos of `data`
    (split_holdout(0.15, seed 0) of its "train" split, full resolution, the ground-truth
    landmark box): the median over faces of the median predict() time, without and with
    the fit score, and how often a routed model ran an expert."""
    held = _held_out_faces(data)[1][:int(n_faces)]
    per_face, with_fd, classes = [], [], collections.Counter()
    for s in held:
        img, box = read_sample_image(s), landmark_box(s.landmarks)
        per_face.append(median_latency_ms(lambda: pred.predict(img, boxes=box), repeats * 2, 1))
        face = pred.predict(img, boxes=box)[0]
        classes[face.noise_class] += 1
        if fd is not None:
            with_fd.append(per_face[-1] + median_latency_ms(
                lambda: fd.score(img, face.landmarks), repeats * 2, 1))
    if not per_face:
        return _row("api", "-", model_path, f"{backend}: predict(real photo, box)",
                    error=f"{data}: no held-out faces with 68 landmarks")
    ms = statistics.median(per_face)
    routed = ""
    if getattr(pred.model, "kind", "") == "litert-routed":
        experts = sum(v for k, v in classes.items() if k)
        routed = (f"; routed: an expert ran on {experts} of {len(per_face)} faces (classes "
                  + ", ".join(f"{k}: {v}" for k, v in sorted(classes.items())) + ")")
    fit = (f"; with the fit score {statistics.median(with_fd):.2f} ms" if with_fd else "")
    return _row("api", "-", model_path, f"{backend}: predict(real photo, box)", batch=1,
                latency_ms_b1=ms, crop=pred.size,
                note=f"median over {len(per_face)} held-out real photos of {data} (full "
                     f"resolution, ground-truth landmark box){routed}{fit}{note}")


def bench_detect(data, detectors=("default",), model_path=None, n_images=0, n_frames=20):
    """Face detectors on annotated faces (fadenn_tf.evaluation.detectors): the held-out part
    (split_holdout(0.15, seed 0), the project's split) of the "train" split of `data`
    (e.g. the 300-W training folders; None: the built-in synthetic set), each face pasted
    into a 640x480 canvas at 64-192 px. Per detector: detection rate (first box IoU >= 0.5
    with the landmark box), mean IoU, with `model_path` the NME from detector boxes vs
    ground-truth boxes (the model via LiteRT), and the cost of one call on 640x360 frames
    with a face and with the face blurred out. Returns a list of row dicts."""
    found, held = _held_out_faces(data)
    if n_images:
        held = held[:int(n_images)]
    where = f"{data or 'synthetic'}: {len(held)} held-out of {len(found)} images"
    predictor = None
    if model_path is not None:
        predictor = load(model_path, detector=None, backend="litert", failure_detector=None)
    face_frames, empty_frames = dev.cost_frames(held, n_frames)
    rows = []
    for name in detectors:
        det = _as_detector(name)
        shown = name if isinstance(name, str) else type(name).__name__
        if isinstance(name, str) and name == "default":
            shown = f"default ({default_detector_name()})"
        t = dev.detector_table(det, held, predictor)
        c = dev.frame_costs(det, face_frames, empty_frames)
        note = (f"found {100 * t['rate']:.1f}% ({t['found']}/{t['n']}, first box IoU >= "
                f"0.5), mean IoU {t['mean_iou'] or 0:.3f}; ms per 640x360 frame: "
                f"{c['ms_face']:.1f} with a face, {c['ms_no_face']:.1f} without (CPU "
                f"{c['cpu_ms_face']:.1f} / {c['cpu_ms_no_face']:.1f}; false boxes on "
                f"{c['hits_no_face']}/{c['n_frames']} no-face frames)")
        if t["nme_ratio"] is not None:
            note += (f"; NME (diagonal) from detector boxes {t['nme_detector_box']:.4f} vs "
                     f"ground-truth boxes {t['nme_gt_box']:.4f} ({t['nme_ratio']:.3f}x, "
                     f"{model_path})")
        rows.append(_row("detect", "-", f"detector {shown}", where, batch=1,
                         latency_ms_b1=c["ms_face"], note=note, **t, **c))
    return rows
