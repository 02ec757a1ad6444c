"""Small custom Keras layers used by the FADeNN models.

Each is registered under the package name "fadenn_tf", so `keras.models.load_model` finds
them without `custom_objects` once `fadenn_tf.models` has been imported. All of them use
only element-wise, select, reshape, transpose, softmax and constant-matrix-product ops, which
map to TFLite builtin ops.
"""
import keras
import numpy as np
import tensorflow as tf
from keras import ops

PACKAGE = "fadenn_tf"


@keras.saving.register_keras_serializable(package=PACKAGE)
class ScaledResidual(keras.layers.Layer):
    """Inception-ResNet residual: act(x + scale * r). Inputs [x, r] of the same shape.

    `activation` is "relu" or None (the last block8 has none).
    """

    def __init__(self, scale, activation="relu", **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)
        self.activation = activation
        self._act = keras.activations.get(activation)

    def call(self, inputs):
        x, r = inputs
        return self._act(x + ops.cast(self.scale, x.dtype) * r)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "activation": self.activation}


@keras.saving.register_keras_serializable(package=PACKAGE)
class SelectByClass(keras.layers.Layer):
    """Per-sample selection among candidates by an integer class.

    Inputs: [cls, cand_0, ..., cand_{n-1}], cls [B] int in 0..n-1, each cand [B, ...] of the
    same shape. Output [B, ...]: row b is cand_{cls[b]}[b], copied bit-exactly (a chain of
    `where` selects, no arithmetic on the values). A class outside 0..n-1 selects cand_0.
    """

    def call(self, inputs):
        cls, cands = inputs[0], inputs[1:]
        cls = ops.cast(cls, "int32")
        out = cands[0]
        rank = len(out.shape)
        mask_shape = (-1,) + (1,) * (rank - 1)
        for k in range(1, len(cands)):
            mask = ops.reshape(ops.equal(cls, k), mask_shape)
            out = ops.where(mask, cands[k], out)
        return out

    def compute_output_shape(self, input_shape):
        return input_shape[1]


@keras.saving.register_keras_serializable(package=PACKAGE)
class CoordAffine(keras.layers.Layer):
    """Element-wise affine map of coordinates: y = x * scale + offset (any shape).

    Used to map FLL crop pixels (side s) to IID crop pixels (side S) with the half-pixel-centre
    convention u_S = (u_s + 0.5) * S / s - 0.5, i.e. scale = S/s, offset = 0.5 * (S/s - 1).
    """

    def __init__(self, scale, offset, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)
        self.offset = float(offset)

    def call(self, x):
        return x * ops.cast(self.scale, x.dtype) + ops.cast(self.offset, x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}


@keras.saving.register_keras_serializable(package=PACKAGE)
class UniformProbs(keras.layers.Layer):
    """Constant uniform class probabilities [B, num_classes] (each 1/num_classes) for models
    that have no noise classifier (FLL baseline, FADeNN-D); the input only gives B."""

    def __init__(self, num_classes, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)

    def call(self, x):
        # From the batch size only (x * 0 would turn inf/NaN pixels into NaN); the static
        # shape stays [B, num_classes], so signatures and TFLite see 5 classes.
        return ops.full((ops.shape(x)[0], self.num_classes), 1.0 / self.num_classes,
                        dtype="float32")

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ArgMaxClass(keras.layers.Layer):
    """logits [B, C] -> class index [B] int32 (argmax; ties pick the lowest index).

    Uses tf.argmax directly: keras.ops.argmax adds a BitwiseAnd (its -0.0 handling) that is
    not a TFLite builtin op."""

    def call(self, logits):
        return tf.argmax(logits, axis=-1, output_type=tf.int32)

    def compute_output_shape(self, input_shape):
        return input_shape[:-1]

    def compute_output_spec(self, logits):
        return keras.KerasTensor(logits.shape[:-1], dtype="int32")


@keras.saving.register_keras_serializable(package=PACKAGE)
class ResizeBilinear(keras.layers.Layer):
    """Bilinear resize [B,H,W,C] -> [B,size,size,C], half-pixel centres, no antialiasing
    (maps to the TFLite builtin RESIZE_BILINEAR; antialias would need ScaleAndTranslate).

    Not keras.layers.Resizing: that preprocessing layer's call(training=True) default leaks
    training=True into the call context of a functional model called without `training`, so
    the BatchNorm and Dropout layers after it would run in training mode at inference.
    """

    def __init__(self, size, **kwargs):
        super().__init__(**kwargs)
        self.size = int(size)

    def call(self, x):
        return tf.image.resize(x, (self.size, self.size), method="bilinear", antialias=False)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size, self.size, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "size": self.size}


