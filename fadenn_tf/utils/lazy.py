"""A module imported at its first use, so a command answers --help without loading TensorFlow."""
import importlib


class LazyModule:
    """Stands for module `name`; the first attribute access imports it and copies its names."""

    def __init__(self, name):
        self.__dict__["_lazy_name"] = name

    def __getattr__(self, attr):
        module = importlib.import_module(self.__dict__["_lazy_name"])
        self.__dict__.update(vars(module))     # later lookups are plain attribute reads
        return getattr(module, attr)

    def __repr__(self):
        return f"<lazy module {self.__dict__['_lazy_name']!r}>"


def lazy_import(name):
    """`tf = lazy_import("tensorflow")` in place of `import tensorflow as tf`."""
    return LazyModule(name)
