"""Crash safety and ``meanfield run --resume``: a killed run leaves a readable file, and resuming
it ends with the datasets of an uninterrupted run, bit for bit (NumPy backend; the particles
of the isotropic config on the compiled engine, those of the quadratic one on the NumPy steps).

Excluded from the comparison, and only these: the wall-clock attributes ``created_utc`` and
``resumed_utc`` (root) and ``wall_time_s`` (``/pde``). Every dataset of every group, the
``checkpoint`` subgroups included, and every other attribute must be identical; the dimension
scale bookkeeping (``DIMENSION_LIST``, ``REFERENCE_LIST``: object addresses) is compared as the
names of each dataset's dimensions instead.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from compare.cli import main
from compare.runner import ResumeError, first_difference, run_config
from meanfield.config import load_config
from meanfield.io import FrameStore, create_file, last_checkpoint, truncate_frames

ROOT = Path(__file__).resolve().parents[2]

#: PDE with xi(t) = t^-1/4, then online SGD on the compiled engine whose batch switches from 1
#: to 4 at t = 1 (1e5 steps): about 1 s of PDE and 1 s of particles, 41 frames each (a kill
#: lands mid-run)
ISOTROPIC = """\
[model]
name = "isotropic_gaussians"
d = 10
delta = 0.8
[init]
kappa = 0.8
[dynamics]
t_end = 2.0
save_times = { count = 41 }
xi = { power = -0.25 }
[pde]
cells = 400
r_max = 6.0
backend = "numpy"
[particles]
n = 40
replicas = 2
step = 2e-5
quench_batch = 4
quench_time = 1.0
seed = 3
backend = "numpy"
engine = "compiled"
"""

#: noisy: the PDE's Scharfetter-Gummel flux and the particles' Gaussian noise (noisy_sgd)
QUADRATIC = """\
[model]
name = "quadratic"
stiffness = 2.0
[init]
mean = 1.0
std = 0.5
[dynamics]
t_end = 0.5
save_times = { count = 11 }
beta = 4.0
[pde]
cells = [120]
bounds = [[-5.0, 7.0]]
backend = "numpy"
[particles]
n = 30
replicas = 3
method = "noisy_sgd"
step = 5e-3
seed = 1
backend = "numpy"
engine = "numpy"
keep_theta = true
"""

WALL_CLOCK = {"/": {"created_utc", "resumed_utc"}, "/pde": {"wall_time_s"}}
SCALE_BOOKKEEPING = {"DIMENSION_LIST", "REFERENCE_LIST"}


def _attrs(obj: h5py.HLObject) -> dict:
    skip = WALL_CLOCK.get(obj.name, set()) | SCALE_BOOKKEEPING
    out = {key: value for key, value in obj.attrs.items() if key not in skip}
    if isinstance(obj, h5py.Dataset):
        out["dims"] = np.array([dim[0].name if len(dim) else dim.label for dim in obj.dims])
    return out


def _contents(path: Path) -> dict:
    """Every dataset (full, raw) and every attribute but the wall-clock ones, by path."""
    out: dict = {}
    with h5py.File(path, "r") as f:
        out["/@"] = _attrs(f)

        def visit(name: str, obj: h5py.HLObject) -> None:
            out[f"{name}@"] = _attrs(obj)
            if isinstance(obj, h5py.Dataset):
                out[name] = obj[()]

        f.visititems(visit)
    return out


def assert_same_run(path: Path, reference: Path) -> None:
    got, want = _contents(path), _contents(reference)
    assert sorted(got) == sorted(want)
    for key, value in want.items():
        if isinstance(value, dict):
            assert got[key].keys() == value.keys(), key
            for name in value:
                assert np.array_equal(got[key][name], value[name]), (key, name)
        else:
            assert got[key].dtype == value.dtype, key
            assert np.array_equal(got[key], value), key


@pytest.fixture(scope="module")
def configs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("configs")
    paths = {"isotropic": folder / "iso.toml", "quadratic": folder / "quad.toml"}
    paths["isotropic"].write_text(ISOTROPIC)
    paths["quadratic"].write_text(QUADRATIC)
    return paths


@pytest.fixture(scope="module")
def references(configs, tmp_path_factory) -> dict[str, Path]:
    """Uninterrupted runs of both configs."""
    folder = tmp_path_factory.mktemp("reference")
    out = {}
    for name, config in configs.items():
        out[name] = folder / f"{name}.h5"
        run_config(load_config(config), out[name], progress=False)
    return out


# ----------------------------------------------------------------------------- killed runs


def _cli(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "compare.cli", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _frames(path: Path) -> dict[str, int]:
    """Committed frames per group of a file being written (no lock; torn reads retried)."""
    for _ in range(100):
        try:
            with h5py.File(path, "r", locking=False) as f:
                return {
                    g: len(f[g]["time"]) for g in ("pde", "particles") if g in f and "time" in f[g]
                }
        except (OSError, KeyError, ValueError, RuntimeError):
            time.sleep(0.01)
    return {}


def _kill_after_progress(
    proc: subprocess.Popen, path: Path, before: int, delay: float, group: str | None = None
) -> bool:
    """SIGKILL ``proc`` ``delay`` s after the file gains a frame (in ``group``, or any)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        counts = _frames(path) if path.exists() else {}
        done = counts.get(group, 0) if group else sum(counts.values())
        if done > before:
            break
        time.sleep(0.02)
    time.sleep(delay)
    finished = proc.poll() is not None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    return not finished


