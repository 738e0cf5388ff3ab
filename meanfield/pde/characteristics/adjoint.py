"""The reverse pass of the characteristics solver: ``phi_0`` at every point, and the CLT variance.

For an output functional ``F(X(T), w)`` of the points at a saved time ``T`` (a moment
``sum_j w_j f(X_j)``, or the risk), the derivative with respect to the weight of point ``j``,
positions at ``t = 0`` held fixed, is the first variation of ``F`` with respect to ``rho_0`` at
``X_j(0)`` for the discrete system:

.. math::

    \\phi_0(X_j(0)) = \\frac{\\partial F}{\\partial w_j}, \\qquad
    N \\operatorname{Var} F(\\mu_N(T)) \\to \\sum_j w_j \\big(\\phi_0(X_j) - \\bar\\phi_0\\big)^2

(SPEC section 3b). :func:`reverse_pass` computes it for many functionals and saved times at
once: the discrete adjoint of the forward solver's own Runge-Kutta steps, with the step sizes
the forward controller chose. Every stage of a step ``Y_i = X + h sum_j a_ij K_j``,
``K_i = K(Y_i; w)``, ``X' = X + h sum_i b_i K_i`` is differentiated backwards: with ``lambda`` the
cotangent of ``X'``,

.. math::

    \\kappa_i = h b_i \\lambda + \\sum_{j > i} h a_{ji} \\nu_j, \\qquad
    (\\nu_i, \\delta w_i) = \\kappa_i^\\top \\partial_{(Y, w)} K(Y_i; w), \\qquad
    \\lambda \\leftarrow \\lambda + \\sum_i \\nu_i, \\quad
    \\mu \\leftarrow \\mu + \\sum_i \\delta w_i .

The vector-Jacobian product of the velocity ``K_j = -2 (grad V(Y_j) + lambda Y_j + G_j^T c)``,
``c = Lambda m``, ``m = F^T w``, is exact linear algebra on the model's features ``F`` and their
gradients ``G`` (``O(M P)``), except the Hessian of ``Psi_c = V + F c`` at fixed ``c``, which the
models do not provide: it is taken by central differences of the model's exact gradients along
each axis, with a step of :data:`HESSIAN_STEP` times the box width (relative error about
``1e-10``; checked against finite differences of the whole forward solver in
``tests/meanfield/test_characteristics_adjoint.py``).

Checkpointing: the forward run keeps its state every ``every`` steps (:class:`~.solver.StepRecord`);
the reverse pass recomputes each segment's states from its checkpoint with the recorded step
sizes (the same :func:`~.stepper.stages` code, so the same numbers), then walks the segment
backwards. Memory: ``(n_steps / every + every)`` states of ``M x D`` floats plus the adjoint
``B x M x D`` (``B`` functionals); time: about ``(1 + 2 D)`` times the forward run's model
evaluations plus one forward run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...backends.arrays import Backend, to_numpy
from .field import psi_gradient
from .solver import CharacteristicsPDE, StepRecord, make_rate
from .stepper import TABLEAUS, stages

__all__ = [
    "Functional",
    "moment",
    "risk_functional",
    "reverse_pass",
    "AdjointResult",
    "HESSIAN_STEP",
    "variance",
]

Array = Any

#: central-difference step of the Hessian-vector products, relative to the box width
HESSIAN_STEP = 1e-5


@dataclass(frozen=True)
class Functional:
    """An output functional ``F(X, w)`` of the points at a saved time.

    ``gradients(x, w, values, coupling, xp) -> (dF/dX (M, D), dF/dw (M,))`` at the state ``x``
    with the model's values there (:class:`~.field.PointValues`) and ``c = Lambda m``.
    """

    name: str
    gradients: Callable[..., tuple[Array, Array]]


def moment(name: str, axis: int, power: int = 1) -> Functional:
    """``sum_j w_j X_{j,axis}^power`` (the mean, or the second moment, of one axis)."""

    def gradients(x: Array, w: Array, values: Any, coupling: Array, xp: Any) -> tuple[Array, Array]:
        column = x[:, axis]
        slope = power * column ** (power - 1) if power > 1 else xp.ones_like(column)
        mask = xp.asarray([1.0 if a == axis else 0.0 for a in range(x.shape[1])], dtype=x.dtype)
        return (w * slope)[:, None] * mask[None, :], column**power

    return Functional(name, gradients)


def risk_functional(name: str = "risk") -> Functional:
    """The risk ``R = R_# + 2 sum w V + sum lambda_p m_p^2``: ``dR/dw_j = 2 Psi(X_j)``,
    ``dR/dX_j = 2 w_j grad Psi(X_j)`` (``Psi = V + F c``, no ridge: the risk has none)."""

    def gradients(x: Array, w: Array, values: Any, coupling: Array, xp: Any) -> tuple[Array, Array]:
        psi = values.potential + values.features @ coupling
        grad = psi_gradient(x, values.grad_potential, values.feature_grads, coupling, 0.0)
        return 2.0 * w[:, None] * grad, 2.0 * psi

    return Functional(name, gradients)


@dataclass(frozen=True)
class AdjointResult:
    """``phi_0`` for every functional and frame, on the initial points.

    Attributes
    ----------
    phi0 : dict name -> array ``(n_frames, M)``
        ``dF/dw_j`` of functional ``name`` at frame ``k`` (frame 0: ``f`` itself).
    variance : dict name -> array ``(n_frames,)``
        ``sum_j w_j (phi_0 - mean)^2``: the CLT limit of ``N Var F(mu_N)``.
    """

    phi0: dict[str, np.ndarray]
    variance: dict[str, np.ndarray]


def variance(phi: np.ndarray, weights: np.ndarray) -> float:
    """``sum_j w_j (phi_j - sum_k w_k phi_k)^2``."""
    mean = float(np.sum(weights * phi))
    return float(np.sum(weights * (phi - mean) ** 2))


def reverse_pass(
    pde: CharacteristicsPDE,
    points0: np.ndarray,
    weights: np.ndarray,
    record: StepRecord,
    functionals: Sequence[Functional],
    backend: Backend,
    *,
    frames: Sequence[int] | None = None,
    on_boundary: Callable[[int, Array, Array, Array], None] | None = None,
) -> AdjointResult:
    """``dF/dw`` of every functional at every frame of a forward run, in one reverse sweep.

    Parameters
    ----------
    pde : CharacteristicsPDE
        The problem the forward run solved (same model, box, ridge and scheme).
    points0, weights : the forward run's initial points ``(M, D)`` and weights ``(M,)``
    record : StepRecord
        Filled by the forward run (:func:`~.solver.integrate_points`).
    functionals : sequence of Functional
    backend : Backend
    frames : sequence of int, optional
        Which output frames to differentiate (default: all).
    on_boundary : callable ``(step, x, lam, mu) -> None``, optional
        Called at every step boundary of the reverse sweep with the state ``x`` ``(M, D)``
        after ``step`` steps and the adjoints there, ``lam = dF/dX`` ``(B, M, D)`` and
        ``mu = dF/dw`` ``(B, M)``, column ``b = k * len(functionals) + q`` for frame
        ``frames[k]`` and functional ``q`` (zero while the reverse sweep is past that frame).
    """
    xp = backend.xp
    tableau = TABLEAUS[pde.scheme]
    frames = list(range(len(record.frame_steps))) if frames is None else list(frames)
    w = backend.asarray(weights)
    field_ = pde.field(backend)
    lower = pde.lower
    rate = make_rate(field_, w, pde.l2, lower)
    project = pde.projection(backend)
    bound = None if lower is None else backend.asarray(lower)
    kernel_weights = field_.kernel_weights()
    n_points, n_axes = points0.shape
    n_fun = len(functionals)
    lam = xp.zeros((len(frames) * n_fun, n_points, n_axes), dtype=xp.float64)
    mu = xp.zeros((len(frames) * n_fun, n_points), dtype=xp.float64)
    inject = {}
    for k, frame in enumerate(frames):
        inject.setdefault(record.frame_steps[frame], []).append(k)
    hessian = _make_hessian(pde, field_, backend)

    def add_terminal(step: int, x: Array, lam: Array, mu: Array) -> tuple[Array, Array]:
        """Start the columns of the frames saved after ``step`` steps."""
        aux = rate(x)[1]
        lam_cols = [lam[b, ...] for b in range(lam.shape[0])]
        mu_cols = [mu[b, ...] for b in range(mu.shape[0])]
        for k in inject[step]:
            for q, fun in enumerate(functionals):
                d_x, d_w = fun.gradients(x, w, *aux, xp)
                lam_cols[k * n_fun + q] = lam_cols[k * n_fun + q] + d_x
                mu_cols[k * n_fun + q] = mu_cols[k * n_fun + q] + d_w
        return xp.stack(lam_cols), xp.stack(mu_cols)

    n_steps = record.n_steps
    marks = sorted(c for c in record.checkpoints if c <= n_steps)
    if n_steps in inject:
        lam, mu = add_terminal(n_steps, record.checkpoints[n_steps], lam, mu)
    if on_boundary is not None:
        on_boundary(n_steps, record.checkpoints[n_steps], lam, mu)
    for start, stop in reversed(list(zip(marks[:-1], marks[1:], strict=True))):
        states = [record.checkpoints[start]]
        for n in range(start, stop - 1):  # recompute the segment's states
            x = states[-1]
            staged = stages(rate, x, rate(x), record.sizes[n], tableau, project)
            states.append(_advance(x, staged, record.sizes[n], tableau, project))
        for n in range(stop - 1, start - 1, -1):
            x = states[n - start]
            h = record.sizes[n]
            staged = stages(rate, x, rate(x), h, tableau, project)
            lam, d_mu = _step_adjoint(
                x, staged, lam, h, tableau, w, kernel_weights, pde.l2, hessian, bound, xp
            )
            mu = mu + d_mu
            if n in inject:
                lam, mu = add_terminal(n, x, lam, mu)
            if on_boundary is not None:
                on_boundary(n, x, lam, mu)
    host_mu = np.asarray(to_numpy(mu))
    phi0, var = {}, {}
    for q, fun in enumerate(functionals):
        phi0[fun.name] = np.stack([host_mu[k * n_fun + q] for k in range(len(frames))])
        var[fun.name] = np.array([variance(p, weights) for p in phi0[fun.name]])
    return AdjointResult(phi0, var)


def _advance(x: Array, staged: list, h: float, tableau: Any, project: Callable | None) -> Array:
    """The new state of a step, exactly as the forward solver forms it."""
    if tableau.fsal:
        return staged[-1][0]
    out = _combination(x, staged, h, tableau.b)
    return out if project is None else project(out)


def _combination(x: Array, staged: list, h: float, coefficients: Sequence[float]) -> Array:
    """``x + h sum_j c_j K_j`` in the stepper's order of operations."""
    out = x
    for coeff, (_, k, _) in zip(coefficients, staged, strict=False):
        if coeff:
            out = out + (h * coeff) * k
    return out


