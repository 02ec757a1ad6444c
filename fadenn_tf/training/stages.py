"""The training stages run in a workdir (paper section III-D): the task of each stage
(fadenn_tf.training.tasks: its model parts, inputs and loss) trained by the shared loop,
validated, and saved.

Stage      trains                         data (crop size)            loss
fll        FLL alone                      clean crops, FLL size s,    landmark RMSE (px)
                                          rotation/flip/occlusion
dae        general DAE (FADeNN-D)         noisy/clean pairs, IID S    L2(clean, DAE(noisy))
experts    4 specialised DAEs, expert k   clean crops; expert k sees  sum_k L2(clean,
           on noise type k only (eq. 11)  noise type k, random level  expert_k(noisy_k))
stc        single-task classifier         noisy crops, labels 0..4    cross-entropy
mtc        multi-task classifier          noisy crops, labels 0..4    CE + lambda*L2(I, rec)
joint      FADeNN-V end to end from the   noisy crops at S, FLL aug.  landmark RMSE (in FLL
           stages above; FLL + denoisers                              px) + L2(clean, denoised)
           trainable, classifier frozen
           (its argmax routing has no gradient)

Each stage writes WORKDIR/<stage>/ (joint: joint-<V>/): checkpoints/, config.yaml,
run.json (config and data fingerprints a resume is checked against), metrics.json (one JSON
line per evaluation), tb/ (TensorBoard) and the final model(s): model.keras (experts:
expert_1.keras .. expert_4.keras), each with its metadata beside it (model.json,
expert_k.json; fadenn_tf.models.io). Batches carry 0..255 pixels and every stage trains a
model that takes them (pixel_model around the [-1, 1] core it builds); checkpoints hold the
core, as before the pixel interface, so older runs still resume.

Noise (training and validation) follows `fadenn_tf.noise`'s protocol: conditions are applied
at the reference side R = cfg.noise.reference_size and the crops then resized to the stage's
input size, so validation figures of configurations with other input sizes compare.
"""
import dataclasses
import hashlib
import json
import sys
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
import yaml

from fadenn_tf import metrics
from fadenn_tf.data.pipeline import load_eval_data, load_train_data
from fadenn_tf.config import TRAINING_SECTIONS, config_from_dict, precision_mode
from fadenn_tf.errors import ConfigError
from fadenn_tf.training import transfer
from fadenn_tf.models import (build_fll_baseline, load_model, logits_model, pixel_model,
                              save_model, to_points)
from fadenn_tf.models.fadenn import normalize_variant
from fadenn_tf.noise import LEVELS, noise_conditions
from fadenn_tf.training.loop import LoopSpec, guard_workdir, run_loop
from fadenn_tf.training.stream import make_train_dataset
from fadenn_tf.training.tasks import TASKS
from fadenn_tf.utils.atomic import write_json_atomic, write_text_atomic
from fadenn_tf.evaluation import scoring as validation

STAGE_ORDER = {"D": ("dae", "fll", "joint"),
               "S": ("experts", "stc", "fll", "joint"),
               "M": ("experts", "mtc", "fll", "joint")}
JOINT_NEEDS = {"fll": ("fll",), "D": ("fll", "dae"), "S": ("fll", "experts", "stc"),
               "M": ("fll", "experts", "mtc")}
# Conditions used for validation during training: clean + every type at every level.
VAL_CONDITIONS = noise_conditions()


