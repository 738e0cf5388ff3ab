"""Observers of a PDE run: invariants, progress, storage (the loop itself knows none of them).

Each tracker has ``initialize(run)``, ``handle_step(step)``, ``handle_frame(frame)``,
``handle_failure(last_good)`` and ``finalize()``; the base class makes all of them no-ops. A
tracker whose records span steps (the invariant maxima) exposes them through ``get_state()`` and
``set_state(state)``, so that a resumed run ends with the records of an uninterrupted one.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .backend import to_numpy

__all__ = [
    "Tracker",
    "StepInfo",
    "Frame",
    "InvariantViolation",
    "InvariantTracker",
    "ProgressTracker",
    "StorageTracker",
    "MemoryTracker",
]


class InvariantViolation(RuntimeError):
    """An invariant of the DD failed; the message names the step, time and quantity."""


@dataclass(frozen=True)
class StepInfo:
    """An accepted step ``n -> n + 1`` (backend arrays; nothing is synchronised here)."""

    step: int  # index of the new state
    t: float  # physical time of the new state
    rho: Any  # new density
    previous: Any  # Functionals of the old state (from the psi of the step's first stage)
    xp: Any


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

    def handle_step(self, info: StepInfo) -> None:
        """Called after every accepted step; may raise :class:`InvariantViolation`."""

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


@dataclass
class InvariantTracker(Tracker):
    """Mass, positivity, finiteness and free-energy decrease, checked on every step.

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
    _energy: float = field(default=math.inf, init=False)
    max_mass_error: float = field(default=0.0, init=False)
    max_energy_rise: float = field(default=0.0, init=False)
    min_density: float = field(default=math.inf, init=False)

    def handle_step(self, info: StepInfo) -> None:
        xp = info.xp
        rho = info.rho
        values = xp.stack([
            info.previous.free_energy,
            xp.sum(rho),
            xp.min(rho),
            xp.max(rho),
            xp.astype(xp.all(xp.isfinite(rho)), rho.dtype),
        ])
        energy, total, low, high, finite = (float(v) for v in to_numpy(values))
        where = f"step {info.step} (t = {info.t:.6g})"
        if finite != 1.0 or not math.isfinite(energy):
            raise InvariantViolation(f"{where}: non-finite density or free energy")
        mass = total * self._cell_volume
        error = abs(mass - self._mass0) / self._mass0
        self.max_mass_error = max(self.max_mass_error, error)
        if error > self.mass_rtol:
            raise InvariantViolation(
                f"{where}: mass {mass:.17g} drifted from {self._mass0:.17g} "
                f"(relative {error:.2e} > {self.mass_rtol:.0e})")
        self.min_density = min(self.min_density, low)
        if low < -self.negative_rtol * high:
            raise InvariantViolation(f"{where}: negative density {low:.3e} (max {high:.3e})")
        rise = energy - self._energy
        self.max_energy_rise = max(self.max_energy_rise, rise)
        if rise > self.energy_rtol * (abs(energy) + 1.0):
            raise InvariantViolation(
                f"step {info.step - 1}: free energy increased by {rise:.3e} to {energy:.17g}")
        self._energy = energy

    def initialize(self, run: dict[str, Any]) -> None:
        self._cell_volume = run["grid"].cell_volume
        self._mass0 = run["mass0"]

    def get_state(self) -> dict[str, float]:
        return {"previous_free_energy": self._energy, "max_mass_error": self.max_mass_error,
                "max_free_energy_rise": self.max_energy_rise, "min_density": self.min_density}

    def set_state(self, state: dict[str, float]) -> None:
        self._energy = float(state["previous_free_energy"])
        self.max_mass_error = float(state["max_mass_error"])
        self.max_energy_rise = float(state["max_free_energy_rise"])
        self.min_density = float(state["min_density"])


@dataclass
class ProgressTracker(Tracker):
    """A tqdm bar over physical time, throttled by wall time, off when not on a terminal."""

    enabled: bool = True
    mininterval: float = 0.5

    def initialize(self, run: dict[str, Any]) -> None:
        from tqdm.auto import tqdm  # noqa: PLC0415

        disable = not (self.enabled and sys.stderr.isatty())
        self._t = float(run.get("t_start", 0.0))  # later than 0 for a resumed run
        self._bar = tqdm(total=float(run["t_end"]), initial=self._t, unit="t", disable=disable,
                         mininterval=self.mininterval, desc="pde", bar_format=None)

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
        from .io import FrameStore  # noqa: PLC0415

        grid = run["grid"]
        coords = {name: grid.centres(axis) for axis, name in enumerate(grid.names)}
        self._names = grid.names
        self._group = self.file.require_group(self.group)
        self._store = FrameStore(self._group, coords)

    def handle_frame(self, frame: Frame) -> None:
        self._store.append(frame.t, {
            "density": (frame.density, self._names),
            "risk": (frame.risk, ()),
            "free_energy": (frame.free_energy, ()),
            "mass": (frame.mass, ()),
            "step": (frame.step, ()),
            "dt": (frame.dt, ()),
        }, state={"tau": frame.tau, **frame.state})

    def handle_failure(self, last_good: LastGood) -> None:
        group = self._group.require_group("last_good")
        for key in list(group):
            del group[key]
        group.create_dataset("density", data=last_good.density)
        group.attrs["time"] = last_good.t
        group.attrs["step"] = last_good.step
        self.file.flush()
