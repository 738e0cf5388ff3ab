"""The distributional dynamics on a grid: right-hand side and functionals, no stepping, no I/O.

.. math::

    \\partial_\\tau \\rho = 2 \\nabla \\cdot (\\rho \\nabla \\Psi_{eff})
                          + \\frac{2}{\\beta} \\Delta\\rho,
    \\qquad
    \\Psi_{eff} = V + \\int U \\rho + \\frac{\\lambda}{2} |\\theta|^2 - \\frac{1}{\\beta} \\log J,

in the time-changed time ``tau = int xi dt`` (:mod:`~meanfield.schedules`). It is the
Wasserstein gradient flow, at speed 2, of the free energy

.. math::

    F(\\rho) = \\tfrac12 R(\\rho) + \\frac{\\lambda}{2} \\int |\\theta|^2 \\rho
               + \\frac{1}{\\beta} \\int \\rho (\\log\\rho - \\log J),
    \\qquad R(\\rho) = R_\\# + 2 \\int V \\rho + \\iint U \\rho \\rho .

References
----------
S. Mei, A. Montanari, P.-M. Nguyen, PNAS 115 (2018), eq. (7).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..backends.arrays import Backend
from ..grid import Grid
from ..model.base import ReducedModel
from .operators import make_noisy_transport_fn, make_potential_fn, make_transport_fn

__all__ = ["MeanFieldPDE", "RhsValue", "Functionals", "build_rhs", "build_functionals"]


Array = Any


class RhsValue(NamedTuple):
    """``drho / dtau``, the potential ``Psi`` it came from, and the positivity rate bound."""

    drho: Array
    psi: Array
    rate: Array


class Functionals(NamedTuple):
    """Risk, free energy and mass of a density (0-d arrays of the backend)."""

    risk: Array
    free_energy: Array
    mass: Array


@dataclass(frozen=True)
class MeanFieldPDE:
    """The DD of ``model`` on ``grid``.

    Parameters
    ----------
    model : ReducedModel
    grid : Grid
    beta : float
        Inverse temperature (``inf``: noiseless).
    l2 : float
        The ridge coefficient ``lambda``.
    order : {1, 2}
        Upwind reconstruction order of the noiseless flux (noise uses Scharfetter-Gummel).
    limiter : {"mc", "minmod", "vanleer"}
        Slope limiter of the second-order reconstruction.
    """

    model: ReducedModel
    grid: Grid
    beta: float = math.inf
    l2: float = 0.0
    order: int = 2
    limiter: str = "mc"

    @property
    def noisy(self) -> bool:
        """Whether the dynamics has noise (a finite ``beta``: the diffusion term is on)."""
        return math.isfinite(self.beta)

    def make_rhs(self, backend: Backend, dtype: Any = None) -> Callable[[Array], RhsValue]:
        """Return ``rhs(rho) -> RhsValue`` in the time-changed time (``xi = 1``).

        ``rho`` has shape ``grid.shape``, or ``(S, *grid.shape)`` for S runs stepped together:
        they share the kernel products as extra columns (:mod:`~meanfield.pde.sweep`).
        """
        psi_fn, extra, _ = self._potential_parts(backend, dtype)
        return build_rhs(self.grid, self.transport_fn(backend), psi_fn, extra, backend.xp)

    def make_functionals(
        self, backend: Backend, dtype: Any = None
    ) -> Callable[[Array, Array | None], Functionals]:
        """Return ``functionals(rho, psi=None)``; pass ``psi = Psi[rho]`` when already known.

        With leading run axes in ``rho`` each functional has those axes.
        """
        psi_fn, _, parts = self._potential_parts(backend, dtype)
        return build_functionals(
            self.grid, self.model.r_sharp, self.beta, self.l2, psi_fn, parts, backend.xp
        )

    def transport_fn(self, backend: Backend | None = None) -> Callable:
        """The flux divergence of this equation (noisy or noiseless), its elementwise kernels
        fused by ``backend`` (:meth:`Backend.fuse <meanfield.backends.Backend.fuse>`)."""
        fuse = None if backend is None else backend.fuse
        return (
            make_noisy_transport_fn(self.grid, self.beta, fuse)
            if self.noisy
            else make_transport_fn(self.grid, self.order, self.limiter, fuse)
        )

    def host_parts(self) -> tuple:
        """NumPy arrays on the cell centres: ``V``, kernel features, ``|theta|^2``, ``log J``."""
        points = self.grid.points()
        self.model.check_noise(self.beta)
        return (
            self.model.potential(points),
            self.model.kernel_features(points),
            self.model.norm_sq(points),
            self.model.log_jacobian(points),
        )

    def extra_potential(self, norm_sq: Any, log_jac: Any) -> Any:
        """``(lambda/2) |theta|^2 - log J / beta``: the non-interacting part of ``Psi_eff - V``."""
        extra = 0.5 * self.l2 * norm_sq
        return extra - log_jac / self.beta if self.noisy else extra

    def _potential_parts(self, backend: Backend, dtype: Any) -> tuple:
        """Move the model's setup-time arrays to the backend once."""
        potential, kernel, norm_sq, log_jac = self.host_parts()

        def to_xp(a: Any) -> Array:
            return backend.asarray(a, dtype)

        psi_fn = make_potential_fn(potential, kernel, to_xp)
        extra = self.extra_potential(norm_sq, log_jac)
        return psi_fn, to_xp(extra), (to_xp(potential), to_xp(norm_sq), to_xp(log_jac))


def build_rhs(
    grid: Grid, transport: Callable, psi_fn: Callable, extra: Array, xp: Any
) -> Callable[[Array], RhsValue]:
    """``rhs(rho)`` from its parts; ``rho`` of shape ``(..., *grid.shape)``."""
    volume = grid.cell_volume

    def rhs(rho: Array) -> RhsValue:
        runs = rho.shape[: rho.ndim - grid.ndim]
        psi = psi_fn(xp.reshape(rho, (*runs, -1)) * volume)
        drho, rate = transport(rho, xp.reshape(psi + extra, rho.shape), xp)
        return RhsValue(drho, psi, rate)

    return rhs


def build_functionals(
    grid: Grid, r_sharp: Any, beta: float, l2: float, psi_fn: Callable, parts: tuple, xp: Any
) -> Callable[[Array, Array | None], Functionals]:
    """``functionals(rho, psi=None)`` from its parts (``parts = (V, |theta|^2, log J)`` on the
    cells); sums run over the cells, so leading run axes of ``rho`` stay."""
    v, norm_sq, log_jac = parts
    volume = grid.cell_volume

    def functionals(rho: Array, psi: Array | None = None) -> Functionals:
        runs = rho.shape[: rho.ndim - grid.ndim]
        flat = xp.reshape(rho, (*runs, -1))
        m = flat * volume
        psi = psi_fn(m) if psi is None else psi
        risk = r_sharp + xp.sum(m * (v + psi), axis=-1)
        mass = xp.sum(m, axis=-1)
        free = 0.5 * risk
        if l2:
            free = free + 0.5 * l2 * xp.sum(m * norm_sq, axis=-1)
        if math.isfinite(beta):
            positive = flat > 0
            logs = xp.log(xp.where(positive, flat, xp.ones_like(flat)))
            entropy = xp.where(positive, m * (logs - log_jac), 0.0 * m)
            free = free + xp.sum(entropy, axis=-1) / beta
        return Functionals(risk, free, mass)

    return functionals
