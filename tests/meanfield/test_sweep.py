"""Several PDE runs stepped together (meanfield.pde.sweep) against the same runs one at a time."""

from __future__ import annotations

import numpy as np
import pytest

from meanfield.backends import get_backend, to_numpy
from meanfield.grid import Grid
from meanfield.model import ACTIVATIONS, IsotropicGaussians, ScaledChiLaw, initial_density
from meanfield.pde.controller import integrate
from meanfield.pde.equation import MeanFieldPDE
from meanfield.pde.sweep import StackedPDE, integrate_sweep
from meanfield.pde.trackers import MemoryTracker

GRID = Grid(((0.0, 6.0),), (300,), ("r",))
TIMES = (0.0, 0.25, 0.5)
NUMPY = get_backend("numpy")


def model(delta: float = 0.8) -> IsotropicGaussians:
    return IsotropicGaussians(d=40, delta=delta, activation=ACTIVATIONS["mmn"], kernel_tol=1e-8)


def solo(
    pde: MeanFieldPDE, rho0: np.ndarray, backend=NUMPY, cfl: float = 0.8
) -> tuple[np.ndarray, np.ndarray]:
    memory = MemoryTracker()
    integrate(pde, rho0, TIMES, backend, trackers=[memory], cfl=cfl)
    return (np.array([f.density for f in memory.frames]), np.array([f.risk for f in memory.frames]))


def test_copies_of_one_run_reproduce_the_solo_run(backend) -> None:
    """S identical rows take the solo run's steps (same rate): they must match it to the
    round-off of the reordered sums (the kernel products become matrix-matrix products)."""
    pde = MeanFieldPDE(model(), GRID)
    rho0 = initial_density(ScaledChiLaw(0.8, 40), GRID)
    density, risk = solo(pde, rho0, backend)
    result = integrate_sweep(pde, np.stack([rho0] * 3), TIMES, backend)
    assert result.density.shape == (len(TIMES), 3, *GRID.shape)
    for run in range(3):
        np.testing.assert_allclose(result.density[:, run], density, rtol=1e-11, atol=1e-13)
        np.testing.assert_allclose(result.risk[:, run], risk, rtol=1e-12)


def test_kappa_sweep_matches_solo_runs() -> None:
    """Different initial widths: the sweep steps with the smallest step any run needs, so each
    run agrees with its solo run to the (second-order) time-discretisation error."""
    pde = MeanFieldPDE(model(), GRID)
    kappas = (0.4, 0.8, 1.2)
    rho0 = np.stack([initial_density(ScaledChiLaw(k, 40), GRID) for k in kappas])
    result = integrate_sweep(pde, rho0, TIMES, NUMPY)
    for run, _ in enumerate(kappas):
        density, risk = solo(pde, rho0[run])
        half_density, half_risk = solo(pde, rho0[run], cfl=0.4)
        # the sweep's steps are at most the solo run's (here up to 3.3x smaller): it must lie
        # within the solo run's own step-halving change, doubled (second order: a step h/q moves
        # the result by (1 - 1/q^2) / (3/4) <= 4/3 times the halving change)
        l1 = np.abs(result.density[-1, run] - density[-1]).sum() * GRID.cell_volume
        halving = np.abs(half_density[-1] - density[-1]).sum() * GRID.cell_volume
        assert l1 <= 2.0 * halving + 1e-12
        assert np.all(np.abs(result.risk[:, run] - risk) <= 2.0 * np.abs(half_risk - risk) + 1e-13)
    np.testing.assert_allclose(result.mass, 1.0, atol=1e-13)  # every run conserves its mass
    assert result.density.min() >= 0.0
    # the runs differ (the check is not vacuous)
    assert np.ptp(result.risk[-1]) > 0.05


def test_delta_sweep_of_stacked_equations_matches_solo_runs(backend) -> None:
    """Three models (Delta = 0.5, 0.7, 0.9) with kernels of different rank, stacked."""
    deltas = (0.5, 0.7, 0.9)
    pdes = [MeanFieldPDE(model(delta), GRID) for delta in deltas]
    ranks = {p.model.kernel_features(GRID.points()).n_features for p in pdes}
    rho0 = initial_density(ScaledChiLaw(0.8, 40), GRID)
    result = integrate_sweep(StackedPDE(tuple(pdes)), np.stack([rho0] * 3), TIMES, backend)
    for run, pde in enumerate(pdes):
        density, risk = solo(pde, rho0, backend)
        _, half_risk = solo(pde, rho0, backend, cfl=0.4)
        # as for the kappa sweep: within the solo run's own step-halving change, doubled
        assert np.all(np.abs(result.risk[:, run] - risk) <= 2.0 * np.abs(half_risk - risk) + 1e-13)
        assert result.risk[0, run] == pytest.approx(risk[0], rel=1e-12)  # same rho0: exact
    np.testing.assert_allclose(result.mass, 1.0, atol=1e-13)
    assert len(ranks) >= 1


def test_stacked_equations_must_share_the_transport() -> None:
    with pytest.raises(ValueError, match="share the grid"):
        StackedPDE((MeanFieldPDE(model(), GRID), MeanFieldPDE(model(), GRID, order=1)))
    with pytest.raises(ValueError, match="at least one"):
        StackedPDE(())


def test_bad_initial_shapes_are_refused() -> None:
    pde = MeanFieldPDE(model(), GRID)
    with pytest.raises(ValueError, match="shape"):
        integrate_sweep(pde, np.ones(GRID.shape), TIMES, NUMPY)
    stacked = StackedPDE((pde, pde))
    with pytest.raises(ValueError, match="2 stacked"):
        integrate_sweep(stacked, np.ones((3, *GRID.shape)), TIMES, NUMPY)


def test_two_dimensional_sweep_conserves_each_run() -> None:
    """Leading run axis on a 2-D grid: the transport shifts its grid axes past it."""
    from meanfield.model import LinearUnit, NormalLaw, linear_unit_moments

    grid = Grid(((-3.5, 3.0), (-3.0, 3.5)), (52, 52), ("t0", "t1"))
    pde = MeanFieldPDE(LinearUnit(theta_star=(1.0, -0.5)), grid)
    means = ((-1.0, 0.5), (0.0, 0.0))
    rho0 = np.stack([initial_density(NormalLaw(m, (0.3, 0.3)), grid) for m in means])
    result = integrate_sweep(pde, rho0, (0.0, 0.5), NUMPY)
    np.testing.assert_allclose(result.mass, 1.0, atol=1e-13)
    x, y = np.meshgrid(grid.centres(0), grid.centres(1), indexing="ij")
    for run, mean in enumerate(means):
        rho = result.density[-1, run] * grid.cell_volume
        got = (np.sum(rho * x), np.sum(rho * y))
        expected, _ = linear_unit_moments(
            (1.0, -0.5), 0.0, np.inf, np.array(mean), 0.09 * np.eye(2), 0.5
        )
        # h = 0.125: second-order scheme, moments within ~h^2 / 4
        np.testing.assert_allclose(got, expected, atol=5e-3)
    assert to_numpy(result.density).min() >= 0.0
