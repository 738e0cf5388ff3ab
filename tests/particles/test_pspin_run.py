"""The p-spin benchmark through the particle runner: training and the batch quench."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from meanfield.config import ConfigError, load_config
from meanfield.config.builders import build_particle_setup
from particles.run import build_particle_run, simulate

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "data" / "configs" / "rve-pspin-d10.toml"
SMALL = [
    "particles.n=50",
    "particles.replicas=2",
    "particles.batch=10",
    "dynamics.t_end=30.0",
    "dynamics.save_times=[0.0, 15.0, 20.0, 30.0]",
    "particles.test_points=4000",
    "particles.quench_batch=0",
]


def _losses(*extra: str) -> tuple[np.ndarray, np.ndarray]:
    setup = build_particle_setup(load_config(CONFIG, SMALL + list(extra)))
    frames = simulate(build_particle_run(setup))
    return (np.array([f.risk for f in frames]), np.array([f.reduced for f in frames]))


def test_training_reduces_the_test_loss_from_about_d_over_two() -> None:
    loss, _ = _losses()
    # t = 0: the network is small against f (|c| ~ 1, f ~ sqrt(d)): loss near (1/2) E f^2,
    # which is 4.48 for teacher 0 at d = 10 (d/2 = 5 on average over teachers)
    assert np.all(np.abs(loss[0] - 4.5) < 0.5)
    assert np.all(loss[-1] < 0.85 * loss[0])


def test_quench_changes_the_batch_only_after_quench_time() -> None:
    _, plain = _losses()
    _, quenched = _losses("particles.quench_time=20.0", "particles.quench_batch=100")
    np.testing.assert_array_equal(plain[:3], quenched[:3])  # identical up to t = 20
    assert np.max(np.abs(plain[3] - quenched[3])) > 1e-3


def test_pspin_rejects_a_pde_section() -> None:
    with pytest.raises(ConfigError, match="no PDE"):
        load_config(CONFIG, ["pde.cells=100"])


def test_one_engine_step_is_rve_dt_times_the_gradient_of_their_batch_loss() -> None:
    """RVE's update ``Z <- Z - dt grad L_P``, ``L_P = (n / 2P) sum_p (f - f_n)^2`` over the batch,
    against one step of the engine's online SGD at ``particles.step = engine_step(dt)``."""
    from meanfield.backends import get_backend  # noqa: PLC0415
    from meanfield.model.rve.pspin import PSpin, PSpinTask, engine_step, rve_dt  # noqa: PLC0415
    from meanfield.schedules import TimeChange  # noqa: PLC0415
    from particles.methods import make_online_sgd  # noqa: PLC0415
    from particles.state import EnsembleState  # noqa: PLC0415

    d, n, batch, dt = 5, 7, 4, 0.02
    model = PSpin(d, teacher_seed=1)
    task = PSpinTask(model, model.teacher())
    gen = np.random.default_rng(3)
    x = gen.standard_normal((1, batch, d))
    x *= np.sqrt(d) / np.linalg.norm(x, axis=-1, keepdims=True)
    f = model.target(x, task.tensor, np)
    theta = np.concatenate(
        [gen.standard_normal((1, n, d)) / np.sqrt(d), gen.standard_normal((1, n, 2))], axis=-1
    )

    class FixedBatch:  # the p-spin units, fed this one batch at every step
        dim = task.dim

        def sample_data(self, rng, counter, size, xp):
            reps = size // batch
            return np.tile(x, (1, reps, 1)), np.tile(f, (1, reps))

        forward, backward = task.forward, task.backward

    step = make_online_sgd(
        FixedBatch(),
        None,
        get_backend("numpy"),
        eps=engine_step(dt),
        batch=batch,
        time_change=TimeChange(),
    )
    moved = step(EnsembleState(theta=theta, step=0)).theta - theta

    def paper_loss(th: np.ndarray) -> float:  # L_P with f_n = (1/n) sum_i sigma_*
        return float(n / (2 * batch) * np.sum((f - model.predict(x, th, np)) ** 2))

    grad = np.zeros_like(theta)
    h = 1e-6
    for idx in np.ndindex(theta.shape):
        up, down = theta.copy(), theta.copy()
        up[idx] += h
        down[idx] -= h
        grad[idx] = (paper_loss(up) - paper_loss(down)) / (2 * h)
    # central differences of a smooth function at h = 1e-6: error ~ h^2 |L'''| + 1e-16 L / h,
    # about 1e-10 here against moves of order 1e-3
    np.testing.assert_allclose(moved, -dt * grad, rtol=1e-6, atol=1e-10)
    assert rve_dt(engine_step(dt)) == dt
