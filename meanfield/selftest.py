"""``meanfield info --selftest``: the same short runs on NumPy and on every other backend.

The grid PDE on every model, and the characteristics solver (forward, and its reverse pass for
the CLT) on three. With a GPU this checks CuPy against NumPy, and reports whether each fused kernel
compiled (a kernel that did not runs unfused: slower, same numbers). Without one it still runs
the GPU code path on the array-API-strict backend
(:class:`~meanfield.backends.tracing.TracingBackend`),
which proves the hot loop uses only the array API standard and every fused kernel only what
``cupy.fuse`` compiles.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .backends.arrays import FUSION_STATUS, available_backends, get_backend
from .backends.tracing import TracingBackend
from .grid import Grid
from .model import (
    ACTIVATIONS,
    AnisotropicGaussians,
    CosineInteraction,
    IsotropicGaussians,
    LinearUnit,
    NormalLaw,
    QuadraticPotential,
    ScaledChiLaw,
    ScaledChiPairLaw,
    TeacherNetwork,
    TeacherStudent,
    initial_density,
)
from .pde.characteristics import CellRule, CharacteristicsPDE, StepRecord, integrate_points
from .pde.characteristics.adjoint import reverse_pass, risk_functional
from .pde.controller import integrate
from .pde.equation import MeanFieldPDE
from .pde.trackers import InvariantTracker, MemoryTracker

__all__ = ["run_selftest", "backends_to_compare", "SELFTEST_RTOL"]

#: float64 agreement required between backends. Reductions run in a different order on a GPU
#: (round-off 1e-16 per step); over a few hundred steps of a contracting flow this stays far
#: below 1e-10 relative to the largest density value.
SELFTEST_RTOL = 1e-10


def _cases() -> dict[str, tuple[MeanFieldPDE, np.ndarray, list[float]]]:
    radial = Grid(((0.0, 8.0),), (400,), ("r",))
    chi = initial_density(ScaledChiLaw(0.8, 40), radial)
    line = Grid(((-4.0, 5.0),), (200,), ("theta",))
    normal = initial_density(NormalLaw((1.0,), (0.5,)), line)
    mmn, nonmono = ACTIVATIONS["mmn"], ACTIVATIONS["mmn_nonmonotone"]
    return {
        "isotropic d=40 (mmn)": (
            MeanFieldPDE(IsotropicGaussians(40, 0.8, mmn), radial),
            chi,
            [0.0, 1.0],
        ),
        "isotropic d=inf (non-monotone)": (
            MeanFieldPDE(IsotropicGaussians(math.inf, 0.8, nonmono), radial),
            chi,
            [0.0, 1.0],
        ),
        "isotropic d=40 noisy (beta=50, l2=0.01)": (
            MeanFieldPDE(IsotropicGaussians(40, 0.8, mmn), radial, beta=50.0, l2=0.01),
            chi,
            [0.0, 0.1],
        ),
        "isotropic d=40 first order": (
            MeanFieldPDE(IsotropicGaussians(40, 0.8, mmn), radial, order=1),
            chi,
            [0.0, 1.0],
        ),
        "quadratic (Ornstein-Uhlenbeck, beta=4)": (
            MeanFieldPDE(QuadraticPotential(), line, beta=4.0),
            normal,
            [0.0, 0.5],
        ),
        **_multidimensional_cases(),
    }


def _multidimensional_cases() -> dict[str, tuple[MeanFieldPDE, np.ndarray, list[float]]]:
    """The 2-D and 3-D models: anisotropic, teacher-student, linear unit, OU, cosine Gibbs."""
    quarter = Grid(((0.0, 3.0), (0.0, 3.0)), (40, 40), ("r1", "r2"))
    aniso = AnisotropicGaussians(12, 3, 0.6, ACTIVATIONS["mmn"], kernel_tol=1e-6)
    plane = ((-1.5, 2.5), (-2.0, 2.0))
    student = TeacherStudent(
        k=1,
        input_law="uniform",
        trained=("w", "b"),
        bounds=plane,
        target=TeacherNetwork(a=(1.0,), w=((2.0,),), b=(0.5,)),
    )
    plane_grid = Grid(plane, (32, 32), student.axis_names)
    line = Grid(((-3.5, 3.5),), (120,), ("theta",))
    box = Grid(((-3.0, 3.0),) * 3, (16, 16, 16), ("t0", "t1", "t2"))
    square = Grid(((-3.0, 3.0),) * 2, (40, 40), ("t0", "t1"))
    gauss3 = initial_density(NormalLaw((0.3, -0.3, 0.0), (0.35, 0.35, 0.35)), box)
    gauss2 = initial_density(NormalLaw((-0.5, 0.5), (0.3, 0.3)), square)
    return {
        "anisotropic 2-D (d=12, s0=3)": (
            MeanFieldPDE(aniso, quarter),
            initial_density(ScaledChiPairLaw(0.8, 12, 3), quarter),
            [0.0, 0.5],
        ),
        "teacher-student 2-D (w, b)": (
            MeanFieldPDE(student, plane_grid),
            initial_density(NormalLaw((0.5, 0.0), (0.25, 0.25)), plane_grid),
            [0.0, 0.5],
        ),
        "quadratic 3-D per-axis (beta=4)": (
            MeanFieldPDE(QuadraticPotential(stiffness=(1.0, 2.0, 0.5), ndim=3), box, beta=4.0),
            gauss3,
            [0.0, 0.2],
        ),
        "linear unit 2-D (beta=8, l2=0.1)": (
            MeanFieldPDE(LinearUnit(theta_star=(1.0, -0.5)), square, beta=8.0, l2=0.1),
            gauss2,
            [0.0, 0.3],
        ),
        "cosine interaction 1-D (beta=4)": (
            MeanFieldPDE(CosineInteraction(quartic=1.0, quadratic=-1.0, tilt=0.1), line, beta=4.0),
            initial_density(NormalLaw((0.0,), (0.4,)), line),
            [0.0, 1.0],
        ),
    }


def _point_cases() -> dict[str, tuple[CharacteristicsPDE, CellRule, Grid, list[float]]]:
    """The characteristics solver, forward and reverse (the CLT's phi_0 of the risk)."""
    radial = Grid(((0.0, 8.0),), (100,), ("r",))
    square = Grid(((-3.0, 3.0),) * 2, (20, 20), ("t0", "t1"))
    plane = ((-1.5, 2.5), (-2.0, 2.0))
    student = TeacherStudent(
        k=1,
        input_law="uniform",
        trained=("w", "b"),
        bounds=plane,
        target=TeacherNetwork(a=(1.0,), w=((2.0,),), b=(0.5,)),
    )
    plane_grid = Grid(plane, (20, 20), student.axis_names)
    return {
        "points: isotropic d=40 (mmn)": (
            CharacteristicsPDE(
                IsotropicGaussians(40, 0.8, ACTIVATIONS["mmn"]), radial.bounds, scale_grid=radial
            ),
            CellRule.uniform(ScaledChiLaw(0.8, 40).axis_laws(), [16]),
            radial,
            [0.0, 1.0],
        ),
        "points: teacher-student 2-D (w, b)": (
            CharacteristicsPDE(student, plane, scale_grid=plane_grid),
            CellRule.uniform(NormalLaw((0.5, 0.0), (0.25, 0.25)).axis_laws(), [4, 4]),
            plane_grid,
            [0.0, 0.5],
        ),
        "points: linear unit 2-D (l2=0.1)": (
            CharacteristicsPDE(LinearUnit(theta_star=(1.0, -0.5)), square.bounds, l2=0.1),
            CellRule.uniform(NormalLaw((-0.5, 0.5), (0.3, 0.3)).axis_laws(), [4, 4]),
            square,
            [0.0, 0.3],
        ),
    }


def _point_final(
    pde: CharacteristicsPDE, rule: CellRule, grid: Grid, times: list[float], name: str
) -> tuple:
    """Final points and ``phi_0`` of the risk at the last time, stacked; the risk; wall."""
    backend = TracingBackend() if name == "array_api_strict" else get_backend(name)
    points, weights = rule.points()
    mem, record = MemoryTracker(), StepRecord(every=8)
    start = time.perf_counter()
    integrate_points(
        pde, points, weights, times, backend, grid, record=record, trackers=[pde.invariants(), mem]
    )
    phi0 = reverse_pass(
        pde, points, weights, record, [risk_functional()], backend, frames=[len(times) - 1]
    ).phi0["risk"][0]
    values = np.concatenate([mem.frames[-1].points.ravel(), phi0])
    return values, mem.frames[-1].risk, time.perf_counter() - start


def _final(pde: MeanFieldPDE, rho0: np.ndarray, times: list[float], name: str) -> tuple:
    mem = MemoryTracker()
    start = time.perf_counter()
    # array_api_strict runs the device path, its kernels traced under cupy.fuse's rules
    backend = TracingBackend() if name == "array_api_strict" else get_backend(name)
    integrate(pde, rho0, times, backend, trackers=[InvariantTracker(), mem])
    frame = mem.frames[-1]
    return frame.density, frame.risk, time.perf_counter() - start


def backends_to_compare(backend: str | None, print_fn: Callable[[str], Any]) -> list[str] | None:
    """The backends a self-test compares with NumPy (None when the requested one is missing).

    Default (``None`` or ``"auto"``): CuPy when a GPU is visible, and always array-API-strict.
    """
    have_cupy = "cupy" in available_backends()
    if backend == "cupy" and not have_cupy:
        print_fn("FAIL backend 'cupy' requested: CuPy is not installed or no GPU is visible")
        return None
    others = ["cupy"] if backend == "cupy" or (backend in (None, "auto") and have_cupy) else []
    if backend != "cupy":
        others.append("array_api_strict")
    return others


def run_selftest(print_fn: Callable[[str], Any] = print, backend: str | None = None) -> bool:
    """Compare every model's short run on ``backend`` (default: all others) with NumPy.

    Returns
    -------
    bool
        True when every comparison agrees within :data:`SELFTEST_RTOL`.
    """
    others = backends_to_compare(backend, print_fn)
    if others is None:
        return False
    if "cupy" not in available_backends():
        print_fn("CuPy: not available (no CuPy or no visible GPU); checking array_api_strict")
    ok = True
    runs = [(label, _final, case) for label, case in _cases().items()]
    runs += [(label, _point_final, case) for label, case in _point_cases().items()]
    for label, final, case in runs:
        reference, ref_risk, ref_wall = final(*case, "numpy")
        for name in others:
            density, risk, wall = final(*case, name)
            error = float(np.max(np.abs(density - reference)) / np.max(np.abs(reference)))
            passed = error <= SELFTEST_RTOL and abs(risk - ref_risk) <= SELFTEST_RTOL
            ok &= passed
            print_fn(
                f"{'ok  ' if passed else 'FAIL'} {label:42s} {name:17s} "
                f"max rel diff {error:.1e}  risk {risk:.10f}  "
                f"({wall:.2f} s vs numpy {ref_wall:.2f} s)"
            )
    if "cupy" in others:
        _report_fusion(print_fn)
    print_fn("selftest passed" if ok else "selftest FAILED")
    return ok


def _report_fusion(print_fn: Callable[[str], Any]) -> None:
    """Which fused kernels compiled on the GPU (a fallback is slower, never wrong)."""
    unfused = sorted(name for name, status in FUSION_STATUS.items() if status != "fused")
    print_fn(
        f"fused kernels: {len(FUSION_STATUS) - len(unfused)} of {len(FUSION_STATUS)} "
        "compiled and agree with the unfused code"
    )
    if unfused:
        print_fn(f"WARN running unfused (slower, same results): {', '.join(unfused)}")
