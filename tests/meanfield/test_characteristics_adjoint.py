"""The characteristics solver's reverse pass (``phi_0 = dF/dw_j``) and its CLT predictions.

* ``reverse_pass`` against central differences of the forward map in the weights, the forward
  map recomputed here with the step sizes the controller recorded (:func:`stepper.stages` and
  :func:`solver.make_rate`, as the solver forms its states): on the isotropic model (one radial
  axis, built by the config layer, with a ridge) and on a two-axis model with nonlinear
  features (the Hessian of ``Psi`` with ``D = 2``, mixed partials included).
* The reverse pass on ``array_api_strict`` equals NumPy's.
* ``clt_predictions`` of the characteristics solver against the grid's linearised equation on
  the shortened isotropic study config (before the split), and, at ``t = 0``, against the
  exact ``Var_{rho_0}(f)``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import special

from compare.study import clt_predictions, pde_frames
from meanfield.backends import get_backend
from meanfield.backends.arrays import to_numpy
from meanfield.config import load_config, parse_config
from meanfield.config.builders import build_pde_setup
from meanfield.grid import Grid
from meanfield.model.laws import NormalLaw
from meanfield.model.solvable import FeatureModel
from meanfield.pde.characteristics import (
    CellRule,
    CharacteristicsPDE,
    StepRecord,
    integrate_points,
)
from meanfield.pde.characteristics.adjoint import moment, reverse_pass, risk_functional
from meanfield.pde.characteristics.field import risk_and_energy
from meanfield.pde.characteristics.solver import make_rate
from meanfield.pde.characteristics.stepper import TABLEAUS, combine, stages
from meanfield.pde.trackers import MemoryTracker

ROOT = Path(__file__).resolve().parents[2]
STUDY = ROOT / "data" / "configs" / "mmn-isotropic-study.toml"

#: the isotropic model of MMN's Fig. 1 with a ridge, to t = 4 (about 20 steps at 24 points)
ISOTROPIC = {
    "model": {"name": "isotropic_gaussians", "d": 40, "delta": 0.8, "activation": "mmn"},
    "init": {"kappa": 0.8},
    "dynamics": {"t_end": 4.0, "save_times": [0.0, 0.5, 2.0, 4.0], "l2": 0.05},
    "pde": {"method": "characteristics", "cells": 200, "r_max": 8.0, "points": 24, "refine": 0.0},
}
#: weights perturbed in the finite differences: ends, tails and the bulk of the rule
INDICES = (0, 5, 11, 17)
#: central-difference step in a weight (weights are about 1/M): the error of the quotient,
#: eps^2 F''' + 1e-16 |F| / eps, is about 1e-10 here; 1e-4 and 1e-7 measured worse
EPS = 1e-6


# ----------------------------------------------------------------------------- helpers


def _functionals(n_axes: int) -> list:
    if n_axes == 1:
        return [risk_functional(), moment("mean_r", 0, 1), moment("second_moment_r", 0, 2)]
    return [risk_functional(), moment("mean_theta0", 0, 1), moment("square_theta1", 1, 2)]


def _forward_frames(
    pde: CharacteristicsPDE, backend, points0: np.ndarray, weights: np.ndarray, record: StepRecord
) -> list:
    """The states at the recorded frames of the forward map with ``record``'s step sizes,
    for the weights ``weights`` (which need not sum to 1)."""
    tableau = TABLEAUS[pde.scheme]
    rate = make_rate(pde.field(backend), backend.asarray(weights), pde.l2, pde.lower)
    project = pde.projection(backend)  # a radius stays >= 0, as in the solver
    x = backend.asarray(points0)
    first = rate(x)
    states = {0: x}
    for n, h in enumerate(record.sizes):
        staged = stages(rate, x, first, h, tableau, project)
        if tableau.fsal:
            x = staged[-1][0]
        else:
            x = combine(x, staged, h, tableau.b)
            x = x if project is None else project(x)
        first = staged[-1][1:] if tableau.fsal else rate(x)
        states[n + 1] = x
    return [np.asarray(to_numpy(states[s])) for s in record.frame_steps]


def _outputs(pde: CharacteristicsPDE, frames: list, weights: np.ndarray) -> np.ndarray:
    """``(n_frames, 3)``: the risk and the two moments of :func:`_functionals` at each frame,
    with the same (unnormalised) weights as the forward map."""
    numpy = get_backend("numpy")
    field_ = pde.field(numpy)
    kernel_weights = field_.kernel_weights()
    out = []
    for x in frames:
        potential, features = field_.potential_and_features(x)
        risk, _ = risk_and_energy(
            x, weights, potential, features, kernel_weights, float(pde.model.r_sharp), 0.0, np
        )
        if x.shape[1] == 1:
            out.append([float(risk), np.sum(weights * x[:, 0]), np.sum(weights * x[:, 0] ** 2)])
        else:
            out.append([float(risk), np.sum(weights * x[:, 0]), np.sum(weights * x[:, 1] ** 2)])
    return np.array(out)


def _solve(pde: CharacteristicsPDE, points0, weights, save_times, backend, grid, every: int):
    record = StepRecord(every=every)
    memory = MemoryTracker()
    integrate_points(
        pde,
        points0,
        weights,
        save_times,
        backend,
        grid,
        record=record,
        trackers=[pde.invariants(), memory],
    )
    return record, memory


def _check_against_finite_differences(pde, backend, points0, weights, record, memory) -> float:
    """Assert ``phi0`` of every functional at every frame equals the central differences at
    :data:`INDICES`; return the worst error relative to the frame's largest ``|phi0|``."""
    functionals = _functionals(points0.shape[1])
    result = reverse_pass(pde, points0, weights, record, functionals, backend)
    n_frames = len(record.frame_steps)
    for fun in functionals:
        assert result.phi0[fun.name].shape == (n_frames, weights.size)
    # the recomputation is the forward run itself: the same states, bit for bit
    for k, state in enumerate(_forward_frames(pde, backend, points0, weights, record)):
        np.testing.assert_array_equal(state, memory.frames[k].points)
    worst = 0.0
    for j in INDICES:
        up, down = weights.copy(), weights.copy()
        up[j] += EPS
        down[j] -= EPS
        fd = (
            _outputs(pde, _forward_frames(pde, backend, points0, up, record), up)
            - _outputs(pde, _forward_frames(pde, backend, points0, down, record), down)
        ) / (2.0 * EPS)
        for q, fun in enumerate(functionals):
            phi = result.phi0[fun.name]
            scale = np.max(np.abs(phi), axis=1)  # phi_0 of the risk changes sign
            error = np.abs(phi[:, j] - fd[:, q]) / scale
            worst = max(worst, float(np.max(error)))
            # measured <= 4.3e-9 (isotropic: dp5, bs3, past the split) and 1.9e-10 (two
            # axes): the Hessian's central differences (step 1e-5 of the box) and the
            # quotient's own error
            np.testing.assert_array_less(error, 3e-8, err_msg=f"{fun.name}, weight {j}")
    return worst


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def isotropic():
    setup = build_pde_setup(parse_config(ISOTROPIC))
    points0, weights = setup.rule.points()
    return setup, points0, weights