def _step_adjoint(
    x: Array,
    staged: list,
    lam: Array,
    h: float,
    tableau: Any,
    w: Array,
    kernel_weights: Array,
    l2: float,
    hessian: Callable,
    bound: Array | None,
    xp: Any,
) -> tuple[Array, Array]:
    """Cotangents of one step's start state and of the weights, from that of its end.

    With a domain bound, a stage point is ``Y_i = max(Z_i, lower)`` and a blocked component of
    the velocity is 0 (:func:`~.solver.blocked`): their cotangents are cut where the bound
    acts (the derivative of the clamp and of the zeroed velocity there is 0).
    """
    n_stages = len(staged)
    nus: list[Array | None] = [None] * n_stages
    d_w = 0.0 * lam[:, :, 0]
    if bound is not None:
        lam = lam * _free(_combination(x, staged, h, tableau.b), bound, xp)
    out = lam
    for i in range(n_stages - 1, -1, -1):
        kappa = None
        if tableau.b[i]:
            kappa = (h * tableau.b[i]) * lam
        for j in range(i + 1, n_stages):
            row = tableau.a[j]
            if i < len(row) and row[i] and nus[j] is not None:
                term = (h * row[i]) * nus[j]
                kappa = term if kappa is None else kappa + term
        if kappa is None:
            continue
        y, k, (values, coupling) = staged[i]
        if bound is not None:
            kappa = kappa * xp.astype(~((y <= bound) & (k == 0.0)), kappa.dtype)
        nu, dw_i = _velocity_vjp(y, values, coupling, kappa, w, kernel_weights, l2, hessian, xp)
        if bound is not None and i > 0:
            nu = nu * _free(_combination(x, staged, h, tableau.a[i]), bound, xp)
        nus[i] = nu
        d_w = d_w + dw_i
        out = out + nu
    return out, d_w


