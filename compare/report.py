"""A Markdown summary of a study file: slopes, N Var against the CLT prediction, t = 0 checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from meanfield.io import load

from . import metrics

__all__ = ["study_report"]


def study_report(path: str | Path) -> str:
    """Tables of a study file, as Markdown (``meanfield info`` style, for docs and notes)."""
    data = load(path)
    study = data.groups["study"]
    n, times = study["n"], study["time"]
    lines = [
        f"N = {', '.join(str(int(v)) for v in n)}; times {', '.join(f'{t:g}' for t in times)}",
        "",
    ]
    known = ("risk", "mean_r", "second_moment_r", "w1", "ks")
    present = {
        k.split("/")[1]
        for k in data.groups
        if k.startswith("study/") and k.count("/") == 1 and k != "study/raw"
    }
    for name in [k for k in known if k in present] + sorted(present - set(known)):
        table = data.groups[f"study/{name}"]
        replicas = int(np.sum(np.isfinite(table["values"][0, :, 0])))
        lines += [
            f"### {name} ({replicas} replicas per N)",
            "",
            "| t | slope [95 % CI] | "
            + ("N Var at each N | predicted |" if "n_var" in table else "mean at each N |"),
            "|---|---|---|" + ("---|" if "n_var" in table else ""),
        ]
        for i, t in enumerate(times):
            lo, hi = table["slope_ci"][i]
            row = f"| {t:g} | {table['slope'][i]:.3f} [{lo:.3f}, {hi:.3f}] | "
            if "n_var" in table:
                row += ", ".join(f"{v:.4g}" for v in table["n_var"][:, i]) + " | "
                pred = table.get("n_var_predicted")
                row += f"{pred[i]:.4g}" if pred is not None else "-"
                if "n_var_predicted_sgd" in table and t > 0:
                    row += "; with the SGD term: " + ", ".join(
                        f"{v:.4g}" for v in table["n_var_predicted_sgd"][:, i]
                    )
                row += " |"
            else:
                row += ", ".join(f"{v:.4g}" for v in np.nanmean(table["values"][..., i], axis=1))
                row += " |"
            lines.append(row)
        lines.append("")
    lines += _initial_checks(data, n)
    return "\n".join(lines)


def _initial_checks(data: object, n: np.ndarray) -> list[str]:
    """t = 0: sqrt(N) E W1 against its limit, and the risk bias times N."""
    out = []
    if "pde" in data.groups and "study/w1" in data.groups:
        pde = data.groups["pde"]
        edges = _edges(pde["r"])
        limit = metrics.w1_limit_constant(edges, pde["density"][0])
        scaled = np.sqrt(n) * np.nanmean(data.groups["study/w1"]["values"][..., 0], axis=1)
        out.append(
            f"t = 0: sqrt(N) E W1 = {', '.join(f'{v:.4f}' for v in scaled)} "
            f"(limit sqrt(2/pi) int sqrt(F(1-F)) = {limit:.4f})"
        )
    if "study/risk" in data.groups and "pde" in data.groups["study/risk"]:
        bias = data.groups["study/risk"]["bias"][:, 0]
        out.append(f"t = 0: N x (E R(mu_N) - R(rho_0)) = {', '.join(f'{v:.3f}' for v in n * bias)}")
    return out


def _edges(centres: np.ndarray) -> np.ndarray:
    h = centres[1] - centres[0]
    return np.concatenate([[centres[0] - h / 2], centres + h / 2])
