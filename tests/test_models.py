"""Models: DAE, STC/MTC, expert bank routing, FLL, FADeNN-D/S/M, save/load."""
import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from fadenn_tf import models as M
from fadenn_tf.config import FLLConfig, IIDConfig, ModelConfig, load_config
from fadenn_tf.errors import DataError


@pytest.fixture(scope="module")
def cpu():
    return load_config("cpu").model


@pytest.fixture(scope="module")
def paper():
    return load_config("paper").model


@pytest.fixture(scope="module")
def paper_models(paper):
    """Build the paper DAE and FLL once per module (parameter counts only)."""
    return M.build_dae(paper.iid), M.build_fll(paper.fll)


@pytest.fixture(scope="module")
def small():
    """cpu IID (64) with a smaller FLL (32) so the resize and coordinate mapping are used."""
    cfg = load_config("cpu").model
    return ModelConfig(iid=cfg.iid, fll=dataclasses.replace(cfg.fll, input_size=32,
                                                            blocks=(1, 1, 1)))


def images(n, size, seed=0):
    """Images in the networks' internal range [-1, 1] (what the nested parts take)."""
    return np.random.default_rng(seed).uniform(-1, 1, (n, size, size, 3)).astype("float32")


def pixels(n, size, seed=0):
    """RGB pixels 0..255 (what end-to-end and saved models take)."""
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype("float32")


def dae_param_formula(cfg):
    """Parameter count of the DAE computed from the architecture description."""
    f = tuple(cfg.filters)
    bottom = cfg.input_size // 2 ** len(f)
    flat = bottom * bottom * f[-1]
    n = 3 * 3 * 3 * 3 + 3                                      # conv_in with bias
    n += sum(9 * a * b for a, b in zip((3,) + f[:-1], f))        # encoder convs, no bias
    n += flat * cfg.latent_dim + cfg.latent_dim                  # latent dense
    n += cfg.latent_dim * flat + flat                            # expand dense
    dec = M.decoder_filters(cfg)
    n += sum(9 * a * b + b for a, b in zip((f[-1],) + dec[:-1], dec))  # decoder convs
    n += 9 * 3 * 3 + 3                                           # final conv
    return n


# ---------------------------------------------------------------- DAE and classifiers
def test_paper_dae_parameter_count(paper, paper_models):
    dae, _ = paper_models
    count = dae.count_params()
    assert count == dae_param_formula(paper.iid)
    # The paper says "about 5.7 M": one rounded decimal, so the true count is in [5.65, 5.75) M.
    assert 5.65e6 <= count < 5.75e6


