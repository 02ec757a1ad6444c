"""The demo's picture of the denoiser at work: for a few noise conditions, the noisy crop the
model receives, the internal denoiser's output and the landmarks it then finds, each crop
with its PSNR against the clean crop; and, printed, the denoiser's PSNR before and after for
every noise condition.

  python experiments/demo_figure.py --model runs/demo/train --out runs/demo/denoiser.png
  python experiments/demo_figure.py --model "short run=runs/demo/train" \
      --model shipped=pretrained --reference-size 64 --out fig.png

Faces come from the 300-W layout test split (default: the built-in synthetic faces), cropped
from their ground-truth landmark box as in evaluation; the noise is the paper's, applied to
the reference crop of side --reference-size (default the protocol's 224; fadenn_tf.noise),
which is then resized to the model's input. PSNR in dB (peak 255) against the clean crop
resized the same way. Landmarks: red = prediction, green = ground truth; NME normalised by
the box diagonal.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

CONDITIONS = ("clean", "downsample-2", "blur-2", "gaussian_noise-3", "color_scale-3")


def build_parser():
    from fadenn_tf.noise import REFERENCE_SIZE
    p = argparse.ArgumentParser(prog="python experiments/demo_figure.py",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, action="append", metavar="[LABEL=]PATH",
                   help="a FADeNN model with a denoiser: training workdir, .keras file or a "
                        "shipped name (pretrained); repeat to show several, one block each")
    p.add_argument("--out", required=True, help="output PNG")
    p.add_argument("--data", default=None,
                   help="300-W layout folder with a test split (default: synthetic faces)")
    p.add_argument("--faces", type=int, default=2, help="test faces shown per model (2)")
    p.add_argument("--conditions", default=",".join(CONDITIONS),
                   help=f"comma list of noise conditions drawn (default {','.join(CONDITIONS)})")
    p.add_argument("--reference-size", type=int, default=REFERENCE_SIZE, metavar="R",
                   help=f"side of the crop the noise is applied to (default {REFERENCE_SIZE})")
    p.add_argument("--table-faces", type=int, default=60,
                   help="test faces of the printed PSNR table (60; 0: no table)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    return p


def _model_input(ref, name, size, seed):
    """(noisy crop, clean crop) at the model's side `size`, float32 0..255, from a uint8
    reference crop under condition `name` (the evaluation protocol, rounded to pixels)."""
    from fadenn_tf.noise import degrade_image, parse_condition, to_model_size
    t, lv = parse_condition(name)
    noisy_ref = ref if t == 0 else degrade_image(ref, t, lv, seed)
    both = to_model_size(np.stack([noisy_ref, ref]).astype(np.float32), size).numpy()
    return np.clip(np.round(both), 0, 255)


def _panels(model, samples, conditions, reference_size, seed):
    """Per face and condition: (name, noisy, denoised, predicted, true, NME, PSNR noisy,
    PSNR denoised)."""
    from fadenn_tf.data.crop import landmark_box
    from fadenn_tf.data.images import read_image
    from fadenn_tf.evaluation.scoring import psnr
    from fadenn_tf.noise import reference_crop, rescale_points
    rows = []
    for k, s in enumerate(samples):
        ref, tr = reference_crop(read_image(s.image_path), landmark_box(s.landmarks),
                                 reference_size)
        true = rescale_points(tr.apply(s.landmarks), ref.shape[0], model.size)
        diag = float(np.hypot(*(true.max(axis=0) - true.min(axis=0))))
        row = []
        for name in conditions:
            noisy, clean = _model_input(ref, name, model.size, seed + k)
            out = model(noisy[None].astype(np.float32))          # models take 0..255 pixels
            den = np.clip(np.asarray(out["denoised"][0], np.float64), 0, 255)
            pred = np.asarray(out["landmarks"][0], np.float64)
            nme = float(np.linalg.norm(pred - true, axis=1).mean() / diag)
            p_in, p_out = (float(psnr(x[None], clean[None])[0]) for x in (noisy, den))
            row.append((name, noisy.astype(np.uint8), np.round(den).astype(np.uint8), pred,
                        true, nme, p_in, p_out))
        rows.append(row)
    return rows


def psnr_table(model, samples, reference_size, seed):
    """{condition: (mean PSNR of the noisy input, of the denoised output)} in dB against the
    clean crop, over `samples`, for the 13 conditions (scoring.evaluate_denoiser)."""
    from fadenn_tf.data.pipeline import load_eval_data
    from fadenn_tf.evaluation.scoring import ValidationSpec, evaluate_denoiser
    data = load_eval_data(samples, reference_size)
    res = evaluate_denoiser(lambda x: model(np.asarray(x, np.float32))["denoised"], data,
                            spec=ValidationSpec(size=model.size, seed=seed,
                                                crop_scale=model.crop_scale))
    return {c: (v["psnr_input"], v["psnr_output"]) for c, v in res.items()}


def format_table(label, table, n, reference_size, size):
    """The printed PSNR lines of one model."""
    lines = [f"{label}: denoiser PSNR (dB against the clean crop; mean over {n} test faces; "
             f"noise at {reference_size} px, model input {size} px): noisy input -> denoised"]
    for c, (a, b) in table.items():
        if c == "clean":
            lines.append(f"   {c:<17} input unchanged -> {b:6.2f} (what the denoiser costs a "
                         "clean crop)")
        else:
            lines.append(f"   {c:<17} {a:6.2f} -> {b:6.2f}  ({b - a:+.2f})")
    noisy = [v for c, v in table.items() if c != "clean"]
    if noisy:
        a, b = np.mean(noisy, axis=0)
        up = sum(round(v[1] - v[0], 2) > 0 for v in noisy)     # by at least 0.01 dB
        lines.append(f"   {'mean of the noisy':<17} {a:6.2f} -> {b:6.2f}  ({b - a:+.2f}); "
                     f"up (by 0.01 dB or more) on {up} of {len(noisy)} noisy conditions")
    return "\n".join(lines)


def draw(blocks, path, reference_size):
    """blocks: [(label, rows of _panels)] -> PNG at `path`: per model and face, three rows
    (noisy crop, denoised, landmarks) by condition."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    n_rows = sum(3 * len(rows) for _, rows in blocks)
    n_cond = len(blocks[0][1][0])
    fig, axes = plt.subplots(n_rows, n_cond, squeeze=False, layout="constrained",
                             figsize=(1.9 * n_cond + 0.8, 1.95 * n_rows + 0.5))
    r0 = 0
    for label, rows in blocks:
        for f, row in enumerate(rows):
            for j, (name, noisy, den, pred, true, nme, p_in, p_out) in enumerate(row):
                clean = name == "clean"
                panels = ((noisy, "noisy crop", "input" if clean else f"PSNR {p_in:.1f} dB"),
                          (den, "denoised", f"PSNR {p_out:.1f} dB"
                           + ("" if clean else f" ({p_out - p_in:+.1f})")),
                          (noisy, "landmarks", f"NME {nme:.3f}"))
                for i, (img, what, title) in enumerate(panels):
                    ax = axes[r0 + 3 * f + i, j]
                    ax.imshow(img, interpolation="nearest")
                    ax.set_xticks([])
                    ax.set_yticks([])
                    if i == 2:
                        ax.scatter(true[:, 0], true[:, 1], s=3, c="lime", linewidths=0)
                        ax.scatter(pred[:, 0], pred[:, 1], s=3, c="red", linewidths=0)
                    color = "black"
                    if i == 1 and not clean:
                        color = "darkgreen" if p_out > p_in else "firebrick"
                    ax.set_title((f"{name}\n" if f == 0 and i == 0 else "") + title,
                                 fontsize=7, pad=2, color=color)
                    if j == 0:
                        ax.set_ylabel(f"{label}\n{what}" if i == 0 else what, fontsize=7)
        r0 += 3 * len(rows)
    fig.suptitle("noisy crop -> internal denoiser -> landmarks; PSNR against the clean crop "
                 f"(noise at {reference_size} px); red predicted, green true", fontsize=8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _label(spec):
    """(label, path) of a --model value: LABEL=PATH, or a path labelled by its folder."""
    label, sep, path = spec.partition("=")
    if sep and label and path:
        return label, path
    p = Path(spec)
    name = p.name if p.is_dir() else p.parent.name if p.suffix else spec
    return name.replace("joint-", "FADeNN-"), spec


def main(argv=None):
    a = build_parser().parse_args(argv)
    from fadenn_tf.data.cache import resolve_data
    from fadenn_tf.data.datasets import index_300w
    from fadenn_tf.errors import FadennError
    from fadenn_tf.inference import load_any
    try:
        conditions = [c.strip() for c in a.conditions.split(",") if c.strip()]
        samples, _ = index_300w(resolve_data(a.data), "test")
        picks = samples[::max(1, len(samples) // max(a.faces, 1))][:a.faces]
        blocks, tables = [], []
        for spec in a.model:
            label, path = _label(spec)
            model = load_any(path)
            if not model.has_denoiser:                 # from the model's metadata
                raise ValueError(f"{path}: this model has no denoiser to show (train a "
                                 "FADeNN variant: --stage all --variant D, S or M)")
            blocks.append((label, _panels(model, picks, conditions, a.reference_size,
                                          a.seed)))
            if a.table_faces > 0:
                some = samples[:a.table_faces]
                tables.append(format_table(label, psnr_table(model, some, a.reference_size,
                                                             a.seed),
                                           len(some), a.reference_size, model.size))
    except (FadennError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for t in tables:
        print(t)
    print(f"wrote {draw(blocks, a.out, a.reference_size)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
