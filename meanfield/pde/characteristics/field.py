"""The mean-field velocity of weighted points: the model's V and low-rank U, lifted onto points.

With the law ``rho = sum_j w_j delta_{X_j}`` and the kernel ``U(q, q') = sum_p lambda_p
phi_p(q) phi_p(q')``,

.. math::

    m_p = \\sum_j w_j \\phi_p(X_j), \\qquad
    \\nabla\\Psi_\\lambda(X_i) = \\nabla V(X_i) + \\lambda X_i
        + \\sum_p \\lambda_p m_p \\nabla\\phi_p(X_i), \\qquad
    \\frac{dX_i}{d\\tau} = -2 \\nabla\\Psi_\\lambda(X_i),

and ``R = R_# + 2 sum_j w_j V(X_j) + sum_p lambda_p m_p^2``: two ``M x P`` products, never an
``M x M`` matrix. The points system is exactly the weighted gradient flow of this ``R``:
``dR/dtau = -4 sum_j w_j |grad Psi(X_j)|^2`` (``F = R/2 + (lambda/2) sum w |X|^2`` with the
ridge), which the solver's invariant check uses.

``V``, ``grad V``, the features and their gradients are the model's own NumPy methods
(:class:`~meanfield.model.base.ReducedModel`), the ones the grid solver and the CLT layer use,
with the truncation of the kernel fixed by the box (``scale_points``), so the columns do not
change while the points move. :class:`ModelAtPoints` evaluates them on the host and moves the
results to the backend once per evaluation; everything after that (:func:`psi_gradient`,
:func:`risk`) is array-API code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ...backends.arrays import Backend, to_numpy

__all__ = [
    "ModelAtPoints",
    "PointValues",
    "psi_gradient",
    "risk_and_energy",
    "feature_means",
    "ridge_is_euclidean",
]

Array = Any


class PointValues(NamedTuple):
    """The model at points ``X`` (backend arrays).

    Attributes
    ----------
    potential : ``(M,)``, ``V(X_j)``
    grad_potential : ``(M, D)``
    features : ``(M, P)``, ``phi_p(X_j)``
    feature_grads : ``(M, D, P)``, ``d phi_p / dq_a`` (axes ``a`` before features ``p``)
    """

    potential: Array
    grad_potential: Array
    features: Array
    feature_grads: Array


def ridge_is_euclidean(model: Any, points: np.ndarray) -> bool:
    """Whether ``model.norm_sq(q) = |q|^2`` at ``points``: then the ridge force is ``l2 q``."""
    return bool(
        np.allclose(model.norm_sq(points), np.sum(points * points, axis=1), rtol=1e-12, atol=1e-14)
    )


@dataclass(frozen=True)
class ModelAtPoints:
    """Evaluates a :class:`~meanfield.model.base.ReducedModel` at moving points.

    Parameters
    ----------
    model : ReducedModel
        With ``potential``, ``potential_gradient``, ``kernel_features`` and
        ``kernel_feature_gradients``.
    bounds : tuple of (lo, hi) per axis
        The box on which the model's kernel truncation is certified.
    backend : Backend
    scale_points : array ``(S, D)``, optional
        The ``scale_points`` of every call, so the columns stay the same wherever the points
        are: the grid's cell centres make them the grid solver's own columns (a model that
        compresses its kernel on the points it is given, the teacher-student one, needs a
        set that covers the box). Default: the box's two corners.
    """

    model: Any
    bounds: tuple[tuple[float, float], ...]
    backend: Backend
    scale_points: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.scale_points is None:
            corners = np.array([[lo for lo, _ in self.bounds], [hi for _, hi in self.bounds]])
            object.__setattr__(self, "scale_points", corners)

    def kernel_weights(self) -> Array:
        """``lambda_p``, ``(P,)``, on the backend."""
        corner = self.scale_points[:1]
        return self.backend.asarray(self.model.kernel_features(corner, self.scale_points).weights)

    def values(self, x: Array) -> PointValues:
        """``V``, ``grad V``, features and their gradients at ``x`` ``(M, D)``.

        A model with ``kernel_features_with_gradients(points, scale_points)`` gives both from
        one evaluation; otherwise ``kernel_features`` and ``kernel_feature_gradients``.
        """
        host = np.asarray(to_numpy(x), dtype=np.float64)
        model, scale, to_xp = self.model, self.scale_points, self.backend.asarray
        both = getattr(model, "kernel_features_with_gradients", None)
        if both is not None:
            kernel, grads = both(host, scale)
        else:
            kernel, grads = (
                model.kernel_features(host, scale),
                model.kernel_feature_gradients(host, scale),
            )
        grads = np.asarray(grads, dtype=np.float64)
        return PointValues(
            to_xp(model.potential(host)),
            to_xp(np.asarray(model.potential_gradient(host)).reshape(host.shape)),
            to_xp(kernel.features),
            to_xp(np.swapaxes(grads, 1, 2)),
        )

    def potential_and_features(self, x: Array) -> tuple[Array, Array]:
        """``V`` ``(M,)`` and the features ``(M, P)`` at ``x`` (what the risk needs)."""
        host = np.asarray(to_numpy(x), dtype=np.float64)
        to_xp = self.backend.asarray
        return (
            to_xp(self.model.potential(host)),
            to_xp(self.model.kernel_features(host, self.scale_points).features),
        )

    def gradients(self, x: Array) -> tuple[Array, Array]:
        """``grad V`` ``(M, D)`` and the feature gradients ``(M, D, P)`` at ``x``."""
        host = np.asarray(to_numpy(x), dtype=np.float64)
        grads = np.asarray(
            self.model.kernel_feature_gradients(host, self.scale_points), dtype=np.float64
        )
        to_xp = self.backend.asarray
        return (
            to_xp(np.asarray(self.model.potential_gradient(host)).reshape(host.shape)),
            to_xp(np.swapaxes(grads, 1, 2)),
        )


def feature_means(features: Array, weights: Array) -> Array:
    """``m_p = sum_j w_j phi_p(X_j)``, ``(P,)``; ``features`` ``(M, P)``, ``weights`` ``(M,)``."""
    return weights @ features


def psi_gradient(
    x: Array, grad_potential: Array, feature_grads: Array, coupling: Array, l2: float
) -> Array:
    """``grad Psi_lambda = grad V + lambda x + sum_p c_p grad phi_p``, ``(M, D)``, with the
    coupling ``c_p = lambda_p m_p`` ``(P,)`` and ``feature_grads`` ``(M, D, P)``."""
    out = grad_potential + feature_grads @ coupling
    return out + l2 * x if l2 else out


def risk_and_energy(
    x: Array,
    weights: Array,
    potential: Array,
    features: Array,
    kernel_weights: Array,
    r_sharp: float,
    l2: float,
    xp: Any,
) -> tuple[Array, Array]:
    """``R = R_# + 2 sum_j w_j V_j + sum_p lambda_p m_p^2`` and ``F = R/2 + (lambda/2) sum_j w_j
    |X_j|^2`` as 0-d arrays."""
    m = feature_means(features, weights)
    risk = r_sharp + 2.0 * xp.sum(weights * potential) + xp.sum(kernel_weights * m * m)
    energy = 0.5 * risk
    if l2:
        energy = energy + 0.5 * l2 * xp.sum(weights * xp.sum(x * x, axis=1))
    return risk, energy