@dataclasses.dataclass
class StageContext:
    """Everything a stage needs. train/val: lists of Samples; strategy: tf.distribute."""
    cfg: object
    variant: str
    workdir: Path
    strategy: object
    train: list
    val: list
    steps: int = 0            # 0 = the config's steps for the stage
    resume: bool = False
    overwrite: bool = False   # start over on a workdir holding an earlier run
    force: bool = False       # resume although the config or data differ from the run's
    chief: bool = True
    progress: bool = False
    mixed_precision: str = "none"   # none | fp16 | bf16 (config.precision_mode)
    jit: bool = False
    init_from: str = ""             # weights to start each stage from (training.transfer)
    data_problems: list = dataclasses.field(default_factory=list)
    loaded: dict = dataclasses.field(default_factory=dict, init=False, repr=False)

    @property
    def reference_size(self):
        """Side R of the reference crops where noise is applied (config noise.reference_size)."""
        return int(self.cfg.noise.reference_size)

    def train_data(self, size):
        """Training pre-crops for working side `size` (the stage's input for clean streams,
        reference_size for noisy ones), decoded once for every stage run with this context
        (skipped samples go to data_problems the first time)."""
        key = ("train", int(size))
        if key not in self.loaded:
            self.loaded[key] = load_train_data(self.train, size, progress=self.progress)
            self.data_problems.extend(self.loaded[key].problems)
        return self.loaded[key]

    def val_data(self):
        """Validation crops at the reference side, loaded once for every stage (validation
        reuses their per-condition datasets, so later stages skip rebuilding them); None
        without validation images."""
        if not self.val:
            return None  # data.val_fraction 0: no validation (the loop is given no evaluate)
        key = ("val", self.reference_size)
        if key not in self.loaded:
            self.loaded[key] = load_eval_data(self.val, self.reference_size,
                                              progress=self.progress)
        return self.loaded[key]

    def stage_dir(self, stage):
        return self.workdir / (f"joint-{self.variant}" if stage == "joint" else stage)


def stage_outputs(workdir, stage, variant="M"):
    """Files a finished stage leaves behind (what later stages load)."""
    d = Path(workdir) / (f"joint-{variant}" if stage == "joint" else stage)
    if stage == "experts":
        return [d / f"expert_{k}.keras" for k in range(1, 5)]
    return [d / "model.keras"]


def check_needs(workdir, stage, variant):
    """Raise ConfigError naming the stages and files a stage needs but cannot find."""
    if stage != "joint":
        return
    missing = [(s, p) for s in JOINT_NEEDS[variant] for p in stage_outputs(workdir, s)
               if not p.is_file()]
    if missing:
        lines = "\n".join(f"  stage {s!r}: {p}" for s, p in missing)
        raise ConfigError(
            f"stage 'joint' of FADeNN-{variant} needs the results of stages "
            f"{', '.join(JOINT_NEEDS[variant])}; not found:\n{lines}\n"
            f"run them first (python -m fadenn_tf.train --stage STAGE with the same --workdir)"
            f" or use --stage all --variant {variant}")


def make_optimizer(train_cfg, mixed_precision="none", total_steps=None):
    """Adam with the config's schedule (train.lr_schedule: staircase decay, or cosine over
    `total_steps`) and an EMA of the weights if train.ema_momentum > 0 (training.ema). Its
    state stays float32 (as the variables); fp16 adds dynamic loss scaling, bf16 needs none."""
    if train_cfg.lr_schedule == "cosine":
        if not total_steps:
            raise ConfigError("train.lr_schedule cosine needs the stage's number of steps")
        schedule = keras.optimizers.schedules.CosineDecay(
            train_cfg.learning_rate, int(total_steps), alpha=train_cfg.cosine_alpha)
    else:
        schedule = keras.optimizers.schedules.ExponentialDecay(
            train_cfg.learning_rate, train_cfg.lr_decay_steps, train_cfg.lr_decay_rate,
            staircase=True)
    ema = train_cfg.ema_momentum > 0
    opt = keras.optimizers.Adam(schedule, use_ema=ema,
                                ema_momentum=train_cfg.ema_momentum if ema else 0.99)
    if precision_mode(mixed_precision) == "fp16":
        opt = keras.optimizers.LossScaleOptimizer(opt)
    return opt


def _init_weights(ctx, stage, *models):
    """Start `models` from ctx.init_from (a .keras file, a stage folder or a workdir): every
    layer whose name and weight shapes match is copied (training.transfer). Skipped when
    resuming (the checkpoint holds the weights) or when no source is set."""
    if not ctx.init_from or ctx.resume and (ctx.stage_dir(stage) / "checkpoints").is_dir():
        return
    sources = transfer.resolve_sources(ctx.init_from, stage, len(models))
    for model, (source, desc) in zip(models, sources):
        print(f"   {stage}: {transfer.copy_matching(model, source, desc)}")


