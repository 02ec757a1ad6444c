"""Benchmarks: training step, input pipeline, inference paths, FLOPs against a measured
matrix-multiply peak, and dlib's ERT as the peer. One table, JSON + Markdown.

    python -m fadenn_tf.bench                                  # cpu config, every section
    python -m fadenn_tf.bench --config cpu,paper --repeats 7 --out runs/bench
    python -m fadenn_tf.bench --sections e2e --photos DIR     # whole photos to landmarks

Every figure is the median of `repeats` timed runs after warm-up. Units: images/s (faces
per second), latency ms per face at batch 1, FLOPs per face (one image through the model at
its input size), GFLOP/s = FLOPs x images/s / 1e9, "% peak" = GFLOP/s / measured float32
matmul GFLOP/s of this machine. Models are freshly initialised (speed does not depend on the
weights); the training batches are fixed random tensors (the pipeline is measured on its own).
The e2e section times whole photos to landmarks with the shipped model (per photo, per extra
face), dlib's HOG detector + ERT on the same photos when dlib is installed, and the start-up
of a fresh process (import + load + first predict); each of its rows names the CPU and load.
"""
import json
import sys
import time
from pathlib import Path

from fadenn_tf.benchmark.report import merge_results, write_results
from fadenn_tf.benchmark.settings import (DLIB_MODEL, INFER_PATHS, SECTIONS, TRAIN_MODELS,
                                          TRAIN_MODES, Settings, quick_settings)
from fadenn_tf.config import load_config
from fadenn_tf.errors import DataError
from fadenn_tf.utils.atomic import checked_write
from fadenn_tf.utils.cli import (EXIT_CODES, EXIT_DONE, add_alias, add_config_arguments,
                                 add_no_progress, command, defaults_from_config,
                                 given_on_command_line, make_parser)
from fadenn_tf.utils.cli_args import non_negative_int, positive_int
from fadenn_tf.utils.progress import progress


def _csv(text, allowed, what):
    """The comma list `text` of option --`what`; ValueError (exit 2) naming unknown items."""
    vals = tuple(v.strip() for v in text.split(",") if v.strip())
    bad = [v for v in vals if allowed is not None and v not in allowed]
    if bad:
        raise ValueError(f"--{what}: unknown {bad}; choose from {', '.join(allowed)}")
    return vals


def _read_bench_json(path):
    """One earlier result for --merge; DataError naming the file when it is not one."""
    try:
        result = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(path, f"not a bench.json file ({exc})") from None
    if not isinstance(result, dict) or not {"rows", "machine"} <= set(result):
        raise DataError(path, "not a bench.json file (no rows and machine)")
    return result


def _make_out(out):
    """Create the output folder; WriteError (exit 3) naming it when it cannot be."""
    with checked_write(out):
        Path(out).mkdir(parents=True, exist_ok=True)


