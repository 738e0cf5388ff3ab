"""The first variation of an observable with respect to the initial law: the CLT prediction.

For the noiseless DD and ``f`` a function of the reduced coordinate, ``phi_0 = delta <f, rho_T> /
delta rho_0`` solves, backward from ``phi_T = f`` (SPEC section 5; ``tau = int xi``),

.. math::

    \\partial_\\tau \\phi = 2 \\Big[ \\nabla \\Psi_\\lambda(q; \\rho_\\tau) \\cdot \\nabla \\phi
        + \\int \\nabla \\phi(q') \\cdot \\nabla_1 U(q', q) \\rho_\\tau(dq') \\Big],

and for particles started i.i.d. from ``rho_0`` and moved by population gradient descent,
``N Var <f, mu_N(T)> -> Var_{rho_0}(phi_0)``. For the isotropic model the reduced equation on
``r = |w|`` is exact: ``phi_0`` is radial, and the radial component of ``grad_1 U`` averages over
directions to ``d_1 u_d``.

Method (not the discrete adjoint of the nonlinear limited scheme, which is not differentiable):
the forward solution is stored at ``n_store`` times evenly spaced in ``tau`` and interpolated
linearly; the backward equation is a linear transport of ``phi`` with speed
``a = 2 d Psi_lambda`` plus a low-rank nonlocal source, discretised with second-order upwind
differences and Heun's method, using the model's exact ``d V`` and feature derivatives (no
finite differences of ``Psi``). It is checked against finite differences of the forward solver
itself (``tests/meanfield/test_linearized.py``). Grids of any number of axes (the transport term
axis by axis, the nonlocal term through the feature gradients), noiseless dynamics; the stored
path holds ``n_store x n_cells x D`` speeds, which bounds the grids it affords in 4-D.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backends.arrays import Backend, get_backend
from ..schedules import TimeChange
from .controller import integrate
from .equation import MeanFieldPDE
from .trackers import MemoryTracker

__all__ = [
    "ForwardPath",
    "FirstVariation",
    "forward_path",
    "first_variation",
    "sgd_step_variance",
    "full_space_noise_rate",
    "full_space_noise_rate_units",
    "point_noise_rate",
    "has_full_space_data",
    "has_sgd_noise_rate",
]


@dataclass(frozen=True)
class ForwardPath:
    """Densities of a forward run at times evenly spaced in ``tau``.

    Attributes
    ----------
    taus : array of shape ``(S,)``
    densities : array of shape ``(S, *grid.shape)``
    """

    taus: np.ndarray
    densities: np.ndarray

    def at(self, tau: float) -> np.ndarray:
        """Density at ``tau`` by linear interpolation between stored frames."""
        j = int(np.clip(np.searchsorted(self.taus, tau) - 1, 0, len(self.taus) - 2))
        w = (tau - self.taus[j]) / (self.taus[j + 1] - self.taus[j])
        return (1.0 - w) * self.densities[j] + w * self.densities[j + 1]


@dataclass(frozen=True)
class FirstVariation:
    """``phi_0`` on the grid, and the CLT prediction ``Var_{rho_0}(phi_0)``.

    Attributes
    ----------
    phi0 : array of shape ``(M,)``
    variance : float
        ``Var_{rho_0}(phi_0)``: the predicted limit of ``N Var <f, mu_N(T)>``.
    path : ForwardPath
        ``phi_tau = delta <f, rho_T> / delta rho_tau`` at the ``tau`` of the forward path
        (its ``densities`` field holds ``phi``), for the SGD step-size term.
    """

    phi0: np.ndarray
    variance: float
    path: ForwardPath | None = None


def forward_path(
    pde: MeanFieldPDE,
    rho0: np.ndarray,
    t_end: float,
    *,
    time_change: TimeChange | None = None,
    n_store: int = 401,
    backend: Backend | None = None,
    cfl: float = 0.8,
) -> ForwardPath:
    """Run the PDE to ``t_end`` and keep ``n_store`` frames evenly spaced in ``tau``."""
    time_change = time_change or TimeChange()
    taus = np.linspace(0.0, float(time_change.tau(t_end)), n_store)
    times = [float(time_change.t_of_tau(tau)) for tau in taus]
    times[-1] = t_end
    mem = MemoryTracker()
    integrate(
        pde,
        rho0,
        times,
        backend or get_backend("numpy"),
        time_change=time_change,
        cfl=cfl,
        trackers=[mem],
    )
    return ForwardPath(taus, np.stack([f.density for f in mem.frames]))


def _slopes_upwind(phi: np.ndarray, speed: np.ndarray, h: float, axis: int = 0) -> np.ndarray:
    """``d phi / dq_axis`` by second-order upwind differences for transport at ``speed``."""
    phi_a, speed_a = np.moveaxis(phi, axis, 0), np.moveaxis(speed, axis, 0)
    back = np.empty_like(phi_a)
    fwd = np.empty_like(phi_a)
    back[2:] = (3 * phi_a[2:] - 4 * phi_a[1:-1] + phi_a[:-2]) / (2 * h)
    back[:2] = (phi_a[1] - phi_a[0]) / h
    fwd[:-2] = (-3 * phi_a[:-2] + 4 * phi_a[1:-1] - phi_a[2:]) / (2 * h)
    fwd[-2:] = (phi_a[-1] - phi_a[-2]) / h
    return np.moveaxis(np.where(speed_a > 0, back, fwd), 0, axis)


def _make_rate(pde: MeanFieldPDE, path: ForwardPath, include_interaction: bool) -> Any:
    """``d phi / ds`` in reversed time ``s = tau_T - tau`` (host NumPy), on a grid of any
    number of axes: ``phi`` and the densities of ``path`` have the grid's shape."""
    grid = pde.grid
    shape, n_axes = grid.shape, grid.ndim
    points = grid.points()
    kernel = pde.model.kernel_features(points)
    features, weights = kernel.features, kernel.weights
    slopes = pde.model.kernel_feature_gradients(points)  # (M, P, D)
    base = pde.model.potential_gradient(points) + pde.l2 * points  # (M, D)
    masses = path.densities.reshape(len(path.taus), -1) * grid.cell_volume  # (S, M)
    means = (features.T @ masses.T) * weights[:, None]  # (P, S): w_p <phi_p, rho_s>
    speeds = 2.0 * (base[None] + np.einsum("mpd,ps->smd", slopes, means))  # (S, M, D)
    speed_path = ForwardPath(path.taus, speeds)
    mass_path = ForwardPath(path.taus, masses)
    tau_end = float(path.taus[-1])

    def rate(phi: np.ndarray, s: float) -> np.ndarray:
        speed = speed_path.at(tau_end - s)  # (M, D)
        out = np.zeros(shape)
        for a in range(n_axes):
            speed_a = speed[:, a].reshape(shape)
            out -= speed_a * _slopes_upwind(phi, speed_a, grid.spacing[a], a)
        if include_interaction:
            grads = (
                np.gradient(phi, *grid.spacing)
                if n_axes > 1
                else [np.gradient(phi, grid.spacing[0])]
            )
            grad_phi = np.stack([g.reshape(-1) for g in grads], axis=-1)  # (M, D)
            pushed = np.einsum(
                "md,mpd->p", grad_phi * mass_path.at(tau_end - s)[:, None], slopes
            )  # int grad phi . grad phi_p rho
            out -= 2.0 * (features @ (weights * pushed)).reshape(shape)
        return out

    cfl_rate = np.max(np.sum(np.abs(speeds) / np.asarray(grid.spacing), axis=-1))
    return rate, float(cfl_rate)


