"""The config drives every job: --set overrides typed and checked like the YAML keys, job
sections (eval, export, track, bench) as command defaults that flags override, retired keys."""
import pytest
import yaml

from fadenn_tf.config import (TRAINING_SECTIONS, ExperimentConfig, config_from_dict,
                              load_config, parse_sets)
from fadenn_tf.errors import ConfigError


def test_set_is_typed_and_merged_over_the_file():
    cfg = load_config("cpu", sets=["train.learning_rate=5e-4", "train.batch_size=16",
                                   "data.augment.flip=false", "eval.normalizer=box",
                                   "train.steps.fll=7"])
    assert cfg.train.learning_rate == 5e-4 and cfg.train.batch_size == 16
    assert cfg.data.augment.flip is False and cfg.eval.normalizer == "box"
    assert cfg.train.steps["fll"] == 7 and cfg.train.steps["dae"] == load_config("cpu").train.steps["dae"]


def test_a_flag_wins_over_set():
    cfg = load_config("cpu", {"train": {"batch_size": 4}}, sets=["train.batch_size=16"])
    assert cfg.train.batch_size == 4


@pytest.mark.parametrize("item, message", [
    ("train.learnin_rate=1", "train.learnin_rate: unknown key"),
    ("bench.nope=1", "bench.nope: unknown key"),
    ("train.batch_size=abc", "train.batch_size: expected int"),
    ("train.batch_size=1.5", "train.batch_size: expected int"),
    ("train.batch_size=0", "train.batch_size: must be >= 1"),
    ("eval.normalizer=eyes", "eval.normalizer"),
    ("trainbatch", "expected SECTION.KEY=VALUE"),
])
def test_set_errors_name_the_key(item, message):
    with pytest.raises(ConfigError, match=message) as err:
        load_config("cpu", sets=[item])
    assert "--set" in str(err.value)


def test_parse_sets_reads_yaml_values():
    assert parse_sets(["a.b=1", "a.c=1e3", "a.d=x", "e.f=[1, 2]"]) == \
        {"a": {"b": 1, "c": 1000.0, "d": "x"}, "e": {"f": [1, 2]}}


def test_job_sections_default_to_the_commands_defaults_and_are_not_training_config():
    cfg = load_config("cpu")
    assert cfg.eval.nme_threshold == 0.08 and cfg.export.repeats == 30
    assert cfg.track.shot_cuts is True and cfg.bench.repeats == 5
    assert set(cfg.to_dict(TRAINING_SECTIONS)) == {"name", *TRAINING_SECTIONS}
    assert load_config("paper").to_dict() == config_from_dict(
        {**load_config("paper").to_dict(TRAINING_SECTIONS)}).to_dict()


def test_retired_keys_of_older_workdirs_still_load():
    old = ExperimentConfig().to_dict(TRAINING_SECTIONS)
    old["data"].update(shuffle_buffer=2048, cache_decoded=True, train_split="train")
    cfg = config_from_dict(yaml.safe_load(yaml.safe_dump(old)), "old config.yaml")
    assert not hasattr(cfg.data, "shuffle_buffer") and cfg.to_dict(TRAINING_SECTIONS) == \
        ExperimentConfig().to_dict(TRAINING_SECTIONS)


def test_a_run_written_before_a_key_was_added_resumes_as_the_same_config():
    """Resume compares a workdir's config.yaml as this version would write it: a key added
    since (here iid.refine_convs, written by no earlier run) takes its default, so the run
    resumes; a changed value or unreadable text still differs."""
    from fadenn_tf.training.stages import _as_written_now
    now = yaml.safe_dump(load_config("real128").to_dict(TRAINING_SECTIONS), sort_keys=False)
    old = yaml.safe_load(now)
    del old["model"]["iid"]["refine_convs"]
    old["data"]["shuffle_buffer"] = 2048                      # and a retired key
    assert _as_written_now(yaml.safe_dump(old, sort_keys=False)) == now
    old["model"]["iid"]["space_to_depth"] = 1
    assert _as_written_now(yaml.safe_dump(old, sort_keys=False)) != now
    assert _as_written_now("model: [") == "model: ["


def test_commands_take_their_defaults_from_the_config(tmp_path):
    from fadenn_tf.cli import evaluate, export, track
    from fadenn_tf.utils.cli import defaults_from_config
    p = evaluate.build_parser()
    argv = ["--nme-threshold", "0.1", "--set", "eval.nme_threshold=0.2", "--set",
            "eval.normalizer=box"]
    args = p.parse_args(argv)
    cfg = load_config(args.config, sets=args.sets)
    defaults_from_config(p, args, argv, cfg.eval, {"nme_threshold": "threshold",
                                                   "normalizer": "normalizer"})
    assert (args.threshold, args.normalizer) == (0.1, "box")      # the flag wins over --set
    assert "--set" in {s for a in export.build_parser()._actions for s in a.option_strings}
    assert "--config" in {s for a in track._parser()._actions for s in a.option_strings}
