"""The built distributions: the sdist and the wheel carry LICENSE and the shipped configs, and a
fresh virtual environment that installs the wheel (not ``-e``) runs ``meanfield`` from any
directory, the main job by name included, and writes the same HDF5 file as this (editable)
install.

The build runs without network and without build isolation, with this environment's setuptools
(the test skips, saying why, where that cannot build). The fresh environment sees this
environment's dependencies through one ``.pth`` line naming its site-packages: a path line adds
the folder to ``sys.path`` but does not process that folder's own ``.pth`` files, so the editable
finder of the development install never loads (the test checks where ``meanfield`` is imported
from). The fast checks at the top need no build.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import site
import subprocess
import sys
import sysconfig
import tarfile
import tomllib
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest

from compare.cli import main
from compare.reproduce.base import CONFIG_DIR
from meanfield.config import ConfigError, load_config
from meanfield.config.shipped import resolve_config, shipped_dir, shipped_names

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
CONFIGS = ROOT / "data" / "configs"
#: the main job, shrunk to seconds (PDE and particles both run)
SHRINK = [
    "--set",
    "pde.cells=200",
    "--set",
    "dynamics.t_end=0.5",
    "--set",
    "dynamics.save_times=[0.0, 0.25, 0.5]",
    "--set",
    "particles.n=50",
    "--set",
    "particles.replicas=2",
    "--set",
    "particles.step=1e-4",
]
#: attributes that record when, how long and by which version, not what was computed
PROVENANCE = {"created_utc", "resumed_utc", "package_version", "wall_time_s"}
#: h5py's dimension-scale bookkeeping (object references): compared through ``Dataset.dims``
DIMENSION_ATTRS = {"DIMENSION_LIST", "REFERENCE_LIST", "DIMENSION_LABELS", "CLASS", "NAME"}
#: what the source tree copied for the build leaves out (caches, outputs, earlier builds)
IGNORE = shutil.ignore_patterns(
    ".git",
    "__pycache__",
    "*.pyc",
    ".*cache",
    ".hypothesis",
    "build",
    "dist",
    "*.egg-info",
    ".venv*",
    "*.h5",
    "out",
    "figures",
    ".whl",
    ".gl",
)


# ----------------------------------------------------------------------------- no build needed


def _tree_packages() -> set[str]:
    """The import packages of the source tree and the config packages pyproject maps."""
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for top in ("meanfield", "particles", "compare")
        for p in (ROOT / top).rglob("__init__.py")
    }
    mapped = {
        package: ROOT / folder
        for package, folder in PYPROJECT["tool"]["setuptools"]["package-dir"].items()
    }
    for package, folder in mapped.items():
        found |= {
            ".".join([package, *p.relative_to(folder).parts])
            for p in [folder, *folder.rglob("*")]
            if p.is_dir() and any(p.glob("*.toml"))
        }
    return found


def test_the_package_list_covers_the_tree() -> None:
    """pyproject.toml lists the packages (a package-dir mapping needs a list): every package of
    the tree, and every folder of data/configs, is in it, and nothing else is."""
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    tree = _tree_packages()
    assert not tree - listed, f"add to [tool.setuptools] packages: {sorted(tree - listed)}"
    assert not listed - tree, f"listed but not in the tree: {sorted(listed - tree)}"
    data = PYPROJECT["tool"]["setuptools"]["package-data"]
    assert all(data.get(p) == ["*.toml"] for p in listed if p.startswith("meanfield._configs"))


def test_a_shipped_config_is_found_by_name(tmp_path: Path, monkeypatch) -> None:
    """``mmn-isotropic`` is data/configs/mmn-isotropic.toml from any directory; a path stays a
    path; an unknown name is one error that lists the shipped names."""
    monkeypatch.chdir(tmp_path)
    assert shipped_dir() == CONFIGS and CONFIG_DIR == CONFIGS / "reproduce"
    assert resolve_config("mmn-isotropic") == CONFIGS / "mmn-isotropic.toml"
    assert resolve_config("full/mmn-isotropic") == CONFIGS / "full" / "mmn-isotropic.toml"
    names = shipped_names()
    assert set(names) == {
        p.relative_to(CONFIGS).with_suffix("").as_posix()
        for p in [*CONFIGS.glob("*.toml"), *CONFIGS.glob("full/*.toml")]
    }
    assert load_config("mmn-isotropic", ["pde.cells=300"]).pde["cells"] == (300,)
    (tmp_path / "mmn-isotropic").write_text("not toml [")  # an existing path wins over a name
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config("mmn-isotropic")
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config("mmn-isotropic.toml")  # .toml: a path, read as given
    with pytest.raises(ConfigError, match=r"did you mean 'mmn-isotropic'\?.*teacher-student-2d"):
        load_config("mmn-isotropc")


@pytest.mark.parametrize("command", ["run", "study"])
def test_the_cli_takes_a_shipped_name(command: str, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    config = "mmn-isotropic" if command == "run" else "mmn-isotropic-study"
    assert main([command, config, "-o", "out.h5", "--dry-run"]) == 0
    assert 'name = "isotropic_gaussians"' in capsys.readouterr().out
    assert main([command, "no-such-config", "-o", "out.h5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no config file 'no-such-config'") and err.count("\n") == 1
    assert "shipped configs: " in err and "mmn-isotropic-study" in err
    assert not (tmp_path / "out.h5").exists()


# ----------------------------------------------------------------------------- building


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def _installed(name: str) -> tuple[int, ...]:
    try:
        return _version(importlib.metadata.version(name))
    except importlib.metadata.PackageNotFoundError:
        return ()


def _cannot_build() -> str | None:
    """Why this environment cannot build the distributions offline, or None when it can."""
    if _installed("pip") < (22, 3):
        return "pip >= 22.3 is needed (pip --python installs into the fresh environment)"
    for requirement in PYPROJECT["build-system"]["requires"]:
        match = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*(?:>=\s*([0-9.]+))?\s*", requirement)
        if match is None:
            continue
        name, minimum = match.groups()
        if name == "wheel" and _installed("setuptools") >= (70, 1):
            continue  # setuptools >= 70.1 builds wheels itself (not imported here: distutils)
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return f"the build backend needs {requirement!r}, which is not installed"
        if minimum and _version(installed) < _version(minimum):
            return f"the build backend needs {requirement!r}; {name} {installed} is installed"
    return None


def _run(args: list, cwd: Path, *, env: dict | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{args}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _clean_env() -> dict[str, str]:
    """This environment without the variables that would put other code on ``sys.path``."""
    drop = {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "VIRTUAL_ENV"}
    return {k: v for k, v in os.environ.items() if k not in drop} | {"PYTHONNOUSERSITE": "1"}


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sdist, built from a copy of the source tree, and the wheel built from that sdist
    (as ``python -m build`` does): nothing is written into the repository."""
    reason = _cannot_build()
    if reason is not None:
        pytest.skip(f"cannot build offline without isolation: {reason}")
    work = tmp_path_factory.mktemp("dists")
    src, out = work / "src", work / "dist"
    shutil.copytree(ROOT, src, ignore=IGNORE)
    env = _clean_env()
    if importlib.util.find_spec("build") is not None:
        _run(
            [sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", out, src],
            work,
            env=env,
        )
    else:  # the PEP 517 hook itself, which is what ``build --no-isolation`` calls
        out.mkdir()
        _run(
            [
                sys.executable,
                "-c",
                "import sys; from setuptools import build_meta; "
                "build_meta.build_sdist(sys.argv[1])",
                out,
            ],
            src,
            env=env,
        )
    (sdist,) = out.glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(work / "unpacked", **safe)
    (unpacked,) = (work / "unpacked").iterdir()
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--quiet",
            "-w",
            out,
            unpacked,
        ],
        work,
        env=env,
    )
    (wheel,) = out.glob("*.whl")
    return {"sdist": sdist, "wheel": wheel, "work": work}


