"""Facial landmark localiser (FLL): Inception-ResNet-v1 (FaceNet style) + dropout + linear
regression head.

Input [B,s,s,3] in [-1,1]; output [B, 2*num_points] = pixel coordinates in the s x s crop,
laid out [x0..x67, y0..y67] (0-based, pixel centres; see to_points / to_flat).

Backbone (filter counts at width 1.0; every count is multiplied by cfg.width, rounded,
minimum 8). Every "conv" is Conv2D (no bias) + BatchNorm(cfg.bn_momentum, cfg.bn_epsilon) +
ReLU; residual up-projections are 1x1 Conv2D with bias, no BN, no activation.
  stem: conv 32 3x3 s2 valid, conv 32 3x3 valid, conv 64 3x3 same, maxpool 3x3 s2 valid,
        conv 80 1x1, conv 192 3x3 valid, conv 256 3x3 s2 valid
  blocks[0] x block35 (scale 0.17), reduction-A (k=192, l=192, m=256, n=384),
  blocks[1] x block17 (scale 0.10), reduction-B,
  blocks[2] x block8 (scale 0.20) + one block8 without activation (scale 1.0)
  head: GlobalAveragePooling -> Dropout(1 - dropout_keep) -> Dense(2*num_points) linear.
Padding: a "valid" layer whose input side is smaller than its kernel uses "same" instead
(so small inputs still build). Spatial sides: 128 -> 63, 61, 61, 30, 30, 28, 13 | A 6 | B 2
(all valid, as FaceNet); 64 -> 31, 29, 29, 14, 14, 12, 5 | A 2 | B 1 (B's stride-2 layers
fall back to "same"); fll_spatial_sizes() computes them.
"""
import numpy as np
import keras
from keras import layers, ops

from fadenn_tf.config import FLLConfig
from fadenn_tf.models.layers import ScaledResidual


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


