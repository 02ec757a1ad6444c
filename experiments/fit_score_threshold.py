"""How well fit_score separates fits on faces from fits that are not on a face: the data
behind fadenn_tf.fitcheck.detector.DEFAULT_MIN_FIT_SCORE (the Predictor's rejection floor).

    python experiments/fit_score_threshold.py --data ../shared/data/300w-train \
        [--model pretrained] [--config real128] [--split val] [--seed 0]

On the held-out split (default: the val split of --config, faces the shipped model was not
trained on), every image gives fits of the model (its shipped failure detector scores each):
  face          the ground-truth landmark box
  face-jitter   that box moved by up to 10% of its size and scaled by 0.9-1.1 (a detector's
                error)
  shifted       the box moved by 0.6-1.0 of its size in a random direction (IoU < 0.25)
  background    a box of 0.3-1x the face's size that does not overlap the face's box
  face-noisy    the ground-truth box on the whole image degraded by one noise type (1-4,
                in turn) at level 2 or 3 (fadenn_tf.noise.degrade_image): FADeNN's use
                case, where a floor set too high would drop real faces
Fits are also sorted by their NME (diagonal) to the ground truth: a shifted box often still
gives a good fit (the crop is twice the box), so "good fit" (NME < 0.05, any kind) and
"failed fit" (NME > 0.15, any kind but background) are the classes that matter. Prints,
per threshold, the share of each group below it (rejected). Nothing is written.
"""
import argparse
import math

import numpy as np

from fadenn_tf.evaluation.detectors import iou

THRESHOLDS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5)


def boxes_for(box, shape, rng):
    """{kind: box or None} for one face box (x0, y0, x1, y1) in an image of `shape`."""
    h, w = shape[:2]
    bw, bh = box[2] - box[0], box[3] - box[1]
    out = {"face": box}
    d = rng.uniform(-0.1, 0.1, 2) * (bw, bh)
    s = rng.uniform(0.9, 1.1)
    c = np.array([(box[0] + box[2]) / 2 + d[0], (box[1] + box[3]) / 2 + d[1]])
    out["face-jitter"] = np.r_[c - s * np.array([bw, bh]) / 2, c + s * np.array([bw, bh]) / 2]
    for _ in range(20):
        a = rng.uniform(0, 2 * math.pi)
        m = rng.uniform(0.6, 1.0)
        cand = box + m * np.array([math.cos(a) * bw, math.sin(a) * bh] * 2)
        if iou(cand, box) < 0.25 and cand[2] > 1 and cand[3] > 1 and cand[0] < w - 1 \
                and cand[1] < h - 1:
            out["shifted"] = cand
            break
    out.setdefault("shifted", None)
    out["background"] = None
    for _ in range(200):
        side = rng.uniform(0.3, 1.0) * max(bw, bh)
        if w <= side + 2 or h <= side + 2:
            continue
        x0, y0 = rng.uniform(0, w - side), rng.uniform(0, h - side)
        cand = np.array([x0, y0, x0 + side, y0 + side])
        if iou(cand, box) == 0.0:
            out["background"] = cand
            break
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="a 300-W layout folder")
    p.add_argument("--model", default="pretrained")
    p.add_argument("--config", default="real128", help="config whose val split is used")
    p.add_argument("--split", default="val")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    import fadenn_tf
    from fadenn_tf.data.crop import landmark_box
    from fadenn_tf.data.images import read_image
    from fadenn_tf.evaluation.engine import select_samples
    from fadenn_tf.metrics import nme
    pred = fadenn_tf.load(a.model, detector=None, min_fit_score=0)
    samples = select_samples(a.data, split=a.split, config=a.config).samples
    rng = np.random.default_rng(a.seed)
    from fadenn_tf.noise import degrade_image
    scores = {k: [] for k in ("face", "face-jitter", "face-noisy", "shifted", "background")}
    errors = {k: [] for k in scores}
    for s in samples:
        img = read_image(s.image_path)
        gt = np.asarray(s.landmarks, np.float64)
        kinds = {k: b for k, b in boxes_for(landmark_box(gt), img.shape, rng).items()
                 if b is not None}
        res = pred.predict(img, boxes=np.stack(list(kinds.values())))[0]
        for k, face in zip(kinds, res.faces):
            scores[k].append(face.fit_score)
            errors[k].append(float(nme(face.landmarks, gt, "diagonal")))
        i = len(scores["face-noisy"])
        noisy = degrade_image(img, 1 + i % 4, 2 + (i // 4) % 2, i)
        face = pred.predict(noisy, boxes=kinds["face"])[0].faces[0]
        scores["face-noisy"].append(face.fit_score)
        errors["face-noisy"].append(float(nme(face.landmarks, gt, "diagonal")))
    print(f"{a.model} ({pred.model.kind}, failure detector "
          f"{getattr(pred.failure_detector, 'source', None)}) on {len(samples)} images of "
          f"{a.data} split {a.split} (config {a.config}); fits per kind: "
          + ", ".join(f"{k} {len(v)}" for k, v in scores.items()))
    sc = {k: np.array(v, np.float64) for k, v in scores.items()}
    er = {k: np.array(v, np.float64) for k, v in errors.items()}
    for k in sc:
        print(f"{k}: NME (diagonal) mean {er[k].mean():.4f}; fits with NME < 0.05: "
              f"{int((er[k] < 0.05).sum())}, > 0.15: {int((er[k] > 0.15).sum())}")
    onface = [k for k in sc if k != "background"]
    groups = {k: sc[k] for k in sc}
    groups["good fit (NME < 0.05)"] = np.concatenate([sc[k][er[k] < 0.05] for k in onface])
    groups["failed fit (NME > 0.15)"] = np.concatenate([sc[k][er[k] > 0.15] for k in onface])
    groups["not a face (background + failed)"] = np.concatenate(
        [sc["background"], groups["failed fit (NME > 0.15)"]])
    print("| fit_score below | " + " | ".join(f"{k}" for k in groups) + " |")
    print("|---|" + "---|" * len(groups))
    for t in THRESHOLDS:
        print(f"| {t} | " + " | ".join(
            f"{np.mean(v < t):.3f} ({int(np.sum(v < t))}/{len(v)})" if len(v) else "-"
            for v in groups.values()) + " |")
    for k, v in groups.items():
        if len(v):
            q = np.percentile(v, [1, 5, 50, 95, 99])
            print(f"{k}: fit_score percentiles 1/5/50/95/99: "
                  + " / ".join(f"{x:.4f}" for x in q))
    for k in ("face", "face-jitter", "face-noisy"):  # the face fits below each floor
        for t in (0.05, 0.1, 0.2, 0.5):
            if (sc[k] < t).any():
                print(f"{k} fits below {t}: NME "
                      f"{np.round(np.sort(er[k][sc[k] < t]), 3).tolist()}")


if __name__ == "__main__":
    main()
