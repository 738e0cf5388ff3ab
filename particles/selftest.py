"""Self-test of the particle methods: short runs on NumPy, every other backend and the
compiled engine.

Part of ``meanfield info --selftest``: with a GPU it checks CuPy against NumPy for every
particle method; without one it runs the array-API-strict backend; on every machine it
checks the compiled engine (:mod:`particles.engine`) against the NumPy steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from meanfield.backends import get_backend, to_numpy
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

from .engine import compiled_available, make_advance, select_engine
from .engine.advance import make_gpu_sgd_advance
from .methods import make_step
from .state import EnsembleState

__all__ = ["run_selftest", "SELFTEST_RTOL"]

#: float64 agreement between backends after a few steps. Normal deviates may differ in the
#: last bits on a GPU (its log/cos/sin are not correctly rounded); 20 SGD steps amplify that
#: by far less than 1e6.
SELFTEST_RTOL = 1e-10


def _setup(name: str, backend: Any) -> tuple[Any, Any, Any, str, dict]:
    """Model, generator, initial units, method and step options of a self-test case."""
    rng = CounterRNG.from_seed(5, 3, backend.xp, backend.asarray)
    options: dict[str, Any] = {
        "eps": 1e-2,
        "batch": 1,
        "time_change": TimeChange(),
        "l2": 0.0,
        "beta": math.inf,
    }
    if name == "isotropic online_sgd (d=40, B=4)":
        model = IsotropicGaussians(40, 0.8, ACTIVATIONS["mmn"])
        theta = ScaledChiLaw(0.8, 40).sample_streams(rng, 64)
        return model, rng, theta, "online_sgd", {**options, "eps": 1e-3, "batch": 4}
    if name == "isotropic gd (d=40, xi = t^-1/4)":
        model = IsotropicGaussians(40, 0.8, ACTIVATIONS["mmn_nonmonotone"])
        theta = ScaledChiLaw(0.8, 40).sample_streams(rng, 24)
        return model, rng, theta, "gd", {**options, "time_change": TimeChange(power=-0.25)}
    if name == "quadratic noisy_sgd (beta=4, l2=0.1)":
        theta = NormalLaw((1.0,), (0.5,)).sample_streams(rng, 100)
        return QuadraticPotential(), rng, theta, "noisy_sgd", {**options, "l2": 0.1, "beta": 4.0}
    if name == "anisotropic online_sgd (d=12, s0=3)":
        model = AnisotropicGaussians(12, 3, 0.6, ACTIVATIONS["mmn"], kernel_tol=1e-6)
        theta = ScaledChiLaw(0.8, 12).sample_streams(rng, 40)
        return model, rng, theta, "online_sgd", {**options, "eps": 1e-3, "batch": 2}
    if name.startswith("teacher-student"):
        model = TeacherStudent(
            k=2, input_law="gaussian", target="product", trained=("w1", "w2"), quad_order=12
        )
        theta = NormalLaw((0.5, 0.5), (0.3, 0.3)).sample_streams(rng, 50)
        method = "gd" if "gd" in name else "online_sgd"
        return model, rng, theta, method, {**options, "batch": 3}
    if name == "linear unit noisy_sgd (beta=8)":
        theta = NormalLaw((0.0, 0.0), (0.5, 0.5)).sample_streams(rng, 40)
        model = LinearUnit(theta_star=(1.0, -0.5), label_var=0.1)
        return model, rng, theta, "noisy_sgd", {**options, "batch": 2, "beta": 8.0}
    if name == "cosine interaction gd":
        theta = NormalLaw((0.0,), (0.4,)).sample_streams(rng, 40)
        return CosineInteraction(quartic=1.0, quadratic=-1.0), rng, theta, "gd", options
    model = PSpin(6, teacher_seed=1)  # p-spin online SGD
    task = PSpinTask(model, backend.asarray(model.teacher()))
    return (
        task,
        rng,
        task.sample_streams(rng, 30),
        "online_sgd",
        {**options, "eps": 0.05, "batch": 6},
    )


def _steps(method: str) -> int:
    return 3 if method == "gd" else 20


def _case(name: str, backend: Any) -> np.ndarray:
    """Final units of the case's short run with the array steps on ``backend``."""
    model, rng, theta, method, options = _setup(name, backend)
    step = make_step(method, model, rng, backend, **options)
    state = EnsembleState(theta)
    for _ in range(_steps(method)):
        state = step(state)
    return to_numpy(state.theta)


def _compiled_case(
    name: str, backend: Any = None, gpu: bool = False, threads: int | None = None
) -> np.ndarray:
    """The same run on the compiled engine (:mod:`particles.engine`): its CPU kernels, or with
    ``gpu`` its GPU kernel on ``backend``'s arrays (CuPy; NumPy under numba's simulator)."""
    backend = backend or get_backend("numpy")
    model, rng, theta, method, options = _setup(name, backend)
    if gpu:
        advance = make_gpu_sgd_advance(
            model, model.engine_pieces(), rng, backend, threads=threads, **options
        )
    else:
        advance = make_advance(model, rng, method=method, **options)
    return to_numpy(advance(EnsembleState(theta), _steps(method)).theta)


def gpu_engine_cases() -> tuple[str, ...]:
    """The cases the GPU kernel of the engine runs (SGD of the models drawing their data)."""
    numpy = get_backend("numpy")
    out = []
    for name in CASES:
        model, _, _, method, _ = _setup(name, numpy)
        if select_engine("auto", model, method, "cupy").engine == "compiled":
            out.append(name)
    return tuple(out)


CASES = (
    "isotropic online_sgd (d=40, B=4)",
    "isotropic gd (d=40, xi = t^-1/4)",
    "quadratic noisy_sgd (beta=4, l2=0.1)",
    "pspin online_sgd (d=6, B=6)",
    "anisotropic online_sgd (d=12, s0=3)",
    "teacher-student gd (k=2)",
    "teacher-student online_sgd (k=2, B=3)",
    "linear unit noisy_sgd (beta=8)",
    "cosine interaction gd",
)


def run_selftest(print_fn: Callable[[str], Any] = print, backend: str | None = None) -> bool:
    """Compare each particle method's short run on ``backend`` (default: all others) with NumPy."""
    others = backends_to_compare(backend, print_fn)
    if others is None:
        return False
    ok = True
    numpy = get_backend("numpy")
    compiled = compiled_available()
    if not compiled:
        print_fn("compiled particle engine: not available (numba is not installed)")
    for name in CASES:
        reference = _case(name, numpy)
        results = [
            (other, lambda other=other, name=name: _case(name, get_backend(other)))
            for other in others
        ]
        if compiled and backend in (None, "auto", "numpy"):
            results.append(("compiled engine", lambda name=name: _compiled_case(name)))
        if compiled and "cupy" in others and name in gpu_engine_cases():
            results.append(
                (
                    "GPU engine",
                    lambda name=name: _compiled_case(name, get_backend("cupy"), gpu=True),
                )
            )
        for label, run in results:
            result = run()
            error = float(np.max(np.abs(result - reference)) / np.max(np.abs(reference)))
            passed = math.isfinite(error) and error <= SELFTEST_RTOL
            ok &= passed
            print_fn(
                f"{'ok  ' if passed else 'FAIL'} particles: {name:40s} {label:17s} "
                f"max rel diff {error:.1e}"
            )
    return ok
