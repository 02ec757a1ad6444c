"""Speed of a training step (eager, tf.function, XLA, bf16) on fixed random batches, and of
the tf.data input pipeline."""
import statistics
import time

import numpy as np
from fadenn_tf.utils.lazy import lazy_import
tf = lazy_import("tensorflow")        # imported at first use: fast --help

from fadenn_tf.benchmark.machine import median_seconds
from fadenn_tf.benchmark.settings import TRAIN_MODELS, TRAIN_MODES


def _train_setup(cfg, which, batch, seed=0):
    """(model, variables, step_fn(batch_dict) -> per-example loss, batch dict, crop side) for
    a train model: the stage's task (fadenn_tf.training.tasks) builds it and gives its loss,
    the config's (train.landmark_loss included); "joint-M" is FADeNN-M built fresh."""
    from fadenn_tf.training.tasks import TASKS
    if which not in TRAIN_MODELS:
        raise ValueError(f"unknown train model {which!r}; choose {', '.join(TRAIN_MODELS)}")
    rng = np.random.default_rng(seed)
    task = TASKS["joint" if which == "joint-M" else which]
    size = task.input_size(cfg)

    def img():
        return tf.constant(rng.uniform(0, 255, (batch, size, size, 3)).astype(np.float32))
    data = {"image": img(), "clean": img(),
            "landmarks": tf.constant(rng.uniform(0, size - 1, (batch, 68, 2)).astype(np.float32)),
            "noise_type": tf.constant(rng.integers(0, 5, batch).astype(np.int32))}
    parts = task.build(cfg, variant="M") if which == "joint-M" else task.build(cfg)
    loss = task.loss(cfg, parts)
    return parts.model, parts.variables(), lambda b: loss(b)[0], data, size


def _make_step(variables, compute, optimizer, mode):
    """The train step of fadenn_tf.training.loop (one replica): per-example loss averaged
    over the batch, gradients, Adam update. mode: eager | function | xla."""
    def step(b):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(compute(b))
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables))
        return loss
    if mode == "eager":
        return step
    if mode == "function":
        return tf.function(step)
    if mode == "xla":
        return tf.function(step, jit_compile=True)
    raise ValueError(f"unknown mode {mode!r}; choose {', '.join(TRAIN_MODES)}")


def bench_train(cfg, which, mode, batch, steps=5, repeats=3, warmup=1):
    """Images/s of one train step of `which` (fll | dae | mtc | joint-M) in `mode`.

    Times `repeats` groups of `steps` steps (each synchronised on the loss) after the first
    call (tracing / XLA compilation, reported as first_call_s) and `warmup` steps; the
    figure is the median group. Returns a dict."""
    from fadenn_tf.training.stages import make_optimizer
    import keras
    policy = keras.mixed_precision.global_policy().name
    if mode == "bf16":  # the model's layers take the policy when they are built
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model, variables, compute, data, size = _train_setup(cfg, which, batch)
        opt = make_optimizer(cfg.train, "bf16" if mode == "bf16" else "none")
        opt.build(variables)
        step = _make_step(variables, compute, opt, "function" if mode == "bf16" else mode)
        t0 = time.perf_counter()
        loss = float(step(data).numpy())
        first = time.perf_counter() - t0

        def group():
            for _ in range(steps):
                step(data).numpy()
        sec = median_seconds(group, repeats, warmup) / steps
    finally:
        keras.mixed_precision.set_global_policy(policy)
    return {"images_per_s": batch / sec, "step_ms": sec * 1e3, "first_call_s": first,
            "loss_finite": bool(np.isfinite(loss)), "crop": size, "batch": batch}


def bench_pipeline(cfg, which, batch, data, steps=5, repeats=3):
    """Images/s of the training input pipeline (make_train_dataset) for the data of a train
    model: crop size, noise and occlusion as that stage uses them. `data`: a list of Samples
    or a {size: TrainData} cache (filled here)."""
    from fadenn_tf.data.pipeline import benchmark_pipeline, load_train_data
    from fadenn_tf.training.stream import make_train_dataset
    mc = cfg.model
    size = mc.fll.input_size if which == "fll" else mc.iid.input_size
    work = size if which == "fll" else cfg.noise.reference_size   # noisy streams: reference side
    samples, cache = data
    if work not in cache:
        cache[work] = load_train_data(samples, work)
    ds = make_train_dataset(cache[work], size, batch, augment=cfg.data.augment,
                            clean_prob=cfg.data.clean_prob, noise=which != "fll",
                            occlusion=which in ("fll", "joint-M"),
                            reference_size=cfg.noise.reference_size)
    rates = [benchmark_pipeline(ds, steps=steps, warmup=2)[0] for _ in range(repeats)]
    return {"images_per_s": statistics.median(rates), "crop": size, "batch": batch}
