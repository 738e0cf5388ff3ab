"""Rotskoff and Vanden-Eijnden's Experiment 2: sigmoid units learn a spherical 3-spin energy.

The protocol of the paper (CPAM 2022, arXiv:1805.00915, section 4), at every width ``n``:

1. ``sgd_steps`` (2e6) steps of SGD, each on a fresh batch of ``floor(n / 5)`` points;
2. the "partial quench": ``quench_steps`` (2e5) more steps with ``floor((n / 5)^2)`` points;
3. the test loss ``l = (1/2P) sum (f - f_n)^2`` on ``P`` (1e5) fresh points and the signed
   residuals of their eq. (4.11), ``<(f - f_n) 1{f > 0}>`` and ``<(f_n - f) 1{f < 0}>``;

for ``study.teachers`` coupling tensors ``a_pqr`` per width (one network each; a list gives
one count per width). Each (n, teacher) is
one job of :func:`simulate_teacher`; the jobs are cached in ``DIR/runs`` (an interrupted run
continues). The time step is not published; the configs give it in the paper's convention,
``protocol.dt`` (their ``Z <- Z - dt grad L_P``), and the engine runs ``particles.step = dt / 2``
(:func:`meanfield.model.rve.pspin.engine_step`; a ``particles.step`` in the config is an error, so
that one number states the step). The shipped configs say which ``dt`` was chosen and why.

Before the quench, the loss is recorded every ``sgd_steps / 20`` steps over the second half of
the phase; :func:`pre_quench_trend` fits a line through those records and reports the relative
change it predicts over that half. ``|trend| <= protocol.flat_tolerance`` at every (n,
teacher) is the convergence check ("the loss has stopped falling before the quench"); the
result is a row of ``results.csv`` and a line of the report, not an assertion; with its
standard error, ``pre_quench_flat_fraction`` counts the teachers whose loss shows no fall
beyond the tolerance at about 95 % (``trend + 2 se >= -flat_tolerance``).
:func:`post_quench_change` reports whether the quench phase itself has finished lowering the
loss (the paper's protocol fixes its length; the row says what it left).
Two rows say whether the quench can settle at all: ``stability``, RVE's ``dt`` times the top
eigenvalue of the Gauss-Newton matrix of ``n L`` at the final units (:func:`stability`; gradient
descent, which the quench's large batch approaches, is stable below 2), and ``quench_spread``,
the largest over the smallest loss record of the quench's second half (:func:`quench_spread`).

Besides the loss, ``results.csv`` has ``loss_relative``, the loss over the trivial loss
``E f^2 / 2`` of its teacher (``trivial``, exact from :meth:`PSpin.target_square_mean`): a
number that does not depend on how ``f`` is normalised.

Figures (as the paper's): the loss against the step for ``protocol.figure_n`` (their Fig. 2),
the loss and both residuals against ``n`` (their Fig. 3) and ``f``, ``f_n`` along great circles
(their Fig. 4).
"""

from __future__ import annotations

import copy
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from meanfield.config import parse_config
from meanfield.config.builders import build_particle_setup
from meanfield.fields import (
    INF,
    ConfigError,
    Context,
    Field,
    allowed,
    int_at_least,
    int_list,
    positive_float,
)
from meanfield.model.rve.pspin import PSpin, engine_step, protocol_batches
from particles.run import build_particle_run, simulate

from ..fits import loglog_slope
from .base import Experiment, Job, Row, register, widths_field

__all__ = [
    "EXPERIMENT",
    "EXPERIMENT_D25",
    "PSpinExperiment",
    "Plan",
    "simulate_teacher",
    "pre_quench_trend",
    "post_quench_change",
    "protocol_batches",
    "quench_spread",
    "stability",
    "stability_points",
]

#: the scales of these experiments: ``gpu`` adds n = 1024 and the paper's 10 teachers
SCALES = ("small", "paper", "gpu")
#: what the paper reports: RVE Fig. 2 inset (l after the quench at n = 256) and Fig. 3 (slope)
PAPER_LOSS_N256 = {10: (0.009, 0.013), 25: (0.45, 0.6)}
PAPER_SLOPE = (-1.1, -0.9)
#: records of the loss over the second half of the SGD phase (the convergence check)
FLAT_RECORDS = 41
#: great circles of Fig. 4: the coordinate pairs (i, j) of x_i = sqrt(d) cos t, x_j = sqrt(d) sin t
CIRCLES = ((0, 1), (2, 3))
#: points along each great circle
CIRCLE_POINTS = 361
#: Monte Carlo points of the Gauss-Newton matrix in :func:`stability`. Measured at n = 512
#: (teacher 1, end of the quench): 101.7 and 101.7 over two draws of 20,000 points, 100.7 with
#: 50,000; the top eigenvalue of a sample Gram matrix is biased up, here by about 1-2 %.
STABILITY_POINTS = 20_000