def _free(z: Array, bound: Array, xp: Any) -> Array:
    """1 where the clamp ``max(z, lower)`` passes ``z`` through, 0 where it acts."""
    return xp.astype(z >= bound, z.dtype)


def _velocity_vjp(
    y: Array,
    values: Any,
    coupling: Array,
    kappa: Array,
    w: Array,
    kernel_weights: Array,
    l2: float,
    hessian: Callable,
    xp: Any,
) -> tuple[Array, Array]:
    """``kappa^T dK/dY`` ``(B, M, D)`` and ``kappa^T dK/dw`` ``(B, M)`` of ``K = -2 grad
    Psi_lambda`` at ``y``; ``kappa`` ``(B, M, D)``."""
    n_cols, n_points, n_axes = kappa.shape
    grads = values.feature_grads  # (M, D, P)
    n_features = grads.shape[2]
    flat_g = xp.reshape(grads, (n_points * n_axes, n_features))
    s = -2.0 * (xp.reshape(kappa, (n_cols, n_points * n_axes)) @ flat_g)  # (B, P)
    sigma = s * kernel_weights  # dm: (B, P)
    d_w = sigma @ xp.matrix_transpose(values.features)  # (B, M)
    pushed = xp.reshape(sigma @ xp.matrix_transpose(flat_g), (n_cols, n_points, n_axes))
    hess = hessian(y, coupling)  # (M, D, D)
    h_kappa = xp.sum(hess[None, :, :, :] * kappa[:, :, None, :], axis=-1)
    if l2:
        h_kappa = h_kappa + l2 * kappa
    return -2.0 * h_kappa + w[None, :, None] * pushed, d_w


