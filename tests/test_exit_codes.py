"""One exit-status table for every command (fadenn_tf.utils.cli.EXIT_CODES): 0 done; 1 ran
but found nothing; 2 bad arguments or unusable inputs; 3 an I/O failure; 130 interrupted.
Stated in each command's --help and in the README."""
import json
from pathlib import Path

import numpy as np
import pytest

from fadenn_tf.cli import (bench, degrade, evaluate, export, predict, synth, track, train,
                           train_failure_detector)
from fadenn_tf.errors import DataError, WriteError
from fadenn_tf.utils.cli import EXIT_CODES, command, exit_status

from fixtures import make_folder, write_image, write_video
from test_predict import constant_shape_model, crop_shape

COMMANDS = [predict, track, evaluate, degrade, export, train, train_failure_detector, bench,
            synth]
README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return constant_shape_model(tmp_path_factory.mktemp("m") / "m.keras", crop_shape())


@pytest.fixture
def blocked(tmp_path):
    """An --out that cannot be created: its parent is a regular file."""
    (tmp_path / "file").write_text("x")
    return tmp_path / "file" / "out"


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_table_is_in_every_help(cmd, capsys):
    with pytest.raises(SystemExit):
        (getattr(cmd, "build_parser", None) or cmd._parser)().parse_args(["--help"])
    assert " ".join(EXIT_CODES.split()) in " ".join(capsys.readouterr().out.split())


def test_table_is_in_the_readme():
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Exit status"):]
    for code, meaning in [(0, "done"), (1, "found nothing"), (2, "bad arguments"),
                          (3, "full disk"), (130, "interrupted")]:
        assert any(line.startswith(f"| {code} |") and meaning in line
                   for line in section.splitlines()), code


def test_exit_status_of_each_kind_of_error():
    assert exit_status(KeyboardInterrupt()) == 130
    assert exit_status(WriteError("x.png", "File too large")) == 3
    assert exit_status(OSError(28, "No space left on device")) == 3
    assert exit_status(DataError("x.png", "unreadable")) == 2
    assert exit_status(FileNotFoundError(2, "No such file or directory")) == 2
    assert exit_status(ValueError("bad")) == 2
    assert exit_status(ZeroDivisionError()) is None       # a bug keeps its traceback

    @command
    def interrupted(argv=None):
        raise KeyboardInterrupt
    assert interrupted() == 130


def test_predict(model, tmp_path, capsys, blocked):
    blank = write_image(tmp_path / "blank.png", np.full((64, 64, 3), 30, np.uint8))
    face = write_image(tmp_path / "face.png", np.full((64, 64, 3), 90, np.uint8))
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"face.png": [16, 16, 48, 48]}))
    out = tmp_path / "out"
    assert predict.main([str(blank), "--model", str(model), "--out", str(out)]) == 1
    assert "blank.png: no face" in capsys.readouterr().err
    assert predict.main([str(blank), str(face), "--model", str(model), "--out", str(out),
                         "--boxes", str(boxes), "--no-overlay", "--overwrite"]) == 0
    # unusable inputs: 2, and nothing written
    (tmp_path / "empty").mkdir()
    for bad, why in [([str(tmp_path / "nope.png")], "nope.png: file or folder not found"),
                     ([str(tmp_path / "empty")], "no images"),
                     ([str(blank), "--model", str(tmp_path / "nomodel")], "nomodel")]:
        argv = bad + (["--model", str(model)] if "--model" not in bad else [])
        assert predict.main(argv + ["--out", str(tmp_path / "o2")]) == 2
        assert why in capsys.readouterr().err
        assert not (tmp_path / "o2").exists()
    assert predict.main([str(face), "--model", str(model), "--out", str(blocked)]) == 3
    assert "could not write it (Not a directory)" in capsys.readouterr().err


