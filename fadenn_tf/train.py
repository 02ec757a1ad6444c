"""Train FADeNN stage by stage (paper section III-D).

  python -m fadenn_tf.train --stage fll                      # FLL on the synthetic data, CPU config
  python -m fadenn_tf.train --stage all --variant M          # experts, mtc, fll, joint
  python -m fadenn_tf.train --stage joint --variant S --out runs/cpu

Stages: fll, dae, experts, stc, mtc, joint, all (see fadenn_tf/training/stages.py).
Inputs: a config (cpu (default), paper, real128, real300w or demo, shipped in
fadenn_tf/configs/; or a YAML path), a dataset (--data; default the built-in synthetic faces).
Outputs in OUT/<stage>/ (--out; --workdir is its former name): model.keras (experts:
expert_k.keras), checkpoints/, config.yaml, run.json (config and data fingerprints),
metrics.json (a JSON line per evaluation), tb/ (TensorBoard). One train per workdir at a time
(OUT/.fadenn.lock). A workdir holding an earlier run needs --resume (newest complete
checkpoint) or --overwrite.
Progress: a bar on a terminal, else a line every 10% of the steps (step/total, loss,
images/s, ETA); --no-progress for neither.
"""
import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

from fadenn_tf.utils.cli_args import non_negative_int, positive_int


def build_parser():
    from fadenn_tf.utils.cli import add_no_progress, make_parser
    p = make_parser("train", __doc__)
    p.add_argument("--stage", required=True,
                   choices=["fll", "dae", "experts", "stc", "mtc", "joint", "all"],
                   help="what to train: one stage, or all (experts, mtc, fll, joint for M)")
    p.add_argument("--variant", default="M", help="D, S or M (FADeNN variant; default M); "
                   "used by joint and all. fll with --stage joint: the control run (the FLL "
                   "fine-tuned on the same noisy data, no denoiser)")
    p.add_argument("--config", default="cpu",
                   help="a packaged config name (cpu, paper, real300w, demo) or a YAML path "
                        "(default: cpu; paper = the paper's settings)")
    p.add_argument("--data", default=None,
                   help="dataset folder (300-W, Menpo or folder of images + .pts); default: "
                        "the built-in synthetic dataset, generated once into the cache")
    p.add_argument("--format", default=None, help="auto|300w|menpo|folder (default: config)")
    p.add_argument("--out", "--workdir", dest="workdir", default=None,
                   help="output folder (default runs/<config name>); --out is canonical, "
                        "--workdir its former name")
    p.add_argument("--steps", type=positive_int, default=None, help="steps for each stage run "
                   "(> 0; default: the config's train.steps)")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help="global batch size override")
    p.add_argument("--resume", action="store_true",
                   help="continue from the newest complete checkpoint in the workdir (after "
                        "Ctrl-C or a kill)")
    p.add_argument("--overwrite", action="store_true",
                   help="start over on a workdir holding an earlier run: deletes the stage's "
                        "checkpoints, model, metrics and TensorBoard logs")
    p.add_argument("--force", action="store_true",
                   help="with --resume: continue although the config or training data differ "
                        "from the run's")
    p.add_argument("--strategy", default="default", choices=["default", "mirrored", "multiworker"],
                   help="tf.distribute strategy: one device, all local GPUs, or TF_CONFIG workers")
    p.add_argument("--logical-cpus", type=non_negative_int, default=0,
                   help="with --strategy mirrored: split the CPU into N logical devices (testing)")
    p.add_argument("--jit", action="store_true", help="XLA-compile the train step")
    p.add_argument("--mixed-precision", nargs="?", const="fp16", default=None,
                   choices=["none", "fp16", "bf16"],
                   help="mixed precision: fp16 (mixed_float16 with loss scaling, for GPUs; the "
                        "default when the flag is given alone) or bf16 (mixed_bfloat16, for "
                        "CPUs with AVX512-BF16/AMX and recent GPUs); default: the config's "
                        "train.mixed_precision. Losses, metrics and optimizer state stay "
                        "float32; saved models are float32")
    p.add_argument("--init-from", default=None, metavar="PATH",
                   help="start each stage from compatible weights: a .keras file, a stage "
                        "folder or a workdir (e.g. a run pretrained on synthetic faces); "
                        "layers are matched by name and shape (transfer learning)")
    p.add_argument("--loss", default=None, choices=["rmse", "l1", "wing"],
                   help="landmark loss of the fll and joint stages (default: the config's "
                        "train.landmark_loss; the paper's is rmse)")
    add_no_progress(p)
    return p


