"""End-to-end models: FLL baseline and FADeNN-D/S/M, all with the same interface.

Input: "image" [B,S,S,3] float32 RGB pixels in 0..255 at the IID size S
(model_cfg.iid.input_size). Every model built here is pixel_model(core) (models.pixels): the
core is the graph below, working in [-1, 1]; core_of(model) returns it.
Outputs (a dict, the same keys for every variant):
  "landmarks"   [B,68,2] (x, y) 0-based pixel coordinates in the INPUT (S x S) crop. The FLL
                predicts in its s x s crop; coordinates map back with the half-pixel-centre
                convention u_S = (u_s + 0.5) * S / s - 0.5.
  "noise_probs" [B,5] softmax of the noise classifier's logits (S, M). The baseline and
                FADeNN-D have no classifier: they output a constant uniform 0.2 (never NaN).
  "denoised"    [B,S,S,3] in 0..255: the IID output mapped back to pixels (the input itself
                for the baseline, to float rounding).
Pipeline: image -> IID -> bilinear resize S -> s (half-pixel centres, antialias OFF: it maps
to the TFLite builtin RESIZE_BILINEAR, while antialias needs ScaleAndTranslate, not a builtin;
layers.ResizeBilinear, not keras.layers.Resizing, which would put BatchNorm/Dropout after it
into training mode when the model is called without `training`)
-> FLL -> [B,136] -> [B,68,2] -> rescale to S.
IID per variant: D one general DAE; S the STC picks the class, then the expert bank; M the
MTC's logits (encoder + head only; its decoder is not run) pick the class, then the experts.
Sub-models are nested layers of the core named "dae", "classifier", "experts", "fll", so a
training stage can set `core_of(model).get_layer(name).trainable` per part and reuse earlier
stages' weights. The core keeps the layer structure models had before the pixel interface,
so checkpoints of the core written then still restore.
"""
import keras
from keras import layers

from fadenn_tf.config import ModelConfig
from fadenn_tf.models.classifiers import build_mtc, build_stc, logits_model
from fadenn_tf.models.dae import build_dae
from fadenn_tf.models.experts import NUM_EXPERTS, build_expert_bank
from fadenn_tf.models.fll import build_fll
from fadenn_tf.models.layers import ArgMaxClass, CoordAffine, ResizeBilinear, UniformProbs
from fadenn_tf.models.pixels import (INPUT_LAYER, ToPixelRange, ToUnitRange, core_of,
                                     is_pixel_model, pixel_model)

VARIANTS = ("fll", "D", "S", "M")


def normalize_variant(variant):
    """'fll'/'baseline' -> 'fll'; 'd'/'s'/'m' (any case) -> 'D'/'S'/'M'."""
    v = str(variant).strip()
    if v.lower() in ("fll", "baseline"):
        return "fll"
    if v.upper() in ("D", "S", "M"):
        return v.upper()
    raise ValueError(f"unknown variant {variant!r}: expected one of {', '.join(VARIANTS)}")


def _part(model, what):
    """The [-1, 1] core of a part (a saved stage model takes pixels: unwrap it)."""
    core = core_of(model)
    if is_pixel_model(core):
        raise ValueError(f"{what} {model.name!r} takes 0..255 pixels and is not a "
                         "pixel_model wrapper: a part must work in [-1, 1]")
    return core


def _check_input(model, size, what):
    shape = tuple(model.inputs[0].shape)
    if shape[1:] != (size, size, 3):
        raise ValueError(f"{what} {model.name!r} takes {shape[1:]}, expected ({size}, {size}, 3)")


def _landmark_tail(fll, iid_image):
    """IID-size image [B,S,S,3] in [-1, 1] -> resize to the FLL's side s -> FLL ->
    landmarks [B,n,2] in IID crop pixels (S and s are read from the tensors' shapes)."""
    big, small = int(iid_image.shape[1]), int(fll.inputs[0].shape[1])
    x = iid_image
    if big != small:
        x = ResizeBilinear(small, name="resize_to_fll")(x)
    flat = fll(x)
    n = int(fll.outputs[0].shape[-1]) // 2
    pts = layers.Permute((2, 1), name="to_points")(layers.Reshape((2, n), name="split_xy")(flat))
    ratio = big / small
    return CoordAffine(ratio, 0.5 * (ratio - 1.0), name="to_input_pixels")(pts)


def _outputs(landmarks, probs, denoised):
    return {"landmarks": landmarks, "noise_probs": probs, "denoised": denoised}


def build_fll_baseline(model_cfg: ModelConfig, fll, name="fll_baseline"):
    """Stand-alone FLL with the FADeNN interface (see the module docstring). `fll` works in
    [-1, 1] or is a pixel_model wrapper (a saved fll stage model; its core is used)."""
    fll = _part(fll, "fll")
    _check_input(fll, model_cfg.fll.input_size, "fll")
    s = model_cfg.iid.input_size
    image = keras.Input((s, s, 3), name="image")
    denoised = layers.Identity(name="identity")(image)
    probs = UniformProbs(model_cfg.iid.num_classes, name="uniform_probs")(image)
    return pixel_model(keras.Model(
        image, _outputs(_landmark_tail(fll, image), probs, denoised), name=name))


