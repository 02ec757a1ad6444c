"""Weights shipped inside the package, trained on real faces (see MODEL_CARD.md).

    fadenn_tf.load("pretrained")        # FADeNN-M
    fadenn_tf.load("pretrained-fll")    # the FLL alone

Each name is a folder of this package holding a format-1 model (`model.keras` and its
`model.json`) with float16-stored weights (loaded as float32). `resolve(name)` gives its
path; commands accept the names wherever they take `--model`. The weights carry the
research-use terms of the 300-W data they were trained on (MODEL_CARD.md).
"""
from importlib import resources
from pathlib import Path

from fadenn_tf.errors import DataError

NAMES = {"pretrained": "fadenn-m", "pretrained-fll": "fll"}


def is_name(path):
    """True when `path` is one of the shipped model names (not a file path)."""
    return str(path) in NAMES


def available():
    """Shipped names whose weights are present in this installation."""
    return [n for n in NAMES if (_folder(n) / "model.keras").is_file()]


def _folder(name):
    return Path(str(resources.files(__name__))) / NAMES[name]


def resolve(name):
    """Path of the shipped model file for `name`; DataError naming what ships otherwise."""
    if not is_name(name):
        raise DataError(name, f"not a shipped model name (choose {', '.join(NAMES)})")
    path = _folder(name) / "model.keras"
    if not path.is_file():
        have = ", ".join(available()) or "none"
        raise DataError(name, f"these weights are not in this installation (shipped: {have}; "
                              f"see MODEL_CARD.md)")
    return path
