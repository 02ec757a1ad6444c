"""The models' pixel interface, the one place that knows the networks' internal range.

Callers give every model RGB images as float32 in 0..255 (PIXEL_RANGE). Inside the graph the
`ToUnitRange` layer maps them to the [-1, 1] the networks work in (x / 127.5 - 1), and images
a model returns ("denoised", "reconstruction", a DAE's output) go back to 0..255 through
`ToPixelRange`. Sub-models nested in a bigger model (DAE, experts, classifier, FLL) work in
[-1, 1] and never see pixels.

    core = build_fll(cfg.fll)              # [B,s,s,3] in [-1, 1] -> [B,136]
    model = pixel_model(core)              # [B,s,s,3] in 0..255 -> [B,136] (same weights)
    core_of(model) is core                 # what an end-to-end model nests
"""
import keras

from fadenn_tf.models.layers import PACKAGE

PIXEL_RANGE = (0.0, 255.0)
_HALF = (PIXEL_RANGE[1] - PIXEL_RANGE[0]) / 2.0
INPUT_LAYER = "input_scaling"


def to_unit(x):
    """Pixels 0..255 -> network range [-1, 1] (tensors or arrays)."""
    return x / _HALF - 1.0


def to_pixels(x):
    """Network range [-1, 1] -> pixels 0..255 (tensors or arrays); no clipping."""
    return (x + 1.0) * _HALF


@keras.saving.register_keras_serializable(package=PACKAGE)
class ToUnitRange(keras.layers.Layer):
    """Input preprocessing: [B,H,W,3] float pixels 0..255 -> [-1, 1] (x / 127.5 - 1)."""

    def call(self, x):
        return to_unit(x)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package=PACKAGE)
class ToPixelRange(keras.layers.Layer):
    """Output postprocessing of images: [-1, 1] -> 0..255 ((x + 1) * 127.5, not clipped)."""

    def call(self, x):
        return to_pixels(x)

    def compute_output_shape(self, input_shape):
        return input_shape


def is_pixel_model(model):
    """True when `model` takes 0..255 pixels (its graph starts with ToUnitRange); False for
    a core working in [-1, 1] (every model saved before the pixel interface)."""
    return any(isinstance(layer, ToUnitRange) for layer in model.layers)


def pixel_model(core, name=None):
    """A model taking 0..255 pixels around `core` (a model working in [-1, 1]): input ->
    ToUnitRange -> core; every output with the input's shape (an image) goes through
    ToPixelRange, other outputs (landmarks, logits) pass unchanged. Shares core's weights.
    Raises ValueError if `core` already takes pixels (that would scale twice)."""
    if is_pixel_model(core):
        raise ValueError(f"model {core.name!r} already takes 0..255 pixels; wrapping it "
                         "again would scale its input twice")
    shape = tuple(core.inputs[0].shape[1:])
    image = keras.Input(shape, name="image")
    out = core(ToUnitRange(name=INPUT_LAYER)(image))

    def post(t, key):
        if tuple(t.shape[1:]) == shape:
            return ToPixelRange(name=f"{key}_pixels")(t)
        return t
    out = ({k: post(v, k) for k, v in out.items()} if isinstance(out, dict)
           else post(out, "output"))
    return keras.Model(image, out, name=name or core.name)


def core_of(model):
    """The [-1, 1] model inside a pixel_model wrapper; `model` itself when it is not a
    wrapper (a core, or an end-to-end model that scales inside its own graph)."""
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    rest = [layer for layer in model.layers if not isinstance(
        layer, (keras.Model, keras.layers.InputLayer, ToUnitRange, ToPixelRange))]
    if len(nested) == 1 and not rest and is_pixel_model(model):
        return nested[0]
    return model
