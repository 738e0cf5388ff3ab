"""Convergence of the characteristics solver in the number of points, beside the grid.

Three problems, each a table of the risk (and means) at the saved times against the points of
the initial rule, with and without refinement, and the wall time of each run:

* ``fig1``: MMN Fig. 1 (isotropic, d = 40, 1-D), t up to 20;
* ``anisotropic``: MMN's variable selection with the MMN activation (d = 40, s0 = 8, 2-D),
  ``data/configs/mmn-anisotropic.toml``, t up to 10;
* ``relu``: the ReLU variable selection at paper size (d = 320, s0 = 60, 4-D),
  t up to 20, on the box of ``mmn-relu-selection.paper.toml``'s characteristics runs.

    python benchmarks/characteristics_convergence.py fig1 anisotropic relu
"""

from __future__ import annotations

import argparse
import time
import tomllib
from pathlib import Path

import numpy as np

from meanfield.config import parse_config
from meanfield.config.builders import build_pde_setup
from meanfield.config.driver import solve_in_memory

ROOT = Path(__file__).resolve().parents[1] / "data/configs"
RELU_BOX = "pde.bounds=[[-13.0, 14.0], [-4.0, 13.0], [0.0, 14.0], [0.0, 3.0]]"
PROBLEMS = {
    "fig1": (
        ROOT / "reproduce/mmn-fig1.paper.toml",
        ["dynamics.save_times=[0.0, 2.0, 5.0, 10.0, 20.0]", "pde.cells=800"],
        [
            (["pde.points=64", "pde.refine=0.0"], "64 points"),
            (["pde.points=128", "pde.refine=0.0"], "128 points"),
            (["pde.points=256", "pde.refine=0.0"], "256 points"),
            (["pde.points=512", "pde.refine=0.0"], "512 points"),
            (["pde.points=64"], "64, refined"),
            (["pde.points=128"], "128, refined"),
            (["pde.points=256", "pde.refine=0.005"], "256, refined (0.005)"),
        ],
    ),
    "anisotropic": (
        ROOT / "mmn-anisotropic.toml",
        ["dynamics.save_times=[0.0, 2.0, 5.0, 10.0]"],
        [
            (["pde.points=[16, 16]", "pde.refine=0.0"], "16^2"),
            (["pde.points=[32, 32]", "pde.refine=0.0"], "32^2"),
            (["pde.points=[64, 64]", "pde.refine=0.0"], "64^2"),
            (["pde.points=[16, 16]"], "16^2, refined"),
            (["pde.points=[32, 32]"], "32^2, refined"),
        ],
    ),
    "relu": (
        ROOT / "reproduce/mmn-relu-selection.paper.toml",
        ["dynamics.t_end=20.0", "dynamics.save_times=[0.0, 2.0, 5.0, 10.0, 20.0]", RELU_BOX],
        [
            (["pde.points=[8, 8, 8, 8]", "pde.refine=0.0"], "8^4"),
            (["pde.points=[12, 12, 12, 12]", "pde.refine=0.0"], "12^4"),
            (["pde.points=[16, 16, 16, 16]", "pde.refine=0.0"], "16^4"),
            (
                ["pde.points=[8, 8, 8, 8]", "pde.refine=0.02", "pde.risk_tol=1e-3"],
                "8^4, refined (0.02)",
            ),
        ],
    ),
}


def run(path: Path, common: list[str], sets: list[str]) -> tuple[object, float]:
    raw = tomllib.loads(path.read_text())
    raw.pop("experiment", None)
    raw.pop("particles", None)
    setup = build_pde_setup(parse_config(raw, ["pde.method='characteristics'", *common, *sets]))
    start = time.perf_counter()
    result = solve_in_memory(setup)
    return result, time.perf_counter() - start


def table(name: str) -> None:
    path, common, ladder = PROBLEMS[name]
    print(f"\n### {name}: {path.name} ({', '.join(common)})\n")
    header = None
    for sets, label in ladder:
        result, wall = run(path, common, sets)
        axes = result.setup.grid.names
        times = result.series("t")
        if header is None:
            cols = [f"R({t:g})" for t in times[1:]] + [f"mean {a} ({times[-1]:g})" for a in axes]
            header = "| rule | points | passes | wall (s) | " + " | ".join(cols) + " |"
            print(header)
            print("|" + "---|" * (header.count("|") - 1))
        points, weights = result.quadrature(len(times) - 1)
        means = [float(np.sum(weights * points[:, a])) for a in range(len(axes))]
        run_ = result.run
        print(
            f"| {label} | {run_.weights.size} | {len(run_.passes)} | {wall:.1f} | "
            + " | ".join(f"{r:.6f}" for r in result.series("risk")[1:])
            + " | "
            + " | ".join(f"{m:.4f}" for m in means)
            + " |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("problems", nargs="*", default=list(PROBLEMS), choices=list(PROBLEMS))
    for name in parser.parse_args().problems:
        table(name)


if __name__ == "__main__":
    main()
