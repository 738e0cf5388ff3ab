"""The time loop: step the PDE to each output time and hand the run to the trackers.

At an output time the loop carries only the density, ``tau = int_0^t xi``, the step count and
the last step size: each step's size comes from the density alone (the CFL bound, clipped to
the next output time), so these, with the trackers' records, are the whole state a resumed run
needs (:class:`ResumePoint`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .backend import Backend, to_numpy
from .equation import MeanFieldPDE
from .schedules import TimeChange
from .solvers import STEPPERS
from .trackers import Frame, InvariantViolation, LastGood, StepInfo, Tracker

__all__ = ["integrate", "advance", "RunSummary", "ResumePoint"]


@dataclass(frozen=True)
class RunSummary:
    """What a finished run reports."""

    n_steps: int
    t_end: float
    wall_time: float
    final: Frame


@dataclass(frozen=True)
class ResumePoint:
    """The state of the loop at output frame ``index``, from which :func:`integrate` continues.

    Attributes
    ----------
    index : int
        The frame already written; the run goes on to ``save_times[index + 1]``.
    rho : NumPy array of shape ``pde.grid.shape``
        The density of that frame.
    tau : float
        ``int_0^t xi`` as the loop held it.
    step : int
        Steps taken.
    dt : float
        Last physical step size.
    tracker_states : Mapping of str to float
        The merged :meth:`~meanfield.trackers.Tracker.get_state` of the trackers.
    """

    index: int
    rho: np.ndarray
    tau: float
    step: int
    dt: float
    tracker_states: Mapping[str, float] = field(default_factory=dict)


def integrate(pde: MeanFieldPDE, rho0: np.ndarray, save_times: Sequence[float],
              backend: Backend, *, time_change: TimeChange | None = None, cfl: float = 0.8,
              trackers: Sequence[Tracker] = (), stepper: str = "heun",
              dtype: Any = None, resume: ResumePoint | None = None) -> RunSummary:
    """Integrate the DD from ``rho0`` and emit a frame at each of ``save_times``.

    Parameters
    ----------
    pde : MeanFieldPDE
    rho0 : NumPy array of shape ``pde.grid.shape``
        Initial cell averages.
    save_times : increasing sequence of physical times ``>= 0``
    backend : Backend
    time_change : TimeChange, optional
        ``xi(t)``; constant 1 by default. The loop runs in ``tau = int xi`` (exact).
    cfl : float
        Fraction of the positivity bound used for the step.
    trackers : sequence of Tracker
        Observers; an :class:`InvariantViolation` raised by one stops the run after every
        tracker has seen the last good state.
    resume : ResumePoint, optional
        Continue from a frame of an earlier run of the same problem instead of ``rho0``
        (which still fixes the reference mass): the frames after ``resume.index`` are
        emitted, bit for bit those of an uninterrupted run. ``RunSummary.wall_time`` counts
        this call only.
    """
    time_change = time_change or TimeChange()
    save_times = [float(t) for t in save_times]
    if any(b <= a for a, b in zip(save_times, save_times[1:], strict=False)) or save_times[0] < 0:
        raise ValueError("save_times must be increasing and non-negative")
    xp = backend.xp
    rhs = pde.make_rhs(backend, dtype)
    functionals = pde.make_functionals(backend, dtype)
    step_fn = STEPPERS[stepper](rhs, cfl)
    rho = backend.asarray(rho0, dtype)
    mass0 = float(np.sum(rho0)) * pde.grid.cell_volume
    first = 0 if resume is None else resume.index + 1
    run = {"grid": pde.grid, "t_end": save_times[-1], "backend": backend, "mass0": mass0,
           "t_start": save_times[first - 1] if first > 0 else 0.0}
    for tracker in trackers:
        tracker.initialize(run)
    wall = time.perf_counter()
    state = {"rho": rho, "tau": 0.0, "step": 0, "dt": 0.0}
    if resume is not None:
        state = {"rho": backend.asarray(resume.rho, dtype), "tau": float(resume.tau),
                 "step": int(resume.step), "dt": float(resume.dt)}
        _restore(trackers, resume.tracker_states)
        frame = _frame(resume.index, save_times[resume.index], state, functionals, trackers)
    try:
        for index in range(first, len(save_times)):
            t_out = save_times[index]
            advance(state, float(time_change.tau(t_out)), step_fn, functionals, time_change,
                     trackers, xp)
            frame = _frame(index, t_out, state, functionals, trackers)
            for tracker in trackers:
                tracker.handle_frame(frame)
    except InvariantViolation:
        last_good = LastGood(float(time_change.t_of_tau(state["tau"])), state["step"],
                             to_numpy(state["rho"]))
        for tracker in trackers:
            tracker.handle_failure(last_good)
        raise
    finally:
        for tracker in trackers:
            tracker.finalize()
    return RunSummary(state["step"], save_times[-1], time.perf_counter() - wall, frame)


def advance(state: dict, tau_out: float, step_fn: Any, functionals: Any,
             time_change: TimeChange, trackers: Sequence[Tracker], xp: Any) -> None:
    """Step ``state`` until its ``tau`` equals ``tau_out`` exactly."""
    while state["tau"] < tau_out:
        remaining = tau_out - state["tau"]
        result = step_fn(state["rho"], remaining)
        # equal-step spreading makes the last step land on tau_out up to round-off: snap to it
        tau_new = tau_out if result.dt >= remaining * (1.0 - 1e-9) else state["tau"] + result.dt
        t_old = float(time_change.t_of_tau(state["tau"]))
        t_new = float(time_change.t_of_tau(tau_new))
        if trackers:  # the functionals are for the trackers only (a sweep has none)
            previous = functionals(state["rho"], result.start.psi)
            info = StepInfo(state["step"] + 1, t_new, result.rho, previous, xp)
            for tracker in trackers:
                tracker.handle_step(info)
        state.update(rho=result.rho, tau=tau_new, step=state["step"] + 1, dt=t_new - t_old)
        if not math.isfinite(tau_new):
            raise InvariantViolation(f"step {state['step']}: time became non-finite")


def _frame(index: int, t: float, state: dict, functionals: Any,
           trackers: Sequence[Tracker]) -> Frame:
    values = functionals(state["rho"])
    risk, free_energy, mass = (float(to_numpy(v)) for v in values)
    return Frame(index, t, state["step"], state["dt"], to_numpy(state["rho"]).copy(),
                 risk, free_energy, mass, float(state["tau"]), _tracker_states(trackers))


def _tracker_states(trackers: Sequence[Tracker]) -> dict[str, float]:
    """The trackers' records merged into one dict (names must not clash)."""
    merged: dict[str, float] = {}
    for tracker in trackers:
        for key, value in tracker.get_state().items():
            if key in merged:
                raise ValueError(f"two trackers record a state named {key!r}")
            merged[key] = float(value)
    return merged


def _restore(trackers: Sequence[Tracker], states: Mapping[str, float]) -> None:
    """Hand each tracker the part of ``states`` that its :meth:`get_state` names."""
    for tracker in trackers:
        names = tracker.get_state()
        if names:
            missing = sorted(set(names) - set(states))
            if missing:
                raise ValueError(f"resume state lacks {', '.join(missing)}")
            tracker.set_state({key: states[key] for key in names})
