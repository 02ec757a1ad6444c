"""The one training loop every stage runs: the train step (`make_train_step`, which `bench`
times too) under a tf.distribute strategy, checkpoints written atomically (keep N),
`metrics.json` lines, TensorBoard logs, resume with the step counter, optimizer state and
data position, and Ctrl-C / SIGTERM that save a checkpoint before exiting.

What is on disk decides, not TF's `checkpoints/checkpoint` state file alone: resume takes the
newest `ckpt-N` that reads back completely (unreadable newer ones are renamed
`*.unreadable`, with a warning), and a fresh run refuses a workdir holding checkpoints, a
model or metrics unless told to overwrite them.
"""
import json
import math
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import keras
import tensorflow as tf

from fadenn_tf.errors import ConfigError, FadennError, WriteError, write_failure_problem
from fadenn_tf.training import ema
from fadenn_tf.utils.atomic import checked_write, write_text_atomic
from fadenn_tf.utils.progress import progress as progress_bar

STEP_MODES = ("eager", "function", "xla")


class Interrupted(Exception):
    """Raised after Ctrl-C / SIGTERM once the checkpoint of the current step is saved."""

    def __init__(self, step, checkpoint):
        self.step, self.checkpoint = step, checkpoint
        super().__init__(f"interrupted at step {step}; checkpoint saved to {checkpoint}")


class Diverged(FadennError):
    """The training loss became NaN or infinite; no checkpoint of that step is written, so
    the newest checkpoint holds the last finite weights."""

    def __init__(self, stage, step, values, checkpoint):
        self.step, self.checkpoint = step, checkpoint
        bad = ", ".join(f"{k}={v}" for k, v in values.items() if not math.isfinite(v))
        where = (f"the newest checkpoint ({checkpoint}) holds the last finite weights"
                 if checkpoint else "no checkpoint was written")
        super().__init__(
            f"stage {stage}: the loss is not finite at step {step} ({bad}); {where}. "
            f"Resume with --resume and a lower train.learning_rate, or without "
            f"--mixed-precision")


@dataclass
class LoopSpec:
    """What one stage trains.

    compute_losses(batch) -> (per_example_loss [B], {name: per-example or scalar tensor}):
        runs on each replica inside the train step with training=True.
    variables() -> list of the trainable variables (called once inside the strategy scope).
    make_dataset(start_step, input_context) -> tf.data.Dataset of per-replica batches for
        this input pipeline (input_context.input_pipeline_id of num_input_pipelines), element 0
        = step start_step.
    evaluate(step) -> dict of figures (plain Python numbers/strings) or None.
    """
    name: str
    compute_losses: Callable
    variables: Callable
    make_dataset: Callable
    trackables: dict
    total_steps: int
    global_batch: int
    evaluate: Optional[Callable] = None


@dataclass
class LoopOptions:
    """How the loop runs (steps are counts of train steps): evaluation, checkpoint and log
    periods, checkpoints kept, XLA for the step, resume / overwrite of an earlier run (see
    guard_workdir), chief (the worker that writes), a progress bar."""
    eval_every: int = 1000
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    log_every: int = 50
    jit: bool = False
    resume: bool = False
    overwrite: bool = False
    chief: bool = True
    progress: bool = False

    @classmethod
    def from_config(cls, train_cfg):
        """The periods, checkpoints kept and jit of config section `train` (TrainConfig); the
        rest at their defaults (set them with dataclasses.replace)."""
        return cls(eval_every=train_cfg.eval_every, checkpoint_every=train_cfg.checkpoint_every,
                   keep_checkpoints=train_cfg.keep_checkpoints, log_every=train_cfg.log_every,
                   jit=bool(train_cfg.jit))


