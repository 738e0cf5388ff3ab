"""Log-log slopes with bootstrap confidence intervals over replicas."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SlopeFit", "loglog_slope"]


@dataclass(frozen=True)
class SlopeFit:
    """``log y = intercept + slope log n`` with a percentile bootstrap interval on the slope."""

    slope: float
    lo: float
    hi: float
    intercept: float

    def contains(self, value: float) -> bool:
        return self.lo <= value <= self.hi


def _fit(log_n: np.ndarray, means: np.ndarray) -> tuple[float, float]:
    slope, intercept = np.polyfit(log_n, np.log(means), 1)
    return float(slope), float(intercept)


def loglog_slope(
    n: np.ndarray,
    values: list[np.ndarray] | np.ndarray,
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    rng: np.random.Generator | None = None,
) -> SlopeFit:
    """Fit the mean over replicas of positive ``values`` against ``n`` on log-log axes.

    Parameters
    ----------
    n : array of shape ``(K,)``
    values : K arrays (one per ``n``) of per-replica values, e.g. ``|<f, mu_N> - <f, rho>|``
        or a distance; replica counts may differ between ``n``.
    n_boot : int
        Bootstrap resamples: replicas are resampled with replacement within each ``n``.

    Returns
    -------
    SlopeFit
    """
    rng = rng or np.random.default_rng(0)
    log_n = np.log(np.asarray(n, dtype=np.float64))
    groups = [np.asarray(v, dtype=np.float64) for v in values]
    slope, intercept = _fit(log_n, np.array([g.mean() for g in groups]))
    boot = np.empty(n_boot)
    for b in range(n_boot):
        means = np.array([g[rng.integers(0, g.size, g.size)].mean() for g in groups])
        boot[b] = _fit(log_n, means)[0]
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(boot, [tail, 100 - tail])
    return SlopeFit(slope, float(lo), float(hi), intercept)
