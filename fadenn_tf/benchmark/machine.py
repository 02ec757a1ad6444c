"""The machine: CPU, threads, versions, and its measured float32 matrix-multiply peak."""
import os
import platform
import statistics
import time
from pathlib import Path

import tensorflow as tf

from fadenn_tf.benchmark import flops as flops_mod
from fadenn_tf.deploy.litert import median_latency_ms


def cpu_count():
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def cpu_name():
    """The CPU's model name (/proc/cpuinfo), else platform.processor(), else "unknown"."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info():
    """{"cpu", "cores", "tensorflow", "python", "load_avg" (1, 5, 15 min), "time"}."""
    model = cpu_name()
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
