"""RVE Experiment 2: how the unpublished choices move the post-quench loss (d = 10).

One factor at a time from the shipped protocol (``rve-pspin.paper.toml``: c_std = 1,
dt = 0.02, a quench of 2e5 steps), at n = 64 and 128 with 3 teachers, through
``meanfield reproduce rve-pspin --scale paper`` with ``--set`` overrides:

* (a) the initial scale of the output weights ``model.c_std``: 1, 10, 30, 100;
* (b) RVE's time step ``protocol.dt``: 0.004, 0.02, 0.1 (the ladder of docs/reproductions.md
  found the loss before the quench flat from 0.01 up and stable up to 0.2 at n = 64);
* (c) the quench length ``protocol.quench_steps``: 2e5 and 1e6.

Each setting is one reproduction in ``OUT/<label>`` whose jobs are cached in ``OUT/<label>/runs``,
so an interrupted run continues where it stopped (every finished (n, teacher) job is kept).
Prints one Markdown table: the median post-quench loss (range over teachers) at each n, the
slope between them, the loss over the paper's band extrapolated to that n (their 0.009 to 0.013
at n = 256, times 256 / n: their Fig. 3 falls like 1/n), the convergence rows, and whether the
quench can settle (``quench_spread``, ``stability``: ``dt lambda_max``, stable below 2).

    python benchmarks/rve_pspin_sensitivity.py -o rve-pspin-sensitivity [--workers 2]
    python benchmarks/rve_pspin_sensitivity.py -o DIR --only c_std=30 dt=0.004
    python benchmarks/rve_pspin_sensitivity.py -o /tmp/s --scale small --n 10 20 --teachers 2 \
        --set protocol.sgd_steps=400 --set protocol.quench_steps=40     # a smoke test

Cost on 2 cores (one job per core): about 30 CPU-minutes per setting (n = 64: 2.5 min a
teacher, n = 128: 7 min), the 1e6-step quench about three times that.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from compare.reproduce import reproduce
from compare.reproduce.base import Options

#: (label, overrides) of every setting; the first is the shipped protocol
SETTINGS = (
    ("shipped", []),
    ("c_std=10", ["model.c_std=10.0"]),
    ("c_std=30", ["model.c_std=30.0"]),
    ("c_std=100", ["model.c_std=100.0"]),
    ("dt=0.004", ["protocol.dt=0.004"]),
    ("dt=0.1", ["protocol.dt=0.1"]),
    ("quench=1e6", ["protocol.quench_steps=1000000"]),
)
#: RVE's post-quench loss at n = 256, d = 10 (Fig. 2 inset, read off)
PAPER_N256 = (0.009, 0.013)


def paper_band(n: int) -> tuple[float, float]:
    """The paper's band carried to width ``n`` along their 1/n scaling."""
    return PAPER_N256[0] * 256 / n, PAPER_N256[1] * 256 / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", type=Path, default=Path("rve-pspin-sensitivity"))
    parser.add_argument("--n", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--teachers", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scale", default="paper", help="small: a smoke test of the script")
    parser.add_argument("--only", nargs="+", help="labels of the settings to run")
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        help="one more override for every setting (KEY=VALUE, repeatable)",
    )
    args = parser.parse_args()
    common = [f"study.n={args.n!r}", f"study.teachers={args.teachers}", *args.sets]
    options = Options(workers=args.workers, progress=False)
    table = []
    for label, sets in SETTINGS:
        if args.only and label not in args.only:
            continue
        rows = reproduce(
            "rve-pspin",
            args.out / label,
            scale=args.scale,
            overrides=[*common, *sets],
            options=options,
        )
        table.append((label, {(r.quantity, r.x): r for r in rows}))
    widths = sorted(args.n)
    head = " | ".join(f"loss, n = {n} (range) | / paper band" for n in widths)
    print(
        f"\n| setting | {head} | slope | flat before the quench | change over the late quench "
        "| late-quench max / min | `dt lambda_max` at the end |"
    )
    print("|---|" + "---|---|" * len(widths) + "---|---|---|---|---|")
    for label, rows in table:
        cells = []
        for n in widths:
            loss = rows[("loss", n)]
            lo, hi = paper_band(n)
            cells.append(f"{loss.ours:.3g} ({loss.ours_low:.3g} - {loss.ours_high:.3g})")
            cells.append(f"{loss.ours / math.sqrt(lo * hi):.1f}")
        slope = rows.get(("slope_loss", None))
        flat = [rows[("pre_quench_flat_fraction", n)].ours for n in widths]
        post = [rows[("post_quench_change", n)].ours for n in widths]
        spread = [rows[("quench_spread", n)].ours for n in widths]
        edge = [rows[("stability", n)].ours for n in widths]
        print(
            f"| {label} | "
            + " | ".join(cells)
            + " | "
            + (f"{slope.ours:.2f} [{slope.ours_low:.2f}, {slope.ours_high:.2f}]" if slope else "")
            + " | "
            + ", ".join(f"{f:.0%}" for f in flat)
            + " | "
            + ", ".join(f"{p:+.0%}" for p in post)
            + " | "
            + ", ".join(f"{v:.2f}" for v in spread)
            + " | "
            + ", ".join(f"{v:.2f}" for v in edge)
            + " |"
        )
    print(
        "\nloss / paper band: the median over the geometric middle of the band "
        f"{PAPER_N256} x 256 / n; the factor the shipped protocol misses is its value."
    )
    print(
        f"widths {widths}, teachers {args.teachers}, scale {args.scale}; "
        f"{np.sum([len(r) for _, r in table])} rows read"
    )


if __name__ == "__main__":
    main()
