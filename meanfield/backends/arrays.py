"""Array backends: the only module of the project that imports CuPy.

Math code never imports NumPy-or-CuPy by itself: it receives an array namespace ``xp``
(array-API compatible, via :mod:`array_api_compat`) from a :class:`Backend` and calls only
``xp.*`` functions of the array API standard. The same code therefore runs on NumPy, on CuPy,
and, in the tests, on :mod:`array_api_strict`, which proves it uses nothing outside the standard.

Setup-time work (special functions, quadrature, feature tables) is done in NumPy/SciPy and the
results are moved once with :meth:`Backend.asarray`; results come back with :func:`to_numpy`.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

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

#: outcome of the first-call check of each fused kernel by name (``"fused"`` or ``"unfused"``),
#: for ``meanfield info --selftest``
FUSION_STATUS: dict[str, str] = {}

#: a fused kernel may differ from the unfused code by this relative amount: the CUDA compiler
#: contracts ``a * b + c`` into one fused multiply-add (one rounding instead of two), a few
#: units in the last place per operation
FUSE_RTOL = 1e-12

BACKEND_NAMES = ("auto", "numpy", "cupy", "array_api_strict")


class BackendError(RuntimeError):
    """Raised when a requested backend cannot be used on this machine."""


@dataclass(frozen=True)
class Backend:
    """An array namespace together with where its arrays live.

    Parameters
    ----------
    name : {"numpy", "cupy", "array_api_strict"}
        Resolved backend name (never "auto").
    xp : module
        Array-API namespace used by the math code.
    device : str
        Human-readable device description (CPU, or the GPU name).
    """

    name: str
    xp: Any
    device: str

    def asarray(self, x: Any, dtype: Any = None) -> Any:
        """Move a host array (or scalar) to this backend, float64 unless ``dtype`` is given."""
        xp = self.xp
        dtype = xp.float64 if dtype is None else dtype
        if self.name == "cupy":
            return xp.asarray(np.asarray(x), dtype=dtype)
        return xp.asarray(np.asarray(x), dtype=dtype, copy=True)

    def ndtr(self, x: Any) -> Any:
        """Standard normal CDF, elementwise: a capability the array API standard lacks.

        SciPy on NumPy, ``cupyx.scipy.special`` on CuPy; the strict test backend goes through
        NumPy (it checks the surrounding code, not this function).
        """
        if self.name == "cupy":
            from cupyx.scipy import special as cupy_special  # noqa: PLC0415

            return cupy_special.ndtr(x)
        from scipy import special  # noqa: PLC0415

        if self.name == "numpy":
            return special.ndtr(x)
        return self.xp.asarray(special.ndtr(to_numpy(x)))

    @property
    def host_scalars(self) -> bool:
        """Whether the loop's scalars should be host floats: the arrays live in host memory
        and a 0-d array operation costs more than the float operation it replaces."""
        return self.name == "numpy"

    def fuse(self, kernel: Callable[..., Any], name: str) -> Callable[..., Any]:
        """An elementwise function of arrays, fused into one GPU kernel where possible.

        Parameters
        ----------
        kernel : callable ``(m, *arrays) -> array or tuple of arrays``
            Elementwise code written against the namespace ``m`` (operators, ``where``,
            ``maximum``, ``minimum``, ``abs``, ``sign``, ``exp``, ``expm1``, ``isfinite``,
            ``ceil``, Python scalars); no shapes, slicing, reductions or creation functions.
        name : str
            Kernel name.

        Returns
        -------
        callable ``(*arrays)``
            On CuPy, ``cupy.fuse`` of ``kernel(cupy, ...)``: one launch instead of one per
            operation. Its first call is checked against the unfused ``kernel(xp, ...)``; a
            kernel that fails to compile or disagrees (beyond ``FUSE_RTOL``) is dropped with a
            warning and the unfused code is used from then on. Elsewhere, ``kernel(xp, ...)``.
        """
        xp = self.xp

        def plain(*args: Any) -> Any:
            return kernel(xp, *args)

        if self.name != "cupy":
            return plain
        import cupy  # noqa: PLC0415  (the one place CuPy is imported)

        def fused_body(*args: Any) -> Any:
            return kernel(cupy, *args)

        fused_body.__name__ = name
        return checked_fusion(cupy.fuse(kernel_name=name)(fused_body), plain, name)

    def info(self) -> dict[str, str]:
        """Description stored with every output file."""
        return {"backend": self.name, "device": self.device}


def checked_fusion(
    fused: Callable[..., Any], plain: Callable[..., Any], name: str
) -> Callable[..., Any]:
    """``fused``, once its first call agrees with ``plain``; ``plain`` if it fails or differs.

    The first call runs both and compares every output (booleans and integers exactly, floats
    to :data:`FUSE_RTOL`, NaN equal to NaN); any exception from ``fused`` counts as a failure.
    The outcome is kept in ``wrapper.status`` (``"unchecked"``, ``"fused"`` or ``"unfused"``).
    """

    def outputs(value: Any) -> list[np.ndarray]:
        return [to_numpy(v) for v in (value if isinstance(value, tuple) else (value,))]

    def agree(a: Any, b: Any) -> bool:
        got, want = outputs(a), outputs(b)
        if len(got) != len(want):
            return False
        for g, w in zip(got, want, strict=True):
            if g.shape != w.shape:
                return False
            if np.issubdtype(w.dtype, np.floating):
                if not np.allclose(g, w, rtol=FUSE_RTOL, atol=0.0, equal_nan=True):
                    return False
            elif not np.array_equal(g, w):
                return False
        return True

    def wrapper(*args: Any) -> Any:
        if wrapper.status == "fused":
            return fused(*args)
        if wrapper.status == "unfused":
            return plain(*args)
        want = plain(*args)
        try:
            good = agree(fused(*args), want)
            reason = "its result differs from the unfused code"
        except Exception as error:  # noqa: BLE001  (any compile or launch error: fall back)
            good, reason = False, f"{type(error).__name__}: {error}"
        wrapper.status = "fused" if good else "unfused"
        FUSION_STATUS[name] = wrapper.status
        if not good:
            warnings.warn(
                f"fused kernel {name!r} not used ({reason}); running it unfused",
                RuntimeWarning,
                stacklevel=2,
            )
        return want

    wrapper.status = "unchecked"
    wrapper.__name__ = name
    return wrapper


def _cupy_module():
    """Import CuPy and check a GPU is visible; return None otherwise."""
    try:
        import cupy  # noqa: PLC0415  (the one place CuPy is imported)

        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None
    except Exception:  # ImportError, CUDA driver errors: no usable GPU  # noqa: BLE001
        return None
    return cupy


@functools.lru_cache(maxsize=None)
def get_backend(name: str = "auto") -> Backend:
    """Resolve a backend name.

    ``"auto"`` picks CuPy when it imports and a GPU is visible, NumPy otherwise.
    ``"array_api_strict"`` is the test backend that checks standard compliance.
    """
    if name not in BACKEND_NAMES:
        raise BackendError(f"unknown backend {name!r}; allowed: {', '.join(BACKEND_NAMES)}")
    import array_api_compat  # noqa: PLC0415

    if name in ("auto", "cupy"):
        cupy = _cupy_module()
        if cupy is not None:
            props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
            gpu = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
            xp = array_api_compat.array_namespace(cupy.empty(0))
            return Backend("cupy", xp, f"GPU {cupy.cuda.Device().id}: {gpu}")
        if name == "cupy":
            raise BackendError(
                "backend 'cupy' requested but CuPy is not installed or no GPU is visible; "
                "install the cuda12 or cuda13 extra, or use backend = 'numpy'"
            )
    if name == "array_api_strict":
        import array_api_strict  # noqa: PLC0415

        return Backend("array_api_strict", array_api_strict, "CPU")
    xp = array_api_compat.array_namespace(np.empty(0))
    return Backend("numpy", xp, "CPU")


def available_backends() -> list[str]:
    """Names of the backends usable here (NumPy always; CuPy with a GPU)."""
    names = ["numpy"]
    if _cupy_module() is not None:
        names.append("cupy")
    return names


def to_numpy(x: Any) -> np.ndarray:
    """Copy any backend array (or scalar) to a NumPy array on the host."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "get"):  # CuPy arrays
        return x.get()
    try:
        return np.asarray(x)
    except (TypeError, ValueError, RuntimeError):
        pass
    # array_api_strict refuses implicit conversion; go through its buffer protocol or DLPack
    return np.from_dlpack(x)
