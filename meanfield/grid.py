"""Uniform cell-centred grids in any number of dimensions (geometry only, no density data).

Nothing here or in the operators depends on the number of axes: the fluxes are applied axis by
axis and the nonlocal term works on the flattened cells. What grows with the axes is the cell
count, ``prod(shape)``, and with it the memory of the kernel features (``n_cells x P``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Grid"]


@dataclass(frozen=True)
class Grid:
    """A uniform cell-centred grid on a box.

    Parameters
    ----------
    bounds : tuple of (lo, hi) pairs, one per axis
        The box. Walls sit at ``lo`` and ``hi``; the fluxes through them are zero.
    shape : tuple of int
        Number of cells per axis.
    names : tuple of str
        Axis names (``("r",)`` for the isotropic model); used for HDF5 coordinates.

    Notes
    -----
    Cell ``i`` of an axis covers ``[lo + i h, lo + (i + 1) h]`` with ``h = (hi - lo) / n``; a
    density on the grid is the array of cell averages, of shape ``shape``, so its mass is
    ``sum(rho) * cell_volume``.
    """

    bounds: tuple[tuple[float, float], ...]
    shape: tuple[int, ...]
    names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        bounds = tuple((float(lo), float(hi)) for lo, hi in self.bounds)
        shape = tuple(int(n) for n in self.shape)
        names = tuple(self.names) or tuple(f"q{i}" for i in range(len(shape)))
        if len(shape) < 1:
            raise ValueError("a grid needs at least one axis")
        if len(bounds) != len(shape) or len(names) != len(shape):
            raise ValueError("bounds, shape and names must have one entry per axis")
        for (lo, hi), n in zip(bounds, shape, strict=True):
            if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
                raise ValueError(f"grid bounds must satisfy lo < hi, got ({lo}, {hi})")
            if n < 2:
                raise ValueError(f"a grid axis needs at least 2 cells, got {n}")
        object.__setattr__(self, "bounds", bounds)
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "names", names)

    @property
    def ndim(self) -> int:
        """Number of axes."""
        return len(self.shape)

    @property
    def n_cells(self) -> int:
        """Total number of cells (the product of ``shape``)."""
        return int(np.prod(self.shape))

    @property
    def spacing(self) -> tuple[float, ...]:
        """Cell width ``h`` per axis."""
        return tuple((hi - lo) / n for (lo, hi), n in zip(self.bounds, self.shape, strict=True))

    @property
    def cell_volume(self) -> float:
        """Volume of one cell (the product of ``spacing``): a density's mass is
        ``sum(rho) * cell_volume``."""
        return float(np.prod(self.spacing))

    def edges(self, axis: int = 0) -> np.ndarray:
        """Cell edges along ``axis``, shape ``(shape[axis] + 1,)``."""
        lo, hi = self.bounds[axis]
        return np.linspace(lo, hi, self.shape[axis] + 1)

    def centres(self, axis: int = 0) -> np.ndarray:
        """Cell centres along ``axis``, shape ``(shape[axis],)``."""
        lo, _ = self.bounds[axis]
        h = self.spacing[axis]
        return lo + h * (np.arange(self.shape[axis]) + 0.5)

    def points(self) -> np.ndarray:
        """All cell centres, shape ``(n_cells, ndim)``, in C order of ``shape``."""
        mesh = np.meshgrid(*(self.centres(a) for a in range(self.ndim)), indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=-1)

    def refined(self, factor: int) -> Grid:
        """The same box with ``factor`` times more cells per axis."""
        return Grid(self.bounds, tuple(n * factor for n in self.shape), self.names)