def make_train_step(compute_losses, variables, optimizer, global_batch, *, strategy=None,
                    mode="function", step_var=None):
    """The train step: batch -> {"loss": scalar, term: scalar} summed over the replicas.

    On each replica: compute_losses(batch) -> (per-example loss [B], {name: per-example [B]
    or scalar term}) under a GradientTape, the loss averaged over `global_batch` examples
    (tf.nn.compute_average_loss, so replicas add up to the global mean), scaled for a
    LossScaleOptimizer, gradients applied to `variables` (a list). mode: eager (plain Python,
    for debugging and bench), function (tf.function), xla (tf.function, the replica step
    XLA-compiled). step_var (tf.Variable int64, optional) counts the steps taken. strategy:
    tf.distribute strategy (default: the current one)."""
    if mode not in STEP_MODES:
        raise ValueError(f"unknown step mode {mode!r}; choose {', '.join(STEP_MODES)}")
    strategy = strategy or tf.distribute.get_strategy()
    use_scaling = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    # The tasks' loss functions hold no Python control flow on tensors: AutoGraph has
    # nothing to convert, and its attempt on these closures only prints warnings.
    compute = tf.autograph.experimental.do_not_convert(compute_losses)

    def replica_step(batch):
        with tf.GradientTape() as tape:
            per_example, logs = compute(batch)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
            scaled = optimizer.scale_loss(loss) if use_scaling else loss
        grads = tape.gradient(scaled, variables)
        optimizer.apply_gradients(zip(grads, variables))
        out = {"loss": loss}
        for k, v in logs.items():
            v = tf.cast(v, tf.float32)
            out[k] = (tf.nn.compute_average_loss(v, global_batch_size=global_batch)
                      if v.shape.rank else v / strategy.num_replicas_in_sync)
        return out

    replica_fn = tf.function(replica_step, jit_compile=True) if mode == "xla" else replica_step

    def train_step(batch):
        per_replica = strategy.run(replica_fn, args=(batch,))
        if step_var is not None:
            step_var.assign_add(1)
        return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
                for k, v in per_replica.items()}
    return train_step if mode == "eager" else tf.function(train_step)


def checkpoints_on_disk(ckpt_dir):
    """Numbers N of the ckpt-N checkpoints (index files) in ckpt_dir, newest first."""
    nums = []
    for p in Path(ckpt_dir).glob("ckpt-*.index"):
        tail = p.name[len("ckpt-"):-len(".index")]
        if tail.isdigit():
            nums.append(int(tail))
    return sorted(nums, reverse=True)


def earlier_run(workdir, ckpt_dir):
    """What an earlier run left in `workdir` (checkpoints, models, metrics): list of str."""
    workdir = Path(workdir)
    found = []
    nums = checkpoints_on_disk(ckpt_dir)
    if nums:
        found.append(f"checkpoints {', '.join(f'ckpt-{n}' for n in nums[:3])} in {ckpt_dir}")
    found += [str(p) for p in sorted(workdir.glob("*.keras"))]
    if (workdir / "metrics.json").is_file():
        found.append(str(workdir / "metrics.json"))
    return found


def guard_workdir(workdir, *, resume=False, overwrite=False, ckpt_dir=None):
    """Refuse to start over on a workdir an earlier run left files in (FileExistsError), or
    with `overwrite` delete them (checkpoints/, *.keras, metrics.json, tb/). No-op on resume."""
    workdir = Path(workdir)
    ckpt_dir = Path(ckpt_dir or workdir / "checkpoints")
    found = earlier_run(workdir, ckpt_dir)
    if resume or not found:
        return
    if not overwrite:
        raise FileExistsError(
            f"{workdir}: holds an earlier run ({'; '.join(found)}); pass --resume to continue "
            f"it, --overwrite to start over, or choose another --workdir")
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    shutil.rmtree(workdir / "tb", ignore_errors=True)
    for p in [*workdir.glob("*.keras"), workdir / "metrics.json"]:
        p.unlink(missing_ok=True)


def _warn(msg):
    print(f"warning: {msg}", file=sys.stderr, flush=True)


