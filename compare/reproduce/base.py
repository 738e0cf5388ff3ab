"""What every paper reproduction shares: its registry entry, its config, its results table.

An :class:`Experiment` names one published experiment, the shipped config of each scale
(``data/configs/reproduce/<name>.<scale>.toml``) and the function that runs it. The config is
a TOML table: the sections a run config has (``[model]``, ``[init]``, ``[dynamics]``,
``[particles]``) plus the experiment's own protocol sections, which the experiment checks
itself. ``--set section.key=value`` overrides apply to the whole table, as for ``meanfield run``.

Every experiment writes ``results.csv`` with one :class:`Row` per reported number:

=============  ===================================================================================
column         meaning
=============  ===================================================================================
experiment     the experiment's name
quantity       what is reported (``loss``, ``residual_pos``, ``slope``, ...)
x              where: the width ``n``, a time, or empty
ours           our value (a median or mean over teachers, say which in the docs)
ours_low/high  its interval (bootstrap over teachers, or min/max); empty where there is none
paper_low/high the paper's value, read off its text or figure as an interval; empty where the
               paper gives no number
=============  ===================================================================================
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from meanfield.config import ConfigError, apply_overrides

from ..executors import make_executor, run_jobs

__all__ = ["COLUMNS", "CONFIG_DIR", "SCALES", "Experiment", "Options", "Row", "load_raw",
           "read_results", "write_results", "write_markdown", "require", "run_cached"]

#: the columns of ``results.csv``, in order
COLUMNS = ("experiment", "quantity", "x", "ours", "ours_low", "ours_high", "paper_low",
           "paper_high")
#: the sizes every experiment ships: ``small`` runs in minutes on 2 cores, ``paper`` as published
#: (an experiment may add ``gpu``: larger than two cores afford)
SCALES = ("small", "paper")
#: where the shipped configs live (the repository's ``data/configs/reproduce``)
CONFIG_DIR = Path(__file__).resolve().parents[2] / "data" / "configs" / "reproduce"


@dataclass(frozen=True)
class Row:
    """One reported number of ``results.csv`` (``None`` or NaN: an empty cell)."""

    experiment: str
    quantity: str
    x: float | None
    ours: float
    ours_low: float | None = None
    ours_high: float | None = None
    paper_low: float | None = None
    paper_high: float | None = None

    def cells(self) -> list[str]:
        return [self.experiment, self.quantity] + [_cell(getattr(self, c)) for c in COLUMNS[2:]]


def _cell(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return repr(float(value)) if not float(value).is_integer() or abs(value) >= 1e15 else \
        str(int(value))


def write_results(rows: Iterable[Row], path: str | Path) -> Path:
    """Write ``rows`` to ``path`` as CSV with the header :data:`COLUMNS`."""
    path = Path(path)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow(row.cells())
    return path


def _num(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.4g}"


def write_markdown(rows: Iterable[Row], path: str | Path) -> Path:
    """The rows as a Markdown table (``ours [low, high]`` beside ``paper [low, high]``)."""
    lines = ["| quantity | x | ours | ours range | paper |", "|---|---|---|---|---|"]
    for r in rows:
        ours_range = (f"[{_num(r.ours_low)}, {_num(r.ours_high)}]"
                      if r.ours_low is not None else "")
        paper = (f"[{_num(r.paper_low)}, {_num(r.paper_high)}]"
                 if r.paper_low is not None or r.paper_high is not None else "")
        x = "" if r.x is None else _num(float(r.x))
        lines.append(f"| {r.quantity} | {x} | {_num(r.ours)} | {ours_range} | {paper} |")
    path = Path(path)
    path.write_text("\n".join(lines) + "\n")
    return path


def read_results(path: str | Path) -> list[dict[str, Any]]:
    """Read ``results.csv`` back: one dict per row, numbers as floats, empty cells as ``None``."""
    with Path(path).open(newline="") as fh:
        return [{k: (v if k in ("experiment", "quantity") else (float(v) if v else None))
                 for k, v in row.items()} for row in csv.DictReader(fh)]


@dataclass(frozen=True)
class Options:
    """How a reproduction runs: workers, scheduler, progress and a line reporter."""

    workers: int | None = None
    scheduler: str | None = None
    progress: bool = True
    report: Callable[[str], None] = print


@dataclass(frozen=True)
class Experiment:
    """A published experiment: its name, a one-line title, and how it runs.

    ``run(raw, scale, out_dir, options) -> rows`` receives the config table (overrides
    applied), runs the experiment, writes its figures into ``out_dir`` and returns the rows of
    ``results.csv``.
    """

    name: str
    title: str
    paper: str
    run: Callable[[dict, str, Path, Options], list[Row]]
    scales: Sequence[str] = field(default=SCALES)

    def config_path(self, scale: str) -> Path:
        return CONFIG_DIR / f"{self.name}.{scale}.toml"


def load_raw(experiment: Experiment, scale: str, overrides: Sequence[str] = ()) -> dict:
    """The experiment's config table at ``scale`` with ``overrides`` applied."""
    if scale not in experiment.scales:
        raise ConfigError(f"--scale must be one of {', '.join(experiment.scales)}, got "
                          f"{scale!r}")
    with experiment.config_path(scale).open("rb") as fh:
        raw = tomllib.load(fh)
    return apply_overrides(raw, overrides)


