"""Discrete operators of the DD on a grid: the potential Psi[rho] and the flux divergence.

Pure array-API code: every closure here receives arrays of one namespace ``xp`` and calls only
``xp.*``, so NumPy, CuPy and ``array_api_strict`` run the same lines. The elementwise parts of
the stencil are kernels ``(m, *arrays)`` that a GPU backend fuses into one launch each.

The transport is the finite-volume scheme of Carrillo, Chertock and Huang (2015): face
velocities ``u_{i+1/2} = -s (Psi_{i+1} - Psi_i) / h`` (``s = 2``, the factor of ``2 xi`` with xi
absorbed in the time change), upwind fluxes of reconstructed face values, zero flux through the
walls, applied axis by axis. With noise (``beta < inf``) the face
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

from ..grid import Grid
from ..model.base import KernelFeatures

#: the factor 2 of ``2 xi``; xi itself is absorbed in the time change
SPEED = 2.0

__all__ = [
    "make_potential_fn",
    "make_transport_fn",
    "make_noisy_transport_fn",
    "bernoulli",
    "LIMITERS",
]

Array = Any


def make_potential_fn(
    potential: Array, kernel: KernelFeatures | Sequence[KernelFeatures], to_xp: Callable
) -> Callable:
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


def _stacked_potential_fn(
    potentials: Array, kernels: list[KernelFeatures], to_xp: Callable
) -> Callable:
    """``Psi`` of S models on one grid: batched products over the leading axis."""
    n_features = max(k.n_features for k in kernels)
    v = to_xp(np.asarray(potentials))
    if n_features == 0:
        return lambda m: v + 0.0 * m
    n_cells = kernels[0].features.shape[0]
    features = np.zeros((len(kernels), n_cells, n_features))
    weights = np.zeros((len(kernels), 1, n_features))
    for s, k in enumerate(kernels):
        features[s, :, : k.n_features] = k.features
        weights[s, 0, : k.n_features] = k.weights
    features_t = to_xp(np.ascontiguousarray(np.swapaxes(features, 1, 2)))
    features, weights = to_xp(features), to_xp(weights)

    def psi_fn(m: Array) -> Array:
        rows = m[:, None, :]  # (S, 1, M): one row per model
        return v + (((rows @ features) * weights) @ features_t)[:, 0, :]

    return psi_fn


# ---- elementwise kernels ----------------------------------------------------------------------
#
# Each kernel is a function ``(m, *arrays)`` of elementwise operations only, so that a backend can
# fuse it into one GPU kernel (:meth:`~meanfield.backends.Backend.fuse`); the slicing and padding
# around them stay array-API code. Without fusion a kernel is called with ``m = xp``.


def _minmod(a: Array, b: Array, m: Any) -> Array:
    same = (a * b) > 0
    return m.where(same, m.sign(a) * m.minimum(m.abs(a), m.abs(b)), 0.0)


def _mc(a: Array, b: Array, m: Any) -> Array:
    """Monotonized central: minmod(2a, (a + b)/2, 2b)."""
    return _minmod(_minmod(2.0 * a, 0.5 * (a + b), m), 2.0 * b, m)


def _vanleer(a: Array, b: Array, m: Any) -> Array:
    same = (a * b) > 0
    denom = m.where(same, a + b, 1.0)
    return m.where(same, 2.0 * a * b / denom, 0.0)


#: slope limiters: ``sigma = limiter(rho_i - rho_{i-1}, rho_{i+1} - rho_i)``; each keeps the face
#: values ``rho_i +- sigma/2`` between the neighbours, hence non-negative.
LIMITERS = {"minmod": _minmod, "mc": _mc, "vanleer": _vanleer}


def _reconstruction_kernel(limiter: Callable) -> Callable:
    """``(m, left, mid, right) -> (east, west)``: the face values ``rho_i +- sigma_i / 2``.

    Given the cells' neighbours with the wall cells repeated (a zero jump), the slope of a wall
    cell is 0: the limiter of a zero and any jump is 0.
    """

    def kernel(m: Any, left: Array, mid: Array, right: Array) -> tuple[Array, Array]:
        half = 0.5 * limiter(mid - left, right - mid, m)
        return mid + half, mid - half

    return kernel


def _upwind_kernel(coef: float, rate_per_speed: float) -> Callable:
    """``(m, psi_lo, psi_hi, east, west) -> (flux, rate)`` with ``u = coef (psi_hi - psi_lo)``
    and the face's outflow rate ``|u| * rate_per_speed``."""

    def kernel(
        m: Any, psi_lo: Array, psi_hi: Array, east: Array, west: Array
    ) -> tuple[Array, Array]:
        u = coef * (psi_hi - psi_lo)
        return m.maximum(u, 0.0) * east + m.minimum(u, 0.0) * west, m.abs(u) * rate_per_speed

    return kernel


