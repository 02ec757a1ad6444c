"""Shared test set-up: quiet TensorFlow, deterministic seeds, small helpers."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def conversion_cache_dir(tmp_path_factory):
    """One TFLite conversion cache (deploy.conversion_cache) for the whole test run, set
    before any other fixture: a model file converted by one test (or a command a test runs
    in a subprocess) is read back by the next instead of converted again, and nothing lands
    in the user's ~/.cache. Entries are keyed by the model file's bytes, so tests never see
    another model's conversion. Tests of the cache itself set FADENN_TF_CACHE_DIR to a
    folder of their own (monkeypatch restores this one after them)."""
    with pytest.MonkeyPatch.context() as mp:
        root = tmp_path_factory.mktemp("litert-cache")
        mp.setenv("FADENN_TF_CACHE_DIR", str(root))
        yield root
