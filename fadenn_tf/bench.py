"""Benchmarks: training step, input pipeline, inference paths, FLOPs against a measured
matrix-multiply peak, and dlib's ERT as the peer. One table, JSON + Markdown.

    python -m fadenn_tf.bench                                  # cpu config, every section
    python -m fadenn_tf.bench --config cpu,paper --repeats 7 --out runs/bench

Every figure is the median of `repeats` timed runs after warm-up. Units: images/s (faces
per second), latency ms per face at batch 1, FLOPs per face (one image through the model at
its input size), GFLOP/s = FLOPs x images/s / 1e9, "% peak" = GFLOP/s / measured float32
matmul GFLOP/s of this machine. Models are freshly initialised (speed does not depend on the
weights); the training batches are fixed random tensors (the pipeline is measured on its own).
"""
import dataclasses
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from fadenn_tf.utils.lazy import lazy_import
tf = lazy_import("tensorflow")        # imported at first use: fast --help

from fadenn_tf import flops as flops_mod
from fadenn_tf.utils.cli_args import non_negative_int, positive_int

SECTIONS = ("peak", "flops", "train", "pipeline", "inference", "peer", "degrade", "api")
TRAIN_MODELS = ("fll", "dae", "mtc", "joint-M")
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
    failure_detector: object = None       # api rows: failure detector .npz for tracking
    api_frames: int = 100                 # api rows: frames of the synthetic 640x360 clip


# ----------------------------------------------------------------------------- machine

def cpu_count():
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def machine_info():
    """{"cpu", "cores", "tensorflow", "python", "load_avg" (1, 5, 15 min), "time"}."""
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    flags = ""
    try:
        text = Path("/proc/cpuinfo").read_text()
        f = next(line for line in text.splitlines() if line.startswith("flags")).split()
        flags = " ".join(x for x in ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16",
                                               "amx_tile", "amx_bf16")
                         if x in f)
    except (OSError, StopIteration):
        pass
    return {"cpu": model, "cpu_flags": flags, "cores": cpu_count(),
            "tensorflow": tf.__version__, "python": platform.python_version(),
            "load_avg": load, "time": time.strftime("%Y-%m-%d %H:%M:%S")}


def median_seconds(fn, repeats, warmup=1):
    """Median wall time (s) of fn() over `repeats` calls after `warmup` calls."""
    from fadenn_tf.tflite_runner import median_latency_ms
    return median_latency_ms(fn, repeats=repeats, warmup=warmup) / 1e3


def measure_matmul_peak(n=2048, repeats=10, warmup=2):
    """Measured float32 matmul throughput: tf.linalg.matmul of two n x n matrices (all
    cores, tf.function). Returns {"n", "gflops" (median), "gflops_best"}. run_benchmark
    measures it at the start and the end and keeps the higher median."""
    a = tf.random.normal([n, n], dtype=tf.float32)
    b = tf.random.normal([n, n], dtype=tf.float32)
    mm = tf.function(lambda x, y: tf.reduce_sum(tf.linalg.matmul(x, y)[0, :1]))
    times = []
    for i in range(warmup + repeats):
        t0 = time.perf_counter()
        mm(a, b).numpy()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    f = flops_mod.matmul_flops(n)
    return {"n": n, "gflops": f / statistics.median(times) / 1e9,
            "gflops_best": f / min(times) / 1e9}


# ----------------------------------------------------------------------------- training

def _train_setup(cfg, which, batch, seed=0):
    """(variables, step_fn(batch_dict) -> loss, batch dict, optimizer) for a train model."""
    from fadenn_tf import losses
    from fadenn_tf.models import (build_dae, build_fll, build_mtc, build_variant, core_of,
                                  pixel_model, to_points)
    from fadenn_tf.training.stages import JOINT_REC_WEIGHT
    rng = np.random.default_rng(seed)
    mc = cfg.model
    S, s = mc.iid.input_size, mc.fll.input_size
    size = s if which == "fll" else S

    def img():
        return tf.constant(rng.uniform(0, 255, (batch, size, size, 3)).astype(np.float32))
    data = {"image": img(), "clean": img(),
            "landmarks": tf.constant(rng.uniform(0, size - 1, (batch, 68, 2)).astype(np.float32)),
            "noise_type": tf.constant(rng.integers(0, 5, batch).astype(np.int32))}
    if which == "fll":
        model = pixel_model(build_fll(mc.fll))

        def compute(b):
            return losses.landmark_rmse(to_points(model(b["image"], training=True)),
                                        b["landmarks"])
    elif which == "dae":
        model = pixel_model(build_dae(mc.iid))

        def compute(b):
            return losses.reconstruction_l2(model(b["image"], training=True), b["clean"])
    elif which == "mtc":
        model = pixel_model(build_mtc(mc.iid))
        lam = float(cfg.train.mtc_lambda)

        def compute(b):
            out = model(b["image"], training=True)
            return losses.mtc_loss(out["logits"], out["reconstruction"], b["noise_type"],
                                   b["image"], lam)
    elif which == "joint-M":
        model = build_variant(mc, "M")
        core_of(model).get_layer("classifier").trainable = False
        ratio = s / S

        def compute(b):
            out = model(b["image"], training=True)
            return (losses.landmark_rmse(out["landmarks"], b["landmarks"]) * ratio
                    + JOINT_REC_WEIGHT * losses.reconstruction_l2(out["denoised"], b["clean"]))
    else:
        raise ValueError(f"unknown train model {which!r}; choose {', '.join(TRAIN_MODELS)}")
    variables = model.trainable_variables
    return model, variables, compute, data, size


