"""Same output before and after a change: run the shipped configs, shrunk, with two trees' code
and compare what they write (issue 25: "the same configs produce byte-identical HDF5 files
(provenance aside) and results.csv before and after").

    python benchmarks/same_output.py --base REV [--head DIR_OR_REV] [--only NAME ...] [-o WORKDIR]
    python benchmarks/same_output.py --list

REV is checked out into a temporary ``git worktree``; the head side is this repository's
working tree (uncommitted edits included) unless ``--head`` names another directory or a
revision. Every job runs once with each tree's code, in a subprocess whose ``sys.path`` starts
with that tree (the subprocess checks that ``meanfield``, ``compare`` and ``particles`` are
imported from it: the package is installed editable, and its finder must not win), and the
outputs are compared:

* ``run``, ``study`` and ``sweep`` jobs (``meanfield run|study|sweep CONFIG -o FILE.h5``, the
  config file taken from the base tree for both sides, shrunk with the same ``--set``
  overrides): the same groups, links, datasets and attributes; every dataset equal in HDF5
  type, shape, storage layout and bytes (NaN equal to NaN); every attribute equal (object
  references by the path they point to), except the provenance attributes of
  :data:`PROVENANCE_ATTRS`;
* ``reproduce`` jobs (``meanfield reproduce NAME --scale small -o DIR``, each tree with its own
  shipped config, shrunk with ``--set``): ``results.csv`` and ``results.md`` line for line, the
  timing rows (:data:`TIMING_QUANTITY`) by their cells other than the numbers; the listing of
  ``DIR`` and of ``DIR/runs`` (the job cache's file names carry a hash of the job's
  parameters); and the arrays of every cached job ``DIR/runs/*.npz`` (except their timings,
  :data:`TIMING_NPZ_KEYS`). Figures are listed, not compared (their metadata carry dates).

One line per job: ``same``, or its first differences. Exit status 0 when every job is the
same, 1 otherwise, 2 on a usage error (an unknown revision, say). Every subprocess runs with
one thread (``OMP_NUM_THREADS=1``, ``NUMBA_NUM_THREADS=1``, ...), ``PYTHONHASHSEED=0`` and
``--scheduler local`` where the command has it, on both sides alike. With ``-o WORKDIR`` the
worktrees and outputs are kept there (a rerun reuses a worktree and its numba cache); without
it, everything goes to a temporary directory that is removed at the end.
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]

# --- what is not compared --------------------------------------------------------------------

#: Provenance attributes of the HDF5 files, skipped by the comparison: ``(group, name)``, the
#: group ``"*"`` standing for any group. meanfield writes no git revision, host name or user
#: (``meanfield.io.write_root_attrs`` writes schema_version, package_version, created_utc,
#: backend, device, seed and config); of what it writes, only these vary between two runs of
#: the same config or between two versions of the same code:
PROVENANCE_ATTRS: dict[tuple[str, str], str] = {
    # root, meanfield.io.write_root_attrs: the date and time the file was created
    ("/", "created_utc"): "time stamp of the file's creation",
    # root, compare.runner (meanfield run --resume): the date and time of a resume; never
    # written here (no job resumes) but a time stamp all the same
    ("/", "resumed_utc"): "time stamp of a resume",
    # root, meanfield.io.write_root_attrs: meanfield.__version__, which version of the code
    # wrote the file (a refactor may bump it without changing a result)
    ("/", "package_version"): "version of the code that wrote the file",
    # /pde (meanfield.config.driver: the grid and characteristics solvers) and /sweep
    # (compare.sweeps): wall-clock seconds of the solve, which depend on the machine's load
    ("*", "wall_time_s"): "wall-clock seconds of the solve",
}

#: Timing rows of results.csv (and results.md), compared by every cell but the numbers: the
#: quantity, after an optional variant prefix ``label:``, is ``seconds_pde``,
#: ``seconds_pde_<method>``, ``seconds_sgd`` (compare.reproduce.mmn: summed job wall times),
#: ``seconds`` / ``seconds_<objective>`` (compare.reproduce.rve_kernel: job wall times) or
#: ``job_seconds`` (compare.reproduce.rve_pspin). They are wall-clock seconds.
TIMING_QUANTITY = re.compile(r"^(?:[^:]*:)?(?:job_seconds|seconds(?:_[A-Za-z0-9_]+)?)$")

#: Arrays of the job cache files DIR/runs/*.npz not compared: ``job_seconds`` (the wall time
#: compare.reproduce.base.run_cached adds to every job) and ``seconds`` (the wall time
#: compare.reproduce.rve_kernel's job returns).
TIMING_NPZ_KEYS = frozenset({"job_seconds", "seconds"})

#: Environment of every subprocess, on both sides: one thread (each job takes one core of a
#: shared machine), string hashing fixed (a set iterated in hash order gives the same order in
#: both processes), no display.
ENVIRONMENT = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
    "PYTHONHASHSEED": "0",
    "MPLBACKEND": "Agg",
}

# --- the jobs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One command run on both sides.

    ``kind`` is the ``meanfield`` command; ``target`` a config path relative to the tree
    (run, study, sweep) or an experiment name (reproduce); ``overrides`` the ``--set`` values
    that shrink it; ``extra`` further arguments (``--over`` of a sweep).
    """

    kind: str
    target: str
    overrides: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        stem = Path(self.target).stem if self.kind != "reproduce" else self.target
        return f"{self.kind}/{stem}"

    @property
    def slug(self) -> str:
        return self.name.replace("/", "-")

    @property
    def writes_file(self) -> bool:
        return self.kind != "reproduce"

    def arguments(self, config_root: Path, output: Path) -> list[str]:
        """The ``meanfield`` arguments (``config_root``: where ``target`` is read from)."""
        args = [self.kind]
        if self.kind == "reproduce":
            args += [self.target, "--scale", "small", "--scheduler", "local"]
        else:
            args += [str(config_root / self.target)]
        args += ["-o", str(output), "--quiet", *self.extra]
        if self.kind == "run":
            args += ["--force"]
        if self.kind == "study":
            args += ["--force", "--scheduler", "local"]
        if self.kind == "sweep":
            args += ["--force"]
        for value in self.overrides:
            args += ["--set", value]
        return args


