"""On-disk cache of the TFLite conversions made while loading a Keras model with a LiteRT
backend (fadenn_tf.load(path, backend="litert")): converting FADeNN-M takes 10-30 s, so the
result is kept and the next load of the same file takes about a second.

Location: $FADENN_TF_CACHE_DIR, else $XDG_CACHE_HOME/fadenn_tf, else ~/.cache/fadenn_tf;
FADENN_TF_CACHE_DIR=off turns the cache off. One entry per (model file content, variant,
TensorFlow version) under litert/: a routed folder (deploy.routed) or a .tflite file.
Entries are written atomically; a cache that cannot be written is skipped with a warning,
and an entry that does not load (corrupt, cut, edited) is deleted with a warning and made
again by the next conversion.
"""
import hashlib
import os
import shutil
import warnings
from pathlib import Path

from fadenn_tf.utils.atomic import checked_write

OFF = "off"


def cache_root():
    """The cache folder, or None when FADENN_TF_CACHE_DIR=off."""
    env = os.environ.get("FADENN_TF_CACHE_DIR")
    if env is not None and env.strip().lower() == OFF:
        return None
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "fadenn_tf"


def entry(model_file, variant, kind):
    """Path of the cache entry for converting `model_file` (a .keras file) to `variant`
    as `kind` ("routed": a folder; "graph": a .tflite file), or None when the cache is
    off. The name holds a hash of the file's bytes and TensorFlow's version."""
    root = cache_root()
    if root is None:
        return None
    digest = hashlib.sha256(Path(model_file).read_bytes()).hexdigest()[:20]
    name = f"{Path(model_file).stem}-{digest}-{variant}-{kind}-tf{_tensorflow_version()}"
    return root / "litert" / (name if kind == "routed" else name + ".tflite")


def _tensorflow_version():
    """The installed TensorFlow's version, read without importing it (a cached load then
    needs no TensorFlow import)."""
    from importlib import metadata  # lazy: not needed to load shipped LiteRT files (~15 ms)
    for dist in ("tensorflow", "tensorflow-cpu", "tf-nightly", "tensorflow-intel"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    import tensorflow as tf  # lazy: TensorFlow, when no distribution metadata names it
    return tf.__version__


def store(path, write):
    """Call write(path) to fill the entry `path` (which write makes atomically); a cache
    that cannot be written (read-only home, full disk) only warns."""
    if path is None or path.exists():
        return
    try:
        write(path)
    except OSError as exc:
        warnings.warn(f"could not cache the TFLite conversion at {path}: {exc}", stacklevel=3)


def discard(path, problem):
    """Delete the cache entry `path` that failed to load (problem: the error), with a
    warning saying it is being rebuilt. Raises WriteError naming it if it cannot be
    deleted (a rebuilt entry could not replace it)."""
    warnings.warn(f"{path}: cached TFLite conversion does not load ({problem}); deleted, "
                  "converting the model again", stacklevel=3)
    with checked_write(path):
        if Path(path).is_dir():
            shutil.rmtree(path)
        else:
            Path(path).unlink(missing_ok=True)
