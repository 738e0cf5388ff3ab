"""The compiled particle engine against the NumPy reference: same seed, same trajectory.

Every model and method that has particles runs 10^4 steps on both paths from the same initial
units and the same counter-based random numbers; the compiled kernels must stay within 1e-10
(relative to the largest parameter) of the NumPy steps. The two differ only by the order of
floating-point sums (vectorised reductions, fused multiply-adds) and by the C library's
``log``/``cos``/``sin``/``erf`` against NumPy's, a few units in the last place per step; the
dynamics does not amplify that beyond 1e-11 in these runs (5e-12 for the noisy double well of
the cosine model, 1e-14 and below elsewhere), so 1e-10 leaves a margin of 20.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from meanfield.backends import get_backend
from meanfield.model import (
    ACTIVATIONS,
    AnisotropicGaussians,
    CosineInteraction,
    IsotropicGaussians,
    LinearUnit,
    NormalLaw,
    PSpin,
    PSpinTask,
    QuadraticPotential,
    ScaledChiLaw,
    TeacherStudent,
)
from meanfield.rng import CounterRNG
from meanfield.schedules import TimeChange
from particles.engine import make_advance, select_engine
from particles.methods import make_step
from particles.state import EnsembleState

NUMPY = get_backend("numpy")
#: agreement of the two paths after STEPS steps (see the module docstring)
RTOL = 1e-10
STEPS = 10_000
#: population GD of the pair models costs a NumPy pair sum per stage: 2,000 steps by default,
#: the full 10^4 with --runslow (measured: 4e-14 after 10^4 steps)
PAIR_GD_STEPS = 2_000


def _teacher_student(**kw):
    return TeacherStudent(
        k=kw.pop("k", 2),
        input_law=kw.pop("input_law", "gaussian"),
        target=kw.pop("target", "product"),
        quad_order=8,
        **kw,
    )


def _pspin():
    model = PSpin(5, teacher_seed=2)
    return PSpinTask(model, model.teacher())


# name -> (model factory, initial law (rng, n) -> theta, method, options, n_units, steps)
CASES = {
    "isotropic online_sgd B=1": (
        lambda: IsotropicGaussians(8, 0.8, ACTIVATIONS["mmn"]),
        ScaledChiLaw(0.8, 8).sample_streams,
        "online_sgd",
        {"eps": 1e-3},
        16,
        STEPS,
    ),
    "isotropic online_sgd B=3 xi l2": (
        lambda: IsotropicGaussians(8, 0.6, ACTIVATIONS["mmn_nonmonotone"]),
        ScaledChiLaw(0.8, 8).sample_streams,
        "online_sgd",
        {"eps": 1e-3, "batch": 3, "l2": 0.05, "time_change": TimeChange(power=-0.25)},
        16,
        STEPS,
    ),
    "isotropic noisy_sgd B=2": (
        lambda: IsotropicGaussians(8, 0.8, ACTIVATIONS["mmn"]),
        ScaledChiLaw(0.8, 8).sample_streams,
        "noisy_sgd",
        {"eps": 1e-3, "batch": 2, "beta": 100.0},
        16,
        STEPS,
    ),
    "isotropic gd": (
        lambda: IsotropicGaussians(8, 0.8, ACTIVATIONS["mmn"], kernel_tol=1e-14),
        ScaledChiLaw(0.8, 8).sample_streams,
        "gd",
        {"eps": 1e-2},
        6,
        PAIR_GD_STEPS,
    ),
    "anisotropic online_sgd B=12": (
        lambda: AnisotropicGaussians(8, 2, 0.6, ACTIVATIONS["mmn"]),
        ScaledChiLaw(0.8, 8).sample_streams,
        "online_sgd",
        {"eps": 1e-3, "batch": 12},
        16,
        STEPS,
    ),
    "anisotropic noisy_sgd": (
        lambda: AnisotropicGaussians(8, 2, 0.6, ACTIVATIONS["mmn"]),
        ScaledChiLaw(0.8, 8).sample_streams,
        "noisy_sgd",
        {"eps": 1e-3, "beta": 100.0},
        16,
        STEPS,
    ),
    "anisotropic gd": (
        lambda: AnisotropicGaussians(8, 2, 0.6, ACTIVATIONS["mmn"], kernel_tol=1e-14),
        ScaledChiLaw(0.8, 8).sample_streams,
        "gd",
        {"eps": 1e-2},
        6,
        PAIR_GD_STEPS,
    ),
    "teacher-student online_sgd (w1, b)": (
        lambda: _teacher_student(trained=("w1", "b")),
        NormalLaw((0.5, 0.0), (0.3, 0.3)).sample_streams,
        "online_sgd",
        {"eps": 1e-2, "batch": 3},
        12,
        STEPS,
    ),
    "teacher-student noisy_sgd (a, w, b) erf": (
        lambda: _teacher_student(
            k=1, target="sin", input_law="uniform", activation="erf", trained=("a", "w", "b")
        ),
        NormalLaw((0.5, 0.5, 0.0), (0.3, 0.3, 0.3)).sample_streams,
        "noisy_sgd",
        {"eps": 1e-2, "beta": 200.0},
        12,
        STEPS,
    ),
    "teacher-student gd (a, w2) softplus": (
        lambda: _teacher_student(trained=("a", "w2"), activation="softplus"),
        NormalLaw((0.5, 0.5), (0.3, 0.3)).sample_streams,
        "gd",
        {"eps": 1e-2},
        12,
        STEPS,
    ),
    "pspin online_sgd B=4": (
        _pspin,
        lambda rng, n: _pspin().sample_streams(rng, n),
        "online_sgd",
        {"eps": 2e-3, "batch": 4},
        12,
        STEPS,
    ),
    "pspin online_sgd B=20 (blocks)": (
        _pspin,
        lambda rng, n: _pspin().sample_streams(rng, n),
        "online_sgd",
        {"eps": 2e-3, "batch": 20},
        12,
        STEPS // 5,
    ),
    "linear unit noisy_sgd": (
        lambda: LinearUnit(theta_star=(1.0, -0.5), label_var=0.1),
        NormalLaw((0.0, 0.0), (0.5, 0.5)).sample_streams,
        "noisy_sgd",
        {"eps": 1e-3, "batch": 2, "beta": 8.0},
        12,
        STEPS,
    ),
    "linear unit online_sgd l2": (
        lambda: LinearUnit(theta_star=(1.0,)),
        NormalLaw((0.0,), (0.5,)).sample_streams,
        "online_sgd",
        {"eps": 1e-3, "l2": 0.1},
        12,
        STEPS,
    ),
    "linear unit gd": (
        lambda: LinearUnit(theta_star=(1.0, -0.5, 2.0)),
        NormalLaw((0.0, 0.0, 0.0), (0.5, 0.5, 0.5)).sample_streams,
        "gd",
        {"eps": 1e-3, "l2": 0.1},
        12,
        STEPS,
    ),
    "cosine gd": (
        lambda: CosineInteraction(quartic=1.0, quadratic=-1.0, ndim=2, tilt=0.2),
        NormalLaw((0.0, 0.3), (0.4, 0.4)).sample_streams,
        "gd",
        {"eps": 1e-3},
        12,
        STEPS,
    ),
    "cosine noisy_sgd": (
        lambda: CosineInteraction(quartic=1.0, quadratic=-1.0),
        NormalLaw((0.0,), (0.4,)).sample_streams,
        "noisy_sgd",
        {"eps": 1e-3, "beta": 5.0},
        12,
        STEPS,
    ),
    "quadratic noisy_sgd l2": (
        lambda: QuadraticPotential(stiffness=(1.0, 2.0), center=(0.5, -1.0), ndim=2),
        NormalLaw((1.0, 0.0), (0.5, 0.5)).sample_streams,
        "noisy_sgd",
        {"eps": 1e-3, "l2": 0.1, "beta": 4.0},
        12,
        STEPS,
    ),
    "quadratic online_sgd": (
        lambda: QuadraticPotential(),
        NormalLaw((1.0,), (0.5,)).sample_streams,
        "online_sgd",
        {"eps": 1e-3},
        12,
        STEPS,
    ),
    "quadratic gd": (
        lambda: QuadraticPotential(),
        NormalLaw((1.0,), (0.5,)).sample_streams,
        "gd",
        {"eps": 1e-3},
        12,
        STEPS,
    ),
}


def _options(method: str, options: dict) -> dict:
    out = {"batch": 1, "time_change": TimeChange(), "l2": 0.0, "beta": math.inf}
    out.update(options)
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_compiled_engine_follows_the_numpy_steps(name: str) -> None:
    _compare(*CASES[name], name=name)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["isotropic gd", "anisotropic gd"])
def test_pair_gd_follows_the_numpy_steps_for_ten_thousand_steps(name: str) -> None:
    factory, law, method, options, n_units, _ = CASES[name]
    _compare(factory, law, method, options, n_units, STEPS, name=name)


def _compare(factory, law, method, options, n_units, steps, *, name: str) -> None:
    model = factory()
    options = _options(method, options)
    rng = CounterRNG.from_seed(11, 2, np)
    theta0 = law(rng, n_units)
    step = make_step(method, model, rng, NUMPY, **options)
    state = EnsembleState(theta0)
    for _ in range(steps):
        state = step(state)
    advance = make_advance(model, rng, method=method, **options)
    # three uneven calls: the kernels restart at any step, as a resumed run does
    compiled = EnsembleState(theta0)
    for stop in (steps // 7, steps // 2 + 3, steps):
        compiled = advance(compiled, stop)
    assert compiled.step == state.step == steps
    moved = np.max(np.abs(state.theta - theta0))
    assert moved > 1e-3 * np.max(np.abs(theta0)), "the reference did not move: a void test"
    error = np.max(np.abs(compiled.theta - state.theta)) / np.max(np.abs(state.theta))
    assert error <= RTOL, (name, error)
    np.testing.assert_array_equal(theta0, law(CounterRNG.from_seed(11, 2, np), n_units))


def test_state_is_never_modified_in_place() -> None:
    """A one-parameter model's (R, D, N) copy is C-ordered like its state: still a copy."""
    model = QuadraticPotential()
    rng = CounterRNG.from_seed(0, 2, np)
    theta0 = NormalLaw((1.0,), (0.5,)).sample_streams(rng, 5)
    kept = theta0.copy()
    advance = make_advance(model, rng, method="gd", eps=0.1, batch=1, time_change=TimeChange())
    after = advance(EnsembleState(theta0), 10)
    np.testing.assert_array_equal(theta0, kept)
    assert np.max(np.abs(after.theta - kept)) > 0.1


