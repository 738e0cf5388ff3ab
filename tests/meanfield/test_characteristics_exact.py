"""The characteristics solver against exact solutions: the initial rule, the flow of the points,
refinement at a front, densities and backend cleanliness.

Every tolerance states why it is that size; the measured values quoted next to them are from
NumPy on x86-64 (the rule and the points are deterministic, no random numbers are involved).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, special, stats

from meanfield.backends import available_backends, get_backend
from meanfield.grid import Grid
from meanfield.model import FeatureModel, NormalLaw, QuadraticPotential, ou_moments
from meanfield.model.laws import ScaledChiLaw
from meanfield.model.solvable import LinearUnit, linear_unit_moments
from meanfield.pde.characteristics import (
    CellRule,
    CharacteristicsPDE,
    Refinement,
    integrate_points,
    solve_with_refinement,
)
from meanfield.pde.characteristics.density import deposit
from meanfield.pde.characteristics.refine import stretch
from meanfield.pde.trackers import MemoryTracker
from meanfield.schedules import time_change_from_spec


def _run(
    pde: CharacteristicsPDE,
    x0: np.ndarray,
    w: np.ndarray,
    times,
    backend=None,
    grid: Grid | None = None,
    **kw,
) -> MemoryTracker:
    """Frames of :func:`integrate_points`, with the solver's own invariant checks on."""
    backend = backend or get_backend("numpy")
    grid = grid or Grid(pde.bounds, (8,) * len(pde.bounds))
    mem = MemoryTracker()
    integrate_points(pde, x0, w, times, backend, grid, trackers=[pde.invariants(), mem], **kw)
    assert [f.t for f in mem.frames] == [float(t) for t in times]
    return mem


