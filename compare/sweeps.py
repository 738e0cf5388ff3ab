"""``meanfield sweep``: one config's PDE at several values of one key, stepped together.

``--over init.kappa=0.05,0.1,0.2`` builds the config once per value (each checked like a run
config), then steps the runs as one (:mod:`meanfield.pde.sweep`):

* keys that change only the initial law (``init.*``) give S initial laws of one equation;
* keys that change the model (``model.delta``, ``model.activation`` knots...) give stacked
  equations, which must still share the grid, the noise, ``l2`` and the scheme.

The file holds group ``/sweep``: ``density`` (time, run, *grid axes), ``risk``, ``free_energy``
and ``mass`` (time, run), with the coordinate ``run`` = the swept values and the attribute
``swept_key``. Frames are flushed as they are computed.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from meanfield.config import ConfigError, load_config
from meanfield.config.builders import PDESetup, build_pde_setup
from meanfield.io import FrameStore, create_file, write_group_attrs, write_root_attrs
from meanfield.pde.sweep import StackedPDE, SweepResult, integrate_sweep

__all__ = ["parse_over", "build_sweep", "run_sweep"]


def parse_over(text: str) -> tuple[str, list[float]]:
    """``"section.key=v1,v2,..."`` -> the key and its numeric values (at least two, distinct)."""
    key, sep, values_text = text.partition("=")
    key = key.strip()
    if not sep or key.count(".") != 1 or not all(key.split(".")):
        raise ConfigError(f"malformed --over {text!r}; expected section.key=v1,v2,...")
    values = []
    for item in values_text.split(","):
        try:
            value = tomllib.loads(f"v = {item.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(
                f"invalid value {item.strip()!r} in --over {key}; allowed: numbers "
                "separated by commas"
            )
        values.append(value)
    if len(values) < 2 or len(set(values)) != len(values):
        raise ConfigError(f"--over {key}: give at least two distinct values")
    return key, values


def build_sweep(
    config_path: str | Path, key: str, values: Sequence[float], overrides: Sequence[str] = ()
) -> tuple[Any, np.ndarray, PDESetup, Any]:
    """Check and build every run: ``(equation or StackedPDE, rho0 stack, first setup, config)``.

    Raises
    ------
    ConfigError
        For a bad value, a config without ``[pde]``, or a key that changes what the runs must
        share (grid, noise, ``l2``, scheme, output times, time change, backend, dtype, cfl).
    """
    configs = [load_config(config_path, [*overrides, f"{key}={v!r}"]) for v in values]
    if configs[0].pde is None:
        raise ConfigError("meanfield sweep runs the PDE: the config needs a [pde] section")
    if any(c.pde.get("method", "grid") != "grid" for c in configs):
        raise ConfigError(
            "pde.method = 'characteristics' with meanfield sweep: a sweep steps "
            "grid PDEs together; allowed: pde.method = 'grid' (run each "
            "characteristics config with meanfield run)"
        )
    setups = [build_pde_setup(c) for c in configs]
    first = setups[0]
    for setup, value in zip(setups[1:], values[1:], strict=True):
        shared = (
            setup.save_times == first.save_times
            and setup.time_change == first.time_change
            and setup.backend.name == first.backend.name
            and setup.cfl == first.cfl
            and setup.dtype == first.dtype
        )
        if not shared:
            raise ConfigError(
                f"--over {key}: {key} = {value!r} changes the output times, time "
                "change, backend, dtype or cfl, which the runs of a sweep share"
            )
    pdes = [s.pde for s in setups]
    if all(p == pdes[0] for p in pdes):
        equation = pdes[0]
    else:
        try:
            equation = StackedPDE(tuple(pdes))
        except ValueError as err:
            raise ConfigError(f"--over {key}: {err}") from None
    return equation, np.stack([s.rho0 for s in setups]), first, configs[0]


def run_sweep(
    config_path: str | Path,
    over: str,
    output: str | Path,
    *,
    overrides: Sequence[str] = (),
    force: bool = False,
) -> SweepResult:
    """Run the sweep ``over`` of the config at ``config_path`` into ``output`` (``/sweep``)."""
    key, values = parse_over(over)
    equation, rho0, setup, config = build_sweep(config_path, key, values, overrides)
    grid = equation.grid
    with create_file(output, force=force) as f:
        write_root_attrs(
            f,
            config_toml=config.to_toml(),
            seed=None,
            backend=setup.backend.name,
            device=setup.backend.device,
        )
        group = f.require_group("sweep")
        write_group_attrs(group, {"swept_key": key})
        coords = {
            "run": np.asarray(values, dtype=np.float64),
            **{name: grid.centres(a) for a, name in enumerate(grid.names)},
        }
        store = FrameStore(group, coords)
        dims = ("run", *grid.names)

        def on_frame(t: float, density: np.ndarray, values_: list) -> None:
            risk, free_energy, mass = values_
            store.append(
                t,
                {
                    "density": (density, dims),
                    "risk": (risk, ("run",)),
                    "free_energy": (free_energy, ("run",)),
                    "mass": (mass, ("run",)),
                },
            )

        result = integrate_sweep(
            equation,
            rho0,
            setup.save_times,
            setup.backend,
            time_change=setup.time_change,
            cfl=setup.cfl,
            dtype=setup.dtype,
            on_frame=on_frame,
        )
        write_group_attrs(group, {"n_steps": result.n_steps, "wall_time_s": result.wall_time})
    return result
