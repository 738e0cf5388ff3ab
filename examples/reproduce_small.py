"""A reproduction at small scale: Rotskoff and Vanden-Eijnden's Experiment 1, ours against the
paper's band, from ``results.csv``.

What it shows: ``compare.reproduce.reproduce("rve-kernel", ...)`` (what ``meanfield reproduce
rve-kernel`` runs): Gaussian-kernel units on the sphere learn a 3-spin energy, d = 5, trained by
two gradient flows, the paper's eq. (4.5) as printed ("collocation") and the flow of the
``L^2(mu)`` loss, at n = 8, 16, 32. It runs the shipped small config
(``data/configs/reproduce/rve-kernel.small.toml``) with one override, 3 teachers instead of 2,
so that each width has a median and a range. The reproduction writes its own figures and
``results.csv`` (one row per number: ``experiment, quantity, x, ours, ours_low, ours_high,
paper_low, paper_high``); this script reads the CSV back with ``read_results`` and draws the
test loss and its slope against n beside the paper's values (read off their Fig. 1 as a
factor-3 band around 0.1 at n = 8, the width run here that the paper gives a value for; their
claim that the loss falls faster than ``1/n``).

At this size every run at n = 32, and some at n = 16, stop at the 2e5-step cap before their
loss is flat (the ``converged`` rows of ``results.csv``), and at n = 8 (4.5) reaches about 0.5
against the paper's 0.1: docs/reproductions.md says why (our paper-scale runs and an
independent implementation agree with ours, not with the figure).

Run (from any directory):

    python examples/reproduce_small.py [OUTDIR]

Our figure (and ``summary.json``, the printed numbers) goes to ``OUTDIR``, by default
``./figures-reproduce_small`` in the current directory; the reproduction itself (its figures,
``results.csv``, ``results.md`` and the job cache ``runs/``) to ``OUTDIR/rve-kernel``. A rerun
into the same directory reuses the cached jobs. Time: 35 to 45 s on two shared CPU cores
(18 jobs of 1 to 10 s on a pool of 2 processes).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from compare.reproduce import Options, read_results, reproduce  # noqa: E402

NAME = "reproduce_small"
EXPERIMENT = "rve-kernel"
OVERRIDES = ["study.teachers=3"]  # 2 shipped at small scale (the paper: 10)
#: quantity suffix in results.csv -> the objective's name (printed, and on the figure)
OBJECTIVES = {
    "": ("(4.5) as printed", "(4.5) as printed"),
    "_l2": ("L2(mu) flow", r"$L^2(\mu)$ flow"),
}


def main(out_dir: Path) -> dict:
    start = time.perf_counter()
    run_dir = out_dir / EXPERIMENT
    # progress=False: one line per finished job instead of a progress bar
    reproduce(
        EXPERIMENT,
        run_dir,
        scale="small",
        overrides=OVERRIDES,
        options=Options(workers=2, progress=False),
    )
    rows = read_results(run_dir / "results.csv")  # numbers as floats, empty cells as None

    def table(quantity: str) -> list[dict]:
        return sorted(
            (r for r in rows if r["quantity"] == quantity),
            key=lambda r: r["x"] if r["x"] is not None else 0.0,
        )

    print(
        f"\n{EXPERIMENT}, small scale, overrides {OVERRIDES}: "
        f"{time.perf_counter() - start:.1f} s; from {run_dir / 'results.csv'}:"
    )
    print("objective            n  test loss: median (range over teachers)    paper")
    summary: dict = {}
    for suffix, (label, _) in OBJECTIVES.items():
        for r in table("loss" + suffix):
            band = (
                f"[{r['paper_low']:.3g}, {r['paper_high']:.3g}]"
                if r["paper_low"] is not None
                else ""
            )
            ours = f"{r['ours']:.3g} ({r['ours_low']:.3g} - {r['ours_high']:.3g})"
            print(f"{label:18s} {r['x']:3.0f}  {ours:42s} {band}".rstrip())
        slope = table("slope" + suffix)[0]
        claim = "<= -1 (faster than 1/n)" if slope["paper_high"] is not None else ""
        ours = (
            f"{slope['ours']:+.2f} [{slope['ours_low']:+.2f}, {slope['ours_high']:+.2f}]"
            " (95 % bootstrap)"
        )
        print(f"{label:18s} slope {ours:41s} {claim}".rstrip())
        summary["slope" + suffix] = [slope["ours"], slope["ours_low"], slope["ours_high"]]

    # ---- the figure: loss against n (left), slope against the paper's claim (right)
    fig, (ax, ax_slope) = plt.subplots(
        1, 2, figsize=(9, 3.6), constrained_layout=True, gridspec_kw={"width_ratios": [2.2, 1]}
    )
    for (suffix, (_, label)), colour, marker in zip(
        OBJECTIVES.items(), ("tab:blue", "tab:red"), "os", strict=True
    ):
        loss = table("loss" + suffix)
        n = np.array([r["x"] for r in loss])
        median = np.array([r["ours"] for r in loss])
        low = np.array([r["ours_low"] for r in loss])
        high = np.array([r["ours_high"] for r in loss])
        ax.errorbar(
            n,
            median,
            yerr=[median - low, high - median],
            fmt=marker + "-",
            color=colour,
            capsize=3,
            ms=5,
            label=f"ours, {label}: median, range",
        )
    paper = [r for r in rows if r["quantity"] == "loss" and r["paper_low"] is not None]
    for k, r in enumerate(paper):  # the paper's values: a band at each n it gives
        ax.fill_between(
            [r["x"] / 1.08, r["x"] * 1.08],
            r["paper_low"],
            r["paper_high"],
            color="k",
            alpha=0.25,
            lw=0,
            label="paper (Fig. 1, factor-3 band)" if k == 0 else None,
        )
    ax.set_xscale("log", base=2)
    ax.set_xticks(n, [f"{v:.0f}" for v in n])
    ax.set_yscale("log")
    ax.set_xlabel("number of units $n$")
    ax.set_ylabel(r"test loss $E (f - f_n)^2 / 2$")
    ax.set_title("(a) test loss against width")
    ax.legend(frameon=False, fontsize="small", loc="lower left")

    for k, suffix in enumerate(OBJECTIVES):
        s = table("slope" + suffix)[0]
        ax_slope.errorbar(
            [k],
            [s["ours"]],
            yerr=[[s["ours"] - s["ours_low"]], [s["ours_high"] - s["ours"]]],
            fmt="os"[k],
            color=("tab:blue", "tab:red")[k],
            capsize=4,
            ms=6,
        )
    ax_slope.axhspan(-4.0, -1.0, color="k", alpha=0.12, lw=0, label="paper: faster than $1/n$")
    ax_slope.axhline(-1.0, color="k", lw=0.8)
    ax_slope.set_xticks([0, 1], [tex for _, tex in OBJECTIVES.values()], fontsize="small")
    ax_slope.set_xlim(-0.6, 1.6)
    ax_slope.set_ylim(-4.0, 0.0)
    ax_slope.set_ylabel("slope of the median loss against $n$")
    ax_slope.set_title("(b) slope, 95 % bootstrap")
    ax_slope.legend(frameon=False, fontsize="small", loc="upper right")

    out_dir.mkdir(parents=True, exist_ok=True)
    figure = out_dir / "reproduce-rve-kernel.png"
    fig.savefig(figure, dpi=100)
    plt.close(fig)
    print(f"wrote {figure}")
    print(
        "the reproduction's own figures:", ", ".join(sorted(p.name for p in run_dir.glob("*.png")))
    )

    summary["figures"] = [str(figure)]
    summary["loss"] = [[r["x"], r["ours"]] for r in table("loss")]
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"total {time.perf_counter() - start:.1f} s")
    return summary


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd() / f"figures-{NAME}")
