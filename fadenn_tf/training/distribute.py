"""tf.distribute strategies for the custom training loops.

  default      one device: the GPU if there is one, else the CPU
  mirrored     all local GPUs (or, with `logical_cpus=N`, N logical CPU devices: for tests)
  multiworker  MultiWorkerMirroredStrategy from the TF_CONFIG environment variable
"""
import json
import os

import tensorflow as tf

from fadenn_tf.errors import ConfigError

STRATEGIES = ("default", "mirrored", "multiworker")


def split_cpu(n):
    """Split the physical CPU into `n` logical devices. Must run before TF initialises."""
    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(n)])


def make_strategy(name="default", logical_cpus=0):
    """Return a tf.distribute.Strategy by name (see module docstring)."""
    if name not in STRATEGIES:
        raise ConfigError(f"--strategy {name!r}: choose one of {', '.join(STRATEGIES)}")
    if name == "default":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
    if name == "mirrored":
        if logical_cpus:
            split_cpu(logical_cpus)
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
            return tf.distribute.MirroredStrategy(devices)
        return tf.distribute.MirroredStrategy()
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise ConfigError("--strategy multiworker needs the TF_CONFIG environment variable "
                          '(e.g. {"cluster": {"worker": ["host:port", ...]}, '
                          '"task": {"type": "worker", "index": 0}})')
    try:
        json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"TF_CONFIG is not valid JSON: {exc}") from None
    return tf.distribute.MultiWorkerMirroredStrategy()


def is_chief(strategy):
    """True on the worker that writes checkpoints, logs and models."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type in (None, "chief") or (task_type == "worker" and task_id == 0
                                             and "chief" not in resolver.cluster_spec().jobs)
