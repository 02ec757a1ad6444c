"""The stage runner: one stage's task (fadenn_tf.training.tasks) trained in a workdir by
the shared loop, validated and saved, the same for every stage (paper section III-D).

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
cores under the task's names ("model", "expert_k") and "step", so older runs still resume.

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

from fadenn_tf.config import TRAINING_SECTIONS, config_from_dict, precision_mode
from fadenn_tf.data.pipeline import load_eval_data, load_train_data
from fadenn_tf.errors import ConfigError
from fadenn_tf.models.fadenn import normalize_variant
from fadenn_tf.training import transfer
from fadenn_tf.training.loop import LoopOptions, LoopSpec, guard_workdir, run_loop
from fadenn_tf.training.stream import StreamOptions, make_train_dataset
from fadenn_tf.training.tasks import all_stages, check_needs, get_task, task_names
from fadenn_tf.utils.atomic import write_json_atomic, write_text_atomic


@dataclasses.dataclass
class RunOptions:
    """How `train` runs its stages (the command line's choices). steps: per stage, 0 = the
    config's train.steps (fadenn_tf.training.tasks.Task.steps); resume: from the newest
    complete checkpoint; overwrite: start over on a workdir holding an earlier run; force:
    resume although the config or data differ from the run's; jit: XLA for the train step
    (or train.jit); progress: a progress bar; strategy: tf.distribute strategy name
    (training.distribute); logical_cpus: CPUs to split into devices for "mirrored"."""
    steps: int = 0
    resume: bool = False
    overwrite: bool = False
    force: bool = False
    jit: bool = False
    progress: bool = False
    strategy: str = "default"
    logical_cpus: int = 0


@dataclasses.dataclass
class StageContext:
    """Everything a stage needs. cfg: ExperimentConfig; variant: fll | D | S | M;
    train/val: lists of Samples; strategy: tf.distribute; options: RunOptions."""
    cfg: object
    variant: str
    workdir: Path
    strategy: object
    train: list
    val: list
    options: RunOptions = dataclasses.field(default_factory=RunOptions)
    chief: bool = True        # this worker writes the outputs
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
            self.loaded[key] = load_train_data(self.train, size,
                                               progress=self.options.progress)
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
                                              progress=self.options.progress)
        return self.loaded[key]

    def stage_dir(self, stage):
        """The folder of `stage` in the workdir (per-variant stages: NAME-V)."""
        return self.workdir / get_task(stage).folder(self.variant)


def stages_for(stage, variant):
    """The list of stages `--stage` runs for `variant` ("all": the recipe of the variant,
    fadenn_tf.training.tasks.all_stages). ConfigError for a stage that is not registered."""
    variant = normalize_variant(variant) if variant else "M"
    if stage == "all":
        return all_stages(variant)
    if stage not in task_names():
        raise ConfigError(f"--stage {stage!r}: choose one of "
                          f"{', '.join(task_names() + ('all',))}")
    return [stage]


def run_stage(ctx, name):
    """Train stage `name` in ctx.workdir: its task's parts (started from train.init_from for
    stages that start fresh), the loop, validation (when ctx.val has images) and the saved
    outputs (on the chief). Returns the final validation figures (dict), with the task's
    reference figures beside them."""
    task, cfg = get_task(name), ctx.cfg
    check_needs(ctx.workdir, name, ctx.variant)
    data = ctx.train_data(task.work_size(cfg))
    val = ctx.val_data()
    total = task.steps(cfg, ctx.options.steps)
    with ctx.strategy.scope():
        parts = task.build(ctx)
        if not task.needs(ctx.variant):
            _init_weights(ctx, task, parts.cores.values())
        optimizer = make_optimizer(cfg.train, cfg.train.mixed_precision, total_steps=total)
        optimizer.build(parts.variables())
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
    d, o = ctx.stage_dir(name), ctx.options
    d.mkdir(parents=True, exist_ok=True)
    if ctx.chief:  # before config.yaml: a refused run must not touch the earlier one's
        guard_workdir(d, resume=o.resume, overwrite=o.overwrite)
    _write_config(ctx, d)
    evaluate, reference = None, {}
    if val is not None:  # none with data.val_fraction 0
        evaluate = task.validation(ctx, parts, val)
        reference = task.reference_figures(ctx, parts, val)
    spec = LoopSpec(name=name, compute_losses=task.loss(cfg, parts), variables=parts.variables,
                    make_dataset=dataset_fn(ctx, data, task),
                    trackables={**parts.cores, "step": step}, total_steps=total,
                    global_batch=cfg.train.batch_size, evaluate=evaluate)
    loop = dataclasses.replace(LoopOptions.from_config(cfg.train), resume=o.resume,
                               overwrite=o.overwrite, chief=ctx.chief, progress=o.progress,
                               jit=o.jit or cfg.train.jit)
    result = run_loop(spec, optimizer, ctx.strategy, d, loop)
    result.update(reference)
    if ctx.chief:
        task.save(parts, d, cfg, ctx.variant)
    return result


def make_optimizer(train_cfg, mixed_precision="none", total_steps=None):
    """Adam with the config's schedule (train.lr_schedule: staircase decay, or cosine over
    `total_steps`), an EMA of the weights if train.ema_momentum > 0 (training.ema) and the
    gradients clipped to global norm train.clip_norm if > 0. Its state stays float32 (as the
    variables); fp16 adds dynamic loss scaling, bf16 needs none."""
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
                                ema_momentum=train_cfg.ema_momentum if ema else 0.99,
                                global_clipnorm=train_cfg.clip_norm or None)
    if precision_mode(mixed_precision) == "fp16":
        opt = keras.optimizers.LossScaleOptimizer(opt)
    return opt


def _init_weights(ctx, task, models):
    """Start `models` from train.init_from (a .keras file, a stage folder or a workdir):
    every layer whose name and weight shapes match is copied (training.transfer). Skipped
    when resuming (the checkpoint holds the weights) or when no source is set."""
    init_from = ctx.cfg.train.init_from
    if not init_from or ctx.options.resume and (ctx.stage_dir(task.name) / "checkpoints").is_dir():
        return
    models = list(models)
    sources = transfer.resolve_sources(init_from, task.name, len(models))
    for model, (source, desc) in zip(models, sources):
        print(f"   {task.name}: {transfer.copy_matching(model, source, desc)}")


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
    data that differ from the run's unless ctx.options.force."""
    text = yaml.safe_dump(ctx.cfg.to_dict(TRAINING_SECTIONS), sort_keys=False)
    path = d / "config.yaml"
    plan = {"config_sha256": hashlib.sha256(text.encode()).hexdigest(),
            "data_sha256": data_fingerprint(ctx.train), "train_samples": len(ctx.train)}
    if ctx.options.resume:
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
        if changed and not ctx.options.force:
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