def _record_steps(sgd_steps: int, quench_steps: int, log_records: int) -> list[int]:
    """Log-spaced steps up to the quench and through it, linear over the second half of each."""
    log = np.unique(np.geomspace(1, sgd_steps, log_records).astype(np.int64))
    flat = np.linspace(sgd_steps // 2, sgd_steps, FLAT_RECORDS).astype(np.int64)
    quench = sgd_steps + np.unique(
        np.geomspace(1, quench_steps, max(4, log_records // 3)).astype(np.int64)
    )
    quench_flat = sgd_steps + np.linspace(quench_steps // 2, quench_steps, 11).astype(np.int64)
    return sorted({0, *log.tolist(), *flat.tolist(), *quench.tolist(), *quench_flat.tolist()})


def pre_quench_trend(steps: np.ndarray, loss: np.ndarray, sgd_steps: int) -> tuple[float, float]:
    """Relative change of the loss over ``[sgd_steps / 2, sgd_steps]`` by a least-squares line,
    and its standard error (from the scatter of the records about the line).

    Negative: still falling. The line averages the SGD fluctuations of the single records; the
    standard error says how large a trend those fluctuations can hide.
    """
    mask = (steps >= sgd_steps // 2) & (steps <= sgd_steps)
    s, y = steps[mask].astype(float), loss[mask]
    slope, intercept = np.polyfit(s, y, 1)
    scale = (s[-1] - s[0]) / np.mean(y)
    resid = y - (slope * s + intercept)
    se = math.sqrt(resid @ resid / max(1, s.size - 2) / np.sum((s - s.mean()) ** 2))
    return float(slope * scale), float(se * scale)


def post_quench_change(
    steps: np.ndarray, loss: np.ndarray, sgd_steps: int, quench_steps: int
) -> float:
    """Relative change of the loss from the first record in the second half of the quench to
    the last: negative when the quench phase is still lowering the loss at its end."""
    late = np.nonzero(steps >= sgd_steps + quench_steps // 4)[0]
    first = late[0] if late.size > 1 else max(0, steps.size - 2)
    return float((loss[-1] - loss[first]) / loss[-1])


def quench_spread(steps: np.ndarray, loss: np.ndarray, sgd_steps: int, quench_steps: int) -> float:
    """Largest over smallest loss of the records in the second half of the quench: 1 when the
    loss has settled, well above 1 when it oscillates (see :func:`stability`)."""
    late = loss[steps >= sgd_steps + quench_steps // 2]
    return float(np.max(late) / np.min(late)) if late.size else float("nan")


def stability_points(model: PSpin, points: int = STABILITY_POINTS, seed: int = 0) -> np.ndarray:
    """``points`` inputs uniform on the sphere, shape ``(1, points, d)``, for :func:`stability`."""
    g = np.random.default_rng(seed).standard_normal((1, points, model.d))
    return model.inputs_from_normals(g, np)


def stability(model: PSpin, theta: np.ndarray, dt: float, x: np.ndarray) -> float:
    """RVE's ``dt`` times the largest eigenvalue of the Gauss-Newton matrix of ``n L`` at
    ``theta`` (``(N, D)``), ``L`` estimated on the inputs ``x`` (``(1, P, d)``).

    Their step is ``Z <- Z - dt grad (n L_P)`` (:func:`meanfield.model.rve.pspin.rve_dt`); with
    a large batch (the quench) it is close to gradient descent on ``n L``, whose Hessian near a
    good fit is the Gauss-Newton matrix ``G_ij = (1/n) E grad sigma_*(x; theta_i) grad
    sigma_*(x; theta_j)^T``. Gradient descent is stable in every mode while ``dt lambda_max(G)
    < 2`` and monotone while it is ``< 1``. ``G`` is applied through the model's two
    contractions of the unit Jacobian (:meth:`PSpin.unit_tangent`, :meth:`PSpin.backward`)
    and its top eigenvalue found by Lanczos (``scipy.sparse.linalg.eigsh``): no ``N D x N D``
    matrix is formed.
    """
    from scipy.sparse.linalg import LinearOperator, eigsh  # noqa: PLC0415  (analysis only)

    theta = np.asarray(theta, dtype=np.float64)[None]  # (1, N, D)
    n, dim = theta.shape[1:]
    points = x.shape[-2]
    _, cache = model.forward(x, theta, np)

    def apply(v: np.ndarray) -> np.ndarray:
        along = np.sum(model.unit_tangent(x, theta, cache, v.reshape(theta.shape), np), axis=-1)
        return model.backward(x, theta, cache, along[..., None], np).ravel() / (n * points)

    size = n * dim
    start = np.random.default_rng(0).standard_normal(size)
    operator = LinearOperator((size, size), matvec=apply, dtype=np.float64)
    top = eigsh(operator, k=1, which="LA", v0=start, tol=1e-8, return_eigenvectors=False)
    return float(dt * top[0])


def simulate_teacher(config_toml: str, n: int, teacher: int, seed: int) -> dict[str, np.ndarray]:
    """One network of width ``n`` for the teacher ``teacher`` through the whole protocol.

    Returns the record steps, the test loss, its standard error and both residuals at every
    record, the final units ``theta`` (``(n, d + 2)``), and ``f`` and ``f_n`` along the
    great circles :data:`CIRCLES` (``(len(CIRCLES), CIRCLE_POINTS)``).
    """
    raw = tomllib.loads(config_toml)
    proto = raw["protocol"]  # [study] is not in the job's text
    sgd_steps, quench_steps = int(proto["sgd_steps"]), int(proto["quench_steps"])
    eps = float(raw["particles"]["step"])
    batch, quench_batch = protocol_batches(n, int(proto["batch_divisor"]))
    steps = _record_steps(sgd_steps, quench_steps, int(proto["log_records"]))
    times = [k * eps for k in steps]
    run_raw = {k: v for k, v in raw.items() if k != "protocol"}
    overrides = [
        f"model.teacher_seed={teacher}",
        f"particles.n={n}",
        "particles.replicas=1",
        f"particles.seed={seed}",
        f"particles.batch={batch}",
        f"particles.quench_batch={quench_batch}",
        f"particles.quench_time={sgd_steps * eps!r}",
        "particles.keep_theta=true",
        f"dynamics.t_end={times[-1]!r}",
        f"dynamics.save_times={times!r}",
    ]
    config = parse_config(run_raw, overrides)
    frames = simulate(build_particle_run(build_particle_setup(config)))
    theta = frames[-1].theta[0]
    model = PSpin(int(config.model["d"]), teacher)
    circles = _great_circles(model, theta)
    return {
        "steps": np.asarray(steps, dtype=np.int64),
        "loss": np.array([f.risk[0] for f in frames]),
        "loss_se": np.array([f.risk_se[0] for f in frames]),
        "residual_pos": np.array([f.extras["residual_pos"][0] for f in frames]),
        "residual_neg": np.array([f.extras["residual_neg"][0] for f in frames]),
        "theta": theta,
        "circle_f": circles[0],
        "circle_fn": circles[1],
    }


def _great_circles(model: PSpin, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = np.linspace(0.0, 2.0 * math.pi, CIRCLE_POINTS)
    x = np.zeros((len(CIRCLES), CIRCLE_POINTS, model.d))
    for k, (i, j) in enumerate(CIRCLES):
        x[k, :, i] = math.sqrt(model.d) * np.cos(t)
        x[k, :, j] = math.sqrt(model.d) * np.sin(t)
    f = model.target(x, model.teacher(), np)
    fn = model.predict(x, np.broadcast_to(theta, (len(CIRCLES), *theta.shape)), np)
    return f, fn


def _check_teachers(value: Any, ctx: Context) -> str | None:
    count = len(ctx["study"]["n"])
    ok = value >= 1 if isinstance(value, int) else len(value) == count and int_list(value, 1)
    return (
        None
        if ok
        else (f"a number of teachers >= 1, or a list of {count} such numbers (one per width)")
    )


KEYS: dict[str, dict[str, Field]] = {
    "study": {
        "n": widths_field(5),
        # one count for every width, or a list with one count per width
        "teachers": Field(
            ("integer", "array"),
            "the teachers (networks) per width",
            check=_check_teachers,
            convert=lambda v, ctx: [v] * len(ctx["study"]["n"]) if isinstance(v, int) else list(v),
        ),
    },
    "protocol": {
        "dt": Field(
            ("float",),
            "RVE's time step dt (Z <- Z - dt grad L_P)",
            check=allowed("a finite float > 0", lambda v: 0 < v < INF),
        ),
        "sgd_steps": int_at_least(20, "SGD steps before the quench"),
        "quench_steps": int_at_least(1, "steps of the quench"),
        "batch_divisor": int_at_least(1, "the divisor k of the batch floor(n / k)"),
        "log_records": int_at_least(4, "log-spaced loss records before the quench"),
        "flat_tolerance": positive_float(
            "the largest |relative change| over the second half of "
            "the SGD phase that counts as converged"
        ),
        "figure_n": int_at_least(1, "the width shown in the loss-against-step figure"),
    },
}


@dataclass(frozen=True)
class Plan:
    """The checked config: ``[protocol]``, the widths with their teacher counts, the jobs'
    config text (the run sections and ``[protocol]`` but ``figure_n``) and what it sets."""

    protocol: dict[str, Any]
    widths: list[int]
    teachers: list[int]
    text: str
    d: int
    seed: int
    step: float


class PSpinExperiment(Experiment):
    """One job per ``(n, teacher)``: :func:`simulate_teacher` through the whole protocol."""

    keys = KEYS
    run_sections = ("model", "init", "dynamics", "pde", "particles")
    job = staticmethod(simulate_teacher)

    def plan(self, raw: dict[str, Any]) -> Plan:
        values = self.check(raw)
        proto = values["protocol"]
        if "step" in raw.get("particles", {}):
            raise ConfigError(
                "invalid key 'particles.step': this reproduction takes its time "
                "step in the paper's convention, protocol.dt (the engine runs "
                "particles.step = dt / 2)"
            )
        raw = copy.deepcopy(raw)
        raw.setdefault("particles", {})["step"] = engine_step(proto["dt"])
        raw.setdefault("dynamics", {})
        raw["dynamics"].update({"t_end": 1.0, "save_times": [0.0]})  # placeholders, set per job
        config = parse_config({k: v for k, v in raw.items() if k in self.run_sections})
        # the jobs' text leaves out [study]: another list of widths or teachers reuses the jobs
        # done ... nor protocol.figure_n, which only picks the width the figures show
        job_raw = {k: v for k, v in raw.items() if k != "study"}
        job_raw["protocol"] = {k: v for k, v in raw["protocol"].items() if k != "figure_n"}
        return Plan(
            proto,
            values["study"]["n"],
            values["study"]["teachers"],
            _dump(job_raw),
            int(config.model["d"]),
            int(config.particles["seed"]),
            raw["particles"]["step"],
        )

    def jobs(self, plan: Plan) -> list[dict[str, Any]]:
        return [
            {"config_toml": plan.text, "n": n, "teacher": k, "seed": plan.seed + 1000 * k + n}
            for n, count in sorted(zip(plan.widths, plan.teachers, strict=True), reverse=True)
            for k in range(count)
        ]

    def headline(self, plan: Plan) -> list[str]:
        p = plan.protocol
        return [
            f"{self.name}: d = {plan.d}, n = {plan.widths}, teachers {plan.teachers}, "
            f"{p['sgd_steps']:g} + {p['quench_steps']:g} steps of dt = {p['dt']:g} "
            f"(particles.step = {plan.step:g})"
        ]

    def tabulate(self, plan: Plan, jobs: list[Job]) -> dict[str, Any]:
        return _tabulate(plan, jobs)

    def rows(self, plan: Plan, table: dict[str, Any]) -> list[Row]:
        return _rows(self.name, table, plan.d)

    def figures(self, plan: Plan, table: dict[str, Any], out_dir: Path) -> list[Path]:
        from .rve_pspin_figures import (  # noqa: PLC0415  (matplotlib when plotting)
            plot_circles,
            plot_loss_curve,
            plot_scaling,
        )

        n = (
            plan.protocol["figure_n"]
            if plan.protocol["figure_n"] in plan.widths
            else max(plan.widths)
        )
        return [
            plot_loss_curve(
                table, n, plan.protocol["sgd_steps"], out_dir / f"{self.name}-loss-vs-step.png"
            ),
            plot_scaling(table, out_dir / f"{self.name}-scaling.png"),
            plot_circles(table, n, CIRCLES, out_dir / f"{self.name}-great-circles.png"),
        ]

    def summary(self, plan: Plan, rows: list[Row]) -> list[str]:
        return [
            f"  {row.quantity} {'' if row.x is None else f'n={row.x:g} '}"
            f"{row.ours:.4g} [{row.ours_low:.4g}, {row.ours_high:.4g}]"
            for row in rows
            if row.quantity in ("slope_loss", "pre_quench_trend")
        ]


def _dump(raw: dict) -> str:
    import tomli_w  # noqa: PLC0415  (a core dependency: the config writer)

    return tomli_w.dumps(raw)


def _tabulate(plan: Plan, jobs: list[Job]) -> dict[str, Any]:
    """Per width: the teachers' curves and final values (host arrays)."""
    proto = plan.protocol
    table: dict[str, Any] = {"n": plan.widths, "by_n": {}, "d": plan.d}
    points = stability_points(PSpin(plan.d))  # the inputs depend on d only: one draw for all jobs
    for job in jobs:
        p, r = job.params, job.out
        entry = table["by_n"].setdefault(
            p["n"],
            {
                "curves": [],
                "final": {},
                "trend": [],
                "circles": [],
                "pre": [],
                "post": [],
                "spread": [],
                "stability": [],
                "seconds": [],
            },
        )
        steps = r["steps"]
        entry["curves"].append((steps, r["loss"]))
        pre = int(np.searchsorted(steps, proto["sgd_steps"]))
        entry["pre"].append(float(r["loss"][pre]))
        entry["trend"].append(pre_quench_trend(steps, r["loss"], proto["sgd_steps"]))
        entry["post"].append(
            post_quench_change(steps, r["loss"], proto["sgd_steps"], proto["quench_steps"])
        )
        entry["spread"].append(
            quench_spread(steps, r["loss"], proto["sgd_steps"], proto["quench_steps"])
        )
        entry["seconds"].append(float(r.get("job_seconds", np.nan)))
        for key in ("loss", "loss_se", "residual_pos", "residual_neg"):
            entry["final"].setdefault(key, []).append(float(r[key][-1]))
        model = PSpin(table["d"], p["teacher"])
        trivial = 0.5 * model.target_square_mean(model.teacher())  # the loss of f_n = 0
        entry["final"].setdefault("trivial", []).append(trivial)
        entry["final"].setdefault("loss_relative", []).append(float(r["loss"][-1]) / trivial)
        entry["circles"].append((r["circle_f"], r["circle_fn"]))
        entry["stability"].append(stability(model, r["theta"], proto["dt"], points))
    table["flat_tolerance"] = proto["flat_tolerance"]
    return table


def _rows(name: str, table: dict, d: int) -> list[Row]:
    rows: list[Row] = []
    widths = np.array(table["n"])
    for n in table["n"]:
        entry = table["by_n"][n]
        for key in ("loss", "residual_pos", "residual_neg", "loss_relative", "trivial"):
            paper = PAPER_LOSS_N256.get(d) if key == "loss" and n == 256 else None
            rows.append(Row.spread(name, key, n, entry["final"][key], paper or (None, None)))
        trend, se = np.array(entry["trend"]).T
        rows.append(Row.spread(name, "loss_pre_quench", n, entry["pre"]))
        rows.append(Row.spread(name, "pre_quench_trend", n, trend))
        rows.append(Row.spread(name, "pre_quench_trend_se", n, se))
        # flat: no fall larger than the tolerance is seen at about 95 % (trend + 2 se)
        flat = np.mean(trend + 2.0 * se >= -table["flat_tolerance"])
        rows.append(Row(name, "pre_quench_flat_fraction", n, float(flat)))
        rows.append(Row.spread(name, "post_quench_change", n, entry["post"]))
        rows.append(Row.spread(name, "quench_spread", n, entry["spread"]))
        rows.append(Row.spread(name, "stability", n, entry["stability"]))
        rows.append(Row.spread(name, "job_seconds", n, entry["seconds"]))
    if len(widths) >= 2:
        for key in ("loss", "residual_pos", "residual_neg"):
            values = [np.array(table["by_n"][n]["final"][key]) for n in table["n"]]
            if key != "loss" and any(np.any(v <= 0) for v in values):
                continue  # a residual of either sign has no log-log slope
            fit = loglog_slope(widths, values, rng=np.random.default_rng(0))
            paper = PAPER_SLOPE if key == "loss" else (None, None)
            rows.append(Row(name, f"slope_{key}", None, fit.slope, fit.lo, fit.hi, *paper))
    return rows


EXPERIMENT = register(
    PSpinExperiment(
        "rve-pspin",
        "sigmoid units learn the spherical 3-spin energy, d = 10: loss against n (their Figs. 2-4)",
        "Rotskoff & Vanden-Eijnden, CPAM 2022, Experiment 2",
        scales=SCALES,
    )
)
EXPERIMENT_D25 = register(
    PSpinExperiment(
        "rve-pspin-d25",
        "the same at d = 25 (their Fig. 2 inset: loss about 0.52 at n = 256)",
        "Rotskoff & Vanden-Eijnden, CPAM 2022, Experiment 2",
        scales=SCALES,
    )
)
