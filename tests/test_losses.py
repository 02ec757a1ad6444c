"""Training losses against NumPy references written from their definitions."""
import numpy as np
import pytest
import tensorflow as tf

from fadenn_tf import losses


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_landmark_rmse_is_per_image_rms_of_coordinates(rng):
    target = rng.uniform(0, 64, (3, 68, 2)).astype(np.float32)
    pred = target + rng.normal(0, 2.0, target.shape).astype(np.float32)
    got = losses.landmark_rmse(pred, target).numpy()
    want = np.sqrt(np.mean((pred - target).reshape(3, -1) ** 2, axis=1))
    assert got.shape == (3,)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_landmark_rmse_units_and_layouts():
    target = np.zeros((2, 68, 2), np.float32)
    pred = target.copy()
    pred[0, :, 0] = 3.0                       # every x off by 3 px, y exact
    pred[1] = 4.0                             # every coordinate off by 4 px
    got = losses.landmark_rmse(pred, target).numpy()
    np.testing.assert_allclose(got, [np.sqrt(4.5), 4.0], rtol=1e-5)
    # The flat [B, 136] layout gives the same numbers (the loss only sees coordinates).
    flat = losses.landmark_rmse(pred.reshape(2, 136), target.reshape(2, 136)).numpy()
    np.testing.assert_allclose(flat, got, rtol=1e-6)


def test_landmark_rmse_gradient_finite_at_zero_error():
    x = tf.Variable(np.ones((1, 68, 2), np.float32))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(losses.landmark_rmse(x, tf.ones_like(x)))
    g = tape.gradient(loss, x).numpy()
    assert np.all(np.isfinite(g))


def test_per_example_losses_average_the_same_over_any_batch_split(rng):
    """Per-image losses averaged with the global batch size give the same number whether the
    batch is one replica's or split over two (what tf.distribute relies on)."""
    target = rng.uniform(0, 32, (8, 68, 2)).astype(np.float32)
    pred = target + rng.normal(0, 1.5, target.shape).astype(np.float32)
    whole = tf.nn.compute_average_loss(losses.landmark_rmse(pred, target), global_batch_size=8)
    halves = sum(tf.nn.compute_average_loss(losses.landmark_rmse(pred[i:i + 4], target[i:i + 4]),
                                            global_batch_size=8) for i in (0, 4))
    np.testing.assert_allclose(whole.numpy(), halves.numpy(), rtol=1e-6)


def test_reconstruction_l2_is_per_image_mse(rng):
    a = rng.uniform(0, 255, (2, 8, 8, 3)).astype(np.float32)    # pixels in, as models give
    b = rng.uniform(0, 255, (2, 8, 8, 3)).astype(np.float32)
    got = losses.reconstruction_l2(a, b).numpy()
    # measured in the networks' [-1, 1] units (the paper's L2): pixel error / 127.5
    np.testing.assert_allclose(got, ((a - b) ** 2).mean(axis=(1, 2, 3)) / 127.5 ** 2, rtol=1e-4)
    np.testing.assert_allclose(losses.reconstruction_l2(a, a).numpy(), [0.0, 0.0], atol=0)
    # float16 inputs (mixed precision) are computed in float32
    half = losses.reconstruction_l2(tf.constant(a, tf.float16), tf.constant(b, tf.float16))
    assert half.dtype == tf.float32


def test_noise_cross_entropy_matches_softmax_definition(rng):
    logits = rng.normal(0, 2, (4, 5)).astype(np.float32)
    labels = np.array([0, 1, 4, 2])
    got = losses.noise_cross_entropy(logits, labels).numpy()
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(got, -logp[np.arange(4), labels], rtol=1e-5)
    # A confident right answer costs ~0, a confident wrong one a lot.
    sure = np.full((1, 5), -20.0, np.float32)
    sure[0, 3] = 20.0
    assert losses.noise_cross_entropy(sure, [3]).numpy()[0] < 1e-6
    assert losses.noise_cross_entropy(sure, [0]).numpy()[0] > 30


