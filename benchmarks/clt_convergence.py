"""The CLT prediction of MMN Fig. 1 against resolution: the grid adjoint and the
characteristics adjoint side by side.

``Var(phi_0)`` of the risk and of the mean of ``|w|`` (population GD's limit of ``N Var``, no
SGD term) at t = 2, 5, 10 and 20, for the grid's linearised equation on 300, 600 and 1,200
cells and for the characteristics solver's discrete adjoint on M and 2M initial points (with
refinement), and the wall time of each.

    python benchmarks/clt_convergence.py        # about 15 minutes on two cores
"""

from __future__ import annotations

import time
import tomllib
from pathlib import Path

from compare.study import clt_predictions
from meanfield.config import parse_config
from meanfield.config.builders import build_pde_setup
from meanfield.config.driver import solve_in_memory

CONFIG = Path(__file__).resolve().parents[1] / "data/configs/reproduce/mmn-fig1.paper.toml"
TIMES = [0.0, 2.0, 5.0, 10.0, 20.0]
RUNS = [
    ("grid, 300 cells", ["pde.cells=300"]),
    ("grid, 600 cells", ["pde.cells=600"]),
    ("grid, 1200 cells", ["pde.cells=1200"]),
    ("characteristics, 64 points", ["pde.method='characteristics'", "pde.points=64"]),
    ("characteristics, 128 points", ["pde.method='characteristics'", "pde.points=128"]),
    ("characteristics, 256 points", ["pde.method='characteristics'", "pde.points=256"]),
]


def main() -> None:
    raw = tomllib.loads(CONFIG.read_text())
    raw.pop("experiment", None)
    common = [f"dynamics.save_times={TIMES}", "particles.method='gd'", "pde.cells=800"]
    print(
        "| method | points | wall (s) | "
        + " | ".join(f"Var risk ({t:g})" for t in TIMES[1:])
        + " | "
        + " | ".join(f"Var mean r ({t:g})" for t in TIMES[1:])
        + " |"
    )
    print("|---|---|---|" + "---|" * (2 * len(TIMES) - 2))
    for label, sets in RUNS:
        config = parse_config(raw, [*common, *sets])
        start = time.perf_counter()
        setup = build_pde_setup(config)
        frames = solve_in_memory(setup)
        pred = clt_predictions(config, setup, frames, ["risk", "mean_r"])
        wall = time.perf_counter() - start
        size = frames.run.weights.size if frames.run is not None else setup.grid.n_cells
        print(
            f"| {label} | {size} | {wall:.0f} | "
            + " | ".join(f"{v:.4g}" for v in pred["risk"][1:])
            + " | "
            + " | ".join(f"{v:.4g}" for v in pred["mean_r"][1:])
            + " |",
            flush=True,
        )


if __name__ == "__main__":
    main()
