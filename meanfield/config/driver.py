"""Run the PDE described by a config into an HDF5 file (what ``meanfield run`` calls)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..io import (
    PDE_SUMMARY_ATTRS,
    create_file,
    last_checkpoint,
    truncate_frames,
    write_group_attrs,
    write_root_attrs,
)
from ..pde.characteristics import (
    PointResume,
    integrate_points,
    solve_with_refinement,
)
from ..pde.characteristics.refine import (
    SINGLE_PASS,
    CharacteristicsRun,
    PassReport,
    refinement_report,
)
from ..pde.controller import ResumePoint, RunSummary, integrate
from ..pde.trackers import Frame, InvariantTracker, MemoryTracker, ProgressTracker, StorageTracker
from .builders import CharacteristicsSetup, PDESetup, build_pde_setup

__all__ = [
    "run_pde",
    "run_pde_into",
    "pde_resume_point",
    "pde_is_complete",
    "PDEFrames",
    "solve_in_memory",
]

GROUP = "pde"
#: attributes of ``/pde`` written once the last frame is on disk


def run_pde(
    config: Any, output: str | Path, *, force: bool = False, progress: bool = True
) -> RunSummary:
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
        write_root_attrs(
            f,
            config_toml=config.to_toml(),
            seed=None,
            backend=setup.backend.name,
            device=setup.backend.device,
        )
        return run_pde_into(f, setup, progress=progress)


def run_pde_into(
    f: Any, setup: PDESetup | CharacteristicsSetup, *, progress: bool = True, resume: bool = False
) -> RunSummary:
    """Integrate ``setup`` into group ``/pde`` of the open HDF5 file ``f``.

    With ``resume``, a ``/pde`` group already in ``f`` is continued from its last complete
    frame (see :func:`pde_resume_point`); the finished group equals that of an uninterrupted
    run, bit for bit, except the attribute ``wall_time_s`` (the last session's wall time).
    """
    if isinstance(setup, CharacteristicsSetup):
        return _run_characteristics_into(f, setup, progress, resume)
    start = pde_resume_point(f, setup) if resume else None
    trackers = [InvariantTracker(), StorageTracker(f, GROUP), ProgressTracker(enabled=progress)]
    summary = integrate(
        setup.pde,
        setup.rho0,
        setup.save_times,
        setup.backend,
        time_change=setup.time_change,
        cfl=setup.cfl,
        trackers=trackers,
        dtype=setup.dtype,
        resume=start,
    )
    invariants = trackers[0]
    assert isinstance(invariants, InvariantTracker)
    write_group_attrs(
        f[GROUP],
        dict(
            zip(
                PDE_SUMMARY_ATTRS,
                (
                    summary.n_steps,
                    summary.wall_time,
                    invariants.max_mass_error,
                    invariants.max_energy_rise,
                    invariants.min_density,
                ),
                strict=True,
            )
        ),
    )
    f.flush()
    return summary


def _run_characteristics_into(
    f: Any, setup: CharacteristicsSetup, progress: bool, resume: bool
) -> RunSummary:
    """The characteristics solver into ``/pde``: its passes, then the final pass's frames.

    A refined run writes its frames once its last pass is done (the passes rerun from
    ``t = 0``); a run without refinement streams them, and resumes from its last frame.
    """
    storage = StorageTracker(f, GROUP)
    if resume and GROUP in f:
        start = _point_resume(f, setup)
        if start is not None:
            return _resume_points(f, setup, start, storage, progress)
    refinement = setup.refinement
    run = solve_with_refinement(
        setup.pde,
        setup.rule,
        setup.save_times,
        setup.backend,
        setup.grid,
        time_change=setup.time_change,
        refinement=refinement,
        trackers=[storage],
        pass_trackers=lambda p: [
            ProgressTracker(enabled=progress, desc=f"pde pass {p}" if refinement.enabled else "pde")
        ],
    )
    final = run.passes[-1]
    summary = run.summary
    wall = sum(p.seconds for p in run.passes)
    write_group_attrs(
        f[GROUP],
        {
            "n_steps": summary.n_steps,
            "wall_time_s": wall,
            "max_mass_error": abs(float(np.sum(run.weights)) - 1.0),
            "max_free_energy_rise": final.max_free_energy_rise,
            "max_outside_mass": final.max_outside_mass,
            "min_density": float(min(np.min(fr.density) for fr in run.frames)),
            "method": "characteristics",
            "n_points": int(run.weights.size),
            **run.report(),
        },
    )
    f.flush()
    return summary


def _point_resume(f: Any, setup: CharacteristicsSetup) -> PointResume | None:
    """Where a characteristics run in ``/pde`` continues (None: start it afresh)."""
    group = f[GROUP]
    point = last_checkpoint(group, setup.save_times)
    if point is None or "points" not in group:
        del f[GROUP]
        return None
    truncate_frames(group, point.index + 1)
    state = {key: float(value) for key, value in point.state.items()}
    return PointResume(
        point.index,
        group["points"][point.index],
        state["tau"],
        int(group["step"][point.index]),
        state["h"],
        float(group["dt"][point.index]),
    )


def _resume_points(
    f: Any, setup: CharacteristicsSetup, start: PointResume, storage: Any, progress: bool
) -> RunSummary:
    group = f[GROUP]
    weights, points0 = group["weights"][()], group["points"][0]
    quantiles = group["quantiles"][()] if "quantiles" in group else None
    invariants = setup.pde.invariants()
    invariants.set_state(
        {
            key: float(group.attrs.get(key, 0.0))
            for key in ("max_free_energy_rise", "max_outside_mass")
        }
    )
    summary = integrate_points(
        setup.pde,
        points0,
        weights,
        setup.save_times,
        setup.backend,
        setup.grid,
        time_change=setup.time_change,
        resume=start,
        quantiles=quantiles,
        trackers=[invariants, storage, ProgressTracker(enabled=progress)],
    )
    if "refinement_passes" not in group.attrs:  # a streamed run: one pass, no refinement
        write_group_attrs(
            group,
            refinement_report(
                [
                    PassReport(
                        int(weights.size),
                        summary.n_steps,
                        group["risk"][()],
                        math.nan,
                        0,
                        summary.wall_time,
                        invariants.max_free_energy_rise,
                        invariants.max_outside_mass,
                    )
                ],
                False,
                SINGLE_PASS,
            ),
        )
    write_group_attrs(
        group,
        {
            "n_steps": summary.n_steps,
            "wall_time_s": summary.wall_time,
            "max_mass_error": abs(float(np.sum(weights)) - 1.0),
            "max_free_energy_rise": invariants.max_free_energy_rise,
            "max_outside_mass": invariants.max_outside_mass,
            "min_density": float(np.min(group["density"][()])),
            "method": "characteristics",
            "n_points": int(weights.size),
        },
    )
    f.flush()
    return summary


@dataclass
class PDEFrames:
    """A PDE run kept in memory: its setup, its frames, and (characteristics) the run itself.

    Attributes
    ----------
    setup : PDESetup or CharacteristicsSetup
    frames : list of Frame
    run : CharacteristicsRun or None
        The characteristics solver's final pass (its points, weights and step record, for the
        reverse pass); None on the grid.
    """

    setup: Any
    frames: list[Frame] = field(default_factory=list)
    run: CharacteristicsRun | None = None

    @property
    def method(self) -> str:
        return self.setup.method

    def series(self, name: str) -> np.ndarray:
        return np.array([getattr(f, name) for f in self.frames])

    def quadrature(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Points ``(M, D)`` and weights ``(M,)`` of frame ``index``: the points and their
        weights (characteristics), or the cell centres and masses (grid)."""
        frame = self.frames[index]
        if self.run is not None:
            assert frame.points is not None, "a characteristics frame holds its points"
            return frame.points, self.run.weights
        grid = self.setup.grid
        return grid.points(), np.asarray(frame.density).reshape(-1) * grid.cell_volume


