"""Exact population risk and grad Psi of the MMN models through the compiled pair sums.

The structure is that of :mod:`meanfield.model.mmn.isotropic_pairs` (the NumPy reference),
view by view (:attr:`~meanfield.model.pieces.EnginePieces.pairs`): the per-unit parts (``V``,
``v'``, the diagonal ``E s^2``, the Mehler tables ``F_k``) by the model's own array code on the
host, the ``O(N^2)`` pair sums by :func:`.pairs.pair_sums`. The two agree to round-off
(tested).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from meanfield.backends import get_backend
from meanfield.model.mmn.isotropic_pairs import MEHLER_SPLIT, pair_order

__all__ = ["pair_population_risk", "pair_population_gradient"]

NUMPY = get_backend("numpy")
#: U = PAIR_WEIGHT sum_tau G in every view (the 1/2 of two equally likely classes)
PAIR_WEIGHT = 0.5
#: the exact pair kernel as ``(view, scale)`` pairs (:attr:`EnginePieces.pairs`)
Views = Sequence[tuple[Any, np.ndarray | None]]


def _view_arrays(view: Any, z: np.ndarray, order: int, gradient: bool) -> dict[str, Any]:
    """Radii, directions, ``tau r`` and the Mehler tables of the units ``z`` of one view."""
    act = view.activation
    r = np.sqrt(np.sum(z * z, axis=-1))
    directions = np.ascontiguousarray(np.transpose(z / r[..., None], (0, 2, 1)))
    taus = np.asarray(view.taus, dtype=np.float64)
    a = np.ascontiguousarray(taus[None, :, None] * r[:, None, :])  # (R, T, N)
    coeffs = act.hermite_coefficients(a, order + 2 if gradient else order)  # (R, T, N, K + 1)
    slopes = act.hermite_derivatives(coeffs, a) if gradient else np.zeros((1, 1, 1, 1))
    coeffs = coeffs[..., : order + 1]
    return {
        "r": r,
        "directions": directions,
        "a": a,
        "taus": taus,
        "coeffs": np.ascontiguousarray(np.moveaxis(coeffs, -1, -2)),
        "slopes": np.ascontiguousarray(np.moveaxis(slopes, -1, -2)),
    }


def _sums(view: Any, parts: dict[str, Any], gradient: bool) -> tuple:
    from .bivariate import MAX_KNOTS  # noqa: PLC0415  (compiles on first use)
    from .pairs import pair_sums  # noqa: PLC0415

    if len(view.activation.t) > MAX_KNOTS:
        raise ValueError(f"the compiled pair kernel takes at most {MAX_KNOTS} knots")
    n_replicas, dim, n_units = parts["directions"].shape
    value = np.zeros(n_replicas)
    radial = np.zeros((n_replicas, n_units) if gradient else (1, 1))
    tangential = np.zeros((n_replicas, dim, n_units) if gradient else (1, 1, 1))
    act = view.activation
    pair_sums(
        parts["directions"],
        parts["coeffs"],
        parts["slopes"],
        parts["a"],
        parts["taus"],
        PAIR_WEIGHT,
        np.ascontiguousarray(act.t),
        np.ascontiguousarray(act.jumps),
        float(act.left_value),
        MEHLER_SPLIT,
        float(view.kernel_tol),
        gradient,
        value,
        radial,
        tangential,
    )
    return value, radial, tangential


def _views(
    model: Any, theta: np.ndarray, views: Views | None
) -> list[tuple[Any, np.ndarray, np.ndarray | None]]:
    theta = np.asarray(theta, dtype=np.float64)
    views = model.engine_pieces().pairs if views is None else views
    return [(view, theta if scale is None else theta * scale, scale) for view, scale in views]


def pair_population_risk(model: Any, theta: np.ndarray, views: Views | None = None) -> np.ndarray:
    """``R(mu_N)`` of every replica, ``(R,)`` (as ``model.population_risk(theta, None, .)``).

    ``views``: the model's pair views (``model.engine_pieces().pairs`` when not given).
    """
    total = 0.0
    n = theta.shape[-2]
    for view, z, _ in _views(model, theta, views):
        parts = _view_arrays(view, z, pair_order(MEHLER_SPLIT, view.kernel_tol), False)
        value, _, _ = _sums(view, parts, False)
        act, r = view.activation, parts["r"]
        diagonal = sum(
            PAIR_WEIGHT * np.sum(act.gaussian_second_moment(tau * r), axis=-1) for tau in view.taus
        )
        potential = view.potential_xp(r, NUMPY)
        total = total + (
            view.r_sharp + 2.0 * np.mean(potential, axis=-1) + (value + diagonal) / (n * n)
        )
    return total


def pair_population_gradient(
    model: Any, theta: np.ndarray, views: Views | None = None
) -> np.ndarray:
    """``grad Psi(w_i; mu_N)``, ``(R, N, d)`` (as ``model.population_gradient(theta, None, .)``);
    ``views`` as for :func:`pair_population_risk`."""
    out = np.zeros(np.shape(theta))
    n = theta.shape[-2]
    for view, z, scale in _views(model, theta, views):
        parts = _view_arrays(view, z, pair_order(MEHLER_SPLIT, view.kernel_tol), True)
        _, radial_pairs, tangential = _sums(view, parts, True)
        act, r = view.activation, parts["r"]
        radial = view.potential_slope_xp(r, NUMPY)
        for tau in view.taus:
            radial = radial + 0.25 * tau * act.gaussian_second_moment_derivative(tau * r) / n
        radial = radial + radial_pairs / n
        direction = np.transpose(parts["directions"], (0, 2, 1))
        grad = radial[..., None] * direction + np.transpose(tangential, (0, 2, 1)) / (
            n * r[..., None]
        )
        out = out + (grad if scale is None else grad * scale)
    return out
