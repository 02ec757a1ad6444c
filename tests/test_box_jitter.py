"""Training box jitter by name (data.augment.box_jitter): the config accepts it, and the
sampled boxes have the spread each name promises."""
import numpy as np
import pytest
import tensorflow as tf

from fadenn_tf.config import load_config
from fadenn_tf.data.crop import jitter_box, jitter_boxes_tf
from fadenn_tf.errors import ConfigError

BOX = [40.0, 60.0, 140.0, 160.0]   # 100 x 100


def _sample(kind, n=4000):
    boxes = tf.constant([BOX] * n)
    return jitter_boxes_tf(boxes, tf.constant([3, 4]), kind).numpy().astype(np.float64)


@pytest.mark.parametrize("value,kind", [("true", "paper"), ("paper", "paper"),
                                        ("detector", "detector"), ("none", ""),
                                        ("false", "")])
def test_config_names_the_jitter(value, kind):
    cfg = load_config("real128", sets=[f"data.augment.box_jitter={value}"])
    assert cfg.data.augment.jitter_kind() == kind


def test_unknown_jitter_is_a_config_error_naming_the_key():
    with pytest.raises(ConfigError, match="data.augment.box_jitter.*'wide'"):
        load_config("real128", sets=["data.augment.box_jitter=wide"])


def test_detector_jitter_moves_every_edge_within_a_tenth_both_ways():
    moves = (_sample("detector") - BOX) / 100.0
    assert np.all(np.abs(moves) <= 0.1 + 1e-6)
    # symmetric: the mean move of each edge is near 0 (std of a U(-.1,.1) mean over 4000: .0009)
    assert np.all(np.abs(moves.mean(axis=0)) < 0.005)
    assert np.all(moves.min(axis=0) < -0.09) and np.all(moves.max(axis=0) > 0.09)


def test_paper_jitter_keeps_the_field_notes_ranges_and_matches_the_numpy_version():
    moves = (_sample("paper") - BOX) / 100.0
    assert np.all(moves[:, :3] >= -0.25 - 1e-6) and np.all(moves[:, :3] <= 0.25 + 1e-6)
    assert np.all(moves[:, 3] >= 0.05 - 1e-6) and np.all(moves[:, 3] <= 0.25 + 1e-6)
    rng = np.random.default_rng(0)
    np_moves = np.stack([(jitter_box(BOX, rng) - BOX) / 100.0 for _ in range(4000)])
    np.testing.assert_allclose(moves.mean(axis=0), np_moves.mean(axis=0), atol=0.01)


def test_detector_jitter_is_narrower_than_the_papers():
    def centre_shift(b):
        c = (b[:, :2] + b[:, 2:]) / 2 - [90.0, 110.0]
        return np.median(np.hypot(c[:, 0], c[:, 1]))
    assert centre_shift(_sample("detector")) < 0.5 * centre_shift(_sample("paper"))
