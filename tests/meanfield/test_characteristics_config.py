"""Config errors of ``pde.method = "characteristics"``: each a :class:`ConfigError` whose message
names the keys at fault, at parse time or when :func:`build_pde_setup` builds the run; and
``meanfield run`` prints it as one ``error:`` line with exit status 2, no traceback, no file.

The plug-in models below are importable as ``tests.meanfield.test_characteristics_config:...``
(the way ``tests/meanfield/test_user_models.py`` names ``tests/plugin_models/toy_model.py``).
"""

from __future__ import annotations

import copy
import dataclasses
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from compare.cli import main
from meanfield.config import ConfigError, load_config, parse_config
from meanfield.config.builders import CharacteristicsSetup, build_pde_setup
from tests.plugin_models import toy_model

ROOT = Path(__file__).resolve().parents[2]
ANISO = ROOT / "data" / "configs" / "mmn-anisotropic.toml"
HERE = "tests.meanfield.test_characteristics_config"

#: the small isotropic run of the characteristics solver
SMALL = {
    "model": {"name": "isotropic_gaussians", "d": 40, "delta": 0.8, "activation": "mmn"},
    "init": {"kappa": 0.8},
    "dynamics": {"t_end": 2.0, "save_times": [0.0, 1.0, 2.0]},
    "pde": {"method": "characteristics", "cells": 200, "r_max": 8.0, "points": 32},
}


def config_with(base: dict = SMALL, **keys: Any) -> dict:
    """``base`` with ``section__key=value`` set (None: removed)."""
    data = copy.deepcopy(base)
    for name, value in keys.items():
        section, key = name.split("__")
        if value is None:
            data.setdefault(section, {}).pop(key, None)
        else:
            data.setdefault(section, {})[key] = value
    return data


# ----------------------------------------------------------------------------- plug-in models


@dataclass(frozen=True)
class GridOnlyLinear(toy_model.ToyLinear):
    """The toy linear unit with the grid's methods only: no ``potential_gradient``, no
    ``kernel_feature_gradients`` (a plug-in model written for the grid)."""

    potential_gradient = None
    kernel_feature_gradients = None


GRID_ONLY = dataclasses.replace(
    toy_model.ENTRY,
    name="grid_only_linear",
    build=lambda spec, pde=None: GridOnlyLinear(tuple(spec["teacher"]), float(spec["noise"])),
)


class _NoAxisLaws:
    """A normal law hiding its ``axis_laws``: the rule cannot be built from it."""

    def __init__(self, law: Any) -> None:
        self._law = law

    def __getattr__(self, name: str) -> Any:
        if name == "axis_laws":
            raise AttributeError(name)
        return getattr(self._law, name)


OPAQUE_LAW = dataclasses.replace(
    toy_model.ENTRY,
    name="toy_opaque_law",
    law=lambda model, init: _NoAxisLaws(toy_model.ENTRY.law(model, init)),
)


def toy(entry: str, **pde: Any) -> dict:
    """A 1-D run of a plug-in model on the characteristics solver."""
    return {
        "model": {"name": f"{HERE}:{entry}", "teacher": [1.0]},
        "init": {"mean": 0.0, "std": 0.3},
        "dynamics": {"t_end": 0.5, "save_times": {"count": 3}},
        "pde": {
            "method": "characteristics",
            "cells": 80,
            "bounds": [[-2.5, 3.0]],
            "points": 16,
            **pde,
        },
    }


# ----------------------------------------------------------------------------- parse time

#: config, the keys the message names
PARSE_CASES = [
    pytest.param(
        config_with(dynamics__beta=10.0), ("pde.method", "dynamics.beta"), id="finite-beta"
    ),
    pytest.param(
        config_with(pde__refine=0.1, pde__gauss=1),
        ("pde.refine", "pde.gauss"),
        id="refine-with-one-node",
    ),
    pytest.param(
        config_with(pde__points=33), ("pde.points", "pde.gauss"), id="points-not-a-multiple"
    ),
    pytest.param(
        config_with(pde__points=30, pde__gauss=4),
        ("pde.points", "pde.gauss = 4"),
        id="points-not-a-multiple-of-4",
    ),
    pytest.param(
        config_with(pde__points=[32, 32]),
        ("pde.points", "'isotropic_gaussians'"),
        id="points-two-axes-for-one",
    ),
    pytest.param(config_with(pde__points=0), ("pde.points",), id="points-zero"),
    pytest.param(
        config_with(pde__method="lagrangian"),
        ("pde.method", "'grid'", "'characteristics'"),
        id="unknown-method",
    ),
]


@pytest.mark.parametrize(("data", "keys"), PARSE_CASES)
def test_parse_errors_name_the_keys(data, keys) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    message = str(info.value)
    assert "\n" not in message
    for key in keys:
        assert key in message, message


