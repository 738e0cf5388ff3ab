"""``meanfield study`` end to end on a small population-GD study."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from compare.study import run_study
from meanfield.config import load_config
from meanfield.io import load

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "data" / "configs" / "mmn-isotropic-study.toml"
SMALL = [
    'particles.method="gd"',
    "particles.step=0.01",
    "dynamics.t_end=0.2",
    "dynamics.save_times=[0.0, 0.1, 0.2]",
    "study.n=[10, 20, 40]",
    "study.replicas=20",
    "pde.cells=600",
]


@pytest.fixture(scope="module")
def small_study(tmp_path_factory):
    path = tmp_path_factory.mktemp("study") / "study.h5"
    result = run_study(load_config(CONFIG, SMALL), path, scheduler="local", progress=False)
    return path, result


def test_study_file_holds_every_table(small_study) -> None:
    path, result = small_study
    data = load(path)
    np.testing.assert_array_equal(data.groups["study"]["n"], [10, 20, 40])
    for name in ("risk", "mean_r", "second_moment_r", "w1", "ks"):
        table = data.groups[f"study/{name}"]
        assert table["values"].shape == (3, 20, 3)
        assert table["slope"].shape == (3,)
        assert table["slope_ci"].shape == (3, 2)
    assert "n_var_predicted" in data.groups["study/mean_r"]
    pvalues = data.groups["study/mean_r"]["normality_pvalue"]
    assert pvalues.shape == (3, 3)
    assert np.all((pvalues >= 0) & (pvalues <= 1))
    assert result.failures == []
    # every job's raw output is on disk (written as it finished)
    raw = [k for k in data.groups if k.startswith("study/raw/")]
    assert len(raw) == 3 * 2  # 20 replicas = chunks of 16 + 4, for each N


def test_initial_fluctuations_match_var_rho0(small_study) -> None:
    """t = 0: N Var <r, mu_N> estimates Var_rho0(r) (i.i.d. start), here with 20 replicas."""
    path, _ = small_study
    table = load(path).groups["study/mean_r"]
    predicted = table["n_var_predicted"][0]
    measured = table["n_var"][:, 0]
    # a variance from 20 replicas has a relative standard error sqrt(2/19) = 0.32
    assert np.all(np.abs(measured / predicted - 1) < 3 * np.sqrt(2 / 19))


def test_risk_bias_falls_like_one_over_n(small_study) -> None:
    path, _ = small_study
    table = load(path).groups["study/risk"]
    # the t = 0 risk gap is the exact O(1/N) bias; its per-replica mean error fits slope -1
    lo, hi = table["slope_ci"][0]
    assert lo - 0.1 < -1.0 < hi + 0.1, table["slope_ci"][0]


def test_study_command_line_with_a_process_pool(tmp_path: Path) -> None:
    out = tmp_path / "cli.h5"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [a for s in SMALL for a in ("--set", s)]
    args += [
        "--set",
        "study.n=[10, 20]",
        "--set",
        "study.replicas=4",
        "--set",
        'study.observables=["mean_r", "w1"]',
    ]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "compare.cli",
            "study",
            str(CONFIG),
            "-o",
            str(out),
            "--quiet",
            "--workers",
            "2",
            *args,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    data = load(out)
    assert data.groups["study/w1"]["values"].shape == (2, 4, 3)
    plots = subprocess.run(
        [sys.executable, "-m", "compare.cli", "plot", str(out), "-o", str(tmp_path / "fig")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert plots.returncode == 0, plots.stderr
    assert len(list((tmp_path / "fig").glob("*.png"))) == 3


def test_online_sgd_study_predicts_the_step_size_term(tmp_path: Path, monkeypatch) -> None:
    import compare.study as study_module

    monkeypatch.setattr(study_module, "SGD_MC_SAMPLES", 400)  # the term's Monte Carlo: fast
    config = load_config(
        CONFIG,
        [
            "particles.step=1e-3",
            "dynamics.t_end=0.05",
            "dynamics.save_times=[0.0, 0.05]",
            "study.n=[10, 20]",
            "study.replicas=4",
            'study.observables=["mean_r"]',
            "pde.cells=300",
        ],
    )
    result = run_study(config, tmp_path / "sgd.h5", scheduler="local", progress=False)
    table = result.tables["mean_r"]
    assert table["n_var_predicted_sgd"].shape == (2, 2)
    extra = table["n_var_predicted_sgd"][:, 1] - table["n_var_predicted"][1]
    assert np.all(extra > 0)  # a positive variance per step
    np.testing.assert_allclose(extra[1] / extra[0], 2.0, rtol=1e-12)  # grows like N


def test_xarray_opens_every_group_of_a_study_file(small_study) -> None:
    import xarray as xr

    from tests.conftest import assert_every_group_opens_in_xarray

    groups = assert_every_group_opens_in_xarray(small_study[0])
    assert {"pde", "study", "study/risk", "study/w1"} <= set(groups)
    assert any(g.startswith("study/raw/") for g in groups)
    # each table carries its coordinates: select by N and by time, as docs/data-format.md shows
    data = load(small_study[0])
    with xr.open_dataset(small_study[0], engine="h5netcdf", group="study/w1") as w1:
        assert w1["values"].dims == ("n", "replica", "time")
        mean = w1["values"].mean("replica").sel(time=0.1, n=20)
        expected = np.nanmean(data.groups["study/w1"]["values"][1, :, 1])
        assert float(mean) == pytest.approx(expected, rel=1e-12)


TEACHER_STUDY = """
[model]
name = "teacher_student"
input_dim = 1
input_law = "uniform"
trained = ["w", "b"]
target = {a = [1.0, 1.0], w = [[2.5], [2.0]], b = [-1.0, 1.0]}
[init]
mean = [0.5, 0.0]
std = 0.25
[dynamics]
t_end = 0.5
save_times = [0.0, 0.5]
[pde]
cells = [48, 48]
bounds = [[-1.5, 2.5], [-2.0, 2.0]]
[particles]
n = 100
method = "gd"
step = 0.01
seed = 0
[study]
n = [25, 100, 400]
replicas = 24
"""


def test_two_dimensional_study_has_per_axis_means_and_sliced_w1(tmp_path) -> None:
    """A study on the (w, b) plane: default observables risk, mean (per axis), sliced W1."""
    import tomllib

    from meanfield.config import parse_config
    from tests.conftest import assert_every_group_opens_in_xarray

    config = parse_config(tomllib.loads(TEACHER_STUDY))
    assert config.study["observables"] == ("risk", "mean", "sliced_w1")
    path = tmp_path / "study.h5"
    run_study(config, path, scheduler="local", progress=False)
    data = load(path)
    assert {"study/risk", "study/mean_w", "study/mean_b", "study/sliced_w1"} <= set(data.groups)
    assert data.dims["pde"]["density"] == ("time", "w", "b")
    for axis in ("w", "b"):
        n_var0 = data.groups[f"study/mean_{axis}"]["n_var"][:, 0]
        # t = 0: N Var of the mean of a coordinate is its initial variance, 0.25^2; a variance
        # from 24 replicas has a relative standard error sqrt(2/23) = 0.29 (3.5 SE allowed)
        assert np.all(np.abs(n_var0 / 0.0625 - 1) < 3.5 * np.sqrt(2 / 23))
    for name in ("mean_w", "mean_b", "risk"):
        table = data.groups[f"study/{name}"]
        # t = 0.5: the CLT prediction from the 2-D linearised equation against N Var pooled
        # over the three N (72 replicas: relative standard error sqrt(2/69) = 0.17; 3.5 SE)
        pooled = np.mean(table["n_var"][:, 1])
        assert abs(pooled / table["n_var_predicted"][1] - 1) < 3.5 * np.sqrt(2 / 69), name
    w1 = np.nanmean(data.groups["study/sliced_w1"]["values"], axis=1)  # (n, time)
    assert np.all(np.diff(w1, axis=0) < 0)  # falls with N at every time
    slope = data.groups["study/sliced_w1"]["slope"]
    # i.i.d. start: N^-1/2 (slope CI from the bootstrap; the cell-centre projection adds O(h))
    assert -0.7 < slope[0] < -0.35
    assert_every_group_opens_in_xarray(path)


def test_study_observables_follow_the_grid_dimension() -> None:
    import tomllib

    from meanfield.config import ConfigError, parse_config

    data = tomllib.loads(TEACHER_STUDY)
    data["study"]["observables"] = ["risk", "mean_r"]
    with pytest.raises(ConfigError, match="mean, sliced_w1"):
        parse_config(data)
    iso = load_config(CONFIG)
    assert iso.study["observables"] == ("risk", "mean_r", "second_moment_r", "w1", "ks") or set(
        iso.study["observables"]
    ) <= {"risk", "mean_r", "second_moment_r", "w1", "ks"}
    with pytest.raises(ConfigError, match="mean_r"):
        load_config(CONFIG, ['study.observables=["risk", "sliced_w1"]'])


def test_a_study_without_a_pde_plots_one_row_of_panels(tmp_path: Path) -> None:
    """The p-spin study has no N Var table: its figure has no empty second row."""
    import matplotlib.image

    from compare.figures import plot_any

    config = load_config(
        ROOT / "data" / "configs" / "rve-pspin-d10-scaling.toml",
        [
            "study.n=[10, 20]",
            "study.replicas=2",
            "dynamics.t_end=2.0",
            "dynamics.save_times=[0.0, 1.0, 2.0]",
            "particles.quench_time=1.0",
            "particles.test_points=500",
        ],
    )
    run_study(config, tmp_path / "pspin.h5", scheduler="local", progress=False)
    (path,) = plot_any(tmp_path / "pspin.h5", tmp_path)
    height, width = matplotlib.image.imread(path).shape[:2]
    assert height < 1.2 * width  # one row of panels (two rows were 1.9 times the width)