def _features_model() -> tuple[FeatureModel, tuple[tuple[float, float], ...], CellRule]:
    """A two-axis model with a coupled potential and three nonlinear features (every second
    derivative of ``Psi`` nonzero, mixed ones included), its box and a 4 x 4-cell rule."""

    def potential(x):
        return (
            0.5 * (x[:, 0] - 0.5) ** 2
            + 0.3 * (x[:, 1] + 0.2) ** 2
            + 0.2 * np.sin(x[:, 0] * x[:, 1])
        )

    def potential_grad(x):
        c = 0.2 * np.cos(x[:, 0] * x[:, 1])
        return np.stack([x[:, 0] - 0.5 + c * x[:, 1], 0.6 * (x[:, 1] + 0.2) + c * x[:, 0]], axis=1)

    def wave(x):
        return np.sin(x[:, 0] + 0.5 * x[:, 1])

    def wave_grad(x):
        c = np.cos(x[:, 0] + 0.5 * x[:, 1])
        return np.stack([c, 0.5 * c], axis=1)

    def bump(x):
        return np.exp(-(x[:, 0] ** 2 + x[:, 1] ** 2) / 8.0)

    def bump_grad(x):
        return -bump(x)[:, None] * x / 4.0

    def ripple(x):
        return np.cos(0.7 * x[:, 0] - 0.3 * x[:, 1]) * x[:, 1]

    def ripple_grad(x):
        arg = 0.7 * x[:, 0] - 0.3 * x[:, 1]
        return np.stack(
            [-0.7 * np.sin(arg) * x[:, 1], 0.3 * np.sin(arg) * x[:, 1] + np.cos(arg)], axis=1
        )

    model = FeatureModel(
        potential,
        (wave, bump, ripple),
        (1.0, 0.5, 0.8),
        ndim=2,
        sharp=1.0,
        potential_grad_fn=potential_grad,
        feature_grad_fns=(wave_grad, bump_grad, ripple_grad),
    )
    bounds = ((-5.0, 5.0), (-5.0, 5.0))
    rule = CellRule.uniform(NormalLaw((0.3, -0.2), (0.5, 0.6)).axis_laws(), [4, 4], gauss=2)
    return model, bounds, rule