def dataset_fn(ctx, data, task):
    """make(start_step, input_context) of the stage's input pipeline (the task's crops,
    noise and occlusion; StreamOptions.for_task) on TrainData `data`."""
    batch_size = ctx.cfg.train.batch_size
    size, options = task.input_size(ctx.cfg), StreamOptions.for_task(task, ctx.cfg)

    def make(start_step, input_context=None):
        """Per-replica batches of this input pipeline, element 0 = step start_step. A
        pipeline feeding R local replicas yields R consecutive elements per step (the
        strategy hands them out in turn), so every replica is its own shard of the global
        stream and a resumed run starts at element R * start_step, not start_step."""
        pipeline, pipelines, replicas, batch = 0, 1, 1, batch_size
        if input_context is not None:
            pipeline, pipelines = input_context.input_pipeline_id, input_context.num_input_pipelines
            replicas = input_context.num_replicas_in_sync // pipelines
            batch = input_context.get_per_replica_batch_size(batch_size)
        streams = [make_train_dataset(data, size, batch, options, start_step=start_step,
                                      shard_index=pipeline * replicas + r,
                                      num_shards=pipelines * replicas)
                   for r in range(replicas)]
        if replicas == 1:
            return streams[0]
        return tf.data.Dataset.choose_from_datasets(
            streams, tf.data.Dataset.range(replicas).repeat())
    return make
