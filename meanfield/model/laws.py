"""Initial laws: exact cell masses on a grid for the PDE, samples in full space for particles."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from ..grid import Grid
from ..rng import Purpose

__all__ = [
    "ScaledChiLaw",
    "ScaledChiPairLaw",
    "NormalLaw",
    "ReluSelectionLaw",
    "initial_density",
    "GridTooSmallError",
]

#: purpose tag of the counter-based generator for initial draws
INIT_PURPOSE = Purpose.INIT

#: probability mass a grid may leave outside its box before the run is refused
OUTSIDE_MASS_TOL = 1e-12


class GridTooSmallError(ValueError):
    """The grid cannot hold the initial law."""


@dataclass(frozen=True)
class ScaledChiLaw:
    """Law of ``r = |w|`` for ``w ~ N(0, kappa^2 I_d / d)``: ``d r^2 / kappa^2 ~ chi^2_d``.

    Parameters
    ----------
    kappa : float
        Scale, ``> 0``.
    d : int
        Dimension of ``w``.
    """

    kappa: float
    d: int

    def cdf(self, r: np.ndarray) -> np.ndarray:
        """``P(|w| <= r)``; :meth:`sf` gives the upper tail without cancellation."""
        return special.gammainc(0.5 * self.d, 0.5 * self.d * (np.asarray(r) / self.kappa) ** 2)

    def sf(self, r: np.ndarray) -> np.ndarray:
        return special.gammaincc(0.5 * self.d, 0.5 * self.d * (np.asarray(r) / self.kappa) ** 2)

    def cell_masses(self, grid: Grid) -> tuple[np.ndarray, float]:
        """Exact probability of each cell, and the mass outside ``[lo, hi]``."""
        edges = grid.edges(0)
        lower, upper = self.cdf(edges), self.sf(edges)
        # use whichever of cdf / sf is smaller at each edge, so no mass is lost to cancellation
        masses = np.where(edges[1:] <= self.median(), np.diff(lower), -np.diff(upper))
        outside = float(lower[0] + upper[-1])
        return masses, outside

    def median(self) -> float:
        return float(self.kappa * math.sqrt(special.gammaincinv(0.5 * self.d, 0.5) * 2 / self.d))

    def interval(self, tail: float) -> tuple[float, float]:
        """``(lo, hi)`` with at most ``tail`` of the mass below ``lo`` and ``tail`` above ``hi``."""
        scale = self.kappa * math.sqrt(2.0 / self.d)
        return (
            float(scale * math.sqrt(special.gammaincinv(0.5 * self.d, tail))),
            float(scale * math.sqrt(special.gammainccinv(0.5 * self.d, tail))),
        )

    def box(self, tol: float) -> tuple[tuple[float, float], ...]:
        """Per-axis bounds of a grid that leaves at most ``tol`` of the mass outside."""
        return (self.interval(0.5 * tol),)

    def from_score(self, z: np.ndarray) -> np.ndarray:
        """The ``r`` whose CDF equals ``Phi(z)``: the quantile at normal score ``z``.

        The lower tail (``z <= 0``) inverts the lower incomplete gamma function at ``Phi(z)``,
        the upper one the upper at ``Phi(-z)``, so neither tail loses digits to ``1 - u``.
        """
        z = np.asarray(z, dtype=np.float64)
        a, scale = 0.5 * self.d, self.kappa * math.sqrt(2.0 / self.d)
        lower = special.gammaincinv(a, special.ndtr(np.minimum(z, 0.0)))
        upper = special.gammainccinv(a, special.ndtr(-np.maximum(z, 0.0)))
        return scale * np.sqrt(np.where(z <= 0.0, lower, upper))

    def axis_laws(self) -> tuple[ScaledChiLaw]:
        """The independent one-axis laws of the reduced coordinates: ``r`` alone."""
        return (self,)

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        """Draw ``w``, shape ``(*shape, d)`` (NumPy)."""
        return rng.standard_normal((*shape, self.d)) * (self.kappa / math.sqrt(self.d))

    def sample_streams(self, rng: Any, n: int) -> Any:
        """``n`` i.i.d. units per stream of a counter-based generator: ``(R, n, d)``."""
        return rng.normal(0, (n, self.d), purpose=INIT_PURPOSE) * (self.kappa / math.sqrt(self.d))


@dataclass(frozen=True)
class ScaledChiPairLaw:
    """Law of ``(r1, r2) = (|w_{1..s0}|, |w_{s0+1..d}|)`` for ``w ~ N(0, kappa^2 I_d / d)``.

    ``r1`` and ``r2`` are independent, ``d r1^2 / kappa^2 ~ chi^2_s0`` and
    ``d r2^2 / kappa^2 ~ chi^2_{d-s0}``: each is a :class:`ScaledChiLaw` with its own
    dimension and scale ``kappa sqrt(n / d)``. Units are drawn exactly as by
    ``ScaledChiLaw(kappa, d)`` (the same ``w``, only the reduction differs).

    Parameters
    ----------
    kappa : float
        Scale, ``> 0``.
    d : int
        Dimension of ``w``.
    s0 : int
        Size of the first block, ``1 <= s0 <= d - 1``.
    """

    kappa: float
    d: int
    s0: int

    def __post_init__(self) -> None:
        if not 1 <= self.s0 <= self.d - 1:
            raise ValueError(f"s0 must satisfy 1 <= s0 <= d - 1, got s0 = {self.s0}, d = {self.d}")

    @property
    def marginals(self) -> tuple[ScaledChiLaw, ScaledChiLaw]:
        """The laws of ``r1`` and ``r2``."""
        first, rest = self.s0, self.d - self.s0
        return (
            ScaledChiLaw(self.kappa * math.sqrt(first / self.d), first),
            ScaledChiLaw(self.kappa * math.sqrt(rest / self.d), rest),
        )

    def box(self, tol: float) -> tuple[tuple[float, float], ...]:
        """Per-axis bounds of a grid that leaves at most ``tol`` of the mass outside."""
        return tuple(law.interval(0.25 * tol) for law in self.marginals)

    def axis_laws(self) -> tuple[ScaledChiLaw, ScaledChiLaw]:
        """The independent laws of ``r1`` and ``r2``."""
        return self.marginals

    def cell_masses(self, grid: Grid) -> tuple[np.ndarray, float]:
        """Exact probability of each cell of a 2-D grid, and the mass outside its box."""
        if grid.ndim != 2:
            raise ValueError(f"the law of (r1, r2) needs a 2-D grid, got {grid.ndim}-D")
        axis_masses, outside = [], []
        for axis, law in enumerate(self.marginals):
            line = Grid((grid.bounds[axis],), (grid.shape[axis],))
            masses, out = law.cell_masses(line)
            axis_masses.append(masses)
            outside.append(out)
        # P(outside the box) = 1 - (1 - o1)(1 - o2), written without cancellation
        return np.multiply.outer(*axis_masses), outside[0] + outside[1] - outside[0] * outside[1]

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        """Draw ``w``, shape ``(*shape, d)`` (NumPy)."""
        return ScaledChiLaw(self.kappa, self.d).sample(rng, shape)

    def sample_streams(self, rng: Any, n: int) -> Any:
        """``n`` i.i.d. units per stream of a counter-based generator: ``(R, n, d)``."""
        return ScaledChiLaw(self.kappa, self.d).sample_streams(rng, n)


@dataclass(frozen=True)
class NormalLaw:
    """Independent normal coordinates ``theta_a ~ N(mean_a, std_a^2)`` on the full grid."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def cell_masses(self, grid: Grid) -> tuple[np.ndarray, float]:
        masses = np.ones(())
        inside = 1.0
        for axis in range(grid.ndim):
            z = (grid.edges(axis) - self.mean[axis]) / self.std[axis]
            axis_masses = np.diff(special.ndtr(z))
            inside *= float(special.ndtr(z[-1]) - special.ndtr(z[0]))
            masses = np.multiply.outer(masses, axis_masses)
        return masses, 1.0 - inside

    def box(self, tol: float) -> tuple[tuple[float, float], ...]:
        """Per-axis bounds of a grid that leaves at most ``tol`` of the mass outside."""
        z = -float(special.ndtri(0.5 * tol / len(self.mean)))
        return tuple((m - z * s, m + z * s) for m, s in zip(self.mean, self.std, strict=True))

    def from_score(self, z: np.ndarray) -> np.ndarray:
        """``mean + std z`` of a one-axis law: the quantile at normal score ``z``."""
        if len(self.mean) != 1:
            raise ValueError("from_score is defined for a one-axis law; use axis_laws()")
        return self.mean[0] + self.std[0] * np.asarray(z, dtype=np.float64)

    def axis_laws(self) -> tuple[NormalLaw, ...]:
        """The independent one-axis laws ``N(mean_a, std_a^2)``."""
        return tuple(NormalLaw((m,), (s,)) for m, s in zip(self.mean, self.std, strict=True))

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return rng.standard_normal((*shape, len(self.mean))) * np.asarray(self.std) + self.mean

    def sample_streams(self, rng: Any, n: int) -> Any:
        """``n`` i.i.d. points per stream of a counter-based generator: ``(R, n, dim)``."""
        draws = rng.normal(0, (n, len(self.mean)), purpose=INIT_PURPOSE)
        columns = [draws[..., a] * self.std[a] + self.mean[a] for a in range(len(self.mean))]
        return rng.xp.stack(columns, axis=-1)


