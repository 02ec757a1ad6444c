"""Experiment configuration: dataclasses loaded from YAML and validated before any work.

A config file has sections mapping onto dataclasses: `model`, `data`, `train` and `noise`
(below; what training reads, written to each stage's config.yaml), and `eval`, `export`,
`track` and `bench` (fadenn_tf.config_commands, re-exported here: the defaults of those
commands; a command-line flag wins). Every command
that takes `--config` also takes `--set SECTION.KEY=VALUE` (parse_sets), typed and checked
like the file. Unknown keys, wrong types and out-of-range values raise `ConfigError`
naming the file and the key. The named configs ship inside the package (`fadenn_tf/configs/`):
`paper` holds the paper's settings (the documented default); `cpu` a small configuration that
trains on 2 CPU cores.
"""
import dataclasses
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from fadenn_tf.config_checks import check as _check
from fadenn_tf.config_checks import check_number as _number
from fadenn_tf.config_commands import (NORMALIZERS, BenchConfig, EvalConfig,  # noqa: F401
                                       ExportConfig, TrackConfig)              # (re-exported)
from fadenn_tf.errors import ConfigError

CONFIGS_PACKAGE = "fadenn_tf.configs"    # named configs: package data, not the source tree
REFERENCE_SIZE = 224                    # default side R of the noise protocol's reference crop
NOISE_TYPES = ("clean", "downsample", "blur", "gaussian_noise", "color_scale")


@dataclass
class IIDConfig:
    """Internal image denoiser (DAE, STC, MTC, experts). Images are input_size^2 x 3 in [-1, 1]."""
    input_size: int = 224                 # pixels; divisible by space_to_depth * 2**len(filters)
    filters: tuple = (32, 48, 64, 72, 108)  # encoder stages; the decoder mirrors them
    latent_dim: int = 512                 # dense bottleneck
    leaky_slope: float = 0.2              # LeakyReLU slope of the encoder
    head_hidden: int = 256                # noise-classifier hidden units (linear, as the original)
    num_classes: int = 5                  # 0 clean, 1 down-sampling, 2 blur, 3 noise, 4 colour
    full_res_channels: int = 3            # channels of the full-resolution skip (paper: 3)
    residual: bool = False                # output = clip(input + correction); paper: False (tanh)
    space_to_depth: int = 1               # block b: the auto-encoder runs at input_size / b on
                                          # b*b*3 channels (pixel unshuffle in, shuffle out); paper: 1
    refine_convs: int = 0                 # conv 3x3 + ReLU layers after the decoder's last skip
                                          # add (full_res_channels wide); paper: 0

    def validate(self, where):
        _number(self.input_size, where, "iid.input_size", lo=1, integer=True)
        _check(len(self.filters) > 0, where, "iid.filters", "must list at least one stage")
        for i, f in enumerate(self.filters):
            _number(f, where, f"iid.filters[{i}]", lo=1, integer=True)
        _number(self.latent_dim, where, "iid.latent_dim", lo=1, integer=True)
        _number(self.head_hidden, where, "iid.head_hidden", lo=1, integer=True)
        _number(self.leaky_slope, where, "iid.leaky_slope", lo=0.0)
        _number(self.space_to_depth, where, "iid.space_to_depth", lo=1, integer=True)
        _number(self.refine_convs, where, "iid.refine_convs", lo=0, integer=True)
        div = int(self.space_to_depth) * 2 ** len(self.filters)
        _check(self.input_size % div == 0, where, "iid.input_size",
               f"{self.input_size} is not divisible by space_to_depth * 2**{len(self.filters)}"
               f" = {div}")
        _check(self.num_classes == 5, where, "iid.num_classes", "must be 5 (clean + 4 noise types)")
        _number(self.full_res_channels, where, "iid.full_res_channels", lo=1, integer=True)
        _check(isinstance(self.residual, bool), where, "iid.residual", "must be true or false")


