"""Population gradient descent of Gaussian-kernel units on the sphere (particles.kernel_gd).

The L2(mu) flow here; the collocation flow (4.5) in test_kernel_gd_collocation.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from meanfield.backends import get_backend, to_numpy
from meanfield.model.rve.sphere_kernel import SphereKernel
from meanfield.rng import CounterRNG
from particles.engine import make_advance as make_engine_advance
from particles.engine import select_engine
from particles.kernel_gd import (
    NOISE_BLOCK,
    init_state,
    loop_advance,
    make_compiled_advance,
    make_kernel_gd,
    record_schedule,
    run_kernel_gd,
    tangent,
    to_ensemble,
    to_kernel_state,
)
from particles.methods import make_step

D = 5
NUMPY = get_backend("numpy")
XP = NUMPY.xp


def _task(teacher: int = 0):
    return SphereKernel(D, 1.0, teacher).task(NUMPY.asarray)


def _start(task, n: int, replicas: int = 1, seed: int = 0, c_std: float = 10.0):
    rng = CounterRNG.from_seed(seed, replicas, XP)
    return rng, init_state(task, rng, n, c_std, XP)


def test_initial_law_is_on_the_sphere_with_the_requested_weights() -> None:
    task = _task()
    _, state = _start(task, 2000, c_std=3.0)
    np.testing.assert_allclose(np.linalg.norm(state.y, axis=-1), math.sqrt(D), rtol=1e-14)
    # uniform on the sphere: mean 0 and E y y^T = I (2000 x 5 samples: 5 standard errors)
    assert np.all(np.abs(state.y[0].mean(axis=0)) < 5 / math.sqrt(2000))
    assert abs(state.c.std() - 3.0) < 5 * 3.0 / math.sqrt(2 * 2000)
    _, zero = _start(task, 10, c_std=0.0)
    assert np.all(zero.c == 0.0)


def test_plain_gd_decreases_the_loss_monotonically_and_keeps_centres_on_the_sphere() -> None:
    task = _task(1)
    rng, state = _start(task, 16)
    advance = loop_advance(
        make_kernel_gd(task, rng, XP, step=0.02, beta=math.inf, noise_steps=0, objective="l2")
    )
    out = run_kernel_gd(
        task, state, XP, n_steps=400, advance_fn=advance, record_steps=range(0, 401, 4)
    )
    drops = np.diff(out.loss[0])
    # a small step on a smooth loss: every record lower than the last (beyond round-off)
    assert np.all(drops < 1e-13), drops.max()
    assert out.loss[0, -1] < 0.9 * out.loss[0, 0]
    np.testing.assert_allclose(np.linalg.norm(out.state.y, axis=-1), math.sqrt(D), rtol=1e-14)


def test_noisy_steps_keep_centres_on_the_sphere() -> None:
    task = _task()
    rng, state = _start(task, 12, replicas=2)
    step_fn = make_kernel_gd(task, rng, XP, step=0.05, beta=10.0, noise_steps=100)
    state = loop_advance(step_fn)(state, 100)
    np.testing.assert_allclose(np.linalg.norm(state.y, axis=-1), math.sqrt(D), rtol=1e-14)


def test_one_euler_step_descends_along_the_exact_gradient() -> None:
    """``(L(after) - L(before)) / step -> -N (|grad_c L|^2 + |P grad_y L|^2)`` as step -> 0."""
    task = _task(2)
    rng, state = _start(task, 10)
    n = state.c.shape[-1]
    loss, grad_c, grad_y = task.loss_gradient(state.c, state.y, XP)
    rate = -n * (np.sum(grad_c**2) + np.sum(tangent(state.y, grad_y, XP) ** 2))
    for step in (1e-5, 1e-6):
        after = make_kernel_gd(
            task, rng, XP, step=step, beta=math.inf, noise_steps=0, objective="l2"
        )(state)
        numeric = (float(task.loss(after.c, after.y, XP)[0]) - float(loss[0])) / step
        # first-order error O(step * |Hessian| |gradient|^2 / |rate|) ~ 1e-4 relative here
        assert numeric == pytest.approx(rate, rel=1e-3)


def test_noise_off_is_deterministic_and_noise_follows_the_seed() -> None:
    task = _task()
    finals = {}
    for seed, beta, noise_steps in (
        (0, math.inf, 50),
        (1, math.inf, 50),
        (0, 50.0, 0),
        (0, 50.0, 50),
        (0, 50.0, 50),
        (2, 50.0, 50),
    ):
        rng = CounterRNG.from_seed(seed, 1, XP)
        _, state = _start(task, 8, seed=0)  # the same initial units for every case
        step_fn = make_kernel_gd(task, rng, XP, step=0.05, beta=beta, noise_steps=noise_steps)
        finals.setdefault((seed, beta, noise_steps), []).append(
            to_numpy(loop_advance(step_fn)(state, 50).y)
        )
    plain = finals[0, math.inf, 50][0]
    np.testing.assert_array_equal(finals[1, math.inf, 50][0], plain)  # seed unused
    np.testing.assert_array_equal(finals[0, 50.0, 0][0], plain)  # no noisy step
    np.testing.assert_array_equal(*finals[0, 50.0, 50])  # same seed, same noise
    assert np.max(np.abs(finals[0, 50.0, 50][0] - plain)) > 1e-3
    assert np.max(np.abs(finals[2, 50.0, 50][0] - finals[0, 50.0, 50][0])) > 1e-3


def test_compiled_steps_match_the_reference() -> None:
    """The L2 flow's numba twin against the xp reference: noisy then plain, across a noise
    block boundary."""
    task = _task(3)
    rng, state = _start(task, 9, replicas=2)
    kwargs = {"step": 0.05, "beta": 200.0, "noise_steps": NOISE_BLOCK + 20, "objective": "l2"}
    reference = loop_advance(make_kernel_gd(task, rng, XP, **kwargs))
    compiled = make_compiled_advance(task, rng, **kwargs)
    a, b = state, state
    for count in (7, NOISE_BLOCK, 60):  # splits that cross the block and the noise switch
        a, b = reference(a, count), compiled(b, count)
        assert a.step == b.step
        # same operations up to summation order and fused multiply-adds: round-off that the
        # dynamics amplify mildly over ~600 steps
        np.testing.assert_allclose(b.c, a.c, rtol=1e-10, atol=1e-11)
        np.testing.assert_allclose(b.y, a.y, rtol=1e-10, atol=1e-11)
    assert np.max(np.abs(a.c - state.c)) > 0.1


@pytest.mark.parametrize("objective", ["collocation", "l2"])
def test_kernel_gd_is_an_engine_method_like_the_others(objective: str) -> None:
    """``kernel_gd`` through the method registry (the NumPy step) and the compiled engine that
    ``select_engine`` picks, on ``theta = (c, y)``: the same steps as the ``(c, y)`` views."""
    task = _task(4)
    rng, state = _start(task, 7, replicas=2, c_std=2.0)
    options = {"eps": 0.01, "beta": 300.0, "noise_steps": 30, "objective": objective}
    choice = select_engine("auto", task, "kernel_gd", "numpy")
    assert (choice.engine, choice.kernel) == ("compiled", "sphere")
    step = make_step("kernel_gd", task, rng, NUMPY, **options)
    reference = to_ensemble(state)
    for _ in range(50):
        reference = step(reference)
    advance = make_engine_advance(task, rng, method="kernel_gd", **options)
    compiled = advance(advance(to_ensemble(state), 20), 50)
    assert compiled.step == reference.step == 50
    # summation order and fused multiply-adds only (as the (c, y) twins above)
    np.testing.assert_allclose(compiled.theta, reference.theta, rtol=1e-10, atol=1e-11)
    # the (c, y) views: the registry's step is make_kernel_gd's, the engine's advance is
    # make_compiled_advance's, bit for bit
    views = loop_advance(
        make_kernel_gd(task, rng, XP, step=0.01, beta=300.0, noise_steps=30, objective=objective)
    )(state, 50)
    np.testing.assert_array_equal(to_kernel_state(reference).c, views.c)
    np.testing.assert_array_equal(to_kernel_state(reference).y, views.y)
    twin = make_compiled_advance(
        task, rng, step=0.01, beta=300.0, noise_steps=30, objective=objective
    )(state, 50)
    np.testing.assert_array_equal(to_kernel_state(compiled).c, twin.c)
    np.testing.assert_array_equal(to_kernel_state(compiled).y, twin.y)
    with pytest.raises(ValueError, match="objective"):
        make_step("kernel_gd", task, rng, NUMPY, **{**options, "objective": "l1"})


@pytest.mark.parametrize("objective", ["collocation", "l2"])
def test_reference_steps_run_on_array_api_strict(objective: str) -> None:
    strict = get_backend("array_api_strict")
    model = SphereKernel(D, 1.0, 0)
    out = []
    for backend in (NUMPY, strict):
        xp = backend.xp
        task = model.task(backend.asarray)
        rng = CounterRNG.from_seed(4, 2, xp, backend.asarray)
        state = init_state(task, rng, 6, 1.0, xp)
        advance = loop_advance(
            make_kernel_gd(task, rng, xp, step=0.05, beta=100.0, noise_steps=3, objective=objective)
        )
        run = run_kernel_gd(task, state, xp, n_steps=6, advance_fn=advance, record_steps=[0, 6])
        out.append((to_numpy(run.state.c), to_numpy(run.state.y), run.loss))
    for ours, theirs in zip(*out, strict=True):
        np.testing.assert_allclose(theirs, ours, rtol=1e-12, atol=1e-14)  # round-off only


def test_record_schedule_is_log_spaced_with_the_requested_extras() -> None:
    steps = record_schedule(200_000, 60, extra=[160_000, 100_000])
    assert steps[0] == 0 and steps[-1] == 200_000
    assert {160_000, 100_000} <= set(steps.tolist())
    assert np.all(np.diff(steps) > 0) and 50 <= steps.size <= 62
    task = _task()
    rng, state = _start(task, 4)
    advance = loop_advance(make_kernel_gd(task, rng, XP, step=0.1, beta=math.inf, noise_steps=0))
    with pytest.raises(ValueError, match="record steps"):
        run_kernel_gd(task, state, XP, n_steps=5, record_steps=[6], advance_fn=advance)