def solve_in_memory(setup: PDESetup | CharacteristicsSetup, *, progress: bool = False) -> PDEFrames:
    """Run ``setup``'s PDE and keep its frames in memory (studies, reproductions)."""
    if isinstance(setup, CharacteristicsSetup):
        run = solve_with_refinement(
            setup.pde,
            setup.rule,
            setup.save_times,
            setup.backend,
            setup.grid,
            time_change=setup.time_change,
            refinement=setup.refinement,
            pass_trackers=lambda p: [ProgressTracker(enabled=progress, desc=f"pde pass {p}")],
        )
        return PDEFrames(setup, list(run.frames), run)
    mem = MemoryTracker()
    integrate(
        setup.pde,
        setup.rho0,
        setup.save_times,
        setup.backend,
        time_change=setup.time_change,
        cfl=setup.cfl,
        trackers=[mem],
    )
    return PDEFrames(setup, mem.frames)


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
    return ResumePoint(
        point.index,
        group["density"][point.index],
        state.pop("tau"),
        int(group["step"][point.index]),
        float(group["dt"][point.index]),
        state,
    )


def pde_is_complete(f: Any, save_times: Any) -> bool:
    """Whether ``/pde`` of ``f`` holds every frame of ``save_times`` and the summary attributes."""
    if GROUP not in f:
        return False
    point = last_checkpoint(f[GROUP], save_times)
    return (
        point is not None
        and point.index == len(save_times) - 1
        and all(key in f[GROUP].attrs for key in PDE_SUMMARY_ATTRS)
    )