def _total_steps(ctx, stage):
    return int(ctx.steps or ctx.cfg.train.steps.get(stage, 1000))


def data_fingerprint(samples):
    """sha256 over the samples' names, frames and landmarks (what the data stream is made of;
    images are not read). Moving the dataset folder keeps it; changing the data does not."""
    h = hashlib.sha256()
    for smp in sorted(samples, key=lambda x: (x.subset, Path(x.image_path).name,
                                              x.frame or 0)):
        h.update(f"{smp.subset}/{Path(smp.image_path).name}:{smp.frame}\n".encode())
        if smp.landmarks is not None:
            h.update(np.round(np.asarray(smp.landmarks, np.float64), 3).tobytes())
    return h.hexdigest()


def _write_config(ctx, d):
    """Write config.yaml and run.json; on resume, refuse (ConfigError) a config or training
    data that differ from the run's unless ctx.force."""
    text = yaml.safe_dump(ctx.cfg.to_dict(TRAINING_SECTIONS), sort_keys=False)
    path = d / "config.yaml"
    plan = {"config_sha256": hashlib.sha256(text.encode()).hexdigest(),
            "data_sha256": data_fingerprint(ctx.train), "train_samples": len(ctx.train)}
    if ctx.resume:
        changed = []
        if path.is_file() and _as_written_now(path.read_text()) != text:
            changed.append(f"the configuration ({path})")
        try:
            old = json.loads((d / "run.json").read_text()) if (d / "run.json").is_file() else {}
        except (OSError, json.JSONDecodeError):
            old = {}
        if old.get("data_sha256") not in (None, plan["data_sha256"]):
            changed.append(f"the training data ({old.get('train_samples')} samples then, "
                           f"{len(ctx.train)} now)")
        if changed and not ctx.force:
            raise ConfigError(f"{d}: the run being resumed differs in {' and '.join(changed)}; "
                              f"resume with the same --config, overrides and --data as the "
                              f"first run, or pass --force to continue it anyway")
        if changed:
            print(f"warning: {d}: resuming although {' and '.join(changed)} changed (--force)",
                  file=sys.stderr)
    if ctx.chief:
        write_text_atomic(path, text)
        write_json_atomic(d / "run.json", plan)


def _as_written_now(text):
    """A stage's config.yaml text as this version would write it: retired keys
    (config.RETIRED_KEYS) dropped and keys added since filled with their defaults, so a run
    started before either change resumes as the same configuration. Text that does not
    parse as a config is returned as it is (and then differs)."""
    try:
        data = yaml.safe_load(text)
        if not isinstance(data, dict):
            return text
        cfg = config_from_dict(data, "config.yaml")  # drops retired keys itself
    except Exception:  # yaml.YAMLError, ConfigError: not a config of this version
        return text
    return yaml.safe_dump(cfg.to_dict(TRAINING_SECTIONS), sort_keys=False)


def _inference_fn(fn, size):
    """tf.function of fn over [B, size, size, 3] float32 batches, traced once for any B (the
    last validation batch is usually smaller: no retracing)."""
    return tf.function(fn, input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32)])


def _run(ctx, stage, trackables, compute_losses, variables, make_dataset, evaluate, optimizer):
    d = ctx.stage_dir(stage)
    d.mkdir(parents=True, exist_ok=True)
    if ctx.chief:  # before config.yaml: a refused run must not touch the earlier one's
        guard_workdir(d, resume=ctx.resume, overwrite=ctx.overwrite)
    _write_config(ctx, d)
    spec = LoopSpec(name=stage, compute_losses=compute_losses, variables=variables,
                    make_dataset=make_dataset, trackables=trackables,
                    total_steps=_total_steps(ctx, stage), global_batch=ctx.cfg.train.batch_size,
                    evaluate=evaluate if ctx.val else None)  # val_fraction 0: none
    t = ctx.cfg.train
    return run_loop(spec, optimizer, ctx.strategy, d, eval_every=t.eval_every,
                    checkpoint_every=t.checkpoint_every, keep_checkpoints=t.keep_checkpoints,
                    log_every=t.log_every, jit=ctx.jit or t.jit, resume=ctx.resume,
                    chief=ctx.chief, progress=ctx.progress, overwrite=ctx.overwrite)


