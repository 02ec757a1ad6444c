"""Whole photos -> landmarks with the default detector, against the same model given the
ground-truth boxes of the same faces.

    python experiments/photo_end_to_end.py --photos DIR [--model pretrained] [--backend auto]

DIR holds photos `<name>.jpg` and one `<name>_<k>.pts` per annotated face (68 points, 1-based,
the layout of ../shared/data/afw-photos). Every face the detector finds (all faces, fit
scores not applied) is matched to an annotation by IoU >= 0.5 between its box and the
annotation's tight landmark box (greedy, best first). For the matched faces it prints the
mean diagonal NME end to end and with the ground-truth landmark box given, their ratio, the
found rate (faces of 40 px or more, and all), and the median time per photo end to end.
It also measures predict's second pass (`refine=True`: each face re-cropped on the landmark
box of its first fit, fadenn_tf.inference.refine) with its time, and the box offsets of the
detector against the landmark box (centre shift and size ratio), to compare with the
training jitter.
"""
import argparse
import glob
import os
import time
from pathlib import Path

import numpy as np

import fadenn_tf
from fadenn_tf import metrics
from fadenn_tf.data.images import read_image
from fadenn_tf.data.crop import landmark_box
from fadenn_tf.data.pts import read_pts
from fadenn_tf.evaluation.detectors import iou


def match(det_boxes, gt_boxes, thr=0.5):
    """{gt index: det index} greedy by IoU."""
    pairs = sorted(((iou(d, g), i, j) for i, d in enumerate(det_boxes)
                    for j, g in enumerate(gt_boxes)), reverse=True)
    used_d, out = set(), {}
    for v, i, j in pairs:
        if v < thr:
            break
        if i not in used_d and j not in out:
            used_d.add(i)
            out[j] = i
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", required=True)
    ap.add_argument("--model", default="pretrained")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--max-photos", type=int, default=0)
    args = ap.parse_args(argv)
    model = fadenn_tf.load(args.model, backend=args.backend)
    photos = sorted(p for p in glob.glob(os.path.join(args.photos, "*.jpg")))
    if args.max_photos:
        photos = photos[:args.max_photos]
    e2e, given, sizes, found, times, one_face_times = [], [], [], [], [], []
    refine_times = []
    second, shifts, ratios = [], [], []
    for path in photos:
        stem = Path(path).with_suffix("")
        gts = [read_pts(p) for p in sorted(glob.glob(f"{stem}_*.pts"))]
        if not gts:
            continue
        img = read_image(path)
        t0 = time.perf_counter()
        res = model.predict(img, all_faces=True, min_fit_score=0)[0]
        times.append(time.perf_counter() - t0)
        gt_boxes = [landmark_box(g) for g in gts]
        faces = res.faces
        m = match([f.box for f in faces], gt_boxes)
        for j, g in enumerate(gts):
            side = max(gt_boxes[j][2] - gt_boxes[j][0], gt_boxes[j][3] - gt_boxes[j][1])
            sizes.append(side)
            found.append(j in m)
        if not m:
            continue
        idx = sorted(m)
        ref = model.predict(img, boxes=np.stack([gt_boxes[j] for j in idx]),
                            min_fit_score=0)[0].faces
        again = model.predict(img, all_faces=True, min_fit_score=0, refine=True)[0].faces
        for k, j in enumerate(idx):
            e2e.append(metrics.nme(faces[m[j]].landmarks[None], gts[j][None])[0])
            given.append(metrics.nme(ref[k].landmarks[None], gts[j][None])[0])
            second.append(metrics.nme(again[m[j]].landmarks[None], gts[j][None])[0])
            d, g = np.asarray(faces[m[j]].box, float), np.asarray(gt_boxes[j], float)
            gside = max(g[2] - g[0], g[3] - g[1])
            shifts.append(np.hypot(*((d[:2] + d[2:]) / 2 - (g[:2] + g[2:]) / 2)) / gside)
            ratios.append(max(d[2] - d[0], d[3] - d[1]) / gside)
        t0 = time.perf_counter()
        model.predict(img)   # the default: one face
        one_face_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        model.predict(img, refine=True)
        refine_times.append(time.perf_counter() - t0)
    sizes, found = np.array(sizes), np.array(found)
    big = sizes >= 40
    e2e, given, second = np.array(e2e), np.array(given), np.array(second)
    print(f"{args.model} ({args.backend}) on {len(times)} photos of {args.photos}")
    print(f"found (IoU >= 0.5 with the landmark box): {found.sum()}/{len(found)} faces; "
          f"{found[big].sum()}/{big.sum()} of 40 px or more ({found[big].mean():.1%})")
    print(f"matched faces: {len(e2e)}; mean NME (diagonal) end to end {e2e.mean():.4f}, "
          f"ground-truth landmark box given {given.mean():.4f}, ratio "
          f"{e2e.mean() / given.mean():.3f}; medians {np.median(e2e):.4f} / "
          f"{np.median(given):.4f}")
    print(f"refine=True (second pass on the first fit's landmark box): mean NME "
          f"(diagonal) {second.mean():.4f}, ratio to the ground-truth box {second.mean() / given.mean():.3f}")
    shifts, ratios = np.array(shifts), np.array(ratios)
    print(f"detector box against the landmark box (longer side L): centre shift / L median "
          f"{np.median(shifts):.3f}, 90th percentile {np.percentile(shifts, 90):.3f}; size ratio "
          f"median {np.median(ratios):.3f}, 10th-90th percentile {np.percentile(ratios, 10):.3f}-"
          f"{np.percentile(ratios, 90):.3f}")
    print(f"median ms per photo: all faces {1000 * np.median(times):.1f}, one face (default) "
          f"{1000 * np.median(one_face_times):.1f}, one face with refine=True "
          f"{1000 * np.median(refine_times):.1f}")


if __name__ == "__main__":
    main()
