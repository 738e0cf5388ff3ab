"""``meanfield study``: LLN and CLT measurements of particle ensembles against the PDE.

One study runs the PDE once, then particle ensembles for every ``N`` of ``[study] n`` with
``[study] replicas`` replicas each, as independent jobs on an executor (a local process pool, or
a dask cluster). Each finished job is written to ``/study/raw`` at once, so nothing computed is
lost if a later job or the study fails. Then, per observable and output time, it records the
values of every replica, the bias ``E<f, mu_N> - <f, rho_t>``, ``N Var<f, mu_N>`` and its CLT
prediction, and the log-log slope against ``N`` with a bootstrap interval (SPEC section 5).
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from meanfield.backends import to_numpy
from meanfield.config import ConfigError, parse_config
from meanfield.config.builders import build_particle_setup, build_pde_setup, build_run_setup
from meanfield.config.driver import PDEFrames, solve_in_memory
from meanfield.io import FrameStore, attach_scales, create_file, write_group_attrs, write_root_attrs
from meanfield.model import model_entry
from meanfield.pde.characteristics.clt import METHOD as CHARACTERISTICS_CLT
from meanfield.pde.characteristics.clt import clt_variances
from meanfield.pde.linearized import (
    first_variation,
    forward_path,
    has_full_space_data,
    sgd_step_variance,
)
from particles.run import build_particle_run, simulate

from . import metrics, observables
from .executors import JobResult, make_executor, run_jobs
from .fits import loglog_slope

__all__ = ["run_study", "simulate_chunk", "StudyResult", "clt_predictions", "pde_frames"]

#: replicas per job: jobs stay short and failures cost little
CHUNK_REPLICAS = 16
#: Monte Carlo inputs and units for the SGD step-size term (relative error ~ 2 / sqrt(n))
SGD_MC_SAMPLES = 4000
MOMENTS = ("mean_r", "second_moment_r")
DISTANCES = {"w1": metrics.w1_to_grid, "ks": metrics.ks_to_grid}


def simulate_chunk(config_toml: str, n: int, replicas: int, seed: int) -> dict[str, np.ndarray]:
    """One job: ``replicas`` replicas of ``n`` particles.

    Returns the reduced coordinates, ``(T, R, n)`` on a 1-D grid (``r``) and ``(T, R, n, k)``
    on a k-D grid, and the risk of shape ``(T, R)``. A model whose registry entry has a study
    protocol (``study_overrides``, e.g. the p-spin model's batch ``P = n/5``) gets its
    overrides for width ``n``.
    """
    config = _protocol_config(tomllib.loads(config_toml), n)
    frames = simulate(
        build_particle_run(build_particle_setup(config), n=n, replicas=replicas, seed=seed)
    )
    reduced = np.stack([f.reduced for f in frames])
    if reduced.shape[-1] == 1 or config.pde is None:  # 1-D grid, or no PDE: first axis only
        reduced = reduced[..., 0]
    return {"reduced": reduced, "risk": np.stack([f.risk for f in frames])}


def _protocol_config(data: dict[str, Any], n: int) -> Any:
    """The config of the jobs of width ``n``: with the model's study protocol applied."""
    config = parse_config(data)
    protocol = model_entry(config.model["name"]).study_overrides
    overrides = list(protocol(config, n)) if protocol is not None else []
    return parse_config(data, overrides) if overrides else config


@dataclass
class StudyResult:
    """The assembled study (host arrays), also written to ``/study``."""

    n: np.ndarray
    times: np.ndarray
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    clt_method: str = ""  # the method of every n_var_predicted ("grid adjoint", ...)


def _job_params(config: Any) -> list[dict[str, Any]]:
    study, seed0 = config.study, int(config.particles["seed"])
    params = []
    for i, n in enumerate(study["n"]):
        left, j = int(study["replicas"]), 0
        while left > 0:
            k = min(CHUNK_REPLICAS, left)
            params.append({"n": int(n), "replicas": k, "seed": seed0 + 100_000 * i + j})
            left, j = left - k, j + 1
    return params


#: how the study names the predictions of the grid's linearised equation
GRID_CLT = "grid adjoint"


def pde_frames(config: Any) -> tuple[Any, PDEFrames]:
    """The PDE setup of ``config`` and its frames at the save times (in memory)."""
    setup = build_pde_setup(config)
    return setup, solve_in_memory(setup)


def run_study(
    config: Any,
    output: str | Path,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    force: bool = False,
    progress: bool = True,
) -> StudyResult:
    """Run the study of ``config`` (needs ``[pde]``, ``[particles]`` and ``[study]``)."""
    with_pde = model_entry(config.model["name"]).pde
    needed = ("pde", "particles", "study") if with_pde else ("particles", "study")
    missing = [s for s in needed if getattr(config, s) is None]
    if missing:
        raise ConfigError(f"a study needs the sections {', '.join(f'[{s}]' for s in missing)}")
    run = build_run_setup(config)  # the model and the backends, once
    probe = build_particle_run(run.particles, n=2, replicas=1)  # check them before any work
    setup, mem = (run.pde, solve_in_memory(run.pde)) if run.pde is not None else (None, None)
    toml_text = config.to_toml()
    backend = probe.backend if setup is None else setup.backend
    with create_file(output, force=force) as f:
        write_root_attrs(
            f,
            config_toml=toml_text,
            seed=int(config.particles["seed"]),
            backend=backend.name,
            device=backend.device,
        )
        if setup is not None:
            _write_pde(f, setup, mem)
        times = np.asarray(config.dynamics["save_times"], dtype=np.float64)
        f.require_group("study").create_dataset("time", data=times).make_scale("time")
        raw = f.require_group("study/raw")
        failures: list[str] = []

        def keep(result: JobResult) -> None:
            if result.error is not None:
                failures.append(result.error)
                write_group_attrs(raw, {"failures": "\n".join(failures)})
            else:
                p = result.params
                grp = raw.require_group(f"n{p['n']}_seed{p['seed']}")
                for key, value in result.value.items():
                    dims = RAW_DIMS[key][: np.ndim(value)]  # 1-D grids store r alone
                    _named_dataset(grp, key, value, dims, {"time": times})
            f.flush()

        jobs = [{"config_toml": toml_text, **p} for p in _job_params(config)]
        with make_executor(scheduler, workers) as executor:
            results = run_jobs(executor, simulate_chunk, jobs, on_result=keep, progress=progress)
        study = (
            _assemble(config, setup, mem, results)
            if setup is not None
            else _assemble_scaling(config, results)
        )
        study.failures = failures
        _write_study(f, study)
    return study


def _write_pde(f: Any, setup: Any, mem: PDEFrames) -> None:
    grid = setup.grid
    group = f.require_group("pde")
    write_group_attrs(group, {"method": setup.method})
    store = FrameStore(group, {name: grid.centres(a) for a, name in enumerate(grid.names)})
    for frame in mem.frames:
        store.append(
            frame.t,
            {
                "density": (frame.density, grid.names),
                "risk": (frame.risk, ()),
                "mass": (frame.mass, ()),
            },
        )


def _stack_by_n(config: Any, results: list[JobResult], key: str) -> dict[int, np.ndarray]:
    """Per ``n``: the job outputs concatenated along the replica axis (axis 1)."""
    out: dict[int, list[np.ndarray]] = {int(n): [] for n in config.study["n"]}
    for res in results:
        if res.error is None:
            out[int(res.params["n"])].append(res.value[key])
    return {n: np.concatenate(v, axis=1) for n, v in out.items() if v}


def _assemble(config: Any, setup: Any, mem: PDEFrames, results: list[JobResult]) -> StudyResult:
    reduced = _stack_by_n(config, results, "reduced")
    risks = _stack_by_n(config, results, "risk")
    ns = np.array(sorted(reduced))
    if ns.size == 0:
        raise RuntimeError("every study job failed; see /study/raw attrs 'failures'")
    times = np.array([fr.t for fr in mem.frames])
    study = StudyResult(ns, times)
    predictions = clt_predictions(config, setup, mem)
    study.clt_method = predictions.pop("method", "")
    if setup.grid.ndim > 1:
        _assemble_multi(config, setup.grid, mem, reduced, risks, study, predictions)
        return study
    edges = setup.grid.edges(0)
    dens = [fr.density for fr in mem.frames]
    for name in config.study["observables"]:
        if name == "risk":
            values = {n: risks[n].T for n in ns}  # (R, T)
            pde = np.array([fr.risk for fr in mem.frames])
        elif name in MOMENTS:
            values = {
                n: np.stack(
                    [observables.empirical(name, reduced[n][t]) for t in range(len(times))], axis=1
                )
                for n in ns
            }
            pde = np.array([_moment(mem, i, name, edges) for i in range(len(dens))])
        else:
            fn = DISTANCES[name]
            values = {
                n: np.stack([fn(reduced[n][t], edges, dens[t]) for t in range(len(times))], axis=1)
                for n in ns
            }
            pde = None
        study.tables[name] = _table(ns, values, pde, predictions.get(name))
        _add_sgd_term(study.tables[name], name, ns, predictions)
    return study


def _moment(mem: PDEFrames, index: int, name: str, edges: np.ndarray) -> float:
    """``<f, rho_t>`` of a moment: exact on the grid's cell averages, the weighted sum over the
    points of the characteristics solver."""
    if mem.run is None:
        return float(observables.on_grid(name, edges, mem.frames[index].density))
    points, weights = mem.quadrature(index)
    return float(np.sum(weights * observables.OBSERVABLES[name].fn(points[:, 0])))


def _add_sgd_term(table: dict, name: str, ns: np.ndarray, predictions: dict) -> None:
    """Online SGD: ``N Var = Var_rho0(phi_0) + N x (step-size term)``."""
    if f"{name}/sgd" in predictions:
        table["n_var_predicted_sgd"] = (
            table["n_var_predicted"][None, :] + ns[:, None] * predictions[f"{name}/sgd"][None, :]
        )


def _assemble_multi(
    config: Any,
    grid: Any,
    mem: PDEFrames,
    reduced: dict,
    risks: dict,
    study: StudyResult,
    predictions: dict[str, Any],
) -> None:
    """2-D and 3-D grids: the risk, the mean of each coordinate (``mean_<axis>``), both with
    their CLT predictions, and the sliced W1 distance to the PDE density."""
    ns, n_times = study.n, len(study.times)
    dens = [fr.density for fr in mem.frames]
    centres = tuple(grid.centres(a) for a in range(grid.ndim))
    for name in config.study["observables"]:
        if name == "risk":
            pde = np.array([fr.risk for fr in mem.frames])
            study.tables["risk"] = _table(
                ns, {n: risks[n].T for n in ns}, pde, predictions.get("risk")
            )
            _add_sgd_term(study.tables["risk"], "risk", ns, predictions)
        elif name == "mean":
            for a, axis in enumerate(grid.names):
                mesh = np.meshgrid(*centres, indexing="ij")[a]
                pde = (
                    np.array([np.sum(d * mesh) * grid.cell_volume for d in dens])
                    if mem.run is None
                    else np.array(
                        [np.sum(w * p[:, a]) for p, w in map(mem.quadrature, range(n_times))]
                    )
                )
                values = {n: reduced[n][..., a].mean(axis=-1).T for n in ns}  # (R, T)
                study.tables[f"mean_{axis}"] = _table(
                    ns, values, pde, predictions.get(f"mean_{axis}")
                )
                _add_sgd_term(study.tables[f"mean_{axis}"], f"mean_{axis}", ns, predictions)
        else:  # sliced_w1
            values = {
                n: np.stack(
                    [
                        metrics.sliced_w1_to_grid(reduced[n][t], centres, dens[t], grid.cell_volume)
                        for t in range(n_times)
                    ],
                    axis=1,
                )
                for n in ns
            }
            study.tables[name] = _table(ns, values, None, None)


def _assemble_scaling(config: Any, results: list[JobResult]) -> StudyResult:
    """Error scaling (no PDE): the test loss of every replica against ``n``, per time."""
    risks = _stack_by_n(config, results, "risk")
    ns = np.array(sorted(risks))
    if ns.size == 0:
        raise RuntimeError("every study job failed; see /study/raw attrs 'failures'")
    study = StudyResult(ns, np.array(config.dynamics["save_times"], dtype=np.float64))
    study.tables["risk"] = _table(ns, {n: risks[n].T for n in ns}, None, None)
    return study


def _table(
    ns: np.ndarray,
    values: Mapping[int, np.ndarray],
    pde: np.ndarray | None,
    predicted: np.ndarray | None,
) -> dict[str, Any]:
    """Statistics of one observable: values (n x replica x time), bias, N Var, slopes."""
    n_rep = max(v.shape[0] for v in values.values())
    n_times = next(iter(values.values())).shape[1]
    padded = np.full((len(ns), n_rep, n_times), np.nan)
    for i, n in enumerate(ns):
        padded[i, : values[n].shape[0]] = values[n]
    table: dict[str, Any] = {"values": padded}
    rng = np.random.default_rng(0)
    if pde is None:  # a distance: fit its mean against N
        errors = [[values[n][:, t] for n in ns] for t in range(n_times)]
    else:
        table["pde"] = pde
        table["bias"] = np.nanmean(padded, axis=1) - pde
        table["n_var"] = ns[:, None] * np.nanvar(padded, axis=1, ddof=1)
        table["normality_pvalue"] = np.array(
            [[_normality(values[n][:, t]) for t in range(n_times)] for n in ns]
        )
        if predicted is not None:
            table["n_var_predicted"] = predicted
        errors = [[np.abs(values[n][:, t] - pde[t]) for n in ns] for t in range(n_times)]
        spread = [
            [(values[n][:, t] - values[n][:, t].mean()) ** 2 for n in ns] for t in range(n_times)
        ]
        var_fits = [_safe_fit(ns, s, rng) for s in spread]
        table["spread_slope"] = np.array([0.5 * v[0] for v in var_fits])
        table["spread_slope_ci"] = np.array([[0.5 * v[1], 0.5 * v[2]] for v in var_fits])
    fits = [_safe_fit(ns, e, rng) for e in errors]
    table["slope"] = np.array([v[0] for v in fits])
    table["slope_ci"] = np.array([[v[1], v[2]] for v in fits])
    return table


def _normality(sample: np.ndarray) -> float:
    """Shapiro-Wilk p-value of the fluctuations across replicas (NaN below 3 replicas or with no
    spread, e.g. t = 0 of a deterministic quantity)."""
    sample = sample[np.isfinite(sample)]
    if sample.size < 3 or np.ptp(sample) == 0:
        return math.nan
    return float(stats.shapiro(sample).pvalue)


def _safe_fit(
    ns: np.ndarray, groups: list[np.ndarray], rng: np.random.Generator
) -> tuple[float, float, float]:
    if len(ns) < 2 or any(np.mean(g) <= 0 for g in groups):
        return (math.nan, math.nan, math.nan)
    fit = loglog_slope(ns, groups, n_boot=1000, rng=rng)
    return (fit.slope, fit.lo, fit.hi)


def clt_predictions(
    config: Any, setup: Any, mem: PDEFrames, observables: Sequence[str] | None = None
) -> dict[str, Any]:
    """Per observable: ``Var_{rho_0}(phi_0)`` at each output time (moments, and the risk
    through ``f = 2 Psi_t``), and for online SGD the step-size term per unit ``N`` as well
    (key ``NAME/sgd``: models with ``sgd_noise_rate``, or whose particles live on the grid),
    so that ``N Var = pred + N sgd``; key ``"method"`` names the method that produced them
    (``"grid adjoint"`` or ``"characteristics adjoint"``).

    The first is the pure CLT limit of population GD (and of SGD as ``eps -> 0``); noisy runs
    get no prediction. Moments: ``mean_r``, ``second_moment_r`` on 1-D grids, ``mean_<axis>``
    on 2-D and 3-D grids. ``observables`` defaults to ``config.study["observables"]``.
    """
    observables = list(config.study["observables"] if observables is None else observables)
    spec = config.particles
    eps = float(spec["step"]) if spec["method"] == "online_sgd" else None
    if mem.run is not None:
        names = (
            observables
            if setup.grid.ndim == 1
            else (
                [n for n in observables if n == "risk"]
                + ([f"mean_{a}" for a in setup.grid.names] if "mean" in observables else [])
            )
        )
        out: dict[str, Any] = dict(
            clt_variances(
                setup, mem.run, names, eps=eps, batch=int(spec["batch"]), n_samples=SGD_MC_SAMPLES
            )
        )
        return {**out, "method": CHARACTERISTICS_CLT}
    out = _grid_clt(config, setup, mem, observables)
    return {**out, "method": GRID_CLT} if out else out


def _grid_clt(config: Any, setup: Any, mem: PDEFrames, observables: list[str]) -> dict[str, Any]:
    """:func:`clt_predictions` by the grid's linearised equation
    (:mod:`meanfield.pde.linearized`)."""
    pde = setup.pde
    if pde.noisy:
        return {}
    grid = pde.grid
    times = [fr.t for fr in mem.frames]
    path = (
        forward_path(pde, setup.rho0, times[-1], time_change=setup.time_change)
        if times[-1] > 0
        else None
    )
    spec = config.particles
    with_sgd = spec["method"] == "online_sgd" and (
        hasattr(pde.model, "sgd_noise_rate") or has_full_space_data(pde.model, grid)
    )
    rhs = pde.make_rhs(setup.backend)
    mesh = np.meshgrid(*(grid.centres(a) for a in range(grid.ndim)), indexing="ij")
    if grid.ndim == 1:
        fns = {"mean_r": mesh[0], "second_moment_r": mesh[0] ** 2}
        wanted = observables
    else:
        fns = {f"mean_{axis}": mesh[a] for a, axis in enumerate(grid.names)}
        wanted = [n for n in observables if n == "risk"] + (
            list(fns) if "mean" in observables else []
        )
    out: dict[str, Any] = {}
    for name in wanted:
        if name not in fns and name != "risk":
            continue
        preds, sgd = [], []
        for t, frame in zip(times, mem.frames, strict=True):
            f = (
                fns[name]
                if name in fns
                else 2.0
                * np.reshape(to_numpy(rhs(setup.backend.asarray(frame.density)).psi), grid.shape)
            )
            if t == 0.0:
                preds.append(_variance(f, setup.rho0, grid.cell_volume))
                sgd.append(0.0)
                continue
            sub = _truncate(path, float(setup.time_change.tau(t)))
            variation = first_variation(pde, setup.rho0, f, t, path=sub)
            preds.append(variation.variance)
            if with_sgd:
                sgd.append(
                    sgd_step_variance(
                        pde,
                        variation,
                        sub,
                        eps=float(spec["step"]),
                        batch=int(spec["batch"]),
                        time_change=setup.time_change,
                        n_samples=SGD_MC_SAMPLES,
                    )
                )
        out[name] = np.array(preds)
        if with_sgd:
            out[f"{name}/sgd"] = np.array(sgd)
    return out


def _variance(f: np.ndarray, rho: np.ndarray, volume: float) -> float:
    m = rho * volume
    mean = float(np.sum(m * f))
    return float(np.sum(m * f * f) - mean * mean)


def _truncate(path: Any, tau: float) -> Any:
    """The stored forward path up to ``tau`` (with an interpolated last frame)."""
    from meanfield.pde.linearized import ForwardPath

    keep = path.taus < tau
    taus = np.concatenate([path.taus[keep], [tau]])
    dens = np.concatenate([path.densities[keep], path.at(tau)[None]], axis=0)
    return ForwardPath(taus, dens)


#: dimension names of the datasets of a study table and of a raw job group
TABLE_DIMS = {
    "values": ("n", "replica", "time"),
    "pde": ("time",),
    "bias": ("n", "time"),
    "n_var": ("n", "time"),
    "n_var_predicted": ("time",),
    "n_var_predicted_sgd": ("n", "time"),
    "slope": ("time",),
    "slope_ci": ("time", "bound"),
    "spread_slope": ("time",),
    "spread_slope_ci": ("time", "bound"),
    "normality_pvalue": ("n", "time"),
}
RAW_DIMS = {"reduced": ("time", "replica", "unit", "reduced_axis"), "risk": ("time", "replica")}


def _named_dataset(
    group: Any, key: str, value: Any, dims: tuple[str, ...], coords: dict[str, np.ndarray]
) -> None:
    """Write ``value`` with its axes named by scales of ``group``: each group carries its own
    coordinates (``n``, ``time`` from ``coords``; indices for ``replica``, ``unit``, ``bound``)."""
    attach_scales(group, group.create_dataset(key, data=np.asarray(value)), dims, coords)


def _write_study(f: Any, study: StudyResult) -> None:
    grp = f.require_group("study")
    grp.create_dataset("n", data=study.n).make_scale("n")
    if "time" not in grp:
        grp.create_dataset("time", data=study.times).make_scale("time")
    for name, table in study.tables.items():
        sub = grp.require_group(name)
        if "n_var_predicted" in table:
            write_group_attrs(sub, {"clt_method": study.clt_method})
        for key, value in table.items():
            _named_dataset(
                sub,
                key,
                value,
                TABLE_DIMS[key],
                {"n": np.asarray(study.n), "time": np.asarray(study.times)},
            )
    write_group_attrs(grp, {"failed_jobs": len(study.failures), "clt_method": study.clt_method})
    f.flush()
