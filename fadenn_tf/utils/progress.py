"""Progress for the CLIs (library functions take `progress=False` by default).

One object, `Progress`, with three modes and the same interface in each (iterate it, or
update / set_postfix / set_postfix_str / write / close, `with`; attributes n, total, desc,
unit, mode, postfix):
- "bar": a tqdm bar on stderr (the default on a terminal);
- "lines": plain lines on stderr (the default in a log file, a pipe or CI), one every 10%
  of the work (or every `every` units) and at least once a minute, each with count/total,
  the figures the caller sets (e.g. loss, images/s), the rate and the ETA;
- "off": counts, prints nothing.
FADENN_PROGRESS overrides the choice: `bar`/`1` forces the bar, `lines` the lines, `0`/`off`
silences both. `progress(...)` picks the mode; callers never test which one they got.
"""
import math
import os
import sys
import time

MODES = ("bar", "lines", "off")


def progress(iterable=None, total=None, desc=None, enabled=True, unit="it", every=None):
    """A Progress in the mode chosen by `enabled`, FADENN_PROGRESS and the terminal."""
    return Progress(iterable, total=total, desc=desc, unit=unit, mode=progress_mode(enabled),
                    every=every)


def progress_mode(enabled=True):
    """"bar", "lines" or "off": off when not enabled, else FADENN_PROGRESS, else a bar on a
    terminal and lines elsewhere."""
    if not enabled:
        return "off"
    forced = os.environ.get("FADENN_PROGRESS", "").strip().lower()
    if forced in ("1", "bar"):
        return "bar"
    if forced in ("0", "off"):
        return "off"
    if forced == "lines":
        return "lines"
    isatty = getattr(sys.stderr, "isatty", None)
    return "bar" if isatty is not None and isatty() else "lines"


class Progress:
    """Progress of `total` units (None: unknown) of work, reported as `mode` says.

    every: lines mode, a line every this many units (default: 10% of total; with no total,
    only every `seconds`). stream: where lines go (default sys.stderr at write time).
    """

    def __init__(self, iterable=None, total=None, desc=None, unit="it", mode="lines",
                 every=None, seconds=60.0, stream=None):
        if mode not in MODES:
            raise ValueError(f"progress mode {mode!r}: choose one of {', '.join(MODES)}")
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.mode, self.seconds, self.stream = mode, seconds, stream
        self.every = int(every) if every else (max(1, math.ceil(total / 10)) if total
                                               else None)
        self.n, self.postfix = 0, ""
        self._start = self._last_time = time.perf_counter()
        self._base = None          # (time, count) at the first unit done: excludes warm-up
        self._pending, self._last_n, self._closed = False, None, False
        self._bar = None
        if mode == "bar":
            from tqdm.auto import tqdm  # lazy: tqdm (0.1 s), only for a bar on a terminal
            self._bar = tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True,
                             file=stream or sys.stderr)

    def __iter__(self):
        if self.iterable is None:
            raise TypeError("this Progress was made without an iterable: call update()")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def update(self, n=1):
        """Count n more units done."""
        self._flush()
        self.n += n
        now = time.perf_counter()
        if self._base is None and self.n:
            self._base = (now, self.n)
        if self._bar is not None:
            self._bar.update(n)
            return
        crossed = self.every and (self.n // self.every) > ((self.n - n) // self.every)
        if crossed or now - self._last_time >= self.seconds:
            self._pending = True   # written at the next call, with the caller's new figures

    def set_postfix(self, ordered_dict=None, refresh=True, **kwargs):
        """Figures shown after the count, e.g. set_postfix(loss="0.123")."""
        items = {**(ordered_dict or {}), **kwargs}
        self.set_postfix_str(", ".join(f"{k}={v}" for k, v in items.items()), refresh)

    def set_postfix_str(self, s="", refresh=True):
        self.postfix = str(s)
        if self._bar is not None:
            self._bar.set_postfix_str(self.postfix, refresh=refresh)
        self._flush()

    def write(self, message):
        """A status message (e.g. the phase starting): a line above the bar, a plain line in
        lines mode, nothing when off."""
        if self.mode == "off":
            return
        if self._bar is not None:
            self._bar.write(str(message), file=self.stream or sys.stderr)
        else:
            print(message, file=self.stream or sys.stderr, flush=True)

    def close(self):
        """Finish: the bar closes; lines mode writes a last line if the count moved."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
            return
        self._pending = self._pending or (self.n > 0 and self._last_n != self.n)
        self._flush()

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

    def _flush(self):
        if self._pending:
            self._pending = False
            self._last_time, self._last_n = time.perf_counter(), self.n
            if self.mode == "lines":
                print(self.line(), file=self.stream or sys.stderr, flush=True)


def _duration(seconds):
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")
