"""The files of ``pde.method = "characteristics"`` runs: the layout of ``/pde`` (points, weights,
quantiles, a density on the stated grid, the refinement report), the readers (xarray, ``meanfield
plot``, ``meanfield info``), resume after an interruption, and a refined run's passes."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import tomli_w
import xarray as xr

from compare import api
from compare.cli import main
from compare.runner import run_config
from meanfield.config import parse_config
from meanfield.io import FrameStore, truncate_frames
from tests.compare.test_resume import _crash_after_flush, _Killed
from tests.conftest import assert_every_group_opens_in_xarray

#: the brief's small 1-D run (about 0.2 s)
SMALL = {
    "model": {"name": "isotropic_gaussians", "d": 40, "delta": 0.8, "activation": "mmn"},
    "init": {"kappa": 0.8},
    "dynamics": {"t_end": 2.0, "save_times": [0.0, 1.0, 2.0]},
    "pde": {"method": "characteristics", "cells": 200, "r_max": 8.0, "points": 32},
}
#: five frames on the NumPy backend (resume compares bit for bit)
STREAMED = {**SMALL, "dynamics": {"t_end": 2.0, "save_times": [0.0, 0.5, 1.0, 1.5, 2.0]}}

#: past the isotropic model's split: the flow map stretches between t = 2 and 5 and the default
#: refines (four passes, about 1.3 s); to t = 2 it does not
PAST_SPLIT = {**SMALL, "dynamics": {"t_end": 5.0, "save_times": [0.0, 1.25, 2.5, 5.0]}}

#: per-frame datasets of /pde, and the fixed ones of the points' layout
FRAME_FIELDS = ("time", "points", "density", "risk", "free_energy", "mass", "step", "dt")
LAYOUT = ("weights", "quantiles", "point", "axis", "r")
#: attributes of /pde that say how the characteristics run went (meanfield.io.PDE_POINT_ATTRS)
REPORT = (
    "method",
    "n_points",
    "refinement_passes",
    "points_per_pass",
    "refinement_converged",
    "refinement_reason",
    "refinement_risk_change",
    "max_outside_mass",
)


def with_pde(data: dict, **pde) -> dict:
    out = copy.deepcopy(data)
    out["pde"].update(pde)
    return out


def write_config(folder: Path, data: dict, name: str = "cfg.toml") -> Path:
    path = folder / name
    path.write_text(tomli_w.dumps(data))
    return path


def pde_datasets(path: Path) -> dict[str, np.ndarray]:
    """Every dataset under /pde (the checkpoint slots included), raw."""
    out: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:
        f["pde"].visititems(
            lambda name, obj: (
                out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None
            )
        )
    return out


def assert_same_datasets(path: Path, reference: Path) -> None:
    got, want = pde_datasets(path), pde_datasets(reference)
    assert sorted(got) == sorted(want)
    for name, value in want.items():
        assert got[name].dtype == value.dtype, name
        np.testing.assert_array_equal(got[name], value, err_msg=name)  # bit for bit


# ----------------------------------------------------------------------------- C.1


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("small")
    out = folder / "out.h5"
    assert main(["run", str(write_config(folder, SMALL)), "-o", str(out), "--quiet"]) == 0
    return out


def test_pde_group_holds_points_weights_and_density(small_run) -> None:
    with h5py.File(small_run, "r") as f:
        group = f["pde"]
        for name in FRAME_FIELDS + LAYOUT:
            assert name in group, name
        n_points = int(group.attrs["n_points"])
        dims = {
            name: tuple(d[0].name.rsplit("/", 1)[-1] for d in group[name].dims)
            for name in ("points", "weights", "quantiles", "density")
        }
        assert dims == {
            "points": ("time", "point", "axis"),
            "weights": ("point",),
            "quantiles": ("point", "axis"),
            "density": ("time", "r"),
        }
        assert group["points"].shape == (3, n_points, 1)
        assert group["weights"].shape == (n_points,) and group["quantiles"].shape == (n_points, 1)
        assert group["density"].shape == (3, 200)
        np.testing.assert_array_equal(group["time"][()], [0.0, 1.0, 2.0])
        weights = group["weights"][()]
        assert np.all(weights > 0)
        # the rule's weights are normalised once: a sum of M terms, round-off
        np.testing.assert_allclose(weights.sum(), 1.0, rtol=0, atol=1e-14)
        # the mass is the weights' sum, carried exactly by the points
        np.testing.assert_allclose(group["mass"][()], 1.0, rtol=0, atol=1e-14)
        r = group["r"][()]
        spacing = r[1] - r[0]
        np.testing.assert_allclose(r, np.arange(200) * 0.04 + 0.02, rtol=1e-12)  # 8 / 200
        density = group["density"][()]
        assert np.all(density >= 0)
        # cell masses are differences of the exact CDF: they sum to 1 up to round-off
        np.testing.assert_allclose(density.sum(axis=1) * spacing, 1.0, rtol=0, atol=1e-12)
        points = group["points"][()]
        assert np.all((points > 0) & (points < 8.0))
        # the quantiles are the initial law's CDF at the points: increasing in r at t = 0
        quantiles = group["quantiles"][()]
        assert np.all(np.diff(quantiles[:, 0][np.argsort(points[0, :, 0])]) > 0)
        risk = group["risk"][()]
        # the points follow a gradient flow: the risk never rises (measured drops 0.63, 0.06)
        assert np.all(np.diff(risk) <= 0), risk
        free = group["free_energy"][()]
        np.testing.assert_allclose(free, risk / 2, rtol=1e-15)  # no ridge: F = R / 2
        attrs = dict(group.attrs)
    assert attrs["method"] == "characteristics"
    assert attrs["n_points"] == n_points
    assert attrs["refinement_passes"] >= 1
    assert attrs["refinement_converged"]
    assert attrs["points_per_pass"][-1] == n_points and attrs["points_per_pass"][0] == 32
    assert attrs["max_outside_mass"] == 0.0


def test_pde_group_opens_in_xarray(small_run) -> None:
    groups = assert_every_group_opens_in_xarray(small_run)
    assert "pde" in groups
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with xr.open_dataset(small_run, engine="h5netcdf", group="pde") as ds:
            assert ds["points"].dims == ("time", "point", "axis")
            assert ds["weights"].dims == ("point",)
            assert ds["quantiles"].dims == ("point", "axis")
            assert ds["density"].dims == ("time", "r")
            assert ds["risk"].dims == ("time",)
            assert ds.attrs["method"] == "characteristics"
            mean_r = (ds["points"].isel(axis=0) * ds["weights"]).sum("point")
            assert mean_r.dims == ("time",)


def test_api_run_returns_the_points(tmp_path) -> None:
    tree = api.run(SMALL, output=tmp_path / "api.h5")
    node = tree["pde"] if isinstance(tree, xr.DataTree) else tree
    assert node["points"].dims == ("time", "point", "axis")
    with h5py.File(tmp_path / "api.h5", "r") as f:
        np.testing.assert_array_equal(node["points"].values, f["pde/points"][()])


def test_plot_and_info_read_the_file(small_run, tmp_path, capsys) -> None:
    figures = tmp_path / "figures"
    assert main(["plot", str(small_run), "-o", str(figures)]) == 0
    printed = capsys.readouterr().out.split()
    written = sorted(figures.glob("*.png"))
    assert written, printed
    assert all(p.stat().st_size > 10_000 for p in written)  # a drawn figure, not an empty one
    assert {str(p) for p in written} <= set(printed)
    assert main(["info", str(small_run)]) == 0
    info = capsys.readouterr().out
    for fragment in (
        "/pde",
        "@method = 'characteristics'",
        "points",
        "(time, point, axis)",
        "weights",
        "quantiles",
        "refinement_passes",
    ):
        assert fragment in info, info


# ----------------------------------------------------------------------------- C.2


def _run_killed_after_flush(monkeypatch, config, path: Path, n: int) -> None:
    """Run ``config`` into ``path``, killed right after the ``n``-th flush of the file."""
    with monkeypatch.context() as patch:
        _crash_after_flush(patch, n)
        with pytest.raises(_Killed):
            run_config(config, path, progress=False)


@pytest.fixture(scope="module")
def streamed(tmp_path_factory) -> tuple:
    """The unrefined 5-frame run, uninterrupted."""
    config = parse_config(with_pde(STREAMED, refine=0.0, backend="numpy"))
    path = tmp_path_factory.mktemp("streamed") / "reference.h5"
    run_config(config, path, progress=False)
    return config, path


def test_unrefined_run_streams_its_frames(streamed) -> None:
    _, path = streamed
    with h5py.File(path, "r") as f:
        assert f["pde"].attrs["refinement_passes"] == 1
        assert list(f["pde"].attrs["points_per_pass"]) == [32]
        assert len(f["pde/time"]) == 5


def test_resume_of_a_file_cut_back_after_two_frames(streamed, tmp_path) -> None:
    """The brief's recipe on a 3-frame run: cut /pde back to 2 frames (its checkpoint slots
    hold the last two frames, so frame 1's survives) and resume."""
    config = parse_config(with_pde(SMALL, refine=0.0, backend="numpy"))
    reference, out = tmp_path / "reference.h5", tmp_path / "cut.h5"
    run_config(config, reference, progress=False)
    run_config(config, out, progress=False)
    with h5py.File(out, "r+") as f:
        truncate_frames(f["pde"], 2)
    lines: list[str] = []
    assert "pde" in run_config(config, out, resume=True, progress=False, report=lines.append)
    assert lines == ["/pde: resuming after frame 2 of 3 (t = 1)"]
    assert_same_datasets(out, reference)


