"""The isotropic model in the full space ``R^d``: exact V, U and grad Psi for a set of units.

For two units ``w, w'`` with radii ``r, r'`` and cosine ``c = <w, w'>/(r r')``,

.. math::

    U(w, w') = \\tfrac12 \\sum_{\\tau = \\tau_\\pm} G(\\tau r, \\tau r', c), \\qquad
    G(a, b, c) = E[s(aG) s(bG')] = \\sum_{k \\ge 0} c^k F_k(a) F_k(b),
    \\qquad U(w, w) = \\tfrac12 \\sum_\\tau E[s(\\tau r G)^2],

with the Mehler coefficients ``F_k`` of the reduced kernel (which averages ``c^k`` over uniform
directions), so the particles and the PDE share one implementation. Each pair is evaluated by
whichever form is cheaper at its cosine:

* ``|c| <= MEHLER_SPLIT``: the Mehler series cut at ``K`` with ``c_max^(K+1) <= tol`` (``c_max``
  the largest such cosine; by Cauchy-Schwarz and Parseval the tail is at most
  ``|c|^(K+1) max s^2``), so ``K <= pair_order(MEHLER_SPLIT, tol)``: 33 terms at
  ``tol = 1e-10``;
* ``|c| > MEHLER_SPLIT``: the closed form of :mod:`..integrals.bivariate` (bivariate normal orthant
  probabilities), whose cost does not depend on ``c``.

The cost per pair is therefore bounded whatever the alignment of the units. An explicit
``order`` uses the pure Mehler series at that order for every pair (the cross-check of the
tests). The diagonal uses the closed form of ``E s^2``.

Everything is array-API code over ``theta`` of shape ``(R, N, d)`` (R replicas, N units).
"""

from __future__ import annotations

import math
from typing import Any

from ..integrals.bivariate import pair_moments

__all__ = [
    "pair_order",
    "population_risk",
    "population_gradient",
    "max_pair_cosine",
    "MEHLER_SPLIT",
]


#: largest Mehler order for an explicit pure-series evaluation: |cos| up to about 0.99 at
#: tol = 1e-10
MAX_PAIR_ORDER = 2500
#: pairs with |cos| above this use the closed form; below it the Mehler series, at most
#: ``pair_order(MEHLER_SPLIT, tol)`` terms
MEHLER_SPLIT = 0.5


def pair_order(c_bound: float, tol: float) -> int:
    """Smallest ``K`` with ``c_bound^(K + 1) <= tol`` (at least 1)."""
    if c_bound <= 0.0:
        return 1
    if c_bound >= 1.0:
        raise ValueError("two units are parallel: the pair kernel's Mehler series diverges")
    order = max(1, math.ceil(math.log(tol) / math.log(c_bound)) - 1)
    if order > MAX_PAIR_ORDER:
        raise ValueError(
            f"two units are nearly parallel (|cos| = {c_bound:.4f}): the pair "
            f"kernel would need {order} Mehler terms (limit {MAX_PAIR_ORDER})"
        )
    return order


def _geometry(theta: Any, xp: Any) -> tuple[Any, Any, Any, Any]:
    """Radii ``(R, N)``, unit directions ``(R, N, d)``, cosines with zero diagonal, diag mask."""
    r = xp.sqrt(xp.sum(theta * theta, axis=-1))
    direction = theta / r[..., None]
    n = theta.shape[-2]
    off = 1.0 - xp.eye(n, dtype=theta.dtype)
    cos = (direction @ xp.matrix_transpose(direction)) * off
    return r, direction, cos, off


def max_pair_cosine(theta: Any, xp: Any) -> float:
    """Largest ``|cos|`` between two different units of a replica (a host float)."""
    _, _, cos, _ = _geometry(theta, xp)
    return float(xp.max(xp.abs(cos)))


def _split(
    cos: Any, off: Any, order: int | None, tol: float, xp: Any
) -> tuple[Any, Any | None, int]:
    """The Mehler part's ``c^0`` mask, the closed-form pairs (or None), and the series order.

    With an explicit ``order`` every off-diagonal pair goes to the series.
    """
    if order is not None:
        return off, None, order
    large = xp.abs(cos) > MEHLER_SPLIT
    small = off * xp.astype(xp.logical_not(large), off.dtype)
    c_small = float(xp.max(xp.abs(cos * small)))
    return small, (large if bool(xp.any(large)) else None), pair_order(c_small, tol)


