"""The package is usable when installed from a wheel: named configs are package data, and the
wheel carries them, the licence and the metadata."""
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from importlib import resources
from pathlib import Path

import pytest

from fadenn_tf.config import available_configs, load_config, resolve_config_path
from fadenn_tf.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
NAMED = {"cpu", "paper", "real300w", "demo"}


def test_named_configs_are_package_resources():
    shipped = {e.name for e in resources.files("fadenn_tf.configs").iterdir()}
    assert {f"{n}.yaml" for n in NAMED} <= shipped
    assert NAMED <= set(available_configs())
    for name in NAMED:
        assert load_config(name).name == name
        path = resolve_config_path(name)
        assert path.read_text(encoding="utf-8") == \
            (resources.files("fadenn_tf.configs") / f"{name}.yaml").read_text(encoding="utf-8")


def test_named_configs_do_not_depend_on_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_config("paper").model.fll.input_size == 128


def test_unknown_config_name_lists_the_shipped_ones():
    with pytest.raises(ConfigError) as err:
        load_config("no-such-config")
    msg = str(err.value)
    assert "no-such-config" in msg and all(n in msg for n in NAMED)


def test_wheel_ships_configs_licence_and_metadata(tmp_path):
    """Build the wheel as `pip install .` would and look inside it: configs, the licence and
    NOTICE, the UltraFace detector files with their MIT licence, and no hard dlib need."""
    pytest.importorskip("setuptools", reason="builds offline with the venv's setuptools")
    scratch_existed = (ROOT / "build").exists()
    try:
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                        "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
                       check=True, capture_output=True)
    finally:
        if not scratch_existed:
            shutil.rmtree(ROOT / "build", ignore_errors=True)   # setuptools' scratch folder
    (wheel,) = tmp_path.glob("fadenn_tf-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(z.read(meta_name).decode("utf-8"))
        shipped = {n: z.getinfo(n).file_size for n in names}
    assert {f"fadenn_tf/configs/{n}.yaml" for n in NAMED} <= set(names)
    for folder, first in (("fadenn-m", "routed.json"), ("fll", "model.tflite")):
        for f in (first, "shipped.json"):   # the LiteRT copies fadenn_tf.load runs
            assert f"fadenn_tf/pretrained/{folder}/litert-int8/{f}" in names
    assert any(n.endswith("LICENSE") and ".dist-info/" in n for n in names)
    assert any(n.endswith("NOTICE") and ".dist-info/" in n for n in names)
    for name in ("ultraface-rfb-320.tflite", "ultraface-slim-320.tflite"):
        assert shipped.get(f"fadenn_tf/detect/models/{name}", 0) > 1_000_000, name
    assert "fadenn_tf/detect/models/LICENSE-ultraface.txt" in shipped
    requires = meta.get_all("Requires-Dist")
    assert all("extra ==" in r for r in requires if r.startswith("dlib")), requires
    assert meta["License"] == "Apache-2.0"
    assert meta["Author"] and meta.get_all("Project-URL")
