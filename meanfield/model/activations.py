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

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backends.arrays import Backend, get_backend
from .integrals.hermite import hermite_functions
from .pieces import ActivationPieces

NUMPY = get_backend("numpy")

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

    @functools.cached_property
    def t(self) -> np.ndarray:
        """Knot positions, shape ``(n_knots,)``."""
        return np.array([t for t, _ in self.knots])

    @functools.cached_property
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

    # ---- Gaussian integrals; array-API code, so the particles run them on any backend -----
    # Each takes ``a`` (any shape, ``a >= 0``) and a Backend (default NumPy); knots are few and
    # enter as Python scalars.

    def gaussian_mean(self, a: Any, backend: Backend | None = None) -> Any:
        """``q(a) = E[s(aG)]``, ``G ~ N(0, 1)``."""
        bk = backend or NUMPY
        safe, positive = _safe(a, bk.xp)
        out = self.left_value + 0.0 * a
        for t, jump in self._knot_jumps():
            c = t / safe
            out = out + jump * (safe * _phi(c, bk.xp) - t * bk.ndtr(-c))
        return bk.xp.where(positive, out, self(0.0 * a, bk.xp))

    def hermite_coefficients(self, a: Any, k_max: int, backend: Backend | None = None) -> Any:
        """Normalised Mehler coefficients ``F_k(a) = E[s(aG) He_k(G)] / sqrt(k!)``.

        Then ``E[s(aG) s(bG')] = sum_k c^k F_k(a) F_k(b)`` for ``corr(G, G') = c``.

        Parameters
        ----------
        a : array of shape ``(...)``, ``a >= 0``
        k_max : int

        Returns
        -------
        array of shape ``(..., k_max + 1)``

        Notes
        -----
        For ``k >= 2``, ``F_k(a) = a sum_i J_i psi_{k-2}(t_i / a) / sqrt(k (k - 1))`` with the
        bounded Hermite functions ``psi_n`` of
        :func:`~meanfield.model.integrals.hermite.hermite_functions`.
        At ``a = 0``, ``s(aG) = s(0)`` is constant: ``F_0 = s(0)`` and ``F_k = 0``.
        """
        bk = backend or NUMPY
        xp = bk.xp
        safe, positive = _safe(a, xp)
        zero = 0.0 * a
        cols = [self.gaussian_mean(a, bk)]
        if k_max >= 1:
            first = sum(jump * bk.ndtr(-t / safe) for t, jump in self._knot_jumps())
            cols.append(xp.where(positive, safe * first, zero))
        if k_max >= 2:
            # every knot in one recurrence: psi_n at t_i / a for all i at once, shape
            # (n_knots, ...), then the jump-weighted sum over the knots for all orders at once
            knots, jumps = zip(*self._knot_jumps(), strict=True)
            t = xp.reshape(xp.asarray(knots, dtype=safe.dtype), (len(knots),) + (1,) * safe.ndim)
            psi = xp.stack(hermite_functions(t / safe, k_max - 2, xp), axis=-1)
            weights = xp.asarray(jumps, dtype=safe.dtype)
            sums = xp.tensordot(weights, psi, axes=([0], [0]))  # (..., k_max - 1)
            k = xp.asarray([float(i) for i in range(2, k_max + 1)], dtype=safe.dtype)
            value = safe[..., None] * sums / xp.sqrt(k * (k - 1.0))
            high = xp.where(positive[..., None], value, 0.0 * value)
            return xp.concat([xp.stack(cols, axis=-1), high], axis=-1)
        return xp.stack(cols, axis=-1)

    def hermite_derivatives(self, coeffs: Any, a: Any, backend: Backend | None = None) -> Any:
        """``dF_k/da`` for ``k = 0..K-2`` from coefficients up to ``K`` (shape ``(..., K+1)``).

        Differentiating under the expectation and two Gaussian integrations by parts give
        ``F_k'(a) = (sqrt((k + 1)(k + 2)) F_{k+2}(a) + k F_k(a)) / a``: no new closed form.
        At ``a = 0`` the derivative is returned as 0 (the particles never sit exactly there).
        """
        xp = (backend or NUMPY).xp
        safe, positive = _safe(a, xp)
        k_top = coeffs.shape[-1] - 3
        k = xp.asarray([float(i) for i in range(k_top + 1)], dtype=coeffs.dtype)
        lift = xp.sqrt((k + 1.0) * (k + 2.0))
        out = (lift * coeffs[..., 2:] + k * coeffs[..., : k_top + 1]) / safe[..., None]
        return xp.where(positive[..., None], out, 0.0 * out)

    def gaussian_second_moment(self, a: Any, backend: Backend | None = None) -> Any:
        """``E[s(aG)^2]`` for ``a >= 0`` in closed form.

        With ``P_i = E(aG - t_i)_+`` and, for ``t_i <= t_j``,
        ``Q_ij = E[(aG - t_i)_+ (aG - t_j)_+]
        = a^2 (c_j phi(c_j) + Phibar(c_j)) - a (t_i + t_j) phi(c_j) + t_i t_j Phibar(c_j)``,
        ``E s^2 = s_1^2 + 2 s_1 sum_i J_i P_i + sum_ij J_i J_j Q_ij``. By Parseval this equals
        ``sum_k F_k(a)^2``, which bounds the tail of the Mehler series.
        """
        bk = backend or NUMPY
        xp = bk.xp
        safe, positive = _safe(a, xp)
        knots, s1 = self._knot_jumps(), self.left_value
        out = s1 * s1 + 0.0 * a
        for t, jump in knots:
            c = t / safe
            out = out + 2.0 * s1 * jump * (safe * _phi(c, xp) - t * bk.ndtr(-c))
        for i, (ti, ji) in enumerate(knots):
            for j, (tj, jj) in enumerate(knots):
                t_hi = knots[max(i, j)][0]  # knots are sorted: the later one sets the support
                c = t_hi / safe
                tail, dens = bk.ndtr(-c), _phi(c, xp)
                q_ij = safe * safe * (c * dens + tail) - safe * (ti + tj) * dens + ti * tj * tail
                out = out + ji * jj * q_ij
        return xp.where(positive, out, self(0.0 * a, xp) ** 2)

    def gaussian_second_moment_derivative(self, a: Any, backend: Backend | None = None) -> Any:
        """``d/da E[s(aG)^2] = 2a E[s'(aG)^2] + 2 sum_i J_i s(t_i) phi(t_i / a)`` (Stein)."""
        bk = backend or NUMPY
        xp = bk.xp
        safe, positive = _safe(a, xp)
        t, s = self.t.tolist(), [v for _, v in self.knots]
        out = 0.0 * a
        for p in range(len(t) - 1):  # the linear pieces; the outer pieces are flat
            slope = (s[p + 1] - s[p]) / (t[p + 1] - t[p])
            out = out + 2.0 * safe * slope**2 * (bk.ndtr(t[p + 1] / safe) - bk.ndtr(t[p] / safe))
        for (tk, jump), sk in zip(self._knot_jumps(), s, strict=True):
            out = out + 2.0 * jump * sk * _phi(tk / safe, xp)
        return xp.where(positive, out, 0.0 * a)

    def pieces(self) -> ActivationPieces:
        """The knots and slope jumps, for the compiled particle engine."""
        return ActivationPieces(
            "piecewise_linear", self.t.copy(), self.jumps.copy(), self.left_value
        )

    def _knot_jumps(self) -> list[tuple[float, float]]:
        return list(zip(self.t.tolist(), self.jumps.tolist(), strict=True))


def _safe(a: Any, xp: Any) -> tuple[Any, Any]:
    """``a`` with zeros replaced by 1 (to divide by), and the mask ``a > 0``."""
    positive = a > 0
    return xp.where(positive, a, 1.0 + 0.0 * a), positive


def _phi(x: Any, xp: Any = np) -> Any:
    return xp.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


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
