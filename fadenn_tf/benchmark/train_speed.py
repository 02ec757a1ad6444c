"""Speed of a training step (eager, tf.function, XLA, bf16) on fixed random batches, and of
the tf.data input pipeline. The step is training's own (training.loop.make_train_step) on
the model, inputs and loss of the stage's task (fadenn_tf.training.tasks)."""
import statistics
import time

import keras
import numpy as np
import tensorflow as tf

from fadenn_tf.benchmark.machine import median_seconds
from fadenn_tf.benchmark.settings import TRAIN_MODES
from fadenn_tf.data.pipeline import benchmark_pipeline, load_train_data
from fadenn_tf.training.loop import make_train_step
from fadenn_tf.training.stages import make_optimizer
from fadenn_tf.training.stream import StreamOptions, make_train_dataset
from fadenn_tf.training.tasks import bench_models


def train_task(which):
    """(task, variant) of train model `which` (a name of tasks.bench_models(): fll, dae, mtc,
    joint-M); ValueError naming the choices otherwise."""
    models = bench_models()
    if which not in models:
        raise ValueError(f"unknown train model {which!r}; choose {', '.join(models)}")
    return models[which]


def train_model(cfg, which):
    """The model (taking 0..255 pixels, fresh weights) whose train step `which` times."""
    task, variant = train_task(which)
    return task.fresh_parts(cfg, variant).model


def random_batch(task, cfg, batch, seed=0):
    """(batch dict, crop side) of uniform random pixels, landmarks and noise labels at the
    input side of `task` (expert_images too for the experts' stream): every key its loss
    reads."""
    size = task.input_size(cfg)
    rng = np.random.default_rng(seed)

    def pixels(*shape):
        return tf.constant(rng.uniform(0, 255, (batch, *shape, size, size, 3)).astype(np.float32))
    data = {"image": pixels(), "clean": pixels(),
            "landmarks": tf.constant(rng.uniform(0, size - 1, (batch, 68, 2)).astype(np.float32)),
            "noise_type": tf.constant(rng.integers(0, 5, batch).astype(np.int32))}
    if task.expert_noise:
        data["expert_images"] = pixels(4)
    return data, size


def train_setup(cfg, which, batch, mode="function"):
    """(step, batch dict, crop side) for one train step of `which` in `mode` (eager |
    function | xla; bf16 is "function" under the mixed_bfloat16 policy, set by the caller):
    the task's fresh parts and loss, the config's optimizer, training's step."""
    if mode not in TRAIN_MODES:
        raise ValueError(f"unknown mode {mode!r}; choose {', '.join(TRAIN_MODES)}")
    task, variant = train_task(which)
    parts = task.fresh_parts(cfg, variant)
    optimizer = make_optimizer(cfg.train, "bf16" if mode == "bf16" else "none")
    optimizer.build(parts.variables())
    step = make_train_step(task.loss(cfg, parts), parts.variables(), optimizer, batch,
                           mode="function" if mode == "bf16" else mode)
    data, size = random_batch(task, cfg, batch)
    return step, data, size


def bench_train(cfg, which, mode, batch, steps=5, repeats=3, warmup=1):
    """Images/s of one train step of `which` (fll | dae | mtc | joint-M) in `mode`.

    Times `repeats` groups of `steps` steps (each synchronised on the loss) after the first
    call (tracing / XLA compilation, reported as first_call_s) and `warmup` steps; the
    figure is the median group. Returns a dict."""
    policy = keras.mixed_precision.global_policy().name
    if mode == "bf16":  # the model's layers take the policy when they are built
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        step, data, size = train_setup(cfg, which, batch, mode)
        t0 = time.perf_counter()
        loss = float(step(data)["loss"].numpy())
        first = time.perf_counter() - t0

        def group():
            for _ in range(steps):
                step(data)["loss"].numpy()
        sec = median_seconds(group, repeats, warmup) / steps
    finally:
        keras.mixed_precision.set_global_policy(policy)
    return {"images_per_s": batch / sec, "step_ms": sec * 1e3, "first_call_s": first,
            "loss_finite": bool(np.isfinite(loss)), "crop": size, "batch": batch}


def bench_pipeline(cfg, which, batch, data, steps=5, repeats=3):
    """Images/s of the training input pipeline (make_train_dataset) for the data of a train
    model: crop size, noise and occlusion as that stage's task uses them. `data`: (list of
    Samples, {size: TrainData} cache filled here)."""
    task, _ = train_task(which)
    size, work = task.input_size(cfg), task.work_size(cfg)
    samples, cache = data
    if work not in cache:
        cache[work] = load_train_data(samples, work)
    ds = make_train_dataset(cache[work], size, batch, StreamOptions.for_task(task, cfg))
    rates = [benchmark_pipeline(ds, steps=steps, warmup=2)[0] for _ in range(repeats)]
    return {"images_per_s": statistics.median(rates), "crop": size, "batch": batch}
