"""Export: SavedModel signatures (fresh-process reload, saved_model_cli, REST body, bytes
signature vs the NumPy crop path) and TFLite variants run with LiteRT.

Models are the cpu config with random weights. Random heads give almost constant landmarks,
so `_nontrivial` redraws the FLL's regression head (landmarks then move by several pixels
between images) and the noise classifier's logits layer (different images pick different
experts), which makes the parity checks able to fail.
"""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf
import yaml

from fadenn_tf.cli import export as export_cli
from fadenn_tf.deploy import parity, rest, saved_model, signatures, tflite
from fadenn_tf.config import load_config
from fadenn_tf.data.crop import CropTransform, crop_image, landmark_box
from fadenn_tf.data.synthetic import render_face
from fadenn_tf.models import build_fll, build_variant, save_model
from tests.fixtures import walk_layers as _walk
from fadenn_tf.deploy.litert import (check_builtin_only, load_tflite, op_names, run_tflite,
                                     signature_io)

CFG = load_config("cpu")
S = CFG.model.iid.input_size


def _nontrivial(model, seed=0, target_std=4.0):
    """Redraw the FLL head (landmark spread ~target_std px over images) and the classifier
    logits layer (spread-out classes). Returns the model."""
    rng = np.random.default_rng(seed)
    x = _face_crops(8, seed=seed + 100)
    for layer in _walk(model):
        if layer.__class__.__name__ != "Dense":
            continue
        k = layer.kernel
        if layer.name == "logits":  # random kernel, bias centring each class over images
            k.assign(rng.normal(0, 3.0 / np.sqrt(k.shape[0]), k.shape).astype(np.float32))
            logp = np.log(model(x, training=False)["noise_probs"].numpy())
            layer.bias.assign(layer.bias.numpy() - logp.mean(axis=0))
        elif layer.name == "landmarks":
            k.assign(rng.normal(0, 1.0, k.shape).astype(np.float32))
            spread = float(np.std(model(x, training=False)["landmarks"]
                                  if isinstance(model.output, dict) else model(x),
                                  axis=0).mean())
            k.assign(k.numpy() * (target_std / max(spread, 1e-6)))
    return model


def _faces(n, seed=0, size=(90, 110)):
    """n synthetic (image uint8 RGB, landmarks) pairs."""
    return [render_face(np.random.default_rng(seed + i), image_size=size)[:2] for i in range(n)]


def _face_crops(n, seed=0, size=S):
    """n face crops [n,S,S,3] float32 0..255 (crop_image of the landmark box, 2x)."""
    out = []
    for img, lm in _faces(n, seed):
        t = CropTransform.from_box(landmark_box(lm), img.shape[:2], size)
        out.append(crop_image(img, t))
    return np.stack(out).astype(np.float32)


def _keras_out(model, x):
    out = model(tf.constant(x, tf.float32), training=False)   # the model takes 0..255 itself
    return {k: out[k].numpy() for k in ("landmarks", "noise_probs", "denoised")}


@pytest.fixture(scope="module")
def crops():
    return _face_crops(6, seed=7)


@pytest.fixture(scope="module")
def exported_m(tmp_path_factory):
    """FADeNN-M exported to <tmp>/fadenn_m/1 plus a float32 TFLite."""
    keras.utils.set_random_seed(1)
    model = _nontrivial(build_variant(CFG.model, "M"), seed=1)
    root = tmp_path_factory.mktemp("exp") / "fadenn_m"
    vdir = saved_model.export_saved_model(model, root)
    paths = tflite.write_tflite_variants(vdir, root / "tflite-1", ["float32"])
    return model, root, vdir, paths


@pytest.fixture(scope="module")
def loaded_m(exported_m):
    """The FADeNN-M SavedModel loaded once (tf.saved_model.load)."""
    return tf.saved_model.load(str(exported_m[2]))


