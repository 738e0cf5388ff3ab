"""``meanfield reproduce``: the published experiments, each from one command.

Each experiment is an :class:`~compare.reproduce.base.Experiment` (the pipeline: keys, jobs,
job cache, ``results.csv`` and ``results.md``, figures, report), declared in one module with
its configs. The built-in ones (:mod:`~compare.reproduce.mmn`,
:mod:`~compare.reproduce.rve_kernel`, :mod:`~compare.reproduce.rve_pspin`) register themselves
on import and are listed in :data:`EXPERIMENTS`; :func:`reproduce` also runs an experiment of
your own, named ``"package.module:Attribute"`` or offered by an installed package through the
entry-point group ``meanfield.experiments`` (:func:`~compare.reproduce.base.get_experiment`).
"""

from __future__ import annotations

from . import mmn, rve_kernel, rve_pspin  # noqa: F401  (each registers its experiments)
from .base import (
    COLUMNS,
    ENTRY_POINT_GROUP,
    SCALES,
    Experiment,
    Job,
    Options,
    Row,
    builtin_experiments,
    entry_point_names,
    get_experiment,
    read_results,
    register,
    reproduce,
)

__all__ = [
    "COLUMNS",
    "ENTRY_POINT_GROUP",
    "EXPERIMENTS",
    "SCALES",
    "Experiment",
    "Job",
    "Options",
    "Row",
    "entry_point_names",
    "get_experiment",
    "read_results",
    "register",
    "reproduce",
]

#: the built-in experiments by name (a read-only view of the registry)
EXPERIMENTS = builtin_experiments()
