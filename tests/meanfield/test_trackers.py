"""Invariant trackers: each violation is detected, named, and the last good state is kept."""

from __future__ import annotations

import math

import numpy as np
import pytest

from meanfield.backends import get_backend
from meanfield.grid import Grid
from meanfield.io import create_file, load
from meanfield.model import NormalLaw, QuadraticPotential, initial_density
from meanfield.pde.controller import integrate
from meanfield.pde.equation import Functionals, MeanFieldPDE
from meanfield.pde.trackers import (
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
    tracker.initialize(
        {
            "grid": GRID,
            "mass0": 1.0,
            "backend": get_backend("numpy"),
            "t_of_tau": lambda tau: 2.0 * tau,
        }
    )
    return tracker


def _step(
    tracker: InvariantTracker, rho: list[float], energy: float, step: int = 1, accepted: bool = True
) -> bool:
    """Hand the tracker one attempt; return its verdict, raising what :meth:`check` raises."""
    xp = get_backend("numpy").xp
    prev = Functionals(xp.asarray(2 * energy), xp.asarray(energy), xp.asarray(1.0))
    info = StepInfo(
        xp.asarray(step, dtype=xp.int64),
        xp.asarray(0.125 * step),
        xp.asarray(rho),
        prev,
        xp.asarray(accepted),
        xp,
    )
    verdict = bool(tracker.handle_step(info))
    tracker.check()
    return verdict


def test_good_steps_pass_and_are_recorded() -> None:
    tracker = _tracker()
    assert _step(tracker, [1.0, 1.0, 1.0, 1.0], 0.5, 1)
    assert _step(tracker, [0.0, 2.0, 2.0, 0.0], 0.4, 2)
    assert tracker.max_mass_error == 0.0 and tracker.min_density == 0.0
    assert tracker.get_state()["previous_free_energy"] == 0.4


def test_an_attempt_that_makes_no_step_is_neither_recorded_nor_reported() -> None:
    """Rejected and no-op attempts carry the old density; only committed steps count."""
    tracker = _tracker()
    assert _step(tracker, [1.0, 1.0, 1.0, 1.0], 0.5, 1)
    assert not _step(tracker, [2.0, 1.0, 1.0, -0.01], 0.9, 2, accepted=False)
    assert tracker.min_density == 1.0 and tracker.get_state()["previous_free_energy"] == 0.5


@pytest.mark.parametrize(
    ("rho", "energy", "match"),
    [
        ([1.0, 1.0, 1.0, 1.0 + 1e-9], 0.5, "mass"),
        ([1.5, 1.0, 1.0, 0.5 - 1e-3 + 1e-3], 0.5, None),
        ([2.0, 1.0, 1.01, -0.01], 0.5, "negative density"),
        ([1.0, math.nan, 1.0, 1.0], 0.5, "non-finite"),
        ([1.0, 1.0, 1.0, 1.0], math.inf, "non-finite"),
    ],
)
def test_each_violation_is_named(rho: list[float], energy: float, match: str | None) -> None:
    tracker = _tracker()
    if match is None:
        _step(tracker, rho, energy)
        return
    with pytest.raises(InvariantViolation, match=match) as info:
        _step(tracker, rho, energy, step=7)
    assert "step 7" in str(info.value) and "t = 1.75" in str(info.value)


def test_the_first_violation_is_the_one_reported() -> None:
    """Once a check fails the loop halts; a later failing attempt must not overwrite it."""
    tracker = _tracker()
    xp = get_backend("numpy").xp
    prev = Functionals(xp.asarray(1.0), xp.asarray(0.5), xp.asarray(1.0))
    for step, rho in ((3, [2.0, 1.0, 1.01, -0.01]), (4, [1.0, 1.0, 1.0, 2.0])):
        info = StepInfo(
            xp.asarray(step, dtype=xp.int64),
            xp.asarray(0.125 * step),
            xp.asarray(rho),
            prev,
            xp.asarray(True),
            xp,
        )
        assert not bool(tracker.handle_step(info))
    with pytest.raises(InvariantViolation, match="step 3 .*negative density"):
        tracker.check()


def test_free_energy_increase_is_caught() -> None:
    tracker = _tracker()
    _step(tracker, [1.0] * 4, 0.5, 1)
    _step(tracker, [1.0] * 4, 0.5 + 1e-15, 2)  # round-off: allowed (1e-13 relative)
    with pytest.raises(InvariantViolation, match="free energy increased"):
        _step(tracker, [1.0] * 4, 0.5 + 1e-9, 3)


class _FailAt(Tracker):
    """Refuses a given step, as an invariant check would (on the device, no host read)."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.refused = None

    def handle_step(self, info: StepInfo):
        passes = info.step != self.step
        refused = info.accepted & ~passes
        self.refused = refused if self.refused is None else self.refused | refused
        return passes

    def check(self) -> None:
        if bool(self.refused):
            raise InvariantViolation(f"step {self.step}: injected")


def test_violation_keeps_frames_and_last_good_state_on_disk(tmp_path) -> None:
    grid = Grid(((-4.0, 5.0),), (90,))
    pde = MeanFieldPDE(QuadraticPotential(), grid, beta=3.0)
    rho0 = initial_density(NormalLaw((1.0,), (0.5,)), grid)
    path = tmp_path / "run.h5"
    mem = MemoryTracker()
    with create_file(path) as f, pytest.raises(InvariantViolation, match="step 40"):
        integrate(
            pde,
            rho0,
            np.linspace(0, 1, 11),
            get_backend("numpy"),
            trackers=[StorageTracker(f), mem, _FailAt(40)],
        )
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
    from meanfield.pde.controller import ResumePoint
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
    summary = integrate(
        pde,
        rho0,
        times,
        numpy,
        time_change=xi,
        trackers=[resumed, rest],
        resume=ResumePoint(4, at.density, at.tau, at.step, at.dt, at.state),
    )
    assert len(rest.frames) == 6 and summary.n_steps == full.frames[-1].step
    for got, want in zip(rest.frames, full.frames[5:], strict=True):
        np.testing.assert_array_equal(got.density, want.density)
        assert (
            got.index,
            got.t,
            got.step,
            got.dt,
            got.tau,
            got.risk,
            got.free_energy,
            got.mass,
            got.state,
        ) == (
            want.index,
            want.t,
            want.step,
            want.dt,
            want.tau,
            want.risk,
            want.free_energy,
            want.mass,
            want.state,
        )
    assert resumed.get_state() == whole.get_state()