def _committed(path: Path) -> int:
    with h5py.File(path, "r") as f:
        return len(f["pde/time"]) if "pde/time" in f else 0


#: flush 1: root attributes; 2: the points' layout; frame k: 3 + 2k (fields), 4 + 2k (commit);
#: 13: the summary attributes. Value: the frames committed when the run is killed
CRASHES = {2: 0, 3: 0, 4: 1, 6: 2, 7: 2, 12: 5}


@pytest.mark.parametrize("n_flushes", sorted(CRASHES))
def test_resume_after_a_crash_is_bitwise_identical(
    streamed, tmp_path, monkeypatch, n_flushes
) -> None:
    config, reference = streamed
    out = tmp_path / "crashed.h5"
    _run_killed_after_flush(monkeypatch, config, out, n_flushes)
    assert _committed(out) == CRASHES[n_flushes]
    run_config(config, out, resume=True, progress=False)
    assert_same_datasets(out, reference)
    with h5py.File(out, "r") as f, h5py.File(reference, "r") as g:
        for key in (
            "n_steps",
            "max_free_energy_rise",
            "max_outside_mass",
            "min_density",
            "method",
            "n_points",
        ):
            assert f["pde"].attrs[key] == g["pde"].attrs[key], key


@pytest.mark.parametrize("n_flushes", [6, 12])
def test_resumed_file_keeps_the_refinement_report(
    streamed, tmp_path, monkeypatch, n_flushes
) -> None:
    config, reference = streamed
    out = tmp_path / "crashed.h5"
    _run_killed_after_flush(monkeypatch, config, out, n_flushes)
    run_config(config, out, resume=True, progress=False)
    with h5py.File(out, "r") as f, h5py.File(reference, "r") as g:
        for key in REPORT:
            assert key in f["pde"].attrs, key
            np.testing.assert_array_equal(f["pde"].attrs[key], g["pde"].attrs[key], err_msg=key)


