"""The time loop: step the PDE to each output time and hand the run to the trackers.

At an output time the loop carries only the density, ``tau = int_0^t xi``, the step count and
the last step size: each step's size comes from the density alone (the CFL bound, clipped to
the next output time), so these, with the trackers' records, are the whole state a resumed run
needs (:class:`ResumePoint`).

Between output times the loop does not wait for the device on every step: step sizes, retries
and the trackers' checks are decided on the device (:mod:`~meanfield.pde.solvers.heun`), and the
host reads the clock once per block of attempts (:class:`Loop`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..backends.arrays import Backend, to_numpy
from ..backends.scalars import scalars_for
from ..schedules import TimeChange
from .equation import MeanFieldPDE
from .solvers import STEPPERS
from .solvers.heun import initial_carry
from .trackers import Frame, InvariantViolation, LastGood, StepInfo, Tracker, observed

__all__ = ["integrate", "Loop", "RunSummary", "ResumePoint", "SYNC_EVERY"]

#: default most step attempts between two reads of the clock from the device
SYNC_EVERY = 32


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
        The merged :meth:`~meanfield.pde.trackers.Tracker.get_state` of the trackers.
    """

    index: int
    rho: np.ndarray
    tau: float
    step: int
    dt: float
    tracker_states: Mapping[str, float] = field(default_factory=dict)


