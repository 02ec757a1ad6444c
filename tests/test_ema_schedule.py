"""EMA of the weights and the cosine schedule (train.ema_momentum, train.lr_schedule)."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from fadenn_tf.config import load_config
from fadenn_tf.errors import ConfigError
from fadenn_tf.training import ema
from fadenn_tf.training.loop import LoopOptions, LoopSpec, run_loop
from fadenn_tf.training.stages import make_optimizer


def _cfg(**train):
    cfg = load_config("cpu")
    for k, v in train.items():
        setattr(cfg.train, k, v)
    cfg.train.validate("test")
    return cfg


def _tiny(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    return model


def test_cosine_schedule_runs_from_rate_to_alpha_times_rate():
    opt = make_optimizer(_cfg(learning_rate=1e-3, lr_schedule="cosine", cosine_alpha=0.1).train,
                         total_steps=100)
    lr = opt._learning_rate   # the schedule (opt.learning_rate is its current value)
    assert float(lr(0)) == pytest.approx(1e-3)
    assert float(lr(50)) == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5), rel=1e-5)
    assert float(lr(100)) == pytest.approx(1e-4, rel=1e-5)


def test_cosine_schedule_needs_the_step_count():
    with pytest.raises(ConfigError, match="number of steps"):
        make_optimizer(_cfg(lr_schedule="cosine").train)


@pytest.mark.parametrize("key,value,match", [("lr_schedule", "linear", "lr_schedule"),
                                             ("ema_momentum", 1.0, "ema_momentum"),
                                             ("ema_momentum", -0.1, "ema_momentum"),
                                             ("cosine_alpha", 2.0, "cosine_alpha")])
def test_bad_schedule_and_ema_values_are_config_errors(key, value, match):
    cfg = load_config("cpu")
    setattr(cfg.train, key, value)
    with pytest.raises(ConfigError, match=match):
        cfg.train.validate("test")


def _steps(model, opt, grads_per_step):
    for g in grads_per_step:
        opt.apply_gradients(zip(g, model.trainable_variables))


def test_averaged_weights_hold_the_ema_inside_the_block_and_raw_values_after():
    model = _tiny()
    opt = make_optimizer(_cfg(learning_rate=0.1, ema_momentum=0.5).train)
    opt.build(model.trainable_variables)
    rng = np.random.default_rng(0)
    expected = None
    for _ in range(3):
        g = [tf.constant(rng.normal(size=v.shape), tf.float32) for v in model.trainable_variables]
        opt.apply_gradients(zip(g, model.trainable_variables))
        now = [v.numpy().copy() for v in model.trainable_variables]
        expected = now if expected is None else [0.5 * e + 0.5 * n for e, n in zip(expected, now)]
    raw = [v.numpy().copy() for v in model.trainable_variables]
    assert not np.allclose(raw[0], expected[0])
    with ema.averaged_weights(opt):
        for v, e in zip(model.trainable_variables, expected):
            np.testing.assert_allclose(v.numpy(), e, rtol=1e-5, atol=1e-6)
    for v, r in zip(model.trainable_variables, raw):
        np.testing.assert_array_equal(v.numpy(), r)
    ema.finalize(opt)
    for v, e in zip(model.trainable_variables, expected):
        np.testing.assert_allclose(v.numpy(), e, rtol=1e-5, atol=1e-6)


def test_without_ema_the_helpers_change_nothing():
    model = _tiny()
    opt = make_optimizer(_cfg(learning_rate=0.1).train)
    opt.build(model.trainable_variables)
    g = [tf.ones_like(v) for v in model.trainable_variables]
    opt.apply_gradients(zip(g, model.trainable_variables))
    raw = [v.numpy().copy() for v in model.trainable_variables]
    with ema.averaged_weights(opt):
        pass
    ema.finalize(opt)
    for v, r in zip(model.trainable_variables, raw):
        np.testing.assert_array_equal(v.numpy(), r)


def test_run_loop_validates_on_and_ends_with_the_averaged_weights(tmp_path):
    """The loop's validation sees the EMA, training continues from the raw weights, and the
    variables hold the EMA when the loop returns (what the stage then saves)."""
    model = _tiny()
    opt = make_optimizer(_cfg(learning_rate=0.05, ema_momentum=0.9).train)
    opt.build(model.trainable_variables)
    step = tf.Variable(0, dtype=tf.int64, trainable=False)
    x = tf.constant(np.random.default_rng(1).normal(size=(64, 3)), tf.float32)
    y = tf.constant(np.random.default_rng(2).normal(size=(64, 2)), tf.float32)

    def make_dataset(start, _ctx=None):
        return tf.data.Dataset.from_tensors({"x": x, "y": y}).repeat()

    def compute_losses(batch):
        return tf.reduce_mean((model(batch["x"]) - batch["y"]) ** 2, axis=-1), {}

    seen = {}

    def evaluate(k):
        seen[k] = [v.numpy().copy() for v in model.trainable_variables]
        return {"k": k}

    spec = LoopSpec("t", compute_losses, lambda: model.trainable_variables, make_dataset,
                    {"model": model, "step": step}, 20, 64, evaluate=evaluate)
    run_loop(spec, opt, tf.distribute.get_strategy(), tmp_path / "run",
             LoopOptions(eval_every=10, checkpoint_every=1000, log_every=5))
    averages = [a.numpy() for a in opt._model_variables_moving_average]
    for v, a in zip(model.trainable_variables, averages):
        np.testing.assert_allclose(v.numpy(), a, rtol=1e-6)
    for v, a in zip(seen[20], averages):
        np.testing.assert_allclose(v, a, rtol=1e-6)
    # at step 10 validation saw the average of the first 10 steps, not the raw weights
    assert not np.allclose(seen[10][0], seen[20][0])


def test_clip_norm_scales_large_gradients_to_the_norm_and_leaves_small_ones():
    """train.clip_norm 1: each update equals an unclipped Adam's on g * min(1, 1 / |g|)."""
    grads = [[3.0, 4.0], [0.3, 0.4], [30.0, -40.0], [0.06, 0.08]]   # norms 5, 0.5, 50, 0.1
    clipped_opt = make_optimizer(_cfg(learning_rate=1e-2, clip_norm=1.0).train)
    plain_opt = make_optimizer(_cfg(learning_rate=1e-2, clip_norm=0.0).train)
    a, b = tf.Variable([0.0, 0.0]), tf.Variable([0.0, 0.0])
    for g in grads:
        g = np.array(g, np.float32)
        clipped_opt.apply_gradients([(tf.constant(g), a)])
        plain_opt.apply_gradients([(tf.constant(g * min(1.0, 1.0 / np.linalg.norm(g))), b)])
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-7)
    # and clipping changed the path: an unclipped Adam on the raw gradients ends elsewhere
    raw_opt, c = make_optimizer(_cfg(learning_rate=1e-2).train), tf.Variable([0.0, 0.0])
    for g in grads:
        raw_opt.apply_gradients([(tf.constant(g), c)])
    assert np.abs(c.numpy() - a.numpy()).max() > 1e-4


def test_clip_norm_must_not_be_negative():
    with pytest.raises(ConfigError, match="train.clip_norm"):
        _cfg(clip_norm=-1.0)
