"""Modules imported on first use, so `fas <stage> --help` answers in well under a second.

A stage module binds its heavy dependencies (PyTorch, pandas, scikit-learn,
OpenCV, ...) with `lazy_import` instead of `import`: the name is bound at once
and the module runs on its first attribute access (importlib's LazyLoader).
Module-level code must therefore not touch them.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def lazy_import(name: str) -> ModuleType:
    """The module `name`, executed when one of its attributes is first read."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module
