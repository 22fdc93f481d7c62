"""Modules loaded when first used rather than when the module importing them loads.

The web processes import the whole application but serve annotators mostly: numpy (and the
``krippendorff`` package built on it) costs each Python process about 20 MB and is used only by
candidate generation and by the consensus, statistics and review computations; the Celery
worker's main process, which runs no task, never needs it. A module that needs them names them
with ``lazy_module`` and pays on first use. Kept free of Django (and in ``clips``, which every
app may import) so that ``annotations.agreement`` stays usable on plain arrays.

Not ``importlib.util.LazyLoader``: on Python 3.11 it is not thread-safe (a second thread that
touches the module while the first one runs its code sees a half-loaded module: "module 'numpy'
has no attribute 'arange'" under gunicorn's threads). Here the first attribute asked for imports
the module with ``importlib.import_module``, whose per-module lock makes every other thread wait
until the module is whole.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType


class _Deferred(ModuleType):
    """Stands for a module until an attribute is asked for; then imports it and hands over."""

    def __getattr__(self, attr: str):
        # Only called for names not in this object's __dict__ (the first use of each).
        module = importlib.import_module(self.__name__)
        value = getattr(module, attr)
        self.__dict__[attr] = value  # the next use is a plain lookup
        return value

    def __dir__(self) -> list[str]:
        return dir(importlib.import_module(self.__name__))


def lazy_module(name: str) -> ModuleType:
    """Return module ``name``, loaded on its first attribute access (at once if already loaded)."""
    if name in sys.modules:
        return sys.modules[name]
    if importlib.util.find_spec(name) is None:
        raise ModuleNotFoundError(name)
    return _Deferred(name)
