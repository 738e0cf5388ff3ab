"""Array operations and host reads per PDE step on the GPU code path, counted on a CPU.

On a GPU a step of the shipped grids is bound by kernel launches and host synchronisations, not
by memory traffic (a 512^2 float64 array streams in about a microsecond on an H100/H200, a CuPy
launch costs several). This script runs the device path on the CPU through
:class:`meanfield.backends.tracing.TracingBackend` (``array_api_strict`` with device-side
scalars and
every fused kernel traced under ``cupy.fuse``'s rules) and counts, per committed step:

* array operations outside fused kernels plus fused-kernel calls (about one launch each),
  fused and unfused;
* reads of device values by the host (each one waits for the device), for two block lengths.

    python benchmarks/launches.py

The counts are exact and machine independent; what a launch costs is measured on a GPU by
``benchmarks/pde_step.py --backend cupy``.
"""

from __future__ import annotations

from meanfield.backends.tracing import TracingBackend
from meanfield.grid import Grid
from meanfield.model import (
    ACTIVATIONS,
    IsotropicGaussians,
    NormalLaw,
    QuadraticPotential,
    ScaledChiLaw,
    initial_density,
)
from meanfield.pde.controller import Loop, integrate
from meanfield.pde.equation import MeanFieldPDE
from meanfield.pde.trackers import InvariantTracker
from meanfield.schedules import TimeChange


def cases() -> dict[str, tuple]:
    grid1 = Grid(((0.0, 8.0),), (240,), ("r",))
    iso = MeanFieldPDE(IsotropicGaussians(40, 0.8, ACTIVATIONS["mmn"]), grid1)
    rho_iso = initial_density(ScaledChiLaw(0.8, 40), grid1)
    grid2 = Grid(((-3.0, 5.0), (-5.0, 4.0)), (26, 24))
    law = initial_density(NormalLaw((1.0, -0.5), (0.4, 0.6)), grid2)
    ou = QuadraticPotential(stiffness=(1.0, 2.5), ndim=2)
    return {
        "1-D, order 2 (MMN isotropic)": (iso, rho_iso, 0.1),
        "1-D, order 1": (MeanFieldPDE(iso.model, grid1, order=1), rho_iso, 0.1),
        "2-D, noiseless": (MeanFieldPDE(ou, grid2), law, 0.2),
        "2-D, noisy (Scharfetter-Gummel)": (MeanFieldPDE(ou, grid2, beta=3.0), law, 0.2),
    }


def operations_per_step(pde: MeanFieldPDE, rho0, t_end: float, fused: bool, checks: bool) -> float:
    backend = TracingBackend(fused=fused)
    trackers = [InvariantTracker()] if checks else []
    with backend.count_operators():
        summary = integrate(pde, rho0, [0.0, t_end], backend, trackers=trackers)
    return backend.operations() / summary.n_steps


def reads_per_step(
    pde: MeanFieldPDE, rho0, t_end: float, sync_every: int
) -> tuple[float, int, int]:
    backend = TracingBackend()
    loop = Loop(
        backend.asarray(rho0),
        0.0,
        0,
        pde.make_rhs(backend),
        0.8,
        pde.make_functionals(backend),
        TimeChange(),
        backend,
        sync_every=sync_every,
    )
    for t in (t_end / 2, t_end):
        loop.advance(t)
    return loop.syncs / loop.step, loop.attempts - loop.step, loop.step


def main() -> None:
    print("Array operations per committed step on the device path (each about one GPU launch)")
    print()
    print("| case | fused | unfused | fused, no invariant checks | unfused, no checks |")
    print("|---|---|---|---|---|")
    table = cases()
    for name, (pde, rho0, t_end) in table.items():
        counts = [
            operations_per_step(pde, rho0, t_end, fused, checks)
            for checks in (True, False)
            for fused in (True, False)
        ]
        print(f"| {name} | " + " | ".join(f"{c:.0f}" for c in counts) + " |", flush=True)
    print()
    print(
        "Host reads of device values per committed step (two frames; wasted attempts past an "
        "output time in brackets)"
    )
    print()
    print("| case | steps | sync_every = 1 | 8 | 32 |")
    print("|---|---|---|---|---|")
    for name, (pde, rho0, t_end) in table.items():
        cells = []
        for k in (1, 8, 32):
            per_step, wasted, steps = reads_per_step(pde, rho0, 20 * t_end, k)
            cells.append(f"{per_step:.3f} ({wasted})")
        print(f"| {name} | {steps} | " + " | ".join(cells) + " |", flush=True)
    print()
    print("(before the device-side step logic: 3 reads per step, none wasted)")


if __name__ == "__main__":
    main()