def _run(config: str, *overrides: str) -> Job:
    return Job("run", f"data/configs/{config}.toml", overrides)


def _study(config: str, *overrides: str) -> Job:
    return Job("study", f"data/configs/{config}.toml", overrides)


def _reproduce(name: str, *overrides: str) -> Job:
    return Job("reproduce", name, overrides)


#: The jobs: every shipped config of data/configs/*.toml (single runs with ``meanfield run``,
#: the [study] configs with ``meanfield study``), one sweep, and every reproduction of
#: ``meanfield reproduce --list`` at --scale small, each shrunk to seconds on one core (the
#: whole list: about 2 minutes a side on an idle core). The overrides keep each config's model,
#: methods and code paths (the solver, the particle method, the quench, the noise, the time
#: change); the runs keep the shipped grids and widths and cut t_end, the save times and the
#: replicas; the studies and reproductions also cut cells, points, widths, steps, teachers and
#: test points. What they still skip: the CLT layer of the mmn reproductions
#: (experiment.clt = false: minutes of Monte Carlo; the studies run that layer) and the CLT
#: tables of mean_r and second_moment_r in the online-SGD studies (the same Monte Carlo).
JOBS: tuple[Job, ...] = (
    _run("cosine-gibbs", "dynamics.t_end=4.0", "dynamics.save_times={count = 5}"),
    _run(
        "linear-unit-2d",
        "dynamics.t_end=0.5",
        "dynamics.save_times={count = 3}",
        "particles.replicas=2",
    ),
    _run(
        "mmn-anisotropic",
        "dynamics.t_end=0.4",
        "dynamics.save_times=[0.0, 0.2, 0.4]",
        "particles.replicas=1",
    ),
    _run(
        "mmn-isotropic",
        "dynamics.t_end=0.5",
        "dynamics.save_times=[0.0, 0.25, 0.5]",
        "particles.replicas=2",
    ),
    _run(
        "mmn-nonmonotone-kappa0.1",
        "dynamics.t_end=0.5",
        "dynamics.save_times=[0.0, 0.25, 0.5]",
        "particles.replicas=1",
    ),
    _run(
        "mmn-nonmonotone-kappa0.4",
        "dynamics.t_end=0.5",
        "dynamics.save_times=[0.0, 0.25, 0.5]",
        "particles.replicas=1",
    ),
    _run(
        "mmn-relu-selection",
        "dynamics.t_end=0.5",
        "dynamics.save_times=[0.0, 0.25, 0.5]",
        "particles.replicas=1",
    ),
    _run("ou-3d", "dynamics.t_end=0.5", "dynamics.save_times={count = 3}"),
    _run(
        "relu-isotropic",
        "dynamics.t_end=0.5",
        "dynamics.save_times={count = 3}",
        "particles.replicas=1",
    ),
    _run(
        "rve-pspin-d10",
        "dynamics.t_end=20.0",
        "dynamics.save_times=[0.0, 10.0, 15.0, 20.0]",
        "particles.quench_time=15.0",
        "particles.replicas=2",
    ),
    _run(
        "rve-pspin-d25",
        "dynamics.t_end=20.0",
        "dynamics.save_times=[0.0, 10.0, 19.0, 20.0]",
        "particles.quench_time=19.0",
        "particles.replicas=1",
    ),
    _run(
        "teacher-student-2d",
        "dynamics.t_end=0.5",
        "dynamics.save_times=[0.0, 0.25, 0.5]",
        "particles.replicas=1",
    ),
    _study(
        "mmn-isotropic-study",
        "dynamics.t_end=0.25",
        "dynamics.save_times=[0.0, 0.25]",
        "pde.cells=600",
        "study.n=[25, 50]",
        "study.replicas=4",
        'study.observables=["risk", "w1", "ks"]',
    ),
    _study(
        "mmn-isotropic-study-gd",
        "dynamics.t_end=0.2",
        "dynamics.save_times=[0.0, 0.2]",
        "pde.cells=600",
        "study.n=[25, 50]",
        "study.replicas=4",
    ),
    _study(
        "mmn-isotropic-study-split",
        "dynamics.t_end=0.25",
        "dynamics.save_times=[0.0, 0.25]",
        "pde.cells=400",
        "pde.points=32",
        "study.n=[25, 50]",
        "study.replicas=4",
        'study.observables=["risk"]',
    ),
    _study(
        "mmn-isotropic-scaling",
        "dynamics.t_end=0.25",
        "dynamics.save_times=[0.0, 0.25]",
        "pde.cells=600",
        "study.n=[25, 50]",
        "study.replicas=4",
        'study.observables=["risk"]',
    ),
    _study(
        "rve-pspin-d10-scaling",
        "dynamics.t_end=20.0",
        "dynamics.save_times=[0.0, 10.0, 20.0]",
        "particles.quench_time=15.0",
        "particles.batch=10",
        "particles.quench_batch=100",
        "particles.test_points=2000",
        "study.n=[25, 50]",
        "study.replicas=2",
    ),
    _study(
        "teacher-student-2d-study",
        "dynamics.t_end=0.5",
        "dynamics.save_times=[0.0, 0.25, 0.5]",
        "pde.cells=[40, 40]",
        "study.n=[25, 50]",
        "study.replicas=4",
    ),
    Job(
        "sweep",
        "data/configs/mmn-nonmonotone-kappa0.4.toml",
        ("dynamics.t_end=0.5", "dynamics.save_times=[0.0, 0.25, 0.5]", "pde.cells=600"),
        ("--over", "init.kappa=0.1,0.4"),
    ),
    _reproduce(
        "rve-pspin",
        "study.n=[10, 20]",
        "study.teachers=2",
        "protocol.sgd_steps=2000",
        "protocol.quench_steps=200",
        "protocol.log_records=10",
        "particles.test_points=2000",
    ),
    _reproduce(
        "rve-pspin-d25",
        "study.n=[10, 20]",
        "study.teachers=2",
        "protocol.sgd_steps=1000",
        "protocol.quench_steps=100",
        "protocol.log_records=10",
        "particles.test_points=2000",
        "protocol.figure_n=20",
    ),
    _reproduce(
        "rve-kernel",
        "study.n=[8, 16]",
        "study.teachers=2",
        "protocol.steps=2000",
        "protocol.max_steps=4000",
        "protocol.test_points=5000",
        "protocol.records=10",
    ),
    _reproduce(
        "mmn-fig1",
        "dynamics.t_end=0.5",
        "dynamics.save_times=[0.0, 0.25, 0.5]",
        "pde.cells=300",
        "particles.n=50",
        "particles.replicas=2",
        "experiment.replicas_per_job=2",
        "experiment.hist_times=[0.25, 0.5]",
        "experiment.clt=false",
        'experiment.characteristics=["pde.points=64"]',
    ),
    _reproduce(
        "mmn-nonmonotone",
        "dynamics.t_end=0.1",
        "dynamics.save_times=[0.0, 0.05, 0.1]",
        "pde.cells=300",
        "particles.n=50",
        "particles.replicas=2",
        "experiment.replicas_per_job=2",
        "experiment.clt=false",
        'experiment.characteristics=["pde.points=64", "pde.refine=0.0"]',
    ),
    _reproduce(
        "mmn-relu-selection",
        "dynamics.t_end=0.5",
        "dynamics.save_times=[0.0, 0.25, 0.5]",
        "pde.cells=[8, 6, 6, 6]",
        "particles.n=50",
        "particles.replicas=1",
        'experiment.characteristics=["pde.points=[4, 4, 4, 4]", "pde.refine=0.0"]',
    ),
)


