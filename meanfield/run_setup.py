"""One run, built once: the typed objects the config layer hands the PDE, the particles and the
studies (:func:`meanfield.config.builders.build_run_setup` builds them).

A config is read in one place, :mod:`meanfield.config`; everything downstream takes these
objects, never a config: the model and the backends are built once per run, and the particle
options travel typed, each under its config name (``particles.step`` is :attr:`ParticleSpec.step`
from the TOML to the engine's entry point). This module imports nothing of ``config``, so the
particle package can take a :class:`ParticleSetup` without reading a config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .backends.arrays import Backend
from .schedules import TimeChange

__all__ = ["ParticleSpec", "ParticleSetup", "RunSetup"]


@dataclass(frozen=True)
class ParticleSpec:
    """``[particles]`` and the ``[dynamics]`` the particles follow, resolved and typed.

    Every field keeps its config key's name (``particles.KEY``, or ``dynamics.KEY`` for
    ``time_change`` (from ``xi``), ``l2``, ``beta`` and ``save_times``).
    """

    n: int
    replicas: int
    seed: int
    method: str
    step: float
    batch: int
    quench_batch: int
    quench_time: float | None
    engine: str
    dtype: str
    keep_theta: bool
    test_points: int
    time_change: TimeChange
    l2: float
    beta: float
    save_times: tuple[float, ...]


@dataclass(frozen=True)
class ParticleSetup:
    """What a particle ensemble is built from: the particle-side model and its initial law (the
    model's entry may give another model to the particles than to the PDE: the p-spin task),
    the backend, and the options."""

    model: Any
    law: Any
    backend: Backend
    spec: ParticleSpec


@dataclass(frozen=True)
class RunSetup:
    """A whole run: the config (its TOML goes into the file), the model, the PDE setup (a grid
    or a characteristics setup, or None) and the particle setup (or None)."""

    config: Any
    model: Any
    pde: Any
    particles: ParticleSetup | None

    @property
    def backend(self) -> Backend:
        """The backend recorded in the file: the PDE's, else the particles'."""
        if self.pde is not None:
            return self.pde.backend
        if self.particles is None:
            raise ValueError("a run with neither [pde] nor [particles] has no backend")
        return self.particles.backend
