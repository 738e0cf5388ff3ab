"""Discrete operators of the DD on a grid: the potential Psi[rho] and the flux divergence.

Pure array-API code: every closure here receives arrays of one namespace ``xp`` and calls only
``xp.*``, so NumPy, CuPy and ``array_api_strict`` run the same lines.

The transport is the finite-volume scheme of Carrillo, Chertock and Huang (2015): face velocities
``u_{i+1/2} = -s (Psi_{i+1} - Psi_i) / h`` (``s = 2 xi``), upwind fluxes of reconstructed face
values, zero flux through the walls, applied axis by axis. With noise (``beta < inf``) the face
flux is Scharfetter-Gummel's, exact on the discrete Gibbs state ``rho_i ~ exp(-beta Psi_i)``.

References
----------
J. A. Carrillo, A. Chertock, Y. Huang, "A finite-volume method for nonlinear nonlocal equations
with a gradient flow structure", Commun. Comput. Phys. 17 (2015) 233-258.
D. L. Scharfetter, H. K. Gummel, IEEE Trans. Electron Devices 16 (1969) 64-77.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .grid import Grid
from .model.base import KernelFeatures

__all__ = [
    "make_potential_fn",
    "make_transport_fn",
    "make_noisy_transport_fn",
    "bernoulli",
    "LIMITERS",
]

Array = Any


def make_potential_fn(potential: Array, kernel: KernelFeatures | Sequence[KernelFeatures],
                      to_xp: Callable) -> Callable:
    """``Psi[m] = V + Phi (w * (Phi^T m))``: two ``M x P`` products, never an ``M x M`` matrix.

    Parameters
    ----------
    potential : NumPy array of shape ``(n_cells,)``, or ``(S, n_cells)`` for S stacked models
        ``V`` at the cell centres.
    kernel : KernelFeatures, or a sequence of S of them (one per stacked model)
        ``U`` on the cell centres, ``features`` of shape ``(n_cells, P)``. Stacked kernels with
        different ``P`` are padded with zero columns.
    to_xp : callable
        Moves a NumPy array to the backend (done once, here).

    Returns
    -------
    psi_fn : callable ``m -> Psi``
        ``m`` the cell masses, shape ``(..., n_cells)``: any leading axes are independent runs
        (S runs of one model share the products as extra columns; stacked models need
        ``m`` of shape ``(S, n_cells)``).
    """
    if isinstance(kernel, KernelFeatures):
        v = to_xp(potential)
        if kernel.n_features == 0:
            return lambda m: v + 0.0 * m
        features = to_xp(kernel.features)
        features_t = to_xp(kernel.features.T.copy())  # contiguous for the second product
        weights = to_xp(kernel.weights)

        def psi_fn(m: Array) -> Array:
            return v + ((m @ features) * weights) @ features_t

        return psi_fn
    return _stacked_potential_fn(potential, list(kernel), to_xp)


def _stacked_potential_fn(potentials: Array, kernels: list[KernelFeatures],
                          to_xp: Callable) -> Callable:
    """``Psi`` of S models on one grid: batched products over the leading axis."""
    n_features = max(k.n_features for k in kernels)
    v = to_xp(np.asarray(potentials))
    if n_features == 0:
        return lambda m: v + 0.0 * m
    n_cells = kernels[0].features.shape[0]
    features = np.zeros((len(kernels), n_cells, n_features))
    weights = np.zeros((len(kernels), 1, n_features))
    for s, k in enumerate(kernels):
        features[s, :, :k.n_features] = k.features
        weights[s, 0, :k.n_features] = k.weights
    features_t = to_xp(np.ascontiguousarray(np.swapaxes(features, 1, 2)))
    features, weights = to_xp(features), to_xp(weights)

    def psi_fn(m: Array) -> Array:
        rows = m[:, None, :]  # (S, 1, M): one row per model
        return v + (((rows @ features) * weights) @ features_t)[:, 0, :]

    return psi_fn


# ---- reconstruction --------------------------------------------------------------------------


def _minmod(a: Array, b: Array, xp: Any) -> Array:
    same = (a * b) > 0
    return xp.where(same, xp.sign(a) * xp.minimum(xp.abs(a), xp.abs(b)), xp.zeros_like(a))


def _mc(a: Array, b: Array, xp: Any) -> Array:
    """Monotonized central: minmod(2a, (a + b)/2, 2b)."""
    return _minmod(_minmod(2.0 * a, 0.5 * (a + b), xp), 2.0 * b, xp)


def _vanleer(a: Array, b: Array, xp: Any) -> Array:
    same = (a * b) > 0
    denom = xp.where(same, a + b, xp.ones_like(a))
    return xp.where(same, 2.0 * a * b / denom, xp.zeros_like(a))


#: slope limiters: ``sigma = limiter(rho_i - rho_{i-1}, rho_{i+1} - rho_i)``; each keeps the face
#: values ``rho_i +- sigma/2`` between the neighbours, hence non-negative.
LIMITERS = {"minmod": _minmod, "mc": _mc, "vanleer": _vanleer}


def _axes(spacing: tuple[float, ...], ndim: int) -> list[tuple[int, float]]:
    """``(array axis, h)`` of each grid axis; leading array axes beyond the grid's are runs."""
    offset = ndim - len(spacing)
    return [(offset + a, h) for a, h in enumerate(spacing)]


def _sl(ndim: int, axis: int, start: int | None, stop: int | None) -> tuple:
    return tuple(slice(start, stop) if a == axis else slice(None) for a in range(ndim))


