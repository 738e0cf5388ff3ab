"""``meanfield run``: the PDE and the particles of one config, side by side in one HDF5 file.

A run killed at any moment leaves a readable file (see :mod:`meanfield.io`) that
``run_config(..., resume=True)`` continues from its last complete frames: ``/pde`` from its
density, ``tau``, step count and invariant records, ``/particles`` from ``theta`` of every
replica and the step count. The finished file holds the same datasets, bit for bit, as an
uninterrupted run on the same backend.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from meanfield.config import ConfigError
from meanfield.config.builders import build_run_setup
from meanfield.config.driver import pde_is_complete, run_pde_into
from meanfield.io import create_file, last_checkpoint, mark_resumed, open_file, write_root_attrs
from particles.run import build_particle_run, particles_are_complete, run_particles_into

__all__ = ["run_config", "ResumeError", "first_difference"]


class ResumeError(ConfigError):
    """A file that ``--resume`` cannot continue with this config (exit status 2)."""


def run_config(
    config: Any,
    output: str | Path,
    *,
    force: bool = False,
    progress: bool = True,
    resume: bool = False,
    report: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run every part of ``config`` (``[pde]``, ``[particles]``) into ``output``.

    Everything is built (and so checked) before the file is created: a config error leaves
    no file behind.

    Parameters
    ----------
    config : meanfield.config.Config
    output : path of the HDF5 file
    force : bool
        Overwrite an existing ``output``.
    progress : bool
        Show progress bars (only on a terminal).
    resume : bool
        Continue an existing ``output`` written with the same config and backend from its last
        complete frames; a finished file is left untouched, and a missing (or empty) one is
        started afresh.
    report : callable ``str -> None``, optional
        Receives one line per decision of a resumed run (what is resumed from where).

    Returns
    -------
    dict
        ``"pde"``: the :class:`~meanfield.pde.controller.RunSummary`, ``"particles"``: the frames
        written by this call; a part that had nothing left to do is absent.

    Raises
    ------
    ResumeError
        With ``resume``, when ``output`` is not a run of this config and backend, or holds
        frames it cannot resume; nothing is changed then.
    """
    run = build_run_setup(config)  # the model and the backends, once for both parts
    setup = run.pde
    ensemble = build_particle_run(run.particles) if run.particles is not None else None
    backend = run.backend
    report = report or (lambda line: None)
    if resume and Path(output).exists():
        if not _is_empty(output):
            return _resume(config, Path(output), setup, ensemble, progress, report)
        report(f"{output} holds no run yet: starting it")
        force = True
    elif resume:
        report(f"{output} does not exist: starting a new run")
    seed = ensemble.seed if ensemble is not None else None
    results: dict[str, Any] = {}
    with create_file(output, force=force) as f:
        write_root_attrs(
            f, config_toml=config.to_toml(), seed=seed, backend=backend.name, device=backend.device
        )
        if setup is not None:
            results["pde"] = run_pde_into(f, setup, progress=progress)
        if ensemble is not None:
            results["particles"] = run_particles_into(f, ensemble, progress=progress)
    return results


def _is_empty(path: Path) -> bool:
    """A valid HDF5 file with no attribute and no object (a run killed while creating it)."""
    try:
        with open_file(path) as f:
            return len(f) == 0 and len(f.attrs) == 0
    except OSError:
        return False


def _resume(
    config: Any,
    output: Path,
    setup: Any,
    ensemble: Any,
    progress: bool,
    report: Callable[[str], None],
) -> dict[str, Any]:
    """Check ``output`` against the run (read only), then continue what is unfinished."""
    try:
        with open_file(output) as f:
            _check_same_run(f, output, config, setup, ensemble)
            todo = _unfinished(f, output, setup, ensemble)
    except OSError as err:
        raise ResumeError(f"cannot resume {output}: {err}; --force starts it over") from err
    if not todo:
        report(f"{output} is complete: nothing to resume")
        return {}
    for line in todo.values():
        report(line)
    results: dict[str, Any] = {}
    with open_file(output, "r+") as f:
        mark_resumed(f)
        if "pde" in todo:
            results["pde"] = run_pde_into(f, setup, progress=progress, resume=True)
        if "particles" in todo:
            results["particles"] = run_particles_into(f, ensemble, progress=progress, resume=True)
    return results


def _check_same_run(f: Any, output: Path, config: Any, setup: Any, ensemble: Any) -> None:
    """Refuse a file that is not a run of ``config`` on the backends this run would use."""
    if "config" not in f.attrs or "study" in f:
        raise ResumeError(
            f"{output} is not the file of a 'meanfield run' (no run config); --force overwrites it"
        )
    stored = tomllib.loads(str(f.attrs["config"]))
    difference = first_difference(tomllib.loads(config.to_toml()), stored)
    if difference is not None:
        key, now, then = difference
        raise ResumeError(
            f"{output} was written with a different config: {key} is {_show(then)} in the "
            f"file, {_show(now)} now; --resume needs the same config and --set values "
            "(--force starts over)"
        )
    checks = [(f.attrs, (setup or ensemble).backend.name)]
    if ensemble is not None and "particles" in f:
        checks.append((f["particles"].attrs, ensemble.backend.name))
    for attrs, name in checks:
        if str(attrs.get("backend", name)) != name:
            raise ResumeError(
                f"{output} was computed on backend {attrs['backend']!r}, this "
                f"run would use {name!r}; name the backend in the config, or "
                "--force to start over"
            )
    if ensemble is not None and "particles" in f:
        engine = str(f["particles"].attrs.get("engine", "numpy"))
        if engine != ensemble.engine:
            raise ResumeError(
                f"{output} was computed with the {engine} particle engine, this "
                f"run would use the {ensemble.engine} one; set particles.engine "
                f"= {engine!r}, or --force to start over"
            )


def _unfinished(f: Any, output: Path, setup: Any, ensemble: Any) -> dict[str, str]:
    """For each unfinished part: a line saying where it resumes from."""
    todo: dict[str, str] = {}
    parts = [
        ("pde", setup, lambda: pde_is_complete(f, setup.save_times)),
        ("particles", ensemble, lambda: particles_are_complete(f, ensemble)),
    ]
    for name, part, complete in parts:
        if part is None or complete():
            continue
        times = part.save_times
        point = last_checkpoint(f[name], times) if name in f else None
        if point is None:
            if name in f and "time" in f[name] and len(f[name]["time"]) > 0:
                raise ResumeError(
                    f"/{name} of {output} holds frames but no resume checkpoint "
                    "(written by an older meanfield?); --force starts it over"
                )
            todo[name] = f"/{name}: starting from t = {times[0]:g}"
        else:
            todo[name] = (
                f"/{name}: resuming after frame {point.index + 1} of {len(times)} "
                f"(t = {times[point.index]:g})"
            )
    return todo


def first_difference(
    now: Mapping[str, Any], then: Mapping[str, Any], prefix: str = ""
) -> tuple[str, Any, Any] | None:
    """The first dotted key whose value differs between two parsed configs.

    Keys are visited in the order of ``now``, then those only in ``then``; an absent key
    reads as ``None``.

    Returns
    -------
    tuple of (key, value in ``now``, value in ``then``), or None when the two are equal
    """
    for key in [*now, *(k for k in then if k not in now)]:
        a, b = now.get(key), then.get(key)
        name = f"{prefix}{key}"
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            inner = first_difference(a, b, name + ".")
            if inner is not None:
                return inner
        elif not _same(a, b):
            return name, a, b
    return None


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def _show(value: Any) -> str:
    return "absent" if value is None else repr(value)