def _difference_kernel(h: float) -> Callable:
    """``(m, lo, hi) -> (lo - hi) / h``: the divergence of face fluxes with their wall zeros."""

    def kernel(m: Any, lo: Array, hi: Array) -> Array:
        return (lo - hi) / h

    return kernel


def bernoulli(z: Array, m: Any) -> Array:
    """``B(z) = z / (e^z - 1)``, stable for all ``z`` (``B(-z) = B(z) + z``)."""
    za = m.abs(z)
    small = za < 1e-6
    zs = m.where(small, 1.0, za)
    b_abs = m.where(small, 1.0 - 0.5 * za + za * za / 12.0, zs * m.exp(-zs) / -m.expm1(-zs))
    return m.where(z >= 0, b_abs, b_abs + za)


def _scharfetter_gummel_kernel(beta: float, coef: float) -> Callable:
    """``(m, psi_lo, psi_hi, rho_lo, rho_hi) -> (flux, B(z), B(-z))``, ``coef = D / h``."""

    def kernel(
        m: Any, psi_lo: Array, psi_hi: Array, rho_lo: Array, rho_hi: Array
    ) -> tuple[Array, Array, Array]:
        z = -beta * (psi_hi - psi_lo)
        b_plus = bernoulli(z, m)
        b_minus = b_plus + z  # B(-z)
        return coef * (b_minus * rho_lo - b_plus * rho_hi), b_plus, b_minus

    return kernel


def _sum_kernel(m: Any, a: Array, b: Array) -> Array:
    return a + b


def _bind(kernel: Callable, name: str, fuse: Callable | None) -> Callable:
    """``call(xp, *arrays)``: the kernel fused once by ``fuse(kernel, name)``, or plain."""
    if fuse is None:
        return kernel
    fused = fuse(kernel, name)
    return lambda xp, *arrays: fused(*arrays)


# ---- slicing and padding -----------------------------------------------------------------------


def _axes(spacing: tuple[float, ...], ndim: int) -> list[tuple[int, float]]:
    """``(array axis, h)`` of each grid axis; leading array axes beyond the grid's are runs."""
    offset = ndim - len(spacing)
    return [(offset + a, h) for a, h in enumerate(spacing)]


def _sl(ndim: int, axis: int, start: int | None, stop: int | None) -> tuple:
    return tuple(slice(start, stop) if a == axis else slice(None) for a in range(ndim))


def _pad_walls(flux: Array, axis: int, xp: Any, zeros: dict) -> Array:
    """Add the zero wall fluxes at both ends of ``axis`` (n - 1 faces -> n + 1 faces).

    ``zeros``, a dict owned by the transport, keeps the zero slab of each shape, so that a step
    does not create it again (one launch fewer per padding on a GPU).
    """
    shape = list(flux.shape)
    shape[axis] = 1
    key = (tuple(shape), axis, str(flux.dtype))
    if key not in zeros:
        zeros[key] = xp.zeros(tuple(shape), dtype=flux.dtype)
    zero = zeros[key]
    return xp.concat([zero, flux, zero], axis=axis)


def _pad_edges(rho: Array, axis: int, xp: Any) -> Array:
    """Repeat the first and last cell along ``axis`` (n -> n + 2 cells)."""
    nd = rho.ndim
    return xp.concat([rho[_sl(nd, axis, None, 1)], rho, rho[_sl(nd, axis, -1, None)]], axis=axis)


# ---- fluxes ----------------------------------------------------------------------------------


