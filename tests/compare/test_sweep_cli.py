"""``meanfield sweep``: several PDE runs of one config stepped together, end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from compare.cli import main
from compare.sweeps import parse_over
from meanfield.backends import get_backend
from meanfield.config import ConfigError, load_config
from meanfield.config.builders import build_pde_setup
from meanfield.io import load
from meanfield.pde.controller import integrate
from meanfield.pde.trackers import MemoryTracker

CONFIG = Path(__file__).parents[2] / "data" / "configs" / "mmn-nonmonotone-kappa0.4.toml"
SMALL = [
    "--set",
    "pde.cells=400",
    "--set",
    "dynamics.t_end=2.0",
    "--set",
    "dynamics.save_times=[0.0, 1.0, 2.0]",
]


def test_kappa_sweep_writes_every_run_and_shows_the_failure(tmp_path, capsys):
    out = tmp_path / "sweep.h5"
    assert main(["sweep", str(CONFIG), "-o", str(out), "--over", "init.kappa=0.1,0.4", *SMALL]) == 0
    assert "2 runs" in capsys.readouterr().out
    data = load(out)
    sweep = data.groups["sweep"]
    assert data.dims["sweep"]["density"] == ("time", "run", "r")
    np.testing.assert_array_equal(sweep["run"], [0.1, 0.4])
    assert data.group_attrs["sweep"]["swept_key"] == "init.kappa"
    np.testing.assert_allclose(sweep["mass"], 1.0, atol=1e-12)
    from tests.conftest import assert_every_group_opens_in_xarray

    assert "sweep" in assert_every_group_opens_in_xarray(out)
    # MMN's failure example: from kappa = 0.1 the units collapse (risk of the constant
    # predictor s(0) = -2.5: 1 + 2.5^2 ~ 7.25); from kappa = 0.4 the risk falls
    assert sweep["risk"][-1, 0] > 7.0
    assert sweep["risk"][-1, 1] < 0.5
    # each run starts exactly where its solo run starts, and agrees with it later within the
    # solo run's own step-halving change, doubled (tests/meanfield/test_sweep.py)
    for j, kappa in enumerate((0.1, 0.4)):
        config = load_config(
            CONFIG,
            [
                f"init.kappa={kappa}",
                "pde.cells=400",
                "dynamics.t_end=2.0",
                "dynamics.save_times=[0.0, 1.0, 2.0]",
            ],
        )
        setup = build_pde_setup(config)
        risks = []
        for cfl in (0.8, 0.4):
            memory = MemoryTracker()
            integrate(
                setup.pde,
                setup.rho0,
                setup.save_times,
                get_backend("numpy"),
                trackers=[memory],
                cfl=cfl,
            )
            risks.append(np.array([f.risk for f in memory.frames]))
        assert sweep["risk"][0, j] == pytest.approx(risks[0][0], rel=1e-12)
        assert np.all(
            np.abs(sweep["risk"][:, j] - risks[0]) <= 2 * np.abs(risks[1] - risks[0]) + 1e-12
        )


def test_model_key_gives_stacked_equations(tmp_path):
    out = tmp_path / "sweep.h5"
    assert (
        main(
            [
                "sweep",
                str(CONFIG),
                "-o",
                str(out),
                "--quiet",
                "--over",
                "model.delta=0.4,0.6",
                *SMALL,
            ]
        )
        == 0
    )
    risk = load(out).groups["sweep"]["risk"]
    assert risk.shape == (3, 2) and abs(risk[0, 0] - risk[0, 1]) > 1e-3  # two models


@pytest.mark.parametrize(
    ("over", "fragment"),
    [
        ("init.kappa=0.1", "at least two distinct"),
        ("init.kappa=0.1,x", "invalid value"),
        ("kappa=0.1,0.2", "malformed"),
        ("init.kappa=-1,0.2", "init.kappa"),
        ("pde.cells=200,400", "share"),
        ("pde.cfl=0.5,0.8", "share"),
    ],
)
def test_bad_sweeps_exit_2_with_one_line(tmp_path, capsys, over, fragment):
    out = tmp_path / "sweep.h5"
    assert main(["sweep", str(CONFIG), "-o", str(out), "--over", over, *SMALL]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and len(err.strip().splitlines()) == 1, err
    assert fragment in err
    assert not out.exists()


def test_parse_over() -> None:
    assert parse_over("init.kappa=0.1, 0.2,3") == ("init.kappa", [0.1, 0.2, 3])
    with pytest.raises(ConfigError):
        parse_over("init.kappa=true,false")


def test_existing_output_is_refused(tmp_path, capsys):
    out = tmp_path / "sweep.h5"
    out.write_bytes(b"")
    assert main(["sweep", str(CONFIG), "-o", str(out), "--over", "init.kappa=0.1,0.4"]) == 2
    assert "--force" in capsys.readouterr().err
