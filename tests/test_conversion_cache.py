"""A LiteRT conversion-cache entry that does not load is deleted, with a warning, and
rebuilt once; the rebuilt entry serves the next load."""
import numpy as np
import pytest

from fadenn_tf.inference.litert_load import load_litert

from test_predict import constant_shape_model, crop_shape


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_entry_is_rebuilt_once_with_a_warning(tmp_path, monkeypatch, damage):
    monkeypatch.setenv("FADENN_TF_CACHE_DIR", str(tmp_path / "cache"))
    model = constant_shape_model(tmp_path / "m.keras", crop_shape())
    first = load_litert(model)
    assert first.tflite_bytes is not None                     # converted
    (entry,) = (tmp_path / "cache" / "litert").iterdir()
    good = entry.read_bytes()
    entry.write_bytes(good[:100] if damage == "truncated" else b"not a flatbuffer" * 50)
    with pytest.warns(UserWarning, match="does not load .*; deleted, converting the model "
                                         "again"):
        second = load_litert(model)
    assert second.tflite_bytes is not None                    # converted again ...
    assert entry.read_bytes() == good                         # ... and cached again
    third = load_litert(model)
    assert third.tflite_bytes is None                         # served from the cache
    x = np.full((2, first.size, first.size, 3), 100.0, np.float32)
    np.testing.assert_allclose(third(x)["landmarks"], first(x)["landmarks"], atol=1e-4)
