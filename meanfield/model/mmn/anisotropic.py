"""MMN's anisotropic-Gaussian model (variable selection), exact at finite ``(s0, d - s0)``.

Data: ``y = +-1`` with probability 1/2, ``x | y ~ N(0, diag(tau_y^2 I_s0, I_{d-s0}))`` with
``tau_+- = 1 +- Delta``. Unit: ``sigma_*(x; w) = s(<w, x>)``, ``w in R^d``. Reduced coordinates
``(r1, r2) = (|w_{1..s0}|, |w_{s0+1..d}|)``. Given ``y``, ``<w, x> ~ N(0, a^2)`` with
``a = sqrt(tau^2 r1^2 + r2^2)``, and two units are jointly Gaussian with correlation

.. math::

    \\rho = \\frac{\\tau^2 r_1 r_1' c_1 + r_2 r_2' c_2}{a a'} = \\alpha c_1 + \\beta c_2,

``c1, c2`` the independent cosines of uniform directions in ``R^s0`` and ``R^(d-s0)``. With the
normalised Mehler coefficients ``F_k`` of ``s`` (:mod:`~meanfield.model.activations`):

.. math::

    v(r_1, r_2) = -\\tfrac12 (q(a_+) - q(a_-)), \\qquad
    u(r, r') = \\tfrac12 \\sum_{\\pm} \\sum_{k\\,even} F_k(a) F_k(a') E[\\rho^k],
    \\qquad E[\\rho^k] = \\sum_{j\\,even} \\binom{k}{j} \\alpha^j \\beta^{k-j}
                         E[c_1^j] E[c_2^{k-j}] .

Odd moments of ``c1, c2`` vanish, so ``u`` is a sum of products of the features
``F_k(a) (tau r1 / a)^j (r2 / a)^(k-j)`` (``k, j`` even): a low-rank kernel, exact at finite
``s0`` and ``d - s0``, with no quadrature of the kinked activation. ``d = inf`` is the limit
``s0, d - s0 -> inf`` (``rho -> 0``), which keeps ``k = 0`` only.

Which columns are kept is decided once per box ``[0, r1_max] x [0, r2_max]`` with a bound on the
kernel error, half of the budget ``kernel_tol * max|s|^2`` for the Mehler tail ``k > K`` and
half for the columns ``k <= K`` that are dropped because they are negligible on the whole box
(see :meth:`AnisotropicGaussians.kernel_columns`).

References
----------
S. Mei, A. Montanari, P.-M. Nguyen, PNAS 115 (2018), E7665-E7671, section "Anisotropic
Gaussians" (variable selection).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...backends.arrays import Backend
from ...fields import Field, positive_float
from ...rng import Purpose
from ..activations import PiecewiseLinear, activation_from_spec
from ..base import KernelFeatures, ReducedModel, memoized
from ..integrals.circle import (
    block_cosine_moments,
    circle_monomials,
    circle_weights,
    even_pairs,
    polar,
)
from ..integrals.hermite import CRAMER_BOUND
from ..keys import (
    KERNEL_TOL_HINT,
    MMN_INIT,
    check_s0,
    check_s0_init_d,
    finite_init_d,
    mmn_model_keys,
)
from ..laws import ScaledChiPairLaw
from ..pieces import DataPieces
from ..registry import ModelEntry, Tolerance, register
from . import anisotropic_pairs
from .isotropic import IsotropicGaussians

__all__ = ["AnisotropicGaussians", "KernelColumns"]

#: the order search gives up beyond this Mehler order (the column scalings stay below e^370)
MAX_ORDER = 2000
#: below ``a_top / CRAMER_SPLIT`` the amplitude of ``F_k`` is bounded by Cramer's inequality
CRAMER_SPLIT = 8.0
#: margin on sampled maxima of ``F_k(a)^2`` (samples resolve each oscillation by >= 20 points:
#: the sampled maximum of a cosine is then within 1.3 % of the true one, 2.5 % for its square)
SAMPLED_MARGIN = 1.1


@dataclass(frozen=True)
class KernelColumns:
    """The kept columns of the binomial Mehler expansion, for one box of reduced coordinates.

    Column ``p`` is ``F_k(a_c) (u sqrt(k/j))^j (v sqrt(k/m))^m`` with ``m = k - j``, class
    ``c`` (``tau = taus[c]``), ``u = tau r1 / a``, ``v = r2 / a`` (``u^2 + v^2 = 1``), and weight
    ``(1/2) binom(k, j) E[c1^j] E[c2^m] (j/k)^j (m/k)^m``. The scalings make every monomial
    factor at most 1 in absolute value (its maximum over the circle), so weights and features
    stay in range at high order.

    Attributes
    ----------
    order : int
        Mehler truncation order ``K`` (even).
    klass, k, j : int arrays of shape ``(n_features,)``
    weights : array of shape ``(n_features,)``
    tail_bound, dropped_bound : float
        Bounds on the kernel error from ``k > K`` and from the dropped columns.
    n_candidates : int
        Number of columns before dropping (``k <= K``, both classes).
    """

    order: int
    klass: np.ndarray
    k: np.ndarray
    j: np.ndarray
    weights: np.ndarray
    tail_bound: float
    dropped_bound: float
    n_candidates: int

    @property
    def n_features(self) -> int:
        return int(self.weights.shape[0])


@dataclass(frozen=True)
class AnisotropicGaussians(ReducedModel):
    """MMN's variable-selection model with reduced coordinates ``(r1, r2)``.

    Parameters
    ----------
    d : float
        Input dimension, an integer ``>= 2`` or ``math.inf`` (the ``s0, d - s0 -> inf`` kernel).
    s0 : float
        Number of informative coordinates, an integer with ``1 <= s0 <= d - 1``. With
        ``d = inf`` it only labels the model (``s0`` may be ``inf`` too).
    delta : float
        Class separation, ``0 < delta < 1``.
    activation : PiecewiseLinear
    kernel_tol : float
        Bound on the kernel error (truncation and dropped columns) relative to ``max |s|^2``.
    """

    d: float
    s0: float
    delta: float
    activation: PiecewiseLinear
    kernel_tol: float = 1e-8

    ndim = 2
    axis_names = ("r1", "r2")

    @property
    def domain_lower(self) -> tuple[float, ...]:
        """The radii are at least 0 (:attr:`ReducedModel.domain_lower`)."""
        return (0.0, 0.0)

    def __post_init__(self) -> None:
        if not (self.d >= 2 and (math.isinf(self.d) or float(self.d).is_integer())):
            raise ValueError(f"d must be an integer >= 2 or inf, got {self.d}")
        s0_ok = self.s0 >= 1 and (math.isinf(self.s0) or float(self.s0).is_integer())
        if not s0_ok or (math.isfinite(self.d) and not self.s0 <= self.d - 1):
            raise ValueError(
                f"s0 must be an integer with 1 <= s0 <= d - 1, got s0 = {self.s0} at d = {self.d}"
            )
        if not 0.0 < self.delta < 1.0:
            raise ValueError(f"delta must lie in (0, 1), got {self.delta}")
        if not self.kernel_tol > 0.0:
            raise ValueError(f"kernel_tol must be positive, got {self.kernel_tol}")

    #: ``E[y^2] = 1``, and the class standard deviations ``(1 + delta, 1 - delta)`` (of the first
    #: ``s0`` inputs here): the same two-class mixture as the isotropic model
    r_sharp = IsotropicGaussians.r_sharp
    taus = IsotropicGaussians.taus

    # ---- reduced V and its gradient -----------------------------------------------------------

    def potential(self, points: np.ndarray) -> np.ndarray:
        """``v(r1, r2) = -(q(a_+) - q(a_-)) / 2``, ``a_+- = sqrt(tau_+-^2 r1^2 + r2^2)``."""
        r1, r2 = _coords(points)
        q = self.activation.gaussian_mean
        (tp, tm) = self.taus
        return -0.5 * (q(np.hypot(tp * r1, r2)) - q(np.hypot(tm * r1, r2)))

    def self_interaction(self, points: np.ndarray) -> np.ndarray:
        """``U(w, w) = (1/2) sum_tau E s(a_tau Z)^2``, ``a_tau = |(tau r1, r2)|``."""
        r1, r2 = _coords(points)
        return 0.5 * sum(
            self.activation.gaussian_second_moment(np.hypot(tau * r1, r2)) for tau in self.taus
        )

    def potential_gradient(self, points: np.ndarray) -> np.ndarray:
        """``(dv/dr1, dv/dr2)``, shape ``(M, 2)``, with ``da/dr1 = tau u``, ``da/dr2 = v``."""
        r1, r2 = _coords(points)
        out = np.zeros((r1.shape[0], 2))
        for tau, sign in zip(self.taus, (-0.5, 0.5), strict=True):
            a, u, v = polar(tau, r1, r2)
            coeffs = self.activation.hermite_coefficients(a, 2)
            slope = self.activation.hermite_derivatives(coeffs, a)[:, 0]  # q'(a)
            out[:, 0] += sign * slope * tau * u
            out[:, 1] += sign * slope * v
        return out

    # ---- the kernel ---------------------------------------------------------------------------

    def block_moments(self, k_max: int) -> tuple[np.ndarray, np.ndarray]:
        """``E[c1^k]`` and ``E[c2^k]``, ``k = 0..k_max`` (finite ``d`` only)."""
        return (block_cosine_moments(self.s0, k_max), block_cosine_moments(self.d - self.s0, k_max))

    def truncation_order(self, r1_max: float, r2_max: float) -> int:
        """Smallest even ``K`` whose Mehler tail on the box is below ``kernel_tol max|s|^2 / 2``.

        ``alpha + beta <= 1`` (Cauchy-Schwarz), so for even ``m`` Jensen's inequality gives
        ``E[rho^m] <= max(E[c1^m], E[c2^m])`` at every pair of points (attained at
        ``r2 = r2' = 0``); it decreases in ``m`` since ``|rho| <= 1``, and odd moments vanish.
        With Cauchy-Schwarz and Parseval as in ``IsotropicGaussians.truncation_order``, the
        tail is at most ``max(E[c1^{K+2}], E[c2^{K+2}]) max_a T_K(a)``, where
        ``T_K(a) = E[s(aG)^2] - sum_{k <= K} F_k(a)^2`` and ``a <= |(tau_+ r1_max, r2_max)|``.
        """
        return self.kernel_columns(r1_max, r2_max).order

    @memoized
    def kernel_columns(self, r1_max: float, r2_max: float) -> KernelColumns:
        """The columns kept on the box ``[0, r1_max] x [0, r2_max]``.

        A column of order ``k`` has ``|feature| <= A_k = sup_a |F_k(a)|`` (its monomial factor
        is at most 1), so dropping it changes the kernel by at most ``weight * A_k^2`` at every
        pair of points. The columns with the smallest such bounds are dropped while their sum
        stays below ``kernel_tol max|s|^2 / 2``. ``A_k^2`` is the maximum of ``F_k(a)^2`` sampled
        on ``[a_top / 8, a_top]`` with a spacing that resolves the oscillation of
        ``psi_{k-2}(t_i / a)`` (wavenumber in ``a`` at most ``sqrt(k + 1/2) max|t_i| / a^2``)
        by 20 points, times :data:`SAMPLED_MARGIN`, and Cramer's bound
        ``a |sum_i J_i psi_{k-2}| / sqrt(k (k-1)) <= (a_top / 8) sum_i |J_i| 0.4335 /
        sqrt(k (k-1))`` below ``a_top / 8``; ``A_0 = max|s|``.
        """
        a_tops = [math.hypot(tau * r1_max, r2_max) for tau in self.taus]
        if math.isinf(self.d) or a_tops[0] == 0.0:
            zeros = np.zeros(2, dtype=np.int64)
            return KernelColumns(0, np.arange(2), zeros, zeros, np.full(2, 0.5), 0.0, 0.0, 2)
        s_max2 = max(abs(s) for _, s in self.activation.knots) ** 2
        budget = 0.5 * self.kernel_tol * s_max2
        order, a, coeffs, tail = self._tail_order(a_tops[0], budget)
        amp2 = self._amplitude_bounds(a, coeffs, a_tops, s_max2)  # (2, K + 1)
        m1, m2 = self.block_moments(order)
        k, j = even_pairs(order)
        weights = circle_weights(k, j, m1, m2)
        klass = np.repeat([0, 1], k.size)
        k, j, weights = np.tile(k, 2), np.tile(j, 2), np.tile(weights, 2)
        bounds = weights * amp2[klass, k]
        ranked = np.argsort(bounds, kind="stable")
        n_drop = int(np.searchsorted(np.cumsum(bounds[ranked]), budget, side="right"))
        keep = np.sort(ranked[n_drop:])
        keep = keep[weights[keep] > 0.0]
        dropped = float(bounds.sum() - bounds[keep].sum())
        return KernelColumns(
            order,
            klass[keep],
            k[keep],
            j[keep],
            weights[keep],
            tail,
            max(dropped, 0.0),
            int(bounds.size),
        )

    def _tail_order(self, a_top: float, budget: float) -> tuple[int, np.ndarray, np.ndarray, float]:
        """The order ``K`` of :meth:`truncation_order`, the samples of ``a``, ``F_k`` on them
        (``k <= K``) and the tail bound."""
        act = self.activation
        k_try = 64
        while True:
            a = _amplitude_samples(a_top, k_try, float(np.max(np.abs(act.t))))
            coeffs = act.hermite_coefficients(a, k_try)
            second = act.gaussian_second_moment(a)
            remainder = np.max(second[:, None] - np.cumsum(coeffs**2, axis=1), axis=0)
            m1, m2 = self.block_moments(k_try + 2)
            orders = np.arange(0, k_try + 1, 2)
            tails = np.maximum(m1, m2)[orders + 2] * np.maximum(remainder[orders], 0.0)
            ok = np.nonzero(tails <= budget)[0]
            if ok.size:
                order = int(orders[ok[0]])
                return order, a, coeffs[:, : order + 1], float(tails[ok[0]])
            if k_try >= MAX_ORDER:
                raise ValueError(
                    f"the Mehler series of the anisotropic kernel does not reach kernel_tol = "
                    f"{self.kernel_tol:g} within {MAX_ORDER} terms at s0 = {self.s0:g}, "
                    f"d = {self.d:g} (a block of dimension 1 or 2 converges slowly); raise "
                    "model.kernel_tol"
                )
            k_try = min(4 * k_try, MAX_ORDER)

    def _amplitude_bounds(
        self, a: np.ndarray, coeffs: np.ndarray, a_tops: list[float], s_max2: float
    ) -> np.ndarray:
        """``A_k^2 >= sup F_k(a)^2`` over ``0 < a <= a_top`` of each class: ``(2, K + 1)``."""
        order = coeffs.shape[1] - 1
        a_split = a_tops[0] / CRAMER_SPLIT
        k = np.arange(order + 1.0)
        jumps = float(np.sum(np.abs(self.activation.jumps)))
        out = np.empty((2, order + 1))
        for c, a_top in enumerate(a_tops):
            inside = (a >= a_split) & (a <= a_top)
            sampled = np.max(coeffs[inside] ** 2, axis=0, initial=0.0) * SAMPLED_MARGIN
            below = (min(a_split, a_top) * jumps * CRAMER_BOUND) ** 2 / np.maximum(k * (k - 1), 1)
            out[c] = np.maximum(sampled, below)
            out[c, 0] = s_max2
        return out

    def kernel_features(
        self, points: np.ndarray, scale_points: np.ndarray | None = None
    ) -> KernelFeatures:
        """The kept columns of :meth:`kernel_columns` on ``points`` ``(M, 2)``: ``(M, P)``."""
        columns = self._columns_for(points, scale_points)
        features, _ = self._evaluate(*_coords(points), columns, gradients=False)
        return KernelFeatures(features, columns.weights)

    def kernel_feature_gradients(
        self, points: np.ndarray, scale_points: np.ndarray | None = None
    ) -> np.ndarray:
        """``(d/dr1, d/dr2)`` of the columns of :meth:`kernel_features`: ``(M, P, 2)``."""
        columns = self._columns_for(points, scale_points)
        _, grads = self._evaluate(*_coords(points), columns, gradients=True)
        return grads

    def kernel_features_with_gradients(
        self, points: np.ndarray, scale_points: np.ndarray | None = None
    ) -> tuple[KernelFeatures, np.ndarray]:
        """:meth:`kernel_features` and :meth:`kernel_feature_gradients` in one evaluation."""
        columns = self._columns_for(points, scale_points)
        features, grads = self._evaluate(*_coords(points), columns, gradients=True)
        return KernelFeatures(features, columns.weights), grads

    def _columns_for(self, points: np.ndarray, scale_points: np.ndarray | None) -> KernelColumns:
        r1, r2 = _coords(points if scale_points is None else scale_points)
        return self.kernel_columns(float(r1.max()), float(r2.max()))

    def _evaluate(
        self, r1: np.ndarray, r2: np.ndarray, columns: KernelColumns, gradients: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Features ``(M, P)`` and, if asked, their gradients ``(M, P, 2)`` (else empty).

        With ``f = F_k(a) N``, ``N = (u s_j)^j (v s_m)^m``, ``s_j = sqrt(k/j)``, and
        ``du/dr1 = tau v^2 / a``, ``du/dr2 = -u v / a``, ``dv/dr1 = -tau u v / a``,
        ``dv/dr2 = u^2 / a``:

        .. math::

            \\partial_{r_1} f = \\tau [u F_k' N + (F_k/a)(j s_j v^2 N_{j-1,m} - m u N)], \\quad
            \\partial_{r_2} f = v F_k' N + (F_k/a)(m s_m u^2 N_{j,m-1} - j v N),

        ``N_{j-1,m} = (u s_j)^{j-1} (v s_m)^m`` (and likewise ``N_{j,m-1}``).
        """
        act = self.activation
        n_points, n_cols = r1.shape[0], columns.n_features
        features = np.zeros((n_points, n_cols))
        grads = np.zeros((n_points, n_cols, 2) if gradients else (0, n_cols, 2))
        for c, tau in enumerate(self.taus):
            sel = np.nonzero(columns.klass == c)[0]
            k = columns.k[sel]
            a, u, v = polar(tau, r1, r2)
            coeffs = act.hermite_coefficients(a, columns.order + (2 if gradients else 0))
            f_k = coeffs[:, k]
            mono, mono_grads = circle_monomials(tau, r1, r2, k, columns.j[sel], gradients)
            features[:, sel] = f_k * mono
            if not gradients:
                continue
            slopes = act.hermite_derivatives(coeffs, a)[:, k]  # F_k'(a), 0 at a = 0
            grads[:, sel, 0] = tau * u[:, None] * slopes * mono + f_k * mono_grads[..., 0]
            grads[:, sel, 1] = v[:, None] * slopes * mono + f_k * mono_grads[..., 1]
        return features, grads

    # ---- geometry, grid and noise ------------------------------------------------------------

    def norm_sq(self, points: np.ndarray) -> np.ndarray:
        r1, r2 = _coords(points)
        return r1**2 + r2**2

    def log_jacobian(self, points: np.ndarray) -> np.ndarray:
        """``(s0 - 1) log r1 + (d - s0 - 1) log r2``: the two spheres' surfaces.

        A block of dimension 1 (coefficient 0) contributes 0, also at ``r = 0``.
        """
        r1, r2 = _coords(points)
        out = np.zeros(r1.shape[0])
        for coef, r in ((self.s0 - 1.0, r1), (self.d - self.s0 - 1.0, r2)):
            if coef != 0.0:
                out = out + coef * np.log(r)
        return out

    def validate(self, grid: Any) -> None:
        """A 2-D grid on ``[0, r1_max] x [0, r2_max]`` whose kernel reaches ``kernel_tol``."""
        if grid.ndim != 2:
            raise ValueError(f"the anisotropic model needs a 2-D (r1, r2) grid, got {grid.ndim}-D")
        if any(lo != 0.0 for lo, _ in grid.bounds):
            raise ValueError(f"the (r1, r2) grid must start at 0 on both axes, got {grid.bounds}")
        self.kernel_columns(grid.bounds[0][1], grid.bounds[1][1])

    def check_noise(self, beta: float) -> None:
        if math.isfinite(beta) and math.isinf(self.d):
            raise ValueError(
                "the noisy reduced dynamics needs a finite d (the Bessel drifts "
                "(s0 - 1)/(beta r1), (d - s0 - 1)/(beta r2) diverge as d -> inf)"
            )

    # ---- full-space quantities, for the particles ------------------------------------------

    @property
    def dim(self) -> int:
        """Parameter dimension ``D = d`` of a unit."""
        return int(self.d)

    def sample_data(self, rng: Any, counter: int, batch: int, xp: Any) -> tuple[Any, Any]:
        """Fresh samples for every stream of ``rng``: ``x`` ``(R, batch, d)``, ``y`` ``(R, batch)``.

        The draws of the isotropic model (``y = +1`` when a uniform draw of purpose 1 is below
        1/2, standard normals ``g`` of purpose 0); the first ``s0`` coordinates of ``x`` are
        ``tau_y g``, the others ``g``.
        """
        if math.isinf(self.d):
            raise ValueError("particles need a finite d")
        s0 = int(self.s0)
        positive = xp.astype(
            rng.uniform(counter, (batch,), purpose=Purpose.LABEL) < 0.5, xp.float64
        )
        y = 2.0 * positive - 1.0
        tau = self.taus[1] + (self.taus[0] - self.taus[1]) * positive
        g = rng.normal(counter, (batch, int(self.d)), purpose=Purpose.DATA)
        return xp.concat([g[..., :s0] * tau[..., None], g[..., s0:]], axis=-1), y

    def data_pieces(self) -> DataPieces:
        """The mixture of :meth:`sample_data`: ``tau_y g`` on the first ``s0`` inputs."""
        s0, d = int(self.s0), int(self.d)
        scales = np.ones((2, d))
        scales[:, :s0] = np.array(self.taus)[:, None]
        return DataPieces("mixture", class_scales=scales)

    # the unit s(<theta, x>) and its slope depend on the activation only: the isotropic code
    unit_pieces = IsotropicGaussians.unit_pieces
    engine_pieces = IsotropicGaussians.engine_pieces
    forward = IsotropicGaussians.forward
    backward = IsotropicGaussians.backward
    unit = IsotropicGaussians.unit
    unit_and_slope = IsotropicGaussians.unit_and_slope

    def reduce(self, theta: Any, xp: Any) -> Any:
        """Reduced coordinates ``(|theta_{1..s0}|, |theta_{s0+1..d}|)``: ``(..., n_units, 2)``."""
        s0 = int(self.s0)
        head, rest = theta[..., :s0], theta[..., s0:]
        return xp.stack(
            [xp.sqrt(xp.sum(head * head, axis=-1)), xp.sqrt(xp.sum(rest * rest, axis=-1))], axis=-1
        )

    def pair_views(self) -> list[tuple[Any, np.ndarray]]:
        """One isotropic view per class: whitened units ``S_y w`` (see
        :meth:`IsotropicGaussians.pair_views` and :mod:`.anisotropic_pairs`)."""
        return anisotropic_pairs.pair_views(self)

    def max_pair_cosine(self, theta: Any, xp: Any) -> float:
        """Largest ``|correlation|`` of two units' pre-activations, over both classes."""
        return anisotropic_pairs.max_pair_cosine(self, theta, xp)

    def population_risk(self, theta: Any, order: int | None, backend: Backend) -> Any:
        """Exact ``R(mu_N)`` per replica, ``(R,)``; see :mod:`.anisotropic_pairs`."""
        return anisotropic_pairs.population_risk(self, theta, order, backend)

    def population_gradient(self, theta: Any, order: int | None, backend: Backend) -> Any:
        """``grad Psi(theta_i; mu_N)``, ``(R, N, d)``; see :mod:`.anisotropic_pairs`."""
        return anisotropic_pairs.population_gradient(self, theta, order, backend)


def _coords(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"reduced points must have shape (M, 2), got {p.shape}")
    return p[:, 0], p[:, 1]


def _amplitude_samples(a_top: float, k_max: int, t_max: float) -> np.ndarray:
    """Uniform samples of ``(0, a_top]`` fine enough to resolve ``F_k``, ``k <= k_max``, on
    ``[a_top / CRAMER_SPLIT, a_top]`` by 20 points per oscillation (at least 512 samples)."""
    a_split = a_top / CRAMER_SPLIT
    wavenumber = math.sqrt(k_max + 0.5) * t_max / a_split**2
    n = max(512, math.ceil(a_top * wavenumber * 20.0 / (2.0 * math.pi)))
    return np.linspace(0.0, a_top, n + 1)[1:]


# ----------------------------------------------------------------------------- the config entry


def _build(spec: Any, pde: Any = None) -> AnisotropicGaussians:
    return AnisotropicGaussians(
        d=float(spec["d"]),
        s0=float(spec["s0"]),
        delta=float(spec["delta"]),
        activation=activation_from_spec(spec.get("activation", "mmn")),
        kernel_tol=float(spec.get("kernel_tol", 1e-8)),
    )


def _law(spec: Any, init: Any) -> ScaledChiPairLaw:
    return ScaledChiPairLaw(
        kappa=float(init["kappa"]), d=finite_init_d(spec, init), s0=int(spec["s0"])
    )


ENTRY = register(
    ModelEntry(
        name="anisotropic_gaussians",
        doc="MMN example 2: Gaussian classes differing on s0 coordinates, grid over (r1, r2)",
        keys={
            "model": mmn_model_keys(
                1e-8,
                s0=Field(
                    ("integer",),
                    "number of informative coordinates (1 <= s0 <= d - 1)",
                    check=check_s0,
                ),
            ),
            "init": MMN_INIT,
            "pde": {"r_max": positive_float("outer radius of the grid [0, r_max]^2 over (r1, r2)")},
        },
        build=_build,
        law=_law,
        reduced_dim=2,
        box_key="pde.r_max",
        law_keys="init.kappa",
        tolerance=Tolerance("kernel_tol", KERNEL_TOL_HINT),
        check=check_s0_init_d,
    )
)
