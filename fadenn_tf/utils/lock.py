"""One writer per folder: an advisory lock (fcntl.flock) on FOLDER/.fadenn.lock.

    with folder_lock(out_dir, "predict"):
        ...write into out_dir...

A second process asking for the same folder gets a LockedError naming the holder's PID and
command. The lock dies with its process (the kernel drops a flock when the file is closed,
also on SIGKILL), so a lock file left by a killed run is simply taken over; the file itself
stays (removing it could let two processes lock two different files).
"""
import contextlib
import fcntl
import os
from pathlib import Path

from fadenn_tf.errors import FadennError

LOCK_NAME = ".fadenn.lock"


class LockedError(FadennError):
    """Another live process holds the folder's lock."""


@contextlib.contextmanager
def folder_lock(folder, command="fadenn_tf"):
    """Hold the write lock of `folder` (created if missing) for the `with` block."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unknown"
            raise LockedError(f"{folder}: in use by another process ({holder}); wait for it "
                              f"to finish or choose another output folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, {command}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the flock