def _parser():
    p = make_parser("bench", __doc__, epilog=EXIT_CODES + " An unwritable --out fails before "
                    "anything is measured (3); this command never exits 1.")
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
    p.add_argument("--data", default=None,
                   help="dataset folder (default: synthetic); with the api section, also one "
                        "face on each of 40 of its held-out real photos")
    p.add_argument("--dlib-model", default=DLIB_MODEL,
                   help="dlib's 68-point shape predictor .dat (the peer; skipped if absent)")
    p.add_argument("--out", default="runs/bench",
                   help="output folder for bench.json and bench.md (default runs/bench)")
    p.add_argument("--merge", nargs="+", metavar="BENCH_JSON",
                   help="merge earlier bench.json files into one table (runs nothing)")
    p.add_argument("--model", default=None,
                   help="api rows: a trained model (workdir, .keras, .tflite for litert); "
                        "default an untrained FLL (speed of predict only); e2e rows: the "
                        "model loaded with fadenn_tf.load's defaults (default pretrained)")
    p.add_argument("--photos", default=None, metavar="DIR",
                   help="e2e rows: a folder of whole photos (annotations <stem>_<k>.pts "
                        "beside them are counted); default the first --images built-in "
                        "synthetic images")
    p.add_argument("--photo-limit", type=non_negative_int, default=0,
                   help="e2e rows: at most this many photos (0 = all)")
    p.add_argument("--detector", default="default", help="api rows: face detector")
    p.add_argument("--failure-detector", default="auto",
                   help="api rows: failure detector used while tracking: a .npz, none, or "
                        "auto (default: the one shipped with the model, if any)")
    p.add_argument("--detectors", default="default",
                   help="detect rows: comma list of detectors measured on the held-out faces "
                        "of --data (default: default)")
    p.add_argument("--detect-images", type=non_negative_int, default=0,
                   help="detect rows: at most this many held-out images (0 = all)")
    p.add_argument("--quick", action="store_true",
                   help="the essentials in about 2 minutes: matmul peak, the tf.function "
                        "train step of fll and joint-M, Keras and TFLite float32 inference "
                        "of fll and M; 2 repeats (figures are rough); options given "
                        "explicitly are kept; says what it skipped")
    add_config_arguments(p)
    add_no_progress(p)
    add_alias(p, "--models", "--variants")
    add_alias(p, "--paper-models", "--paper-variants")
    return p


@command
def main(argv=None):
    parser = _parser()
    a = parser.parse_args(argv)
    if a.merge:
        result = merge_results([_read_bench_json(f) for f in a.merge])
        _make_out(a.out)
        print(write_results(result, a.out))
        return EXIT_DONE
    configs = {}
    for c in _csv(a.config, None, "config"):
        cfg = load_config(c, sets=a.sets)
        configs[cfg.name if not c.endswith((".yaml", ".yml")) else Path(c).stem] = cfg
    # every key of the bench section fills the option of the same name the user left out
    defaults_from_config(parser, a, argv, next(iter(configs.values())).bench)
    from fadenn_tf.models.fadenn import normalize_variant  # lazy: TensorFlow
    variants = [tuple(normalize_variant(v) for v in _csv(text, None, flag))  # ValueError: 2
                for text, flag in ((a.variants, "variants"),
                                   (a.paper_variants, "paper-variants"))]
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
                 failure_detector=a.failure_detector,
                 detectors=_csv(a.detectors, None, "detectors"),
                 detect_images=a.detect_images, photos=a.photos,
                 photo_limit=a.photo_limit)
    if a.quick:  # the essentials only; the options given on the command line are kept
        flags = {"sections": "sections", "train_models": "train_models", "train_modes": "modes",
                 "paper_modes": "paper_modes", "models": "variants", "infer_paths": "paths",
                 "repeats": "repeats", "train_steps": "train_steps", "n_images": "images"}
        given = given_on_command_line(parser, argv, set(flags.values()))
        s, skipped = quick_settings(s, keep={f for f, d in flags.items() if d in given})
        print(f"bench --quick: skipped {skipped} (run without --quick for them); "
              f"{s.repeats} repeats", file=sys.stderr)
    _make_out(a.out)   # an unwritable --out fails now (exit 3), not after the run
    from fadenn_tf.benchmark.runner import run_benchmark  # lazy: TensorFlow
    t0 = time.perf_counter()
    with progress(desc="bench", unit="phase", enabled=not a.no_progress) as bar:
        def log(msg):          # each phase as it starts: a line (above the bar on a terminal)
            bar.update(1)
            bar.write(msg)
        result = run_benchmark(s, log=log)
    result["wall_s"] = time.perf_counter() - t0
    if a.quick:
        result["settings"]["quick_skipped"] = skipped
    md = write_results(result, a.out)
    print(md)
    print(f"written {Path(a.out) / 'bench.json'} and {Path(a.out) / 'bench.md'} "
          f"({result['wall_s']:.0f} s)")
    return EXIT_DONE


if __name__ == "__main__":
    sys.exit(main())
