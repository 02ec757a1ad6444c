"""Latency of FADeNN-M's routed LiteRT parts for several IID designs, measured in one process
with the designs interleaved, so that a change of machine load hits them all alike.

    python experiments/iid_part_speed.py [--rounds 5] [--calls 100]

Each design is `real128` with a few `--set`-style overrides, built with random weights (the
speed does not depend on them), split into routed parts (models.routed_parts) and converted
at batch 1 to float32 and dynamic_int8 TFLite (int8 weights, float activations: the
`litert-int8` backend). Prints, per design and part, the median wall time of one call in
ms (medians over rounds of the per-round median over calls), 2 threads. Pause other work on
the machine first; say which CPU the figures come from (/proc/cpuinfo).
"""
import argparse

import numpy as np

DESIGNS = {
    "128-px 16-24-32-48-64": ["model.iid.space_to_depth=1", "model.iid.filters=[16,24,32,48,64]"],
    "slim 8-16-32-48-64, skip 4": ["model.iid.space_to_depth=1",
                                   "model.iid.filters=[8,16,32,48,64]",
                                   "model.iid.full_res_channels=4"],
    "space-to-depth 24-32-48-64": [],
    "space-to-depth + refine 1": ["model.iid.refine_convs=1"],
}
VARIANTS = ("float32", "dynamic_int8")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--calls", type=int, default=100)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    from fadenn_tf.config import load_config
    from fadenn_tf.deploy.litert import TFLiteRunner, load_tflite, median_latency_ms
    from fadenn_tf.deploy.signatures import part_function
    from fadenn_tf.deploy.tflite import convert_tflite
    from fadenn_tf.models import build_variant, routed_parts
    x = np.random.default_rng(0).uniform(0, 255, (1, 128, 128, 3)).astype(np.float32)
    runners = {}
    for label, sets in DESIGNS.items():
        parts = routed_parts(build_variant(load_config("real128", sets=sets).model, "M"))
        names = ("classify", "expert_1") + (() if runners else ("landmarks",))
        for name in names:
            for v in VARIANTS:
                data = convert_tflite(None, v, batch_size=1, model=parts[name],
                                      endpoint=part_function)
                runners[(label, name, v)] = TFLiteRunner(load_tflite(data, a.threads), name)
    times = {k: [] for k in runners}
    for _ in range(a.rounds):
        for k, run in runners.items():
            times[k].append(median_latency_ms(lambda: run(x), a.calls, 10))
    print(f"routed FADeNN-M parts, batch 1, {a.threads} threads, ms per call "
          f"(median of {a.rounds} rounds x {a.calls} calls)")
    for (label, name, v), t in times.items():
        print(f"{label:28s} {name:10s} {v:13s} {np.median(t):7.3f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
