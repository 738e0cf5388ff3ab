"""The CLT: N Var <f, mu_N(T)> across replicas of population-GD particles against the PDE's
prediction Var_{rho_0}(phi_0)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from meanfield.backends import get_backend
from meanfield.grid import Grid
from meanfield.model import FeatureModel, NormalLaw, initial_density
from meanfield.pde.equation import MeanFieldPDE
from meanfield.pde.linearized import first_variation, forward_path
from meanfield.rng import CounterRNG
from meanfield.schedules import TimeChange
from particles.methods import make_gd
from particles.state import EnsembleState

NUMPY = get_backend("numpy")
WEIGHT = 2.0
#: V = theta^2/2 + 0.3 theta, U = 2 cos(theta - theta'): a strongly interacting 1-D model
MODEL = FeatureModel(
    lambda q: 0.5 * q[:, 0] ** 2 + 0.3 * q[:, 0],
    (lambda q: np.cos(q[:, 0]), lambda q: np.sin(q[:, 0])),
    (WEIGHT, WEIGHT),
    potential_grad_fn=lambda q: q + 0.3,
    feature_grad_fns=(lambda q: -np.sin(q), lambda q: np.cos(q)),
)
LAW = NormalLaw((0.5,), (0.6,))
T_END = 1.0


@pytest.mark.parametrize("seed", [3, 4])
def test_gd_fluctuations_match_the_clt_prediction(seed: int) -> None:
    grid = Grid(((-5.0, 5.0),), (1000,))
    pde = MeanFieldPDE(MODEL, grid)
    x = grid.centres()
    observables = {"mean": (x, lambda th: th), "sin": (np.sin(2 * x), lambda th: np.sin(2 * th))}
    n, replicas = 40, 4000
    rng = CounterRNG.from_seed(seed, replicas, NUMPY.xp)
    step = make_gd(MODEL, NUMPY, eps=0.01, time_change=TimeChange())
    state = EnsembleState(LAW.sample_streams(rng, n))
    for _ in range(round(T_END / 0.01)):
        state = step(state)
    theta = state.theta[..., 0]
    rho0 = initial_density(LAW, grid)
    path = forward_path(pde, rho0, T_END)
    for on_grid, on_particles in observables.values():
        predicted = first_variation(pde, rho0, on_grid, T_END, path=path).variance
        values = on_particles(theta).mean(axis=1)
        measured = n * values.var(ddof=1)
        se = measured * math.sqrt(2.0 / (replicas - 1))  # Gaussian sampling error of a variance
        # 4.5 SE (4.5 %) plus O(1/N) = 2.5 % for the finite-N correction
        assert abs(measured - predicted) < 4.5 * se + 0.025 * predicted, (measured, predicted)
    # the transport-only prediction misses by far more than the sampling error
    naive = first_variation(pde, rho0, x, T_END, path=path, include_interaction=False).variance
    assert naive > 20 * first_variation(pde, rho0, x, T_END, path=path).variance  # 116x
