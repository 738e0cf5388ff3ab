"""meanfield: grid solver for the mean-field distributional dynamics of two-layer networks.

The public surface: build a :class:`Grid` and a model (:mod:`meanfield.model`), wrap them in a
:class:`MeanFieldPDE`, and :func:`integrate` it on a :class:`~meanfield.backends.Backend`; or
run a whole config with :func:`load_config` and :func:`run_pde`. Plotting lives in
:mod:`meanfield.plotting` (not imported here).
"""

__version__ = "0.1.0"

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
]