def make_transport_fn(
    grid: Grid, order: int = 2, limiter: str = "mc", fuse: Callable | None = None
) -> Callable:
    """Noiseless upwind transport ``div(rho s grad Psi)`` on ``grid``, for ``s = 2 xi = 2``.

    Parameters
    ----------
    grid : Grid
    order : {1, 2}
    limiter : {"mc", "minmod", "vanleer"}
    fuse : callable ``(kernel, name) -> function``, optional
        :meth:`Backend.fuse <meanfield.backends.Backend.fuse>`: the elementwise kernels of the
        stencil are fused once, here (three launches per axis instead of some forty).

    Returns
    -------
    transport_fn : callable ``(rho, psi, xp) -> (drho, rate)``
        ``rho``, ``psi`` of shape ``grid.shape``, or ``(..., *grid.shape)`` for independent runs
        stepped together (the rate is then the largest over them). ``rate`` (0-d array) is such
        that a forward-Euler step of size ``dt <= 1 / rate`` keeps ``rho >= 0``:
        ``sum_a max|u_a|/h_a``, doubled for second order (reconstructed face values carry half
        the cell's mass each).
    """
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, got {order}")
    spacing = grid.spacing
    reconstruct = _bind(_reconstruction_kernel(LIMITERS[limiter]), f"reconstruct_{limiter}", fuse)
    kernels = [
        (
            _bind(_upwind_kernel(-SPEED / h, order / h), f"upwind_flux_{a}", fuse),
            _bind(_difference_kernel(h), f"divergence_{a}", fuse),
        )
        for a, h in enumerate(spacing)
    ]
    zeros: dict = {}

    def transport_fn(rho: Array, psi: Array, xp: Any) -> tuple[Array, Array]:
        nd = rho.ndim
        drho = rate = None
        for (axis, _h), (upwind, difference) in zip(_axes(spacing, nd), kernels, strict=True):
            lo, hi = _sl(nd, axis, None, -1), _sl(nd, axis, 1, None)
            if order == 2:
                padded = _pad_edges(rho, axis, xp)
                east, west = reconstruct(
                    xp, padded[_sl(nd, axis, None, -2)], rho, padded[_sl(nd, axis, 2, None)]
                )
                east, west = east[lo], west[hi]
            else:
                east, west = rho[lo], rho[hi]
            flux, outflow = upwind(xp, psi[lo], psi[hi], east, west)
            walls = _pad_walls(flux, axis, xp, zeros)
            div = difference(xp, walls[lo], walls[hi])
            drho = div if drho is None else drho + div
            rate = xp.max(outflow) if rate is None else rate + xp.max(outflow)
        return drho, rate

    return transport_fn


def make_noisy_transport_fn(grid: Grid, beta: float, fuse: Callable | None = None) -> Callable:
    """Scharfetter-Gummel flux for ``div(s rho grad Psi) + (s / beta) Laplace rho``, ``s = 2``.

    With ``D = s / beta`` and the face Peclet number ``z = -beta (Psi_{i+1} - Psi_i)``,
    ``F_{i+1/2} = (D/h) (B(-z) rho_i - B(z) rho_{i+1})``: zero on ``rho_i ~ exp(-beta Psi_i)``,
    central (second order) for small ``z``, upwind for large ``z``.

    Returns
    -------
    transport_fn : callable ``(rho, psi, xp) -> (drho, rate)``
        ``rate`` is the largest outflow coefficient of a cell, summed over axes: Euler steps with
        ``dt <= 1 / rate`` keep ``rho >= 0``. ``fuse`` as for :func:`make_transport_fn`.
    """
    spacing = grid.spacing
    diffusivity = SPEED / beta
    kernels = [
        (
            _bind(_scharfetter_gummel_kernel(beta, diffusivity / h), f"sg_flux_{a}", fuse),
            _bind(_difference_kernel(h), f"divergence_{a}", fuse),
        )
        for a, h in enumerate(spacing)
    ]
    outflow = _bind(_sum_kernel, "outflow", fuse)
    zeros: dict = {}

    def transport_fn(rho: Array, psi: Array, xp: Any) -> tuple[Array, Array]:
        nd = rho.ndim
        drho = rate = None
        for (axis, h), (flux_kernel, difference) in zip(_axes(spacing, nd), kernels, strict=True):
            lo, hi = _sl(nd, axis, None, -1), _sl(nd, axis, 1, None)
            flux, b_plus, b_minus = flux_kernel(xp, psi[lo], psi[hi], rho[lo], rho[hi])
            walls = _pad_walls(flux, axis, xp, zeros)
            div = difference(xp, walls[lo], walls[hi])
            drho = div if drho is None else drho + div
            out = outflow(
                xp,
                _pad_walls(b_minus, axis, xp, zeros)[hi],
                _pad_walls(b_plus, axis, xp, zeros)[lo],
            )
            axis_rate = xp.max(out) * (diffusivity / h**2)
            rate = axis_rate if rate is None else rate + axis_rate
        return drho, rate

    return transport_fn