@dataclass
class FLLConfig:
    """Facial landmark localiser: Inception-ResNet-v1 + a regression or a heatmap head."""
    input_size: int = 128                 # crop side in pixels
    num_points: int = 68
    width: float = 1.0                    # multiplier on every backbone filter count
    blocks: tuple = (5, 10, 5)            # block35, block17, block8 repeats
    dropout_keep: float = 0.8
    bn_momentum: float = 0.995
    bn_epsilon: float = 1e-3
    head: str = "regression"              # regression (the paper's) | heatmap (soft-argmax)
    heatmap_stride: int = 4               # heatmap: crop pixels per grid cell, 4 or 8
    heatmap_channels: int = 64            # heatmap: width of the head's convs

    def validate(self, where):
        _number(self.input_size, where, "fll.input_size", lo=32, integer=True)
        _check(self.head in ("regression", "heatmap"), where, "fll.head",
               f"{self.head!r}: choose regression (the paper's) or heatmap")
        _check(self.heatmap_stride in (4, 8) and self.input_size % self.heatmap_stride == 0,
               where, "fll.heatmap_stride", f"{self.heatmap_stride!r}: must be 4 or 8 and "
               f"divide fll.input_size ({self.input_size})")
        _number(self.heatmap_channels, where, "fll.heatmap_channels", lo=1, integer=True)
        _number(self.num_points, where, "fll.num_points", lo=1, integer=True)
        _number(self.width, where, "fll.width", lo=0.0, hi=4.0, lo_open=True)
        _check(len(self.blocks) == 3, where, "fll.blocks", "must be three non-negative repeat "
               f"counts, got {list(self.blocks)}")
        for i, b in enumerate(self.blocks):
            _number(b, where, f"fll.blocks[{i}]", lo=0, integer=True)
        _number(self.dropout_keep, where, "fll.dropout_keep", lo=0.0, hi=1.0, lo_open=True)
        _number(self.bn_momentum, where, "fll.bn_momentum", lo=0.0, hi=1.0, hi_open=True)
        _number(self.bn_epsilon, where, "fll.bn_epsilon", lo=0.0, lo_open=True)


@dataclass
class ModelConfig:
    iid: IIDConfig = field(default_factory=IIDConfig)
    fll: FLLConfig = field(default_factory=FLLConfig)
    crop_scale: float = 2.0               # the crop: face box x this, clipped (paper: 2); the
                                          # model records it; (1, 2]: fadenn_tf.noise windows

    def validate(self, where):
        self.iid.validate(where)
        self.fll.validate(where)
        _number(self.crop_scale, where, "model.crop_scale", lo=1.0, hi=2.0, lo_open=True)


@dataclass
class AugmentConfig:
    """Training augmentation (paper section III-D) and box jitter (field notes)."""
    rotation_deg: float = 45.0            # uniform in [-rotation_deg, rotation_deg]
    flip: bool = True                     # horizontal flip with the 68-point permutation
    occlusion_prob: float = 0.5           # probability of one occluding stripe/block (FLL)
    box_jitter: object = True             # paper (= true): x-min/x-max/y-min U(-.25,.25),
    #   y-max U(.05,.25) of the box size; detector: every edge U(-.1,.1), the spread of the
    #   default detector's boxes; none (= false). fadenn_tf.data.crop.BOX_JITTERS

    def jitter_kind(self):
        """The box jitter's name ("paper", "detector") or "" for none."""
        kind = {True: "paper", False: ""}.get(self.box_jitter, self.box_jitter)
        return "" if kind == "none" else kind

    def validate(self, where):
        _number(self.rotation_deg, where, "data.augment.rotation_deg", lo=0.0, hi=180.0)
        _number(self.occlusion_prob, where, "data.augment.occlusion_prob", lo=0.0, hi=1.0)
        _check(self.box_jitter in (True, False, "paper", "detector", "none"), where,
               "data.augment.box_jitter",
               f"{self.box_jitter!r}: choose paper (or true), detector or none (or false)")


