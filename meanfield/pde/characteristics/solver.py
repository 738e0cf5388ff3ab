"""The characteristics solver: weighted points moved along the noiseless DD's characteristics.

With ``beta = inf`` the DD is pure transport, ``rho_t = X_t # rho_0``: every point of
``rho_0 = sum_j w_j delta_{X_j(0)}`` (:mod:`.rule`) follows

.. math::

    \\frac{dX_j}{d\\tau} = -2 \\nabla\\Psi_\\lambda(X_j; \\rho_\\tau),
    \\qquad \\rho_\\tau = \\sum_k w_k \\delta_{X_k(\\tau)},

in the time-changed time ``tau = int xi`` (exact: ``xi`` multiplies the whole velocity), with the
velocity of :mod:`.field` (the model's ``grad V`` and low-rank ``U``: cost ``O(M P)`` per
evaluation). Weights never change, so the mass is exact; the risk and the free energy are the
weighted sums of :func:`~.field.risk_and_energy`.

:func:`integrate_points` steps the points with an embedded Runge-Kutta pair
(:mod:`.stepper`): the local error of every point, in units of ``tol`` times the box width of
each axis, stays below one (max norm), and steps land on the output times exactly. The run is
observed by the same trackers as the grid's: frames carry the density on the output grid
(:mod:`.density`), the risk, free energy, mass, and the points themselves; each accepted step is
shown to :meth:`~meanfield.pde.trackers.Tracker.handle_point_step` (the invariants of
:class:`PointInvariantTracker`). One host read per step (the error norm): a step costs
``O(M P)`` work, far more than the read.

References
----------
S. Mei, A. Montanari, P.-M. Nguyen, PNAS 115 (2018), eq. (7) (the DD); D. Matthes,
B. Soellner, arXiv:2003.03803 (Lagrangian schemes for Wasserstein gradient flows).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...backends.arrays import Backend, to_numpy
from ...grid import Grid
from ...schedules import TimeChange
from ..controller import RunSummary
from ..trackers import Frame, InvariantViolation, LastGood, Tracker, observed
from .density import deposit
from .field import ModelAtPoints, feature_means, psi_gradient, risk_and_energy
from .stepper import TABLEAUS, combine, next_step_size, stages

__all__ = [
    "CharacteristicsPDE",
    "PointStep",
    "PointResume",
    "StepRecord",
    "integrate_points",
    "PointLoop",
    "make_rate",
    "blocked",
    "PointInvariantTracker",
    "MIN_STEP",
]

Array = Any

#: a step below this fraction of the output interval means the controller is stuck
MIN_STEP = 1e-12
#: the first step moves the fastest point this fraction of its axis's box width
FIRST_MOVE = 1e-3


@dataclass(frozen=True)
class CharacteristicsPDE:
    """The noiseless DD of ``model``, to be solved on weighted points.

    Parameters
    ----------
    model : ReducedModel
        With ``potential_gradient`` and ``kernel_feature_gradients`` besides the grid's methods.
    bounds : tuple of (lo, hi) per axis
        The box: the model's kernel is certified on it (its corners fix the truncation), and a
        point that leaves it stops the run.
    l2 : float
        The ridge coefficient ``lambda`` (its force is ``lambda q``; see
        :func:`~.field.ridge_is_euclidean`).
    scheme : {"dp5", "bs3"}
        The Runge-Kutta pair (:data:`~.stepper.TABLEAUS`).
    tol : float
        Local error per step allowed to every point, relative to the box width of each axis.
    box_name : str
        How messages name the box (the config key, e.g. ``"pde.r_max = 8"``).
    outside_tol : float
        Largest total weight of the points allowed outside the box
        (:class:`PointInvariantTracker`).
    scale_grid : Grid, optional
        Whose cell centres fix the model's kernel columns (:class:`~.field.ModelAtPoints`):
        the grid the same problem would run on, so both methods use one kernel. Default: the
        box's corners.
    """

    model: Any
    bounds: tuple[tuple[float, float], ...]
    l2: float = 0.0
    scheme: str = "dp5"
    tol: float = 1e-8
    box_name: str = "the box"
    outside_tol: float = 1e-4
    scale_grid: Grid | None = None

    def __post_init__(self) -> None:
        if self.scheme not in TABLEAUS:
            raise ValueError(f"scheme must be one of {', '.join(TABLEAUS)}, got {self.scheme!r}")
        if not 0.0 < self.tol < 1.0:
            raise ValueError(f"tol must lie in (0, 1), got {self.tol}")
        if not self.l2 >= 0.0:
            raise ValueError(f"l2 must be >= 0, got {self.l2}")
        if not 0.0 <= self.outside_tol < 1.0:
            raise ValueError(f"outside_tol must lie in [0, 1), got {self.outside_tol}")

    def invariants(self) -> PointInvariantTracker:
        """The invariant checks of a run of this problem."""
        return PointInvariantTracker(self.bounds, self.box_name, self.outside_tol)

    def outside_mass(self, points: np.ndarray, weights: np.ndarray) -> float:
        """Total weight of ``points`` ``(M, D)`` outside the box (host NumPy)."""
        outside = np.zeros(points.shape[0], dtype=bool)
        for a, (lo, hi) in enumerate(self.bounds):
            outside |= (points[:, a] < lo) | (points[:, a] > hi)
        return float(np.sum(weights[outside]))

    @property
    def widths(self) -> np.ndarray:
        return np.array([hi - lo for lo, hi in self.bounds])

    def field(self, backend: Backend) -> ModelAtPoints:
        """The model at moving points, its kernel columns fixed by :attr:`scale_grid`."""
        scale = None if self.scale_grid is None else self.scale_grid.points()
        return ModelAtPoints(self.model, tuple(self.bounds), backend, scale)

    @property
    def lower(self) -> np.ndarray | None:
        """The model's :attr:`~meanfield.model.base.ReducedModel.domain_lower`, or None when
        every axis is unbounded below."""
        lower = np.asarray(
            getattr(self.model, "domain_lower", (-math.inf,) * len(self.bounds)), dtype=np.float64
        )
        return None if np.all(np.isinf(lower)) else lower

    def projection(self, backend: Backend) -> Callable[[Array], Array] | None:
        """``Y -> max(Y, lower)``: a point that reaches a radius of 0 stays there."""
        lower = self.lower
        if lower is None:
            return None
        bound = backend.asarray(lower)
        return lambda y: backend.xp.maximum(y, bound)


def make_rate(
    field_: ModelAtPoints, weights: Array, l2: float, lower: np.ndarray | None = None
) -> Callable[[Array], tuple[Array, Any]]:
    """``rate(X) -> (K, (values, coupling))``: the velocity ``-2 grad Psi_lambda`` of the points
    ``X`` carrying ``weights``, with the model's values at ``X`` and ``c_p = lambda_p m_p``.

    With ``lower`` (the model's domain, ``(D,)``), a point at its lower bound whose velocity
    points below it does not move along that axis (:func:`blocked`).
    """
    kernel_weights = field_.kernel_weights()
    bound = None if lower is None else field_.backend.asarray(lower)

    def rate(x: Array) -> tuple[Array, Any]:
        values = field_.values(x)
        coupling = kernel_weights * feature_means(values.features, weights)
        velocity = -2.0 * psi_gradient(x, values.grad_potential, values.feature_grads, coupling, l2)
        if bound is not None:
            velocity = field_.backend.xp.where(
                blocked(x, velocity, bound), 0.0 * velocity, velocity
            )
        return velocity, (values, coupling)

    return rate


def blocked(x: Array, velocity: Array, bound: Array) -> Array:
    """Where a point sits at its lower bound and its velocity points below it ``(M, D)``."""
    return (x <= bound) & (velocity < 0.0)


@dataclass(frozen=True)
class PointStep:
    """An accepted step, as the trackers see it (backend arrays; floats on the host).

    Attributes
    ----------
    step : int
        Index of the new state.
    t : float
        Physical time of the new state.
    points : array ``(M, D)``
    energy, previous_energy : float
        Free energy after and before the step.
    slack : float
        ``sum_j w_j |grad Psi(X_j)| |e_j|``: how much the step's own error estimate ``e`` can
        move the free energy; a rise within it is not a violation.
    xp : namespace
    """

    step: int
    t: float
    points: Array
    energy: float
    previous_energy: float
    slack: float
    xp: Any


@dataclass
class StepRecord:
    """What the reverse pass needs of a forward run.

    Attributes
    ----------
    every : int
        A checkpoint is kept every ``every`` steps.
    taus, sizes : lists of float
        ``tau`` at the start of every accepted step, and its size.
    checkpoints : dict of step index -> array ``(M, D)``
        The state before that step (index 0: the initial points; the last index: the end).
    frame_steps : list of int
        Steps taken when each output frame was emitted.
    """

    every: int = 32
    taus: list[float] = field(default_factory=list)
    sizes: list[float] = field(default_factory=list)
    checkpoints: dict[int, Array] = field(default_factory=dict)
    frame_steps: list[int] = field(default_factory=list)

    @property
    def n_steps(self) -> int:
        return len(self.sizes)


@dataclass(frozen=True)
class PointResume:
    """Continue after output frame ``index`` from ``points`` at ``tau``, step ``step``, with
    next step size ``h`` (in ``tau``) and the last physical step ``dt``."""

    index: int
    points: np.ndarray
    tau: float
    step: int
    h: float
    dt: float


class PointInvariantTracker(Tracker):
    """Finite points, little mass outside the box, and a non-increasing free energy, checked on
    every step.

    The mass is exact by construction (weights never change). The kernel's truncation is
    certified on the box: points may leave it (the grid's walls would hold them at the wall
    instead), but the weight outside the box may not exceed ``outside_tol``; the largest
    weight seen outside is recorded (``max_outside_mass``). The free energy of the points is a
    Lyapunov function of their ODE (:mod:`.field`); a rise beyond the step's own error
    estimate (``slack``) plus ``energy_rtol (|F| + 1)`` is a violation.

    Parameters
    ----------
    bounds : tuple of (lo, hi)
    box_name : str
    outside_tol : float
        Largest total weight allowed outside the box.
    energy_rtol : float
        Room for round-off in the weighted sums (``M`` terms of size ``|F|``).
    """

    def __init__(
        self,
        bounds: Sequence[tuple[float, float]],
        box_name: str = "the box",
        outside_tol: float = 1e-4,
        energy_rtol: float = 1e-12,
    ) -> None:
        self.bounds = tuple(bounds)
        self.box_name = box_name
        self.outside_tol = outside_tol
        self.energy_rtol = energy_rtol
        self.max_free_energy_rise = 0.0
        self.max_outside_mass = 0.0

    def initialize(self, run: dict[str, Any]) -> None:
        self._weights = run["weights"]
        self._backend = run["backend"]
        self._w = run["backend"].asarray(run["weights"])

    def handle_point_step(self, info: PointStep) -> None:
        xp, x = info.xp, info.points
        where = f"step {info.step} (t = {info.t:.6g})"
        if not (math.isfinite(info.energy) and bool(xp.all(xp.isfinite(x)))):
            raise InvariantViolation(f"{where}: non-finite points or free energy")
        outside = xp.zeros(x.shape[0], dtype=xp.bool)
        for a, (lo, hi) in enumerate(self.bounds):
            outside = outside | (x[:, a] < lo) | (x[:, a] > hi)
        mass = float(xp.sum(xp.where(outside, self._w, 0.0 * self._w)))
        self.max_outside_mass = max(self.max_outside_mass, mass)
        if mass > self.outside_tol:
            raise InvariantViolation(
                f"{where}: weight {mass:.3g} of the points left {self.box_name} (allowed "
                f"{self.outside_tol:g}); the kernel is certified on the box only: enlarge it"
            )
        rise = info.energy - info.previous_energy
        if rise > info.slack + self.energy_rtol * (abs(info.energy) + 1.0):
            raise InvariantViolation(
                f"step {info.step - 1}: free energy increased by {rise:.3e} to "
                f"{info.energy:.17g} (the step's error allows {info.slack:.1e})"
            )
        self.max_free_energy_rise = max(self.max_free_energy_rise, rise)

    def get_state(self) -> dict[str, float]:
        return {
            "max_free_energy_rise": self.max_free_energy_rise,
            "max_outside_mass": self.max_outside_mass,
        }

    def set_state(self, state: dict[str, float]) -> None:
        self.max_free_energy_rise = float(state["max_free_energy_rise"])
        self.max_outside_mass = float(state["max_outside_mass"])


def integrate_points(
    pde: CharacteristicsPDE,
    points0: np.ndarray,
    weights: np.ndarray,
    save_times: Sequence[float],
    backend: Backend,
    output_grid: Grid,
    *,
    time_change: TimeChange | None = None,
    trackers: Sequence[Tracker] = (),
    record: StepRecord | None = None,
    resume: PointResume | None = None,
    quantiles: np.ndarray | None = None,
) -> RunSummary:
    """Move ``points0`` (weights ``weights``) to each of ``save_times`` and emit a frame there.

    Parameters
    ----------
    pde : CharacteristicsPDE
    points0 : array ``(M, D)``, inside ``pde.bounds``
    weights : array ``(M,)``, positive, summing to 1
    save_times : increasing physical times ``>= 0``
    backend : Backend
    output_grid : Grid
        Where the frames' densities are deposited (:func:`~.density.deposit`).
    time_change : TimeChange, optional
    trackers : sequence of Tracker
        Frames go to ``handle_frame``, accepted steps to ``handle_point_step``.
    record : StepRecord, optional
        Filled with the step sizes and checkpoints (for :mod:`.adjoint`).
    resume : PointResume, optional
        Continue from a frame of an earlier run of the same problem.
    quantiles : array ``(M, D)``, optional
        The initial law's CDF at each point (:meth:`~.rule.CellRule.quantiles`): on one axis
        the densities use the exact CDF of the points (:func:`~.density.deposit`).
    """
    time_change = time_change or TimeChange()
    save_times = [float(t) for t in save_times]
    if any(b <= a for a, b in zip(save_times, save_times[1:], strict=False)) or save_times[0] < 0:
        raise ValueError("save_times must be increasing and non-negative")
    first_index = 0 if resume is None else resume.index + 1
    run = {
        "grid": output_grid,
        "t_end": save_times[-1],
        "backend": backend,
        "mass0": 1.0,
        "t_start": save_times[first_index - 1] if first_index > 0 else 0.0,
        "t_of_tau": lambda tau: float(time_change.t_of_tau(tau)),
        "n_points": int(points0.shape[0]),
        "weights": np.asarray(weights),
        "quantiles": quantiles,
    }
    for tracker in trackers:
        tracker.initialize(run)
    wall = time.perf_counter()
    loop = PointLoop(pde, points0, weights, backend, time_change, record, resume)

    def last_good() -> LastGood:
        return LastGood(
            float(time_change.t_of_tau(loop.tau)),
            loop.step,
            deposit(loop.host_points(), weights, output_grid, quantiles),
        )

    frame = None
    with observed(trackers, last_good):
        for index in range(first_index, len(save_times)):
            loop.advance(float(time_change.tau(save_times[index])), trackers)
            risk, free = loop.functionals()
            host = loop.host_points()
            frame = Frame(
                index,
                save_times[index],
                loop.step,
                loop.dt,
                deposit(host, weights, output_grid, quantiles),
                risk,
                free,
                float(np.sum(weights)),
                loop.tau,
                {"h": loop.h, **_states(trackers)},
                host,
            )
            if record is not None:
                record.frame_steps.append(loop.step)
                record.checkpoints[loop.step] = loop.x
            for tracker in trackers:
                tracker.handle_frame(frame)
    return RunSummary(loop.step, save_times[-1], time.perf_counter() - wall, frame)


class PointLoop:
    """The stepping state of :func:`integrate_points`: the points on the backend, the clock,
    the next step size and the last stage (an FSAL pair's next first stage).

    Attributes
    ----------
    x : array ``(M, D)``
    tau, step : ``int xi`` and the accepted steps so far
    h : the next step size (in ``tau``) the controller chose
    dt : the last accepted step in physical time (0 before the first)
    energy : the free energy of ``x``
    """

    def __init__(
        self,
        pde: CharacteristicsPDE,
        points0: np.ndarray,
        weights: np.ndarray,
        backend: Backend,
        time_change: TimeChange,
        record: StepRecord | None,
        resume: PointResume | None,
    ) -> None:
        self.pde, self.backend, self.xp = pde, backend, backend.xp
        self.time_change, self.record = time_change, record
        self.tableau = TABLEAUS[pde.scheme]
        self.w = backend.asarray(weights)
        field_ = pde.field(backend)
        self.rate = make_rate(field_, self.w, pde.l2, pde.lower)
        self.project = pde.projection(backend)
        self.kernel_weights = field_.kernel_weights()
        self.scale = backend.asarray(pde.tol * pde.widths)
        self.x = backend.asarray(points0 if resume is None else resume.points)
        self.first = self.rate(self.x)
        self.tau = 0.0 if resume is None else resume.tau
        self.step = 0 if resume is None else resume.step
        self.dt = 0.0 if resume is None else resume.dt
        self.h = (
            _first_step(self.first[0], backend.asarray(pde.widths), self.xp)
            if resume is None
            else resume.h
        )
        self.energy = self.functionals()[1]
        if record is not None:
            record.checkpoints[self.step] = self.x

    def functionals(self, x: Array | None = None, aux: Any = None) -> tuple[float, float]:
        """Risk and free energy of ``x`` (default: the current state)."""
        x, aux = (self.x, self.first[1]) if x is None else (x, aux)
        values, _ = aux
        risk, energy = risk_and_energy(
            x,
            self.w,
            values.potential,
            values.features,
            self.kernel_weights,
            float(self.pde.model.r_sharp),
            self.pde.l2,
            self.xp,
        )
        return float(risk), float(energy)

    def host_points(self) -> np.ndarray:
        return np.asarray(to_numpy(self.x), dtype=np.float64).copy()

    def advance(self, tau_out: float, trackers: Sequence[Tracker]) -> None:
        """Step until ``tau`` equals ``tau_out`` exactly (the last step is cut to land on it)."""
        while self.tau < tau_out:
            remaining = tau_out - self.tau
            last = self.h >= remaining * (1.0 - 1e-9)
            h_try = remaining if last else self.h
            if h_try <= MIN_STEP * max(tau_out, 1.0):
                raise InvariantViolation(
                    f"step {self.step + 1} (t = {self.time_change.t_of_tau(self.tau):.6g}): "
                    f"the step size fell to {h_try:.3g} at pde.tol = {self.pde.tol:g}: the "
                    "velocity changes faster than the controller can follow (check the "
                    "model's gradients where the points are)"
                )
            norm = self._attempt(h_try, tau_out if last else self.tau + h_try, trackers)
            h_next = next_step_size(h_try, norm, self.tableau.order)
            self.h = max(self.h, h_next) if last and norm <= 1.0 else h_next

    def _attempt(self, h: float, tau_new: float, trackers: Sequence[Tracker]) -> float:
        """One step of size ``h``, committed if its error norm is at most 1; the norm."""
        xp, tableau = self.xp, self.tableau
        staged = stages(self.rate, self.x, self.first, h, tableau, self.project)
        x_new = staged[-1][0] if tableau.fsal else combine(self.x, staged, h, tableau.b)
        if self.project is not None and not tableau.fsal:
            x_new = self.project(x_new)
        error = combine(0.0, staged, h, tableau.error)
        norm = float(xp.max(xp.abs(error) / self.scale))
        if not norm <= 1.0:
            return norm
        first_new = staged[-1][1:] if tableau.fsal else self.rate(x_new)
        energy_new = self.functionals(x_new, first_new[1])[1]
        speed = xp.sqrt(xp.sum(first_new[0] * first_new[0], axis=1))
        slack = float(xp.sum(self.w * 0.5 * speed * xp.sqrt(xp.sum(error * error, axis=1))))
        t_new = float(self.time_change.t_of_tau(tau_new))
        info = PointStep(self.step + 1, t_new, x_new, energy_new, self.energy, slack, xp)
        for tracker in trackers:
            tracker.handle_point_step(info)
        if self.record is not None:
            self.record.taus.append(self.tau)
            self.record.sizes.append(h)
        self.dt = t_new - float(self.time_change.t_of_tau(self.tau))
        self.x, self.first, self.energy, self.tau = x_new, first_new, energy_new, tau_new
        self.step += 1
        if self.record is not None and self.step % self.record.every == 0:
            self.record.checkpoints[self.step] = self.x
        return norm


def _first_step(velocity: Array, widths: Array, xp: Any) -> float:
    """A first step that moves the fastest point :data:`FIRST_MOVE` of its axis's width."""
    speed = float(xp.max(xp.abs(velocity) / widths))
    return FIRST_MOVE / speed if speed > 0 else 1.0


def _states(trackers: Sequence[Tracker]) -> dict[str, float]:
    merged: dict[str, float] = {}
    for tracker in trackers:
        merged.update(tracker.get_state())
    return merged
