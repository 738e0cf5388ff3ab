"""The time loop decides steps on the device and reads the clock once per block of attempts.

Two claims are checked here:

* the device-side step logic (size from the rate bound, equal-step fit, snap, retry) gives bit
  for bit the steps of a loop that makes the same decisions on the host with Python floats,
  written out independently below, whatever the block length;
* a run reads device arrays on the host about ``steps / sync_every`` times plus a few per
  frame, counted by intercepting every conversion of an ``array_api_strict`` array.
"""

from __future__ import annotations

import math

import array_api_strict
import numpy as np
import pytest

from meanfield.backends import get_backend, to_numpy
from meanfield.grid import Grid
from meanfield.model import (
    ACTIVATIONS,
    IsotropicGaussians,
    NormalLaw,
    QuadraticPotential,
    ScaledChiLaw,
    initial_density,
)
from meanfield.pde.controller import Loop, integrate
from meanfield.pde.equation import MeanFieldPDE
from meanfield.pde.solvers.heun import MAX_RETRIES, SNAP_RTOL
from meanfield.pde.sweep import integrate_sweep
from meanfield.pde.trackers import InvariantTracker, MemoryTracker
from meanfield.schedules import TimeChange


def host_reference(
    pde: MeanFieldPDE, rho0: np.ndarray, save_times, time_change: TimeChange, cfl: float
) -> tuple[list, int]:
    """Heun steps decided on the host: ``[(step, tau, density)]`` per frame, and retries."""
    rhs = pde.make_rhs(get_backend("numpy"))
    rho, tau, step, retries, frames = np.array(rho0, dtype=np.float64), 0.0, 0, 0, []
    for t_out in save_times:
        tau_out = float(time_change.tau(float(t_out)))
        while tau < tau_out:
            remaining = tau_out - tau
            start = rhs(rho)
            rate = float(start.rate)
            for attempt in range(MAX_RETRIES + 1):
                dt_max = cfl / rate if rate > 0 else math.inf
                dt = remaining if dt_max >= remaining else remaining / math.ceil(remaining / dt_max)
                stage = rho + dt * start.drho
                second = rhs(stage)
                if dt * float(second.rate) <= 1.0 or attempt == MAX_RETRIES:
                    break
                rate, retries = max(rate, float(second.rate)), retries + 1
            rho = 0.5 * (rho + stage + dt * second.drho)
            tau = tau_out if dt >= remaining * (1.0 - SNAP_RTOL) else tau + dt
            step += 1
        frames.append((step, tau, rho.copy()))
    return frames, retries


def _isotropic(cells: int = 240) -> tuple:
    grid = Grid(((0.0, 8.0),), (cells,), ("r",))
    pde = MeanFieldPDE(IsotropicGaussians(40, 0.8, ACTIVATIONS["mmn"]), grid)
    return pde, initial_density(ScaledChiLaw(0.8, 40), grid)


def _noisy_ou_2d() -> tuple:
    grid = Grid(((-3.0, 5.0), (-5.0, 4.0)), (32, 30))
    pde = MeanFieldPDE(QuadraticPotential(stiffness=(1.0, 2.5), ndim=2), grid, beta=4.0)
    return pde, initial_density(NormalLaw((1.0, -0.5), (0.4, 0.6)), grid)


