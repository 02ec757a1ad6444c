"""Exceptions with messages that name the offending file and the problem."""


class FadennError(Exception):
    """Base class of the project's own errors."""


class DataError(FadennError, ValueError):
    """A data file (image, .pts, video, box list) is missing, malformed or unusable.

    `path` is the file at fault; `problem` says what is wrong with it.
    """

    def __init__(self, path, problem):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ConfigError(FadennError, ValueError):
    """An experiment configuration is invalid; raised before any work starts."""


class WriteError(FadennError):
    """A file or folder could not be written (full disk, file-size limit, read-only or
    unwritable output). `path` is the file that was being written; `problem` says why.
    Commands exit with status 3 on it (fadenn_tf.utils.cli)."""

    def __init__(self, path, problem):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: could not write it ({problem})")

    def __reduce__(self):  # crosses process boundaries (worker pools) intact
        return type(self), (self.path, self.problem)


# Messages of an out-of-space or unwritable-output failure, as the OS, libc and TensorFlow's
# file system layer word them (TensorFlow raises its own error types, not OSError).
WRITE_FAILURE_TEXTS = ("No space left on device", "File too large", "Disk quota exceeded",
                       "Read-only file system")


def write_failure_problem(exc):
    """The short reason when `exc` is a failed write (an OSError other than "exists" or
    "not found", or any error whose message is one of WRITE_FAILURE_TEXTS); else None."""
    text = str(exc)
    for known in WRITE_FAILURE_TEXTS:
        if known in text:
            return known
    if isinstance(exc, OSError) and not isinstance(exc, (FileExistsError, FileNotFoundError)):
        return exc.strerror or type(exc).__name__
    return None