def first_variation(
    pde: MeanFieldPDE,
    rho0: np.ndarray,
    observable: np.ndarray,
    t_end: float,
    *,
    time_change: TimeChange | None = None,
    n_store: int = 401,
    include_interaction: bool = True,
    path: ForwardPath | None = None,
    cfl: float = 0.5,
) -> FirstVariation:
    """``phi_0 = delta <f, rho_T> / delta rho_0`` and ``Var_{rho_0}(phi_0)``.

    Parameters
    ----------
    pde : MeanFieldPDE
        Noiseless, on a grid of any number of axes.
    rho0 : array of the grid's shape
    observable : array of the grid's shape (or flat)
        ``f`` at the cell centres.
    t_end : float
    include_interaction : bool
        False drops the nonlocal term: the initial noise is then only carried along the
        characteristics of the mean-field flow (wrong by a large factor; for comparison).
    path : ForwardPath, optional
        A stored forward run to reuse.
    """
    if pde.noisy:
        raise ValueError("the linearised equation is implemented for noiseless runs")
    time_change = time_change or TimeChange()
    path = path or forward_path(pde, rho0, t_end, time_change=time_change, n_store=n_store)
    rate, cfl_rate = _make_rate(pde, path, include_interaction)
    tau_end = float(path.taus[-1])
    n_steps = max(1, math.ceil(tau_end * cfl_rate / cfl))
    ds = tau_end / n_steps
    phi = np.asarray(observable, dtype=np.float64).reshape(pde.grid.shape).copy()
    kept = {len(path.taus) - 1: phi.copy()}
    marks = tau_end - path.taus  # reversed time of each stored frame
    for k in range(n_steps):
        s = k * ds
        first = rate(phi, s)
        stage = phi + ds * first
        phi = phi + 0.5 * ds * (first + rate(stage, s + ds))
        for j in np.nonzero((marks > s) & (marks <= s + ds * (1 + 1e-9)))[0]:
            kept[int(j)] = phi.copy()  # frames between steps take the nearer step's value
    m0 = rho0 * pde.grid.cell_volume
    mean = float(np.sum(m0 * phi))
    phis = np.stack([kept.get(j, phi) for j in range(len(path.taus))])
    return FirstVariation(phi, float(np.sum(m0 * phi**2) - mean**2), ForwardPath(path.taus, phis))


