"""Staged training really trains tiny models on a fixture 300-W tree: losses fall, every stage
writes its workdir, the CLI fails early and clearly, Ctrl-C / kill -9 resume, mirrored (two
logical CPUs) and multi-worker (two local processes on loopback) strategies."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
import yaml

from fadenn_tf import train as train_cli
from fadenn_tf.config import config_from_dict
from fadenn_tf.models import load_model
from fadenn_tf.models.pixels import core_of
from fadenn_tf.training import stages as st
from fadenn_tf.data.splits import load_splits
from fadenn_tf.training.distribute import make_strategy
from fadenn_tf.training.tasks import stage_outputs
from fadenn_tf.training.tasks.base import inference_fn
from fixtures import make_300w

ROOT = Path(__file__).resolve().parents[1]
NO_AUG = {"rotation_deg": 0.0, "flip": False, "occlusion_prob": 0.0, "box_jitter": False}
TINY = {
    "name": "tiny",
    "model": {"iid": {"input_size": 32, "filters": [4, 4, 4, 4, 4], "latent_dim": 16,
                      "head_hidden": 8},
              "fll": {"input_size": 32, "width": 0.125, "blocks": [0, 0, 0]}},
    "data": {"val_split": "common", "max_val_images": 8,
             "augment": {"rotation_deg": 30.0, "flip": False, "occlusion_prob": 0.0,
                         "box_jitter": True}},
    "train": {"batch_size": 8, "learning_rate": 0.01, "eval_every": 15, "checkpoint_every": 10,
              "keep_checkpoints": 2, "log_every": 1, "seed": 0},
    "noise": {"reference_size": 48},   # noise at a 48-px reference, resized to the 32-px models
}
STEPS = 30          # in-process stage runs: evaluations at 15 and 30, checkpoints 10, 20, 30


def tiny(**sections):
    """TINY with some sections' keys replaced (nested dicts merged one level deep)."""
    out = json.loads(json.dumps(TINY))
    for sec, vals in sections.items():
        out[sec].update(vals)
    return out


def write_yaml(path, cfg):
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


# ------------------------------------------------------------------------------ helpers
def scalars(tb_dir, tag="train/loss", per_file=False):
    """{step: value} of a scalar in the TensorBoard event files of tb_dir (or a list of such
    dicts, one per event file in creation order, if per_file)."""
    files = sorted(Path(tb_dir).glob("events.out.tfevents.*"),
                   key=lambda p: (int(p.name.split(".")[3]), p.name))
    out = []
    for f in files:
        d = {}
        for rec in tf.data.TFRecordDataset(str(f)):
            event = tf.compat.v1.Event.FromString(rec.numpy())
            for v in event.summary.value:
                if v.tag == tag:
                    d[int(event.step)] = float(tf.make_ndarray(v.tensor))
        out.append(d)
    if per_file:
        return out
    return {k: v for d in out for k, v in d.items()}


def loss_curve(stage_dir, tag="train/loss"):
    d = scalars(Path(stage_dir) / "tb", tag)
    assert sorted(d) == list(range(1, len(d) + 1)), f"steps logged: {sorted(d)}"
    return np.array([d[k] for k in sorted(d)])


def assert_loss_falls(curve, k=8, ratio=0.8):
    first, last = curve[:k].mean(), curve[-k:].mean()
    assert np.all(np.isfinite(curve))
    assert last < ratio * first, f"loss did not fall: first {k} {first:.4f}, last {k} {last:.4f}"


def metrics_lines(stage_dir):
    return [json.loads(line) for line in (Path(stage_dir) / "metrics.json").read_text()
            .splitlines()]


def checkpoint_numbers(ckpt_dir):
    return sorted(int(p.name[len("ckpt-"):-len(".index")])
                  for p in Path(ckpt_dir).glob("ckpt-*.index"))