def _read_fully(prefix):
    """Read every tensor of checkpoint `prefix` (raises if a file is missing or truncated)."""
    reader = tf.train.load_checkpoint(str(prefix))
    for key in reader.get_variable_to_shape_map():
        reader.get_tensor(key)


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def restore_newest(checkpoint, ckpt_dir):
    """Restore the newest checkpoint of ckpt_dir that reads back completely; returns its
    prefix (None if there is none). Unreadable newer ones are renamed *.unreadable, with a
    warning. Raises FileExistsError if none reads back (nothing renamed then) and ConfigError
    if the readable one holds another model (a changed config)."""
    ckpt_dir = Path(ckpt_dir)
    nums = checkpoints_on_disk(ckpt_dir)
    bad = []
    for n in nums:
        try:
            _read_fully(ckpt_dir / f"ckpt-{n}")
            break
        except Exception as exc:  # noqa: BLE001 (missing, truncated, garbled: try older)
            bad.append((n, _first_line(exc)))
    else:
        if not nums:
            return None
        raise FileExistsError(
            f"{ckpt_dir}: no checkpoint reads back completely (" + "; ".join(
                f"ckpt-{m}: {why}" for m, why in bad) + "); pass --overwrite to start over")
    for m, why in bad:
        _warn(f"{ckpt_dir / f'ckpt-{m}'}: unreadable ({why}); renamed to *.unreadable, "
              f"resuming from ckpt-{n}")
        for f in ckpt_dir.glob(f"ckpt-{m}.*"):
            f.rename(f.with_name(f.name + ".unreadable"))
    prefix = ckpt_dir / f"ckpt-{n}"
    try:
        checkpoint.restore(str(prefix)).assert_existing_objects_matched()
    except (AssertionError, ValueError) as exc:  # unmatched objects, other shapes
        raise ConfigError(f"{prefix}: holds another model than the one being trained "
                          f"({_first_line(exc)})") from None
    # the state file may be missing or corrupt: rewrite it from what is on disk
    good = [str(ckpt_dir / f"ckpt-{m}") for m in sorted(nums) if m <= n]
    tf.compat.v1.train.update_checkpoint_state(str(ckpt_dir), str(prefix),
                                               all_model_checkpoint_paths=good)
    return prefix


def _metrics_records(path):
    if not Path(path).is_file():
        return []
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut by a kill
    return out


def _trim_metrics(path, last_step):
    """Drop metrics lines after `last_step` (a resumed run computes those steps again)."""
    if not Path(path).is_file():
        return
    keep = [r for r in _metrics_records(path) if int(r.get("step", 0)) <= last_step]
    write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in keep))


def _append_jsonl(path, record):
    with checked_write(path), open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()


def save_checkpoint(manager, step):
    """manager.save(checkpoint_number=step) -> its prefix. A failed write (full disk,
    file-size limit) removes what the attempt left (the `ckpt-N_temp` folder and, unless
    ckpt-N existed before, its partial `ckpt-N.*` files) and raises WriteError naming the
    checkpoint; the earlier checkpoints and the state file are untouched."""
    ckpt_dir = Path(manager.directory)
    prefix = ckpt_dir / f"ckpt-{step}"
    existed = {p.name for p in ckpt_dir.glob(f"ckpt-{step}.*")}
    try:
        return manager.save(checkpoint_number=step)
    except Exception as exc:  # noqa: BLE001 (TensorFlow's own error types)
        problem = write_failure_problem(exc)
        if problem is None:
            raise
        for left in ckpt_dir.glob(f"ckpt-{step}_temp*"):
            shutil.rmtree(left, ignore_errors=True) if left.is_dir() else left.unlink()
        for left in ckpt_dir.glob(f"ckpt-{step}.*"):
            if left.name not in existed:
                left.unlink(missing_ok=True)
        newest = checkpoints_on_disk(ckpt_dir)
        keep = (f"ckpt-{newest[0]} is the newest complete checkpoint: free some space and "
                "continue with --resume" if newest else "no earlier checkpoint exists")
        raise WriteError(prefix, f"{problem}; {keep}") from None


