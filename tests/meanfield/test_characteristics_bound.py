"""The characteristics solver at the model's domain bound (a radius of 0).

MMN's non-monotone activation from ``kappa = 0.1`` sends every unit to ``w = 0`` in finite time
(the radial velocity does not vanish at ``r = 0``). The reduced flow holds a unit there: the
points stop at the bound, as the grid's wall holds the mass. Then every unit outputs ``s(0) =
-2.5`` and the risk is ``E (y + 2.5)^2 = 1 + 6.25 = 7.25`` exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from meanfield.config import parse_config
from meanfield.config.builders import build_pde_setup
from meanfield.pde.characteristics import StepRecord, integrate_points
from meanfield.pde.characteristics.adjoint import moment, reverse_pass, risk_functional
from meanfield.pde.characteristics.field import risk_and_energy
from meanfield.pde.characteristics.solver import make_rate
from meanfield.pde.characteristics.stepper import TABLEAUS, stages
from meanfield.pde.trackers import MemoryTracker


def _setup(t_end: float, save_times: list[float], points: int):
    return build_pde_setup(
        parse_config(
            {
                "model": {
                    "name": "isotropic_gaussians",
                    "d": 320,
                    "delta": 0.5,
                    "activation": "mmn_nonmonotone",
                },
                "init": {"kappa": 0.1},
                "dynamics": {"t_end": t_end, "save_times": save_times},
                "pde": {
                    "method": "characteristics",
                    "cells": 400,
                    "r_max": 10.0,
                    "points": points,
                    "refine": 0.0,
                },
            }
        )
    )


def test_units_collapse_onto_the_bound_and_stay() -> None:
    setup = _setup(0.5, [0.0, 0.5], 32)
    x0, w = setup.rule.points()
    mem = MemoryTracker()
    integrate_points(
        setup.pde,
        x0,
        w,
        setup.save_times,
        setup.backend,
        setup.grid,
        trackers=[setup.pde.invariants(), mem],
    )
    final = mem.frames[-1]
    assert np.all(final.points == 0.0)  # held at the bound exactly, none below it
    # every unit outputs s(0) = -2.5: R = 1 + 2.5^2 up to the kernel's truncation (1e-10)
    assert final.risk == pytest.approx(7.25, abs=1e-9)
    # the grid's wall holds the same mass in its first cell (r_max / cells = 0.025 wide)
    assert final.density[0] * setup.grid.spacing[0] == pytest.approx(1.0, abs=1e-12)


def test_reverse_pass_cuts_the_clamped_components() -> None:
    """The discrete adjoint of the clamped steps equals central differences of the forward
    map (same step sizes) in the weights, before, during and after the collapse."""
    setup = _setup(0.02, [0.0, 0.005, 0.01, 0.02], 16)
    pde, backend = setup.pde, setup.backend
    x0, w = setup.rule.points()
    record = StepRecord(every=4)
    integrate_points(pde, x0, w, setup.save_times, backend, setup.grid, record=record)
    result = reverse_pass(pde, x0, w, record, [risk_functional(), moment("mean_r", 0)], backend)
    tableau, project = TABLEAUS[pde.scheme], pde.projection(backend)

    def forward(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        field_ = pde.field(backend)
        rate = make_rate(field_, weights, 0.0, pde.lower)
        kernel_weights = field_.kernel_weights()
        x, out = x0.copy(), {}

        def keep(n: int, x: np.ndarray) -> None:
            values = field_.values(x)
            risk, _ = risk_and_energy(
                x,
                weights,
                values.potential,
                values.features,
                kernel_weights,
                pde.model.r_sharp,
                0.0,
                np,
            )
            out[n] = (risk, np.sum(weights * x[:, 0]))

        keep(0, x)
        for n, h in enumerate(record.sizes):
            x = stages(rate, x, rate(x), h, tableau, project)[-1][0]
            keep(n + 1, x)
        return np.array([out[s] for s in record.frame_steps]), x

    _, end = forward(w)
    assert np.all(end == 0.0)  # the last frame is after the collapse
    eps = 1e-7  # central differences: truncation ~eps^2, round-off ~1e-16 / eps
    for j in (0, 7, 15):
        up, down = w.copy(), w.copy()
        up[j] += eps
        down[j] -= eps
        fd = (forward(up)[0] - forward(down)[0]) / (2 * eps)
        adjoint = np.stack([result.phi0["risk"][:, j], result.phi0["mean_r"][:, j]], axis=1)
        # measured agreement 1e-8 (the Hessian's central differences and the FD's round-off)
        np.testing.assert_allclose(adjoint, fd, rtol=1e-6, atol=1e-6)
    # after the collapse every unit is at 0: phi_0 of the mean is 0, of the risk 2 Psi = 12.5
    np.testing.assert_allclose(result.phi0["mean_r"][-1], 0.0, atol=1e-12)
    np.testing.assert_allclose(result.phi0["risk"][-1], 12.5, rtol=1e-9)