def _shipped_files() -> set[str]:
    return {p.relative_to(CONFIGS).as_posix() for p in CONFIGS.rglob("*.toml")}


def test_the_sdist_carries_the_license_and_the_configs(dists: dict[str, Path]) -> None:
    with tarfile.open(dists["sdist"]) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
        license_text = tar.extractfile(
            next(m for m in tar.getmembers() if m.name.endswith("/LICENSE"))
        ).read()
    assert "LICENSE" in names and license_text == (ROOT / "LICENSE").read_bytes()
    assert {f"data/configs/{f}" for f in _shipped_files()} <= names


def test_the_wheel_carries_the_license_and_the_configs(dists: dict[str, Path]) -> None:
    with zipfile.ZipFile(dists["wheel"]) as whl:
        names = set(whl.namelist())
        (license_name,) = [
            n for n in names if re.fullmatch(r"[^/]+\.dist-info/licenses/LICENSE", n)
        ]
        assert whl.read(license_name) == (ROOT / "LICENSE").read_bytes()
        metadata = whl.read(license_name.replace("licenses/LICENSE", "METADATA")).decode()
    assert "License-Expression: BSD-3-Clause" in metadata and "License-File: LICENSE" in metadata
    assert {f"meanfield/_configs/{f}" for f in _shipped_files()} <= names
    assert not {n for n in names if n.startswith(("data/", "tests/"))}


# ----------------------------------------------------------------------------- the wheel installed


