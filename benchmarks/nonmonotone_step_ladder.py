"""SGD from kappa = 0.1 in MMN's non-monotone example at d = 320, against the step.

The units collapse towards w = 0 as in the DD, but stall at a radius set by the step; above a
step of about 2e-5 they escape the trap and learn. Prints the mean |w| and the mean exact risk
at t = 2 for each step (N = 800, 2 replicas; about 3 minutes on two idle cores). The numbers of
docs/reproductions.md's non-monotone section come from this script.

    python benchmarks/nonmonotone_step_ladder.py [--steps 4e-5 2e-5 1e-5 5e-6]
"""

from __future__ import annotations

import argparse
import time
import tomllib
from pathlib import Path

from meanfield.config import parse_config
from meanfield.config.builders import build_particle_setup
from particles.run import build_particle_run, simulate

CONFIG = (
    Path(__file__).resolve().parents[1]
    / "data"
    / "configs"
    / "reproduce"
    / "mmn-nonmonotone.paper.toml"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=float, nargs="+", default=[4e-5, 2e-5, 1e-5, 5e-6])
    args = parser.parse_args()
    with CONFIG.open("rb") as fh:
        base = tomllib.load(fh)
    run = {k: base[k] for k in ("model", "init", "dynamics", "particles")}
    print("| eps | mean |w| at t = 2 | risk at t = 2 | wall (s) |")
    print("|---|---|---|---|")
    for eps in args.steps:
        start = time.perf_counter()
        config = parse_config(
            run,
            [
                "init.kappa=0.1",
                f"particles.step={eps}",
                "particles.replicas=2",
                "dynamics.t_end=2.0",
                "dynamics.save_times=[0.0, 1.0, 2.0]",
            ],
        )
        last = simulate(build_particle_run(build_particle_setup(config)))[-1]
        print(
            f"| {eps:g} | {last.reduced[..., 0].mean():.4f} | {last.risk.mean():.4f} | "
            f"{time.perf_counter() - start:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
