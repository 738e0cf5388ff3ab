"""SGD against the converged PDE in MMN's ReLU variable selection (paper size), against the
step and the width.

The characteristics solver converges this 4-D PDE (docs/grid-convergence.md); SGD with the
paper's N = 800 and eps = 2e-4 sits above it from t = 2 to 10. This ladder runs SGD at smaller
steps and a larger width (4 replicas each, t up to 10) and prints the mean exact risk and mean
``r1`` beside the PDE's, so that the gap can be read as a bias in the step (shrinking with eps),
a finite-N effect (shrinking with N), or neither; ``r2``, the norm of the weights on the
uninformative coordinates, shows where SGD's step noise holds units that the PDE shrinks. About
15 minutes on two cores (the N = 3,200 run 8 of them).

    python benchmarks/relu_selection_sgd_ladder.py
"""

from __future__ import annotations

import argparse
import math
import time
import tomllib
from pathlib import Path

import numpy as np

from meanfield.config import parse_config
from meanfield.config.builders import build_particle_setup, build_pde_setup
from meanfield.config.driver import solve_in_memory
from particles.run import build_particle_run, simulate

CONFIG = (
    Path(__file__).resolve().parents[1]
    / "data"
    / "configs"
    / "reproduce"
    / "mmn-relu-selection.paper.toml"
)
TIMES = "[0.0, 2.0, 5.0, 10.0]"
LADDER = ((800, 2e-4), (800, 1e-4), (800, 5e-5), (3200, 2e-4))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=4)
    args = parser.parse_args()
    with CONFIG.open("rb") as fh:
        base = tomllib.load(fh)
    common = ["dynamics.t_end=10.0", f"dynamics.save_times={TIMES}"]
    pde_sets = [*base["experiment"]["characteristics"], "pde.method='characteristics'"]
    run = {k: base[k] for k in ("model", "init", "dynamics", "pde")}
    pde = solve_in_memory(build_pde_setup(parse_config(run, [*common, *pde_sets])))
    times = pde.series("t")
    quads = [pde.quadrature(i) for i in range(len(times))]
    r1 = [float(np.sum(w * p[:, 2])) for p, w in quads]
    r2 = [float(np.sum(w * p[:, 3])) for p, w in quads]
    print(
        "| run | wall (s) | "
        + " | ".join(f"R({t:g})" for t in times[1:])
        + " | "
        + " | ".join(f"mean r1 ({t:g})" for t in times[1:])
        + " | "
        + " | ".join(f"mean r2 ({t:g})" for t in times[1:])
        + " |"
    )
    print("|---|---|" + "---|" * (3 * len(times) - 3))
    print(
        "| PDE (characteristics) | | "
        + " | ".join(f"{v:.4f}" for v in pde.series("risk")[1:])
        + " | "
        + " | ".join(f"{v:.4f}" for v in r1[1:])
        + " | "
        + " | ".join(f"{v:.4f}" for v in r2[1:])
        + " |",
        flush=True,
    )
    run = {k: base[k] for k in ("model", "init", "dynamics", "particles")}
    for n, eps in LADDER:
        start = time.perf_counter()
        config = parse_config(
            run,
            [
                *common,
                f"particles.n={n}",
                f"particles.step={eps}",
                f"particles.replicas={args.replicas}",
            ],
        )
        frames = simulate(build_particle_run(build_particle_setup(config)))
        wall = time.perf_counter() - start
        cells = []
        for frame in frames[1:]:
            risk = np.asarray(frame.risk)
            cells.append(f"{risk.mean():.4f} ± {risk.std(ddof=1) / math.sqrt(risk.size):.4f}")
        means = [f"{np.asarray(f.reduced)[..., a].mean():.4f}" for a in (2, 3) for f in frames[1:]]
        print(
            f"| SGD, N = {n}, eps = {eps:g} | {wall:.0f} | "
            + " | ".join(cells)
            + " | "
            + " | ".join(means)
            + " |",
            flush=True,
        )


if __name__ == "__main__":
    main()
