"""Tests of the ``meanfield`` command line: parsing, config errors, dispatch to the workers."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import types
from pathlib import Path

import numpy as np
import pytest

import meanfield
from compare.cli import main
from meanfield.config import parse_config
from meanfield.io import FrameStore, create_file, write_root_attrs

ROOT = Path(__file__).resolve().parents[2]

VALID = """\
[model]
name = "isotropic_gaussians"
d = 40
delta = 0.8
activation = "mmn"
[init]
kappa = 0.8
[dynamics]
t_end = 20.0
save_times = [0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0]
xi = 1.0
beta = inf
[pde]
cells = 2400
r_max = 8.0
order = 2
backend = "auto"
"""


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "compare.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "valid.toml"
    path.write_text(VALID)
    return path


@pytest.mark.parametrize(
    "args", [["--help"], ["run", "--help"], ["info", "--help"], ["plot", "--help"]]
)
def test_help_exits_zero_with_examples(args):
    result = cli(*args)
    assert result.returncode == 0, result.stderr
    assert "usage: meanfield" in result.stdout
    assert "example" in result.stdout


def test_version():
    result = cli("--version")
    assert result.returncode == 0
    assert meanfield.__version__ in result.stdout


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        ("cells = 2400", "cels = 2400", "did you mean 'pde.cells'"),
        ("delta = 0.8", 'delta = "big"', "'model.delta'"),
        ("kappa = 0.8", "kappa = -1.0", "'init.kappa'"),
    ],
)
def test_bad_config_exits_2_with_one_error_line(tmp_path, old, new, fragment):
    path = tmp_path / "bad.toml"
    path.write_text(VALID.replace(old, new))
    out = tmp_path / "out.h5"
    result = cli("run", str(path), "-o", str(out))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_bad_override_and_missing_file_exit_2(tmp_path, config_file):
    for args in (["--set", "pde.order=3"], ["--set", "nonsense"]):
        result = cli("run", str(config_file), "-o", str(tmp_path / "o.h5"), *args)
        assert result.returncode == 2
        assert len(result.stderr.splitlines()) == 1
        assert result.stderr.startswith("error:")
    result = cli("run", str(tmp_path / "nope.toml"), "-o", str(tmp_path / "o.h5"))
    assert result.returncode == 2
    assert result.stderr.startswith("error:")
    assert not (tmp_path / "o.h5").exists()


def test_dry_run_prints_toml_with_overrides(tmp_path, config_file):
    out = tmp_path / "out.h5"
    result = cli(
        "run",
        str(config_file),
        "-o",
        str(out),
        "--dry-run",
        "--set",
        "pde.cells=1200",
        "--set",
        "model.activation=mmn_nonmonotone",
        "--set",
        "dynamics.xi={power=-0.25}",
    )
    assert result.returncode == 0, result.stderr
    data = tomllib.loads(result.stdout)
    cfg = parse_config(data)
    assert cfg.pde["cells"] == (1200,)
    assert cfg.model["activation"] == "mmn_nonmonotone"
    assert cfg.dynamics["xi"] == {"power": -0.25, "offset": 0.0}
    assert data["dynamics"]["beta"] == float("inf")
    assert not out.exists()


def test_dry_run_estimates_the_steps_exactly_for_a_known_rate(tmp_path, capsys):
    """Quadratic V = (k/2) theta^2 on [-L, L]: the face velocity is exactly -2 k theta_face, so
    the step bound at t = 0 is cfl / rate with rate = 2 (order 2) * 2 k (L - h) / h."""
    k, half, cells, cfl, t_end = 1.5, 4.0, 80, 0.8, 2.1  # 614.25 steps: far from an integer
    path = tmp_path / "ou.toml"
    path.write_text(f"""[model]\nname = "quadratic"\nstiffness = {k}\n[init]\nstd = 0.5\n