@keras.saving.register_keras_serializable(package=PACKAGE)
class UpsampleNearest(keras.layers.Layer):
    """Nearest-neighbour upsampling [B,H,W,C] -> [B,factor*H,factor*W,C]: every pixel repeated
    factor x factor times (bit-identical to keras.layers.UpSampling2D(factor, "nearest")).

    Built from concat-with-itself + reshape (width, then height): TFLite CONCATENATION and
    RESHAPE, which XNNPACK runs in float32 and int8. UpSampling2D lowers to EXPAND_DIMS/TILE
    chains and tf.image.resize(nearest) to RESIZE_NEAREST_NEIGHBOR; LiteRT 2.3's XNNPACK takes
    neither, so both split the delegate (docs/models.md). Needs static H, W and C.
    """

    def __init__(self, factor=2, **kwargs):
        super().__init__(**kwargs)
        self.factor = int(factor)

    def call(self, x):
        h, w, c = int(x.shape[1]), int(x.shape[2]), int(x.shape[3])
        k = self.factor
        x = tf.reshape(tf.concat([x] * k, axis=-1), (-1, h, k * w, c))
        return tf.reshape(tf.concat([x] * k, axis=2), (-1, k * h, k * w, c))

    def compute_output_shape(self, input_shape):
        h, w = input_shape[1], input_shape[2]
        return (input_shape[0], None if h is None else self.factor * h,
                None if w is None else self.factor * w, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


@keras.saving.register_keras_serializable(package=PACKAGE)
class AddClipped(keras.layers.Layer):
    """Residual image output: [image, correction] (same shape, [-1, 1] scale) ->
    clip(image + correction, -1, 1). Float32 (MAXIMUM/MINIMUM or RELU_N1_TO_1 in TFLite)."""

    def call(self, inputs):
        image, correction = inputs
        image = ops.cast(image, correction.dtype)
        return ops.clip(image + correction, -1.0, 1.0)

    def compute_output_shape(self, input_shape):
        return input_shape[0]



class _PixelBlock(keras.layers.Layer):
    """Base of SpaceToDepth / DepthToSpace: holds the block side b (an int >= 1)."""

    def __init__(self, block, **kwargs):
        super().__init__(**kwargs)
        self.block = int(block)

    def get_config(self):
        return {**super().get_config(), "block": self.block}

    def _shape(self, input_shape, side, channels):
        h, w, c = input_shape[1], input_shape[2], input_shape[3]
        return (input_shape[0], None if h is None else side(h), None if w is None else side(w),
                None if c is None else channels(c))


@keras.saving.register_keras_serializable(package=PACKAGE)
class SpaceToDepth(_PixelBlock):
    """Pixel unshuffle [B,H,W,C] -> [B,H/b,W/b,b*b*C]: each b x b block of pixels becomes one
    pixel's channels (TFLite SPACE_TO_DEPTH, which XNNPACK runs). H and W divisible by b."""

    def call(self, x):
        return tf.nn.space_to_depth(x, self.block)

    def compute_output_shape(self, input_shape):
        b = self.block
        return self._shape(input_shape, lambda n: n // b, lambda c: c * b * b)


@keras.saving.register_keras_serializable(package=PACKAGE)
class DepthToSpace(_PixelBlock):
    """Pixel shuffle [B,H,W,b*b*C] -> [B,b*H,b*W,C], the inverse of SpaceToDepth (TFLite
    DEPTH_TO_SPACE, which XNNPACK runs)."""

    def call(self, x):
        return tf.nn.depth_to_space(x, self.block)

    def compute_output_shape(self, input_shape):
        b = self.block
        return self._shape(input_shape, lambda n: n * b, lambda c: c // (b * b))


def _interp_matrix(src_size, src_offset, src_step, dst_size, dst_offset, dst_step):
    """[dst_size, src_size] linear-interpolation weights along one axis: row j samples the
    source grid (cell i at src_offset + src_step * i) at dst_offset + dst_step * j, clamped to
    the first / last source cell."""
    u = (dst_offset + dst_step * np.arange(dst_size) - src_offset) / src_step
    u = np.clip(u, 0.0, src_size - 1.0)
    i0 = np.minimum(np.floor(u).astype(int), max(src_size - 2, 0))
    frac = u - i0
    m = np.zeros((dst_size, src_size))
    rows = np.arange(dst_size)
    np.add.at(m, (rows, i0), 1.0 - frac)
    np.add.at(m, (rows, np.minimum(i0 + 1, src_size - 1)), frac)
    return m.astype("float32")


@keras.saving.register_keras_serializable(package=PACKAGE)
class GridResample(keras.layers.Layer):
    """Bilinear resampling of a square map between two grids given in the same (crop-pixel)
    coordinates: [B,n,n,C], cell i centred at src_offset + src_step * i (both axes) ->
    [B,m,m,C] (m = dst_size), cell j at dst_offset + dst_step * j; points outside the source
    grid take its edge cells. Unlike a plain resize, the two grids stay exactly aligned
    whatever the valid padding shifted. Two constant matrix products (TFLite TRANSPOSE,
    RESHAPE, FULLY_CONNECTED / BATCH_MATMUL: builtins)."""

    def __init__(self, src_offset, src_step, dst_size, dst_offset, dst_step, **kwargs):
        super().__init__(**kwargs)
        self.src_offset, self.src_step = float(src_offset), float(src_step)
        self.dst_size = int(dst_size)
        self.dst_offset, self.dst_step = float(dst_offset), float(dst_step)

    def call(self, x):
        n, c, m = int(x.shape[1]), int(x.shape[3]), self.dst_size
        w = tf.constant(_interp_matrix(n, self.src_offset, self.src_step, m,
                                       self.dst_offset, self.dst_step).T)   # [n, m]
        w = tf.cast(w, x.dtype)
        x = tf.reshape(tf.transpose(x, (0, 2, 3, 1)), (-1, n))              # rows last
        x = tf.reshape(tf.matmul(x, w), (-1, n, c, m))                      # [B,n(w),C,m(h)]
        x = tf.reshape(tf.transpose(x, (0, 3, 2, 1)), (-1, n))              # columns last
        x = tf.reshape(tf.matmul(x, w), (-1, m, c, m))                      # [B,m(h),C,m(w)]
        return tf.transpose(x, (0, 1, 3, 2))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.dst_size, self.dst_size, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "src_offset": self.src_offset,
                "src_step": self.src_step, "dst_size": self.dst_size,
                "dst_offset": self.dst_offset, "dst_step": self.dst_step}


@keras.saving.register_keras_serializable(package=PACKAGE)
class SoftArgmax2D(keras.layers.Layer):
    """Integral (soft-argmax) readout of N heatmaps: logits [B,G,G,N] -> [B,2N] laid out
    [x0..x_{N-1}, y0..y_{N-1}] in crop pixels, each the expectation of the cell centres
    under softmax(logits + prior) over the G x G cells. Cell (row r, col c) is centred on
    crop pixel (x, y) = ((c + 0.5) * stride - 0.5, (r + 0.5) * stride - 0.5), the crop's
    0-based pixel-centre convention, so outputs lie in [0.5 * stride - 0.5,
    (G - 0.5) * stride - 0.5]. `prior` [G,G,N] is a trainable logit offset per landmark
    (zero: a uniform start at the crop centre; build_fll puts the mean shape in it).
    Always float32 (the input is cast), so the softmax and the sums keep their precision
    under a mixed policy. TFLite: TRANSPOSE, RESHAPE, SOFTMAX, FULLY_CONNECTED."""

    def __init__(self, stride, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.stride = float(stride)

    def build(self, input_shape):
        g, n = int(input_shape[1]), int(input_shape[3])
        self.prior = self.add_weight(shape=(g, g, n), initializer="zeros", name="prior",
                                     dtype="float32")

    def cell_centres(self, side):
        """(x, y) crop-pixel centres of the side x side cells, each [side*side] row-major."""
        c = (np.arange(side) + 0.5) * self.stride - 0.5
        ys, xs = np.meshgrid(c, c, indexing="ij")
        return xs.reshape(-1).astype("float32"), ys.reshape(-1).astype("float32")

    def call(self, logits):
        g, n = int(logits.shape[1]), int(logits.shape[3])
        z = tf.cast(logits, tf.float32) + tf.cast(self.prior, tf.float32)
        z = tf.reshape(tf.transpose(z, (0, 3, 1, 2)), (-1, g * g))          # [B*N, G*G]
        p = tf.nn.softmax(z, axis=-1)
        xs, ys = self.cell_centres(g)
        xy = tf.matmul(p, tf.constant(np.stack([xs, ys], axis=1)))          # [B*N, 2]
        return tf.reshape(tf.transpose(tf.reshape(xy, (-1, n, 2)), (0, 2, 1)), (-1, 2 * n))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 2 * input_shape[3])

    def get_config(self):
        return {**super().get_config(), "stride": self.stride}
