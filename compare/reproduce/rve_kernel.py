"""Rotskoff & Vanden-Eijnden, CPAM 2022, Experiment 1: Gaussian-kernel units on the sphere.

The 3-spin energy on ``S^{d-1}(sqrt d)``, ``d = 5``, is learnt by ``n`` Gaussian units
``exp(-alpha |x - y|^2 / 2)``, ``alpha = 5/d``, trained by a population gradient flow
(:mod:`particles.kernel_gd`, no data batches) of one of two objectives,
``protocol.objective`` (default both, in this order):

* ``"collocation"``: the paper's eq. (4.5) as printed, which moves the units with ``f(y_i)`` and
  ``phi(y_i, y_j)`` themselves (the flow of the collocation energy
  :meth:`~meanfield.model.rve.sphere_kernel.SphereKernelTask.collocation`);
* ``"l2"``: the flow of the ``L^2(mu)`` loss, with ``K_ij = E phi_i phi_j``, ``F_i = E f phi_i``
  in closed form (:mod:`meanfield.model.rve.sphere_kernel`).

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
from meanfield.fields import (
    INF,
    REQUIRED,
    Context,
    Derived,
    Field,
    allowed,
    int_at_least,
    one_of,
    positive_float,
)
from meanfield.model.rve.sphere_kernel import OBJECTIVES, SphereKernel, SphereKernelTask
from meanfield.rng import CounterRNG
from particles.kernel_gd import (
    KernelState,
    init_state,
    make_kernel_gd_advance,
    run_until_flat,
    tangent,
)

from .base import Experiment, Job, Row, register, widths_field

__all__ = [
    "EXPERIMENT",
    "KernelExperiment",
    "Plan",
    "Settings",
    "median_slope",
    "run_job",
    "suffix",
    "top_eigenvalue",
]

NAME = "rve-kernel"
#: the paper's values read off its plot: loss ~1e-1 at n = 8 and ~1e-5 at n = 128
PAPER_LOSS = {8: 1e-1, 128: 1e-5}
#: the band around each read-off value (plot reading and teacher spread)
PAPER_FACTOR = 3.0
#: the config's ``engine`` values, and the particle engine each asks for ("numba": the compiled
#: kernels, "numpy": the array-API reference loop)
ENGINES = {"numba": "compiled", "numpy": "numpy"}
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


@dataclass(frozen=True)
class Plan:
    """The checked config: the objectives in order, each one's settings, widths and teachers."""

    objectives: list[str]
    settings: dict[str, Settings]
    widths: list[int]
    teachers: list[int]


def suffix(objective: str) -> str:
    """The suffix of the objective's quantities: ``""`` for (4.5), ``"_l2"`` for the L2 flow."""
    return "" if objective == PAPER_OBJECTIVE else f"_{objective}"


def _check_objectives(value: Any, ctx: Context) -> str | None:
    names = [value] if isinstance(value, str) else value
    ok = (
        bool(names)
        and len(set(names)) == len(names)
        and all(isinstance(v, str) and v in OBJECTIVES for v in names)
    )
    return (
        None if ok else (f"one of {', '.join(map(repr, OBJECTIVES))}, or a list of them, each once")
    )


def _step_key(objective: str) -> Field:
    """``protocol.step_<objective>``: required when ``protocol.objective`` names it."""

    def needed(ctx: Context) -> Any:
        return REQUIRED if objective in ctx["protocol"]["objective"] else None

    return Field(
        ("float",),
        f"the step of the {objective} flow (needed when protocol.objective names it)",
        Derived(needed),
        allowed("a finite float > 0", lambda v: 0 < v < INF),
    )


def _at_least_steps(value: Any, ctx: Context) -> str | None:
    return None if value >= ctx["protocol"]["steps"] else "an integer >= protocol.steps"


