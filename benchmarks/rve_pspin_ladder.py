"""RVE Experiment 2: the time-step ladder (one width, a few teachers, several dt).

The shipped paper protocol of ``EXPERIMENT`` (``rve-pspin`` at d = 10 or ``rve-pspin-d25``)
with only RVE's time step ``protocol.dt`` changed, one ``meanfield reproduce EXPERIMENT --scale
paper`` per step, its jobs cached in ``OUT/dt=<dt>/runs`` (an interrupted ladder continues
where it stopped). Prints one Markdown table: per step, the medians over the teachers of the
loss before the quench, its trend over the second half of the SGD phase (the flat check, with
its standard error), the loss after the quench (its range), the loss relative to
the trivial ``E f^2 / 2``, the change over the late quench, the largest over the smallest loss
of the quench's second half and ``dt lambda_max`` at the end (stable below 2; see
:func:`compare.reproduce.rve_pspin.stability`).

    python benchmarks/rve_pspin_ladder.py --experiment rve-pspin-d25 -o DIR \
        --n 64 --teachers 2 --dt 0.1 0.04 0.02 0.01 0.004
    python benchmarks/rve_pspin_ladder.py -o /tmp/l --scale small --n 10 --teachers 2 \
        --dt 0.02 0.01 --set protocol.sgd_steps=400 --set protocol.quench_steps=40  # smoke test

Cost: the step count is fixed by the protocol (2e6 + 2e5 steps), so every rung costs the same:
at n = 64 about 2.5 CPU-minutes a teacher at d = 10 and 5 at d = 25.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from compare.reproduce import reproduce
from compare.reproduce.base import Options


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="rve-pspin", help="rve-pspin or rve-pspin-d25")
    parser.add_argument("-o", "--out", type=Path, default=Path("rve-pspin-ladder"))
    parser.add_argument("--n", type=int, default=64, help="the one width")
    parser.add_argument("--teachers", type=int, default=2)
    parser.add_argument("--dt", type=float, nargs="+", default=[0.1, 0.04, 0.02, 0.01, 0.004])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scale", default="paper", help="small: a smoke test of the script")
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        help="one more override for every rung (KEY=VALUE, repeatable)",
    )
    args = parser.parse_args()
    common = [f"study.n=[{args.n}]", f"study.teachers={args.teachers}", *args.sets]
    options = Options(workers=args.workers, progress=False)
    lines = [
        f"\n{args.experiment}, n = {args.n}, {args.teachers} teachers, medians over the teachers",
        "\n| dt (theirs) | step (ours, dt / 2) | loss before the quench | trend over its second "
        "half, se | loss after the quench (range) | / (E f^2 / 2) | change over the "
        "late quench | late-quench max / min | `dt lambda_max` at the end |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for dt in sorted(args.dt, reverse=True):
        rows = reproduce(
            args.experiment,
            args.out / f"dt={dt:g}",
            scale=args.scale,
            overrides=[*common, f"protocol.dt={dt!r}"],
            options=options,
        )
        by = {(r.quantity, r.x): r for r in rows}

        def value(quantity: str, by: dict = by) -> float:
            return by[(quantity, args.n)].ours

        loss = by[("loss", args.n)]
        after = f"{loss.ours:.3g} ({loss.ours_low:.3g} - {loss.ours_high:.3g})"
        lines.append(
            f"| {dt:g} | {dt / 2:g} | {value('loss_pre_quench'):.3g} | "
            f"{value('pre_quench_trend'):+.1%}, {value('pre_quench_trend_se'):.1%} | {after} | "
            f"{value('loss_relative'):.3g} | {value('post_quench_change'):+.1%} | "
            f"{value('quench_spread'):.2f} | {value('stability'):.2f} |"
        )
    print("\n".join(lines))
    print(f"\nscale {args.scale}, output in {args.out}")


if __name__ == "__main__":
    main()
