"""The targets of the teacher-student model: named functions and teacher networks.

:data:`TARGETS` maps a name to ``f(x, xp)`` (``x`` of shape ``(..., k)``) and the least input
dimension ``k`` it needs; a :class:`TeacherNetwork` is a fixed smooth two-layer network.
:func:`target_problem` says what a config's ``model.target`` may be (used by the key check of
:mod:`~meanfield.model.teacher_student.model`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...fields import is_finite_number, toml_kind
from ..integrals.smooth import smooth_activation

__all__ = ["TARGETS", "TeacherNetwork", "target_problem", "convert_target"]


def _sin(x: Any, xp: Any) -> Any:
    return xp.sin(math.pi * x[..., 0])


def _sin_product(x: Any, xp: Any) -> Any:
    return xp.sin(math.pi * x[..., 0]) * xp.sin(math.pi * x[..., 1])


def _product(x: Any, xp: Any) -> Any:
    return x[..., 0] * x[..., 1]


def _bump(x: Any, xp: Any) -> Any:
    return xp.exp(-xp.sum(x * x, axis=-1))


#: named targets ``f(x, xp)`` for ``x`` of shape ``(..., k)``, and the least ``k`` each needs:
#: ``sin = sin(pi x_1)``, ``sin_product = sin(pi x_1) sin(pi x_2)``, ``product = x_1 x_2``,
#: ``bump = exp(-|x|^2)``
TARGETS: dict[str, tuple[Callable[[Any, Any], Any], int]] = {
    "sin": (_sin, 1),
    "sin_product": (_sin_product, 2),
    "product": (_product, 2),
    "bump": (_bump, 1),
}


@dataclass(frozen=True)
class TeacherNetwork:
    """A fixed teacher ``f(x) = (1/m) sum_j a_j s(<w_j, x> + b_j)``.

    Parameters
    ----------
    a : sequence of float, length ``m``
    w : sequence of ``m`` sequences of ``k`` floats
    b : sequence of float, length ``m``
    activation : str
        A name of :data:`~meanfield.model.integrals.smooth.SMOOTH_ACTIVATIONS`.
    """

    a: tuple[float, ...]
    w: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    activation: str = "tanh"

    def __post_init__(self) -> None:
        a = tuple(float(v) for v in np.ravel(self.a))
        w = tuple(tuple(float(v) for v in np.ravel(row)) for row in self.w)
        b = tuple(float(v) for v in np.ravel(self.b))
        if not a or len(w) != len(a) or len(b) != len(a):
            raise ValueError("the teacher needs a, w, b with one entry per teacher unit")
        if len({len(row) for row in w}) != 1:
            raise ValueError("every teacher weight vector must have the same length k")
        smooth_activation(self.activation)
        object.__setattr__(self, "a", a)
        object.__setattr__(self, "w", w)
        object.__setattr__(self, "b", b)

    @property
    def k(self) -> int:
        return len(self.w[0])

    def __call__(self, x: Any, xp: Any = np) -> Any:
        """``f(x)`` for ``x`` of shape ``(..., k)``; a loop over the (few) teacher units."""
        act = smooth_activation(self.activation)
        out = 0.0 * x[..., 0]
        for a_j, w_j, b_j in zip(self.a, self.w, self.b, strict=True):
            z = b_j + w_j[0] * x[..., 0]
            for axis in range(1, len(w_j)):
                z = z + w_j[axis] * x[..., axis]
            out = out + a_j * act(z, xp)
        return out / len(self.a)


def target_problem(value: Any, k: int, activations: tuple[str, ...]) -> str | None:
    """None when ``value`` is a valid ``model.target`` for input dimension ``k`` (a name of
    :data:`TARGETS` or a table ``{a, w, b, activation}``), else what is allowed."""
    names = [name for name, (_, dim) in TARGETS.items() if dim == k]
    text = (
        f"one of {', '.join(map(repr, names))} (input_dim = {k}), or a teacher table "
        f"{{a = [...], w = [[...], ...], b = [...], activation = 'tanh'}} with {k} inputs "
        "per unit"
    )
    if isinstance(value, str):
        return None if value in names else text
    if set(value) - {"a", "w", "b", "activation"} or not {"a", "w", "b"} <= set(value):
        return text
    a, w, b = value["a"], value["w"], value["b"]
    ok = (
        toml_kind(a) == toml_kind(w) == toml_kind(b) == "array"
        and len(a) == len(w) == len(b) >= 1
        and all(map(is_finite_number, a))
        and all(map(is_finite_number, b))
        and all(
            toml_kind(row) == "array" and len(row) == k and all(map(is_finite_number, row))
            for row in w
        )
    )
    return None if ok and value.get("activation", "tanh") in activations else text


def convert_target(value: Any) -> Any:
    """A checked ``model.target``: the name, or the table with float tuples."""
    if isinstance(value, str):
        return value
    return {
        "a": tuple(float(v) for v in value["a"]),
        "w": tuple(tuple(float(v) for v in row) for row in value["w"]),
        "b": tuple(float(v) for v in value["b"]),
        "activation": value.get("activation", "tanh"),
    }
