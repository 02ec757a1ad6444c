"""The FLL's Inception-ResNet-v1 backbone (FaceNet style) and the geometry of its maps.

Filter counts at width 1.0; every count is multiplied by cfg.width, rounded, minimum 8.
Every "conv" is Conv2D (no bias) + BatchNorm(cfg.bn_momentum, cfg.bn_epsilon) + ReLU;
residual up-projections are 1x1 Conv2D with bias, no BN, no activation.
  stem: conv 32 3x3 s2 valid, conv 32 3x3 valid, conv 64 3x3 same, maxpool 3x3 s2 valid,
        conv 80 1x1, conv 192 3x3 valid, conv 256 3x3 s2 valid
  blocks[0] x block35 (scale 0.17), reduction-A (k=192, l=192, m=256, n=384),
  blocks[1] x block17 (scale 0.10), reduction-B,
  blocks[2] x block8 (scale 0.20) + one block8 without activation (scale 1.0)
Padding: a "valid" layer whose input side is smaller than its kernel uses "same" instead
(so small inputs still build). Spatial sides: 128 -> 63, 61, 61, 30, 30, 28, 13 | A 6 | B 2
(all valid, as FaceNet); 64 -> 31, 29, 29, 14, 14, 12, 5 | A 2 | B 1 (B's stride-2 layers
fall back to "same"); fll_spatial_sizes() computes them.

Taps (for heads that read finer maps): "stem5" (the stem's conv 192, stride ~4), "block35"
(after the block35 repeats, ~8), "block17" (after the block17 repeats, ~16-21) and "block8"
(the final map). fll_feature_grids() gives where each map's cells sit in the input crop.
"""
import keras
from keras import layers

from fadenn_tf.config import FLLConfig
from fadenn_tf.models.layers import ScaledResidual

TAPS = ("stem5", "block35", "block17", "block8")
# The layers that change the grid, in order: (kernel, stride, padding); the tap that follows.
_GRID_LAYERS = (((3, 2, "valid"), None), ((3, 1, "valid"), None), ((3, 1, "same"), None),
                ((3, 2, "valid"), None), ((1, 1, "valid"), None), ((3, 1, "valid"), "stem5"),
                ((3, 2, "valid"), "block35"), ((3, 2, "valid"), "block17"),
                ((3, 2, "valid"), "block8"))


def _out_side(side, k, stride, padding):
    if padding == "valid" and side < k:
        padding = "same"
    if padding == "same":
        return -(-side // stride), padding
    return (side - k) // stride + 1, padding


def _grid_step(side, k, stride, padding):
    """(output side, input index of output cell 0's centre) of one layer (TF padding: the
    smaller half of a "same" padding goes before)."""
    out, padding = _out_side(side, k, stride, padding)
    before = max((out - 1) * stride + k - side, 0) // 2 if padding == "same" else 0
    return out, (k - 1) / 2.0 - before


def _walk_grids(input_size):
    """[(side, offset, step, tap or None)] after each grid-changing layer: cell i of that map
    is centred on input pixel offset + step * i (0-based pixel-centre coordinates)."""
    side, offset, step, out = input_size, 0.0, 1.0, []
    for (k, stride, pad), tap in _GRID_LAYERS:
        side, first = _grid_step(side, k, stride, pad)
        offset, step = offset + step * first, step * stride
        out.append((side, offset, step, tap))
    return out


def fll_spatial_sizes(input_size):
    """Spatial sides after each stem layer, reduction-A and reduction-B (the padding rule of
    this module): e.g. 128 -> [63, 61, 61, 30, 30, 28, 13, 6, 2]."""
    return [g[0] for g in _walk_grids(input_size)]


def fll_feature_grids(input_size):
    """{tap: (side, offset, step)} for TAPS: cell i of the tap's map is centred on input
    (crop) pixel offset + step * i, 0-based pixel-centre coordinates (both axes alike).
    E.g. 128 -> stem5 (28, 9, 4), block35 (13, 13, 8), block17 (6, 21, 16)."""
    return {tap: (side, offset, step) for side, offset, step, tap in _walk_grids(input_size)
            if tap}


class UnitBuilder:
    """Creates uniquely named conv/BN/ReLU units for one FLL graph."""

    def __init__(self, cfg: FLLConfig):
        self.cfg = cfg

    def w(self, n):
        return max(8, int(round(n * self.cfg.width)))

    def conv(self, x, filters, kernel, name, stride=1, padding="same", scaled=True):
        """conv (filters x width when `scaled`) + BN + ReLU."""
        k = kernel if isinstance(kernel, int) else max(kernel)
        _, padding = _out_side(x.shape[1], k, stride, padding)
        x = layers.Conv2D(self.w(filters) if scaled else filters, kernel, strides=stride,
                          padding=padding, use_bias=False, name=name)(x)
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


def build_fll_backbone(cfg: FLLConfig, name="backbone", taps=()):
    """Inception-ResNet-v1 backbone: [B,s,s,3] -> feature map [B,h,h,C] (C = 1792 at width 1).

    With `taps` (names from TAPS) the model outputs the list of those maps instead, in the
    order given; the layers and their names are the same either way, so weights transfer
    between the two forms."""
    unknown = set(taps) - set(TAPS)
    if unknown:
        raise ValueError(f"unknown backbone taps {sorted(unknown)} (known: {', '.join(TAPS)})")
    b, seen = UnitBuilder(cfg), {}
    image = keras.Input((cfg.input_size, cfg.input_size, 3), name="image")
    x = b.conv(image, 32, 3, "stem1", stride=2, padding="valid")
    x = b.conv(x, 32, 3, "stem2", padding="valid")
    x = b.conv(x, 64, 3, "stem3")
    x = b.pool(x, "stem_pool")
    x = b.conv(x, 80, 1, "stem4", padding="valid")
    x = seen["stem5"] = b.conv(x, 192, 3, "stem5", padding="valid")
    x = b.conv(x, 256, 3, "stem6", stride=2, padding="valid")
    for i in range(cfg.blocks[0]):
        x = b.block35(x, f"block35_{i + 1}")
    seen["block35"] = x
    x = b.reduction_a(x, "reduction_a")
    for i in range(cfg.blocks[1]):
        x = b.block17(x, f"block17_{i + 1}")
    seen["block17"] = x
    x = b.reduction_b(x, "reduction_b")
    for i in range(cfg.blocks[2]):
        x = b.block8(x, f"block8_{i + 1}")
    x = seen["block8"] = b.block8(x, "block8_final", scale=1.0, activation=None)
    return keras.Model(image, [seen[t] for t in taps] if taps else x, name=name)
