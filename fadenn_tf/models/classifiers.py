"""Noise classifiers over 5 classes (0 clean, 1 down-sampling, 2 blur, 3 gaussian noise,
4 colour scaling).

- head: latent [B,L] -> Dense head_hidden (linear, as the original) -> Dense 5 -> logits.
- STC (single-task): DAE encoder + head -> logits [B,5]; trained with cross-entropy.
- MTC (multi-task): full DAE (encoder + decoder) + head on the latent ->
  {"logits": [B,5], "reconstruction": [B,S,S,3] in [-1,1]}.
Nested parts are named "encoder", "decoder", "head", matching build_dae, so weights copy
across with `get_layer(name).set_weights(...)`.
"""
import keras
from keras import layers

from fadenn_tf.config import IIDConfig
from fadenn_tf.models.dae import build_decoder, build_encoder, decode


def build_noise_head(cfg: IIDConfig, name="head"):
    """latent [B, latent_dim] -> logits [B, num_classes]; no non-linearity between the denses."""
    latent = keras.Input((cfg.latent_dim,), name="latent")
    x = layers.Dense(cfg.head_hidden, name="hidden")(latent)
    logits = layers.Dense(cfg.num_classes, name="logits")(x)
    return keras.Model(latent, logits, name=name)


def build_stc(cfg: IIDConfig, name="stc"):
    """Single-task classifier: image [B,S,S,3] in [-1,1] -> logits [B,5]."""
    image = keras.Input((cfg.input_size, cfg.input_size, 3), name="image")
    latent = build_encoder(cfg)(image)[0]
    return keras.Model(image, build_noise_head(cfg)(latent), name=name)


def build_mtc(cfg: IIDConfig, name="mtc"):
    """Multi-task classifier: image [B,S,S,3] in [-1,1] ->
    {"logits": [B,5], "reconstruction": [B,S,S,3] in [-1,1]}."""
    image = keras.Input((cfg.input_size, cfg.input_size, 3), name="image")
    enc_out = build_encoder(cfg)(image)
    recon = decode(cfg, build_decoder(cfg), image, enc_out)
    logits = build_noise_head(cfg)(enc_out[0])
    return keras.Model(image, {"logits": logits, "reconstruction": recon}, name=name)


def logits_model(classifier, name="classifier"):
    """A model image -> logits [B,5] sharing the classifier's layers (weights are shared, not
    copied). For an MTC only the encoder + head path is kept (the decoder is not run)."""
    out = classifier.outputs
    if isinstance(classifier.output, dict):
        out = classifier.output["logits"]
    elif len(out) == 1:
        out = out[0]
    else:
        raise ValueError(f"{classifier.name}: expected a logits output or a dict with 'logits'")
    inputs = classifier.inputs[0] if len(classifier.inputs) == 1 else classifier.inputs
    return keras.Model(inputs, out, name=name)
