"""What a benchmark run measures (Settings) and the names of its sections, models, modes
and inference paths."""
import dataclasses

from fadenn_tf.training.tasks import bench_models

SECTIONS = ("peak", "flops", "train", "pipeline", "inference", "peer", "degrade", "api",
            "detect", "e2e")


# The train steps `bench` times: the registered stages (fadenn_tf.training.tasks) that are
# benchmarked, by folder name (fll, dae, mtc, joint-M).
TRAIN_MODELS = tuple(bench_models())


TRAIN_MODES = ("eager", "function", "xla", "bf16")  # bf16: tf.function, mixed_bfloat16


INFER_PATHS = ("keras", "saved_model", "tflite_float32", "tflite_float16",
               "tflite_dynamic_int8", "tflite_int8")


DLIB_MODEL = "/usr/share/dlib/shape_predictor_68_face_landmarks.dat"


TRAIN_FLOP_FACTOR = 3  # forward + backward ~ 3 x forward (estimate, used for train GFLOP/s)


@dataclasses.dataclass
class Settings:
    """What to run. configs: {name: ExperimentConfig}; models: inference variants;
    train_batch: {config name: batch} (default: the config's batch, 8 for "paper")."""
    configs: dict
    models: tuple = ("fll", "D", "S", "M")
    paper_models: tuple = ("fll",)        # inference variants for the "paper" config
    sections: tuple = SECTIONS
    train_models: tuple = TRAIN_MODELS
    train_modes: tuple = TRAIN_MODES
    paper_modes: tuple = ("function", "bf16")  # train step modes for the "paper" config
    infer_paths: tuple = INFER_PATHS
    repeats: int = 5
    warmup: int = 2
    train_steps: int = 5                  # timed steps per repeat group (see bench_train)
    infer_batch: int = 32
    matmul_n: int = 2048
    num_threads: int = 0                  # 0 = all cores of this process
    n_images: int = 32                    # test / calibration crops
    data: object = None                   # dataset folder; None = the synthetic default
    dlib_model: str = DLIB_MODEL
    train_batch: dict = dataclasses.field(default_factory=dict)
    api_model: object = None              # trained model for the api rows (None: untrained)
    detector: str = "default"             # api rows: face detector
    failure_detector: object = "auto"     # api rows: failure detector for tracking
    api_frames: int = 100                 # api rows: frames of the synthetic 640x360 clip
    detectors: tuple = ("default",)       # detect rows: detectors measured on real faces
    detect_images: int = 0                # detect rows: held-out images (0 = all)
    photos: object = None                 # e2e rows: folder of whole photos (None: synthetic)
    photo_limit: int = 0                  # e2e rows: at most this many photos (0 = all)
    startup_runs: int = 3                 # e2e rows: fresh processes timed for start-up


# `bench --quick`: the essentials in about 2 minutes on 2 cores (fields given on the command
# line are kept): the matmul peak, the tf.function train step of the FLL and of FADeNN-M,
# and Keras + TFLite float32 inference of the FLL and FADeNN-M (one conversion each), with
# 2 repeats. Everything else is skipped and the run says what.
QUICK = {"sections": ("peak", "train", "inference"), "train_models": ("fll", "joint-M"),
         "train_modes": ("function",), "paper_modes": ("function",), "models": ("fll", "M"),
         "infer_paths": ("keras", "tflite_float32"), "repeats": 2, "warmup": 1,
         "train_steps": 2, "matmul_n": 1024, "n_images": 8}
_QUICK_NAMES = {"sections": "sections", "train_models": "train models",
                "train_modes": "train modes", "paper_modes": "train modes of paper",
                "models": "inference variants",
                "infer_paths": "inference paths"}


def quick_settings(settings, keep=()):
    """(settings of `bench --quick`, what they skip as text) from `settings`: QUICK applied to
    every field not in `keep` (the fields the user set)."""
    changes = {k: v for k, v in QUICK.items() if k not in keep}
    quick = dataclasses.replace(settings, **changes)
    skipped = []
    for field, label in _QUICK_NAMES.items():
        dropped = [v for v in getattr(settings, field) if v not in getattr(quick, field)]
        if dropped:
            skipped.append(f"{label} {', '.join(dropped)}")
    return quick, "; ".join(skipped) or "nothing"
