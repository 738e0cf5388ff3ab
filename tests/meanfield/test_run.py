"""End to end: the shipped config through the driver and the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from meanfield.config import load_config
from meanfield.config.driver import run_pde
from meanfield.io import load

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "data" / "configs" / "mmn-isotropic.toml"


@pytest.fixture(scope="module")
def shipped_run(tmp_path_factory) -> Path:
    """The shipped config as it is (2400 cells, d = 40, t = 0..20): about 8 s."""
    path = tmp_path_factory.mktemp("run") / "out.h5"
    run_pde(load_config(SHIPPED), path, progress=False)
    return path


def test_shipped_config_conserves_mass_to_round_off(shipped_run: Path) -> None:
    data = load(shipped_run)
    pde = data.groups["pde"]
    np.testing.assert_allclose(pde["mass"], 1.0, rtol=1e-12, atol=0)
    assert data.group_attrs["pde"]["max_mass_error"] <= 1e-12  # over every step, not only frames


def test_shipped_config_density_stays_non_negative(shipped_run: Path) -> None:
    data = load(shipped_run)
    assert data.groups["pde"]["density"].min() >= 0.0
    assert data.group_attrs["pde"]["min_density"] >= 0.0


def test_shipped_config_risk_decreases_monotonically(shipped_run: Path) -> None:
    data = load(shipped_run)
    risk = data.groups["pde"]["risk"]
    assert np.all(np.diff(risk) < 0)
    # checked on every step by the tracker, with a 1e-13 relative allowance for round-off
    assert data.group_attrs["pde"]["max_free_energy_rise"] <= 1e-13
    np.testing.assert_allclose(data.groups["pde"]["free_energy"], 0.5 * risk, rtol=1e-15)
    # the dynamics learns: from R(rho_0) = 1.70 to below 0.1 by t = 20
    assert risk[0] > 1.6 and risk[-1] < 0.1


def test_shipped_run_file_is_self_describing(shipped_run: Path) -> None:
    data = load(shipped_run)
    assert data.attrs["schema_version"] == 2
    assert "[model]" in data.attrs["config"] and data.attrs["backend"] in ("numpy", "cupy")
    np.testing.assert_array_equal(
        data.groups["pde"]["time"], load_config(SHIPPED).dynamics["save_times"]
    )
    with xr.open_dataset(shipped_run, engine="h5netcdf", group="pde") as ds:
        assert ds["density"].dims == ("time", "r")
        assert ds.sizes["r"] == 2400


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "compare.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _pde_only(tmp_path: Path) -> Path:
    """The shipped config without its [particles] section."""
    text = SHIPPED.read_text()
    path = tmp_path / "pde-only.toml"
    path.write_text(text[: text.index("[particles]")])
    return path


def test_cli_runs_infinite_d_kernel_with_finite_d_start(tmp_path: Path) -> None:
    out = tmp_path / "inf.h5"
    proc = _cli(
        "run",
        str(_pde_only(tmp_path)),
        "-o",
        str(out),
        "--quiet",
        "--set",
        "model.d=inf",
        "--set",
        "init.d=40",
        "--set",
        "pde.cells=400",
        "--set",
        "dynamics.t_end=2.0",
        "--set",
        "dynamics.save_times=[0.0, 1.0, 2.0]",
    )
    assert proc.returncode == 0, proc.stderr
    risk = load(out).groups["pde"]["risk"]
    assert np.all(np.diff(risk) < 0)


def test_cli_rejects_grid_that_cannot_hold_the_initial_law(tmp_path: Path) -> None:
    out = tmp_path / "small.h5"
    proc = _cli("run", str(SHIPPED), "-o", str(out), "--set", "pde.r_max=0.5")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "cannot hold the initial law" in proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()


def test_cli_refuses_particles_at_infinite_d(tmp_path: Path) -> None:
    out = tmp_path / "inf.h5"
    proc = _cli("run", str(SHIPPED), "-o", str(out), "--set", "model.d=inf", "--set", "init.d=40")
    assert proc.returncode == 2
    assert "no particles" in proc.stderr
    assert not out.exists()
