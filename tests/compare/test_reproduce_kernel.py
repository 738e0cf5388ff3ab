"""The rve-kernel reproduction driver (RVE Experiment 1) at a tiny size, and its configs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from compare.reproduce import rve_kernel
from compare.reproduce.base import COLUMNS, Options, load_raw, read_results
from meanfield.config import ConfigError

EXPERIMENT = rve_kernel.EXPERIMENT

TINY = (
    "study.n=[4, 8]",
    "study.teachers=2",
    "protocol.steps=300",
    "protocol.max_steps=600",
    "protocol.test_points=2000",
    "protocol.records=12",
)
SUFFIXES = ("", "_l2")  # (4.5) as printed, then the L2(mu) flow


def test_tiny_run_writes_results_and_figures_and_reuses_its_jobs(tmp_path: Path) -> None:
    raw = load_raw(EXPERIMENT, "small", TINY)
    lines: list[str] = []
    options = Options(workers=1, scheduler="local", progress=False, report=lines.append)
    rows = EXPERIMENT.run(raw, tmp_path, options)
    table = read_results(tmp_path / "results.csv")
    assert list(table[0]) == list(COLUMNS)
    assert len(table) == len(rows)
    quantities = [r["quantity"] for r in table]
    by = {(r["quantity"], r["x"]): r for r in table}
    for tag in SUFFIXES:
        for quantity in (
            "loss",
            "loss_exact",
            "final_trend",
            "stability",
            "steps",
            "converged",
            "seconds",
        ):
            assert [r["x"] for r in table if r["quantity"] == quantity + tag] == [4.0, 8.0]
        assert quantities.count("slope" + tag) == 1
        for n in (4.0, 8.0):
            loss = by["loss" + tag, n]
            assert loss["ours_low"] <= loss["ours"] <= loss["ours_high"]
            # the 2,000-point test loss and the closed form agree to Monte Carlo accuracy
            assert by["loss_exact" + tag, n]["ours"] == pytest.approx(loss["ours"], rel=0.2)
            assert by["stability" + tag, n]["ours"] < 2.0
            steps = by["steps" + tag, n]
            assert 300 <= steps["ours_low"] <= steps["ours_high"] <= 600
            converged = by["converged" + tag, n]["ours"]
            assert converged in (0.0, 0.5, 1.0)
            # a run stops short of max_steps only when it is flat
            assert converged == 1.0 or steps["ours_high"] == 600
            trend = by["final_trend" + tag, n]
            assert trend["ours"] == max(abs(trend["ours_low"]), abs(trend["ours_high"]))
    # the paper's values belong to (4.5) only
    assert by["loss", 8.0]["paper_low"] == pytest.approx(0.1 / 3)
    assert by["loss", 4.0]["paper_low"] is None and by["loss_l2", 8.0]["paper_low"] is None
    assert by["slope", None]["paper_high"] == -1.0 and by["slope", None]["paper_low"] is None
    assert by["slope_l2", None]["paper_high"] is None
    for name in ("levelsets", "levelsets-l2", "loss", "training"):
        assert (tmp_path / f"rve-kernel-{name}.png").stat().st_size > 10_000
    assert any("8 of 8 jobs to run" in line for line in lines)

    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "runs").glob("*.npz")}
    assert len(stamps) == 8
    lines.clear()
    again = EXPERIMENT.run(raw, tmp_path, options)
    assert not any("jobs to run" in line for line in lines)  # nothing recomputed
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert again == rows
    # one objective alone reuses its jobs: the job config holds only that objective's settings
    lines.clear()
    alone = load_raw(EXPERIMENT, "small", [*TINY, "protocol.objective='l2'"])
    rows_l2 = EXPERIMENT.run(alone, tmp_path / "l2", options)
    assert {r.quantity for r in rows_l2} == {r.quantity for r in rows if r.quantity.endswith("_l2")}
    # and the same numbers as in the run of both
    assert [r for r in rows_l2 if r.quantity != "seconds_l2"] == [
        r for r in rows if r.quantity.endswith("_l2") and r.quantity != "seconds_l2"
    ]


def test_config_errors_name_the_key() -> None:
    raw = load_raw(EXPERIMENT, "small")
    del raw["protocol"]["step_collocation"]
    with pytest.raises(ConfigError, match=r"missing required key 'protocol\.step_collocation'"):
        EXPERIMENT.plan(raw)
    raw["protocol"]["objective"] = "l2"
    EXPERIMENT.plan(raw)  # the other objective's step is not needed there
    for override, key in (
        ("model.name='pspin'", "model.name"),
        ("protocol.beta=-1", "beta"),
        ("study.n=[0, 8]", "study.n"),
        ("particles.engine='cuda'", "engine"),
        ("protocol.noise_fraction=1.5", "noise_fraction"),
        ("protocol.max_steps=10", "protocol.max_steps"),
        ("protocol.flat_tolerance=0", "protocol.flat_tolerance"),
        ("protocol.step_l2=0", "protocol.step_l2"),
    ):
        bad = load_raw(EXPERIMENT, "small", [override])
        with pytest.raises(ConfigError, match=key):
            EXPERIMENT.plan(bad)


@pytest.mark.parametrize("value", ["'L2'", "['collocation', 'rkhs']", "[]", "['l2', 'l2']", "3"])
def test_a_bad_objective_is_a_clear_error_naming_the_key(value: str) -> None:
    bad = load_raw(EXPERIMENT, "small", [f"protocol.objective={value}"])
    with pytest.raises(
        ConfigError,
        match=r"'protocol\.objective': .*(allowed: one of "
        r"'collocation', 'l2'|expected string or array)",
    ):
        EXPERIMENT.plan(bad)
    with pytest.raises(ConfigError, match=r"protocol\.objective"):
        EXPERIMENT.run(bad, Path("/nonexistent"), Options(progress=False))


def test_objectives_default_to_both_with_the_paper_s_first() -> None:
    raw = load_raw(EXPERIMENT, "small")
    del raw["protocol"]["objective"]
    assert EXPERIMENT.plan(raw).objectives == ["collocation", "l2"]
    single = load_raw(EXPERIMENT, "small", ["protocol.objective='collocation'"])
    assert EXPERIMENT.plan(single).objectives == ["collocation"]
    assert (rve_kernel.suffix("collocation"), rve_kernel.suffix("l2")) == ("", "_l2")


def test_shipped_configs() -> None:
    paper = EXPERIMENT.plan(load_raw(EXPERIMENT, "paper"))
    assert paper.objectives == ["collocation", "l2"]
    s = paper.settings["collocation"]
    widths, teachers = paper.widths, paper.teachers
    assert widths == [8, 16, 32, 64, 128, 256] and len(teachers) >= 3
    assert (s.d, s.alpha, s.steps, s.test_points) == (5, 1.0, 200_000, 1_000_000)
    assert s.noise_steps == 100_000 and s.max_steps > s.steps and s.flat_tolerance <= 1e-3
    assert paper.settings["l2"].step == 0.1
    small = EXPERIMENT.plan(load_raw(EXPERIMENT, "small"))
    assert small.settings["collocation"].d == 5 and small.widths == [8, 16, 32]
    assert small.objectives == ["collocation", "l2"]


def test_median_slope_recovers_a_power_law() -> None:
    widths = np.array([8, 16, 32, 64])
    values = np.outer(widths**-1.5, [1.0, 2.0, 0.5])  # three teachers, one power law
    slope, lo, hi = rve_kernel.median_slope(widths, values)
    assert slope == pytest.approx(-1.5, abs=1e-12)
    assert lo == pytest.approx(-1.5, abs=1e-12) and hi == pytest.approx(-1.5, abs=1e-12)
    noisy = values * np.exp(np.random.default_rng(0).normal(0, 0.3, values.shape))
    slope, lo, hi = rve_kernel.median_slope(widths, noisy)
    assert lo <= slope <= hi and hi - lo > 0.01 and math.isfinite(slope)
