"""Mei, Montanari and Nguyen (PNAS 2018): the PDE beside an SGD ensemble, at published size.

Three experiments share this driver: Fig. 1 (isotropic Gaussians, the MMN activation,
``mmn-fig1``), the non-monotone activation at two initial widths (``mmn-nonmonotone``) and the
variable-selection example with ReLU units on the 4-D grid (``mmn-relu-selection``). The
config of each is a ``meanfield run`` config (``[model]``, ``[init]``, ``[dynamics]``,
``[pde]``, ``[particles]``) plus an ``[experiment]`` table:

==================  ============================================================================
replicas_per_job    SGD replicas per job (jobs run in parallel and are cached); default: all
clt                 CLT predictions of the spread (``meanfield.pde.linearized``); default true
clt_cells           cells of the (1-D) grid the CLT layer runs on; default: the PDE's grid.
                    Its cost grows like cells^2 (the backward solves) and cells x d (the SGD
                    term's Monte Carlo), and a variance needs no fine grid
hist_times          times of the ``|w|`` histograms of the figure (1-D models); optional
variants            ``{label = ["section.key=value", ...]}``: runs of the same protocol that
                    differ in a few keys (the two ``kappa`` of the non-monotone example)
methods             the PDE methods run (``pde.method``): default ``["grid",
                    "characteristics"]`` when ``dynamics.beta = inf``, else ``["grid"]``
characteristics     ``["section.key=value", ...]`` applied to the characteristics solver's job
                    only (a box that holds its points' tails, its number of points)
==================  ============================================================================

Every variant is one PDE job per method and ``ceil(replicas / replicas_per_job)`` SGD jobs,
cached in ``DIR/runs`` (:func:`~compare.reproduce.base.run_cached`).

**Two PDE methods.** Where the dynamics is noiseless both the grid and the characteristics
solver (docs/solver.md) run. The **reference** PDE (``risk_pde``, ``mean_<axis>_pde``, the
agreement test, the figures) is the characteristics solver when its refinement converged
(``reference_characteristics`` = 1), else the grid; every method's own numbers are reported as
``risk_pde_<method>``, ``mean_<axis>_pde_<method>``, ``risk_spread_clt_<method>``, and
``seconds_pde_<method>``.

**What "agree" means.** At each saved time the gap ``mean_R R(mu_N) - R(rho_t)`` is compared
with two predictions of the project's own finite-N layer:

* the ``1/N`` bias of ``N`` i.i.d. units drawn from ``rho_t``,
  ``(1/N)(int U(th, th) rho_t - int int U rho_t rho_t)`` (exact at ``t = 0``, where the units
  are i.i.d.; later it gives the size of the O(1/N) bias, not its exact value);
* the noise of the replica mean: its measured standard error over the ``R`` replicas. The
  CLT layer's prediction of the spread of one network, ``sqrt((Var(phi_0) + N x SGD term) /
  N)`` (:func:`compare.study.clt_predictions`), is reported beside the measured spread
  (``risk_spread_clt``, ``risk_spread_sgd``), not used in the test: on coarse CLT grids it
  is grid-dependent while the risk falls fastest (docs/reproductions.md).

``risk_agree`` is 1 when ``|gap| <= |bias_iid| + 3 se``, else 0.

``results.csv`` quantities (``x`` the time; with variants the quantity is prefixed
``LABEL:``): ``risk_pde``, ``risk_sgd`` (mean over replicas, ``ours_low/high`` +- 2 standard
errors), ``risk_gap`` (``ours_low/high`` +- 2 measured standard errors), ``risk_bias_iid``,
``risk_spread_sgd`` (standard deviation over replicas), ``risk_spread_clt`` (its CLT
prediction), ``risk_agree``; per grid axis
``mean_<axis>_pde``, ``mean_<axis>_sgd`` (+- 2 standard errors) and ``mean_<axis>_z`` (the gap
in measured standard errors); ``seconds_pde`` and ``seconds_sgd`` (summed over jobs).
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from meanfield.config import apply_overrides, parse_config
from meanfield.config.builders import build_particle_setup, model_from_config
from meanfield.fields import ConfigError, Context, Field, allowed, is_finite_number, toml_kind
from particles.run import build_particle_run, simulate

from ..study import clt_predictions, pde_frames
from .base import Experiment, Job, Row, register

__all__ = [
    "EXPERIMENTS",
    "MMNExperiment",
    "Plan",
    "Table",
    "Variant",
    "analyse",
    "iid_bias",
    "run_job",
    "variants",
]

#: the run sections of an experiment's config (the rest is the experiment's own)
RUN_SECTIONS = ("model", "init", "dynamics", "pde", "particles")
#: half-width of the agreement band in standard errors of the replica mean
AGREE_SE = 3.0


@dataclass(frozen=True)
class Variant:
    """One run of an experiment: its label (empty without variants) and its config text."""

    label: str
    config: str
    n: int
    replicas: int

    def prefix(self, quantity: str) -> str:
        return f"{self.label}:{quantity}" if self.label else quantity


def _toml(table: Mapping[str, Any]) -> str:
    """The run sections as TOML text (the job's cache key and its input)."""
    return tomli_w.dumps({k: table[k] for k in RUN_SECTIONS if k in table})


def _check_variants(value: Any, ctx: Context) -> str | None:
    text = 'a non-empty table {label = ["section.key=value", ...]}'
    bad = [
        label
        for label, sets in value.items()
        if toml_kind(sets) != "array" or not all(isinstance(x, str) for x in sets)
    ]
    if bad:
        return f"{text}; experiment.variants.{bad[0]} is not such a list"
    return None if value else text


def _check_methods(value: Any, ctx: Context) -> str | None:
    ok = bool(value) and len(set(value)) == len(value) and all(m in METHODS for m in value)
    return None if ok else "a non-empty list of distinct names from 'grid', 'characteristics'"


#: the PDE methods an MMN reproduction may run
METHODS = ("grid", "characteristics")
KEYS: dict[str, dict[str, Field]] = {
    "experiment": {
        "replicas_per_job": Field(
            ("integer",),
            "SGD replicas per job (default: all)",
            None,
            allowed("an integer >= 1", lambda v: v >= 1),
        ),
        "clt": Field(("boolean",), "CLT predictions of the spread", True),
        "clt_cells": Field(
            ("integer",),
            "cells of the (1-D) grid the CLT layer runs on (default: the PDE's grid)",
            None,
            allowed("an integer >= 8", lambda v: v >= 8),
        ),
        "hist_times": Field(
            ("array",),
            "times of the |w| histograms of the figure (1-D models)",
            None,
            allowed("a list of finite numbers", lambda v: all(map(is_finite_number, v))),
        ),
        "variants": Field(
            ("table",),
            "runs of the same protocol that differ in a few keys",
            {"": []},
            _check_variants,
        ),
        "methods": Field(
            ("array",), "the PDE methods run (default: both where noiseless)", None, _check_methods
        ),
        "characteristics": Field(
            ("array",),
            "overrides of the characteristics solver's job only",
            [],
            allowed(
                "a list of 'section.key=value' strings",
                lambda v: all(isinstance(x, str) for x in v),
            ),
        ),
    }
}


def variants(raw: Mapping[str, Any], table: Mapping[str, list[str]]) -> list[Variant]:
    """The runs of the config: one per entry of ``table`` (label -> overrides), each checked."""
    for section in RUN_SECTIONS:
        if not isinstance(raw.get(section), Mapping):
            raise ConfigError(
                f"[{section}] is missing: an MMN reproduction runs the PDE and an SGD ensemble"
            )
    out = []
    for label, sets in table.items():
        run = apply_overrides({k: raw[k] for k in RUN_SECTIONS}, sets)
        config = parse_config(run)  # every key checked before any work
        if config.particles["method"] != "online_sgd":
            raise ConfigError("particles.method must be 'online_sgd' (the papers' SGD)")
        out.append(
            Variant(
                str(label),
                _toml(run),
                int(config.particles["n"]),
                int(config.particles["replicas"]),
            )
        )
    return out


def run_job(
    config: str,
    part: str,
    replicas: int,
    seed: int,
    clt: bool,
    clt_cells: int = 0,
    method: str = "grid",
) -> dict[str, np.ndarray]:
    """One job: the PDE of ``pde.method = method`` with its finite-N predictions (``part =
    "pde"``; the grid's CLT layer on ``clt_cells`` cells when > 0) or ``replicas`` replicas of
    SGD with seed ``seed`` (``part = "sgd"``)."""
    parsed = parse_config(tomllib.loads(config))
    if part == "sgd":
        frames = simulate(
            build_particle_run(build_particle_setup(parsed), replicas=replicas, seed=seed)
        )
        return {
            "time": np.array([f.t for f in frames]),
            "reduced": np.stack([f.reduced for f in frames]).astype(np.float32),
            "risk": np.stack([f.risk for f in frames]),
        }
    parsed = parse_config(tomllib.loads(config), [f"pde.method={method!r}"])
    setup, mem = pde_frames(parsed)
    grid, model = setup.grid, setup.model
    out: dict[str, np.ndarray] = {"time": mem.series("t"), "risk": mem.series("risk")}
    quadratures = [mem.quadrature(i) for i in range(len(mem.frames))]
    out["self_term"] = np.array([np.sum(w * model.self_interaction(p)) for p, w in quadratures])
    out["potential"] = np.array([np.sum(w * model.potential(p)) for p, w in quadratures])
    dens = [np.asarray(f.density) for f in mem.frames]
    for a, name in enumerate(grid.names):
        others = tuple(b for b in range(grid.ndim) if b != a)
        spacing = grid.cell_volume / grid.spacing[a]
        out[f"centres_{name}"] = grid.centres(a)
        out[f"marginal_{name}"] = (
            np.stack([d.sum(axis=others) * spacing for d in dens]) if others else np.stack(dens)
        )
        out[f"mean_{name}"] = np.array([np.sum(w * p[:, a]) for p, w in quadratures])
    if mem.run is not None:
        out["converged"] = np.array(float(mem.run.converged))
        out["n_points"] = np.array(float(mem.run.weights.size))
    if clt:
        observables = ["risk", "mean_r"] if grid.ndim == 1 else ["risk", "mean"]
        if clt_cells and mem.run is None:
            parsed = parse_config(tomllib.loads(config), [f"pde.cells={clt_cells}"])
            setup, mem = pde_frames(parsed)
        predictions = clt_predictions(parsed, setup, mem, observables)
        predictions.pop("method", None)
        for key, value in predictions.items():
            name = key.replace("/sgd", "_sgd").replace("mean_r", f"mean_{grid.names[0]}")
            out[f"clt_{name}"] = np.asarray(value)
    return out


def iid_bias(pde: Mapping[str, np.ndarray], r_sharp: float, n: int) -> np.ndarray:
    """``(1/N)(int U(th, th) rho_t - int int U rho_t rho_t)`` at the saved times, with
    ``int int U rho rho = R(rho) - R_# - 2 int V rho`` (noiseless, no ridge)."""
    double = pde["risk"] - r_sharp - 2.0 * pde["potential"]
    return (pde["self_term"] - double) / n


def _method_config(v: Variant, method: str, sets: Sequence[str]) -> str:
    """The variant's config text for the PDE job of ``method`` (``sets`` applied to the
    characteristics solver's), checked."""
    if method != "characteristics" or not sets:
        return v.config
    run = apply_overrides(tomllib.loads(v.config), [*sets, "pde.method='characteristics'"])
    parse_config(run)
    return _toml(run)


def _jobs(
    v: Variant,
    per_job: int,
    clt: bool,
    clt_cells: int,
    methods: Sequence[str],
    sets: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """The PDE jobs (one per method, in order), then the SGD jobs."""
    seed0 = int(tomllib.loads(v.config)["particles"].get("seed", 0))
    jobs = [
        {
            "config": _method_config(v, m, sets),
            "part": "pde",
            "replicas": 0,
            "seed": 0,
            "clt": clt,
            "clt_cells": clt_cells if m == "grid" else 0,
            "method": m,
        }
        for m in methods
    ]
    left, j = v.replicas, 0
    while left > 0:
        k = min(per_job, left)
        jobs.append(
            {
                "config": v.config,
                "part": "sgd",
                "replicas": k,
                "seed": seed0 + 1000 * j,
                "clt": False,
                "clt_cells": 0,
                "method": "",
            }
        )
        left, j = left - k, j + 1
    return jobs


def reference_method(pdes: Mapping[str, Mapping[str, np.ndarray]]) -> str:
    """The characteristics solver where it ran and its refinement converged, else the grid."""
    chars = pdes.get("characteristics")
    if chars is not None and float(chars.get("converged", 0.0)) == 1.0:
        return "characteristics"
    return "grid" if "grid" in pdes else next(iter(pdes))


def _spread_clt(pde: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    """The CLT prediction of the spread of one network's risk (NaN without the CLT layer)."""
    if "clt_risk" not in pde:
        return np.full(len(pde["time"]), math.nan)
    var = pde["clt_risk"] + (n * pde["clt_risk_sgd"] if "clt_risk_sgd" in pde else 0.0)
    return np.sqrt(np.maximum(var, 0.0) / n)


def analyse(
    v: Variant,
    pdes: Mapping[str, Mapping[str, np.ndarray]],
    sgd: Sequence[Mapping[str, np.ndarray]],
    r_sharp: float,
    axes: Sequence[str],
    experiment: str,
) -> tuple[list[Row], dict]:
    """The rows of one variant and the arrays its figure needs (``pdes``: method -> job)."""
    reference = reference_method(pdes)
    pde = pdes[reference]
    times = pde["time"]
    risk = np.concatenate([s["risk"] for s in sgd], axis=1)  # (T, R)
    reduced = np.concatenate([s["reduced"] for s in sgd], axis=1)  # (T, R, N, k)
    n_rep = risk.shape[1]
    mean, spread = (
        risk.mean(axis=1),
        risk.std(axis=1, ddof=1) if n_rep > 1 else np.full(len(times), math.nan),
    )
    se_meas = spread / math.sqrt(n_rep)
    bias = iid_bias(pde, r_sharp, v.n)
    spread_clt = _spread_clt(pde, v.n)
    se = se_meas
    gap = mean - pde["risk"]
    agree = np.abs(gap) <= np.abs(bias) + AGREE_SE * se
    rows: list[Row] = []

    def add(
        q: str, t: float, value: float, low: float | None = None, high: float | None = None
    ) -> None:
        rows.append(Row(experiment, v.prefix(q), t, float(value), low, high))

    for i, t in enumerate(times):
        add("risk_pde", t, pde["risk"][i])
        add("risk_sgd", t, mean[i], mean[i] - 2 * se_meas[i], mean[i] + 2 * se_meas[i])
        add("risk_gap", t, gap[i], gap[i] - 2 * se[i], gap[i] + 2 * se[i])
        add("risk_bias_iid", t, bias[i])
        add("risk_spread_sgd", t, spread[i])
        add("risk_spread_clt", t, spread_clt[i])
        add("risk_agree", t, float(agree[i]))
        for method, job in pdes.items():
            add(f"risk_pde_{method}", t, job["risk"][i])
            add(f"risk_spread_clt_{method}", t, _spread_clt(job, v.n)[i])
    means_sgd = reduced.astype(np.float64).mean(axis=2)  # (T, R, k)
    for a, name in enumerate(axes):
        m = means_sgd[..., a]
        m_mean = m.mean(axis=1)
        m_se = (
            m.std(axis=1, ddof=1) / math.sqrt(n_rep) if n_rep > 1 else np.full(len(times), math.nan)
        )
        for i, t in enumerate(times):
            add(f"mean_{name}_pde", t, pde[f"mean_{name}"][i])
            add(f"mean_{name}_sgd", t, m_mean[i], m_mean[i] - 2 * m_se[i], m_mean[i] + 2 * m_se[i])
            z = (m_mean[i] - pde[f"mean_{name}"][i]) / m_se[i] if m_se[i] > 0 else math.nan
            add(f"mean_{name}_z", t, z)
            for method, job in pdes.items():
                add(f"mean_{name}_pde_{method}", t, job[f"mean_{name}"][i])
    add("reference_characteristics", None, float(reference == "characteristics"))
    for method, job in pdes.items():
        if "n_points" in job:
            add(f"points_{method}", None, float(job["n_points"]))
    curves = {
        "time": times,
        "risk_pde": pde["risk"],
        "risk_sgd": risk,
        "bias": bias,
        "means_sgd": means_sgd,
        "reduced": reduced,
        **{k: pde[k] for k in pde if k.startswith(("mean_", "marginal_", "centres_"))},
    }
    return rows, curves


@dataclass(frozen=True)
class Plan:
    """The checked config: the ``[experiment]`` keys, the variants, the PDE methods and each
    variant's jobs (one PDE job per method, then the SGD jobs)."""

    keys: dict[str, Any]
    variants: list[Variant]
    methods: list[str]
    jobs: list[list[dict[str, Any]]]


@dataclass(frozen=True)
class Table:
    """The rows of every variant and the arrays each variant's figure needs, by label."""

    rows: list[Row]
    curves: dict[str, dict]


class MMNExperiment(Experiment):
    """The PDE beside an SGD ensemble; ``figure`` names the function of
    :mod:`compare.reproduce.mmn_figures` that draws it."""

    keys = KEYS
    run_sections = RUN_SECTIONS
    job = staticmethod(run_job)

    def __init__(self, name: str, title: str, paper: str, figure: str, **kwargs: Any) -> None:
        super().__init__(name, title, paper, **kwargs)
        self.figure = figure

    def plan(self, raw: dict[str, Any]) -> Plan:
        keys = self.check(raw)["experiment"]
        runs = variants(raw, keys["variants"])
        per_job = keys["replicas_per_job"] or runs[0].replicas
        methods = _methods(keys["methods"], runs)
        jobs = [
            _jobs(v, per_job, keys["clt"], keys["clt_cells"] or 0, methods, keys["characteristics"])
            for v in runs
        ]
        return Plan(keys, runs, methods, jobs)

    def jobs(self, plan: Plan) -> list[dict[str, Any]]:
        return [p for jobs in plan.jobs for p in jobs]

    def tabulate(self, plan: Plan, jobs: list[Job]) -> Table:
        rows: list[Row] = []
        curves: dict[str, dict] = {}
        pde_s = dict.fromkeys(plan.methods, 0.0)
        sgd_s = 0.0
        k, n_pde = 0, len(plan.methods)
        for v, v_jobs in zip(plan.variants, plan.jobs, strict=True):
            pdes = {m: j.out for m, j in zip(plan.methods, jobs[k : k + n_pde], strict=True)}
            sgd = [j.out for j in jobs[k + n_pde : k + len(v_jobs)]]
            k += len(v_jobs)
            parsed = parse_config(tomllib.loads(v.config))
            model = model_from_config(parsed)  # its axes and R_#; the grid is in the PDE job
            r_rows, curves[v.label] = analyse(
                v, pdes, sgd, model.r_sharp, model.axis_names, self.name
            )
            curves[v.label]["eps"] = float(parsed.particles["step"])
            rows += r_rows
            for method, job in pdes.items():
                pde_s[method] += float(job["job_seconds"])
            sgd_s += float(sum(s["job_seconds"] for s in sgd))
        rows.append(Row(self.name, "seconds_pde", None, sum(pde_s.values())))
        for method, seconds in pde_s.items():
            rows.append(Row(self.name, f"seconds_pde_{method}", None, seconds))
        rows.append(Row(self.name, "seconds_sgd", None, sgd_s))
        return Table(rows, curves)

    def rows(self, plan: Plan, table: Table) -> list[Row]:
        return table.rows

    def figures(self, plan: Plan, table: Table, out_dir: Path) -> list[Path]:
        from . import mmn_figures  # noqa: PLC0415  (matplotlib only when plotting)

        return getattr(mmn_figures, self.figure)(table.curves, plan.keys, out_dir)

    def summary(self, plan: Plan, rows: list[Row]) -> list[str]:
        agree = [r for r in rows if r.quantity.endswith("risk_agree")]
        return [
            f"PDE and SGD agree (|gap| <= |bias_iid| + {AGREE_SE:g} se) at "
            f"{sum(r.ours for r in agree):.0f} of {len(agree)} times"
        ]


def _methods(value: list[str] | None, runs: Sequence[Variant]) -> list[str]:
    """``experiment.methods``; by default both where every variant is noiseless."""
    noiseless = all(
        math.isinf(parse_config(tomllib.loads(v.config)).dynamics["beta"]) for v in runs
    )
    if value is None:
        return ["grid", "characteristics"] if noiseless else ["grid"]
    if "characteristics" in value and not noiseless:
        raise ConfigError(
            "experiment.methods names 'characteristics' but dynamics.beta is "
            "finite: the characteristics solver is noiseless; allowed: ['grid']"
        )
    return list(value)


PAPER = "Mei, Montanari, Nguyen, PNAS 115 (2018) E7665"
EXPERIMENTS = {
    e.name: register(e)
    for e in (
        MMNExperiment(
            "mmn-fig1",
            "MMN Fig. 1: isotropic Gaussians, d = 40, N = 800, eps = 1e-6, PDE vs SGD",
            PAPER,
            "plot_fig1",
        ),
        MMNExperiment(
            "mmn-nonmonotone",
            "MMN's non-monotone activation, d = 320, kappa = 0.1 and 0.4",
            PAPER,
            "plot_nonmonotone",
        ),
        MMNExperiment(
            "mmn-relu-selection",
            "MMN's variable selection with ReLU units, d = 320, "
            "s0 = 60, on the 4-D (a, b, r1, r2) grid",
            PAPER,
            "plot_relu_selection",
        ),
    )
}
