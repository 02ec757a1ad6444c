"""The paper's robustness study (section IV-B, Figure 4) end to end on one dataset.

  python experiments/robustness.py                         # synthetic data, cpu config
  python experiments/robustness.py --data 300W --config paper --workdir runs/paper-300w
  python experiments/robustness.py --data Menpo --format menpo --split val ...
  python experiments/robustness.py --quick                 # smoke test: a few steps

1. Trains, with fadenn_tf.training.run.run_stages (what `python -m fadenn_tf.train` runs) and
   one shared --workdir, every stage the
   variants need: the FLL baseline (fll), the general DAE (dae, FADeNN-D), the 4 expert DAEs
   (experts), the single-task classifier (stc, FADeNN-S), the multi-task classifier (mtc,
   FADeNN-M), then the joint fine-tuning of each variant (joint-D, joint-S, joint-M).
   Stages whose model file already exists are skipped (pass --retrain to redo them).
2. Evaluates the FLL and FADeNN-D/S/M with `python -m fadenn_tf.evaluate` on the test split
   under all 13 conditions (clean + 4 types x 3 levels): results.json, results.md, the AUC vs
   level figure (the paper's Figure 4), CED curves and landmark grids in --out.
"""
import argparse
import subprocess
import sys
from pathlib import Path

from fadenn_tf.utils.cli_args import positive_int

def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=None, help="dataset folder (default: synthetic faces)")
    p.add_argument("--format", default="auto", help="auto|300w|menpo|folder")
    p.add_argument("--split", default=None, help="evaluation split (default: 300-W full test "
                   "set / held-out part of a folder)")
    p.add_argument("--config", default="cpu", help="training config (cpu, paper or a YAML)")
    p.add_argument("--variants", default="D,S,M", help="FADeNN variants (default D,S,M)")
    p.add_argument("--no-control", action="store_true",
                   help="skip the control run: the FLL fine-tuned with the joint stage's noisy "
                        "data and steps but no denoiser (`--stage joint --variant fll`), which "
                        "tells a denoiser's gain from the gain of seeing noisy images")
    p.add_argument("--workdir", default="runs/robustness", help="training output folder")
    p.add_argument("--out", default="results/robustness", help="evaluation output folder")
    p.add_argument("--steps", type=positive_int, default=None,
                   help="steps per stage (> 0; default: config)")
    p.add_argument("--max-images", type=int, default=0, help="evaluate at most N images")
    p.add_argument("--noisy-from", default=None, help="a fadenn_tf.degrade output to use")
    p.add_argument("--dlib", action="store_true", help="add dlib's ERT as a peer row")
    p.add_argument("--retrain", action="store_true", help="retrain stages already done")
    p.add_argument("--skip-train", action="store_true", help="only evaluate")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: 3 steps per stage, 16 images, batch 8")
    return p.parse_args(argv)


def run(cmd):
    print("$ " + " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True)


def main(argv=None):
    a = parse(argv)
    py = sys.executable
    variants = [v.strip().upper() for v in a.variants.split(",") if v.strip()]
    steps = a.steps or (3 if a.quick else 0)
    work = Path(a.workdir)
    if not a.skip_train:
        from fadenn_tf.config import load_config
        from fadenn_tf.training.run import RunOptions, run_stages
        from fadenn_tf.training.tasks import get_task, stage_outputs
        overrides = {"train": {"batch_size": 8} if a.quick else {}}
        if a.format != "auto":
            overrides["data"] = {"format": a.format}
        cfg = load_config(a.config, overrides)

        def train(stage, variant="M"):   # what `python -m fadenn_tf.train` runs
            run_stages(cfg, stage, variant, work, a.data,
                       RunOptions(steps=steps, overwrite=a.retrain))
        stages = []
        for v in variants:
            stages += [s for s in get_task("joint").needs(v) if s not in stages]
        for s in stages:
            if a.retrain or not all(p.is_file() for p in stage_outputs(work, s)):
                train(s)
            else:
                print(f"stage {s}: done already ({work / s})")
        joints = variants + ([] if a.no_control else ["fll"])
        for v in joints:
            if a.retrain or not all(p.is_file() for p in stage_outputs(work, "joint", v)):
                train("joint", v)
            else:
                print(f"stage joint-{v}: done already")
    models = ["--model", f"FLL={work / 'fll' / 'model.keras'}"]
    if not a.no_control:
        models += ["--model", f"FLL-noisy-ft={work / 'joint-fll' / 'model.keras'}"]
    for v in variants:
        models += ["--model", f"FADeNN-{v}={work / f'joint-{v}' / 'model.keras'}"]
    cmd = [py, "-m", "fadenn_tf.evaluate", *models, "--conditions", "all", "--out", a.out]
    cmd += (["--data", a.data] if a.data else []) + (["--format", a.format] if a.format != "auto"
                                                     else [])
    cmd += (["--split", a.split] if a.split else []) + (["--dlib"] if a.dlib else [])
    cmd += (["--noisy-from", a.noisy_from] if a.noisy_from else [])
    max_images = a.max_images or (16 if a.quick else 0)
    cmd += (["--max-images", max_images] if max_images else [])
    run(cmd)
    print(f"\nFigure 4: {Path(a.out) / 'auc_vs_level.png'}; table: {Path(a.out) / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
