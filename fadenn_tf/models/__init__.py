"""FADeNN models: DAE, noise classifiers (STC, MTC), expert bank, FLL, FADeNN-D/S/M.

Every model a caller runs or loads takes float32 RGB pixels in 0..255 and scales them inside
its graph (models.pixels); the parts nested in it work in [-1, 1]. Importing this package
registers the custom layers (package "fadenn_tf"), so
`keras.models.load_model(path)` needs no custom_objects. See docs/models.md.
"""
from fadenn_tf.models import layers  # noqa: F401  (registers the custom layers)
from fadenn_tf.models.classifiers import build_mtc, build_noise_head, build_stc, logits_model
from fadenn_tf.models.dae import build_dae, build_decoder, build_encoder, decoder_filters
from fadenn_tf.models.experts import NUM_EXPERTS, build_expert_bank
from fadenn_tf.models.fadenn import (ROUTED_PARTS, VARIANTS, build_fadenn, build_fll_baseline,
                                     build_variant, normalize_variant, routed_parts)
from fadenn_tf.models.fll import (build_fll, build_fll_backbone, fll_spatial_sizes, to_flat,
                                  to_points)
from fadenn_tf.models.io import (FORMAT_VERSION, LegacyModelWarning, describe, load_model,
                                 load_model_and_metadata, read_metadata, restore_checkpoint,
                                 save_checkpoint, save_model, upgrade)
from fadenn_tf.models.pixels import (PIXEL_RANGE, ToPixelRange, ToUnitRange, core_of,
                                     is_pixel_model, pixel_model)

__all__ = [
    "build_dae", "build_encoder", "build_decoder", "decoder_filters",
    "build_noise_head", "build_stc", "build_mtc", "logits_model",
    "NUM_EXPERTS", "build_expert_bank",
    "build_fll", "build_fll_backbone", "fll_spatial_sizes", "to_points", "to_flat",
    "VARIANTS", "build_fadenn", "build_fll_baseline", "build_variant", "normalize_variant",
    "ROUTED_PARTS", "routed_parts",
    "save_model", "load_model", "save_checkpoint", "restore_checkpoint",
    "FORMAT_VERSION", "LegacyModelWarning", "describe", "load_model_and_metadata",
    "read_metadata", "upgrade",
    "PIXEL_RANGE", "ToUnitRange", "ToPixelRange", "pixel_model", "core_of", "is_pixel_model",
]