@pytest.mark.parametrize(
    ("overrides", "keys"),
    [
        (("pde.points=48",), ("pde.points", "array of 2", "'anisotropic_gaussians'")),
        (("pde.points=[48]",), ("pde.points", "array of 2")),
        (("pde.points=[48, 47]",), ("pde.points", "pde.gauss = 2")),
    ],
    ids=["integer", "one-entry", "odd-entry"],
)
def test_points_of_a_two_axis_model(overrides, keys) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(ANISO, ["pde.method='characteristics'", *overrides])
    for key in keys:
        assert key in str(info.value), str(info.value)


def test_the_valid_neighbours_are_accepted() -> None:
    """The same keys, allowed values: refinement off with one node, a multiple of gauss = 3,
    one entry per axis, and the grid with finite beta."""
    parse_config(config_with(pde__refine=0.0, pde__gauss=1, pde__points=31))
    config = parse_config(config_with(pde__points=33, pde__gauss=3))
    assert config.pde["points"] == (33,)
    assert parse_config(config_with(dynamics__beta=10.0, pde__method="grid")).pde["method"] == (
        "grid"
    )
    load_config(ANISO, ["pde.method='characteristics'", "pde.points=[8, 8]"])


# ----------------------------------------------------------------------------- build time


def _build_error(data: dict) -> ConfigError:
    config = parse_config(data)
    with pytest.raises(ConfigError) as info:
        build_pde_setup(config)
    return info.value


def test_a_box_too_small_for_the_initial_points_names_the_box_key() -> None:
    message = str(_build_error(config_with(pde__r_max=1.0)))
    assert message.startswith("pde.r_max = 1: weight "), message
    for fragment in ("pde.outside_tol = 0.0001", "outside the box", "init.kappa"):
        assert fragment in message, message
    assert "\n" not in message


def test_outside_tol_sets_how_much_may_lie_outside() -> None:
    """The same box is accepted once pde.outside_tol allows the weight outside."""
    message = str(_build_error(config_with(pde__r_max=1.0)))
    weight = float(message.split("weight ")[1].split()[0])
    setup = build_pde_setup(parse_config(config_with(pde__r_max=1.0, pde__outside_tol=2 * weight)))
    assert isinstance(setup, CharacteristicsSetup)


def test_a_box_too_small_on_two_axes_names_r_max() -> None:
    config = load_config(
        ANISO,
        [
            "pde.method='characteristics'",
            "pde.points=[8, 8]",
            "pde.cells=[20, 20]",
            "pde.r_max=0.9",
        ],
    )
    with pytest.raises(ConfigError) as info:
        build_pde_setup(config)
    assert str(info.value).startswith("pde.r_max = 0.9"), str(info.value)


def test_a_plugin_model_without_point_gradients_names_pde_method() -> None:
    message = str(_build_error(toy("GRID_ONLY")))
    assert message.startswith("pde.method = 'characteristics'"), message
    for fragment in (
        "potential_gradient",
        "kernel_feature_gradients",
        f"{HERE}:GRID_ONLY",
        "allowed: pde.method = 'grid'",
    ):
        assert fragment in message, message


def test_the_same_plugin_model_runs_on_the_grid() -> None:
    setup = build_pde_setup(parse_config(toy("GRID_ONLY", method="grid")))
    assert setup.method == "grid"


def test_a_plugin_law_without_axis_laws_names_pde_method() -> None:
    message = str(_build_error(toy("OPAQUE_LAW")))
    assert message.startswith("pde.method = 'characteristics'"), message
    assert "axis_laws" in message and "allowed: pde.method = 'grid'" in message, message


def test_the_toy_model_itself_builds() -> None:
    """The toy model has the point methods: the plug-in path is not the error."""
    data = config_with(toy("GRID_ONLY"), model__name="tests.plugin_models.toy_model:ToyLinear")
    setup = build_pde_setup(parse_config(data))
    assert isinstance(setup, CharacteristicsSetup) and setup.rule.n_points == 16


# ----------------------------------------------------------------------------- the command line


@pytest.mark.parametrize(
    ("data", "key"),
    [
        (config_with(dynamics__beta=10.0), "'pde.method'"),
        (config_with(pde__points=33), "'pde.points'"),
        (config_with(pde__method="lagrangian"), "'pde.method'"),
        (config_with(pde__r_max=1.0), "pde.r_max = 1"),
        (toy("GRID_ONLY"), "pde.method = 'characteristics'"),
    ],
    ids=["beta", "points", "method", "box", "plugin"],
)
def test_cli_prints_one_error_line_and_exits_2(tmp_path, capsys, data, key) -> None:
    path = tmp_path / "cfg.toml"
    path.write_text(tomli_w.dumps(data))
    out = tmp_path / "out.h5"
    status = main(["run", str(path), "-o", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert key in err, err
    assert not out.exists()


def test_cli_process_has_no_traceback(tmp_path) -> None:
    """A real process: the plug-in model's error, raised in the builder, is one line."""
    path = tmp_path / "cfg.toml"
    path.write_text(tomli_w.dumps(toy("GRID_ONLY")))
    out = tmp_path / "out.h5"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "compare.cli", "run", str(path), "-o", str(out), "--quiet"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: pde.method = 'characteristics'"), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not out.exists()