KEYS: dict[str, dict[str, Field]] = {
    "model": {
        "name": Field(("string",), "the task", check=one_of("sphere_kernel")),
        "d": int_at_least(2, "the dimension d of the sphere S^{d-1}(sqrt d)"),
        "alpha": positive_float("the units' width: exp(-alpha |x - y|^2 / 2)"),
    },
    "study": {
        "n": widths_field(1, sort=True),
        "teachers": int_at_least(1, "the teacher seeds 0 .. teachers - 1"),
    },
    "protocol": {
        "objective": Field(
            ("string", "array"),
            "the flows run, in this order",
            list(OBJECTIVES),
            _check_objectives,
            lambda v, ctx: [v] if isinstance(v, str) else list(v),
        ),
        "steps": int_at_least(1, "the steps of the first chunk"),
        "max_steps": Field(
            ("integer",),
            "the cap on the steps of a run lengthened until flat",
            check=_at_least_steps,
        ),
        "flat_tolerance": positive_float("flat: |final_trend| at most this"),
        **{f"step_{name}": _step_key(name) for name in OBJECTIVES},
        "beta": Field(
            ("float",),
            "the inverse temperature of the noise",
            check=allowed("a float > 0 (inf: no noise)", lambda v: v > 0),
        ),
        "noise_fraction": Field(
            ("float",),
            "the noisy fraction of the first chunk",
            check=allowed("a float in [0, 1]", lambda v: 0 <= v <= 1),
        ),
        "test_points": int_at_least(2, "Monte Carlo test points of the final loss"),
        "records": int_at_least(2, "loss records in the first chunk"),
    },
    "particles": {
        "seed": int_at_least(0, "the seed of the counter-based generator"),
        "c_std": Field(
            ("float",),
            "the spread of the initial output weights c_i",
            check=allowed("a finite float >= 0", lambda v: 0 <= v < INF),
        ),
        "engine": Field(
            ("string",), "the loop: compiled or the array-API reference", check=one_of(*ENGINES)
        ),
    },
}


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
    kwargs = {"step": s.step, "beta": s.beta, "noise_steps": s.noise_steps, "objective": objective}
    advance = make_kernel_gd_advance(task, rng, xp, engine=ENGINES[s.engine], **kwargs)
    out = run_until_flat(
        task,
        state,
        xp,
        advance_fn=advance,
        first_steps=s.steps,
        max_steps=s.max_steps,
        flat_tolerance=s.flat_tolerance,
        n_records=s.records,
        extra=[s.noise_steps],
    )
    final = out.state
    test = task.test_loss(final.c, final.y, rng, s.test_points, xp)
    return {
        "record_steps": out.record_steps,
        "loss": out.loss[0],
        "steps": np.int64(final.step),
        "converged": np.bool_(out.converged),
        "final_trend": np.float64(out.final_trend[0]),
        "loss_exact": to_numpy(task.loss(final.c, final.y, xp))[0],
        "test_loss": to_numpy(test["loss"])[0],
        "test_loss_se": to_numpy(test["loss_se"])[0],
        "lambda_max": np.float64(top_eigenvalue(task, final, xp, objective)),
        "c": to_numpy(final.c)[0],
        "y": to_numpy(final.y)[0],
        "seconds": np.float64(time.perf_counter() - start),
    }


def top_eigenvalue(
    task: SphereKernelTask,
    state: KernelState,
    xp: Any,
    objective: str = PAPER_OBJECTIVE,
    iterations: int = 200,
    eps: float = 1e-6,
) -> float:
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


