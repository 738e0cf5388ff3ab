"""Where float32 particles are accurate enough, and where they are not.

MMN's isotropic model (d = 40, N = 200, 4 replicas), the compiled engine in float64 and float32
from the same units and random numbers. The yardstick is the finite-N bias of the risk, which
is ``7.41 / N`` at t = 0 here (``E R(mu_N) - R(rho_0) = (1/N)(int U(th, th) - int int U)``,
README): float32 is good enough when its risk stays within 1 % of ``1/N`` of float64's.

* At ``eps = 1e-5`` (2e4 steps) the two differ by about 3e-6, 1/1,500 of ``1/N``.
* At ``eps = 1e-11`` a step moves a weight by about 1e-9, a tenth of a float32 unit in the last
  place of a weight of size 0.1: the updates are rounded away, and float32 misses almost all of
  the motion of the risk (2 % of it is kept). At ``eps = 1e-10`` about half is kept; at the
  paper's ``eps = 1e-6`` (2e6 steps to t = 2) float32 is again within 2e-6 of float64.
"""

from __future__ import annotations

import numpy as np
import pytest

from meanfield.model import ACTIVATIONS, IsotropicGaussians, ScaledChiLaw
from meanfield.rng import CounterRNG
from meanfield.schedules import TimeChange
from particles.engine import make_advance
from particles.engine.population import pair_population_risk
from particles.state import EnsembleState

D, N, R = 40, 200, 4
MODEL = IsotropicGaussians(D, 0.8, ACTIVATIONS["mmn"])


def _risks(eps: float, n_steps: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    out = {}
    for dtype in ("float64", "float32"):
        rng = CounterRNG.from_seed(0, R, np)
        theta = ScaledChiLaw(0.8, D).sample_streams(rng, N)
        start = pair_population_risk(MODEL, theta)
        advance = make_advance(
            MODEL,
            rng,
            method="online_sgd",
            eps=eps,
            batch=1,
            time_change=TimeChange(),
            dtype=np.dtype(dtype),
        )
        final = advance(EnsembleState(theta.astype(dtype)), n_steps)
        assert final.theta.dtype == np.dtype(dtype)
        out[dtype] = pair_population_risk(MODEL, final.theta.astype(np.float64))
    return start, out


def test_float32_is_accurate_at_ordinary_steps() -> None:
    start, risks = _risks(1e-5, 20_000)
    moved = np.abs(risks["float64"] - start)
    assert np.all(moved > 0.1)
    assert np.max(np.abs(risks["float32"] - risks["float64"])) < 0.01 / N


@pytest.mark.parametrize("eps", [1e-11])
def test_float32_loses_updates_below_its_resolution(eps: float) -> None:
    start, risks = _risks(eps, 100_000)
    moved64 = np.abs(risks["float64"] - start)
    moved32 = np.abs(risks["float32"] - start)
    assert np.all(moved64 > 1e-6)  # float64 resolves the motion (9e-6)
    assert np.all(moved32 < 0.2 * moved64)  # float32 keeps about 2 % of it
