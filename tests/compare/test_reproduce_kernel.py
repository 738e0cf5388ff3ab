"""The rve-kernel reproduction driver (RVE Experiment 1) at a tiny size, and its configs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from compare.reproduce import rve_kernel
from compare.reproduce.base import COLUMNS, Options, load_raw, read_results
from meanfield.config import ConfigError

TINY = ("study.n=[4, 8]", "study.teachers=2", "protocol.steps=300",
        "protocol.test_points=2000", "protocol.records=12")


def test_tiny_run_writes_results_and_figures_and_reuses_its_jobs(tmp_path: Path) -> None:
    raw = load_raw(rve_kernel.EXPERIMENT, "small", TINY)
    lines: list[str] = []
    options = Options(workers=1, scheduler="local", progress=False, report=lines.append)
    rows = rve_kernel.run(raw, "small", tmp_path, options)
    table = read_results(tmp_path / "results.csv")
    assert list(table[0]) == list(COLUMNS)
    assert len(table) == len(rows)
    quantities = [r["quantity"] for r in table]
    for quantity in ("loss", "loss_exact", "final_trend", "stability"):
        assert [r["x"] for r in table if r["quantity"] == quantity] == [4.0, 8.0]
    assert quantities.count("slope") == 1
    by = {(r["quantity"], r["x"]): r for r in table}
    for n in (4.0, 8.0):
        loss = by["loss", n]
        assert loss["ours_low"] <= loss["ours"] <= loss["ours_high"]
        # the 2,000-point test loss and the closed form agree to Monte Carlo accuracy
        assert by["loss_exact", n]["ours"] == pytest.approx(loss["ours"], rel=0.2)
        assert by["stability", n]["ours"] < 2.0
    assert by["loss", 8.0]["paper_low"] == pytest.approx(0.1 / 3)
    assert by["loss", 4.0]["paper_low"] is None
    assert by["slope", None]["paper_high"] == -1.0 and by["slope", None]["paper_low"] is None
    for name in ("levelsets", "loss", "training"):
        assert (tmp_path / f"rve-kernel-{name}.png").stat().st_size > 10_000
    assert any("4 of 4 jobs to run" in line for line in lines)

    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "runs").glob("*.npz")}
    assert len(stamps) == 4
    lines.clear()
    again = rve_kernel.run(raw, "small", tmp_path, options)
    assert not any("jobs to run" in line for line in lines)  # nothing recomputed
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert again == rows


def test_config_errors_name_the_key() -> None:
    raw = load_raw(rve_kernel.EXPERIMENT, "small")
    del raw["protocol"]["step"]
    with pytest.raises(ConfigError, match=r"protocol\.step is missing"):
        rve_kernel.settings(raw)
    for override, key in (("model.name='pspin'", "model.name"), ("protocol.beta=-1", "beta"),
                          ("study.n=[0, 8]", "study.n"), ("particles.engine='cuda'", "engine"),
                          ("protocol.noise_fraction=1.5", "noise_fraction")):
        bad = load_raw(rve_kernel.EXPERIMENT, "small", [override])
        check = rve_kernel.study if key.startswith("study") else rve_kernel.settings
        with pytest.raises(ConfigError, match=key):
            check(bad)


def test_shipped_configs() -> None:
    paper = load_raw(rve_kernel.EXPERIMENT, "paper")
    s = rve_kernel.settings(paper)
    widths, teachers = rve_kernel.study(paper)
    assert widths == [8, 16, 32, 64, 128, 256] and len(teachers) >= 3
    assert (s.d, s.alpha, s.steps, s.test_points) == (5, 1.0, 200_000, 1_000_000)
    assert s.noise_steps == 100_000 and s.trend_step == 160_000
    small = load_raw(rve_kernel.EXPERIMENT, "small")
    assert rve_kernel.settings(small).d == 5 and rve_kernel.study(small)[0] == [8, 16, 32]


def test_median_slope_recovers_a_power_law() -> None:
    widths = np.array([8, 16, 32, 64])
    values = np.outer(widths ** -1.5, [1.0, 2.0, 0.5])  # three teachers, one power law
    slope, lo, hi = rve_kernel.median_slope(widths, values)
    assert slope == pytest.approx(-1.5, abs=1e-12)
    assert lo == pytest.approx(-1.5, abs=1e-12) and hi == pytest.approx(-1.5, abs=1e-12)
    noisy = values * np.exp(np.random.default_rng(0).normal(0, 0.3, values.shape))
    slope, lo, hi = rve_kernel.median_slope(widths, noisy)
    assert lo <= slope <= hi and hi - lo > 0.01 and math.isfinite(slope)
