"""A model from outside the package (``tests/plugin_models/toy_model.py``), with no edit to the
package: config checks, ``meanfield run`` (PDE and particles), ``--dry-run``, ``study`` and
``info --models`` through :func:`compare.cli.main`, and the entry-point group."""

from __future__ import annotations

import tomllib

import h5py
import numpy as np
import pytest
import tomli_w

from compare.cli import main
from meanfield.config import ConfigError, parse_config
from meanfield.model import builtin_entries, model_entry
from meanfield.model.registry import ENTRY_POINT_GROUP, ModelEntry
from tests.plugin_models import toy_model

TOY = "tests.plugin_models.toy_model:ToyLinear"
TEACHER = 1.0
T_END = 0.5


def toy_config(name: str = TOY, **sections: dict) -> dict:
    """A small run of the toy model: a 1-D grid and population-GD particles."""
    data = {
        "model": {"name": name, "teacher": [TEACHER]},
        "init": {"mean": 0.0, "std": 0.3},
        "dynamics": {"t_end": T_END, "save_times": {"count": 3}},
        "pde": {"cells": 80, "bounds": [[-2.5, 3.0]]},
        "particles": {"n": 40, "replicas": 2, "method": "gd", "step": 0.01},
    }
    for section, values in sections.items():
        data[section] = {**data.get(section, {}), **values}
    return data


def write(tmp_path, data: dict, name: str = "toy.toml"):
    path = tmp_path / name
    path.write_text(tomli_w.dumps(data))
    return path


def exact_mean(m0: np.ndarray | float, t: np.ndarray | float) -> np.ndarray | float:
    """``m(t) = teacher + (m0 - teacher) e^{-2t}`` (xi = 1, noiseless, no ridge)."""
    return TEACHER + (m0 - TEACHER) * np.exp(-2.0 * t)


# ----------------------------------------------------------------------------- the registry


def test_the_package_does_not_know_the_toy_model() -> None:
    assert "toy_linear" not in builtin_entries()
    assert all(":" not in name for name in builtin_entries())


@pytest.mark.parametrize("name", [TOY, "tests.plugin_models.toy_model:ENTRY"])
def test_a_class_carrying_its_entry_or_the_entry_itself(name: str) -> None:
    entry = model_entry(name)
    assert entry is toy_model.ENTRY
    config = parse_config(toy_config(name))
    assert config.model["name"] == name
    assert config.model["noise"] == 0.0  # the user model's default filled in
    assert config.model["teacher"] == (TEACHER,)


def test_the_round_trip_keeps_the_reference() -> None:
    config = parse_config(toy_config())
    assert parse_config(tomllib.loads(config.to_toml())) == config


# ----------------------------------------------------------------------------- bad keys


@pytest.mark.parametrize(
    ("model", "fragments"),
    [
        ({"teachr": [1.0]}, ["unknown key 'model.teachr'", "did you mean 'model.teacher'?"]),
        ({"noise": "loud"}, ["wrong type for 'model.noise'", "string"]),
        ({"noise": -1.0}, ["invalid value for 'model.noise'", ">= 0"]),
        ({"teacher": [1.0, 2.0, 3.0]}, ["invalid value for 'model.teacher'", "1 or 2"]),
        ({"teacher": True}, ["wrong type for 'model.teacher'", "boolean"]),
        ({"d": 40}, ["'model.d'", "belongs to model"]),
    ],
    ids=["unknown", "type", "value", "length", "bool", "other-model-key"],
)
def test_bad_keys_of_a_user_model_name_the_key(model: dict, fragments: list[str]) -> None:
    data = toy_config(model=model)
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    assert len(message.splitlines()) == 1


def test_missing_required_key_and_shared_section_checks() -> None:
    data = toy_config()
    del data["model"]["teacher"]
    with pytest.raises(ConfigError, match=r"missing required key 'model\.teacher'"):
        parse_config(data)
    with pytest.raises(ConfigError, match=r"'pde\.bounds'.*1 pairs"):
        parse_config(toy_config(pde={"bounds": [[0, 1], [0, 1]]}))
    with pytest.raises(ConfigError, match=r"'init\.std'"):
        parse_config(toy_config(init={"std": -1.0}))


