"""Facial landmark localiser (FLL): Inception-ResNet-v1 (FaceNet style) backbone
(models.fll_backbone) + one of two heads (`fll.head`):
  regression (the paper's): GlobalAveragePooling -> Dropout(1 - dropout_keep) -> Dense(2N)
  heatmap (beyond the paper): heatmaps on a stride-4/8 grid read out by soft-argmax
    (models.heatmap_head).

Input [B,s,s,3] in [-1,1]; output [B, 2*num_points] = pixel coordinates in the s x s crop,
laid out [x0..x67, y0..y67] (0-based, pixel centres; see to_points / to_flat), whatever
the head.
"""
import numpy as np
import keras
from keras import layers, ops

from fadenn_tf.config import FLLConfig
from fadenn_tf.models.fll_backbone import build_fll_backbone, fll_spatial_sizes  # noqa: F401
from fadenn_tf.models.heatmap_head import build_heatmap_fll


def to_points(flat):
    """[B, 2N] laid out [x0..x_{N-1}, y0..y_{N-1}] -> [B, N, 2] (x, y).

    Works on numpy arrays (returns numpy) and on tensors (keras ops)."""
    if isinstance(flat, np.ndarray):
        b = flat.shape[0]
        return np.transpose(flat.reshape(b, 2, -1), (0, 2, 1))
    return ops.transpose(ops.reshape(flat, (ops.shape(flat)[0], 2, -1)), (0, 2, 1))


def to_flat(points):
    """[B, N, 2] (x, y) -> [B, 2N] laid out [x0..x_{N-1}, y0..y_{N-1}]; inverse of to_points.

    Works on numpy arrays (returns numpy) and on tensors (keras ops)."""
    if isinstance(points, np.ndarray):
        return np.transpose(points, (0, 2, 1)).reshape(points.shape[0], -1)
    return ops.reshape(ops.transpose(points, (0, 2, 1)), (ops.shape(points)[0], -1))


def build_fll(cfg: FLLConfig, mean_shape=None, name="fll"):
    """FLL: image [B,s,s,3] in [-1,1] -> [B, 2*num_points] crop pixel coordinates
    [x0..x67, y0..y67], with the head named by cfg.head.

    The head starts at the crop centre (s-1)/2, or at `mean_shape` ((num_points, 2) (x, y)
    crop pixels, e.g. the training set's mean shape) when given: the network then only
    learns offsets from it, which converges much faster. Regression: the Dense bias holds
    it; heatmap: the soft-argmax prior (models.heatmap_head). Nested part: layer "backbone".
    """
    s, n = cfg.input_size, cfg.num_points
    if mean_shape is not None:
        mean_shape = np.asarray(mean_shape, dtype=np.float32)
        if mean_shape.shape != (n, 2):
            raise ValueError(f"mean_shape must be ({n}, 2), got {mean_shape.shape}")
    if cfg.head == "heatmap":
        return build_heatmap_fll(cfg, mean_shape, name)
    image = keras.Input((s, s, 3), name="image")
    x = build_fll_backbone(cfg)(image)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dropout(1.0 - cfg.dropout_keep, name="dropout")(x)
    # float32 even under a mixed policy: bf16 would round 0-127 px coordinates to 0.5 px
    head = layers.Dense(2 * n, name="landmarks", dtype="float32",
                        bias_initializer=keras.initializers.Constant((s - 1) / 2.0))
    model = keras.Model(image, head(x), name=name)
    if mean_shape is not None:
        head.bias.assign(to_flat(mean_shape[None])[0])
    return model
