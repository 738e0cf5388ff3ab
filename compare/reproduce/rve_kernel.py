"""Rotskoff & Vanden-Eijnden, CPAM 2022, Experiment 1: Gaussian-kernel units on the sphere.

The 3-spin energy on ``S^{d-1}(sqrt d)``, ``d = 5``, is learnt by ``n`` Gaussian units
``exp(-alpha |x - y|^2 / 2)``, ``alpha = 5/d``, trained by the population gradient descent of
the paper's eq. (4.5) (:mod:`particles.kernel_gd`) on the exact loss of
:mod:`meanfield.model.sphere_kernel` (no data batches). One job per ``(n, teacher)``; each job
reports the closed-form loss along the run, the Monte Carlo test loss of the final network on
``test_points`` fresh points, and ``step * lambda_max``, the largest eigenvalue of the
linearised flow at the end times the step (below 2: the explicit Euler step was stable there).

``results.csv`` quantities:

=============  ====================================================================
loss           per ``n``: median over teachers of the Monte Carlo test loss
               (``ours_low/high``: min/max over teachers); paper values read off Fig. 1
               as a factor-3 band at ``n = 8`` (1e-1) and ``n = 128`` (1e-5)
loss_exact     the same from the closed-form loss (a cross-check of the test loss)
slope          log-log least-squares slope of the median loss against ``n``, 95 %
               bootstrap interval (teachers resampled jointly across ``n``); the paper
               claims a decay faster than ``n^-1`` (``paper_high = -1``)
final_trend    per ``n``: ``(L(0.8 T) - L(T)) / L(T)``, the relative decrease over the
               last 20 % of the steps, max over teachers (small: the loss has settled)
stability      per ``n``: ``step * lambda_max`` at the end, max over teachers
=============  ====================================================================

Figures: ``rve-kernel-levelsets.png`` (their Fig. 1: level sets of ``f`` and ``f_n`` on a
2-sphere slice, with the centres), ``rve-kernel-loss.png`` (loss against ``n``) and
``rve-kernel-training.png`` (the loss along every run: the convergence record).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from meanfield.backends import get_backend, to_numpy
from meanfield.model.sphere_kernel import SphereKernel, SphereKernelTask
from meanfield.rng import CounterRNG
from particles.kernel_gd import (
    KernelState,
    init_state,
    make_advance,
    make_compiled_advance,
    make_kernel_gd,
    record_schedule,
    run_kernel_gd,
    tangent,
)

from .base import Experiment, Options, Row, require, run_cached, write_results

__all__ = ["EXPERIMENT", "Settings", "final_trend", "median_slope", "run", "run_job",
           "settings", "study", "top_eigenvalue"]

NAME = "rve-kernel"
#: the paper's values read off its plot: loss ~1e-1 at n = 8 and ~1e-5 at n = 128
PAPER_LOSS = {8: 1e-1, 128: 1e-5}
#: the band around each read-off value (plot reading and teacher spread)
PAPER_FACTOR = 3.0
#: the fraction of the steps over which ``final_trend`` is measured
TREND_FRACTION = 0.2
ENGINES = ("numba", "numpy")


@dataclass(frozen=True)
class Settings:
    """The checked config of one job (everything but the study's widths and teachers)."""

    d: int
    alpha: float
    steps: int
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

    @property
    def trend_step(self) -> int:
        return int(round((1.0 - TREND_FRACTION) * self.steps))


def _positive(v: Any) -> bool:
    return v > 0 and math.isfinite(v)


def settings(raw: Mapping[str, Any]) -> Settings:
    """Check the config's ``[model]``, ``[protocol]`` and ``[particles]`` sections."""
    require(raw, "model", "name", str, lambda v: v == "sphere_kernel", '"sphere_kernel"')
    number = (int, float)
    return Settings(
        d=require(raw, "model", "d", int, lambda v: v >= 2, "an integer >= 2"),
        alpha=float(require(raw, "model", "alpha", number, _positive, "a number > 0")),
        steps=require(raw, "protocol", "steps", int, lambda v: v >= 1, "an integer >= 1"),
        step=float(require(raw, "protocol", "step", number, _positive, "a number > 0")),
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

def run_job(config: str, n: int, teacher: int) -> dict[str, np.ndarray]:
    """Train ``n`` units on teacher ``teacher``; ``config`` is the JSON of the checked sections.

    The units draw from stream ``teacher`` of ``CounterRNG.from_seed(seed, teacher + 1)``: the
    widths of one teacher share their stream (nested initial centres, the same test points),
    which makes the loss-against-``n`` comparison a paired one.
    """
    s = Settings(**json.loads(config))
    start = time.perf_counter()
    backend = get_backend("numpy")
    xp = backend.xp
    task = SphereKernel(s.d, s.alpha, teacher).task(backend.asarray)
    rng = CounterRNG.from_seed(s.seed, teacher + 1, xp).select([teacher])
    state = init_state(task, rng, n, s.c_std, xp)
    if s.engine == "numba":
        advance = make_compiled_advance(task, rng, step=s.step, beta=s.beta,
                                        noise_steps=s.noise_steps)
    else:
        advance = make_advance(make_kernel_gd(task, rng, xp, step=s.step, beta=s.beta,
                                              noise_steps=s.noise_steps))
    records = record_schedule(s.steps, s.records, extra=[s.trend_step, s.noise_steps])
    out = run_kernel_gd(task, state, xp, n_steps=s.steps, advance_fn=advance,
                        record_steps=records)
    final = out.state
    test = task.test_loss(final.c, final.y, rng, s.test_points, xp)
    return {
        "record_steps": out.record_steps, "loss": out.loss[0],
        "loss_exact": to_numpy(task.loss(final.c, final.y, xp))[0],
        "test_loss": to_numpy(test["loss"])[0], "test_loss_se": to_numpy(test["loss_se"])[0],
        "lambda_max": np.float64(top_eigenvalue(task, final, xp)),
        "c": to_numpy(final.c)[0], "y": to_numpy(final.y)[0],
        "seconds": np.float64(time.perf_counter() - start)}


def top_eigenvalue(task: SphereKernelTask, state: KernelState, xp: Any,
                   iterations: int = 200, eps: float = 1e-6) -> float:
    """Largest eigenvalue of the Jacobian of ``(c, y) -> N grad L`` (tangent ``y``), replica 0.

    Power iteration on finite differences of the flow's vector field: explicit Euler is stable
    at the end of the run when ``step * lambda_max < 2`` and monotone when ``< 1``.
    """
    c, y = state.c[:1, ...], state.y[:1, ...]
    n = c.shape[-1]

    def field(cc: Any, yy: Any) -> tuple[Any, Any]:
        _, grad_c, grad_y = task.loss_gradient(cc, yy, xp)
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
    """Run every ``(n, teacher)`` job (cached), write ``results.csv`` and the figures."""
    s = settings(raw)
    widths, teachers = study(raw)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = json.dumps(s.__dict__, sort_keys=True)
    params = [{"config": config, "n": n, "teacher": t} for n in widths for t in teachers]
    started = time.perf_counter()
    results = run_cached(run_job, params, out_dir / "runs", options)
    jobs = {(p["n"], p["teacher"]): r for p, r in zip(params, results, strict=True)}
    rows = _rows(jobs, widths, teachers, s)
    write_results(rows, out_dir / "results.csv")
    plot_all(jobs, widths, teachers, s, out_dir)
    job_seconds = sum(float(r["seconds"]) for r in results)
    options.report(f"{NAME} ({scale}): {len(results)} jobs, {job_seconds:.0f} s of job time, "
                   f"{time.perf_counter() - started:.0f} s wall")
    return rows


def _table(jobs: Mapping, widths: list[int], teachers: list[int], key: str) -> np.ndarray:
    """``(len(widths), len(teachers))`` array of the scalar ``key`` of every job."""
    return np.array([[float(jobs[n, t][key]) for t in teachers] for n in widths])


def final_trend(job: Mapping[str, np.ndarray], s: Settings) -> float:
    """``(L(0.8 T) - L(T)) / L(T)`` from the records of one job."""
    steps = np.asarray(job["record_steps"])
    loss = np.asarray(job["loss"])
    at = int(np.flatnonzero(steps == s.trend_step)[0])
    return float((loss[at] - loss[-1]) / loss[-1])


def _rows(jobs: Mapping, widths: list[int], teachers: list[int], s: Settings) -> list[Row]:
    rows = []
    for key, quantity in (("test_loss", "loss"), ("loss_exact", "loss_exact")):
        table = _table(jobs, widths, teachers, key)
        for n, values in zip(widths, table, strict=True):
            paper = PAPER_LOSS.get(n) if quantity == "loss" else None
            rows.append(Row(NAME, quantity, n, float(np.median(values)), float(values.min()),
                            float(values.max()),
                            paper / PAPER_FACTOR if paper else None,
                            paper * PAPER_FACTOR if paper else None))
    test = _table(jobs, widths, teachers, "test_loss")
    if len(widths) >= 2:
        slope, lo, hi = median_slope(np.array(widths), test)
        rows.append(Row(NAME, "slope", None, slope, lo, hi, None, -1.0))
    for n in widths:
        trends = [final_trend(jobs[n, t], s) for t in teachers]
        rows.append(Row(NAME, "final_trend", n, max(trends)))
    lam = _table(jobs, widths, teachers, "lambda_max")
    for n, values in zip(widths, lam, strict=True):
        rows.append(Row(NAME, "stability", n, s.step * float(values.max())))
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


# ---------------------------------------------------------------------------- figures

def plot_all(jobs: Mapping, widths: list[int], teachers: list[int], s: Settings,
             out_dir: Path) -> list[Path]:
    """Write the three figures of the experiment into ``out_dir``; return their paths."""
    import matplotlib.pyplot as plt  # noqa: PLC0415  (matplotlib only when plotting)

    written = []
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True, constrained_layout=True)
    job = jobs[widths[-1], teachers[0]]
    plot_level_sets(axes, SphereKernel(s.d, s.alpha, teachers[0]), job["c"], job["y"])
    written.append(_save(fig, out_dir / f"{NAME}-levelsets.png"))
    fig, ax = plt.subplots(figsize=(7.5, 4.5), constrained_layout=True)
    plot_loss_against_n(ax, np.array(widths), _table(jobs, widths, teachers, "test_loss"),
                        teachers)
    written.append(_save(fig, out_dir / f"{NAME}-loss.png"))
    fig, ax = plt.subplots(figsize=(8, 4.5), constrained_layout=True)
    plot_training(ax, jobs, widths, teachers, s)
    written.append(_save(fig, out_dir / f"{NAME}-training.png"))
    return written


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return path


def slice_points(model: SphereKernel, points: int = 181) -> tuple[np.ndarray, ...]:
    """The grid ``x = sqrt(d) (sin t cos p, sin t sin p, cos t, 0, ...)``: ``p, t, x``."""
    p, t = np.meshgrid(np.linspace(0.0, 2 * np.pi, 2 * points - 1),
                       np.linspace(0.0, np.pi, points))
    x = np.zeros((*p.shape, model.d))
    x[..., 0], x[..., 1], x[..., 2] = np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)
    return p, t, math.sqrt(model.d) * x