def _make_hessian(pde: CharacteristicsPDE, field_: Any, backend: Backend) -> Callable:
    """``hessian(y, c)``: the Hessian of ``Psi_c = V + F c`` at ``y`` ``(M, D, D)``, by central
    differences of the model's gradients. A stencil that would cross the model's lower bound
    (a radius of 0) is moved up by less than one step (an error of order ``HESSIAN_STEP``, at
    those points only)."""
    xp = backend.xp
    steps = HESSIAN_STEP * pde.widths
    lower = pde.lower
    lows = np.full(len(steps), -np.inf) if lower is None else lower + steps

    def grad_psi(x: Array, coupling: Array) -> Array:
        grad_v, grads = field_.gradients(x)
        return psi_gradient(x, grad_v, grads, coupling, 0.0)

    def hessian(y: Array, coupling: Array) -> Array:
        host = np.asarray(to_numpy(y), dtype=np.float64)
        columns = []
        for a in range(host.shape[1]):
            centre = host.copy()
            centre[:, a] = np.maximum(centre[:, a], lows[a])
            up, down = centre.copy(), centre.copy()
            up[:, a] += steps[a]
            down[:, a] -= steps[a]
            diff = grad_psi(backend.asarray(up), coupling) - grad_psi(
                backend.asarray(down), coupling
            )
            columns.append(diff / (2.0 * float(steps[a])))
        full = xp.stack(columns, axis=-1)  # (M, D, D): d(grad_d)/dx_a
        return 0.5 * (full + xp.permute_dims(full, (0, 2, 1)))

    return hessian
