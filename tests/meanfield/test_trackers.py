"""Invariant trackers: each violation is detected, named, and the last good state is kept."""

from __future__ import annotations

import math

import numpy as np
import pytest

from meanfield.backend import get_backend
from meanfield.controller import integrate
from meanfield.equation import Functionals, MeanFieldPDE
from meanfield.grid import Grid
from meanfield.io import create_file, load
from meanfield.model import NormalLaw, QuadraticPotential, initial_density
from meanfield.trackers import (
    InvariantTracker,
    InvariantViolation,
    MemoryTracker,
    StepInfo,
    StorageTracker,
    Tracker,
)

GRID = Grid(((0.0, 1.0),), (4,))


def _tracker() -> InvariantTracker:
    tracker = InvariantTracker()
    tracker.initialize({"grid": GRID, "mass0": 1.0})
    return tracker


def _step(tracker: InvariantTracker, rho: list[float], energy: float, step: int = 1) -> None:
    xp = get_backend("numpy").xp
    prev = Functionals(xp.asarray(2 * energy), xp.asarray(energy), xp.asarray(1.0))
    tracker.handle_step(StepInfo(step, 0.25 * step, xp.asarray(rho), prev, xp))


def test_good_steps_pass_and_are_recorded() -> None:
    tracker = _tracker()
    _step(tracker, [1.0, 1.0, 1.0, 1.0], 0.5, 1)
    _step(tracker, [0.0, 2.0, 2.0, 0.0], 0.4, 2)
    assert tracker.max_mass_error == 0.0 and tracker.min_density == 0.0


@pytest.mark.parametrize(("rho", "energy", "match"), [
    ([1.0, 1.0, 1.0, 1.0 + 1e-9], 0.5, "mass"),
    ([1.5, 1.0, 1.0, 0.5 - 1e-3 + 1e-3], 0.5, None),
    ([2.0, 1.0, 1.01, -0.01], 0.5, "negative density"),
    ([1.0, math.nan, 1.0, 1.0], 0.5, "non-finite"),
    ([1.0, 1.0, 1.0, 1.0], math.inf, "non-finite"),
])
def test_each_violation_is_named(rho: list[float], energy: float, match: str | None) -> None:
    tracker = _tracker()
    if match is None:
        _step(tracker, rho, energy)
        return
    with pytest.raises(InvariantViolation, match=match) as info:
        _step(tracker, rho, energy, step=7)
    assert "step 7" in str(info.value) and "t = 1.75" in str(info.value)


def test_free_energy_increase_is_caught() -> None:
    tracker = _tracker()
    _step(tracker, [1.0] * 4, 0.5, 1)
    _step(tracker, [1.0] * 4, 0.5 + 1e-15, 2)  # round-off: allowed (1e-13 relative)
    with pytest.raises(InvariantViolation, match="free energy increased"):
        _step(tracker, [1.0] * 4, 0.5 + 1e-9, 3)


class _FailAt(Tracker):
    """Raises at a given step, as an invariant check would."""

    def __init__(self, step: int) -> None:
        self.step = step

    def handle_step(self, info: StepInfo) -> None:
        if info.step == self.step:
            raise InvariantViolation(f"step {info.step} (t = {info.t:.6g}): injected")


def test_violation_keeps_frames_and_last_good_state_on_disk(tmp_path) -> None:
    grid = Grid(((-4.0, 5.0),), (90,))
    pde = MeanFieldPDE(QuadraticPotential(), grid, beta=3.0)
    rho0 = initial_density(NormalLaw((1.0,), (0.5,)), grid)
    path = tmp_path / "run.h5"
    mem = MemoryTracker()
    with create_file(path) as f, pytest.raises(InvariantViolation, match="step 40"):
        integrate(pde, rho0, np.linspace(0, 1, 11), get_backend("numpy"),
                  trackers=[StorageTracker(f), mem, _FailAt(40)])
    data = load(path)
    n_frames = len(mem.frames)
    assert 1 <= n_frames < 11
    np.testing.assert_array_equal(data.groups["pde"]["time"], [fr.t for fr in mem.frames])
    np.testing.assert_array_equal(data.groups["pde"]["density"][-1], mem.frames[-1].density)
    assert data.group_attrs["pde/last_good"]["step"] == 39 == mem.last_good.step
    np.testing.assert_array_equal(data.groups["pde/last_good"]["density"], mem.last_good.density)


def test_non_finite_potential_stops_the_run() -> None:
    """A model that produces NaN is stopped at the first step, naming the quantity."""
    from meanfield.model import FeatureModel

    grid = Grid(((-1.0, 1.0),), (20,))
    model = FeatureModel(lambda q: np.where(q[:, 0] > 0.5, np.nan, q[:, 0]))
    pde = MeanFieldPDE(model, grid)
    rho0 = initial_density(NormalLaw((-0.3,), (0.08,)), grid)
    with pytest.raises(InvariantViolation, match="step 1 .*non-finite"):
        integrate(pde, rho0, [0.0, 0.1], get_backend("numpy"), trackers=[InvariantTracker()])


def test_resume_from_a_frame_reproduces_the_rest_bit_for_bit() -> None:
    """A frame's density, tau, step, dt and tracker states are the whole state of the loop."""
    from meanfield.controller import ResumePoint
    from meanfield.schedules import TimeChange

    grid = Grid(((-4.0, 5.0),), (90,))
    pde = MeanFieldPDE(QuadraticPotential(), grid, beta=3.0)
    rho0 = initial_density(NormalLaw((1.0,), (0.5,)), grid)
    times, xi, numpy = np.linspace(0, 1, 11), TimeChange(power=-0.25), get_backend("numpy")
    full, whole = MemoryTracker(), InvariantTracker()
    integrate(pde, rho0, times, numpy, time_change=xi, trackers=[whole, full])
    at = full.frames[4]
    assert at.tau == xi.tau(at.t) and set(at.state) == set(whole.get_state())
    rest, resumed = MemoryTracker(), InvariantTracker()
    summary = integrate(pde, rho0, times, numpy, time_change=xi, trackers=[resumed, rest],
                        resume=ResumePoint(4, at.density, at.tau, at.step, at.dt, at.state))
    assert len(rest.frames) == 6 and summary.n_steps == full.frames[-1].step
    for got, want in zip(rest.frames, full.frames[5:], strict=True):
        np.testing.assert_array_equal(got.density, want.density)
        assert (got.index, got.t, got.step, got.dt, got.tau, got.risk, got.free_energy,
                got.mass, got.state) == (want.index, want.t, want.step, want.dt, want.tau,
                                         want.risk, want.free_energy, want.mass, want.state)
    assert resumed.get_state() == whole.get_state()
