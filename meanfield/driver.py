"""Run the PDE described by a config into an HDF5 file (what ``meanfield run`` calls)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .builders import PDESetup, build_pde_setup
from .controller import RunSummary, integrate
from .io import create_file, write_root_attrs
from .trackers import InvariantTracker, ProgressTracker, StorageTracker

__all__ = ["run_pde", "run_pde_into"]


def run_pde(config: Any, output: str | Path, *, force: bool = False,
            progress: bool = True) -> RunSummary:
    """Integrate ``config``'s PDE and write group ``/pde`` of ``output``.

    Every output frame is flushed as it is written. An invariant violation raises
    :class:`~meanfield.trackers.InvariantViolation` after the frames so far and the last good
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


def run_pde_into(f: Any, setup: PDESetup, *, progress: bool = True) -> RunSummary:
    """Integrate ``setup`` into group ``/pde`` of the open HDF5 file ``f``."""
    trackers = [InvariantTracker(), StorageTracker(f), ProgressTracker(enabled=progress)]
    summary = integrate(setup.pde, setup.rho0, setup.save_times, setup.backend,
                        time_change=setup.time_change, cfl=setup.cfl, trackers=trackers,
                        dtype=setup.dtype)
    invariants = trackers[0]
    f["pde"].attrs.update({
        "n_steps": summary.n_steps,
        "wall_time_s": summary.wall_time,
        "max_mass_error": invariants.max_mass_error,
        "max_free_energy_rise": invariants.max_energy_rise,
        "min_density": invariants.min_density,
    })
    return summary