def test_same_seed_same_bytes() -> None:
    """The compiled path is deterministic: replicas run in parallel but each alone."""
    model = IsotropicGaussians(10, 0.8, ACTIVATIONS["mmn"])
    runs = []
    for _ in range(2):
        rng = CounterRNG.from_seed(3, 4, np)
        advance = make_advance(
            model, rng, method="online_sgd", eps=1e-3, batch=1, time_change=TimeChange()
        )
        runs.append(
            advance(EnsembleState(ScaledChiLaw(0.8, 10).sample_streams(rng, 30)), 2000).theta
        )
    np.testing.assert_array_equal(runs[0], runs[1])


def test_a_replica_alone_follows_the_same_path() -> None:
    """Replicas are independent: replica 1 of 3 equals itself run with its own stream alone
    (the data chunking depends on the ensemble size, so the NumPy chunk length is matched by
    running 3 streams with the same key)."""
    model = IsotropicGaussians(6, 0.8, ACTIVATIONS["mmn"])
    rng = CounterRNG.from_seed(5, 3, np)
    theta0 = ScaledChiLaw(0.8, 6).sample_streams(rng, 10)
    options = {"method": "online_sgd", "eps": 1e-3, "batch": 1, "time_change": TimeChange()}
    full = make_advance(model, rng, **options)(EnsembleState(theta0), 500).theta
    same = rng.select([1, 1, 1])
    alone = make_advance(model, same, **options)(
        EnsembleState(np.repeat(theta0[1:2], 3, axis=0)), 500
    ).theta
    np.testing.assert_array_equal(alone[0], full[1])


