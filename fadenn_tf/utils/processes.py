"""Worker processes that never outlive their command, and SIGTERM handled as Ctrl-C.

    with sigterm_interrupts():                       # SIGTERM -> KeyboardInterrupt
        for result in run_in_workers(work, jobs, 2):   # results in completion order
            ...

A worker dies with its parent however the parent ends: the kernel sends it SIGKILL when the
parent dies (Linux prctl PR_SET_PDEATHSIG), and on every OS a watch thread ends it within a
second once its parent pid changes (the parent died and it was re-parented). When the
consumer stops early (an error, Ctrl-C, SIGTERM turned into KeyboardInterrupt), the pending
jobs are cancelled and the running workers are terminated at once instead of finishing their
job. Workers ignore SIGINT: a Ctrl-C on a terminal reaches the whole process group, and the
parent alone decides what happens.
"""
import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

PR_SET_PDEATHSIG = 1    # linux/prctl.h


def run_in_workers(fn, jobs, workers, initializer=None, ordered=False):
    """Yield fn(job) for every job of the list `jobs`, computed by `workers` spawned
    processes (in this process, in order, when workers <= 1 or there is one job); results
    come in completion order, or in the order of `jobs` when `ordered`. fn (or a
    functools.partial of one) and initializer (run first in each worker process, not in
    this one) must be importable module-level functions.
    """
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield fn(job)
        return
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start_worker, initargs=(os.getpid(), initializer))
    finished = False
    try:
        futures = [pool.submit(fn, job) for job in jobs]
        for f in (futures if ordered else as_completed(futures)):
            yield f.result()
        finished = True
    finally:
        if not finished:
            pool.shutdown(wait=False, cancel_futures=True)
            # ProcessPoolExecutor has no public way to stop running jobs before Python 3.14
            for proc in list((getattr(pool, "_processes", None) or {}).values()):
                if proc.is_alive():
                    proc.kill()
        pool.shutdown(wait=True)


def _start_worker(parent_pid, initializer):
    """In each worker: die with the parent, ignore SIGINT, then the caller's initializer."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(parent_pid)
    if initializer is not None:
        initializer()


def die_with_parent(parent_pid):
    """End this process when `parent_pid` (its parent) dies: SIGKILL from the kernel on Linux,
    and a watch thread polling the parent pid once a second everywhere."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass                      # no prctl: the watch thread alone does it
    if os.getppid() != parent_pid:    # the parent died before the line above
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="watch-parent",
                     daemon=True).start()


def _watch_parent(parent_pid, period=1.0):
    while True:
        time.sleep(period)
        if os.getppid() != parent_pid:
            os._exit(1)


@contextlib.contextmanager
def sigterm_interrupts():
    """Inside the block, SIGTERM raises KeyboardInterrupt in the main thread (as Ctrl-C
    does), so `finally` clauses run, workers are stopped and the command exits with 130.
    Does nothing outside the main thread (Python only delivers signals there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    old = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)
