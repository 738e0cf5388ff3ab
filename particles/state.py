"""The state of a particle ensemble: R replicas of N units in R^D as one array."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

__all__ = ["EnsembleState"]


@dataclass(frozen=True)
class EnsembleState:
    """Immutable ensemble state.

    Attributes
    ----------
    theta : backend array of shape ``(n_replicas, n_particles, dim)``
    step : int
        Steps taken. The state carries no time: step ``k`` is PDE time ``k * eps`` only up to
        round-off, so :func:`particles.run.simulate` gives each recorded frame its output time.
    """

    theta: Any
    step: int = 0

    def replace(self, **changes: Any) -> EnsembleState:
        return dataclasses.replace(self, **changes)

    @property
    def n_replicas(self) -> int:
        return int(self.theta.shape[0])

    @property
    def n_particles(self) -> int:
        return int(self.theta.shape[1])
