"""The config entry of :mod:`.model`: its ``[model]`` keys, how the model is built
from them, and the quadrature order certified on the ``[pde]`` box (registered at import)."""

from __future__ import annotations

from typing import Any

from ...fields import (
    ConfigError,
    Context,
    Field,
    allowed,
    as_tuple,
    finite_float,
    int_at_least,
    one_of,
    vector,
)
from ..integrals.smooth import SMOOTH_ACTIVATIONS
from ..keys import FULL_GRID_SECTIONS, normal_law
from ..registry import ModelEntry, Tolerance, register
from .model import TeacherStudent
from .targets import TeacherNetwork, convert_target, target_problem

__all__ = ["ENTRY"]

_SMOOTH = tuple(SMOOTH_ACTIVATIONS)  # tanh, erf, softplus


def _dimension(spec: Any) -> int:
    return sum(spec["input_dim"] if name == "w" else 1 for name in spec["trained"])


def _check_trained(value: Any, ctx: Context) -> str | None:
    text = "an array of 1 to 3 distinct names among 'a', 'w', 'b' ('w' counts input_dim axes)"
    ok = (
        len(value) >= 1
        and all(v in ("a", "w", "b") for v in value)
        and len(set(value)) == len(value)
    )
    if not ok:
        return text
    n_axes = _dimension({"input_dim": ctx["model"]["input_dim"], "trained": value})
    return None if n_axes <= 3 else text + f"; here the grid would have {n_axes} axes"


def _build(spec: Any, pde: Any = None) -> TeacherStudent:
    target = spec["target"]
    if not isinstance(target, str):
        target = TeacherNetwork(
            a=tuple(target["a"]),
            w=tuple(tuple(r) for r in target["w"]),
            b=tuple(target["b"]),
            activation=target.get("activation", "tanh"),
        )
    k = int(spec.get("input_dim", 1))
    fixed_w = spec.get("fixed_w", 1.0)
    fixed_w = (float(fixed_w),) * k if isinstance(fixed_w, int | float) else tuple(fixed_w)
    trained = tuple(
        n
        for name in spec.get("trained", ("w", "b"))
        for n in ((name,) if name != "w" or k == 1 else ("w1", "w2"))
    )
    bounds = tuple(tuple(b) for b in pde["bounds"]) if pde is not None else None
    order = int(spec.get("quad_order", 0))
    return TeacherStudent(
        k=k,
        input_law=spec.get("input_law", "gaussian"),
        target=target,
        activation=spec.get("activation", "tanh"),
        trained=trained,
        fixed_a=float(spec.get("fixed_a", 1.0)),
        fixed_w=fixed_w,
        fixed_b=float(spec.get("fixed_b", 0.0)),
        bounds=bounds,
        quad_order=order or None,
        quad_tol=float(spec.get("quad_tol", 1e-8)),
    )


def _choose_order(model: TeacherStudent, spec: Any) -> None:
    """Choose the quadrature order on the box now (kept by the model), so that an order that
    cannot reach ``model.quad_tol`` is a config error before any work."""
    if spec.get("quad_order", 0) == 0:
        model.tables  # noqa: B018


def _needs_box(ctx: Context) -> None:
    if "pde" not in ctx and ctx["model"]["quad_order"] == 0:
        raise ConfigError(
            "missing key 'model.quad_order': without [pde] there is no box on "
            "which to choose the quadrature order; give model.quad_order (Gauss "
            "nodes per input axis)"
        )


_KEYS = {
    "input_dim": Field(("integer",), "input dimension k of x", 1, one_of(1, 2)),
    "input_law": Field(
        ("string",),
        "law of x: N(0, I_k) or uniform on [-1, 1]^k",
        "gaussian",
        one_of("gaussian", "uniform"),
    ),
    "target": Field(
        ("string", "table"),
        "named target f(x) or a teacher network table",
        check=lambda v, ctx: target_problem(v, ctx["model"]["input_dim"], _SMOOTH),
        convert=lambda v, ctx: convert_target(v),
    ),
    "activation": Field(("string",), "student activation", "tanh", one_of(*_SMOOTH)),
    "trained": Field(
        ("array",),
        "trained parameters of a act(<w, x> + b), in grid axis order",
        ("w", "b"),
        _check_trained,
        as_tuple,
    ),
    "fixed_a": finite_float("a when not trained", 1.0),
    "fixed_w": vector(
        None,
        "w when not trained (float: every input)",
        1.0,
        length=lambda ctx: ctx["model"]["input_dim"],
    ),
    "fixed_b": finite_float("b when not trained", 0.0),
    "quad_order": int_at_least(0, "Gauss nodes per input axis (0: chosen from quad_tol)", 0),
    "quad_tol": Field(
        ("float",),
        "tolerance of the quadrature order choice",
        1e-8,
        allowed("a float with 0 < quad_tol <= 1e-3", lambda v: 0 < v <= 1e-3),
    ),
}

ENTRY = register(
    ModelEntry(
        name="teacher_student",
        doc="units a s(<w, x> + b) learning y = f(x), x in R^k, on the full theta grid",
        keys={"model": _KEYS, **FULL_GRID_SECTIONS},
        build=_build,
        law=normal_law,
        reduced_dim=_dimension,
        check=_needs_box,
        tolerance=Tolerance(
            "quad_tol",
            "allowed: a larger model.quad_tol (at most 1e-3), a smaller "
            "pde.bounds, or a fixed model.quad_order",
            certify=_choose_order,
        ),
    )
)
