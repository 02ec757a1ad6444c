"""The one training loop every stage runs: a `tf.function` step under a tf.distribute
strategy, checkpoints written atomically (keep N), `metrics.json` lines, TensorBoard logs,
resume with the step counter, optimizer state and data position, and Ctrl-C / SIGTERM that
save a checkpoint before exiting.
"""
import json
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import tensorflow as tf

from fadenn_tf.utils.progress import progress as progress_bar


class Interrupted(Exception):
    """Raised after Ctrl-C / SIGTERM once the checkpoint of the current step is saved."""

    def __init__(self, step, checkpoint):
        self.step, self.checkpoint = step, checkpoint
        super().__init__(f"interrupted at step {step}; checkpoint saved to {checkpoint}")


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
    metric_fields: dict = field(default_factory=dict)


def _append_jsonl(path, record):
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()


def run_loop(spec, optimizer, strategy, workdir, *, eval_every=1000, checkpoint_every=500,
             keep_checkpoints=3, log_every=50, jit=False, resume=False, chief=True,
             progress=False):
    """Train `spec` for spec.total_steps steps; returns the last evaluation dict (or {}).

    Checkpoints go to WORKDIR/checkpoints (tf.train.CheckpointManager: the index file and
    the `checkpoint` state file are written last, so a checkpoint killed half-way is never
    picked up). Without `resume`, a workdir that already has checkpoints is an error.
    """
    workdir = Path(workdir)
    ckpt_dir = workdir / "checkpoints"
    if not chief:  # non-chief workers of multi-worker training write to a throwaway folder
        ckpt_dir = workdir / f".worker-{strategy.cluster_resolver.task_id}" / "checkpoints"
    step_var = spec.trackables.get("step")
    checkpoint = tf.train.Checkpoint(optimizer=optimizer, **spec.trackables)
    manager = tf.train.CheckpointManager(checkpoint, str(ckpt_dir), max_to_keep=keep_checkpoints)
    if manager.latest_checkpoint:
        if not resume:
            raise FileExistsError(
                f"{ckpt_dir}: holds checkpoints of an earlier run; pass --resume to continue "
                f"it or choose another --workdir")
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
    start = int(step_var.numpy())
    if start >= spec.total_steps:
        return {"step": start, "note": "already complete"}

    with strategy.scope():
        variables = spec.variables()
    use_scaling = isinstance(optimizer, getattr(__import__("keras").optimizers,
                                                 "LossScaleOptimizer", ()))

    # The stages' loss functions hold no Python control flow on tensors: AutoGraph has
    # nothing to convert, and its attempt on these closures only prints warnings.
    compute_losses = tf.autograph.experimental.do_not_convert(spec.compute_losses)

    def replica_step(batch):
        with tf.GradientTape() as tape:
            per_example, logs = compute_losses(batch)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=spec.global_batch)
            scaled = optimizer.scale_loss(loss) if use_scaling else loss
        grads = tape.gradient(scaled, variables)
        optimizer.apply_gradients(zip(grads, variables))
        out = {"loss": loss}
        for k, v in logs.items():
            v = tf.cast(v, tf.float32)
            out[k] = (tf.nn.compute_average_loss(v, global_batch_size=spec.global_batch)
                      if v.shape.rank else v / strategy.num_replicas_in_sync)
        return out

    replica_fn = tf.function(replica_step, jit_compile=True) if jit else replica_step

    @tf.function
    def train_step(batch):
        per_replica = strategy.run(replica_fn, args=(batch,))
        step_var.assign_add(1)
        return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
                for k, v in per_replica.items()}

    dataset = strategy.distribute_datasets_from_function(
        lambda input_context: spec.make_dataset(start, input_context))
    writer = tf.summary.create_file_writer(str(workdir / "tb")) if chief else \
        tf.summary.create_noop_writer()
    metrics_path = workdir / "metrics.json"
    last_eval = {}
    stop = {"signal": None}

    def _on_signal(signum, _frame):
        stop["signal"] = signum

    old = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)} \
        if _main_thread() else {}
    bar = progress_bar(total=spec.total_steps, desc=f"train {spec.name}", enabled=progress,
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
                path = manager.save(checkpoint_number=step)
                raise Interrupted(step, path)
            if step % log_every == 0 or step == spec.total_steps:
                vals = {k: float(v.numpy()) for k, v in logs.items()}
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
            if step % checkpoint_every == 0 or step == spec.total_steps:
                manager.save(checkpoint_number=step)
            if spec.evaluate is not None and (step % eval_every == 0 or step == spec.total_steps):
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
        path = manager.save(checkpoint_number=step)
        raise Interrupted(step, path) from None
    finally:
        bar.close()
        writer.flush()
        for s, h in old.items():
            signal.signal(s, h)
    return last_eval


def _main_thread():
    import threading
    return threading.current_thread() is threading.main_thread()
