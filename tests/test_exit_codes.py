"""predict and track share one exit-status rule, stated in --help: 0 = at least one face
found, 1 = no face found in any input, 2 = bad arguments, model or file."""
import json

import numpy as np
import pytest

from fadenn_tf.cli import predict, track

from fixtures import write_image, write_video
from test_predict import constant_shape_model, crop_shape


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return constant_shape_model(tmp_path_factory.mktemp("m") / "m.keras", crop_shape())


@pytest.mark.parametrize("command", [predict, track])
def test_rule_is_in_help(command, capsys):
    with pytest.raises(SystemExit):
        (getattr(command, "build_parser", None) or command._parser)().parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "0 when at least one face was found; 1 when the command ran but found no face" \
        in text


def test_predict_no_face_is_1_a_face_is_0(model, tmp_path, capsys):
    blank = write_image(tmp_path / "blank.png", np.full((64, 64, 3), 30, np.uint8))
    face = write_image(tmp_path / "face.png", np.full((64, 64, 3), 90, np.uint8))
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"face.png": [16, 16, 48, 48]}))
    out = tmp_path / "out"
    assert predict.main([str(blank), "--model", str(model), "--out", str(out)]) == 1
    assert "blank.png: no face" in capsys.readouterr().err
    assert predict.main([str(blank), str(face), "--model", str(model), "--out", str(out),
                         "--boxes", str(boxes), "--no-overlay"]) == 0
    assert predict.main([str(blank), "--model", str(tmp_path / "nomodel"),
                         "--out", str(out)]) == 2


def test_track_no_face_is_1(model, tmp_path, capsys):
    video = write_video(tmp_path / "blank.avi", [np.full((64, 64, 3), 30, np.uint8)] * 3)
    assert track.main([str(video), "--model", str(model), "--out", str(tmp_path / "t"),
                       "--no-overlay", "--no-progress"]) == 1
    assert "no face in 3 frames" in capsys.readouterr().err
    assert track.main([str(video), "--model", str(tmp_path / "nomodel"),
                       "--out", str(tmp_path / "t2")]) == 2