def _make_step(variables, compute, optimizer, mode):
    """The train step of fadenn_tf.training.loop (one replica): per-example loss averaged
    over the batch, gradients, Adam update. mode: eager | function | xla."""
    def step(b):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(compute(b))
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables))
        return loss
    if mode == "eager":
        return step
    if mode == "function":
        return tf.function(step)
    if mode == "xla":
        return tf.function(step, jit_compile=True)
    raise ValueError(f"unknown mode {mode!r}; choose {', '.join(TRAIN_MODES)}")


def bench_train(cfg, which, mode, batch, steps=5, repeats=3, warmup=1):
    """Images/s of one train step of `which` (fll | dae | mtc | joint-M) in `mode`.

    Times `repeats` groups of `steps` steps (each synchronised on the loss) after the first
    call (tracing / XLA compilation, reported as first_call_s) and `warmup` steps; the
    figure is the median group. Returns a dict."""
    from fadenn_tf.training.stages import make_optimizer
    import keras
    policy = keras.mixed_precision.global_policy().name
    if mode == "bf16":  # the model's layers take the policy when they are built
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model, variables, compute, data, size = _train_setup(cfg, which, batch)
        opt = make_optimizer(cfg.train, "bf16" if mode == "bf16" else "none")
        opt.build(variables)
        step = _make_step(variables, compute, opt, "function" if mode == "bf16" else mode)
        t0 = time.perf_counter()
        loss = float(step(data).numpy())
        first = time.perf_counter() - t0

        def group():
            for _ in range(steps):
                step(data).numpy()
        sec = median_seconds(group, repeats, warmup) / steps
    finally:
        keras.mixed_precision.set_global_policy(policy)
    return {"images_per_s": batch / sec, "step_ms": sec * 1e3, "first_call_s": first,
            "loss_finite": bool(np.isfinite(loss)), "crop": size, "batch": batch}


def bench_pipeline(cfg, which, batch, data, steps=5, repeats=3):
    """Images/s of the training input pipeline (make_train_dataset) for the data of a train
    model: crop size, noise and occlusion as that stage uses them. `data`: a list of Samples
    or a {size: TrainData} cache (filled here)."""
    from fadenn_tf.data.pipeline import benchmark_pipeline, load_train_data, make_train_dataset
    mc = cfg.model
    size = mc.fll.input_size if which == "fll" else mc.iid.input_size
    work = size if which == "fll" else cfg.noise.reference_size   # noisy streams: reference side
    samples, cache = data
    if work not in cache:
        cache[work] = load_train_data(samples, work)
    ds = make_train_dataset(cache[work], size, batch, augment=cfg.data.augment,
                            clean_prob=cfg.data.clean_prob, noise=which != "fll",
                            occlusion=which in ("fll", "joint-M"),
                            reference_size=cfg.noise.reference_size)
    rates = [benchmark_pipeline(ds, steps=steps, warmup=2)[0] for _ in range(repeats)]
    return {"images_per_s": statistics.median(rates), "crop": size, "batch": batch}


# ----------------------------------------------------------------------------- inference

TFLITE_OPTIONS = ("1thread", "no-xnnpack", "latest")


