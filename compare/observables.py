"""Named test functions ``f`` of the reduced coordinate, on particles and on the PDE grid.

An :class:`Observable` pairs a vectorised ``f`` with its exact integral against a
piecewise-constant density: the PDE density is a vector of cell averages on the edges
``edges`` of shape ``(M + 1,)``, read as the exact density

.. math::

    \\rho(r) = \\rho_i \\quad (e_i \\le r < e_{i+1}), \\qquad
    \\langle f, \\rho \\rangle = \\sum_i \\rho_i \\int_{e_i}^{e_{i+1}} f(r)\\, dr,

never as samples at the cell centres. The studies of SPEC section 5 compare
:math:`\\langle f, \\mu_N \\rangle` (:func:`empirical`) with :math:`\\langle f, \\rho \\rangle`
(:func:`on_grid`), and :math:`N \\operatorname{Var}\\langle f, \\mu_N \\rangle` at
:math:`t = 0` with :math:`\\operatorname{Var}_\\rho(f)` (:func:`variance_on_grid`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = [
    "OBSERVABLES",
    "Observable",
    "cell_monomial_integrals",
    "empirical",
    "on_grid",
    "variance_on_grid",
]


def cell_monomial_integrals(edges: np.ndarray, power: int) -> np.ndarray:
    """Exact integrals of ``r**power`` over each grid cell.

    Parameters
    ----------
    edges : array of shape (M + 1,)
        Increasing cell edges.
    power : int
        Non-negative exponent ``p``.

    Returns
    -------
    array of shape (M,)
        :math:`\\int_{e_i}^{e_{i+1}} r^p\\, dr = h_i \\frac{1}{p + 1} \\sum_{j=0}^{p} e_i^j
        e_{i+1}^{p-j}`, the factorised form of :math:`(e_{i+1}^{p+1} - e_i^{p+1}) / (p + 1)`,
        which has no cancellation on cells of one sign (narrow cells far from 0 included).
    """
    if int(power) != power or power < 0:
        raise ValueError(f"power must be a non-negative integer, got {power}")
    edges = np.asarray(edges, dtype=float)
    left, right = edges[:-1], edges[1:]
    terms = sum(left**j * right ** (power - j) for j in range(int(power) + 1))
    return (right - left) * terms / (power + 1)


@dataclass(frozen=True)
class Observable:
    """A test function of the reduced coordinate with exact cell integrals.

    Parameters
    ----------
    name : str
        Key in :data:`OBSERVABLES`.
    fn : callable
        ``fn(r)`` elementwise on an array of any shape.
    cell_integral_fn : callable
        ``cell_integral_fn(edges, power)`` with ``edges`` of shape (M + 1,): the exact integrals
        of ``fn(r)**power`` over the cells, shape (M,), for ``power`` 1 and 2.
    """

    name: str
    fn: Callable[[np.ndarray], np.ndarray]
    cell_integral_fn: Callable[[np.ndarray, int], np.ndarray]

    def grid_value(self, edges: np.ndarray, density: np.ndarray) -> float:
        """:math:`\\langle f, \\rho \\rangle` for the piecewise-constant density (exact).

        Parameters
        ----------
        edges : array of shape (M + 1,)
        density : array of shape (M,)
            Cell averages, ``sum(density * diff(edges)) == 1``.
        """
        return float(np.dot(density, self.cell_integral_fn(np.asarray(edges, float), 1)))

    def grid_second_value(self, edges: np.ndarray, density: np.ndarray) -> float:
        """:math:`\\langle f^2, \\rho \\rangle` for the piecewise-constant density (exact)."""
        return float(np.dot(density, self.cell_integral_fn(np.asarray(edges, float), 2)))


def _monomial(name: str, degree: int) -> Observable:
    """The observable ``f(r) = r**degree``; ``f**k`` is the monomial of degree ``k * degree``."""
    return Observable(
        name=name,
        fn=lambda r: np.asarray(r, dtype=float) ** degree,
        cell_integral_fn=lambda edges, power: cell_monomial_integrals(edges, degree * power),
    )


#: the observables the studies refer to by name (``[study] observables`` in a config)
OBSERVABLES: dict[str, Observable] = {
    "mean_r": _monomial("mean_r", 1),
    "second_moment_r": _monomial("second_moment_r", 2),
}


def _get(name: str) -> Observable:
    try:
        return OBSERVABLES[name]
    except KeyError:
        raise ValueError(f"unknown observable {name!r}; known: {sorted(OBSERVABLES)}") from None


def empirical(name: str, samples: np.ndarray) -> np.ndarray:
    """:math:`\\langle f, \\mu_n \\rangle = \\frac{1}{n} \\sum_j f(r_j)` for each replica.

    Parameters
    ----------
    name : str
        Key in :data:`OBSERVABLES`.
    samples : array of shape (R, n)
        Reduced coordinates of ``n`` particles in each of ``R`` replicas.

    Returns
    -------
    array of shape (R,)
    """
    samples = np.asarray(samples, dtype=float)
    if samples.ndim != 2:
        raise ValueError(f"samples must have shape (R, n), got {samples.shape}")
    return _get(name).fn(samples).mean(axis=1)


def on_grid(name: str, edges: np.ndarray, density: np.ndarray) -> float:
    """:math:`\\langle f, \\rho \\rangle`, exact for the piecewise-constant density.

    Parameters
    ----------
    name : str
        Key in :data:`OBSERVABLES`.
    edges : array of shape (M + 1,)
    density : array of shape (M,)
        Cell averages with ``sum(density * diff(edges)) == 1``.
    """
    return _get(name).grid_value(edges, density)


def variance_on_grid(name: str, edges: np.ndarray, density: np.ndarray) -> float:
    """:math:`\\operatorname{Var}_\\rho(f) = \\langle f^2, \\rho \\rangle - \\langle f, \\rho
    \\rangle^2`, exact for the piecewise-constant density.

    This is the :math:`t = 0` limit of :math:`N \\operatorname{Var}\\langle f, \\mu_N \\rangle`
    for i.i.d. particles. Both moments are exact cell integrals; the subtraction loses about
    :math:`\\log_{10}(\\langle f^2 \\rangle / \\operatorname{Var} f)` digits (about 1.5 for
    :math:`r^2` on the isotropic model's initial law).

    Parameters
    ----------
    name : str
        Key in :data:`OBSERVABLES`.
    edges : array of shape (M + 1,)
    density : array of shape (M,)
        Cell averages with ``sum(density * diff(edges)) == 1``.
    """
    obs = _get(name)
    mean = obs.grid_value(edges, density)
    return max(obs.grid_second_value(edges, density) - mean**2, 0.0)
