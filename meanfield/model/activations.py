"""Unit activations and their Gaussian integrals in closed form.

A piecewise-linear activation through knots ``(t_1, s_1), ..., (t_n, s_n)``, constant outside,
is written with the slope jumps ``J_i`` at the knots as

.. math::

    s(x) = s_1 + \\sum_i J_i (x - t_i)_+ .

Its Gaussian integrals follow from Gaussian integration by parts (``G ~ N(0, 1)``, ``a > 0``):

.. math::

    q(a)   &= E[s(aG)] = s_1 + \\sum_i J_i (a \\varphi(t_i/a) - t_i \\bar\\Phi(t_i/a)), \\\\
    h_1(a) &= E[s(aG) G] = a \\sum_i J_i \\bar\\Phi(t_i/a), \\\\
    h_k(a) &= E[s(aG) He_k(G)] = a \\sum_i J_i He_{k-2}(t_i/a) \\varphi(t_i/a), \\quad k \\ge 2,

with ``Phibar = 1 - Phi``. No quadrature and no cancellation: accurate to round-off.

References
----------
S. Mei, A. Montanari, P.-M. Nguyen, "A mean field view of the landscape of two-layer neural
networks", PNAS 115 (2018): the default activation and the non-monotone one of the failure
example.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from .hermite import hermite_functions

__all__ = ["PiecewiseLinear", "ACTIVATIONS", "activation_from_spec"]


@dataclass(frozen=True)
class PiecewiseLinear:
    """Piecewise-linear activation through knots, constant before the first and after the last.

    Parameters
    ----------
    knots : tuple of (t, s) pairs with strictly increasing ``t``
    """

    knots: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        knots = tuple((float(t), float(s)) for t, s in self.knots)
        if len(knots) < 2:
            raise ValueError("a piecewise-linear activation needs at least 2 knots")
        ts = np.array([t for t, _ in knots])
        if not np.all(np.isfinite([v for k in knots for v in k])) or np.any(np.diff(ts) <= 0):
            raise ValueError("activation knots need finite values and strictly increasing t")
        object.__setattr__(self, "knots", knots)

    @property
    def t(self) -> np.ndarray:
        """Knot positions, shape ``(n_knots,)``."""
        return np.array([t for t, _ in self.knots])

    @property
    def jumps(self) -> np.ndarray:
        """Slope jumps ``J_i`` at the knots, shape ``(n_knots,)``."""
        t = self.t
        s = np.array([v for _, v in self.knots])
        slopes = np.concatenate([[0.0], np.diff(s) / np.diff(t), [0.0]])
        return np.diff(slopes)

    @property
    def left_value(self) -> float:
        return self.knots[0][1]

    def __call__(self, x: Any, xp: Any = np) -> Any:
        """``s(x)``, elementwise, in namespace ``xp``."""
        out = self.left_value + 0.0 * x
        for t, jump in zip(self.t.tolist(), self.jumps.tolist(), strict=True):
            out = out + jump * xp.maximum(x - t, 0.0)
        return out

    def derivative(self, x: Any, xp: Any = np) -> Any:
        """``s'(x)`` (right derivative at the knots), elementwise, in namespace ``xp``."""
        out = 0.0 * x
        for t, jump in zip(self.t.tolist(), self.jumps.tolist(), strict=True):
            out = out + jump * xp.astype(x >= t, x.dtype)
        return out

    def gaussian_mean(self, a: np.ndarray) -> np.ndarray:
        """``q(a) = E[s(aG)]``, ``G ~ N(0, 1)``, for ``a >= 0`` (NumPy)."""
        a = np.asarray(a, dtype=np.float64)
        safe = np.where(a > 0, a, 1.0)[..., None]
        c = self.t / safe
        terms = self.jumps * (safe * _phi(c) - self.t * special.ndtr(-c))
        at_zero = self(np.zeros_like(a))
        return np.where(a > 0, self.left_value + terms.sum(axis=-1), at_zero)

    def hermite_coefficients(self, a: np.ndarray, k_max: int) -> np.ndarray:
        """Normalised Mehler coefficients ``F_k(a) = E[s(aG) He_k(G)] / sqrt(k!)``.

        Then ``E[s(aG) s(bG')] = sum_k c^k F_k(a) F_k(b)`` for ``corr(G, G') = c``.

        Parameters
        ----------
        a : array of shape ``(n,)``, ``a >= 0``
        k_max : int

        Returns
        -------
        array of shape ``(n, k_max + 1)``

        Notes
        -----
        For ``k >= 2``, ``F_k(a) = a sum_i J_i psi_{k-2}(t_i / a) / sqrt(k (k - 1))`` with the
        bounded Hermite functions ``psi_n`` of :func:`~meanfield.model.hermite.hermite_functions`.
        At ``a = 0``, ``s(aG) = s(0)`` is constant: ``F_0 = s(0)`` and ``F_k = 0``.
        """
        a = np.asarray(a, dtype=np.float64).ravel()
        pos = a > 0
        safe = np.where(pos, a, 1.0)
        out = np.zeros((a.size, k_max + 1))
        out[:, 0] = self.gaussian_mean(a)
        if k_max >= 1:
            c = self.t / safe[:, None]
            out[:, 1] = np.where(pos, safe * (self.jumps * special.ndtr(-c)).sum(axis=1), 0.0)
        if k_max >= 2:
            psi = hermite_functions(self.t / safe[:, None], k_max - 2)  # (k_max-1, n, n_knots)
            k = np.arange(2, k_max + 1)
            sums = np.einsum("kni,i->nk", psi, self.jumps)
            out[:, 2:] = np.where(pos[:, None], safe[:, None] * sums / np.sqrt(k * (k - 1.0)), 0.0)
        return out

    def gaussian_second_moment(self, a: np.ndarray) -> np.ndarray:
        """``E[s(aG)^2]`` for ``a >= 0`` in closed form (NumPy).

        With ``P_i = E(aG - t_i)_+`` and, for ``t_i <= t_j``,
        ``Q_ij = E[(aG - t_i)_+ (aG - t_j)_+]
        = a^2 (c_j phi(c_j) + Phibar(c_j)) - a (t_i + t_j) phi(c_j) + t_i t_j Phibar(c_j)``,
        ``E s^2 = s_1^2 + 2 s_1 sum_i J_i P_i + sum_ij J_i J_j Q_ij``. By Parseval this equals
        ``sum_k F_k(a)^2``, which bounds the tail of the Mehler series.
        """
        a = np.asarray(a, dtype=np.float64)
        safe = np.where(a > 0, a, 1.0)[..., None]
        t, jumps, s1 = self.t, self.jumps, self.left_value
        c = t / safe
        ramp = safe * _phi(c) - t * special.ndtr(-c)
        out = s1 * s1 + 2.0 * s1 * (jumps * ramp).sum(axis=-1)
        for i in range(t.size):
            for j in range(t.size):
                hi = max(i, j)  # knots are sorted: the later knot sets the support
                cj = c[..., hi]
                tail = special.ndtr(-cj)
                q_ij = (safe[..., 0] ** 2 * (cj * _phi(cj) + tail)
                        - safe[..., 0] * (t[i] + t[j]) * _phi(cj) + t[i] * t[j] * tail)
                out = out + jumps[i] * jumps[j] * q_ij
        return np.where(a > 0, out, self(np.zeros_like(a)) ** 2)


def _phi(x: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


#: The named activations of MMN (PNAS 2018).
ACTIVATIONS = {
    # s = -2.5 for t <= 0.5, 7.5 for t >= 1.5, linear between (MMN's default)
    "mmn": PiecewiseLinear(((0.5, -2.5), (1.5, 7.5))),
    # -2.5 for t <= 0, down to -4 at 0.5, up to 7.5 at 1.5, constant after (failure example)
    "mmn_nonmonotone": PiecewiseLinear(((0.0, -2.5), (0.5, -4.0), (1.5, 7.5))),
}


def activation_from_spec(spec: str | list | tuple) -> PiecewiseLinear:
    """Build an activation from a config value: a name of :data:`ACTIVATIONS` or a knot list."""
    if isinstance(spec, str):
        try:
            return ACTIVATIONS[spec]
        except KeyError:
            raise ValueError(f"unknown activation {spec!r}; known: {sorted(ACTIVATIONS)}") from None
    return PiecewiseLinear(tuple(tuple(k) for k in spec))
