"""What a batch command has finished, so an interrupted run can continue (`--resume`).

    journal = Journal.start(out / ".degrade-journal.jsonl", settings, resume=args.resume)
    for item in items:
        if item.key in journal.done:
            continue
        ...write the item's files atomically...
        journal.add(item.key, [file, ...], crop=...)

The journal is a JSON-lines file in the output folder. Its first line holds the run's
settings; each further line records one finished item: its key, each file it wrote with its
size in bytes (paths relative to the journal's folder) and the caller's data. A line is
appended with a single write after every file of the item is in place, so a kill leaves at
worst a torn last line, which is ignored. On resume an item counts as done only when its
line is there and every file it lists still has the recorded size; anything else is redone.
"""
import json
import os
from pathlib import Path

from fadenn_tf.errors import DataError
from fadenn_tf.utils.atomic import checked_write, write_text_atomic


class Journal:
    """The finished items of one run in `path`. done: {key: record} of the items that can
    be kept (record: {"key", "files": {relative path: bytes}, ...caller's data})."""

    def __init__(self, path, settings, done):
        self.path, self.settings, self.done = Path(path), settings, done
        self.kept = len(done)       # items carried over from an earlier run

    @classmethod
    def start(cls, path, settings, resume=False):
        """A journal for a run with `settings` (a JSON-able dict). resume: keep the items of
        the earlier run recorded in `path` (DataError if its settings differ); otherwise, or
        when there is no earlier journal, start an empty one (replacing any earlier one)."""
        path = Path(path)
        done = {}
        if resume and path.is_file():
            done = _read(path, settings)
            if not path.read_bytes().endswith(b"\n"):   # a torn last line: end it
                with checked_write(path), open(path, "ab") as f:
                    f.write(b"\n")
            return cls(path, settings, done)
        write_text_atomic(path, json.dumps({"settings": settings}) + "\n")
        return cls(path, settings, done)

    def add(self, key, files, **data):
        """Record item `key` as finished, with the files it wrote (each must exist; paths
        absolute or relative to the working folder)."""
        root = Path(os.path.abspath(self.path.parent))
        sizes = {}
        for f in files:
            f = Path(os.path.abspath(f))
            name = f.relative_to(root) if root in f.parents else f
            sizes[name.as_posix()] = f.stat().st_size
        record = {"key": key, "files": sizes, **data}
        line = (json.dumps(record) + "\n").encode("utf-8")
        with checked_write(self.path):
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            try:
                if os.write(fd, line) != len(line):
                    raise OSError(f"short write to {self.path}")
            finally:
                os.close(fd)
        self.done[key] = record


def _read(path, settings):
    """{key: record} of the complete items journalled in `path` (see the module docstring)."""
    lines = path.read_bytes().split(b"\n")
    try:
        head = json.loads(lines[0])["settings"]
    except (ValueError, KeyError, TypeError):
        raise DataError(path, "not a journal of this command (first line unreadable); pass "
                              "--overwrite to start over") from None
    differ = sorted(k for k in set(head) | set(settings) if head.get(k) != settings.get(k))
    if differ:
        k = differ[0]
        raise DataError(path, f"the earlier run used other settings ({k}: "
                              f"{head.get(k)!r}, now {settings.get(k)!r}); resume with the "
                              f"same options, or pass --overwrite to start over")
    root, done = path.parent, {}
    for raw in lines[1:]:
        try:
            rec = json.loads(raw)
            key, files = rec["key"], rec["files"]
        except (ValueError, KeyError, TypeError):
            continue                  # a torn line (killed mid-append) or an empty one
        if all(_size(root / f) == n for f, n in files.items()):
            done[key] = rec
        else:
            done.pop(key, None)
    return done


def _size(path):
    try:
        return path.stat().st_size
    except OSError:
        return None
