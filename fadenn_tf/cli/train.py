"""Train FADeNN stage by stage (paper section III-D).

  python -m fadenn_tf.train --stage fll                      # FLL on the synthetic data, CPU config
  python -m fadenn_tf.train --stage all --variant M          # experts, mtc, fll, joint
  python -m fadenn_tf.train --stage joint --variant S --out runs/cpu

Stages: the registered training stages (fadenn_tf/training/tasks/), listed under --stage.
Inputs: a config (a name shipped in fadenn_tf/configs/, listed under --config; or a YAML
path), a dataset (--data; default the built-in synthetic faces).
Outputs in OUT/<stage>/ (--out; --workdir is its former name): model.keras (experts:
expert_k.keras), checkpoints/, config.yaml, run.json (config and data fingerprints),
metrics.json (a JSON line per evaluation), tb/ (TensorBoard). One train per workdir at a time
(OUT/.fadenn.lock). A workdir holding an earlier run needs --resume (newest complete
checkpoint) or --overwrite.
Progress: a bar on a terminal, else a line every 10% of the steps (step/total, loss,
images/s, ETA); --no-progress for neither.
"""
import os
import sys

from fadenn_tf.config import available_configs, load_config
from fadenn_tf.training.tasks import all_stages, task_names
from fadenn_tf.utils.cli import (EXIT_CODES, EXIT_DONE, EXIT_INTERRUPTED, add_config_arguments,
                                 add_no_progress, command, make_parser)
from fadenn_tf.utils.cli_args import non_negative_int, positive_int


def build_parser():
    p = make_parser("train", __doc__, epilog=EXIT_CODES + " A full disk while writing a "
                    "checkpoint or model stops the run with exit 3, the newest complete "
                    "checkpoint intact: free some space and continue with --resume.")
    p.add_argument("--stage", required=True,
                   choices=[*task_names(), "all"],
                   help=f"what to train: one stage, or all (the stages of --variant: "
                        f"{', '.join(all_stages('M'))} for M)")
    p.add_argument("--variant", default="M", help="D, S or M (FADeNN variant; default M); "
                   "used by joint and all. fll with --stage joint: the control run (the FLL "
                   "fine-tuned on the same noisy data, no denoiser)")
    p.add_argument("--config", default="cpu",
                   help=f"a packaged config name ({', '.join(available_configs())}) or a YAML "
                        "path (default: cpu; paper = the paper's settings)")
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
    add_config_arguments(p)
    add_no_progress(p)
    return p


@command
def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.resume and args.overwrite:
        parser.error("--resume and --overwrite exclude each other")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
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
    cfg = load_config(args.config, overrides, sets=args.sets)
    from fadenn_tf.training import run as training  # lazy: TensorFlow
    options = training.RunOptions(steps=args.steps or 0, resume=args.resume,
                                  overwrite=args.overwrite, force=args.force, jit=args.jit,
                                  progress=not args.no_progress, strategy=args.strategy,
                                  logical_cpus=args.logical_cpus)
    try:
        training.run_stages(cfg, args.stage, args.variant, args.workdir, args.data, options)
    except training.Interrupted as exc:  # Ctrl-C / SIGTERM, after the loop saved a checkpoint
        print(f"\n{exc}; continue with the same command plus --resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_DONE


if __name__ == "__main__":
    sys.exit(main())
