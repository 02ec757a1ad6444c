"""Shared test set-up: quiet TensorFlow, deterministic seeds, small helpers."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _private_conversion_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own empty TFLite conversion cache (deploy.conversion_cache), so
    no test reads what another wrote and nothing lands in the user's ~/.cache."""
    monkeypatch.setenv("FADENN_TF_CACHE_DIR", str(tmp_path_factory.mktemp("litert-cache")))
