"""Written files and folders follow the user's umask (not mkdtemp's private 0700)."""
import os
import stat
from pathlib import Path

import pytest

from fadenn_tf.utils.atomic import atomic_path, current_umask, write_text_atomic


@pytest.fixture(params=[0o022, 0o027])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_current_umask_reads_without_changing_it(umask):
    assert current_umask() == umask
    assert current_umask() == umask


def test_atomic_folder_and_files_follow_the_umask(tmp_path, umask):
    final = tmp_path / "exported" / "model"
    with atomic_path(final, is_dir=True) as tmp:
        (Path(tmp) / "variables").mkdir()
        (Path(tmp) / "saved_model.pb").write_bytes(b"x")
    write_text_atomic(tmp_path / "exported" / "export.json", "{}")
    assert _mode(final) == 0o777 & ~umask
    assert _mode(final / "variables") == 0o777 & ~umask
    assert _mode(final / "saved_model.pb") == 0o666 & ~umask
    assert _mode(tmp_path / "exported" / "export.json") == 0o666 & ~umask
    assert [p.name for p in (tmp_path / "exported").iterdir() if p.name.startswith(".")] == []


def test_synthetic_dataset_folder_is_readable_by_others(tmp_path, umask):
    from fadenn_tf.data.synthetic import SynthSpec, generate_dataset
    out = generate_dataset(tmp_path / "synthetic", SynthSpec(n_train=3, n_test=0, n_videos=0,
                                                             image_size=48))
    for p in [out, *out.rglob("*")]:
        want = (0o777 if p.is_dir() else 0o666) & ~umask
        assert _mode(p) == want, p