def checkpoint_value(ckpt_path, key):
    return tf.train.load_checkpoint(str(ckpt_path)).get_tensor(key)


def assert_stage_dir(stage_dir, models, steps=STEPS, evals=(15, 30)):
    d = Path(stage_dir)
    for m in models:
        assert (d / m).is_file(), f"{d / m} missing"
        assert keras.models.load_model(d / m, compile=False) is not None
    assert yaml.safe_load((d / "config.yaml").read_text())["name"] == "tiny"
    lines = metrics_lines(d)
    assert [r["step"] for r in lines] == list(evals)
    assert all(r["stage"] == d.name.split("-")[0] for r in lines)
    assert checkpoint_numbers(d / "checkpoints") == [20, 30]          # keep_checkpoints = 2
    assert (d / "checkpoints" / "checkpoint").is_file()
    assert int(checkpoint_value(d / "checkpoints" / f"ckpt-{steps}",
                                "step/.ATTRIBUTES/VARIABLE_VALUE")) == steps
    assert list((d / "tb").glob("events.out.tfevents.*"))
    return lines


def make_ctx(splits, workdir, variant="M", steps=STEPS, cfg=None, **kw):
    cfg = cfg or config_from_dict(TINY)
    return st.StageContext(cfg=cfg, variant=variant, workdir=Path(workdir),
                           strategy=make_strategy("default"), train=splits.train,
                           val=splits.val, options=st.RunOptions(steps=steps, **kw))


def run_stage(ctx, stage):
    keras.utils.set_random_seed(0)
    return st.run_stage(ctx, stage)


def env():
    e = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1",
             CUDA_VISIBLE_DEVICES="-1")
    e.pop("TF_CONFIG", None)
    return e


def cli(args, **kw):
    return subprocess.Popen([sys.executable, "-m", "fadenn_tf.train", *map(str, args)],
                            cwd=ROOT, env=kw.pop("env", env()), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def wait_for(path, proc, timeout=180):
    t0 = time.time()
    while not Path(path).exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"exited {proc.returncode} before {path} appeared:\n{out}\n{err}")
        if time.time() - t0 > timeout:
            proc.kill()
            pytest.fail(f"{path} did not appear in {timeout} s")
        time.sleep(0.05)


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "300w"
    make_300w(root, n_per_folder=8, size=(64, 64))      # 24 train, 16 common-test images
    return root


@pytest.fixture(scope="module")
def splits(data_root):
    return load_splits(config_from_dict(TINY).data, data_root)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, splits):
    """fll and dae trained STEPS steps each in one workdir (one context, as `--stage all`
    does): {"workdir": Path, "ctx": StageContext, stage: result dict}."""
    workdir = tmp_path_factory.mktemp("trained")
    ctx = make_ctx(splits, workdir)
    out = {"workdir": workdir, "ctx": ctx}
    for stage in ("fll", "dae"):
        out[stage] = run_stage(ctx, stage)
    return out


@pytest.fixture(scope="module")
def classifiers(trained):
    """stc and mtc trained in the same workdir and context as `trained`."""
    for stage in ("stc", "mtc"):
        trained[stage] = run_stage(trained["ctx"], stage)
    return trained


@pytest.fixture
def cli_yaml(tmp_path):
    """Config for CLI runs: checkpoint every 2 steps, evaluate only at the end."""
    return write_yaml(tmp_path / "tiny.yaml",
                      tiny(train={"checkpoint_every": 2, "eval_every": 100000}))


# ------------------------------------------------------------------- stages: loss falls
@pytest.mark.parametrize("stage", ["fll", "dae", pytest.param("stc", marks=pytest.mark.slow),
                                   pytest.param("mtc", marks=pytest.mark.slow)])
