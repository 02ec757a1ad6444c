"""Stage joint: FADeNN-V fine-tuned end to end from the stages before it (paper section
III-D), and the recipe of `--stage all`.

Starts from the saved results of the stages it needs (NEEDS); the FLL and the denoiser(s)
train, the classifier stays frozen (its argmax routing has no gradient). Noisy crops at the
IID side S with the FLL's augmentation; loss: landmark loss in FLL crop pixels + L2(clean,
denoised). Variant "fll" is the control: the FLL alone fine-tuned on the same data, noise
and steps. Validated like the FLL, with the FLL before fine-tuning beside it. One folder
per variant: joint-V.
"""
from pathlib import Path

from fadenn_tf.training.tasks.base import (Parts, Task, inference_fn, landmark_figures,
                                           models, validation_conditions)
from fadenn_tf.training.tasks.registry import check_needs, register_task, stage_outputs
from fadenn_tf.utils.lazy import lazy_import

losses = lazy_import("fadenn_tf.losses")                      # lazy: TensorFlow (train --help)
scoring = lazy_import("fadenn_tf.evaluation.scoring")         # lazy: TensorFlow (train --help)

# Weight of the denoiser's L2(clean, denoised) term in the joint loss.
JOINT_REC_WEIGHT = 1.0
# The stages each variant's joint stage starts from, and what `--stage all` runs.
NEEDS = {"fll": ("fll",), "D": ("fll", "dae"), "S": ("fll", "experts", "stc"),
         "M": ("fll", "experts", "mtc")}
RECIPES = {"fll": ("fll",), "D": ("dae", "fll", "joint"), "S": ("experts", "stc", "fll", "joint"),
           "M": ("experts", "mtc", "fll", "joint")}


@register_task("joint")
class JointTask(Task):
    noise = True
    occlusion = True
    per_variant = True

    def needs(self, variant):
        return NEEDS[variant]

    def recipe(self, variant):
        return RECIPES[variant]

    def fresh_parts(self, cfg, variant="M"):
        """FADeNN-`variant` built fresh, its classifier frozen."""
        model = models.build_variant(cfg.model, variant)
        names = {layer.name for layer in models.core_of(model).layers}
        if "classifier" in names:
            models.core_of(model).get_layer("classifier").trainable = False
        return self._parts(model)

    def build(self, ctx):
        """FADeNN-`ctx.variant` from the earlier stages' saved models (load_parts)."""
        check_needs(ctx.workdir, self.name, ctx.variant)
        parts = load_parts(ctx.workdir, ctx.variant)
        if "classifier" in parts:
            parts["classifier"].trainable = False
        return self._parts(models.build_fadenn(ctx.cfg.model, ctx.variant, **parts))

    @staticmethod
    def _parts(model):
        """Parts of a FADeNN model taking pixels; checkpoints hold its core as "model"."""
        return Parts({"model": models.core_of(model)}, [model])

    def loss(self, cfg, parts):
        model, landmark_loss = parts.model, losses.landmark_loss(cfg.train)
        ratio = cfg.model.fll.input_size / cfg.model.iid.input_size

        def compute_losses(batch):
            out = model(batch["image"], training=True)
            # the FLL's loss in its own crop pixels (the landmarks come at the IID size S)
            rmse = landmark_loss(out["landmarks"] * ratio, batch["landmarks"] * ratio)
            rec = losses.reconstruction_l2(out["denoised"], batch["clean"])
            return (rmse + JOINT_REC_WEIGHT * rec,
                    {"landmark_loss_fll_px": rmse, "l2_denoised": rec})
        return compute_losses

    def validation(self, ctx, parts, val):
        S, model = self.input_size(ctx.cfg), parts.model
        predict = inference_fn(lambda x: model(x, training=False), S)
        conditions, spec = validation_conditions(), self.validation_spec(ctx.cfg)
        return lambda _step: landmark_figures(
            scoring.evaluate_landmarks(predict, val, conditions, spec))

    def reference_figures(self, ctx, parts, val):
        """The FLL alone before fine-tuning (fll_baseline_*: NME, AUC, FR), run at S."""
        S = self.input_size(ctx.cfg)
        with ctx.strategy.scope():
            fll = models.load_model(stage_outputs(ctx.workdir, "fll")[0])
        baseline = models.build_fll_baseline(ctx.cfg.model, fll)
        fn = inference_fn(lambda x: baseline(x, training=False), S)
        figures = landmark_figures(scoring.evaluate_landmarks(fn, val, validation_conditions(),
                                                              self.validation_spec(ctx.cfg)))
        return {f"fll_baseline_{k}": v for k, v in figures.items()
                if k.split("_")[0] in ("nme", "auc", "fr")}


def load_parts(workdir, variant):
    """The trained parts a FADeNN-`variant` joint stage starts from, as build_fadenn takes
    them (models taking pixels; build_fadenn nests their [-1, 1] cores): fll, and dae or
    experts + classifier. Files saved before the pixel interface load too (models.io wraps
    them)."""
    w = Path(workdir)
    parts = {"fll": models.load_model(stage_outputs(w, "fll")[0])}
    if variant == "fll":  # the control: the same fine-tuning, no denoiser
        return parts
    if variant == "D":
        parts["dae"] = models.load_model(stage_outputs(w, "dae")[0])
    else:
        parts["experts"] = [models.load_model(p) for p in stage_outputs(w, "experts")]
        parts["classifier"] = models.load_model(
            stage_outputs(w, "stc" if variant == "S" else "mtc")[0])
    return parts