def test_resume_of_a_refined_run_killed_while_writing_its_frames(tmp_path, monkeypatch) -> None:
    """A refined run writes its frames after its last pass; killed in between, the resume
    continues that pass from its stored weights: the same datasets."""
    config = parse_config(with_pde(PAST_SPLIT, backend="numpy"))
    reference, out = tmp_path / "reference.h5", tmp_path / "crashed.h5"
    run_config(config, reference, progress=False)
    with h5py.File(reference, "r") as f:
        assert f["pde"].attrs["refinement_passes"] > 1
    _run_killed_after_flush(monkeypatch, config, out, 6)  # frames 0 and 1 committed
    assert _committed(out) == 2
    run_config(config, out, resume=True, progress=False)
    assert_same_datasets(out, reference)


# ----------------------------------------------------------------------------- C.3


def test_refined_run_writes_its_frames_once_and_reports_the_passes(tmp_path, monkeypatch) -> None:
    config = parse_config(with_pde(PAST_SPLIT, backend="numpy"))
    assert config.pde["refine"] > 0  # the default refines
    appended: list[float] = []
    append = FrameStore.append

    def counting(self, t, *args, **kwargs):
        appended.append(float(t))
        return append(self, t, *args, **kwargs)

    monkeypatch.setattr(FrameStore, "append", counting)
    out = tmp_path / "refined.h5"
    run_config(config, out, progress=False)
    assert appended == [0.0, 1.25, 2.5, 5.0]  # the final pass only, once each
    with h5py.File(out, "r") as f:
        attrs = dict(f["pde"].attrs)
        n_points = f["pde/weights"].shape[0]
        assert f["pde/points"].shape == (4, n_points, 1)
        assert f["pde/quantiles"].shape == (n_points, 1)
        risk = f["pde/risk"][()]
    passes = attrs["points_per_pass"]
    assert attrs["refinement_passes"] == len(passes) >= 2, attrs
    assert np.all(np.diff(passes) > 0), passes  # every later pass splits some cells
    assert passes[0] == 32 and passes[-1] == n_points == attrs["n_points"]
    assert attrs["refinement_converged"], attrs["refinement_reason"]
    change = attrs["refinement_risk_change"]
    assert change.shape == (4,)
    # converged: the last pass moved the risk by less than pde.risk_tol (measured 2.5e-11)
    assert np.max(change) <= config.pde["risk_tol"], change
    unrefined = tmp_path / "unrefined.h5"
    run_config(
        parse_config(with_pde(PAST_SPLIT, refine=0.0, backend="numpy")), unrefined, progress=False
    )
    with h5py.File(unrefined, "r") as f:
        coarse = f["pde/risk"][()]
        assert list(f["pde"].attrs["points_per_pass"]) == [32]
    # before the split the 32-point rule is already accurate: measured <= 2e-8 apart
    np.testing.assert_allclose(coarse[:3], risk[:3], rtol=0, atol=1e-6)
    # after it, the refinement corrects the coarse rule by far more than its own error
    # estimate (measured 1.4e-4 against 1.7e-12)
    assert abs(coarse[3] - risk[3]) > 100 * max(change[3], 1e-9), (coarse, risk, change)
