"""PDE step throughput on the shipped MMN isotropic model, with the per-step cost split.

For each grid (1-D: the shipped isotropic model; 2-D: a teacher-student model on the full (w, b)
plane), times (median of several batches, same process):

* a full Heun step (two right-hand sides, the step-size logic and the stage combination),
* the nonlocal part: Psi[m] = V + Phi (w * (Phi^T m)), the two M x P matrix products,
* the stencil: reconstruction, upwind fluxes and divergence for a given Psi,

and prints a Markdown table. ``--backend cupy`` runs it on a GPU (absolute times are only
meaningful there; on a CPU compare the ratios).

    python benchmarks/pde_step.py [--cells 2400 9600 38400] [--side 256 512] [--backend numpy]

The column "step / (2 x ...)" is the step's cost over its floor (two right-hand sides, each one
nonlocal product and one stencil pass): 1.0 means nothing but the floor. The last two columns
put the step against this machine's limits, both measured in the same process: the compulsory
memory traffic of a step (:func:`compulsory_bytes`) per step time over the bandwidth of a large
copy, and the step's product flops (``8 M P``) per step time over a large FP64 matrix product.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable

import numpy as np

from meanfield.backends import get_backend, to_numpy
from meanfield.backends.scalars import scalars_for
from meanfield.grid import Grid
from meanfield.model import (
    ACTIVATIONS,
    IsotropicGaussians,
    NormalLaw,
    ScaledChiLaw,
    TeacherStudent,
    initial_density,
)
from meanfield.pde.equation import MeanFieldPDE
from meanfield.pde.operators import make_potential_fn, make_transport_fn
from meanfield.pde.solvers.heun import initial_carry, make_heun_attempt


def heun_step_fn(rhs: Callable, backend: object, rho: object) -> Callable[[], object]:
    """One Heun step from ``rho`` (size from the CFL bound, nothing to fit), as the run loop
    makes it: decisions in the loop's scalars, kernels fused on a GPU."""
    propose, commit = make_heun_attempt(rhs, 0.8, backend)
    sx = scalars_for(backend)
    carry, target = initial_carry(rho, 0.0, 0, sx), sx.const(math.inf)
    return lambda: commit(carry, propose(carry, target)).rho


def median_time(
    fn: Callable[[], object],
    sync: Callable[[object], object],
    batches: int = 7,
    min_seconds: float = 0.2,
) -> float:
    """Median seconds per call over ``batches`` batches of enough calls to last min_seconds."""
    sync(fn())
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < min_seconds / batches or n < 3:
        sync(fn())
        n += 1
    per_batch = []
    for _ in range(batches):
        start = time.perf_counter()
        for _ in range(n):
            out = fn()
        sync(out)
        per_batch.append((time.perf_counter() - start) / n)
    return statistics.median(per_batch)


def isotropic_case(cells: int, d: float) -> tuple:
    """The shipped MMN isotropic model on ``cells`` cells of [0, 8]."""
    model = IsotropicGaussians(d, 0.8, ACTIVATIONS["mmn"])
    grid = Grid(((0.0, 8.0),), (cells,), ("r",))
    return model, grid, initial_density(ScaledChiLaw(0.8, 40), grid)


def teacher_student_case(side: int) -> tuple:
    """A 2-D full grid: tanh units with (w, b) trained, Gaussian inputs, target sin(pi x)."""
    bounds = ((-3.0, 3.0), (-3.0, 3.0))
    model = TeacherStudent(
        k=1,
        input_law="gaussian",
        target="sin",
        activation="tanh",
        trained=("w", "b"),
        bounds=bounds,
    )
    grid = Grid(bounds, (side, side), model.axis_names)
    return model, grid, initial_density(NormalLaw((0.5, 0.0), (0.3, 0.3)), grid)