def _closed_form(
    model: Any, r: Any, cos: Any, large: Any, xp: Any, backend: Any, tau: float
) -> tuple[Any, Any, Any]:
    """``G``, ``dG/da`` and ``dG/dc`` at ``(tau r_i, tau r_j, c_ij)`` on the ``large`` pairs,
    as dense ``(R, N, N)`` arrays (zero elsewhere)."""
    a = tau * r
    shape = cos.shape
    a_i = xp.broadcast_to(a[..., :, None], shape)[large]
    a_j = xp.broadcast_to(a[..., None, :], shape)[large]
    values = pair_moments(model.activation, a_i, a_j, cos[large], backend)
    out = []
    for v in values:
        dense = xp.zeros(shape, dtype=cos.dtype)
        dense[large] = v
        out.append(dense)
    return out[0], out[1], out[2]


def population_risk(model: Any, theta: Any, order: int | None, backend: Any) -> Any:
    """``R(mu_N)`` of every replica, shape ``(R,)``, exact up to the series tolerance.

    ``R = R_# + (2/N) sum_i V(w_i) + (1/N^2) sum_ij U(w_i, w_j)``; ``order=None`` splits the
    pairs between the Mehler series and the closed form (module docstring), an explicit order
    sums the pure series.
    """
    xp = backend.xp
    n = theta.shape[-2]
    r, _, cos, off = _geometry(theta, xp)
    small, large, order = _split(cos, off, order, model.kernel_tol, xp)
    act = model.activation
    pair_sum = 0.0 * r[..., 0]
    for tau in model.taus:
        a = tau * r
        coeffs = act.hermite_coefficients(a, order, backend)  # (R, N, K + 1)
        power = small  # c^0 on the series' pairs
        for k in range(order + 1):
            f_k = coeffs[..., k]
            pair_sum = pair_sum + 0.5 * xp.sum(
                f_k * xp.squeeze(power @ f_k[..., None], axis=-1), axis=-1
            )
            power = power * cos
        if large is not None:
            value, _, _ = _closed_form(model, r, cos, large, xp, backend, tau)
            pair_sum = pair_sum + 0.5 * xp.sum(value, axis=(-2, -1))
        pair_sum = pair_sum + 0.5 * xp.sum(act.gaussian_second_moment(a, backend), axis=-1)
    potential = model.potential_xp(r, backend)
    return model.r_sharp + 2.0 * xp.mean(potential, axis=-1) + pair_sum / (n * n)


def population_gradient(model: Any, theta: Any, order: int | None, backend: Any) -> Any:
    """``grad Psi(w_i; mu_N) = grad V(w_i) + (1/N) sum_j grad_1 U(w_i, w_j)``, ``(R, N, d)``.

    Off the diagonal, with ``grad_w c = (w'/r' - c w/r) / r``,
    ``grad_1 U = dU/dr ŵ + dU/dc grad_w c``; by the series
    ``dU/dc = 1/2 sum_tau sum_k k c^(k-1) F_k F_k'`` and ``dU/dr = 1/2 sum_tau tau sum_k c^k
    F_k'(tau r) F_k`` (``F_k'`` from :meth:`PiecewiseLinear.hermite_derivatives`), in closed
    form ``1/2 sum_tau dG/dc`` and ``1/2 sum_tau tau dG/da``. On the diagonal
    ``grad_1 U(w, w) = (1/2) grad_w U(w, w) = 1/4 sum_tau tau (E s^2)'(tau r) ŵ``.
    """
    xp = backend.xp
    n = theta.shape[-2]
    r, direction, cos, off = _geometry(theta, xp)
    small, large, order = _split(cos, off, order, model.kernel_tol, xp)
    act = model.activation
    radial = model.potential_slope_xp(r, backend)  # v'(r): grad V = v'(r) ŵ
    weight = 0.0 * cos  # A_ij = dU/dc (w_i, w_j)
    for tau in model.taus:
        a = tau * r
        coeffs = act.hermite_coefficients(a, order + 2, backend)
        slopes = act.hermite_derivatives(coeffs, a, backend)  # (R, N, K + 1)
        radial = radial + 0.25 * tau * act.gaussian_second_moment_derivative(a, backend) / n
        below = small  # c^(k-1) for k >= 1, starting at c^0
        power = small  # c^k
        for k in range(order + 1):
            f_k = coeffs[..., k]
            if k >= 1:
                weight = weight + 0.5 * k * below * (f_k[..., :, None] * f_k[..., None, :])
                below = below * cos
            pushed = xp.squeeze(power @ f_k[..., None], axis=-1)
            radial = radial + 0.5 * tau * slopes[..., k] * pushed / n
            power = power * cos
        if large is not None:
            _, d_a, d_c = _closed_form(model, r, cos, large, xp, backend, tau)
            weight = weight + 0.5 * d_c
            radial = radial + 0.5 * tau * xp.sum(d_a, axis=-1) / n
    along = xp.sum(weight * cos, axis=-1)[..., None] * direction
    tangential = (weight @ direction - along) / (n * r[..., None])
    return radial[..., None] * direction + tangential
