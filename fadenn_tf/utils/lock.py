"""One writer per folder: an advisory lock (fcntl.flock) on FOLDER/.fadenn.lock.

    with folder_lock(out_dir, "predict"):
        ...write into out_dir...

Commands call take_lock(out_dir, name) inside a main() decorated with
fadenn_tf.utils.cli.command. A second process asking for the same folder gets a LockedError
naming the holder's PID and command. The lock file does not outlive its run: the holder
deletes it (while still holding the lock) when it is done. A process that opened the file
before that deletion finds, once it gets the lock, that the path no longer names the file it
locked, and starts again on a fresh file; so two processes never hold two different locks
of one folder. A SIGKILLed holder cannot delete its file; the kernel drops its flock, and
the next run takes the file over (and deletes it at its end).
"""
import contextlib
import fcntl
import functools
import os
import sys
from pathlib import Path

from fadenn_tf.errors import FadennError
from fadenn_tf.utils.atomic import checked_write

LOCK_NAME = ".fadenn.lock"


class LockedError(FadennError):
    """Another live process holds the folder's lock."""


@contextlib.contextmanager
def folder_lock(folder, command="fadenn_tf"):
    """Hold the write lock of `folder` (created if missing) for the `with` block; the lock
    file is deleted when the block ends."""
    folder = Path(folder)
    path = folder / LOCK_NAME
    with checked_write(folder):
        folder.mkdir(parents=True, exist_ok=True)
    while True:
        with checked_write(path):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unknown"
            os.close(fd)
            raise LockedError(f"{folder}: in use by another process ({holder}); wait for it "
                              f"to finish or choose another output folder") from None
        if _names_file(path, fd):
            break
        os.close(fd)  # the holder before us deleted it after we opened it: lock a fresh one
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, {command}\n".encode(), 0)
        yield path
    finally:
        try:
            if _names_file(path, fd):
                path.unlink()   # still holding the lock: nobody else can be using this file
        except OSError:
            pass
        os.close(fd)  # releases the flock


def _names_file(path, fd):
    """True when `path` still names the open file `fd` (same device and inode)."""
    try:
        a, b = os.stat(path), os.fstat(fd)
    except FileNotFoundError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


_held = []  # fds of the locks taken by take_lock in the running command


def take_lock(folder, command):
    """Take `folder`'s lock until the command's `one_writer`-wrapped main returns (raises
    LockedError if another process holds it)."""
    stack = contextlib.ExitStack()
    stack.enter_context(folder_lock(folder, command))
    _held.append(stack)


def release_taken(depth):
    """Release the locks take_lock took after the first `depth` (None: release nothing);
    returns how many are held now. fadenn_tf.utils.cli.command calls it around a main()."""
    while depth is not None and len(_held) > depth:
        _held.pop().close()
    return len(_held)


def one_writer(main):
    """Former decorator of a command's main() (commands now use fadenn_tf.utils.cli.command,
    which maps every error to the exit-status table): releases the locks main took with
    take_lock when it returns, and turns LockedError into `error: ...` and exit status 2."""
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
