"""The shipped configs of data/configs: each parses and builds, and the exactly solvable and
multi-dimensional ones, run end to end through ``run_config`` (reduced in size by overrides),
match their closed forms.

These go through the whole user path (TOML -> schema -> builders -> solver/particles -> HDF5 ->
reader), so a wiring mistake between a model and its config keys shows up here.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from compare.runner import run_config
from meanfield.config import load_config
from meanfield.config.builders import build_model, build_particle_setup, build_pde_setup
from meanfield.grid import Grid
from meanfield.io import load
from meanfield.model import linear_unit_moments, ou_moments
from particles.run import build_particle_run

CONFIGS = sorted((Path(__file__).parents[2] / "data" / "configs").glob("*.toml"))
FULL = sorted((Path(__file__).parents[2] / "data" / "configs" / "full").glob("*.toml"))


def test_configs_are_shipped():
    names = {p.stem for p in CONFIGS}
    assert {
        "mmn-isotropic",
        "mmn-anisotropic",
        "teacher-student-2d",
        "linear-unit-2d",
        "cosine-gibbs",
        "ou-3d",
    } <= names


def test_every_paper_experiment_ships_at_full_size():
    assert {p.stem for p in FULL} <= {p.stem for p in CONFIGS} | {"rve-pspin-d25-scaling"}
    assert {
        "mmn-isotropic",
        "mmn-nonmonotone-kappa0.1",
        "mmn-nonmonotone-kappa0.4",
        "mmn-anisotropic",
        "rve-pspin-d25-scaling",
    } <= {p.stem for p in FULL}


@pytest.mark.parametrize("path", CONFIGS + FULL, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_shipped_config_parses_and_builds(path):
    config = load_config(path)
    if config.pde is not None:
        setup = build_pde_setup(config)
        if setup.method == "characteristics":
            # the weights are a quadrature of a probability law: total mass 1 to rounding
            _, weights = setup.rule.points()
            assert abs(float(weights.sum()) - 1.0) < 1e-12
        else:
            assert abs(setup.rho0.sum() * setup.pde.grid.cell_volume - 1.0) < 1e-12
    if config.particles is not None:
        run = build_particle_run(build_particle_setup(config), n=4, replicas=2)
        assert run.state.theta.shape[:2] == (2, 4)


def _moments(data: dict, axes: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of each PDE frame (cell-centre quadrature of the cell averages)."""
    mesh = np.meshgrid(*(data[a] for a in axes), indexing="ij")
    volume = math.prod(float(data[a][1] - data[a][0]) for a in axes)
    means, covs = [], []
    for rho in data["density"]:
        mass = rho * volume
        mean = np.array([np.sum(mass * m) for m in mesh])
        cov = np.array(
            [
                [np.sum(mass * (p - mean[i]) * (q - mean[j])) for j, q in enumerate(mesh)]
                for i, p in enumerate(mesh)
            ]
        )
        means.append(mean)
        covs.append(cov)
    return np.array(means), np.array(covs)


def _run(name: str, tmp_path: Path, *overrides: str) -> tuple:
    config = load_config(CONFIGS[[p.stem for p in CONFIGS].index(name)], overrides)
    out = tmp_path / f"{name}.h5"
    run_config(config, out, progress=False)
    return config, load(out)