def test_dae_shapes_ranges_and_additive_skips(cpu):
    cfg = cpu.iid
    dae = M.build_dae(cfg)
    x = images(3, cfg.input_size)
    y = dae(x).numpy()
    assert y.shape == x.shape and np.all(np.abs(y) <= 1.0)
    enc = dae.get_layer("encoder")
    outs = enc(x)
    assert outs[0].shape == (3, cfg.latent_dim)
    sides = [o.shape[1] for o in outs[1:]]
    assert sides == [cfg.input_size // 2 ** i for i in range(len(cfg.filters))]
    adds = [l for l in dae.get_layer("decoder").layers if isinstance(l, keras.layers.Add)]
    assert len(adds) == len(cfg.filters)
    # The skips matter: zeroing the skip inputs changes the reconstruction.
    dec = dae.get_layer("decoder")
    y0 = dec([outs[0]] + [tf.zeros_like(o) for o in outs[1:]]).numpy()
    assert np.abs(y0 - y).max() > 1e-4


def test_decoder_filters_mirror_paper(paper):
    assert M.decoder_filters(paper.iid) == (72, 64, 48, 32, 3)


@pytest.mark.parametrize("shape,factor", [((2, 3, 5, 4), 2), ((1, 7, 7, 1), 2),
                                          ((1, 4, 2, 3), 3)])
def test_upsample_nearest_is_bit_identical_to_upsampling2d(shape, factor):
    x = np.random.default_rng(1).normal(size=shape).astype("float32")
    got = M.layers.UpsampleNearest(factor)(x).numpy()
    want = keras.layers.UpSampling2D(factor, interpolation="nearest")(x).numpy()
    assert got.shape == want.shape == (shape[0], factor * shape[1], factor * shape[2], shape[3])
    np.testing.assert_array_equal(got, want)
    clone = M.layers.UpsampleNearest.from_config(M.layers.UpsampleNearest(factor).get_config())
    assert clone.factor == factor
    # gradients flow (training): each input pixel receives factor**2 output gradients
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = tf.reduce_sum(M.layers.UpsampleNearest(factor)(xt))
    np.testing.assert_array_equal(tape.gradient(y, xt).numpy(), np.full(shape, factor ** 2))


def test_stride1_transposed_conv_equals_flipped_conv():
    """Why the decoder uses Conv2D: a 3x3 stride-1 'same' Conv2DTranspose with kernel K
    [3,3,Cout,Cin] is the Conv2D with K flipped spatially and its channel axes swapped."""
    x = np.random.default_rng(2).normal(size=(2, 6, 5, 4)).astype("float32")
    tconv = keras.layers.Conv2DTranspose(3, 3, padding="same")
    y_t = tconv(x).numpy()
    k, b = tconv.get_weights()                          # k: [3, 3, Cout=3, Cin=4]
    conv = keras.layers.Conv2D(3, 3, padding="same")
    conv.build(x.shape)
    conv.set_weights([np.transpose(k[::-1, ::-1], (0, 1, 3, 2)), b])
    np.testing.assert_allclose(conv(x).numpy(), y_t, atol=1e-5, rtol=0)
    conv.set_weights([np.transpose(k, (0, 1, 3, 2)), b])  # without the flip: different
    assert np.abs(conv(x).numpy() - y_t).max() > 1e-3


def test_decoder_is_tflite_friendly(cpu):
    """Decoder stages conv -> ReLU -> nearest x2 -> add (ReLU before the upsampling so the
    converter fuses it into the conv; identical outputs since ReLU is per-pixel), no
    Conv2DTranspose / UpSampling2D (they split XNNPACK, docs/performance.md)."""
    dec = M.build_decoder(cpu.iid)
    kinds = [type(l).__name__ for l in dec.layers]
    assert "Conv2DTranspose" not in kinds and "UpSampling2D" not in kinds
    assert kinds.count("UpsampleNearest") == len(cpu.iid.filters)
    assert dec.get_layer("relu1").output is dec.get_layer("up1").input


def test_stc_and_mtc_outputs_and_weight_copy(cpu):
    cfg = cpu.iid
    x = images(2, cfg.input_size)
    stc, mtc, dae = M.build_stc(cfg), M.build_mtc(cfg), M.build_dae(cfg)
    assert stc(x).shape == (2, 5)
    out = mtc(x)
    assert set(out) == {"logits", "reconstruction"}
    assert out["logits"].shape == (2, 5) and out["reconstruction"].shape == x.shape
    assert np.all(np.abs(out["reconstruction"].numpy()) <= 1.0)
    # The encoder is a shared, copyable part: copying DAE -> STC gives identical latents.
    stc.get_layer("encoder").set_weights(dae.get_layer("encoder").get_weights())
    np.testing.assert_array_equal(stc.get_layer("encoder")(x)[0].numpy(),
                                  dae.get_layer("encoder")(x)[0].numpy())
    # The head is linear: head(a + b) - head(b) == head(a) - head(0).
    head = stc.get_layer("head")
    a, b = np.random.default_rng(1).normal(size=(2, 2, cfg.latent_dim)).astype("float32")
    lhs = head(a + b) - head(b)
    rhs = head(a) - head(np.zeros_like(a))
    np.testing.assert_allclose(lhs.numpy(), rhs.numpy(), atol=1e-4)


# ---------------------------------------------------------------- expert bank
def test_class0_routing_is_bit_exact(cpu):
    bank = M.build_expert_bank(cpu.iid)
    x = images(4, cpu.iid.input_size, seed=3)
    x[0, 0, 0] = [-1.0, 1.0, -0.0]            # edge values survive untouched too
    y = bank([x, np.zeros(4, "int32")]).numpy()
    assert np.array_equal(y.view(np.uint32), x.view(np.uint32))


def test_mixed_batch_uses_each_samples_expert(cpu):
    bank = M.build_expert_bank(cpu.iid)
    cls = np.array([0, 1, 2, 3, 4, 2, 0, 4], "int32")
    x = images(len(cls), cpu.iid.input_size, seed=4)
    y = bank([x, cls]).numpy()
    experts = [bank.get_layer(f"expert_{k}") for k in range(1, 5)]
    full = [x] + [e(x).numpy() for e in experts]
    for i, c in enumerate(cls):
        assert np.array_equal(y[i], full[c][i])
        alone = x[i:i + 1] if c == 0 else experts[c - 1](x[i:i + 1]).numpy()
        np.testing.assert_allclose(y[i:i + 1], alone, atol=1e-5)
    # The experts differ, so a wrong choice would be caught.
    assert np.abs(full[1] - full[2]).max() > 1e-3


def test_expert_bank_rejects_wrong_count(cpu):
    with pytest.raises(ValueError, match="4 experts"):
        M.build_expert_bank(cpu.iid, experts=[M.build_dae(cpu.iid)])


# ---------------------------------------------------------------- FLL
def test_paper_fll_parameter_count(paper_models):
    _, fll = paper_models
    backbone = fll.get_layer("backbone")
    assert backbone.output.shape[1:] == (2, 2, 1792)
    # FaceNet's Inception-ResNet-v1 backbone: about 22.8 M parameters (BN statistics included).
    assert 22.0e6 < backbone.count_params() < 23.5e6
    assert fll.count_params() - backbone.count_params() == 1792 * 136 + 136


@pytest.mark.parametrize("size", [32, 64, 128])
def test_fll_spatial_sizes_match_model(size):
    cfg = FLLConfig(input_size=size, width=0.25, blocks=(1, 1, 1))
    fll = M.build_fll(cfg)
    sides = M.fll_spatial_sizes(size)
    assert fll.get_layer("backbone").output.shape[1] == sides[-1] >= 1
    if size == 128:
        assert sides == [63, 61, 61, 30, 30, 28, 13, 6, 2]
    out = fll(images(2, size)).numpy()
    assert out.shape == (2, 136) and np.all(np.isfinite(out))


def test_fll_head_starts_at_mean_shape(cpu):
    rng = np.random.default_rng(5)
    mean = rng.uniform(10, 50, (68, 2)).astype("float32")
    fll = M.build_fll(cpu.fll, mean_shape=mean)
    head = fll.get_layer("landmarks")
    head.kernel.assign(np.zeros(head.kernel.shape, "float32"))
    pred = M.to_points(fll(images(2, cpu.fll.input_size)).numpy())
    np.testing.assert_allclose(pred, np.broadcast_to(mean, (2, 68, 2)), atol=1e-5)
    default = M.build_fll(cpu.fll).get_layer("landmarks").bias.numpy()
    np.testing.assert_allclose(default, (cpu.fll.input_size - 1) / 2)
    with pytest.raises(ValueError, match="mean_shape"):
        M.build_fll(cpu.fll, mean_shape=np.zeros((5, 2)))


def test_to_points_to_flat_layout():
    flat = np.arange(2 * 136, dtype="float32").reshape(2, 136)
    pts = M.to_points(flat)
    assert pts.shape == (2, 68, 2)
    assert pts[1, 3, 0] == flat[1, 3] and pts[1, 3, 1] == flat[1, 68 + 3]
    np.testing.assert_array_equal(M.to_flat(pts), flat)
    np.testing.assert_array_equal(M.to_points(tf.constant(flat)).numpy(), pts)
    np.testing.assert_array_equal(M.to_flat(tf.constant(pts)).numpy(), flat)


# ---------------------------------------------------------------- FADeNN end to end
@pytest.mark.parametrize("variant", ["fll", "D", "S", "M"])
def test_variant_outputs(small, variant):
    model = M.build_variant(small, variant)
    s = small.iid.input_size
    x = pixels(3, s, seed=6)
    u = x / 127.5 - 1.0                       # what the parts see (independent reference)
    out = model(x)
    assert set(out) == {"landmarks", "noise_probs", "denoised"}
    # A call without `training` is inference (no layer leaks training=True to BN/dropout).
    ref = model(x, training=False)
    for k in out:
        assert np.array_equal(out[k].numpy(), ref[k].numpy()), k
    lm, probs, den = (out[k].numpy() for k in ("landmarks", "noise_probs", "denoised"))
    assert lm.shape == (3, 68, 2) and np.all(np.isfinite(lm))
    assert probs.shape == (3, 5) and den.shape == x.shape
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    assert np.all((den >= 0.0) & (den <= 255.0))            # denoised comes back in pixels
    den_u = den / 127.5 - 1.0
    if variant in ("fll", "D"):
        np.testing.assert_array_equal(probs, np.full((3, 5), 0.2, "float32"))
    if variant == "fll":   # the input itself, through [-1, 1] and back
        np.testing.assert_allclose(den, x, atol=1e-4)
    core = M.core_of(model)
    if variant == "D":
        np.testing.assert_allclose(den_u, core.get_layer("dae")(u).numpy(), atol=1e-5)
    if variant in ("S", "M"):
        logits = core.get_layer("classifier")(u)
        np.testing.assert_allclose(probs, tf.nn.softmax(logits).numpy(), atol=1e-5)
        cls = tf.argmax(logits, -1, output_type=tf.int32)
        routed = core.get_layer("experts")([tf.constant(u), cls])
        np.testing.assert_allclose(den_u, routed.numpy(), atol=1e-5)
    # Landmarks are the FLL's crop coordinates mapped to the input crop (half-pixel centres).
    f = small.fll.input_size
    flat = core.get_layer("fll")(tf.image.resize(den_u, (f, f), method="bilinear")).numpy()
    expect = (M.to_points(flat) + 0.5) * s / f - 0.5
    np.testing.assert_allclose(lm, expect, atol=1e-3)


def test_fadenn_reuses_given_parts_and_trainable_per_part(cpu):
    dae, fll = M.build_dae(cpu.iid), M.build_fll(cpu.fll)
    model = M.build_fadenn(cpu, "d", fll=fll, dae=dae)
    core = M.core_of(model)
    assert core.get_layer("dae") is dae and core.get_layer("fll") is fll
    n_all = len(model.trainable_weights)
    core.get_layer("fll").trainable = False
    assert len(model.trainable_weights) == len(dae.trainable_weights) < n_all
    with pytest.raises(ValueError, match="needs a classifier"):
        M.build_fadenn(cpu, "S", fll=fll)
    with pytest.raises(ValueError, match="unknown variant"):
        M.build_fadenn(cpu, "X", fll=fll)
    with pytest.raises(ValueError, match="fll"):
        M.build_fadenn(cpu, "D", fll=M.build_fll(dataclasses.replace(cpu.fll, input_size=32)),
                       dae=dae)


def test_unknown_batch_traces_once(cpu):
    model = M.build_variant(cpu, "S")
    s = cpu.iid.input_size
    fn = tf.function(lambda x: model(x, training=False),
                     input_signature=[tf.TensorSpec([None, s, s, 3], tf.float32)])
    for n in (1, 3, 5):
        assert fn(pixels(n, s))["landmarks"].shape == (n, 68, 2)
    assert fn.experimental_get_tracing_count() == 1


# ---------------------------------------------------------------- save / load
def test_keras_round_trip_identical_outputs(small, tmp_path):
    model = M.build_variant(small, "M")
    x = pixels(4, small.iid.input_size, seed=7)
    path = M.save_model(model, tmp_path / "sub" / "fadenn_m.keras")
    assert path.is_file() and sorted(p.name for p in path.parent.iterdir()) == \
        ["fadenn_m.json", "fadenn_m.keras"]
    loaded = keras.models.load_model(path)   # no custom_objects needed
    a, b = model(x), loaded(x)
    for k in a:
        assert np.array_equal(a[k].numpy(), b[k].numpy()), k
    again = M.load_model(path)
    assert np.array_equal(again(x)["landmarks"].numpy(), a["landmarks"].numpy())


def test_load_model_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        M.load_model(tmp_path / "missing.keras")
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="bad.keras"):
        M.load_model(bad)
    with pytest.raises(ValueError, match=".keras"):
        M.save_model(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]),
                     tmp_path / "m.h5")