@pytest.fixture(scope="module")
def exported_fll(tmp_path_factory):
    """A stand-alone FLL saved in a training workdir (fll/model.keras + config.yaml), loaded
    through the workdir, exported with a full-int8 TFLite."""
    work = tmp_path_factory.mktemp("work")
    keras.utils.set_random_seed(2)
    fll = build_fll(CFG.model.fll)
    (work / "fll").mkdir()
    save_model(fll, work / "fll" / "model.keras")
    (work / "fll" / "config.yaml").write_text(yaml.safe_dump(CFG.to_dict(), sort_keys=False))
    model, src = saved_model.load_export_model(work)
    assert src == work / "fll" / "model.keras"
    _nontrivial(model, seed=2)
    root = work / "exported" / "fll"
    vdir = saved_model.export_saved_model(model, root, version=3)
    rep = _face_crops(16, seed=50)
    paths = tflite.write_tflite_variants(vdir, root / "tflite-3", ["int8"], rep)
    return model, root, vdir, paths


def test_nontrivial_models_vary(exported_m, crops):
    model = exported_m[0]
    out = _keras_out(model, crops)
    assert np.std(out["landmarks"], axis=0).mean() > 1.0  # parity below is meaningful
    assert len(set(np.argmax(out["noise_probs"], axis=1))) >= 2  # several experts used