def _weighted_moments(points: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = w @ points
    dev = points - mean
    return mean, (w[:, None] * dev).T @ dev


def _normal_moment(n: int, mean: float, std: float) -> float:
    """``E (mean + std Z)^n``, ``Z ~ N(0, 1)``: binomial sum of the moments ``(j - 1)!!``."""
    return sum(
        math.comb(n, j) * mean ** (n - j) * std**j * math.prod(range(j - 1, 0, -2))
        for j in range(0, n + 1, 2)
    )


def _chi_moment(law: ScaledChiLaw, n: int) -> float:
    """``E r^n = (kappa sqrt(2/d))^n Gamma(d/2 + n/2) / Gamma(d/2)``."""
    scale = law.kappa * math.sqrt(2.0 / law.d)
    log_ratio = special.gammaln(0.5 * law.d + 0.5 * n) - special.gammaln(0.5 * law.d)
    return scale**n * math.exp(log_ratio)


# ---- 1. the initial rule ------------------------------------------------------------------------


@pytest.mark.parametrize("gauss", [2, 3, 4])
@pytest.mark.parametrize("cells", [1, 4, 9])
def test_rule_is_exact_for_normal_moments_below_degree_2k(gauss: int, cells: int) -> None:
    mean, std = 0.3, 1.7
    rule = CellRule.uniform([NormalLaw((mean,), (std,))], [cells], gauss)
    x, w = rule.points()
    assert x.shape == (cells * gauss, 1) and rule.n_points == cells * gauss
    assert np.all(w > 0)
    # round-off: one sum of M <= 36 weights
    np.testing.assert_allclose(np.sum(w), 1.0, rtol=0, atol=1e-14)
    for n in range(2 * gauss):
        exact = _normal_moment(n, mean, std)
        # round-off of the Lanczos reduction and of the 64-node Gauss-Legendre discretisation of
        # every cell (exact to ~1e-16 for these entire integrands); measured <= 1.1e-14
        np.testing.assert_allclose(
            w @ x[:, 0] ** n, exact, rtol=1e-12, atol=1e-12, err_msg=f"moment {n}"
        )
    if cells == 4:
        # degree 2k is *not* integrated exactly (a Gauss rule, no more): measured relative
        # errors 1e-2 (k = 2), 4.8e-4 (k = 3), 3.1e-5 (k = 4), far above round-off
        n = 2 * gauss
        assert abs(w @ x[:, 0] ** n / _normal_moment(n, mean, std) - 1.0) > 1e-6


@pytest.mark.parametrize("gauss", [2, 3])
@pytest.mark.parametrize("cells", [1, 5, 8])
@pytest.mark.parametrize(("kappa", "d"), [(0.8, 40), (1.3, 3)])
def test_rule_is_exact_for_chi_moments_below_degree_2k(
    kappa: float, d: int, gauss: int, cells: int
) -> None:
    law = ScaledChiLaw(kappa, d)
    x, w = CellRule.uniform([law], [cells], gauss).points()
    assert np.all(w > 0) and np.all(x > 0)
    np.testing.assert_allclose(np.sum(w), 1.0, rtol=0, atol=1e-14)  # round-off of one sum
    # E r^2 = kappa^2 by construction of the law; round-off as for the normal moments
    np.testing.assert_allclose(w @ x[:, 0] ** 2, kappa**2, rtol=1e-12)
    for n in range(2 * gauss):
        # gammaincinv is accurate to ~1e-15 relative, the rest is round-off; measured <= 3e-15
        np.testing.assert_allclose(
            w @ x[:, 0] ** n, _chi_moment(law, n), rtol=1e-12, err_msg=f"moment {n}"
        )


def test_one_cell_with_three_nodes_is_gauss_hermite() -> None:
    x, w = CellRule.uniform([NormalLaw((0.0,), (1.0,))], [1], 3).points()
    nodes, weights = np.polynomial.hermite_e.hermegauss(3)
    # round-off of the Jacobi eigenproblem; the tails cut at |z| = 12 carry < 1e-32 of the
    # mass; measured 7e-16 (nodes) and 4e-16 (weights)
    np.testing.assert_allclose(x[:, 0], nodes, rtol=0, atol=1e-13)
    np.testing.assert_allclose(w, weights / weights.sum(), rtol=0, atol=1e-13)


def test_split_keeps_moments_exact_and_halves_the_mass() -> None:
    laws = (NormalLaw((0.2,), (0.7,)), ScaledChiLaw(1.1, 5))
    rule = CellRule.uniform(laws, [4, 3], 2)
    # an inner cell along axis 0, a tail cell (u_lo = 0) along axis 1, a corner cell in 4
    marks = {5: (0, 2), 0: (1, 2), 11: (0, 4)}
    assert rule.u_lo[0, 1] == 0.0 and rule.u_hi[11, 0] == 1.0
    split = rule.split(marks)
    assert split.n_cells == rule.n_cells - 3 + 2 + 2 + 4
    masses, children = rule.masses(), split.masses()
    # children follow the kept cells, in the order of the marked cells
    kept = rule.n_cells - len(marks)
    expected = np.concatenate(
        [
            np.delete(masses, sorted(marks)),
            np.repeat(masses[[0, 5]] / 2, 2),
            np.repeat(masses[11] / 4, 4),
        ]
    )
    # cell masses are products of differences of probabilities: round-off only
    np.testing.assert_allclose(children, expected, rtol=1e-13, atol=0)
    np.testing.assert_allclose(split.masses()[:kept], np.delete(masses, sorted(marks)), rtol=0)
    # the points' weights carry the same masses (each cell's k^2 points sum to its mass)
    x, w = split.points()
    per_cell = w.reshape(split.n_cells, split.points_per_cell).sum(axis=1)
    np.testing.assert_allclose(per_cell, expected, rtol=1e-12)  # Lanczos round-off per cell
    assert np.all(w > 0)
    # tensor rule: x^i r^j with i, j < 2k integrated exactly, as before the split
    for i in range(4):
        for j in range(4):
            exact = _normal_moment(i, 0.2, 0.7) * _chi_moment(laws[1], j)
            np.testing.assert_allclose(
                w @ (x[:, 0] ** i * x[:, 1] ** j),
                exact,
                rtol=1e-12,
                atol=1e-13,
                err_msg=f"moment ({i}, {j})",
            )


def test_kinked_integrand_converges_at_order_above_1_5() -> None:
    """max(x - a, 0) under N(0, 1), worst case over 31 kink positions a: the composite rule
    loses its Gauss order at the kink but keeps about order 2 (the docstring's claim)."""
    law = NormalLaw((0.0,), (1.0,))
    kinks = np.linspace(-1.5, 1.5, 31) + 0.0123
    exact = np.exp(-0.5 * kinks**2) / math.sqrt(2 * math.pi) - kinks * special.ndtr(-kinks)
    sizes = np.array([4, 8, 16, 32, 64, 128])
    for gauss in (2, 3):
        errors = []
        for n in sizes:
            x, w = CellRule.uniform([law], [n], gauss).points()
            errors.append(np.max(np.abs(w @ np.maximum(x - kinks, 0.0) - exact)))
        errors = np.array(errors)
        slope = -np.polyfit(np.log(sizes), np.log(errors), 1)[0]
        pairwise = np.log2(errors[:-1] / errors[1:])
        # measured slopes 1.73 (k = 2) and 1.76 (k = 3); the span Z grows like sqrt(2 ln n), so
        # the cells shrink a little slower than 1/n and the order sits below 2
        assert slope > 1.5, (gauss, slope, errors)
        # measured pairwise orders 1.40 to 2.49: the kink moves inside its cell as cells double
        assert np.all(pairwise > 1.2), (gauss, pairwise)
        assert errors[-1] < 1e-4  # measured 4.3e-5 (k = 2), 2.7e-5 (k = 3)


# ---- 2. translation: linear V ------------------------------------------------------------------


def test_linear_potential_translates_every_point() -> None:
    g = np.array([0.7, -0.4])
    model = FeatureModel(
        lambda q: q @ g, ndim=2, potential_grad_fn=lambda q: np.broadcast_to(g, q.shape).copy()
    )
    law = NormalLaw((0.2, -0.1), (0.5, 0.8))
    x0, w = CellRule.uniform(law.axis_laws(), [6, 5], 2).points()
    pde = CharacteristicsPDE(model, ((-8.0, 8.0), (-8.0, 8.0)))
    mem = _run(pde, x0, w, [0.0, 0.3, 1.0])
    for f in mem.frames:
        # the velocity is constant, so every Runge-Kutta step is exact: round-off of a few
        # steps of size ~1 in coordinates ~5 (measured <= 1.3e-15)
        np.testing.assert_allclose(f.points, x0 - 2.0 * g * f.t, rtol=0, atol=1e-13)
        mean, cov = _weighted_moments(f.points, w)
        # the rule is exact for degree <= 3, so these are the closed forms up to round-off
        # (measured <= 1.2e-15)
        np.testing.assert_allclose(mean, np.array(law.mean) - 2.0 * g * f.t, rtol=0, atol=1e-13)
        np.testing.assert_allclose(np.diag(cov), np.square(law.std), rtol=0, atol=1e-13)
        np.testing.assert_allclose(cov[0, 1], 0.0, rtol=0, atol=1e-13)
        assert f.mass == 1.0


# ---- 3. noiseless OU: contraction to the centre ------------------------------------------------

OU_CASES = {
    1: dict(stiffness=(1.3,), center=(0.4,), mean=(1.0,), std=(0.5,), cells=(8,)),
    2: dict(
        stiffness=(1.0, 2.5), center=(0.5, -0.3), mean=(1.0, 0.2), std=(0.5, 0.7), cells=(6, 5)
    ),
    3: dict(
        stiffness=(0.5, 1.0, 3.0),
        center=(0.0, 0.5, -0.5),
        mean=(1.0, -0.5, 0.3),
        std=(0.4, 0.6, 0.3),
        cells=(3, 4, 3),
    ),
}


def _ou_run(ndim: int, tol: float, time_change=None):
    case = OU_CASES[ndim]
    model = QuadraticPotential(stiffness=case["stiffness"], center=case["center"], ndim=ndim)
    law = NormalLaw(case["mean"], case["std"])
    x0, w = CellRule.uniform(law.axis_laws(), list(case["cells"]), 2).points()
    pde = CharacteristicsPDE(model, tuple((-5.0, 5.0) for _ in range(ndim)), tol=tol)
    mem = _run(pde, x0, w, [0.0, 0.25, 0.5, 1.0], time_change=time_change)
    return case, pde, x0, w, mem


@pytest.mark.parametrize("xi", [None, {"power": -0.25, "offset": 0.0}], ids=["xi=1", "xi=t^-1/4"])
@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_quadratic_potential_matches_noiseless_ou(ndim: int, xi) -> None:
    tol = 1e-8
    time_change = None if xi is None else time_change_from_spec(xi)
    case, pde, x0, w, mem = _ou_run(ndim, tol, time_change)
    k, c = np.array(case["stiffness"]), np.array(case["center"])
    allowed = tol * float(np.max(pde.widths))  # one step's local error allowance
    for f in mem.frames:
        tau = f.t if time_change is None else float(time_change.tau(f.t))
        assert f.tau == pytest.approx(tau, rel=1e-14, abs=1e-15)  # the loop lands on tau(t)
        exact = c + (x0 - c) * np.exp(-2.0 * k * tau)
        # measured 0.16-0.19 of one step's allowance tol * width (the controller aims below
        # it and the contraction damps older errors); 1.0 leaves room across platforms
        np.testing.assert_allclose(f.points, exact, rtol=0, atol=allowed)
        mean, var = ou_moments(k, c, math.inf, np.array(case["mean"]), np.square(case["std"]), tau)
        got_mean, got_cov = _weighted_moments(f.points, w)
        # the rule is exact for degree 2, so only the time error remains: measured <= 0.1
        # (mean) and 0.013 (variance) of tol * width
        np.testing.assert_allclose(got_mean, mean, rtol=0, atol=allowed)
        np.testing.assert_allclose(np.diag(got_cov), var, rtol=0, atol=allowed)
        # R = 2 <V, rho> = sum_a k_a (var_a + (mean_a - c_a)^2); measured <= 0.09 tol * width
        np.testing.assert_allclose(
            f.risk, float(np.sum(k * (var + (mean - c) ** 2))), rtol=0, atol=allowed
        )


def test_ou_point_error_is_the_time_error() -> None:
    """The error above is the stepper's: 100x the tolerance gives (about) 100x the error."""
    errors = []
    for tol in (1e-8, 1e-6):
        case, _, x0, _, mem = _ou_run(2, tol)
        k, c = np.array(case["stiffness"]), np.array(case["center"])
        errors.append(
            max(
                np.max(np.abs(f.points - (c + (x0 - c) * np.exp(-2 * k * f.t)))) for f in mem.frames
            )
        )
    # measured ratio 95 (1.54e-6 / 1.62e-8); an error-per-step controller makes the global
    # error scale like tol^(4/5) (40x here) to tol (100x, with local extrapolation as in dp5)
    assert errors[1] / errors[0] > 30, errors


# ---- 4. the linear unit: interaction through the mean, with a ridge ---------------------------


@pytest.mark.parametrize("l2", [0.0, 0.3])
def test_linear_unit_matches_closed_moments(l2: float) -> None:
    star = (1.0, -0.5)
    model = LinearUnit(star, label_var=0.1)
    law = NormalLaw((0.3, 0.2), (0.6, 0.4))
    x0, w = CellRule.uniform(law.axis_laws(), [5, 4], 2).points()
    tol = 1e-8
    pde = CharacteristicsPDE(model, ((-5.0, 5.0), (-5.0, 5.0)), l2=l2, tol=tol)
    mem = _run(pde, x0, w, [0.0, 0.5, 1.0, 2.0])
    c0 = np.diag(np.square(law.std))
    allowed = tol * 10.0  # one step's local error allowance, tol * box width
    for f in mem.frames:
        mean, cov = linear_unit_moments(star, l2, math.inf, np.array(law.mean), c0, f.t)
        got_mean, got_cov = _weighted_moments(f.points, w)
        # time error only (the rule is exact for degree 2): measured <= 0.17 tol * width
        np.testing.assert_allclose(got_mean, mean, rtol=0, atol=allowed)
        # every point moves by the same shift plus the contraction exp(-2 l2 tau) about the
        # mean, which the stepper reproduces to round-off: measured <= 3.4e-11 (l2 = 0.3)
        np.testing.assert_allclose(got_cov, cov, rtol=0, atol=1e-9)
        # pointwise: x(tau) = m(tau) + (x0 - m0) exp(-2 l2 tau); measured <= 0.17 tol * width
        exact = mean + (x0 - np.array(law.mean)) * math.exp(-2.0 * l2 * f.t)
        np.testing.assert_allclose(f.points, exact, rtol=0, atol=allowed)
        # R = s^2 + |m - theta_*|^2; measured <= 0.15 tol * width
        np.testing.assert_allclose(
            f.risk, 0.1 + np.sum((mean - np.array(star)) ** 2), rtol=0, atol=allowed
        )


# ---- 5. MMN's isotropic model with its interaction frozen at t = 0 -----------------------------

SCALE_POINTS = np.array([[0.0], [8.0]])


@pytest.fixture(scope="module")
def frozen_isotropic():
    """The MMN isotropic model of the config layer, its interaction frozen at the initial mean
    features: ``psi(r) = v(r) + sum_p lambda_p m0_p phi_p(r)``, so points move independently."""
    from meanfield.config import parse_config
    from meanfield.config.builders import build_pde_setup

    config = parse_config(
        {
            "model": {"name": "isotropic_gaussians", "d": 40, "delta": 0.8, "activation": "mmn"},
            "init": {"kappa": 0.8},
            "dynamics": {"t_end": 2.0},
            "pde": {"cells": 200, "r_max": 8.0, "method": "characteristics"},
        }
    )
    setup = build_pde_setup(config)
    model = setup.model
    x0, w = setup.rule.points()
    columns = model.kernel_features(x0, SCALE_POINTS)
    coupling = columns.weights * (w @ columns.features)

    def potential(q):
        return model.potential(q) + model.kernel_features(q, SCALE_POINTS).features @ coupling

    def gradient(q):
        slopes = model.kernel_feature_gradients(q, SCALE_POINTS)[..., 0] @ coupling
        return np.asarray(model.potential_gradient(q)).reshape(q.shape) + slopes[:, None]

    frozen = FeatureModel(potential, ndim=1, sharp=model.r_sharp, potential_grad_fn=gradient)
    return setup, frozen, x0, w


def _exact_flow(gradient, r0: np.ndarray, tau: float) -> np.ndarray:
    """``dr/dtau = -2 psi'(r)`` for every start independently (one vectorised system)."""
    sol = integrate.solve_ivp(
        lambda _, r: -2.0 * gradient(r[:, None])[:, 0],
        (0.0, tau),
        r0,
        method="DOP853",
        rtol=1e-11,
        atol=1e-13,
    )
    assert sol.success
    return sol.y[:, -1]


def test_frozen_isotropic_points_follow_their_own_flow(frozen_isotropic) -> None:
    setup, frozen, x0, w = frozen_isotropic
    t_end, tol = 2.0, 1e-10
    pde = CharacteristicsPDE(frozen, setup.pde.bounds, tol=tol)
    mem = _run(pde, x0, w, [0.0, 1.0, t_end], grid=setup.grid)
    got = mem.frames[-1].points[:, 0]
    exact = _exact_flow(frozen.potential_gradient, x0[:, 0], t_end)
    assert np.max(np.abs(exact - x0[:, 0])) > 2.0  # the points really travel (measured 2.7)
    # measured 0.28 of one step's allowance tol * width at tol = 1e-10 (1.3 at tol = 1e-7, where
    # 15 large steps accumulate more than one step's allowance); solve_ivp's own error is
    # ~1e-11 relative, a few percent of the allowance
    np.testing.assert_allclose(got, exact, rtol=0, atol=tol * 8.0)

    # the mean of r at t_end against a rule-independent reference: 200 Gauss-Legendre nodes in
    # r with the chi density (tails beyond 1e-17 of the mass dropped) carried by the same flow
    law = setup.rule.laws[0]
    lo, hi = law.interval(1e-17)
    g, gw = np.polynomial.legendre.leggauss(200)
    r = lo + 0.5 * (hi - lo) * (g + 1.0)
    density = stats.chi.pdf(r, df=law.d, scale=law.kappa / math.sqrt(law.d))
    ref_weights = 0.5 * (hi - lo) * gw * density
    # the reference integrates E r (closed form) to round-off: measured 5e-15
    np.testing.assert_allclose(ref_weights @ r, _chi_moment(law, 1), rtol=1e-12)
    reference = ref_weights @ _exact_flow(frozen.potential_gradient, r, t_end)
    # the quadrature error of the rule at M points, estimated by the rule at 2M points
    x2, w2 = CellRule.uniform(setup.rule.laws, [2 * setup.rule.n_cells], setup.rule.gauss).points()
    at_m = w @ exact
    at_2m = w2 @ _exact_flow(frozen.potential_gradient, x2[:, 0], t_end)
    estimate = abs(at_m - at_2m)
    # measured: quadrature error 1.9e-11, estimate 1.7e-11 (a rule of order 4 on smooth
    # integrands: the 2M error is 1/11 of the M error); 2x covers the estimate's own shortfall
    assert abs(at_m - reference) <= 2.0 * estimate + 1e-14, (at_m - reference, estimate)
    assert estimate < 1e-9  # the rule at 128 points is already that good here
    # the solver's mean: quadrature plus time error (the latter below the point bound);
    # measured 1.7e-10 against a bound of 8.3e-10
    assert abs(w @ got - reference) <= 2.0 * estimate + tol * 8.0


# ---- 6. refinement at a front ------------------------------------------------------------------

DOUBLE_WELL_BOX = ((-6.0, 6.0),)
DOUBLE_WELL_LAW = NormalLaw((0.1,), (1.0,))


def _double_well() -> CharacteristicsPDE:
    """V = x^4/4 - x^2/2, U = 0: starts below 0 go to -1, above 0 to +1 (risk 2 <V, rho>)."""
    model = FeatureModel(
        lambda q: q[:, 0] ** 4 / 4 - q[:, 0] ** 2 / 2, ndim=1, potential_grad_fn=lambda q: q**3 - q
    )
    # a step tolerance well below the risk tolerance of the refinement tests: the risk of two
    # passes differs by their time errors too (about 1e-6 at the default 1e-8 here)
    return CharacteristicsPDE(model, DOUBLE_WELL_BOX, tol=1e-10)


def _double_well_flow(x0, tau: float):
    """``x(tau) = sign(x0) / sqrt(1 + (1/x0^2 - 1) e^{-4 tau})`` (``1/x^2`` relaxes to 1)."""
    x0 = np.asarray(x0, dtype=np.float64)
    return np.sign(x0) / np.sqrt(1.0 + (1.0 / x0**2 - 1.0) * math.exp(-4.0 * tau))


def _double_well_exact(tau: float, of=lambda x: x) -> float:
    """``E f(X_tau(x0))``, ``x0 ~ N(0.1, 1)``, by adaptive quadrature split at the front."""

    def integrand(x):
        return of(_double_well_flow(x, tau)) * stats.norm.pdf(x, 0.1, 1.0)

    parts = [
        integrate.quad(integrand, a, b, epsabs=1e-14, epsrel=1e-13, limit=200)[0]
        for a, b in ((-np.inf, 0.0), (0.0, np.inf))
    ]
    return parts[0] + parts[1]


def _new_cells(initial: CellRule, final: CellRule) -> np.ndarray:
    """Cells of ``final`` that are not cells of ``initial`` (the children of splits)."""
    same = (final.u_lo[:, None, 0] == initial.u_lo[None, :, 0]) & (
        final.u_hi[:, None, 0] == initial.u_hi[None, :, 0]
    )
    return np.nonzero(~same.any(axis=1))[0]


def test_refinement_resolves_the_front_of_a_double_well() -> None:
    pde = _double_well()
    grid = Grid(DOUBLE_WELL_BOX, (120,))
    backend = get_backend("numpy")
    times = [0.0, 1.0, 2.0]
    rule = CellRule.uniform(DOUBLE_WELL_LAW.axis_laws(), [16], 2)
    plain = solve_with_refinement(pde, rule, times, backend, grid)
    # risk_tol above the floor the step tolerance leaves between two passes (their steps
    # differ)
    refinement = Refinement(tol=0.01, risk_tol=1e-6, max_passes=8)
    refined = solve_with_refinement(pde, rule, times, backend, grid, refinement=refinement)
    assert len(plain.passes) == 1 and plain.weights.size == 32

    for f_plain, f_ref, t in zip(plain.frames, refined.frames, times, strict=True):
        mean = _double_well_exact(t)
        risk = _double_well_exact(t, lambda x: 2.0 * (x**4 / 4 - x**2 / 2))
        err_plain = abs(plain.weights @ f_plain.points[:, 0] - mean)
        err_ref = abs(refined.weights @ f_ref.points[:, 0] - mean)
        if t == 2.0:
            # measured 1.2e-2: the 2-point rule of the cell across the front cannot see where
            # its mass divides between -1 and +1
            assert err_plain > 1e-3
            # measured 6.6e-8 (1.8e-6 at t = 1): time error plus what is left of the front
            assert err_ref < 1e-5
            assert err_ref < 1e-3 * err_plain
        elif t == 0.0:
            assert err_ref < 1e-12  # exact moments: round-off
        else:
            # t = 1: units near 0 are still on their way to -1 or +1: a steep but smooth flow
            # map, resolved to the stretch tolerance (0.01 of the box, 0.12 in x); measured
            # 2.9e-5
            assert err_ref < 1e-4
        # the risk 2 <V, rho>: refinement follows the flow, not the quartic V, so the rule's
        # own quadrature error of V at t = 0 (x^4 is beyond the 2-point rule's degree 3;
        # measured 1.2e-4 on 16 cells) bounds what is left, plus the front's (measured <= 2e-6)
        base = abs(
            refined.frames[0].risk - _double_well_exact(0.0, lambda x: 2.0 * (x**4 / 4 - x**2 / 2))
        )
        assert abs(f_ref.risk - risk) < base + 1e-5, (t, f_ref.risk - risk)

    # converged within the budget: measured 4 passes, 98 points, ending with no cell left
    # stretched (a risk change of 1.6e-8 in the last pass)
    assert refined.converged, refined.reason
    assert len(refined.passes) <= refinement.max_passes
    assert refined.passes[-1].risk_change <= 1e-6
    np.testing.assert_allclose(
        refined.risk_change, np.abs(refined.passes[-1].risk - refined.passes[-2].risk)
    )
    assert refined.weights.size == refined.rule.n_points == refined.points0.shape[0]
    # the run's weights are its rule's (round-off of the normalisation)
    np.testing.assert_allclose(np.sum(refined.weights), 1.0, rtol=0, atol=1e-14)
    # the finest cells of the bulk hold the front: the cell around x0 = 0 ends smallest among
    # the cells inside |x0| < 2 (1/8 of its initial cell or less)
    masses = refined.rule.masses()
    u0 = special.ndtr(-0.1)  # CDF of N(0.1, 1) at 0
    front = np.nonzero((refined.rule.u_lo[:, 0] <= u0) & (refined.rule.u_hi[:, 0] >= u0))[0]
    bulk = (refined.rule.u_lo[:, 0] >= special.ndtr(-2.1)) & (
        refined.rule.u_hi[:, 0] <= special.ndtr(1.9)
    )
    assert masses[front].max() <= masses[bulk].min() * (1 + 1e-9)
    assert masses[front].max() <= rule.masses().max() / 64


def test_refinement_splits_only_the_cell_across_the_front() -> None:
    """The stretch sees only the flow: the splits stay inside the initial cell whose interval
    contains 0 and its two neighbours, pass after pass."""
    pde = _double_well()
    grid = Grid(DOUBLE_WELL_BOX, (120,))
    backend = get_backend("numpy")
    times = [1.0, 2.0]
    rule = CellRule.uniform(DOUBLE_WELL_LAW.axis_laws(), [16], 2)
    u0 = special.ndtr(-0.1)  # CDF of N(0.1, 1) at 0
    holder = int(np.nonzero((rule.u_lo[:, 0] < u0) & (rule.u_hi[:, 0] > u0))[0][0])

    # the stretch of the plain run peaks at that cell and at the neighbour that shares the
    # front's side of it (the separation of their facing nodes grows too); smooth cells do not
    # stretch at all
    plain = solve_with_refinement(pde, rule, times, backend, grid)
    amount, axis = stretch(rule, plain.points0, [f.points for f in plain.frames], pde.widths)
    assert int(np.argmax(amount)) == holder and np.all(axis == 0)
    pair = [holder - 1, holder, holder + 1]
    # measured 0.069 at the front and at one neighbour, exactly 0 elsewhere
    assert amount[holder] > 0.05
    assert np.all(np.delete(amount, pair) < 0.02)

    run = solve_with_refinement(
        pde,
        rule,
        times,
        backend,
        grid,
        refinement=Refinement(tol=0.02, risk_tol=1e-6, max_passes=12),
    )
    assert run.converged, run.reason
    new = _new_cells(rule, run.rule)
    assert new.size > 0
    lo, hi = rule.u_lo[holder - 1, 0], rule.u_hi[holder + 1, 0]
    assert np.all(run.rule.u_lo[new, 0] >= lo) and np.all(run.rule.u_hi[new, 0] <= hi)
    # the children tile the parents they replaced: round-off of the cell masses
    kept = ~np.isin(np.arange(rule.n_cells), [holder - 1, holder, holder + 1]) | np.array(
        [
            any((run.rule.u_lo[:, 0] == rule.u_lo[c, 0]) & (run.rule.u_hi[:, 0] == rule.u_hi[c, 0]))
            for c in range(rule.n_cells)
        ]
    )
    np.testing.assert_allclose(run.rule.masses()[new].sum(), rule.masses()[~kept].sum(), rtol=1e-12)
    # the cell that ends around 0 was halved again and again (measured 6 times in 9 passes
    # that split something; the others split its neighbours, the front sitting between
    # their facing nodes)
    splits = sum(p.n_marked > 0 for p in run.passes)
    front = np.nonzero((run.rule.u_lo[:, 0] <= u0) & (run.rule.u_hi[:, 0] >= u0))[0]
    assert splits >= 2
    width = rule.u_hi[holder, 0] - rule.u_lo[holder, 0]
    assert run.rule.masses()[front].max() <= width / 2**5 * (1 + 1e-12)
    err = abs(run.weights @ run.frames[-1].points[:, 0] - _double_well_exact(2.0))
    assert err < 1e-5  # measured 1.2e-6 (the plain rule: 1.2e-2)


def test_refinement_with_the_initial_frame_leaves_smooth_cells_alone() -> None:
    """The stretch is the growth of a cell's node spread since t = 0: coarse cells (the two
    semi-infinite tail cells) where the flow is smooth are not split, the t = 0 frame
    included."""
    pde = _double_well()
    grid = Grid(DOUBLE_WELL_BOX, (120,))
    rule = CellRule.uniform(DOUBLE_WELL_LAW.axis_laws(), [16], 2)
    u0 = special.ndtr(-0.1)
    holder = int(np.nonzero((rule.u_lo[:, 0] < u0) & (rule.u_hi[:, 0] > u0))[0][0])
    run = solve_with_refinement(
        pde,
        rule,
        [0.0, 1.0, 2.0],
        get_backend("numpy"),
        grid,
        refinement=Refinement(tol=0.02, risk_tol=1e-6, max_passes=12),
    )
    assert run.converged, run.reason
    new = _new_cells(rule, run.rule)
    # the same flow as above: only the cell across the front (or its neighbours) should split
    assert np.all(run.rule.u_lo[new, 0] >= rule.u_lo[holder - 1, 0])
    assert np.all(run.rule.u_hi[new, 0] <= rule.u_hi[holder + 1, 0])


# ---- 7. densities ------------------------------------------------------------------------------


def test_deposit_keeps_the_mass_in_one_and_two_axes() -> None:
    law = NormalLaw((0.2, -0.4), (0.7, 1.1))
    x, w, q = CellRule.uniform(law.axis_laws(), [8, 7], 2).tabulate()
    line = Grid(((-4.0, 4.0),), (80,))
    x1, w1, q1 = CellRule.uniform(law.axis_laws()[:1], [16], 3).tabulate()
    for density in (deposit(x1, w1, line), deposit(x1, w1, line, q1)):
        assert np.all(density >= 0)
        # round-off of 80 differences of a CDF in [0, 1]
        np.testing.assert_allclose(density.sum() * line.cell_volume, 1.0, rtol=0, atol=1e-13)
    plane = Grid(((-3.0, 3.0), (-5.0, 4.0)), (12, 9))
    density = deposit(x, w, plane)  # some points lie outside: they count at the walls
    assert density.shape == (12, 9) and np.all(density >= 0)
    # round-off of a bincount of 224 weights
    np.testing.assert_allclose(density.sum() * plane.cell_volume, 1.0, rtol=0, atol=1e-13)
    # half the weights: half the mass (the mass is sum(weights), not 1)
    half = deposit(x1, 0.5 * w1, line)
    np.testing.assert_allclose(half.sum() * line.cell_volume, 0.5, rtol=0, atol=1e-13)


def test_deposit_counts_points_on_the_box_edges() -> None:
    line = Grid(((-4.0, 4.0),), (80,))
    h = line.spacing[0]
    at_top = deposit(np.array([[4.0], [0.0]]), np.array([0.5, 0.5]), line)
    at_bottom = deposit(np.array([[-4.0], [0.0]]), np.array([0.5, 0.5]), line)
    with_q = deposit(np.array([[-4.0], [4.0]]), np.array([0.5, 0.5]), line, np.array([0.2, 0.8]))
    for density in (at_top, at_bottom, with_q):
        # round-off of 80 differences of a CDF
        np.testing.assert_allclose(density.sum() * h, 1.0, rtol=0, atol=1e-13)
    assert deposit(np.array([[4.0]]), np.array([1.0]), line)[-1] * h == pytest.approx(1.0)
    plane = Grid(((-1.0, 1.0), (0.0, 2.0)), (4, 5))
    corners = np.array([[1.0, 2.0], [-1.0, 0.0], [1.0, 0.0], [-1.0, 2.0], [0.3, 0.7]])
    w = np.array([0.1, 0.2, 0.15, 0.3, 0.25])
    masses = deposit(corners, w, plane) * plane.cell_volume
    # each corner weight in its corner cell; round-off of one division and product
    np.testing.assert_allclose(
        [masses[-1, -1], masses[0, 0], masses[-1, 0], masses[0, -1]], w[:4], rtol=1e-14
    )
    np.testing.assert_allclose(masses.sum(), 1.0, rtol=1e-14)


@pytest.mark.parametrize(
    "points",
    [[-4.0], [-4.0, -4.0], [-5.0, -4.5, 0.0]],
    ids=["one-at-lo", "two-at-lo", "two-below-lo"],
)
def test_deposit_keeps_points_at_the_lower_wall_without_quantiles(points) -> None:
    line = Grid(((-4.0, 4.0),), (80,))
    x = np.array(points)[:, None]
    w = np.full(len(points), 1.0 / len(points))
    # the walls hold none and all of the mass (once 0, 0 and 2/3 here: a tie at the wall)
    np.testing.assert_allclose(deposit(x, w, line).sum() * line.spacing[0], 1.0, atol=1e-13)


def test_deposit_with_quantiles_approximates_the_normal_density() -> None:
    """On one axis the CDF is interpolated linearly between the points, whose CDF values are
    exact: the error of a cell's mass is that of the interpolation at its two edges."""
    mean, std = 0.2, 0.7
    law = NormalLaw((mean,), (std,))
    # three nodes per cell: the unequal node spacing is where the points' own CDF values beat
    # splitting the line at midpoints (measured L1 4.2e-3 without quantiles, 4.2e-4 with)
    x, w, q = CellRule.uniform([law], [64], 3).tabulate()
    # the rule's CDF values are exact for a normal axis (round-off; measured 2.2e-16)
    np.testing.assert_allclose(q[:, 0], special.ndtr((x[:, 0] - mean) / std), rtol=0, atol=1e-14)
    line = Grid(((-4.0, 4.0),), (80,))
    edges, h = line.edges(0), line.spacing[0]
    masses = deposit(x, w, line, q) * h
    exact = np.diff(special.ndtr((edges - mean) / std))
    # interpolation error of the CDF at each edge: |F''| <= 1 / (std^2 sqrt(2 pi e)) times
    # (spacing)^2 / 8 between the points around it; beyond the outer points the CDF is at
    # most q_1 (resp. 1 - q_M) off
    xs = np.sort(x[:, 0])
    at = np.searchsorted(xs, edges)
    inside = (at > 0) & (at < xs.size)
    gap = np.where(
        inside, xs[np.clip(at, 1, xs.size - 1)] - xs[np.clip(at - 1, 0, xs.size - 2)], 0.0
    )
    curvature = 1.0 / (std**2 * math.sqrt(2 * math.pi * math.e))
    bound = np.where(
        inside, curvature * gap**2 / 8, np.where(at == 0, q[:, 0].min(), 1 - q[:, 0].max())
    )
    # round-off on top of the interpolation bound; measured at most 0.16 of the bound
    # (without quantiles the midpoint split reaches 3.6 times it)
    assert np.all(np.abs(masses - exact) <= bound[:-1] + bound[1:] + 1e-15)
    # and the overall L1 error: measured 4.2e-4 (8.5e-4 at 48 cells)
    assert np.sum(np.abs(masses - exact)) < 1e-3


# ---- 8. backends -------------------------------------------------------------------------------


@pytest.mark.parametrize("other", ["array_api_strict", "cupy"])
@pytest.mark.parametrize("which", ["quadratic", "linear_unit"])
def test_points_agree_across_backends(which: str, other: str) -> None:
    if other not in ("array_api_strict", *available_backends()):
        pytest.skip(f"{other} is not available here")
    if which == "quadratic":
        model, l2 = QuadraticPotential((1.0, 2.5), (0.5, -0.3), 2), 0.0
    else:
        model, l2 = LinearUnit((1.0, -0.5), label_var=0.1), 0.3
    law = NormalLaw((0.3, 0.2), (0.6, 0.4))
    x0, w, q = CellRule.uniform(law.axis_laws(), [5, 4], 2).tabulate()
    bounds = ((-5.0, 5.0), (-5.0, 5.0))
    pde = CharacteristicsPDE(model, bounds, l2=l2)
    grid = Grid(bounds, (10, 10))
    runs = [_run(pde, x0, w, [0.0, 0.5, 1.0], get_backend(name), grid) for name in ("numpy", other)]
    for a, b in zip(runs[0].frames, runs[1].frames, strict=True):
        assert a.step == b.step  # the same accepted steps
        # the same arithmetic in another namespace; measured identical on array-api-strict,
        # 1e-12 leaves room for a GPU's reductions
        np.testing.assert_allclose(b.points, a.points, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(b.risk, a.risk, rtol=1e-12)
        np.testing.assert_allclose(b.free_energy, a.free_energy, rtol=1e-12)
        np.testing.assert_allclose(b.density, a.density, rtol=1e-12, atol=1e-12)
