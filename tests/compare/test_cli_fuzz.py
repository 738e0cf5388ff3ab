"""Property test of ``meanfield run`` on malformed configs (issue 6): every rejected config exits
with status 2 and one ``error:`` line on stderr, prints no traceback, and leaves no output file.

The mutations are those of ``tests/meanfield/test_config.py``, written to a TOML file and given
to the command line in-process. Configs that pass reach a stand-in for the run that builds the
PDE and a 2-unit ensemble (so the builders' checks, such as a grid too small for the initial law,
are exercised) but creates no file.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import sys
import tempfile
import types
from pathlib import Path

import pytest
import tomli_w
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from compare.cli import main
from tests.meanfield.test_config import QUADRATIC, _mutate, _mutation, _overrides, iso

TEACHER = {
    "model": {"name": "teacher_student", "target": "sin", "trained": ["w", "b"]},
    "init": {"mean": [0.5, 0.0], "std": 0.25},
    "dynamics": {"t_end": 1.0, "save_times": {"count": 3}},
    "pde": {"cells": [16, 16], "bounds": [[-1.5, 2.5], [-2.0, 2.0]]},
    "particles": {"n": 10, "method": "gd", "step": 0.1},
}
ANISOTROPIC = {
    "model": {"name": "anisotropic_gaussians", "d": 12, "s0": 3, "delta": 0.6, "kernel_tol": 1e-4},
    "init": {"kappa": 0.8},
    "dynamics": {"t_end": 1.0, "save_times": {"count": 3}},
    "pde": {"cells": [16, 16], "r_max": 3.0},
}
BASES = {
    "isotropic": iso,
    "quadratic": lambda: copy.deepcopy(QUADRATIC),
    "teacher_student": lambda: copy.deepcopy(TEACHER),
    "anisotropic": lambda: copy.deepcopy(ANISOTROPIC),
}
#: the stand-in builds a PDE only up to this many cells (a valid but huge grid is not an error)
MAX_CELLS = 200_000


def _build_only(config, out_path, **kwargs):
    """The checks a real run makes before it creates its file, and nothing more."""
    from meanfield.config.builders import build_particle_setup, build_pde_setup
    from particles.run import build_particle_run

    if config.pde is not None and math.prod(config.pde["cells"]) <= MAX_CELLS:
        build_pde_setup(config)
    if config.particles is not None:
        build_particle_run(build_particle_setup(config), n=2, replicas=1)


@pytest.fixture(scope="module")
def stand_in_runner():
    module = types.ModuleType("compare.runner")
    module.run_config = _build_only
    saved = sys.modules.get("compare.runner")
    sys.modules["compare.runner"] = module
    yield
    if saved is not None:
        sys.modules["compare.runner"] = saved
    else:
        sys.modules.pop("compare.runner")


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    base=st.sampled_from(sorted(BASES)),
    mutations=st.lists(_mutation, min_size=1, max_size=3),
    overrides=st.lists(_overrides, max_size=2),
)
def test_rejected_configs_exit_2_with_one_line_and_leave_no_file(
    stand_in_runner, base, mutations, overrides
):
    data = BASES[base]()
    for mutation in mutations:
        _mutate(data, mutation)
    try:
        text = tomli_w.dumps(data)
    except (TypeError, ValueError):  # None or a non-string key: not expressible in TOML
        assume(False)
    with tempfile.TemporaryDirectory() as folder:
        config, out = Path(folder) / "config.toml", Path(folder) / "out.h5"
        config.write_text(text)
        args = ["run", str(config), "-o", str(out), "--quiet"]
        for item in overrides:
            args += ["--set", item]
        stderr, stdout = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stdout):
            try:
                status = main(args)
            except SystemExit as exc:  # argparse: an override that looks like an option
                status = exc.code
        message = stderr.getvalue()
        assert status in (0, 2), message
        assert "Traceback" not in message + stdout.getvalue()
        assert not out.exists()
        assert sorted(p.name for p in Path(folder).iterdir()) == ["config.toml"]
        if status == 2:
            lines = message.strip().splitlines()
            assert len(lines) == 1 or lines[0].startswith("usage:"), message
            assert lines[-1].startswith(("error:", "meanfield run: error:")), message


@pytest.mark.parametrize(
    ("base", "override", "fragment"),
    [
        ("isotropic", "pde.r_max=0.3", "cannot hold the initial law"),
        ("teacher_student", "pde.bounds=[[0.0, 1.0], [-2.0, 2.0]]", "cannot hold the initial law"),
        ("anisotropic", "model.s0=12", "s0"),
        ("quadratic", "pde.bounds=[[-1.0, 1.0]]", "cannot hold the initial law"),
    ],
)
def test_errors_found_while_building_exit_2_without_a_file(
    stand_in_runner, tmp_path, capsys, base, override, fragment
):
    config, out = tmp_path / "config.toml", tmp_path / "out.h5"
    config.write_text(tomli_w.dumps(BASES[base]()))
    assert main(["run", str(config), "-o", str(out), "--quiet", "--set", override]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and len(err.strip().splitlines()) == 1, err
    assert fragment in err
    assert not out.exists()
