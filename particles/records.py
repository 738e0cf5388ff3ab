"""What a particle run records at its output times: reduced coordinates and the risk."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from meanfield.backends import Backend, to_numpy

from .state import EnsembleState

__all__ = ["ParticleFrame", "make_recorder"]


@dataclass(frozen=True)
class ParticleFrame:
    """One output time, on the host.

    Attributes
    ----------
    t : float
    step : int
    reduced : array of shape ``(n_replicas, n_particles, k)``
        Reduced coordinates of every particle (``r = |w|`` for the isotropic model).
    risk : array of shape ``(n_replicas,)``
        Population risk ``R(mu_N)``, exact where the model has a formula.
    risk_se : array of shape ``(n_replicas,)``
        Its Monte Carlo standard error (0 when exact).
    theta : array of shape ``(n_replicas, n_particles, dim)`` or None
    extras : dict of arrays of shape ``(n_replicas,)`` (model-specific records)
    """

    t: float
    step: int
    reduced: np.ndarray
    risk: np.ndarray
    risk_se: np.ndarray
    theta: np.ndarray | None = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)


def make_recorder(
    model: Any, backend: Backend, *, keep_theta: bool = False, risk_fn: Any = None
) -> Any:
    """Return ``record(state, t) -> ParticleFrame``: the frame of ``state`` at output time
    ``t`` (the caller's: :func:`particles.run.simulate` knows the output times).

    ``risk_fn(theta, step) -> dict`` replaces the exact risk for models without a formula
    (``step`` is the state's step count, which may seed its random test points); it must
    return ``"risk"`` and ``"risk_se"`` and may add extras (arrays of shape ``(R,)``).
    """
    xp = backend.xp

    def record(state: EnsembleState, t: float) -> ParticleFrame:
        reduced = to_numpy(model.reduce(state.theta, xp))
        extras: dict[str, np.ndarray] = {}
        if risk_fn is None:
            risk = to_numpy(model.population_risk(state.theta, None, backend))
            risk_se = np.zeros_like(risk)
        else:
            values = {k: to_numpy(v) for k, v in risk_fn(state.theta, state.step).items()}
            risk, risk_se = values.pop("risk"), values.pop("risk_se")
            extras = values
        theta = to_numpy(state.theta).copy() if keep_theta else None
        return ParticleFrame(t, state.step, reduced, risk, risk_se, theta, extras)

    return record
