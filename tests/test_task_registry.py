"""A stage is one registered Task: a stage defined here, in this file only, trains through the
real `train` command (checkpoints, validation, saved model, resume), and every list of stage
names in the package (train --stage, train.steps, --stage all, --init-from, bench) is read
from the registry."""
import ast
import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
import yaml

import fadenn_tf
from fadenn_tf import train as train_cli
from fadenn_tf.benchmark import train_speed
from fadenn_tf.cli.train import build_parser
from fadenn_tf.config import config_from_dict
from fadenn_tf.errors import ConfigError
from fadenn_tf.evaluation import scoring
from fadenn_tf.models import load_model, to_points
from fadenn_tf.training import stages, transfer
from fadenn_tf.training.tasks import (TASKS, Task, bench_models, check_step_names,
                                     register_task, stage_outputs, task_names,
                                     unregister_task)
from fadenn_tf.training.tasks.base import inference_fn
from fixtures import make_300w
from test_training import TINY, tiny, write_yaml


class ProbeTask(Task):
    """A no-op stage: one Dense layer over the pooled crop predicts the 68 points (clean
    crops at the FLL side), loss the mean squared point error, validated by the NME on
    clean crops."""
    on_fll = True
    default_steps = 3

    def cores(self, cfg):
        s = cfg.model.fll.input_size
        image = keras.Input((s, s, 3))
        points = keras.layers.Dense(136, name="probe_dense")(
            keras.layers.GlobalAveragePooling2D()(image))
        return {"model": keras.Model(image, points, name="probe")}

    def loss(self, cfg, parts):
        model = parts.model

        def compute_losses(batch):
            err = to_points(model(batch["image"], training=True)) - batch["landmarks"]
            return tf.reduce_mean(tf.square(err), axis=[1, 2]), {}
        return compute_losses

    def validation(self, ctx, parts, val):
        s, model = self.input_size(ctx.cfg), parts.model
        predict = inference_fn(lambda x: {"landmarks": to_points(model(x, training=False))}, s)
        return lambda _step: {"probe_nme": scoring.evaluate_landmarks(
            predict, val, [(0, 0)], self.validation_spec(ctx.cfg))["clean"]["mean_nme"]}


@pytest.fixture
def probe():
    """The stage "probe", registered for one test and removed after it."""
    register_task("probe")(ProbeTask)
    yield TASKS["probe"]
    unregister_task("probe")
    assert "probe" not in task_names()


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "300w"
    make_300w(root, n_per_folder=4, size=(64, 64))
    return root


def test_a_stage_registered_in_one_file_trains_checkpoints_saves_and_resumes(
        probe, data_root, tmp_path, capsys):
    cfg = write_yaml(tmp_path / "tiny.yaml", tiny(train={"checkpoint_every": 2,
                                                         "eval_every": 100}))
    out = tmp_path / "run"
    args = ["--stage", "probe", "--config", cfg, "--data", data_root, "--out", out,
            "--no-progress"]
    assert train_cli.main([str(a) for a in args]) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    d = out / "probe"
    # the task's default_steps (3: no train.steps entry), checkpoints at 2 and 3
    ckpts = sorted(p.name for p in (d / "checkpoints").glob("ckpt-*.index"))
    assert ckpts == ["ckpt-2.index", "ckpt-3.index"]
    reader = tf.train.load_checkpoint(str(d / "checkpoints" / "ckpt-3"))
    assert reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == 3
    # the task's validation ran at the last step, and train printed its figure
    lines = [json.loads(x) for x in (d / "metrics.json").read_text().splitlines()]
    assert [(r["stage"], r["step"]) for r in lines] == [("probe", 3)]
    assert 0 < lines[0]["probe_nme"] < 10
    assert f"probe_nme {lines[0]['probe_nme']:.4g}" in printed
    # its output: the file stage_outputs names, holding the weights of the checkpoint (the
    # checkpoint's object graph restores the task's core, "model"), and the run's config
    assert stage_outputs(out, "probe") == [d / "model.keras"]
    assert f"wrote {d / 'model.keras'}" in printed
    saved = load_model(d / "model.keras")
    core = probe.fresh_parts(config_from_dict(TINY)).cores["model"]
    tf.train.Checkpoint(model=core).read(str(d / "checkpoints" / "ckpt-3")).expect_partial()
    np.testing.assert_array_equal(saved.get_layer("probe").get_layer("probe_dense").kernel,
                                  core.get_layer("probe_dense").kernel)
    assert yaml.safe_load((d / "config.yaml").read_text())["name"] == "tiny"
    # resumed to 5 steps: the step counter continues from the checkpoint
    assert train_cli.main([str(a) for a in args] + ["--steps", "5", "--resume"]) == 0
    capsys.readouterr()
    lines = [json.loads(x) for x in (d / "metrics.json").read_text().splitlines()]
    assert [r["step"] for r in lines] == [3, 5]
    assert tf.train.load_checkpoint(str(d / "checkpoints" / "ckpt-5")).get_tensor(
        "step/.ATTRIBUTES/VARIABLE_VALUE") == 5


