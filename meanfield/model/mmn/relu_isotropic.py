"""MMN's isotropic-Gaussian data learnt by ReLU units with trained output weight and offset.

Data as :mod:`~meanfield.model.mmn.isotropic`: ``y = +-1`` with probability 1/2,
``x | y ~ N(0, tau_y^2 I_d)``, ``tau_+- = 1 +- Delta``. Unit
``sigma_*(x; theta) = a (<w, x> + b)_+`` with ``theta = (a, b, w) in R^{d+2}``, all trained.
Reduced coordinates ``q = (a, b, r)``, ``r = |w|``: a 3-D grid. Given ``y``,
``<w, x> ~ N(0, tau^2 r^2)``, and two units are jointly Gaussian with correlation ``c``, the
cosine of two independent uniform directions in ``R^d``. With the normalised Mehler
coefficients ``F_k`` of ``z -> (sig z + b)_+`` (:mod:`..integrals.ramp`):

.. math::

    V(q) = -\\tfrac{a}{2} (F_0(\\tau_+ r, b) - F_0(\\tau_- r, b)), \\qquad
    U(q, q') = a a' \\tfrac12 \\sum_\\pm \\sum_{k\\,even} E[c^k]
               F_k(\\tau r, b) F_k(\\tau r', b') .

The odd moments of ``c`` vanish, so ``U`` is low rank with the features ``a F_k(tau r, b)``
(per class, even ``k``) and weights ``(1/2) E[c^k]``: exact at finite ``d``; ``d = inf``
keeps ``k = 0``.

This is :class:`~.relu_selection.ReluSelection` with a single block: ``s0 = d`` and
``r2 = 0``, so ``sig = tau r1``, ``alpha = 1``, ``beta = 0`` and ``rho = c1``. Only the
columns ``j = k`` survive (``beta^(k-j) = 0`` otherwise), with weight ``(1/2) E[c1^k]`` and
monomial 1; giving the empty block the moments ``E[c2^0] = 1``, ``E[c2^m] = 0`` (``m > 0``)
sets the other weights to 0 exactly, and the selection model's tail bound
``max(E[c1^m], E[c2^m]) = E[c^m]`` is the isotropic one. So V, U, their gradients, the
truncation (tail bound and ``kernel_tol``) and the closed-form pair integrals of the
particles' population risk are the selection model's (:meth:`ReluIsotropic.as_selection`),
evaluated at ``(a, b, r, 0)``; this module only maps coordinates.

References
----------
S. Mei, A. Montanari, P.-M. Nguyen, "A mean field view of the landscape of two-layer neural
networks", PNAS 115 (2018) E7665-E7671, section "Isotropic Gaussians" (data) and the
variable-selection example (ReLU units with trained ``a`` and ``b``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...backends.arrays import Backend
from ...fields import Context, Field, check_bounds, float_pairs
from ...grid import Grid
from ..base import KernelFeatures, ReducedModel
from ..integrals.hermite import cosine_moments
from ..keys import KERNEL_TOL_HINT, finite_init_d
from ..laws import NormalLaw, ReluSelectionLaw, ScaledChiLaw
from ..pieces import DataPieces
from ..registry import ModelEntry, Tolerance, register
from . import relu_selection_pairs
from .isotropic import IsotropicGaussians
from .relu_selection import (
    RELU_INIT,
    RELU_LAW_KEYS,
    RELU_MODEL_KEYS,
    ReluColumns,
    ReluSelection,
)

__all__ = ["ReluIsotropic", "ReluIsotropicLaw", "ENTRY"]


@dataclass(frozen=True)
class _SingleBlock(ReluSelection):
    """The selection model with ``s0 = d``: the second block is empty (``r2 = 0``).

    Built by :meth:`ReluIsotropic.as_selection` only, after its checks (``s0 <= d - 1`` does
    not hold here, so the selection model's own checks are skipped).
    """

    def __post_init__(self) -> None:
        pass

    def block_moments(self, k_max: int) -> tuple[np.ndarray, np.ndarray]:
        """``E[c^k]`` in ``R^d``, and ``(1, 0, 0, ...)`` for the empty block (``beta = 0``)."""
        return cosine_moments(self.d, k_max), cosine_moments(math.inf, k_max)


@dataclass(frozen=True)
class ReluIsotropic(ReducedModel):
    """ReLU units ``a (<w, x> + b)_+`` on MMN's isotropic data; reduced coordinates ``(a, b, r)``.

    Parameters
    ----------
    d : float
        Dimension of ``x`` and ``w``: an integer ``>= 2``, or ``math.inf`` for the limit kernel.
    delta : float
        Class separation ``Delta`` in ``(0, 1)``: ``tau_+- = 1 +- Delta``.
    kernel_tol : float
        Bound on the kernel error (tail and dropped columns) relative to ``ReluColumns.scale``,
        ``a_max^2 max_tau (tau^2 r_max^2 + b_max^2)`` on the box.
    """

    d: float
    delta: float
    kernel_tol: float = 1e-8

    ndim = 3
    axis_names = ("a", "b", "r")

    @property
    def domain_lower(self) -> tuple[float, ...]:
        """The radii are at least 0 (:attr:`ReducedModel.domain_lower`)."""
        return (-math.inf, -math.inf, 0.0)

    def __post_init__(self) -> None:
        IsotropicGaussians.__post_init__(self)  # the same d and delta checks
        if not self.kernel_tol > 0.0:
            raise ValueError(f"kernel_tol must be positive, got {self.kernel_tol}")

    r_sharp = IsotropicGaussians.r_sharp
    taus = IsotropicGaussians.taus

    def as_selection(self) -> ReluSelection:
        """This model as the 4-D selection model with one block, at points ``(a, b, r, 0)``."""
        return _SingleBlock(self.d, self.d, self.delta, self.kernel_tol)

    # ---- reduced V, U and their gradients ---------------------------------------------------

    def potential(self, points: np.ndarray) -> np.ndarray:
        """``V = -(a/2) (F_0(tau_+ r, b) - F_0(tau_- r, b))``, shape ``(M,)``."""
        return self.as_selection().potential(_embed(points))

    def self_interaction(self, points: np.ndarray) -> np.ndarray:
        """``U(theta, theta) = a^2 (1/2) sum_tau E(tau r Z + b)_+^2``, shape ``(M,)``."""
        return self.as_selection().self_interaction(_embed(points))

    def potential_gradient(self, points: np.ndarray) -> np.ndarray:
        """``(dV/da, dV/db, dV/dr)``, shape ``(M, 3)``."""
        return self.as_selection().potential_gradient(_embed(points))[:, :3]

    def kernel_columns(self, bounds: tuple[tuple[float, float], ...]) -> ReluColumns:
        """The columns kept on the box ``((a_lo, a_hi), (b_lo, b_hi), (r_lo, r_hi))``: class,
        ``k = j`` even, weight ``(1/2) E[c^k]``; bounds as
        :meth:`~.relu_selection.ReluSelection.kernel_columns`."""
        return self.as_selection().kernel_columns((*bounds, (0.0, 0.0)))

    def kernel_features(
        self, points: np.ndarray, scale_points: np.ndarray | None = None
    ) -> KernelFeatures:
        """Features ``a F_k(tau r, b)`` of the kept columns on ``points`` ``(M, 3)``:
        ``(M, P)``; ``scale_points`` (default ``points``) fixes the box."""
        scale = None if scale_points is None else _embed(scale_points)
        return self.as_selection().kernel_features(_embed(points), scale)

    def kernel_feature_gradients(
        self, points: np.ndarray, scale_points: np.ndarray | None = None
    ) -> np.ndarray:
        """``d/d(a, b, r)`` of the columns of :meth:`kernel_features`: ``(M, P, 3)``."""
        scale = None if scale_points is None else _embed(scale_points)
        return self.as_selection().kernel_feature_gradients(_embed(points), scale)[..., :3]

    # ---- geometry, grid and noise ------------------------------------------------------------

    def log_jacobian(self, points: np.ndarray) -> np.ndarray:
        """``(d - 1) log r``: the sphere of radius ``r`` in ``R^d``; ``a``, ``b`` not reduced."""
        return (self.d - 1.0) * np.log(_embed(points)[:, 2])

    check_noise = IsotropicGaussians.check_noise

    def validate(self, grid: Any) -> None:
        """A 3-D grid over ``(a, b, r)`` with ``r >= 0``, whose kernel reaches ``kernel_tol``."""
        if grid.ndim != 3:
            raise ValueError(
                f"the ReLU isotropic model needs a 3-D (a, b, r) grid, got {grid.ndim}-D"
            )
        if grid.bounds[2][0] < 0.0:
            raise ValueError(f"the r axis must lie in r >= 0, got {grid.bounds[2]}")
        self.kernel_columns(grid.bounds)

    # ---- full-space quantities, for the particles ------------------------------------------

    dim = ReluSelection.dim
    sample_data = IsotropicGaussians.sample_data
    unit_pieces = ReluSelection.unit_pieces
    engine_pieces = ReluSelection.engine_pieces
    unit = ReluSelection.unit
    forward = ReluSelection.forward
    backward = ReluSelection.backward

    def data_pieces(self) -> DataPieces:
        """The mixture of :meth:`sample_data`: ``x = tau_y g`` on every input."""
        return self.as_selection().data_pieces()

    def reduce(self, theta: Any, xp: Any) -> Any:
        """``(a, b, |w|)``: shape ``(..., n_units, 3)``."""
        w = theta[..., 2:]
        return xp.stack([theta[..., 0], theta[..., 1], xp.sqrt(xp.sum(w * w, axis=-1))], axis=-1)

    def population_risk(self, theta: Any, order: int | None, backend: Backend) -> Any:
        """Exact ``R(mu_N)`` per replica, ``(R,)``; see :mod:`.relu_selection_pairs`
        (``order`` is ignored: the pair integrals are in closed form)."""
        return relu_selection_pairs.population_risk(self.as_selection(), theta, backend)

    def population_gradient(self, theta: Any, order: int | None, backend: Backend) -> Any:
        """``grad Psi(theta_i; mu_N)``, ``(R, N, d + 2)``; see :mod:`.relu_selection_pairs`."""
        return relu_selection_pairs.population_gradient(self.as_selection(), theta, backend)


def _embed(points: np.ndarray) -> np.ndarray:
    """Reduced points ``(a, b, r)`` ``(M, 3)`` as the selection model's ``(a, b, r, 0)``."""
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3:
        raise ValueError(f"reduced points must have shape (M, 3), got {p.shape}")
    return np.concatenate([p, np.zeros((p.shape[0], 1))], axis=1)


@dataclass(frozen=True)
class ReluIsotropicLaw:
    """Law of ``(a, b, r)`` for ``a ~ N(a_mean, a_std^2)``, ``b ~ N(b_mean, b_std^2)`` and
    ``w ~ N(0, kappa^2 I_d / d)``, independent; units ``theta = (a, b, w)``.

    On a 3-D grid the cell masses are the product of :class:`~.laws.NormalLaw`'s on
    ``(a, b)`` and :class:`~.laws.ScaledChiLaw`'s on ``r``. Units are drawn as by
    :class:`~.laws.ReluSelectionLaw` (only the reduction differs).
    """

    kappa: float
    d: int
    a_mean: float
    a_std: float
    b_mean: float
    b_std: float

    def __post_init__(self) -> None:
        if not (self.kappa > 0 and self.d >= 2):
            raise ValueError(f"need kappa > 0 and d >= 2, got {self.kappa}, {self.d}")
        if not (self.a_std > 0 and self.b_std > 0):
            raise ValueError(f"a_std and b_std must be > 0, got {self.a_std}, {self.b_std}")

    def factors(self) -> tuple[NormalLaw, ScaledChiLaw]:
        """The independent laws of ``(a, b)`` and of ``r``."""
        return (
            NormalLaw((self.a_mean, self.b_mean), (self.a_std, self.b_std)),
            ScaledChiLaw(self.kappa, self.d),
        )

    def cell_masses(self, grid: Grid) -> tuple[np.ndarray, float]:
        """Exact probability of each cell of a 3-D ``(a, b, r)`` grid, and the mass outside
        its box."""
        if grid.ndim != 3:
            raise ValueError(f"the law of (a, b, r) needs a 3-D grid, got {grid.ndim}-D")
        (ab, out_ab), (r, out_r) = (
            law.cell_masses(Grid(grid.bounds[axes], grid.shape[axes]))
            for law, axes in zip(self.factors(), (slice(0, 2), slice(2, 3)), strict=True)
        )
        # P(outside the box) = 1 - (1 - o_ab)(1 - o_r), written without cancellation
        return np.multiply.outer(ab, r), out_ab + out_r - out_ab * out_r

    def box(self, tol: float) -> tuple[tuple[float, float], ...]:
        """Per-axis bounds of a grid that leaves at most ``tol`` of the mass outside."""
        ab, r = self.factors()
        return ab.box(0.5 * tol) + r.box(0.5 * tol)

    def axis_laws(self) -> tuple[Any, ...]:
        """The independent laws of ``a``, ``b`` and ``r``."""
        ab, r = self.factors()
        return (*ab.axis_laws(), r)

    sample = ReluSelectionLaw.sample
    sample_streams = ReluSelectionLaw.sample_streams
    _scale = ReluSelectionLaw._scale


# ---- the config entry ---------------------------------------------------------------------


def _check_bounds(value: Any, ctx: Context) -> str | None:
    """:func:`~meanfield.fields.check_bounds`, and the radius ``r`` (the last axis) >= 0."""
    text = (
        "an array of 3 pairs [lo, hi] of finite numbers with lo < hi, one per axis "
        "(a, b, r), with lo >= 0 on the r axis"
    )
    if check_bounds(value, ctx) is not None:
        return text
    return None if value[2][0] >= 0 else text


def _build(spec: Mapping[str, Any], pde: Mapping[str, Any] | None = None) -> ReluIsotropic:
    return ReluIsotropic(
        d=float(spec["d"]),
        delta=float(spec["delta"]),
        kernel_tol=float(spec.get("kernel_tol", 1e-8)),
    )


def _law(spec: Mapping[str, Any], init: Mapping[str, Any]) -> ReluIsotropicLaw:
    return ReluIsotropicLaw(
        d=finite_init_d(spec, init),
        kappa=float(init["kappa"]),
        a_mean=float(init["a_mean"]),
        a_std=float(init["a_std"]),
        b_mean=float(init["b_mean"]),
        b_std=float(init["b_std"]),
    )


ENTRY = register(
    ModelEntry(
        name="relu_isotropic",
        doc="ReLU units a relu(<w, x> + b) on MMN's isotropic Gaussians, grid over (a, b, r)",
        keys={
            "model": {k: f for k, f in RELU_MODEL_KEYS.items() if k != "s0"},
            "init": RELU_INIT,
            "pde": {
                "bounds": Field(
                    ("array",),
                    "grid bounds [[lo, hi], ...] over (a, b, r); r >= 0",
                    check=_check_bounds,
                    convert=float_pairs,
                )
            },
        },
        build=_build,
        law=_law,
        reduced_dim=3,
        law_keys=RELU_LAW_KEYS,
        tolerance=Tolerance("kernel_tol", KERNEL_TOL_HINT),
    )
)
