"""Training stages as tasks: each task owns its model parts, its inputs and its loss.

    task = TASKS["mtc"]
    parts = task.build(cfg)                      # fresh parts (joint: task.build(cfg, "M"))
    compute = task.loss(cfg, parts)              # batch -> (per-example loss [B], logs)

Batches are dicts of 0..255 pixels ("image" [B,S,S,3], "clean", "landmarks" [B,68,2] in crop
pixels, "noise_type" [B], "expert_images" [B,4,S,S,3]); losses are per example, in the units
of fadenn_tf.losses. The stage runner (training.stages), `bench` (benchmark.train_speed) and
`--init-from` (training.transfer, rebuilding a stage from its checkpoint) use these tasks, so
each stage's model and loss are written once.
"""
import dataclasses

from fadenn_tf import losses
from fadenn_tf.models import (build_dae, build_fadenn, build_fll, build_mtc, build_stc,
                              build_variant, core_of, pixel_model, to_points)

# Weight of the denoiser's L2(clean, denoised) term in the joint loss.
JOINT_REC_WEIGHT = 1.0


@dataclasses.dataclass
class Parts:
    """A stage's model parts. cores: {name: keras.Model in [-1, 1]} (what checkpoints hold);
    models: the models taking 0..255 pixels that the loss calls, in the cores' order."""
    cores: dict
    models: list

    @property
    def model(self):
        return self.models[0]

    def variables(self):
        """Trainable variables of every part, in the cores' order."""
        return [v for m in self.models for v in m.trainable_variables]


@dataclasses.dataclass(frozen=True)
class Task:
    """A training stage. Inputs: crops at the FLL side s (on_fll) or the IID side S; noise:
    one noise condition per crop (applied at the reference side R, fadenn_tf.noise);
    expert_noise: each of the 4 experts' own noise type; occlusion: random occluders."""
    name: str
    on_fll: bool = False
    noise: bool = False
    expert_noise: bool = False
    occlusion: bool = False

    def input_size(self, cfg):
        """Side of the model input: s for the FLL stage, S otherwise."""
        return cfg.model.fll.input_size if self.on_fll else cfg.model.iid.input_size

    def work_size(self, cfg):
        """Side of the training pre-crops: the input side for clean streams, the reference
        side R when the stream is degraded there."""
        noisy = self.noise or self.expert_noise
        return int(cfg.noise.reference_size) if noisy else self.input_size(cfg)

    def cores(self, cfg, **kw):
        """{name: fresh core in [-1, 1]}."""
        raise NotImplementedError

    def build(self, cfg, **kw):
        """Fresh Parts of this stage from the config."""
        cores = self.cores(cfg, **kw)
        return Parts(cores, [pixel_model(c) for c in cores.values()])

    def loss(self, cfg, parts):
        """compute_losses(batch) -> (per-example loss [B], {name: per-example term})."""
        raise NotImplementedError


class FLLTask(Task):
    def cores(self, cfg, mean_shape=None):
        return {"model": build_fll(cfg.model.fll, mean_shape=mean_shape)}

    def loss(self, cfg, parts):
        model, landmark_loss = parts.model, losses.landmark_loss(cfg.train)

        def compute_losses(batch):
            pred = to_points(model(batch["image"], training=True))
            return landmark_loss(pred, batch["landmarks"]), {}
        return compute_losses


class DAETask(Task):
    def cores(self, cfg):
        return {"model": build_dae(cfg.model.iid)}

    def loss(self, cfg, parts):
        model = parts.model

        def compute_losses(batch):
            return losses.reconstruction_l2(model(batch["image"], training=True),
                                            batch["clean"]), {}
        return compute_losses


class ExpertsTask(Task):
    """Expert k learns to remove noise type k only (paper eq. 11): one step trains all four
    on the same clean batch, each with its own noise type and a random level."""

    def cores(self, cfg):
        return {f"expert_{k}": build_dae(cfg.model.iid, name=f"expert_{k}") for k in range(1, 5)}

    def loss(self, cfg, parts):
        experts = parts.models

        def compute_losses(batch):
            clean = batch["clean"]                       # pixels 0..255
            total, logs = 0.0, {}
            for k, expert in enumerate(experts, start=1):
                noisy = batch["expert_images"][:, k - 1]   # type k at R, resized; 0..255
                loss_k = losses.reconstruction_l2(expert(noisy, training=True), clean)
                logs[f"l2_expert_{k}"] = loss_k
                total = total + loss_k
            return total, logs
        return compute_losses


class ClassifierTask(Task):
    """stc: encoder + head, cross-entropy; mtc: auto-encoder + head, CE + lambda * L2(I, rec)
    (paper eq. 10, losses.mtc_loss)."""

    def cores(self, cfg):
        build = build_stc if self.name == "stc" else build_mtc
        return {"model": build(cfg.model.iid)}

    def loss(self, cfg, parts):
        model, lam = parts.model, float(cfg.train.mtc_lambda)

        def compute_losses(batch):
            out = model(batch["image"], training=True)
            if self.name == "stc":
                return losses.noise_cross_entropy(out, batch["noise_type"]), {}
            return losses.mtc_loss_and_terms(out["logits"], out["reconstruction"],
                                             batch["noise_type"], batch["image"], lam)
        return compute_losses


class JointTask(Task):
    """FADeNN-`variant` end to end: the FLL and the denoiser(s) train, the classifier stays
    frozen (its argmax routing has no gradient)."""

    def build(self, cfg, variant="M", parts=None):
        """Parts of FADeNN-`variant`: from the trained `parts` of the earlier stages
        (training.stages.load_parts), or all fresh when `parts` is None."""
        if parts is None:
            model = build_variant(cfg.model, variant)
            names = {layer.name for layer in core_of(model).layers}
            if "classifier" in names:
                core_of(model).get_layer("classifier").trainable = False
        else:
            if "classifier" in parts:
                parts["classifier"].trainable = False
            model = build_fadenn(cfg.model, variant, **parts)
        return Parts({"model": core_of(model)}, [model])

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


TASKS = {t.name: t for t in (
    FLLTask("fll", on_fll=True, occlusion=True),
    DAETask("dae", noise=True),
    ExpertsTask("experts", expert_noise=True),
    ClassifierTask("stc", noise=True),
    ClassifierTask("mtc", noise=True),
    JointTask("joint", noise=True, occlusion=True),
)}


def model_from_checkpoint(stage_dir):
    """(model, checkpoint path) of a single-model stage folder rebuilt by its task from the
    folder's config.yaml with its newest checkpoint restored; None when there is none."""
    import tensorflow as tf
    import yaml
    from fadenn_tf.config import config_from_dict
    stage = stage_dir.name
    latest = tf.train.latest_checkpoint(str(stage_dir / "checkpoints"))
    if stage not in ("fll", "dae", "stc", "mtc") or latest is None \
            or not (stage_dir / "config.yaml").is_file():
        return None
    cfg = config_from_dict(yaml.safe_load((stage_dir / "config.yaml").read_text()),
                           str(stage_dir / "config.yaml"))
    model = TASKS[stage].cores(cfg)["model"]
    tf.train.Checkpoint(model=model).read(latest).expect_partial()
    return model, latest