def test_checkpoint_round_trip(cpu, tmp_path):
    model = M.build_variant(cpu, "S")
    x = pixels(2, cpu.iid.input_size, seed=8)
    path = M.save_checkpoint(model, tmp_path / "ckpt" / "model")
    fresh = M.build_variant(cpu, "S")
    assert not np.array_equal(fresh(x)["landmarks"].numpy(), model(x)["landmarks"].numpy())
    M.restore_checkpoint(fresh, path)
    a, b = model(x), fresh(x)
    for k in a:
        assert np.array_equal(a[k].numpy(), b[k].numpy()), k
    with pytest.raises(DataError, match="not found"):
        M.restore_checkpoint(fresh, tmp_path / "nothing")
    with pytest.raises(DataError, match="does not match"):
        M.restore_checkpoint(M.build_variant(cpu, "D"), path)


def test_s_variant_converts_to_builtin_tflite():
    """Routing, argmax, resize and coordinate mapping are all TFLite builtin ops."""
    from ai_edge_litert.interpreter import Interpreter
    tiny = ModelConfig(iid=IIDConfig(input_size=48, filters=(4, 4, 4), latent_dim=8,
                                     head_hidden=8),
                       fll=FLLConfig(input_size=32, width=0.1, blocks=(0, 1, 0)))
    model = M.build_variant(tiny, "S")
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    interp = Interpreter(model_content=conv.convert())
    runner = interp.get_signature_runner("serving_default")
    x = pixels(3, 48, seed=9)
    got, ref = runner(image=x), model(x)
    for k in ref:   # 1e-3 of the [-1, 1] range, i.e. 0.1275 grey levels for "denoised"
        tol = 0.1275 if k == "denoised" else 1e-3
        np.testing.assert_allclose(got[k], ref[k].numpy(), atol=tol)


