"""Boxes files (`predict --boxes`): JSON {image name: box or list of boxes} or CSV
image,x0,y0,x1,y1, and the lookup of an image's entry."""
import csv
import io
import json
import math
from pathlib import Path

from fadenn_tf.detect.boxes import as_boxes
from fadenn_tf.errors import DataError


def _parse_box(path, where, value):
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise DataError(path, f"{where}: a box must be 4 numbers [x0, y0, x1, y1], got "
                              f"{value!r}")
    try:
        b = [float(v) for v in value]
    except (TypeError, ValueError):
        raise DataError(path, f"{where}: box values must be numbers, got {value!r}") from None
    if isinstance(value[0], bool) or not all(math.isfinite(v) for v in b):
        raise DataError(path, f"{where}: box values must be finite numbers, got {value!r}")
    if not (b[2] > b[0] and b[3] > b[1]):
        raise DataError(path, f"{where}: box {b} has no area (need x1 > x0 and y1 > y0)")
    return b


def _boxes_from_json(path, text):
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(path, f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise DataError(path, "a JSON boxes file must be an object mapping image names to a "
                              "box [x0, y0, x1, y1] or a list of boxes")
    out = {}
    for name, value in data.items():
        where = f"entry {name!r}"
        if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
            boxes = [_parse_box(path, f"{where} box {i}", v) for i, v in enumerate(value)]
        elif isinstance(value, list) and not value:
            boxes = []
        else:
            boxes = [_parse_box(path, where, value)]
        out[name] = as_boxes(boxes)
    return out


def _boxes_from_csv(path, text):
    out = {}
    rows = csv.reader(io.StringIO(text))
    for lineno, row in enumerate(rows, 1):
        cells = [c.strip() for c in row]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        if lineno == 1 and cells[0].lower() in ("image", "name", "file", "path"):
            continue  # header
        if len(cells) != 5:
            raise DataError(path, f"line {lineno}: expected 5 columns image,x0,y0,x1,y1, got "
                                  f"{len(cells)}")
        try:
            values = [float(v) for v in cells[1:]]
        except ValueError:
            raise DataError(path, f"line {lineno}: box values must be numbers, got "
                                  f"{cells[1:]}") from None
        box = _parse_box(path, f"line {lineno}", values)
        out.setdefault(cells[0], []).append(box)
    if not out:
        raise DataError(path, "no boxes found (expected lines image,x0,y0,x1,y1)")
    return {k: as_boxes(v) for k, v in out.items()}


def load_boxes_file(path):
    """Read a boxes file -> {image name: (K, 4) float64 boxes (x0, y0, x1, y1)}.

    Boxes are edge coordinates in image pixels. Formats (chosen by the extension, .json or
    .csv; other extensions are sniffed: '{' starts JSON):
    - JSON: {"img1.jpg": [x0, y0, x1, y1], "img2.jpg": [[...], [...]], "img3.jpg": []}
      (an empty list means 'no face').
    - CSV: lines `image,x0,y0,x1,y1` (optional header line starting with image/name/file/
      path; '#' comments; several lines for one image give several boxes).
    Malformed content raises DataError naming the file and the entry or line.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(path, "boxes file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, f"cannot read boxes file ({exc})") from None
    if not text.strip():
        raise DataError(path, "empty boxes file")
    suffix = path.suffix.lower()
    if suffix == ".json" or (suffix != ".csv" and text.lstrip().startswith("{")):
        return _boxes_from_json(path, text)
    return _boxes_from_csv(path, text)


def lookup_boxes(boxes_by_name, image_path):
    """Boxes for `image_path` from a load_boxes_file mapping, matched by the path as given,
    then the file name, then the file stem; None when the image is not listed."""
    p = Path(image_path)
    for key in (str(image_path), p.as_posix(), p.name, p.stem):
        if key in boxes_by_name:
            return boxes_by_name[key]
    return None
