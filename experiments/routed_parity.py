"""NME of a FADeNN-S/M through each runtime on a dataset split: Keras, LiteRT routed float32
and routed dynamic_int8 (fadenn_tf.load(..., backend="litert" / "litert-int8")), on clean
crops and on crops degraded by each noise type at one level. Prints a Markdown table.

    python experiments/routed_parity.py --model pretrained --data 300w-train --split val

Crops: the ground-truth box crop at the model's side and crop_scale
(data.pipeline.load_eval_data); noise is applied to that crop (noise.degrade_images), not at
the protocol's reference resolution, so the figures compare runtimes with each other, not
with docs/results.md.
"""
import argparse

import numpy as np


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="pretrained")
    p.add_argument("--data", default=None, help="dataset folder (default: synthetic)")
    p.add_argument("--split", default="val", help="a dataset split, or val: the held-out "
                                                   "split of --config (default)")
    p.add_argument("--config", default="real128", help="config whose val split is used")
    p.add_argument("--level", type=int, default=3, help="noise level 1..3")
    p.add_argument("--normalizer", default="diagonal")
    a = p.parse_args(argv)
    import fadenn_tf
    from fadenn_tf.data.crop import CropTransform
    from fadenn_tf.data.pipeline import load_eval_data
    from fadenn_tf.evaluation.engine import select_samples
    from fadenn_tf.metrics import nme
    from fadenn_tf.noise import NOISE_NAMES, degrade_images
    runtimes = {b: fadenn_tf.load(a.model, backend=b, detector=None, failure_detector=None)
                for b in ("keras", "litert", "litert-int8")}
    size = runtimes["keras"].size
    samples = select_samples(a.data, split=a.split, config=a.config).samples
    ev = load_eval_data(samples, size, scale=runtimes["keras"].model.crop_scale)
    crops = ev.images.astype(np.float32)
    gt = np.stack([s.landmarks for s in ev.samples])
    print(f"{a.model} on {len(crops)} faces of {a.data or 'synthetic'} split {a.split}; "
          f"NME ({a.normalizer}) from ground-truth boxes; noise level {a.level} on the "
          f"{size}-px crop")
    print("| condition | " + " | ".join(runtimes) + " | noise class agreement with keras |")
    print("|---|" + "---|" * (len(runtimes) + 1))
    for t, name in enumerate(NOISE_NAMES):
        x = crops if t == 0 else degrade_images(
            crops.astype(np.uint8), t, a.level, 0).astype(np.float32)
        row, classes = [], {}
        for b, pred in runtimes.items():
            out = pred.model.predict_crops(x)
            pts = np.stack([CropTransform(r, ev.size).invert(q)
                            for r, q in zip(ev.regions, out["landmarks"])])
            row.append(f"{np.nanmean(nme(pts, gt, a.normalizer)):.4f}")
            classes[b] = np.argmax(out["noise_probs"], 1)
        agree = ", ".join(f"{b} {np.mean(classes[b] == classes['keras']):.3f}"
                          for b in runtimes if b != "keras")
        label = "clean" if t == 0 else f"{name}-{a.level}"
        print(f"| {label} | " + " | ".join(row) + f" | {agree} |", flush=True)


if __name__ == "__main__":
    main()
