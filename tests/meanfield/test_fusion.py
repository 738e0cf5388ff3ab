"""Fused kernels: fusable by construction, checked against the unfused code, fewer launches.

Without a GPU, :class:`~meanfield.backends.tracing.TracingBackend` runs the device path with
every kernel traced under the rules of ``cupy.fuse`` (elementwise operators and functions
only): a run on it proves each kernel would compile as one elementwise kernel, and gives the
same numbers as NumPy.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from meanfield.backends import FUSION_STATUS, available_backends, checked_fusion, get_backend
from meanfield.backends.tracing import NotFusable, TracingBackend
from meanfield.grid import Grid
from meanfield.model import (
    ACTIVATIONS,
    IsotropicGaussians,
    NormalLaw,
    QuadraticPotential,
    ScaledChiLaw,
    initial_density,
)
from meanfield.pde.controller import integrate
from meanfield.pde.equation import MeanFieldPDE
from meanfield.pde.sweep import integrate_sweep
from meanfield.pde.trackers import InvariantTracker, MemoryTracker

STEP_KERNELS = {"heun_plan", "heun_stage", "heun_settle", "heun_combine", "heun_clock"}


def _isotropic(order: int = 2, limiter: str = "mc") -> tuple:
    grid = Grid(((0.0, 8.0),), (160,), ("r",))
    pde = MeanFieldPDE(
        IsotropicGaussians(40, 0.8, ACTIVATIONS["mmn"]), grid, order=order, limiter=limiter
    )
    return pde, initial_density(ScaledChiLaw(0.8, 40), grid)


def _ou_2d(beta: float) -> tuple:
    grid = Grid(((-3.0, 5.0), (-5.0, 4.0)), (26, 24))
    pde = MeanFieldPDE(QuadraticPotential(stiffness=(1.0, 2.5), ndim=2), grid, beta=beta)
    return pde, initial_density(NormalLaw((1.0, -0.5), (0.4, 0.6)), grid)


CASES = {
    "order 2, mc": (lambda: _isotropic(2, "mc"), {"reconstruct_mc", "upwind_flux_0"}),
    "order 2, minmod": (lambda: _isotropic(2, "minmod"), {"reconstruct_minmod"}),
    "order 2, vanleer": (lambda: _isotropic(2, "vanleer"), {"reconstruct_vanleer"}),
    "order 1": (lambda: _isotropic(1), {"upwind_flux_0", "divergence_0"}),
    "2-D noiseless": (lambda: _ou_2d(math.inf), {"upwind_flux_0", "upwind_flux_1"}),
    "2-D noisy": (lambda: _ou_2d(3.0), {"sg_flux_0", "sg_flux_1", "outflow"}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_traced_kernels_are_fusable_and_give_numpys_numbers(case: str) -> None:
    make, kernels = CASES[case]
    pde, rho0 = make()
    times = [0.0, 0.05, 0.15]
    want, got = MemoryTracker(), MemoryTracker()
    integrate(pde, rho0, times, get_backend("numpy"), trackers=[InvariantTracker(), want])
    tracing = TracingBackend()
    integrate(pde, rho0, times, tracing, trackers=[InvariantTracker(), got])
    for a, b in zip(want.frames, got.frames, strict=True):
        assert (a.step, a.tau, a.risk, a.free_energy) == (b.step, b.tau, b.risk, b.free_energy)
        np.testing.assert_array_equal(a.density, b.density)
    assert kernels | STEP_KERNELS | {"invariant_verdict"} <= set(tracing.kernels())


def test_stacked_runs_go_through_the_same_kernels() -> None:
    pde, rho0 = _isotropic()
    stacked = np.stack([rho0, initial_density(ScaledChiLaw(1.1, 40), pde.grid)])
    want = integrate_sweep(pde, stacked, [0.0, 0.1], get_backend("numpy"))
    tracing = TracingBackend()
    got = integrate_sweep(pde, stacked, [0.0, 0.1], tracing)
    np.testing.assert_array_equal(got.density, want.density)
    assert STEP_KERNELS <= set(tracing.kernels())


def test_fusion_cuts_the_operations_per_step_fourfold() -> None:
    """On a GPU each operation is about one launch, the cost of a step at these sizes.

    Counted, not timed: the counts are deterministic. Measured 47 fused against 215 unfused
    per step (order 2, 1-D, with the invariant checks); the bound leaves room for small changes
    of the step, not for a kernel falling back to unfused operations.
    """
    pde, rho0 = _isotropic()
    counts = {}
    for fused in (True, False):
        backend = TracingBackend(fused=fused)
        with backend.count_operators():
            summary = integrate(pde, rho0, [0.0, 0.1], backend, trackers=[InvariantTracker()])
        counts[fused] = backend.operations() / summary.n_steps
    assert counts[True] < 0.3 * counts[False]
    assert counts[True] < 60


@pytest.mark.parametrize(
    "kernel",
    [
        lambda m, a: a[1:],
        lambda m, a: m.sum(a),
        lambda m, a: m.zeros_like(a),
        lambda m, a: a @ a,
        lambda m, a: a if a > 0 else -a,
        lambda m, a: a.shape,
        lambda m, a: float(a),
    ],
)
def test_the_tracer_refuses_what_cupy_fuse_cannot_compile(kernel) -> None:
    fused = TracingBackend().fuse(kernel, "bad")
    with pytest.raises(NotFusable):
        fused(get_backend("array_api_strict").xp.asarray([1.0, -2.0]))


def _double(m, a):
    return 2.0 * a, a > 0


def test_checked_fusion_keeps_a_kernel_that_agrees() -> None:
    xp = np.asarray([1.0, -2.0, math.nan])
    wrapper = checked_fusion(lambda a: _double(np, a), lambda a: _double(np, a), "agrees")
    doubled, positive = wrapper(xp)
    np.testing.assert_array_equal(doubled, 2.0 * xp)
    assert wrapper.status == "fused" and FUSION_STATUS["agrees"] == "fused"


@pytest.mark.parametrize(
    ("fused", "reason"),
    [
        (lambda a: (2.0 * a * (1.0 + 1e-9), a > 0), "differs"),
        (lambda a: (2.0 * a, a >= 0), "differs"),
        (lambda a: (2.0 * a,), "differs"),
        (lambda a: 1 / 0, "ZeroDivisionError"),
    ],
)
def test_checked_fusion_falls_back_when_the_kernel_fails_or_differs(fused, reason) -> None:
    a = np.asarray([1.0, 0.0, 3.0])
    plain = lambda x: _double(np, x)  # noqa: E731
    wrapper = checked_fusion(fused, plain, "broken")
    with pytest.warns(RuntimeWarning, match=reason):
        first = wrapper(a)
    np.testing.assert_array_equal(first[0], 2.0 * a)
    assert wrapper.status == "unfused" and FUSION_STATUS["broken"] == "unfused"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(wrapper(a)[0], 2.0 * a)  # no second warning


def test_checked_fusion_allows_a_fused_multiply_add_rounding() -> None:
    """``a * b + c`` rounded once (FMA) differs from twice by an ulp: that is not a failure."""
    a = np.asarray([0.1, 1.0 / 3.0])
    exact = lambda x: x * 3.0 + 1e-17  # noqa: E731
    nudged = lambda x: np.nextafter(x * 3.0 + 1e-17, np.inf)  # noqa: E731
    wrapper = checked_fusion(nudged, exact, "fma")
    wrapper(a)
    assert wrapper.status == "fused"


def test_numpy_runs_kernels_unfused() -> None:
    backend = get_backend("numpy")
    out = backend.fuse(_double, "double")(np.asarray([1.0, -1.0]))
    np.testing.assert_array_equal(out[0], [2.0, -2.0])


@pytest.mark.skipif("cupy" not in available_backends(), reason="CuPy or a GPU is not available")
@pytest.mark.parametrize("case", list(CASES))
def test_every_kernel_compiles_fused_on_the_gpu(case: str) -> None:
    """On a GPU no kernel may fall back to unfused code (a warning is an error here)."""
    make, kernels = CASES[case]
    pde, rho0 = make()
    memory = MemoryTracker()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        integrate(
            pde, rho0, [0.0, 0.05], get_backend("cupy"), trackers=[InvariantTracker(), memory]
        )
    for name in kernels | STEP_KERNELS | {"invariant_verdict"}:
        assert FUSION_STATUS.get(name) == "fused", name