def _tflite_interpreter(content, num_threads, option=None):
    """LiteRT interpreter on `num_threads` threads. option: None; "1thread" (LiteRT's default
    when num_threads is not given, as fadenn_tf.tflite_runner.load_tflite does); "no-xnnpack"
    (builtin kernels without the default XNNPACK delegate); "latest" (XNNPACK with
    experimental_default_delegate_latest_features)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    if option not in (None,) + TFLITE_OPTIONS:
        raise ValueError(f"unknown TFLite option {option!r}; choose {', '.join(TFLITE_OPTIONS)}")
    kw = {"model_content": bytes(content), "num_threads": 1 if option == "1thread" else num_threads}
    if option == "no-xnnpack":
        kw["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    if option == "latest":
        kw["experimental_default_delegate_latest_features"] = True
    return Interpreter(**kw)


def bench_callable(fn, x1, xb, repeats=5, warmup=2):
    """(ms per face at batch 1, images/s at batch len(xb)) of fn(x) (which must return
    host arrays or tensors it has synchronised)."""
    lat = median_seconds(lambda: fn(x1), max(repeats, 10), warmup) * 1e3
    sec = median_seconds(lambda: fn(xb), repeats, warmup)
    return lat, len(xb) / sec


def _sync(out):
    """Force host results (TF is asynchronous only in appearance on CPU, but be explicit)."""
    return {k: np.asarray(v) for k, v in out.items()}


def keras_predict_fn(model):
    """Compiled predict function images [B,S,S,3] float32 0..255 -> outputs (host); the
    model scales its input itself, as in the SavedModel's serving_default."""
    s = int(model.inputs[0].shape[1])

    @tf.function(input_signature=[tf.TensorSpec([None, s, s, 3], tf.float32)])
    def predict(images):
        return model(images, training=False)
    return lambda x: _sync(predict(tf.constant(x)))


def tflite_predict_fn(interpreter):
    """images [B,S,S,3] float32 0..255 -> outputs, through the serving_default runner."""
    runner = interpreter.get_signature_runner("serving_default")
    (name,) = runner.get_input_details()
    return lambda x: runner(**{name: x})


def bench_inference(model, paths, crops, batch=32, repeats=5, warmup=2, num_threads=None,
                    workdir=None, representative=None):
    """Rows {path, latency_ms_b1, images_per_s, ...} for each inference path of `model`
    (keras | saved_model | tflite_<float32|float16|dynamic_int8|int8>[@<TFLITE_OPTIONS>])
    (an end-to-end FADeNN-interface Keras model). crops [N,S,S,3] float32 0..255 (N >= 1;
    tiled to `batch`). Paths that cannot run give a row with "error"."""
    from fadenn_tf import export
    x1 = np.ascontiguousarray(crops[:1], np.float32)
    reps = int(np.ceil(batch / len(crops)))
    xb = np.ascontiguousarray(np.concatenate([crops] * reps)[:batch], np.float32)
    rows = []
    saved = None
    converted = {}
    tmp = tempfile.TemporaryDirectory(dir=workdir)
    try:
        for path in paths:
            row = {"path": path}
            try:
                t0 = time.perf_counter()
                if path == "keras":
                    fn = keras_predict_fn(model)
                elif path == "saved_model" or path.startswith("tflite_"):
                    if saved is None:
                        saved = export.export_saved_model(model, Path(tmp.name) / "sm", 1)
                    if path == "saved_model":
                        sig = tf.saved_model.load(str(saved)).signatures["serving_default"]
                        fn = (lambda s: lambda x: _sync(s(images=tf.constant(x))))(sig)
                    else:
                        variant, _, option = path[len("tflite_"):].partition("@")
                        if variant not in converted:
                            converted[variant] = export.convert_tflite(saved, variant,
                                                                       representative)
                        content = converted[variant]
                        row["size_mb"] = len(content) / 1e6
                        fn = tflite_predict_fn(_tflite_interpreter(content, num_threads,
                                                                   option or None))
                else:
                    raise ValueError(f"unknown inference path {path!r}")
                row["prepare_s"] = time.perf_counter() - t0
                row["latency_ms_b1"], row["images_per_s"] = bench_callable(
                    fn, x1, xb, repeats, warmup)
                row["batch"] = batch
            except Exception as exc:  # report, do not abort the whole benchmark
                row["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
            rows.append(row)
    finally:
        tmp.cleanup()
    return rows


# ----------------------------------------------------------------------------- peer

def bench_dlib(samples, model_path=DLIB_MODEL, repeats=5):
    """dlib ERT 68-point per-face latency (ms, median over faces of the median of `repeats`
    calls) on the images of `samples`, box = the tight landmark box. Returns a dict with
    "error" when dlib or its model file is missing."""
    try:
        import dlib
    except ImportError:
        return {"error": "dlib not installed (pip install dlib-bin)"}
    if not Path(model_path).is_file():
        return {"error": f"{model_path}: dlib 68-point model not found (apt-get install "
                         "libdlib-data, or pass --dlib-model)"}
    from fadenn_tf.data.crop import landmark_box
    from fadenn_tf.data.datasets import read_sample_image
    predictor = dlib.shape_predictor(str(model_path))
    per_face = []
    for s in samples:
        img = np.ascontiguousarray(read_sample_image(s))
        x0, y0, x1, y1 = [int(round(v)) for v in landmark_box(s.landmarks)]
        rect = dlib.rectangle(x0, y0, x1, y1)
        per_face.append(median_seconds(lambda: predictor(img, rect), repeats, 1) * 1e3)
    ms = statistics.median(per_face)
    return {"latency_ms_b1": ms, "images_per_s": 1e3 / ms, "faces": len(per_face),
            "dlib": dlib.__version__}


def bench_degrade(data=None, n_images=32, workers=2):
    """Wall time of `degrade --crop` (12 conditions + clean, 224-px PNG crops, `workers`
    processes) on n_images test stills of `data` (default synthetic), written to a temporary
    folder. Returns the manifest's timing figures and counts."""
    from fadenn_tf.data.cache import resolve_data
    from fadenn_tf.degrade import degrade_dataset
    from fadenn_tf.noise import REFERENCE_SIZE
    root = Path(resolve_data(data))
    if (root / "300w").is_dir():
        root = root / "300w"
    with tempfile.TemporaryDirectory(prefix="bench-degrade-") as tmp:
        m = degrade_dataset(root, Path(tmp) / "out", split="test", workers=workers,
                            max_images=n_images, reference_size=REFERENCE_SIZE)
    return {k: m[k] for k in ("n_images", "ms_per_image_condition",
                              "steady_ms_per_image_condition", "wall_s", "workers",
                              "reference_size", "n_skipped")}


# --------------------------------------------------------------------------- API rows

def synthetic_clip(n_frames=100, size=(360, 640), face_px=110.0, seed=0, detector=None,
                   tries=20):
    """(frames (N, H, W, 3) uint8 RGB, box of frame 0, seed): one frontal synthetic face
    about face_px wide drifting slowly (a shift of <= 1.5 px per frame) over a 640x360
    frame. With a detector, the first of `tries` seeds from `seed` whose face it finds."""
    import cv2
    from fadenn_tf.data.crop import landmark_box
    from fadenn_tf.data.synthetic import render_face
    h, w = size
    params = {"pose": {"yaw": 0.0, "pitch": 0.0, "roll": 0.0}, "occluders": [],
              "others": [], "scale": face_px / 2, "center": [w / 2, h / 2]}
    for s in range(seed, seed + (tries if detector is not None else 1)):
        img, lm, _ = render_face(s, params=params, image_size=(h, w))
        if detector is None or len(detector(img)):
            seed = s
            break
    frames = []
    for t in range(n_frames):
        dx, dy = 40 * np.sin(t / 30), 15 * np.sin(t / 45)
        m = np.float32([[1, 0, dx], [0, 1, dy]])
        frames.append(cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT))
    return np.stack(frames), landmark_box(lm), seed


