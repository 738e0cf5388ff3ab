"""The grid solver on four axes: the 1-D to 3-D code path, checked against exact solutions.

Nothing in :mod:`meanfield.grid`, :mod:`meanfield.pde.operators` or :mod:`meanfield.pde.equation`
depends on the number of axes (fluxes axis by axis, the nonlocal term on the flattened cells);
these tests run that same path on 4-D grids:

* oblique transport at constant velocity, whose exact solution is the translated initial law
  (exact cell averages of a product bump): second-order convergence of the L1 error;
* Ornstein-Uhlenbeck with noise and a different stiffness per axis: each marginal of the 4-D
  run is the 1-D run of its axis (the semi-discrete scheme keeps a product a product), and the
  moments follow :func:`~meanfield.model.ou_moments` to O(h^2);
* a 4-D config goes through the schema and the builders (``quadratic`` with ``ndim = 4``), and
  the interacting full-grid models keep mass, positivity and a decreasing free energy in 4-D.
"""

from __future__ import annotations

import math
from functools import reduce

import numpy as np
import pytest

from meanfield.config import load_config
from meanfield.config.builders import build_pde_setup
from meanfield.grid import Grid
from meanfield.model import FeatureModel, NormalLaw, initial_density, ou_moments
from meanfield.model.cosine import CosineInteraction
from meanfield.model.solvable import LinearUnit, QuadraticPotential
from meanfield.pde.controller import integrate
from meanfield.pde.equation import MeanFieldPDE
from meanfield.pde.trackers import InvariantTracker, MemoryTracker

from .test_schemes import _bump_cell_averages

#: the bump moves by this vector: oblique, both signs on every pair of axes
SHIFT = np.array([0.2, -0.2, 0.2, -0.2])


def _run(
    pde: MeanFieldPDE, rho0: np.ndarray, times: list[float], backend, cfl: float = 0.8
) -> tuple[MemoryTracker, InvariantTracker]:
    mem, invariants = MemoryTracker(), InvariantTracker()
    integrate(pde, rho0, times, backend, trackers=[invariants, mem], cfl=cfl)
    return mem, invariants


def _bump(grid: Grid, centre: np.ndarray, width: float) -> np.ndarray:
    """Exact cell averages of prod_a cos^4(pi (x_a - c_a) / (2 width)), unit mass."""
    axes = [
        _bump_cell_averages(grid.edges(a), centre[a], width) / (0.75 * width)
        for a in range(grid.ndim)
    ]
    return reduce(np.multiply.outer, axes)


def _transport_error(
    backend, n: int, order: int = 2, width: float = 0.8, t_end: float = 0.5
) -> tuple[float, InvariantTracker]:
    """L1 error of a bump carried at constant velocity ``SHIFT / t_end`` across ``[-1, 1]^4``.

    ``V = <c, theta>`` with ``c = -SHIFT / (2 t_end)`` (velocity ``-2 grad V``), no interaction.
    """
    grid = Grid(((-1.0, 1.0),) * 4, (n,) * 4)
    slope = -0.5 * SHIFT / t_end
    model = FeatureModel(lambda q: q @ slope, ndim=4)
    mem, invariants = _run(
        MeanFieldPDE(model, grid, order=order),
        _bump(grid, -0.5 * SHIFT, width),
        [0.0, t_end],
        backend,
    )
    exact = _bump(grid, 0.5 * SHIFT, width)
    return float(np.sum(np.abs(mem.frames[-1].density - exact)) * grid.cell_volume), invariants


def _fitted_order(sizes: list[int], errors: list[float]) -> float:
    return float(-np.polyfit(np.log(sizes), np.log(errors), 1)[0])