def plot_level_sets(axes: Any, model: SphereKernel, c: np.ndarray, y: np.ndarray) -> list:
    """Level sets of ``f`` and ``f_n`` on the 2-sphere slice, in ``(p, t)`` coordinates.

    The centres are shown at the direction of their first three coordinates, marker area
    proportional to ``|c_i|`` (filled: ``c_i > 0``, open: ``c_i < 0``); a centre far from the
    slice (large ``|y_4|, |y_5|``) is drawn fainter, ``alpha = |y_123| / sqrt(d)``.
    """
    backend = get_backend("numpy")
    task = model.task(backend.asarray)
    p, t, x = slice_points(model)
    flat = x.reshape(1, -1, model.d)
    values = [model.pspin.target(x, task.tensor, np),
              task.predict(flat, c[None], y[None], np).reshape(p.shape)]
    span = float(np.max(np.abs(values[0])))
    levels = np.linspace(-span, span, 21)
    head = np.linalg.norm(y[:, :3], axis=1)
    theta = np.arccos(np.clip(y[:, 2] / head, -1.0, 1.0))
    phi = np.mod(np.arctan2(y[:, 1], y[:, 0]), 2 * np.pi)
    size = 80 * np.abs(c) / np.max(np.abs(c))
    shade = np.clip(head / math.sqrt(model.d), 0.1, 1.0)
    artists = []
    for ax, value, title in zip(axes, values, ("target $f$", f"network $f_n$, n = {c.size}"),
                                strict=True):
        artists.append(ax.contourf(p, t, value, levels=levels, cmap="RdBu_r", extend="both"))
        ax.contour(p, t, value, levels=levels, colors="k", linewidths=0.3)
        colours = np.zeros((c.size, 4))
        colours[:, 3] = shade
        ax.scatter(phi, theta, s=size, facecolors=np.where((c > 0)[:, None], colours, 0.0),
                   edgecolors=colours, linewidths=0.8)
        ax.set_xlabel("azimuth $p$")
        ax.set_title(title)
        ax.set_xlim(0, 2 * np.pi)
        ax.set_ylim(np.pi, 0)
    axes[0].set_ylabel("polar angle $t$")
    axes[0].figure.colorbar(artists[0], ax=axes, label="value on the slice", shrink=0.9)
    return artists


