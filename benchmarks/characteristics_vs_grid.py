"""Time to accuracy of the two PDE methods on MMN's Fig. 1 (isotropic model, d = 40, t <= 20).

Both methods run in this process on this machine. The reference ``R*(20)`` is the
characteristics solver at a resolution far beyond the ladder's (512 initial points, refinement
to a stretch of 0.005 and a risk change of 1e-9, step tolerance 1e-10), cross-checked against
the grid's Richardson extrapolation from its two finest runs. Reported per run: wall time
(median of ``--repeat`` runs), ``|R(20) - R*|``, and for each method the least wall time whose
error is below ``--target`` (1e-4, the issue's accuracy); then throughput, point-steps (or
cell-steps) per second, and the reverse pass's time and peak memory (tracemalloc) for the CLT.

    python benchmarks/characteristics_vs_grid.py            # about 6 minutes on two cores
"""

from __future__ import annotations

import argparse
import statistics
import time
import tomllib
import tracemalloc
from pathlib import Path

import numpy as np

from meanfield.config import parse_config
from meanfield.config.builders import build_pde_setup
from meanfield.config.driver import solve_in_memory
from meanfield.pde.characteristics.adjoint import moment, reverse_pass, risk_functional

CONFIG = Path(__file__).resolve().parents[1] / "data/configs/reproduce/mmn-fig1.paper.toml"
GRID_CELLS = (2400, 4800, 9600)
#: (initial points, refine, step tol, risk_tol) of the characteristics ladder: the first two
#: rungs set the refinement's stopping rule (risk_tol) at the scale of a 1e-4 target, the others
#: keep the default (1e-6) and show how far the accuracy goes
LADDER = (
    (32, 0.05, 1e-5, 2e-5),
    (32, 0.02, 1e-6, 1e-5),
    (32, 0.02, 1e-6, 1e-6),
    (64, 0.01, 1e-7, 1e-6),
    (128, 0.01, 1e-7, 1e-6),
    (256, 0.005, 1e-8, 1e-6),
)
REFERENCE = [
    "pde.points=512",
    "pde.refine=0.005",
    "pde.risk_tol=1e-8",
    "pde.tol=1e-10",
    "pde.refine_passes=10",
]


def _config(sets: list[str]):
    raw = tomllib.loads(CONFIG.read_text())
    raw.pop("experiment", None)
    raw.pop("particles", None)
    return parse_config(raw, ["dynamics.save_times=[0.0, 5.0, 10.0, 20.0]", *sets])


def _run(sets: list[str], repeat: int):
    walls, result = [], None
    for _ in range(repeat):
        setup = build_pde_setup(_config(sets))
        start = time.perf_counter()
        result = solve_in_memory(setup)
        walls.append(time.perf_counter() - start)
    return statistics.median(walls), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--target", type=float, default=1e-4)
    args = parser.parse_args()
    _, ref = _run(["pde.method='characteristics'", "pde.cells=800", *REFERENCE], 1)
    r_star = ref.frames[-1].risk
    rows = []
    grid_risks = {}
    for cells in GRID_CELLS:
        wall, res = _run([f"pde.cells={cells}"], args.repeat)
        grid_risks[cells] = res.frames[-1].risk
        steps = res.frames[-1].step
        rows.append(
            ("grid", f"{cells} cells", wall, res.frames[-1].risk, steps, cells * steps / wall)
        )
    fine, finer = grid_risks[GRID_CELLS[-2]], grid_risks[GRID_CELLS[-1]]
    richardson = finer + (finer - fine) / 3.0
    for points, refine, tol, risk_tol in LADDER:
        sets = [
            "pde.method='characteristics'",
            "pde.cells=800",
            f"pde.points={points}",
            f"pde.refine={refine}",
            f"pde.tol={tol}",
            f"pde.risk_tol={risk_tol}",
        ]
        wall, res = _run(sets, args.repeat)
        final = res.run.passes[-1]
        rows.append(
            (
                "characteristics",
                f"{points} points, refine {refine}, tol {tol:g}, "
                f"risk_tol {risk_tol:g} ({final.n_points} points, "
                f"{len(res.run.passes)} passes)",
                wall,
                res.frames[-1].risk,
                final.n_steps,
                final.n_points * final.n_steps / final.seconds,
            )
        )
    print(
        f"R*(20) = {r_star:.8f} (characteristics, {ref.run.weights.size} points, "
        f"{ref.run.reason}); grid "
        f"Richardson from {GRID_CELLS[-2]} and {GRID_CELLS[-1]} cells: {richardson:.8f} "
        f"(difference {abs(richardson - r_star):.1e})\n"
    )
    print(
        "| method | resolution | wall (s) | R(20) | error | steps | points or cells x steps per s |"
    )
    print("|---|---|---|---|---|---|---|")
    best = {}
    for method, label, wall, risk, steps, rate in rows:
        error = abs(risk - r_star)
        if error <= args.target:
            best[method] = min(best.get(method, np.inf), wall)
        print(
            f"| {method} | {label} | {wall:.1f} | {risk:.8f} | {error:.1e} | {steps} | {rate:.3g} |"
        )
    print(
        f"\ntime to |error| <= {args.target:g}: "
        + ", ".join(f"{m} {w:.1f} s" for m, w in best.items())
    )
    if len(best) == 2:
        print(f"ratio characteristics / grid: {best['characteristics'] / best['grid']:.3f}")
    # the reverse pass (CLT) of the 128-point run, with peak memory
    setup = build_pde_setup(
        _config(
            [
                "pde.method='characteristics'",
                "pde.cells=800",
                "pde.points=128",
                "pde.refine=0.01",
                "pde.tol=1e-7",
            ]
        )
    )
    res = solve_in_memory(setup)
    run = res.run
    funs = [risk_functional(), moment("mean_r", 0), moment("second_moment_r", 0, 2)]
    start = time.perf_counter()
    reverse_pass(setup.pde, run.points0, run.weights, run.record, funs, setup.backend)
    seconds = time.perf_counter() - start
    tracemalloc.start()  # a second sweep for the memory: tracing slows every allocation
    reverse_pass(setup.pde, run.points0, run.weights, run.record, funs, setup.backend)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    n_points, n_axes = run.points0.shape
    features = setup.model.kernel_features(
        run.points0[:1], setup.pde.field(setup.backend).scale_points
    ).n_features
    stage_values = 7 * n_points * (features * (n_axes + 1) + n_axes + 1) * 8
    states = run.record.n_steps // run.record.every + run.record.every
    checkpoints = states * n_points * n_axes * 8
    adjoint = 2 * len(funs) * len(run.frames) * n_points * (n_axes + 1) * 8
    print(
        f"\nreverse pass ({n_points} points, {run.record.n_steps} steps, {len(funs)} "
        f"functionals x {len(run.frames)} frames, checkpoint every {run.record.every} steps): "
        f"{seconds:.1f} s against the final pass's {run.passes[-1].seconds:.1f} s forward; "
        f"peak memory {peak / 2**20:.2f} MiB; of which the checkpoints and one segment's "
        f"states {checkpoints / 2**20:.2f} MiB, one step's stages (model values) "
        f"{stage_values / 2**20:.2f} MiB, the adjoints {adjoint / 2**20:.2f} MiB"
    )


if __name__ == "__main__":
    main()
