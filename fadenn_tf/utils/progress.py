"""Progress bars for the CLIs (library functions take `progress=False` by default)."""
import sys

from tqdm.auto import tqdm


def progress(iterable=None, total=None, desc=None, enabled=True, unit="it"):
    """A tqdm bar on stderr, silent when `enabled` is False or stderr is not a terminal
    and FADENN_PROGRESS is unset."""
    import os
    show = enabled and (sys.stderr.isatty() or os.environ.get("FADENN_PROGRESS") == "1")
    return tqdm(iterable, total=total, desc=desc, disable=not show, unit=unit,
                dynamic_ncols=True, file=sys.stderr)
