"""Run the GPU code path on a CPU: check what would be fused, count what would be launched.

A GPU is rarely at hand when this code is written, so the device path is made checkable here:

* :class:`TracingBackend` is the ``array_api_strict`` backend with the device path switched on
  (scalars as 0-d arrays, :meth:`~meanfield.backends.Backend.fuse` in use). Its ``fuse`` runs
  each kernel on :class:`Traced` values that allow exactly what ``cupy.fuse`` compiles
  (arithmetic, comparison and logical operators, Python scalars, and the elementwise functions
  in :data:`ELEMENTWISE`) and raise :class:`NotFusable` on anything else (indexing, shapes,
  reductions, creation functions, conversion to a host scalar).
* Its namespace counts the array operations made outside fused kernels, and each fused kernel
  call counts one: on CuPy each is (about) one kernel launch, the cost that dominates a step on
  a GPU when arrays are small enough to stream in microseconds.
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Callable
from typing import Any

from .arrays import Backend

__all__ = ["TracingBackend", "Traced", "NotFusable", "ELEMENTWISE"]

#: namespace functions a fused kernel may call (each is a ufunc in CuPy)
ELEMENTWISE = (
    "where",
    "maximum",
    "minimum",
    "abs",
    "sign",
    "exp",
    "expm1",
    "log",
    "sqrt",
    "isfinite",
    "ceil",
    "floor",
)

#: namespace functions that make no new data (views and metadata): no launch on a GPU
_FREE = frozenset(
    {
        "reshape",
        "permute_dims",
        "matrix_transpose",
        "expand_dims",
        "squeeze",
        "broadcast_to",
        "isdtype",
        "result_type",
        "finfo",
        "iinfo",
    }
)


class NotFusable(TypeError):
    """A kernel did something ``cupy.fuse`` cannot compile."""


_BINARY = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "truediv": operator.truediv,
    "pow": operator.pow,
    "and": operator.and_,
    "or": operator.or_,
    "xor": operator.xor,
}
_COMPARE = {
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
    "eq": operator.eq,
    "ne": operator.ne,
}
_UNARY = {"neg": operator.neg, "pos": operator.pos, "invert": operator.invert}


def _value(x: Any) -> Any:
    if isinstance(x, Traced):
        return x.value
    if isinstance(x, bool | int | float):
        return x
    raise NotFusable(
        f"a fused kernel received a {type(x).__name__}; only arrays and Python "
        "scalars can enter one"
    )


class Traced:
    """An array inside a fused kernel: elementwise operators only."""

    __slots__ = ("value",)
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, value: Any) -> None:
        self.value = value

    def __getattr__(self, name: str) -> Any:
        raise NotFusable(f"attribute {name!r} of an array inside a fused kernel")

    def __getitem__(self, key: Any) -> Any:
        raise NotFusable("indexing inside a fused kernel")

    def __bool__(self) -> bool:
        raise NotFusable("a Python branch on an array inside a fused kernel")

    def __float__(self) -> float:
        raise NotFusable("conversion to a host scalar inside a fused kernel")

    __int__ = __index__ = __float__  # type: ignore[assignment]

    def __matmul__(self, other: Any) -> Any:
        raise NotFusable("a matrix product inside a fused kernel")

    __rmatmul__ = __matmul__


def _install_operators() -> None:
    def binary(op: Callable) -> tuple[Callable, Callable]:
        def forward(self: Traced, other: Any) -> Traced:
            return Traced(op(self.value, _value(other)))

        def reflected(self: Traced, other: Any) -> Traced:
            return Traced(op(_value(other), self.value))

        return forward, reflected

    for name, op in _BINARY.items():
        forward, reflected = binary(op)
        setattr(Traced, f"__{name}__", forward)
        setattr(Traced, f"__r{name}__", reflected)
    for name, op in _COMPARE.items():
        setattr(Traced, f"__{name}__", binary(op)[0])
    for name, op in _UNARY.items():
        setattr(Traced, f"__{name}__", lambda self, op=op: Traced(op(self.value)))


_install_operators()


class _KernelModule:
    """The ``m`` a kernel sees while traced: :data:`ELEMENTWISE` functions and nothing else."""

    def __init__(self, xp: Any) -> None:
        self._xp = xp

    def __getattr__(self, name: str) -> Any:
        if name not in ELEMENTWISE:
            raise NotFusable(f"{name!r} is not an elementwise function a fused kernel can call")
        function = getattr(self._xp, name)

        def call(*args: Any) -> Traced:
            return Traced(function(*(_value(a) for a in args)))

        return call


class _CountingNamespace:
    """An array namespace that counts the calls that make new arrays."""

    def __init__(self, xp: Any, counter: Counter) -> None:
        self._xp, self._counter = xp, counter

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._xp, name)
        if not callable(attribute) or name in _FREE or isinstance(attribute, type):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self._counter["operations"] += 1
            return attribute(*args, **kwargs)

        return call


class TracingBackend(Backend):
    """``array_api_strict`` with the device path on, fusion traced, operations counted.

    Parameters
    ----------
    fused : bool
        Trace the kernels as ``cupy.fuse`` would compile them (one operation each); False runs
        them unfused, every operation counted (CuPy without fusion).

    Attributes
    ----------
    counter : Counter
        ``"operations"``: namespace calls and array operators outside fused kernels (counted
        while :meth:`counting` is on); ``"kernel:<name>"``: calls of each fused kernel.
    """

    def __init__(self, fused: bool = True) -> None:
        import array_api_strict  # noqa: PLC0415

        counter: Counter = Counter()
        object.__setattr__(self, "counter", counter)
        object.__setattr__(self, "fused", fused)
        object.__setattr__(self, "_strict", array_api_strict)
        super().__init__(
            "array_api_strict",
            _CountingNamespace(array_api_strict, counter),
            "CPU (tracing the device path)",
        )

    @property
    def host_scalars(self) -> bool:
        return False

    def fuse(self, kernel: Callable[..., Any], name: str) -> Callable[..., Any]:
        strict, counter, xp = self._strict, self.counter, self.xp
        if not self.fused:  # every operation of the kernel counts, as unfused on a GPU
            return lambda *arrays: kernel(xp, *arrays)

        def traced(*arrays: Any) -> Any:
            counter[f"kernel:{name}"] += 1
            counter["operations"] += 1
            inputs = [a if isinstance(a, bool | int | float) else Traced(a) for a in arrays]
            counter["paused"] += 1  # the operators inside are one launch, counted above
            try:
                out = kernel(_KernelModule(strict), *inputs)
            finally:
                counter["paused"] -= 1
            outputs = out if isinstance(out, tuple) else (out,)
            for o in outputs:
                if not isinstance(o, Traced):
                    raise NotFusable(
                        f"kernel {name!r} returned a {type(o).__name__}, "
                        "not an array computed from its inputs"
                    )
            values = tuple(o.value for o in outputs)
            return values if isinstance(out, tuple) else values[0]

        return traced

    def count_operators(self) -> Any:
        """Context manager: also count the array operators (``a + b``) made meanwhile."""
        return _OperatorCount(type(self._strict.asarray(0.0)), self.counter)

    def operations(self) -> int:
        """Array operations (kernel launches on a GPU) counted so far."""
        return self.counter["operations"]

    def kernels(self) -> dict[str, int]:
        """Fused kernels called so far, with their call counts."""
        return {k.split(":", 1)[1]: v for k, v in self.counter.items() if k.startswith("kernel:")}


class _OperatorCount:
    """Patch the array class's operators to count while the context is open."""

    NAMES = tuple(
        f"__{n}__"
        for n in (
            *_BINARY,
            *(f"r{n}" for n in _BINARY),
            *_COMPARE,
            *_UNARY,
            "matmul",
            "rmatmul",
            "abs",
        )
    )

    def __init__(self, cls: type, counter: Counter) -> None:
        self._cls, self._counter, self._saved = cls, counter, {}

    def __enter__(self) -> _OperatorCount:
        counter = self._counter
        for name in self.NAMES:
            original = self._cls.__dict__.get(name)
            if original is None:
                continue
            self._saved[name] = original

            def counted(*args: Any, _original: Callable = original, **kwargs: Any) -> Any:
                if not counter["paused"]:
                    counter["operations"] += 1
                return _original(*args, **kwargs)

            setattr(self._cls, name, counted)
        return self

    def __exit__(self, *exc: object) -> None:
        for name, original in self._saved.items():
            setattr(self._cls, name, original)
