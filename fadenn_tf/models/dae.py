"""Denoising auto-encoder (DAE) of the internal image denoiser, with ADDITIVE skips.

Paper configuration (IIDConfig defaults), S = 224:
  encoder: conv 3->3 3x3 + LeakyReLU at S (skip e0: S x S x 3), then per filter count f in
           (32, 48, 64, 72, 108): Conv2D f 3x3 same no-bias -> MaxPool 2 -> LeakyReLU(0.2)
           -> skips e1..e4 at 112, 56, 28, 14 and the deepest map at 7 -> Flatten (5292)
           -> Dense 512 latent (linear).
  decoder: Dense 512 -> 5292 -> reshape 7x7x108; per filter count f in (72, 64, 48, 32, 3):
           conv f 3x3 -> ReLU -> nearest x2 (UpsampleNearest) -> add the encoder map of that
           resolution (e4 at 14, e3 at 28, e2 at 56, e1 at 112, e0 at 224), so each add feeds
           the next conv; final conv 3->3 3x3 + tanh.
The paper's stride-1 'same' transposed convs are built as Conv2D (the same function class:
a flipped, channel-transposed kernel; same parameter count), and ReLU comes before the
upsampling (identical values): both keep the whole DAE inside one XNNPACK partition in
float32 and int8 TFLite (docs/models.md, docs/performance.md).
Channel counts match at every add: decoder filters are reversed(filters[:-1]) + (c0,), c0 =
full_res_channels (3 in the paper: the only full-resolution path is a 3-channel map).
Beyond the paper (IIDConfig.space_to_depth = b > 1, FFDNet's trick): the input is pixel-
unshuffled to [S/b,S/b,3b^2] first, every map above then has side S/b (e0 included: the
"full-resolution" skip is at S/b), and the final conv gives 3b^2 channels that a pixel
shuffle turns back into [S,S,3]. Same widths, about 1/b^2 of the full-resolution compute.
IIDConfig.refine_convs = r (beyond the paper, default 0) adds r conv 3x3 + ReLU layers of
full_res_channels after the last add, before the final conv: without them the final conv is
the only layer that sees e0, so the output is linear in e0 (a per-pixel gain such as colour
scaling can only be learnt at the next coarser side).
Beyond the paper (IIDConfig.residual, used by the real128 recipe): the final conv is linear
and zero-initialised and the output is clip(input + correction, -1, 1), so a fresh DAE is the
identity and training learns a correction instead of re-synthesising the whole crop.
The encoder and decoder are nested Keras models ("encoder", "decoder") so their weights can be
copied between the DAE, STC, MTC and the experts (`model.get_layer("encoder")`).
"""
import keras
from keras import layers

from fadenn_tf.config import IIDConfig
from fadenn_tf.models.layers import AddClipped, DepthToSpace, SpaceToDepth, UpsampleNearest


def decoder_filters(cfg: IIDConfig):
    """Decoder stage widths: reversed(filters[:-1]) + (full_res_channels,) -> (72, 64, 48, 32,
    3) for the paper."""
    return tuple(reversed(tuple(cfg.filters)[:-1])) + (int(cfg.full_res_channels),)


def build_encoder(cfg: IIDConfig, name="encoder"):
    """Encoder model: image [B,S,S,3] in [-1,1] -> [latent [B,L], e0, e1, ..., e_{n-1}] where
    e_i is the encoder map at resolution S / (b * 2**i), b = cfg.space_to_depth, with channels
    (full_res_channels, filters[0], ..., filters[n-2]) (the skips the decoder adds)."""
    s, filters, b = cfg.input_size, tuple(cfg.filters), int(cfg.space_to_depth)
    image = keras.Input((s, s, 3), name="image")
    x = SpaceToDepth(b, name="unshuffle")(image) if b > 1 else image
    x = layers.Conv2D(int(cfg.full_res_channels), 3, padding="same", name="conv_in")(x)
    x = layers.LeakyReLU(cfg.leaky_slope, name="conv_in_act")(x)
    skips = [x]
    for i, f in enumerate(filters):
        x = layers.Conv2D(f, 3, padding="same", use_bias=False, name=f"conv{i + 1}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i + 1}")(x)
        x = layers.LeakyReLU(cfg.leaky_slope, name=f"act{i + 1}")(x)
        skips.append(x)
    latent = layers.Dense(cfg.latent_dim, name="latent")(layers.Flatten(name="flatten")(x))
    return keras.Model(image, [latent] + skips[:-1], name=name)


