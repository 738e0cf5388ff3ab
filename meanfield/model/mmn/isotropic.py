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

from ...backends.arrays import Backend
from ...fields import positive_float
from ...rng import Purpose
from ..activations import NUMPY, PiecewiseLinear, activation_from_spec
from ..base import KernelFeatures, ReducedModel, memoized
from ..integrals.hermite import cosine_moments
from ..keys import KERNEL_TOL_HINT, MMN_INIT, finite_init_d, mmn_model_keys
from ..laws import ScaledChiLaw
from ..pieces import DataPieces, EnginePieces, UnitPieces
from ..registry import ModelEntry, Tolerance, register
from . import isotropic_pairs

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

    @property
    def domain_lower(self) -> tuple[float, ...]:
        """The radii are at least 0 (:attr:`ReducedModel.domain_lower`)."""
        return (0.0,)

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
        return self.potential_xp(_radii(points), NUMPY)

    def self_interaction(self, points: np.ndarray) -> np.ndarray:
        """``U(w, w) = (1/2) sum_tau E s(tau r Z)^2``, ``r = |w|`` (closed form per piece)."""
        r = _radii(points)
        return 0.5 * sum(self.activation.gaussian_second_moment(tau * r) for tau in self.taus)

    def potential_xp(self, r: Any, backend: Backend) -> Any:
        """``v(r) = -(q(tau_+ r) - q(tau_- r)) / 2`` for radii of any shape, on any backend."""
        tp, tm = self.taus
        q = self.activation.gaussian_mean
        return -0.5 * (q(tp * r, backend) - q(tm * r, backend))

    def potential_slope_xp(self, r: Any, backend: Backend) -> Any:
        """``v'(r)``, with ``q'(a) = F_0'(a)`` from the Mehler coefficients."""
        out = 0.0 * r
        for tau, sign in zip(self.taus, (-0.5, 0.5), strict=True):
            a = tau * r
            coeffs = self.activation.hermite_coefficients(a, 2, backend)
            out = out + sign * tau * self.activation.hermite_derivatives(coeffs, a, backend)[..., 0]
        return out

    @memoized
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

    def kernel_features(
        self, points: np.ndarray, scale_points: np.ndarray | None = None
    ) -> KernelFeatures:
        r = _radii(points)
        r_scale = _radii(points if scale_points is None else scale_points).max()
        order = self.truncation_order(float(r_scale))
        moments = cosine_moments(self.d, order)[::2]  # even orders 0, 2, ..., K
        blocks = [self.activation.hermite_coefficients(tau * r, order)[:, ::2] for tau in self.taus]
        return KernelFeatures(np.concatenate(blocks, axis=1), np.concatenate([0.5 * moments] * 2))

    def kernel_feature_gradients(
        self, points: np.ndarray, scale_points: np.ndarray | None = None
    ) -> np.ndarray:
        """``d/dr`` of the columns of :meth:`kernel_features` (same truncation): ``(M, P, 1)``."""
        r = _radii(points)
        r_scale = _radii(points if scale_points is None else scale_points).max()
        order = self.truncation_order(float(r_scale))
        act = self.activation
        blocks = []
        for tau in self.taus:
            coeffs = act.hermite_coefficients(tau * r, order + 2)
            blocks.append(tau * act.hermite_derivatives(coeffs, tau * r)[:, ::2])
        return np.concatenate(blocks, axis=1)[..., None]

    def kernel_features_with_gradients(
        self, points: np.ndarray, scale_points: np.ndarray | None = None
    ) -> tuple[KernelFeatures, np.ndarray]:
        """:meth:`kernel_features` and :meth:`kernel_feature_gradients` from one table of
        Mehler coefficients (what a moving point needs at every step)."""
        r = _radii(points)
        r_scale = _radii(points if scale_points is None else scale_points).max()
        order = self.truncation_order(float(r_scale))
        moments = cosine_moments(self.d, order)[::2]
        act = self.activation
        values, slopes = [], []
        for tau in self.taus:
            coeffs = act.hermite_coefficients(tau * r, order + 2)
            values.append(coeffs[:, : order + 1 : 2])
            slopes.append(tau * act.hermite_derivatives(coeffs, tau * r)[:, ::2])
        features = KernelFeatures(
            np.concatenate(values, axis=1), np.concatenate([0.5 * moments] * 2)
        )
        return features, np.concatenate(slopes, axis=1)[..., None]

    def potential_gradient(self, points: np.ndarray) -> np.ndarray:
        """``v'(r)``, shape ``(M, 1)``."""
        return self.potential_slope_xp(_radii(points), NUMPY)[:, None]

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
            raise ValueError(
                "the noisy reduced dynamics needs a finite d (the Bessel drift "
                "(d - 1)/(beta r) diverges as d -> inf)"
            )

    # ---- full-space quantities, for the particles ------------------------------------------

    @property
    def dim(self) -> int:
        """Parameter dimension ``D = d`` of a unit."""
        return int(self.d)

    def sample_data(self, rng: Any, counter: int, batch: int, xp: Any) -> tuple[Any, Any]:
        """Fresh samples for every stream of ``rng``: ``x`` ``(R, batch, d)``, ``y`` ``(R, batch)``.

        ``y = +1`` when a uniform draw is below 1/2 (purpose 1), ``x = tau_y g`` with standard
        normal ``g`` (purpose 0).
        """
        if math.isinf(self.d):
            raise ValueError("particles need a finite d")
        positive = xp.astype(
            rng.uniform(counter, (batch,), purpose=Purpose.LABEL) < 0.5, xp.float64
        )
        y = 2.0 * positive - 1.0
        tau = self.taus[1] + (self.taus[0] - self.taus[1]) * positive
        return rng.normal(counter, (batch, int(self.d)), purpose=Purpose.DATA) * tau[..., None], y

    def forward(self, x: Any, theta: Any, xp: Any) -> tuple[Any, Any]:
        """Unit outputs ``s(<theta_i, x_b>)`` of shape ``(R, B, N)`` and the slopes (the cache)."""
        return self.unit_and_slope(x, theta, xp)

    def backward(self, x: Any, theta: Any, cache: Any, coef: Any, xp: Any) -> Any:
        """``sum_b coef[r, b, i] grad_theta s(<theta_i, x_b>) = (coef * s')^T x``: ``(R, N, d)``."""
        weights = xp.matrix_transpose(coef * cache)  # (R, N, B)
        if x.shape[-2] == 1:  # one sample: an outer product, cheaper as a broadcast than matmul
            return weights * x
        return weights @ x

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

    def unit_pieces(self) -> UnitPieces:
        """The unit ``s(<w, x>)`` for the compiled particle engine (all of ``w`` trained)."""
        return UnitPieces.dense(self.activation.pieces(), self.dim)

    def data_pieces(self) -> DataPieces:
        """The two-class mixture of :meth:`sample_data`: ``x = tau_y g``."""
        return DataPieces(
            "mixture", class_scales=np.repeat(np.array(self.taus)[:, None], self.dim, axis=1)
        )

    def engine_pieces(self) -> EnginePieces:
        """The compiled engine's SGD (unit, mixture) and exact pair kernel (GD, risk)."""
        return EnginePieces(
            unit=self.unit_pieces(), data=self.data_pieces(), pairs=self.pair_views()
        )

    def reduce(self, theta: Any, xp: Any) -> Any:
        """Reduced coordinate ``r = |theta|``: shape ``(..., n_units, 1)``."""
        return xp.sqrt(xp.sum(theta * theta, axis=-1, keepdims=True))

    def sgd_noise_rate(
        self,
        edges: np.ndarray,
        density: np.ndarray,
        phi: np.ndarray,
        rng: np.random.Generator,
        n_samples: int = 4000,
    ) -> float:
        """``Var_x[(y - y_hat_rho(x)) <grad sigma_*(x; .) . grad phi, rho>]`` by Monte Carlo.

        ``rho`` is the radial law of ``|w|`` given by cell averages on ``edges`` with uniform
        directions, ``phi`` a radial function (cell values): ``n_samples`` radii are drawn from
        the cells (uniform inside each) with the slope ``phi'`` of the cell values, then
        :meth:`sgd_noise_rate_units`.
        """
        h = np.diff(edges)
        cdf = np.concatenate([[0.0], np.cumsum(density * h)])
        u = rng.random(n_samples) * cdf[-1]
        cell = np.clip(np.searchsorted(cdf, u, side="right") - 1, 0, len(h) - 1)
        r = edges[cell] + (u - cdf[cell]) / np.maximum(density[cell], 1e-300)
        slope = np.interp(r, 0.5 * (edges[1:] + edges[:-1]), np.gradient(phi, h[0]))
        return self.sgd_noise_rate_units(r, slope, rng)

    def sgd_noise_rate_units(
        self,
        r: np.ndarray,
        slope: np.ndarray,
        rng: np.random.Generator,
        weights: np.ndarray | None = None,
        n_inputs: int | None = None,
    ) -> float:
        """The rate of :meth:`sgd_noise_rate` for a law of units given as radii ``r`` ``(n,)``
        with weights (default equal) and the slopes ``phi'(r)`` ``(n,)``, on ``n_inputs``
        inputs (default ``n``), host NumPy.

        With uniform directions ``u``, ``grad sigma_* . grad phi = s'(<w, x>) <x, u> phi'(|w|)``.
        The directions are Monte Carlo, one per unit; two independent sets give two estimates
        ``g_1(x), g_2(x)`` of ``<grad sigma_* . grad phi, rho>``, and the rate is their
        covariance over the inputs: unbiased, where the variance of one estimate would add its
        own Monte Carlo noise (large when a few light units carry large slopes, as units near a
        separatrix do).
        """
        r, slope = np.asarray(r, dtype=np.float64), np.asarray(slope, dtype=np.float64)
        weights = (
            np.full(r.size, 1.0 / r.size)
            if weights is None
            else np.asarray(weights, dtype=np.float64) / np.sum(weights)
        )
        n_inputs = r.size if n_inputs is None else int(n_inputs)
        d = int(self.d)
        y = np.where(rng.random(n_inputs) < 0.5, 1.0, -1.0)
        scale = np.where(y > 0, self.taus[0], self.taus[1])[:, None]
        x = rng.standard_normal((n_inputs, d)) * scale
        estimates = []
        for _ in range(2):
            units = rng.standard_normal((r.size, d))
            units /= np.linalg.norm(units, axis=1, keepdims=True)
            along = x @ units.T  # <x, w/|w|>, (n_inputs, n_units)
            z = along * r
            residual = y - self.activation(z) @ weights
            estimates.append(
                residual * ((self.activation.derivative(z) * along) @ (weights * slope))
            )
        first, second = (e - e.mean() for e in estimates)
        return float(np.sum(first * second) / (n_inputs - 1))

    def pair_views(self) -> list[tuple[Any, np.ndarray | None]]:
        """The exact pair kernel as a sum of isotropic views: here the model itself.

        Each ``(view, scale)``: the units ``z = scale * w`` (``None``: ``z = w``) form an
        isotropic model ``view`` (``taus``, ``activation``, ``kernel_tol``, ``r_sharp``,
        ``potential_xp``, ``potential_slope_xp``); ``R = sum_v R_v(z_v)`` and
        ``grad_w Psi = sum_v scale_v grad_z Psi_v``. The compiled particle engine sums the
        pairs of each view.
        """
        return [(self, None)]

    def max_pair_cosine(self, theta: Any, xp: Any) -> float:
        """Largest ``|cos|`` between two units of one replica (host float)."""
        return isotropic_pairs.max_pair_cosine(theta, xp)

    def population_risk(self, theta: Any, order: int | None, backend: Backend) -> Any:
        """Exact ``R(mu_N)`` per replica, ``(R,)``; see :mod:`.isotropic_pairs`."""
        return isotropic_pairs.population_risk(self, theta, order, backend)

    def population_gradient(self, theta: Any, order: int | None, backend: Backend) -> Any:
        """``grad Psi(theta_i; mu_N)``, ``(R, N, d)``; see :mod:`.isotropic_pairs`."""
        return isotropic_pairs.population_gradient(self, theta, order, backend)