def _fresh_venv(where: Path, wheel: Path) -> tuple[Path, Path]:
    """A new virtual environment with ``wheel`` installed (no network, no ``-e``) and this
    environment's site-packages on its path, behind its own; its python and scripts folder."""
    _run([sys.executable, "-m", "venv", "--without-pip", where], where.parent)
    python = where / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    paths = json.loads(
        _run(
            [python, "-c", "import json, sysconfig; print(json.dumps(sysconfig.get_paths()))"],
            where,
        ).stdout
    )
    ours = dict.fromkeys(
        [
            sysconfig.get_paths()["purelib"],
            sysconfig.get_paths()["platlib"],
            *site.getsitepackages(),
        ]
    )
    Path(paths["purelib"], "_dependencies.pth").write_text(
        "".join(f"{p}\n" for p in ours if Path(p).is_dir())
    )
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            python,
            "install",
            "--no-deps",
            "--no-index",
            "--quiet",
            wheel,
        ],
        where.parent,
        env=_clean_env(),
    )
    return python, Path(paths["scripts"])


def _attrs(obj: h5py.HLObject) -> dict:
    return {k: v for k, v in obj.attrs.items() if k not in PROVENANCE | DIMENSION_ATTRS}


def _contents(path: Path) -> dict[str, tuple]:
    """Every group and dataset of ``path``: attributes (less provenance), dimension scales,
    dtype and values."""
    out: dict[str, tuple] = {}
    with h5py.File(path, "r") as f:
        out["/"] = ("group", _attrs(f))

        def visit(name: str, obj: h5py.HLObject) -> None:
            if isinstance(obj, h5py.Dataset):
                dims = [(d.label, [s.name for s in d.values()]) for d in obj.dims]
                out[name] = ("dataset", _attrs(obj), dims, obj.dtype.str, obj[()])
            else:
                out[name] = ("group", _attrs(obj))

        f.visititems(visit)
    return out


def _same(a: object, b: object) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        numeric = a.dtype.kind in "fc" and b.dtype.kind in "fc"
        return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=numeric))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, tuple | list) and isinstance(b, tuple | list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@pytest.fixture(scope="module")
def installed(dists: dict[str, Path]) -> dict[str, Path]:
    """A fresh environment with the wheel, and an empty folder outside the repository."""
    work = dists["work"]
    python, scripts = _fresh_venv(work / "venv", dists["wheel"])
    run_dir = work / "run"
    run_dir.mkdir()
    return {
        "python": python,
        "root": (work / "venv").resolve(),
        "run": run_dir,
        "meanfield": scripts / ("meanfield.exe" if os.name == "nt" else "meanfield"),
    }


def test_the_installed_wheel_answers_from_its_own_files(installed: dict[str, Path]) -> None:
    """``meanfield reproduce --list`` and ``info --models`` run from the fresh environment, which
    imports the installed package and finds the shipped configs in it."""
    meanfield, run_dir, env = installed["meanfield"], installed["run"], _clean_env()
    listed = _run([meanfield, "reproduce", "--list"], run_dir, env=env).stdout
    assert {"mmn-fig1", "rve-pspin"} <= {line.split()[0] for line in listed.splitlines()}
    models = _run([meanfield, "info", "--models"], run_dir, env=env).stdout
    assert "isotropic_gaussians" in models
    where = json.loads(
        _run(
            [
                installed["python"],
                "-c",
                (
                    "import json, meanfield, compare, particles; "
                    "from compare.reproduce.base import CONFIG_DIR; "
                    "from meanfield.config.shipped import shipped_dir; "
                    "print(json.dumps([meanfield.__file__, compare.__file__, particles.__file__, "
                    "str(shipped_dir()), str(CONFIG_DIR)]))"
                ),
            ],
            run_dir,
            env=env,
        ).stdout
    )
    for path in where:
        assert Path(path).resolve().is_relative_to(installed["root"]), (path, installed["root"])
    assert Path(where[-1], "mmn-fig1.small.toml").is_file()


@pytest.mark.parametrize("engine", ["numpy", pytest.param("compiled", marks=pytest.mark.slow)])
def test_the_installed_wheel_runs_the_main_job_by_name(
    installed: dict[str, Path], engine: str
) -> None:
    """``meanfield run mmn-isotropic`` (by name, from outside the repository) in the fresh
    environment writes what this install writes for the same command: every dataset and
    attribute equal, but for the provenance. The compiled engine (what the shipped config
    runs) first compiles its numba kernels in the new environment: about 20 s, so slow."""
    run_dir, env = installed["run"], _clean_env()
    job = ["run", "mmn-isotropic", *SHRINK, "--set", f"particles.engine={engine!r}", "--quiet"]
    _run([installed["meanfield"], *job, "-o", f"wheel-{engine}.h5"], run_dir, env=env)
    _run(
        [sys.executable, "-m", "compare.cli", *job, "-o", f"editable-{engine}.h5"], run_dir, env=env
    )
    wheel = _contents(run_dir / f"wheel-{engine}.h5")
    editable = _contents(run_dir / f"editable-{engine}.h5")
    assert wheel.keys() == editable.keys()
    differ = [name for name in wheel if not _same(wheel[name], editable[name])]
    assert not differ, f"the installed wheel wrote other values in {differ}"
    assert {"pde/density", "particles/reduced"} <= wheel.keys()
    assert wheel["particles"][1]["engine"] == engine
