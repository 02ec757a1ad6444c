"""Read and write ibug `.pts` landmark files.

File convention (ibug / 300-W): coordinates are 1-based pixel positions, the centre of the
top-left pixel is (1, 1). In memory the project uses 0-based pixel-centre coordinates (the
top-left pixel's centre is (0, 0)), as menpo does: `read_pts` subtracts 1, `write_pts` adds 1.
Arrays are (N, 2) float64, columns (x, y).

Round trip: values are written with up to 9 decimals (trailing zeros dropped), so a file
with at most 9 decimals reads and writes back to the same numbers.
"""
import math
import re
from pathlib import Path

import numpy as np

from fadenn_tf.errors import DataError
from fadenn_tf.utils.atomic import write_text_atomic

_HEADER_N = re.compile(r"^n_points\s*:\s*(\d+)\s*$")


def read_pts(path, n_points=None):
    """Read a .pts file into a (N, 2) float64 array of 0-based (x, y) pixel coordinates.

    n_points: if given, the file must hold exactly that many points.
    Raises DataError naming the file on a missing file, malformed content, a count mismatch
    or non-finite coordinates.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except FileNotFoundError:
        raise DataError(path, "landmark file not found") from None
    except (UnicodeDecodeError, OSError) as exc:
        raise DataError(path, f"cannot read landmark file ({exc})") from None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    declared = None
    i = 0
    while i < len(lines) and lines[i] != "{":
        m = _HEADER_N.match(lines[i])
        if m:
            declared = int(m.group(1))
        elif not lines[i].startswith("version"):
            raise DataError(path, f"malformed .pts header line {lines[i]!r}")
        i += 1
    if i == len(lines):
        raise DataError(path, "malformed .pts: no '{' line")
    try:
        end = lines.index("}", i + 1)
    except ValueError:
        raise DataError(path, "malformed .pts: no closing '}' line") from None
    body = lines[i + 1:end]
    pts = []
    for k, ln in enumerate(body):
        parts = ln.split()
        if len(parts) != 2:
            raise DataError(path, f"malformed .pts: point {k} line {ln!r} is not 'x y'")
        try:
            pts.append((float(parts[0]), float(parts[1])))
        except ValueError:
            raise DataError(path, f"malformed .pts: point {k} line {ln!r} is not numeric") from None
    arr = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    if declared is not None and declared != len(arr):
        raise DataError(path, f"header says n_points: {declared} but the file has {len(arr)} points")
    if n_points is not None and len(arr) != n_points:
        raise DataError(path, f"expected {n_points} points, found {len(arr)}")
    if not np.isfinite(arr).all():
        bad = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise DataError(path, f"non-finite coordinate (NaN/inf) at point {bad}")
    return arr - 1.0


def _fmt(v):
    v = round(float(v), 9)
    if v == 0:
        v = 0.0  # no "-0"
    s = f"{v:.9f}".rstrip("0")
    return s + "0" if s.endswith(".") else s


def format_pts(points):
    """The text of a .pts file for (N, 2) 0-based coordinates."""
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"points must have shape (N, 2), got {pts.shape}")
    if not np.isfinite(pts).all():
        raise ValueError("points contain NaN or inf")
    rows = [f"{_fmt(x + 1.0)} {_fmt(y + 1.0)}" for x, y in pts]
    return "version: 1\nn_points: {}\n{{\n{}\n}}\n".format(len(pts), "\n".join(rows))


def write_pts(path, points):
    """Write (N, 2) 0-based (x, y) coordinates as a 1-based .pts file (atomically)."""
    write_text_atomic(path, format_pts(points))
