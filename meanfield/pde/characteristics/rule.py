"""The initial law as weighted points: a composite Gauss rule in normal scores, refined by splits.

Every reduced axis ``a`` of the shipped initial laws is independent of the others and has a
smooth quantile function, so each axis is written through its normal score ``z``:
``x_a = Q_a(Phi(z))`` (``Q_a`` the quantile function, ``Phi`` the standard normal CDF;
:meth:`from_score` of the one-axis laws of :mod:`meanfield.model.laws`). A *cell* is a box of
probability intervals ``[u_lo, u_hi]`` per axis; its mass is the product of their lengths,
exactly. Inside a cell each axis gets the ``k``-point Gauss rule of its law restricted to the
interval (nodes in ``x`` itself, so polynomials in ``x`` of degree ``2k - 1`` are integrated
exactly on the cell), and the cell's points are their tensor product.

Why this rule (measured in ``tests/meanfield/test_characteristics_rule.py`` and the notes of
``docs/solver.md``):

* A plain Gauss rule of each axis (Gauss-Hermite for a normal axis) converges fastest on smooth
  integrands but cannot be refined locally: after the split of MMN's Fig. 1 the pushed-forward
  law has a front in the initial coordinate, and a global rule has no cell to split.
* Equal-mass (quantile) cells refine easily but waste their resolution in the tails: the end
  cells reach to infinity and their Gauss nodes sit far from most of their mass (the second
  moment of a normal converges only like ``1/M``).
* Cells uniform in the normal score on ``[-Z, Z]`` (the two outer cells reach to infinity),
  with ``Z = 1.5 + sqrt(2 ln n)`` for ``n`` cells, and a Gauss rule matched to the law inside
  each cell, integrate smooth functions to order ``2k`` and functions with kinks to order 2;
  polynomials of degree ``< 2k`` exactly, the tails included.

Splitting a cell cuts one of its intervals at the middle of its probability (the two children
carry equal mass, also in a tail cell) or into ``2^l`` equal-mass pieces; the children get their
own Gauss rules. :class:`CellRule` holds the cells; the points of cell ``c`` are rows
``c k^D .. (c + 1) k^D - 1`` of :meth:`CellRule.points`, in C order of their node indices.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

__all__ = ["CellRule", "axis_gauss_rule", "discrete_gauss_rule", "score_span", "axis_laws_of"]

#: Gauss-Legendre nodes that discretise one interval of normal scores before the Lanczos step
SUBNODES = 64
#: a semi-infinite interval of scores is cut this far beyond its finite end (mass beyond:
#: ``Phi(-12) < 2e-33`` of the interval's, below round-off); its mass stays exact
TAIL_SPAN = 12.0
_GL = np.polynomial.legendre.leggauss(SUBNODES)


def score_span(n_cells: int) -> float:
    """``Z``: the initial cells of an axis are uniform in the normal score on ``[-Z, Z]``.

    ``Z = 1.5 + sqrt(2 ln n)`` grows like the largest of ``n`` normal scores; on the test
    integrands (moments, ``exp``, kinks) it is within a factor 2 of the best fixed ``Z`` for
    every ``n`` from 4 to 64.
    """
    return 1.5 + math.sqrt(2.0 * math.log(max(n_cells, 2)))


def axis_laws_of(law: Any, n_axes: int) -> tuple[Any, ...]:
    """The independent one-axis laws of ``law`` (its :meth:`axis_laws`), checked."""
    getter = getattr(law, "axis_laws", None)
    if getter is None:
        raise ValueError(
            f"the initial law {type(law).__name__} has no axis_laws(): the "
            "characteristics solver needs independent axes with quantile "
            "functions (from_score)"
        )
    laws = tuple(getter())
    if len(laws) != n_axes or not all(hasattr(a, "from_score") for a in laws):
        raise ValueError(
            f"the initial law {type(law).__name__} gives {len(laws)} axis laws "
            f"for {n_axes} reduced axes, or one without from_score"
        )
    return laws


def discrete_gauss_rule(
    nodes: np.ndarray, weights: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k``-point Gauss rule of the discrete measure ``sum_i weights_i delta_{nodes_i}``.

    Lanczos on ``diag(nodes)`` started from ``sqrt(weights)`` (full reorthogonalisation) gives
    the Jacobi matrix of the measure's orthogonal polynomials; its eigenvalues are the Gauss
    nodes and the squared first components of its eigenvectors, times the mass, the weights
    (Golub and Welsch). The rule integrates polynomials of degree ``< 2k`` exactly against the
    discrete measure. ``nodes`` with fewer than ``k`` distinct values give repeated nodes.
    """
    mass = float(np.sum(weights))
    scale = float(np.max(np.abs(nodes))) or 1.0
    x = nodes / scale
    q = np.sqrt(weights / mass)
    basis = [q]
    alpha, beta = [], []
    for j in range(k):
        v = x * basis[-1]
        alpha.append(float(basis[-1] @ v))
        for b in basis:  # twice is enough (Kahan)
            v -= (b @ v) * b
        for b in basis:
            v -= (b @ v) * b
        norm = float(np.linalg.norm(v))
        if j < k - 1:
            if norm <= 1e-14 * math.sqrt(len(x)):  # the measure has fewer than k points
                alpha += [alpha[-1]] * (k - 1 - j)
                beta += [0.0] * (k - 1 - j)
                break
            beta.append(norm)
            basis.append(v / norm)
    jacobi = np.diag(alpha) + np.diag(beta, 1) + np.diag(beta, -1)
    values, vectors = np.linalg.eigh(jacobi)
    w = vectors[0] ** 2
    return values * scale, mass * w / w.sum()


