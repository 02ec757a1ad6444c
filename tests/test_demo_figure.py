"""The demo's denoiser picture: drawn for a model with a denoiser, refused for one without."""
import importlib.util
from pathlib import Path

import pytest

from fadenn_tf.config import load_config
from fadenn_tf.data.synthetic import generate_dataset
from fadenn_tf.models import build_fll, build_variant
from fadenn_tf.models.io import save_model

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "demo_figure.py"


@pytest.fixture(scope="module")
def demo_figure():
    spec = importlib.util.spec_from_file_location("demo_figure", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = generate_dataset(tmp_path_factory.mktemp("d") / "syn", n_train=0, n_test=3,
                            n_videos=0, image_size=96)
    return root / "300w"


def test_picture_of_a_fadenn_model(demo_figure, data, tmp_path, capsys):
    cfg = load_config("demo").model
    model = save_model(build_variant(cfg, "D"), tmp_path / "d.keras")
    out = tmp_path / "fig.png"
    assert demo_figure.main(["--model", str(model), "--data", str(data), "--out", str(out),
                             "--faces", "2", "--conditions", "clean,blur-3"]) == 0
    assert out.stat().st_size > 10_000 and "wrote" in capsys.readouterr().out


def test_model_without_denoiser_is_refused(demo_figure, data, tmp_path, capsys):
    model = save_model(build_fll(load_config("demo").model.fll), tmp_path / "fll.keras")
    assert demo_figure.main(["--model", str(model), "--data", str(data),
                             "--out", str(tmp_path / "x.png")]) == 2
    assert "no denoiser" in capsys.readouterr().err and not (tmp_path / "x.png").exists()