def test_oblique_transport_in_4d_converges_at_second_order(numpy_backend) -> None:
    """MUSCL (MC limiter) and Heun on 12^4 to 24^4 cells (5 to 10 cells per half-width)."""
    sizes = [12, 16, 24]
    runs = [_transport_error(numpy_backend, n) for n in sizes]
    errors = [e for e, _ in runs]
    order = _fitted_order(sizes, errors)
    # measured errors 0.137, 0.085, 0.041 (fitted order 1.74): still pre-asymptotic on these
    # coarse grids, as in 3-D (1.93 at 24-48 cells, 10-20 per half-width); the slow test below
    # reaches 1.84 at 16-32. First order is far below: see the next assertion
    assert order > 1.6, (errors, order)
    first, _ = _transport_error(numpy_backend, 16, order=1)
    assert first > 3.0 * errors[1], (first, errors)  # first-order upwind: measured 0.42 vs 0.085
    for _, invariants in runs:  # flux form, zero wall fluxes: round-off only
        assert invariants.max_mass_error < 1e-13
        assert invariants.min_density >= -1e-14


@pytest.mark.slow
def test_oblique_transport_in_4d_converges_at_second_order_fine(numpy_backend) -> None:
    """16^4 and 32^4 cells (about 20 s on two cores)."""
    sizes = [16, 32]
    errors = [_transport_error(numpy_backend, n)[0] for n in sizes]
    # measured 0.0852 and 0.0238: order 1.84, approaching 2 as in 1-D to 3-D
    assert _fitted_order(sizes, errors) > 1.8, errors


# ---- Ornstein-Uhlenbeck with noise, per-axis stiffness -----------------------------------------

STIFFNESS = (1.0, 2.0, 0.5, 1.5)
CENTER = (0.5, -0.3, 0.2, -0.4)
MEAN0 = (1.0, -1.0, 0.6, 0.3)
STD0 = (0.5, 0.4, 0.3, 0.45)
BETA = 4.0
TIMES = [0.0, 0.2, 0.5]


def _ou_grid(h: float) -> Grid:
    """A box 7.5 standard deviations beyond the path of the mean on every axis, cells of ``h``."""
    k, c, m0, s0 = (np.array(v) for v in (STIFFNESS, CENTER, MEAN0, STD0))
    sd = np.maximum(s0, 1.0 / np.sqrt(k * BETA))
    lo, hi = np.minimum(m0, c) - 7.5 * sd, np.maximum(m0, c) + 7.5 * sd
    n = np.ceil((hi - lo) / h).astype(int)
    return Grid(tuple(zip(lo, lo + n * h, strict=True)), tuple(int(v) for v in n))


@pytest.fixture(scope="module")
def ou_run() -> tuple[Grid, MemoryTracker, InvariantTracker]:
    """The noisy OU flow on a 20 x 17 x 28 x 19 grid (h = 0.4, 1.8e5 cells, 2 s)."""
    from meanfield.backends import get_backend

    grid = _ou_grid(0.4)
    rho0 = initial_density(NormalLaw(MEAN0, STD0), grid)
    pde = MeanFieldPDE(QuadraticPotential(STIFFNESS, CENTER, 4), grid, beta=BETA)
    return (grid, *_run(pde, rho0, TIMES, get_backend("numpy")))


def test_ou_4d_is_the_product_of_1d_flows(numpy_backend, ou_run) -> None:
    grid, mem, invariants = ou_run
    assert invariants.max_mass_error < 1e-13 and invariants.min_density >= -1e-14
    for axis in range(4):
        line = Grid((grid.bounds[axis],), (grid.shape[axis],))
        rho0 = initial_density(NormalLaw((MEAN0[axis],), (STD0[axis],)), line)
        model = QuadraticPotential(STIFFNESS[axis], CENTER[axis])
        mem1, _ = _run(
            MeanFieldPDE(model, line, beta=BETA), rho0, TIMES, numpy_backend, cfl=0.05
        )  # CFL 0.05: the 1-D reference's own time error is negligible
        others = tuple(a for a in range(4) if a != axis)
        for frame, frame1 in zip(mem.frames[1:], mem1.frames[1:], strict=True):
            marginal = frame.density.sum(axis=others) * grid.cell_volume / line.cell_volume
            # the 4-D run's own Heun O(dt^2) at CFL 0.8: measured at most 1.2e-4 of the peak
            # (3-D: 1.7e-4); a scheme that mixed up axes would be off by O(1)
            difference = np.max(np.abs(marginal - frame1.density)) / frame1.density.max()
            assert difference < 3e-4, (axis, frame.t, difference)


