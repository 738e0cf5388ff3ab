"""Densities of weighted points on a stated grid, for the output files and the figures.

The characteristics solver's law is ``sum_j w_j delta_{X_j}``; ``/pde/density`` holds it as cell
averages on the grid of ``[pde] cells`` over the box, so that everything that reads a grid
density (``meanfield plot``, the reproductions' figures, the studies' distances, the xarray
API) reads it unchanged.

* One axis: the Lagrangian reconstruction. A flow on a line keeps the points in order, so the
  CDF of ``rho_t`` at ``X_j(t)`` is the CDF of ``rho_0`` at ``X_j(0)``, known exactly from the
  rule (``quantiles``, :meth:`~.rule.CellRule.quantiles`). The CDF is interpolated linearly
  between the points (0 at the wall below the first, 1 at the wall above the last), and a
  cell's mass is the difference of the CDF at its edges: exact mass, no empty cells between
  resolved points, and an atom (coincident points) lands in one cell. Without quantiles the
  points split the line at the midpoints between neighbours, each spreading its weight over
  its interval.
* Two or more axes: the histogram (each weight in the cell that holds its point): the cell
  masses of the discrete law itself.

A point outside the box (the solver allows a little weight there, ``pde.outside_tol``) counts
in the cell at the wall it is beyond, as the grid's walls would hold it: the density keeps the
whole mass.
"""

from __future__ import annotations

import numpy as np

from ...grid import Grid

__all__ = ["deposit"]


def deposit(
    points: np.ndarray, weights: np.ndarray, grid: Grid, quantiles: np.ndarray | None = None
) -> np.ndarray:
    """Cell averages (mass / volume) of ``sum_j w_j delta_{X_j}`` on ``grid``.

    Parameters
    ----------
    points : array of shape ``(M, D)``
    weights : array of shape ``(M,)``
    grid : Grid with ``D`` axes
    quantiles : array of shape ``(M,)`` or ``(M, 1)``, optional
        One axis: the CDF of the initial law at each point's starting position.

    Returns
    -------
    array of ``grid.shape``; ``sum * cell_volume`` equals ``sum(weights)``
    """
    points = np.asarray(points, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    if grid.ndim == 1:
        x = np.clip(points[:, 0], *grid.bounds[0])
        masses = (
            _lagrangian_masses(x, weights, grid)
            if quantiles is None
            else _cdf_masses(x, np.asarray(quantiles, dtype=np.float64).reshape(-1), weights, grid)
        )
    else:
        index = []
        for a in range(grid.ndim):
            lo, _ = grid.bounds[a]
            cell = np.floor((points[:, a] - lo) / grid.spacing[a]).astype(np.int64)
            index.append(np.clip(cell, 0, grid.shape[a] - 1))
        flat = np.ravel_multi_index(tuple(index), grid.shape)
        masses = np.bincount(flat, weights=weights, minlength=grid.n_cells).reshape(grid.shape)
    return masses / grid.cell_volume


def _cdf_masses(x: np.ndarray, cdf: np.ndarray, w: np.ndarray, grid: Grid) -> np.ndarray:
    lo, hi = grid.bounds[0]
    order = np.argsort(x, kind="stable")
    xs = np.concatenate([[lo], x[order], [hi]])
    cs = np.concatenate([[0.0], np.maximum.accumulate(cdf[order]), [1.0]])
    at_edges = np.interp(grid.edges(0), xs, cs)
    at_edges[0], at_edges[-1] = 0.0, 1.0
    return np.diff(at_edges) * float(np.sum(w))


def _lagrangian_masses(x: np.ndarray, w: np.ndarray, grid: Grid) -> np.ndarray:
    lo, hi = grid.bounds[0]
    order = np.argsort(x, kind="stable")
    xs, ws = x[order], w[order]
    if xs.size == 1:
        ends = np.array([xs[0], xs[0]])
    else:
        mids = 0.5 * (xs[1:] + xs[:-1])
        ends = np.concatenate([[xs[0] - (mids[0] - xs[0])], mids, [xs[-1] + (xs[-1] - mids[-1])]])
    ends = np.clip(ends, lo, hi)
    cdf = np.concatenate([[0.0], np.cumsum(ws)])
    edges = grid.edges(0)
    at_edges = np.interp(edges, ends, cdf, left=0.0, right=cdf[-1])
    # the points were clipped to the box: the walls hold none and all of the mass (a tie at a
    # wall would otherwise give the CDF after it)
    at_edges[0], at_edges[-1] = 0.0, cdf[-1]
    return np.diff(at_edges)