def integrate(
    pde: MeanFieldPDE,
    rho0: np.ndarray,
    save_times: Sequence[float],
    backend: Backend,
    *,
    time_change: TimeChange | None = None,
    cfl: float = 0.8,
    trackers: Sequence[Tracker] = (),
    stepper: str = "heun",
    dtype: Any = None,
    resume: ResumePoint | None = None,
    sync_every: int = SYNC_EVERY,
) -> RunSummary:
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
        Observers; a tracker that refuses a step stops the run (its :meth:`Tracker.check`
        raises :class:`InvariantViolation`) after every tracker has seen the last good state.
    resume : ResumePoint, optional
        Continue from a frame of an earlier run of the same problem instead of ``rho0``
        (which still fixes the reference mass): the frames after ``resume.index`` are
        emitted, bit for bit those of an uninterrupted run. ``RunSummary.wall_time`` counts
        this call only.
    sync_every : int
        Most step attempts between two reads of the clock from the device (see
        :class:`Loop`); it changes no result, only how often the host waits for the device.
    """
    time_change = time_change or TimeChange()
    save_times = [float(t) for t in save_times]
    if any(b <= a for a, b in zip(save_times, save_times[1:], strict=False)) or save_times[0] < 0:
        raise ValueError("save_times must be increasing and non-negative")
    rhs = pde.make_rhs(backend, dtype)
    functionals = pde.make_functionals(backend, dtype)
    mass0 = float(np.sum(rho0)) * pde.grid.cell_volume
    first = 0 if resume is None else resume.index + 1
    run = {
        "grid": pde.grid,
        "t_end": save_times[-1],
        "backend": backend,
        "mass0": mass0,
        "t_start": save_times[first - 1] if first > 0 else 0.0,
        "t_of_tau": lambda tau: float(time_change.t_of_tau(tau)),
    }
    for tracker in trackers:
        tracker.initialize(run)
    wall = time.perf_counter()
    start = (rho0, 0.0, 0) if resume is None else (resume.rho, resume.tau, resume.step)
    loop = Loop(
        backend.asarray(start[0], dtype),
        float(start[1]),
        int(start[2]),
        rhs,
        cfl,
        functionals,
        time_change,
        backend,
        stepper,
        sync_every,
    )
    if resume is not None:
        _restore(trackers, resume.tracker_states)
        loop.dt = float(resume.dt)
        frame = _frame(resume.index, save_times[resume.index], loop, trackers)

    def last_good() -> LastGood:
        return LastGood(float(time_change.t_of_tau(loop.tau)), loop.step, to_numpy(loop.carry.rho))

    with observed(trackers, last_good):
        for index in range(first, len(save_times)):
            t_out = save_times[index]
            loop.advance(float(time_change.tau(t_out)), trackers)
            frame = _frame(index, t_out, loop, trackers)
            for tracker in trackers:
                tracker.handle_frame(frame)
    return RunSummary(loop.step, save_times[-1], time.perf_counter() - wall, frame)


class Loop:
    """The stepping state: a :class:`~meanfield.pde.solvers.heun.Carry` on the device, and the
    clock as the host last read it.

    :meth:`advance` makes blocks of step attempts without looking at their results, then reads
    ``tau``, the step count and the halt flag in one transfer. A block is ``sync_every``
    attempts, shortened near an output time to half the steps the last step size says are left,
    so that few attempts are wasted as no-ops past it; a run of S steps waits for the device
    about ``S / sync_every`` times plus ``log2(sync_every)`` times per frame.

    Attributes
    ----------
    tau, tau_prev, step : the clock at the last read (``tau_prev``: before the last step)
    dt : last physical step size (0 before the first step)
    attempts : step attempts made (committed, rejected, or no-ops past the output time)
    syncs : reads of the clock
    """

    def __init__(
        self,
        rho: Any,
        tau: float,
        step: int,
        rhs: Any,
        cfl: float,
        functionals: Any,
        time_change: TimeChange,
        backend: Backend,
        stepper: str = "heun",
        sync_every: int = SYNC_EVERY,
    ) -> None:
        if sync_every < 1:
            raise ValueError(f"sync_every must be at least 1, got {sync_every}")
        self.sx = scalars_for(backend)
        self.propose, self.commit = STEPPERS[stepper](rhs, cfl, backend)
        self.carry = initial_carry(rho, tau, step, self.sx)
        self.functionals, self.time_change, self.xp = functionals, time_change, backend.xp
        self.sync_every = sync_every
        self.tau, self.tau_prev, self.step, self.dt = tau, tau, step, 0.0
        self.attempts = self.syncs = 0

    def advance(self, tau_out: float, trackers: Sequence[Tracker] = ()) -> None:
        """Step until ``tau`` equals ``tau_out`` exactly."""
        target = self.sx.const(float(tau_out))
        while self.tau < tau_out:
            for _ in range(self._block(tau_out)):
                self._attempt(target, trackers)
            if self._read():
                for tracker in trackers:
                    tracker.check()
                t = float(self.time_change.t_of_tau(self.tau))
                raise InvariantViolation(
                    f"step {self.step + 1} (t = {t:.6g}): the run halted: the time step fell to "
                    "zero or the time became non-finite, or a tracker refused the step without "
                    "raising from check()"
                )

    def _block(self, tau_out: float) -> int:
        """Attempts until the next read: half the steps the last step size leaves (at least 1,
        at most ``sync_every``), so that a rate that falls, lengthening the steps, seldom
        leaves attempts past the output time: those cost a whole step each, a read much less."""
        last = self.tau - self.tau_prev
        if not last > 0:
            return 1
        return int(min(self.sync_every, max(1.0, math.floor(0.5 * (tau_out - self.tau) / last))))

    def _attempt(self, target: Any, trackers: Sequence[Tracker]) -> None:
        carry = self.carry
        proposal = self.propose(carry, target)
        passes = None
        if trackers:  # the functionals are for the trackers only (a sweep has none)
            previous = self.functionals(carry.rho, proposal.start.psi)
            info = StepInfo(
                carry.step + 1,
                proposal.tau,
                proposal.rho,
                previous,
                proposal.accepted,
                self.xp,
                self.sx,
            )
            for tracker in trackers:
                verdict = tracker.handle_step(info)
                if verdict is not None:
                    passes = verdict if passes is None else self.sx.both(passes, verdict)
        self.carry = self.commit(carry, proposal, passes)
        self.attempts += 1

    def _read(self) -> bool:
        """Read the clock from the device; return the halt flag."""
        sx, carry = self.sx, self.carry
        values = sx.read(
            sx.stack(
                [carry.tau, carry.tau_prev, sx.to_float(carry.step), sx.to_float(carry.halted)]
            )
        )
        step = int(values[2])
        if step != self.step:
            self.tau, self.tau_prev, self.step = float(values[0]), float(values[1]), step
            self.dt = float(self.time_change.t_of_tau(self.tau)) - float(
                self.time_change.t_of_tau(self.tau_prev)
            )
        self.syncs += 1
        return bool(values[3])


def _frame(index: int, t: float, loop: Loop, trackers: Sequence[Tracker]) -> Frame:
    rho = loop.carry.rho
    risk, free_energy, mass = (float(v) for v in to_numpy(loop.xp.stack(loop.functionals(rho))))
    return Frame(
        index,
        t,
        loop.step,
        loop.dt,
        to_numpy(rho).copy(),
        risk,
        free_energy,
        mass,
        float(loop.tau),
        _tracker_states(trackers),
    )


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
