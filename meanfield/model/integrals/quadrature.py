"""Tensor-product Gauss rules over an input law, and the choice of their order by convergence.

* ``"gaussian"``: ``x ~ N(0, I_k)``, Gauss-Hermite with the probabilists' weight
  ``exp(-x^2/2)`` on each axis (:func:`scipy.special.roots_hermitenorm`, stable at large
  orders, unlike NumPy's ``hermegauss`` which overflows beyond a few hundred nodes), weights
  divided by ``sqrt(2 pi)``;
* ``"uniform"``: ``x`` uniform on ``[-1, 1]^k``, Gauss-Legendre on each axis
  (:func:`scipy.special.roots_legendre`), weights halved.

An ``n``-point rule per axis integrates polynomials of degree ``2n - 1`` in each coordinate
exactly against the law; for the analytic integrands of a smooth network the error decays
geometrically in ``n`` (Gauss-Legendre) or like ``exp(-c sqrt(n))`` (Gauss-Hermite, whose
nodes spread to ``~ sqrt(4n)``). The weights are positive and sum to one (to round-off).
Nodes of product weight below ``PRUNE_WEIGHT`` are dropped: far in the Gaussian tails they
change an expectation of a function of polynomial growth by less than ``1e-18``, and they
would otherwise make up most of a high-order Gauss-Hermite rule.

References
----------
P. J. Davis, P. Rabinowitz, *Methods of Numerical Integration*, 2nd ed., Academic Press (1984),
sections 2.7 (Gauss rules) and 5.6 (product rules).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special

__all__ = [
    "INPUT_LAWS",
    "GaussRule",
    "QuadratureTables",
    "gauss_rule",
    "converged_order",
    "order_ladder",
    "box_points",
    "point_chunks",
    "map_points",
    "CHUNK_ENTRIES",
]

#: the input laws with a Gauss rule
INPUT_LAWS = ("gaussian", "uniform")
#: array entries per chunk of points in the setup tables (32 MiB of float64)
CHUNK_ENTRIES = 1 << 22
#: nodes whose product weight is below this are dropped (Gauss-Hermite tails only)
PRUNE_WEIGHT = 1e-22


@dataclass(frozen=True)
class GaussRule:
    """Nodes and weights of a quadrature rule for ``E[g(x)]``.

    Attributes
    ----------
    nodes : array of shape ``(n_nodes, k)``
    weights : array of shape ``(n_nodes,)``, positive, summing to one
    order : int
        Nodes per axis (``n_nodes = order ** k`` before pruning).
    """

    nodes: np.ndarray
    weights: np.ndarray
    order: int

    @property
    def n_nodes(self) -> int:
        return int(self.weights.shape[0])

    def expectation(self, values: np.ndarray) -> np.ndarray:
        """``sum_q weights[q] values[..., q]``."""
        return np.asarray(values) @ self.weights


def gauss_rule(law: str, k: int, order: int) -> GaussRule:
    """The ``order``-point-per-axis tensor-product Gauss rule of ``law`` in ``R^k``.

    Parameters
    ----------
    law : {"gaussian", "uniform"}
    k : int
        Input dimension, ``>= 1``.
    order : int
        Nodes per axis, ``>= 1``.

    Returns
    -------
    GaussRule
        Nodes in C order of the ``(order,) * k`` product grid, those of weight below
        :data:`PRUNE_WEIGHT` dropped.
    """
    if order < 1 or k < 1:
        raise ValueError(f"order and k must be >= 1, got order={order}, k={k}")
    if law == "gaussian":
        x, w = special.roots_hermitenorm(order)
        w = w / np.sqrt(2.0 * np.pi)
    elif law == "uniform":
        x, w = special.roots_legendre(order)
        w = 0.5 * w
    else:
        raise ValueError(f"unknown input law {law!r}; allowed: {', '.join(INPUT_LAWS)}")
    mesh = np.meshgrid(*([x] * k), indexing="ij")
    nodes = np.stack([m.ravel() for m in mesh], axis=-1)
    weights = np.ones(())
    for _ in range(k):
        weights = np.multiply.outer(weights, w)
    weights = weights.ravel()
    keep = weights >= PRUNE_WEIGHT
    return GaussRule(nodes[keep], weights[keep], int(order))


def order_ladder(start: int, stop: int) -> list[int]:
    """Candidate orders growing by about ``sqrt(2)``: ``start, ..., <= stop``."""
    out = [int(start)]
    while True:
        nxt = max(out[-1] + 1, int(round(out[-1] * np.sqrt(2.0))))
        if nxt > stop:
            return out
        out.append(nxt)


def converged_order(
    quantities_fn: Callable[[int], np.ndarray], tol: float, candidates: Sequence[int]
) -> tuple[int, float]:
    """The smallest candidate ``n`` whose quantities move by at most ``tol`` when ``n`` doubles.

    Parameters
    ----------
    quantities_fn : callable ``order -> array``
        The quantities the rule must resolve (same shape for every order), already divided by
        their scale.
    tol : float
    candidates : increasing sequence of int

    Returns
    -------
    order : int
    change : float
        ``max |quantities_fn(order) - quantities_fn(2 order)|``, the error estimate of ``order``
        (the doubled rule being far more accurate for a geometrically converging rule).

    Raises
    ------
    ValueError
        When no candidate converges.
    """
    cache: dict[int, np.ndarray] = {}

    def values(n: int) -> np.ndarray:
        if n not in cache:
            cache[n] = np.asarray(quantities_fn(n))
        return cache[n]

    change = np.inf
    for n in candidates:
        change = float(np.max(np.abs(values(n) - values(2 * n))))
        if change <= tol:
            return int(n), change
    raise ValueError(
        f"the quadrature did not converge to {tol:g} by order {candidates[-1]} "
        f"(last change {change:.3g}); shrink the parameter box or raise the tolerance"
    )


def box_points(bounds: tuple[tuple[float, float], ...], n: int) -> np.ndarray:
    """``n`` equispaced points per axis of the box, ends included: ``(n ** D, D)``."""
    axes = [np.linspace(lo, hi, n) for lo, hi in bounds]
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=-1)


def point_chunks(n_points: int, per_point: int) -> list[slice]:
    """Slices of ``n_points`` points holding about ``CHUNK_ENTRIES`` array entries each."""
    size = max(1, CHUNK_ENTRIES // max(per_point, 1))
    return [slice(i, min(i + size, n_points)) for i in range(0, n_points, size)]


def map_points(
    fn: Callable[[np.ndarray], np.ndarray], points: np.ndarray, per_point: int
) -> np.ndarray:
    """``fn`` on chunks of the points (axis 0), results concatenated along axis 0."""
    points = np.asarray(points, dtype=np.float64)
    parts = [fn(points[chunk]) for chunk in point_chunks(points.shape[0], per_point)]
    return np.concatenate(parts, axis=0)


@dataclass(frozen=True)
class QuadratureTables:
    """The Gauss rule of a model and the target at its nodes (NumPy, host).

    Attributes
    ----------
    rule : GaussRule
    y : array of shape ``(n_nodes,)``
    change : float
        Relative change of the checked quantities when the order doubles (``nan`` when the
        order was given, not searched).
    """

    rule: GaussRule
    y: np.ndarray
    change: float
