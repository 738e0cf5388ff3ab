"""Run configuration: the TOML schema, its parsing, and the objects built from a config.

The vocabulary of a key (:class:`Field`, :class:`ConfigError`, checks and conversions) sits below
this package, in :mod:`meanfield.fields`: the model modules (and user models) declare their keys
with it, and this package reads the models' keys from the registry, so the layers go one way:
``fields`` <- ``model`` <- ``config``.

- :mod:`~meanfield.config.schema`: the sections and their keys, the models' keys added from
  the model registry.
- :mod:`~meanfield.config.parsing`: :func:`parse_config`, :func:`load_config`,
  :func:`apply_overrides` and the frozen :class:`Config`.
- :mod:`~meanfield.config.builders`: from a :class:`Config` to a grid, model, law and
  :class:`~meanfield.pde.equation.MeanFieldPDE`.
- :mod:`~meanfield.config.driver`: a config's PDE run into an HDF5 file (:func:`run_pde`).

``config`` builds on :mod:`meanfield.pde`; ``pde`` imports nothing of ``config``. What a key's
check needs of the model (its number of grid axes) comes through the parse context
(:data:`meanfield.fields.AXES`), so nothing below imports ``config`` back and this package loads
in one pass, with no lazy loader.
"""

from __future__ import annotations

from ..fields import ConfigError, Derived, Field
from .parsing import (
    MODEL_SCHEMA,
    REDUCED_DIM,
    REQUIRED,
    SCHEMA,
    Config,
    apply_overrides,
    load_config,
    parse_config,
    reduced_dim,
)

__all__ = [
    "REQUIRED",
    "SCHEMA",
    "MODEL_SCHEMA",
    "REDUCED_DIM",
    "Config",
    "ConfigError",
    "apply_overrides",
    "Derived",
    "Field",
    "load_config",
    "parse_config",
    "reduced_dim",
]