def select(jobs: Sequence[Job], patterns: Sequence[str]) -> list[Job]:
    """The jobs named by ``patterns``: a job name (``run/ou-3d``), its part after the slash
    (``ou-3d``), a kind (``reproduce``) or a shell pattern (``run/mmn-*``)."""
    if not patterns:
        return list(jobs)
    chosen = []
    for pattern in patterns:
        hits = [
            j
            for j in jobs
            if pattern in (j.name, j.name.split("/", 1)[1], j.kind)
            or fnmatch.fnmatchcase(j.name, pattern)
        ]
        if not hits:
            raise SystemExit(f"same_output: --only {pattern!r} names no job (see --list)")
        chosen += [j for j in hits if j not in chosen]
    return [j for j in jobs if j in chosen]


# --- HDF5 comparison -------------------------------------------------------------------------


def _excluded(group: str, name: str) -> bool:
    return (group, name) in PROVENANCE_ATTRS or ("*", name) in PROVENANCE_ATTRS


def _canonical(array: np.ndarray) -> np.ndarray:
    """A contiguous copy with every NaN replaced by the one NaN bit pattern of its dtype."""
    array = np.ascontiguousarray(array)
    if array.dtype.kind == "c":
        array = array.view(array.real.dtype)
    if array.dtype.kind == "f":
        nan = np.isnan(array)
        if nan.any():
            array = array.copy()
            array[nan] = np.nan
    return array


