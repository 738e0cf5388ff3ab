"""MMN's variable-selection example as published: ReLU units with trained output weight and offset.

Data as :mod:`~meanfield.model.mmn.anisotropic`: ``y = +-1`` with probability 1/2,
``x | y ~ N(0, diag(tau_y^2 I_s0, I_{d-s0}))``, ``tau_+- = 1 +- Delta``. Unit
``sigma_*(x; theta) = a (<w, x> + b)_+`` with ``theta = (a, b, w) in R^{d+2}``, all trained.
Reduced coordinates ``q = (a, b, r1, r2)``, ``r1 = |w_{1..s0}|``, ``r2 = |w_{s0+1..d}|``: a 4-D
grid. Given ``y``, ``<w, x> ~ N(0, sig^2)`` with ``sig = sqrt(tau^2 r1^2 + r2^2)``, and two units
are jointly Gaussian with correlation ``rho = alpha c1 + beta c2`` (``alpha = tau^2 r1 r1' /
(sig sig')``, ``beta = r2 r2' / (sig sig')``, ``c1, c2`` independent cosines of uniform
directions in ``R^s0`` and ``R^(d-s0)``). With the normalised Mehler coefficients ``F_k`` of
``z -> (sig z + b)_+`` (:mod:`..integrals.ramp`):

.. math::

    V(q) = -\\tfrac{a}{2} (F_0(\\sigma_+, b) - F_0(\\sigma_-, b)), \\qquad
    U(q, q') = a a' \\tfrac12 \\sum_\\pm \\sum_{k\\,even} F_k(\\sigma, b) F_k(\\sigma', b')
               \\sum_{j\\,even} \\binom{k}{j} \\alpha^j \\beta^{k-j} E[c_1^j] E[c_2^{k-j}] .

As in the anisotropic model the odd moments of ``c1, c2`` vanish, so ``U`` is a sum of products
of the features ``a F_k(sig, b) (tau r1 / sig)^j (r2 / sig)^(k-j)`` (``k, j`` even): low rank,
exact at finite ``(s0, d - s0)``; ``d = inf`` keeps ``k = 0``.

``F_k(sig, b)``, the normalised Mehler coefficients of the ramp, have closed forms in the Gaussian
density and its derivatives at ``t = -b/sig`` (:mod:`..integrals.ramp`): ``F_0 = b Phi(b/sig) + sig
phi(b/sig)``, ``F_1 = sig Phi(b/sig)``, ``F_k = sig He_{k-2}(t) phi(t) / sqrt(k!)``.

**Choices where MMN publish none** (they give d = 320, s0 = 60, N = 800,
``xi(t) = t^(-1/4)``, ``eps = 2e-4``): ``Delta = 0.5`` (the separation MMN use for their other
d = 320 example), and the initial law ``a ~ N(a_mean, a_std^2)``, ``b ~ N(b_mean, b_std^2)``,
``w ~ N(0, kappa^2 I_d / d)``, independent (:class:`~.laws.ReluSelectionLaw`); the shipped
configs take ``a ~ N(0, 0.4^2)``, ``b ~ N(0, 0.4^2)``, ``kappa = 0.8``: output weights centred
at zero (the network starts at ``y_hat ~ 0``), offsets of the size of the pre-activations, and
the isotropic example's ``kappa``. Gaussian ``a`` and ``b`` have smooth densities with exact cell
masses; a width of 0.4 is resolved by a few tens of cells on the boxes the dynamics needs
(docs/grid-convergence.md).

References
----------
S. Mei, A. Montanari, P.-M. Nguyen, "A mean field view of the landscape of two-layer neural
networks", PNAS 115 (2018) E7665-E7671, the variable-selection example with ReLU units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...backends.arrays import Backend
from ...fields import (
    Context,
    Field,
    allowed,
    check_bounds,
    finite_float,
    float_pairs,
    positive_float,
)
from ..base import KernelFeatures, ReducedModel, memoized
from ..integrals.circle import circle_monomials, circle_weights, even_pairs, polar
from ..integrals.hermite import CRAMER_BOUND
from ..integrals.ramp import (
    ramp_hermite_coefficients,
    ramp_hermite_slopes,
    ramp_mean,
    ramp_second_moment,
)
from ..keys import (
    KERNEL_TOL_HINT,
    MMN_INIT,
    check_dimension,
    check_s0,
    check_s0_init_d,
    finite_init_d,
    to_dimension,
)
from ..laws import ReluSelectionLaw
from ..pieces import ActivationPieces, EnginePieces, UnitPieces
from ..registry import ModelEntry, Tolerance, register
from . import relu_selection_pairs
from .anisotropic import AnisotropicGaussians, KernelColumns

__all__ = ["ReluSelection", "ReluColumns", "RELU"]

#: the order search gives up beyond this Mehler order
MAX_ORDER = 2000
#: ``T_K(1, beta)`` is sampled on ``[-BETA_SPAN, BETA_SPAN]``: beyond, the kink sits 8 standard
#: deviations out and the remainder is below 1e-15 of the unit's second moment
BETA_SPAN = 8.0
#: margin on the sampled maximum of the Parseval remainder (1601 samples, 0.01 apart: 10 or
#: more per oscillation of ``psi_n`` up to ``n = 2000``)
SAMPLED_MARGIN = 1.1
#: the ReLU ``h(z) = (z)_+`` for the compiled engine: one knot at 0 with slope jump 1
RELU = ActivationPieces("piecewise_linear", np.zeros(1), np.ones(1), 0.0)
_SQRT_2PI = math.sqrt(2.0 * math.pi)


# ---- the kernel's columns ----------------------------------------------------------------------


@dataclass(frozen=True)
class ReluColumns(KernelColumns):
    """The kept columns of the binomial Mehler expansion on one box of ``(a, b, r1, r2)``.

    Column ``p`` is ``a F_k(sig_c, b) (u s_j)^j (v s_m)^m`` with class ``c`` (``tau =
    taus[c]``), ``u = tau r1 / sig``, ``v = r2 / sig``, and weight
    :func:`~meanfield.model.integrals.circle.circle_weights`; the attributes of
    :class:`~.anisotropic.KernelColumns`, and

    Attributes
    ----------
    scale : float
        ``a_max^2 max_c (sig_c,max^2 + b_max^2)``, at least ``U(q, q)`` on the box: the
        tolerance is relative to it.
    """

    scale: float


def _remainders(k_max: int) -> np.ndarray:
    """``max_beta T_K(1, beta)``, ``K = 0..k_max``: the Parseval remainder of a unit-``sig``
    ramp, sampled on ``beta in [-8, 8]``, times :data:`SAMPLED_MARGIN`."""
    beta = np.linspace(-BETA_SPAN, BETA_SPAN, 1601)
    ones = np.ones_like(beta)
    coeffs = ramp_hermite_coefficients(ones, beta, k_max)
    tails = ramp_second_moment(ones, beta)[:, None] - np.cumsum(coeffs**2, axis=1)
    return SAMPLED_MARGIN * np.maximum(np.max(tails, axis=0), 0.0)


def _box(points: np.ndarray) -> tuple[tuple[float, float], ...]:
    """The bounding box ``((lo, hi), ...)`` of reduced points ``(M, 4)``."""
    p = np.asarray(points, dtype=np.float64)
    return tuple(
        (float(lo), float(hi)) for lo, hi in zip(p.min(axis=0), p.max(axis=0), strict=True)
    )


@dataclass(frozen=True)
class ReluSelection(ReducedModel):
    """MMN's ReLU variable-selection model with reduced coordinates ``(a, b, r1, r2)``.

    Parameters
    ----------
    d : float
        Input dimension, an integer ``>= 2`` or ``math.inf`` (the ``s0, d - s0 -> inf`` kernel).
    s0 : float
        Number of informative coordinates, an integer with ``1 <= s0 <= d - 1`` (with
        ``d = inf`` a label only).
    delta : float
        Class separation, ``0 < delta < 1``.
    kernel_tol : float
        Bound on the kernel error (tail and dropped columns) relative to ``ReluColumns.scale``.
    """

    d: float
    s0: float
    delta: float
    kernel_tol: float = 1e-8

    ndim = 4
    axis_names = ("a", "b", "r1", "r2")

    @property
    def domain_lower(self) -> tuple[float, ...]:
        """The radii are at least 0 (:attr:`ReducedModel.domain_lower`)."""
        return (-math.inf, -math.inf, 0.0, 0.0)

    def __post_init__(self) -> None:
        AnisotropicGaussians.__post_init__(self)  # the same d, s0, delta, kernel_tol checks

    r_sharp = AnisotropicGaussians.r_sharp
    taus = AnisotropicGaussians.taus
    block_moments = AnisotropicGaussians.block_moments

    # ---- reduced V and its gradient -----------------------------------------------------------

    def potential(self, points: np.ndarray) -> np.ndarray:
        """``V = -(a/2) (F_0(sig_+, b) - F_0(sig_-, b))``, shape ``(M,)``."""
        a, b, r1, r2 = _coords(points)
        means = [ramp_mean(np.hypot(tau * r1, r2), b) for tau in self.taus]
        return -0.5 * a * (means[0] - means[1])

    def self_interaction(self, points: np.ndarray) -> np.ndarray:
        """``U(theta, theta) = a^2 (1/2) sum_tau E(sig_tau Z + b)_+^2``."""
        a, b, r1, r2 = _coords(points)
        return 0.5 * a * a * sum(ramp_second_moment(np.hypot(tau * r1, r2), b) for tau in self.taus)

    def potential_gradient(self, points: np.ndarray) -> np.ndarray:
        """``(dV/da, dV/db, dV/dr1, dV/dr2)``, shape ``(M, 4)``; ``dF_0/dsig = phi(b/sig)``,
        ``dsig/dr1 = tau u``, ``dsig/dr2 = v``."""
        a, b, r1, r2 = _coords(points)
        out = np.zeros((a.shape[0], 4))
        for tau, sign in zip(self.taus, (-0.5, 0.5), strict=True):
            sig, u, v = polar(tau, r1, r2)
            coeffs = ramp_hermite_coefficients(sig, b, 0)
            d_sig, d_b = ramp_hermite_slopes(sig, b, coeffs)
            out[:, 0] += sign * coeffs[:, 0]
            out[:, 1] += sign * a * d_b[:, 0]
            out[:, 2] += sign * a * d_sig[:, 0] * tau * u
            out[:, 3] += sign * a * d_sig[:, 0] * v
        return out

    # ---- the kernel ---------------------------------------------------------------------------

    @memoized
    def kernel_columns(self, bounds: tuple[tuple[float, float], ...]) -> ReluColumns:
        """The columns kept on the box ``bounds`` = ``((a_lo, a_hi), (b_lo, b_hi), (r1_lo,
        r1_hi), (r2_lo, r2_hi))``.

        Tail: ``E[rho^m] <= M_m = max(E[c1^m], E[c2^m])`` for even ``m`` and decreasing in
        ``m`` (as in :meth:`AnisotropicGaussians.truncation_order`), so by Cauchy-Schwarz and
        Parseval the terms ``k > K`` change ``U`` by at most ``a_max^2 M_{K+2} mean_c
        sig_c,max^2 T*_K``, with ``T*_K = max_beta T_K(1, beta)`` (1-homogeneity:
        ``T_K(sig, b) = sig^2 T_K(1, b/sig)``). Dropped columns: a column of order ``k`` has
        ``|feature| <= a_max A_k``, ``A_0 = b_max+ + sig_max / sqrt(2 pi)``, ``A_1 = sig_max``,
        ``A_k = sig_max 0.4335 / sqrt(k (k-1))`` (Cramer), so dropping it moves ``U`` by at most
        ``weight a_max^2 A_k^2``; the smallest are dropped while their sum stays below half the
        budget ``kernel_tol * scale``, the tail taking the other half.
        """
        (a_lo, a_hi), (b_lo, b_hi), (_, r1_hi), (_, r2_hi) = bounds
        a_max2 = max(a_lo * a_lo, a_hi * a_hi)
        sig_tops = np.array([math.hypot(tau * r1_hi, r2_hi) for tau in self.taus])
        b_max = max(abs(b_lo), abs(b_hi))
        scale = a_max2 * float(np.max(sig_tops**2 + b_max**2))
        budget = 0.5 * self.kernel_tol * scale
        order, tail = self._tail_order(a_max2 * float(np.mean(sig_tops**2)), budget)
        k, j = even_pairs(order)
        if order == 0:
            weights = np.full(1, 0.5)
        else:
            weights = circle_weights(k, j, *self.block_moments(order))
        klass = np.repeat([0, 1], k.size)
        k, j, weights = np.tile(k, 2), np.tile(j, 2), np.tile(weights, 2)
        amp = sig_tops[klass] * CRAMER_BOUND / np.sqrt(np.maximum(k * (k - 1.0), 1.0))
        amp = np.where(k == 0, max(b_hi, 0.0) + sig_tops[klass] / _SQRT_2PI, amp)
        bounds_k = weights * a_max2 * amp**2
        ranked = np.argsort(bounds_k, kind="stable")
        n_drop = int(np.searchsorted(np.cumsum(bounds_k[ranked]), budget, side="right"))
        keep = np.sort(ranked[n_drop:])
        keep = keep[weights[keep] > 0.0]
        dropped = max(float(bounds_k.sum() - bounds_k[keep].sum()), 0.0)
        return ReluColumns(
            order, klass[keep], k[keep], j[keep], weights[keep], tail, dropped, int(k.size), scale
        )

    def _tail_order(self, amplitude: float, budget: float) -> tuple[int, float]:
        """Smallest even ``K`` with ``amplitude * M_{K+2} * T*_K <= budget``, and that bound."""
        if math.isinf(self.d) or amplitude == 0.0:
            return 0, 0.0
        k_try = 32
        while True:
            remainders = _remainders(k_try)
            m1, m2 = self.block_moments(k_try + 2)
            orders = np.arange(0, k_try + 1, 2)
            tails = amplitude * np.maximum(m1[orders + 2], m2[orders + 2]) * remainders[orders]
            ok = np.nonzero(tails <= budget)[0]
            if ok.size:
                return int(orders[ok[0]]), float(tails[ok[0]])
            if k_try >= MAX_ORDER:
                raise ValueError(
                    f"the Mehler series of the ReLU kernel does not reach kernel_tol = "
                    f"{self.kernel_tol:g} within {MAX_ORDER} terms at s0 = {self.s0:g}, "
                    f"d = {self.d:g} (a block of dimension 1 or 2 converges slowly); raise "
                    "model.kernel_tol"
                )
            k_try = min(4 * k_try, MAX_ORDER)

    def kernel_features(
        self, points: np.ndarray, scale_points: np.ndarray | None = None
    ) -> KernelFeatures:
        """The kept columns of :meth:`kernel_columns` on ``points`` ``(M, 4)``: ``(M, P)``."""
        columns = self.kernel_columns(_box(points if scale_points is None else scale_points))
        features, _ = self._evaluate(points, columns, gradients=False)
        return KernelFeatures(features, columns.weights)

    def kernel_feature_gradients(
        self, points: np.ndarray, scale_points: np.ndarray | None = None
    ) -> np.ndarray:
        """``d/d(a, b, r1, r2)`` of the columns of :meth:`kernel_features`: ``(M, P, 4)``."""
        columns = self.kernel_columns(_box(points if scale_points is None else scale_points))
        return self._evaluate(points, columns, gradients=True)[1]

    def kernel_features_with_gradients(
        self, points: np.ndarray, scale_points: np.ndarray | None = None
    ) -> tuple[KernelFeatures, np.ndarray]:
        """:meth:`kernel_features` and :meth:`kernel_feature_gradients` in one evaluation."""
        columns = self.kernel_columns(_box(points if scale_points is None else scale_points))
        features, grads = self._evaluate(points, columns, gradients=True)
        return KernelFeatures(features, columns.weights), grads

    def _evaluate(
        self, points: np.ndarray, columns: ReluColumns, gradients: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Features ``f = a F_k(sig, b) N`` ``(M, P)`` and, if asked, their gradients
        ``(F_k N, a F_k,b N, a (F_k,sig tau u N + F_k N_r1), a (F_k,sig v N + F_k N_r2))``
        ``(M, P, 4)`` (else empty), ``N`` the monomial of
        :func:`~meanfield.model.integrals.circle.circle_monomials`.
        """
        a, b, r1, r2 = _coords(points)
        n_points, n_cols = a.shape[0], columns.n_features
        features = np.zeros((n_points, n_cols))
        grads = np.zeros((n_points, n_cols, 4) if gradients else (0, n_cols, 4))
        a2 = a[:, None]
        for c, tau in enumerate(self.taus):
            sel = np.nonzero(columns.klass == c)[0]
            k = columns.k[sel]
            sig, u, v = polar(tau, r1, r2)
            coeffs = ramp_hermite_coefficients(sig, b, columns.order)
            mono, mono_grads = circle_monomials(tau, r1, r2, k, columns.j[sel], gradients)
            f_k = coeffs[:, k]
            features[:, sel] = a2 * f_k * mono
            if not gradients:
                continue
            d_sig, d_b = (s[:, k] for s in ramp_hermite_slopes(sig, b, coeffs))
            grads[:, sel, 0] = f_k * mono
            grads[:, sel, 1] = a2 * d_b * mono
            grads[:, sel, 2] = a2 * (d_sig * tau * u[:, None] * mono + f_k * mono_grads[..., 0])
            grads[:, sel, 3] = a2 * (d_sig * v[:, None] * mono + f_k * mono_grads[..., 1])
        return features, grads

    # ---- geometry, grid and noise ------------------------------------------------------------

    def norm_sq(self, points: np.ndarray) -> np.ndarray:
        """``|theta|^2 = a^2 + b^2 + r1^2 + r2^2``."""
        return np.sum(np.asarray(points, dtype=np.float64) ** 2, axis=-1)

    def log_jacobian(self, points: np.ndarray) -> np.ndarray:
        """``(s0 - 1) log r1 + (d - s0 - 1) log r2``; ``a`` and ``b`` are not reduced."""
        p = np.asarray(points, dtype=np.float64)
        return AnisotropicGaussians.log_jacobian(self, p[:, 2:])

    check_noise = AnisotropicGaussians.check_noise

    def validate(self, grid: Any) -> None:
        """A 4-D grid over ``(a, b, r1, r2)`` with ``r1, r2 >= 0``, whose kernel reaches
        ``kernel_tol``."""
        if grid.ndim != 4:
            raise ValueError(
                f"the ReLU selection model needs a 4-D (a, b, r1, r2) grid, got {grid.ndim}-D"
            )
        if any(lo < 0.0 for lo, _ in grid.bounds[2:]):
            raise ValueError(f"the r1, r2 axes must lie in r >= 0, got {grid.bounds[2:]}")
        self.kernel_columns(grid.bounds)

    # ---- full-space quantities, for the particles ------------------------------------------

    @property
    def dim(self) -> int:
        """Parameter dimension ``D = d + 2`` of a unit: ``theta = (a, b, w)``."""
        return int(self.d) + 2

    sample_data = AnisotropicGaussians.sample_data
    data_pieces = AnisotropicGaussians.data_pieces

    def engine_pieces(self) -> EnginePieces:
        """One-pass SGD on the compiled engine (no pair kernel: GD runs the NumPy steps)."""
        return EnginePieces(unit=self.unit_pieces(), data=self.data_pieces())

    def unit_pieces(self) -> UnitPieces:
        """``a (<w, x> + b)_+`` for the compiled engine: ``a``, ``b``, ``w`` in columns 0, 1,
        ``2..d+1``."""
        d = int(self.d)
        return UnitPieces(RELU, tuple(range(2, d + 2)), (0.0,) * d, b_column=1, c_column=0)

    def unit(self, x: Any, theta: Any, xp: Any) -> Any:
        """``sigma_*(x_b; theta_i) = a_i (<w_i, x_b> + b_i)_+``.

        ``x`` of shape ``(..., n_samples, d)``, ``theta`` of shape ``(..., n_units, d + 2)``;
        returns ``(..., n_samples, n_units)``.
        """
        return self.forward(x, theta, xp)[0]

    def forward(self, x: Any, theta: Any, xp: Any) -> tuple[Any, Any]:
        """Unit outputs ``(R, B, N)`` and the cache ``((z)_+, a 1{z >= 0})`` for :meth:`backward`
        (the right derivative at the kink, as the engine's piecewise-linear slope)."""
        a = xp.expand_dims(theta[..., 0], axis=-2)  # (..., 1, N)
        z = x @ xp.matrix_transpose(theta[..., 2:]) + xp.expand_dims(theta[..., 1], axis=-2)
        ramp = xp.maximum(z, 0.0)
        return a * ramp, (ramp, a * xp.astype(z >= 0.0, z.dtype))

    def backward(self, x: Any, theta: Any, cache: Any, coef: Any, xp: Any) -> Any:
        """``sum_b coef[..., b, i] grad_theta sigma_*(x_b; theta_i)``, shape ``(..., N, d + 2)``:
        ``grad_a = (z)_+``, ``grad_b = a 1{z >= 0}``, ``grad_w = a 1{z >= 0} x``."""
        ramp, slope = cache
        weighted = xp.matrix_transpose(coef * slope)  # (..., N, B)
        along_x = weighted * x if x.shape[-2] == 1 else weighted @ x
        return xp.concat(
            [
                xp.expand_dims(xp.sum(coef * ramp, axis=-2), axis=-1),
                xp.expand_dims(xp.sum(weighted, axis=-1), axis=-1),
                along_x,
            ],
            axis=-1,
        )

    def reduce(self, theta: Any, xp: Any) -> Any:
        """``(a, b, |w_{1..s0}|, |w_{s0+1..d}|)``: shape ``(..., n_units, 4)``."""
        s0 = int(self.s0)
        head, rest = theta[..., 2 : 2 + s0], theta[..., 2 + s0 :]
        return xp.stack(
            [
                theta[..., 0],
                theta[..., 1],
                xp.sqrt(xp.sum(head * head, axis=-1)),
                xp.sqrt(xp.sum(rest * rest, axis=-1)),
            ],
            axis=-1,
        )

    def population_risk(self, theta: Any, order: int | None, backend: Backend) -> Any:
        """Exact ``R(mu_N)`` per replica, ``(R,)``; see :mod:`.relu_selection_pairs`
        (``order`` is ignored: the pair integrals are in closed form)."""
        return relu_selection_pairs.population_risk(self, theta, backend)

    def population_gradient(self, theta: Any, order: int | None, backend: Backend) -> Any:
        """``grad Psi(theta_i; mu_N)``, ``(R, N, d + 2)``; see :mod:`.relu_selection_pairs`."""
        return relu_selection_pairs.population_gradient(self, theta, backend)