CASES = {
    "isotropic, xi = 1": (_isotropic, TimeChange(), 0.8, [0.0, 0.05, 0.3, 1.0]),
    # cfl = 1 and a singular time change make the second stage break the bound: retries
    "isotropic, xi = t^-1/4, cfl = 1": (
        _isotropic,
        TimeChange(power=-0.25),
        1.0,
        [0.0, 0.02, 0.5, 1.5],
    ),
    "noisy OU 2-D": (_noisy_ou_2d, TimeChange(), 0.8, [0.0, 0.1, 0.4]),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize(
    ("name", "sync_every"),
    [
        ("numpy", 1),
        ("numpy", 32),
        ("array_api_strict", 1),
        ("array_api_strict", 7),
        ("array_api_strict", 32),
    ],
)
def test_loop_decisions_match_host_decisions_bit_for_bit(
    case: str, name: str, sync_every: int
) -> None:
    """NumPy decides with host floats, array_api_strict with 0-d arrays (the device path)."""
    make, time_change, cfl, times = CASES[case]
    pde, rho0 = make()
    want, _ = host_reference(pde, rho0, times, time_change, cfl)
    memory, invariants = MemoryTracker(), InvariantTracker()
    integrate(
        pde,
        rho0,
        times,
        get_backend(name),
        time_change=time_change,
        cfl=cfl,
        trackers=[invariants, memory],
        sync_every=sync_every,
    )
    assert len(memory.frames) == len(want)
    for frame, (step, tau, density) in zip(memory.frames, want, strict=True):
        assert (frame.step, frame.tau) == (step, tau)
        np.testing.assert_array_equal(frame.density, density)
    assert invariants.max_mass_error < 1e-13


def test_the_retry_path_is_exercised() -> None:
    """The retry case above really rejects attempts (else it would test nothing new)."""
    make, time_change, cfl, times = CASES["isotropic, xi = t^-1/4, cfl = 1"]
    pde, rho0 = make()
    _, retries = host_reference(pde, rho0, times, time_change, cfl)
    assert retries > 0


def test_sweep_steps_match_host_decisions() -> None:
    """Runs stacked as a leading axis share one clock: the largest rate over the runs."""
    pde, rho0 = _isotropic()
    stacked = np.stack([rho0, initial_density(ScaledChiLaw(1.1, 40), pde.grid)])
    times = [0.0, 0.1, 0.4]
    want, _ = host_reference(pde, stacked, times, TimeChange(), 0.8)
    got = integrate_sweep(pde, stacked, times, get_backend("numpy"), sync_every=5)
    np.testing.assert_array_equal(got.density[-1], want[-1][2])
    assert got.n_steps == want[-1][0]


class _Reads:
    """Counts host reads of ``array_api_strict`` arrays (every way one can leave the device)."""

    METHODS = (
        "__float__",
        "__int__",
        "__bool__",
        "__index__",
        "__complex__",
        "__array__",
        "__dlpack__",
        "__buffer__",
        "tolist",
    )

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        cls = type(array_api_strict.asarray(0.0))
        for name in self.METHODS:
            original = getattr(cls, name, None)
            if original is not None:
                monkeypatch.setattr(cls, name, self._counted(original))

    def _counted(self, original):
        def method(array, *args, **kwargs):
            self.count += 1
            return original(array, *args, **kwargs)

        return method


@pytest.mark.parametrize("sync_every", [8, 32])
def test_host_reads_are_once_per_block_not_once_per_step(monkeypatch, sync_every: int) -> None:
    pde, rho0 = _isotropic(480)
    backend = get_backend("array_api_strict")
    times = [0.0, 1.0, 2.0, 4.0]
    rhs, functionals = pde.make_rhs(backend), pde.make_functionals(backend)
    loop = Loop(
        backend.asarray(rho0),
        0.0,
        0,
        rhs,
        0.8,
        functionals,
        TimeChange(),
        backend,
        sync_every=sync_every,
    )
    reads = _Reads(monkeypatch)
    invariants = InvariantTracker()
    invariants.initialize(
        {"grid": pde.grid, "mass0": float(np.sum(rho0)) * pde.grid.cell_volume, "backend": backend}
    )
    for t in times[1:]:
        loop.advance(t, [invariants])
    counted = reads.count
    assert loop.step > 10 * sync_every  # enough steps for the claim to mean something
    # each read of the clock is one transfer; a block covers sync_every steps, except the
    # first step of the run and the tail of each interval, where the remaining steps are
    # counted down (at most log2(sync_every) + 2 reads per interval)
    tails = (len(times) - 1) * (math.log2(sync_every) + 2)
    assert loop.syncs <= 1 + loop.step / sync_every + tails
    assert counted == loop.syncs
    # no attempt is wasted beyond the ones a block overshoots at the end of an interval
    assert loop.attempts - loop.step <= (len(times) - 1) * 2
    np.testing.assert_allclose(
        to_numpy(backend.xp.sum(loop.carry.rho)) * pde.grid.cell_volume,
        float(np.sum(rho0)) * pde.grid.cell_volume,
        rtol=1e-13,
    )


@pytest.mark.parametrize("batch", [1, 8])
def test_particle_sgd_steps_read_nothing_from_the_device(monkeypatch, batch: int) -> None:
    """Between output frames the ensemble stays on the device: its step sizes are host floats
    of the step index, its random numbers are drawn on the device a chunk of steps at a time."""
    from meanfield.rng import CounterRNG
    from particles.methods import make_online_sgd
    from particles.state import EnsembleState

    backend = get_backend("array_api_strict")
    model = IsotropicGaussians(40, 0.8, ACTIVATIONS["mmn"])
    rng = CounterRNG.from_seed(3, 4, backend.xp, backend.asarray)
    step = make_online_sgd(
        model, rng, backend, eps=1e-4, batch=batch, time_change=TimeChange(power=-0.25)
    )
    state = EnsembleState(ScaledChiLaw(0.8, 40).sample_streams(rng, 30))
    reads = _Reads(monkeypatch)
    for _ in range(1100):  # two or more chunks of random numbers (1024 steps at most each)
        state = step(state)
    assert reads.count == 0 and state.step == 1100


@pytest.mark.parametrize("name", ["numpy", "array_api_strict"])
def test_a_float32_density_stays_float32_on_either_path(name: str) -> None:
    """The 0-d float64 step size of the device path must not promote a float32 density."""
    pde, rho0 = _isotropic()
    backend = get_backend(name)
    memory = MemoryTracker()
    integrate(pde, rho0, [0.0, 0.05], backend, trackers=[memory], dtype=backend.xp.float32)
    assert memory.frames[-1].density.dtype == np.float32
