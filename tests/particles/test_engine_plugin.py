"""A model from outside the package runs on the compiled engine: the plug-in toy model.

``tests/plugin_models/toy_model.py`` (a linear unit) declares ``engine_pieces`` and nothing in
the package names it; its SGD runs on the engine's SGD kernel (on the model's own draws, data
kind ``"host"``) and its GD on the separable kernel, and both follow the NumPy steps.

Tolerance: both paths use the same random numbers (the kernel takes the arrays the model's
``sample_data`` draws; the SGD noise comes from the compiled Philox, whose normals differ from
NumPy's by at most a unit in the last place), so they differ by the order of floating-point
sums only. The flow of the mean is a contraction (``dm/dt = -2 (m - teacher)``), which damps
round-off rather than amplifying it: 600 steps of errors of order 1e-16 stay far below 1e-12
of the largest parameter (measured: 3e-16 for GD, 2e-15 and 3e-15 for the SGD methods).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from meanfield.backends import get_backend
from meanfield.model.base import ParticleEngineModel
from meanfield.model.laws import NormalLaw
from meanfield.rng import CounterRNG
from meanfield.schedules import TimeChange
from particles.engine import make_advance, select_engine
from particles.methods import make_step
from particles.state import EnsembleState
from tests.plugin_models.toy_model import ToyLinear

NUMPY = get_backend("numpy")
#: agreement of the two engines relative to the largest parameter (module docstring)
RTOL = 1e-12
STEPS = 600
TOY = "tests.plugin_models.toy_model:ToyLinear"


def test_the_toy_model_offers_the_engine_its_pieces() -> None:
    toy = ToyLinear(teacher=(1.0, -0.5), noise=0.1)
    assert isinstance(toy, ParticleEngineModel)
    assert select_engine("compiled", toy, "online_sgd").kernel == "sgd"
    assert select_engine("compiled", toy, "noisy_sgd").kernel == "sgd"
    assert select_engine("compiled", toy, "gd").kernel == "separable"
    assert select_engine("auto", toy, "kernel_gd").engine == "numpy"  # no pieces for it


@pytest.mark.parametrize(
    ("method", "options"),
    [
        ("online_sgd", {"batch": 2}),
        (
            "noisy_sgd",
            {"batch": 3, "beta": 20.0, "l2": 0.1, "time_change": TimeChange(power=-0.25)},
        ),
        ("gd", {}),
    ],
)
def test_the_toy_model_follows_the_numpy_steps_on_the_compiled_engine(
    method: str, options: dict
) -> None:
    toy = ToyLinear(teacher=(1.0, -0.5), noise=0.1)
    options = {
        "eps": 5e-3,
        "batch": 1,
        "time_change": TimeChange(),
        "l2": 0.0,
        "beta": math.inf,
        **options,
    }
    rng = CounterRNG.from_seed(7, 3, np)
    theta0 = NormalLaw((0.0, 0.0), (0.5, 0.5)).sample_streams(rng, 20)
    step = make_step(method, toy, rng, NUMPY, **options)
    state = EnsembleState(theta0)
    for _ in range(STEPS):
        state = step(state)
    advance = make_advance(toy, rng, method=method, **options)
    compiled = advance(advance(EnsembleState(theta0), STEPS // 3), STEPS)  # restarts anywhere
    assert compiled.step == state.step == STEPS
    assert np.max(np.abs(state.theta - theta0)) > 0.1, "the reference did not move"
    error = np.max(np.abs(compiled.theta - state.theta)) / np.max(np.abs(state.theta))
    assert error <= RTOL, error


def test_a_config_naming_the_toy_model_runs_on_the_compiled_engine() -> None:
    """``particles.engine = "compiled"`` with the model named in the config only."""
    from meanfield.config import parse_config
    from meanfield.config.builders import build_particle_setup
    from particles.run import build_particle_run, simulate

    def run(engine: str):
        config = parse_config(
            {
                "model": {"name": TOY, "teacher": [1.0, -0.5], "noise": 0.1},
                "init": {"mean": [0.0, 0.0], "std": 0.5},
                "dynamics": {"t_end": 0.5, "save_times": [0.0, 0.25, 0.5]},
                "pde": {"cells": [20, 20], "bounds": [[-3.0, 3.0], [-3.0, 3.0]]},
                "particles": {
                    "n": 30,
                    "replicas": 2,
                    "method": "online_sgd",
                    "step": 0.005,
                    "batch": 2,
                    "engine": engine,
                },
            }
        )
        ensemble = build_particle_run(build_particle_setup(config))
        return ensemble, simulate(ensemble)

    (compiled, frames), (reference, expected) = run("compiled"), run("numpy")
    assert (compiled.engine, reference.engine) == ("compiled", "numpy")
    for a, b in zip(frames, expected, strict=True):
        np.testing.assert_allclose(
            a.reduced, b.reduced, rtol=0, atol=RTOL * np.max(np.abs(b.reduced))
        )
        np.testing.assert_allclose(a.risk, b.risk, rtol=RTOL)
