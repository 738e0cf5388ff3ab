"""Run configuration: the TOML schema, its parsing, and the objects built from a config.

- :mod:`~meanfield.config.fields`: the vocabulary of a key (:class:`Field`,
  :class:`ConfigError`, checks and conversions); imports nothing of the package at import
  time, so model modules and user models can use it.
- :mod:`~meanfield.config.schema`: the sections and their keys, the models' keys added from
  the model registry.
- :mod:`~meanfield.config.parsing`: :func:`parse_config`, :func:`load_config`,
  :func:`apply_overrides` and the frozen :class:`Config`.
- :mod:`~meanfield.config.builders`: from a :class:`Config` to a grid, model, law and
  :class:`~meanfield.pde.equation.MeanFieldPDE`.
- :mod:`~meanfield.config.driver`: a config's PDE run into an HDF5 file (:func:`run_pde`).

``config`` builds on :mod:`meanfield.pde`; ``pde`` imports nothing of ``config``.

The names below stay importable from ``meanfield.config``. They are loaded on first use
(PEP 562): the model modules import :mod:`meanfield.config.fields`, and parsing imports the
model registry, so importing this package must not import parsing (no import cycle).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# every name below is defined in (or re-exported by) meanfield.config.parsing
__all__ = ["REQUIRED", "SCHEMA", "MODEL_SCHEMA", "REDUCED_DIM", "Config", "ConfigError",
           "apply_overrides", "Derived", "Field", "load_config", "parse_config", "reduced_dim"]

if TYPE_CHECKING:
    from .parsing import (
        MODEL_SCHEMA,
        REDUCED_DIM,
        REQUIRED,
        SCHEMA,
        Config,
        ConfigError,
        Derived,
        Field,
        apply_overrides,
        load_config,
        parse_config,
        reduced_dim,
    )


def __getattr__(name: str) -> Any:
    if name in __all__:
        value = getattr(importlib.import_module(f"{__name__}.parsing"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