def bench_api(model_path, detector="default", repeats=5, num_threads=None, n_frames=100,
              failure_detector=None, note=""):
    """API rows: one face from image to landmarks at batch 1 (Predictor.predict(image,
    boxes=box) on a 640x360 frame: crop + model + uncrop), Keras vs LiteRT; the detector on
    a 640x360 frame; tracking frames/s (Tracker.step, detector and checks included) on a
    synthetic 640x360 clip with each backend. Returns a list of row dicts."""
    from fadenn_tf.predict import load
    from fadenn_tf.tflite_runner import median_latency_ms
    from fadenn_tf.track import Tracker, _as_detector, _as_failure_detector
    det = _as_detector(detector)
    frames, box, seed = synthetic_clip(n_frames, detector=det)
    rows = []
    det_name = detector if isinstance(detector, str) else type(detector).__name__
    ms = median_latency_ms(lambda: det(frames[0]), repeats * 4, 2)
    rows.append(_row("api", "-", f"detector {det_name}", "detect(640x360 frame)",
                     batch=1, latency_ms_b1=ms,
                     note=f"{len(det(frames[0]))} face(s) found in the clip's first frame "
                          f"(synthetic face seed {seed})"))
    fd = _as_failure_detector(failure_detector)
    for backend in ("keras", "litert"):
        try:
            pred = load(model_path, detector=None, backend=backend, num_threads=num_threads)
        except Exception as exc:  # e.g. no LiteRT, conversion failure: report, continue
            rows.append(_row("api", "-", str(model_path), f"{backend}: predict(image, box)",
                             error=f"{type(exc).__name__}: {str(exc)[:300]}"))
            continue
        pred.warm_up()
        ms = median_latency_ms(lambda: pred.predict(frames[0], boxes=box), repeats * 10, 3)
        rows.append(_row("api", "-", str(model_path), f"{backend}: predict(image, box)",
                         batch=1, latency_ms_b1=ms, crop=pred.size,
                         note=f"one face, 640x360 image to landmarks{note}"))
        fps = []
        for _ in range(max(1, repeats // 2)):
            tracker = Tracker(pred, det, fd)
            tracker.warm_up()
            t0 = time.perf_counter()
            recs = [tracker.step(f) for f in frames]
            fps.append(len(frames) / (time.perf_counter() - t0))
        counts = {k: sum(r.status == k for r in recs) for k in ("tracked", "re-detected",
                                                                "lost")}
        rows.append(_row("api", "-", str(model_path), f"{backend}: track 640x360 clip",
                         images_per_s=statistics.median(fps), crop=pred.size,
                         note=f"frames/s over {len(frames)} synthetic frames, detector "
                              f"{det_name}, failure detector "
                              f"{'yes' if fd is not None else 'no'}; last run: "
                              + ", ".join(f"{v} {k}" for k, v in counts.items()) + note))
    return rows


# ----------------------------------------------------------------------------- driver

def _row(section, config, model, path, **kw):
    r = {"section": section, "config": config, "model": model, "path": path}
    r.update(kw)
    return r


def _train_batch(settings, name, cfg):
    if name in settings.train_batch:
        return int(settings.train_batch[name])
    return 8 if name == "paper" else int(cfg.train.batch_size)


def run_benchmark(settings, log=None):
    """Run the selected sections. Returns {"machine", "settings", "peak", "rows"}; every row
    has section, config, model, path and the figures it measured (see format_markdown)."""
    log = log or (lambda msg: None)
    if settings.num_threads:
        tf.config.threading.set_intra_op_parallelism_threads(settings.num_threads)
    threads = settings.num_threads or cpu_count()
    secs = set(settings.sections)
    result = {"machine": machine_info(), "rows": [], "peak": None,
              "settings": {k: v for k, v in dataclasses.asdict(settings).items()
                           if k not in ("configs",)}}
    result["settings"]["configs"] = list(settings.configs)
    result["settings"]["data"] = str(settings.data) if settings.data else "synthetic"
    rows = result["rows"]
    if "peak" in secs or "inference" in secs or "flops" in secs:
        log(f"matmul peak {settings.matmul_n}^2 ...")
        result["peak"] = measure_matmul_peak(settings.matmul_n, max(settings.repeats, 5))
        rows.append(_row("peak", "-", f"matmul {settings.matmul_n}^2 f32", "tf.linalg.matmul",
                         gflops=result["peak"]["gflops"], pct_peak=100.0))
    peak = result["peak"]["gflops"] if result["peak"] else None
    samples_cache = {}

    def samples(split):
        if split not in samples_cache:
            from fadenn_tf.data.cache import resolve_data
            from fadenn_tf.data.datasets import open_dataset
            found, _ = open_dataset(resolve_data(settings.data), split=split)
            step = max(1, len(found) // settings.n_images)
            samples_cache[split] = found[::step][:settings.n_images]
        return samples_cache[split]

    for name, cfg in settings.configs.items():
        variants = settings.paper_models if name == "paper" else settings.models
        fl = {}
        if "flops" in secs or "inference" in secs:
            from fadenn_tf.models import build_variant
            for v in variants:
                model = build_variant(cfg.model, v)
                a = flops_mod.count_flops_analytic(model)
                p = flops_mod.count_flops_profiler(model) if "flops" in secs else None
                fl[v] = a
                if "flops" in secs:
                    log(f"[{name}] FLOPs {v}: analytic {a / 1e6:.1f} M, profiler {p / 1e6:.1f} M")
                    rows.append(_row("flops", name, v, "analytic (conv+dense)", flops=a,
                                     crop=cfg.model.iid.input_size))
                    rows.append(_row("flops", name, v, "tf profiler (all ops)", flops=p,
                                     crop=cfg.model.iid.input_size,
                                     note=f"{p / a:.3f} x analytic"))
        if "train" in secs or "pipeline" in secs:
            batch = _train_batch(settings, name, cfg)
            train_fl = {}
            if "train" in secs:
                for which in settings.train_models:
                    fwd = None
                    modes = settings.paper_modes if name == "paper" else settings.train_modes
                    for mode in modes:
                        log(f"[{name}] train {which} {mode} batch {batch} ...")
                        try:
                            r = bench_train(cfg, which, mode, batch, settings.train_steps,
                                            settings.repeats, settings.warmup)
                        except Exception as exc:
                            rows.append(_row("train", name, which, mode, batch=batch,
                                             error=f"{type(exc).__name__}: {str(exc)[:300]}"))
                            continue
                        if fwd is None:
                            fwd = _train_forward_flops(cfg, which)
                        g = flops_mod.achieved_gflops(TRAIN_FLOP_FACTOR * fwd, r["images_per_s"])
                        rows.append(_row("train", name, which, mode, batch=batch,
                                         images_per_s=r["images_per_s"], step_ms=r["step_ms"],
                                         flops=fwd, gflops=g, crop=r["crop"],
                                         pct_peak=100 * g / peak if peak and g else None,
                                         note=f"first call {r['first_call_s']:.1f} s"))
                        if mode == "function":
                            train_fl[which] = r["images_per_s"]
            if "pipeline" in secs:
                for which in settings.train_models:
                    log(f"[{name}] pipeline for {which} batch {batch} ...")
                    r = bench_pipeline(cfg, which, batch,
                                       (samples("train"), samples_cache.setdefault(
                                           ("td", name), {})),
                                       settings.train_steps, settings.repeats)
                    note = "tf.data, noise + augmentation"
                    if which in train_fl:
                        note = (f"{r['images_per_s'] / train_fl[which]:.1f} x the "
                                f"tf.function train step")
                    rows.append(_row("pipeline", name, which, "tf.data", batch=batch,
                                     images_per_s=r["images_per_s"], crop=r["crop"], note=note,
                                     ratio_to_train=(r["images_per_s"] / train_fl[which]
                                                     if which in train_fl else None)))
        if "inference" in secs:
            from fadenn_tf import export
            from fadenn_tf.models import build_variant
            S = cfg.model.iid.input_size
            crops, _ = export.load_crops(settings.data, S, "test", settings.n_images)
            rep, _ = export.load_crops(settings.data, S, "train", settings.n_images, noisy=True)
            for v in variants:
                log(f"[{name}] inference {v} ...")
                model = build_variant(cfg.model, v)
                for r in bench_inference(model, settings.infer_paths, crops,
                                         settings.infer_batch, settings.repeats,
                                         settings.warmup, threads, representative=rep):
                    g = flops_mod.achieved_gflops(fl.get(v), r.get("images_per_s"))
                    rows.append(_row("inference", name, v, r.pop("path"), flops=fl.get(v),
                                     gflops=g, pct_peak=100 * g / peak if peak and g else None,
                                     crop=S, **r))
    if "peer" in secs:
        log("peer: dlib ERT ...")
        r = bench_dlib(samples("test"), settings.dlib_model, max(settings.repeats, 5))
        rows.append(_row("peer", "-", "dlib ERT 68", "dlib shape_predictor", batch=1,
                         note=r.get("error") or f"dlib {r['dlib']}, {r['faces']} faces, "
                                                 f"full image + landmark box", **{
                             k: v for k, v in r.items() if k in ("latency_ms_b1",
                                                                 "images_per_s")}))
    if "degrade" in secs:
        workers = min(2, cpu_count())
        log(f"degrade --crop, {workers} workers ...")
        r = bench_degrade(settings.data, max(settings.n_images, 8), workers)
        ms, steady = r["ms_per_image_condition"], r["steady_ms_per_image_condition"]
        rows.append(_row("degrade", "-", "degrade --crop, 12 conditions",
                         f"{r['workers']} worker processes, PNG", crop=r["reference_size"],
                         batch=1, images_per_s=1000.0 / ms,
                         note=(f"{ms:.1f} ms wall per image-condition over {r['n_images']} "
                               f"test stills incl. worker start-up ("
                               + (f"{steady:.1f} ms after it" if steady else "no steady figure")
                               + "; target <= 20 ms); images/s = image-conditions/s")))
    if "api" in secs:
        model_path, note = settings.api_model, ""
        if model_path is None:  # speed only: a freshly initialised FLL of the first config
            from fadenn_tf.models import build_variant
            cfg = next(iter(settings.configs.values()))
            model_path = Path(tempfile.mkdtemp(prefix="fadenn_bench_")) / "fll.keras"
            build_variant(cfg.model, "fll").save(model_path)
            note = "; untrained model (pass --model for tracking figures)"
        log(f"api rows: {model_path} ...")
        rows.extend(bench_api(model_path, settings.detector, settings.repeats, threads,
                              settings.api_frames, settings.failure_detector, note))
    if result["peak"] is not None and len(settings.configs) and secs - {"peak", "flops"}:
        # contention only lowers the peak: re-measure at the end, keep the higher median
        again = measure_matmul_peak(settings.matmul_n, max(settings.repeats, 5))
        result["peak"]["repeated"] = again
        if again["gflops"] > result["peak"]["gflops"]:
            result["peak"].update(gflops=again["gflops"], gflops_best=max(
                again["gflops_best"], result["peak"]["gflops_best"]))
            _repercent(rows, result["peak"]["gflops"])
    result["machine"]["load_avg_end"] = machine_info()["load_avg"]
    return result


def _repercent(rows, peak_gflops):
    for row in rows:
        if row["section"] == "peak":
            row["gflops"] = peak_gflops
        elif row.get("gflops"):
            row["pct_peak"] = 100 * row["gflops"] / peak_gflops


def _train_forward_flops(cfg, which):
    from fadenn_tf.models import build_dae, build_fll, build_mtc, build_variant
    mc = cfg.model
    model = {"fll": lambda: build_fll(mc.fll), "dae": lambda: build_dae(mc.iid),
             "mtc": lambda: build_mtc(mc.iid), "joint-M": lambda: build_variant(mc, "M")}[which]()
    return flops_mod.count_flops_analytic(model)


# ----------------------------------------------------------------------------- output

def _fmt(v, spec):
    if v is None:
        return "-"
    return format(v, spec)


def format_markdown(result):
    """ONE Markdown table of a run_benchmark result, with the machine in its header."""
    m = result["machine"]
    peak = result.get("peak")
    st = result["settings"]
    lines = [
        f"## FADeNN benchmark: {m['cpu']} ({m['cores']} cores, {m['cpu_flags']}), "
        f"TensorFlow {m['tensorflow']}",
        "",
        f"{m['time']}; load average (1/5/15 min) {m['load_avg']} at start, "
        f"{m.get('load_avg_end')} at end"
        + (f" (per run: {m['load_avg_runs']})" if m.get("load_avg_runs") else "") + "; "
        f"medians of {st['repeats']} repeats after warm-up; data: {st['data']}; "
        + (f"matmul peak {peak['gflops']:.1f} GFLOP/s (float32 {peak['n']}^2, median). "
           if peak else "")
        + "FLOPs per face (1 multiply-add = 2); train GFLOP/s = 3 x forward FLOPs x images/s "
          "(estimate); inference: latency at batch 1, images/s at batch "
        + f"{st['infer_batch']}; models are untrained (speed does not depend on the weights).",
        "",
        "| section | config | model | path | crop | batch | ms/face (b1) | images/s | "
        "MFLOPs/face | GFLOP/s | % peak | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        note = r.get("error") or r.get("note") or ""
        if r.get("size_mb") is not None:
            note = (note + "; " if note else "") + f"{r['size_mb']:.2f} MB"
        lines.append(
            f"| {r['section']} | {r['config']} | {r['model']} | {r['path']} | "
            f"{r.get('crop') or '-'} | {r.get('batch') or '-'} | "
            f"{_fmt(r.get('latency_ms_b1'), '.2f')} | {_fmt(r.get('images_per_s'), '.1f')} | "
            f"{_fmt(r['flops'] / 1e6 if r.get('flops') else None, '.1f')} | "
            f"{_fmt(r.get('gflops'), '.1f')} | {_fmt(r.get('pct_peak'), '.1f')} | {note} |")
    return "\n".join(lines) + "\n"


def write_results(result, out_dir):
    """Write bench.json and bench.md (atomically) into out_dir; returns the Markdown."""
    from fadenn_tf.utils.atomic import write_json_atomic, write_text_atomic
    md = format_markdown(result)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "bench.json", result)
    write_text_atomic(out / "bench.md", md)
    return md


def merge_results(results):
    """One result from several run_benchmark results (e.g. sections run one after another):
    rows concatenated in order, one peak row holding the highest measured matmul median
    (contention only lowers it) and every % peak recomputed against it, machine of the first
    run with every run's load averages in "load_avg_runs"."""
    results = list(results)
    if not results:
        raise ValueError("nothing to merge")
    out = json.loads(json.dumps(results[0]))
    peaks = [r["peak"] for r in results if r.get("peak")]
    peak = max(peaks, key=lambda p: p["gflops"]) if peaks else None
    out["peak"] = peak
    out["machine"]["load_avg_runs"] = [[r["machine"]["load_avg"], r["machine"].get("load_avg_end")]
                                       for r in results]
    rows, have_peak = [], False
    for r in results:
        for row in r["rows"]:
            row = dict(row)
            if row["section"] == "peak":
                if have_peak:
                    continue
                have_peak = True
            rows.append(row)
    if peak:
        _repercent(rows, peak["gflops"])
    out["rows"] = rows
    out["settings"]["configs"] = sorted({c for r in results for c in r["settings"]["configs"]})
    out["wall_s"] = sum(r.get("wall_s", 0) for r in results)
    return out


def _csv(text, allowed, what):
    vals = tuple(v.strip() for v in text.split(",") if v.strip())
    bad = [v for v in vals if allowed is not None and v not in allowed]
    if bad:
        raise SystemExit(f"--{what}: unknown {bad}; choose from {', '.join(allowed)}")
    return vals


def _parser():
    from fadenn_tf.utils.cli import add_alias, add_no_progress, make_parser
    p = make_parser("bench", __doc__)
    p.add_argument("--config", default="cpu", help="comma list of configs (cpu,paper) or .yaml")
    p.add_argument("--variants", default="fll,D,S,M",
                   help="inference variants: fll, D, S, M (default all; was --models)")
    p.add_argument("--paper-variants", default="fll",
                   help="inference variants for 'paper' (default fll; was --paper-models)")
    p.add_argument("--train-models", default=",".join(TRAIN_MODELS),
                   help=f"models whose train step is timed ({', '.join(TRAIN_MODELS)})")
    p.add_argument("--modes", default=",".join(TRAIN_MODES),
                   help="train step modes: eager, function (tf.function, float32), xla, bf16 "
                        "(tf.function under mixed_bfloat16: AVX512-BF16/AMX CPUs)")
    p.add_argument("--paper-modes", default="function,bf16",
                   help="train step modes for 'paper' (slow on CPU: XLA compiles for minutes)")
    p.add_argument("--paths", default=",".join(INFER_PATHS),
                   help=f"inference paths ({', '.join(INFER_PATHS)})")
    p.add_argument("--sections", default=",".join(SECTIONS),
                   help=f"what to measure ({', '.join(SECTIONS)})")
    p.add_argument("--repeats", type=positive_int, default=5,
                   help="timed runs per figure (median; 5)")
    p.add_argument("--train-steps", type=positive_int, default=5, help="steps per timed group")
    p.add_argument("--paper-batch", type=positive_int, default=8, help="train batch of 'paper'")
    p.add_argument("--infer-batch", type=positive_int, default=32, help="inference batch (32)")
    p.add_argument("--threads", type=non_negative_int, default=0, help="0 = all cores")
    p.add_argument("--images", type=positive_int, default=32, help="test / calibration crops")
    p.add_argument("--data", default=None, help="dataset folder (default: synthetic)")
    p.add_argument("--dlib-model", default=DLIB_MODEL,
                   help="dlib's 68-point shape predictor .dat (the peer; skipped if absent)")
    p.add_argument("--out", default="runs/bench",
                   help="output folder for bench.json and bench.md (default runs/bench)")
    p.add_argument("--merge", nargs="+", metavar="BENCH_JSON",
                   help="merge earlier bench.json files into one table (runs nothing)")
    p.add_argument("--model", default=None,
                   help="api rows: a trained model (workdir, .keras, .tflite for litert); "
                        "default an untrained FLL (speed of predict only)")
    p.add_argument("--detector", default="default", help="api rows: face detector")
    p.add_argument("--failure-detector", default=None,
                   help="api rows: failure detector .npz used while tracking")
    p.add_argument("--quick", action="store_true",
                   help="2 repeats, 2 steps, matmul 1024 (smoke run; figures are rough)")
    add_no_progress(p)
    add_alias(p, "--models", "--variants")
    add_alias(p, "--paper-models", "--paper-variants")
    return p


def main(argv=None):
    a = _parser().parse_args(argv)
    from fadenn_tf.errors import FadennError
    try:
        return _run(a)
    except FadennError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(a):
    from fadenn_tf.config import load_config
    if a.merge:
        result = merge_results(json.loads(Path(f).read_text()) for f in a.merge)
        print(write_results(result, a.out))
        return 0
    configs = {}
    for c in _csv(a.config, None, "config"):
        cfg = load_config(c)
        configs[cfg.name if not c.endswith((".yaml", ".yml")) else Path(c).stem] = cfg
    from fadenn_tf.models.fadenn import normalize_variant
    try:
        variants = [tuple(normalize_variant(v) for v in _csv(text, None, flag))
                    for text, flag in ((a.variants, "variants"),
                                       (a.paper_variants, "paper-variants"))]
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    s = Settings(configs=configs, models=variants[0], paper_models=variants[1],
                 sections=_csv(a.sections, SECTIONS, "sections"),
                 train_models=_csv(a.train_models, TRAIN_MODELS, "train-models"),
                 train_modes=_csv(a.modes, TRAIN_MODES, "modes"),
                 paper_modes=_csv(a.paper_modes, TRAIN_MODES, "paper-modes"),
                 infer_paths=_csv(a.paths, None, "paths"),
                 repeats=a.repeats, train_steps=a.train_steps, infer_batch=a.infer_batch,
                 num_threads=a.threads, n_images=a.images, data=a.data,
                 dlib_model=a.dlib_model, train_batch={"paper": a.paper_batch},
                 api_model=a.model, detector=a.detector,
                 failure_detector=a.failure_detector)
    if a.quick:
        s = dataclasses.replace(s, repeats=2, warmup=1, train_steps=2, matmul_n=1024,
                                n_images=8)
    t0 = time.perf_counter()
    result = run_benchmark(s, log=(lambda msg: print(msg, file=sys.stderr, flush=True))
                           if not a.no_progress else (lambda msg: None))
    result["wall_s"] = time.perf_counter() - t0
    md = write_results(result, a.out)
    print(md)
    print(f"written {Path(a.out) / 'bench.json'} and {Path(a.out) / 'bench.md'} "
          f"({result['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