def build_decoder(cfg: IIDConfig, name="decoder"):
    """Decoder model: [latent [B,L], e0, ..., e_{n-1}] (the encoder's outputs) -> image
    [B,S,S,3] in [-1,1] (tanh), or with cfg.residual a correction [B,S,S,3] (linear, zero at
    initialisation) that `decode` adds to the input image. With b = cfg.space_to_depth > 1
    the maps run at side S/b and a pixel shuffle makes the [B,S,S,3] output."""
    b = int(cfg.space_to_depth)
    s, filters = cfg.input_size // b, tuple(cfg.filters)
    n = len(filters)
    bottom = s // 2 ** n
    latent = keras.Input((cfg.latent_dim,), name="latent")
    skip_channels = (int(cfg.full_res_channels),) + filters[:-1]
    skips = [keras.Input((s // 2 ** i, s // 2 ** i, c), name=f"skip{i}")
             for i, c in enumerate(skip_channels)]
    x = layers.Dense(bottom * bottom * filters[-1], name="expand")(latent)
    x = layers.Reshape((bottom, bottom, filters[-1]), name="reshape")(x)
    for j, f in enumerate(decoder_filters(cfg)):
        x = layers.Conv2D(f, 3, padding="same", name=f"deconv{j + 1}")(x)
        x = layers.ReLU(name=f"relu{j + 1}")(x)
        x = UpsampleNearest(2, name=f"up{j + 1}")(x)
        x = layers.Add(name=f"skip_add{j + 1}")([x, skips[n - 1 - j]])
    for r in range(int(cfg.refine_convs)):   # per-pixel non-linear mixing of e0 and decoder
        x = layers.Conv2D(int(cfg.full_res_channels), 3, padding="same", name=f"refine{r + 1}")(x)
        x = layers.ReLU(name=f"refine_relu{r + 1}")(x)
    # float32 even under a mixed policy: the image output feeds L2 losses and the FLL
    if cfg.residual:
        out = layers.Conv2D(3 * b * b, 3, padding="same", name="deconv_out", dtype="float32",
                            kernel_initializer="zeros")(x)
    else:
        out = layers.Conv2D(3 * b * b, 3, padding="same", activation="tanh", name="deconv_out",
                            dtype="float32")(x)
    if b > 1:
        out = DepthToSpace(b, name="shuffle", dtype="float32")(out)
    return keras.Model([latent] + skips, out, name=name)


def decode(cfg: IIDConfig, decoder, image, enc_out):
    """The auto-encoder's image output [B,S,S,3] in [-1,1] from the decoder's output: the
    decoder's image itself (paper), or clip(image + correction, -1, 1) with cfg.residual."""
    out = decoder(enc_out)
    if cfg.residual:
        out = AddClipped(name="add_input")([image, out])
    return out


def build_dae(cfg: IIDConfig, name="dae"):
    """DAE: image [B,S,S,3] in [-1,1] -> denoised image [B,S,S,3] in [-1,1] (tanh).

    Nested parts: layer "encoder" (see build_encoder) and layer "decoder" (build_decoder).
    """
    image = keras.Input((cfg.input_size, cfg.input_size, 3), name="image")
    enc_out = build_encoder(cfg)(image)
    return keras.Model(image, decode(cfg, build_decoder(cfg), image, enc_out), name=name)
