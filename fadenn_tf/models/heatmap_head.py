"""Heatmap localisation head of the FLL (beyond the paper; `fll.head: heatmap`).

Same backbone as the paper's FLL (fll_backbone), same output: [B, 2*num_points] crop
pixel coordinates [x0..x67, y0..y67]. Instead of global pooling + Dense, the head keeps the
spatial maps (integral regression, Sun et al. 2018):

  taps  block8 (final), block17, block35 (+ stem5 at heatmap_stride 4)
  each: conv 1x1 heatmap_channels + BN + ReLU at its own side
        -> GridResample onto the G x G heatmap grid (G = s / heatmap_stride; cell j centred
           on crop pixel (j + 0.5) * stride - 0.5, the tap's own cell centres from
           fll_feature_grids, so the valid padding's shifts are undone exactly)
  sum -> 2 x (conv 3x3 heatmap_channels + BN + ReLU) -> conv 1x1 num_points (float32)
  -> SoftArgmax2D: softmax over the G*G cells of each map (+ a trainable prior map),
     expected cell centre -> (x, y) in crop pixels (float32 under any mixed policy).

At 128 px and stride 4 the grid is 32 x 32 (stride 8: 16 x 16); outputs lie in
[stride/2 - 0.5, s - stride/2 - 0.5]. With a mean shape the prior starts as a Gaussian
(sigma max(s/16, stride) px) around each mean point, and the logits conv starts near zero,
so a fresh model predicts the mean shape, as the regression head's bias does (to 0.01 px at
128 px for points 30 px or more inside the crop; nearer the border the cut-off Gaussian
pulls the start inwards, by 0.16 px at 20 px).
"""
import keras
import numpy as np
from keras import layers

from fadenn_tf.config import FLLConfig
from fadenn_tf.models.fll_backbone import UnitBuilder, build_fll_backbone, fll_feature_grids
from fadenn_tf.models.layers import GridResample, SoftArgmax2D

CONVS = 2                    # 3x3 convs on the fused grid


def heatmap_taps(stride):
    """Backbone taps the head fuses, coarse to fine."""
    return ("block8", "block17", "block35") + (("stem5",) if stride == 4 else ())


def mean_shape_prior(mean_shape, side, stride, sigma):
    """[side, side, N] log-Gaussian logits (sigma in crop pixels) centred on each (x, y) of
    `mean_shape` (N, 2) crop pixels, on the cells of SoftArgmax2D(stride)."""
    c = (np.arange(side) + 0.5) * stride - 0.5
    dy = (c[:, None, None] - mean_shape[None, None, :, 1]) ** 2
    dx = (c[None, :, None] - mean_shape[None, None, :, 0]) ** 2
    return (-(dx + dy) / (2.0 * sigma ** 2)).astype(np.float32)


def build_heatmap_fll(cfg: FLLConfig, mean_shape=None, name="fll"):
    """Heatmap FLL: image [B,s,s,3] in [-1,1] -> [B, 2*num_points] crop pixel coordinates.
    `mean_shape` ((num_points, 2) crop pixels, checked by the caller) starts the prior there.
    Nested part: layer "backbone" (the same layer names as the regression FLL's)."""
    s, n, stride, ch = cfg.input_size, cfg.num_points, cfg.heatmap_stride, cfg.heatmap_channels
    side, first = s // stride, 0.5 * stride - 0.5
    taps, grids = heatmap_taps(stride), fll_feature_grids(s)
    image = keras.Input((s, s, 3), name="image")
    maps = build_fll_backbone(cfg, taps=taps)(image)
    b = UnitBuilder(cfg)
    fused = []
    for tap, fmap in zip(taps, maps):
        _, offset, step = grids[tap]
        x = b.conv(fmap, ch, 1, f"heatmap_lateral_{tap}", scaled=False)
        fused.append(GridResample(offset, step, side, first, stride,
                                  name=f"heatmap_align_{tap}")(x))
    x = layers.Add(name="heatmap_fuse")(fused)
    for i in range(CONVS):
        x = b.conv(x, ch, 3, f"heatmap_conv{i + 1}", scaled=False)
    logits = layers.Conv2D(n, 1, name="heatmap_logits", dtype="float32",
                           kernel_initializer=keras.initializers.RandomNormal(stddev=0.01))(x)
    readout = SoftArgmax2D(stride, name="landmarks")
    model = keras.Model(image, readout(logits), name=name)
    if mean_shape is not None:
        readout.prior.assign(mean_shape_prior(np.asarray(mean_shape, np.float32), side,
                                              stride, max(s / 16.0, stride)))
    return model