def test_export_carries_metadata_and_loads_as_one_object(exported_m, crops):
    """<version>/model.json describes the export; load_any feeds it pixels directly (no
    round trip through [-1, 1]) and gets the Keras model's outputs."""
    from fadenn_tf.inference import load_any
    model, _, vdir, _ = exported_m
    meta = json.loads((vdir / "model.json").read_text())
    assert meta["format_version"] == 1 and meta["kind"] == "fadenn" and meta["variant"] == "M"
    assert meta["input_range"] == [0.0, 255.0] and meta["input_size"] == S
    loaded = load_any(vdir)
    assert loaded.metadata == meta and loaded.has_classifier and loaded.has_denoiser
    got, want = loaded.predict_crops(crops), _keras_out(model, crops)
    np.testing.assert_allclose(got["landmarks"], want["landmarks"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(got["denoised"], want["denoised"], atol=127.5e-4, rtol=0)


def _run_fresh(vdir, x, tmp_path, signature="serving_default"):
    np.save(tmp_path / "x.npy", x)
    code = textwrap.dedent(f"""
        import numpy as np, tensorflow as tf
        sig = tf.saved_model.load({str(vdir)!r}).signatures[{signature!r}]
        out = sig(images=tf.constant(np.load({str(tmp_path / 'x.npy')!r})))
        np.savez({str(tmp_path / 'out.npz')!r}, **{{k: v.numpy() for k, v in out.items()}})
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return dict(np.load(tmp_path / "out.npz"))


@pytest.mark.parametrize("which", ["exported_m", "exported_fll"])
def test_fresh_process_reload_matches_keras(which, crops, tmp_path, request):
    model, _, vdir, _ = request.getfixturevalue(which)
    got = _run_fresh(vdir, crops, tmp_path)
    want = _keras_out(model, crops)
    assert set(got) == {"landmarks", "noise_probs", "denoised"}
    assert got["landmarks"].shape == (len(crops), 68, 2)
    np.testing.assert_allclose(got["landmarks"], want["landmarks"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(got["noise_probs"], want["noise_probs"], atol=1e-4, rtol=0)
    # denoised is 0..255: 1e-4 of the [-1, 1] output is 1.3e-2 here
    np.testing.assert_allclose(got["denoised"], want["denoised"], atol=127.5e-4, rtol=0)


def test_saved_model_cli_lists_both_signatures(exported_m):
    cli = Path(sys.executable).parent / "saved_model_cli"
    res = subprocess.run([str(cli), "show", "--dir", str(exported_m[2]), "--all"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    text = res.stdout
    for name in ("serving_default", signatures.BYTES_SIGNATURE, "images", "image_bytes", "boxes",
                 "landmarks", "noise_probs", "denoised"):
        assert f"'{name}'" in text, name
    assert "(-1, 68, 2)" in text and f"(-1, {S}, {S}, 3)" in text


def test_versions_are_never_overwritten(exported_m):
    model, root, vdir, _ = exported_m
    assert vdir == root / "1" and (vdir / "saved_model.pb").is_file()
    assert saved_model.next_version(root) == 2
    with pytest.raises(FileExistsError, match="already exists"):
        saved_model.export_saved_model(model, root, version=1)
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no temp folders left


def test_each_weight_is_saved_once(exported_m):
    """The SavedModel's checkpoint holds every weight of the model once: as many values and
    floats as the model has weights and parameters (not a second copy per weight)."""
    model, _, vdir, _ = exported_m
    values = [(name, shape) for name, shape in
              tf.train.list_variables(str(vdir / "variables" / "variables"))
              if name.endswith("/.ATTRIBUTES/VARIABLE_VALUE")]
    assert len(values) == len(model.weights)
    assert sum(int(np.prod(shape)) for _, shape in values) == model.count_params()


def test_rest_body_runs_through_signature(exported_m, loaded_m, crops):
    model = exported_m[0]
    body = json.loads(json.dumps(rest.rest_request_body(crops[:2])))  # as sent over HTTP
    assert body["signature_name"] == "serving_default"
    name, inputs = rest.rest_body_to_inputs(body)
    sig = loaded_m.signatures[name]
    got = sig(**{k: tf.constant(v) for k, v in inputs.items()})
    np.testing.assert_allclose(got["landmarks"].numpy(), _keras_out(model, crops[:2])["landmarks"],
                               atol=1e-4, rtol=0)


def _numpy_reference(model, img, box):
    """NumPy crop (fadenn_tf.data.crop) + Keras model + inverse transform -> image landmarks."""
    t = CropTransform.from_box(box, img.shape[:2], S)
    crop = crop_image(img, t).astype(np.float32)
    return t.invert(_keras_out(model, crop[None])["landmarks"][0]), t


@pytest.mark.parametrize("fmt,size", [(".png", (100, 120)), (".jpg", (100, 120)),
                                      (".png", (300, 260))])
def test_bytes_signature_matches_numpy_crop(exported_m, loaded_m, fmt, size):
    """Same landmarks (original-image pixels) from encoded bytes + box as from the NumPy path.

    Tolerance 0.15 crop px (x the crop-to-image scale): both paths decode to the same pixels
    (JPEG with the accurate IDCT in both) and sample the same positions with the same filters
    (bilinear; for the 300 px image, whose region is >2x the crop, area pre-shrink of the
    same window first); they differ by cv2's 1/32-px position steps and its uint8 rounding of
    the crop (and of the pre-shrunk window), a <=2 grey-level change of the crop's pixels.
    Measured: 0.05 px (direct), 0.21 px = 0.075 crop px (pre-shrink)."""
    model = exported_m[0]
    img, lm = render_face(np.random.default_rng(11), image_size=size)[:2]
    box = landmark_box(lm)
    ok, buf = cv2.imencode(fmt, cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    assert ok
    decoded = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    want, t = _numpy_reference(model, decoded, box)
    if size[0] == 300:
        assert 1.0 / t.sx >= 2.0  # the area pre-shrink path is exercised
    body = json.loads(json.dumps(rest.rest_request_body(
        signature=signatures.BYTES_SIGNATURE, image_bytes=[buf.tobytes()] * 2, boxes=[box, box])))
    name, inputs = rest.rest_body_to_inputs(body)
    sig = loaded_m.signatures[name]
    got = sig(image_bytes=tf.constant(inputs["image_bytes"].tolist(), tf.string),
              boxes=tf.constant(inputs["boxes"]))["landmarks"].numpy()
    assert got.shape == (2, 68, 2)
    tol = 0.15 * max(1.0 / t.sx, 1.0 / t.sy)  # 0.15 crop px in original-image px
    np.testing.assert_allclose(got[0], want, atol=tol, rtol=0)
    np.testing.assert_array_equal(got[0], got[1])


def test_tflite_m_float32_parity_and_routing(exported_m, crops):
    model, _, _, paths = exported_m
    it = load_tflite(paths["float32"])
    ops = check_builtin_only(it, paths["float32"])
    assert {"SELECT_V2", "ARG_MAX"} <= set(ops)  # the expert routing converted to builtins
    io = signature_io(it)
    assert set(io["inputs"]) == {"images"} and io["inputs"]["images"][1] == "float32"
    assert set(io["outputs"]) == {"landmarks", "noise_probs", "denoised"}
    want = _keras_out(model, crops)
    for bs in (1, 4):
        got = run_tflite(it, crops, batch_size=bs)
        np.testing.assert_allclose(got["landmarks"], want["landmarks"], atol=1e-2, rtol=0)
        np.testing.assert_array_equal(np.argmax(got["noise_probs"], 1),
                                      np.argmax(want["noise_probs"], 1))
        np.testing.assert_allclose(got["denoised"], want["denoised"], atol=0.05, rtol=0)


def test_tflite_fll_int8_parity(exported_fll, crops):
    model, _, _, paths = exported_fll
    it = load_tflite(paths["int8"])
    check_builtin_only(it, paths["int8"])
    assert {"QUANTIZE", "DEQUANTIZE"} <= set(op_names(it))
    assert signature_io(it)["inputs"]["images"][1] == "float32"  # float I/O kept
    want = _keras_out(model, crops)["landmarks"]
    got = run_tflite(it, crops, batch_size=2)["landmarks"]
    spread = np.std(want, axis=0).mean()
    err = np.abs(got - want)
    assert err.mean() < 0.5 * spread, (err.mean(), spread)  # tracks the input, not a constant
    assert np.abs(got - want.mean(axis=0)).mean() > err.mean()


def test_tflite_fixed_batch_conversion(exported_m, crops):
    """--tflite-batch 1: static shapes (no SHAPE ops), same outputs as Keras at batch 1."""
    model, _, vdir, _ = exported_m
    with pytest.raises(ValueError, match="needs the Keras model"):
        tflite.convert_tflite(vdir, "float32", batch_size=1)
    it = load_tflite(tflite.convert_tflite(vdir, "float32", batch_size=1, model=model))
    check_builtin_only(it)
    assert "SHAPE" not in op_names(it)
    assert signature_io(it)["inputs"]["images"] == ([1, S, S, 3], "float32")
    want = _keras_out(model, crops)
    got = run_tflite(it, crops, batch_size=1)
    np.testing.assert_allclose(got["landmarks"], want["landmarks"], atol=1e-2, rtol=0)
    np.testing.assert_array_equal(np.argmax(got["noise_probs"], 1),
                                  np.argmax(want["noise_probs"], 1))


def test_load_tflite_uses_every_core_by_default(monkeypatch, tmp_path):
    """load_tflite hands LiteRT every usable core unless told otherwise (LiteRT's own default
    is one thread), for bytes and for files, and the interpreter it returns runs."""
    import os
    import ai_edge_litert.interpreter as litert_interpreter
    from fadenn_tf.deploy.litert import default_num_threads
    fn = tf.function(lambda x: {"y": 2.0 * x},
                     input_signature=[tf.TensorSpec([1, 4], tf.float32, name="x")])
    content = tf.lite.TFLiteConverter.from_concrete_functions(
        [fn.get_concrete_function()], fn).convert()
    (tmp_path / "double.tflite").write_bytes(content)
    seen, real = [], litert_interpreter.Interpreter

    def spy(*args, **kwargs):                 # the real interpreter, its arguments recorded
        seen.append(kwargs.get("num_threads"))
        return real(*args, **kwargs)
    monkeypatch.setattr(litert_interpreter, "Interpreter", spy)
    cores = len(os.sched_getaffinity(0))
    assert default_num_threads() == cores
    for model in (content, tmp_path / "double.tflite"):
        it = load_tflite(model)
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], np.array([[1, 2, 3, 4]], np.float32))
        it.invoke()
        np.testing.assert_allclose(it.get_tensor(it.get_output_details()[0]["index"]),
                                   [[2, 4, 6, 8]])
    load_tflite(content, num_threads=1)
    assert seen == [cores, cores, 1]


def test_parity_report_and_markdown(exported_m, crops, tmp_path):
    model, _, vdir, paths = exported_m
    report = parity.parity_report(model, paths, crops, None, repeats=2, saved_model_dir=vdir)
    names = [r["variant"] for r in report["rows"]]
    assert names == ["keras", "saved_model", "tflite_float32"]
    rows = {r["variant"]: r for r in report["rows"]}
    assert rows["saved_model"]["max_landmark_diff_px"] < 1e-4
    assert 0 < rows["tflite_float32"]["max_landmark_diff_px"] < 1e-2
    assert rows["tflite_float32"]["size_bytes"] == paths["float32"].stat().st_size
    md = parity.write_report(report, tmp_path)
    assert "tflite_float32" in md and json.loads((tmp_path / "parity.json").read_text())


def test_errors_are_clear(tmp_path):
    with pytest.raises(Exception, match="no model found"):
        saved_model.resolve_model_file(tmp_path)
    with pytest.raises(ValueError, match="unknown TFLite variant"):
        tflite.convert_tflite(tmp_path, "int4")
    with pytest.raises(ValueError, match="one encoded image per box"):
        rest.rest_request_body(signature=signatures.BYTES_SIGNATURE, image_bytes=[b"x"], boxes=[[0] * 4] * 2)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["S"])   # D's parts (DAE, FLL) are exported by M's tests
def test_export_other_variants(variant, tmp_path, crops):
    keras.utils.set_random_seed(3)
    model = _nontrivial(build_variant(CFG.model, variant), seed=3)
    vdir = saved_model.export_saved_model(model, tmp_path / variant)
    got = _run_fresh(vdir, crops, tmp_path)
    np.testing.assert_allclose(got["landmarks"], _keras_out(model, crops)["landmarks"],
                               atol=1e-4, rtol=0)
    paths = tflite.write_tflite_variants(vdir, tmp_path / "tfl", ["float16"])
    lm = run_tflite(load_tflite(paths["float16"]), crops)["landmarks"]
    assert np.abs(lm - _keras_out(model, crops)["landmarks"]).max() < 0.5


@pytest.mark.slow
def test_cli_all_variants_with_report(tmp_path):
    """The CLI on a workdir holding FADeNN-M: every TFLite variant + the parity report on a
    tiny 300-W-layout dataset (fixtures) as --data."""
    from tests.fixtures import make_300w
    data = tmp_path / "data"
    make_300w(data)
    work = tmp_path / "work"
    (work / "joint-M").mkdir(parents=True)
    keras.utils.set_random_seed(4)
    save_model(_nontrivial(build_variant(CFG.model, "M"), seed=4), work / "joint-M" / "model.keras")
    out = tmp_path / "exported" / "m"
    rc = export_cli.main(["--model", str(work), "--out", str(out), "--tflite", "all", "--report",
                  "--data", str(data), "--repeats", "2", "--max-images", "8"])
    assert rc == 0
    report = json.loads((out / "tflite-1" / "parity.json").read_text())
    rows = {r["variant"]: r for r in report["rows"]}
    assert set(rows) == {"keras", "saved_model"} | {f"tflite_{v}" for v in tflite.TFLITE_VARIANTS}
    assert rows["tflite_float32"]["max_landmark_diff_px"] < 1e-2
    assert all(r["nme"] is not None and np.isfinite(r["nme"]) for r in rows.values())
    assert export_cli.main(["--model", str(work), "--out", str(out), "--version", "1"]) == 2
    assert not (out / ".fadenn.lock").exists()      # the TF Serving base path stays clean
