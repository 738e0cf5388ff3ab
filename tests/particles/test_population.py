"""The isotropic model in the full space: exact R(mu_N) and grad Psi(.; mu_N) of a set of units,
against Monte Carlo, finite differences, and the reduced (PDE) quantities at t = 0."""

from __future__ import annotations

import math

import numpy as np
import pytest

from meanfield.backends import get_backend, to_numpy
from meanfield.grid import Grid
from meanfield.model import ACTIVATIONS, IsotropicGaussians, ScaledChiLaw, initial_density
from meanfield.pde.equation import MeanFieldPDE
from meanfield.rng import CounterRNG

NUMPY = get_backend("numpy")


def _units(
    rng: np.random.Generator, n_replicas: int, n: int, d: int, scale: float = 0.8
) -> np.ndarray:
    return rng.standard_normal((n_replicas, n, d)) * scale / math.sqrt(d) * 1.5


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_population_risk_matches_monte_carlo(name: str, rng: np.random.Generator) -> None:
    """R(mu_N) = E (y - (1/N) sum_i s(<w_i, x>))^2, sampled directly."""
    d, n, n_mc = 6, 5, 1_000_000
    model = IsotropicGaussians(d, 0.8, ACTIVATIONS[name])
    theta = _units(rng, 1, n, d)
    exact = float(model.population_risk(theta, None, NUMPY)[0])
    y = np.where(rng.random(n_mc) < 0.5, 1.0, -1.0)
    x = rng.standard_normal((n_mc, d)) * np.where(y > 0, 1.8, 0.2)[:, None]
    loss = (y - model.activation(x @ theta[0].T).mean(axis=1)) ** 2
    se = loss.std() / math.sqrt(n_mc)
    assert abs(exact - loss.mean()) < 4.5 * se, (exact, loss.mean(), se)


def test_population_gradient_matches_finite_differences(rng: np.random.Generator) -> None:
    """grad Psi(w_i; mu_N) = (N/2) d R(mu_N) / d w_i."""
    d, n, order = 6, 4, 80
    model = IsotropicGaussians(d, 0.8, ACTIVATIONS["mmn_nonmonotone"])
    theta = _units(rng, 2, n, d)
    grad = model.population_gradient(theta, order, NUMPY)
    step = 1e-5
    fd = np.zeros_like(theta)
    for i in range(n):
        for j in range(d):
            shift = np.zeros_like(theta)
            shift[:, i, j] = step
            up = model.population_risk(theta + shift, order, NUMPY)
            down = model.population_risk(theta - shift, order, NUMPY)
            fd[:, i, j] = 0.5 * n * (up - down) / (2 * step)
    # central differences: O(step^2 R''') ~ 1e-9 plus round-off 1e-16 / step ~ 1e-11
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-7)


def test_population_quantities_run_on_array_api_strict(rng: np.random.Generator) -> None:
    strict = get_backend("array_api_strict")
    model = IsotropicGaussians(8, 0.8, ACTIVATIONS["mmn"])
    theta = _units(rng, 2, 5, 8)
    for fn in (model.population_risk, model.population_gradient):
        np.testing.assert_allclose(
            to_numpy(fn(strict.asarray(theta), None, strict)),
            fn(theta, None, NUMPY),
            rtol=1e-13,
            atol=1e-14,
        )


def _reduced_terms(model: IsotropicGaussians, law: ScaledChiLaw) -> tuple[float, float]:
    """R(rho_0) and int U(w, w) d rho_0 from the PDE's reduced model on a fine grid."""
    grid = Grid(((0.0, 2.5),), (5000,), ("r",))
    rho = initial_density(law, grid)
    pde = MeanFieldPDE(model, grid)
    risk = float(to_numpy(pde.make_functionals(NUMPY)(rho).risk))
    r = grid.centres()
    diag = 0.5 * sum(model.activation.gaussian_second_moment(tau * r) for tau in model.taus)
    return risk, float(np.sum(diag * rho) * grid.cell_volume)


@pytest.mark.parametrize("n", [8, 32])
def test_initial_risk_bias_is_the_exact_one_over_n_identity(n: int, global_seed: int) -> None:
    """E R(mu_N(0)) - R(rho_0) = (1/N) (int U(th, th) d rho_0 - int int U d rho_0 d rho_0).

    The left side uses the particles' full-space kernel on i.i.d. units, the right side the
    PDE's reduced kernel u_d: the identity ties the two implementations together."""
    d, n_replicas = 40, 4000
    model = IsotropicGaussians(d, 0.8, ACTIVATIONS["mmn"])
    law = ScaledChiLaw(0.8, d)
    rng = CounterRNG.from_seed(global_seed, n_replicas, NUMPY.xp)
    risks = to_numpy(model.population_risk(law.sample_streams(rng, n), None, NUMPY))
    risk0, diag = _reduced_terms(model, law)
    pair = risk0 - 1.0 - 2.0 * _mean_potential(model, law)
    predicted = (diag - pair) / n
    se = risks.std() / math.sqrt(n_replicas)
    assert abs(risks.mean() - risk0 - predicted) < 4.5 * se, (risks.mean() - risk0, predicted, se)
    assert predicted > 10 * se  # the bias is resolved, so the test has power


def _mean_potential(model: IsotropicGaussians, law: ScaledChiLaw) -> float:
    grid = Grid(((0.0, 2.5),), (5000,), ("r",))
    rho = initial_density(law, grid)
    return float(np.sum(model.potential(grid.centres()[:, None]) * rho) * grid.cell_volume)