@dataclass
class DataConfig:
    """Where the data comes from. `dataset: synthetic` is the built-in default."""
    dataset: str = "synthetic"            # "synthetic" or a folder path
    format: str = "auto"                  # auto | 300w | menpo | folder | 300vw | synthetic
    val_split: str = "test"               # for 300-W: common | challenging | full | test
    val_fraction: float = 0.15            # held-out share when the data has no test split
    split_seed: int = 0
    max_val_images: int = 0               # 0 = all
    short_run_val_images: int = 50        # a run of <= 200 steps per stage validates on the
                                          # first N val images when max_val_images is 0
                                          # (data.splits.SHORT_RUN_STEPS); 0 = all
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    clean_prob: float = 0.2               # noise type drawn uniformly from {clean, 1..4}

    def validate(self, where):
        _check(self.format in ("auto", "300w", "menpo", "folder", "300vw", "synthetic"), where,
               "data.format", f"unknown format {self.format!r}")
        _number(self.val_fraction, where, "data.val_fraction", lo=0.0, hi=1.0, hi_open=True)
        _number(self.clean_prob, where, "data.clean_prob", lo=0.0, hi=1.0)
        _number(self.max_val_images, where, "data.max_val_images", lo=0, integer=True)
        _number(self.short_run_val_images, where, "data.short_run_val_images", lo=0,
                integer=True)
        _number(self.split_seed, where, "data.split_seed", lo=0, integer=True)
        self.augment.validate(where)


@dataclass
class NoiseConfig:
    """Noise protocol (fadenn_tf.noise): conditions are applied to the 2x-box face crop
    resampled to reference_size x reference_size pixels, then resized to each model's input."""
    reference_size: int = REFERENCE_SIZE  # pixels; the paper's IID input

    def validate(self, where):
        _check(32 <= self.reference_size <= 1024, where, "noise.reference_size",
               f"{self.reference_size} is not in [32, 1024] pixels (blur-3 needs > 15)")


@dataclass
class TrainConfig:
    """Optimisation. Adam, lr decayed by `lr_decay_rate` every `lr_decay_steps` (staircase)."""
    batch_size: int = 64
    learning_rate: float = 1e-4
    lr_decay_steps: int = 1000
    lr_decay_rate: float = 0.96
    mtc_lambda: float = 0.5               # MTC loss = CE + mtc_lambda * L2 reconstruction
    # Steps per stage (the paper's); a stage without an entry trains its task's default_steps.
    # The stage names are checked against the registry of training stages when training
    # starts (fadenn_tf.training.tasks.check_step_names).
    steps: dict = field(default_factory=lambda: {
        "fll": 100000, "dae": 50000, "experts": 20000, "stc": 20000, "mtc": 20000, "joint": 10000})
    eval_every: int = 1000
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    log_every: int = 50
    mixed_precision: object = "none"      # none | fp16 (GPUs) | bf16 (AVX512-BF16/AMX CPUs)
    jit: bool = False                     # XLA for the train step
    seed: int = 0
    landmark_loss: str = "rmse"           # rmse (the paper's) | l1 | wing, in crop pixels
    wing_w: float = 10.0                  # Wing loss: log-shaped below w pixels ...
    wing_epsilon: float = 2.0             # ... with curvature set by epsilon pixels
    init_from: str = ""                   # weights to start from (see --init-from); "" = none
    lr_schedule: str = "step"             # step (staircase decay above) | cosine (to
    cosine_alpha: float = 0.01            #   cosine_alpha x lr at the stage's last step)
    ema_momentum: float = 0.0             # EMA of the weights (e.g. 0.999): validation and
                                          #   the saved model use it; 0 = off (the paper)
    clip_norm: float = 0.0                # clip the gradients to this global norm before
                                          #   the update (e.g. 10); 0 = off (the paper)

    def validate(self, where):
        _number(self.batch_size, where, "train.batch_size", lo=1, integer=True)
        _number(self.learning_rate, where, "train.learning_rate", lo=0.0, lo_open=True)
        _number(self.lr_decay_steps, where, "train.lr_decay_steps", lo=1, integer=True)
        _number(self.lr_decay_rate, where, "train.lr_decay_rate", lo=0.0, hi=1.0, lo_open=True)
        _number(self.mtc_lambda, where, "train.mtc_lambda", lo=0.0)
        _check(isinstance(self.steps, dict), where, "train.steps",
               "must map stage names to numbers of steps")
        for stage, v in self.steps.items():
            _number(v, where, f"train.steps.{stage}", lo=1, integer=True)
        for key in ("eval_every", "checkpoint_every", "keep_checkpoints", "log_every"):
            _number(getattr(self, key), where, f"train.{key}", lo=1, integer=True)
        _number(self.seed, where, "train.seed", lo=0, hi=2 ** 32 - 1, integer=True)
        self.mixed_precision = precision_mode(self.mixed_precision, where)
        _check(self.landmark_loss in LANDMARK_LOSSES, where, "train.landmark_loss",
               f"{self.landmark_loss!r}: choose one of {', '.join(LANDMARK_LOSSES)}")
        _check(self.wing_w > 0 and self.wing_epsilon > 0, where, "train.wing_w/wing_epsilon",
               "must be > 0")
        _check(self.lr_schedule in LR_SCHEDULES, where, "train.lr_schedule",
               f"{self.lr_schedule!r}: choose one of {', '.join(LR_SCHEDULES)}")
        _number(self.cosine_alpha, where, "train.cosine_alpha", lo=0.0, hi=1.0)
        _number(self.ema_momentum, where, "train.ema_momentum", lo=0.0, hi=1.0, hi_open=True)
        _number(self.clip_norm, where, "train.clip_norm", lo=0.0)