@pytest.fixture(scope="module")
def plane():
    model, bounds, rule = _features_model()
    pde = CharacteristicsPDE(model, bounds, l2=0.02)
    points0, weights = rule.points()
    grid = Grid(bounds, (20, 20), model.axis_names)
    return pde, points0, weights, grid


# ----------------------------------------------------------------------------- A.1


def test_feature_gradients_of_the_two_axis_model_are_right() -> None:
    """The finite-difference test below is only as good as the model's own gradients."""
    model, _, rule = _features_model()
    x = rule.points()[0]
    step = 1e-6
    for a in range(2):
        up, down = x.copy(), x.copy()
        up[:, a] += step
        down[:, a] -= step
        fd_v = (model.potential(up) - model.potential(down)) / (2 * step)
        fd_f = (model.kernel_features(up).features - model.kernel_features(down).features) / (
            2 * step
        )
        # central differences with step 1e-6 of O(1) functions: error ~1e-10
        np.testing.assert_allclose(model.potential_gradient(x)[:, a], fd_v, atol=1e-8)
        np.testing.assert_allclose(model.kernel_feature_gradients(x)[:, :, a], fd_f, atol=1e-8)


@pytest.mark.parametrize(
    ("scheme", "save_times"),
    [
        ("dp5", None),
        ("bs3", None),
        ("dp5", (0.0, 4.0, 6.0, 10.0)),  # past the split: |phi_0| grows 20-fold, 60 steps
    ],
    ids=["dp5", "bs3", "dp5-past-split"],
)
def test_reverse_pass_matches_finite_differences_isotropic(isotropic, scheme, save_times) -> None:
    setup, points0, weights = isotropic
    pde = CharacteristicsPDE(
        setup.pde.model,
        setup.pde.bounds,
        l2=setup.pde.l2,
        scheme=scheme,
        tol=setup.pde.tol,
        box_name=setup.pde.box_name,
    )
    assert pde.l2 == 0.05 and points0.shape == (24, 1)
    record, memory = _solve(
        pde, points0, weights, save_times or setup.save_times, setup.backend, setup.grid, every=4
    )
    # several checkpoint segments, frames inside them: the reverse pass recomputes states
    assert record.n_steps > 2 * record.every, record.n_steps
    assert record.frame_steps[0] == 0
    _check_against_finite_differences(pde, setup.backend, points0, weights, record, memory)


def test_reverse_pass_matches_finite_differences_two_axes(plane) -> None:
    pde, points0, weights, grid = plane
    backend = get_backend("numpy")
    record, memory = _solve(pde, points0, weights, [0.0, 0.4, 1.5], backend, grid, every=5)
    assert record.n_steps > 2 * record.every, record.n_steps
    moved = np.max(np.abs(memory.frames[-1].points - points0))
    assert moved > 0.2, moved  # the points really move: the Hessian matters
    _check_against_finite_differences(pde, backend, points0, weights, record, memory)


