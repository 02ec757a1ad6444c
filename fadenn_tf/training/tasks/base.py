"""The Task: everything one training stage is, in one object.

A task says where its results go (`folder`, `outputs`), what it starts from (`needs`, the
`--init-from` patterns `init_sources`), what it trains on (`input_size`, `work_size` and the
stream flags `noise`, `expert_noise`, `occlusion`), its model (`cores`, `fresh_parts`,
`build`), its loss (`loss`), its validation (`validation`, `reference_figures`) and what it
saves (`save`). The stage runner (fadenn_tf.training.stages) does the rest, the same for
every task: data, optimizer, the loop, config.yaml and resume checks.

Batches are dicts of 0..255 pixels ("image" [B,S,S,3], "clean", "landmarks" [B,68,2] in crop
pixels, "noise_type" [B], "expert_images" [B,4,S,S,3]; fadenn_tf.training.stream); losses
are per example, in the units of fadenn_tf.losses.

This module and the task modules stay importable without TensorFlow (`train --help` lists
the registered stages): they reach TensorFlow-land through lazy_import proxies, imported at
their first use.
"""
import dataclasses
from pathlib import Path

import numpy as np

from fadenn_tf import metrics
from fadenn_tf.utils.lazy import lazy_import

models = lazy_import("fadenn_tf.models")          # lazy: TensorFlow (train --help)
noise_mod = lazy_import("fadenn_tf.noise")        # lazy: TensorFlow (train --help)
tf = lazy_import("tensorflow")                    # lazy: TensorFlow (train --help)
stream = lazy_import("fadenn_tf.training.stream")  # lazy: TensorFlow (train --help)
scoring = lazy_import("fadenn_tf.evaluation.scoring")  # lazy: TensorFlow (train --help)


@dataclasses.dataclass
class Parts:
    """A stage's model parts. cores: {name: keras.Model in [-1, 1]} (what checkpoints hold,
    under these names); models: the models taking 0..255 pixels that the loss calls, in the
    cores' order; info: what the task keeps beside them (the FLL's mean shape)."""
    cores: dict
    models: list
    info: dict = dataclasses.field(default_factory=dict)

    @property
    def model(self):
        return self.models[0]

    def variables(self):
        """Trainable variables of every part, in the cores' order."""
        return [v for m in self.models for v in m.trainable_variables]


