"""A reproduction declared entirely outside the package: the law of large numbers.

The "paper": the mean of ``n`` independent standard normal draws errs by
``E|mean| = sqrt(2 / (pi n))``, a slope of ``-1/2`` on log-log axes. One job per
``(n, seed)`` draws ``protocol.repeats`` such means; ``results.csv`` has the mean absolute error
at each ``n`` (its range over the seeds, the exact value as the paper's) and the log-log slope
(95 % bootstrap interval; the paper's ``-1/2``).

The worked example of docs/extending.md, section "A new experiment", which shows this file: one
module and its configs in ``configs/`` beside it. Run it with
``meanfield reproduce tests.plugin_experiments.toy:EXPERIMENT -o DIR``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from compare.fits import loglog_slope
from compare.reproduce.base import Experiment, Job, Row, widths_field
from meanfield.fields import int_at_least


def sample_means(n: int, seed: int, repeats: int) -> dict[str, np.ndarray]:
    """One job: ``repeats`` means of ``n`` standard normal draws (stream ``(seed, n)``)."""
    draws = np.random.default_rng([seed, n]).standard_normal((repeats, n))
    return {"means": draws.mean(axis=1)}


class LawOfLargeNumbers(Experiment):
    """The error of a sample mean against the sample size."""

    keys = {
        "study": {
            "n": widths_field(1, "the sample sizes n"),
            "seeds": int_at_least(1, "jobs (independent streams) per n"),
        },
        "protocol": {"repeats": int_at_least(2, "sample means per job")},
    }
    job = staticmethod(sample_means)

    def jobs(self, plan: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        study, repeats = plan["study"], plan["protocol"]["repeats"]
        return [
            {"n": n, "seed": seed, "repeats": repeats}
            for n in study["n"]
            for seed in range(study["seeds"])
        ]

    def tabulate(self, plan: dict, jobs: list[Job]) -> dict[int, np.ndarray]:
        """``n -> |mean|`` of every draw, ``(seeds, repeats)``."""
        table: dict[int, list] = {}
        for job in jobs:
            table.setdefault(job.params["n"], []).append(np.abs(job.out["means"]))
        return {n: np.array(errors) for n, errors in sorted(table.items())}

    def rows(self, plan: dict, table: dict[int, np.ndarray]) -> list[Row]:
        rows = []
        for n, errors in table.items():
            per_seed = errors.mean(axis=1)
            exact = math.sqrt(2.0 / (math.pi * n))
            rows.append(
                Row(
                    self.name,
                    "abs_error",
                    n,
                    float(errors.mean()),
                    float(per_seed.min()),
                    float(per_seed.max()),
                    exact,
                    exact,
                )
            )
        if len(table) >= 2:
            fit = loglog_slope(np.array(list(table)), [e.ravel() for e in table.values()])
            rows.append(Row(self.name, "slope", None, fit.slope, fit.lo, fit.hi, -0.5, -0.5))
        return rows

    def figures(self, plan: dict, table: dict[int, np.ndarray], out_dir: Path) -> list[Path]:
        import matplotlib  # noqa: PLC0415  (only when plotting)

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415

        n = np.array(list(table))
        fig, ax = plt.subplots(figsize=(4.5, 3.5))
        ax.loglog(n, [e.mean() for e in table.values()], "o", label="ours")
        ax.loglog(n, np.sqrt(2.0 / (np.pi * n)), "-", label="sqrt(2 / (pi n))")
        ax.set_xlabel("n")
        ax.set_ylabel("E |mean|")
        ax.legend()
        path = out_dir / f"{self.name}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return [path]

    def summary(self, plan: dict, rows: list[Row]) -> list[str]:
        return [
            f"slope {r.ours:.3f} [{r.ours_low:.3f}, {r.ours_high:.3f}] (paper -0.5)"
            for r in rows
            if r.quantity == "slope"
        ]


EXPERIMENT = LawOfLargeNumbers(
    "toy-lln",
    "the mean of n normal draws errs by sqrt(2 / (pi n))",
    "Bernoulli, Ars Conjectandi (1713), in its modern form",
    scales=("small",),
    config_dir=Path(__file__).parent / "configs",
)
