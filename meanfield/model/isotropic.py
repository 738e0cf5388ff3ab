"""MMN's isotropic-Gaussian classification model, exact at finite input dimension d.

Data: ``y = +-1`` with probability 1/2, ``x | y ~ N(0, tau_y^2 I_d)`` with ``tau_+- = 1 +- Delta``.
Unit: ``sigma_*(x; w) = s(<w, x>)``, ``w in R^d``. Reduced coordinate ``r = |w|``:

.. math::

    v(r) = -\\tfrac12 (q(\\tau_+ r) - q(\\tau_- r)), \\qquad
    u_d(r, r') = \\tfrac12 \\sum_{\\pm} \\sum_{k\\,even}
                 E[c^k] F_k(\\tau_\\pm r) F_k(\\tau_\\pm r'),

where ``F_k`` are the normalised Mehler coefficients of ``s`` (closed form, see
:mod:`~meanfield.model.activations`) and ``E[c^k]`` the moments of the cosine of two independent
uniform directions in ``R^d``. The series is truncated at the smallest even ``K`` whose tail
is provably below ``kernel_tol * max|s|^2`` (Parseval's identity for the coefficients): a smooth,
low-rank kernel with no quadrature of the kinked activation. ``d = inf`` keeps ``k = 0`` only.

References
----------
S. Mei, A. Montanari, P.-M. Nguyen, PNAS 115 (2018), E7665-E7671, section "Isotropic Gaussians".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .activations import PiecewiseLinear
from .base import KernelFeatures, ReducedModel
from .hermite import cosine_moments

__all__ = ["IsotropicGaussians"]

#: the truncation search gives up beyond this order (d close to 2 with a tight tolerance)
MAX_ORDER = 20000


@dataclass(frozen=True)
class IsotropicGaussians(ReducedModel):
    """MMN example 1 with reduced coordinate ``r = |w|``.

    Parameters
    ----------
    d : float
        Input dimension, an integer ``>= 2`` or ``math.inf`` (the ``d -> inf`` kernel).
    delta : float
        Class separation, ``0 < delta < 1``.
    activation : PiecewiseLinear
    kernel_tol : float
        Bound on the truncation error of ``u_d`` relative to ``max |s|^2``.
    """

    d: float
    delta: float
    activation: PiecewiseLinear
    kernel_tol: float = 1e-10

    ndim = 1
    axis_names = ("r",)

    def __post_init__(self) -> None:
        if not (self.d >= 2 and (math.isinf(self.d) or float(self.d).is_integer())):
            raise ValueError(f"d must be an integer >= 2 or inf, got {self.d}")
        if not 0.0 < self.delta < 1.0:
            raise ValueError(f"delta must lie in (0, 1), got {self.delta}")

    @property
    def r_sharp(self) -> float:
        return 1.0

    @property
    def taus(self) -> tuple[float, float]:
        """Standard deviations ``(1 + delta, 1 - delta)`` of the two classes."""
        return (1.0 + self.delta, 1.0 - self.delta)

    def potential(self, points: np.ndarray) -> np.ndarray:
        r = _radii(points)
        tp, tm = self.taus
        q = self.activation.gaussian_mean
        return -0.5 * (q(tp * r) - q(tm * r))

    def truncation_order(self, r_max: float) -> int:
        """Smallest even ``K`` whose Mehler tail is provably below ``kernel_tol * max|s|^2``.

        For even ``k > K``, ``E[c^k] <= E[c^{K+2}]``; by Cauchy-Schwarz and Parseval
        (``sum_k F_k(a)^2 = E[s(aG)^2]``, both sides in closed form), the tail of ``u_d`` at
        ``(r, r')`` is at most ``E[c^{K+2}] max_a T_K(a)`` with the remainder
        ``T_K(a) = E[s(aG)^2] - sum_{k <= K} F_k(a)^2``, ``a`` in ``(0, tau_+ r_max]``.
        The maximum is taken over 512 values of ``a`` (``T_K`` is smooth in ``a``).
        """
        if math.isinf(self.d):
            return 0
        target = self.kernel_tol * max(abs(s) for _, s in self.activation.knots) ** 2
        a = np.linspace(0.0, self.taus[0] * r_max, 513)[1:]
        second = self.activation.gaussian_second_moment(a)
        k_try = 64
        while True:
            coeffs = self.activation.hermite_coefficients(a, k_try)
            remainder = np.max(second[:, None] - np.cumsum(coeffs**2, axis=1), axis=0)
            moments = cosine_moments(self.d, k_try + 2)
            orders = np.arange(0, k_try + 1, 2)
            ok = np.nonzero(moments[orders + 2] * np.maximum(remainder[orders], 0.0) <= target)[0]
            if ok.size:
                return int(orders[ok[0]])
            if k_try >= MAX_ORDER:
                raise ValueError(
                    f"the Mehler series of u_d does not reach kernel_tol = {self.kernel_tol:g} "
                    f"within {MAX_ORDER} terms at d = {self.d:g}; raise model.kernel_tol"
                )
            k_try = min(4 * k_try, MAX_ORDER)

    def kernel_features(self, points: np.ndarray, scale_points: np.ndarray | None = None
                        ) -> KernelFeatures:
        r = _radii(points)
        r_scale = _radii(points if scale_points is None else scale_points).max()
        order = self.truncation_order(float(r_scale))
        moments = cosine_moments(self.d, order)[::2]  # even orders 0, 2, ..., K
        blocks = [self.activation.hermite_coefficients(tau * r, order)[:, ::2] for tau in self.taus]
        return KernelFeatures(np.concatenate(blocks, axis=1), np.concatenate([0.5 * moments] * 2))

    def norm_sq(self, points: np.ndarray) -> np.ndarray:
        return _radii(points) ** 2

    def log_jacobian(self, points: np.ndarray) -> np.ndarray:
        """``(d - 1) log r``: the surface of the sphere of radius r in ``R^d``."""
        return (self.d - 1.0) * np.log(_radii(points))

    def validate(self, grid: Any) -> None:
        if grid.bounds[0][0] < 0:
            raise ValueError("the radial grid must start at r >= 0")
        self.truncation_order(grid.bounds[0][1])

    def check_noise(self, beta: float) -> None:
        if math.isfinite(beta) and math.isinf(self.d):
            raise ValueError("the noisy reduced dynamics needs a finite d (the Bessel drift "
                             "(d - 1)/(beta r) diverges as d -> inf)")

    # ---- full-space quantities, for the particles ------------------------------------------

    def sample_data(self, rng: np.random.Generator, shape: tuple[int, ...]
                    ) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``(x, y)``: ``x`` of shape ``(*shape, d)``, ``y`` of shape ``shape`` (NumPy)."""
        if math.isinf(self.d):
            raise ValueError("cannot sample data at d = inf")
        y = np.where(rng.random(shape) < 0.5, 1.0, -1.0)
        tau = np.where(y > 0, self.taus[0], self.taus[1])
        x = rng.standard_normal((*shape, int(self.d))) * tau[..., None]
        return x, y

    def unit(self, x: Any, theta: Any, xp: Any) -> Any:
        """``sigma_*(x; theta) = s(<theta, x>)``.

        ``x`` of shape ``(..., n_samples, d)``, ``theta`` of shape ``(..., n_units, d)``;
        returns ``(..., n_samples, n_units)``.
        """
        return self.activation(x @ xp.matrix_transpose(theta), xp)

    def unit_and_slope(self, x: Any, theta: Any, xp: Any) -> tuple[Any, Any]:
        """``s(<theta, x>)`` and ``s'(<theta, x>)``, both of shape ``(..., n_samples, n_units)``.

        The gradient of a unit is ``grad_theta sigma_*(x; theta) = s'(<theta, x>) x``; particle
        updates contract the slope with ``x`` rather than forming that ``(.., d)`` array.
        """
        z = x @ xp.matrix_transpose(theta)
        return self.activation(z, xp), self.activation.derivative(z, xp)

    def reduce(self, theta: Any, xp: Any) -> Any:
        """Reduced coordinate ``r = |theta|``: shape ``(..., n_units, 1)``."""
        return xp.sqrt(xp.sum(theta * theta, axis=-1, keepdims=True))


def _radii(points: np.ndarray) -> np.ndarray:
    r = np.asarray(points, dtype=np.float64)
    return r[:, 0] if r.ndim == 2 else r