def _pad_walls(flux: Array, axis: int, xp: Any) -> Array:
    """Add the zero wall fluxes at both ends of ``axis`` (n - 1 faces -> n + 1 faces)."""
    shape = list(flux.shape)
    shape[axis] = 1
    zero = xp.zeros(tuple(shape), dtype=flux.dtype)
    return xp.concat([zero, flux, zero], axis=axis)


def _divergence(flux: Array, axis: int, h: float, xp: Any) -> Array:
    """``-(F_{i+1/2} - F_{i-1/2}) / h`` with zero wall fluxes."""
    padded = _pad_walls(flux, axis, xp)
    nd = padded.ndim
    return (padded[_sl(nd, axis, None, -1)] - padded[_sl(nd, axis, 1, None)]) / h


def _slopes(rho: Array, axis: int, limiter: Callable, xp: Any) -> Array:
    """Limited slopes (as differences per cell); zero in the wall cells."""
    nd = rho.ndim
    jumps = rho[_sl(nd, axis, 1, None)] - rho[_sl(nd, axis, None, -1)]
    inner = limiter(jumps[_sl(nd, axis, None, -1)], jumps[_sl(nd, axis, 1, None)], xp)
    return _pad_walls(inner, axis, xp)


# ---- fluxes ----------------------------------------------------------------------------------


def make_transport_fn(grid: Grid, order: int = 2, limiter: str = "mc") -> Callable:
    """Noiseless upwind transport ``div(rho s grad Psi)`` on ``grid``.

    Returns
    -------
    transport_fn : callable ``(rho, psi, s, xp) -> (drho, rate)``
        ``rho``, ``psi`` of shape ``grid.shape``, or ``(..., *grid.shape)`` for independent runs
        stepped together (the rate is then the largest over them); ``s = 2 xi``. ``rate`` (0-d
        array) is such that a forward-Euler step of size ``dt <= 1 / rate`` keeps ``rho >= 0``:
        ``sum_a max|u_a|/h_a``, doubled for second order (reconstructed face values carry half
        the cell's mass each).
    """
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, got {order}")
    limit = LIMITERS[limiter]
    spacing = grid.spacing

    def transport_fn(rho: Array, psi: Array, s: float, xp: Any) -> tuple[Array, Array]:
        nd = rho.ndim
        drho = xp.zeros_like(rho)
        rate = 0.0
        for axis, h in _axes(spacing, nd):
            lo, hi = _sl(nd, axis, None, -1), _sl(nd, axis, 1, None)
            u = (-s / h) * (psi[hi] - psi[lo])
            if order == 2:
                half = 0.5 * _slopes(rho, axis, limit, xp)
                east, west = (rho + half)[lo], (rho - half)[hi]
            else:
                east, west = rho[lo], rho[hi]
            flux = xp.maximum(u, 0.0) * east + xp.minimum(u, 0.0) * west
            drho = drho + _divergence(flux, axis, h, xp)
            rate = rate + xp.max(xp.abs(u)) * (order / h)
        return drho, rate

    return transport_fn


def bernoulli(z: Array, xp: Any) -> Array:
    """``B(z) = z / (e^z - 1)``, stable for all ``z`` (``B(-z) = B(z) + z``)."""
    za = xp.abs(z)
    small = za < 1e-6
    zs = xp.where(small, xp.ones_like(za), za)
    b_abs = xp.where(small, 1.0 - 0.5 * za + za * za / 12.0, zs * xp.exp(-zs) / -xp.expm1(-zs))
    return xp.where(z >= 0, b_abs, b_abs + za)


def make_noisy_transport_fn(grid: Grid, beta: float) -> Callable:
    """Scharfetter-Gummel flux for ``div(s rho grad Psi) + (s / beta) Laplace rho``.

    With ``D = s / beta`` and the face Peclet number ``z = -beta (Psi_{i+1} - Psi_i)``,
    ``F_{i+1/2} = (D/h) (B(-z) rho_i - B(z) rho_{i+1})``: zero on ``rho_i ~ exp(-beta Psi_i)``,
    central (second order) for small ``z``, upwind for large ``z``.

    Returns
    -------
    transport_fn : callable ``(rho, psi, s, xp) -> (drho, rate)``
        ``rate`` is the largest outflow coefficient of a cell, summed over axes: Euler steps with
        ``dt <= 1 / rate`` keep ``rho >= 0``.
    """
    spacing = grid.spacing

    def transport_fn(rho: Array, psi: Array, s: float, xp: Any) -> tuple[Array, Array]:
        nd = rho.ndim
        drho = xp.zeros_like(rho)
        rate = 0.0
        diffusivity = s / beta
        for axis, h in _axes(spacing, nd):
            lo, hi = _sl(nd, axis, None, -1), _sl(nd, axis, 1, None)
            z = -beta * (psi[hi] - psi[lo])
            b_plus = bernoulli(z, xp)
            b_minus = b_plus + z  # B(-z)
            flux = (diffusivity / h) * (b_minus * rho[lo] - b_plus * rho[hi])
            drho = drho + _divergence(flux, axis, h, xp)
            out_east = _pad_walls(b_minus, axis, xp)[_sl(nd, axis, 1, None)]
            out_west = _pad_walls(b_plus, axis, xp)[_sl(nd, axis, None, -1)]
            rate = rate + xp.max(out_east + out_west) * (diffusivity / h**2)
        return drho, rate

    return transport_fn