@pytest.mark.parametrize(
    ("name", "fragments"),
    [
        (
            "no_such_package.models:Model",
            [
                "'model.name'",
                "cannot import module",
                "'no_such_package.models'",
                "ModuleNotFoundError",
            ],
        ),
        ("tests.plugin_models.toy_model:Missing", ["'model.name'", "has no attribute 'Missing'"]),
        ("tests.plugin_models.toy_model:math", ["'model.name'", "neither a ModelEntry"]),
        ("tests.plugin_models.toy_model:", ["'model.name'", "package.module:Attribute"]),
        ("toy_linear", ["'model.name'", "'quadratic'", "package.module:Attribute"]),
    ],
    ids=["import", "attribute", "not-an-entry", "no-attribute", "bare-name"],
)
def test_a_model_that_cannot_be_loaded_is_a_config_error(name: str, fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(toy_config(name))
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_cli_exits_2_on_an_import_failure(tmp_path, capsys) -> None:
    path = write(tmp_path, toy_config("no_such_package.models:Model"))
    assert main(["run", str(path), "-o", str(tmp_path / "out.h5")]) == 2
    err = capsys.readouterr().err
    assert "model.name" in err and "no_such_package.models" in err
    assert "Traceback" not in err


# ----------------------------------------------------------------------------- the command line


def test_run_dry_run_prints_the_resolved_user_config(tmp_path, capsys) -> None:
    path = write(tmp_path, toy_config())
    out = tmp_path / "out.h5"
    assert main(["run", str(path), "-o", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert TOY in text and "noise = 0.0" in text and "# estimated cost" in text
    assert not out.exists()


def test_run_pde_and_particles_follow_the_exact_mean(tmp_path) -> None:
    path = write(tmp_path, toy_config())
    out = tmp_path / "out.h5"
    assert main(["run", str(path), "-o", str(out), "--quiet"]) == 0
    with h5py.File(out, "r") as f:
        times = f["pde/time"][()]
        centres = f["pde/t0"][()]
        density = f["pde/density"][()]  # (time, cells)
        reduced = f["particles/reduced"][()]  # (time, replica, unit, 1)
        risk = f["particles/risk"][()]
    dx = centres[1] - centres[0]
    pde_mean = density @ centres * dx
    # the second-order FV scheme keeps the mean within O(h^2) of the exact curve
    # (h = 0.069, h^2 / 4 = 1.2e-3; measured 4.5e-4), as for the built-in linear unit
    np.testing.assert_allclose(pde_mean, exact_mean(pde_mean[0], times), atol=dx**2 / 4)
    # population GD moves the empirical mean by the same ODE; Heun's error at step 0.01 is
    # O(eps^2) (2.5e-5 measured for the built-in linear unit, tests/meanfield/test_multidim.py)
    m0 = reduced[0, :, :, 0].mean(axis=-1)
    for i, t in enumerate(times):
        np.testing.assert_allclose(reduced[i, :, :, 0].mean(axis=-1), exact_mean(m0, t), atol=1e-4)
    np.testing.assert_allclose(
        risk[-1], (reduced[-1, :, :, 0].mean(axis=-1) - TEACHER) ** 2, rtol=1e-12
    )


def test_study_runs_a_user_model(tmp_path) -> None:
    data = toy_config(
        particles={"method": "online_sgd", "batch": 4}, study={"n": [10, 20], "replicas": 2}
    )
    path = write(tmp_path, data)
    out = tmp_path / "study.h5"
    assert main(["study", str(path), "-o", str(out), "--quiet", "--scheduler", "local"]) == 0
    with h5py.File(out, "r") as f:
        np.testing.assert_array_equal(f["study/n"][()], [10, 20])
        values = f["study/risk/values"][()]  # (n, replica, time)
        assert values.shape == (2, 2, 3)
        assert np.all(np.isfinite(values))
        assert "n_var_predicted" in f["study/mean_r"]


def test_info_models_prints_the_user_models_keys(capsys) -> None:
    assert main(["info", "--models", TOY]) == 0
    text = capsys.readouterr().out
    assert "a linear unit learning a linear teacher" in text
    assert "model.teacher" in text and "teacher vector" in text
    assert "model.noise" in text and "variance of the label noise" in text
    assert "init.std" in text and "pde.bounds" in text


def test_info_models_lists_every_builtin_model_with_help(capsys) -> None:
    assert main(["info", "--models"]) == 0
    text = capsys.readouterr().out
    for name, entry in builtin_entries().items():
        assert f"{name}: " in text
        for section, fields in entry.keys.items():
            for key, spec in fields.items():
                assert f"{section}.{key}" in text and spec.doc in text


# ----------------------------------------------------------------------------- entry points


def test_an_installed_entry_point_names_a_model(install_entry_point) -> None:
    install_entry_point(ENTRY_POINT_GROUP, "toy_from_entry_point", TOY)
    assert isinstance(model_entry("toy_from_entry_point"), ModelEntry)
    config = parse_config(toy_config("toy_from_entry_point"))
    assert config.model["teacher"] == (TEACHER,)
