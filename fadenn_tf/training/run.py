"""run_stages: train one stage or a whole recipe (`--stage all`) in a workdir, as `train` does.

Sets up the tf.distribute strategy and the precision policy, loads the data splits, takes the
workdir's lock (one writer), then runs each stage's task in order (stages.run_stage), reusing
finished stages of `--stage all`, and prints each stage's validation figures
(fadenn_tf.training.report).
"""
import contextlib
import sys
import time
from pathlib import Path

import keras

from fadenn_tf.config import PRECISIONS
from fadenn_tf.data.splits import load_splits
from fadenn_tf.models.fadenn import normalize_variant
from fadenn_tf.training.distribute import is_chief, make_strategy
from fadenn_tf.training.loop import Interrupted  # noqa: F401  (what run_stages raises on Ctrl-C)
from fadenn_tf.training.report import print_result
from fadenn_tf.training.stages import RunOptions, StageContext, run_stage, stages_for
from fadenn_tf.training.tasks import check_needs, check_step_names, get_task, stage_outputs
from fadenn_tf.utils.lock import folder_lock


def run_stages(cfg, stage, variant="M", workdir=None, data=None, options=None):
    """Train `stage` (a registered stage name, fadenn_tf.training.tasks, or "all") of
    FADeNN-`variant` under ExperimentConfig `cfg` into `workdir` (default runs/<cfg.name>)
    on the dataset folder `data` (None: the built-in synthetic data), as `options`
    (RunOptions: steps, resume, overwrite, force, jit, progress, strategy) say. Returns the
    workdir. Raises FadennError on bad inputs, training.loop.Interrupted on Ctrl-C."""
    opts = options or RunOptions()
    variant = normalize_variant(variant)
    check_step_names(cfg.train, f"config {cfg.name}")
    todo = stages_for(stage, variant)
    strategy = make_strategy(opts.strategy, opts.logical_cpus)
    if cfg.train.mixed_precision != "none":
        keras.mixed_precision.set_global_policy(PRECISIONS[cfg.train.mixed_precision])
    workdir = Path(workdir or Path("runs") / cfg.name)
    check_needs(workdir, todo[0], variant)
    # the steps each stage will run: short runs validate on fewer images
    longest = max(get_task(name).steps(cfg, opts.steps) for name in todo)
    splits = load_splits(cfg.data, data, longest_stage_steps=longest)
    for rep in splits.reports:
        if rep.skipped:
            print(rep.summary(), file=sys.stderr)
    print(f"config {cfg.name} | data {splits.description} | workdir {workdir} | "
          f"strategy {opts.strategy} ({strategy.num_replicas_in_sync} replica(s)) | "
          f"precision {cfg.train.mixed_precision} | loss {cfg.train.landmark_loss}")
    with contextlib.ExitStack() as held:
        if is_chief(strategy):  # one writer per workdir
            held.enter_context(folder_lock(workdir, "train"))
        ctx = StageContext(cfg=cfg, variant=variant, workdir=workdir, strategy=strategy,
                           train=splits.train, val=splits.val, options=opts,
                           chief=is_chief(strategy))
        for name in todo:
            _run_one(ctx, name, len(todo) > 1, splits.description)
    return workdir


def _run_one(ctx, name, in_recipe, description):
    """Run stage `name` (skipped when part of a recipe and already trained) and print its
    figures, time and outputs."""
    opts, workdir = ctx.options, ctx.workdir
    done = stage_outputs(workdir, name, ctx.variant)
    if in_recipe and not (opts.resume or opts.overwrite) and all(p.is_file() for p in done):
        # `--stage all` after single stages: reuse what is finished
        print(f"\n== stage {name}: already trained ({done[0].parent}); skipped "
              f"(delete that folder to train it again)")
        return
    t0 = time.time()
    keras.utils.set_random_seed(ctx.cfg.train.seed)  # weights, dropout, Python, NumPy
    result = run_stage(ctx, name)
    print_result(name, ctx.variant, result, description)
    outs = ", ".join(str(p) for p in done)
    print(f"   {time.time() - t0:.0f} s; "
          + (f"wrote {outs}" if ctx.chief else "not the chief: the chief wrote the outputs"))
    if ctx.data_problems:
        print(f"   {len(ctx.data_problems)} training sample(s) skipped: "
              + "; ".join(f"{p}: {m}" for p, m in ctx.data_problems[:5]), file=sys.stderr)
        ctx.data_problems.clear()