def sgd_step_variance(
    pde: MeanFieldPDE,
    variation: FirstVariation,
    forward: ForwardPath,
    *,
    eps: float,
    batch: int,
    time_change: TimeChange | None = None,
    n_times: int = 21,
    n_samples: int = 4000,
    seed: int = 0,
) -> float:
    r"""The online-SGD term added to ``Var <f, mu_N(T)>`` by a fixed step (SPEC section 5):

    .. math::

        \frac{4 \epsilon}{B} \int_0^T \xi(s)^2\, \mathrm{Var}_x\big[(y - \hat y_s(x))
            \langle \nabla\sigma_*(x; \cdot) \cdot \nabla\phi_s, \rho_s \rangle\big]\, ds .

    Every SGD step moves all units with the same sample ``x``: the kick to ``<phi_s, mu_N>``
    has variance ``4 s_k^2 Var_x[...] / B`` whatever ``N``, summed over ``T / eps`` steps. It does
    not shrink with ``N``: ``N Var = Var_{rho_0}(phi_0) + N`` times this. The integral runs in
    ``tau`` (``xi^2 dt = xi d tau``) with the trapezoid rule on ``n_times`` points; the inner
    variance is Monte Carlo (``n_samples`` inputs and units; relative error ~ 2 / sqrt(n)).
    """
    time_change = time_change or TimeChange()
    phis = variation.path
    taus = np.linspace(0.0, float(forward.taus[-1]), n_times)
    rng = np.random.default_rng(seed)
    edges = pde.grid.edges(0)
    model = pde.model
    if not hasattr(model, "sgd_noise_rate") and not has_full_space_data(model, pde.grid):
        raise ValueError(f"no SGD noise rate for model {type(model).__name__}")
    rates = []
    for tau in taus:
        # xi^2 dt = xi d tau; at tau = 0 a singular xi (power < 0, no offset) is integrable and
        # the trapezoid rule's end weight is then taken at a tiny positive time instead
        xi = float(time_change.xi(max(float(time_change.t_of_tau(tau)), 1e-12)))
        if hasattr(model, "sgd_noise_rate"):
            rate = model.sgd_noise_rate(edges, forward.at(tau), phis.at(tau), rng, n_samples)
        else:
            rate = full_space_noise_rate(
                model, pde.grid, forward.at(tau), phis.at(tau), rng, n_samples
            )
        rates.append(xi * rate)
    return 4.0 * eps / batch * float(np.trapezoid(rates, taus))


def has_full_space_data(model: Any, grid: Any) -> bool:
    """Whether ``model`` draws data and its particles live on the grid's own coordinates."""
    return hasattr(model, "sample_data") and int(getattr(model, "dim", -1)) == grid.ndim


#: inputs per batch of the Monte Carlo in :func:`full_space_noise_rate`
_INPUT_CHUNK = 250


def full_space_noise_rate(
    model: Any,
    grid: Any,
    density: np.ndarray,
    phi: np.ndarray,
    rng: np.random.Generator,
    n_samples: int = 4000,
) -> float:
    """``Var_x[(y - y_hat_rho(x)) <grad sigma_*(x; .) . grad phi, rho>]`` by Monte Carlo, for
    a model whose particles live on the grid (teacher-student, linear unit).

    ``n_samples`` units are drawn from the cell masses of ``density`` (uniform in each cell);
    ``grad phi`` is the centred difference of ``phi`` on the grid, taken in the unit's cell;
    then :func:`full_space_noise_rate_units`.
    """
    volume = grid.cell_volume
    masses = np.asarray(density, dtype=np.float64).reshape(-1) * volume
    cells = rng.choice(masses.size, size=n_samples, p=masses / masses.sum())
    index = np.unravel_index(cells, grid.shape)
    theta = np.stack(
        [
            grid.centres(a)[index[a]] + (rng.random(n_samples) - 0.5) * h
            for a, h in enumerate(grid.spacing)
        ],
        axis=-1,
    )  # (n, D)
    grads = np.gradient(np.asarray(phi, dtype=np.float64).reshape(grid.shape), *grid.spacing)
    grads = [grads] if grid.ndim == 1 else grads
    grad_phi = np.stack([g[index] for g in grads], axis=-1)  # (n, D)
    return full_space_noise_rate_units(model, theta, grad_phi, rng)


