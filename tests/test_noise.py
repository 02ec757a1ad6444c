"""The noise models: exact where they are deterministic, statistical where they are random."""
import cv2
import numpy as np
import pytest
import tensorflow as tf

from fadenn_tf import noise as N
from fadenn_tf.config import NOISE_TYPES

SEED = tf.constant([7, 11], tf.int64)
CONDS = N.noise_conditions()
TYPES = np.array([t for t, _ in CONDS], np.int32)
LEVELS = np.array([lv for _, lv in CONDS], np.int32)


def rand_images(n, size=32, seed=0):
    return np.random.default_rng(seed).random((n, size, size, 3)).astype(np.float32)


def run(images, t, lv, seed=SEED):
    return N.apply_noise(images, t, lv, seed).numpy()


def test_conditions_and_names():
    assert N.NOISE_NAMES == NOISE_TYPES
    names = [N.condition_name(*c) for c in CONDS]
    assert len(CONDS) == 13 and len(set(names)) == 13
    assert names[0] == "clean" and "blur-3" in names and "downsample-1" in names
    assert all(N.parse_condition(n) == c for n, c in zip(names, CONDS))
    with pytest.raises(ValueError, match="valid"):
        N.parse_condition("blur-4")
    with pytest.raises(ValueError):
        N.condition_name(2, 0)


def test_deterministic_and_seed_dependent():
    x = rand_images(13)
    a, b = run(x, TYPES, LEVELS), run(x, TYPES, LEVELS)
    assert a.tobytes() == b.tobytes()
    c = run(x, TYPES, LEVELS, tf.constant([8, 11], tf.int64))
    for i, (t, _) in enumerate(CONDS):
        if t == 3:  # gaussian noise depends on the seed
            assert not np.array_equal(a[i], c[i])
        else:
            assert np.array_equal(a[i], c[i])


def test_mixed_batch_equals_single_samples():
    x = rand_images(13)
    perm = np.random.default_rng(3).permutation(13)
    x, t, lv = x[perm], TYPES[perm], LEVELS[perm]
    out = run(x, t, lv)
    seeds = N.sample_seeds(SEED, 13)
    for i in range(13):
        single = N.apply_noise(x[i], t[i], lv[i], seeds[i:i + 1]).numpy()
        assert single.shape == (32, 32, 3)
        np.testing.assert_array_equal(single, out[i])
    np.testing.assert_array_equal(N.sample_seeds(SEED, 5), seeds[:5])  # prefix-stable
    # With per-sample seeds [B, 2], a sample does not depend on its batch mates.
    out2 = run(x, t, lv, seeds)
    np.testing.assert_array_equal(out2, out)
    np.testing.assert_array_equal(run(x[:5], t[:5], lv[:5], seeds[:5]), out[:5])


def test_clean_is_identity_bit_exact():
    x = rand_images(3)
    x[0, 0, 0] = [0.0, 1.0, 0.123456789]
    np.testing.assert_array_equal(run(x, [0, 0, 0], [1, 3, 0]), x)  # level ignored


def test_output_range_all_conditions():
    x = rand_images(13, seed=5)
    out = run(x, TYPES, LEVELS)
    assert out.dtype == np.float32 and out.shape == x.shape
    assert out.min() >= 0.0 and out.max() <= 1.0
    for i in range(1, 13):  # every noisy condition changes a random image
        assert not np.array_equal(out[i], x[i]), N.condition_name(*CONDS[i])


def test_color_scaling_exact():
    x = rand_images(3)
    out = run(x, [4, 4, 4], [1, 2, 3])
    for i, s in enumerate((0.8, 0.5, 0.2)):
        np.testing.assert_array_equal(out[i], x[i] * np.float32(s))


def test_gaussian_noise_variance_and_clipping():
    grey = np.full((3, 64, 64, 3), 0.5, np.float32)
    out = run(grey, [3, 3, 3], [1, 2, 3])
    for i, var in enumerate((0.001, 0.005, 0.01)):
        assert abs(out[i].mean() - 0.5) < 0.01
        assert out[i].var() == pytest.approx(var, rel=0.1)
    # Near white / black: values pile up at the limits instead of wrapping around.
    edge = np.zeros((2, 64, 64, 3), np.float32)
    edge[0] = 0.99
    out = run(edge, [3, 3], [3, 3])
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert (out[0] == 1.0).mean() > 0.3 and (out[0] < 0.5).mean() == 0.0
    assert (out[1] == 0.0).mean() > 0.3 and (out[1] > 0.5).mean() == 0.0