def test_residual_dae_starts_as_identity_and_learns_a_correction(cpu):
    """iid.residual: a fresh DAE / MTC reconstruction returns its input exactly (zero-init
    correction), outputs stay in [-1, 1], the wider full-resolution skip is used, and one
    gradient step moves the output away from the input; the paper's DAE is not residual."""
    cfg = dataclasses.replace(cpu.iid, residual=True, full_res_channels=8)
    cfg.validate("test")
    x = images(2, cfg.input_size, seed=3)
    dae = M.build_dae(cfg)
    np.testing.assert_allclose(dae(x).numpy(), x, atol=1e-6)
    np.testing.assert_allclose(M.build_mtc(cfg)(x)["reconstruction"].numpy(), x, atol=1e-6)
    assert dae.get_layer("encoder").get_layer("conv_in").filters == 8
    assert M.decoder_filters(cfg)[-1] == 8
    target = np.clip(x * 0.5, -1, 1)
    opt = keras.optimizers.Adam(1e-2)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(dae(x, training=True) - target))
    grads = tape.gradient(loss, dae.trainable_variables)
    opt.apply_gradients(zip(grads, dae.trainable_variables))
    y = dae(x).numpy()
    assert np.abs(y - x).max() > 1e-3 and np.all(np.abs(y) <= 1.0)
    assert not load_config("paper").model.iid.residual
    with pytest.raises(Exception, match="full_res_channels"):
        dataclasses.replace(cpu.iid, full_res_channels=0).validate("test")


