"""The notebook API: ``api.run`` / ``api.study`` return the file they wrote as xarray,
bit for bit; ``api.plot`` draws the figures of ``meanfield plot``."""

from __future__ import annotations

import tempfile
import tomllib
from pathlib import Path

import numpy as np
import pytest
import tomli_w
import xarray as xr

from compare import api
from compare.figures import plot_any
from meanfield.config import ConfigError, parse_config
from meanfield.io import load

ROOT = Path(__file__).resolve().parents[2]
RUN_CONFIG = ROOT / "data" / "configs" / "mmn-isotropic.toml"
STUDY_CONFIG = ROOT / "data" / "configs" / "mmn-isotropic-study.toml"
FAST = [
    "dynamics.t_end=0.5",
    "dynamics.save_times=[0.0, 0.5]",
    "pde.cells=200",
    "particles.n=50",
    "particles.replicas=2",
    "particles.step=1e-3",
]
SMALL_STUDY = [
    'particles.method="gd"',
    "particles.step=0.01",
    "dynamics.t_end=0.2",
    "dynamics.save_times=[0.0, 0.1, 0.2]",
    "study.n=[10, 20]",
    "study.replicas=4",
    "pde.cells=200",
    'study.observables=["mean_r", "w1"]',
]
TOY = "tests.plugin_models.toy_model:ToyLinear"


def assert_same_as_file(result: xr.DataTree, path: Path, groups: tuple[str, ...]) -> None:
    """Every dataset of ``groups`` in ``result`` equals what meanfield.io.load reads, bit for
    bit, with the file's dimension names and dtype."""
    data = load(path)
    for group in groups:
        node = result[group]
        for name, values in data.groups[group].items():
            got = node[name]
            assert got.dims == data.dims[group][name], (group, name)
            assert got.dtype == values.dtype, (group, name)
            np.testing.assert_array_equal(got.values, values, err_msg=f"{group}/{name}")


@pytest.fixture(scope="module")
def run_file(tmp_path_factory) -> tuple[xr.DataTree, Path]:
    path = tmp_path_factory.mktemp("api") / "run.h5"
    return api.run(RUN_CONFIG, overrides=FAST, output=path), path


@pytest.fixture(scope="module")
def study_file(tmp_path_factory) -> tuple[xr.DataTree, Path]:
    path = tmp_path_factory.mktemp("api") / "study.h5"
    return api.study(STUDY_CONFIG, SMALL_STUDY, path, scheduler="local"), path


def test_run_returns_the_file_it_wrote(run_file) -> None:
    tree, path = run_file
    assert isinstance(tree, xr.DataTree)
    assert set(tree.children) == {"pde", "particles"}  # the resume checkpoints are left out
    assert_same_as_file(tree, path, ("pde", "particles"))
    assert tree["pde"]["density"].dims == ("time", "r")
    assert tree["particles"]["reduced"].dims == ("time", "replica", "unit", "reduced_axis")
    np.testing.assert_array_equal(tree["pde"]["time"], [0.0, 0.5])
    assert tree.attrs["source"] == str(path.resolve())
    assert tree.attrs["config"] == load(path).attrs["config"]
    assert tomllib.loads(tree.attrs["config"])["pde"]["cells"] == [200]
    assert tree["pde"].attrs["n_steps"] > 0


