"""The compiled particle engine: numba kernels that advance whole chunks of steps per call.

The NumPy/array-API steps of :mod:`particles.methods` are the reference; this package runs
the same updates compiled (``particles.engine = "compiled"``, or ``"auto"`` where it applies).
A model offers the engine its pieces (:class:`meanfield.model.base.ParticleEngineModel`:
``engine_pieces()`` returns a :class:`meanfield.model.pieces.EnginePieces`), and a method runs
on the kernel whose pieces are there:

==============  ====================================  ========================================
kernel          pieces                                methods
==============  ====================================  ========================================
``sgd``         ``unit`` and ``data``                 ``online_sgd``, ``noisy_sgd`` (data)
``separable``   ``separable``                         ``gd``; the SGD methods without data
``nodes``       ``unit`` and ``nodes``                ``gd``
``pairs``       ``pairs``                             ``gd`` (and the risk of every method)
``sphere``      ``sphere``                            ``kernel_gd``
==============  ====================================  ========================================

* :mod:`.sgd`: one-pass SGD (any batch, noise, ridge, time change) for every model with data;
  :mod:`.cuda` its GPU twin for the data laws drawn in the kernel;
* :mod:`.gd`: population GD of the separable models and of the quadrature models, and the
  SGD methods of the models without data;
* :mod:`.pairs` and :mod:`.population`: the exact pair kernel of the MMN models (Mehler
  series below ``|c| = 1/2``, closed form above), for their risk and their population GD;
* :mod:`.sphere`: the kernel-unit flows of :mod:`particles.kernel_gd`;
* :mod:`.philox`: the counter-based generator of :mod:`meanfield.rng`, compiled, so both
  paths draw the same numbers.

:func:`select_engine` is the one place that decides which engine and kernel run a method;
:func:`make_advance` builds the compiled advance it chose.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from meanfield.model.base import ParticleEngineModel
from meanfield.model.pieces import EnginePieces
from meanfield.schedules import TimeChange

__all__ = [
    "ENGINES",
    "KERNELS",
    "EngineChoice",
    "compiled_available",
    "select_engine",
    "make_advance",
    "compiled_risk",
]

#: values of the ``particles.engine`` config key
ENGINES = ("auto", "compiled", "numpy")
#: the compiled kernels (see the module docstring)
KERNELS = ("sgd", "separable", "nodes", "pairs", "sphere")
#: the data laws the GPU kernel draws itself (:mod:`.cuda`)
GPU_DATA = ("mixture", "pspin")


def compiled_available() -> bool:
    """Whether numba can be imported (a core dependency; absent only in odd installs)."""
    return importlib.util.find_spec("numba") is not None


@dataclass(frozen=True)
class EngineChoice:
    """Which engine runs a method of a model, and why.

    Attributes
    ----------
    engine : str
        ``"compiled"`` or ``"numpy"``.
    kernel : str or None
        The compiled kernel (one of :data:`KERNELS`) when ``engine == "compiled"``.
    gpu : bool
        The compiled kernel is the GPU twin (a CuPy backend).
    reason : str or None
        Why the compiled engine does not run it here (None when it does, or when the NumPy
        engine was asked for).
    pieces : EnginePieces or None
        What the model offers the engine (None when it offers nothing, or was not asked).
    """

    engine: str
    kernel: str | None = None
    gpu: bool = False
    reason: str | None = None
    pieces: EnginePieces | None = None


def _kernel(pieces: EnginePieces, method: str, has_data: bool) -> str | None:
    """The kernel that runs ``method`` from ``pieces`` (None: none does)."""
    if method in ("online_sgd", "noisy_sgd"):
        if has_data:  # the NumPy step draws data: so must the kernel
            return "sgd" if pieces.unit is not None and pieces.data is not None else None
        return "separable" if pieces.separable is not None else None
    if method == "gd":
        if pieces.pairs is not None:
            return "pairs"
        if pieces.separable is not None:
            return "separable"
        if pieces.nodes is not None and pieces.unit is not None:
            return "nodes"
        return None
    if method == "kernel_gd":
        return "sphere" if pieces.sphere is not None else None
    return None


def _gpu_runs(pieces: EnginePieces, kernel: str) -> bool:
    """Whether the GPU twin runs ``kernel``: SGD, data drawn in the kernel, all of ``w`` trained."""
    return (
        kernel == "sgd"
        and pieces.data.kind in GPU_DATA
        and all(c >= 0 for c in pieces.unit.w_columns)
    )


def select_engine(
    requested: str, model: Any, method: str, backend_name: str = "numpy"
) -> EngineChoice:
    """The engine and kernel that run ``method`` on ``model`` with the backend ``backend_name``.

    ``requested`` is the ``particles.engine`` value (one of :data:`ENGINES`): ``"numpy"`` takes
    the NumPy steps; ``"auto"`` takes the compiled engine wherever it applies, and the NumPy
    steps (with the reason recorded) elsewhere; ``"compiled"`` raises ``ValueError`` with the
    reason where it does not apply. It applies where ``model`` is a
    :class:`~meanfield.model.base.ParticleEngineModel` whose pieces feed a kernel of
    ``method``: on the NumPy backend the CPU kernels, on CuPy the GPU twin of the SGD kernel for
    the models whose data it draws itself.
    """
    if requested not in ENGINES:
        raise ValueError(f"unknown engine {requested!r}; allowed: {', '.join(ENGINES)}")
    if requested == "numpy":
        return EngineChoice("numpy")
    pieces = model.engine_pieces() if isinstance(model, ParticleEngineModel) else None
    kernel = None if pieces is None else _kernel(pieces, method, hasattr(model, "sample_data"))
    gpu = backend_name == "cupy"
    reason = None
    if not compiled_available():
        reason = "numba is not installed"
    elif kernel is None:
        reason = f"no compiled kernel for method {method!r} of {type(model).__name__}"
    elif gpu and not _gpu_runs(pieces, kernel):
        reason = (
            f"the GPU kernel runs one-pass SGD of models whose data it draws itself "
            f"(isotropic, anisotropic, p-spin), not {method!r} of {type(model).__name__}"
        )
    elif not gpu and backend_name != "numpy":
        reason = f"no compiled kernels for particles.backend {backend_name!r}"
    if reason is None:
        return EngineChoice("compiled", kernel, gpu, None, pieces)
    if requested == "compiled":
        raise ValueError(f"particles.engine = 'compiled' is not available: {reason}")
    return EngineChoice("numpy", None, False, reason, pieces)


def make_advance(
    model: Any,
    rng: Any,
    *,
    method: str,
    eps: float,
    batch: int = 1,
    time_change: TimeChange | None = None,
    l2: float = 0.0,
    beta: float = math.inf,
    dtype: Any = np.float64,
    backend: Any = None,
    choice: EngineChoice | None = None,
    noise_steps: int | None = None,
    objective: str | None = None,
) -> Any:
    """The compiled ``advance(state, to_step, report=None) -> state`` of ``method``.

    Parameters mirror :func:`particles.methods.make_step`; ``dtype`` is the floating type of
    the parameters (float64, or float32 where a test shows it is accurate enough). With a
    CuPy ``backend`` the GPU twin of the SGD kernel runs on the device arrays. ``choice`` is
    :func:`select_engine`'s (asked for ``"compiled"`` here when not given). ``noise_steps``
    and ``objective``: the options of ``kernel_gd`` only (its noisy steps, and the flow).
    """
    from . import advance  # noqa: PLC0415

    if choice is None:
        backend_name = "numpy" if backend is None else backend.name
        choice = select_engine("compiled", model, method, backend_name)
    if choice.engine != "compiled":
        raise ValueError(f"the compiled engine does not run this: {choice.reason}")
    time_change = TimeChange() if time_change is None else time_change
    pieces, kernel = choice.pieces, choice.kernel
    kernel_gd_options = {
        k: v for k, v in (("noise_steps", noise_steps), ("objective", objective)) if v is not None
    }
    if kernel_gd_options and kernel != "sphere":
        raise TypeError(f"options {sorted(kernel_gd_options)} are not options of method {method!r}")
    if choice.gpu:
        return advance.make_gpu_sgd_advance(
            model,
            pieces,
            rng,
            backend,
            eps=eps,
            batch=batch,
            time_change=time_change,
            l2=l2,
            beta=beta,
            dtype=dtype,
        )
    if kernel == "sgd":
        return advance.make_sgd_advance(
            model,
            pieces,
            rng,
            eps=eps,
            batch=batch,
            time_change=time_change,
            l2=l2,
            beta=beta,
            dtype=dtype,
        )
    if kernel == "separable":
        return advance.make_separable_advance(
            pieces.separable,
            rng,
            eps=eps,
            time_change=time_change,
            heun=method == "gd",
            l2=l2,
            beta=beta,
            dtype=dtype,
        )
    if kernel == "nodes":
        return advance.make_node_advance(
            pieces, eps=eps, time_change=time_change, l2=l2, dtype=dtype
        )
    if kernel == "pairs":
        return advance.make_pair_gd_advance(
            model, pieces.pairs, eps=eps, time_change=time_change, l2=l2, dtype=dtype
        )
    from .sphere import make_sphere_advance  # noqa: PLC0415

    if noise_steps is None:
        raise TypeError("method 'kernel_gd' needs noise_steps")
    return make_sphere_advance(
        pieces.sphere,
        rng,
        eps=eps,
        beta=beta,
        noise_steps=noise_steps,
        objective=objective or "collocation",
    )


def compiled_risk(model: Any, choice: EngineChoice) -> Callable[[Any], np.ndarray] | None:
    """``risk(theta) -> (R,)`` by the compiled pair sums, where the compiled CPU engine runs a
    model with an exact pair kernel (whatever the method); None elsewhere."""
    if (
        choice.engine != "compiled"
        or choice.gpu
        or choice.pieces is None
        or choice.pieces.pairs is None
    ):
        return None
    from .population import pair_population_risk  # noqa: PLC0415

    views = choice.pieces.pairs
    return lambda theta: pair_population_risk(model, theta, views)