def _radii(points: np.ndarray) -> np.ndarray:
    r = np.asarray(points, dtype=np.float64)
    return r[:, 0] if r.ndim == 2 else r


# ----------------------------------------------------------------------------- the config entry


def _build(spec: Any, pde: Any = None) -> IsotropicGaussians:
    return IsotropicGaussians(
        d=float(spec["d"]),
        delta=float(spec["delta"]),
        activation=activation_from_spec(spec.get("activation", "mmn")),
        kernel_tol=float(spec.get("kernel_tol", 1e-10)),
    )


def _law(spec: Any, init: Any) -> ScaledChiLaw:
    return ScaledChiLaw(kappa=float(init["kappa"]), d=finite_init_d(spec, init))


ENTRY = register(
    ModelEntry(
        name="isotropic_gaussians",
        doc="MMN example 1: two isotropic Gaussian classes, r = |w| on a radial grid",
        keys={
            "model": mmn_model_keys(1e-10),
            "init": MMN_INIT,
            "pde": {"r_max": positive_float("outer radius of the radial grid [0, r_max]")},
        },
        build=_build,
        law=_law,
        reduced_dim=1,
        box_key="pde.r_max",
        law_keys="init.kappa",
        tolerance=Tolerance("kernel_tol", KERNEL_TOL_HINT),
    )
)
