"""The p-spin benchmark through the particle runner: training and the batch quench."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from meanfield.config import ConfigError, load_config
from particles.run import build_particle_run, simulate

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "data" / "configs" / "rve-pspin-d10.toml"
SMALL = ["particles.n=50", "particles.replicas=2", "particles.batch=10", "dynamics.t_end=30.0",
         "dynamics.save_times=[0.0, 15.0, 20.0, 30.0]", "particles.test_points=4000",
         "particles.quench_batch=0"]


def _losses(*extra: str) -> tuple[np.ndarray, np.ndarray]:
    frames = simulate(build_particle_run(load_config(CONFIG, SMALL + list(extra))))
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