def plot_loss_against_n(ax: Any, widths: np.ndarray, table: np.ndarray,
                        teachers: list[int]) -> list:
    """Test loss against ``n``: every teacher, their median, an ``n^-1`` guide, the paper."""
    artists = []
    markers = "osD^v<>ph*"
    for k, teacher in enumerate(teachers):
        artists += ax.loglog(widths, table[:, k], markers[k % len(markers)], ms=5, mfc="none",
                             label=f"teacher {teacher}")
    median = np.median(table, axis=1)
    artists += ax.loglog(widths, median, "k-", lw=1.5, label="median over teachers")
    artists += ax.loglog(widths, median[0] * widths[0] / widths, "k:", lw=1,
                         label="$\\propto n^{-1}$")
    paper_n = np.array(sorted(PAPER_LOSS))
    paper = np.array([PAPER_LOSS[n] for n in paper_n])
    artists.append(ax.errorbar(paper_n, paper, yerr=[paper * (1 - 1 / PAPER_FACTOR),
                                                      paper * (PAPER_FACTOR - 1)],
                               fmt="r*", ms=9, capsize=3, label="paper (read off Fig. 1)"))
    ax.minorticks_off()
    ax.set_xticks(widths, [str(int(n)) for n in widths])
    ax.set_xlabel("number of units $n$")
    ax.set_ylabel("test loss $\\frac{1}{2} E (f - f_n)^2$")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, fontsize="small")
    return artists