def bench(case: tuple, backend_name: str) -> dict[str, float]:
    backend = get_backend(backend_name)
    xp = backend.xp
    model, grid, rho0 = case
    pde = MeanFieldPDE(model, grid)
    rho = backend.asarray(rho0)
    points = grid.points()
    kernel = model.kernel_features(points)
    psi_fn = make_potential_fn(model.potential(points), kernel, backend.asarray)
    transport = make_transport_fn(grid, 2, "mc", backend.fuse)
    step = heun_step_fn(pde.make_rhs(backend), backend, rho)
    m = xp.reshape(rho, (-1,)) * grid.cell_volume
    psi = xp.reshape(psi_fn(m), grid.shape)

    def sync(x: object) -> object:
        return to_numpy(x if not isinstance(x, tuple) else x[0])

    t_step = median_time(step, sync)
    t_nonlocal = median_time(lambda: psi_fn(m), sync)
    t_stencil = median_time(lambda: transport(rho, psi, xp)[0], sync)
    return {
        "cells": " x ".join(map(str, grid.shape)),
        "features": kernel.n_features,
        "step": t_step,
        "nonlocal": t_nonlocal,
        "stencil": t_stencil,
        "bytes": compulsory_bytes(grid.n_cells, kernel.n_features),
        "flops": 8.0 * grid.n_cells * kernel.n_features,
    }


def compulsory_bytes(cells: int, features: int) -> float:
    """Memory traffic no float64 Heun step can avoid: each right-hand side reads ``Phi`` and
    ``Phi^T`` (``2 M P``) and reads ``rho``, ``Psi`` and writes ``drho`` (``3 M``); the stages
    read and write ``7 M`` more. Everything else (temporaries, padding) is on top."""
    return 8.0 * (2 * (2 * cells * features + 3 * cells) + 7 * cells)


def machine_peaks(backend_name: str) -> tuple[float, float]:
    """Bytes/s of a large copy and FP64 flop/s of a large matrix product, measured here.

    The references against which the step's traffic and products are put (the roofline): what
    this process reaches on this machine, not a datasheet number.
    """
    backend = get_backend(backend_name)
    n = (1 << 26) if backend.name == "cupy" else (1 << 24)
    x = backend.asarray(np.ones(n))
    copy = median_time(lambda: x * 1.0, to_numpy_first, batches=5)
    side = 8192 if backend.name == "cupy" else 1024
    a = backend.asarray(np.ones((side, side)))
    product = median_time(lambda: a @ a, to_numpy_first, batches=3)
    return 16.0 * n / copy, 2.0 * side**3 / product


def to_numpy_first(x: object) -> object:
    """Synchronise on one element (a full copy back would dominate the timing)."""
    return to_numpy(x[(0,) * x.ndim])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cells",
        type=int,
        nargs="+",
        default=[2400, 9600, 38400],
        help="1-D grids (isotropic model)",
    )
    parser.add_argument(
        "--side",
        type=int,
        nargs="*",
        default=[256, 512],
        help="2-D grids side x side (teacher-student, (w, b) trained)",
    )
    parser.add_argument("--backend", default="numpy")
    parser.add_argument("--d", type=float, default=40.0)
    args = parser.parse_args()
    backend = get_backend(args.backend)
    bandwidth, flops = machine_peaks(args.backend)
    print(
        f"backend: {backend.name} ({backend.device}); 1-D: isotropic_gaussians d = {args.d:g}; "
        "2-D: teacher_student"
    )
    print(
        f"measured here: copy {bandwidth / 1e9:.0f} GB/s, FP64 matrix product "
        f"{flops / 1e9:.0f} GFLOP/s"
    )
    print()
    print(
        "| cells | features P | steps/s | us/step | nonlocal us | stencil us | "
        "step / (2 x (nonlocal + stencil)) | bandwidth roofline | FP64 peak |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    cases = [isotropic_case(c, args.d) for c in args.cells]
    cases += [teacher_student_case(side) for side in args.side]
    for case in cases:
        r = bench(case, args.backend)
        floor = 2 * (r["nonlocal"] + r["stencil"])
        roofline = r["bytes"] / r["step"] / bandwidth
        peak = r["flops"] / r["step"] / flops
        print(
            f"| {r['cells']} | {r['features']} | {1 / r['step']:.0f} | {r['step'] * 1e6:.0f} | "
            f"{r['nonlocal'] * 1e6:.0f} | {r['stencil'] * 1e6:.0f} | {r['step'] / floor:.2f} | "
            f"{roofline:.1%} | {peak:.2%} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