class KernelExperiment(Experiment):
    """One ``(objective, n, teacher)`` job each; rows per objective, suffixed (:func:`suffix`)."""

    keys = KEYS
    job = staticmethod(run_job)

    def plan(self, raw: dict[str, Any]) -> Plan:
        v = self.check(raw)
        model, proto, particles = v["model"], v["protocol"], v["particles"]
        settings = {
            name: Settings(
                d=model["d"],
                alpha=model["alpha"],
                steps=proto["steps"],
                max_steps=proto["max_steps"],
                flat_tolerance=proto["flat_tolerance"],
                step=proto[f"step_{name}"],
                beta=proto["beta"],
                noise_fraction=proto["noise_fraction"],
                test_points=proto["test_points"],
                records=proto["records"],
                seed=particles["seed"],
                c_std=particles["c_std"],
                engine=particles["engine"],
            )
            for name in proto["objective"]
        }
        return Plan(
            proto["objective"], settings, v["study"]["n"], list(range(v["study"]["teachers"]))
        )

    def jobs(self, plan: Plan) -> list[dict[str, Any]]:
        return [
            {
                "config": json.dumps(asdict(plan.settings[name]), sort_keys=True),
                "objective": name,
                "n": n,
                "teacher": t,
            }
            for name in plan.objectives
            for n in plan.widths
            for t in plan.teachers
        ]

    def tabulate(self, plan: Plan, jobs: list[Job]) -> dict[tuple, Mapping[str, np.ndarray]]:
        """The jobs' arrays keyed by ``(objective, n, teacher)``."""
        return {(j.params["objective"], j.params["n"], j.params["teacher"]): j.out for j in jobs}

    def rows(self, plan: Plan, table: Mapping) -> list[Row]:
        return [
            row
            for name in plan.objectives
            for row in _rows(table, name, plan.widths, plan.teachers, plan.settings[name])
        ]

    def figures(self, plan: Plan, table: Mapping, out_dir: Path) -> list[Path]:
        from .rve_kernel_figures import plot_all  # noqa: PLC0415  (matplotlib when plotting)

        return plot_all(
            table,
            plan.objectives,
            plan.widths,
            plan.teachers,
            plan.settings,
            out_dir,
            PAPER_LOSS,
            PAPER_FACTOR,
        )


def _table(
    jobs: Mapping, objective: str, widths: list[int], teachers: list[int], key: str
) -> np.ndarray:
    """``(len(widths), len(teachers))`` array of the scalar ``key`` of every job."""
    return np.array([[float(jobs[objective, n, t][key]) for t in teachers] for n in widths])


def _rows(
    jobs: Mapping, objective: str, widths: list[int], teachers: list[int], s: Settings
) -> list[Row]:
    tag = suffix(objective)
    paper = objective == PAPER_OBJECTIVE
    rows = []

    def spread(quantity: str, table: np.ndarray, with_paper: bool = False) -> None:
        for n, values in zip(widths, table, strict=True):
            value = PAPER_LOSS.get(n) if with_paper else None
            band = (value / PAPER_FACTOR, value * PAPER_FACTOR) if value else (None, None)
            rows.append(Row.spread(NAME, quantity + tag, n, values, band))

    test = _table(jobs, objective, widths, teachers, "test_loss")
    spread("loss", test, with_paper=paper)
    spread("loss_exact", _table(jobs, objective, widths, teachers, "loss_exact"))
    if len(widths) >= 2:
        slope, lo, hi = median_slope(np.array(widths), test)
        rows.append(Row(NAME, "slope" + tag, None, slope, lo, hi, None, -1.0 if paper else None))
    trends = _table(jobs, objective, widths, teachers, "final_trend")
    for n, values in zip(widths, trends, strict=True):
        rows.append(
            Row(
                NAME,
                "final_trend" + tag,
                n,
                float(np.max(np.abs(values))),
                float(values.min()),
                float(values.max()),
            )
        )
    spread("steps", _table(jobs, objective, widths, teachers, "steps"))
    converged = _table(jobs, objective, widths, teachers, "converged")
    for n, values in zip(widths, converged, strict=True):
        rows.append(Row(NAME, "converged" + tag, n, float(np.mean(values))))
    lam = _table(jobs, objective, widths, teachers, "lambda_max")
    for n, values in zip(widths, lam, strict=True):
        rows.append(Row(NAME, "stability" + tag, n, s.step * float(values.max())))
    spread("seconds", _table(jobs, objective, widths, teachers, "seconds"))
    return rows


def median_slope(
    widths: np.ndarray, values: np.ndarray, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
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


EXPERIMENT = register(
    KernelExperiment(
        NAME,
        "Gaussian-kernel units on the 5-sphere learn the 3-spin energy: loss against n",
        "Rotskoff & Vanden-Eijnden, CPAM 2022, Experiment 1 (Fig. 1)",
    )
)
