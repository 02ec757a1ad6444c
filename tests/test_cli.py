"""One set of conventions for every command: name as invoked, --version, help text on every
option, --no-progress, consistent flag names (old names still accepted), --help without
TensorFlow."""
import argparse
import importlib
import subprocess
import sys

import pytest

import fadenn_tf

COMMANDS = ["train", "evaluate", "predict", "track", "export", "bench", "synth", "degrade",
            "train_failure_detector"]


def parser(command, argv0=None, monkeypatch=None):
    if argv0 is not None:
        monkeypatch.setattr(sys, "argv", [argv0])
    mod = importlib.import_module(f"fadenn_tf.cli.{command}")
    build = getattr(mod, "build_parser", None) or getattr(mod, "_parser")
    return build()


def visible_options(p):
    return {s: a for a in p._actions if a.help != argparse.SUPPRESS for s in a.option_strings}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_has_help_and_version(command, capsys):
    p = parser(command)
    for action in p._actions:
        if action.help == argparse.SUPPRESS:
            continue
        assert action.help and action.help.strip(), f"{command}: {action.option_strings}"
    with pytest.raises(SystemExit) as done:
        p.parse_args(["--version"])
    assert done.value.code in (0, None)
    assert f"fadenn_tf {fadenn_tf.__version__}" in capsys.readouterr().out
    assert "--no-progress" in visible_options(p)     # every command: same progress options


@pytest.mark.parametrize("command", ["train", "predict", "train_failure_detector"])
def test_usage_names_the_program_as_invoked(command, monkeypatch):
    script = "fadenn-" + command.replace("_", "-")
    assert parser(command, f"/venv/bin/{script}", monkeypatch).format_usage() \
        .startswith(f"usage: {script} ")
    assert parser(command, f"/src/fadenn_tf/{command}.py", monkeypatch).format_usage() \
        .startswith(f"usage: python -m fadenn_tf.{command} ")


def test_flag_names_mean_one_thing_across_commands():
    opts = {c: visible_options(parser(c)) for c in COMMANDS}
    assert all("--out" in o for o in opts.values())
    assert all("--model" in opts[c] for c in ("evaluate", "predict", "track", "export"))
    assert not any("--threshold" in o for o in opts.values())
    assert [c for c in COMMANDS if "--boxes" in opts[c]] == ["predict"]
    assert "--models" not in opts["bench"] and "--variants" in opts["bench"]
    assert "--nme-threshold" in opts["evaluate"] and "--nme-threshold" in opts["track"]


def test_former_flag_names_still_work():
    t = parser("train")
    assert t.parse_args(["--stage", "fll", "--workdir", "w"]).workdir == \
        t.parse_args(["--stage", "fll", "--out", "w"]).workdir == "w"
    ev = parser("evaluate").parse_args(["--threshold", "0.1", "--boxes", "detector"])
    assert (ev.threshold, ev.boxes) == (0.1, "detector")
    tr = parser("track").parse_args(["--model", "m", "--threshold", "0.3",
                                     "--threshold-nme", "0.05"])
    assert (tr.failure_threshold, tr.nme_threshold) == (0.3, 0.05)
    new = parser("track").parse_args(["--model", "m", "--failure-threshold", "0.3",
                                      "--nme-threshold", "0.05"])
    assert (new.failure_threshold, new.nme_threshold) == (0.3, 0.05)
    assert parser("bench").parse_args(["--models", "M"]).variants == "M"
    ex = parser("export")
    assert ex.parse_args(["--model", "m", "--out", "o", "--version", "3"]).serving_version == 3
    assert ex.parse_args(["--model", "m", "--out", "o"]).serving_version is None


def test_help_and_version_do_not_load_tensorflow():
    code = ("import sys, importlib\n"
            f"for c in {COMMANDS!r}:\n"
            "    for flag in ('--help', '--version'):\n"
            "        try:\n"
            "            importlib.import_module('fadenn_tf.' + c).main([flag])\n"
            "        except SystemExit:\n"
            "            pass\n"
            "heavy = sorted(m for m in ('tensorflow', 'keras') if m in sys.modules)\n"
            "print('HEAVY', heavy)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "HEAVY []" in out


def test_python_m_fadenn_tf_lists_and_runs_the_commands(capsys):
    from fadenn_tf.__main__ import main
    assert main([]) == 0
    listing = capsys.readouterr().out
    for c in COMMANDS:      # one line per command, with its summary
        line = next(x for x in listing.splitlines() if x.startswith(f"  {c} "))
        assert len(line.split(maxsplit=1)) == 2, line
    assert main(["no-such-command"]) == 2
    assert "unknown command 'no-such-command'" in capsys.readouterr().err
    out = subprocess.run([sys.executable, "-m", "fadenn_tf", "train-failure-detector",
                          "--version"], capture_output=True, text=True, check=True).stdout
    assert f"fadenn_tf {fadenn_tf.__version__}" in out


def test_train_help_lists_every_shipped_config():
    from fadenn_tf.config import available_configs
    text = " ".join(parser("train").format_help().split())
    assert "real128" in available_configs()
    assert f"({', '.join(available_configs())})" in text


def test_config_flags_are_generated_from_the_config_section():
    import dataclasses
    from fadenn_tf.config import TrackConfig, load_config
    from fadenn_tf.utils.cli import config_flags, defaults_from_config
    p = parser("track")
    # every key of the track section has the option of the same dest, nothing by hand
    assert set(config_flags(p, TrackConfig)) == {f.name for f in dataclasses.fields(TrackConfig)}
    argv = ["v.avi", "--model", "m", "--nme-threshold", "0.1"]
    args = p.parse_args(argv)
    cfg = load_config("cpu", sets=["track.nme_threshold=0.2", "track.shot_cuts=false",
                                   "track.failure_threshold=0.4"])
    defaults_from_config(p, args, argv, cfg.track)
    assert (args.nme_threshold, args.shot_cuts, args.failure_threshold) == (0.1, False, 0.4)
    # a key whose option has another dest, with a conversion; keys without option left out
    flags = config_flags(p, TrackConfig, {"shot_cuts": ("no_overlay", lambda v: not v)})
    assert flags["shot_cuts"][0] == "no_overlay" and flags["shot_cuts"][1](False) is True
    assert set(config_flags(parser("synth"), TrackConfig)) == set()
    with pytest.raises(LookupError, match="no option 'no_such_dest'"):
        config_flags(p, TrackConfig, {"normalizer": "no_such_dest"})
    with pytest.raises(LookupError, match="no_such_key"):
        config_flags(p, TrackConfig, {"no_such_key": "out"})
