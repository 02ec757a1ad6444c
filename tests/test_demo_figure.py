"""The demo's denoiser picture: drawn for a model with a denoiser, refused for one without."""
import pytest

from fadenn_tf.config import load_config
from fadenn_tf.data.synthetic import SynthSpec, generate_dataset
from fadenn_tf.models import build_fll, build_variant
from fadenn_tf.models.io import save_model
from tests.fixtures import load_experiment


@pytest.fixture(scope="module")
def demo_figure():
    return load_experiment("demo_figure")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = generate_dataset(tmp_path_factory.mktemp("d") / "syn",
                            SynthSpec(n_train=0, n_test=3, n_videos=0, image_size=96))
    return root / "300w"


def test_picture_and_psnr_table_of_a_fadenn_model(demo_figure, data, tmp_path, capsys):
    """The demo config's denoisers are residual: a fresh one is the identity, so the printed
    PSNR of every noisy condition is unchanged (before == after)."""
    cfg = load_config("demo").model
    assert cfg.iid.residual
    model = save_model(build_variant(cfg, "D"), tmp_path / "d.keras")
    out = tmp_path / "fig.png"
    assert demo_figure.main(["--model", f"fresh D={model}", "--data", str(data), "--out",
                             str(out), "--faces", "2", "--conditions", "clean,blur-3",
                             "--reference-size", "64"]) == 0
    assert out.stat().st_size > 10_000
    text = capsys.readouterr().out
    assert "fresh D: denoiser PSNR" in text and "mean over 3 test faces" in text
    rows = [ln.split() for ln in text.splitlines() if ln.startswith("   ")]
    noisy = {r[0]: (float(r[1]), float(r[3])) for r in rows if r[0] not in ("clean", "mean")}
    assert len(noisy) == 12
    for name, (before, after) in noisy.items():
        assert after == pytest.approx(before, abs=0.01), name
    assert "up (by 0.01 dB or more) on 0 of 12 noisy conditions" in text


def test_model_without_denoiser_is_refused(demo_figure, data, tmp_path, capsys):
    model = save_model(build_fll(load_config("demo").model.fll), tmp_path / "fll.keras")
    assert demo_figure.main(["--model", str(model), "--data", str(data),
                             "--out", str(tmp_path / "x.png")]) == 2
    assert "no denoiser" in capsys.readouterr().err and not (tmp_path / "x.png").exists()
