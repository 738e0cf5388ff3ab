"""What every paper reproduction shares: the pipeline, its keys, its job cache, its results table.

An :class:`Experiment` is one published experiment. A subclass declares only what is its own:

* :attr:`Experiment.keys`: its config keys beyond a run config's, per section, as
  :class:`~meanfield.fields.Field` objects (the model keys' vocabulary: type, default,
  check, help). :meth:`Experiment.check` resolves them with the model keys' error messages,
  each naming ``section.key``; the sections of a ``meanfield run`` config that the experiment
  hands to :func:`~meanfield.config.parse_config` are listed in :attr:`Experiment.run_sections`,
  and any other section is an error;
* :meth:`~Experiment.jobs` (the parameters of each job, which are its cache key),
  :attr:`~Experiment.job` (one job: a function of those parameters returning arrays) and
  :meth:`~Experiment.rows` (the numbers of ``results.csv``);
* optionally :meth:`~Experiment.plan` (more checks, values derived from the keys),
  :meth:`~Experiment.tabulate` (what the rows and the figures both read),
  :meth:`~Experiment.figures` and the report lines :meth:`~Experiment.headline` and
  :meth:`~Experiment.summary`.

:meth:`Experiment.run` is the pipeline: check every key before any work, run the jobs not yet
in ``DIR/runs`` (:func:`run_cached`), tabulate, write ``results.csv`` and ``results.md``, draw
the figures, report. The shipped config of each scale is ``<config_dir>/<name>.<scale>.toml``
(``data/configs/reproduce`` for the built-in experiments); ``--set section.key=value``
overrides apply to the whole table, as for ``meanfield run``.

Experiments are found by name (:func:`get_experiment`): the built-in ones (each module of this
package ends with :func:`register`), ``"package.module:Attribute"`` (an :class:`Experiment`
instance of your own, which ships its own configs), or an entry point of the group
:data:`ENTRY_POINT_GROUP` (``[project.entry-points."meanfield.experiments"] myexp =
"mypackage.myexp:EXPERIMENT"``), as models are.

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
import difflib
import hashlib
import json
import math
import time
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from meanfield.config import ConfigError, apply_overrides
from meanfield.config.shipped import shipped_dir
from meanfield.fields import (
    REQUIRED,
    Context,
    Derived,
    Field,
    allowed,
    int_list,
    resolve_value,
    short_repr,
    toml_kind,
    unknown_key,
)
from meanfield.plugins import Registry

from ..executors import make_executor, run_jobs

__all__ = [
    "COLUMNS",
    "CONFIG_DIR",
    "ENTRY_POINT_GROUP",
    "SCALES",
    "Experiment",
    "Job",
    "Options",
    "Row",
    "builtin_experiments",
    "entry_point_names",
    "get_experiment",
    "load_raw",
    "read_results",
    "register",
    "reproduce",
    "resolve_keys",
    "run_cached",
    "write_markdown",
    "write_results",
]

#: the columns of ``results.csv``, in order
COLUMNS = (
    "experiment",
    "quantity",
    "x",
    "ours",
    "ours_low",
    "ours_high",
    "paper_low",
    "paper_high",
)
#: the sizes every experiment ships: ``small`` runs in minutes on 2 cores, ``paper`` as published
#: (an experiment may add ``gpu``: larger than two cores afford)
SCALES = ("small", "paper")
#: where the shipped configs live (the repository's ``data/configs/reproduce``; an installed
#: wheel's copy, see :func:`meanfield.config.shipped.shipped_dir`)
CONFIG_DIR = shipped_dir() / "reproduce"
#: the entry-point group through which installed packages offer experiments
ENTRY_POINT_GROUP = "meanfield.experiments"


# ---------------------------------------------------------------------------- results table


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
        """The row as the cells of ``results.csv``, in the order of :data:`COLUMNS`."""
        return [self.experiment, self.quantity] + [_cell(getattr(self, c)) for c in COLUMNS[2:]]

    @classmethod
    def spread(
        cls,
        experiment: str,
        quantity: str,
        x: float | None,
        values: Any,
        paper: tuple[float | None, float | None] = (None, None),
    ) -> Row:
        """The median of ``values`` (one per teacher or seed) with their range as the interval,
        and the paper's interval ``paper``."""
        v = np.asarray(values, dtype=np.float64)
        return cls(
            experiment, quantity, x, float(np.median(v)), float(v.min()), float(v.max()), *paper
        )


