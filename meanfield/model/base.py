"""The interfaces a model offers: the PDE solver (V and a low-rank U on reduced coordinates,
:class:`ReducedModel`) and the compiled particle engine (its pieces,
:class:`ParticleEngineModel`)."""

from __future__ import annotations

import functools
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from .pieces import EnginePieces

__all__ = ["KernelFeatures", "ReducedModel", "FullSpaceModel", "ParticleEngineModel", "memoized"]

_Method = TypeVar("_Method", bound=Callable[..., Any])


def memoized(method: _Method) -> _Method:
    """Cache a pure method of a frozen (hashable) model by its hashable arguments.

    For the kernel's truncation on a box (an order search or a column selection, milliseconds
    each), which every feature evaluation of the same box repeats: the characteristics solver
    evaluates the features at moving points thousands of times on one box. The cached values
    are shared: callers must not modify them.
    """
    cache = functools.lru_cache(maxsize=32)(method)

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any) -> Any:
        return cache(self, *args)

    return wrapper  # type: ignore[return-value]


@dataclass(frozen=True)
class KernelFeatures:
    """A low-rank factorisation ``U(q_i, q_j) = sum_p weights[p] features[i, p] features[j, p]``.

    Attributes
    ----------
    features : array of shape ``(n_points, n_features)``
    weights : array of shape ``(n_features,)``, non-negative (U is positive semi-definite)
    """

    features: np.ndarray
    weights: np.ndarray

    @property
    def n_features(self) -> int:
        """Number of features (the rank of the factorisation)."""
        return int(self.weights.shape[0])

    def matrix(self, other: KernelFeatures | None = None) -> np.ndarray:
        """The dense kernel matrix (small point sets only: tests and diagnostics)."""
        other = self if other is None else other
        return (self.features * self.weights) @ other.features.T


class ReducedModel(ABC):
    """A model seen by the PDE: potentials on the reduced coordinate ``q`` where the DD closes.

    The reduced risk of a law ``p`` of ``q`` is
    ``R(p) = r_sharp + 2 int V dp + int int U dp dp``, and the DD for ``p`` is the transport
    equation with velocity ``-2 xi grad_q Psi_eff``, where

    .. math::

        \\Psi_{eff}(q) = V(q) + \\int U(q, q') p(dq') + \\frac{\\lambda}{2} |\\theta|^2(q)
                        - \\frac{1}{\\beta} \\log J(q),

    ``J`` the Jacobian of the reduction (``r^{d-1}`` for ``q = |w|`` in ``R^d``): it turns the
    Laplacian of the full space into the reduced diffusion with its drift.
    """

    #: number of reduced coordinates (grid axes; 1 to 4 in the shipped models)
    ndim: int = 1
    #: names of the reduced coordinates, used as HDF5 dimension names
    axis_names: tuple[str, ...] = ("q",)

    @property
    @abstractmethod
    def r_sharp(self) -> float:
        """``E[y^2]``, the risk of the zero predictor."""

    @abstractmethod
    def potential(self, points: np.ndarray) -> np.ndarray:
        """``V`` at reduced points of shape ``(n_points, ndim)``; returns ``(n_points,)``."""

    @abstractmethod
    def kernel_features(
        self, points: np.ndarray, scale_points: np.ndarray | None = None
    ) -> KernelFeatures:
        """Low-rank factorisation of ``U`` on ``points`` (shape ``(n_points, ndim)``).

        ``scale_points`` (default ``points``) fixes the truncation, so two calls with the same
        ``scale_points`` return compatible features (same columns and weights).
        """

    @property
    def domain_lower(self) -> tuple[float, ...]:
        """The lowest value of each reduced coordinate: 0 for a radius (``r = |w|``), ``-inf``
        (the default) for a coordinate of the full space. Units that reach a radius of 0 stay
        there in the reduced flow: the characteristics solver holds its points at the bound,
        as the grid's wall holds the mass."""
        return (-math.inf,) * self.ndim

    def self_interaction(self, points: np.ndarray) -> np.ndarray:
        """``U(theta, theta) = E sigma_*(x; theta)^2`` at reduced points ``(M, ndim)``: the
        diagonal that the reduced kernel (independent directions) does not hold. It sets the
        exact ``1/N`` bias ``E R(mu_N) - R(rho) = (1/N)(int U(th, th) rho - int int U rho rho)``
        of ``N`` i.i.d. units. Optional: models without it raise ``NotImplementedError``."""
        raise NotImplementedError(f"{type(self).__name__} has no self_interaction")

    def norm_sq(self, points: np.ndarray) -> np.ndarray:
        """``|theta|^2`` as a function of the reduced coordinate (for the l2 term)."""
        return np.sum(np.asarray(points) ** 2, axis=-1)

    def log_jacobian(self, points: np.ndarray) -> np.ndarray:
        """Log-Jacobian of the reduction; zero when the grid is the full parameter space."""
        return np.zeros(np.asarray(points).shape[0])

    def check_noise(self, beta: float) -> None:  # noqa: B027  (optional hook)
        """Raise ValueError if this model cannot run with inverse temperature ``beta``."""

    def validate(self, grid: Any) -> None:  # noqa: B027  (optional hook)
        """Raise ValueError if this model cannot be set up on ``grid`` (cheap checks only)."""


class FullSpaceModel(ReducedModel):
    """A model whose grid is the parameter space itself: the particles need no reduction."""

    @property
    def dim(self) -> int:
        """Parameter dimension ``D`` of a unit: the number of grid axes."""
        return self.ndim

    def reduce(self, theta: Any, xp: Any) -> Any:
        """The identity: particles and PDE share the coordinates ``theta``."""
        return theta


@runtime_checkable
class ParticleEngineModel(Protocol):
    """What a model offers the compiled particle engine (``particles.engine``): its pieces.

    A compiled kernel cannot call a model's array methods, so the model describes its unit, its
    data law and its kernel with the plain records of :mod:`meanfield.model.pieces`, all at once:

    * ``engine_pieces()`` returns an :class:`~meanfield.model.pieces.EnginePieces`; each method
      runs on the compiled kernel whose records are given (``particles.engine.select_engine``
      says which, or why none), and on the NumPy steps otherwise. One-pass SGD needs ``unit``
      and ``data``; ``gd`` needs ``separable``, ``unit`` with ``nodes``, or ``pairs``.
    * With ``DataPieces("host")`` the engine draws no data itself: it calls the model's own
      ``sample_data(rng, counter, batch, xp)`` (the particle protocol of
      :mod:`meanfield.model.registry`) once per chunk of steps, exactly as the NumPy steps do.

    The array methods of the model stay the reference: the engine must follow them to round-off
    from the same random numbers, and a model that offers pieces should be tested so.
    """

    def engine_pieces(self) -> EnginePieces:
        """The records of :mod:`meanfield.model.pieces` this model offers the engine."""
        ...