[dynamics]\nt_end = {t_end}\n[pde]\ncells = {cells}\nbounds = [[{-half}, {half}]]
cfl = {cfl}\n""")
    assert main(["run", str(path), "-o", str(tmp_path / "x.h5"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    tomllib.loads(out)  # the estimate is written as TOML comments
    h = 2 * half / cells
    rate = 2.0 * 2.0 * k * (half - h) / h
    expected = int(np.ceil(t_end * rate / cfl))
    assert f"about {expected:,} steps" in out
    assert "80 cells" in out and "0 kernel features" in out


# ----------------------------------------------------------------------------- in-process


@pytest.fixture
def fake_driver(monkeypatch):
    calls = []
    module = types.ModuleType("compare.runner")

    def run_config(config, out_path, *, force, progress, resume=False, report=None):
        calls.append((config, Path(out_path), force, progress, resume))

    module.run_config = run_config
    monkeypatch.setitem(sys.modules, "compare.runner", module)
    return module, calls


def test_run_calls_driver(tmp_path, config_file, fake_driver):
    _, calls = fake_driver
    out = tmp_path / "out.h5"
    assert main(["run", str(config_file), "-o", str(out), "--quiet", "--set", "pde.cells=99"]) == 0
    ((config, out_path, force, progress, resume),) = calls
    assert config.pde["cells"] == (99,)
    assert (out_path, force, progress, resume) == (out, False, False, False)


def test_existing_output_refused_before_driver(tmp_path, config_file, fake_driver, capsys):
    _, calls = fake_driver
    out = tmp_path / "out.h5"
    out.write_bytes(b"keep me")
    assert main(["run", str(config_file), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:")
    assert "--force" in err
    assert len(err.splitlines()) == 1
    assert calls == []
    assert out.read_bytes() == b"keep me"
    assert main(["run", str(config_file), "-o", str(out), "--force"]) == 0
    assert calls[0][2:] == (True, True, False)
    assert main(["run", str(config_file), "-o", str(out), "--resume"]) == 0
    assert calls[1][2:] == (False, True, True)
    assert out.read_bytes() == b"keep me"  # the (fake) driver decides what to resume
    assert main(["run", str(config_file), "-o", str(out), "--resume", "--force"]) == 2
    assert len(calls) == 2
    capsys.readouterr()


def test_invariant_violation_exits_3(tmp_path, config_file, fake_driver, monkeypatch, capsys):
    module, _ = fake_driver
    trackers = types.ModuleType("meanfield.pde.trackers")

    class InvariantViolation(RuntimeError):
        pass

    trackers.InvariantViolation = InvariantViolation
    monkeypatch.setitem(sys.modules, "meanfield.pde.trackers", trackers)

    def failing(config, out_path, *, force, progress, resume=False, report=None):
        raise InvariantViolation("mass drifted by 1e-3 at t=2.5")

    monkeypatch.setattr(module, "run_config", failing)
    assert main(["run", str(config_file), "-o", str(tmp_path / "o.h5")]) == 3
    assert capsys.readouterr().err == "error: mass drifted by 1e-3 at t=2.5\n"


def test_other_driver_errors_propagate(tmp_path, config_file, fake_driver, monkeypatch):
    module, _ = fake_driver

    def failing(config, out_path, *, force, progress, resume=False, report=None):
        raise ZeroDivisionError("bug")

    monkeypatch.setattr(module, "run_config", failing)
    with pytest.raises(ZeroDivisionError):
        main(["run", str(config_file), "-o", str(tmp_path / "o.h5")])


def test_info_prints_summary(tmp_path, capsys):
    path = tmp_path / "run.h5"
    with create_file(path) as f:
        write_root_attrs(f, config_toml=VALID, seed=1, backend="numpy", device="cpu")
        FrameStore(f.require_group("pde"), {"r": np.arange(3.0)}).append(
            0.0, {"density": (np.ones(3), ("r",)), "mass": (3.0, ())}
        )
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert 'name = "isotropic_gaussians"' in out
    assert "mass: first 3" in out
    assert main(["info", str(tmp_path / "missing.h5")]) == 2
    assert main(["info"]) == 2


@pytest.mark.parametrize(("ok", "status"), [(True, 0), (False, 1)])
def test_info_selftest(monkeypatch, ok, status):
    seen = []
    module = types.ModuleType("meanfield.selftest")

    def run_selftest(report, **options):
        seen.append((report, options))
        return ok

    module.run_selftest = run_selftest
    monkeypatch.setitem(sys.modules, "meanfield.selftest", module)
    particle_module = types.ModuleType("particles.selftest")
    particle_module.run_selftest = lambda report, **options: True
    monkeypatch.setitem(sys.modules, "particles.selftest", particle_module)
    assert main(["info", "--selftest"]) == status
    assert main(["info", "--selftest", "--backend", "numpy"]) == status
    assert seen == [(print, {}), (print, {"backend": "numpy"})]


def test_plot_prints_paths(monkeypatch, tmp_path, capsys):
    module = types.ModuleType("compare.figures")
    module.plot_any = lambda file, out_dir: [
        Path(out_dir) / "density.png",
        Path(out_dir) / "risk.png",
    ]
    monkeypatch.setitem(sys.modules, "compare.figures", module)
    assert main(["plot", "run.h5", "-o", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        str(tmp_path / "density.png"),
        str(tmp_path / "risk.png"),
    ]


def test_usage_errors_return_2(capsys):
    assert main([]) == 2
    assert main(["run", "cfg.toml"]) == 2  # -o is required
    assert main(["--help"]) == 0
    capsys.readouterr()