def test_at_the_first_frame_phi0_is_the_functional_itself(isotropic) -> None:
    """Frame 0 (t = 0): ``dF/dw_j = f(X_j)``; the risk's ``2 Psi_0(X_j)``."""
    setup, points0, weights = isotropic
    record, _ = _solve(
        setup.pde, points0, weights, setup.save_times, setup.backend, setup.grid, every=8
    )
    result = reverse_pass(setup.pde, points0, weights, record, _functionals(1), setup.backend)
    r = points0[:, 0]
    # frame 0 is no step at all: the terminal gradients only, exact to round-off
    np.testing.assert_allclose(result.phi0["mean_r"][0], r, rtol=1e-15)
    np.testing.assert_allclose(result.phi0["second_moment_r"][0], r**2, rtol=1e-15)
    field_ = setup.pde.field(setup.backend)
    values = field_.values(points0)
    m = weights @ values.features
    psi = values.potential + values.features @ (field_.kernel_weights() * m)
    np.testing.assert_allclose(result.phi0["risk"][0], 2.0 * psi, rtol=1e-13)  # round-off


def test_a_subset_of_frames_gives_the_same_columns(isotropic) -> None:
    setup, points0, weights = isotropic
    record, _ = _solve(
        setup.pde, points0, weights, setup.save_times, setup.backend, setup.grid, every=4
    )
    functionals = _functionals(1)
    full = reverse_pass(setup.pde, points0, weights, record, functionals, setup.backend)
    for frames in ([2], [1, 3], [3, 0]):
        part = reverse_pass(
            setup.pde, points0, weights, record, functionals, setup.backend, frames=frames
        )
        for fun in functionals:
            phi = full.phi0[fun.name][frames]
            # the same sweep with fewer columns: round-off (measured <= 9e-16)
            np.testing.assert_allclose(
                part.phi0[fun.name], phi, rtol=0, atol=1e-13 * np.max(np.abs(phi)), err_msg=fun.name
            )


# ----------------------------------------------------------------------------- A.2


def _phi0_on(backend_name: str, pde, points0, weights, save_times, grid) -> tuple[dict, list]:
    backend = get_backend(backend_name)
    record, _ = _solve(pde, points0, weights, save_times, backend, grid, every=4)
    result = reverse_pass(pde, points0, weights, record, _functionals(points0.shape[1]), backend)
    return result.phi0, record.sizes


@pytest.mark.parametrize("case", ["isotropic", "plane"])
def test_reverse_pass_is_backend_clean(isotropic, plane, case) -> None:
    if case == "isotropic":
        setup, points0, weights = isotropic
        args = (setup.pde, points0, weights, setup.save_times, setup.grid)
    else:
        pde, points0, weights, grid = plane
        args = (pde, points0, weights, [0.0, 0.4, 1.5], grid)
    reference, sizes = _phi0_on("numpy", *args)
    strict, strict_sizes = _phi0_on("array_api_strict", *args)
    # the controller may round differently in the last bit, never take other steps
    np.testing.assert_allclose(strict_sizes, sizes, rtol=1e-12)
    for name, phi in reference.items():
        scale = np.max(np.abs(phi), axis=1, keepdims=True)
        # the same arithmetic in another namespace: round-off only (measured 0 on NumPy 2)
        np.testing.assert_allclose(
            strict[name], phi, rtol=1e-12, atol=1e-12 * scale.max(), err_msg=name
        )


# ----------------------------------------------------------------------------- A.3, A.4

#: population GD (no SGD term), to t = 1: before the split of the isotropic model
STUDY_SHORT = (
    'particles.method="gd"',
    "particles.step=0.01",
    "dynamics.t_end=1.0",
    "dynamics.save_times=[0.0, 0.5, 1.0]",
)
NAMES = ("risk", "mean_r", "second_moment_r")


def _predictions(method: str, *extra: str) -> tuple[dict, object, object]:
    config = load_config(STUDY, [*STUDY_SHORT, f"pde.method='{method}'", *extra])
    setup, mem = pde_frames(config)
    return clt_predictions(config, setup, mem, list(NAMES)), setup, mem


@pytest.fixture(scope="module")
def characteristics_clt() -> tuple[dict, object, object]:
    return _predictions("characteristics", "pde.points=64")