def _has_objects(dtype: np.dtype) -> bool:
    if dtype.names is not None:
        return any(_has_objects(dtype.fields[n][0]) for n in dtype.names)
    return dtype.kind == "O" or dtype.subdtype is not None and _has_objects(dtype.subdtype[0])


def _plain(value: Any, file: Any) -> Any:
    """An attribute or object-dtype element as comparable Python values: object references by
    the path they point to, arrays by (dtype, shape, canonical bytes)."""
    import h5py

    if isinstance(value, h5py.RegionReference):
        return ("region-reference", file[value].name if value else None)
    if isinstance(value, h5py.Reference):
        return ("reference", file[value].name if value else None)
    if isinstance(value, np.ndarray):
        if _has_objects(value.dtype):
            return (
                "array",
                value.dtype.str,
                value.shape,
                tuple(_plain(v, file) for v in value.reshape(-1)),
            )
        return ("array", value.dtype.str, value.shape, _canonical(value).tobytes())
    if isinstance(value, np.void) and value.dtype.names is not None:
        return ("record", tuple(value.dtype.names), tuple(_plain(v, file) for v in value))
    if isinstance(value, np.generic):
        return ("scalar", value.dtype.str, _canonical(np.asarray(value)).tobytes())
    return (type(value).__name__, value)