def test_stage_trains_loss_falls_and_writes_workdir(request, stage):
    trained = request.getfixturevalue("classifiers" if stage in ("stc", "mtc") else "trained")
    d = trained["workdir"] / stage
    assert_loss_falls(loss_curve(d))
    lines = assert_stage_dir(d, ["model.keras"])
    result = trained[stage]
    if stage == "fll":
        # validated in image pixels with the named normaliser, mean-shape baseline beside it
        assert lines[-1]["normalizer"] == "diagonal" and lines[-1]["threshold"] == 0.08
        assert 0 < result["nme_clean"] < 0.5 and 0 < result["mean_shape_nme_clean"] < 0.5
        assert result["nme_clean"] == pytest.approx(lines[-1]["nme_clean"])
    elif stage == "dae":
        assert result["psnr_noisy_output"] == pytest.approx(lines[-1]["psnr_noisy_output"])
    else:
        conf = np.array(lines[-1]["confusion"])
        # rows = true noise type: each of the 8 val images once per condition (clean once,
        # every noise type at its 3 levels), so the classifier saw each label as often
        assert conf.sum(axis=1).tolist() == [8, 24, 24, 24, 24]
        assert lines[-1]["accuracy"] == pytest.approx(np.trace(conf) / conf.sum())
        assert result["accuracy"] == pytest.approx(lines[-1]["accuracy"])
    if stage == "mtc":   # both terms of CE + lambda * L2 are logged, and both fall
        assert_loss_falls(loss_curve(d, "train/cross_entropy"), ratio=0.9)
        assert_loss_falls(loss_curve(d, "train/l2_reconstruction"))


def test_stage_outputs_are_what_training_left(trained):
    """The saved fll and dae models reproduce the figures of training's last validation: the
    trained weights were saved (not a fresh or an earlier copy) and reload as the same model."""
    from fadenn_tf.evaluation import scoring
    from fadenn_tf.models import to_points
    w, ctx = trained["workdir"], trained["ctx"]
    for stage in ("fll", "dae"):
        assert all(p.is_file() for p in stage_outputs(w, stage))
    val, mc = ctx.val_data(), ctx.cfg.model
    fll = load_model(w / "fll" / "model.keras")
    got = scoring.evaluate_landmarks(lambda x: {"landmarks": to_points(fll(x, training=False))},
                                     val, [(0, 0)], scoring.ValidationSpec(mc.fll.input_size))
    assert got["clean"]["mean_nme"] == pytest.approx(trained["fll"]["nme_clean"], rel=1e-5)
    dae = load_model(w / "dae" / "model.keras")
    got = scoring.evaluate_denoiser(lambda x: dae(x, training=False), val, [(0, 0)],
                                    scoring.ValidationSpec(mc.iid.input_size))
    assert got["clean"]["psnr_output"] == pytest.approx(trained["dae"]["psnr_clean_output"],
                                                        rel=1e-5)


@pytest.mark.slow
def test_stage_experts_trains_each_expert(splits, tmp_path):
    ctx = make_ctx(splits, tmp_path)
    result = run_stage(ctx, "experts")
    d = tmp_path / "experts"
    assert_loss_falls(loss_curve(d))
    for k in range(1, 5):   # every expert's own L2 falls, not just the sum
        assert_loss_falls(loss_curve(d, f"train/l2_expert_{k}"), ratio=0.9)
    assert_stage_dir(d, [f"expert_{k}.keras" for k in range(1, 5)])
    assert {f"psnr_expert_{k}_output" for k in range(1, 5)} <= set(result)


@pytest.mark.slow
def test_stage_joint_variant_d_fine_tunes_from_earlier_stages(trained, splits):
    # Fine-tuned on un-augmented crops (the FLL learnt rotated ones): a shift the joint
    # model must adapt to, so its loss falls well above the batch-to-batch noise.
    cfg = config_from_dict(tiny(data={"augment": NO_AUG}, train={"eval_every": STEPS}))
    ctx = make_ctx(splits, trained["workdir"], variant="D", cfg=cfg)
    result = run_stage(ctx, "joint")
    d = trained["workdir"] / "joint-D"
    assert_loss_falls(loss_curve(d))
    assert_loss_falls(loss_curve(d, "train/landmark_loss_fll_px"))
    assert_stage_dir(d, ["model.keras"], evals=(STEPS,))
    # the FLL alone before fine-tuning is reported beside the fine-tuned model
    assert {"nme_noisy", "fll_baseline_nme_noisy"} <= set(result)


