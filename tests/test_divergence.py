"""The training loop stops with a clear error when the loss stops being finite, and keeps
the last finite checkpoint."""
import pytest
import tensorflow as tf

from fadenn_tf.training.loop import (Diverged, LoopOptions, LoopSpec, checkpoints_on_disk,
                                     run_loop)


def _spec(nan_from_step, total=12):
    """A one-weight regression whose loss is NaN from batch index `nan_from_step` on."""
    w = tf.Variable(1.0)
    step = tf.Variable(0, dtype=tf.int64, trainable=False)

    def make_dataset(start, _ctx=None):
        # element i is the batch of step i + 1: 4 copies of i, flagged from nan_from_step on
        return tf.data.Dataset.range(start, 10_000).map(
            lambda i: {"x": tf.fill([4], tf.cast(i, tf.float32)),
                       "bad": tf.fill([4], i >= nan_from_step)})

    def compute_losses(batch):
        err = tf.square(w * batch["x"] - 1.0)
        err = tf.where(batch["bad"], tf.fill(tf.shape(err), float("nan")), err)
        return err, {}
    return LoopSpec("fll", compute_losses, lambda: [w], make_dataset,
                    {"w": w, "step": step}, total, 4), w


def test_nan_loss_stops_with_error_naming_stage_step_and_last_good_checkpoint(tmp_path):
    spec, _ = _spec(nan_from_step=7)
    opt = tf.keras.optimizers.SGD(1e-4)
    with pytest.raises(Diverged) as info:
        run_loop(spec, opt, tf.distribute.get_strategy(), tmp_path,
                 LoopOptions(log_every=5, checkpoint_every=3, eval_every=100))
    # step 7's batch is the first NaN one; checkpoint 9 would have held NaN weights
    assert info.value.step == 9
    msg = str(info.value)
    assert "stage fll" in msg and "step 9" in msg and "loss=nan" in msg
    assert checkpoints_on_disk(tmp_path / "checkpoints")[0] == 6
    assert "ckpt-6" in msg


def test_finite_loss_trains_to_the_end(tmp_path):
    spec, w = _spec(nan_from_step=10_000, total=6)
    run_loop(spec, tf.keras.optimizers.SGD(1e-4), tf.distribute.get_strategy(), tmp_path,
             LoopOptions(log_every=2, checkpoint_every=3, eval_every=100))
    assert checkpoints_on_disk(tmp_path / "checkpoints")[0] == 6
    assert float(w.numpy()) != 1.0