@dataclass(frozen=True)
class ReluSelectionLaw:
    """Law of ``(a, b, r1, r2)`` for ``a ~ N(a_mean, a_std^2)``, ``b ~ N(b_mean, b_std^2)`` and
    ``w ~ N(0, kappa^2 I_d / d)``, independent; units ``theta = (a, b, w)`` (the ReLU selection
    model, :mod:`~meanfield.model.mmn.relu_selection`).

    On a 4-D grid the cell masses are the product of the two normal laws' and of
    :class:`ScaledChiPairLaw`'s.
    """

    kappa: float
    d: int
    s0: int
    a_mean: float
    a_std: float
    b_mean: float
    b_std: float

    def __post_init__(self) -> None:
        ScaledChiPairLaw(self.kappa, self.d, self.s0)  # the same checks
        if not (self.a_std > 0 and self.b_std > 0):
            raise ValueError(f"a_std and b_std must be > 0, got {self.a_std}, {self.b_std}")

    def cell_masses(self, grid: Grid) -> tuple[np.ndarray, float]:
        """Exact probability of each cell of a 4-D ``(a, b, r1, r2)`` grid, and the mass
        outside its box."""
        if grid.ndim != 4:
            raise ValueError(f"the law of (a, b, r1, r2) needs a 4-D grid, got {grid.ndim}-D")
        ab = Grid(grid.bounds[:2], grid.shape[:2])
        rr = Grid(grid.bounds[2:], grid.shape[2:])
        outer, out_ab = NormalLaw((self.a_mean, self.b_mean), (self.a_std, self.b_std)).cell_masses(
            ab
        )
        inner, out_rr = ScaledChiPairLaw(self.kappa, self.d, self.s0).cell_masses(rr)
        return np.multiply.outer(outer, inner), out_ab + out_rr - out_ab * out_rr

    def box(self, tol: float) -> tuple[tuple[float, float], ...]:
        """Per-axis bounds of a grid that leaves at most ``tol`` of the mass outside."""
        ab = NormalLaw((self.a_mean, self.b_mean), (self.a_std, self.b_std)).box(0.5 * tol)
        return ab + ScaledChiPairLaw(self.kappa, self.d, self.s0).box(0.5 * tol)

    def axis_laws(self) -> tuple[Any, ...]:
        """The independent laws of ``a``, ``b``, ``r1`` and ``r2``."""
        return (
            NormalLaw((self.a_mean,), (self.a_std,)),
            NormalLaw((self.b_mean,), (self.b_std,)),
            *ScaledChiPairLaw(self.kappa, self.d, self.s0).marginals,
        )

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        """Draw ``theta = (a, b, w)``, shape ``(*shape, d + 2)`` (NumPy)."""
        draws = rng.standard_normal((*shape, self.d + 2))
        return self._scale(draws, np)

    def sample_streams(self, rng: Any, n: int) -> Any:
        """``n`` i.i.d. units per stream of a counter-based generator: ``(R, n, d + 2)``, from
        one draw of shape ``(n, d + 2)`` (columns ``a``, ``b``, then ``w``)."""
        return self._scale(rng.normal(0, (n, self.d + 2), purpose=INIT_PURPOSE), rng.xp)

    def _scale(self, draws: Any, xp: Any) -> Any:
        return xp.concat(
            [
                draws[..., :1] * self.a_std + self.a_mean,
                draws[..., 1:2] * self.b_std + self.b_mean,
                draws[..., 2:] * (self.kappa / math.sqrt(self.d)),
            ],
            axis=-1,
        )


def initial_density(
    law: ScaledChiLaw | ScaledChiPairLaw | NormalLaw | ReluSelectionLaw, grid: Grid
) -> np.ndarray:
    """Cell averages of the initial law on ``grid`` (NumPy), normalised to unit mass.

    Raises
    ------
    GridTooSmallError
        If more than ``OUTSIDE_MASS_TOL`` of the law lies outside the grid's box.
    """
    masses, outside = law.cell_masses(grid)
    if outside > OUTSIDE_MASS_TOL:
        raise GridTooSmallError(
            f"the grid {list(grid.bounds)} cannot hold the initial law: mass {outside:.3g} lies "
            f"outside it (allowed {OUTSIDE_MASS_TOL:g}); enlarge the domain"
        )
    return masses / masses.sum() / grid.cell_volume