def _out_side(side, k, stride, padding):
    if padding == "valid" and side < k:
        padding = "same"
    if padding == "same":
        return -(-side // stride), padding
    return (side - k) // stride + 1, padding


class _Builder:
    """Creates uniquely named conv/BN/ReLU units for one FLL graph."""

    def __init__(self, cfg: FLLConfig):
        self.cfg = cfg

    def w(self, n):
        return max(8, int(round(n * self.cfg.width)))

    def conv(self, x, filters, kernel, name, stride=1, padding="same"):
        k = kernel if isinstance(kernel, int) else max(kernel)
        _, padding = _out_side(x.shape[1], k, stride, padding)
        x = layers.Conv2D(self.w(filters), kernel, strides=stride, padding=padding,
                          use_bias=False, name=name)(x)
        x = layers.BatchNormalization(momentum=self.cfg.bn_momentum,
                                      epsilon=self.cfg.bn_epsilon, name=name + "_bn")(x)
        return layers.ReLU(name=name + "_relu")(x)

    def pool(self, x, name):
        _, padding = _out_side(x.shape[1], 3, 2, "valid")
        return layers.MaxPooling2D(3, strides=2, padding=padding, name=name)(x)

    def residual(self, x, branches, scale, name, activation="relu"):
        mixed = layers.Concatenate(name=name + "_concat")(branches)
        up = layers.Conv2D(x.shape[-1], 1, use_bias=True, name=name + "_up")(mixed)
        return ScaledResidual(scale, activation, name=name + "_res")([x, up])

    def block35(self, x, name, scale=0.17):
        b0 = self.conv(x, 32, 1, name + "_b0")
        b1 = self.conv(self.conv(x, 32, 1, name + "_b1a"), 32, 3, name + "_b1b")
        b2 = self.conv(x, 32, 1, name + "_b2a")
        b2 = self.conv(self.conv(b2, 32, 3, name + "_b2b"), 32, 3, name + "_b2c")
        return self.residual(x, [b0, b1, b2], scale, name)

    def block17(self, x, name, scale=0.10):
        b0 = self.conv(x, 128, 1, name + "_b0")
        b1 = self.conv(x, 128, 1, name + "_b1a")
        b1 = self.conv(self.conv(b1, 128, (1, 7), name + "_b1b"), 128, (7, 1), name + "_b1c")
        return self.residual(x, [b0, b1], scale, name)

    def block8(self, x, name, scale=0.20, activation="relu"):
        b0 = self.conv(x, 192, 1, name + "_b0")
        b1 = self.conv(x, 192, 1, name + "_b1a")
        b1 = self.conv(self.conv(b1, 192, (1, 3), name + "_b1b"), 192, (3, 1), name + "_b1c")
        return self.residual(x, [b0, b1], scale, name, activation)

    def reduction_a(self, x, name, k=192, l=192, m=256, n=384):
        b0 = self.conv(x, n, 3, name + "_b0", stride=2, padding="valid")
        b1 = self.conv(self.conv(x, k, 1, name + "_b1a"), l, 3, name + "_b1b")
        b1 = self.conv(b1, m, 3, name + "_b1c", stride=2, padding="valid")
        b2 = self.pool(x, name + "_pool")
        return layers.Concatenate(name=name + "_concat")([b0, b1, b2])

    def reduction_b(self, x, name):
        b0 = self.conv(self.conv(x, 256, 1, name + "_b0a"), 384, 3, name + "_b0b", 2, "valid")
        b1 = self.conv(self.conv(x, 256, 1, name + "_b1a"), 256, 3, name + "_b1b", 2, "valid")
        b2 = self.conv(self.conv(x, 256, 1, name + "_b2a"), 256, 3, name + "_b2b")
        b2 = self.conv(b2, 256, 3, name + "_b2c", 2, "valid")
        b3 = self.pool(x, name + "_pool")
        return layers.Concatenate(name=name + "_concat")([b0, b1, b2, b3])


def build_fll_backbone(cfg: FLLConfig, name="backbone"):
    """Inception-ResNet-v1 backbone: [B,s,s,3] -> feature map [B,h,h,C] (C = 1792 at width 1)."""
    b = _Builder(cfg)
    image = keras.Input((cfg.input_size, cfg.input_size, 3), name="image")
    x = b.conv(image, 32, 3, "stem1", stride=2, padding="valid")
    x = b.conv(x, 32, 3, "stem2", padding="valid")
    x = b.conv(x, 64, 3, "stem3")
    x = b.pool(x, "stem_pool")
    x = b.conv(x, 80, 1, "stem4", padding="valid")
    x = b.conv(x, 192, 3, "stem5", padding="valid")
    x = b.conv(x, 256, 3, "stem6", stride=2, padding="valid")
    for i in range(cfg.blocks[0]):
        x = b.block35(x, f"block35_{i + 1}")
    x = b.reduction_a(x, "reduction_a")
    for i in range(cfg.blocks[1]):
        x = b.block17(x, f"block17_{i + 1}")
    x = b.reduction_b(x, "reduction_b")
    for i in range(cfg.blocks[2]):
        x = b.block8(x, f"block8_{i + 1}")
    x = b.block8(x, "block8_final", scale=1.0, activation=None)
    return keras.Model(image, x, name=name)


def fll_spatial_sizes(input_size):
    """Spatial sides after each stem layer, reduction-A and reduction-B (the padding rule of
    this module): e.g. 128 -> [63, 61, 61, 30, 30, 28, 13, 6, 2]."""
    side, out = input_size, []
    for k, stride, pad in ((3, 2, "valid"), (3, 1, "valid"), (3, 1, "same"), (3, 2, "valid"),
                           (1, 1, "valid"), (3, 1, "valid"), (3, 2, "valid")):
        side, _ = _out_side(side, k, stride, pad)
        out.append(side)
    for _ in range(2):
        side, _ = _out_side(side, 3, 2, "valid")
        out.append(side)
    return out


def build_fll(cfg: FLLConfig, mean_shape=None, name="fll"):
    """FLL: image [B,s,s,3] in [-1,1] -> [B, 2*num_points] crop pixel coordinates
    [x0..x67, y0..y67].

    The head bias starts at the crop centre (s-1)/2, or at `mean_shape` ((num_points, 2)
    (x, y) crop pixels, e.g. the training set's mean shape) when given: the network then only
    learns offsets from it, which converges much faster. Nested part: layer "backbone".
    """
    s, n = cfg.input_size, cfg.num_points
    image = keras.Input((s, s, 3), name="image")
    x = build_fll_backbone(cfg)(image)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dropout(1.0 - cfg.dropout_keep, name="dropout")(x)
    # float32 even under a mixed policy: bf16 would round 0-127 px coordinates to 0.5 px
    head = layers.Dense(2 * n, name="landmarks", dtype="float32",
                        bias_initializer=keras.initializers.Constant((s - 1) / 2.0))
    model = keras.Model(image, head(x), name=name)
    if mean_shape is not None:
        mean_shape = np.asarray(mean_shape, dtype=np.float32)
        if mean_shape.shape != (n, 2):
            raise ValueError(f"mean_shape must be ({n}, 2), got {mean_shape.shape}")
        head.bias.assign(to_flat(mean_shape[None])[0])
    return model
