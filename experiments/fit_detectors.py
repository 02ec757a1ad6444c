"""Fit and measure the face detectors of fadenn_tf.detect on real faces.

    python experiments/fit_detectors.py --data ../shared/data/300w-train [--model M]
        [--grid-images 300] [--fit-images 800] [--out detectors.json]

Data: a 300-W layout (train split: afw + helen/trainset + lfpw/trainset), divided with the
project's held-out split (fadenn_tf.data.datasets.split_holdout, val_fraction 0.15, seed 0).
Each image (one face near its centre, face box <= 128 px) is scaled so its landmark box is
64-192 px wide (uniform, seeded per image) and pasted at a random place into a 640x480
canvas of smooth noise: a stand-in for a full-resolution photo.

Steps (training part only, the held-out part is touched only by step 4):
1. Haar parameter grid on --grid-images training images: equalisation, scale factor,
   detection width (full or shrunk to 320 px), min neighbours, min size. Picks the highest
   detection rate whose cost on a 640x360 frame is within --budget-ms (ties: faster).
2. Box corrections (fadenn_tf.detect.fit_box_correction) for Haar (chosen parameters), the
   profile cascade (both sides; mirror-image detections are fitted in mirrored coordinates)
   and dlib's HOG detector (if installed), on --fit-images training images.
3. Cost: median ms per 640x360 frame (a face ~110 px wide) for every detector.
4. Held-out table: detection rate (the FIRST box, the one predict uses, overlaps the
   landmark box with IoU >= 0.5 after correction; also the looser rate where its centre
   lies in the landmark box and its size is 0.5-2x), mean IoU of found faces with the
   landmark box, ms per frame; with --model also the NME (diagonal) of the landmarks from
   the detector box vs from the ground-truth landmark box, on the found faces.
Prints the tables and the constants to paste into fadenn_tf/detect.py; --out writes JSON.
"""
import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from fadenn_tf import detect
from fadenn_tf.data.crop import landmark_box
from fadenn_tf.data.datasets import index_300w, split_holdout
from fadenn_tf.data.images import read_image
from fadenn_tf.evaluation.detectors import FRAME, canvases, detector_table, make_canvas, matches


def frame_time_ms(det, samples, n=20):
    """Median ms of det(frame) over n 640x360 frames with a ~110 px face."""
    times = []
    for i, s in enumerate(samples[:n]):
        frame, _ = make_canvas(read_image(s.image_path), np.asarray(s.landmarks), [7, i],
                               FRAME, (100.0, 120.0))
        det(frame)  # warm
        t0 = time.perf_counter()
        det(frame)
        times.append(1e3 * (time.perf_counter() - t0))
    return statistics.median(times)


def haar_grid(samples, budget_ms, timing_samples):
    """Step 1 -> (rows, timed candidates, best row). Raw detections once per (equalize,
    scale, width) with min_neighbors 1, then min neighbours / min size applied by filtering: OpenCV keeps a
    group of n raw hits when n > min_neighbors."""
    rows = []
    data = list(canvases(samples))
    for eq in (False, True):
        for sf in (1.05, 1.1, 1.2):
            for width in (None, 320):
                det = detect.HaarFaceDetector(sf, 1, 20, equalize=eq, detect_width=width or 0)
                raw = []
                for img, lm in data:
                    raw.append((det.raw_boxes(img), landmark_box(lm)))
                for mn in (2, 3, 4, 5, 6):
                    for min_size in (20, 40, 60):
                        found = 0
                        for (boxes, nb), target in raw:
                            size = np.minimum(boxes[:, 2] - boxes[:, 0],
                                              boxes[:, 3] - boxes[:, 1])
                            keep = boxes[(nb > mn) & (size >= min_size)]
                            if len(keep) and matches(detect.sort_boxes(keep)[0], target):
                                found += 1
                        rows.append({"equalize": eq, "scale_factor": sf, "detect_width": width,
                                     "min_neighbors": mn, "min_size": min_size,
                                     "rate": found / len(raw)})
                print(f"  grid equalize={eq} scale={sf} width={width}: best rate "
                      f"{max(r['rate'] for r in rows[-15:]):.3f}", flush=True)
    # time only the candidates that could win (rate within 2 points of the best)
    best_rate = max(r["rate"] for r in rows)
    cands = sorted((r for r in rows if r["rate"] >= best_rate - 0.02),
                   key=lambda r: -r["rate"])[:12]
    for r in cands:
        det = detect.HaarFaceDetector(r["scale_factor"], r["min_neighbors"], r["min_size"],
                                      equalize=r["equalize"], detect_width=r["detect_width"] or 0)
        r["ms"] = frame_time_ms(det, timing_samples)
    ok = [r for r in cands if r["ms"] <= budget_ms] or cands
    best = max(ok, key=lambda r: (round(r["rate"], 3), -r["ms"]))
    return rows, cands, best


def fit_correction(provider_raw, samples, mirrored_too=False):
    """(correction, n matched) from raw boxes of `provider_raw(img[, mirrored])`."""
    det_boxes, targets = [], []
    for img, lm in canvases(samples, 1):
        target = landmark_box(lm)
        sides = (False, True) if mirrored_too else (False,)
        for mirrored in sides:
            boxes = provider_raw(img, mirrored)[0] if mirrored_too else provider_raw(img)[0]
            ok = [b for b in detect.sort_boxes(boxes) if matches(b, target)]
            if not ok:
                continue
            b, t = ok[0], target
            if mirrored:  # fit in the mirror image's coordinates
                w = img.shape[1]
                b = np.array([w - b[2], b[1], w - b[0], b[3]])
                t = np.array([w - t[2], t[1], w - t[0], t[3]])
            det_boxes.append(b)
            targets.append(t)
    corr = detect.fit_box_correction(np.array(det_boxes), np.array(targets))
    return tuple(round(v, 3) for v in corr), len(det_boxes)


