"""Stages stc and mtc: the noise classifiers of FADeNN-S and -M (paper section III-D).

Both train on noisy crops at the IID side S with labels 0..4 (clean, then the 4 noise
types). stc: encoder + head, cross-entropy; mtc: auto-encoder + head, CE + lambda * L2(I,
rec) (paper eq. 10, losses.mtc_loss, lambda = train.mtc_lambda). Validated by the accuracy
and confusion matrix over the 13 conditions.
"""
from fadenn_tf.training.tasks.base import Task, inference_fn, models, validation_conditions
from fadenn_tf.training.tasks.registry import register_task
from fadenn_tf.utils.lazy import lazy_import

losses = lazy_import("fadenn_tf.losses")                      # lazy: TensorFlow (train --help)
scoring = lazy_import("fadenn_tf.evaluation.scoring")         # lazy: TensorFlow (train --help)


class ClassifierTask(Task):
    """A noise classifier stage; subclasses give the network and the loss."""
    noise = True

    def validation(self, ctx, parts, val):
        S = self.input_size(ctx.cfg)
        logits = models.pixel_model(models.logits_model(parts.cores["model"]))
        logits_fn = inference_fn(lambda x: logits(x, training=False), S)
        conditions, spec = validation_conditions(), self.validation_spec(ctx.cfg)

        def evaluate(_step):
            res = scoring.evaluate_classifier(logits_fn, val, conditions, spec)
            return {"accuracy": res["accuracy"], "confusion": res["confusion"],
                    "accuracy_over": "13 conditions (clean + 4 types x 3 levels), each image "
                                     "once"}
        return evaluate


@register_task("stc")
class STCTask(ClassifierTask):
    init_sources = ("stc/model.keras", "mtc/model.keras", "dae/model.keras")
    benchmarked = False

    def cores(self, cfg):
        return {"model": models.build_stc(cfg.model.iid)}

    def loss(self, cfg, parts):
        model = parts.model

        def compute_losses(batch):
            return losses.noise_cross_entropy(model(batch["image"], training=True),
                                              batch["noise_type"]), {}
        return compute_losses


@register_task("mtc")
class MTCTask(ClassifierTask):
    init_sources = ("mtc/model.keras", "dae/model.keras")

    def cores(self, cfg):
        return {"model": models.build_mtc(cfg.model.iid)}

    def loss(self, cfg, parts):
        model, lam = parts.model, float(cfg.train.mtc_lambda)

        def compute_losses(batch):
            out = model(batch["image"], training=True)
            return losses.mtc_loss_and_terms(out["logits"], out["reconstruction"],
                                             batch["noise_type"], batch["image"], lam)
        return compute_losses