def _dataset_fn(ctx, data, task):
    """make(start_step, input_context) of the stage's input pipeline (task: its crops, noise,
    occlusion)."""
    t, dc = ctx.cfg.train, ctx.cfg.data
    size, noise, occlusion = task.input_size(ctx.cfg), task.noise, task.occlusion
    expert_noise = task.expert_noise

    def make(start_step, input_context=None):
        """Per-replica batches of this input pipeline, element 0 = step start_step. A
        pipeline feeding R local replicas yields R consecutive elements per step (the
        strategy hands them out in turn), so every replica is its own shard of the global
        stream and a resumed run starts at element R * start_step, not start_step."""
        pipeline, pipelines, replicas, batch = 0, 1, 1, t.batch_size
        if input_context is not None:
            pipeline, pipelines = input_context.input_pipeline_id, input_context.num_input_pipelines
            replicas = input_context.num_replicas_in_sync // pipelines
            batch = input_context.get_per_replica_batch_size(t.batch_size)
        streams = [make_train_dataset(data, size, batch, augment=dc.augment,
                                      clean_prob=dc.clean_prob, seed=t.seed,
                                      occlusion=occlusion, noise=noise, start_step=start_step,
                                      reference_size=ctx.cfg.noise.reference_size,
                                      expert_noise=expert_noise,
                                      shard_index=pipeline * replicas + r,
                                      num_shards=pipelines * replicas)
                   for r in range(replicas)]
        if replicas == 1:
            return streams[0]
        return tf.data.Dataset.choose_from_datasets(
            streams, tf.data.Dataset.range(replicas).repeat())
    return make


def _step_var():
    return tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")


def _landmark_figures(result):
    out = {}
    for key in ("clean", "noisy"):
        if key in result:
            s = result[key]
            out.update({f"nme_{key}": s["mean_nme"], f"auc_{key}": s["auc"],
                        f"fr_{key}": s["fr"]})
    out.update(normalizer=metrics.DEFAULT_NORMALIZER, threshold=metrics.DEFAULT_THRESHOLD)
    return out


def _mean_shape(train_samples, size):
    """Mean (68,2) landmark shape in un-jittered crop pixels of the training samples."""
    data = load_eval_data(train_samples[:1000], size)
    return np.nanmean(data.landmarks, axis=0)


# ----------------------------------------------------------------------------------- stages
def _inputs(ctx, task):
    """(input side, validation crops) of the task; its training pre-crops are loaded too."""
    ctx.train_data(task.work_size(ctx.cfg))
    return task.input_size(ctx.cfg), ctx.val_data()


def _setup(ctx, task, init=True, **build_kw):
    """In the strategy scope: the task's parts (started from --init-from), the optimizer
    built on their variables and the step variable."""
    with ctx.strategy.scope():
        parts = task.build(ctx.cfg, **build_kw)
        if init:
            _init_weights(ctx, task.name, *parts.cores.values())
        optimizer = make_optimizer(ctx.cfg.train, ctx.mixed_precision,
                                   total_steps=_total_steps(ctx, task.name))
        optimizer.build(parts.variables())
        step = _step_var()
    return parts, optimizer, step


def _train_task(ctx, task, parts, optimizer, step, evaluate):
    """Run the loop of `task` on its inputs; the stage's name is the task's."""
    data = ctx.train_data(task.work_size(ctx.cfg))
    return _run(ctx, task.name, {**parts.cores, "step": step}, task.loss(ctx.cfg, parts),
                parts.variables, _dataset_fn(ctx, data, task), evaluate, optimizer)


