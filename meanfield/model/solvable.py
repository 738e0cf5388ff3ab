"""Models with exact solutions, on the full parameter grid (no reduction): checks of the scheme.

* :class:`QuadraticPotential`: ``V = (k/2)|theta - c|^2``, ``U = 0``. With noise the DD is the
  Ornstein-Uhlenbeck Fokker-Planck equation: Gaussian laws stay Gaussian, with
  ``mean(t) = c + (m_0 - c) e^{-2 k tau}`` and
  ``var(t) = v_0 e^{-4 k tau} + (1 - e^{-4 k tau}) / (k beta)`` per axis, ``tau = int xi``.
* :class:`FeatureModel`: any ``V`` and a low-rank ``U = sum_p w_p phi_p(theta) phi_p(theta')``
  given as callables, e.g. a linear ``V`` (pure transport at constant speed) or an interacting
  noisy model whose Gibbs state is known implicitly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .base import KernelFeatures, ReducedModel

__all__ = ["QuadraticPotential", "FeatureModel", "ou_moments"]


@dataclass(frozen=True)
class QuadraticPotential(ReducedModel):
    """``V(theta) = (stiffness/2) |theta - center|^2``, no interaction, ``ndim`` axes."""

    stiffness: float = 1.0
    center: float = 0.0
    ndim: int = 1

    @property
    def axis_names(self) -> tuple[str, ...]:  # type: ignore[override]
        return ("theta",) if self.ndim == 1 else tuple(f"theta{i}" for i in range(self.ndim))

    @property
    def r_sharp(self) -> float:
        return 0.0

    def potential(self, points: np.ndarray) -> np.ndarray:
        return 0.5 * self.stiffness * np.sum((np.asarray(points) - self.center) ** 2, axis=-1)

    def kernel_features(self, points: np.ndarray, scale_points: np.ndarray | None = None
                        ) -> KernelFeatures:
        return KernelFeatures(np.zeros((np.asarray(points).shape[0], 0)), np.zeros(0))

    # ---- particles: the full space is the grid space, and there is no data ------------------

    @property
    def dim(self) -> int:
        return self.ndim

    def reduce(self, theta: Any, xp: Any) -> Any:
        return theta

    def population_gradient(self, theta: Any, order: int, backend: Any) -> Any:
        """``grad Psi = grad V = stiffness (theta - center)`` (U = 0)."""
        return self.stiffness * (theta - self.center)

    def population_risk(self, theta: Any, order: int, backend: Any) -> Any:
        """``R(mu_N) = 2 <V, mu_N>`` per replica."""
        xp = backend.xp
        v = 0.5 * self.stiffness * xp.sum((theta - self.center) ** 2, axis=-1)
        return self.r_sharp + 2.0 * xp.mean(v, axis=-1)


def ou_moments(stiffness: float, center: float, beta: float, mean0: float, var0: float,
               tau: float) -> tuple[float, float]:
    """Exact mean and variance of one axis of the OU flow at time-changed time ``tau``."""
    decay = math.exp(-2.0 * stiffness * tau)
    noise = 0.0 if math.isinf(beta) else (1.0 - decay**2) / (stiffness * beta)
    return center + (mean0 - center) * decay, var0 * decay**2 + noise


@dataclass(frozen=True)
class FeatureModel(ReducedModel):
    """A model given by callables on the full grid.

    Parameters
    ----------
    potential_fn : callable
        ``V``: points ``(n, ndim)`` -> ``(n,)``.
    feature_fns : sequence of callables
        ``phi_p``: points ``(n, ndim)`` -> ``(n,)``.
    weights : sequence of float
        ``w_p >= 0``.
    ndim : int
    sharp : float
        ``E[y^2]``.
    potential_grad_fn, feature_grad_fns : callables, optional
        ``grad V`` and ``grad phi_p``: points ``(n, ndim)`` -> ``(n, ndim)``; needed by the
        particles (``gd``) and by the linearised (CLT) equation. NumPy callables: these
        particles run on the NumPy backend only.
    """

    potential_fn: Callable[[np.ndarray], np.ndarray]
    feature_fns: Sequence[Callable[[np.ndarray], np.ndarray]] = ()
    weights: Sequence[float] = ()
    ndim: int = 1
    sharp: float = 0.0
    potential_grad_fn: Callable[[np.ndarray], np.ndarray] | None = None
    feature_grad_fns: Sequence[Callable[[np.ndarray], np.ndarray]] = ()

    @property
    def axis_names(self) -> tuple[str, ...]:  # type: ignore[override]
        return ("theta",) if self.ndim == 1 else tuple(f"theta{i}" for i in range(self.ndim))

    @property
    def r_sharp(self) -> float:
        return self.sharp

    def potential(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(self.potential_fn(np.asarray(points)), dtype=np.float64)

    def kernel_features(self, points: np.ndarray, scale_points: np.ndarray | None = None
                        ) -> KernelFeatures:
        points = np.asarray(points)
        cols = [np.asarray(f(points), dtype=np.float64) for f in self.feature_fns]
        features = np.stack(cols, axis=1) if cols else np.zeros((points.shape[0], 0))
        return KernelFeatures(features, np.asarray(self.weights, dtype=np.float64))

    def kernel_feature_gradients(self, points: np.ndarray,
                                 scale_points: np.ndarray | None = None) -> np.ndarray:
        """``grad phi_p`` at the points: ``(n, P, ndim)``."""
        points = np.asarray(points)
        cols = [np.asarray(g(points), dtype=np.float64).reshape(points.shape)
                for g in self.feature_grad_fns]
        return np.stack(cols, axis=1) if cols else np.zeros((points.shape[0], 0, self.ndim))

    def potential_gradient(self, points: np.ndarray) -> np.ndarray:
        points = np.asarray(points)
        return np.asarray(self.potential_grad_fn(points), dtype=np.float64).reshape(points.shape)

    # ---- particles in the full (= grid) space ----------------------------------------------

    @property
    def dim(self) -> int:
        return self.ndim

    def reduce(self, theta: Any, xp: Any) -> Any:
        return theta

    def population_gradient(self, theta: Any, order: int | None, backend: Any) -> Any:
        """``grad V(theta_i) + sum_p w_p grad phi_p(theta_i) <phi_p, mu_N>``, ``(R, N, ndim)``."""
        shape = theta.shape
        flat = np.reshape(np.asarray(theta), (-1, self.ndim))
        grad = self.potential_gradient(flat).reshape(shape)
        features = self.kernel_features(flat).features.reshape((*shape[:-1], -1))
        means = features.mean(axis=-2)  # (R, P)
        grads = self.kernel_feature_gradients(flat).reshape((*shape[:-1], -1, self.ndim))
        weighted = np.asarray(self.weights) * means  # (R, P)
        return grad + np.einsum("rp,rnpk->rnk", weighted, grads)

    def population_risk(self, theta: Any, order: int | None, backend: Any) -> Any:
        """``R(mu_N) = R_# + 2 <V, mu_N> + sum_p w_p <phi_p, mu_N>^2``, ``(R,)``."""
        shape = theta.shape
        flat = np.reshape(np.asarray(theta), (-1, self.ndim))
        potential = self.potential(flat).reshape(shape[:-1]).mean(axis=-1)
        means = self.kernel_features(flat).features.reshape((*shape[:-1], -1)).mean(axis=-2)
        return self.sharp + 2.0 * potential + (np.asarray(self.weights) * means**2).sum(axis=-1)
