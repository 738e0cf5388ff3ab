"""Particle dynamics: gd follows the PDE, noisy SGD samples the Gibbs state, online SGD is
reproducible and backend-clean, and a config runs PDE and particles side by side."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from compare.runner import run_config
from meanfield.backends import get_backend, to_numpy
from meanfield.config import load_config
from meanfield.config.builders import build_particle_setup
from meanfield.io import load
from meanfield.model import ACTIVATIONS, IsotropicGaussians, NormalLaw, QuadraticPotential
from meanfield.rng import CounterRNG
from meanfield.schedules import TimeChange
from particles.methods import make_gd, make_online_sgd
from particles.run import build_particle_run, simulate
from particles.state import EnsembleState

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "data" / "configs" / "mmn-isotropic.toml"
NUMPY = get_backend("numpy")


def _config(*overrides: str):
    return load_config(SHIPPED, list(overrides))


def _setup(*overrides: str):
    """The particle setup of the shipped config with ``overrides``."""
    return build_particle_setup(_config(*overrides))


def _pde_reference(t_end: float, times: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Risk and mean of r from the PDE (2,400 cells: grid error < 1e-3 relative by t = 1)."""
    from meanfield.config.builders import build_pde_setup
    from meanfield.pde.controller import integrate
    from meanfield.pde.trackers import MemoryTracker

    setup = build_pde_setup(_config(f"dynamics.t_end={t_end}", f"dynamics.save_times={times}"))
    mem = MemoryTracker()
    integrate(setup.pde, setup.rho0, times, NUMPY, trackers=[mem])
    r = setup.pde.grid.centres()
    h = setup.pde.grid.cell_volume
    return mem.series("risk"), np.array([np.sum(f.density * r) * h for f in mem.frames])


def test_gd_follows_the_pde_with_a_gap_that_shrinks_with_n() -> None:
    times = [0.0, 0.25]
    pde_risk, pde_mean = _pde_reference(0.25, times)
    gaps = {}
    for n, replicas in ((50, 8), (200, 2)):
        run = build_particle_run(
            _setup(
                'particles.method="gd"',
                "particles.step=0.0125",
                "dynamics.t_end=0.25",
                f"dynamics.save_times={times}",
            ),
            n=n,
            replicas=replicas,
            seed=3,
        )
        frames = simulate(run)
        risk = np.array([f.risk.mean() for f in frames])
        mean_r = np.array([f.reduced.mean() for f in frames])
        gaps[n] = (risk - pde_risk, mean_r - pde_mean)
    # the risk gap is the O(1/N) bias (about 9/N at t = 0 here): 4x more units, 4x less gap
    ratio = gaps[50][0] / gaps[200][0]
    assert np.all((ratio > 2.5) & (ratio < 6.5)), (gaps, ratio)
    # the mean of r has no bias at t = 0 and an O(N^-1/2) fluctuation with 400 units in all
    assert np.all(np.abs(gaps[200][1]) < 0.01), gaps


def test_gd_step_size_error_is_second_order() -> None:
    """Heun's method: halving the step cuts the difference to a fine reference by about 4."""
    finals = []
    for eps in (0.05, 0.025, 0.0125):
        run = build_particle_run(
            _setup(
                'particles.method="gd"',
                f"particles.step={eps}",
                "dynamics.t_end=0.1",
                "dynamics.save_times=[0.0, 0.1]",
            ),
            n=20,
            replicas=1,
            seed=1,
        )
        finals.append(to_numpy(simulate(run)[-1].reduced))
    e1 = np.max(np.abs(finals[0] - finals[2]))
    e2 = np.max(np.abs(finals[1] - finals[2]))
    assert 2.5 < e1 / e2 < 6.5, (e1, e2)  # (1 - 1/4) / (1/4 - 1/16) = 4 for exact order 2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_noisy_sgd_samples_the_gibbs_state(seed: int) -> None:
    """Quadratic V = (k/2)(theta - c)^2, U = 0: the Gibbs state is N(c, 1/(k beta)).

    Euler-Maruyama biases the stationary variance by a factor 1/(1 - k s) (0.2 % here), far
    below what a KS test on 4,000 samples resolves (about 5 % in the standard deviation)."""
    k, c, beta, eps = 1.0, 0.5, 4.0, 2e-3
    model = QuadraticPotential(stiffness=k, center=c)
    backend = NUMPY
    rng = CounterRNG.from_seed(seed, 2, backend.xp)
    theta0 = NormalLaw((-1.0,), (0.3,)).sample_streams(rng, 2000)
    step = make_online_sgd(
        model, rng, backend, eps=eps, batch=1, time_change=TimeChange(), beta=beta
    )
    state = EnsembleState(theta0)
    for _ in range(2500):  # t = 5: the initial offset has decayed by e^(-10)
        state = step(state)
    sample = to_numpy(state.theta).ravel()
    std = 1.0 / math.sqrt(k * beta)
    assert stats.kstest(sample, "norm", args=(c, std)).pvalue > 1e-3
    # power: a 20 % wider law (or a 0.1 std shift) is rejected by the same test
    assert stats.kstest(sample, "norm", args=(c, 1.2 * std)).pvalue < 1e-6
    assert stats.kstest(sample, "norm", args=(c + 0.1 * std, std)).pvalue < 1e-3


