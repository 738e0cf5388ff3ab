"""Log-log slopes with bootstrap intervals, on synthetic data with a known exponent."""

from __future__ import annotations

import numpy as np
import pytest

from compare.fits import loglog_slope


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_slope_of_exact_power_law_noise_is_recovered(seed: int) -> None:
    """|mean of N Gaussian samples| has expectation sqrt(2/(pi N)): slope exactly -1/2."""
    rng = np.random.default_rng(seed)
    ns = np.array([25, 50, 100, 200, 400])
    groups = [np.abs(rng.standard_normal((400, n)).mean(axis=1)) for n in ns]
    fit = loglog_slope(ns, groups, rng=rng)
    assert fit.contains(-0.5), fit
    assert fit.hi - fit.lo < 0.2  # 400 replicas per N pin the slope to about +-0.05
    # the fitted line at the centre of the data (where slope errors do not move it)
    centre = np.log(ns).mean()
    expected = np.log(np.sqrt(2 / np.pi)) - 0.5 * centre
    assert abs(fit.intercept + fit.slope * centre - expected) < 0.03  # 5 x 400 replicas: ~1 %


def test_interval_coverage_is_about_nominal() -> None:
    """Over 100 synthetic studies the 95 % interval contains -1/2 in 85-100 of them (binomial
    standard deviation 2.2 around 95)."""
    rng = np.random.default_rng(7)
    ns = np.array([20, 40, 80, 160])
    hits = 0
    for _ in range(100):
        groups = [np.abs(rng.standard_normal((64, n)).mean(axis=1)) for n in ns]
        hits += loglog_slope(ns, groups, n_boot=300, rng=rng).contains(-0.5)
    assert hits >= 85, hits


def test_a_wrong_exponent_is_excluded() -> None:
    rng = np.random.default_rng(3)
    ns = np.array([25, 50, 100, 200, 400])
    groups = [np.abs(rng.standard_normal((400, 1)).ravel()) / n for n in ns]  # slope -1
    fit = loglog_slope(ns, groups, rng=rng)
    assert not fit.contains(-0.5)
    assert fit.contains(-1.0)
