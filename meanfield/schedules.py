"""Time changes ``xi(t)``, shared by the PDE and the particles.

The right-hand side of the DD is proportional to ``xi(t)`` (transport, l2 term and noise alike),
so ``rho(t) = rho_1(tau(t))`` with ``tau(t) = int_0^t xi`` and ``rho_1`` the solution for
``xi = 1``. The PDE is integrated in ``tau``, which handles an integrable singularity of ``xi``
at ``t = 0`` (MMN's ``xi(t) = t^{-1/4}``) exactly; SGD step ``k`` uses the step integral
``s_k = tau((k + 1) eps) - tau(k eps)``, equal to ``eps xi(k eps)`` up to ``O(eps^2 xi')`` and
finite at ``k = 0``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["TimeChange", "time_change_from_spec"]


@dataclass(frozen=True)
class TimeChange:
    """``xi(t) = scale * (t + offset)^power`` with ``power > -1`` (integrable at ``t = 0``).

    A constant ``xi`` is ``power = 0``.
    """

    power: float = 0.0
    offset: float = 0.0
    scale: float = 1.0

    def __post_init__(self) -> None:
        if not (-1.0 < self.power <= 0.0 and self.offset >= 0.0 and self.scale > 0.0):
            raise ValueError(f"xi needs -1 < power <= 0, offset >= 0, scale > 0; got {self}")

    @property
    def _p1(self) -> float:
        return self.power + 1.0

    def xi(self, t: float | np.ndarray) -> float | np.ndarray:
        """``xi(t) = scale * (t + offset)^power``, elementwise."""
        return self.scale * (np.asarray(t, dtype=np.float64) + self.offset) ** self.power

    def tau(self, t: float | np.ndarray) -> float | np.ndarray:
        """``int_0^t xi``."""
        t = np.asarray(t, dtype=np.float64)
        return self.scale * ((t + self.offset) ** self._p1 - self.offset**self._p1) / self._p1

    def t_of_tau(self, tau: float | np.ndarray) -> float | np.ndarray:
        """Inverse of :meth:`tau`."""
        tau = np.asarray(tau, dtype=np.float64)
        base = self._p1 * tau / self.scale + self.offset**self._p1
        return base ** (1.0 / self._p1) - self.offset

    def step_integrals(self, eps: float, n_steps: int, start: int = 0) -> np.ndarray:
        """``s_k = tau((k + 1) eps) - tau(k eps)`` for ``k = start .. start + n_steps - 1``."""
        k = np.arange(start, start + n_steps + 1, dtype=np.float64)
        return np.diff(self.tau(k * eps))


def time_change_from_spec(spec: float | Mapping[str, float]) -> TimeChange:
    """From the config value ``xi``: a number, or ``{power = p, offset = t0}``."""
    if isinstance(spec, Mapping):
        return TimeChange(power=float(spec["power"]), offset=float(spec.get("offset", 0.0)))
    value = float(spec)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"xi must be a positive number, got {value}")
    return TimeChange(scale=value)
