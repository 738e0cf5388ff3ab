"""Grid-convergence table of the risk on the shipped MMN isotropic config (d = 40 and d = inf).

Runs the shipped config through the public driver at three grid sizes per kernel, plus the
first-order scheme on the finest grid for comparison, and prints a Markdown table of R(rho_t)
at t = 0, 0.5, 1, 2, 5, 10, 20 with the observed convergence order
``p = log2(|R_h - R_h/2| / |R_h/2 - R_h/4|)``.

    python benchmarks/grid_convergence.py [--cells 2400 4800 9600] [--out DIR] [--markdown FILE]

Takes about 10 minutes on two CPU cores.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np

from meanfield.config import load_config
from meanfield.config.driver import run_pde
from meanfield.io import load

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "data" / "configs" / "mmn-isotropic.toml"
TIMES = [0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0]


def run_risk(out_dir: Path, d: str, cells: int, order: int) -> tuple[np.ndarray, float]:
    """Risk at TIMES for one grid; returns (risk, wall seconds)."""
    overrides = [
        f"model.d={d}",
        "init.d=40",
        f"pde.cells={cells}",
        f"pde.order={order}",
        'pde.backend="numpy"',
        f"dynamics.save_times={TIMES}",
    ]
    path = out_dir / f"iso-d{d}-n{cells}-o{order}.h5"
    start = time.perf_counter()
    run_pde(load_config(CONFIG, overrides), path, force=True, progress=False)
    return load(path).groups["pde"]["risk"], time.perf_counter() - start


def table(d: str, cells: list[int], out_dir: Path) -> list[str]:
    risks, walls = {}, {}
    for n in cells:
        risks[n], walls[n] = run_risk(out_dir, d, n, 2)
    first, first_wall = run_risk(out_dir, d, cells[-1], 1)
    header = (
        "| t | "
        + " | ".join(f"{n} cells" for n in cells)
        + f" | order p | {cells[-1]} cells, 1st order |"
    )
    lines = [
        f"**d = {d}** (kernel), second-order MUSCL (MC limiter) unless stated",
        "",
        header,
        "|" + "---|" * (len(cells) + 3),
    ]
    for i, t in enumerate(TIMES):
        r = [risks[n][i] for n in cells]
        diffs = [abs(r[k] - r[k + 1]) for k in range(len(r) - 1)]
        p = math.log2(diffs[-2] / diffs[-1]) if diffs[-1] > 0 and len(diffs) > 1 else math.nan
        lines.append(
            f"| {t:g} | " + " | ".join(f"{v:.8f}" for v in r) + f" | {p:.2f} | {first[i]:.8f} |"
        )
    lines.append("")
    lines.append(
        "wall time (s): "
        + ", ".join(f"{n}: {walls[n]:.0f}" for n in cells)
        + f", first order {cells[-1]}: {first_wall:.0f}"
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, nargs=3, default=[2400, 4800, 9600])
    parser.add_argument("--out", type=Path, default=None, help="keep the run files here")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the table here")
    args = parser.parse_args()
    out_dir = args.out or Path(tempfile.mkdtemp())
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for d in ("40", "inf"):
        lines += table(d, args.cells, out_dir) + [""]
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()