def test_track(model, tmp_path, capsys, blocked):
    video = write_video(tmp_path / "blank.avi", [np.full((64, 64, 3), 30, np.uint8)] * 3)
    assert track.main([str(video), "--model", str(model), "--out", str(tmp_path / "t"),
                       "--no-overlay", "--no-progress"]) == 1
    assert "no face in 3 frames" in capsys.readouterr().err
    assert track.main([str(tmp_path / "none.avi"), "--model", str(model),
                       "--out", str(tmp_path / "t2")]) == 2
    assert "none.avi: video not found" in capsys.readouterr().err
    assert not (tmp_path / "t2").exists()
    assert track.main([str(video), "--model", str(tmp_path / "nomodel"),
                       "--out", str(tmp_path / "t3")]) == 2
    assert track.main([str(video), "--model", str(model), "--out", str(blocked)]) == 3


def test_evaluate_degrade_export_train_bad_inputs_and_unwritable_outputs(
        model, tmp_path, capsys, blocked):
    missing = str(tmp_path / "no-data")
    assert evaluate.main(["--model", str(model), "--data", missing,
                          "--out", str(tmp_path / "e")]) == 2
    assert degrade.main(["--data", missing, "--out", str(tmp_path / "d")]) == 2
    assert export.main(["--model", str(tmp_path / "nomodel"), "--out",
                        str(tmp_path / "x")]) == 2
    assert export.main(["--model", str(model), "--out", str(tmp_path / "x"),
                        "--tflite", "float64"]) == 2
    assert train.main(["--stage", "fll", "--set", "train.no_such_key=1", "--out",
                       str(tmp_path / "w")]) == 2
    assert "no_such_key" in capsys.readouterr().err
    assert not any((tmp_path / n).exists() for n in ("e", "d", "x", "w"))
    data = tmp_path / "faces"
    make_folder(data, n=2, subfolders=("",), size=(48, 48))
    assert evaluate.main(["--model", str(model), "--data", str(data), "--out",
                          str(blocked)]) == 3
    assert degrade.main(["--data", str(data), "--out", str(blocked)]) == 3
    assert export.main(["--model", str(model), "--out", str(blocked)]) == 3
    err = capsys.readouterr().err
    assert err.count("could not write it (Not a directory)") == 3, err


def test_train_failure_detector_bench_synth_bad_inputs_and_unwritable_outputs(
        tmp_path, capsys, blocked):
    fd_out = tmp_path / "fd.npz"
    assert train_failure_detector.main(["--data", str(tmp_path / "no-data"),
                                        "--out", str(fd_out)]) == 2
    assert "no-data" in capsys.readouterr().err
    data = tmp_path / "faces"
    make_folder(data, n=6, subfolders=("",), size=(64, 64))
    assert train_failure_detector.main(["--data", str(data), "--split", "all", "--holdout",
                                        "1.5", "--out", str(fd_out)]) == 2
    assert "--holdout must be in (0, 1), got 1.5" in capsys.readouterr().err
    # an unwritable --out fails before training, not after it
    assert train_failure_detector.main(["--data", str(data), "--split", "all", "--out",
                                        str(blocked / "fd.npz"), "--no-progress"]) == 3
    assert "could not write it (Not a directory)" in capsys.readouterr().err
    assert not fd_out.exists()

    assert bench.main(["--sections", "nope", "--out", str(tmp_path / "b")]) == 2
    assert "--sections: unknown ['nope']" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("{not json")
    for f, why in [(tmp_path / "none.json", "none.json: file not found"),
                   (tmp_path / "bad.json", "bad.json: not a bench.json file")]:
        assert bench.main(["--merge", str(f), "--out", str(tmp_path / "b")]) == 2
        assert why in capsys.readouterr().err
    assert bench.main(["--sections", "peak", "--out", str(blocked), "--no-progress"]) == 3
    err = capsys.readouterr().err
    assert "could not write it (Not a directory)" in err and "peak" not in err  # nothing ran

    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    assert synth.main(["--out", str(tmp_path / "full"), "--train", "0", "--test", "0",
                       "--videos", "1", "--frames", "2"]) == 2
    assert "already exists and is not an empty folder" in capsys.readouterr().err
    assert synth.main(["--out", str(tmp_path / "s"), "--videos", "99"]) == 2
    assert synth.main(["--out", str(blocked), "--train", "0", "--test", "0", "--videos", "1",
                       "--frames", "2"]) == 3
    assert "could not write it (Not a directory)" in capsys.readouterr().err
    assert not any((tmp_path / n).exists() for n in ("b", "s"))