def plot_training(ax: Any, jobs: Mapping, widths: list[int], teachers: list[int],
                  s: Settings) -> list:
    """Closed-form loss against the step for every run; dotted: noise off from there on."""
    import matplotlib.pyplot as plt  # noqa: PLC0415

    colours = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(widths)))
    artists = []
    for n, colour in zip(widths, colours, strict=True):
        for k, teacher in enumerate(teachers):
            job = jobs[n, teacher]
            steps = np.maximum(np.asarray(job["record_steps"]), 1)
            artists += ax.loglog(steps, job["loss"], color=colour, lw=1,
                                 label=f"n = {n}" if k == 0 else None)
    ax.axvline(max(s.noise_steps, 1), color="k", ls=":", lw=1, label="noise switched off")
    ax.axvline(max(s.trend_step, 1), color="grey", ls="--", lw=1, label="final 20 %")
    ax.set_xlabel("step (step 0 drawn at 1)")
    ax.set_ylabel("loss (closed form)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, fontsize="small")
    return artists


EXPERIMENT = Experiment(
    name=NAME,
    title="Gaussian-kernel units on the 5-sphere learn the 3-spin energy: loss against n",
    paper="Rotskoff & Vanden-Eijnden, CPAM 2022, Experiment 1 (Fig. 1)",
    run=run)
