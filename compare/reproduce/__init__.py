"""``meanfield reproduce``: the published experiments, each from one command.

One module per experiment, each exposing an :class:`~compare.reproduce.base.Experiment`;
:data:`EXPERIMENTS` lists them by name. :func:`reproduce` loads the shipped config of a scale
(``data/configs/reproduce/<name>.<scale>.toml``), applies ``--set`` overrides, runs the
experiment into a directory and writes ``results.csv`` there (and the same table as
``results.md``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from meanfield.config import ConfigError

from . import mmn, rve_kernel, rve_pspin
from .base import COLUMNS, SCALES, Experiment, Options, Row, load_raw, read_results, write_markdown

__all__ = ["COLUMNS", "EXPERIMENTS", "SCALES", "Experiment", "Options", "Row", "read_results",
           "reproduce"]

EXPERIMENTS: dict[str, Experiment] = {
    e.name: e for e in (rve_pspin.EXPERIMENT, rve_pspin.EXPERIMENT_D25, rve_kernel.EXPERIMENT,
                        *mmn.EXPERIMENTS.values())}


def reproduce(name: str, out_dir: str | Path, *, scale: str = "small",
              overrides: Sequence[str] = (), options: Options | None = None) -> list[Row]:
    """Run experiment ``name`` at ``scale`` into ``out_dir``; return the rows of results.csv."""
    if name not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {name!r}; one of {', '.join(EXPERIMENTS)} "
                          "(meanfield reproduce --list)")
    experiment = EXPERIMENTS[name]
    raw = load_raw(experiment, scale, overrides)
    options = options or Options()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    rows = experiment.run(raw, scale, out, options)
    write_markdown(rows, out / "results.md")
    options.report(f"{name} ({scale}): {len(rows)} rows in {out / 'results.csv'}, "
                   f"{time.perf_counter() - start:.0f} s")
    return rows
