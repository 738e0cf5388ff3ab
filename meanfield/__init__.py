"""meanfield: grid solver for the mean-field distributional dynamics of two-layer networks.

The public surface: build a :class:`Grid` and a model (:mod:`meanfield.model`), wrap them in a
:class:`MeanFieldPDE`, and :func:`integrate` it on a :class:`~meanfield.backends.Backend`; or
run a whole config with :func:`load_config` and :func:`run_pde`. Plotting lives in
:mod:`meanfield.plotting` (not imported here).

The notebook API, :func:`run`, :func:`study`, :func:`read` and :func:`plot` (the PDE with the
particles beside it, results as xarray), is resolved on first use from :mod:`compare.api`, so
``import meanfield`` loads nothing of ``particles`` or ``compare``:

>>> import meanfield
>>> tree = meanfield.run("data/configs/mmn-isotropic.toml")      # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__
from .backends.arrays import Backend, available_backends, get_backend, to_numpy
from .config.driver import run_pde
from .config.parsing import Config, ConfigError, load_config, parse_config
from .grid import Grid
from .pde.controller import RunSummary, integrate
from .pde.equation import MeanFieldPDE
from .pde.trackers import InvariantTracker, InvariantViolation, MemoryTracker
from .rng import CounterRNG
from .schedules import TimeChange

__all__ = [
    "__version__",
    "Backend",
    "available_backends",
    "get_backend",
    "to_numpy",
    "Config",
    "ConfigError",
    "load_config",
    "parse_config",
    "RunSummary",
    "integrate",
    "run_pde",
    "MeanFieldPDE",
    "Grid",
    "CounterRNG",
    "TimeChange",
    "InvariantTracker",
    "InvariantViolation",
    "MemoryTracker",
    "run",
    "study",
    "read",
    "plot",
]

#: the notebook API's names, resolved lazily from this module (it imports particles and compare)
_NOTEBOOK_API = ("run", "study", "read", "plot")
_API_MODULE = "compare.api"


def __getattr__(name: str) -> Any:
    """``meanfield.run`` and the rest of the notebook API, imported on first use (PEP 562)."""
    if name in _NOTEBOOK_API:
        value = getattr(importlib.import_module(_API_MODULE), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
