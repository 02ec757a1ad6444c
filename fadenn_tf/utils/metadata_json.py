"""Reading a model's metadata file (NAME.json beside the model): the JSON object checks
shared by the Keras loader (fadenn_tf.models.io) and the LiteRT path, without TensorFlow."""
import json
from pathlib import Path

from fadenn_tf.errors import DataError


def read_metadata_json(path):
    """The JSON object in model metadata file `path` as a dict, or None when the file does
    not exist. Raises DataError naming the file when it is unreadable or not a JSON object."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(path, f"unreadable model metadata ({exc})") from None
    if not isinstance(meta, dict):
        raise DataError(path, f"model metadata must be a JSON object, got "
                              f"{type(meta).__name__}")
    return meta
