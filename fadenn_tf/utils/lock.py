"""One writer per folder: an advisory lock (fcntl.flock) on FOLDER/.fadenn.lock.

    with folder_lock(out_dir, "predict"):
        ...write into out_dir...

Commands call take_lock(out_dir, name) inside a main() decorated with @one_writer. A second
process asking for the same folder gets a LockedError naming the holder's PID and
command. The lock dies with its process (the kernel drops a flock when the file is closed,
also on SIGKILL), so a lock file left by a killed run is simply taken over; the file itself
stays (removing it could let two processes lock two different files).
"""
import contextlib
import fcntl
import functools
import os
import sys
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


_held = []  # fds of the locks taken by take_lock in the running command


def take_lock(folder, command):
    """Take `folder`'s lock until the command's `one_writer`-wrapped main returns (raises
    LockedError if another process holds it)."""
    stack = contextlib.ExitStack()
    stack.enter_context(folder_lock(folder, command))
    _held.append(stack)


def one_writer(main):
    """Decorator of a command's main(): releases the locks it took with take_lock when it
    returns, and turns LockedError into `error: ...` on stderr and exit status 2."""
    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        depth = len(_held)
        try:
            return main(*args, **kwargs)
        except LockedError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        finally:
            while len(_held) > depth:
                _held.pop().close()
    return wrapper