def _check_readable(path: Path, config) -> int:
    """The killed file opens with plain h5py; its committed frames are finite; their count."""
    times = np.asarray(config.dynamics["save_times"])
    total = 0
    with h5py.File(path, "r") as f:
        assert "config" in f.attrs
        for group, field in (("pde", "density"), ("particles", "reduced")):
            if group not in f or "time" not in f[group]:
                continue
            n = len(f[group]["time"])
            np.testing.assert_array_equal(f[group]["time"][:], times[:n])
            assert f[group][field].shape[0] >= n  # fields are written before time
            assert np.all(np.isfinite(f[group][field][:n]))
            assert np.all(np.isfinite(f[group]["risk"][:n]))
            total += n
    return total


def test_sigkill_at_random_moments_then_resume_is_bitwise_identical(configs, references, tmp_path):
    """(a) Kill the run, and each resume of it, at seeded random moments; resume to the end."""
    config = load_config(configs["isotropic"])
    out = tmp_path / "killed.h5"
    delays = np.random.default_rng(20240611).uniform(0.0, 0.4, size=5)
    frames = 0
    for i, delay in enumerate(delays):
        resume = ["--resume"] if i else []
        proc = _cli("run", str(configs["isotropic"]), "-o", str(out), "--quiet", *resume)
        if not _kill_after_progress(proc, out, frames, float(delay)):
            break  # it finished before the kill
        now = _check_readable(out, config)
        assert now >= frames  # a resume never loses committed frames
        frames = now
    assert main(["run", str(configs["isotropic"]), "-o", str(out), "--quiet", "--resume"]) == 0
    assert_same_run(out, references["isotropic"])