def axis_gauss_rule(
    law: Any, u_lo: float, u_hi: float, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``k`` nodes and weights of ``law`` restricted to the probability interval
    ``[u_lo, u_hi]`` (the weights sum to ``u_hi - u_lo`` up to round-off), and the CDF of
    ``law`` at the nodes.

    The interval of scores ``[Phi^-1(u_lo), Phi^-1(u_hi)]`` (a semi-infinite end cut
    :data:`TAIL_SPAN` beyond the finite one) is discretised by :data:`SUBNODES` Gauss-Legendre
    nodes with the normal density as weight, mapped to ``x`` by ``law.from_score``, and reduced
    to ``k`` points by :func:`discrete_gauss_rule`. The CDF at a node is ``Phi(z)`` of its score,
    interpolated between the discretisation's nodes (``x(z)`` is increasing).
    """
    z_lo = -math.inf if u_lo <= 0.0 else float(special.ndtri(u_lo))
    z_hi = math.inf if u_hi >= 1.0 else float(special.ndtri(u_hi))
    if math.isinf(z_lo) and math.isinf(z_hi):
        z_lo, z_hi = -TAIL_SPAN, TAIL_SPAN
    elif math.isinf(z_lo):
        z_lo = z_hi - TAIL_SPAN
    elif math.isinf(z_hi):
        z_hi = z_lo + TAIL_SPAN
    g, w = _GL
    half = 0.5 * (z_hi - z_lo)
    z = z_lo + half * (1.0 + g)
    density = half * w * np.exp(-0.5 * z * z)
    x = np.asarray(law.from_score(z), dtype=np.float64)
    nodes, weights = discrete_gauss_rule(x, density, k)
    scores = np.interp(nodes, x, z)
    return nodes, weights / weights.sum() * (u_hi - u_lo), special.ndtr(scores)


@dataclass(frozen=True)
class CellRule:
    """A product law discretised by cells of probability intervals, ``k`` Gauss nodes per axis.

    Parameters
    ----------
    laws : tuple of one-axis laws (each with ``from_score``), one per reduced axis
    u_lo, u_hi : arrays of shape ``(n_cells, n_axes)``
        The probability interval of every cell along every axis.
    gauss : int
        Nodes per axis and cell, ``k`` (``k^D`` points per cell).
    """

    laws: tuple[Any, ...]
    u_lo: np.ndarray
    u_hi: np.ndarray
    gauss: int = 2

    @classmethod
    def uniform(cls, laws: Sequence[Any], cells: Sequence[int], gauss: int = 2) -> CellRule:
        """``cells[a]`` cells per axis, uniform in the normal score on ``[-Z, Z]`` with
        ``Z = score_span(cells[a])`` (the outer two reach to infinity), every combination."""
        if len(cells) != len(laws):
            raise ValueError(f"need one cell count per axis ({len(laws)}), got {len(cells)}")
        edges = []
        for n in cells:
            if int(n) < 1:
                raise ValueError(f"cells per axis must be >= 1, got {n}")
            span = score_span(int(n))
            inner = np.linspace(-span, span, int(n) + 1)[1:-1]
            edges.append(np.concatenate([[0.0], special.ndtr(inner), [1.0]]))
        mesh = np.meshgrid(*(np.arange(len(e) - 1) for e in edges), indexing="ij")
        index = np.stack([m.ravel() for m in mesh], axis=-1)
        lo = np.stack([edges[a][index[:, a]] for a in range(len(laws))], axis=-1)
        hi = np.stack([edges[a][index[:, a] + 1] for a in range(len(laws))], axis=-1)
        return cls(tuple(laws), lo, hi, int(gauss))

    @property
    def n_axes(self) -> int:
        return len(self.laws)

    @property
    def n_cells(self) -> int:
        return int(self.u_lo.shape[0])

    @property
    def points_per_cell(self) -> int:
        return self.gauss**self.n_axes

    @property
    def n_points(self) -> int:
        return self.n_cells * self.points_per_cell

    def masses(self) -> np.ndarray:
        """The probability of every cell, ``(n_cells,)``."""
        return np.prod(self.u_hi - self.u_lo, axis=1)

    def points(self) -> tuple[np.ndarray, np.ndarray]:
        """Points ``(M, D)`` and weights ``(M,)``, ``M = n_cells k^D``, weights summing to 1."""
        x, w, _ = self.tabulate()
        return x, w

    def quantiles(self) -> np.ndarray:
        """The CDF of each axis's law at each point, ``(M, D)``. On one axis a flow keeps the
        points in order, so this is also the CDF of ``rho_t`` at ``X_j(t)``
        (:func:`~.density.deposit`)."""
        return self.tabulate()[2]

    def tabulate(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`points`, weights and :meth:`quantiles` in one pass over the cells."""
        k, n_axes = self.gauss, self.n_axes
        cache: dict[tuple[int, float, float], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        grid = self.node_index()  # (k^D, D)
        x = np.empty((self.n_cells, k**n_axes, n_axes))
        u = np.empty_like(x)
        w = np.ones((self.n_cells, k**n_axes))
        for c in range(self.n_cells):
            for a in range(n_axes):
                key = (a, float(self.u_lo[c, a]), float(self.u_hi[c, a]))
                if key not in cache:
                    cache[key] = axis_gauss_rule(self.laws[a], key[1], key[2], k)
                nodes, weights, cdf = cache[key]
                x[c, :, a] = nodes[grid[:, a]]
                u[c, :, a] = cdf[grid[:, a]]
                w[c] *= weights[grid[:, a]]
        w = w.reshape(-1)
        return x.reshape(-1, n_axes), w / w.sum(), u.reshape(-1, n_axes)

    def node_index(self) -> np.ndarray:
        """The Gauss node index per axis of the points of one cell, ``(k^D, D)``."""
        k = self.gauss
        mesh = np.meshgrid(*([np.arange(k)] * self.n_axes), indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=-1)

    def split(self, marks: Mapping[int, tuple[int, int]]) -> CellRule:
        """The rule with cell ``c`` cut along axis ``a`` into ``p`` equal-mass pieces for every
        ``c: (a, p)`` of ``marks``; other cells are kept, in order, children after them."""
        keep = np.ones(self.n_cells, dtype=bool)
        lo, hi = [self.u_lo], [self.u_hi]
        for c, (axis, pieces) in sorted(marks.items()):
            keep[c] = False
            cuts = np.linspace(self.u_lo[c, axis], self.u_hi[c, axis], int(pieces) + 1)
            child_lo = np.repeat(self.u_lo[c][None], pieces, axis=0)
            child_hi = np.repeat(self.u_hi[c][None], pieces, axis=0)
            child_lo[:, axis], child_hi[:, axis] = cuts[:-1], cuts[1:]
            lo.append(child_lo)
            hi.append(child_hi)
        lo[0], hi[0] = self.u_lo[keep], self.u_hi[keep]
        return CellRule(self.laws, np.concatenate(lo), np.concatenate(hi), self.gauss)
