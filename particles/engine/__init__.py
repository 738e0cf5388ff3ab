"""The compiled particle engine: numba kernels that advance whole chunks of steps per call.

The NumPy/array-API steps of :mod:`particles.methods` are the reference; this package runs
the same updates compiled (``particles.engine = "compiled"``, or ``"auto"`` where it applies):

* :mod:`.sgd`: one-pass SGD (any batch, noise, ridge, time change) for every model with data,
  from the unit and data descriptions of the model layer (:mod:`meanfield.model.pieces`);
* :mod:`.gd`: population GD of the separable models and of the quadrature models, and the
  SGD methods of the models without data;
* :mod:`.pairs` and :mod:`.population`: the exact pair kernel of the MMN models (Mehler
  series below ``|c| = 1/2``, closed form above), for their risk and their population GD;
* :mod:`.philox`: the counter-based generator of :mod:`meanfield.rng`, compiled, so both
  paths draw the same numbers.

:func:`make_advance` picks the kernel for a model and method; :func:`resolve_engine` decides
between this engine and the NumPy path.
"""

from __future__ import annotations

import importlib.util
import math
from typing import Any

import numpy as np

from meanfield.schedules import TimeChange

__all__ = ["ENGINES", "compiled_available", "unsupported_reason", "resolve_engine",
           "make_advance"]

#: values of the ``particles.engine`` config key
ENGINES = ("auto", "compiled", "numpy")


def compiled_available() -> bool:
    """Whether numba can be imported (a core dependency; absent only in odd installs)."""
    return importlib.util.find_spec("numba") is not None


def _kind(model: Any, method: str) -> str | None:
    """Which kernel runs ``method`` on ``model`` (None: none does)."""
    if method in ("online_sgd", "noisy_sgd"):
        if hasattr(model, "sample_data"):
            return "sgd" if hasattr(model, "unit_pieces") and hasattr(model, "data_pieces") \
                else None
        return "separable" if hasattr(model, "separable_pieces") else None
    if method == "gd":
        for kind, attribute in (("pairs", "pair_views"), ("separable", "separable_pieces"),
                                ("nodes", "node_pieces")):
            if hasattr(model, attribute):
                return kind
    return None


def unsupported_reason(model: Any, method: str, backend_name: str) -> str | None:
    """Why the compiled engine cannot run ``method`` on ``model`` here, or None if it can.

    On the NumPy backend: the CPU kernels. On CuPy: the GPU twin of the SGD kernel
    (:mod:`.cuda`), for the models whose data the kernel draws itself.
    """
    if not compiled_available():
        return "numba is not installed"
    kind = _kind(model, method)
    if kind is None:
        return f"no compiled kernel for method {method!r} of {type(model).__name__}"
    if backend_name == "cupy":
        from .advance import gpu_supports  # noqa: PLC0415

        if kind == "sgd" and gpu_supports(model):
            return None
        return (f"the GPU kernel runs one-pass SGD of models whose data it draws itself "
                f"(isotropic, anisotropic, p-spin), not {method!r} of {type(model).__name__}")
    if backend_name != "numpy":
        return f"no compiled kernels for particles.backend {backend_name!r}"
    return None


def resolve_engine(requested: str, model: Any, method: str, backend_name: str) -> str:
    """``"compiled"`` or ``"numpy"`` for the config value ``requested`` (one of ENGINES).

    ``"auto"`` takes the compiled engine wherever it applies; ``"compiled"`` raises
    ``ValueError`` with the reason where it does not.
    """
    if requested not in ENGINES:
        raise ValueError(f"unknown engine {requested!r}; allowed: {', '.join(ENGINES)}")
    if requested == "numpy":
        return "numpy"
    reason = unsupported_reason(model, method, backend_name)
    if reason is None:
        return "compiled"
    if requested == "compiled":
        raise ValueError(f"particles.engine = 'compiled' is not available: {reason}")
    return "numpy"


def make_advance(model: Any, rng: Any, *, method: str, eps: float, batch: int,
                 time_change: TimeChange, l2: float = 0.0, beta: float = math.inf,
                 dtype: Any = np.float64, backend: Any = None) -> Any:
    """The compiled ``advance(state, to_step, report=None) -> state`` of ``method``.

    Parameters mirror :func:`particles.methods.make_step`; ``dtype`` is the floating type of
    the parameters (float64, or float32 where a test shows it is accurate enough). With a
    CuPy ``backend`` the GPU twin of the SGD kernel runs on the device arrays.
    """
    from . import advance  # noqa: PLC0415

    kind = _kind(model, method)
    if backend is not None and backend.name == "cupy":
        return advance.make_gpu_sgd_advance(model, rng, backend, eps=eps, batch=batch,
                                            time_change=time_change, l2=l2, beta=beta,
                                            dtype=dtype)
    if kind == "sgd":
        return advance.make_sgd_advance(model, rng, eps=eps, batch=batch,
                                        time_change=time_change, l2=l2, beta=beta, dtype=dtype)
    if kind == "separable":
        return advance.make_separable_advance(model, rng, eps=eps, time_change=time_change,
                                              heun=method == "gd", l2=l2, beta=beta,
                                              dtype=dtype)
    if kind == "nodes":
        return advance.make_node_advance(model, eps=eps, time_change=time_change, l2=l2,
                                         dtype=dtype)
    if kind == "pairs":
        return advance.make_pair_gd_advance(model, eps=eps, time_change=time_change, l2=l2,
                                            dtype=dtype)
    raise ValueError(f"no compiled kernel for method {method!r} of {type(model).__name__}")
