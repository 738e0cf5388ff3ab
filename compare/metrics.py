"""Distances between a particle snapshot and the PDE density (host NumPy code).

The PDE density is a vector of cell averages ``density`` of shape ``(M,)`` on the edges
``edges`` of shape ``(M + 1,)``, with ``sum(density * diff(edges)) == 1``. It is read as the
EXACT piecewise-constant density, so its CDF :math:`F` is continuous and piecewise linear with
kinks at the edges:

.. math::

    F(r) = F(e_i) + \\rho_i (r - e_i), \\qquad e_i \\le r \\le e_{i+1},

0 below ``edges[0]`` and 1 above ``edges[-1]``. A particle snapshot is an array of reduced
coordinates of shape ``(R, n)`` in 1-D or ``(R, n, k)`` for ``k = 2, 3`` (``R`` independent
replicas of ``n`` particles); every distance returns one value per replica, shape ``(R,)``,
computed for all replicas at once.

References
----------
.. [1] E. del Barrio, E. Gine, C. Matran, "Central limit theorems for the Wasserstein distance
   between the empirical and the true distributions", Ann. Probab. 27 (1999) 1009-1071.
.. [2] S. Mei, A. Montanari, P.-M. Nguyen, "A mean field view of the landscape of two-layer
   neural networks", PNAS 115 (2018) E7665-E7671.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import stats

from compare.observables import cell_monomial_integrals

__all__ = [
    "grid_cdf",
    "grid_quantile",
    "ks_to_grid",
    "moment_errors",
    "random_directions",
    "sliced_w1_to_grid",
    "w1_limit_constant",
    "w1_to_grid",
]

#: |mass - 1| above this is a caller error, not round-off (the PDE conserves mass to ~1e-13)
_MASS_TOL = 1e-6

#: below this cell mass the closed form of w1_limit_constant cancels; a Gauss rule is used
_SMALL_MASS = 1e-6


def _cdf_at_edges(edges: np.ndarray, density: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``edges`` (M + 1,) and ``F(edges)`` (M + 1,), normalised so ``F[-1] == 1``."""
    edges = np.asarray(edges, dtype=float)
    density = np.asarray(density, dtype=float)
    if edges.ndim != 1 or density.shape != (edges.size - 1,):
        raise ValueError(
            f"need edges (M + 1,) and density (M,), got {edges.shape} and {density.shape}"
        )
    if not np.all(np.diff(edges) > 0):
        raise ValueError("edges must be strictly increasing")
    if np.any(density < 0):
        raise ValueError("density must be non-negative")
    masses = density * np.diff(edges)
    total = masses.sum()
    if abs(total - 1.0) > _MASS_TOL:
        raise ValueError(f"density must have mass 1, got {total!r}")
    # round-off may push the cumulative sum a few ulps past 1 before the last edge
    cdf = np.minimum(np.concatenate(([0.0], np.cumsum(masses) / total)), 1.0)
    cdf[-1] = 1.0
    return edges, cdf