def test_blur_constant_checkerboard_and_opencv():
    const = np.full((3, 32, 32, 3), 0.3, np.float32)
    np.testing.assert_allclose(run(const, [2, 2, 2], [1, 2, 3]), const, atol=1e-6)
    yy, xx = np.mgrid[:32, :32]
    board = np.repeat(((yy // 2 + xx // 2) % 2).astype(np.float32)[None, ..., None], 3, -1)
    out = run(np.repeat(board, 3, 0), [2, 2, 2], [1, 2, 3])
    variances = [board.var()] + [o.var() for o in out]
    assert all(a > b for a, b in zip(variances, variances[1:])), variances
    # Independent check: OpenCV with the same kernel size, sigma and border.
    img = rand_images(1, seed=9)[0]
    for lv, sigma in zip((1, 2, 3), (1.0, 3.0, 5.0)):
        k = len(N.gaussian_kernel_1d(sigma))
        ref = cv2.GaussianBlur(img, (k, k), sigma, borderType=cv2.BORDER_REFLECT_101)
        np.testing.assert_allclose(run(img[None], [2], [lv])[0], ref, atol=1e-5)


def test_downsample_removes_detail_below_block_size():
    size = 64
    base = rand_images(1, size, seed=2)[0]
    yy, xx = np.mgrid[:size, :size]
    for lv in (1, 2, 3):
        block = 2 ** lv
        # A pattern with zero mean on every block x block cell: invisible after down-sampling.
        pattern = np.where((yy % block < block // 2) ^ (xx % block < block // 2), 0.1, -0.1)
        img = np.clip(0.2 + 0.6 * base, 0, 1)
        detailed = img + pattern[..., None].astype(np.float32)
        a, b = run(np.stack([img, detailed]), [1, 1], [lv, lv])
        np.testing.assert_allclose(a, b, atol=1e-5)
        # ...but it is visible to the next finer level (except at level 1, the finest).
        if lv > 1:
            a, b = run(np.stack([img, detailed]), [1, 1], [lv - 1, lv - 1])
            assert np.abs(a - b).max() > 0.01
    # Level 3 of a 64 x 64 image depends only on its 8 x 8 block means.
    means = base.reshape(8, 8, 8, 8, 3).mean(axis=(1, 3))
    blocky = np.repeat(np.repeat(means, 8, 0), 8, 1)
    np.testing.assert_allclose(run(base[None], [1], [3]), run(blocky[None], [1], [3]), atol=1e-5)


def test_sample_noise_labels():
    t, lv = N.sample_noise_labels(5000, SEED)
    t2, lv2 = N.sample_noise_labels(5000, SEED)
    assert t.dtype == tf.int32 and lv.dtype == tf.int32
    assert np.array_equal(t, t2) and np.array_equal(lv, lv2)
    t, lv = t.numpy(), lv.numpy()
    assert set(t) == {0, 1, 2, 3, 4} and set(lv) == {1, 2, 3}
    np.testing.assert_allclose(np.bincount(t) / 5000, [0.2] * 5, atol=0.03)
    np.testing.assert_allclose(np.bincount(lv)[1:] / 5000, [1 / 3] * 3, atol=0.03)
    assert (N.sample_noise_labels(100, SEED, clean_prob=0.0)[0].numpy() > 0).all()
    assert (N.sample_noise_labels(100, SEED, clean_prob=1.0)[0].numpy() == 0).all()
    with pytest.raises(ValueError):
        N.sample_noise_labels(4, SEED, clean_prob=1.5)


def test_tf_data_and_tf_function_unknown_batch():
    x = rand_images(13)
    expected = run(x, TYPES, LEVELS)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32),
                                  tf.TensorSpec([None], tf.int32), tf.TensorSpec([None], tf.int32)])
    def f(images, t, lv):
        return N.apply_noise(images, t, lv, SEED)

    np.testing.assert_array_equal(f(x, TYPES, LEVELS).numpy(), expected)

    def degrade(batch):
        t, lv = N.sample_noise_labels(tf.shape(batch)[0], SEED)
        return N.apply_noise(batch, t, lv, SEED), t, lv

    ds = tf.data.Dataset.from_tensor_slices(x).batch(4).map(degrade)
    batches = list(ds)
    assert [b[0].shape[0] for b in batches] == [4, 4, 4, 1]
    for i, (imgs, t, lv) in enumerate(batches):
        ref = run(x[4 * i:4 * i + 4], t, lv)
        np.testing.assert_array_equal(imgs.numpy(), ref)


def test_invalid_labels_raise():
    x = rand_images(2)
    with pytest.raises(tf.errors.InvalidArgumentError, match="noise_type"):
        run(x, [5, 0], [1, 1])
    with pytest.raises(tf.errors.InvalidArgumentError, match="level"):
        run(x, [2, 0], [0, 1])
    with pytest.raises(tf.errors.InvalidArgumentError, match="larger than"):
        run(rand_images(1, 12), [2], [3])
    # Small images are fine for every condition that does not need a large blur kernel.
    assert run(rand_images(2, 12), [1, 3], [3, 3]).shape == (2, 12, 12, 3)


def test_uint8_wrappers():
    img = (rand_images(1, 40, seed=4)[0] * 255).astype(np.uint8)
    np.testing.assert_array_equal(N.degrade_image(img, 0, 0, seed=1), img)
    half = N.degrade_image(img, 4, 2, seed=1)
    assert half.dtype == np.uint8
    assert np.abs(half.astype(int) - img.astype(int) * 0.5).max() <= 0.5 + 1e-6
    a, b = N.degrade_image(img, 3, 3, seed=1), N.degrade_image(img, 3, 3, seed=2)
    assert np.array_equal(a, N.degrade_image(img, 3, 3, seed=1)) and not np.array_equal(a, b)
    batch = N.degrade_images(np.stack([img, img]), [3, 2], [3, 1], seed=1)
    np.testing.assert_array_equal(batch[0], a)  # sample 0 of a batch == the single image
    with pytest.raises(ValueError, match="uint8"):
        N.degrade_image(img.astype(np.float32), 1, 1, seed=0)


def test_unknown_spatial_shape_without_gaussian_noise_sample():
    """A traced apply_noise with unknown H, W must work on batches that hold no sample of
    the gaussian-noise type (its per-sample noise map used to fail on an empty part)."""
    import tensorflow as tf
    from fadenn_tf.noise import apply_noise
    fn = tf.function(lambda x, t, lv: apply_noise(x, t, lv, tf.constant([1, 2], tf.int64)),
                     input_signature=[tf.TensorSpec([None, None, None, 3]),
                                      tf.TensorSpec([None], tf.int32),
                                      tf.TensorSpec([None], tf.int32)])
    x = tf.random.stateless_uniform([2, 40, 50, 3], seed=[3, 4])
    without = fn(x, tf.constant([4, 2]), tf.constant([1, 2]))
    with_noise = fn(x, tf.constant([3, 0]), tf.constant([2, 1]))
    assert without.shape == (2, 40, 50, 3) and with_noise.shape == (2, 40, 50, 3)
    assert float(tf.reduce_max(tf.abs(with_noise[0] - x[0]))) > 0.0
    assert bool(tf.reduce_all(with_noise[1] == x[1]))


# ----------------------------------------------------------------------------- protocol


def _configs(fll_sizes):
    from fadenn_tf.config import load_config
    return [load_config("cpu", {"model": {"fll": {"input_size": s}, "iid": {"input_size": s}},
                                "noise": {"reference_size": 96}}) for s in fll_sizes]


def test_configs_with_other_input_sizes_get_the_same_noisy_reference_crops(faces, tmp_path):
    """Training-time validation and training batches of two configurations whose models take
    32 and 64 px get identical noisy 96-px reference crops; each model's input is that crop
    resized, not noise applied at its own size."""
    from fadenn_tf.evaluation import scoring as validation
    from fadenn_tf.evaluation.scoring import make_eval_dataset
    from fadenn_tf.training.stages import StageContext
    from fadenn_tf.training.stream import StreamOptions, make_train_dataset
    refs, trains, inputs = {}, {}, {}
    for cfg in _configs([32, 64]):
        s = cfg.model.fll.input_size
        ctx = StageContext(cfg, "M", tmp_path, None, train=faces, val=faces)
        val = ctx.val_data()
        assert val.size == 96                                      # loaded at the reference
        seen = []

        def predict(x, seen=seen):
            seen.append(np.asarray(x))
            return {"landmarks": tf.zeros([tf.shape(x)[0], 68, 2])}
        validation.evaluate_landmarks(predict, val, [(2, 2)],
                                      validation.ValidationSpec(size=s, batch_size=4))
        inputs[s] = np.concatenate(seen)
        refs[s] = np.concatenate([b["reference"].numpy() for b in make_eval_dataset(
            val, s, 4, (2, 2), keep_reference=True)])
        batch = next(iter(make_train_dataset(
            ctx.train_data(ctx.reference_size), s, 8,
            StreamOptions(seed=3, keep_reference=True, reference_size=ctx.reference_size))))
        trains[s] = (batch["reference"].numpy(), batch["image"].numpy())
    np.testing.assert_array_equal(refs[32], refs[64])
    np.testing.assert_array_equal(trains[32][0], trains[64][0])
    assert refs[32].shape == (6, 96, 96, 3)
    for s in (32, 64):
        assert inputs[s].shape == (6, s, s, 3) and trains[s][1].shape == (8, s, s, 3)
        want = N.to_model_size(refs[s], s).numpy() * 255.0   # models take 0..255 pixels
        np.testing.assert_allclose(inputs[s], want, atol=1e-3)
        np.testing.assert_allclose(trains[s][1], N.to_model_size(trains[s][0], s).numpy()
                                   * 255.0, atol=1e-3)
    # blurring at 32 px with the same sigma would be a much stronger blur
    clean32 = N.to_model_size(np.concatenate([b["reference"].numpy() for b in make_eval_dataset(
        ctx.val_data(), 32, 4, (0, 0), keep_reference=True)]), 32)
    at_model_size = N.apply_noise(clean32, [2] * 6, [2] * 6, SEED).numpy() * 255.0
    assert np.abs(at_model_size - inputs[32]).mean() > 0.02 * 127.5


def test_evaluate_and_peer_see_the_same_reference_pixels(faces):
    """evaluate feeds every model the same noisy reference crop: a size-free model (as the
    dlib peer) sees the same pixels whichever other models are evaluated beside it, and a
    sized model gets exactly that crop resized."""
    from fadenn_tf.config import EvalConfig
    from fadenn_tf.evaluation.engine import EvalSet, ModelEntry, evaluate

    def recorder(size):
        seen = []

        def predict(images, start):
            seen.append(np.asarray(images))
            return {"landmarks": np.zeros((len(images), 68, 2))}
        return ModelEntry(f"rec{size}", "-", "test", size, predict), seen

    eval_set = EvalSet(faces, "fixture", faces[0].image_path, "folder", "all")
    peers = []
    for size in (32, 64):
        peer, seen_peer = recorder(None)
        model, seen_model = recorder(size)
        evaluate([peer, model], eval_set, [(3, 3)], EvalConfig(batch_size=4, grid_images=0),
                 crop_size=96)
        peers.append(np.concatenate(seen_peer))
        got = np.concatenate(seen_model)
        np.testing.assert_allclose(got, N.to_model_size(peers[-1], size).numpy(), atol=1e-5)
    assert peers[0].shape == (6, 96, 96, 3)
    np.testing.assert_array_equal(peers[0], peers[1])


def test_reference_crop_and_points():
    """reference_crop is the 2x landmark box resampled to R; rescale_points maps crop points
    between sides exactly like resizing the crop."""
    img = np.zeros((300, 400, 3), np.uint8)
    box = (150.0, 100.0, 250.0, 200.0)                 # 100 x 100, the 2x region fits
    crop, t = N.reference_crop(img, box, 64)
    assert crop.shape == (64, 64, 3)
    np.testing.assert_allclose(t.region, [100, 50, 300, 250])
    np.testing.assert_allclose(t.apply([[149.5, 99.5]]), [[15.5, 15.5]])   # box corner
    np.testing.assert_allclose(N.rescale_points(np.array([15.5, 47.5]), 64, 32),
                               [7.5, 23.5])
    with pytest.raises(ValueError, match="outside"):
        N.reference_crop(img, (500, 500, 600, 600))


def test_noise_config_validated():
    from fadenn_tf.config import load_config
    from fadenn_tf.errors import ConfigError
    assert load_config("cpu").noise.reference_size == N.REFERENCE_SIZE == 224
    with pytest.raises(ConfigError, match="noise.reference_size"):
        load_config("cpu", {"noise": {"reference_size": 8}})
    with pytest.raises(ConfigError, match="noise.rez"):
        load_config("cpu", {"noise": {"rez": 8}})
