"""Rotskoff & Vanden-Eijnden, CPAM 2022, Experiment 1: Gaussian-kernel units on the sphere.

The 3-spin energy on ``S^{d-1}(sqrt d)``, ``d = 5``, is learnt by ``n`` Gaussian units
``exp(-alpha |x - y|^2 / 2)``, ``alpha = 5/d``, trained by a population gradient flow
(:mod:`particles.kernel_gd`, no data batches) of one of two objectives,
``protocol.objective`` (default both, in this order):

* ``"collocation"``: the paper's eq. (4.5) as printed, which moves the units with ``f(y_i)`` and
  ``phi(y_i, y_j)`` themselves (the flow of the collocation energy
  :meth:`~meanfield.model.sphere_kernel.SphereKernelTask.collocation`);
* ``"l2"``: the flow of the ``L^2(mu)`` loss, with ``K_ij = E phi_i phi_j``, ``F_i = E f phi_i``
  in closed form (:mod:`meanfield.model.sphere_kernel`).

One job per ``(objective, n, teacher)``. A job runs the first ``protocol.steps`` steps (noisy
for the first ``noise_fraction`` of them), then lengthens the run by a quarter at a time until
the loss is flat, ``|final_trend| <= protocol.flat_tolerance``, or ``protocol.max_steps`` are
taken (:func:`particles.kernel_gd.run_until_flat`). It reports the closed-form loss along the
run, the Monte Carlo test loss of the final network on ``test_points`` fresh points, and
``step * lambda_max``, the largest eigenvalue of the linearised flow of its own objective at
the end times the step. The loss reported is the ``L^2(mu)`` loss ``(1/2) E (f - f_n)^2`` for
both objectives.

``results.csv`` quantities: the names below for (4.5) (``collocation``); the same names with
the suffix ``_l2`` (``loss_l2``, ``steps_l2``, ...) for the ``L^2(mu)`` flow. Per ``n``, ``ours``
is the median over teachers and ``ours_low/high`` their range unless said otherwise.

=============  ====================================================================
loss           Monte Carlo test loss; paper values (for (4.5) only) read off Fig. 1 as
               a factor-3 band at ``n = 8`` (1e-1) and ``n = 128`` (1e-5)
loss_exact     the same from the closed form (a cross-check of the test loss)
slope          log-log least-squares slope of the median loss against ``n``, 95 %
               bootstrap interval (teachers resampled jointly across ``n``); the paper
               claims a decay faster than ``n^-1`` (``paper_high = -1``, (4.5) only)
final_trend    ``(L(s) - L(T)) / L(T)``, ``s`` the last record at or before ``0.8 T``:
               ``ours`` the largest ``|final_trend|`` over teachers, low/high the signed
               extremes
steps          steps taken (``T``), median and range over teachers
converged      the fraction of teachers whose run ended flat (1: all of them)
stability      ``step * lambda_max`` at the end, max over teachers (below 1: monotone)
seconds        wall time of a job
=============  ====================================================================

Figures: ``rve-kernel-levelsets.png`` (their Fig. 1: level sets of ``f`` and ``f_n`` on a
2-sphere slice, with the centres; ``rve-kernel-levelsets-l2.png`` for the ``L^2`` flow),
``rve-kernel-loss.png`` (loss against ``n``, both objectives) and ``rve-kernel-training.png``
(the loss along every run, one panel per objective).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from meanfield.backends import get_backend, to_numpy
from meanfield.config import ConfigError
from meanfield.model.sphere_kernel import OBJECTIVES, SphereKernel, SphereKernelTask
from meanfield.rng import CounterRNG
from particles.kernel_gd import (
    KernelState,
    init_state,
    make_advance,
    make_compiled_advance,
    make_kernel_gd,
    run_until_flat,
    tangent,
)

from .base import Experiment, Options, Row, require, run_cached, write_results

__all__ = ["EXPERIMENT", "Settings", "median_slope", "objectives", "run", "run_job",
           "settings", "study", "suffix", "top_eigenvalue"]

NAME = "rve-kernel"
#: the paper's values read off its plot: loss ~1e-1 at n = 8 and ~1e-5 at n = 128
PAPER_LOSS = {8: 1e-1, 128: 1e-5}
#: the band around each read-off value (plot reading and teacher spread)
PAPER_FACTOR = 3.0
ENGINES = ("numba", "numpy")
#: the objective whose numbers carry the paper's values and the unsuffixed quantity names
PAPER_OBJECTIVE = "collocation"


@dataclass(frozen=True)
class Settings:
    """The checked config of the jobs of one objective (all but the study's widths/teachers)."""

    d: int
    alpha: float
    steps: int
    max_steps: int
    flat_tolerance: float
    step: float
    beta: float
    noise_fraction: float
    test_points: int
    records: int
    seed: int
    c_std: float
    engine: str

    @property
    def noise_steps(self) -> int:
        return int(round(self.noise_fraction * self.steps))


def _positive(v: Any) -> bool:
    return v > 0 and math.isfinite(v)


def suffix(objective: str) -> str:
    """The suffix of the objective's quantities: ``""`` for (4.5), ``"_l2"`` for the L2 flow."""
    return "" if objective == PAPER_OBJECTIVE else f"_{objective}"


def objectives(raw: Mapping[str, Any]) -> list[str]:
    """``protocol.objective``: a name or a list of names of :data:`OBJECTIVES` (default all)."""
    value = raw.get("protocol", {}).get("objective", list(OBJECTIVES))
    names = [value] if isinstance(value, str) else value
    if (not isinstance(names, list) or not names or len(set(names)) != len(names)
            or not all(isinstance(v, str) and v in OBJECTIVES for v in names)):
        raise ConfigError(f"protocol.objective = {value!r} is invalid; expected one of "
                          f"{', '.join(map(repr, OBJECTIVES))} or a list of them, each once")
    return names


def settings(raw: Mapping[str, Any], objective: str = PAPER_OBJECTIVE) -> Settings:
    """Check ``[model]``, ``[protocol]`` (with ``step_<objective>``) and ``[particles]``."""
    require(raw, "model", "name", str, lambda v: v == "sphere_kernel", '"sphere_kernel"')
    number = (int, float)
    steps = require(raw, "protocol", "steps", int, lambda v: v >= 1, "an integer >= 1")
    return Settings(
        d=require(raw, "model", "d", int, lambda v: v >= 2, "an integer >= 2"),
        alpha=float(require(raw, "model", "alpha", number, _positive, "a number > 0")),
        steps=steps,
        max_steps=require(raw, "protocol", "max_steps", int, lambda v: v >= steps,
                          "an integer >= protocol.steps"),
        flat_tolerance=float(require(raw, "protocol", "flat_tolerance", number, _positive,
                                     "a number > 0")),
        step=float(require(raw, "protocol", f"step_{objective}", number, _positive,
                           "a number > 0")),
        beta=float(require(raw, "protocol", "beta", number, lambda v: v > 0,
                           "a number > 0 (inf: no noise)")),
        noise_fraction=float(require(raw, "protocol", "noise_fraction", number,
                                     lambda v: 0 <= v <= 1, "a number in [0, 1]")),
        test_points=require(raw, "protocol", "test_points", int, lambda v: v >= 2,
                            "an integer >= 2"),
        records=require(raw, "protocol", "records", int, lambda v: v >= 2, "an integer >= 2"),
        seed=require(raw, "particles", "seed", int, lambda v: v >= 0, "an integer >= 0"),
        c_std=float(require(raw, "particles", "c_std", number,
                            lambda v: v >= 0 and math.isfinite(v), "a number >= 0")),
        engine=require(raw, "particles", "engine", str, lambda v: v in ENGINES,
                       " or ".join(ENGINES)))


def study(raw: Mapping[str, Any]) -> tuple[list[int], list[int]]:
    """The widths ``n`` and the teacher seeds ``0 .. teachers - 1`` of ``[study]``."""
    widths = require(raw, "study", "n", list,
                     lambda v: bool(v) and all(isinstance(k, int) and not isinstance(k, bool)
                                               and k >= 1 for k in v),
                     "a non-empty list of integers >= 1")
    teachers = require(raw, "study", "teachers", int, lambda v: v >= 1, "an integer >= 1")
    return sorted(set(widths)), list(range(teachers))


# ---------------------------------------------------------------------------- one job

def run_job(config: str, objective: str, n: int, teacher: int) -> dict[str, np.ndarray]:
    """Train ``n`` units on teacher ``teacher`` by the flow of ``objective`` until flat.

    ``config`` is the JSON of the objective's :class:`Settings`. The units draw from stream
    ``teacher`` of ``CounterRNG.from_seed(seed, teacher + 1)``: the widths and objectives of one
    teacher share their stream (nested initial centres, the same noise and test points), which
    makes the loss-against-``n`` comparison a paired one.
    """
    s = Settings(**json.loads(config))
    start = time.perf_counter()
    backend = get_backend("numpy")
    xp = backend.xp
    task = SphereKernel(s.d, s.alpha, teacher).task(backend.asarray)
    rng = CounterRNG.from_seed(s.seed, teacher + 1, xp).select([teacher])
    state = init_state(task, rng, n, s.c_std, xp)
    kwargs = {"step": s.step, "beta": s.beta, "noise_steps": s.noise_steps,
              "objective": objective}
    advance = (make_compiled_advance(task, rng, **kwargs) if s.engine == "numba"
               else make_advance(make_kernel_gd(task, rng, xp, **kwargs)))
    out = run_until_flat(task, state, xp, advance_fn=advance, first_steps=s.steps,
                         max_steps=s.max_steps, flat_tolerance=s.flat_tolerance,
                         n_records=s.records, extra=[s.noise_steps])
    final = out.state
    test = task.test_loss(final.c, final.y, rng, s.test_points, xp)
    return {
        "record_steps": out.record_steps, "loss": out.loss[0],
        "steps": np.int64(final.step), "converged": np.bool_(out.converged),
        "final_trend": np.float64(out.final_trend[0]),
        "loss_exact": to_numpy(task.loss(final.c, final.y, xp))[0],
        "test_loss": to_numpy(test["loss"])[0], "test_loss_se": to_numpy(test["loss_se"])[0],
        "lambda_max": np.float64(top_eigenvalue(task, final, xp, objective)),
        "c": to_numpy(final.c)[0], "y": to_numpy(final.y)[0],
        "seconds": np.float64(time.perf_counter() - start)}


def top_eigenvalue(task: SphereKernelTask, state: KernelState, xp: Any,
                   objective: str = PAPER_OBJECTIVE, iterations: int = 200,
                   eps: float = 1e-6) -> float:
    """Largest eigenvalue of the Jacobian of ``(c, y) -> N grad J`` (tangent ``y``), replica 0.

    ``J`` is the objective's energy (:meth:`SphereKernelTask.objective_gradient`). Power
    iteration on finite differences of the flow's vector field: explicit Euler is stable at
    the end of the run when ``step * lambda_max < 2`` and monotone when ``< 1``.
    """
    gradient_fn = task.objective_gradient(objective)
    c, y = state.c[:1, ...], state.y[:1, ...]
    n = c.shape[-1]

    def field(cc: Any, yy: Any) -> tuple[Any, Any]:
        _, grad_c, grad_y = gradient_fn(cc, yy, xp)
        return n * grad_c, tangent(yy, n * grad_y, xp)

    base_c, base_y = field(c, y)
    gen = np.random.default_rng(0)
    vc = xp.asarray(gen.standard_normal(tuple(c.shape)))
    vy = tangent(y, xp.asarray(gen.standard_normal(tuple(y.shape))), xp)
    value = 0.0
    for _ in range(iterations):
        norm = math.sqrt(float(xp.sum(vc * vc)) + float(xp.sum(vy * vy)))
        vc, vy = vc / norm, vy / norm
        moved_c, moved_y = field(c + eps * vc, y + eps * vy)
        hc, hy = (moved_c - base_c) / eps, tangent(y, (moved_y - base_y) / eps, xp)
        value = float(xp.sum(hc * vc)) + float(xp.sum(hy * vy))
        vc, vy = hc, hy
    return value


# ---------------------------------------------------------------------------- the experiment

def run(raw: dict, scale: str, out_dir: Path, options: Options) -> list[Row]:
    """Run every ``(objective, n, teacher)`` job (cached), write ``results.csv`` and figures."""
    names = objectives(raw)
    all_settings = {name: settings(raw, name) for name in names}
    widths, teachers = study(raw)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    params = [{"config": json.dumps(asdict(all_settings[name]), sort_keys=True),
               "objective": name, "n": n, "teacher": t}
              for name in names for n in widths for t in teachers]
    started = time.perf_counter()
    results = run_cached(run_job, params, out_dir / "runs", options)
    jobs = {(p["objective"], p["n"], p["teacher"]): r
            for p, r in zip(params, results, strict=True)}
    rows = [row for name in names
            for row in _rows(jobs, name, widths, teachers, all_settings[name])]
    write_results(rows, out_dir / "results.csv")
    from .rve_kernel_figures import plot_all  # noqa: PLC0415  (matplotlib only when plotting)

    plot_all(jobs, names, widths, teachers, all_settings, out_dir, PAPER_LOSS, PAPER_FACTOR)
    job_seconds = sum(float(r["seconds"]) for r in results)
    options.report(f"{NAME} ({scale}): {len(results)} jobs, {job_seconds:.0f} s of job time, "
                   f"{time.perf_counter() - started:.0f} s wall")
    return rows


def _table(jobs: Mapping, objective: str, widths: list[int], teachers: list[int],
           key: str) -> np.ndarray:
    """``(len(widths), len(teachers))`` array of the scalar ``key`` of every job."""
    return np.array([[float(jobs[objective, n, t][key]) for t in teachers] for n in widths])


def _rows(jobs: Mapping, objective: str, widths: list[int], teachers: list[int],
          s: Settings) -> list[Row]:
    tag = suffix(objective)
    paper = objective == PAPER_OBJECTIVE
    rows = []

    def spread(quantity: str, table: np.ndarray, with_paper: bool = False) -> None:
        for n, values in zip(widths, table, strict=True):
            value = PAPER_LOSS.get(n) if with_paper else None
            rows.append(Row(NAME, quantity + tag, n, float(np.median(values)),
                            float(values.min()), float(values.max()),
                            value / PAPER_FACTOR if value else None,
                            value * PAPER_FACTOR if value else None))

    test = _table(jobs, objective, widths, teachers, "test_loss")
    spread("loss", test, with_paper=paper)
    spread("loss_exact", _table(jobs, objective, widths, teachers, "loss_exact"))
    if len(widths) >= 2:
        slope, lo, hi = median_slope(np.array(widths), test)
        rows.append(Row(NAME, "slope" + tag, None, slope, lo, hi, None, -1.0 if paper else None))
    trends = _table(jobs, objective, widths, teachers, "final_trend")
    for n, values in zip(widths, trends, strict=True):
        rows.append(Row(NAME, "final_trend" + tag, n, float(np.max(np.abs(values))),
                        float(values.min()), float(values.max())))
    spread("steps", _table(jobs, objective, widths, teachers, "steps"))
    converged = _table(jobs, objective, widths, teachers, "converged")
    for n, values in zip(widths, converged, strict=True):
        rows.append(Row(NAME, "converged" + tag, n, float(np.mean(values))))
    lam = _table(jobs, objective, widths, teachers, "lambda_max")
    for n, values in zip(widths, lam, strict=True):
        rows.append(Row(NAME, "stability" + tag, n, s.step * float(values.max())))
    spread("seconds", _table(jobs, objective, widths, teachers, "seconds"))
    return rows


def median_slope(widths: np.ndarray, values: np.ndarray, n_boot: int = 2000,
                 level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """Slope of ``log median_t values[:, t]`` against ``log n``, with a bootstrap interval.

    The teachers are resampled with replacement jointly for every ``n`` (each teacher is one
    target learnt at every width, so its values at different ``n`` are paired); this differs
    from :func:`compare.fits.loglog_slope`, which fits the mean and resamples within each ``n``.
    """
    log_n = np.log(widths.astype(float))

    def fit(table: np.ndarray) -> float:
        return float(np.polyfit(log_n, np.log(np.median(table, axis=1)), 1)[0])

    gen = np.random.default_rng(seed)
    n_teachers = values.shape[1]
    boot = [fit(values[:, gen.integers(0, n_teachers, n_teachers)]) for _ in range(n_boot)]
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(boot, [tail, 100 - tail])
    return fit(values), float(lo), float(hi)


EXPERIMENT = Experiment(
    name=NAME,
    title="Gaussian-kernel units on the 5-sphere learn the 3-spin energy: loss against n",
    paper="Rotskoff & Vanden-Eijnden, CPAM 2022, Experiment 1 (Fig. 1)",
    run=run)
