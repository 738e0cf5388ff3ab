"""Grid-convergence table of the risk on the 4-D ReLU selection configs (a, b, r1, r2).

Runs a shipped config through the public driver at several grid sizes (the same box, the
cells per axis scaled together) and prints a Markdown table of R(rho_t) at the config's save
times, with the observed order ``p = log(|R_1 - R_2| / |R_2 - R_3|) / log(n_2 / n_1)`` for
geometric refinements, the mean (a, b, r1) at the last time, and the CPU and wall time of each
run (on a shared machine the CPU time is the one to compare).

    python benchmarks/grid_convergence_4d.py [--config small|full] [--scale 0.75 1 1.5 2]
                                             [--cells 24,12,12,12 36,18,18,18] [--set KEY=VALUE]

``--scale`` multiplies the config's cells per axis (rounded); ``--cells`` lists grids
instead. The tables of docs/grid-convergence.md and their CPU times come from this script.
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from meanfield.config import load_config
from meanfield.config.driver import run_pde
from meanfield.io import load

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {
    "small": ROOT / "data" / "configs" / "mmn-relu-selection.toml",
    "full": ROOT / "data" / "configs" / "full" / "mmn-relu-selection.toml",
}


def run_one(config_path: Path, cells: list[int], out_dir: Path, extra: list[str]) -> dict:
    """Risk and mean coordinates at the save times of one grid, and the wall time."""
    overrides = [f"pde.cells={cells}", 'pde.backend="numpy"', *extra]
    path = out_dir / f"relu-{'x'.join(map(str, cells))}.h5"
    start, cpu = time.perf_counter(), time.process_time()
    run_pde(load_config(config_path, overrides), path, force=True, progress=False)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    data = load(path)
    pde, attrs = data.groups["pde"], data.group_attrs["pde"]
    names = ("a", "b", "r1", "r2")
    volume = math.prod(float(pde[n][1] - pde[n][0]) for n in names)
    means = []
    for rho in pde["density"]:
        mass = rho * volume
        means.append(
            [
                float(np.sum(mass.sum(axis=tuple(b for b in range(4) if b != a)) * pde[n]))
                for a, n in enumerate(names)
            ]
        )
    return {
        "time": np.asarray(pde["time"]),
        "risk": np.asarray(pde["risk"]),
        "means": np.array(means),
        "wall": wall,
        "cpu": cpu,
        "steps": int(attrs["n_steps"]),
    }


def table(
    config_path: Path,
    scales: list[float],
    out_dir: Path,
    extra: list[str],
    grids: list[list[int]] | None = None,
) -> list[str]:
    base = list(load_config(config_path, extra).pde["cells"])
    grids = grids or [[max(2, round(n * s)) for n in base] for s in scales]
    runs = []
    for cells in grids:  # each run reported as it ends (long tables survive an interruption)
        runs.append(run_one(config_path, cells, out_dir, extra))
        print(
            cells,
            "risk",
            np.round(runs[-1]["risk"], 5).tolist(),
            "CPU s",
            round(runs[-1]["cpu"]),
            file=sys.stderr,
            flush=True,
        )
    labels = ["x".join(map(str, c)) for c in grids]
    lines = [
        "| t | " + " | ".join(labels) + " | order p (last three) |",
        "|" + "---|" * (len(grids) + 2),
    ]
    sizes = [c[0] for c in grids]
    for i, t in enumerate(runs[0]["time"]):
        r = [run["risk"][i] for run in runs]
        p = math.nan
        if len(r) >= 3:
            d1, d2 = abs(r[-3] - r[-2]), abs(r[-2] - r[-1])
            ratio = sizes[-2] / sizes[-3]
            geometric = ratio > 1.0 and math.isclose(ratio, sizes[-1] / sizes[-2], rel_tol=0.05)
            if geometric and d1 > 0 and d2 > 0:
                p = math.log(d1 / d2) / math.log(ratio)
        lines.append(f"| {t:g} | " + " | ".join(f"{v:.5f}" for v in r) + f" | {p:.2f} |")
    lines += [
        "",
        "mean (a, b, r1) at the last time: "
        + "; ".join(
            f"{lab}: ({', '.join(f'{v:.3f}' for v in run['means'][-1][:3])})"
            for lab, run in zip(labels, runs, strict=True)
        ),
        "",
        "CPU time, wall time (s) and steps: "
        + ", ".join(
            f"{lab}: {run['cpu']:.0f}, {run['wall']:.0f}, {run['steps']}"
            for lab, run in zip(labels, runs, strict=True)
        ),
        f"machine: {platform.processor() or platform.machine()}, NumPy backend",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=sorted(CONFIGS), default="small")
    parser.add_argument("--scale", type=float, nargs="+", default=[0.75, 1.0, 1.5, 2.0])
    parser.add_argument(
        "--cells",
        type=str,
        nargs="+",
        default=None,
        help="explicit grids instead of --scale, e.g. 24,12,12,12 36,18,18,18",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        help="extra config overrides, e.g. dynamics.t_end=20.0",
    )
    parser.add_argument("--out", type=Path, default=None, help="keep the run files here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = args.out or Path(tmp)
        out_dir.mkdir(parents=True, exist_ok=True)
        grids = [[int(v) for v in c.split(",")] for c in args.cells] if args.cells else None
        print("\n".join(table(CONFIGS[args.config], args.scale, out_dir, args.overrides, grids)))


if __name__ == "__main__":
    main()