def _coords(points: np.ndarray) -> tuple[np.ndarray, ...]:
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 4:
        raise ValueError(f"reduced points must have shape (M, 4), got {p.shape}")
    return p[:, 0], p[:, 1], p[:, 2], p[:, 3]


# ----------------------------------------------------------------------------- the config entry


def _check_relu_bounds(value: Any, ctx: Context) -> str | None:
    """:func:`~meanfield.fields.check_bounds`, and the radii r1, r2 (the last two axes) start
    at r >= 0."""
    text = (
        "an array of 4 pairs [lo, hi] of finite numbers with lo < hi, one per axis "
        "(a, b, r1, r2), with lo >= 0 on the r1 and r2 axes"
    )
    if check_bounds(value, ctx) is not None:
        return text
    return None if all(lo >= 0 for lo, _ in value[2:]) else text


def _build(spec: Any, pde: Any = None) -> ReluSelection:
    return ReluSelection(
        d=float(spec["d"]),
        s0=float(spec["s0"]),
        delta=float(spec["delta"]),
        kernel_tol=float(spec.get("kernel_tol", 1e-8)),
    )


def _law(spec: Any, init: Any) -> ReluSelectionLaw:
    return ReluSelectionLaw(
        kappa=float(init["kappa"]),
        d=finite_init_d(spec, init),
        s0=int(spec["s0"]),
        a_mean=float(init["a_mean"]),
        a_std=float(init["a_std"]),
        b_mean=float(init["b_mean"]),
        b_std=float(init["b_std"]),
    )


