"""Tables of a CLT study against its prediction: ``N Var`` measured over replicas, the
prediction ``Var(phi_0) + N x (SGD term)``, and their ratio with a 95 % interval.

The interval of a variance from ``R`` independent replicas of a normal fluctuation is
``s^2 (R - 1) / chi2_{R-1}(0.975 or 0.025)``; the ratio's interval divides it by the prediction
(whose own Monte Carlo error, for the SGD term, is a few per cent and is not included).

    meanfield study data/configs/mmn-isotropic-study-split.toml -o split.h5
    python benchmarks/clt_split_report.py split.h5
"""

from __future__ import annotations

import sys

import h5py
import numpy as np
from scipy import stats


def main(path: str) -> None:
    with h5py.File(path, "r") as f:
        study = f["study"]
        ns, times = study["n"][()], study["time"][()]
        print(f"{path}: predictions by the {study.attrs.get('clt_method', '?')}\n")
        for name in ("risk", "mean_r", "second_moment_r"):
            if name not in study:
                continue
            table = study[name]
            values = table["values"][()]  # (n, replica, time)
            pred = (
                table["n_var_predicted_sgd"][()]
                if "n_var_predicted_sgd" in table
                else np.broadcast_to(table["n_var_predicted"][()], (len(ns), len(times)))
            )
            pure = table["n_var_predicted"][()]
            print(f"**{name}**\n")
            print(
                "| t | Var(phi_0) | "
                + " | ".join(
                    f"N = {n}: N Var measured [95 %] | predicted | ratio [95 %]" for n in ns
                )
                + " |"
            )
            print("|---|---|" + "---|---|---|" * len(ns))
            for k, t in enumerate(times):
                cells = [f"{t:g}", f"{pure[k]:.3g}"]
                for i, n in enumerate(ns):
                    sample = values[i, :, k]
                    sample = sample[np.isfinite(sample)]
                    r = sample.size
                    var = n * np.var(sample, ddof=1)
                    lo = var * (r - 1) / stats.chi2.ppf(0.975, r - 1)
                    hi = var * (r - 1) / stats.chi2.ppf(0.025, r - 1)
                    p = pred[i, k]
                    cells += [
                        f"{var:.3g} [{lo:.3g}, {hi:.3g}]",
                        f"{p:.3g}",
                        f"{var / p:.2f} [{lo / p:.2f}, {hi / p:.2f}]" if p > 0 else "-",
                    ]
                print("| " + " | ".join(cells) + " |")
            print()


if __name__ == "__main__":
    main(sys.argv[1])
