"""Modules loaded when first used rather than when the module importing them loads.

The web processes import the whole application but serve annotators mostly: numpy (and the
``krippendorff`` package built on it) costs each Python process about 20 MB and is used only by
candidate generation and by the consensus, statistics and review computations; the Celery
worker's main process, which runs no task, never needs it. A module that needs them names them
with ``lazy_module`` and pays on first use. Kept free of Django (and in ``clips``, which every
app may import) so that ``annotations.agreement`` stays usable on plain arrays.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def lazy_module(name: str) -> ModuleType:
    """Return module ``name``, loaded on its first attribute access (at once if already loaded)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module