RELU_MODEL_KEYS = {
    "d": Field(
        ("integer", "float"),
        "input dimension (inf allowed)",
        check=check_dimension(True),
        convert=to_dimension,
    ),
    "s0": Field(
        ("integer",), "number of informative coordinates (1 <= s0 <= d - 1)", check=check_s0
    ),
    "delta": Field(
        ("float",),
        "class separation Delta",
        check=allowed("a float with 0 < delta < 1", lambda v: 0 < v < 1),
    ),
    "kernel_tol": Field(
        ("float",),
        "error bound of the kernel expansion, relative to max U(q, q) on the grid",
        1e-8,
        allowed("a float with 0 < kernel_tol <= 1e-3", lambda v: 0 < v <= 1e-3),
    ),
}
"""``[model]`` keys of the ReLU models (:mod:`.relu_isotropic` drops ``s0``)."""

RELU_INIT = {
    **MMN_INIT,
    "a_mean": finite_float("mean of the initial output weight a"),
    "a_std": positive_float("standard deviation of the initial output weight a"),
    "b_mean": finite_float("mean of the initial offset b"),
    "b_std": positive_float("standard deviation of the initial offset b"),
}
"""``[init]`` of the ReLU models: independent ``a``, ``b`` normal, ``w ~ N(0, kappa^2 I/d)``."""

RELU_LAW_KEYS = "init.kappa, init.a_mean, init.a_std, init.b_mean, init.b_std"

_KEYS = {
    "model": RELU_MODEL_KEYS,
    "init": RELU_INIT,
    "pde": {
        "bounds": Field(
            ("array",),
            "grid bounds [[lo, hi], ...] over (a, b, r1, r2); r1, r2 >= 0",
            check=_check_relu_bounds,
            convert=float_pairs,
        ),
    },
}

ENTRY = register(
    ModelEntry(
        name="relu_selection",
        doc="MMN's variable selection with ReLU units a relu(<w, x> + b), grid over (a, b, r1, r2)",
        keys=_KEYS,
        build=_build,
        law=_law,
        reduced_dim=4,
        law_keys=RELU_LAW_KEYS,
        tolerance=Tolerance("kernel_tol", KERNEL_TOL_HINT),
        check=check_s0_init_d,
    )
)
