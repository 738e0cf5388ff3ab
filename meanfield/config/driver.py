"""Run the PDE described by a config into an HDF5 file (what ``meanfield run`` calls)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..io import create_file, last_checkpoint, truncate_frames, write_root_attrs
from ..pde.controller import ResumePoint, RunSummary, integrate
from ..pde.trackers import InvariantTracker, ProgressTracker, StorageTracker
from .builders import PDESetup, build_pde_setup

__all__ = ["run_pde", "run_pde_into", "pde_resume_point", "pde_is_complete", "SUMMARY_ATTRS"]

GROUP = "pde"
#: attributes of ``/pde`` written once the last frame is on disk
SUMMARY_ATTRS = ("n_steps", "wall_time_s", "max_mass_error", "max_free_energy_rise",
                 "min_density")


def run_pde(config: Any, output: str | Path, *, force: bool = False,
            progress: bool = True) -> RunSummary:
    """Integrate ``config``'s PDE and write group ``/pde`` of ``output``.

    Every output frame is flushed as it is written. An invariant violation raises
    :class:`~meanfield.pde.trackers.InvariantViolation` after the frames so far and the last good
    state (``/pde/last_good``) are on disk.

    Parameters
    ----------
    config : meanfield.config.Config
    output : path of the HDF5 file to create
    force : bool
        Overwrite an existing ``output``.
    progress : bool
        Show a progress bar (only on a terminal).
    """
    setup = build_pde_setup(config)
    with create_file(output, force=force) as f:
        write_root_attrs(f, config_toml=config.to_toml(), seed=None,
                         backend=setup.backend.name, device=setup.backend.device)
        return run_pde_into(f, setup, progress=progress)


def run_pde_into(f: Any, setup: PDESetup, *, progress: bool = True,
                 resume: bool = False) -> RunSummary:
    """Integrate ``setup`` into group ``/pde`` of the open HDF5 file ``f``.

    With ``resume``, a ``/pde`` group already in ``f`` is continued from its last complete
    frame (see :func:`pde_resume_point`); the finished group equals that of an uninterrupted
    run, bit for bit, except the attribute ``wall_time_s`` (the last session's wall time).
    """
    start = pde_resume_point(f, setup) if resume else None
    trackers = [InvariantTracker(), StorageTracker(f, GROUP), ProgressTracker(enabled=progress)]
    summary = integrate(setup.pde, setup.rho0, setup.save_times, setup.backend,
                        time_change=setup.time_change, cfl=setup.cfl, trackers=trackers,
                        dtype=setup.dtype, resume=start)
    invariants = trackers[0]
    f[GROUP].attrs.update(dict(zip(SUMMARY_ATTRS, (
        summary.n_steps, summary.wall_time, invariants.max_mass_error,
        invariants.max_energy_rise, invariants.min_density), strict=True)))
    f.flush()
    return summary


def pde_resume_point(f: Any, setup: PDESetup) -> ResumePoint | None:
    """Prepare ``/pde`` of ``f`` for a resumed run and return where to continue.

    The group is cut back to its last complete frame (:func:`meanfield.io.last_checkpoint`);
    a group with no committed frame is deleted (``None``: start from ``rho0``).

    Raises
    ------
    ValueError
        When ``/pde`` holds frames but no resume state for them (a file written by a
        meanfield without checkpoints, or by another program): nothing is changed.
    """
    if GROUP not in f:
        return None
    group = f[GROUP]
    point = last_checkpoint(group, setup.save_times)
    if point is None:
        if "time" in group and len(group["time"]) > 0:
            raise ValueError(f"/{GROUP} holds frames but no resume checkpoint for them")
        del f[GROUP]
        return None
    truncate_frames(group, point.index + 1)
    state = {key: float(value) for key, value in point.state.items()}
    return ResumePoint(point.index, group["density"][point.index], state.pop("tau"),
                       int(group["step"][point.index]), float(group["dt"][point.index]), state)


def pde_is_complete(f: Any, save_times: Any) -> bool:
    """Whether ``/pde`` of ``f`` holds every frame of ``save_times`` and the summary attributes."""
    if GROUP not in f:
        return False
    point = last_checkpoint(f[GROUP], save_times)
    return (point is not None and point.index == len(save_times) - 1
            and all(key in f[GROUP].attrs for key in SUMMARY_ATTRS))
