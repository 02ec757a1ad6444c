"""Weights shipped inside the package, trained on real faces (see MODEL_CARD.md).

    fadenn_tf.load("pretrained")        # FADeNN-M
    fadenn_tf.load("pretrained-fll")    # the FLL alone

Each name is a folder of this package holding a format-1 model (`model.keras` and its
`model.json`) with float16-stored weights (loaded as float32), the same model as LiteRT
files with int8 weights (`litert-int8/`: routed parts for FADeNN-M, deploy.routed, or one
`model.tflite` for the FLL; dynamic batch; `shipped.json` records the source file's hash
and the parity measured against it when they were written by experiments/ship_pretrained.py),
and the tracker's fitting-failure detector trained with that model on real faces
(`failure_detector.npz`, fadenn_tf.fitcheck.detector; used by default wherever the model
is, see `failure_detector_for`). `resolve(name)` gives the .keras path and
`litert_path(name)` the LiteRT one (what fadenn_tf.load(name) runs, with no TensorFlow
import); commands accept the names wherever they take `--model`. The weights carry the
research-use terms of the 300-W data they were trained on (MODEL_CARD.md).
"""
from importlib import resources
from pathlib import Path

from fadenn_tf.errors import DataError

NAMES = {"pretrained": "fadenn-m", "pretrained-fll": "fll"}
FAILURE_DETECTOR_FILE = "failure_detector.npz"
LITERT_DIR = "litert-int8"          # the LiteRT copy: routed parts or model.tflite
LITERT_GRAPH = "model.tflite"
SHIPPED_JSON = "shipped.json"       # source hash and parity of the LiteRT copy


def is_name(path):
    """True when `path` is one of the shipped model names (not a file path)."""
    return str(path) in NAMES


def available():
    """Shipped names whose weights are present in this installation."""
    return [n for n in NAMES if (_folder(n) / "model.keras").is_file()]


def _folder(name):
    return Path(str(resources.files(__name__))) / NAMES[str(name)]


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


def litert_dir(name):
    """The folder of the LiteRT copy of shipped model `name` (it may not exist)."""
    if not is_name(name):
        raise DataError(name, f"not a shipped model name (choose {', '.join(NAMES)})")
    return _folder(name) / LITERT_DIR


def litert_path(name):
    """What fadenn_tf.inference.load_litert runs for shipped model `name`: the routed folder
    (it holds routed.json) or its model.tflite; None when this installation has no LiteRT
    copy of it."""
    folder = litert_dir(name)
    if (folder / "routed.json").is_file():
        return folder
    graph = folder / LITERT_GRAPH
    return graph if graph.is_file() else None


def failure_detector_for(model_path):
    """The failure detector shipped with a model: `failure_detector.npz` in the folder of the
    model file (a shipped name, or a .keras / .tflite path, e.g. `Predictor.model.path`), or
    None when there is none (workdirs and SavedModels carry none unless one is put there)."""
    if model_path is None:
        return None
    if is_name(model_path):
        path = _folder(str(model_path)) / FAILURE_DETECTOR_FILE
    else:
        p = Path(str(model_path))
        if p.suffix not in (".keras", ".tflite"):
            return None
        path = p.parent / FAILURE_DETECTOR_FILE
    return path if path.is_file() else None
