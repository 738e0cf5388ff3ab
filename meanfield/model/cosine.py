"""A noisy interacting model whose Gibbs state is known implicitly: a check of the scheme.

:class:`CosineInteraction` has a confining polynomial ``V`` and ``U = J cos(theta - theta')`` per
axis (positive semi-definite). With noise its Gibbs state is fixed by two self-consistent order
parameters, found here by 1-D quadrature and Newton's method, independently of the PDE
(:meth:`CosineInteraction.gibbs_state`).

References
----------
S. Mei, A. Montanari, P.-M. Nguyen, PNAS 115 (2018), the noisy Gibbs fixed point of eq. (7).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..fields import Field, allowed, finite_float, one_of
from ..grid import Grid
from .base import FullSpaceModel, KernelFeatures
from .keys import FULL_GRID_AXES, FULL_GRID_SECTIONS, normal_law
from .pieces import EnginePieces, SeparablePieces
from .registry import ModelEntry, register
from .solvable import _axis_names

__all__ = ["CosineInteraction"]


#: the Gibbs quadrature line ends where ``beta (W - min W)`` exceeds this plus ``2 beta J``:
#: the density there is below ``e^{-80}`` of its peak whatever the order parameters
GIBBS_TAIL = 80.0


@dataclass(frozen=True)
class CosineInteraction(FullSpaceModel):
    """A polynomial confinement and a cosine interaction, axis by axis.

    .. math::

        V(\\theta) = \\sum_a \\tfrac{q}{4} \\theta_a^4 + \\tfrac{k}{2} \\theta_a^2 + b\\,\\theta_a,
        \\qquad
        U(\\theta, \\theta') = J \\sum_a \\cos(\\theta_a - \\theta'_a)
                            = J \\sum_a (\\cos\\theta_a \\cos\\theta'_a
                                        + \\sin\\theta_a \\sin\\theta'_a),

    a rank-``2 ndim`` positive semi-definite kernel for ``J >= 0`` (``q > 0``, ``k < 0`` is a
    double well). With noise the free energy is strictly convex, and its unique minimiser, the
    Gibbs state, is a product over the axes of the same 1-D law

    .. math::

        \\rho_\\infty(\\theta) \\propto \\exp\\!\\big(-\\beta\\,(V(\\theta)
            + J (m_c \\cos\\theta + m_s \\sin\\theta) + \\tfrac{\\lambda}{2} \\theta^2)\\big),
        \\qquad (m_c, m_s) = \\langle (\\cos, \\sin), \\rho_\\infty \\rangle,

    whose order parameters :meth:`gibbs_order_parameters` finds by Newton's method on 1-D
    quadrature over the whole line (no PDE involved).

    Parameters
    ----------
    coupling : float
        ``J >= 0``.
    quartic, quadratic, tilt : float
        ``q >= 0``, ``k``, ``b``.
    ndim : int
        Number of axes (1 to 3 for the PDE).
    sharp : float
        The constant ``R_#`` of the risk (an offset, there is no data).
    """

    coupling: float = 1.0
    quartic: float = 0.0
    quadratic: float = 1.0
    tilt: float = 0.0
    ndim: int = 1
    sharp: float = 0.0

    def __post_init__(self) -> None:
        if not self.coupling >= 0.0:
            raise ValueError(
                f"coupling must be >= 0 (U positive semi-definite), got {self.coupling}"
            )
        if not self.quartic >= 0.0:
            raise ValueError(f"quartic must be >= 0, got {self.quartic}")
        if int(self.ndim) < 1:
            raise ValueError(f"ndim must be >= 1, got {self.ndim}")

    @property
    def axis_names(self) -> tuple[str, ...]:  # type: ignore[override]
        return _axis_names(self.ndim)

    @property
    def r_sharp(self) -> float:
        return self.sharp

    def _v(self, x: Any) -> Any:
        """``v(x) = q x^4/4 + k x^2/2 + b x`` elementwise (any array namespace)."""
        x2 = x * x
        return (0.25 * self.quartic * x2 + 0.5 * self.quadratic) * x2 + self.tilt * x

    def _dv(self, x: Any) -> Any:
        return (self.quartic * x * x + self.quadratic) * x + self.tilt

    def potential(self, points: np.ndarray) -> np.ndarray:
        return np.sum(self._v(np.asarray(points, dtype=np.float64)), axis=-1)

    def engine_pieces(self) -> EnginePieces:
        """No data: every method runs the separable kernel."""
        return EnginePieces(separable=self.separable_pieces())

    def separable_pieces(self) -> SeparablePieces:
        """``V = sum_a (q/4 x^4 + k/2 x^2 + b x)``, ``U = J sum_a cos(x_a - x'_a)``."""
        poly = np.zeros((self.ndim, 5))
        poly[:, 1], poly[:, 2], poly[:, 4] = self.tilt, 0.5 * self.quadratic, 0.25 * self.quartic
        return SeparablePieces(
            poly, np.zeros(self.ndim), np.full(self.ndim, self.coupling), self.r_sharp
        )

    def kernel_features(
        self, points: np.ndarray, scale_points: np.ndarray | None = None
    ) -> KernelFeatures:
        """Columns ``cos theta_0, sin theta_0, cos theta_1, ...``, all of weight ``J``."""
        points = np.asarray(points, dtype=np.float64)
        features = np.stack([np.cos(points), np.sin(points)], axis=-1).reshape(len(points), -1)
        return KernelFeatures(features, np.full(2 * self.ndim, float(self.coupling)))

    def kernel_feature_gradients(
        self, points: np.ndarray, scale_points: np.ndarray | None = None
    ) -> np.ndarray:
        """Gradients of the columns of :meth:`kernel_features`: ``(n, 2 ndim, ndim)``."""
        points = np.asarray(points, dtype=np.float64)
        out = np.zeros((len(points), 2 * self.ndim, self.ndim))
        for a in range(self.ndim):
            out[:, 2 * a, a] = -np.sin(points[:, a])
            out[:, 2 * a + 1, a] = np.cos(points[:, a])
        return out

    def potential_gradient(self, points: np.ndarray) -> np.ndarray:
        """``grad V``, ``(n, ndim)``."""
        return self._dv(np.asarray(points, dtype=np.float64))

    # ---- particles (xp-generic: R replicas, N units) -----------------------------------------

    def population_gradient(self, theta: Any, order: Any, backend: Any) -> Any:
        """``v'(theta_a) + J (m_s cos theta_a - m_c sin theta_a)`` with the order parameters of
        ``mu_N``, ``(R, N, ndim)``."""
        xp = backend.xp
        cos, sin = xp.cos(theta), xp.sin(theta)
        m_c = xp.mean(cos, axis=-2, keepdims=True)
        m_s = xp.mean(sin, axis=-2, keepdims=True)
        return self._dv(theta) + self.coupling * (m_s * cos - m_c * sin)

    def population_risk(self, theta: Any, order: Any, backend: Any) -> Any:
        """``R(mu_N) = R_# + 2 <V, mu_N> + J sum_a (m_c^2 + m_s^2)``, ``(R,)``."""
        xp = backend.xp
        potential = xp.mean(xp.sum(self._v(theta), axis=-1), axis=-1)
        m_c = xp.mean(xp.cos(theta), axis=-2)
        m_s = xp.mean(xp.sin(theta), axis=-2)
        return self.sharp + 2.0 * potential + self.coupling * xp.sum(m_c**2 + m_s**2, axis=-1)

    # ---- the Gibbs state ---------------------------------------------------------------------

    def _log_weight(self, x: np.ndarray, order: np.ndarray, beta: float, l2: float) -> np.ndarray:
        """``-beta (v + J (m_c cos + m_s sin) + lambda x^2 / 2)`` on 1-D points."""
        pair = order[0] * np.cos(x) + order[1] * np.sin(x)
        return -beta * (self._v(x) + 0.5 * l2 * x * x + self.coupling * pair)

    def _gibbs_line(self, beta: float, l2: float, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
        """Trapezoid nodes and weights on ``[-L, L]``, ``L`` doubled until the tails vanish."""
        if not (math.isfinite(beta) and beta > 0.0):
            raise ValueError(f"the Gibbs state needs a finite beta > 0, got {beta}")
        if not (self.quartic > 0.0 or self.quadratic + l2 > 0.0):
            raise ValueError("V + lambda theta^2 / 2 does not confine: no Gibbs state")
        half = 1.0
        for _ in range(64):
            x = np.linspace(-half, half, n_nodes)
            energy = beta * (self._v(x) + 0.5 * l2 * x * x)
            energy -= energy.min()
            if min(energy[0], energy[-1]) > GIBBS_TAIL + 2.0 * beta * self.coupling:
                weights = np.full(n_nodes, x[1] - x[0])
                weights[[0, -1]] *= 0.5
                return x, weights
            half *= 2.0
        raise ValueError("could not find a line holding the Gibbs state")

    def _gibbs_solution(
        self, beta: float, l2: float, n_nodes: int
    ) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
        """Order parameters, ``log Z`` and the quadrature line."""
        x, w = self._gibbs_line(beta, l2, n_nodes)
        phi = np.stack([np.cos(x), np.sin(x)])  # (2, n_nodes)

        def moments(order: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
            logs = self._log_weight(x, order, beta, l2)
            top = logs.max()
            p = w * np.exp(logs - top)
            total = p.sum()
            p /= total
            mean = phi @ p
            return mean, (phi * p) @ phi.T - np.outer(mean, mean), top + math.log(total)

        order = np.zeros(2)
        scale = beta * self.coupling
        for _ in range(100):
            mean, cov, log_z = moments(order)
            residual = order - mean
            if scale == 0.0 or np.max(np.abs(residual)) <= 1e-14:
                return mean if scale == 0.0 else order, log_z, x, w
            # Newton on the strictly convex Phi(m) = |m|^2/2 + log Z(m) / (beta J): gradient
            # m - <phi>_m, Hessian I + beta J Cov_m(phi) >= I; halve the step until Phi drops
            step = np.linalg.solve(np.eye(2) + scale * cov, residual)
            merit = 0.5 * order @ order + log_z / scale
            slack = 1e-13 * (1.0 + abs(merit))  # round-off of Phi: steps near the root pass
            for _ in range(60):
                trial = order - step
                if 0.5 * trial @ trial + moments(trial)[2] / scale <= merit + slack:
                    break
                step = 0.5 * step
            order = trial
        raise RuntimeError("the Gibbs self-consistency did not converge")

    def gibbs_order_parameters(
        self, beta: float, l2: float = 0.0, n_nodes: int = 8001
    ) -> np.ndarray:
        """Self-consistent ``(m_c, m_s)`` of the Gibbs state (the same on every axis).

        Solved by Newton's method on the trapezoid rule with ``n_nodes`` nodes on a line long
        enough that the density at its ends is below ``e^{-80}`` of its peak: spectrally accurate
        for these analytic, fast-decaying integrands.
        """
        return self._gibbs_solution(beta, l2, n_nodes)[0]

    def gibbs_state(
        self, grid_or_points: Grid | np.ndarray, beta: float, l2: float = 0.0, n_nodes: int = 8001
    ) -> np.ndarray:
        """The Gibbs state ``exp(-beta Psi_lambda[rho_inf]) / Z`` on a grid or at points.

        Parameters
        ----------
        grid_or_points : Grid or array of shape ``(n, ndim)``
            On a :class:`~meanfield.grid.Grid`: the values at the cell centres, normalised to
            unit discrete mass (``sum(rho) * cell_volume = 1``), which is what the
            Scharfetter-Gummel scheme's discrete fixed point equals up to the quadrature error of
            the order parameters. At points: the density on the whole space.
        beta, l2 : float
            Inverse temperature and ridge coefficient of the run.

        Returns
        -------
        array of shape ``grid.shape`` or ``(n,)``
        """
        order, log_z, _, _ = self._gibbs_solution(beta, l2, n_nodes)
        if isinstance(grid_or_points, Grid):
            grid = grid_or_points
            if grid.ndim != self.ndim:
                raise ValueError(f"the grid has {grid.ndim} axes, the model {self.ndim}")
            out = np.ones(())
            for axis in range(grid.ndim):
                p = np.exp(self._log_weight(grid.centres(axis), order, beta, l2) - log_z)
                out = np.multiply.outer(out, p / (p.sum() * grid.spacing[axis]))
            return out
        points = np.asarray(grid_or_points, dtype=np.float64).reshape(-1, self.ndim)
        logs = sum(self._log_weight(points[:, a], order, beta, l2) for a in range(self.ndim))
        return np.exp(logs - self.ndim * log_z)

    def gibbs_mass_outside(
        self,
        bounds: Sequence[tuple[float, float]],
        beta: float,
        l2: float = 0.0,
        n_nodes: int = 8001,
    ) -> float:
        """Mass of the Gibbs state outside the box ``bounds`` (to check a grid's walls)."""
        order, log_z, x, w = self._gibbs_solution(beta, l2, n_nodes)
        p = w * np.exp(self._log_weight(x, order, beta, l2) - log_z)
        log_inside = 0.0
        for lo, hi in bounds:
            outside = float(np.sum(p[(x < lo) | (x > hi)]))
            log_inside += math.log1p(-min(outside, 1.0 - 1e-16))
        return -math.expm1(log_inside)


# ----------------------------------------------------------------------------- the config entry


def _build(spec: Any, pde: Any = None) -> CosineInteraction:
    return CosineInteraction(
        coupling=float(spec.get("coupling", 1.0)),
        quartic=float(spec.get("quartic", 0.0)),
        quadratic=float(spec.get("quadratic", 1.0)),
        tilt=float(spec.get("tilt", 0.0)),
        ndim=int(spec.get("ndim", 1)),
    )


_NON_NEGATIVE = allowed("a finite float >= 0", lambda v: 0 <= v < math.inf)

ENTRY = register(
    ModelEntry(
        name="cosine_interaction",
        doc="polynomial V and U = J cos(theta - theta') per axis: a noisy Gibbs state check",
        keys={
            "model": {
                "ndim": Field(("integer",), "number of axes of theta", 1, one_of(*FULL_GRID_AXES)),
                "coupling": Field(
                    ("float",), "J in U = J sum_a cos(theta_a - theta'_a)", 1.0, _NON_NEGATIVE
                ),
                "quartic": Field(
                    ("float",),
                    "q in V = sum_a q/4 theta^4 + k/2 theta^2 + b theta",
                    0.0,
                    _NON_NEGATIVE,
                ),
                "quadratic": finite_float("k in V", 1.0),
                "tilt": finite_float("b in V", 0.0),
            },
            **FULL_GRID_SECTIONS,
        },
        build=_build,
        law=normal_law,
        reduced_dim=lambda spec: spec["ndim"],
    )
)
