"""The isotropic model in the full space ``R^d``: exact V, U and grad Psi for a set of units.

For two units ``w, w'`` with radii ``r, r'`` and cosine ``c = <w, w'>/(r r')``,

.. math::

    U(w, w') = \\tfrac12 \\sum_{\\tau = \\tau_\\pm} \\sum_{k \\ge 0} c^k F_k(\\tau r) F_k(\\tau r'),
    \\qquad U(w, w) = \\tfrac12 \\sum_\\tau E[s(\\tau r G)^2],

the same Mehler coefficients ``F_k`` as the reduced kernel (which averages ``c^k`` over uniform
directions), so the particles and the PDE share one implementation. Off the diagonal the series
is cut at ``K`` with ``c_max^(K+1) <= tol``, ``c_max`` the largest pair cosine of the units at
hand: by Cauchy-Schwarz and Parseval the tail is at most ``|c|^(K+1) max s^2``. The diagonal
uses the closed form of ``E s^2``.

Everything is array-API code over ``theta`` of shape ``(R, N, d)`` (R replicas, N units); the
pair sums cost ``O(R N^2 K)``.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["pair_order", "population_risk", "population_gradient", "max_pair_cosine"]


#: largest Mehler order for a pair sum: |cos| up to about 0.99 at tol = 1e-10
MAX_PAIR_ORDER = 2500


def pair_order(c_bound: float, tol: float) -> int:
    """Smallest ``K`` with ``c_bound^(K + 1) <= tol`` (at least 1)."""
    if c_bound <= 0.0:
        return 1
    if c_bound >= 1.0:
        raise ValueError("two units are parallel: the pair kernel's Mehler series diverges")
    order = max(1, math.ceil(math.log(tol) / math.log(c_bound)) - 1)
    if order > MAX_PAIR_ORDER:
        raise ValueError(f"two units are nearly parallel (|cos| = {c_bound:.4f}): the pair "
                         f"kernel would need {order} Mehler terms (limit {MAX_PAIR_ORDER})")
    return order


def _order_for(theta: Any, order: int | None, tol: float, xp: Any) -> int:
    """``order``, or the smallest order certified for the pairs of ``theta`` now."""
    return order if order is not None else pair_order(max_pair_cosine(theta, xp), tol)


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


def population_risk(model: Any, theta: Any, order: int | None, backend: Any) -> Any:
    """``R(mu_N)`` of every replica, shape ``(R,)``, exact up to the series tolerance.

    ``R = R_# + (2/N) sum_i V(w_i) + (1/N^2) sum_ij U(w_i, w_j)``; ``order=None`` picks the
    Mehler order from the largest pair cosine of ``theta``.
    """
    xp = backend.xp
    order = _order_for(theta, order, model.kernel_tol, xp)
    n = theta.shape[-2]
    r, _, cos, off = _geometry(theta, xp)
    act = model.activation
    pair_sum = 0.0 * r[..., 0]
    for tau in model.taus:
        a = tau * r
        coeffs = act.hermite_coefficients(a, order, backend)  # (R, N, K + 1)
        power = off  # c^0 off the diagonal
        for k in range(order + 1):
            f_k = coeffs[..., k]
            pair_sum = pair_sum + 0.5 * xp.sum(f_k * xp.squeeze(power @ f_k[..., None], axis=-1),
                                               axis=-1)
            power = power * cos
        pair_sum = pair_sum + 0.5 * xp.sum(act.gaussian_second_moment(a, backend), axis=-1)
    potential = model.potential_xp(r, backend)
    return model.r_sharp + 2.0 * xp.mean(potential, axis=-1) + pair_sum / (n * n)


def population_gradient(model: Any, theta: Any, order: int | None, backend: Any) -> Any:
    """``grad Psi(w_i; mu_N) = grad V(w_i) + (1/N) sum_j grad_1 U(w_i, w_j)``, ``(R, N, d)``.

    Off the diagonal, with ``grad_w c = (w'/r' - c w/r) / r``,
    ``grad_1 U = 1/2 sum_tau sum_k [k c^(k-1) F_k F_k' grad_w c + c^k tau F_k'(tau r) F_k ŵ]``
    (``F_k'`` from :meth:`PiecewiseLinear.hermite_derivatives`); on it,
    ``grad_1 U(w, w) = (1/2) grad_w U(w, w) = 1/4 sum_tau tau (E s^2)'(tau r) ŵ``.
    ``order=None`` picks the Mehler order from the largest pair cosine of ``theta``.
    """
    xp = backend.xp
    order = _order_for(theta, order, model.kernel_tol, xp)
    n = theta.shape[-2]
    r, direction, cos, off = _geometry(theta, xp)
    act = model.activation
    radial = model.potential_slope_xp(r, backend)  # v'(r): grad V = v'(r) ŵ
    tangential = 0.0 * theta
    for tau in model.taus:
        a = tau * r
        coeffs = act.hermite_coefficients(a, order + 2, backend)
        slopes = act.hermite_derivatives(coeffs, a, backend)  # (R, N, K + 1)
        radial = radial + 0.25 * tau * act.gaussian_second_moment_derivative(a, backend) / n
        below = off  # c^(k-1) for k >= 1, starting at c^0
        power = off  # c^k
        weight = 0.0 * cos  # A_ij = sum_k k c^(k-1) F_k(a_i) F_k(a_j)
        for k in range(order + 1):
            f_k = coeffs[..., k]
            if k >= 1:
                weight = weight + k * below * (f_k[..., :, None] * f_k[..., None, :])
                below = below * cos
            pushed = xp.squeeze(power @ f_k[..., None], axis=-1)
            radial = radial + 0.5 * tau * slopes[..., k] * pushed / n
            power = power * cos
        along = xp.sum(weight * cos, axis=-1)[..., None] * direction
        tangential = tangential + 0.5 * (weight @ direction - along) / (n * r[..., None])
    return radial[..., None] * direction + tangential