def heldout_row(name, det, samples, predictor=None):
    """Detection rate, IoU and (with a predictor) NME ratio on the held-out canvases."""
    row = detector_table(det, samples, predictor)
    return {"detector": name, **row}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="300-W layout root")
    p.add_argument("--model", help="optional model: NME from detector vs ground-truth boxes")
    p.add_argument("--grid-images", type=int, default=300)
    p.add_argument("--fit-images", type=int, default=800)
    p.add_argument("--budget-ms", type=float, default=30.0)
    p.add_argument("--out", help="write the results as JSON")
    args = p.parse_args(argv)
    samples, _ = index_300w(args.data, "train")
    train, held = split_holdout(samples, 0.15, 0)
    rng = np.random.default_rng(0)
    grid = [train[i] for i in sorted(rng.choice(len(train), min(args.grid_images, len(train)),
                                                replace=False))]
    fit = [train[i] for i in sorted(rng.choice(len(train), min(args.fit_images, len(train)),
                                               replace=False))]
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                if ln.startswith("model name")), platform.processor())
    import os
    context = {"cpu": cpu, "load_start": os.getloadavg(), "n_train": len(train),
               "n_heldout": len(held), "split": "split_holdout(val_fraction=0.15, seed=0)"}
    print(f"{len(train)} train / {len(held)} held-out images; {cpu}; load {os.getloadavg()}")

    print("1. Haar grid")
    rows, cands, best = haar_grid(grid, args.budget_ms, train[:20])
    for r in cands:
        print(f"  {r}")
    print(f"  chosen: {best}")

    print("2. corrections")
    haar_raw = detect.HaarFaceDetector(best["scale_factor"], best["min_neighbors"],
                                       best["min_size"], equalize=best["equalize"],
                                       detect_width=best["detect_width"] or 0)
    corr = {"haar": fit_correction(haar_raw.raw_boxes, fit)}
    prof = detect.ProfileFaceDetector(detect_width=best["detect_width"] or 0)
    corr["profile"] = fit_correction(prof.raw_boxes, fit, mirrored_too=True)
    dlib_cfgs = {}
    if detect.dlib_available():
        for up, width in ((0, None), (1, 320), (1, None)):
            d = detect.DlibHogDetector(up, width or 0, correction=None)
            dlib_cfgs[(up, width)] = d
        corr["dlib"] = fit_correction(dlib_cfgs[(0, None)].raw_boxes, fit)
    for k, (c, n) in corr.items():
        print(f"  {k}: {c} from {n} matched boxes")

    print("3./4. held-out table")
    predictor = None
    if args.model:
        from fadenn_tf.inference.predictor import load
        predictor = load(args.model, detector=None, failure_detector=None)
    kw = dict(scale_factor=best["scale_factor"], min_neighbors=best["min_neighbors"],
              min_size=best["min_size"], equalize=best["equalize"],
              detect_width=best["detect_width"] or 0)
    haar = detect.HaarFaceDetector(correction=corr["haar"][0], **kw)
    profile = detect.ProfileFaceDetector(correction=corr["profile"][0],
                                         detect_width=best["detect_width"] or 0)
    dets = {"haar, previous defaults (equalize, 1.1, 5, 30 px, 3-face correction)":
            detect.HaarFaceDetector(1.1, 5, 30, correction=(0.0, 0.15, 0.88, 0.88),
                                    equalize=True, detect_width=0),
            "haar, fitted": haar,
            "profile (image + mirror)": profile,
            "haar+profile": detect.FallbackDetector([haar, profile])}
    for (up, width), d in dlib_cfgs.items():
        d.correction = corr["dlib"][0]
        dets[f"dlib HOG, upsample {up}, width {width or 'full'}"] = d
        if (up, width) == (1, 320):
            dets["dlib (upsample 1, width 320)+haar+profile"] = detect.FallbackDetector(
                [d, haar, profile])
        if (up, width) == (0, None):
            dets["dlib (upsample 0, full)+haar+profile"] = detect.FallbackDetector(
                [d, haar, profile])
            dets["dlib (upsample 0, full)+haar (the default)"] = detect.FallbackDetector(
                [d, haar])
    table = []
    for name, d in dets.items():
        row = heldout_row(name, d, held, predictor)
        row["ms_640x360"] = frame_time_ms(d, held)
        row["load"] = os.getloadavg()[0]
        table.append(row)
        print(f"  {json.dumps(row)}", flush=True)
    context["load_end"] = os.getloadavg()
    result = {"context": context, "grid_candidates": cands, "chosen": best,
              "corrections": {k: {"correction": c, "n": n} for k, (c, n) in corr.items()},
              "heldout": table}
    print("\n| detector | found | mean IoU | ms / 640x360 frame |" +
          (" NME det box / GT box |" if predictor else ""))
    for r in table:
        print(f"| {r['detector']} | {100 * r['rate']:.1f}% | {r['mean_iou'] or 0:.3f} | "
              f"{r['ms_640x360']:.1f} |" + (f" {r.get('nme_detector_box', 0):.4f} / "
                                            f"{r.get('nme_gt_box', 0):.4f} |" if predictor
                                            else ""))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
