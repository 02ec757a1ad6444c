"""run_stages: train one stage or a whole recipe (`--stage all`) in a workdir, as `train` does.

Sets up the tf.distribute strategy and the precision policy, loads the data splits, takes the
workdir's lock (one writer), then runs each stage task in order, reusing finished stages of
`--stage all`, and prints each stage's validation figures (fadenn_tf.training.report).
"""
import contextlib
import sys
import time
from pathlib import Path


def run_stages(cfg, stage, variant="M", workdir=None, data=None, *, steps=0,
               strategy="default", logical_cpus=0, resume=False, overwrite=False, force=False,
               jit=False, progress=True):
    """Train `stage` ("fll", "dae", "experts", "stc", "mtc", "joint" or "all") of FADeNN-
    `variant` under ExperimentConfig `cfg` into `workdir` (default runs/<cfg.name>) on the
    dataset folder `data` (None: the built-in synthetic data). steps: per stage, 0 = the
    config's. Raises FadennError on bad inputs, training.loop.Interrupted on Ctrl-C."""
    from fadenn_tf.models.fadenn import normalize_variant
    from fadenn_tf.training import stages as st
    from fadenn_tf.data.splits import load_splits
    from fadenn_tf.training.distribute import is_chief, make_strategy
    from fadenn_tf.training.report import print_result
    from fadenn_tf.utils.lock import folder_lock
    import keras
    variant = normalize_variant(variant)
    strategy_name, strategy = strategy, make_strategy(strategy, logical_cpus)
    if cfg.train.mixed_precision != "none":
        from fadenn_tf.config import PRECISIONS
        keras.mixed_precision.set_global_policy(PRECISIONS[cfg.train.mixed_precision])
    workdir = Path(workdir or Path("runs") / cfg.name)
    todo = st.stages_for(stage, variant)
    if todo[0] == "joint":
        st.check_needs(workdir, "joint", variant)
    # the steps each stage will run (stages._total_steps): short runs validate on fewer images
    longest = max(int(steps or cfg.train.steps.get(name, 1000)) for name in todo)
    splits = load_splits(cfg.data, data, longest_stage_steps=longest)
    for rep in splits.reports:
        if rep.skipped:
            print(rep.summary(), file=sys.stderr)
    print(f"config {cfg.name} | data {splits.description} | workdir {workdir} | "
          f"strategy {strategy_name} ({strategy.num_replicas_in_sync} replica(s)) | "
          f"precision {cfg.train.mixed_precision} | loss {cfg.train.landmark_loss}")
    with contextlib.ExitStack() as held:
        if is_chief(strategy):  # one writer per workdir
            held.enter_context(folder_lock(workdir, "train"))
        ctx = st.StageContext(cfg=cfg, variant=variant,
                              workdir=workdir, strategy=strategy, train=splits.train,
                              val=splits.val, steps=steps, resume=resume,
                              overwrite=overwrite, force=force,
                              chief=is_chief(strategy), progress=progress,
                              mixed_precision=cfg.train.mixed_precision,
                              jit=jit, init_from=cfg.train.init_from)
        for name in todo:
            done = st.stage_outputs(workdir, name, ctx.variant)
            if len(todo) > 1 and not (resume or overwrite) and all(p.is_file() for p in done):
                # `--stage all` after single stages: reuse what is finished
                print(f"\n== stage {name}: already trained ({done[0].parent}); skipped "
                      f"(delete that folder to train it again)")
                continue
            t0 = time.time()
            keras.utils.set_random_seed(cfg.train.seed)  # weights, dropout, Python, NumPy
            result = st.STAGES[name](ctx)
            print_result(name, ctx.variant, result, splits.description)
            outs = ", ".join(str(p) for p in st.stage_outputs(workdir, name, ctx.variant))
            print(f"   {time.time() - t0:.0f} s; "
                  + (f"wrote {outs}" if ctx.chief else "not the chief: the chief wrote the outputs"))
            if ctx.data_problems:
                print(f"   {len(ctx.data_problems)} training sample(s) skipped: "
                      + "; ".join(f"{p}: {m}" for p, m in ctx.data_problems[:5]), file=sys.stderr)
                ctx.data_problems.clear()
    return workdir
