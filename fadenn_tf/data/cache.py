"""The default synthetic dataset, generated once into the user's cache folder and reused.

Folder: $FADENN_DATA_CACHE if set (the dataset folder itself), else
$XDG_CACHE_HOME/fadenn_tf/synthetic-v1, else ~/.cache/fadenn_tf/synthetic-v1.
Generation writes into a temporary folder beside it and renames it at the end, so a killed
generation never leaves a half dataset that is later reused.
"""
import json
import os
from pathlib import Path

from fadenn_tf.data.synthetic import SynthSpec, generate_dataset
from fadenn_tf.errors import DataError

DEFAULT_SEED = 0
DEFAULT_COUNTS = {"n_train": 1200, "n_test": 300, "n_videos": 6, "n_frames": 120}
_NAME = "synthetic-v1"


def default_dataset_dir():
    """Path of the default synthetic dataset (it may not exist yet)."""
    override = os.environ.get("FADENN_DATA_CACHE")
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "fadenn_tf" / _NAME


def _is_complete(folder):
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(manifest.get("complete"))


def ensure_default_dataset(progress=True, **counts):
    """Return the default dataset folder, generating it first if needed.

    counts: optional overrides of DEFAULT_COUNTS (n_train, n_test, n_videos, n_frames), used
    only when the dataset is generated. Raises DataError if the folder exists but holds no
    complete dataset (delete it to regenerate).
    """
    folder = default_dataset_dir()
    if folder.exists():
        if _is_complete(folder):
            return folder
        raise DataError(folder, "exists but is not a complete synthetic dataset (no "
                                "manifest.json with complete: true); delete it to regenerate")
    sizes = {**DEFAULT_COUNTS, **counts}
    try:
        generate_dataset(folder, SynthSpec(seed=DEFAULT_SEED, **sizes), progress=progress)
    except FileExistsError:
        # another process finished first
        if not _is_complete(folder):
            raise
    return folder


def resolve_data(arg, kind="300w"):
    """The dataset folder a command's --data argument names.

    arg: None or "synthetic" -> the default synthetic dataset (generated on first use);
    anything else -> that path, which must exist. kind: for the synthetic dataset, which
    part to return: "300w" (stills), "300vw" (videos) or "root".
    Raises DataError if a given path does not exist, ValueError on an unknown kind.
    """
    if kind not in ("300w", "300vw", "root"):
        raise ValueError(f"kind must be '300w', '300vw' or 'root', got {kind!r}")
    if arg is None or str(arg) == "synthetic":
        root = ensure_default_dataset()
        return root if kind == "root" else root / kind
    path = Path(arg).expanduser()
    if not path.exists():
        raise DataError(path, "dataset folder not found (leave --data out to use the "
                              "built-in synthetic dataset)")
    return path
