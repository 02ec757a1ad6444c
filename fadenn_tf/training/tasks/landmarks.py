"""Stage fll: the facial landmark localiser alone (paper section III-D).

Trains on clean crops at the FLL side s (rotation, flip, occlusion) with the landmark loss of
train.landmark_loss (in crop pixels); validated by NME / AUC / FR in image pixels over the 13
conditions, with the mean-shape predictor as a baseline beside it.
"""
import numpy as np

from fadenn_tf.training.tasks.base import (Task, inference_fn, landmark_figures, models,
                                           parts_of, validation_conditions)
from fadenn_tf.training.tasks.registry import register_task
from fadenn_tf.utils.lazy import lazy_import

losses = lazy_import("fadenn_tf.losses")                      # lazy: TensorFlow (train --help)
pipeline = lazy_import("fadenn_tf.data.pipeline")             # lazy: TensorFlow (train --help)
scoring = lazy_import("fadenn_tf.evaluation.scoring")         # lazy: TensorFlow (train --help)


@register_task("fll")
class FLLTask(Task):
    on_fll = True
    occlusion = True

    def cores(self, cfg, mean_shape=None):
        return {"model": models.build_fll(cfg.model.fll, mean_shape=mean_shape)}

    def build(self, ctx):
        """A fresh FLL whose output starts at the training samples' mean shape."""
        spec = self.validation_spec(ctx.cfg)
        mean = mean_shape(ctx.train, spec.size, spec.crop_scale)
        cores = self.cores(ctx.cfg, mean_shape=mean)
        return parts_of(cores, mean_shape=mean)

    def loss(self, cfg, parts):
        model, landmark_loss = parts.model, losses.landmark_loss(cfg.train)

        def compute_losses(batch):
            pred = models.to_points(model(batch["image"], training=True))
            return landmark_loss(pred, batch["landmarks"]), {}
        return compute_losses

    def validation(self, ctx, parts, val):
        s, model = self.input_size(ctx.cfg), parts.model
        predict = inference_fn(lambda x: {"landmarks": models.to_points(model(x, training=False))},
                               s)
        conditions, spec = validation_conditions(), self.validation_spec(ctx.cfg)
        return lambda _step: landmark_figures(
            scoring.evaluate_landmarks(predict, val, conditions, spec))

    def reference_figures(self, ctx, parts, val):
        """The mean-shape predictor's NME and AUC (mean_shape_*): what the FLL must beat."""
        baseline = scoring.evaluate_landmarks(
            scoring.mean_shape_predictor(parts.info["mean_shape"]), val,
            validation_conditions(), self.validation_spec(ctx.cfg))
        return {f"mean_shape_{k}": v for k, v in landmark_figures(baseline).items()
                if k.startswith("nme") or k.startswith("auc")}


def mean_shape(train_samples, size, crop_scale=2.0):
    """Mean (68,2) landmark shape in un-jittered crop pixels (side `size`, `crop_scale` x
    the landmark box) of the training samples (the first 1000)."""
    data = pipeline.load_eval_data(train_samples[:1000], size, scale=crop_scale)
    return np.nanmean(data.landmarks, axis=0)

