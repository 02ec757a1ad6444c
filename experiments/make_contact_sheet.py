"""Write docs/synthetic_samples.png: a grid of synthetic faces with their 68 landmarks.

Usage: python experiments/make_contact_sheet.py [--out docs/synthetic_samples.png]
       [--rows 4] [--cols 6] [--seed 0] [--tile 200]
The first rows are train-split samples, the last row ibug (hard) samples. Landmarks are
drawn as dots: jaw white, brows yellow, nose cyan, eyes green, mouth red.
"""
import argparse
from pathlib import Path

import cv2
import numpy as np

from fadenn_tf.data.landmarks68 import GROUPS
from fadenn_tf.data.synthetic import render_face

_COLORS = {"jaw": (255, 255, 255), "right_brow": (255, 220, 0), "left_brow": (255, 220, 0),
           "nose_bridge": (0, 220, 255), "nostrils": (0, 220, 255), "right_eye": (0, 255, 0),
           "left_eye": (0, 255, 0), "outer_lips": (255, 40, 40), "inner_lips": (255, 40, 40)}


def tile(seed, split, size, marks=True):
    img, lm, _ = render_face(np.random.default_rng(seed), split=split)
    h, w = img.shape[:2]
    k = size / max(h, w)
    small = cv2.resize(img, (round(w * k), round(h * k)), interpolation=cv2.INTER_AREA)
    canvas = np.full((size, size, 3), 40, np.uint8)
    canvas[:small.shape[0], :small.shape[1]] = small
    if marks:
        for name, (a, b) in GROUPS.items():
            for x, y in (lm[a:b] + 0.5) * k - 0.5:
                cv2.circle(canvas, (int(round(x * 4)), int(round(y * 4))), 4, _COLORS[name], -1,
                           cv2.LINE_AA, 2)
    return canvas


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="docs/synthetic_samples.png")
    ap.add_argument("--rows", type=int, default=4)
    ap.add_argument("--cols", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tile", type=int, default=200)
    ap.add_argument("--no-marks", action="store_true", help="draw the faces only")
    args = ap.parse_args(argv)
    rows = []
    for r in range(args.rows):
        split = "ibug" if r == args.rows - 1 else "train"
        rows.append(np.concatenate([tile(args.seed * 1000 + r * args.cols + c, split, args.tile,
                                         not args.no_marks) for c in range(args.cols)], axis=1))
    sheet = np.concatenate(rows, axis=0)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(args.out, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    print(f"wrote {args.out} ({sheet.shape[1]}x{sheet.shape[0]})")


if __name__ == "__main__":
    main()
