"""Fit UltraFace's box-to-landmark-box mapping and measure found rate against time on whole
annotated photos.

    python experiments/fit_ultraface.py --photos ../shared/data/afw-photos \
        [--old] [--out ultraface.json]

Photos: a folder of `<photo>.jpg` with one `<photo>_<k>.pts` (68 points) per annotated face
(e.g. the 185 AFW photos of the 300-W training set, 337 faces). Face size = the longer side
of its 68-point landmark box.

Steps:
1. Raw detections (no correction, min_score 0.3, NMS 0.3) of every configuration: RFB and
   slim at 320x240, 640x480 and "auto" (the image's aspect ratio at about 320x240 pixels).
2. Mapping: a raw box is paired with an annotation when its centre lies inside the landmark
   box and its size is 0.5-2x the box's (fadenn_tf.evaluation.detectors.matches; one box per
   annotation, the highest score first). fit_box_correction on the pairs of each variant at
   320x240 gives its correction; a 2-fold check by photo (fit on even photos, measure on odd
   ones, and back) gives the mean IoU the correction reaches on photos it did not see.
3. Table per configuration and min_score: an annotation is FOUND when a corrected box has
   IoU >= 0.5 with its landmark box (each box matches one annotation, greedily by IoU);
   a box with IoU < 0.3 to every annotated landmark box is counted as UNMATCHED (a false
   detection, or a face the annotators left out: some photos have such faces).
4. Time: median wall ms of one detector call per photo (resize + network + decoding + NMS +
   correction; the JPEG is decoded before) at min_score 0.7, after one warm call, the
   UltraFace configurations taking turns on each photo, and in brackets the median process
   CPU ms (all threads); with --old also the former default dlib+haar, dlib and Haar alone
   (same table, their own fitted corrections), each timed on its own.
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from fadenn_tf import detect
from fadenn_tf.data.crop import landmark_box
from fadenn_tf.data.images import read_image
from fadenn_tf.data.pts import read_pts
from fadenn_tf.detect.ultraface import UltraFaceDetector
from fadenn_tf.evaluation.detectors import iou, matches

SIZES = {"320x240": (320, 240), "640x480": (640, 480), "auto": "auto"}
SCORES = (0.5, 0.6, 0.7, 0.8, 0.9)
FIT_SIZE = "auto"
TIMED_SCORE = 0.7     # the min_score of the timed detectors (the default)


def load_photos(folder):
    """[(name, image (H, W, 3) uint8, [landmark boxes (4,)])] for every photo with .pts."""
    out = []
    for jpg in sorted(Path(folder).glob("*.jpg")):
        pts = sorted(jpg.parent.glob(jpg.stem + "_*.pts"))
        if pts:
            out.append((jpg.stem, read_image(jpg),
                        [landmark_box(read_pts(p, 68)) for p in pts]))
    if not out:
        raise SystemExit(f"{folder}: no <photo>.jpg with <photo>_<k>.pts found")
    return out


def side(box):
    return max(box[2] - box[0], box[3] - box[1])


def pair_raw(boxes, scores, targets):
    """[(target index, raw box)] pairs by the centre-inside rule, best score first."""
    used, pairs = set(), []
    for j in np.argsort(-scores):
        for t, tb in enumerate(targets):
            if t not in used and matches(boxes[j], tb):
                used.add(t)
                pairs.append((t, boxes[j]))
                break
    return pairs


def score_photo(boxes, targets):
    """(found flags per target, ious of found, unmatched box count) for corrected boxes."""
    found, ious = [False] * len(targets), []
    cand = sorted(((iou(b, tb), j, t) for j, b in enumerate(boxes)
                   for t, tb in enumerate(targets)), reverse=True)
    used = set()
    for v, j, t in cand:
        if v < 0.5:
            break
        if j in used or found[t]:
            continue
        used.add(j)
        found[t] = True
        ious.append(v)
    unmatched = sum(1 for b in boxes if all(iou(b, tb) < 0.3 for tb in targets))
    return found, ious, unmatched


def table_row(name, per_photo, photos, ms=None):
    """Found rates, mean IoU and unmatched boxes of corrected boxes per photo."""
    n = big = f_all = f_big = unmatched = 0
    ious = []
    for boxes, (_, _, targets) in zip(per_photo, photos):
        found, v, u = score_photo(boxes, targets)
        ious += v
        unmatched += u
        for ok, tb in zip(found, targets):
            n += 1
            f_all += ok
            if side(tb) >= 40:
                big += 1
                f_big += ok
    return {"detector": name, "faces": n, "found": f_all, "faces_40px": big,
            "found_40px": f_big, "unmatched_boxes": unmatched,
            "mean_iou": float(np.mean(ious)) if ious else None, "ms_per_photo": ms}


def time_detectors(dets, photos, rounds=1):
    """{name: (median wall ms, median process CPU ms (all threads))} of det(image) over the
    photos (`rounds` passes), after one warm call each. The detectors take turns on every
    photo, so a change of machine load hits them alike. CPU time counts no waiting for a
    busy core: on a loaded machine it is the better estimate of the cost on an idle one."""
    wall = {k: [] for k in dets}
    cpu = {k: [] for k in dets}
    for det in dets.values():
        det(photos[0][1])
    for _ in range(rounds):
        for _, img, _ in photos:
            for k, det in dets.items():
                c0, t0 = time.process_time(), time.perf_counter()
                det(img)
                wall[k].append(1e3 * (time.perf_counter() - t0))
                cpu[k].append(1e3 * (time.process_time() - c0))
    return {k: (statistics.median(wall[k]), statistics.median(cpu[k])) for k in dets}


def raw_pass(variant, size, photos):
    det = UltraFaceDetector(variant, min_score=min(SCORES) - 0.2, input_size=size,
                            correction=None)
    return [det.raw_detect(img) for _, img, _ in photos]


def corrected(raw, correction, min_score):
    out = []
    for boxes, scores in raw:
        b = boxes[scores >= min_score]
        out.append(detect.apply_box_correction(b, correction) if len(b) else b)
    return out


def fit(raw, photos, subset=None):
    d, t = [], []
    for i, ((boxes, scores), (_, _, targets)) in enumerate(zip(raw, photos)):
        if subset is None or i % 2 == subset:
            for k, b in pair_raw(boxes, scores, targets):
                d.append(b)
                t.append(targets[k])
    return detect.fit_box_correction(np.array(d), np.array(t)), len(d)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--photos", required=True, help="folder of <photo>.jpg + <photo>_<k>.pts")
    p.add_argument("--old", action="store_true", help="also the former dlib+haar default")
    p.add_argument("--rounds", type=int, default=1, help="timing passes over the photos")
    p.add_argument("--out", help="write the results as JSON")
    args = p.parse_args(argv)
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                if ln.startswith("model name")), platform.processor())
    photos = load_photos(args.photos)
    n_faces = sum(len(t) for _, _, t in photos)
    print(f"{len(photos)} photos, {n_faces} annotated faces "
          f"({sum(side(b) >= 40 for _, _, t in photos for b in t)} of 40 px or more); "
          f"{cpu}, {os.cpu_count()} cores; load average at start {os.getloadavg()}")
    result = {"cpu": cpu, "load_start": os.getloadavg(), "photos": len(photos),
              "faces": n_faces, "corrections": {}, "table": []}
    raws = {(v, s): raw_pass(v, size, photos) for v in ("rfb", "slim")
            for s, size in SIZES.items()}
    for v in ("rfb", "slim"):
        corr, n = fit(raws[(v, FIT_SIZE)], photos)
        corr = tuple(round(c, 3) for c in corr)
        folds = []
        for k in (0, 1):
            c_k, _ = fit(raws[(v, FIT_SIZE)], photos, k)
            held = [(r, ph) for i, (r, ph) in enumerate(zip(corrected(
                raws[(v, FIT_SIZE)], c_k, 0.7), photos)) if i % 2 != k]
            folds.append(table_row("", [r for r, _ in held], [ph for _, ph in held])["mean_iou"])
        result["corrections"][v] = {"correction": corr, "pairs": n, "heldout_iou": folds}
        print(f"correction {v}: {corr} from {n} pairs (2-fold mean IoU on unseen photos "
              f"{folds[0]:.3f}, {folds[1]:.3f})")
    print("\n| detector | input | min score | found (all) | found (>= 40 px) | unmatched "
          "boxes | mean IoU | ms / photo (CPU ms) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    timed = time_detectors({(v, s): UltraFaceDetector(v, min_score=TIMED_SCORE,
                                                      input_size=SIZES[s],
                                                      correction=result["corrections"][v]
                                                      ["correction"])
                            for v, s in raws}, photos, args.rounds)
    for (v, s), raw in raws.items():
        corr = result["corrections"][v]["correction"]
        no_face = sum(not (sc >= TIMED_SCORE).any() for _, sc in raw)
        result.setdefault("photos_without_a_box", {})[f"{v} {s}"] = no_face
        for ms_ in SCORES:
            ms = timed[(v, s)] if ms_ == TIMED_SCORE else None
            row = table_row(f"ultraface {v}", corrected(raw, corr, ms_), photos,
                            None if ms is None else ms[0])
            row.update(input=s, min_score=ms_, load=os.getloadavg()[0],
                       cpu_ms_per_photo=None if ms is None else ms[1])
            result["table"].append(row)
            print(f"| {row['detector']} | {s} | {ms_} | {row['found']}/{row['faces']} | "
                  f"{row['found_40px']}/{row['faces_40px']} | {row['unmatched_boxes']} | "
                  f"{row['mean_iou']:.3f} | " + ("" if ms is None else
                                                  f"{ms[0]:.1f} ({ms[1]:.1f})") + " |",
                  flush=True)
    if args.old:
        olds = {"haar": detect.HaarFaceDetector()}
        if detect.dlib_available():
            olds["dlib"] = detect.DlibHogDetector()
            olds["dlib+haar"] = detect.FallbackDetector([olds["dlib"], olds["haar"]])
        for name, det in olds.items():
            per = [det(img) for _, img, _ in photos]
            wall, cpu_ms = time_detectors({name: det}, photos)[name]
            row = table_row(name, per, photos, wall)
            row.update(input="full", min_score=None, load=os.getloadavg()[0],
                       cpu_ms_per_photo=cpu_ms)
            result["table"].append(row)
            print(f"| {name} | full image | - | {row['found']}/{row['faces']} | "
                  f"{row['found_40px']}/{row['faces_40px']} | {row['unmatched_boxes']} | "
                  f"{row['mean_iou'] or 0:.3f} | {wall:.1f} ({cpu_ms:.1f}) |", flush=True)
    print(f"photos where UltraFace (min_score {TIMED_SCORE}) finds no face: "
          f"{result['photos_without_a_box']}")
    result["load_end"] = os.getloadavg()
    print(f"load average at the end {result['load_end']}")
    if args.out:
        tmp = Path(args.out).with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=1, default=str))
        os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
