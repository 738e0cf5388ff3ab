"""Embedded explicit Runge-Kutta steps with error control, for the points' ODE ``dX/dtau = K(X)``.

In the time-changed time ``tau = int xi`` the noiseless DD moves every point with the autonomous
velocity ``K(X) = -2 grad Psi_lambda(X; rho)`` (:mod:`.field`), so a step needs no time argument.
A :class:`Tableau` holds an embedded pair: the step of order ``p`` and an estimate of its local
error from the embedded method of order ``p - 1``. Both shipped pairs are FSAL (the last stage
is evaluated at the new state, and is the next step's first).

* ``"dp5"``: Dormand and Prince's 5(4) pair, 7 stages (6 evaluations per step): the default.
* ``"bs3"``: Bogacki and Shampine's 3(2) pair, 4 stages (3 evaluations per step).

:func:`stages` is the one place the stage arithmetic is written: the forward solver and the
reverse pass (:mod:`.adjoint`) both call it, so the reverse pass differentiates exactly the
states the forward pass produced. Everything is array-API code on ``(M, D)`` arrays.

References
----------
J. R. Dormand, P. J. Prince, J. Comput. Appl. Math. 6 (1980) 19-26.
P. Bogacki, L. F. Shampine, Appl. Math. Lett. 2 (1989) 321-325.
E. Hairer, S. P. Norsett, G. Wanner, Solving Ordinary Differential Equations I, section II.4
(the step-size controller).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction as Fr
from typing import Any

__all__ = ["Tableau", "TABLEAUS", "stages", "next_step_size", "SAFETY", "MAX_GROWTH", "MIN_SHRINK"]

Array = Any

#: the controller aims at this fraction of the tolerance
SAFETY = 0.9
#: a step grows at most by this factor after an accepted step ...
MAX_GROWTH = 5.0
#: ... and shrinks at most by this one
MIN_SHRINK = 0.2


@dataclass(frozen=True)
class Tableau:
    """An embedded explicit Runge-Kutta pair.

    Attributes
    ----------
    name : str
    a : tuple of tuples of float
        Row ``i`` holds the coefficients of stages ``0 .. i - 1`` in stage ``i``.
    b : tuple of float
        Weights of the step (order ``order``).
    error : tuple of float
        ``b - b_hat``: the local error estimate is ``h sum_i error_i K_i``.
    order : int
        Order of the step; the estimate is of order ``order - 1``.
    """

    name: str
    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    error: tuple[float, ...]
    order: int

    @property
    def n_stages(self) -> int:
        return len(self.b)

    @property
    def fsal(self) -> bool:
        """Whether the last stage is the new state (``a[-1] == b``)."""
        return tuple(self.a[-1]) + (0.0,) * (len(self.b) - len(self.a[-1])) == self.b


def _tableau(name: str, a: list[list[Fr]], b: list[Fr], b_hat: list[Fr], order: int) -> Tableau:
    return Tableau(
        name,
        tuple(tuple(float(v) for v in row) for row in a),
        tuple(float(v) for v in b),
        tuple(float(x - y) for x, y in zip(b, b_hat, strict=True)),
        order,
    )


_DP5 = _tableau(
    "dp5",
    [
        [],
        [Fr(1, 5)],
        [Fr(3, 40), Fr(9, 40)],
        [Fr(44, 45), Fr(-56, 15), Fr(32, 9)],
        [Fr(19372, 6561), Fr(-25360, 2187), Fr(64448, 6561), Fr(-212, 729)],
        [Fr(9017, 3168), Fr(-355, 33), Fr(46732, 5247), Fr(49, 176), Fr(-5103, 18656)],
        [Fr(35, 384), Fr(0), Fr(500, 1113), Fr(125, 192), Fr(-2187, 6784), Fr(11, 84)],
    ],
    [Fr(35, 384), Fr(0), Fr(500, 1113), Fr(125, 192), Fr(-2187, 6784), Fr(11, 84), Fr(0)],
    [
        Fr(5179, 57600),
        Fr(0),
        Fr(7571, 16695),
        Fr(393, 640),
        Fr(-92097, 339200),
        Fr(187, 2100),
        Fr(1, 40),
    ],
    5,
)

_BS3 = _tableau(
    "bs3",
    [[], [Fr(1, 2)], [Fr(0), Fr(3, 4)], [Fr(2, 9), Fr(1, 3), Fr(4, 9)]],
    [Fr(2, 9), Fr(1, 3), Fr(4, 9), Fr(0)],
    [Fr(7, 24), Fr(1, 4), Fr(1, 3), Fr(1, 8)],
    3,
)

#: the shipped pairs by name (``pde.scheme``)
TABLEAUS = {"dp5": _DP5, "bs3": _BS3}


def stages(
    rate: Callable[[Array], tuple[Array, Any]],
    x: Array,
    first: tuple[Array, Any],
    h: float,
    tableau: Tableau,
    project: Callable[[Array], Array] | None = None,
) -> list[tuple[Array, Array, Any]]:
    """The stages of one step from ``x`` with size ``h``.

    Parameters
    ----------
    rate : callable ``X -> (K, aux)``
        The velocity at ``X`` and whatever the caller keeps of its evaluation.
    x : array ``(M, D)``
    first : ``(K, aux)`` at ``x`` (the previous step's last stage for an FSAL pair)
    h : float
    tableau : Tableau
    project : callable ``Y -> Y``, optional
        Applied to every stage's point (the solver holds points inside the model's domain).

    Returns
    -------
    list of ``(Y_i, K_i, aux_i)``, one per stage; ``Y_0 = x``. For an FSAL pair the last
    stage's ``Y`` is the new state.
    """
    out = [(x, first[0], first[1])]
    for row in tableau.a[1:]:
        y = x
        for coeff, (_, k, _) in zip(row, out, strict=False):
            if coeff:
                y = y + (h * coeff) * k
        if project is not None:
            y = project(y)
        k, aux = rate(y)
        out.append((y, k, aux))
    return out


def combine(
    x: Array, staged: list[tuple[Array, Array, Any]], h: float, coefficients: tuple[float, ...]
) -> Array:
    """``x + h sum_i c_i K_i`` (``x`` itself may be 0 for the error estimate)."""
    out = x
    for coeff, (_, k, _) in zip(coefficients, staged, strict=True):
        if coeff:
            out = out + (h * coeff) * k
    return out


def next_step_size(h: float, error_norm: float, order: int) -> float:
    """Hairer's controller: ``h (SAFETY / err)^(1/order)`` clipped to
    ``[MIN_SHRINK h, MAX_GROWTH h]`` (``order``: that of the embedded estimate plus one)."""
    if error_norm == 0.0:
        return MAX_GROWTH * h
    if not math.isfinite(error_norm):
        return MIN_SHRINK * h
    factor = SAFETY * error_norm ** (-1.0 / order)
    return h * min(MAX_GROWTH, max(MIN_SHRINK, factor))