def _unshuffle_reference(x, b):
    """Pixel unshuffle by loops: out[n, i, j, (di * b + dj) * C + c] = x[n, i*b+di, j*b+dj, c]
    (TensorFlow's space_to_depth channel order)."""
    n, h, w, c = x.shape
    out = np.zeros((n, h // b, w // b, b * b * c), x.dtype)
    for di in range(b):
        for dj in range(b):
            k = (di * b + dj) * c
            out[..., k:k + c] = x[:, di::b, dj::b, :]
    return out


@pytest.mark.parametrize("b", [2, 3])
def test_space_to_depth_layers_match_the_pixel_rule_and_invert(b):
    x = np.random.default_rng(4).normal(size=(2, 6 * b, 4 * b, 3)).astype("float32")
    s2d, d2s = M.layers.SpaceToDepth(b), M.layers.DepthToSpace(b)
    y = s2d(x).numpy()
    np.testing.assert_array_equal(y, _unshuffle_reference(x, b))
    np.testing.assert_array_equal(d2s(y).numpy(), x)
    assert s2d.compute_output_shape((None, 6 * b, 4 * b, 3)) == (None, 6, 4, 3 * b * b)
    assert d2s.compute_output_shape((None, 6, 4, 3 * b * b)) == (None, 6 * b, 4 * b, 3)
    for layer in (s2d, d2s):
        assert type(layer).from_config(layer.get_config()).block == b


def test_space_to_depth_dae_runs_at_reduced_side_and_converts_to_tflite(cpu, tmp_path):
    """iid.space_to_depth = 2: every encoder map (the first skip included) has side S / 2 and
    12 input channels feed conv_in; with refine_convs a conv + ReLU of full_res_channels sits
    between the last skip add and the final conv; a fresh residual DAE is the identity; the
    skips matter;
    the DAE saves and reloads bit-exactly and converts to builtin-only TFLite that matches
    Keras. A side that the block and the pooling stages do not divide is refused, naming
    the key."""
    from ai_edge_litert.interpreter import Interpreter
    cfg = dataclasses.replace(cpu.iid, residual=True, space_to_depth=2,
                              filters=tuple(cpu.iid.filters)[1:], refine_convs=1)
    cfg.validate("test")
    s = cfg.input_size
    x = images(2, s, seed=5)
    dae = M.build_dae(cfg)
    np.testing.assert_allclose(dae(x).numpy(), x, atol=1e-6)
    enc = dae.get_layer("encoder")
    assert enc.get_layer("conv_in").input.shape[-1] == 12
    outs = enc(x)
    assert [o.shape[1] for o in outs[1:]] == [s // 2 // 2 ** i for i in range(len(cfg.filters))]
    dec = dae.get_layer("decoder")
    assert dec.get_layer("refine1").input is dec.get_layer(f"skip_add{len(cfg.filters)}").output
    assert dec.get_layer("deconv_out").input is dec.get_layer("refine_relu1").output
    assert dec.get_layer("refine1").filters == cfg.full_res_channels
    rng = np.random.default_rng(6)
    for w in dec.get_layer("deconv_out").weights:   # a non-zero correction
        w.assign(rng.normal(0, 0.05, w.shape).astype("float32"))
    y = dae(x).numpy()
    assert y.shape == x.shape and np.abs(y - x).max() > 1e-3 and np.all(np.abs(y) <= 1.0)
    y0 = dec([outs[0]] + [tf.zeros_like(o) for o in outs[1:]]).numpy()
    assert np.abs(y0 - dec(outs).numpy()).max() > 1e-4
    path = M.save_model(dae, tmp_path / "dae.keras")
    np.testing.assert_array_equal(M.core_of(keras.models.load_model(path))(x).numpy(), y)
    conv = tf.lite.TFLiteConverter.from_keras_model(dae)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    interp = Interpreter(model_content=conv.convert())
    ops = {d["op_name"] for d in interp._get_ops_details()}
    assert {"SPACE_TO_DEPTH", "DEPTH_TO_SPACE"} <= ops
    got = interp.get_signature_runner("serving_default")(image=x)
    np.testing.assert_allclose(next(iter(got.values())), y, atol=1e-4)
    with pytest.raises(Exception, match="iid.input_size"):
        dataclasses.replace(cfg, filters=tuple(cpu.iid.filters) + (32,)).validate("test")
    with pytest.raises(Exception, match="space_to_depth"):
        dataclasses.replace(cfg, space_to_depth=0).validate("test")
    with pytest.raises(Exception, match="refine_convs"):
        dataclasses.replace(cfg, refine_convs=-1).validate("test")