def test_online_sgd_is_reproducible_and_backend_clean() -> None:
    model = IsotropicGaussians(10, 0.8, ACTIVATIONS["mmn"])
    results = []
    for name in ("numpy", "numpy", "array_api_strict"):
        backend = get_backend(name)
        rng = CounterRNG.from_seed(7, 3, backend.xp, backend.asarray)
        theta0 = rng.normal(0, (30, 10), purpose=3) * 0.25
        step = make_online_sgd(
            model, rng, backend, eps=1e-3, batch=4, time_change=TimeChange(), l2=0.1, beta=50.0
        )
        state = EnsembleState(theta0)
        for _ in range(20):
            state = step(state)
        results.append(to_numpy(state.theta))
    np.testing.assert_array_equal(results[0], results[1])
    # NumPy and array-api-strict share the elementwise math library: identical numbers
    np.testing.assert_allclose(results[2], results[0], rtol=1e-14, atol=1e-15)
    assert np.max(np.abs(results[0] - to_numpy(theta0))) > 1e-3  # the units moved


def test_gd_runs_on_array_api_strict() -> None:
    model = IsotropicGaussians(10, 0.8, ACTIVATIONS["mmn_nonmonotone"])
    out = []
    for name in ("numpy", "array_api_strict"):
        backend = get_backend(name)
        rng = CounterRNG.from_seed(2, 2, backend.xp, backend.asarray)
        step = make_gd(model, backend, eps=0.01, time_change=TimeChange(power=-0.25))
        state = EnsembleState(rng.normal(0, (12, 10), purpose=3) * 0.3)
        for _ in range(3):
            state = step(state)
        out.append(to_numpy(state.theta))
    np.testing.assert_allclose(out[1], out[0], rtol=1e-13, atol=1e-14)


def test_one_config_writes_pde_and_particles_side_by_side(tmp_path: Path) -> None:
    import xarray as xr

    config = _config(
        "pde.cells=300",
        "dynamics.t_end=0.02",
        "dynamics.save_times=[0.0, 0.02]",
        "particles.n=40",
        "particles.replicas=3",
        "particles.step=1e-3",
    )
    path = tmp_path / "both.h5"
    run_config(config, path, progress=False)
    data = load(path)
    assert data.groups["particles"]["reduced"].shape == (2, 3, 40, 1)
    assert data.groups["particles"]["risk"].shape == (2, 3)
    assert data.attrs["seed"] == 0
    np.testing.assert_array_equal(data.groups["particles"]["time"], data.groups["pde"]["time"])
    with xr.open_dataset(path, engine="h5netcdf", group="particles") as ds:
        assert ds["reduced"].dims == ("time", "replica", "unit", "reduced_axis")


def test_save_times_must_be_whole_steps() -> None:
    from meanfield.config import ConfigError

    with pytest.raises(ConfigError, match="not a multiple of particles.step"):
        build_particle_run(
            _setup("particles.step=0.3", "dynamics.save_times=[0.0, 0.5]", "dynamics.t_end=0.5")
        )


def test_noise_and_method_must_agree() -> None:
    from meanfield.config import ConfigError

    with pytest.raises(ConfigError, match="noisy_sgd"):
        build_particle_run(_setup("dynamics.beta=10.0"))


def test_online_sgd_tracks_the_pde_when_the_step_is_small() -> None:
    """Mean of |w| at t = 0.25: within 4 standard errors of the PDE's at eps = 2e-5 (the
    shipped step), and clearly off at eps = 1e-3, where the SGD noise of a step is not small
    against 1/d (MMN's bound grows like eps D)."""
    times = [0.0, 0.25]
    _, pde_mean = _pde_reference(0.25, times)
    offsets = {}
    for eps in (2e-5, 1e-3):
        run = build_particle_run(
            _setup(f"particles.step={eps}", "dynamics.t_end=0.25", f"dynamics.save_times={times}"),
            n=200,
            replicas=4,
            seed=11,
        )
        r = simulate(run)[-1].reduced[..., 0]
        se = r.std() / math.sqrt(r.size)  # units are independent up to O(1/N) correlations
        offsets[eps] = (r.mean() - pde_mean[-1]) / se
    assert abs(offsets[2e-5]) < 4.0, offsets
    assert abs(offsets[1e-3]) > 8.0, offsets


def test_particle_selftest_passes() -> None:
    from particles.selftest import CASES, run_selftest

    lines: list[str] = []
    assert run_selftest(lines.append)
    # each case against array_api_strict and against the compiled engine
    assert sum(line.startswith("ok") for line in lines) == 2 * len(CASES)
    assert sum("compiled engine" in line for line in lines) == len(CASES)
