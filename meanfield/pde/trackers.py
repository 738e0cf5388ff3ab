"""Observers of a PDE run: invariants, progress, storage (the loop itself knows none of them).

Each tracker has ``initialize(run)``, ``handle_step(step)``, ``check()``,
``handle_frame(frame)``, ``handle_failure(last_good)`` and ``finalize()``; the base class makes
all of them no-ops. A tracker whose records span steps (the invariant maxima) exposes them
through ``get_state()`` and ``set_state(state)``, so that a resumed run ends with the records of
an uninterrupted one.

``handle_step`` sees every step attempt as backend arrays and must not read them on the host
(the loop would wait for the device on every step): a tracker that guards an invariant returns
a 0-d boolean array, the loop commits the step only where it holds and halts otherwise, and the
next time the host reads the clock it calls ``check()``, which raises the violation with its
message from what the tracker recorded on the device.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..backends.scalars import scalar_kernel, scalars_for

__all__ = [
    "Tracker",
    "StepInfo",
    "Frame",
    "InvariantViolation",
    "InvariantTracker",
    "ProgressTracker",
    "StorageTracker",
    "MemoryTracker",
    "observed",
]


class InvariantViolation(RuntimeError):
    """An invariant of the DD failed; the message names the step, time and quantity."""


@dataclass(frozen=True)
class StepInfo:
    """A step attempt ``n -> n + 1``: backend arrays and scalars, nothing synchronised."""

    step: Any  # index of the new state
    tau: Any  # int_0^t xi of the new state
    rho: Any  # new density (the old one where the attempt makes no step)
    previous: Any  # Functionals of the old state (from the psi of the step's first stage)
    accepted: Any  # bool: the attempt makes a step (if every guarding tracker agrees)
    xp: Any
    # scalar namespace of step, tau and accepted (:mod:`~meanfield.backends.scalars`)
    sx: Any = None


@dataclass(frozen=True)
class Frame:
    """An output frame, on the host."""

    index: int
    t: float
    step: int
    dt: float  # last physical step size (0 before the first step)
    density: np.ndarray
    risk: float
    free_energy: float
    mass: float
    tau: float = math.nan  # integrated time change int_0^t xi of the loop at the frame
    state: dict[str, float] = field(default_factory=dict)  # tracker states (``get_state``)
    points: np.ndarray | None = None  # (M, D): the characteristics solver's points


@contextmanager
def observed(trackers: Sequence[Any], last_good: Callable[[], Any]) -> Iterator[None]:
    """The end of a time loop as its trackers see it: on an :class:`InvariantViolation`, every
    tracker gets ``last_good()`` (:meth:`Tracker.handle_failure`) before the error goes on; in
    every case each tracker is finalized."""
    try:
        yield
    except InvariantViolation:
        good = last_good()
        for tracker in trackers:
            tracker.handle_failure(good)
        raise
    finally:
        for tracker in trackers:
            tracker.finalize()


@dataclass(frozen=True)
class LastGood:
    """The last state that passed every check, written on failure."""

    t: float
    step: int
    density: np.ndarray


class Tracker:
    """Base tracker: every hook does nothing."""

    def initialize(self, run: dict[str, Any]) -> None:
        """Called once with run metadata (grid, times, backend)."""

    def handle_step(self, info: StepInfo) -> Any:
        """Called on every step attempt, before it is committed (see the module docstring).

        Returns None, or a boolean of ``info.sx``: False refuses the step and halts the run.
        """
        return None

    def check(self) -> None:
        """Called when the run halted: raise :class:`InvariantViolation` if this tracker
        refused a step (with a message naming the step, time and quantity)."""

    def handle_point_step(self, info: Any) -> None:
        """Called on every accepted step of the characteristics solver with a
        :class:`~meanfield.pde.characteristics.solver.PointStep`; raise
        :class:`InvariantViolation` to stop the run before that step."""

    def handle_frame(self, frame: Frame) -> None:
        """Called at every output time."""

    def handle_failure(self, last_good: LastGood) -> None:
        """Called when the run stops on an error, with the last good state."""

    def finalize(self) -> None:
        """Called once at the end (also after a failure)."""

    def get_state(self) -> dict[str, float]:
        """Records that span steps, as stored with every frame for a resumed run (none here)."""
        return {}

    def set_state(self, state: dict[str, float]) -> None:
        """Restore what :meth:`get_state` returned (after :meth:`initialize`)."""


#: the invariant checks in the order they are applied; index + 1 is the violation's code
CHECKS = ("non-finite", "mass", "negative density", "free energy")


@dataclass
class InvariantTracker(Tracker):
    """Mass, positivity, finiteness and free-energy decrease, checked on every step.

    The checks and the records run on the device (no host read per step); a step that fails
    one is refused, the run halts before it, and :meth:`check` raises with the first failure.

    Parameters
    ----------
    mass_rtol : float
        Allowed relative drift of the mass. The flux form conserves mass exactly up to
        round-off, which grows like ``sqrt(steps) * eps``; 1e-12 leaves room for 1e6 steps.
    energy_rtol : float
        Allowed increase of the free energy between steps, relative to ``|F| + 1``: Heun's
        step dissipates for small ``dt``; only round-off (~1e-15) can make ``F`` rise.
    negative_rtol : float
        Allowed negative density, relative to ``max rho`` (round-off of exact cancellations).
    """

    mass_rtol: float = 1e-12
    energy_rtol: float = 1e-13
    negative_rtol: float = 1e-14
    _mass0: float = field(default=math.nan, init=False)

    def initialize(self, run: dict[str, Any]) -> None:
        self._mass0 = run["mass0"]
        self._t_of_tau = run.get("t_of_tau", lambda tau: tau)
        backend = run["backend"]
        self._sx = scalars_for(backend)
        self._verdict = scalar_kernel(
            backend,
            functools.partial(
                _verdict,
                cell_volume=run["grid"].cell_volume,
                mass0=self._mass0,
                mass_rtol=self.mass_rtol,
                energy_rtol=self.energy_rtol,
                negative_rtol=self.negative_rtol,
            ),
            "invariant_verdict",
        )
        self.set_state(
            {
                "previous_free_energy": math.inf,
                "max_mass_error": 0.0,
                "max_free_energy_rise": 0.0,
                "min_density": math.inf,
            }
        )

    def handle_step(self, info: StepInfo) -> Any:
        xp, sx, rho = info.xp, self._sx, info.rho
        passes, *state = self._verdict(
            info.accepted,
            info.step,
            info.tau,
            sx.scalar(info.previous.free_energy),
            sx.scalar(xp.sum(rho)),
            sx.scalar(xp.min(rho)),
            sx.scalar(xp.max(rho)),
            sx.scalar(xp.all(xp.isfinite(rho))),
            *self._records,
            self._code,
            *self._detail,
        )
        self._records, self._code, self._detail = tuple(state[:4]), state[4], tuple(state[5:])
        return passes

    def check(self) -> None:
        sx = self._sx
        code, *detail = sx.read(sx.stack([sx.to_float(v) for v in (self._code, *self._detail)]))
        if code == 0:
            return
        step, tau, energy, mass, low, high, error, rise = detail
        step = int(step)
        where = f"step {step} (t = {self._t_of_tau(tau):.6g})"
        name = CHECKS[int(code) - 1]
        if name == "non-finite":
            raise InvariantViolation(f"{where}: non-finite density or free energy")
        if name == "mass":
            raise InvariantViolation(
                f"{where}: mass {mass:.17g} drifted from {self._mass0:.17g} "
                f"(relative {error:.2e} > {self.mass_rtol:.0e})"
            )
        if name == "negative density":
            raise InvariantViolation(f"{where}: negative density {low:.3e} (max {high:.3e})")
        raise InvariantViolation(
            f"step {step - 1}: free energy increased by {rise:.3e} to {energy:.17g}"
        )

    @property
    def max_mass_error(self) -> float:
        """Largest relative drift of the mass over the steps so far."""
        return self.get_state()["max_mass_error"]

    @property
    def max_energy_rise(self) -> float:
        """Largest increase of the free energy between two steps so far (absolute: a step is
        refused when it exceeds ``energy_rtol * (|F| + 1)``)."""
        return self.get_state()["max_free_energy_rise"]

    @property
    def min_density(self) -> float:
        """Smallest cell value of the density over the steps so far."""
        return self.get_state()["min_density"]

    def get_state(self) -> dict[str, float]:
        sx = self._sx
        energy, error, rise, low = sx.read(sx.stack(self._records))
        return {
            "previous_free_energy": energy,
            "max_mass_error": error,
            "max_free_energy_rise": rise,
            "min_density": low,
        }

    def set_state(self, state: dict[str, float]) -> None:
        sx = self._sx
        self._records = tuple(
            sx.const(float(state[key]))
            for key in (
                "previous_free_energy",
                "max_mass_error",
                "max_free_energy_rise",
                "min_density",
            )
        )
        self._code = sx.const(0)
        self._detail = (sx.const(0),) + tuple(sx.const(0.0) for _ in range(7))


def _verdict(
    sx: Any,
    accepted: Any,
    step: Any,
    tau: Any,
    energy: Any,
    total: Any,
    low: Any,
    high: Any,
    finite_rho: Any,
    previous_energy: Any,
    max_error: Any,
    max_rise: Any,
    min_low: Any,
    code: Any,
    *detail: Any,
    cell_volume: float,
    mass0: float,
    mass_rtol: float,
    energy_rtol: float,
    negative_rtol: float,
) -> tuple:
    """The checks of one attempt: ``(passes, 4 records, first failure's code, its 8 details)``.

    Scalar logic (:mod:`~meanfield.backends.scalars`): the records are updated only by a step
    that is made and passes; the first failure is kept.
    """
    both, where = sx.both, sx.where
    mass = total * cell_volume
    error = sx.abs(mass - mass0) / mass0
    finite_energy = sx.isfinite(energy)
    # inf - inf would warn; a non-finite energy fails the first check anyway
    rise = where(finite_energy, energy, 0.0) - previous_energy
    failed = [
        sx.negate(both(finite_rho, finite_energy)),
        error > mass_rtol,
        low < -negative_rtol * high,
        rise > energy_rtol * (sx.abs(energy) + 1.0),
    ]
    new_code = 0 * code
    for number in range(len(CHECKS), 0, -1):  # the first failed check wins
        new_code = where(failed[number - 1], number, new_code)
    passes = new_code == 0
    take = both(accepted, passes)
    first = both(both(accepted, sx.negate(passes)), code == 0)
    found = (step, tau, energy, mass, low, high, error, rise)
    return (
        passes,
        where(take, energy, previous_energy),
        where(both(take, error > max_error), error, max_error),
        where(both(take, rise > max_rise), rise, max_rise),
        where(both(take, low < min_low), low, min_low),
        where(first, new_code, code),
        *(where(first, new, old) for new, old in zip(found, detail, strict=True)),
    )


@dataclass
class ProgressTracker(Tracker):
    """A tqdm bar over physical time, throttled by wall time, off when not on a terminal."""

    enabled: bool = True
    mininterval: float = 0.5
    desc: str = "pde"

    def initialize(self, run: dict[str, Any]) -> None:
        from tqdm.auto import tqdm  # noqa: PLC0415

        disable = not (self.enabled and sys.stderr.isatty())
        self._t = float(run.get("t_start", 0.0))  # later than 0 for a resumed run
        self._bar = tqdm(
            total=float(run["t_end"]),
            initial=self._t,
            unit="t",
            disable=disable,
            mininterval=self.mininterval,
            desc=self.desc,
            bar_format=None,
        )

    def handle_frame(self, frame: Frame) -> None:
        self._bar.update(frame.t - self._t)
        self._t = frame.t
        self._bar.set_postfix(step=frame.step, risk=f"{frame.risk:.5f}", refresh=False)

    def finalize(self) -> None:
        self._bar.close()


@dataclass
class MemoryTracker(Tracker):
    """Keeps every frame in memory (tests, notebooks)."""

    frames: list[Frame] = field(default_factory=list)
    last_good: LastGood | None = None

    def handle_frame(self, frame: Frame) -> None:
        self.frames.append(frame)

    def handle_failure(self, last_good: LastGood) -> None:
        self.last_good = last_good

    def series(self, name: str) -> np.ndarray:
        """The attribute ``name`` of every frame kept (``"risk"``, ``"t"``, ...), as an array
        with one entry per frame."""
        return np.array([getattr(f, name) for f in self.frames])


@dataclass
class StorageTracker(Tracker):
    """Appends every frame to ``/pde`` of an open HDF5 file (flushed at each frame).

    With each frame goes its resume state (``tau`` and the trackers' states, see
    :meth:`Tracker.get_state`) into ``/pde/checkpoint``; the density, ``step`` and ``dt`` of the
    frame complete it. A group holding frames of an earlier session is appended to.
    """

    file: Any  # h5py.File
    group: str = "pde"

    def initialize(self, run: dict[str, Any]) -> None:
        from ..io import FrameStore, write_group_attrs, write_points_layout  # noqa: PLC0415

        grid = run["grid"]
        coords = {name: grid.centres(axis) for axis, name in enumerate(grid.names)}
        self._names = grid.names
        self._group = self.file.require_group(self.group)
        if "n_points" in run:  # the characteristics solver: its points, their weights and
            # the refinement's report (flushed with the layout, before any frame)
            write_group_attrs(self._group, run.get("report") or {})
            coords.update(
                write_points_layout(self._group, run["weights"], grid.ndim, run.get("quantiles"))
            )
        self._store = FrameStore(self._group, coords)

    def handle_frame(self, frame: Frame) -> None:
        fields = {
            "density": (frame.density, self._names),
            "risk": (frame.risk, ()),
            "free_energy": (frame.free_energy, ()),
            "mass": (frame.mass, ()),
            "step": (frame.step, ()),
            "dt": (frame.dt, ()),
        }
        if frame.points is not None:
            fields["points"] = (frame.points, ("point", "axis"))
        self._store.append(frame.t, fields, state={"tau": frame.tau, **frame.state})

    def handle_failure(self, last_good: LastGood) -> None:
        from ..io import write_group_attrs  # noqa: PLC0415

        group = self._group.require_group("last_good")
        for key in list(group):
            del group[key]
        group.create_dataset("density", data=last_good.density)
        write_group_attrs(group, {"time": last_good.t, "step": last_good.step})
        self.file.flush()