def require(raw: Mapping[str, Any], section: str, key: str, kind: type | tuple[type, ...],
            check: Callable[[Any], bool] = lambda v: True, what: str = "") -> Any:
    """``raw[section][key]``, or a :class:`ConfigError` naming ``section.key``."""
    table = raw.get(section)
    if not isinstance(table, Mapping) or key not in table:
        raise ConfigError(f"{section}.{key} is missing ({what})" if what else
                          f"{section}.{key} is missing")
    value = table[key]
    bad_type = isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple)
                                                         else (kind,))
    if bad_type or not isinstance(value, kind) or not check(value):
        raise ConfigError(f"{section}.{key} = {value!r} is invalid; expected {what}")
    return value


def _job_file(runs_dir: Path, params: Mapping[str, Any]) -> Path:
    text = json.dumps(params, sort_keys=True, default=str)
    digest = hashlib.sha1(text.encode()).hexdigest()[:12]
    label = "-".join(f"{k}{v}" for k, v in sorted(params.items())
                     if isinstance(v, int | float | str) and len(str(v)) <= 12)
    return runs_dir / f"{label[:80]}-{digest}.npz"


def run_cached(fn: Callable[..., dict[str, np.ndarray]], params_list: Sequence[Mapping[str, Any]],
               runs_dir: str | Path, options: Options) -> list[dict[str, np.ndarray]]:
    """Run ``fn(**params)`` for every job not yet on disk; return every job's arrays.

    Each finished job is saved at once as ``runs_dir/<params>-<hash>.npz`` (the hash covers
    every parameter, including the config text), so an interrupted reproduction continues where
    it stopped and a changed config or override recomputes only what it changes. Jobs run on
    :func:`compare.executors.make_executor` (a process pool, or a dask cluster). A failed job
    raises a :class:`RuntimeError` naming it, after the others have finished and been saved.
    """
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    files = [_job_file(runs_dir, p) for p in params_list]
    todo = [dict(p) for p, f in zip(params_list, files, strict=True) if not f.exists()]
    if todo:
        options.report(f"{len(todo)} of {len(files)} jobs to run ({len(files) - len(todo)} "
                       f"found in {runs_dir})")

        def save(result: Any) -> None:
            if result.ok:
                np.savez(_job_file(runs_dir, result.params), **result.value,
                         job_seconds=np.array(result.seconds))
                options.report(f"  done in {result.seconds:.0f} s: "
                               f"{_short(result.params)}")

        workers = options.workers if options.workers is not None else min(len(todo), 2)
        scheduler = options.scheduler if len(todo) > 1 or options.scheduler else "local"
        with make_executor(scheduler, workers) as executor:
            results = run_jobs(executor, fn, todo, on_result=save, progress=options.progress)
        failed = [r.error for r in results if not r.ok]
        if failed:
            raise RuntimeError(f"{len(failed)} job(s) failed; the first: {failed[0]}")
    out = []
    for f in files:
        with np.load(f) as data:
            out.append({k: data[k] for k in data.files})
    return out


def _short(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items() if len(str(v)) <= 20)
