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