def train_fll(ctx):
    """Stage fll. Returns the final validation figures (dict)."""
    cfg, task = ctx.cfg, TASKS["fll"]
    s, val = _inputs(ctx, task)
    mean_shape = _mean_shape(ctx.train, s)
    parts, optimizer, step = _setup(ctx, task, mean_shape=mean_shape)
    model = parts.model
    predict = _inference_fn(lambda x: {"landmarks": to_points(model(x, training=False))}, s)

    def evaluate(_step):
        return _landmark_figures(validation.evaluate_landmarks(predict, val, VAL_CONDITIONS,
                                                               size=s))

    result = _train_task(ctx, task, parts, optimizer, step, evaluate)
    if val is not None:  # none with data.val_fraction 0
        baseline = validation.evaluate_landmarks(validation.mean_shape_predictor(mean_shape),
                                                 val, VAL_CONDITIONS, size=s)
        result.update({f"mean_shape_{k}": v for k, v in _landmark_figures(baseline).items()
                       if k.startswith("nme") or k.startswith("auc")})
    if ctx.chief:
        save_model(model, ctx.stage_dir("fll") / "model.keras", config_name=cfg.name)
    return result


def _denoiser_eval(fn, val, size):
    res = validation.evaluate_denoiser(fn, val, VAL_CONDITIONS, size=size)
    noisy = [v for k, v in res.items() if k != "clean"]
    return {"psnr_clean_output": res["clean"]["psnr_output"],
            "psnr_noisy_input": float(np.mean([v["psnr_input"] for v in noisy])),
            "psnr_noisy_output": float(np.mean([v["psnr_output"] for v in noisy])),
            "psnr_unit": "dB vs clean crop, mean over 12 noisy conditions"}


def train_dae(ctx):
    """Stage dae: the general denoiser of FADeNN-D."""
    cfg, task = ctx.cfg, TASKS["dae"]
    S, val = _inputs(ctx, task)
    parts, optimizer, step = _setup(ctx, task)
    denoise = _inference_fn(lambda x: parts.model(x, training=False), S)
    result = _train_task(ctx, task, parts, optimizer, step,
                         lambda _s: _denoiser_eval(denoise, val, S))
    if ctx.chief:
        save_model(parts.model, ctx.stage_dir("dae") / "model.keras", config_name=cfg.name)
    return result


def train_experts(ctx):
    """Stage experts: expert k learns to remove noise type k only (paper eq. 11)."""
    cfg, task = ctx.cfg, TASKS["experts"]
    S, val = _inputs(ctx, task)
    parts, optimizer, step = _setup(ctx, task)
    fns = [_inference_fn(lambda x, e=e: e(x, training=False), S) for e in parts.models]

    def evaluate(_step):
        out = {}
        for k, fn in enumerate(fns, start=1):
            conds = [(k, lv) for lv in LEVELS]
            res = validation.evaluate_denoiser(fn, val, conds, size=S)
            out[f"psnr_expert_{k}_input"] = float(np.mean([v["psnr_input"] for v in res.values()]))
            out[f"psnr_expert_{k}_output"] = float(np.mean([v["psnr_output"]
                                                           for v in res.values()]))
        out["psnr_unit"] = "dB vs clean crop, mean over the expert's own 3 levels"
        return out

    result = _train_task(ctx, task, parts, optimizer, step, evaluate)
    if ctx.chief:
        for k, e in enumerate(parts.models, start=1):
            save_model(e, ctx.stage_dir("experts") / f"expert_{k}.keras", config_name=cfg.name)
    return result


