"""Adaptive refinement of the initial rule where the flow map stretches, and the passes that
drive it until the risk stops moving.

A cell of :class:`~.rule.CellRule` stands for a piece of ``rho_0``; its ``k^D`` points follow the
flow, and the rule integrates ``f(X_t(x_0))`` over the piece accurately only while the flow
map is smooth on it. Where neighbouring units part (MMN's Fig. 1 after the split: units on
either side of a separatrix go to the atom or outwards), the points of one cell separate and
the quadrature of everything downstream (the risk, the kernel's mean features, the CLT's
``phi_0``) loses its order. The **stretch** of a cell along input axis ``b`` is how much the
distance between its extreme nodes along ``b`` (in box widths) has grown since ``t = 0``, the
largest over the output frames (:func:`stretch`).

:func:`solve_with_refinement` runs the whole problem on the rule, splits every cell whose
stretch exceeds ``tol`` along its worst axis into ``2^l`` equal-mass pieces (``l =
ceil(log2(stretch / tol))``, at most ``max_level``), and runs again from ``t = 0`` with the
refined rule, until the risk at every output time changes by less than ``risk_tol`` in each
of two passes in a row (or no cell stretches beyond ``tol`` after the first pass, or the budget
of passes or points is spent).
Rerunning from ``t = 0`` keeps every pass one fixed system of weighted points, so the final
pass is an ordinary run: its frames are the result, and the reverse pass (:mod:`.adjoint`)
differentiates exactly it. The last change of the risk is reported as the refinement's error
estimate (``/pde`` attribute ``refinement_risk_change``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ...backends.arrays import Backend
from ...grid import Grid
from ...schedules import TimeChange
from ..controller import RunSummary
from ..trackers import Frame, MemoryTracker, Tracker
from .rule import CellRule
from .solver import CharacteristicsPDE, StepRecord, integrate_points

__all__ = [
    "Refinement",
    "PassReport",
    "CharacteristicsRun",
    "stretch",
    "neighbour_pairs",
    "plan_split",
    "solve_with_refinement",
    "refinement_report",
    "SINGLE_PASS",
]


#: a cell is split only where the flow stretches it unevenly: its own growth factor, or the
#: gap across one of its faces, at least this many times that of a neighbour (a smooth map
#: stretches neighbours alike, and the cell's Gauss rule integrates a smooth map to its order)
UNEVEN = 2.0
#: how often a pass may halve ``tol`` to find cells to split while the risk still moves
MAX_HALVINGS = 6
#: separations below this (box widths) count as this in the growth factors
TINY = 1e-12

#: the reason of a solve without refinement
SINGLE_PASS = "one pass: refinement is off (nothing checked)"


@dataclass(frozen=True)
class Refinement:
    """When and how far to refine.

    Parameters
    ----------
    tol : float
        Largest stretch a cell may keep (a fraction of the box width); 0 disables refinement
        (one pass on the initial rule).
    risk_tol : float
        Passes stop once the risk at every output time changes by less than this.
    max_passes : int
        Most runs from ``t = 0`` (the first included).
    max_points : int
        Most points a refined rule may have; the cells that stretch most are split first.
    max_level : int
        A cell splits into at most ``2^max_level`` pieces per pass.
    """

    tol: float = 0.0
    risk_tol: float = 1e-6
    max_passes: int = 6
    max_points: int = 2_000_000
    max_level: int = 3

    @property
    def enabled(self) -> bool:
        return self.tol > 0.0 and self.max_passes > 1


@dataclass(frozen=True)
class PassReport:
    """One pass: its points, steps, the risk at the output times, the largest change of the
    risk from the previous pass (NaN for the first), the cells it marked for splitting, its
    wall time and the largest rise of the free energy over one of its steps."""

    n_points: int
    n_steps: int
    risk: np.ndarray
    risk_change: float
    n_marked: int
    seconds: float
    max_free_energy_rise: float
    max_outside_mass: float


@dataclass
class CharacteristicsRun:
    """The result of :func:`solve_with_refinement`.

    Attributes
    ----------
    summary : RunSummary of the final pass
    frames : list of Frame of the final pass
    rule : CellRule of the final pass
    points0, weights : arrays ``(M, D)`` and ``(M,)``: its initial points and weights
    quantiles : array ``(M, D)``: the initial law's CDF at its points
    record : StepRecord of the final pass (for the reverse pass)
    passes : list of PassReport
    converged : bool
        Whether refinement stopped because it met ``risk_tol`` or nothing stretched beyond
        ``tol`` (False: the budget of passes or points ran out first, or refinement was off).
    reason : str
    """

    summary: RunSummary
    frames: list[Frame]
    rule: CellRule
    points0: np.ndarray
    weights: np.ndarray
    quantiles: np.ndarray
    record: StepRecord
    passes: list[PassReport] = field(default_factory=list)
    converged: bool = True
    reason: str = ""

    @property
    def risk_change(self) -> np.ndarray:
        """``|R_last - R_previous|`` at each output time (NaN after a single pass)."""
        return _risk_change(self.passes)

    def report(self) -> dict[str, Any]:
        """The refinement's record as the ``/pde`` attributes of a run file."""
        return refinement_report(self.passes, self.converged, self.reason)