def build_fadenn(model_cfg: ModelConfig, variant, *, fll, dae=None, classifier=None,
                 experts=None, name=None):
    """FADeNN-D/S/M (variant "D", "S" or "M"; "fll" gives the baseline) from existing parts.

    D needs `dae` (a DAE model); S needs `classifier` (an STC) and `experts`; M needs
    `classifier` (an MTC) and `experts`. `experts` is an expert-bank model
    (build_expert_bank) or a list of 4 DAEs. Parts are shared, not copied; a part saved as
    a pixel_model wrapper (a stage's model.keras) is unwrapped to its [-1, 1] core.
    """
    variant = normalize_variant(variant)
    if variant == "fll":
        return build_fll_baseline(model_cfg, fll, **({"name": name} if name else {}))
    cfg = model_cfg.iid
    s = cfg.input_size
    fll = _part(fll, "fll")
    _check_input(fll, model_cfg.fll.input_size, "fll")
    image = keras.Input((s, s, 3), name="image")
    if variant == "D":
        if dae is None:
            raise ValueError("variant D needs a dae")
        dae = _part(dae, "dae")
        _check_input(dae, s, "dae")
        denoised = dae(image)
        probs = UniformProbs(cfg.num_classes, name="uniform_probs")(image)
    else:
        if classifier is None or experts is None:
            raise ValueError(f"variant {variant} needs a classifier and experts")
        classifier = _part(classifier, "classifier")
        _check_input(classifier, s, "classifier")
        if isinstance(experts, (list, tuple)):
            experts = build_expert_bank(cfg, experts=[_part(e, "expert") for e in experts])
        experts = _part(experts, "experts")
        logits = logits_model(classifier)(image)
        probs = layers.Softmax(name="softmax")(logits)
        denoised = experts([image, ArgMaxClass(name="noise_class")(logits)])
    landmarks = _landmark_tail(fll, denoised)
    return pixel_model(keras.Model(image, _outputs(landmarks, probs, denoised),
                                   name=name or f"fadenn_{variant.lower()}"))


def build_variant(model_cfg: ModelConfig, variant, mean_shape=None):
    """A fresh (untrained) end-to-end model of `variant` ("fll", "D", "S", "M") with all its
    parts built from model_cfg. `mean_shape` initialises the FLL head (see build_fll)."""
    variant = normalize_variant(variant)
    fll = build_fll(model_cfg.fll, mean_shape=mean_shape)
    if variant == "fll":
        return build_fll_baseline(model_cfg, fll)
    if variant == "D":
        return build_fadenn(model_cfg, "D", fll=fll, dae=build_dae(model_cfg.iid))
    classifier = build_stc(model_cfg.iid) if variant == "S" else build_mtc(model_cfg.iid)
    return build_fadenn(model_cfg, variant, fll=fll, classifier=classifier,
                        experts=build_expert_bank(model_cfg.iid))


ROUTED_PARTS = ("classify",) + tuple(f"expert_{k}" for k in range(1, NUM_EXPERTS + 1)) \
    + ("landmarks",)


def routed_parts(model):
    """Split an end-to-end FADeNN-S or -M (taking 0..255 pixels) into the pixel models that a
    router runs one after another, so that each crop pays for ONE expert, not four:
      "classify"   image [B,S,S,3] 0..255 -> {"noise_probs" [B,5], "noise_class" [B] int32}
      "expert_k"   (k = 1..4) image -> {"denoised" [B,S,S,3] 0..255}
      "landmarks"  image (expert_c's output, or the crop itself for class 0)
                   -> {"landmarks" [B,68,2] pixels of the S x S crop}
    classify -> expert_c (only when c > 0) -> landmarks gives the model's outputs to float
    rounding (inference.routed runs it). Weights are shared with `model`. Returns a dict
    keyed by ROUTED_PARTS. Raises ValueError for a model without classifier and experts."""
    core = core_of(model)
    names = {layer.name for layer in core.layers}
    if not {"classifier", "experts", "fll"} <= names:
        raise ValueError(f"model {model.name!r} is not a FADeNN-S/M (it has no classifier, "
                         "experts and fll parts): there is nothing to route")
    s = int(core.inputs[0].shape[1])

    def pixels_in():
        image = keras.Input((s, s, 3), name="image")
        return image, ToUnitRange(name=INPUT_LAYER)(image)
    image, x = pixels_in()
    logits = core.get_layer("classifier")(x)
    parts = {"classify": keras.Model(image, {
        "noise_probs": layers.Softmax(name="softmax")(logits),
        "noise_class": ArgMaxClass(name="noise_class")(logits)}, name="classify")}
    bank = core.get_layer("experts")
    for k in range(1, NUM_EXPERTS + 1):
        image, x = pixels_in()
        out = ToPixelRange(name="denoised_pixels")(bank.get_layer(f"expert_{k}")(x))
        parts[f"expert_{k}"] = keras.Model(image, {"denoised": out}, name=f"expert_{k}")
    image, x = pixels_in()
    parts["landmarks"] = keras.Model(
        image, {"landmarks": _landmark_tail(core.get_layer("fll"), x)}, name="landmarks")
    return parts