def test_ou_4d_moments_match_the_closed_form(ou_run) -> None:
    grid, mem, _ = ou_run
    points = grid.points()
    # cell averages of a Gaussian carry an extra h^2/12 of variance per axis (midpoint rule)
    var0 = np.array(STD0) ** 2 + np.array(grid.spacing) ** 2 / 12
    for frame in mem.frames[1:]:
        masses = frame.density.ravel() * grid.cell_volume
        mean = points.T @ masses
        centred = points - mean
        cov = (centred * masses[:, None]).T @ centred
        exact_mean, exact_var = ou_moments(
            np.array(STIFFNESS), np.array(CENTER), BETA, np.array(MEAN0), var0, frame.t
        )
        # O(h^2) at h = 0.4, 4x the 3-D test's h^2 (1.3e-2 there): measured 4.7e-2 (mean) and
        # 2.0e-2 (variances)
        assert np.max(np.abs(mean - exact_mean)) < 6e-2, (frame.t, mean, exact_mean)
        assert np.max(np.abs(np.diag(cov) - exact_var)) < 3e-2, (frame.t, cov, exact_var)
        # the axes stay uncorrelated up to Heun's O(dt^2) coupling: measured 5.5e-5
        assert np.max(np.abs(cov - np.diag(np.diag(cov)))) < 2e-4


def test_a_4d_config_goes_through_schema_and_builders(tmp_path) -> None:
    path = tmp_path / "ou-4d.toml"
    path.write_text(
        '[model]\nname = "quadratic"\nndim = 4\nstiffness = [1.0, 2.0, 0.5, 1.5]\n\n'
        "[init]\nmean = [1.0, -1.0, 0.6, 0.3]\nstd = 0.4\n\n"
        "[dynamics]\nt_end = 0.1\nsave_times = [0.0, 0.1]\nbeta = 4.0\n\n"
        "[pde]\ncells = [6, 7, 8, 9]\nbounds = [[-4.0, 4.0], [-4.0, 4.0], [-4.0, 4.0], "
        "[-4.0, 4.0]]\n"
    )
    setup = build_pde_setup(load_config(path))
    assert setup.pde.grid.shape == (6, 7, 8, 9)
    assert setup.pde.grid.names == ("theta0", "theta1", "theta2", "theta3")
    assert math.isclose(setup.rho0.sum() * setup.pde.grid.cell_volume, 1.0, rel_tol=1e-12)


@pytest.mark.parametrize(
    ("model", "beta"),
    [
        (LinearUnit((1.5, -1.0, 0.5, 0.8)), math.inf),
        (CosineInteraction(coupling=1.0, quartic=1.0, quadratic=-1.0, tilt=0.5, ndim=4), 2.0),
    ],
    ids=["linear-unit-noiseless", "cosine-noisy"],
)
def test_interacting_4d_models_keep_mass_and_positivity(numpy_backend, model, beta: float) -> None:
    """The interacting full-grid models the schema allows in 4-D (the nonlocal term on 10^4
    cells): mass to round-off, no negative density, free energy non-increasing."""
    grid = Grid(((-2.0, 2.0),) * 4, (10,) * 4)
    rho0 = initial_density(NormalLaw((0.3, -0.2, 0.0, 0.1), (0.22,) * 4), grid)
    mem, invariants = _run(
        MeanFieldPDE(model, grid, beta=beta), rho0, [0.0, 0.2, 0.5], numpy_backend
    )
    assert invariants.max_mass_error < 1e-13  # measured 4e-16
    assert invariants.min_density >= -1e-14
    assert np.all(np.diff(mem.series("free_energy")) <= 1e-14)
    moved = np.sum(np.abs(mem.frames[-1].density - rho0)) * grid.cell_volume
    assert moved > 0.1, moved  # the runs are not trivial