def _risk_change(passes: Sequence[PassReport]) -> np.ndarray:
    if len(passes) < 2:
        return np.full(len(passes[-1].risk), math.nan)
    return np.abs(passes[-1].risk - passes[-2].risk)


def refinement_report(passes: Sequence[PassReport], converged: bool, reason: str) -> dict[str, Any]:
    """``refinement_passes``, ``points_per_pass``, ``refinement_converged``,
    ``refinement_reason`` and ``refinement_risk_change`` (per output time) of a solve."""
    return {
        "refinement_passes": len(passes),
        "points_per_pass": np.array([p.n_points for p in passes], dtype=np.int64),
        "refinement_converged": bool(converged),
        "refinement_reason": reason,
        "refinement_risk_change": _risk_change(passes),
    }


def stretch(
    rule: CellRule, points0: np.ndarray, frames_points: Sequence[np.ndarray], widths: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """How far every cell has been stretched, and the input axis it is stretched most along.

    Along input axis ``b`` a cell has a low face and a high face; the mean of its nodes with
    the lowest (highest) index along ``b`` stands for the low (high) face. Two separations
    are followed, in box widths: between a cell's own two faces, and between a cell's high face
    and the low face of each neighbour across it (cells whose probability intervals meet along
    ``b`` and overlap along the other axes). The stretch is how much a separation has grown
    since ``t = 0``; a neighbour pair's counts for both cells (the front may sit in either, or
    between a node and the face). A cell that is only moved, turned or contracted (into an
    atom, say) has none, however coarse it is: the two tail cells of an axis are wide and carry
    little mass, and the flow, not their width, decides. And it counts only where the
    stretching is uneven (:data:`UNEVEN`): where a cell's growth factor, or that of the gap
    across one of its faces, is at least twice a neighbour's. A smooth expansion stretches
    neighbours alike and the cells' Gauss rules integrate it to their order; a front (units
    on either side of a separatrix parting) stretches one cell or one face far more than the
    next.

    Parameters
    ----------
    rule : CellRule with ``gauss >= 2``
    points0 : array ``(M, D)``, the rule's points at ``t = 0``
    frames_points : sequence of arrays ``(M, D)``, the points at the output times
    widths : array ``(D,)``, the box widths

    Returns
    -------
    stretch : array ``(n_cells,)``, the largest growth of a separation (``>= 0``)
    axis : array ``(n_cells,)`` of int, the ``b`` that attains it
    """
    if rule.gauss < 2:
        raise ValueError("the stretch of a cell needs at least 2 Gauss points per axis")
    nodes = rule.node_index()
    k, n_cells, n_axes = rule.gauss, rule.n_cells, rule.n_axes
    pairs = [neighbour_pairs(rule, b) for b in range(n_axes)]

    def faces(points: np.ndarray, b: int) -> tuple[np.ndarray, np.ndarray]:
        cells = np.asarray(points).reshape(n_cells, rule.points_per_cell, n_axes) / widths
        return (
            cells[:, nodes[:, b] == 0].mean(axis=1),
            cells[:, nodes[:, b] == k - 1].mean(axis=1),
        )  # (n_cells, D) each

    def separations(points: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        out = []
        for b in range(n_axes):
            low, high = faces(points, b)
            lower, upper = pairs[b]
            out.append(
                (
                    np.linalg.norm(high - low, axis=1),
                    np.linalg.norm(low[upper] - high[lower], axis=1),
                )
            )
        return out

    start = separations(points0)
    inside = np.zeros((n_cells, n_axes))
    across = [np.zeros(len(pairs[b][0])) for b in range(n_axes)]
    uneven = np.zeros((n_cells, n_axes))
    for points in frames_points:
        for b, (own, between) in enumerate(separations(points)):
            inside[:, b] = np.maximum(inside[:, b], own - start[b][0])
            across[b] = np.maximum(across[b], between - start[b][1])
            uneven[:, b] = np.maximum(
                uneven[:, b],
                _unevenness(
                    np.maximum(own, TINY) / np.maximum(start[b][0], TINY),
                    np.maximum(between, TINY) / np.maximum(start[b][1], TINY),
                    pairs[b],
                    n_cells,
                ),
            )
    worst = inside.copy()
    for b, (lower, upper) in enumerate(pairs):
        np.maximum.at(worst[:, b], lower, across[b])
        np.maximum.at(worst[:, b], upper, across[b])
    worst = np.where(uneven >= UNEVEN, worst, 0.0)
    return worst.max(axis=1), worst.argmax(axis=1)


def _unevenness(
    own: np.ndarray, between: np.ndarray, pairs: tuple[np.ndarray, np.ndarray], n_cells: int
) -> np.ndarray:
    """Per cell, the largest ratio of growth factors it takes part in: its own against a
    neighbour's, and the gap across a shared face against the larger of the two cells'
    (``inf`` for a cell with no neighbour along the axis: the growth alone decides)."""
    lower, upper = pairs
    out = np.full(n_cells, np.inf)
    if lower.size == 0:
        return out
    own_l, own_u = own[lower], own[upper]
    ratio = np.maximum(np.maximum(own_l / own_u, own_u / own_l), between / np.maximum(own_l, own_u))
    seen = np.zeros(n_cells)
    np.maximum.at(seen, lower, ratio)
    np.maximum.at(seen, upper, ratio)
    has = np.zeros(n_cells, dtype=bool)
    has[lower] = has[upper] = True
    return np.where(has, seen, out)


def neighbour_pairs(rule: CellRule, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Cells ``lower[i]`` and ``upper[i]`` that meet along ``axis`` (the high end of the first's
    probability interval is the low end of the second's; cuts are exact, so the floats match)
    and overlap along every other axis."""
    others = [a for a in range(rule.n_axes) if a != axis]
    by_low: dict[float, list[int]] = {}
    for c, u in enumerate(rule.u_lo[:, axis].tolist()):
        by_low.setdefault(u, []).append(c)
    lower, upper = [], []
    for c, u in enumerate(rule.u_hi[:, axis].tolist()):
        group = by_low.get(u)
        if not group:
            continue
        cand = np.asarray(group)
        overlap = np.all(
            (rule.u_lo[cand][:, others] < rule.u_hi[c, others])
            & (rule.u_hi[cand][:, others] > rule.u_lo[c, others]),
            axis=1,
        )
        for n in cand[overlap]:
            lower.append(c)
            upper.append(int(n))
    return np.asarray(lower, dtype=np.int64), np.asarray(upper, dtype=np.int64)


def plan_split(
    rule: CellRule, amount: np.ndarray, axis: np.ndarray, refinement: Refinement
) -> dict[int, tuple[int, int]]:
    """``{cell: (axis, pieces)}`` for the cells that stretch beyond ``tol``, the worst first,
    within the point budget."""
    over = np.nonzero(amount > refinement.tol)[0]
    over = over[np.argsort(-amount[over], kind="stable")]
    budget = refinement.max_points - rule.n_points
    marks: dict[int, tuple[int, int]] = {}
    for c in over:
        level = int(
            min(refinement.max_level, max(1, math.ceil(math.log2(amount[c] / refinement.tol))))
        )
        added = (2**level - 1) * rule.points_per_cell
        if added > budget:
            continue
        budget -= added
        marks[int(c)] = (int(axis[c]), 2**level)
    return marks


def solve_with_refinement(
    pde: CharacteristicsPDE,
    rule: CellRule,
    save_times: Sequence[float],
    backend: Backend,
    output_grid: Grid,
    *,
    time_change: TimeChange | None = None,
    refinement: Refinement | None = None,
    trackers: Sequence[Tracker] = (),
    record_every: int = 32,
    pass_trackers: Callable[[int], Sequence[Tracker]] | None = None,
) -> CharacteristicsRun:
    """Solve on ``rule``, refining it pass by pass (module docstring); the final pass's frames
    go to ``trackers``.

    Without refinement the single pass streams its frames to ``trackers`` as they come; with
    it, every pass keeps its frames in memory and the final pass's are handed to ``trackers``
    at the end. ``pass_trackers(p)`` adds observers to pass ``p`` (a progress bar, say).
    """
    refinement = refinement or Refinement()
    save_times = list(save_times)
    passes: list[PassReport] = []
    converged, reason = False, SINGLE_PASS
    while True:
        points0, weights, quantiles = rule.tabulate()
        record = StepRecord(every=record_every)
        memory = MemoryTracker()
        invariants = pde.invariants()
        observers = [invariants, memory, *(() if refinement.enabled else trackers)]
        extra = list(pass_trackers(len(passes) + 1)) if pass_trackers is not None else []
        wall = time.perf_counter()
        summary = integrate_points(
            pde,
            points0,
            weights,
            save_times,
            backend,
            output_grid,
            time_change=time_change,
            trackers=[*observers, *extra],
            record=record,
            quantiles=quantiles,
        )
        risk = memory.series("risk")
        change = float(np.max(np.abs(risk - passes[-1].risk))) if passes else math.nan
        # two passes in a row must agree: one quiet pass may have split cells that do not
        # matter while the front's cell kept its error
        settled = max(change, passes[-1].risk_change) if len(passes) > 1 else math.nan
        marks: dict[int, tuple[int, int]] = {}
        if refinement.enabled:
            marks, converged, reason = _next_split(
                rule,
                points0,
                memory.frames,
                pde.widths,
                refinement,
                change,
                settled,
                len(passes) + 1,
            )
        passes.append(
            PassReport(
                rule.n_points,
                summary.n_steps,
                risk,
                change,
                len(marks),
                time.perf_counter() - wall,
                invariants.max_free_energy_rise,
                invariants.max_outside_mass,
            )
        )
        if not marks:
            break
        rule = rule.split(marks)
    if refinement.enabled:
        _replay(
            trackers,
            memory.frames,
            output_grid,
            backend,
            weights,
            quantiles,
            save_times,
            refinement_report(passes, converged, reason),
        )
    return CharacteristicsRun(
        summary, memory.frames, rule, points0, weights, quantiles, record, passes, converged, reason
    )


def _next_split(
    rule: CellRule,
    points0: np.ndarray,
    frames: Sequence[Frame],
    widths: np.ndarray,
    refinement: Refinement,
    change: float,
    settled: float,
    n_pass: int,
) -> tuple[dict[int, tuple[int, int]], bool, str]:
    """After pass ``n_pass``: the cells to split (none when refinement stops), whether it
    converged, and why it stopped.

    Refinement converges when the risk has moved less than ``risk_tol`` in each of the last
    two passes (``settled``, the larger of the two changes), or when nothing stretches after
    the first pass. Once passes have moved the risk, stopping needs the risk criterion: if no
    cell stretches beyond ``tol``, the tolerance is halved (down to ``tol / 64``) until some
    do, so that the last passes are checked against each other.
    """
    if settled <= refinement.risk_tol:  # False before the third pass (NaN)
        return (
            {},
            True,
            (
                f"the risk moved by {change:.2e} and {settled:.2e} <= risk_tol in "
                "the last two passes"
            ),
        )
    amount, axis = stretch(rule, points0, [f.points for f in frames], widths)
    scales = [1.0] if math.isnan(change) else [2.0**-i for i in range(MAX_HALVINGS + 1)]
    for scale in scales:
        tightened = replace(refinement, tol=refinement.tol * scale)
        marks = plan_split(rule, amount, axis, tightened)
        if marks:
            break
    if not marks:
        if math.isnan(change) and not np.any(amount > refinement.tol):
            return {}, True, "no cell stretches beyond tol"
        over = int(np.sum(amount > refinement.tol * scales[-1]))
        if over:
            return (
                {},
                False,
                (
                    f"{over} cells stretch beyond tol but max_points is reached "
                    f"(the risk moved by {change:.2e} in the last pass)"
                ),
            )
        return (
            {},
            False,
            (
                f"the risk moved by {change:.2e} > risk_tol in the last pass, and "
                f"no cell stretches beyond tol / {2**MAX_HALVINGS}"
            ),
        )
    if n_pass >= refinement.max_passes:
        return {}, False, f"max_passes = {refinement.max_passes} reached"
    return marks, False, ""


def _replay(
    trackers: Sequence[Tracker],
    frames: list[Frame],
    grid: Grid,
    backend: Backend,
    weights: np.ndarray,
    quantiles: np.ndarray,
    save_times: list[float],
    report: dict[str, Any],
) -> None:
    """Hand a finished pass's frames to ``trackers`` as if they had watched it (with the
    refinement's ``report``, which a storage tracker writes before the frames)."""
    run = {
        "grid": grid,
        "t_end": save_times[-1],
        "backend": backend,
        "mass0": 1.0,
        "t_start": 0.0,
        "n_points": int(weights.size),
        "weights": weights,
        "quantiles": quantiles,
        "report": report,
    }
    for tracker in trackers:
        tracker.initialize(run)
    try:
        for frame in frames:
            for tracker in trackers:
                tracker.handle_frame(frame)
    finally:
        for tracker in trackers:
            tracker.finalize()
