"""run_benchmark: every section of the benchmark for every config and variant -> one result
(rows, machine, settings); units and method in fadenn_tf.cli.bench."""
import dataclasses
import tempfile
from pathlib import Path

import tensorflow as tf

from fadenn_tf.benchmark import flops as flops_mod
from fadenn_tf.benchmark.api_speed import bench_api, bench_degrade, bench_detect, bench_dlib
from fadenn_tf.benchmark.inference_speed import bench_inference
from fadenn_tf.benchmark.machine import cpu_count, machine_info, measure_matmul_peak
from fadenn_tf.benchmark.photo_speed import (bench_dlib_photos, bench_photos, bench_startup,
                                             find_photos)
from fadenn_tf.benchmark.report import _repercent, _row
from fadenn_tf.benchmark.settings import TRAIN_FLOP_FACTOR
from fadenn_tf.benchmark.train_speed import bench_pipeline, bench_train, train_model
from fadenn_tf.data.cache import resolve_data
from fadenn_tf.data.datasets import open_dataset
from fadenn_tf.deploy.parity import load_crops
from fadenn_tf.models import build_variant


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
            found, _ = open_dataset(resolve_data(settings.data), split=split)
            step = max(1, len(found) // settings.n_images)
            samples_cache[split] = found[::step][:settings.n_images]
        return samples_cache[split]

    for name, cfg in settings.configs.items():
        variants = settings.paper_models if name == "paper" else settings.models
        fl = {}
        if "flops" in secs or "inference" in secs:
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
            S = cfg.model.iid.input_size
            crops, _ = load_crops(settings.data, S, "test", settings.n_images)
            rep, _ = load_crops(settings.data, S, "train", settings.n_images, noisy=True)
            for v in variants:
                log(f"[{name}] inference {v} ...")
                model = build_variant(cfg.model, v)
                for r in bench_inference(model, crops, settings, threads,
                                         representative=rep):
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
            cfg = next(iter(settings.configs.values()))
            model_path = Path(tempfile.mkdtemp(prefix="fadenn_bench_")) / "fll.keras"
            build_variant(cfg.model, "fll").save(model_path)
            note = "; untrained model (pass --model for tracking figures)"
        log(f"api rows: {model_path} ...")
        rows.extend(bench_api(model_path, settings, threads, note))
    if "detect" in secs:
        log(f"detect rows: {', '.join(map(str, settings.detectors))} ...")
        rows.extend(bench_detect(settings.data, settings.detectors, settings.api_model,
                                 settings.detect_images))
    if "e2e" in secs:
        rows.extend(_e2e_rows(settings, log))
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


def _e2e_rows(settings, log):
    """The e2e section (benchmark.photo_speed): photos of settings.photos (default: the
    first n_images built-in synthetic images) with settings.api_model (default the
    shipped "pretrained"), dlib on the same photos, and the start-up of a fresh process."""
    folder, limit = settings.photos, settings.photo_limit
    if folder is None:
        folder, limit = resolve_data(None), limit or settings.n_images
    model = settings.api_model or "pretrained"
    log(f"e2e rows: {model} on the photos of {folder} ...")
    rows = bench_photos(model, folder, settings.repeats, limit)
    log("e2e rows: dlib HOG + ERT on the same photos ...")
    rows.extend(bench_dlib_photos(folder, settings.dlib_model, min(settings.repeats, 3),
                                  limit))
    log(f"e2e rows: start-up of {settings.startup_runs} fresh processes ...")
    rows.append(bench_startup(model, find_photos(folder, 1)[0][0], settings.startup_runs))
    return rows


def _train_forward_flops(cfg, which):
    """Analytic forward FLOPs (conv + dense) of the model whose train step `which` times."""
    return flops_mod.count_flops_analytic(train_model(cfg, which))
