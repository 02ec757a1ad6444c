"""The export signatures declare noise_probs as [B, 5], also for an FLL wrapped as the
baseline (whose uniform probabilities have a dynamic shape inside the model)."""
import pytest

from fadenn_tf.deploy import signatures
from fadenn_tf.config import load_config
from fadenn_tf.models import build_fll, build_fll_baseline, build_variant


@pytest.mark.parametrize("kind", ["fll", "D"])
def test_noise_probs_has_five_classes_in_both_signatures(kind):
    cfg = load_config("demo").model
    model = (build_fll_baseline(cfg, build_fll(cfg.fll)) if kind == "fll"
             else build_variant(cfg, "D"))
    serve = signatures.serving_function(model).get_concrete_function()
    assert serve.structured_outputs["noise_probs"].shape.as_list() == [None, 5]
    fixed = signatures.serving_function(model, batch_size=2).get_concrete_function()
    assert fixed.structured_outputs["noise_probs"].shape.as_list() == [2, 5]
    from_bytes = signatures.bytes_function(model).get_concrete_function()
    assert from_bytes.structured_outputs["noise_probs"].shape.as_list() == [None, 5]
