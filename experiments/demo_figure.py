"""The demo's picture of the denoiser at work: for a few noise conditions, the noisy crop the
model receives, the internal denoiser's output, and the landmarks it then finds.

  python experiments/demo_figure.py --model runs/demo/train --out runs/demo/denoiser.png

Faces come from the 300-W layout test split (default: the built-in synthetic faces), cropped
from their ground-truth landmark box as in evaluation; the noise is the paper's, at level 3.
Landmarks: red = prediction, green = ground truth; NME normalised by the box diagonal.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

CONDITIONS = ("clean", "downsample-3", "blur-3", "gaussian_noise-3", "color_scale-3")


def build_parser():
    p = argparse.ArgumentParser(prog="python experiments/demo_figure.py",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, metavar="PATH",
                   help="a FADeNN model with a denoiser: training workdir or .keras file")
    p.add_argument("--out", required=True, help="output PNG")
    p.add_argument("--data", default=None,
                   help="300-W layout folder with a test split (default: synthetic faces)")
    p.add_argument("--faces", type=int, default=2, help="test faces shown (default 2)")
    p.add_argument("--conditions", default=",".join(CONDITIONS),
                   help=f"comma list of noise conditions (default {','.join(CONDITIONS)})")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    return p


def _panels(model, samples, conditions, seed):
    """Per face and condition: (noisy crop, denoised crop, predicted, true, NME)."""
    from fadenn_tf.data.crop import landmark_box
    from fadenn_tf.data.images import read_image
    from fadenn_tf.noise import (degrade_image, parse_condition, reference_crop,
                                 rescale_points, to_model_size)
    rows = []
    for k, s in enumerate(samples):
        image = read_image(s.image_path)
        # the noise protocol: the condition is applied to the reference-resolution crop,
        # which is then resized to the model's input (fadenn_tf.noise)
        ref, tr = reference_crop(image, landmark_box(s.landmarks))
        true = rescale_points(tr.apply(s.landmarks), ref.shape[0], model.size)
        diag = float(np.hypot(*(true.max(axis=0) - true.min(axis=0))))
        row = []
        for name in conditions:
            t, lv = parse_condition(name)
            noisy_ref = ref if t == 0 else degrade_image(ref, t, lv, seed + k)
            noisy = np.clip(np.round(to_model_size(noisy_ref[None].astype(np.float32),
                                                   model.size).numpy()[0]), 0, 255)
            out = model(noisy[None].astype(np.float32))          # models take 0..255 pixels
            den = np.clip(np.asarray(out["denoised"][0]), 0, 255)
            pred = np.asarray(out["landmarks"][0], np.float64)
            nme = float(np.linalg.norm(pred - true, axis=1).mean() / diag)
            row.append((name, noisy.astype(np.uint8), den.astype(np.uint8), pred, true, nme))
        rows.append(row)
    return rows


def draw(rows, label, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    n_cond = len(rows[0])
    fig, axes = plt.subplots(3 * len(rows), n_cond, squeeze=False, layout="constrained",
                             figsize=(1.9 * n_cond + 0.6, 1.9 * 3 * len(rows) + 0.5))
    for f, row in enumerate(rows):
        for j, (name, noisy, den, pred, true, nme) in enumerate(row):
            for i, (img, what) in enumerate(((noisy, "noisy crop"), (den, "denoised"),
                                             (noisy, "landmarks"))):
                ax = axes[3 * f + i, j]
                ax.imshow(img, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                if i == 2:
                    ax.scatter(true[:, 0], true[:, 1], s=3, c="lime", linewidths=0)
                    ax.scatter(pred[:, 0], pred[:, 1], s=3, c="red", linewidths=0)
                    ax.set_title(f"NME {nme:.3f}", fontsize=7, pad=2)
                if f == 0 and i == 0:
                    ax.set_title(name, fontsize=8)
                if j == 0:
                    ax.set_ylabel(what, fontsize=8)
    fig.suptitle(f"{label}: noisy crop -> internal denoiser -> landmarks "
                 "(red predicted, green true)", fontsize=8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None):
    a = build_parser().parse_args(argv)
    from fadenn_tf.data.cache import resolve_data
    from fadenn_tf.data.datasets import index_300w
    from fadenn_tf.errors import FadennError
    from fadenn_tf.inference import load_any
    try:
        conditions = [c.strip() for c in a.conditions.split(",") if c.strip()]
        model = load_any(a.model)
        if not model.has_denoiser:                     # from the model's metadata
            raise ValueError(f"{a.model}: this model has no denoiser to show (train a "
                             "FADeNN variant: --stage all --variant D, S or M)")
        samples, _ = index_300w(resolve_data(a.data), "test")
        picks = samples[::max(1, len(samples) // max(a.faces, 1))][:a.faces]
        rows = _panels(model, picks, conditions, a.seed)
    except (FadennError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    label = Path(model.path).parent.name.replace("joint-", "FADeNN-")
    print(f"wrote {draw(rows, label, a.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
