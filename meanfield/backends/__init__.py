"""Array backends: where the arrays live and how kernels are fused.

- :mod:`~meanfield.backends.arrays`: :class:`Backend` (an array namespace and its device),
  :func:`get_backend`, :func:`to_numpy`; the only module that imports CuPy.
- :mod:`~meanfield.backends.tracing`: :class:`~meanfield.backends.tracing.TracingBackend`, the
  GPU code path on ``array_api_strict`` with every fused kernel traced (no GPU needed).
- :mod:`~meanfield.backends.scalars`: the loop's scalars as host numbers or device 0-d arrays.

Nothing here imports the rest of :mod:`meanfield`.
"""

from .arrays import (
    FUSE_RTOL,
    FUSION_STATUS,
    Backend,
    BackendError,
    available_backends,
    checked_fusion,
    get_backend,
    to_numpy,
)

__all__ = [
    "Backend",
    "get_backend",
    "available_backends",
    "to_numpy",
    "BackendError",
    "checked_fusion",
    "FUSE_RTOL",
    "FUSION_STATUS",
]