def test_validation_predict_fn_traced_once_despite_partial_last_batch(data_root):
    """Training-time validation runs the model on batches of 32 and a smaller last one; the
    stages' inference functions take any batch size without retracing."""
    from fadenn_tf.evaluation import scoring as validation
    from fadenn_tf.data.pipeline import load_eval_data
    from fadenn_tf.models import build_fll, pixel_model, to_points
    cfg = config_from_dict(TINY)
    samples = load_splits(cfg.data, data_root).train               # 24 images
    val = load_eval_data(samples + samples[:16], 32)                 # 40 = 32 + 8
    model = pixel_model(build_fll(cfg.model.fll))
    predict = inference_fn(lambda x: {"landmarks": to_points(model(x, training=False))}, 32)
    res = validation.evaluate_landmarks(predict, val, [(0, 0), (3, 1)],
                                        validation.ValidationSpec(batch_size=32))
    assert len(res["errors"]["clean"]) == 40
    assert predict.experimental_get_tracing_count() == 1


# ------------------------------------------------------------------ CLI fails early
def test_joint_without_earlier_stages_names_stage_and_file(tmp_path, cli_yaml, capsys):
    rc = train_cli.main(["--stage", "joint", "--variant", "M", "--config", str(cli_yaml),
                         "--data", str(tmp_path / "not-loaded-yet"),
                         "--workdir", str(tmp_path / "w")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "stage 'joint' of FADeNN-M" in err
    for stage, f in (("fll", "fll/model.keras"), ("mtc", "mtc/model.keras"),
                     ("experts", "experts/expert_1.keras")):
        assert f"stage '{stage}'" in err and str(tmp_path / "w" / f) in err
    assert "not-loaded-yet" not in err            # checked before the data is touched


@pytest.mark.parametrize("section,bad,key,problem", [
    ("train", {"batchsize": 8}, "train.batchsize", "unknown key"),
    ("model", {"fll": {"width": -1.0}}, "fll.width", "must be in"),
    ("train", {"learning_rate": "fast"}, "train.learning_rate", "expected float"),
])
def test_bad_config_fails_before_training_naming_file_and_key(tmp_path, data_root, section,
                                                              bad, key, problem, capsys):
    cfg = tiny()
    cfg[section] = {**cfg[section], **bad}
    path = write_yaml(tmp_path / "bad.yaml", cfg)
    rc = train_cli.main(["--stage", "fll", "--config", str(path), "--data", str(data_root),
                         "--workdir", str(tmp_path / "w")])
    err = capsys.readouterr().err
    assert rc == 2
    assert str(path) in err and key in err and problem in err
    assert not (tmp_path / "w").exists()


def test_missing_data_folder_fails_clearly(tmp_path, cli_yaml, capsys):
    missing = tmp_path / "no-such-dataset"
    rc = train_cli.main(["--stage", "fll", "--config", str(cli_yaml), "--data", str(missing),
                         "--workdir", str(tmp_path / "w")])
    err = capsys.readouterr().err
    assert rc == 2
    assert f"{missing}: dataset folder not found" in err
    assert not (tmp_path / "w").exists()


# ------------------------------------------------------------ interrupt / kill / resume
@pytest.mark.slow
def test_ctrl_c_saves_checkpoint_and_restart_without_resume_is_refused(tmp_path, data_root,
                                                                       cli_yaml, capsys):
    wd = tmp_path / "w"
    args = ["--stage", "dae", "--config", cli_yaml, "--data", data_root, "--workdir", wd,
            "--no-progress", "--steps", 100000]
    proc = cli(args)
    ckpts = wd / "dae" / "checkpoints"
    wait_for(ckpts / "checkpoint", proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    line = [ln for ln in err.splitlines() if "interrupted at step" in ln]
    assert line and "continue with the same command plus --resume" in line[0], err
    step = int(line[0].split("interrupted at step ")[1].split(";")[0])
    assert step >= 2
    assert f"checkpoint saved to {ckpts / f'ckpt-{step}'}" in line[0]
    assert checkpoint_numbers(ckpts)[-1] == step
    assert tf.train.latest_checkpoint(str(ckpts)).endswith(f"ckpt-{step}")
    assert int(checkpoint_value(ckpts / f"ckpt-{step}",
                                "step/.ATTRIBUTES/VARIABLE_VALUE")) == step
    # the same command without --resume refuses to mix into the earlier run
    rc = train_cli.main([str(a) for a in args])
    err = capsys.readouterr().err
    assert rc == 2
    assert str(ckpts) in err and "pass --resume" in err
    assert checkpoint_numbers(ckpts)[-1] == step


@pytest.mark.slow
def test_resume_after_kill9_continues_step_counter_and_optimizer(tmp_path, data_root,
                                                                 cli_yaml):
    wd = tmp_path / "w"
    ckpts = wd / "dae" / "checkpoints"
    args = ["--stage", "dae", "--config", cli_yaml, "--data", data_root, "--workdir", wd,
            "--no-progress"]
    proc = cli(args + ["--steps", 100000])
    wait_for(ckpts / "checkpoint", proc)
    proc.kill()                                           # SIGKILL: nothing gets saved
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    n = int(tf.train.latest_checkpoint(str(ckpts)).rsplit("-", 1)[1])
    assert n >= 2
    total = n + 3
    res = subprocess.run([sys.executable, "-m", "fadenn_tf.train", *map(str, args),
                          "--steps", str(total), "--resume"], cwd=ROOT, env=env(),
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    # step counter: the resumed run logged steps n+1..total only, and ended at total
    runs = scalars(wd / "dae" / "tb", per_file=True)
    assert len(runs) == 2 and min(runs[0]) == 1 and max(runs[0]) >= n
    assert sorted(runs[1]) == list(range(n + 1, total + 1))
    assert [r["step"] for r in metrics_lines(wd / "dae")] == [total]
    last = ckpts / f"ckpt-{total}"
    assert int(checkpoint_value(last, "step/.ATTRIBUTES/VARIABLE_VALUE")) == total
    # optimizer state restored: Adam's iteration count went on from the checkpoint's
    assert int(checkpoint_value(last, "optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE")) \
        == total
    assert (wd / "dae" / "model.keras").is_file()


# --------------------------------------------------------------------- strategies
MIRRORED_SCRIPT = textwrap.dedent("""
    import json, sys, types
    from pathlib import Path
    from fadenn_tf import train as train_cli
    cfg_path, data_root, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    rc = train_cli.main(["--config", cfg_path, "--data", data_root, "--workdir", str(out / "cli"),
                         "--stage", "dae", "--steps", "4", "--no-progress",
                         "--strategy", "mirrored", "--logical-cpus", "2"])
    import keras
    import tensorflow as tf
    from fadenn_tf import losses
    from fadenn_tf.config import load_config
    from fadenn_tf.models import build_dae, pixel_model
    from fadenn_tf.training import stages as st
    from fadenn_tf.data.splits import load_splits
    from fadenn_tf.training.loop import LoopOptions, LoopSpec, run_loop
    from fadenn_tf.data.pipeline import load_train_data
    cfg = load_config(cfg_path)
    data = load_train_data(load_splits(cfg.data, data_root).train, 32)
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    strategies = {"one": tf.distribute.OneDeviceStrategy(cpus[0]),
                  "mirrored": tf.distribute.MirroredStrategy(cpus)}

    def run(name, wd, total, resume=False):
        # a DAE fed clean crops: no randomness but the data order, so the two strategies
        # must agree to rounding when they see the same global batches
        strategy = strategies[name]
        keras.utils.set_random_seed(0)
        with strategy.scope():
            model = pixel_model(build_dae(cfg.model.iid))
            opt = st.make_optimizer(cfg.train)
            opt.build(model.trainable_variables)
            step = tf.Variable(0, dtype=tf.int64, trainable=False)

        def compute_losses(batch):
            rec = model(batch["clean"], training=True)
            return (losses.reconstruction_l2(rec, batch["clean"]),
                    {"mean_index": tf.cast(batch["index"], tf.float32)})
        spec = LoopSpec("dae", compute_losses, lambda: model.trainable_variables,
                        st.dataset_fn(types.SimpleNamespace(cfg=cfg), data,
                                      types.SimpleNamespace(input_size=lambda _cfg: 32,
                                                            noise=False, occlusion=False,
                                                            expert_noise=False)),
                        {"model": model, "step": step}, total, cfg.train.batch_size)
        run_loop(spec, opt, strategy, out / wd,
                 LoopOptions(log_every=1, checkpoint_every=1000, resume=resume))

    for name in strategies:
        run(name, name, 8)
        run(name, name + "-resumed", 4)
        run(name, name + "-resumed", 8, resume=True)
    print(json.dumps({"rc": rc, "replicas": strategies["mirrored"].num_replicas_in_sync}))
""")


@pytest.mark.slow
def test_mirrored_two_logical_cpus_matches_one_device_and_resumes(tmp_path, data_root):
    cfg = write_yaml(tmp_path / "tiny.yaml",
                     tiny(data={"augment": NO_AUG}, train={"eval_every": 100000}))
    res = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT, str(cfg), str(data_root),
                          str(tmp_path)], cwd=ROOT, env=env(), capture_output=True, text=True, timeout=400)
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary == {"rc": 0, "replicas": 2}
    # the CLI run: 2 replicas, a model and metrics written, its loss falls
    assert "strategy mirrored (2 replica(s))" in res.stdout
    assert (tmp_path / "cli" / "dae" / "model.keras").is_file()
    assert [r["step"] for r in metrics_lines(tmp_path / "cli" / "dae")] == [4]
    cli_curve = loss_curve(tmp_path / "cli" / "dae")
    assert len(cli_curve) == 4 and cli_curve[-1] < cli_curve[0]
    curves = {k: scalars(tmp_path / k / "tb") for k in
              ("one", "mirrored", "one-resumed", "mirrored-resumed")}
    index = {k: scalars(tmp_path / k / "tb", "train/mean_index") for k in curves}
    steps = list(range(1, 9))
    for k in curves:
        assert sorted(curves[k]) == steps
    one = np.array([curves["one"][s] for s in steps])
    for k in ("mirrored", "one-resumed", "mirrored-resumed"):
        # same samples at every step (also after resuming at step 4) ...
        assert [index[k][s] for s in steps] == [index["one"][s] for s in steps], k
        # ... and the same loss: gradients averaged over the global batch, restored state
        np.testing.assert_allclose([curves[k][s] for s in steps], one, rtol=2e-4, err_msg=k)
    assert one[-3:].mean() < 0.8 * one[:3].mean()


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_multiworker_two_local_workers_on_loopback(tmp_path, data_root, cli_yaml):
    wd = tmp_path / "w"
    workers = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    procs = []
    for i in range(2):
        e = env()
        e["TF_CONFIG"] = json.dumps({"cluster": {"worker": workers},
                                     "task": {"type": "worker", "index": i}})
        procs.append(cli(["--stage", "dae", "--config", cli_yaml, "--data", data_root,
                          "--workdir", wd, "--steps", 4, "--no-progress",
                          "--strategy", "multiworker"], env=e))
    outs = []
    try:
        for p in procs:
            outs.append(p.communicate(timeout=400))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
        assert "strategy multiworker (2 replica(s))" in out
    d = wd / "dae"
    assert f"wrote {d / 'model.keras'}" in outs[0][0]
    assert "not the chief" in outs[1][0] and f"wrote {d}" not in outs[1][0]
    # only the chief wrote the stage's model, metrics, config and TensorBoard log
    assert (d / "model.keras").is_file() and (d / "config.yaml").is_file()
    assert [r["step"] for r in metrics_lines(d)] == [4]
    assert len(list((d / "tb").glob("events.out.tfevents.*"))) == 1
    assert sorted(loss_curve(d)) and len(loss_curve(d)) == 4
    assert checkpoint_numbers(d / "checkpoints")[-1] == 4
    # both workers hold the same synchronised weights: identical validation figures
    psnr = [[ln for ln in out.splitlines() if "PSNR" in ln] for out, _ in outs]
    assert psnr[0] and psnr[0] == psnr[1]


# ------------------------------------------------------------ mixed precision, XLA
@pytest.mark.slow
def test_mixed_precision_runs_with_loss_scaling(tmp_path, data_root, cli_yaml, capsys):
    wd = tmp_path / "w"
    try:
        rc = train_cli.main(["--stage", "fll", "--config", str(cli_yaml), "--data",
                             str(data_root), "--workdir", str(wd), "--steps", "2",
                             "--no-progress", "--mixed-precision"])
        policy = keras.mixed_precision.global_policy().name
    finally:
        keras.mixed_precision.set_global_policy("float32")
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert policy == "mixed_float16"
    ckpt = tf.train.load_checkpoint(str(wd / "fll" / "checkpoints" / "ckpt-2"))
    keys = ckpt.get_variable_to_shape_map()
    scale = [k for k in keys if "dynamic_scale" in k]
    assert scale, "no LossScaleOptimizer state in the checkpoint"
    assert np.isfinite(ckpt.get_tensor(scale[0]))
    assert (wd / "fll" / "model.keras").is_file()
    assert np.isfinite(metrics_lines(wd / "fll")[-1]["nme_clean"])


@pytest.mark.slow
def test_jit_train_step_runs(tmp_path, data_root, cli_yaml, capsys):
    wd = tmp_path / "w"
    rc = train_cli.main(["--stage", "dae", "--config", str(cli_yaml), "--data", str(data_root),
                         "--workdir", str(wd), "--steps", "3", "--no-progress", "--jit"])
    assert rc == 0, capsys.readouterr().err
    curve = loss_curve(wd / "dae")
    assert len(curve) == 3 and np.all(np.isfinite(curve))
    assert (wd / "dae" / "model.keras").is_file()


@pytest.mark.slow
def test_bf16_trains_without_loss_scaling_and_saves_float32(tmp_path, data_root, cli_yaml):
    """--mixed-precision bf16 (own process, so the global policy cannot leak): no loss-scale
    state in the checkpoint, and the saved model computes in float32."""
    first = tmp_path / "a"
    run = subprocess.run(
        [sys.executable, "-m", "fadenn_tf.train", "--stage", "fll", "--config", str(cli_yaml),
         "--data", str(data_root), "--out", str(first), "--steps", "2", "--no-progress",
         "--mixed-precision", "bf16"], capture_output=True, text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert "precision bf16" in run.stdout
    keys = tf.train.load_checkpoint(str(first / "fll" / "checkpoints" / "ckpt-2")) \
        .get_variable_to_shape_map()
    assert not [k for k in keys if "dynamic_scale" in k]
    model = core_of(load_model(first / "fll" / "model.keras"))
    assert {layer.compute_dtype for layer in model.get_layer("backbone").layers} == {"float32"}


@pytest.mark.slow
def test_init_from_copies_every_layer_and_wing_trains(tmp_path, data_root, cli_yaml, capsys):
    """A run started --init-from an earlier one copies every FLL layer; the wing loss trains
    with finite losses."""
    first, second = tmp_path / "a", tmp_path / "b"
    assert train_cli.main(["--stage", "fll", "--config", str(cli_yaml), "--data",
                           str(data_root), "--out", str(first), "--steps", "2",
                           "--no-progress"]) == 0
    capsys.readouterr()
    rc = train_cli.main(["--stage", "fll", "--config", str(cli_yaml), "--data", str(data_root),
                         "--out", str(second), "--steps", "2", "--no-progress",
                         "--init-from", str(first), "--loss", "wing"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    line = [ln for ln in out.out.splitlines() if "initialised" in ln][0]
    copied, total = line.split("initialised ")[1].split(" layers")[0].split("/")
    assert copied == total and str(first / "fll" / "model.keras") in line
    assert "loss wing" in out.out
    curve = loss_curve(second / "fll")
    assert len(curve) == 2 and np.all(np.isfinite(curve))


def test_val_fraction_zero_trains_on_every_image_without_validation(tmp_path):
    """data.val_fraction 0 on a 300-W copy without test folders: every training image is
    used, val is empty, and a stage trains and saves its model with no validation entry."""
    root = tmp_path / "300w"
    make_300w(root, n_per_folder=4, size=(64, 64))
    for sub in ("helen/testset", "lfpw/testset", "ibug"):      # a train-only copy
        shutil.rmtree(root / sub)
    cfg = config_from_dict(tiny(data={"val_split": "test", "val_fraction": 0.0}))
    splits = load_splits(cfg.data, root)
    held = load_splits(config_from_dict(tiny(data={"val_split": "test"})).data, root)
    assert len(splits.train) == len(held.train) + len(held.val) and splits.val == []
    assert "no held-out images" in splits.description
    ctx = make_ctx(splits, tmp_path / "w", variant="D", steps=3, cfg=cfg)
    for stage in ("fll", "dae", "joint"):    # fll and joint score extra baselines on val
        run_stage(ctx, stage)
        d = tmp_path / "w" / ("joint-D" if stage == "joint" else stage)
        assert (d / "model.keras").is_file()
        metrics = d / "metrics.json"
        assert not metrics.exists() or "nme" not in metrics.read_text()
    assert not (tmp_path / "w" / "dae" / "metrics.json").exists() or \
        "psnr" not in (tmp_path / "w" / "dae" / "metrics.json").read_text()


def test_short_runs_validate_on_a_subset_and_say_so(data_root):
    """A run of at most SHORT_RUN_STEPS steps per stage validates on the first
    data.short_run_val_images images (named in the description printed with the figures);
    longer runs, short_run_val_images 0 and an explicit max_val_images keep their choice."""
    from fadenn_tf.data.splits import SHORT_RUN_STEPS
    cfg = config_from_dict(tiny(data={"max_val_images": 0, "short_run_val_images": 5})).data
    every = load_splits(cfg, data_root)                     # no step count: every image
    assert len(every.val) == 16
    short = load_splits(cfg, data_root, longest_stage_steps=30)
    assert short.val == every.val[:5]
    assert "first 5 of 16 val images (a short run: at most 30 steps" in short.description
    assert "short_run_val_images=0" in short.description
    long = load_splits(cfg, data_root, longest_stage_steps=SHORT_RUN_STEPS + 1)
    assert long.val == every.val and "short run" not in long.description
    off = config_from_dict(tiny(data={"max_val_images": 0, "short_run_val_images": 0})).data
    assert len(load_splits(off, data_root, longest_stage_steps=30).val) == 16
    capped = load_splits(config_from_dict(TINY).data, data_root, longest_stage_steps=30)
    assert len(capped.val) == 8 and "short run" not in capped.description
