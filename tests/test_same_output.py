"""benchmarks/same_output.py, the before/after check of issue 25, checked on itself: its HDF5
and results comparers find what differs and only that, its subprocess imports the tree it is
given, and (slow) the whole script reports HEAD's code and the working tree's as the same."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "same_output.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("same_output", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


so = _load_script()

#: a run of seconds: the PDE on a 16 x 16 grid and 10 particles, two frames
TINY = (
    "dynamics.t_end=0.1",
    "dynamics.save_times={count = 2}",
    "pde.cells=[16, 16]",
    "particles.n=10",
    "particles.replicas=1",
)


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """linear-unit-2d, tiny, written by this tree's code: twice alike ("a", "b") and once
    with another particle seed ("seed")."""
    out = tmp_path_factory.mktemp("same-output")
    files = {}
    for label, extra in (("a", ()), ("b", ()), ("seed", ("particles.seed=1",))):
        job = so.Job("run", "data/configs/linear-unit-2d.toml", TINY + extra)
        outcome = so.run_job(job, ROOT, ROOT, out / label, timeout=300)
        assert outcome.ok, outcome.log.read_text()
        files[label] = outcome.output
    return files


def _copy(path: Path, tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    shutil.copyfile(path, target)
    return target


def test_same_config_writes_the_same_file(tiny_runs):
    a, b = tiny_runs["a"], tiny_runs["b"]
    assert so.compare_h5(a, b) == []
    # the provenance really differs (else its exclusion would be untested)
    with h5py.File(a) as fa, h5py.File(b) as fb:
        assert fa.attrs["created_utc"] != fb.attrs["created_utc"]
        assert fa["pde"].attrs["wall_time_s"] != fb["pde"].attrs["wall_time_s"]


def test_another_seed_is_a_difference(tiny_runs):
    differences = so.compare_h5(tiny_runs["a"], tiny_runs["seed"])
    text = "\n".join(differences)
    assert "/particles/reduced:" in text
    assert "/: attribute 'config'" in text  # the resolved config names the seed
    assert "/particles: attribute 'seed': 0 vs 1" in text
    assert not any(line.startswith("/pde") for line in differences)  # the PDE has no seed


def _edit_density(f: h5py.File) -> None:
    ds = f["pde/density"]
    ds[0, 0, 0] = np.nextafter(ds[0, 0, 0], np.inf)


def _edit_attr(f: h5py.File) -> None:
    f["pde"].attrs["max_mass_error"] = 1.0


def _edit_dtype(f: h5py.File) -> None:
    data = f["pde/risk"][()]
    del f["pde/risk"]
    f["pde"].create_dataset("risk", data=data.astype(np.float32))


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (_edit_density, "/pde/density: 1 of"),
        (_edit_attr, "/pde: attribute 'max_mass_error'"),
        (lambda f: f["pde"].attrs.__delitem__("n_steps"), "/pde: attribute 'n_steps' only in base"),
        (lambda f: f["pde"].__delitem__("dt"), "/pde/dt: only in base"),
        (lambda f: f.create_group("extra"), "/extra: only in head"),
        (_edit_dtype, "/pde/risk: type float64 vs float32"),
        (
            lambda f: f.attrs.__setitem__("config", f.attrs["config"] + "\n# one more line"),
            "/: attribute 'config': ",
        ),
    ],
)
def test_an_edit_is_a_difference(tiny_runs, tmp_path, edit, expected):
    edited = _copy(tiny_runs["a"], tmp_path, "edited.h5")
    with h5py.File(edited, "r+") as f:
        edit(f)
    differences = so.compare_h5(tiny_runs["a"], edited)
    assert any(line.startswith(expected) for line in differences), differences


def test_provenance_and_nan_are_not_differences(tiny_runs, tmp_path):
    a = _copy(tiny_runs["a"], tmp_path, "a.h5")
    b = _copy(tiny_runs["a"], tmp_path, "b.h5")
    quiet_nan = np.array([np.nan, 1.0])
    other_nan = quiet_nan.copy()
    other_nan.view(np.uint64)[0] |= 1  # another NaN payload
    with h5py.File(a, "r+") as fa, h5py.File(b, "r+") as fb:
        fa.attrs["package_version"], fb.attrs["package_version"] = "0.1.0", "9.9.9"
        fa["pde"].attrs["wall_time_s"], fb["pde"].attrs["wall_time_s"] = 1.0, 2.0
        fa["pde"].create_dataset("holes", data=quiet_nan)
        fb["pde"].create_dataset("holes", data=other_nan)
    assert so.compare_h5(a, b) == []


def _results_dir(
    path: Path,
    rows: list[str],
    arrays: dict[str, np.ndarray],
    job: str = "n8-teacher0-0123456789ab.npz",
) -> Path:
    (path / "runs").mkdir(parents=True)
    header = "experiment,quantity,x,ours,ours_low,ours_high,paper_low,paper_high"
    (path / "results.csv").write_text("\n".join([header, *rows]) + "\n")
    np.savez(path / "runs" / job, **arrays)
    return path


def test_results_comparer(tmp_path):
    rows = [
        "e,loss,8,0.5,0.4,0.6,,",
        "e,job_seconds,8,1.25,1.0,1.5,,",
        "e,kappa=0.1:seconds_sgd,,3.5,,,,",
    ]
    arrays = {"loss": np.array([0.5, np.nan]), "job_seconds": np.array(1.0)}
    base = _results_dir(tmp_path / "base", rows, arrays)
    # timings differ, nothing else: the same
    slower = [
        "e,loss,8,0.5,0.4,0.6,,",
        "e,job_seconds,8,9.5,9.0,9.9,,",
        "e,kappa=0.1:seconds_sgd,,7.25,,,,",
    ]
    same = _results_dir(tmp_path / "same", slower, {**arrays, "job_seconds": np.array(9.0)})
    assert so.compare_results(base, same) == []
    # a result differs
    other = _results_dir(tmp_path / "other", ["e,loss,8,0.5,0.4,0.7,,", *rows[1:]], arrays)
    assert so.compare_results(base, other)[0].startswith("results.csv: 1 lines differ")
    # a cached job's array differs
    job_array = _results_dir(tmp_path / "job", rows, {**arrays, "loss": np.array([0.5, 0.0])})
    assert so.compare_results(base, job_array) == [
        "runs/n8-teacher0-0123456789ab.npz['loss']: 1 of 2 elements differ, first at (1,): "
        "nan vs 0.0"
    ]
    # another job parameter hash
    renamed = _results_dir(tmp_path / "renamed", rows, arrays, "n8-teacher0-ba9876543210.npz")
    assert so.compare_results(base, renamed) == [
        "DIR/runs/n8-teacher0-0123456789ab.npz: only in base",
        "DIR/runs/n8-teacher0-ba9876543210.npz: only in head",
    ]


def test_timing_quantities():
    timing = [
        "seconds",
        "seconds_l2",
        "job_seconds",
        "seconds_pde",
        "seconds_pde_grid",
        "seconds_sgd",
        "kappa=0.4:seconds_sgd",
    ]
    results = [
        "loss",
        "steps",
        "risk_pde",
        "kappa=0.4:risk_sgd",
        "stability_l2",
        "pre_quench_trend",
    ]
    assert all(so.TIMING_QUANTITY.match(q) for q in timing)
    assert not any(so.TIMING_QUANTITY.match(q) for q in results)


def test_every_shipped_config_has_a_job():
    targets = {job.target for job in so.JOBS}
    configs = {f"data/configs/{p.name}" for p in (ROOT / "data" / "configs").glob("*.toml")}
    assert configs <= targets
    small = {
        p.name.removesuffix(".small.toml")
        for p in (ROOT / "data" / "configs" / "reproduce").glob("*.small.toml")
    }
    assert small == {job.target for job in so.JOBS if job.kind == "reproduce"}


def test_subprocess_imports_the_given_tree(tmp_path):
    files = so.where(ROOT)
    assert set(files) == {"meanfield", "compare", "particles"}
    assert all(path.is_relative_to(ROOT) for path in files.values())
    # a tree without the packages: the editable install would supply them; refused
    with pytest.raises(RuntimeError, match="imported from outside"):
        so.where(tmp_path)


def _has_revision(rev: str) -> bool:
    if shutil.which("git") is None:
        return False
    done = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
        cwd=ROOT,
        capture_output=True,
    )
    return done.returncode == 0


@pytest.mark.slow
def test_script_finds_head_and_working_tree_the_same():
    """The working tree against its own HEAD (or the revision SAME_OUTPUT_BASE) on an HDF5 job
    and a reproduction: the same, unless the uncommitted edits change what these jobs write
    (which the script is for)."""
    base = os.environ.get("SAME_OUTPUT_BASE", "HEAD")
    if not _has_revision(base):
        pytest.skip(f"git or the revision {base} is not available")
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--base",
            base,
            "--only",
            "run/cosine-gibbs",
            "reproduce/rve-pspin",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("run/cosine-gibbs") and " same " in line for line in lines)
    assert any(line.startswith("reproduce/rve-pspin") and " same " in line for line in lines)
    assert lines[-1].startswith("all same: 2 jobs")