def test_engine_selection() -> None:
    iso = IsotropicGaussians(8, 0.8, ACTIVATIONS["mmn"])
    assert select_engine("auto", iso, "online_sgd", "numpy").engine == "compiled"
    assert select_engine("numpy", iso, "online_sgd", "numpy").engine == "numpy"
    assert select_engine("auto", iso, "online_sgd", "array_api_strict").engine == "numpy"
    assert select_engine("compiled", iso, "online_sgd", "cupy").engine == "compiled"  # GPU twin
    with pytest.raises(ValueError, match="GPU kernel runs one-pass SGD"):
        select_engine("compiled", iso, "gd", "cupy")
    assert "no compiled kernel" in select_engine("auto", object(), "gd", "numpy").reason
    with pytest.raises(ValueError, match="unknown engine"):
        select_engine("fast", iso, "gd", "numpy")


def _shipped(*overrides: str):
    from pathlib import Path

    from meanfield.config import load_config

    root = Path(__file__).resolve().parents[2]
    return load_config(
        root / "data" / "configs" / "mmn-isotropic.toml",
        [
            "dynamics.t_end=0.002",
            "dynamics.save_times=[0.0, 0.001, 0.002]",
            "particles.step=1e-4",
            "particles.n=20",
            "particles.replicas=2",
            *overrides,
        ],
    )


def test_config_picks_the_engine_and_checks_the_dtype() -> None:
    from meanfield.config import ConfigError
    from meanfield.config.builders import build_particle_setup  # noqa: PLC0415
    from particles.run import build_particle_run, simulate

    compiled = build_particle_run(build_particle_setup(_shipped()))
    assert compiled.engine == "compiled"
    reference = build_particle_run(build_particle_setup(_shipped('particles.engine="numpy"')))
    assert reference.engine == "numpy"
    frames = [simulate(run) for run in (compiled, reference)]
    for a, b in zip(*frames, strict=True):
        np.testing.assert_allclose(a.risk, b.risk, rtol=1e-12)
        np.testing.assert_allclose(a.reduced, b.reduced, rtol=1e-12)
    single = build_particle_run(build_particle_setup(_shipped('particles.dtype="float32"')))
    assert single.state.theta.dtype == np.float32
    with pytest.raises(ConfigError, match="particles.dtype"):
        build_particle_run(
            build_particle_setup(_shipped('particles.dtype="float32"', 'particles.engine="numpy"'))
        )