def _cell(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return (
        repr(float(value))
        if not float(value).is_integer() or abs(value) >= 1e15
        else str(int(value))
    )


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
        ours_range = f"[{_num(r.ours_low)}, {_num(r.ours_high)}]" if r.ours_low is not None else ""
        paper = (
            f"[{_num(r.paper_low)}, {_num(r.paper_high)}]"
            if r.paper_low is not None or r.paper_high is not None
            else ""
        )
        x = "" if r.x is None else _num(float(r.x))
        lines.append(f"| {r.quantity} | {x} | {_num(r.ours)} | {ours_range} | {paper} |")
    path = Path(path)
    path.write_text("\n".join(lines) + "\n")
    return path


def read_results(path: str | Path) -> list[dict[str, Any]]:
    """Read ``results.csv`` back: one dict per row, numbers as floats, empty cells as ``None``."""
    with Path(path).open(newline="") as fh:
        return [
            {
                k: (v if k in ("experiment", "quantity") else (float(v) if v else None))
                for k, v in row.items()
            }
            for row in csv.DictReader(fh)
        ]


# ---------------------------------------------------------------------------- config keys


def widths_field(minimum: int, doc: str = "the widths n", *, sort: bool = False) -> Field:
    """The key ``study.n`` of an experiment: a non-empty list of integers ``>= minimum`` (in
    increasing order and without repeats with ``sort``)."""
    check = allowed(
        f"a non-empty list of integers >= {minimum}", lambda v: bool(v) and int_list(v, minimum)
    )
    if not sort:
        return Field(("array",), doc, check=check)
    return Field(("array",), doc, check=check, convert=lambda v, ctx: sorted(set(v)))


def resolve_keys(
    raw: Mapping[str, Any], keys: Mapping[str, Mapping[str, Field]]
) -> dict[str, dict[str, Any]]:
    """Check and convert the keys ``keys`` declares in the config table ``raw``.

    Each declared section is resolved key by key, in order (a check or a :class:`Derived`
    default sees the keys before it in ``ctx``), as :func:`~meanfield.config.parse_config`
    resolves a model's keys: an unknown key, a missing required key, a wrong type or a bad
    value is a :class:`ConfigError` naming ``section.key``. A default of ``None`` (or a
    :class:`Derived` one returning ``None``) makes a key optional: left out, it is ``None``.

    Returns
    -------
    dict
        ``section -> key -> value``, every declared key present.
    """
    ctx: Context = {}
    for section, fields in keys.items():
        table = raw.get(section, {})
        if not isinstance(table, Mapping):
            raise ConfigError(
                f"wrong type for section [{section}]: got {toml_kind(table)}, expected table"
            )
        for key in table:
            if key not in fields:
                raise unknown_key(section, key, fields)
        values = ctx[section] = {}
        for key, spec in fields.items():
            values[key] = _resolve(f"{section}.{key}", spec, table, key, ctx)
    return ctx


def _resolve(where: str, spec: Field, table: Mapping[str, Any], key: str, ctx: Context) -> Any:
    if key in table:
        value = table[key]
    else:
        value = spec.default.fn(ctx) if isinstance(spec.default, Derived) else spec.default
        if value is REQUIRED:
            raise ConfigError(f"missing required key {where!r} ({spec.doc})")
        if value is None:
            return None
    return resolve_value(where, spec, value, ctx)


# ---------------------------------------------------------------------------- the pipeline


@dataclass(frozen=True)
class Options:
    """How a reproduction runs: workers, scheduler, progress and a line reporter."""

    workers: int | None = None
    scheduler: str | None = None
    progress: bool = True
    report: Callable[[str], None] = print


@dataclass(frozen=True)
class Job:
    """One finished job: its parameters (its cache key) and the arrays it returned."""

    params: Mapping[str, Any]
    out: Mapping[str, np.ndarray]


class Experiment:
    """A published experiment: its configs, its keys, its jobs, its rows and figures.

    Subclass it, declare :attr:`keys` (and :attr:`run_sections`), set :attr:`job` and
    implement :meth:`jobs` and :meth:`rows`; the other hooks are optional. The constructor only
    stores its arguments, so one class serves several experiments (two dimensions, three
    figures).

    Parameters
    ----------
    name : str
        The name ``meanfield reproduce NAME`` takes and the ``experiment`` column of the rows.
    title, paper : str
        One line each: what is reproduced, and from which paper (``--list`` shows them).
    scales : sequence of str
        The scales shipped: ``<config_dir>/<name>.<scale>.toml`` exists for each.
    config_dir : path
        Where the configs are; an experiment outside this package ships its own.
    """

    #: the experiment's own config keys: ``section -> key -> Field``
    keys: ClassVar[Mapping[str, Mapping[str, Field]]] = {}
    #: the sections of a ``meanfield run`` config the experiment passes on (checked by
    #: :func:`~meanfield.config.parse_config` in :meth:`plan`); any other section not in
    #: :attr:`keys` is an error
    run_sections: ClassVar[tuple[str, ...]] = ()
    #: one job, ``job(**params) -> {name: array}``: a function importable by name (defined at
    #: module level or a static method of a module-level class; process pools import it)
    job: Callable[..., Mapping[str, np.ndarray]]

    def __init__(
        self,
        name: str,
        title: str,
        paper: str,
        *,
        scales: Sequence[str] = SCALES,
        config_dir: str | Path = CONFIG_DIR,
    ) -> None:
        self.name = name
        self.title = title
        self.paper = paper
        self.scales = tuple(scales)
        self.config_dir = Path(config_dir)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def config_path(self, scale: str) -> Path:
        """The shipped config of ``scale``."""
        return self.config_dir / f"{self.name}.{scale}.toml"

    # -------------------------------------------------------------- hooks

    def check(self, raw: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        """Reject unknown sections; resolve :attr:`keys` (:func:`resolve_keys`)."""
        allowed = (*self.keys, *self.run_sections)
        for section in raw:
            if section not in allowed:
                close = difflib.get_close_matches(str(section), allowed, n=1)
                hint = f"did you mean [{close[0]}]?" if close else "allowed: " + ", ".join(allowed)
                raise ConfigError(
                    f"unknown section {section!r} in experiment {self.name!r}; {hint}"
                )
        return resolve_keys(raw, self.keys)

    def plan(self, raw: dict[str, Any]) -> Any:
        """Everything the jobs, rows and figures need, every key checked (no work done yet).

        The default is :meth:`check`'s ``section -> key -> value``; override it to check the
        run sections or derive values, and raise :class:`ConfigError` naming the key.
        """
        return self.check(raw)

    def jobs(self, plan: Any) -> list[dict[str, Any]]:
        """The keyword arguments of every job; they are its cache key in ``DIR/runs``."""
        raise NotImplementedError(f"{type(self).__name__} defines no jobs")

    def tabulate(self, plan: Any, jobs: list[Job]) -> Any:
        """What :meth:`rows` and :meth:`figures` read (default: the finished jobs)."""
        return jobs

    def rows(self, plan: Any, table: Any) -> list[Row]:
        """The rows of ``results.csv``."""
        raise NotImplementedError(f"{type(self).__name__} defines no rows")

    def figures(self, plan: Any, table: Any, out_dir: Path) -> list[Path]:
        """Write the figures into ``out_dir``; return their paths (default: none)."""
        return []

    def headline(self, plan: Any) -> list[str]:
        """Lines reported before the jobs run (default: none)."""
        return []

    def summary(self, plan: Any, rows: list[Row]) -> list[str]:
        """Lines reported after the results are written (default: none)."""
        return []

    # -------------------------------------------------------------- the pipeline

    def run(
        self, raw: dict[str, Any], out_dir: str | Path, options: Options | None = None
    ) -> list[Row]:
        """Check ``raw``, run the jobs not yet done, write results and figures; return rows."""
        options = options or Options()
        plan = self.plan(raw)
        params = self.jobs(plan)
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for line in self.headline(plan):
            options.report(line)
        results = run_cached(self.job, params, out / "runs", options)
        table = self.tabulate(plan, [Job(p, r) for p, r in zip(params, results, strict=True)])
        rows = self.rows(plan, table)
        write_results(rows, out / "results.csv")
        write_markdown(rows, out / "results.md")
        for path in self.figures(plan, table, out):
            options.report(f"wrote {path}")
        for line in self.summary(plan, rows):
            options.report(line)
        return rows


def load_raw(experiment: Experiment, scale: str, overrides: Sequence[str] = ()) -> dict:
    """The experiment's config table at ``scale`` with ``overrides`` applied."""
    if scale not in experiment.scales:
        raise ConfigError(f"--scale must be one of {', '.join(experiment.scales)}, got {scale!r}")
    with experiment.config_path(scale).open("rb") as fh:
        raw = tomllib.load(fh)
    return apply_overrides(raw, overrides)


def reproduce(
    name: str,
    out_dir: str | Path,
    *,
    scale: str = "small",
    overrides: Sequence[str] = (),
    options: Options | None = None,
) -> list[Row]:
    """Run experiment ``name`` (see :func:`get_experiment`) at ``scale`` into ``out_dir``.

    Writes ``results.csv``, ``results.md``, the figures and the jobs (``out_dir/runs``); returns
    the rows of ``results.csv``.
    """
    experiment = get_experiment(name)
    raw = load_raw(experiment, scale, overrides)
    options = options or Options()
    start = time.perf_counter()
    rows = experiment.run(raw, out_dir, options)
    options.report(
        f"{experiment.name} ({scale}): {len(rows)} rows in "
        f"{Path(out_dir) / 'results.csv'}, {time.perf_counter() - start:.0f} s"
    )
    return rows


# ---------------------------------------------------------------------------- registry


def _unknown(name: Any, why: str = "") -> ConfigError:
    names = ", ".join(map(repr, REGISTRY.names()))
    why = f" ({why})" if why else ""
    return ConfigError(
        f"unknown experiment {short_repr(name)}{why}; one of {names}, or "
        "'package.module:Attribute' (meanfield reproduce --list)"
    )


#: the experiments: this package's register at import; references and entry points on demand
REGISTRY: Registry[Experiment] = Registry(
    Experiment, ENTRY_POINT_GROUP, _unknown, noun="an experiment"
)


def register(experiment: Experiment) -> Experiment:
    """Add a built-in ``experiment`` (each module of this package registers its own)."""
    if not isinstance(experiment, Experiment):
        raise TypeError(f"register needs an Experiment, got {type(experiment).__name__}")
    return REGISTRY.register(experiment, experiment.name)


def builtin_experiments() -> Mapping[str, Experiment]:
    """The built-in experiments, by name (a read-only view)."""
    return REGISTRY.builtin()


def entry_point_names() -> tuple[str, ...]:
    """Names of the experiments installed packages offer through :data:`ENTRY_POINT_GROUP`."""
    return REGISTRY.entry_point_names()


def get_experiment(name: str) -> Experiment:
    """The experiment ``name``: a built-in name, ``"module:Attribute"`` or an entry point.

    Raises
    ------
    ConfigError
        When the name is unknown, its module fails to import, or it names no
        :class:`Experiment`.
    """
    return REGISTRY.get(name)


# ---------------------------------------------------------------------------- job cache


def _job_file(runs_dir: Path, params: Mapping[str, Any]) -> Path:
    text = json.dumps(params, sort_keys=True, default=str)
    digest = hashlib.sha1(text.encode()).hexdigest()[:12]
    label = "-".join(
        f"{k}{v}"
        for k, v in sorted(params.items())
        if isinstance(v, int | float | str) and len(str(v)) <= 12
    )
    return runs_dir / f"{label[:80]}-{digest}.npz"


def run_cached(
    fn: Callable[..., Mapping[str, np.ndarray]],
    params_list: Sequence[Mapping[str, Any]],
    runs_dir: str | Path,
    options: Options,
) -> list[dict[str, np.ndarray]]:
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
        options.report(
            f"{len(todo)} of {len(files)} jobs to run ({len(files) - len(todo)} "
            f"found in {runs_dir})"
        )

        def save(result: Any) -> None:
            if result.ok:
                np.savez(
                    _job_file(runs_dir, result.params),
                    **result.value,
                    job_seconds=np.array(result.seconds),
                )
                options.report(f"  done in {result.seconds:.0f} s: {_short(result.params)}")

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
