"""Models with exact solutions, on the full parameter grid (no reduction): checks of the scheme.

* :class:`QuadraticPotential`: ``V = sum_a (k_a/2)(theta_a - c_a)^2``, ``U = 0``. With noise the
  DD is the Ornstein-Uhlenbeck Fokker-Planck equation; the axes are independent, Gaussian laws
  stay Gaussian, and each axis follows :func:`ou_moments`.
* :class:`LinearUnit`: ``sigma_*(x; theta) = <theta, x>``, ``x ~ N(0, I_D)``: ``V`` linear, ``U``
  the Euclidean inner product (rank ``D``), and closed moment equations
  (:func:`linear_unit_moments`).
* :class:`~meanfield.model.cosine.CosineInteraction` (its own module): a noisy interacting
  model whose Gibbs state is known implicitly.
* :class:`FeatureModel`: any ``V`` and a low-rank ``U = sum_p w_p phi_p(theta) phi_p(theta')``
  given as callables, e.g. a linear ``V`` (pure transport at constant speed).

All of them live on the full parameter space (the grid is ``theta`` itself, ``reduce`` is the
identity), so the PDE and the particles share ``V``, ``U`` and their gradients directly.

References
----------
S. Mei, A. Montanari, P.-M. Nguyen, PNAS 115 (2018), eq. (7) and its noisy Gibbs fixed point.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..fields import INF, Field, allowed, is_finite_number, one_of, vector
from ..rng import Purpose
from .base import FullSpaceModel, KernelFeatures
from .keys import FULL_GRID_AXES, FULL_GRID_SECTIONS, normal_law
from .pieces import ActivationPieces, DataPieces, EnginePieces, SeparablePieces, UnitPieces
from .registry import ModelEntry, register

__all__ = [
    "QuadraticPotential",
    "LinearUnit",
    "FeatureModel",
    "ou_moments",
    "linear_unit_moments",
]


def _axis_names(ndim: int) -> tuple[str, ...]:
    return ("theta",) if ndim == 1 else tuple(f"theta{i}" for i in range(ndim))


def _relaxed_time(rate: float, tau: float) -> float:
    """``int_0^tau e^{-rate s} ds = (1 - e^{-rate tau}) / rate``, continuous at ``rate = 0``."""
    x = rate * tau
    return tau if x == 0.0 else tau * -math.expm1(-x) / x


# ---- Ornstein-Uhlenbeck ---------------------------------------------------------------------


@dataclass(frozen=True)
class QuadraticPotential(FullSpaceModel):
    """``V(theta) = sum_a (k_a/2) (theta_a - c_a)^2``, no interaction, ``ndim`` axes.

    Parameters
    ----------
    stiffness : float or tuple of ``ndim`` floats
        ``k``, one value for every axis or one per axis.
    center : float or tuple of ``ndim`` floats
        ``c``, the minimiser of ``V``.
    ndim : int
        Number of axes.

    Notes
    -----
    The axes are independent, so each follows :func:`ou_moments` with its own ``k_a, c_a``; a
    Gaussian with a diagonal covariance keeps zero covariances between the axes. With the ridge
    term, ``Psi_lambda`` is the same model with ``k_a + lambda`` and ``k_a c_a / (k_a + lambda)``.
    """

    stiffness: float | tuple[float, ...] = 1.0
    center: float | tuple[float, ...] = 0.0
    ndim: int = 1

    def __post_init__(self) -> None:
        if int(self.ndim) < 1:
            raise ValueError(f"ndim must be >= 1, got {self.ndim}")
        for name in ("stiffness", "center"):
            value = getattr(self, name)
            if np.ndim(value) == 0:
                object.__setattr__(self, name, float(value))
                continue
            values = tuple(float(v) for v in np.ravel(value))
            if len(values) != self.ndim:
                raise ValueError(f"{name} needs 1 or ndim = {self.ndim} values, got {len(values)}")
            object.__setattr__(self, name, values)

    @property
    def per_axis(self) -> bool:
        """Whether stiffness or center differ between axes (given as tuples)."""
        return isinstance(self.stiffness, tuple) or isinstance(self.center, tuple)

    @property
    def stiffnesses(self) -> tuple[float, ...]:
        """``k_a`` for every axis."""
        k = self.stiffness
        return k if isinstance(k, tuple) else (k,) * self.ndim

    @property
    def centers(self) -> tuple[float, ...]:
        """``c_a`` for every axis."""
        c = self.center
        return c if isinstance(c, tuple) else (c,) * self.ndim

    @property
    def axis_names(self) -> tuple[str, ...]:  # type: ignore[override]
        return _axis_names(self.ndim)

    @property
    def r_sharp(self) -> float:
        return 0.0

    def potential(self, points: np.ndarray) -> np.ndarray:
        points = np.asarray(points)
        if not self.per_axis:
            return 0.5 * self.stiffness * np.sum((points - self.center) ** 2, axis=-1)
        k, c = np.asarray(self.stiffnesses), np.asarray(self.centers)
        return 0.5 * np.sum(k * (points - c) ** 2, axis=-1)

    def kernel_features(
        self, points: np.ndarray, scale_points: np.ndarray | None = None
    ) -> KernelFeatures:
        return KernelFeatures(np.zeros((np.asarray(points).shape[0], 0)), np.zeros(0))

    def potential_gradient(self, points: np.ndarray) -> np.ndarray:
        """``grad V``, shape ``(n, ndim)`` (NumPy)."""
        points = np.asarray(points, dtype=np.float64)
        return np.asarray(self.stiffnesses) * (points - np.asarray(self.centers))

    def kernel_feature_gradients(
        self, points: np.ndarray, scale_points: np.ndarray | None = None
    ) -> np.ndarray:
        return np.zeros((np.asarray(points).shape[0], 0, self.ndim))

    # ---- particles: the full space is the grid space, and there is no data ------------------

    def engine_pieces(self) -> EnginePieces:
        """No data: every method runs the separable kernel."""
        return EnginePieces(separable=self.separable_pieces())

    def separable_pieces(self) -> SeparablePieces:
        """``V = sum_a (k_a/2) (theta_a - c_a)^2`` as polynomials, no interaction."""
        k, c = np.asarray(self.stiffnesses), np.asarray(self.centers)
        poly = np.zeros((self.ndim, 5))
        poly[:, 0], poly[:, 1], poly[:, 2] = 0.5 * k * c * c, -k * c, 0.5 * k
        return SeparablePieces(poly, np.zeros(self.ndim), np.zeros(self.ndim), self.r_sharp)

    def population_gradient(self, theta: Any, order: Any, backend: Any) -> Any:
        """``grad Psi = grad V = k (theta - c)`` per axis (U = 0), shape of ``theta``."""
        if not self.per_axis:
            return self.stiffness * (theta - self.center)
        columns = [
            k * (theta[..., a] - c)
            for a, (k, c) in enumerate(zip(self.stiffnesses, self.centers, strict=True))
        ]
        return backend.xp.stack(columns, axis=-1)

    def population_risk(self, theta: Any, order: Any, backend: Any) -> Any:
        """``R(mu_N) = 2 <V, mu_N>`` per replica, ``(R,)``."""
        xp = backend.xp
        if not self.per_axis:
            v = 0.5 * self.stiffness * xp.sum((theta - self.center) ** 2, axis=-1)
        else:
            v = sum(
                0.5 * k * (theta[..., a] - c) ** 2
                for a, (k, c) in enumerate(zip(self.stiffnesses, self.centers, strict=True))
            )
        return self.r_sharp + 2.0 * xp.mean(v, axis=-1)


def ou_moments(
    stiffness: Any, center: Any, beta: float, mean0: Any, var0: Any, tau: float
) -> tuple[Any, Any]:
    """Exact mean and variance of one axis of the OU flow at time-changed time ``tau``.

    .. math::

        m(\\tau) = c + (m_0 - c) e^{-2 k \\tau}, \\qquad
        v(\\tau) = v_0 e^{-4 k \\tau} + \\frac{1 - e^{-4 k \\tau}}{k \\beta}
        \\quad (= v_0 + 4 \\tau / \\beta \\text{ at } k = 0).

    Arguments broadcast (NumPy): pass arrays of per-axis values to get every axis at once;
    scalars give floats.
    """
    stiffness = np.asarray(stiffness, dtype=np.float64)
    center = np.asarray(center, dtype=np.float64)
    decay = np.exp(-2.0 * stiffness * tau)
    if math.isinf(beta):
        noise = 0.0 * decay
    else:
        rate = 4.0 * stiffness * tau
        safe = np.where(rate == 0.0, 1.0, rate)
        noise = (4.0 * tau / beta) * np.where(rate == 0.0, 1.0, -np.expm1(-safe) / safe)
    mean = center + (np.asarray(mean0) - center) * decay
    var = np.asarray(var0) * decay**2 + noise
    if mean.ndim == 0 and var.ndim == 0:
        return float(mean), float(var)
    return mean, var


# ---- the linear unit --------------------------------------------------------------------------


@dataclass(frozen=True)
class LinearUnit(FullSpaceModel):
    """A linear unit learning a linear teacher: ``sigma_*(x; theta) = <theta, x>``.

    Data ``x ~ N(0, I_D)``, ``y = <theta_star, x> + e`` with independent label noise
    ``e ~ N(0, label_var)``. Then

    .. math::

        V(\\theta) = -\\langle \\theta_*, \\theta \\rangle, \\qquad
        U(\\theta, \\theta') = \\langle \\theta, \\theta' \\rangle, \\qquad
        R(\\rho) = s^2 + |m - \\theta_*|^2,

    with ``m`` the mean of ``rho`` and ``s^2 = label_var``: a rank-``D`` kernel (the features
    are the coordinates, weight 1). ``grad Psi_lambda = m - theta_* + lambda theta`` is affine,
    so mean and covariance solve closed equations (:func:`linear_unit_moments`), Gaussian laws
    stay Gaussian, and a noiseless run with ``lambda = 0`` translates the initial law.

    Parameters
    ----------
    theta_star : tuple of float
        The teacher; ``D = len(theta_star)`` (1 to 3 for the PDE, any for the particles).
    label_var : float
        Variance ``s^2 >= 0`` of the label noise.
    """

    theta_star: tuple[float, ...]
    label_var: float = 0.0

    def __post_init__(self) -> None:
        star = tuple(float(v) for v in np.ravel(self.theta_star))
        if not star:
            raise ValueError("theta_star needs at least one coordinate")
        if not self.label_var >= 0.0:
            raise ValueError(f"label_var must be >= 0, got {self.label_var}")
        object.__setattr__(self, "theta_star", star)
        object.__setattr__(self, "label_var", float(self.label_var))

    @property
    def ndim(self) -> int:  # type: ignore[override]
        return len(self.theta_star)

    @property
    def axis_names(self) -> tuple[str, ...]:  # type: ignore[override]
        return _axis_names(self.ndim)

    @property
    def r_sharp(self) -> float:
        """``E[y^2] = |theta_star|^2 + s^2``."""
        return float(np.sum(np.square(self.theta_star))) + self.label_var

    def potential(self, points: np.ndarray) -> np.ndarray:
        return -np.asarray(points, dtype=np.float64) @ np.asarray(self.theta_star)

    def kernel_features(
        self, points: np.ndarray, scale_points: np.ndarray | None = None
    ) -> KernelFeatures:
        features = np.array(points, dtype=np.float64).reshape(-1, self.ndim)
        return KernelFeatures(features, np.ones(self.ndim))

    def kernel_feature_gradients(
        self, points: np.ndarray, scale_points: np.ndarray | None = None
    ) -> np.ndarray:
        """``grad theta_p = e_p``: ``(n, D, D)``."""
        n = np.asarray(points).shape[0]
        return np.broadcast_to(np.eye(self.ndim), (n, self.ndim, self.ndim)).copy()

    def potential_gradient(self, points: np.ndarray) -> np.ndarray:
        """``grad V = -theta_star``: ``(n, D)``."""
        n = np.asarray(points).shape[0]
        return np.broadcast_to(-np.asarray(self.theta_star), (n, self.ndim)).copy()

    # ---- particles (xp-generic: R replicas, B samples, N units) --------------------------------

    def population_gradient(self, theta: Any, order: Any, backend: Any) -> Any:
        """``grad Psi(theta_i; mu_N) = <theta, mu_N> - theta_star``, ``(R, N, D)``."""
        xp = backend.xp
        star = backend.asarray(np.asarray(self.theta_star), theta.dtype)
        mean = xp.mean(theta, axis=-2, keepdims=True)
        return xp.broadcast_to(mean - star, theta.shape)

    def population_risk(self, theta: Any, order: Any, backend: Any) -> Any:
        """``R(mu_N) = s^2 + |<theta, mu_N> - theta_star|^2``, ``(R,)``."""
        xp = backend.xp
        star = backend.asarray(np.asarray(self.theta_star), theta.dtype)
        return self.label_var + xp.sum((xp.mean(theta, axis=-2) - star) ** 2, axis=-1)

    def sample_data(self, rng: Any, counter: int, batch: int, xp: Any) -> tuple[Any, Any]:
        """Fresh samples for every stream: ``x`` ``(R, B, D)`` (purpose 0), ``y`` ``(R, B)``.

        The label noise (when ``label_var > 0``) uses purpose 1.
        """
        x = rng.normal(counter, (batch, self.ndim), purpose=Purpose.DATA)
        y = sum(s * x[..., a] for a, s in enumerate(self.theta_star))
        if self.label_var > 0.0:
            y = y + math.sqrt(self.label_var) * rng.normal(counter, (batch,), purpose=Purpose.LABEL)
        return x, y

    def engine_pieces(self) -> EnginePieces:
        """SGD on the model's own draws; population GD by the separable kernel."""
        return EnginePieces(
            unit=self.unit_pieces(), data=self.data_pieces(), separable=self.separable_pieces()
        )

    def unit_pieces(self) -> UnitPieces:
        """The linear unit ``<theta, x>``, for the compiled engine."""
        return UnitPieces.dense(ActivationPieces("linear"), self.ndim)

    def data_pieces(self) -> DataPieces:
        """Few inputs per sample: the engine takes :meth:`sample_data`'s arrays."""
        return DataPieces("host")

    def separable_pieces(self) -> SeparablePieces:
        """``V = -<theta_*, theta>``, ``U = <theta, theta'>``: sums over the axes."""
        poly = np.zeros((self.ndim, 5))
        poly[:, 1] = -np.asarray(self.theta_star)
        return SeparablePieces(poly, np.ones(self.ndim), np.zeros(self.ndim), self.r_sharp)

    def forward(self, x: Any, theta: Any, xp: Any) -> tuple[Any, Any]:
        """Unit outputs ``<theta_i, x_b>``, ``(R, B, N)``; no cache (the gradient is ``x``)."""
        return x @ xp.matrix_transpose(theta), None

    def backward(self, x: Any, theta: Any, cache: Any, coef: Any, xp: Any) -> Any:
        """``sum_b coef[r, b, i] x_b``, ``(R, N, D)``; ``coef`` of shape ``(R, B, 1 or N)``."""
        return xp.broadcast_to(xp.matrix_transpose(coef) @ x, theta.shape)


def linear_unit_moments(
    theta_star: Sequence[float], l2: float, beta: float, m0: Any, C0: Any, tau: float
) -> tuple[np.ndarray, np.ndarray]:
    """Exact mean and covariance of the linear unit's DD at time-changed time ``tau``.

    With ``grad Psi_lambda = m - theta_* + lambda theta`` the DD moves a unit by
    ``d theta = -2 (m - theta_* + lambda theta) d tau + 2 beta^{-1/2} dW``, so

    .. math::

        \\frac{dm}{d\\tau} = -2 ((1 + \\lambda) m - \\theta_*), \\qquad
        \\frac{dC}{d\\tau} = -4 \\lambda C + \\frac{4}{\\beta} I,

    solved by ``m = m_inf + (m_0 - m_inf) e^{-2 (1 + lambda) tau}``, ``m_inf = theta_* /
    (1 + lambda)``, and ``C = C_0 e^{-4 lambda tau} + (4/beta) int_0^tau e^{-4 lambda s} ds I``
    (``= C_0 + 4 tau / beta I`` at ``lambda = 0``). The same equations hold exactly for the
    empirical mean and covariance of population-GD particles (noiseless).

    Parameters
    ----------
    theta_star : sequence of D floats
    l2 : float
        ``lambda``.
    beta : float
        Inverse temperature (``inf``: noiseless).
    m0 : array of shape ``(D,)``
    C0 : array of shape ``(D, D)``
    tau : float

    Returns
    -------
    mean : array of shape ``(D,)``
    cov : array of shape ``(D, D)``
    """
    star = np.asarray(theta_star, dtype=np.float64)
    m0 = np.asarray(m0, dtype=np.float64)
    C0 = np.asarray(C0, dtype=np.float64)
    m_inf = star / (1.0 + l2)
    mean = m_inf + (m0 - m_inf) * math.exp(-2.0 * (1.0 + l2) * tau)
    cov = C0 * math.exp(-4.0 * l2 * tau)
    if math.isfinite(beta):
        cov = cov + (4.0 / beta) * _relaxed_time(4.0 * l2, tau) * np.eye(star.size)
    return mean, cov


# ---- an interacting noisy model with a self-consistent Gibbs state ----------------------------


@dataclass(frozen=True)
class FeatureModel(FullSpaceModel):
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

    def kernel_features(
        self, points: np.ndarray, scale_points: np.ndarray | None = None
    ) -> KernelFeatures:
        points = np.asarray(points)
        cols = [np.asarray(f(points), dtype=np.float64) for f in self.feature_fns]
        features = np.stack(cols, axis=1) if cols else np.zeros((points.shape[0], 0))
        return KernelFeatures(features, np.asarray(self.weights, dtype=np.float64))

    def kernel_feature_gradients(
        self, points: np.ndarray, scale_points: np.ndarray | None = None
    ) -> np.ndarray:
        """``grad phi_p`` at the points: ``(n, P, ndim)``."""
        points = np.asarray(points)
        cols = [
            np.asarray(g(points), dtype=np.float64).reshape(points.shape)
            for g in self.feature_grad_fns
        ]
        return np.stack(cols, axis=1) if cols else np.zeros((points.shape[0], 0, self.ndim))

    def potential_gradient(self, points: np.ndarray) -> np.ndarray:
        points = np.asarray(points)
        return np.asarray(self.potential_grad_fn(points), dtype=np.float64).reshape(points.shape)

    # ---- particles in the full (= grid) space ----------------------------------------------

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


# ----------------------------------------------------------------------------- config entries


def _build_quadratic(spec: Any, pde: Any = None) -> QuadraticPotential:
    return QuadraticPotential(
        stiffness=spec.get("stiffness", 1.0),
        center=spec.get("center", 0.0),
        ndim=int(spec.get("ndim", 1)),
    )


def _build_linear_unit(spec: Any, pde: Any = None) -> LinearUnit:
    return LinearUnit(
        theta_star=tuple(spec["theta_star"]), label_var=float(spec.get("label_var", 0.0))
    )


QUADRATIC_ENTRY = register(
    ModelEntry(
        name="quadratic",
        doc="V = stiffness/2 |theta - center|^2, no interaction: the Ornstein-Uhlenbeck check",
        keys={
            "model": {
                "ndim": Field(("integer",), "number of axes of theta", 1, one_of(*FULL_GRID_AXES)),
                "stiffness": vector(0.0, "V = stiffness/2 (theta - center)^2, per axis", 1.0),
                "center": vector(None, "minimiser of V", 0.0),
            },
            **FULL_GRID_SECTIONS,
        },
        build=_build_quadratic,
        law=normal_law,
        reduced_dim=lambda spec: spec["ndim"],
    )
)

LINEAR_UNIT_ENTRY = register(
    ModelEntry(
        name="linear_unit",
        doc="a linear unit <theta, x> learning a linear teacher: closed moment equations",
        keys={
            "model": {
                "theta_star": Field(
                    ("array",),
                    "teacher theta_*: y = <theta_*, x> + noise, x ~ N(0, I_D), D = 1 to 4 entries",
                    check=allowed(
                        "an array of 1 to 4 finite floats",
                        lambda v: (
                            1 <= len(v) <= max(FULL_GRID_AXES) and all(map(is_finite_number, v))
                        ),
                    ),
                    convert=lambda v, ctx: tuple(float(x) for x in v),
                ),
                "label_var": Field(
                    ("float",),
                    "variance of the label noise",
                    0.0,
                    allowed("a finite float >= 0", lambda v: 0 <= v < INF),
                ),
            },
            **FULL_GRID_SECTIONS,
        },
        build=_build_linear_unit,
        law=normal_law,
        reduced_dim=lambda spec: len(spec["theta_star"]),
    )
)