class Task:
    """A training stage (a subclass registered with @register_task(name)).

    Class attributes: on_fll: inputs at the FLL side s (else the IID side S); noise: one
    noise condition per crop (applied at the reference side R, fadenn_tf.noise);
    expert_noise: each of the 4 experts' own noise type; occlusion: random occluders;
    outputs: the files the stage folder keeps (what later stages load); per_variant: one
    folder per FADeNN variant (NAME-V); init_sources: where `--init-from WORKDIR` looks for
    this stage's starting weights, in order ({k}: expert number); default_steps: steps when
    the config's train.steps has no entry for the stage; benchmarked: `bench` times its train
    step (as variant bench_variant)."""
    name = ""
    on_fll = False
    noise = False
    expert_noise = False
    occlusion = False
    outputs = ("model.keras",)
    per_variant = False
    init_sources = None             # None: (NAME/model.keras,)
    default_steps = 1000
    benchmarked = True
    bench_variant = "M"

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r}>"

    # ---------------------------------------------------------------- where and when
    def folder(self, variant="M"):
        """The stage's folder name in a workdir: NAME, or NAME-V for per-variant stages."""
        return f"{self.name}-{variant}" if self.per_variant else self.name

    def output_paths(self, workdir, variant="M"):
        """The files a finished stage leaves in `workdir` (what later stages load)."""
        d = Path(workdir) / self.folder(variant)
        return [d / f for f in self.outputs]

    def needs(self, variant):
        """Names of the stages whose outputs this one starts from (for FADeNN-`variant`)."""
        return ()

    def recipe(self, variant):
        """The stages `--stage all` runs for `variant`, in order, or None: one registered
        task (the one whose result is the FADeNN model) gives the recipe."""
        return None

    def steps(self, cfg, override=0):
        """Steps to train: `override` if > 0, else the config's train.steps entry, else
        default_steps."""
        return int(override or cfg.train.steps.get(self.name, self.default_steps))

    def sources(self):
        """Patterns of --init-from files inside a workdir, in order of preference."""
        return tuple(self.init_sources or (f"{self.name}/model.keras",))

    # ------------------------------------------------------------------------ inputs
    def input_size(self, cfg):
        """Side of the model input: s for stages on the FLL, S otherwise (pixels)."""
        return cfg.model.fll.input_size if self.on_fll else cfg.model.iid.input_size

    def validation_spec(self, cfg):
        """scoring.ValidationSpec of the stage's model: the crop it takes (its input side
        and config model.crop_scale), default batch size, seed and normaliser."""
        return scoring.ValidationSpec(size=self.input_size(cfg),
                                      crop_scale=float(cfg.model.crop_scale))

    def work_size(self, cfg):
        """Side of the training pre-crops: the reference side R when the stream is degraded
        there; for clean streams the input side, or for a model cropping tighter than 2x the
        box the side at which its window of the 2x crop is that input side
        (stream.clean_work_size)."""
        noisy = self.noise or self.expert_noise
        if noisy:
            return int(cfg.noise.reference_size)
        return stream.clean_work_size(self.input_size(cfg), cfg.model.crop_scale)

    # ------------------------------------------------------------------------- model
    def cores(self, cfg, **kw):
        """{name: fresh core in [-1, 1]} built from ExperimentConfig `cfg`."""
        raise NotImplementedError

    def fresh_parts(self, cfg, variant="M"):
        """Parts built from the config alone, fresh weights (bench, checkpoint rebuilds)."""
        return parts_of(self.cores(cfg))

    def build(self, ctx):
        """The Parts training starts from, in the strategy scope; `ctx` (StageContext) gives
        the config, variant, workdir and data. Default: fresh_parts."""
        return self.fresh_parts(ctx.cfg, ctx.variant)

    def loss(self, cfg, parts):
        """compute_losses(batch) -> (per-example loss [B], {name: per-example term})."""
        raise NotImplementedError

    # -------------------------------------------------------------------- validation
    def validation(self, ctx, parts, val):
        """evaluate(step) -> {figure: plain number or text} on the validation crops `val`
        (EvalData at the reference side), run by the loop every train.eval_every steps and
        at the end; None: the stage does not validate."""
        return None

    def reference_figures(self, ctx, parts, val):
        """Figures of a reference beside the trained model (a baseline), computed once
        before training and added to the stage's result; {} by default."""
        return {}

    # ------------------------------------------------------------------------ saving
    def save(self, parts, folder, cfg, variant="M"):
        """Write each part's model to its file of `outputs` in `folder` (save_model: the
        .keras file and its metadata, atomically)."""
        for model, name in zip(parts.models, self.outputs):
            models.save_model(model, Path(folder) / name,
                              variant=variant if self.per_variant else None,
                              config_name=cfg.name, crop_scale=cfg.model.crop_scale)


# --------------------------------------------------------------- shared by the tasks
def parts_of(cores, **info):
    """Parts of `cores` ({name: core in [-1, 1]}), each wrapped to take 0..255 pixels, with
    `info` kept beside them."""
    return Parts(cores, [models.pixel_model(c) for c in cores.values()], info)


def validation_conditions():
    """Conditions validated during training: clean + every type at every level (13)."""
    return noise_mod.noise_conditions()


def inference_fn(fn, size):
    """tf.function of fn over [B, size, size, 3] float32 batches, traced once for any B (the
    last validation batch is usually smaller: no retracing)."""
    return tf.function(fn, input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32)])


def landmark_figures(result):
    """{nme_/auc_/fr_ clean/noisy, normalizer, threshold} of an evaluate_landmarks result."""
    out = {}
    for key in ("clean", "noisy"):
        if key in result:
            s = result[key]
            out.update({f"nme_{key}": s["mean_nme"], f"auc_{key}": s["auc"],
                        f"fr_{key}": s["fr"]})
    out.update(normalizer=metrics.DEFAULT_NORMALIZER, threshold=metrics.DEFAULT_THRESHOLD)
    return out


def mean_psnr(results, key):
    """Mean of figure `key` over the conditions of an evaluate_denoiser result (dB)."""
    return float(np.mean([v[key] for v in results.values()]))