def test_linear_unit_config_matches_the_moment_odes(tmp_path):
    config, data = _run(
        "linear-unit-2d", tmp_path, "pde.cells=[80, 80]", "particles.n=200", "particles.replicas=4"
    )
    pde = data.groups["pde"]
    assert data.dims["pde"]["density"] == ("time", "theta0", "theta1")
    means, covs = _moments(pde, ("theta0", "theta1"))
    dyn, init = config.dynamics, config.init
    m0, c0 = np.array(init["mean"]), init["std"] ** 2 * np.eye(2)
    for t, mean, cov in zip(pde["time"], means, covs, strict=True):
        m_ex, c_ex = linear_unit_moments(
            config.model["theta_star"], dyn["l2"], dyn["beta"], m0, c0, t
        )
        # h = 0.1 and cell Peclet number beta h |grad Psi| ~ 1, where Scharfetter-Gummel adds
        # diffusion ~ D Pe^2 / 12: the largest moment error over the run is O(h^2), measured
        # 0.031, 0.0078, 0.0020 at h = 0.2, 0.1, 0.05
        np.testing.assert_allclose(mean, m_ex, atol=1e-2)
        np.testing.assert_allclose(cov, c_ex, atol=1e-2)
    # noisy SGD particles: the replica-averaged mean is within 5 standard errors of the ODE
    part = data.groups["particles"]
    theta_mean = part["reduced"][-1].mean(axis=1)  # (R, 2): per-replica particle means
    m_end, _ = linear_unit_moments(
        config.model["theta_star"], dyn["l2"], dyn["beta"], m0, c0, float(part["time"][-1])
    )
    se = theta_mean.std(axis=0, ddof=1) / math.sqrt(len(theta_mean))
    assert np.all(np.abs(theta_mean.mean(axis=0) - m_end) < 5 * se + 2e-3)  # + eps bias O(1e-3)


def test_cosine_gibbs_config_reaches_the_self_consistent_gibbs_state(tmp_path):
    config, data = _run("cosine-gibbs", tmp_path, "pde.cells=100")
    pde = data.groups["pde"]
    model = build_model(config.model, config.pde)
    grid = Grid(config.pde["bounds"], config.pde["cells"], model.axis_names)
    gibbs = model.gibbs_state(grid, config.dynamics["beta"])
    residual = np.sum(np.abs(pde["density"][-1] - gibbs)) * grid.cell_volume
    # Scharfetter-Gummel's discrete fixed point is exp(-beta Psi_i) at the cell centres; what is
    # left at t = 20 is the relaxation (rate ~ 1 per unit time: e^-20 ~ 2e-9) and the quadrature
    # error of the order parameters (~1e-9 at h = 0.07)
    assert residual < 1e-6
    early = np.sum(np.abs(pde["density"][0] - gibbs)) * grid.cell_volume
    assert early > 0.1  # the run starts far from it (the check is not vacuous)


def test_ou_3d_config_matches_the_closed_form(tmp_path):
    config, data = _run("ou-3d", tmp_path, "pde.cells=[32, 32, 32]")
    pde = data.groups["pde"]
    axes = ("theta0", "theta1", "theta2")
    assert data.dims["pde"]["density"] == ("time", *axes)
    means, covs = _moments(pde, axes)
    model = config.model
    for t, mean, cov in zip(pde["time"], means, covs, strict=True):
        m_ex, v_ex = ou_moments(
            np.array(model["stiffness"]),
            np.array(model["center"]),
            config.dynamics["beta"],
            np.array(config.init["mean"]),
            config.init["std"] ** 2,
            t,
        )
        # h = 0.25 and a stiff axis (k = 2): O(h^2) errors of a few 1e-2 (measured 1.3e-2 at
        # h = 0.2 in test_multidim); the axes stay uncorrelated to O(dt^2)
        np.testing.assert_allclose(mean, m_ex, atol=3e-2)
        np.testing.assert_allclose(np.diag(cov), v_ex, atol=3e-2)
        assert np.max(np.abs(cov - np.diag(np.diag(cov)))) < 1e-3
    assert abs(pde["mass"][-1] - 1.0) < 1e-12


def test_teacher_student_config_pde_and_particles_agree(tmp_path):
    config, data = _run(
        "teacher-student-2d",
        tmp_path,
        "pde.cells=[80, 80]",
        "particles.n=400",
        "particles.replicas=4",
    )
    pde, part = data.groups["pde"], data.groups["particles"]
    assert data.dims["pde"]["density"] == ("time", "w", "b")
    assert pde["risk"][-1] < 0.2 * pde["risk"][0]  # the dynamics does learn
    gap = np.abs(part["risk"].mean(axis=1) - pde["risk"])
    spread = part["risk"].std(axis=1, ddof=1)
    # the particles' risk differs from the PDE's by O(1/N) bias + O(N^-1/2) fluctuation (a few
    # 1e-3 at N = 400 and t = 0, shrinking with the risk); the grid error at h = 0.06 is ~1e-4
    assert np.all(gap < 4 * spread / math.sqrt(part["risk"].shape[1]) + 2e-3)


