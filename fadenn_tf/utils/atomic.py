"""Atomic, checked writes: a file or folder appears complete or not at all, and a write
that fails (full disk, file-size limit, unwritable folder) raises WriteError naming the file
instead of leaving a partial file or failing silently."""
import contextlib
import errno
import json
import os
import shutil
import tempfile
from pathlib import Path

from fadenn_tf.errors import FadennError, WriteError, write_failure_problem


@contextlib.contextmanager
def atomic_path(final, is_dir=False):
    """Yield a temporary path beside `final`; rename it onto `final` only on success.

    For files the rename replaces an existing file atomically. For folders, `final` must not
    exist yet (callers that must never overwrite check this first). A folder gets the mode a
    plain mkdir would give (0777 minus the umask), not mkdtemp's private 0700, so a process
    running as another user (e.g. TF Serving) can read what is renamed into place.
    A failed write in the block or in the rename (an OSError other than "exists", or a
    TensorFlow error saying the disk is full) is raised as WriteError naming `final`; the
    temporary is removed and an existing `final` is left as it was.
    """
    final = Path(final)
    with checked_write(final):
        _make_parent(final)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    target = tmp if is_dir else tmp / final.name
    try:
        with checked_write(final):
            os.chmod(tmp, 0o777 & ~current_umask())
            yield target
            if is_dir:
                os.replace(tmp, final) if not final.exists() else _refuse(final)
            else:
                os.replace(target, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def checked_write(path):
    """Turn a failed write inside the block into WriteError(path, reason) (see
    fadenn_tf.errors.write_failure_problem); other errors pass unchanged."""
    try:
        yield
    except FadennError:
        raise
    except Exception as exc:  # noqa: BLE001 (TensorFlow's own error types included)
        problem = write_failure_problem(exc)
        if problem is None:
            raise
        raise WriteError(path, problem) from exc


def current_umask():
    """The process umask, read without changing it where the OS allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)   # no read-only query elsewhere: set and restore at once
    os.umask(mask)
    return mask


def _make_parent(final):
    """Create the folder of `final`; a file standing where that folder should be is
    NotADirectoryError (an unwritable output), not FileExistsError (an output in use)."""
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR),
                                 str(final.parent)) from None


def _refuse(final):
    raise FileExistsError(f"{final}: already exists; refusing to overwrite it")


def write_text_atomic(path, text):
    """Write `text` to `path` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


def write_json_atomic(path, obj):
    """Write `obj` as indented JSON to `path` atomically."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_bytes_atomic(path, data):
    """Write the bytes `data` to `path` atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)


def write_image_atomic(path, bgr, params=()):
    """Encode the uint8 BGR image `bgr` [H,W,3] (or [H,W]) in the format of `path`'s
    extension (.png, .jpg, ...; cv2 `params` such as [cv2.IMWRITE_JPEG_QUALITY, 90]) and
    write it atomically. Unlike cv2.imwrite, which returns False (or only prints a libpng
    message) on a full disk, a failure raises WriteError naming `path`."""
    import cv2  # lazy: OpenCV (0.2 s); every command imports this module (utils.lock)
    import numpy as np  # lazy: as cv2
    ok, buf = cv2.imencode(Path(path).suffix or ".png", np.ascontiguousarray(bgr),
                           list(params))
    if not ok:
        raise WriteError(path, f"OpenCV could not encode a {np.shape(bgr)} image as "
                               f"{Path(path).suffix or '.png'}")
    write_bytes_atomic(path, buf.tobytes())
    return Path(path)


def save_figure_atomic(fig, path, **kwargs):
    """matplotlib `fig.savefig(path, **kwargs)`, atomic and checked (WriteError)."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, **kwargs)
    return Path(path)


def remove_stale_temporaries(folder):
    """Delete the `.NAME.tmp-*` folders atomic_path left in `folder` when a writer was
    killed. Call it only while holding the folder's lock (fadenn_tf.utils.lock): then no
    live writer owns them. Returns the removed paths."""
    folder = Path(folder)
    stale = [p for p in folder.glob(".*.tmp-*") if p.is_dir()] if folder.is_dir() else []
    for p in stale:
        shutil.rmtree(p, ignore_errors=True)
    return stale