def _train_classifier(ctx, stage):
    cfg, task = ctx.cfg, TASKS[stage]
    S, val = _inputs(ctx, task)
    parts, optimizer, step = _setup(ctx, task)
    logits = pixel_model(logits_model(parts.cores["model"]))
    logits_fn = _inference_fn(lambda x: logits(x, training=False), S)

    def evaluate(_step):
        res = validation.evaluate_classifier(logits_fn, val, VAL_CONDITIONS, size=S)
        return {"accuracy": res["accuracy"], "confusion": res["confusion"],
                "accuracy_over": "13 conditions (clean + 4 types x 3 levels), each image once"}

    result = _train_task(ctx, task, parts, optimizer, step, evaluate)
    if ctx.chief:
        save_model(parts.model, ctx.stage_dir(stage) / "model.keras", config_name=cfg.name)
    return result


def train_stc(ctx):
    """Stage stc: single-task noise classifier (encoder + head, cross-entropy)."""
    return _train_classifier(ctx, "stc")


def train_mtc(ctx):
    """Stage mtc: multi-task noise classifier (auto-encoder + head, CE + lambda * L2)."""
    return _train_classifier(ctx, "mtc")


def load_parts(workdir, variant):
    """Load the trained parts a FADeNN-`variant` joint stage starts from (models taking
    pixels; build_fadenn nests their [-1, 1] cores). Files saved before the pixel interface
    load too (models.io wraps them)."""
    w = Path(workdir)
    parts = {"fll": load_model(w / "fll" / "model.keras")}
    if variant == "fll":  # the control: the same fine-tuning, no denoiser
        return parts
    if variant == "D":
        parts["dae"] = load_model(w / "dae" / "model.keras")
    else:
        parts["experts"] = [load_model(p) for p in stage_outputs(w, "experts")]
        parts["classifier"] = load_model(w / ("stc" if variant == "S" else "mtc") / "model.keras")
    return parts


def train_joint(ctx):
    """Stage joint: end-to-end fine-tuning of FADeNN-`variant` from the earlier stages.
    Trainable: the FLL and the denoiser(s); the classifier stays frozen. Variant "fll" is the
    control: the FLL alone fine-tuned with the same data, noise and steps. Returns the
    validation figures of the fine-tuned model and of the FLL baseline before fine-tuning."""
    cfg, variant, task = ctx.cfg, ctx.variant, TASKS["joint"]
    check_needs(ctx.workdir, "joint", variant)
    S, val = _inputs(ctx, task)
    with ctx.strategy.scope():
        loaded = load_parts(ctx.workdir, variant)
        baseline_fll = load_model(ctx.workdir / "fll" / "model.keras")
    parts, optimizer, step = _setup(ctx, task, init=False, variant=variant, parts=loaded)
    model = parts.model
    predict = _inference_fn(lambda x: model(x, training=False), S)

    def evaluate(_step):
        return _landmark_figures(validation.evaluate_landmarks(predict, val, VAL_CONDITIONS,
                                                               size=S))

    before = {}
    if val is not None:  # none with data.val_fraction 0
        baseline = build_fll_baseline(cfg.model, baseline_fll)
        base_fn = _inference_fn(lambda x: baseline(x, training=False), S)
        before = _landmark_figures(validation.evaluate_landmarks(base_fn, val, VAL_CONDITIONS,
                                                                 size=S))
    result = _train_task(ctx, task, parts, optimizer, step, evaluate)
    result.update({f"fll_baseline_{k}": v for k, v in before.items()
                   if k.split("_")[0] in ("nme", "auc", "fr")})
    if ctx.chief:
        save_model(model, ctx.stage_dir("joint") / "model.keras", variant=variant,
                   config_name=cfg.name)
    return result


STAGES = {"fll": train_fll, "dae": train_dae, "experts": train_experts, "stc": train_stc,
          "mtc": train_mtc, "joint": train_joint}


def stages_for(stage, variant):
    """The list of stages `--stage` runs for `variant` ("all" expands to the variant's)."""
    variant = normalize_variant(variant) if variant else "M"
    if stage == "all":
        if variant == "fll":
            return ["fll"]
        return list(STAGE_ORDER[variant])
    if stage not in STAGES:
        raise ConfigError(f"--stage {stage!r}: choose one of {', '.join(list(STAGES) + ['all'])}")
    return [stage]