def _show(value: Any, width: int = 60) -> str:
    text = repr(value.item() if isinstance(value, np.generic) else value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _text_difference(a: str, b: str) -> str:
    lines_a, lines_b = a.splitlines(), b.splitlines()
    for k, (x, y) in enumerate(zip(lines_a, lines_b, strict=False)):
        if x != y:
            return f"line {k + 1}: {_show(x)} vs {_show(y)}"
    return f"{len(lines_a)} vs {len(lines_b)} lines"


def _value_difference(a: Any, b: Any, file_a: Any, file_b: Any) -> str | None:
    """None when the two attribute values are equal, else what differs."""
    if isinstance(a, str) and isinstance(b, str):
        return None if a == b else _text_difference(a, b)
    if _plain(a, file_a) == _plain(b, file_b):
        return None
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and not _has_objects(a.dtype):
        return array_difference(a, b)
    return f"{_show(a)} vs {_show(b)}"


def array_difference(a: np.ndarray, b: np.ndarray) -> str | None:
    """None when ``a`` and ``b`` have the same dtype, shape and bytes (NaN equal to NaN, any
    payload), else what differs: how many elements, the first, the largest difference."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype:
        return f"dtype {a.dtype} vs {b.dtype}"
    if a.shape != b.shape:
        return f"shape {a.shape} vs {b.shape}"
    if _has_objects(a.dtype):
        pa = [_plain(v, None) for v in a.reshape(-1)]
        pb = [_plain(v, None) for v in b.reshape(-1)]
        bad = [k for k, (x, y) in enumerate(zip(pa, pb, strict=True)) if x != y]
        if not bad:
            return None
        index = np.unravel_index(bad[0], a.shape) if a.ndim else ()
        return (
            f"{len(bad)} of {a.size} elements differ, first at {tuple(map(int, index))}: "
            f"{_show(a.reshape(-1)[bad[0]])} vs {_show(b.reshape(-1)[bad[0]])}"
        )
    ca, cb = _canonical(a), _canonical(b)
    if ca.tobytes() == cb.tobytes():
        return None
    size = max(a.size, 1)
    ba = ca.reshape(-1).view(np.uint8).reshape(size, -1)
    bb = cb.reshape(-1).view(np.uint8).reshape(size, -1)
    bad = np.flatnonzero((ba != bb).any(axis=1))
    index = tuple(int(i) for i in np.unravel_index(bad[0], a.shape)) if a.ndim else ()
    first_a, first_b = a.reshape(-1)[bad[0]], b.reshape(-1)[bad[0]]
    text = (
        f"{bad.size} of {a.size} elements differ, first at {index}: {_show(first_a)} vs "
        f"{_show(first_b)}"
    )
    if a.dtype.kind in "fiuc":
        with np.errstate(all="ignore"):
            gap = np.abs(
                a.reshape(-1)[bad].astype(complex if a.dtype.kind == "c" else float)
                - b.reshape(-1)[bad]
            )
        if np.isfinite(gap).any():
            text += f", max |diff| {float(np.nanmax(gap)):.3g}"
    return text


def _layout(ds: Any) -> dict[str, Any]:
    return {
        "chunks": ds.chunks,
        "maxshape": ds.maxshape,
        "compression": ds.compression,
        "compression_opts": ds.compression_opts,
        "shuffle": ds.shuffle,
        "fletcher32": ds.fletcher32,
        "scaleoffset": ds.scaleoffset,
        "fillvalue": _plain(np.asarray(ds.fillvalue), None) if not _has_objects(ds.dtype) else None,
    }


def _links(group: Any) -> dict[str, tuple[str, str]]:
    """Member name -> (link class, soft or external target; '' for a hard link)."""
    import h5py

    out = {}
    for name in group:
        link = group.get(name, getlink=True)
        if isinstance(link, h5py.SoftLink):
            out[name] = ("soft link", link.path)
        elif isinstance(link, h5py.ExternalLink):
            out[name] = ("external link", f"{link.filename}:{link.path}")
        else:
            out[name] = ("hard link", "")
    return out


def compare_h5(path_a: str | Path, path_b: str | Path) -> list[str]:
    """Every difference between two HDF5 files, as ``path: what differs`` lines (empty: the
    same); the provenance attributes of :data:`PROVENANCE_ATTRS` are skipped."""
    import h5py

    differences: list[str] = []
    with h5py.File(path_a, "r") as fa, h5py.File(path_b, "r") as fb:

        def attrs(a: Any, b: Any, group: str) -> None:
            names_a = {n for n in a.attrs if not _excluded(group, n)}
            names_b = {n for n in b.attrs if not _excluded(group, n)}
            where = a.name
            for name in sorted(names_a - names_b):
                differences.append(f"{where}: attribute {name!r} only in base")
            for name in sorted(names_b - names_a):
                differences.append(f"{where}: attribute {name!r} only in head")
            for name in sorted(names_a & names_b):
                if a.attrs.get_id(name).get_type() != b.attrs.get_id(name).get_type():
                    differences.append(
                        f"{where}: attribute {name!r}: HDF5 type differs "
                        f"({a.attrs[name].__class__.__name__})"
                    )
                    continue
                what = _value_difference(a.attrs[name], b.attrs[name], fa, fb)
                if what:
                    differences.append(f"{where}: attribute {name!r}: {what}")

        def dataset(a: Any, b: Any) -> None:
            where = a.name
            if a.id.get_type() != b.id.get_type():
                differences.append(f"{where}: type {a.dtype} vs {b.dtype} (HDF5 type differs)")
                return
            if a.shape != b.shape:
                differences.append(f"{where}: shape {a.shape} vs {b.shape}")
                return
            la, lb = _layout(a), _layout(b)
            for key in la:
                if la[key] != lb[key]:
                    differences.append(f"{where}: layout {key} {la[key]!r} vs {lb[key]!r}")
            va, vb = np.asarray(a[()]), np.asarray(b[()])
            if _has_objects(va.dtype):
                pa = [_plain(v, fa) for v in va.reshape(-1)]
                pb = [_plain(v, fb) for v in vb.reshape(-1)]
                bad = sum(x != y for x, y in zip(pa, pb, strict=True))
                what = f"{bad} of {va.size} elements differ" if bad else None
            else:
                what = array_difference(va, vb)
            if what:
                differences.append(f"{where}: {what}")
            attrs(a, b, where)

        def group(a: Any, b: Any) -> None:
            attrs(a, b, a.name if a.name == "/" else a.name)
            links_a, links_b = _links(a), _links(b)
            prefix = "" if a.name == "/" else a.name
            for name in sorted(set(links_a) - set(links_b)):
                differences.append(f"{prefix}/{name}: only in base")
            for name in sorted(set(links_b) - set(links_a)):
                differences.append(f"{prefix}/{name}: only in head")
            for name in sorted(set(links_a) & set(links_b)):
                path = f"{prefix}/{name}"
                if links_a[name] != links_b[name]:
                    differences.append(f"{path}: {links_a[name]} vs {links_b[name]}")
                    continue
                if links_a[name][0] != "hard link":
                    continue
                xa, xb = a[name], b[name]
                if isinstance(xa, h5py.Group) and isinstance(xb, h5py.Group):
                    group(xa, xb)
                elif isinstance(xa, h5py.Dataset) and isinstance(xb, h5py.Dataset):
                    dataset(xa, xb)
                else:
                    differences.append(f"{path}: {type(xa).__name__} vs {type(xb).__name__}")

        group(fa, fb)
    return differences


# --- reproduction outputs --------------------------------------------------------------------


def _mask_csv(text: str) -> list[str]:
    """The lines of results.csv, the numbers of the timing rows replaced by ``<seconds>``."""
    out = []
    for k, line in enumerate(text.splitlines()):
        cells = next(csv.reader(io.StringIO(line))) if line else []
        if k > 0 and len(cells) >= 6 and TIMING_QUANTITY.match(cells[1]):
            cells[3:6] = ["<seconds>"] * 3
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="").writerow(cells)
            line = buffer.getvalue()
        out.append(line)
    return out


def _mask_markdown(text: str) -> list[str]:
    """The lines of results.md, the numbers of the timing rows replaced by ``<seconds>``."""
    out = []
    for line in text.splitlines():
        cells = line.split("|")
        if len(cells) >= 5 and TIMING_QUANTITY.match(cells[1].strip()):
            cells[3:5] = [" <seconds> "] * 2
            line = "|".join(cells)
        out.append(line)
    return out


def _lines_difference(name: str, a: list[str], b: list[str]) -> list[str]:
    if a == b:
        return []
    bad = [k for k, (x, y) in enumerate(zip(a, b, strict=False)) if x != y]
    out = []
    if len(a) != len(b):
        out.append(f"{name}: {len(a)} vs {len(b)} lines")
    if bad:
        k = bad[0]
        out.append(f"{name}: {len(bad)} lines differ, first line {k + 1}: {a[k]!r} vs {b[k]!r}")
    return out


def compare_results(dir_a: str | Path, dir_b: str | Path) -> list[str]:
    """Every difference between two ``meanfield reproduce`` output directories (empty: the
    same): results.csv and results.md (timing rows by their other cells), the listings of the
    directory and of runs/, and the arrays of runs/*.npz (timing arrays aside)."""
    dir_a, dir_b = Path(dir_a), Path(dir_b)
    differences = []
    for name, mask in (("results.csv", _mask_csv), ("results.md", _mask_markdown)):
        fa, fb = dir_a / name, dir_b / name
        if not fa.exists() or not fb.exists():
            if fa.exists() != fb.exists():
                differences.append(f"{name}: only in {'base' if fa.exists() else 'head'}")
            elif name == "results.csv":
                differences.append("results.csv: missing on both sides")
            continue
        ta, tb = fa.read_bytes(), fb.read_bytes()
        if ta != tb:
            differences += _lines_difference(name, mask(ta.decode()), mask(tb.decode()))
    for sub in (".", "runs"):
        la = sorted(p.name for p in (dir_a / sub).iterdir()) if (dir_a / sub).is_dir() else []
        lb = sorted(p.name for p in (dir_b / sub).iterdir()) if (dir_b / sub).is_dir() else []
        where = "DIR" if sub == "." else "DIR/runs"
        for name in sorted(set(la) - set(lb)):
            differences.append(f"{where}/{name}: only in base")
        for name in sorted(set(lb) - set(la)):
            differences.append(f"{where}/{name}: only in head")
    runs_a = {p.name for p in (dir_a / "runs").glob("*.npz")}
    runs_b = {p.name for p in (dir_b / "runs").glob("*.npz")}
    for name in sorted(runs_a & runs_b):
        with np.load(dir_a / "runs" / name) as za, np.load(dir_b / "runs" / name) as zb:
            keys_a = set(za.files) - TIMING_NPZ_KEYS
            keys_b = set(zb.files) - TIMING_NPZ_KEYS
            for key in sorted(keys_a ^ keys_b):
                side = "base" if key in keys_a else "head"
                differences.append(f"runs/{name}: array {key!r} only in {side}")
            for key in sorted(keys_a & keys_b):
                what = array_difference(za[key], zb[key])
                if what:
                    differences.append(f"runs/{name}[{key!r}]: {what}")
    return differences


# --- running a job in a tree -----------------------------------------------------------------

#: The subprocess: ``python -c BOOT TREE ARGS...`` imports the three packages with TREE first
#: on sys.path, exits 97 when one comes from elsewhere, prints where they come from for
#: ``--where``, else runs ``compare.cli.main(ARGS)``.
BOOT = """\
import pathlib, sys
tree = pathlib.Path(sys.argv.pop(1)).resolve()
sys.path.insert(0, str(tree))
import compare, meanfield, particles
files = {m.__name__: pathlib.Path(m.__file__).resolve() for m in (compare, meanfield, particles)}
wrong = {k: str(v) for k, v in files.items() if not v.is_relative_to(tree)}
if wrong:
    print(f"same_output: imported from outside {tree}: {wrong}", file=sys.stderr)
    raise SystemExit(97)
if sys.argv[1:] == ["--where"]:
    for name, path in files.items():
        print(name, path)
    raise SystemExit(0)
from compare.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


def environment(tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(ENVIRONMENT)
    env["PYTHONPATH"] = str(tree)
    return env


def where(tree: Path) -> dict[str, Path]:
    """Where a subprocess for ``tree`` imports the packages from (asserted inside ``tree``)."""
    done = subprocess.run(
        [sys.executable, "-c", BOOT, str(tree), "--where"],
        cwd=tree,
        env=environment(tree),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise RuntimeError(
            f"the packages do not import from {tree} (exit {done.returncode}): {last}"
        )
    files = {k: Path(v) for k, v in (line.split(" ", 1) for line in done.stdout.splitlines())}
    for name, path in files.items():  # what BOOT asserts, asserted again here
        assert path.is_relative_to(tree.resolve()), f"{name} imported from {path}, not {tree}"
    return files


@dataclass
class Outcome:
    ok: bool
    seconds: float
    output: Path
    log: Path
    status: int


def run_job(
    job: Job, tree: Path, config_root: Path, out_dir: Path, timeout: float = 600.0
) -> Outcome:
    """Run ``job`` with the code of ``tree`` (cwd ``tree``) into ``out_dir``; the log beside
    the output. A previous output is removed first (a reproduction would reuse its jobs)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / (f"{job.slug}.h5" if job.writes_file else job.slug)
    log = out_dir / f"{job.slug}.log"
    if output.is_dir():
        shutil.rmtree(output)
    elif output.exists():
        output.unlink()
    argv = [sys.executable, "-c", BOOT, str(tree), *job.arguments(config_root, output)]
    start = time.perf_counter()
    with log.open("w") as fh:
        fh.write(" ".join(argv[:2] + ["BOOT"] + argv[3:]) + "\n")
        fh.flush()
        try:
            status = subprocess.run(
                argv,
                cwd=tree,
                env=environment(tree),
                stdout=fh,
                stderr=subprocess.STDOUT,
                timeout=timeout,
            ).returncode
        except subprocess.TimeoutExpired:
            fh.write(f"\nsame_output: timed out after {timeout:.0f} s\n")
            status = -1
    return Outcome(status == 0, time.perf_counter() - start, output, log, status)


def compare_outputs(job: Job, base: Path, head: Path) -> list[str]:
    return compare_h5(base, head) if job.writes_file else compare_results(base, head)


def _tail(path: Path, lines: int = 3) -> str:
    text = path.read_text(errors="replace").strip().splitlines()[1:]  # after the command
    return " | ".join(line.strip() for line in text[-lines:]) or "(no output)"


# --- trees -----------------------------------------------------------------------------------


def _git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def resolve(rev: str) -> str:
    """The commit ``rev`` names in this repository (SystemExit 2 when it names none)."""
    try:
        return _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except (subprocess.CalledProcessError, FileNotFoundError) as err:
        print(f"same_output: {rev!r} is not a revision of {REPO} ({err})", file=sys.stderr)
        raise SystemExit(2) from err


class Trees:
    """Worktrees of revisions under ``root`` (one per commit), removed by :meth:`close` unless
    kept; an existing worktree of the same commit is reused (with its numba cache)."""

    def __init__(self, root: Path, keep: bool) -> None:
        self.root, self.keep, self.made = root, keep, []

    def checkout(self, sha: str) -> Path:
        path = self.root / sha[:12]
        if path.is_dir():
            try:
                same = _git("rev-parse", "HEAD", cwd=path) == sha
                clean = not _git("status", "--porcelain", "--untracked-files=no", cwd=path)
            except subprocess.CalledProcessError:
                same = clean = False
            if same and clean:
                return path
            self._remove(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        _git("worktree", "add", "--detach", str(path), sha)
        self.made.append(path)
        return path

    def _remove(self, path: Path) -> None:
        try:
            _git("worktree", "remove", "--force", str(path))
        except subprocess.CalledProcessError:
            shutil.rmtree(path, ignore_errors=True)
            _git("worktree", "prune")

    def close(self) -> None:
        if not self.keep:
            for path in self.made:
                self._remove(path)


# --- main ------------------------------------------------------------------------------------


def list_jobs(jobs: Sequence[Job]) -> None:
    for job in jobs:
        print(f"{job.name:34s} meanfield {job.kind} {job.target} {' '.join(job.extra)}".rstrip())
        for value in job.overrides:
            print(f"{'':34s}   --set {value}")


def _config_note(job: Job, base: Path, head: Path) -> str:
    """A note when the config a job reads differs between the trees."""
    if job.kind == "reproduce":
        name = f"data/configs/reproduce/{job.target}.small.toml"
        reads = "each tree reads its own"
    else:
        name, reads = job.target, "both sides ran the base's"
    a, b = base / name, head / name
    if a.exists() and b.exists() and a.read_bytes() != b.read_bytes():
        return f" [note: {name} differs between the trees; {reads}]"
    return ""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0].replace("\n", " "),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--base", metavar="REV", help="the revision before the change")
    parser.add_argument(
        "--head",
        metavar="DIR_OR_REV",
        default=None,
        help="a directory holding the code after the change, or a revision "
        "(default: this repository's working tree)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        default=[],
        metavar="NAME",
        help="run only these jobs (name, name after the slash, kind, or shell pattern; see --list)",
    )
    parser.add_argument(
        "-o",
        "--workdir",
        type=Path,
        default=None,
        help="keep the worktrees, outputs and logs here (default: a "
        "temporary directory, removed at the end)",
    )
    parser.add_argument("--list", action="store_true", help="print the jobs and exit")
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds per job and side (default 600)"
    )
    parser.add_argument(
        "--max-diffs", type=int, default=5, help="differences printed per job (default 5)"
    )
    args = parser.parse_args(argv)
    jobs = select(JOBS, args.only)
    if args.list:
        list_jobs(jobs)
        return 0
    if not args.base:
        parser.error("--base REV is required (or --list)")

    started = time.perf_counter()
    base_sha = resolve(args.base)
    head_dir = Path(args.head).resolve() if args.head and Path(args.head).is_dir() else None
    head_sha = resolve(args.head) if args.head and head_dir is None else None
    temporary = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="same-output-")) if temporary else args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    trees = Trees(workdir / "trees", keep=not temporary)
    try:
        base = trees.checkout(base_sha)
        head = head_dir or (trees.checkout(head_sha) if head_sha else REPO)
        head_label = (
            f"{head_sha[:12]} ({head})"
            if head_sha
            else f"{head} (working tree)"
            if head == REPO
            else str(head)
        )
        print(f"base: {base_sha[:12]} ({base})")
        print(f"head: {head_label}")
        for side, tree in (("base", base), ("head", head)):
            try:
                files = where(tree)
            except RuntimeError as err:
                print(f"  {side}: {err}")
                print(f"nothing compared: the {side} tree's code does not import")
                return 1
            print(f"  {side} imports meanfield from {files['meanfield']}")
        missing = [
            p.name
            for p in sorted((base / "data" / "configs").glob("*.toml"))
            if f"data/configs/{p.name}" not in {j.target for j in JOBS}
        ]
        if missing:
            print(f"  not in the job list (base's data/configs): {', '.join(missing)}")
        print(f"outputs: {workdir / 'out'}")
        width = max(len(j.name) for j in jobs)
        failed = 0
        for job in jobs:
            if job.kind != "reproduce" and not (base / job.target).exists():
                print(f"{job.name:{width}s}  SKIPPED: {job.target} is not in the base tree")
                continue
            outcomes = {
                side: run_job(job, tree, base, workdir / "out" / side, args.timeout)
                for side, tree in (("base", base), ("head", head))
            }
            times = (
                f"(base {outcomes['base'].seconds:.1f} s, head {outcomes['head'].seconds:.1f} s)"
            )
            broken = [s for s, o in outcomes.items() if not o.ok]
            if broken:
                failed += 1
                why = "; ".join(
                    f"{s} exit {outcomes[s].status}: {_tail(outcomes[s].log)}" for s in broken
                )
                print(f"{job.name:{width}s}  FAILED on {' and '.join(broken)} {times}: {why}")
                continue
            differences = compare_outputs(job, outcomes["base"].output, outcomes["head"].output)
            note = _config_note(job, base, head)
            if not differences:
                print(f"{job.name:{width}s}  same {times}{note}", flush=True)
                continue
            failed += 1
            print(f"{job.name:{width}s}  DIFFERENT {times}: {differences[0]}{note}")
            for line in differences[1 : args.max_diffs]:
                print(f"{'':{width}s}    {line}")
            if len(differences) > args.max_diffs:
                print(f"{'':{width}s}    ... {len(differences) - args.max_diffs} more")
            sys.stdout.flush()
        total = time.perf_counter() - started
        verdict = "all same" if not failed else f"{failed} of {len(jobs)} not the same"
        print(f"{verdict}: {len(jobs)} jobs in {total:.0f} s")
        return 0 if not failed else 1
    finally:
        trees.close()
        if temporary:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
