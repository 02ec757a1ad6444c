"""The command sections of a config: `eval`, `export`, `track` and `bench` hold the defaults
of those commands (a command-line flag of the same meaning wins). Loaded, typed and checked
with the rest of the file by fadenn_tf.config.load_config; import them from there."""
from dataclasses import dataclass

from fadenn_tf.config_checks import check as _check
from fadenn_tf.config_checks import check_number as _number

NORMALIZERS = ("diagonal", "box", "interocular")    # fadenn_tf.metrics.NORMALIZER_INFO


@dataclass
class EvalConfig:
    """Defaults of `evaluate` (its flags of the same names win)."""
    conditions: str = "all"               # all | clean | noisy | a type | a comma list
    normalizer: str = "diagonal"          # NME normaliser: diagonal | box | interocular
    nme_threshold: float = 0.08           # AUC / failure-rate cut-off
    box_source: str = "gt"                # gt (tight landmark box) | detector
    batch_size: int = 32                  # crops per model call
    seed: int = 0                         # noise seed
    grid_images: int = 4                  # images per landmark figure
    flip_test: bool = False               # average each fit with its mirrored crop's fit

    def validate(self, where):
        _job_checks(self, where, "eval")
        _check(self.box_source in ("gt", "detector"), where, "eval.box_source",
               f"{self.box_source!r}: choose gt or detector")
        _number(self.batch_size, where, "eval.batch_size", lo=1, integer=True)
        _number(self.seed, where, "eval.seed", lo=0, integer=True)
        _number(self.grid_images, where, "eval.grid_images", lo=0, integer=True)


@dataclass
class ExportConfig:
    """Defaults of `export`."""
    tflite: str = ""                      # comma list of TFLite variants, or all
    max_images: int = 100                 # test / calibration crops
    normalizer: str = "diagonal"          # NME normaliser of the parity report
    repeats: int = 30                     # latency repeats

    def validate(self, where):
        _job_checks(self, where, "export")
        _number(self.max_images, where, "export.max_images", lo=1, integer=True)
        _number(self.repeats, where, "export.repeats", lo=1, integer=True)


@dataclass
class TrackConfig:
    """Defaults of `track`."""
    failure_threshold: float = 0.0        # P(good fit) below which a fit fails; 0 = the detector's
    shot_cuts: bool = True                # a shot cut drops the track
    detector: str = "default"             # face detector (re-initialisation)
    normalizer: str = "diagonal"          # --evaluate: NME normaliser
    nme_threshold: float = 0.08           # --evaluate: AUC / failure-rate cut-off

    def validate(self, where):
        _job_checks(self, where, "track")
        _number(self.failure_threshold, where, "track.failure_threshold", lo=0.0, hi=1.0)


@dataclass
class BenchConfig:
    """Defaults of `bench`."""
    repeats: int = 5                      # timed runs per figure (median)
    train_steps: int = 5                  # steps per timed group
    infer_batch: int = 32                 # inference batch
    threads: int = 0                      # 0 = all cores
    images: int = 32                      # test / calibration crops

    def validate(self, where):
        for key in ("repeats", "train_steps", "infer_batch", "images"):
            _number(getattr(self, key), where, f"bench.{key}", lo=1, integer=True)
        _number(self.threads, where, "bench.threads", lo=0, integer=True)


def _job_checks(section, where, name):
    """The keys job sections share: normaliser and NME threshold."""
    if hasattr(section, "normalizer"):
        _check(section.normalizer in NORMALIZERS, where, f"{name}.normalizer",
               f"{section.normalizer!r}: choose one of {', '.join(NORMALIZERS)}")
    if hasattr(section, "nme_threshold"):
        _number(section.nme_threshold, where, f"{name}.nme_threshold", lo=0.0, lo_open=True)
