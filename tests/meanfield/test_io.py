"""Tests of the HDF5 run files: append-only frames, dimension scales, crash safety."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr

import meanfield
from compare.summary import summary
from meanfield.io import SCHEMA_VERSION, FrameStore, create_file, load, write_root_attrs

ROOT = Path(__file__).resolve().parents[2]
R = np.linspace(0.0, 8.0, 17)
CONFIG_TOML = '[model]\nname = "quadratic"\n'


def frame(i: int) -> dict:
    return {
        "density": (np.exp(-R) * (i + 1), ("r",)),
        "risk": (1.0 / (i + 1), ()),
        "mass": (1.0, ()),
        "free_energy": (-0.5 * i, ()),
        "step": (10 * i, ()),
    }


def write_run(path: Path, n_frames: int = 4) -> None:
    with create_file(path) as f:
        write_root_attrs(f, config_toml=CONFIG_TOML, seed=7, backend="numpy", device="cpu")
        store = FrameStore(f.require_group("pde"), {"r": R})
        for i in range(n_frames):
            store.append(0.5 * i, frame(i))
        store.write_attrs(last_good_time=0.5 * (n_frames - 1))
        f.require_group("pde/last_good").create_dataset("density", data=np.exp(-R))


def test_frames_survive_reopen(tmp_path):
    path = tmp_path / "run.h5"
    write_run(path)
    run = load(path)
    pde = run.groups["pde"]
    np.testing.assert_allclose(pde["time"], [0.0, 0.5, 1.0, 1.5], rtol=0, atol=0)
    np.testing.assert_allclose(pde["density"], [np.exp(-R) * (i + 1) for i in range(4)], rtol=0)
    np.testing.assert_allclose(pde["r"], R, rtol=0)
    assert pde["step"].dtype == np.int64
    assert pde["risk"].dtype == np.float64
    assert run.dims["pde"]["density"] == ("time", "r")
    assert run.dims["pde"]["risk"] == ("time",)
    assert run.group_attrs["pde"]["last_good_time"] == 1.5
    np.testing.assert_allclose(run.groups["pde/last_good"]["density"], np.exp(-R), rtol=0)


def test_root_attrs(tmp_path):
    path = tmp_path / "run.h5"
    write_run(path)
    attrs = load(path).attrs
    assert attrs["schema_version"] == SCHEMA_VERSION
    assert attrs["package_version"] == meanfield.__version__
    assert attrs["config"] == CONFIG_TOML
    assert (attrs["seed"], attrs["backend"], attrs["device"]) == (7, "numpy", "cpu")
    assert attrs["created_utc"].endswith("+00:00")
    with create_file(tmp_path / "noseed.h5") as f:
        write_root_attrs(f, config_toml="", seed=None, backend="numpy", device="cpu")
    assert load(tmp_path / "noseed.h5").attrs["seed"] == -1


def test_dataset_layout(tmp_path):
    path = tmp_path / "run.h5"
    write_run(path)
    with h5py.File(path, "r") as f:
        density, risk, time_ = f["pde/density"], f["pde/risk"], f["pde/time"]
        assert density.maxshape == (None, len(R))
        assert density.chunks == (1, len(R))
        assert density.compression == "gzip"
        assert density.compression_opts == 4
        assert risk.maxshape == (None,)
        assert time_.maxshape == (None,)
        assert time_.is_scale
        assert f["pde/r"].is_scale
        assert density.dims[0][0] == time_
        assert density.dims[1][0] == f["pde/r"]


def test_xarray_opens_group_with_named_dims(tmp_path):
    path = tmp_path / "run.h5"
    write_run(path)
    with xr.open_dataset(path, engine="h5netcdf", group="pde") as ds:
        assert ds["density"].dims == ("time", "r")
        assert ds["risk"].dims == ("time",)
        np.testing.assert_allclose(ds["time"].values, [0.0, 0.5, 1.0, 1.5], rtol=0)
        np.testing.assert_allclose(ds["r"].values, R, rtol=0)
        np.testing.assert_allclose(ds["density"].values[2], 3 * np.exp(-R), rtol=0)
        assert ds.attrs["last_good_time"] == 1.5


def test_create_file_refuses_existing_and_force_overwrites(tmp_path):
    path = tmp_path / "run.h5"
    write_run(path)
    with pytest.raises(FileExistsError, match="pass --force"):
        create_file(path)
    assert len(load(path).groups["pde"]["time"]) == 4  # untouched
    with create_file(path, force=True) as f:
        assert list(f) == []
    assert load(path).groups == {}


def test_create_file_builds_aside_and_renames(tmp_path):
    """The new file appears complete under its name (a kill cannot leave half a superblock);
    --force replaces the old file only then, and no temporary file stays behind."""
    path = tmp_path / "run.h5"
    write_run(path)
    with create_file(path, force=True) as f:
        assert list(f) == [] and f.filename == str(path)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["run.h5"]
        f.attrs["x"] = 1
    assert load(path).attrs == {"x": 1}


def test_created_file_has_the_usual_permissions(tmp_path):
    """The temporary file of the atomic create is 0600; the result must follow the umask."""
    import os
    import stat

    path = tmp_path / "run.h5"
    umask = os.umask(0o022)
    try:
        create_file(path).close()
    finally:
        os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_append_continues_a_group_of_an_earlier_session(tmp_path):
    path = tmp_path / "run.h5"
    write_run(path, n_frames=2)
    with h5py.File(path, "r+") as f:
        store = FrameStore(f["pde"], {"r": R})
        assert store.n_frames == 2
        store.append(1.0, frame(2))
        with pytest.raises(ValueError, match="differ"):
            store.append(1.5, {"density": (R, ("r",))})
    pde = load(path).groups["pde"]
    np.testing.assert_array_equal(pde["time"], [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(pde["step"], [0, 10, 20])


def test_append_rejects_inconsistent_frames(tmp_path):
    with create_file(tmp_path / "run.h5") as f:
        store = FrameStore(f.require_group("pde"), {"r": R})
        with pytest.raises(ValueError, match="no coordinate"):
            store.append(0.0, {"density": (R, ("x",))})
        with pytest.raises(ValueError, match="length"):
            store.append(0.0, {"density": (R[:3], ("r",))})
        store.append(0.0, {"density": (R, ("r",))})
        with pytest.raises(ValueError, match="differ"):
            store.append(1.0, {"density": (R, ("r",)), "risk": (0.0, ())})
        with pytest.raises(TypeError, match="dtype"):
            FrameStore(f.require_group("other"), {}).append(0.0, {"s": ("text", ())})


def test_load_trims_fields_to_completed_time(tmp_path):
    """A crash between a field's write and time's write leaves a longer field; load trims it."""
    path = tmp_path / "run.h5"
    write_run(path, n_frames=3)
    with h5py.File(path, "a") as f:
        f["pde/risk"].resize(4, axis=0)
    assert load(path).groups["pde"]["risk"].shape == (3,)
    with h5py.File(path, "a") as f:  # a field shorter than time: the frame is not complete
        f["pde/mass"].resize(2, axis=0)
    pde = load(path).groups["pde"]
    assert pde["time"].shape == pde["risk"].shape == pde["density"].shape[:1] == (2,)


def test_summary_mentions_config_groups_and_invariants(tmp_path):
    path = tmp_path / "run.h5"
    write_run(path)
    text = summary(path)
    assert 'name = "quadratic"' in text
    assert "/pde" in text
    assert "density" in text
    assert "(time, r)" in text
    assert "4 frames from 0 to 1.5" in text
    for key in ("mass", "risk", "free_energy"):
        assert f"{key}: first" in text


CHILD = """
import sys, time
import numpy as np
from meanfield.io import FrameStore, create_file, write_root_attrs
r = np.linspace(0.0, 1.0, 9)
with create_file(sys.argv[1]) as f:
    write_root_attrs(f, config_toml="", seed=0, backend="numpy", device="cpu")
    store = FrameStore(f.require_group("pde"), {"r": r})
    for i in range(10_000):
        store.append(0.1 * i, {"density": (r * i, ("r",)), "step": (i, ())})
        print(i, flush=True)
        time.sleep(0.02)
"""


def test_sigkill_leaves_readable_file_with_completed_frames(tmp_path):
    path = tmp_path / "killed.h5"
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(CHILD))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        completed = -1
        deadline = time.monotonic() + 30
        while completed < 5 and time.monotonic() < deadline:
            completed = int(child.stdout.readline())
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    assert completed >= 5
    pde = load(path).groups["pde"]
    n_frames = len(pde["time"])
    assert n_frames >= completed + 1
    r = np.linspace(0.0, 1.0, 9)
    np.testing.assert_allclose(pde["time"], 0.1 * np.arange(n_frames), rtol=1e-15)
    np.testing.assert_allclose(pde["density"], np.outer(np.arange(n_frames), r), rtol=1e-15)
    np.testing.assert_array_equal(pde["step"], np.arange(n_frames))
    with xr.open_dataset(path, engine="h5netcdf", group="pde") as ds:
        assert ds["density"].shape == (n_frames, 9)