def run_loop(spec, optimizer, strategy, workdir, options=None):
    """Train `spec` (LoopSpec) for spec.total_steps steps with `optimizer` under `strategy`
    into `workdir`, as `options` (LoopOptions; default LoopOptions()) say; returns the last
    evaluation dict (or {}).

    Checkpoints go to WORKDIR/checkpoints (tf.train.CheckpointManager). Without
    options.resume, a workdir holding an earlier run is an error (or is cleared with
    options.overwrite, see guard_workdir). With resume, the newest complete checkpoint is
    restored (see restore_newest) and metrics lines after its step are dropped. A run resumed
    at or past its last step still writes its final validation if the metrics lack it.
    """
    opt = options or LoopOptions()
    if int(spec.total_steps) < 1:  # never "complete" an untrained model
        raise ConfigError(f"stage {spec.name}: steps must be >= 1, got {spec.total_steps}")
    workdir = Path(workdir)
    chief = opt.chief
    ckpt_dir = workdir / "checkpoints"
    if not chief:  # non-chief workers of multi-worker training write to a throwaway folder
        ckpt_dir = workdir / f".worker-{strategy.cluster_resolver.task_id}" / "checkpoints"
    step_var = spec.trackables.get("step")
    checkpoint = tf.train.Checkpoint(optimizer=optimizer, **spec.trackables)
    metrics_path = workdir / "metrics.json"
    guard_workdir(workdir if chief else ckpt_dir.parent, resume=opt.resume,
                  overwrite=opt.overwrite, ckpt_dir=ckpt_dir)
    if opt.resume:
        restore_newest(checkpoint, ckpt_dir)
    manager = tf.train.CheckpointManager(checkpoint, str(ckpt_dir),
                                         max_to_keep=opt.keep_checkpoints)
    start = int(step_var.numpy())
    if opt.resume and chief:
        _trim_metrics(metrics_path, start)
    if start >= spec.total_steps:
        ema.finalize(optimizer)
        return _final_figures(spec, start, metrics_path, chief)

    with strategy.scope():
        variables = spec.variables()
    train_step = make_train_step(spec.compute_losses, variables, optimizer, spec.global_batch,
                                 strategy=strategy, mode="xla" if opt.jit else "function",
                                 step_var=step_var)

    dataset = strategy.distribute_datasets_from_function(
        lambda input_context: spec.make_dataset(start, input_context))
    writer = tf.summary.create_file_writer(str(workdir / "tb")) if chief else \
        tf.summary.create_noop_writer()
    last_eval = {}
    stop = {"signal": None}

    def _on_signal(signum, _frame):
        stop["signal"] = signum

    old = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)} \
        if _main_thread() else {}
    bar = progress_bar(total=spec.total_steps, desc=f"train {spec.name}", enabled=opt.progress,
                       unit="step")
    bar.update(start)
    t0, n0 = time.perf_counter(), start
    try:
        it = iter(dataset)
        step = start
        while step < spec.total_steps:
            logs = train_step(next(it))
            step = int(step_var.numpy())
            bar.update(1)
            if stop["signal"] is not None:
                path = save_checkpoint(manager, step)
                raise Interrupted(step, path)
            is_ckpt = step % opt.checkpoint_every == 0 or step == spec.total_steps
            if step % opt.log_every == 0 or is_ckpt:
                vals = {k: float(v.numpy()) for k, v in logs.items()}
                if not all(math.isfinite(v) for v in vals.values()):
                    raise Diverged(spec.name, step, vals, manager.latest_checkpoint)
            if step % opt.log_every == 0 or step == spec.total_steps:
                rate = (step - n0) * spec.global_batch / max(time.perf_counter() - t0, 1e-9)
                t0, n0 = time.perf_counter(), step
                bar.set_postfix(loss=f"{vals['loss']:.4g}", img_s=f"{rate:.0f}")
                with writer.as_default(step=step):
                    for k, v in vals.items():
                        tf.summary.scalar(f"train/{k}", v)
                    tf.summary.scalar("train/images_per_s", rate)
                    lr = optimizer.learning_rate
                    tf.summary.scalar("train/learning_rate", float(
                        lr(step) if callable(lr) else lr))
            if is_ckpt:
                save_checkpoint(manager, step)
            if spec.evaluate is not None and (step % opt.eval_every == 0
                                              or step == spec.total_steps):
                with ema.averaged_weights(optimizer):
                    last_eval = dict(spec.evaluate(step) or {})
                record = {"stage": spec.name, "step": step, "time": time.time(), **last_eval}
                if chief:
                    _append_jsonl(metrics_path, record)
                    with writer.as_default(step=step):
                        for k, v in last_eval.items():
                            if isinstance(v, (int, float)):
                                tf.summary.scalar(f"val/{k}", v)
    except KeyboardInterrupt:
        step = int(step_var.numpy())
        path = save_checkpoint(manager, step)
        raise Interrupted(step, path) from None
    finally:
        bar.close()
        writer.flush()
        for s, h in old.items():
            signal.signal(s, h)
    ema.finalize(optimizer)  # the stage saves the averaged weights (no-op without EMA)
    return last_eval


def _final_figures(spec, step, metrics_path, chief):
    """A run resumed at or past its last step: the final validation from metrics.json, or
    computed now (and written) when a kill came between the last checkpoint and it."""
    if spec.evaluate is None:
        return {"step": step, "note": "already complete"}
    for r in reversed(_metrics_records(metrics_path)):
        if int(r.get("step", -1)) == step:
            return {k: v for k, v in r.items() if k not in ("stage", "step", "time")}
    figures = dict(spec.evaluate(step) or {})
    if chief:
        _append_jsonl(metrics_path, {"stage": spec.name, "step": step, "time": time.time(),
                                     **figures})
    return figures


def _main_thread():
    return threading.current_thread() is threading.main_thread()
