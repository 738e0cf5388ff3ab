"""Checks the grid models share: the t = 0 identity between the PDE and i.i.d. particles, and a
short PDE run with its invariants (helpers for the model tests; nothing here is collected)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from meanfield.backends import get_backend
from meanfield.grid import Grid
from meanfield.model import initial_density
from meanfield.pde.controller import integrate as integrate_pde
from meanfield.pde.equation import MeanFieldPDE
from meanfield.pde.trackers import InvariantTracker, MemoryTracker

NUMPY = get_backend("numpy")


@dataclass(frozen=True)
class T0Identity:
    """Both sides of ``E R(mu_N) = R(rho_0) + bias`` at ``t = 0`` (SPEC section 5).

    Attributes
    ----------
    risks : the PDE functional ``R(rho_0)`` on the coarse and the fine grid
    extrapolated : their Richardson extrapolation (cell-centre quadrature is O(h^2))
    grid_error : ``|risks[1] - extrapolated|``
    mean, se : the replica mean of the particles' exact ``R(mu_N)`` and its standard error
    bias : ``(1/N)(int U(q, q) rho_0 - int int U rho_0 rho_0)``, the diagonal and ``int V
        rho_0`` by Monte Carlo over units, the double integral from ``extrapolated``
    """

    risks: tuple[float, float]
    extrapolated: float
    grid_error: float
    mean: float
    se: float
    bias: float

    @property
    def deviation(self) -> float:
        """``E R(mu_N) - bias - R(rho_0)``, zero up to Monte Carlo and grid errors."""
        return self.mean - self.bias - self.extrapolated


def t0_identity(
    model: Any,
    law: Any,
    bounds: tuple,
    cells: tuple[tuple[int, ...], ...],
    rng: np.random.Generator,
    n: int = 20,
    replicas: int = 600,
    n_bias: int = 50_000,
) -> T0Identity:
    """The two sides of the t = 0 identity for ``n`` units, ``replicas`` replicas, on the grids
    ``cells`` (coarse, fine: every axis refined by the same ratio) over ``bounds``."""
    risks = []
    for shape in cells:
        grid = Grid(bounds, shape, model.axis_names)
        risk, _, mass = MeanFieldPDE(model, grid).make_functionals(NUMPY)(
            initial_density(law, grid)
        )
        assert abs(float(mass) - 1.0) < 1e-12  # normalised cell averages: round-off
        risks.append(float(risk))
    ratio = cells[1][0] / cells[0][0]
    extrapolated = risks[1] + (risks[1] - risks[0]) / (ratio**2 - 1.0)
    values = model.population_risk(law.sample(rng, (replicas, n)), None, NUMPY)
    reduced = model.reduce(law.sample(rng, (n_bias,)), np)
    double = extrapolated - model.r_sharp - 2.0 * model.potential(reduced).mean()
    bias = (model.self_interaction(reduced).mean() - double) / n
    return T0Identity(
        (risks[0], risks[1]),
        extrapolated,
        abs(risks[1] - extrapolated),
        float(values.mean()),
        float(values.std(ddof=1) / math.sqrt(replicas)),
        float(bias),
    )


def run_risks(model: Any, law: Any, grid: Grid, save_times: tuple[float, ...]) -> list[float]:
    """Integrate the noiseless DD from ``law`` on ``grid`` (NumPy) and return the risk at
    ``save_times``, after checking the invariants: mass to round-off (flux form with zero wall
    fluxes, 1e-13), a non-negative density and a non-increasing free energy."""
    mem, invariants = MemoryTracker(), InvariantTracker()
    integrate_pde(
        MeanFieldPDE(model, grid),
        initial_density(law, grid),
        list(save_times),
        NUMPY,
        trackers=[invariants, mem],
    )
    assert invariants.max_mass_error < 1e-13, invariants.max_mass_error
    assert invariants.min_density >= 0.0
    assert np.all(np.diff(mem.series("free_energy")) <= 0)
    return [frame.risk for frame in mem.frames]