def test_mtc_loss_is_ce_plus_lambda_l2(rng):
    logits = rng.normal(0, 1, (3, 5)).astype(np.float32)
    labels = np.array([1, 0, 3])
    image = rng.uniform(0, 255, (3, 8, 8, 3)).astype(np.float32)
    rec = rng.uniform(0, 255, (3, 8, 8, 3)).astype(np.float32)
    ce = losses.noise_cross_entropy(logits, labels).numpy()
    l2 = ((rec - image) ** 2).mean(axis=(1, 2, 3)) / 127.5 ** 2
    got = losses.mtc_loss(logits, rec, labels, image, 0.5).numpy()
    np.testing.assert_allclose(got, ce + 0.5 * l2, rtol=1e-4)
    assert not np.allclose(losses.mtc_loss(logits, rec, labels, image, 2.0).numpy(), got)


def test_landmark_l1_is_mean_absolute_coordinate_error(rng):
    target = rng.uniform(0, 128, (4, 68, 2)).astype(np.float32)
    pred = target + rng.normal(0, 3.0, target.shape).astype(np.float32)
    got = losses.landmark_l1(pred, target).numpy()
    np.testing.assert_allclose(got, np.abs(pred - target).reshape(4, -1).mean(axis=1), rtol=1e-5)


def test_wing_loss_pieces_meet_and_follow_their_definition():
    w, eps = 10.0, 2.0
    c = w - w * np.log(1 + w / eps)
    errors = np.array([0.0, 0.5, 3.0, 9.999, 10.0, 25.0], np.float32)
    want = np.where(errors < w, w * np.log1p(errors / eps), errors - c)
    for e, v in zip(errors, want):
        pred = np.full((1, 68, 2), e, np.float32)
        got = losses.landmark_wing(pred, np.zeros_like(pred), w, eps).numpy()[0]
        np.testing.assert_allclose(got, v, rtol=1e-5, atol=1e-5)
    # continuous at |x| = w, and steeper than L1 for small errors (slope w/eps at 0)
    np.testing.assert_allclose(w * np.log1p(w / eps), w - c, rtol=1e-6)
    small = np.full((1, 68, 2), 0.1, np.float32)
    assert losses.landmark_wing(small, 0 * small).numpy()[0] > 4 * 0.1


def test_landmark_loss_follows_the_config():
    from fadenn_tf.config import TrainConfig
    pred = np.full((1, 68, 2), 3.0, np.float32)
    zero = np.zeros_like(pred)
    for name, want in (("rmse", 3.0), ("l1", 3.0), ("wing", 10 * np.log1p(3.0 / 2.0))):
        fn = losses.landmark_loss(TrainConfig(landmark_loss=name))
        np.testing.assert_allclose(fn(pred, zero).numpy()[0], want, rtol=1e-4)
    wide = losses.landmark_loss(TrainConfig(landmark_loss="wing", wing_w=20.0, wing_epsilon=5.0))
    np.testing.assert_allclose(wide(pred, zero).numpy()[0], 20 * np.log1p(3.0 / 5.0), rtol=1e-4)


def test_mtc_task_loss_is_losses_mtc_loss(rng):
    """The mtc training task computes its loss with losses.mtc_loss (same numbers, same
    terms logged)."""
    from fadenn_tf.config import load_config
    from fadenn_tf.training.tasks import TASKS, Parts
    cfg = load_config("cpu", sets=["train.mtc_lambda=0.7"])
    out = {"logits": rng.normal(0, 1, (4, 5)).astype(np.float32),
           "reconstruction": rng.uniform(0, 255, (4, 8, 8, 3)).astype(np.float32)}
    batch = {"image": rng.uniform(0, 255, (4, 8, 8, 3)).astype(np.float32),
             "noise_type": np.array([0, 4, 2, 1])}
    fake = lambda image, training=False: out  # noqa: E731
    loss, logs = TASKS["mtc"].loss(cfg, Parts({}, [fake]))(batch)
    want = losses.mtc_loss(out["logits"], out["reconstruction"], batch["noise_type"],
                           batch["image"], 0.7).numpy()
    np.testing.assert_allclose(loss.numpy(), want, rtol=1e-6)
    ce = losses.noise_cross_entropy(out["logits"], batch["noise_type"]).numpy()
    np.testing.assert_allclose(logs["cross_entropy"].numpy(), ce, rtol=1e-6)
    np.testing.assert_allclose(want, ce + 0.7 * logs["l2_reconstruction"].numpy(), rtol=1e-5)