def full_space_noise_rate_units(
    model: Any,
    theta: np.ndarray,
    grad_phi: np.ndarray,
    rng: np.random.Generator,
    weights: np.ndarray | None = None,
    n_inputs: int | None = None,
) -> float:
    """The rate of :func:`full_space_noise_rate` for a law of units ``theta`` ``(n, D)`` with
    weights (default equal) and ``grad phi`` there ``(n, D)``, on ``n_inputs`` inputs (default
    ``n``) from the model's own data sampler. The projected gradient goes through the model's
    particle code (``forward``, ``backward``) with each input as its own replica, so the rate
    matches what one SGD step does; the units enter exactly, so only the inputs are Monte
    Carlo."""
    from ..rng import CounterRNG

    n_units = theta.shape[0]
    weights = (
        np.full(n_units, 1.0 / n_units)
        if weights is None
        else np.asarray(weights, dtype=np.float64) / np.sum(weights)
    )
    n_inputs = n_units if n_inputs is None else int(n_inputs)
    stream = CounterRNG.from_seed(int(rng.integers(2**31)), 1, np, np.asarray)
    x, y = model.sample_data(stream, 0, n_inputs, np)  # (1, n, k), (1, n)
    kicks = []
    for lo in range(0, n_inputs, _INPUT_CHUNK):
        xs = np.swapaxes(x[:, lo : lo + _INPUT_CHUNK], 0, 1)  # (C, 1, k): one input per replica
        units = np.broadcast_to(theta, (xs.shape[0], *theta.shape))
        values, cache = model.forward(xs, units, np)
        residual = y[0, lo : lo + _INPUT_CHUNK] - values[:, 0] @ weights  # (C,)
        pushed = model.backward(xs, units, cache, residual[:, None, None], np)  # (C, n, D)
        kicks.append(np.sum(pushed * grad_phi, axis=-1) @ weights)
    return float(np.var(np.concatenate(kicks), ddof=1))


#: most points a point law's noise rate sums over exactly (beyond, it samples this many)
POINT_UNITS = 4000


def point_noise_rate(
    model: Any,
    points: np.ndarray,
    grad_phi: np.ndarray,
    weights: np.ndarray,
    rng: np.random.Generator,
    n_samples: int = 4000,
) -> float:
    """The rate of :func:`sgd_step_variance` for a law of weighted points (the characteristics
    solver), with ``grad phi`` at the points ``(M, D)`` and ``n_samples`` inputs.

    Every point enters with its weight (up to :data:`POINT_UNITS` points; a larger law is
    sampled with probabilities ``weights``). Sampling the points instead would add the Monte
    Carlo noise of ``sum_j w_j grad phi_j ...`` to the variance over inputs, large where light
    points carry large ``grad phi`` (near a separatrix, after MMN's split).
    """
    if points.shape[0] > POINT_UNITS:
        index = rng.choice(weights.size, size=POINT_UNITS, p=weights / weights.sum())
        points, grad_phi, weights = points[index], grad_phi[index], np.ones(POINT_UNITS)
    if hasattr(model, "sgd_noise_rate_units"):
        # a radial law: each point stands for a sphere of units, its directions Monte Carlo;
        # about n_samples directions in all, each point's weight shared by its copies
        copies = max(1, n_samples // points.shape[0])
        return float(
            model.sgd_noise_rate_units(
                np.repeat(points[:, 0], copies),
                np.repeat(grad_phi[:, 0], copies),
                rng,
                np.repeat(weights / copies, copies),
                n_samples,
            )
        )
    return full_space_noise_rate_units(model, points, grad_phi, rng, weights, n_samples)


def has_sgd_noise_rate(model: Any, n_axes: int) -> bool:
    """Whether the SGD step-size term can be computed for ``model`` on ``n_axes`` reduced axes:
    a model with its own ``sgd_noise_rate`` (radial), or whose particles live on the axes."""
    return hasattr(model, "sgd_noise_rate") or (
        hasattr(model, "sample_data") and int(getattr(model, "dim", -1)) == n_axes
    )