def test_kill_during_particles_resumes_only_the_particles(configs, references, tmp_path, capsys):
    """(b) /pde complete, /particles partial: the PDE is not run again."""
    out = tmp_path / "killed.h5"
    proc = _cli("run", str(configs["isotropic"]), "-o", str(out), "--quiet")
    assert _kill_after_progress(proc, out, 0, 0.05, group="particles")
    with h5py.File(out, "r") as f:
        assert len(f["pde/time"]) == 41 and "wall_time_s" in f["pde"].attrs
        assert 1 <= len(f["particles/time"]) < 41
        wall = f["pde"].attrs["wall_time_s"]
    assert main(["run", str(configs["isotropic"]), "-o", str(out), "--resume"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("/particles: resuming after frame")
    with h5py.File(out, "r") as f:
        assert f["pde"].attrs["wall_time_s"] == wall
    assert_same_run(out, references["isotropic"])


# ----------------------------------------------------------------------------- refusals


def test_existing_file_needs_resume_or_force(configs, references, tmp_path, capsys):
    """(c) No silent overwrite; a finished file is left as it is; --force rewrites."""
    out = tmp_path / "done.h5"
    shutil.copy(references["isotropic"], out)
    before = out.read_bytes()
    assert main(["run", str(configs["isotropic"]), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "--resume" in err and "--force" in err
    assert len(err.splitlines()) == 1
    assert main(["run", str(configs["isotropic"]), "-o", str(out), "--resume"]) == 0
    assert capsys.readouterr().out == f"{out} is complete: nothing to resume\n"
    assert out.read_bytes() == before
    assert main(["run", str(configs["isotropic"]), "-o", str(out), "--resume", "--force"]) == 2


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("particles.seed=4", "particles.seed"),
        ("dynamics.save_times={count=21}", "dynamics.save_times"),
        ("pde.cells=401", "pde.cells"),
        ("particles.keep_theta=true", "particles.keep_theta"),
    ],
)
def test_resume_with_another_config_is_refused(
    configs, references, tmp_path, capsys, override, key
):
    """(c) One line naming the first differing key, exit status 2, the file unchanged."""
    out = tmp_path / "done.h5"
    shutil.copy(references["isotropic"], out)
    before = out.read_bytes()
    assert (
        main(["run", str(configs["isotropic"]), "-o", str(out), "--resume", "--set", override]) == 2
    )
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("error:")
    assert f"different config: {key} is" in err
    assert out.read_bytes() == before


def test_resume_refuses_files_it_cannot_continue(configs, tmp_path):
    config = load_config(configs["quadratic"])
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(ResumeError, match="not the file of a 'meanfield run'"):
        run_config(config, foreign, resume=True, progress=False)
    legacy = tmp_path / "legacy.h5"  # frames but no checkpoint (an older meanfield)
    with create_file(legacy) as f:
        f.attrs["config"] = config.to_toml()
        f.attrs["backend"] = "numpy"
        FrameStore(f.require_group("pde"), {"r": np.arange(120.0)}).append(
            0.0, {"density": (np.ones(120), ("r",))}
        )
    with pytest.raises(ResumeError, match="no resume checkpoint"):
        run_config(config, legacy, resume=True, progress=False)
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not hdf5")
    with pytest.raises(ResumeError, match="cannot resume"):
        run_config(config, garbage, resume=True, progress=False)
    assert garbage.read_bytes() == b"not hdf5"


def test_first_difference_walks_nested_keys_in_order():
    now = {"model": {"name": "q", "d": 10}, "pde": {"cells": [400]}}
    assert first_difference(now, now) is None
    assert first_difference(now, {"model": {"name": "q", "d": 11}, "pde": {"cells": [1]}}) == (
        "model.d",
        10,
        11,
    )
    assert first_difference(now, {"model": {"name": "q", "d": 10}}) == ("pde", now["pde"], None)
    assert first_difference({"a": {"x": 1}}, {"a": {"x": 1.0}}) == ("a.x", 1, 1.0)


# ----------------------------------------------------------------------------- in process


class _Killed(BaseException):
    """Stands for a kill: raised right after the n-th flush of the run file."""


def _crash_after_flush(monkeypatch, n: int) -> None:
    flush = h5py.File.flush
    count = {"n": 0}

    def counting(self):
        flush(self)
        count["n"] += 1
        if count["n"] == n:
            raise _Killed

    monkeypatch.setattr(h5py.File, "flush", counting)


#: flush 1: root attributes; /pde frame k: 2 + 2k (fields), 3 + 2k (commit); 24: the /pde
#: summary; /particles frame k: 25 + 2k (fields), 26 + 2k (commit)
@pytest.mark.parametrize("n_flushes", [1, 3, 8, 23, 24, 25, 31, 40, 45])
def test_resume_after_a_crash_between_flushes(
    configs, references, tmp_path, monkeypatch, n_flushes
):
    """(d) Crashes at frame boundaries and between a frame's two flushes (fields written,
    time not yet): in /pde, at its end (summary attributes), and in /particles."""
    config = load_config(configs["quadratic"])
    out = tmp_path / "crashed.h5"
    with monkeypatch.context() as patch:
        _crash_after_flush(patch, n_flushes)
        with pytest.raises(_Killed):
            run_config(config, out, progress=False)
    assert run_config(config, out, resume=True, progress=False)
    assert_same_run(out, references["quadratic"])


def test_pspin_resume_keeps_the_test_points_and_the_quench(tmp_path, monkeypatch):
    """(d) Particles only; the Monte Carlo risk draws its test points by output index."""
    config = load_config(
        ROOT / "data" / "configs" / "rve-pspin-d10.toml",
        [
            "particles.n=30",
            "particles.replicas=2",
            "particles.batch=6",
            "dynamics.t_end=30.0",
            "dynamics.save_times=[0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0]",
            "particles.test_points=500",
            "particles.quench_time=15.0",
            "particles.quench_batch=36",
            'particles.backend="numpy"',
        ],
    )
    reference, out = tmp_path / "reference.h5", tmp_path / "crashed.h5"
    run_config(config, reference, progress=False)
    with monkeypatch.context() as patch:
        _crash_after_flush(patch, 8)  # 1: root attributes; frame k: 2 + 2k, 3 + 2k
        with pytest.raises(_Killed):
            run_config(config, out, progress=False)
    run_config(config, out, resume=True, progress=False)
    assert_same_run(out, reference)


def test_resume_of_a_missing_or_empty_file_starts_the_run(configs, references, tmp_path):
    config = load_config(configs["quadratic"])
    lines: list[str] = []
    missing = tmp_path / "missing.h5"
    run_config(config, missing, resume=True, progress=False, report=lines.append)
    empty = tmp_path / "empty.h5"  # killed between create_file and the root attributes
    create_file(empty).close()
    run_config(config, empty, resume=True, progress=False, report=lines.append)
    assert lines == [
        f"{missing} does not exist: starting a new run",
        f"{empty} holds no run yet: starting it",
    ]
    assert_same_run(missing, references["quadratic"])
    assert_same_run(empty, references["quadratic"])


def test_checkpoint_slots_name_the_last_committed_frame(tmp_path):
    """Double-buffered state: a frame whose commit was lost is not resumed from."""
    with create_file(tmp_path / "run.h5") as f:
        group = f.require_group("g")
        store = FrameStore(group, {})
        for i in range(5):
            store.append(0.5 * i, {"x": (float(i), ())}, state={"s": np.full(3, i)})
        point = last_checkpoint(group, [0.5 * i for i in range(6)])
        assert point.index == 4
        np.testing.assert_array_equal(point.state["s"], [4, 4, 4])
        assert last_checkpoint(group, [0.0, 0.5, 1.0, 1.5, 9.0]).index == 3  # time mismatch
        group["checkpoint/frame"][0] = 6  # a slot naming an uncommitted frame is skipped
        assert last_checkpoint(group).index == 3
        truncate_frames(group, 4)  # back to that frame: the later slot is cleared
        assert len(group["time"]) == len(group["x"]) == 4
        np.testing.assert_array_equal(group["checkpoint/frame"][()], [-1, 3])
        store = FrameStore(group, {})  # a later session appends after the kept frames
        store.append(2.0, {"x": (9.0, ())}, state={"s": np.full(3, 9)})
        np.testing.assert_array_equal(group["x"][()], [0.0, 1.0, 2.0, 3.0, 9.0])
        point = last_checkpoint(group)
        assert point.index == 4
        np.testing.assert_array_equal(point.state["s"], [9, 9, 9])


def test_resume_refuses_another_particle_engine(configs, references, tmp_path, monkeypatch):
    """``engine = "auto"`` resolves per machine (numba missing: the NumPy steps); the two
    engines agree to round-off, not bit for bit, so a resume must stay on its engine."""
    import particles.run
    from particles.engine import EngineChoice

    out = tmp_path / "auto.h5"
    text = configs["isotropic"].read_text().replace('engine = "compiled"', 'engine = "auto"')
    config_path = tmp_path / "auto.toml"
    config_path.write_text(text)
    run_config(load_config(config_path), out, progress=False)
    with h5py.File(out, "r+") as f:
        truncate_frames(f["particles"], 3)
    monkeypatch.setattr(particles.run, "select_engine", lambda *args: EngineChoice("numpy"))
    with pytest.raises(ResumeError, match="compiled particle engine"):
        run_config(load_config(config_path), out, resume=True, progress=False)
