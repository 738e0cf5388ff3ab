"""``meanfield run``: the PDE and the particles of one config, side by side in one HDF5 file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from meanfield.builders import build_pde_setup
from meanfield.driver import run_pde_into
from meanfield.io import create_file, write_root_attrs
from particles.run import build_particle_run, run_particles_into

__all__ = ["run_config"]


def run_config(config: Any, output: str | Path, *, force: bool = False,
               progress: bool = True) -> dict[str, Any]:
    """Run every part of ``config`` (``[pde]``, ``[particles]``) into ``output``.

    Everything is built (and so checked) before the file is created: a config error leaves
    no file behind.
    """
    setup = build_pde_setup(config) if config.pde is not None else None
    ensemble = build_particle_run(config) if config.particles is not None else None
    backend = setup.backend if setup is not None else ensemble.backend
    seed = ensemble.seed if ensemble is not None else None
    results: dict[str, Any] = {}
    with create_file(output, force=force) as f:
        write_root_attrs(f, config_toml=config.to_toml(), seed=seed, backend=backend.name,
                         device=backend.device)
        if setup is not None:
            results["pde"] = run_pde_into(f, setup, progress=progress)
        if ensemble is not None:
            results["particles"] = run_particles_into(f, ensemble, progress=progress)
    return results