def test_anisotropic_config_runs_in_two_dimensions(tmp_path):
    config, data = _run(
        "mmn-anisotropic",
        tmp_path,
        "pde.cells=[40, 40]",
        "dynamics.t_end=1.0",
        "dynamics.save_times=[0.0, 0.5, 1.0]",
        "particles.n=100",
        "particles.step=1e-4",
    )
    pde, part = data.groups["pde"], data.groups["particles"]
    assert data.dims["pde"]["density"] == ("time", "r1", "r2")
    assert part["reduced"].shape == (3, 2, 100, 2)
    means, _ = _moments(pde, ("r1", "r2"))
    # mass moves into the informative direction: r1 grows faster than r2
    assert means[-1, 0] / means[0, 0] > 1.5 * means[-1, 1] / means[0, 1]
    # the particles' mean (r1, r2) tracks the PDE's within 0.05 (N = 100, eps = 1e-4)
    np.testing.assert_allclose(part["reduced"][-1].mean(axis=(0, 1)), means[-1], atol=0.05)


def test_teacher_student_runs_on_a_three_dimensional_grid(tmp_path):
    """All of (a, w, b) trained: the PDE on the full 3-D theta grid conserves mass to round-off,
    stays non-negative, and lowers the risk; the particles live in the same coordinates."""
    config, data = _run(
        "teacher-student-2d",
        tmp_path,
        'model.trained=["a", "w", "b"]',
        "init.mean=[1.0, 0.5, 0.0]",
        "init.std=0.2",
        "pde.cells=[20, 24, 24]",
        "pde.bounds=[[-0.5, 2.5], [-1.5, 3.0], [-2.0, 2.0]]",
        "dynamics.t_end=1.0",
        "dynamics.save_times=[0.0, 0.5, 1.0]",
        "particles.n=200",
        "particles.replicas=2",
    )
    pde, part = data.groups["pde"], data.groups["particles"]
    assert data.dims["pde"]["density"] == ("time", "a", "w", "b")
    assert part["reduced"].shape == (3, 2, 200, 3)
    assert np.max(np.abs(pde["mass"] - 1.0)) < 1e-12  # finite volumes: round-off only
    assert pde["density"].min() >= 0.0
    assert pde["risk"][-1] < 0.8 * pde["risk"][0]
    # coarse grid (h ~ 0.17): the particles' risk still tracks the PDE's to a few 1e-3
    np.testing.assert_allclose(part["risk"].mean(axis=1), pde["risk"], atol=5e-3)


def test_xarray_opens_every_group_of_a_run_file(tmp_path):
    from tests.conftest import assert_every_group_opens_in_xarray

    _run(
        "teacher-student-2d",
        tmp_path,
        "pde.cells=[30, 30]",
        "particles.n=20",
        "particles.keep_theta=true",
        "dynamics.save_times=[0.0, 1.0, 2.0]",
    )
    groups = assert_every_group_opens_in_xarray(tmp_path / "teacher-student-2d.h5")
    assert {"pde", "pde/checkpoint", "particles", "particles/checkpoint"} <= set(groups)


def test_particle_only_run_gets_its_figure(tmp_path):
    from compare.figures import plot_any

    _run(
        "rve-pspin-d10",
        tmp_path,
        "dynamics.t_end=2.0",
        "dynamics.save_times=[0.0, 1.0, 2.0]",
        "particles.quench_time=1.5",
        "particles.n=20",
        "particles.test_points=500",
    )
    paths = plot_any(tmp_path / "rve-pspin-d10.h5", tmp_path / "fig")
    assert [p.name for p in paths] == ["rve-pspin-d10-particles.png"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
