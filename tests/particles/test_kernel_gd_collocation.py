"""RVE's (4.5) as printed: the collocation flow of particles.kernel_gd, its numba twin, and the
run that goes on until the loss is flat."""

from __future__ import annotations

import math

import numpy as np
import pytest

from meanfield.backends import get_backend
from meanfield.model.rve.sphere_kernel import SphereKernel
from meanfield.rng import CounterRNG
from particles.kernel_gd import (
    NOISE_BLOCK,
    init_state,
    loop_advance,
    make_compiled_advance,
    make_kernel_gd,
    run_kernel_gd,
    run_until_flat,
    tangent,
    trend_at_end,
)

D = 5
NUMPY = get_backend("numpy")
XP = NUMPY.xp


def _start(teacher: int, n: int, replicas: int = 1, c_std: float = 5.0):
    task = SphereKernel(D, 1.0, teacher).task(NUMPY.asarray)
    rng = CounterRNG.from_seed(teacher, replicas, XP)
    return task, rng, init_state(task, rng, n, c_std, XP)


@pytest.mark.parametrize("beta", [200.0, math.inf])
def test_compiled_collocation_steps_match_the_reference(beta: float) -> None:
    """numba twin against the xp reference, with noise (across a noise block boundary and the
    switch to plain steps) and without."""
    task, rng, state = _start(3, 9, replicas=2)
    kwargs = {
        "step": 0.002,
        "beta": beta,
        "noise_steps": NOISE_BLOCK + 20,
        "objective": "collocation",
    }
    reference = loop_advance(make_kernel_gd(task, rng, XP, **kwargs))
    compiled = make_compiled_advance(task, rng, **kwargs)
    a, b = state, state
    for count in (7, NOISE_BLOCK, 60):
        a, b = reference(a, count), compiled(b, count)
        assert a.step == b.step
        # the same operations up to summation order, fused multiply-adds and |y_i - y_j|^2
        # summed directly (numba) or from the Gram form (reference): round-off, which the
        # dynamics amplify mildly over ~600 steps (measured: 2e-14 on c of order 15). The step
        # is stable here (step * lambda_max = 0.22 at the end); at 0.01 (step * lambda_max
        # above 2 once c reaches 30) the reference alone amplifies a 1e-14 change to 1e-2.
        np.testing.assert_allclose(b.c, a.c, rtol=1e-10, atol=1e-11)
        np.testing.assert_allclose(b.y, a.y, rtol=1e-10, atol=1e-11)
    assert np.max(np.abs(a.c - state.c)) > 1.0


def test_plain_collocation_steps_descend_the_energy_and_stay_on_the_sphere() -> None:
    task, rng, state = _start(1, 16)
    advance = loop_advance(make_kernel_gd(task, rng, XP, step=0.005, beta=math.inf, noise_steps=0))
    energies = []
    for _ in range(60):
        energies.append(float(task.collocation(state.c, state.y, XP)[0]))
        state = advance(state, 5)
    # a small step on a smooth energy: every record lower than the last (beyond round-off)
    assert np.all(np.diff(energies) < 1e-13), np.diff(energies).max()
    assert energies[-1] < energies[0] - 1.0
    np.testing.assert_allclose(np.linalg.norm(state.y, axis=-1), math.sqrt(D), rtol=1e-14)


def test_one_collocation_step_descends_along_the_exact_gradient() -> None:
    """``(E(after) - E(before)) / step -> -N (|grad_c E|^2 + |P grad_y E|^2)`` as step -> 0."""
    task, rng, state = _start(2, 10)
    n = state.c.shape[-1]
    energy, grad_c, grad_y = task.collocation_gradient(state.c, state.y, XP)
    rate = -n * (np.sum(grad_c**2) + np.sum(tangent(state.y, grad_y, XP) ** 2))
    for step in (1e-5, 1e-6):
        after = make_kernel_gd(task, rng, XP, step=step, beta=math.inf, noise_steps=0)(state)
        numeric = (float(task.collocation(after.c, after.y, XP)[0]) - float(energy[0])) / step
        # first-order error O(step * |Hessian| |gradient|^2 / |rate|), below 1e-4 relative here
        assert numeric == pytest.approx(rate, rel=1e-3)


def test_unknown_objectives_are_refused() -> None:
    task, rng, _ = _start(0, 4)
    for make in (
        lambda: make_kernel_gd(task, rng, XP, step=0.1, beta=1.0, noise_steps=0, objective="L2"),
        lambda: make_compiled_advance(
            task, rng, step=0.1, beta=1.0, noise_steps=0, objective="rkhs"
        ),
    ):
        with pytest.raises(ValueError, match="objective must be one of collocation, l2"):
            make()


def test_trend_at_end_reads_the_last_fifth() -> None:
    steps = np.array([0, 10, 80, 90, 100])
    loss = np.array([[5.0, 4.0, 3.0, 2.5, 2.0]])
    np.testing.assert_allclose(trend_at_end(steps, loss), [0.5])  # from step 80 to 100
    np.testing.assert_allclose(trend_at_end(steps[:4], loss[:, :4]), [0.6])  # 10 -> 90


def test_run_until_flat_lengthens_the_run_until_the_loss_settles() -> None:
    task, rng, state = _start(0, 6, c_std=0.0)
    advance = make_compiled_advance(task, rng, step=0.02, beta=math.inf, noise_steps=0)
    out = run_until_flat(
        task,
        state,
        XP,
        advance_fn=advance,
        first_steps=200,
        max_steps=20_000,
        flat_tolerance=1e-3,
        n_records=10,
    )
    total = int(out.record_steps[-1])
    assert out.converged and total == out.state.step and 200 < total < 20_000
    assert abs(float(out.final_trend[0])) <= 1e-3
    np.testing.assert_allclose(out.final_trend, trend_at_end(out.record_steps, out.loss))
    # each chunk is a quarter of the steps so far, so the last 20 % start at the previous end
    assert out.record_steps[-2] <= 0.8 * total < out.record_steps[-2] + 2
    # the same steps in one plain run give the same state (chunking changes nothing)
    plain = run_kernel_gd(task, state, XP, n_steps=total, advance_fn=advance, record_steps=[])
    np.testing.assert_array_equal(plain.state.c, out.state.c)
    # a cap below what is needed: stopped there, and says so
    short = run_until_flat(
        task,
        state,
        XP,
        advance_fn=advance,
        first_steps=200,
        max_steps=300,
        flat_tolerance=1e-3,
        n_records=10,
    )
    assert not short.converged and short.state.step == 300 == short.record_steps[-1]
    assert abs(float(short.final_trend[0])) > 1e-3
