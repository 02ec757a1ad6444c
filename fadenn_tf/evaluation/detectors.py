"""Face detectors measured on annotated faces: detection rate, box overlap, the landmark
error from detector boxes vs ground-truth boxes, and the cost per 640x360 frame with and
without a face (the `detect` rows of fadenn_tf.benchmark; experiments/fit_detectors.py fits
the detectors' parameters with the same pieces).

Protocol (detector_table): each image with 68 landmarks (one face near its centre) is
scaled so its landmark box is 64-192 px wide (uniform, seeded per image) and pasted at a
seeded random place into a 640x480 canvas of smooth noise (make_canvas): a stand-in for a
full-resolution photo (the 300-W training images are face crops of ~300 px). A face is
found when the FIRST box (the one `predict` uses) has IoU >= 0.5 with the 68-point
landmark box. Cost (frame_costs): median ms of one detector call on 640x360 frames with a
face ~110 px wide, and on the same frames with the face blurred out (no face: every
detector of a chain runs).
"""
import statistics
import time

import cv2
import numpy as np

from fadenn_tf import metrics
from fadenn_tf.data.crop import landmark_box
from fadenn_tf.data.datasets import read_sample_image

CANVAS = (480, 640)
FRAME = (360, 640)


def iou(a, b):
    """IoU of two (x0, y0, x1, y1) boxes."""
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def matches(box, target):
    """Raw (uncorrected) detector box matches the landmark box: its centre lies inside it
    and its size is 0.5-2x the landmark box's (correction-independent criterion)."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    ratio = np.sqrt((box[2] - box[0]) * (box[3] - box[1])
                    / ((target[2] - target[0]) * (target[3] - target[1])))
    return target[0] <= cx <= target[2] and target[1] <= cy <= target[3] and 0.5 <= ratio <= 2


def make_canvas(image, landmarks, seed, canvas_hw=CANVAS, face_px=(64.0, 192.0),
                hide_face=False):
    """(canvas uint8 RGB, landmarks in canvas pixels): the image scaled so its face is
    face_px wide, pasted at a seeded random place on smooth noise. hide_face: the face's
    landmark box (grown by 30%) is replaced by a strong blur of itself (a frame without a
    face, same texture around it)."""
    rng = np.random.default_rng(seed)
    h, w = canvas_hw
    lm0 = np.asarray(landmarks, np.float64)
    fw = landmark_box(lm0)[2] - landmark_box(lm0)[0]
    s = rng.uniform(*face_px) / fw
    img = cv2.resize(image, None, fx=s, fy=s,
                     interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    lm = (lm0 + 0.5) * s - 0.5
    if hide_face:
        img = img.copy()
        b = landmark_box(lm)
        gw, gh = 0.15 * (b[2] - b[0]), 0.15 * (b[3] - b[1])
        x0, y0 = max(0, int(b[0] - gw)), max(0, int(b[1] - gh))
        x1, y1 = min(img.shape[1], int(b[2] + gw) + 1), min(img.shape[0], int(b[3] + gh) + 1)
        if x1 > x0 and y1 > y0:
            k = 2 * int(max(x1 - x0, y1 - y0) // 4) + 1
            img[y0:y1, x0:x1] = cv2.GaussianBlur(img[y0:y1, x0:x1], (k, k), 0)
    noise = rng.normal(size=(h // 32 + 2, w // 32 + 2, 3)).astype(np.float32)
    bg = cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC) * 35 + image.mean((0, 1))
    out = np.clip(bg, 0, 255).astype(np.uint8)
    fb = landmark_box(lm)
    ox = int(round(rng.uniform(-fb[0] + 4, max(-fb[0] + 5, w - fb[2] - 4))))
    oy = int(round(rng.uniform(-fb[1] + 4, max(-fb[1] + 5, h - fb[3] - 4))))
    ih, iw = img.shape[:2]
    x0, y0, x1, y1 = max(0, ox), max(0, oy), min(w, ox + iw), min(h, oy + ih)
    out[y0:y1, x0:x1] = img[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
    return out, lm + [ox, oy]


def _items(samples):
    for s in samples:
        lm = None if s.landmarks is None else np.asarray(s.landmarks, np.float64)
        if lm is not None and lm.shape == (68, 2):
            yield read_sample_image(s), lm


def canvases(samples, offset=0):
    """Yield (canvas, landmarks) for the samples with 68 landmarks, seeded by their index
    (+ offset)."""
    for i, (img, lm) in enumerate(_items(samples)):
        yield make_canvas(img, lm, [offset, i])


def detector_table(detector, samples, predictor=None, offset=2):
    """Detection rate, IoU and (with a predictor) the NME (diagonal) of the landmarks from
    the detector box vs from the ground-truth landmark box, on the found faces -> dict:
    n, found, rate, rate_centre_in_box, mean_iou, nme_detector_box, nme_gt_box,
    nme_ratio (None without a predictor or without a found face)."""
    n, found, near, ious, nme_det, nme_gt = 0, 0, 0, [], [], []
    for img, lm in canvases(samples, offset):
        n += 1
        target = landmark_box(lm)
        boxes = np.asarray(detector(img), np.float64).reshape(-1, 4)
        if len(boxes) and matches(boxes[0], target):
            near += 1
        if not len(boxes) or iou(boxes[0], target) < 0.5:
            continue
        found += 1
        ious.append(iou(boxes[0], target))
        if predictor is not None:
            r = predictor.predict([img, img], boxes=[boxes[0], target])
            nme_det.append(metrics.nme(r[0].landmarks, lm, "diagonal"))
            nme_gt.append(metrics.nme(r[1].landmarks, lm, "diagonal"))
    row = {"n": n, "found": found, "rate": found / n if n else None,
           "rate_centre_in_box": near / n if n else None,
           "mean_iou": float(np.mean(ious)) if ious else None,
           "nme_detector_box": float(np.mean(nme_det)) if nme_det else None,
           "nme_gt_box": float(np.mean(nme_gt)) if nme_gt else None}
    row["nme_ratio"] = (row["nme_detector_box"] / row["nme_gt_box"]
                        if nme_det and row["nme_gt_box"] else None)
    return row


def cost_frames(samples, n=20, offset=7):
    """(frames with a face, the same frames with the face blurred out): n 640x360 frames
    each, faces 100-120 px wide."""
    faces, empty = [], []
    for i, (img, lm) in enumerate(_items(samples)):
        if i >= n:
            break
        faces.append(make_canvas(img, lm, [offset, i], FRAME, (100.0, 120.0))[0])
        empty.append(make_canvas(img, lm, [offset, i], FRAME, (100.0, 120.0), True)[0])
    return faces, empty


def _median_ms(detector, frames):
    """(median wall ms, median process-CPU ms, frames where it found a box) of one call per
    frame after a warm-up call."""
    wall, cpu, hits = [], [], 0
    for f in frames:
        hits += bool(len(detector(f)))  # warm-up
        c0, t0 = time.process_time(), time.perf_counter()
        detector(f)
        wall.append(1e3 * (time.perf_counter() - t0))
        cpu.append(1e3 * (time.process_time() - c0))
    if not frames:
        return None, None, 0
    return statistics.median(wall), statistics.median(cpu), hits


def frame_costs(detector, face_frames, empty_frames):
    """Cost of one detector call on 640x360 frames (see cost_frames) -> dict: ms_face,
    ms_no_face (median wall ms), cpu_ms_face, cpu_ms_no_face (median CPU ms of this process,
    all its threads: less sensitive to other load than wall time), hits_face, hits_no_face
    (frames where a box came back; on the no-face frames these are false detections)."""
    mf, cf, hf = _median_ms(detector, face_frames)
    mn, cn, hn = _median_ms(detector, empty_frames)
    return {"ms_face": mf, "ms_no_face": mn, "cpu_ms_face": cf, "cpu_ms_no_face": cn,
            "hits_face": hf, "hits_no_face": hn, "n_frames": len(face_frames)}
