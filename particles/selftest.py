"""Self-test of the particle methods: short runs on NumPy and on every other backend.

Part of ``meanfield info --selftest``: with a GPU it checks CuPy against NumPy for every
particle method; without one it runs the array-API-strict backend.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from meanfield.backend import get_backend, to_numpy
from meanfield.model import (
    ACTIVATIONS,
    AnisotropicGaussians,
    CosineInteraction,
    IsotropicGaussians,
    LinearUnit,
    NormalLaw,
    PSpin,
    PSpinTask,
    QuadraticPotential,
    ScaledChiLaw,
    TeacherStudent,
)
from meanfield.rng import CounterRNG
from meanfield.schedules import TimeChange
from meanfield.selftest import backends_to_compare

from .methods import make_gd, make_online_sgd
from .state import EnsembleState

__all__ = ["run_selftest", "SELFTEST_RTOL"]

#: float64 agreement between backends after a few steps. Normal deviates may differ in the
#: last bits on a GPU (its log/cos/sin are not correctly rounded); 20 SGD steps amplify that
#: by far less than 1e6.
SELFTEST_RTOL = 1e-10


def _case(name: str, backend: Any) -> np.ndarray:
    xp = backend.xp
    rng = CounterRNG.from_seed(5, 3, xp, backend.asarray)
    plain = TimeChange()
    if name == "isotropic online_sgd (d=40, B=4)":
        model = IsotropicGaussians(40, 0.8, ACTIVATIONS["mmn"])
        theta = ScaledChiLaw(0.8, 40).sample_streams(rng, 64)
        step = make_online_sgd(model, rng, backend, eps=1e-3, batch=4, time_change=plain)
    elif name == "isotropic gd (d=40, xi = t^-1/4)":
        model = IsotropicGaussians(40, 0.8, ACTIVATIONS["mmn_nonmonotone"])
        theta = ScaledChiLaw(0.8, 40).sample_streams(rng, 24)
        step = make_gd(model, backend, eps=1e-2, time_change=TimeChange(power=-0.25))
    elif name == "quadratic noisy_sgd (beta=4, l2=0.1)":
        theta = NormalLaw((1.0,), (0.5,)).sample_streams(rng, 100)
        step = make_online_sgd(QuadraticPotential(), rng, backend, eps=1e-2, batch=1,
                               time_change=plain, l2=0.1, beta=4.0)
    elif name == "anisotropic online_sgd (d=12, s0=3)":
        model = AnisotropicGaussians(12, 3, 0.6, ACTIVATIONS["mmn"], kernel_tol=1e-6)
        theta = ScaledChiLaw(0.8, 12).sample_streams(rng, 40)
        step = make_online_sgd(model, rng, backend, eps=1e-3, batch=2, time_change=plain)
    elif name.startswith("teacher-student"):
        model = TeacherStudent(k=2, input_law="gaussian", target="product", trained=("w1", "w2"),
                               quad_order=12)
        theta = NormalLaw((0.5, 0.5), (0.3, 0.3)).sample_streams(rng, 50)
        step = (make_gd(model, backend, eps=1e-2, time_change=plain) if "gd" in name else
                make_online_sgd(model, rng, backend, eps=1e-2, batch=3, time_change=plain))
    elif name == "linear unit noisy_sgd (beta=8)":
        theta = NormalLaw((0.0, 0.0), (0.5, 0.5)).sample_streams(rng, 40)
        step = make_online_sgd(LinearUnit(theta_star=(1.0, -0.5), label_var=0.1), rng, backend,
                               eps=1e-2, batch=2, time_change=plain, beta=8.0)
    elif name == "cosine interaction gd":
        theta = NormalLaw((0.0,), (0.4,)).sample_streams(rng, 40)
        step = make_gd(CosineInteraction(quartic=1.0, quadratic=-1.0), backend, eps=1e-2,
                       time_change=plain)
    else:  # p-spin online SGD
        model = PSpin(6, teacher_seed=1)
        task = PSpinTask(model, backend.asarray(model.teacher()))
        theta = task.sample_streams(rng, 30)
        step = make_online_sgd(task, rng, backend, eps=0.05, batch=6, time_change=plain)
    state = EnsembleState(theta)
    for _ in range(3 if "gd" in name and "sgd" not in name else 20):
        state = step(state)
    return to_numpy(state.theta)


CASES = ("isotropic online_sgd (d=40, B=4)", "isotropic gd (d=40, xi = t^-1/4)",
         "quadratic noisy_sgd (beta=4, l2=0.1)", "pspin online_sgd (d=6, B=6)",
         "anisotropic online_sgd (d=12, s0=3)", "teacher-student gd (k=2)",
         "teacher-student online_sgd (k=2, B=3)", "linear unit noisy_sgd (beta=8)",
         "cosine interaction gd")


def run_selftest(print_fn: Callable[[str], Any] = print, backend: str | None = None) -> bool:
    """Compare each particle method's short run on ``backend`` (default: all others) with NumPy."""
    others = backends_to_compare(backend, print_fn)
    if others is None:
        return False
    ok = True
    numpy = get_backend("numpy")
    for name in CASES:
        reference = _case(name, numpy)
        for other in others:
            result = _case(name, get_backend(other))
            error = float(np.max(np.abs(result - reference)) / np.max(np.abs(reference)))
            passed = math.isfinite(error) and error <= SELFTEST_RTOL
            ok &= passed
            print_fn(f"{'ok  ' if passed else 'FAIL'} particles: {name:40s} {other:17s} "
                     f"max rel diff {error:.1e}")
    return ok
