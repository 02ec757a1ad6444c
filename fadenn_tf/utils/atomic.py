"""Atomic writes: a file or folder appears complete or not at all."""
import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_path(final, is_dir=False):
    """Yield a temporary path beside `final`; rename it onto `final` only on success.

    For files the rename replaces an existing file atomically. For folders, `final` must not
    exist yet (callers that must never overwrite check this first). A folder gets the mode a
    plain mkdir would give (0777 minus the umask), not mkdtemp's private 0700, so a process
    running as another user (e.g. TF Serving) can read what is renamed into place.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    os.chmod(tmp, 0o777 & ~current_umask())
    target = tmp if is_dir else tmp / final.name
    try:
        yield target
        if is_dir:
            os.replace(tmp, final) if not final.exists() else _refuse(final)
        else:
            os.replace(target, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


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


def _refuse(final):
    raise FileExistsError(f"{final}: already exists; refusing to overwrite it")


def write_text_atomic(path, text):
    """Write `text` to `path` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


def write_json_atomic(path, obj):
    """Write `obj` as indented JSON to `path` atomically."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def remove_stale_temporaries(folder):
    """Delete the `.NAME.tmp-*` folders atomic_path left in `folder` when a writer was
    killed. Call it only while holding the folder's lock (fadenn_tf.utils.lock): then no
    live writer owns them. Returns the removed paths."""
    folder = Path(folder)
    stale = [p for p in folder.glob(".*.tmp-*") if p.is_dir()] if folder.is_dir() else []
    for p in stale:
        shutil.rmtree(p, ignore_errors=True)
    return stale