def test_every_stage_name_list_reads_the_registry(probe, tmp_path):
    cfg = config_from_dict(TINY)
    # train --stage accepts it, and its help lists it
    parser = build_parser()
    assert parser.parse_args(["--stage", "probe"]).stage == "probe"
    assert "probe" in parser.format_help()
    # train.steps accepts its name, and only registered names
    cfg.train.steps["probe"] = 7
    check_step_names(cfg.train)
    assert probe.steps(cfg) == 7 and probe.steps(cfg, override=2) == 2
    cfg.train.steps["nope"] = 7
    with pytest.raises(ConfigError, match=r"train.steps: unknown stages \['nope'\].*probe"):
        check_step_names(cfg.train, "tiny.yaml")
    # --stage runs it; the folder and outputs are the task's; --stage all is the recipe
    assert stages.stages_for("probe", "M") == ["probe"]
    assert stages.stages_for("all", "D") == ["dae", "fll", "joint"]
    with pytest.raises(ConfigError, match="choose one of fll, dae, experts, stc, mtc, joint, "
                                          "probe, all"):
        stages.stages_for("nope", "M")
    # --init-from looks for its sources where the task says
    src = tmp_path / "w" / "probe"
    src.mkdir(parents=True)
    probe.fresh_parts(cfg).model.save(src / "model.keras")
    target = probe.fresh_parts(cfg).model
    report = transfer.init_from(target, tmp_path / "w", stage="probe")
    assert report.copied_layers == report.total_layers == 1
    # bench times its train step with training's step
    assert "probe" in bench_models()
    r = train_speed.bench_train(cfg, "probe", "function", 2, steps=1, repeats=1, warmup=0)
    assert r["crop"] == cfg.model.fll.input_size and r["images_per_s"] > 0 and r["loss_finite"]


def test_registry_refuses_taken_and_invalid_names():
    with pytest.raises(ValueError, match="already registered"):
        register_task("fll")(ProbeTask)
    for bad in ("all", "two words", ""):
        with pytest.raises(ValueError, match="identifier"):
            register_task(bad)
    assert task_names()[:6] == ("fll", "dae", "experts", "stc", "mtc", "joint")


def _literal_name_lists(tree):
    """(line, names) of every tuple/list/set literal or dict key set holding three or more
    built-in stage names."""
    builtin = {"fll", "dae", "experts", "stc", "mtc", "joint"}
    for node in ast.walk(tree):
        items = (node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set))
                 else node.keys if isinstance(node, ast.Dict) else [])
        names = {e.value for e in items if isinstance(e, ast.Constant)} & builtin
        if len(names) >= 3:
            yield node.lineno, sorted(names)


def test_no_module_lists_the_stages_outside_the_tasks():
    """Stage names are listed only by the tasks themselves (training/tasks/, e.g. the joint
    stage's recipes) and as data in the config (train.steps of the paper). models/io.py's
    KINDS are kinds of model file told from the graph (experts are saved as "dae", joint as
    "fadenn"), not stages."""
    root = Path(fadenn_tf.__file__).parent
    allowed = ({root / "config.py", root / "models" / "io.py"}
               | set((root / "training" / "tasks").glob("*.py")))
    found = [f"{p.relative_to(root)}:{line} {names}" for p in sorted(root.rglob("*.py"))
             if p not in allowed
             for line, names in _literal_name_lists(ast.parse(p.read_text(encoding="utf-8")))]
    assert not found, found
