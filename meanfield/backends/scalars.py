"""Where the time loop keeps its scalars: Python floats on the host, 0-d arrays on a device.

The step logic (step size, retries, the invariant checks) is written once, against the small
namespace below, and runs in two places:

* :class:`DeviceScalars` keeps every scalar as a 0-d array of the backend, decided with
  ``where`` instead of ``if``, so the host never waits for the device between clock reads
  (CuPy; and ``array_api_strict``, which checks that this path uses only the array API);
* :class:`HostScalars` uses Python floats and bools: for NumPy, whose arrays are already in
  host memory, a 0-d array operation costs a microsecond of dispatch where a float operation
  costs tens of nanoseconds, and there is nothing to synchronise with.

Both are IEEE double arithmetic operation for operation, so they make bit for bit the same
decisions (tested against each other in ``tests/meanfield/test_sync_free.py``). ``where``
evaluates both branches in both namespaces, so each branch must be safe (no division by
zero) whichever is selected.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

from .arrays import Backend, to_numpy

__all__ = ["HostScalars", "DeviceScalars", "scalars_for"]


class HostScalars:
    """Scalars as Python ``float``, ``int`` and ``bool``."""

    host = True

    @staticmethod
    def scalar(x: Any) -> float:
        """A 0-d backend array as a scalar of this namespace."""
        return float(x)

    @staticmethod
    def const(value: float | int | bool) -> Any:
        return value

    @staticmethod
    def where(condition: Any, a: Any, b: Any) -> Any:
        return a if condition else b

    @staticmethod
    def both(a: Any, b: Any) -> bool:
        return bool(a) and bool(b)

    @staticmethod
    def either(a: Any, b: Any) -> bool:
        return bool(a) or bool(b)

    @staticmethod
    def negate(a: Any) -> bool:
        return not a

    @staticmethod
    def isfinite(x: float) -> bool:
        return math.isfinite(x)

    @staticmethod
    def ceil(x: float) -> float:
        return float(math.ceil(x)) if math.isfinite(x) else x  # math.ceil(inf) would raise

    @staticmethod
    def abs(x: float) -> float:
        return abs(x)

    @staticmethod
    def to_float(x: Any) -> float:
        return float(x)

    @staticmethod
    def stack(values: Sequence[Any]) -> tuple:
        return tuple(values)

    @staticmethod
    def read(vector: Any) -> list[float]:
        """The values of a :meth:`stack` on the host (no transfer here)."""
        return [float(v) for v in vector]


class DeviceScalars:
    """Scalars as 0-d arrays of the array namespace ``xp``."""

    host = False

    def __init__(self, xp: Any) -> None:
        self.xp = xp

    def scalar(self, x: Any) -> Any:
        return x

    def const(self, value: float | int | bool) -> Any:
        xp = self.xp
        if isinstance(value, bool):
            return xp.asarray(value)
        dtype = xp.int64 if isinstance(value, int) else xp.float64
        return xp.asarray(value, dtype=dtype)

    def where(self, condition: Any, a: Any, b: Any) -> Any:
        return self.xp.where(condition, a, b)

    @staticmethod
    def both(a: Any, b: Any) -> Any:
        return a & b

    @staticmethod
    def either(a: Any, b: Any) -> Any:
        return a | b

    @staticmethod
    def negate(a: Any) -> Any:
        return ~a

    def isfinite(self, x: Any) -> Any:
        return self.xp.isfinite(x)

    def ceil(self, x: Any) -> Any:
        return self.xp.ceil(x)

    def abs(self, x: Any) -> Any:
        return self.xp.abs(x)

    def to_float(self, x: Any) -> Any:
        return self.xp.astype(x, self.xp.float64)

    def stack(self, values: Sequence[Any]) -> Any:
        return self.xp.stack(list(values))

    @staticmethod
    def read(vector: Any) -> list[float]:
        """One transfer to the host: the host waits for the device here, and only here."""
        return [float(v) for v in to_numpy(vector)]


def scalars_for(backend: Backend) -> HostScalars | DeviceScalars:
    """Host scalars where the arrays live in host memory (NumPy), device scalars elsewhere."""
    return HostScalars() if backend.host_scalars else DeviceScalars(backend.xp)


def scalar_kernel(backend: Backend, logic: Callable[..., Any], name: str) -> Callable[..., Any]:
    """``logic(sx, *scalars)`` bound to the backend's scalars, fused into one kernel on a GPU.

    ``logic`` uses only the methods of :class:`DeviceScalars` that are elementwise (no
    ``const``, ``stack``, ``read`` or ``to_float``), so that a backend can trace it
    with its own array module in place of ``xp``.
    """
    if backend.host_scalars:
        host = HostScalars()
        return functools.partial(logic, host)
    return backend.fuse(lambda m, *scalars: logic(DeviceScalars(m), *scalars), name)
