"""Progress for the CLIs (library functions take `progress=False` by default).

On a terminal: a tqdm bar on stderr. Elsewhere (a log file, CI): plain lines on stderr, one
every 10% of the work and at least once a minute, each with count/total, the figures the
caller sets (e.g. loss, images/s), the rate and the ETA. FADENN_PROGRESS overrides the
choice: `bar`/`1` forces the bar, `lines` the lines, `0` silences both.
"""
import math
import os
import sys
import time


def progress(iterable=None, total=None, desc=None, enabled=True, unit="it"):
    """A progress reporter (tqdm-like: iterate, update, set_postfix, close, `with`)."""
    mode = _mode(enabled)
    if mode == "bar":
        from tqdm.auto import tqdm
        return tqdm(iterable, total=total, desc=desc, unit=unit, dynamic_ncols=True,
                    file=sys.stderr)
    return LineProgress(iterable, total=total, desc=desc, unit=unit, enabled=mode == "lines")


def _mode(enabled):
    if not enabled:
        return "off"
    forced = os.environ.get("FADENN_PROGRESS", "").strip().lower()
    if forced in ("1", "bar"):
        return "bar"
    if forced in ("0", "off"):
        return "off"
    if forced == "lines":
        return "lines"
    return "bar" if sys.stderr.isatty() else "lines"


class LineProgress:
    """Writes a line to `stream` every `every` units (default 10% of total) or `seconds`."""

    def __init__(self, iterable=None, total=None, desc=None, unit="it", enabled=True,
                 every=None, seconds=60.0, stream=None):
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.enabled, self.seconds, self.stream = enabled, seconds, stream
        self.every = every or (max(1, math.ceil(total / 10)) if total else None)
        self.n, self.postfix = 0, ""
        self._start = self._last_time = time.perf_counter()
        self._base = None          # (time, count) at the first unit done: excludes warm-up
        self._pending, self._last_n, self._closed = False, None, False

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def update(self, n=1):
        self._flush()
        self.n += n
        now = time.perf_counter()
        if self._base is None and self.n:
            self._base = (now, self.n)
        crossed = self.every and (self.n // self.every) > ((self.n - n) // self.every)
        if crossed or now - self._last_time >= self.seconds:
            self._pending = True

    def set_postfix(self, ordered_dict=None, refresh=True, **kwargs):
        items = {**(ordered_dict or {}), **kwargs}
        self.set_postfix_str(", ".join(f"{k}={v}" for k, v in items.items()))

    def set_postfix_str(self, s="", refresh=True):
        self.postfix = str(s)
        self._flush()

    def close(self):
        if self._closed:
            return
        self._closed = True
        self._pending = self._pending or (self.n > 0 and self._last_n != self.n)
        self._flush()

    def _flush(self):
        if self._pending:
            self._pending = False
            self._write()

    def line(self):
        """The text of the current progress line."""
        now = time.perf_counter()
        head = f"{self.desc}: " if self.desc else ""
        if self.total:
            head += f"{self.unit} {self.n}/{self.total} ({100 * self.n / self.total:.0f}%)"
        else:
            head += f"{self.unit} {self.n}"
        parts = [head] + ([self.postfix] if self.postfix else [])
        rate = None
        if self._base is not None and self.n > self._base[1] and now > self._base[0]:
            rate = (self.n - self._base[1]) / (now - self._base[0])
            parts.append(f"{rate:.0f} {self.unit}/s" if rate >= 100
                         else f"{rate:.2f} {self.unit}/s")
        parts.append(f"elapsed {_duration(now - self._start)}")
        if rate and self.total and self.n < self.total:
            parts.append(f"ETA {_duration((self.total - self.n) / rate)}")
        return ", ".join(parts)

    def _write(self):
        self._last_time, self._last_n = time.perf_counter(), self.n
        if self.enabled:
            stream = self.stream or sys.stderr
            print(self.line(), file=stream, flush=True)


def _duration(seconds):
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")