def test_characteristics_clt_agrees_with_the_grid(characteristics_clt) -> None:
    points, setup, _ = characteristics_clt
    assert points["method"] == "characteristics adjoint" and setup.method == "characteristics"
    coarse, _, _ = _predictions("grid", "pde.cells=1200")
    fine, _, _ = _predictions("grid", "pde.cells=2400")
    assert fine["method"] == "grid adjoint"
    for name in NAMES:
        assert points[name].shape == fine[name].shape == (3,)
        gap_fine = np.abs(fine[name] - points[name]) / np.abs(points[name])
        gap_coarse = np.abs(coarse[name] - points[name]) / np.abs(points[name])
        # measured <= 5.7e-4 at 2400 cells (risk at t = 1): the grid's O(h^2) error
        np.testing.assert_array_less(gap_fine, 2e-3, err_msg=name)
        # the gap is the grid's: measured 2.5-4.3x smaller on halving the cells (O(h^2))
        np.testing.assert_array_less(2.0 * gap_fine, gap_coarse, err_msg=name)


def test_characteristics_clt_at_time_zero_is_the_variance_of_the_rule(characteristics_clt) -> None:
    """Frame 0: ``Var(phi_0) = sum_j w_j (f(X_j) - <f>)^2`` over the rule's own points, with
    ``f = r``, ``r^2`` and the risk's ``2 Psi_0``."""
    predictions, setup, mem = characteristics_clt
    x, w = mem.run.points0, mem.run.weights
    field_ = setup.pde.field(setup.backend)
    values = field_.values(x)
    psi = values.potential + values.features @ (field_.kernel_weights() * (w @ values.features))
    for name, f in (("mean_r", x[:, 0]), ("second_moment_r", x[:, 0] ** 2), ("risk", 2.0 * psi)):
        mean = np.sum(w * f)
        # the same weighted sum, summed in another order: round-off
        np.testing.assert_allclose(
            predictions[name][0], np.sum(w * (f - mean) ** 2), rtol=1e-12, err_msg=name
        )


def test_characteristics_clt_at_time_zero_is_the_initial_variance(characteristics_clt) -> None:
    """``r = |w|``, ``w ~ N(0, kappa^2 I_d / d)``: ``Var r^2 = 2 kappa^4 / d``,
    ``Var r = kappa^2 - (E r)^2`` with ``E r = kappa sqrt(2 / d) Gamma((d+1)/2) / Gamma(d/2)``."""
    predictions = characteristics_clt[0]
    d, kappa = 40, 0.8
    mean_r = (
        kappa * math.sqrt(2.0 / d) * math.exp(special.gammaln((d + 1) / 2) - special.gammaln(d / 2))
    )
    # r and r^2 are integrated exactly by the 2-node Gauss rule of each cell (degree < 4);
    # measured 2e-13: round-off, amplified 80x by kappa^2 - (E r)^2 = 0.0079
    np.testing.assert_allclose(predictions["mean_r"][0], kappa**2 - mean_r**2, rtol=1e-11)
    # E r^4 is degree 4, one past the rule's exactness: measured 7.9e-8 at 32 cells
    # (1.0e-5 at 8 cells, 6.5e-9 at 64: the rule's O(cells^-4))
    np.testing.assert_allclose(predictions["second_moment_r"][0], 2 * kappa**4 / d, rtol=1e-6)


@pytest.mark.slow
def test_characteristics_sgd_term_agrees_with_the_grid() -> None:
    """Online SGD (the shipped step): the step-size term per unit N, ``NAME/sgd`` (about 60 s:
    the grid's linearised equation at 2400 cells, and both Monte Carlo noise rates)."""
    overrides = ("dynamics.t_end=1.0", "dynamics.save_times=[0.0, 0.5, 1.0]")
    out = {}
    for method, extra in (("grid", "pde.cells=2400"), ("characteristics", "pde.points=64")):
        config = load_config(STUDY, [*overrides, f"pde.method='{method}'", extra])
        setup, mem = pde_frames(config)
        out[method] = clt_predictions(config, setup, mem, list(NAMES))
    for name in NAMES:
        grid, points = out["grid"][f"{name}/sgd"], out["characteristics"][f"{name}/sgd"]
        assert grid[0] == points[0] == 0.0  # no step taken at t = 0
        # both rates are Monte Carlo estimates over 4000 units and inputs (a relative error
        # of a few per cent each): measured <= 2.2 % apart
        np.testing.assert_allclose(points[1:], grid[1:], rtol=0.1, err_msg=name)