def grid_cdf(edges: np.ndarray, density: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """The exact CDF of the piecewise-constant density.

    Parameters
    ----------
    edges : array of shape (M + 1,)
        Strictly increasing cell edges.
    density : array of shape (M,)
        Non-negative cell averages of mass 1.

    Returns
    -------
    cdf_fn : callable
        ``cdf_fn(x)`` for ``x`` of any shape: :math:`F(x)`, piecewise linear between the edges,
        0 below ``edges[0]`` and 1 above ``edges[-1]``.
    """
    edges, cdf = _cdf_at_edges(edges, density)
    return lambda x: np.interp(x, edges, cdf, left=0.0, right=1.0)


def grid_quantile(edges: np.ndarray, density: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """The quantile function :math:`F^{-1}` of the piecewise-constant density.

    Parameters
    ----------
    edges : array of shape (M + 1,)
        Strictly increasing cell edges.
    density : array of shape (M,)
        Non-negative cell averages of mass 1.

    Returns
    -------
    quantile_fn : callable
        ``quantile_fn(u)`` for ``u`` in (0, 1) of any shape:
        :math:`\\inf\\{x : F(x) \\ge u\\}`, linear inside each cell of positive mass (cells of
        zero mass are skipped). ``quantile_fn(U)`` with ``U`` uniform on (0, 1) is an exact
        sample of the density.
    """
    edges, cdf = _cdf_at_edges(edges, density)
    masses = np.diff(cdf)

    def quantile_fn(u: np.ndarray) -> np.ndarray:
        u = np.asarray(u, dtype=float)
        cell = np.clip(np.searchsorted(cdf, u, side="left") - 1, 0, masses.size - 1)
        mass = masses[cell]
        frac = np.divide(u - cdf[cell], mass, out=np.zeros_like(u), where=mass > 0)
        return edges[cell] + np.clip(frac, 0.0, 1.0) * (edges[cell + 1] - edges[cell])

    return quantile_fn


def _check_samples(samples: np.ndarray, ndim: int) -> np.ndarray:
    samples = np.asarray(samples, dtype=float)
    if samples.ndim != ndim:
        shape = "(R, n)" if ndim == 2 else "(R, n, k)"
        raise ValueError(f"samples must have shape {shape}, got {samples.shape}")
    return samples


def _abs_linear_integral(length: np.ndarray, g0: np.ndarray, g1: np.ndarray) -> np.ndarray:
    """:math:`\\int_0^L |g(x)|\\, dx` for ``g`` linear from ``g0`` to ``g1`` (elementwise).

    Same sign: the trapezoid :math:`L (|g_0| + |g_1|) / 2` is exact. A sign change at
    :math:`x^* = L |g_0| / (|g_0| + |g_1|)` splits it into two triangles of total area
    :math:`L (g_0^2 + g_1^2) / (2 (|g_0| + |g_1|))`.
    """
    a0, a1 = np.abs(g0), np.abs(g1)
    total = a0 + a1
    crossing = (g0 * g1 < 0) & (total > 0)
    safe = np.where(crossing, total, 1.0)
    return np.where(crossing, length * (g0**2 + g1**2) / (2 * safe), length * total / 2)


def w1_to_grid(samples: np.ndarray, edges: np.ndarray, density: np.ndarray) -> np.ndarray:
    """Exact 1-D Wasserstein-1 distance between each empirical measure and the grid density.

    .. math::

        W_1(\\mu_n, \\rho) = \\int_{\\mathbb{R}} |F_n(r) - F(r)|\\, dr .

    The sample points and the grid edges are merged into one sorted list of breakpoints; between
    two consecutive breakpoints :math:`F_n` is constant and :math:`F` is linear, so the
    integrand is :math:`|a + b x|`, integrated in closed form (:func:`_abs_linear_integral`,
    sign changes inside an interval included). The result is exact up to round-off; samples
    outside ``[edges[0], edges[-1]]`` are allowed (there :math:`F` is 0 or 1).

    This is written by hand because :func:`scipy.stats.wasserstein_distance` handles discrete
    measures only: passing it cell centres with cell masses would replace :math:`\\rho` by a
    discretised measure and add an :math:`O(h)` error (up to :math:`h/4`), which at
    :math:`n \\sim h^{-2}` is as large as the :math:`n^{-1/2}` signal being measured.

    Parameters
    ----------
    samples : array of shape (R, n)
        Reduced coordinates, ``R`` replicas of ``n`` particles.
    edges : array of shape (M + 1,)
        Strictly increasing cell edges.
    density : array of shape (M,)
        Non-negative cell averages of mass 1.

    Returns
    -------
    array of shape (R,)
        :math:`W_1(\\mu_n^{(r)}, \\rho)` per replica. Cost :math:`O(R (n + M) \\log(n + M))`.
    """
    samples = _check_samples(samples, 2)
    edges, cdf = _cdf_at_edges(edges, density)
    n_replicas, n = samples.shape
    points = np.concatenate([samples, np.broadcast_to(edges, (n_replicas, edges.size))], axis=1)
    is_sample = np.concatenate([np.ones(n, dtype=np.int64), np.zeros(edges.size, dtype=np.int64)])
    order = np.argsort(points, axis=1, kind="stable")
    x = np.take_along_axis(points, order, axis=1)
    # F_n on the open interval (x_j, x_{j+1}): the fraction of samples at or left of x_j
    f_emp = np.cumsum(is_sample[order], axis=1)[:, :-1] / n
    f_grid = np.interp(x, edges, cdf, left=0.0, right=1.0)
    g0, g1 = f_emp - f_grid[:, :-1], f_emp - f_grid[:, 1:]
    return _abs_linear_integral(np.diff(x, axis=1), g0, g1).sum(axis=1)


def ks_to_grid(samples: np.ndarray, edges: np.ndarray, density: np.ndarray) -> np.ndarray:
    """Kolmogorov distance :math:`\\sup_r |F_n(r) - F(r)|` per replica.

    :func:`scipy.stats.kstest` against :func:`grid_cdf` along ``axis=1`` (SciPy loops over the
    replicas); exact because :math:`F` is continuous, so the supremum is attained at a sample
    point, from the left or the right. Only the statistic is returned (the asymptotic p-value,
    cheaper than the exact one, is discarded).

    Parameters
    ----------
    samples : array of shape (R, n)
        Reduced coordinates, ``R`` replicas of ``n`` particles.
    edges : array of shape (M + 1,)
    density : array of shape (M,)
        Non-negative cell averages of mass 1.

    Returns
    -------
    array of shape (R,)
    """
    samples = _check_samples(samples, 2)
    cdf_fn = grid_cdf(edges, density)
    result = stats.kstest(samples, cdf_fn, axis=1, method="asymp")
    return np.asarray(result.statistic, dtype=float).reshape(samples.shape[0])


def moment_errors(
    samples: np.ndarray,
    edges: np.ndarray,
    density: np.ndarray,
    powers: tuple[int, ...] = (1, 2),
) -> dict[int, np.ndarray]:
    """Moment errors :math:`\\langle r^p, \\mu_n \\rangle - \\langle r^p, \\rho \\rangle`.

    :math:`\\langle r^p, \\rho \\rangle = \\sum_i \\rho_i \\int_{e_i}^{e_{i+1}} r^p\\, dr` is
    exact for the piecewise-constant density
    (:func:`compare.observables.cell_monomial_integrals`).

    Parameters
    ----------
    samples : array of shape (R, n)
    edges : array of shape (M + 1,)
    density : array of shape (M,)
        Non-negative cell averages of mass 1.
    powers : tuple of int
        Non-negative exponents ``p``.

    Returns
    -------
    dict mapping each ``p`` to an array of shape (R,)
    """
    samples = _check_samples(samples, 2)
    edges, _ = _cdf_at_edges(edges, density)
    density = np.asarray(density, dtype=float)
    exact = {int(p): float(np.dot(density, cell_monomial_integrals(edges, p))) for p in powers}
    return {p: (samples**p).mean(axis=1) - value for p, value in exact.items()}


def _mean_sqrt_binomial(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Mean of :math:`\\sqrt{u (1 - u)}` over ``[lo, hi]`` (elementwise, ``0 <= lo <= hi <= 1``).

    Closed form :math:`(G(hi) - G(lo)) / (hi - lo)` with the antiderivative
    :math:`G(u) = (2u - 1)\\sqrt{u(1-u)}/4 + \\arcsin(\\sqrt{u})/4`, which is
    :math:`O(u^{3/2})` at 0 (no O(1) constant to cancel in the lower tail). Where
    ``hi - lo < _SMALL_MASS`` the difference would still cancel; there the exact mean of
    :math:`\\sqrt{u}`, :math:`\\tfrac{2}{3}(lo + \\sqrt{lo\\, hi} + hi) / (\\sqrt{lo} +
    \\sqrt{hi})`, times :math:`\\sqrt{1 - (lo + hi)/2}` is used (relative error
    :math:`O((hi - lo)^2)` for ``hi <= 1/2``; callers reflect upper-tail cells to ``u <= 1/2``).
    """

    def antiderivative(u: np.ndarray) -> np.ndarray:
        return (2 * u - 1) * np.sqrt(u * (1 - u)) / 4 + np.arcsin(np.sqrt(u)) / 4

    width = hi - lo
    small = width < _SMALL_MASS
    closed = (antiderivative(hi) - antiderivative(lo)) / np.where(small, 1.0, width)
    root_sum = np.sqrt(lo) + np.sqrt(hi)
    mean_root = np.divide(
        2 * (lo + np.sqrt(lo * hi) + hi), 3 * root_sum, out=np.zeros_like(lo), where=root_sum > 0
    )
    return np.where(small, mean_root * np.sqrt(1 - (lo + hi) / 2), closed)


def w1_limit_constant(edges: np.ndarray, density: np.ndarray) -> float:
    """Limit of :math:`\\sqrt{n}\\, E\\, W_1(\\mu_n, \\rho)` for i.i.d. samples from ``rho``.

    .. math::

        \\lim_{n \\to \\infty} \\sqrt{n}\\, E\\, W_1(\\mu_n, \\rho)
        = \\sqrt{2/\\pi} \\int \\sqrt{F(r) (1 - F(r))}\\, dr

    (del Barrio, Gine and Matran [1]_: :math:`\\sqrt{n}(F_n - F)` tends to a Brownian bridge
    :math:`B(F)`, and :math:`E|B(F(r))| = \\sqrt{2/\\pi} \\sqrt{F(1-F)}`). On a cell :math:`F`
    is linear, so the substitution :math:`u = F(r)` gives the cell integral
    :math:`h_i \\cdot \\mathrm{mean}_{[F(e_i), F(e_{i+1})]} \\sqrt{u(1-u)}` in closed form
    (:func:`_mean_sqrt_binomial`), not a quadrature. Cells in the upper half are evaluated
    through :math:`1 - F` summed from the right, so tails where :math:`1 - F < 10^{-16}` still
    count. The result is exact up to round-off: it agrees with adaptive quadrature to
    :math:`10^{-10}` relative (tested). The constant itself is sensitive to far-tail mass: a
    tail of mass :math:`m` stretching over a length :math:`L` adds about :math:`\\sqrt{m} L`, so
    a density binned by differencing a CDF near 1 (errors ~1e-16 per cell) fixes it only to
    ~1e-7 relative.

    Parameters
    ----------
    edges : array of shape (M + 1,)
    density : array of shape (M,)
        Non-negative cell averages of mass 1.

    Returns
    -------
    float
    """
    edges, cdf = _cdf_at_edges(edges, density)
    masses = np.diff(cdf)
    # 1 - F summed from the right keeps the upper tail's tiny values that 1 - cdf rounds to 0
    survival = np.concatenate((np.cumsum(masses[::-1])[::-1], [0.0]))
    upper = cdf[:-1] + cdf[1:] > 1.0  # reflect u -> 1 - u there (the integrand is symmetric)
    lo = np.where(upper, survival[1:], cdf[:-1])
    hi = np.where(upper, survival[:-1], cdf[1:])
    cell_means = _mean_sqrt_binomial(lo, np.clip(hi, lo, 1.0))
    return float(np.sqrt(2 / np.pi) * np.dot(np.diff(edges), cell_means))


def random_directions(
    n_directions: int, k: int, rng: np.random.Generator | int | None = None
) -> np.ndarray:
    """Unit vectors drawn uniformly on the sphere :math:`S^{k-1}`.

    Parameters
    ----------
    n_directions : int
    k : int
        Dimension of the reduced coordinate.
    rng : numpy.random.Generator, int or None
        The random stream, or a seed for one; ``None`` means seed 0, so that the default
        sliced distance is a deterministic function of its inputs.

    Returns
    -------
    array of shape (n_directions, k)
        Normalised standard Gaussian vectors.
    """
    rng = np.random.default_rng(0 if rng is None else rng)
    gauss = rng.standard_normal((int(n_directions), int(k)))
    return gauss / np.linalg.norm(gauss, axis=1, keepdims=True)


def sliced_w1_to_grid(
    samples: np.ndarray,
    centres: tuple[np.ndarray, ...],
    density: np.ndarray,
    cell_volume: float,
    n_directions: int = 64,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Sliced Wasserstein-1 distance between each empirical measure and a 2-D/3-D grid density.

    .. math::

        SW_1(\\mu_n, \\rho) = \\frac{1}{L} \\sum_{l=1}^{L} W_1(e_l \\# \\mu_n, e_l \\# \\rho_h),

    over ``L = n_directions`` random unit directions :math:`e_l` (:func:`random_directions`,
    the same for every replica). The grid is projected as the discrete measure :math:`\\rho_h`
    with the cell masses at the cell centres, and each 1-D distance is
    :func:`scipy.stats.wasserstein_distance` with those weights. This adds an :math:`O(h)`
    error: a cell's uniform law and its centre are at most :math:`\\sum_i |e_i| h_i / 4` apart
    in projected :math:`W_1`, so
    :math:`|SW_1(\\mu_n, \\rho_h) - SW_1(\\mu_n, \\rho)| \\le \\max_l \\sum_i |e_{l,i}| h_i / 4`.
    SciPy forces a loop over replicas and directions (``R * L`` calls); cells of zero mass are
    dropped first, which changes nothing.

    Parameters
    ----------
    samples : array of shape (R, n, k)
        Reduced coordinates, ``k = 2`` or ``3``.
    centres : tuple of k arrays, of shapes (M_1,), ..., (M_k,)
        Cell centres along each axis.
    density : array of shape (M_1, ..., M_k)
        Non-negative cell averages; ``density.sum() * cell_volume`` should be 1.
    cell_volume : float
    n_directions : int
    rng : numpy.random.Generator, int or None
        Fixes the directions (``None``: seed 0).

    Returns
    -------
    array of shape (R,)
    """
    samples = _check_samples(samples, 3)
    k = samples.shape[2]
    density = np.asarray(density, dtype=float)
    if len(centres) != k or density.shape != tuple(np.size(c) for c in centres):
        raise ValueError("centres and density must match the k axes of samples")
    directions = random_directions(n_directions, k, rng)
    weights = density.ravel() * float(cell_volume)
    keep = weights > 0
    grid_points = np.stack(np.meshgrid(*centres, indexing="ij"), axis=-1).reshape(-1, k)[keep]
    grid_proj = grid_points @ directions.T  # (P, L)
    sample_proj = samples @ directions.T  # (R, n, L)
    out = np.empty(samples.shape[0])
    for rep in range(samples.shape[0]):
        out[rep] = np.mean(
            [
                stats.wasserstein_distance(
                    sample_proj[rep, :, j], grid_proj[:, j], None, weights[keep]
                )
                for j in range(directions.shape[0])
            ]
        )
    return out