LANDMARK_LOSSES = ("rmse", "l1", "wing")
LR_SCHEDULES = ("step", "cosine")
PRECISIONS = {"none": "float32", "fp16": "mixed_float16", "bf16": "mixed_bfloat16"}


def precision_mode(value, where="<config>"):
    """Normalise a mixed-precision setting to "none", "fp16" or "bf16". Accepts those names,
    the Keras policy names, and YAML booleans (false/off -> none, true -> fp16, the old
    meaning)."""
    if value in (None, False) or value in ("none", "off", "float32", ""):
        return "none"
    if value is True or value in ("fp16", "float16", "mixed_float16"):
        return "fp16"
    if value in ("bf16", "bfloat16", "mixed_bfloat16"):
        return "bf16"
    raise ConfigError(f"{where}: train.mixed_precision: {value!r}: choose none, fp16 (GPUs) "
                      f"or bf16 (CPUs with AVX512-BF16/AMX, and recent GPUs)")


@dataclass
class ExperimentConfig:
    name: str = "paper"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    track: TrackConfig = field(default_factory=TrackConfig)
    bench: BenchConfig = field(default_factory=BenchConfig)

    def validate(self, where="<config>"):
        _check(isinstance(self.name, str) and self.name.strip() != "", where, "name",
               "must be a non-empty string")
        for section in ("model", "data", "train", "noise", "eval", "export", "track", "bench"):
            getattr(self, section).validate(where)
        return self

    def to_dict(self, sections=None):
        """Plain nested dict; `sections` (names) keeps only those (and the name)."""
        d = _to_plain(dataclasses.asdict(self))
        return d if sections is None else {k: v for k, v in d.items()
                                           if k == "name" or k in sections}


# What training reads: the sections written to each stage's config.yaml and fingerprinted.
TRAINING_SECTIONS = ("model", "data", "train", "noise")
# Keys that nothing reads any more: accepted in files (older workdirs' config.yaml), dropped.
RETIRED_KEYS = {"data": ("shuffle_buffer", "cache_decoded", "train_split")}