def _print_result(stage, variant, result, desc):
    from fadenn_tf import metrics
    norm = metrics.NORMALIZER_INFO[metrics.DEFAULT_NORMALIZER]
    t = metrics.DEFAULT_THRESHOLD
    what = ("FLL fine-tuned on noisy crops, the control" if variant == "fll"
            else f"FADeNN-{variant}")
    print(f"\n== stage {stage}{' (' + what + ')' if stage == 'joint' else ''}: "
          f"validation on {desc}")
    if "nme_clean" in result:
        print(f"   NME normalised by the {norm}; AUC and FR at {t}; 'noisy' pools the 12 "
              f"noise conditions (4 types x 3 levels)")
        rows = [("model", "")]
        if "mean_shape_nme_clean" in result:
            rows.append(("mean-shape baseline", "mean_shape_"))
        if "fll_baseline_nme_clean" in result:
            rows.append(("FLL alone (before joint)", "fll_baseline_"))
        for label, pre in rows:
            parts = []
            for cond in ("clean", "noisy"):
                k = f"{pre}nme_{cond}"
                if k in result:
                    parts.append(f"{cond}: NME {result[k]:.4f}"
                                 + (f" AUC@{t} {result[f'{pre}auc_{cond}']:.3f}"
                                    if f"{pre}auc_{cond}" in result else "")
                                 + (f" FR@{t} {result[f'{pre}fr_{cond}']:.3f}"
                                    if f"{pre}fr_{cond}" in result else ""))
            print(f"   {label:<26} " + " | ".join(parts))
    elif "accuracy" in result:
        print(f"   noise-class accuracy {result['accuracy']:.3f} over {result['accuracy_over']}")
    elif "psnr_noisy_output" in result:
        print(f"   PSNR ({result['psnr_unit']}): noisy input {result['psnr_noisy_input']:.2f} -> "
              f"denoised {result['psnr_noisy_output']:.2f}; clean input through the DAE "
              f"{result['psnr_clean_output']:.2f}")
    elif any(k.startswith("psnr_expert") for k in result):
        for k in range(1, 5):
            print(f"   expert {k}: PSNR input {result[f'psnr_expert_{k}_input']:.2f} -> output "
                  f"{result[f'psnr_expert_{k}_output']:.2f} ({result['psnr_unit']})")
    elif result.get("note"):
        print(f"   {result['note']}")


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.resume and args.overwrite:
        parser.error("--resume and --overwrite exclude each other")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from fadenn_tf.config import load_config
    from fadenn_tf.errors import FadennError
    from fadenn_tf.utils.lock import folder_lock
    held = contextlib.ExitStack()
    try:
        overrides = {"train": {}}
        if args.batch_size:
            overrides["train"]["batch_size"] = args.batch_size
        if args.mixed_precision:
            overrides["train"]["mixed_precision"] = args.mixed_precision
        if args.loss:
            overrides["train"]["landmark_loss"] = args.loss
        if args.init_from:
            overrides["train"]["init_from"] = args.init_from
        if args.format:
            overrides["data"] = {"format": args.format}
        cfg = load_config(args.config, overrides)
        from fadenn_tf.models.fadenn import normalize_variant
        variant = normalize_variant(args.variant)
        from fadenn_tf.training.distribute import is_chief, make_strategy
        strategy = make_strategy(args.strategy, args.logical_cpus)
        if cfg.train.mixed_precision != "none":
            import keras
            from fadenn_tf.config import PRECISIONS
            keras.mixed_precision.set_global_policy(PRECISIONS[cfg.train.mixed_precision])
        from fadenn_tf.training import stages as st
        from fadenn_tf.training.data import load_splits
        workdir = Path(args.workdir or Path("runs") / cfg.name)
        todo = st.stages_for(args.stage, variant)
        if todo[0] == "joint":
            st.check_needs(workdir, "joint", variant)
        splits = load_splits(cfg.data, args.data)
        for rep in splits.reports:
            if rep.skipped:
                print(rep.summary(), file=sys.stderr)
        print(f"config {cfg.name} | data {splits.description} | workdir {workdir} | "
              f"strategy {args.strategy} ({strategy.num_replicas_in_sync} replica(s)) | "
              f"precision {cfg.train.mixed_precision} | loss {cfg.train.landmark_loss}")
        if is_chief(strategy):  # one writer per workdir
            held.enter_context(folder_lock(workdir, "train"))
        ctx = st.StageContext(cfg=cfg, variant=variant,
                              workdir=workdir, strategy=strategy, train=splits.train,
                              val=splits.val, steps=args.steps or 0, resume=args.resume,
                              overwrite=args.overwrite, force=args.force,
                              chief=is_chief(strategy), progress=not args.no_progress,
                              mixed_precision=cfg.train.mixed_precision,
                              jit=args.jit, init_from=cfg.train.init_from)
        for stage in todo:
            done = st.stage_outputs(workdir, stage, ctx.variant)
            if len(todo) > 1 and not (args.resume or args.overwrite) and \
                    all(p.is_file() for p in done):
                # `--stage all` after single stages: reuse what is finished
                print(f"\n== stage {stage}: already trained ({done[0].parent}); skipped "
                      f"(delete that folder to train it again)")
                continue
            t0 = time.time()
            import keras
            keras.utils.set_random_seed(cfg.train.seed)  # weights, dropout, Python, NumPy
            result = st.STAGES[stage](ctx)
            _print_result(stage, ctx.variant, result, splits.description)
            outs = ", ".join(str(p) for p in st.stage_outputs(workdir, stage, ctx.variant))
            print(f"   {time.time() - t0:.0f} s; "
                  + (f"wrote {outs}" if ctx.chief else "not the chief: the chief wrote the outputs"))
            if ctx.data_problems:
                print(f"   {len(ctx.data_problems)} training sample(s) skipped: "
                      + "; ".join(f"{p}: {m}" for p, m in ctx.data_problems[:5]), file=sys.stderr)
                ctx.data_problems.clear()
    except FileExistsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except FadennError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # Interrupted from the loop
        from fadenn_tf.training.loop import Interrupted
        if isinstance(exc, Interrupted):
            print(f"\n{exc}; continue with the same command plus --resume", file=sys.stderr)
            return 130
        raise
    finally:
        held.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