def test_output_none_keeps_nothing_on_disk_and_the_data_in_memory(
    run_file, tmp_path, monkeypatch
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    tree = api.run(RUN_CONFIG, FAST)
    assert list(scratch.iterdir()) == []  # the temporary file is gone
    assert "source" not in tree.attrs
    for group in ("pde", "particles"):  # every value reads back with its file deleted
        for name, var in tree[group].variables.items():
            assert np.all(np.isfinite(var.values)), (group, name)
    # the same config and seed: the same numbers as the file of the fixture
    reference, _ = run_file
    for group, name in (("pde", "risk"), ("pde", "density"), ("particles", "reduced")):
        np.testing.assert_array_equal(tree[group][name], reference[group][name])


def pde_only() -> dict:
    """The parsed shipped config without its [particles] section."""
    data = tomllib.loads(RUN_CONFIG.read_text())
    del data["particles"]
    return data


def test_config_as_text_mapping_or_config_object() -> None:
    """A PDE-only run gives a Dataset (one group); every form of the config gives the same."""
    overrides = [*FAST[:3], "pde.order=1"]
    data = pde_only()
    results = [
        api.run(tomli_w.dumps(data), overrides),
        api.run(data, overrides),
        api.run(parse_config(data, ["pde.order=1"]), FAST[:3]),
        api.run(parse_config(data, overrides)),
    ]
    for ds in results:
        assert isinstance(ds, xr.Dataset)
        assert ds.attrs["group"] == "pde"
        assert ds["density"].dims == ("time", "r")
        assert tomllib.loads(ds.attrs["config"])["pde"]["order"] == 1
        assert ds.attrs["n_steps"] > 0  # the group's attributes beside the root's
        np.testing.assert_array_equal(ds["risk"], results[0]["risk"])


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("pde.cellz=100", "pde.cellz"),
        ("pde.cells=-3", "pde.cells"),
        ("particles.replicas=1.5", "particles.replicas"),
        ("dynamics.t_end", "dynamics.t_end"),  # malformed: no value
    ],
)
def test_a_bad_override_raises_config_error_naming_the_key(
    override: str, key: str, tmp_path: Path
) -> None:
    out = tmp_path / "out.h5"
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        api.run(RUN_CONFIG, [*FAST, override], out)
    assert not out.exists()  # checked before any work


def test_an_existing_output_is_refused_unless_forced(run_file, tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    out.write_bytes(b"")
    with pytest.raises(FileExistsError, match="force=True"):
        api.run(RUN_CONFIG, FAST, out)
    tree = api.run(RUN_CONFIG, FAST, out, force=True)
    np.testing.assert_array_equal(tree["pde"]["risk"], run_file[0]["pde"]["risk"])
    with pytest.raises(ConfigError, match="cannot read config file"):
        api.run(tmp_path / "missing.toml")
    with pytest.raises(TypeError, match="config must be"):
        api.run(42)


def test_a_user_model_runs_through_the_api() -> None:
    """The toy model of tests/plugin_models, named in the config only: no edit to the package."""
    data = {
        "model": {"name": TOY, "teacher": [1.0]},
        "init": {"mean": 0.0, "std": 0.3},
        "dynamics": {"t_end": 0.5, "save_times": {"count": 3}},
        "pde": {"cells": 80, "bounds": [[-2.5, 3.0]]},
        "particles": {"n": 40, "replicas": 2, "method": "gd", "step": 0.01},
    }
    tree = api.run(data)
    assert tree["pde"]["density"].dims == ("time", "t0")  # the model names its axes
    # population GD moves the empirical mean by dm/dt = -2 (m - teacher); the Heun step's
    # error at step 0.01 is O(eps^2) (1e-4 as in tests/meanfield/test_user_models.py)
    mean = tree["particles"]["reduced"].isel(reduced_axis=0).mean("unit")
    exact = 1.0 + (mean.isel(time=0) - 1.0) * np.exp(-2.0 * tree["particles"]["time"])
    np.testing.assert_allclose(mean, exact.transpose(*mean.dims), atol=1e-4)


def test_study_returns_the_file_it_wrote(study_file) -> None:
    tree, path = study_file
    assert set(tree.children) == {"pde", "study"}
    groups = [g for g in load(path).groups if g.startswith("study")]
    assert_same_as_file(tree, path, ("pde", *groups))
    values = tree["study/w1"]["values"]
    assert values.dims == ("n", "replica", "time")
    np.testing.assert_array_equal(values["n"], [10, 20])  # inherited from /study
    assert tree["study/raw/n10_seed0"]["reduced"].dims == ("time", "replica", "unit")


def test_plot_draws_the_figures_of_meanfield_plot(run_file, study_file, tmp_path) -> None:
    for result, path in (run_file, study_file):
        ours = api.plot(result, tmp_path / "api" / path.stem)
        theirs = plot_any(path, tmp_path / "cli" / path.stem)
        assert [p.name for p in ours] == [p.name for p in theirs]
        assert len(ours) >= 2
        for a, b in zip(ours, theirs, strict=True):
            assert a.read_bytes() == b.read_bytes(), a.name  # same data, same pixels


def test_plot_of_a_result_held_in_memory_only(tmp_path) -> None:
    ds = api.run(pde_only(), FAST[:3])  # output=None: no file behind it
    written = api.plot(ds, tmp_path)
    assert [p.name for p in written] == ["run-pde.png"]