def drop_retired(data):
    """`data` (a config dict) without RETIRED_KEYS."""
    out = dict(data)
    for section, keys in RETIRED_KEYS.items():
        if isinstance(out.get(section), dict):
            out[section] = {k: v for k, v in out[section].items() if k not in keys}
    return out


def parse_sets(items):
    """["train.learning_rate=5e-4", ...] (--set) -> nested overrides dict. Values are read as
    YAML (5e-4 and 1e3 as numbers); ConfigError on an item without KEY=VALUE."""
    out = {}
    for item in items or ():
        key, sep, text = str(item).partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise ConfigError(f"--set {item!r}: expected SECTION.KEY=VALUE, e.g. "
                              f"train.learning_rate=5e-4")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            value = text
        if isinstance(value, str):
            try:
                value = float(value) if any(c in value.lower() for c in ".e") else int(value)
            except ValueError:
                pass
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {p} is set twice")
        node[parts[-1]] = value
    return out


def _to_plain(obj):
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_plain(v) for v in obj]
    return obj


def _build(cls, data, where, prefix):
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: {prefix or 'top level'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"{where}: {prefix}{sorted(unknown)[0]}: unknown key "
                          f"(known: {', '.join(sorted(names))})")
    kwargs = {}
    for name, value in data.items():
        typ = hints[name]
        key = f"{prefix}{name}"
        if dataclasses.is_dataclass(typ):
            kwargs[name] = _build(typ, value, where, key + ".")
        else:
            kwargs[name] = _coerce(typ, value, where, key)
    return cls(**kwargs)


def _coerce(typ, value, where, key):
    try:
        if typ is bool:
            if not isinstance(value, bool):
                raise TypeError
            return value
        if typ is int:
            if isinstance(value, bool) or int(value) != value:
                raise TypeError
            return int(value)
        if typ is float:
            if isinstance(value, bool):
                raise TypeError
            return float(value)
        if typ is str:
            if not isinstance(value, str):
                raise TypeError
            return value
        if typ is tuple:
            if not isinstance(value, (list, tuple)):
                raise TypeError
            return tuple(value)
        if typ is dict:
            if not isinstance(value, dict):
                raise TypeError
            return dict(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {key}: expected {typ.__name__}, got {value!r}") from None
    return value


def config_from_dict(data, where="<dict>"):
    """Build and validate an ExperimentConfig from a nested dict (retired keys dropped)."""
    return _build(ExperimentConfig, drop_retired(data), where, "").validate(where)


def load_config(path_or_name="cpu", overrides=None, sets=None):
    """Load a named config shipped in `fadenn_tf/configs/` (e.g. "cpu") or a YAML path.

    `sets` is a list of --set items (parse_sets) merged over the file, `overrides` a nested
    dict (a command's own flags) merged over both, before validation. Raises ConfigError
    naming the file (and --set) and key on any problem.
    """
    path = resolve_config_path(path_or_name)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if sets:
        data = _merge(data, parse_sets(sets))
    if overrides:
        data = _merge(data, overrides)
    return config_from_dict(data, where=f"{path}" + (" with --set" if sets else ""))


def resolve_config_path(path_or_name):
    """A YAML path as given, or the packaged config `<name>.yaml` (a Traversable)."""
    p = Path(path_or_name)
    if p.suffix in (".yaml", ".yml"):
        if not p.is_file():
            raise ConfigError(f"{p}: config file not found")
        return p
    named = resources.files(CONFIGS_PACKAGE) / f"{path_or_name}.yaml"
    if named.is_file():
        return named
    raise ConfigError(f"{path_or_name}: no such config (give a .yaml path or one of "
                      f"{', '.join(available_configs())})")


def available_configs():
    """Names of the configs shipped with the package."""
    return sorted(e.name[:-5] for e in resources.files(CONFIGS_PACKAGE).iterdir()
                  if e.name.endswith(".yaml"))


def _merge(base, over):
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out
