"""Modules imported on first use, so `fas <stage> --help` answers in well under a second.

A stage module binds its heavy dependencies (PyTorch, pandas, scikit-learn,
OpenCV, ...) with `lazy_import` instead of `import`: the name stands for the
module at once, and the ordinary import happens when one of its attributes is
first read. Module-level code must therefore not touch them.
"""

from __future__ import annotations

import importlib
from types import ModuleType


class _Deferred(ModuleType):
    """Stands for a module until an attribute is read, then imports it and takes its names."""

    def __getattr__(self, attribute: str):
        module = importlib.import_module(self.__name__)
        for name, value in vars(module).items():  # later reads skip __getattr__
            self.__dict__.setdefault(name, value)
        return getattr(module, attribute)


def lazy_import(name: str) -> ModuleType:
    """The module `name`, imported the ordinary way when one of its attributes is first read."""
    return _Deferred(name)
