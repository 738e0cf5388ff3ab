"""The teacher-student model: activations, Gauss rules, V and U against Monte Carlo, gradients
against finite differences, and the particle-side quantities against the grid-side ones."""

from __future__ import annotations

import dataclasses
import math
import pickle

import numpy as np
import pytest
from scipy import special

from meanfield.backends import get_backend, to_numpy
from meanfield.grid import Grid
from meanfield.model.integrals.quadrature import gauss_rule
from meanfield.model.integrals.smooth import SMOOTH_ACTIVATIONS, erf
from meanfield.model.teacher_student.model import TARGETS, TeacherNetwork, TeacherStudent
from meanfield.rng import CounterRNG
from meanfield.schedules import TimeChange
from particles.methods import make_online_sgd
from particles.state import EnsembleState

NUMPY = get_backend("numpy")
TEACHER_1D = TeacherNetwork(a=(1.0, -0.5), w=((2.0,), (1.0,)), b=(-0.5, 0.3))
TEACHER_2D = TeacherNetwork(
    a=(1.0, 0.7), w=((1.5, -0.5), (0.3, 1.2)), b=(0.2, -0.4), activation="erf"
)

#: one model per (k, input law, activation, target kind, trained subset) combination tested
MODELS = {
    "k1_gauss_tanh_teacher_awb": TeacherStudent(
        k=1,
        input_law="gaussian",
        target=TEACHER_1D,
        activation="tanh",
        trained=("a", "w", "b"),
        bounds=((-1.5, 1.5), (-2.0, 2.0), (-1.0, 1.0)),
    ),
    "k1_uniform_softplus_bump_wb": TeacherStudent(
        k=1,
        input_law="uniform",
        target="bump",
        activation="softplus",
        trained=("w", "b"),
        fixed_a=0.8,
        bounds=((-3.0, 3.0), (-2.0, 2.0)),
    ),
    "k1_gauss_erf_sin_a": TeacherStudent(
        k=1,
        input_law="gaussian",
        target="sin",
        activation="erf",
        trained=("a",),
        fixed_w=(1.3,),
        fixed_b=0.2,
        bounds=((-2.0, 2.0),),
    ),
    "k2_gauss_erf_teacher_w1w2": TeacherStudent(
        k=2,
        input_law="gaussian",
        target=TEACHER_2D,
        activation="erf",
        trained=("w1", "w2"),
        fixed_b=0.3,
        bounds=((-1.5, 1.5), (-1.5, 1.5)),
    ),
    "k2_uniform_tanh_sinprod_aw2b": TeacherStudent(
        k=2,
        input_law="uniform",
        target="sin_product",
        activation="tanh",
        trained=("a", "w2", "b"),
        fixed_w=(2.0, 1.0),
        bounds=((-1.0, 1.0), (-3.0, 3.0), (-1.0, 1.0)),
    ),
}


def _points(model: TeacherStudent, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points drawn uniformly in the model's box, ``(n, D)``."""
    lo, hi = np.array(model.bounds).T
    return lo + (hi - lo) * rng.random((n, model.dim))


def _inputs(model: TeacherStudent, n: int, rng: np.random.Generator) -> np.ndarray:
    if model.input_law == "gaussian":
        return rng.standard_normal((n, model.k))
    return rng.uniform(-1.0, 1.0, (n, model.k))


# ---- activations and Gauss rules ---------------------------------------------------------------


def test_erf_from_array_api_calls_matches_scipy() -> None:
    z = np.concatenate(
        [np.linspace(-9.0, 9.0, 20001), np.logspace(-300, 0.9, 400), -np.logspace(-300, 0.9, 400)]
    )
    # Cephes' rational approximations are accurate to a few ulp: measured max error 1.1e-16
    np.testing.assert_allclose(erf(z), special.erf(z), rtol=4e-16, atol=4e-16)


@pytest.mark.parametrize("name", sorted(SMOOTH_ACTIVATIONS))
def test_activation_derivatives_match_finite_differences(name: str) -> None:
    act, z, h = SMOOTH_ACTIVATIONS[name], np.linspace(-6.0, 6.0, 241), 1e-5
    fd = (act(z + h) - act(z - h)) / (2 * h)
    # central differences: O(h^2 s''') ~ 1e-10 plus round-off 1e-16 / h ~ 1e-11
    np.testing.assert_allclose(act.derivative(z), fd, atol=1e-9)


@pytest.mark.parametrize(
    ("law", "moments"), [("gaussian", (1.0, 3.0, 15.0)), ("uniform", (1 / 3, 1 / 5, 1 / 7))]
)
def test_gauss_rules_integrate_polynomials_exactly(law: str, moments: tuple) -> None:
    """E[x^2], E[x^4], E[x^6] per axis and E[x_1^2 x_2^4] of the product rule."""
    rule = gauss_rule(law, 2, 4)  # degree 7 per axis is exact
    x = rule.nodes
    assert rule.n_nodes == 16
    np.testing.assert_allclose(rule.weights.sum(), 1.0, rtol=1e-14)
    for p, m in zip((2, 4, 6), moments, strict=True):
        np.testing.assert_allclose(rule.expectation(x[:, 1] ** p), m, rtol=1e-13)
    np.testing.assert_allclose(
        rule.expectation(x[:, 0] ** 2 * x[:, 1] ** 4), moments[0] * moments[1], rtol=1e-13
    )


# ---- V, U and R_# --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MODELS))
def test_potentials_match_monte_carlo(name: str, rng: np.random.Generator) -> None:
    """V(theta) = -E[y sigma_*], U = E[sigma_* sigma_*'], R_# = E[y^2], by sampling x."""
    model, n_mc = MODELS[name], 200_000
    theta = _points(model, 3, rng)
    x = _inputs(model, n_mc, rng)
    y = model.target_fn(x)
    units = model.unit(x, theta)  # (n_mc, 3)
    samples = np.concatenate(
        [(y * y)[:, None], -y[:, None] * units, units[:, [0, 0, 1]] * units[:, [0, 1, 2]]], axis=1
    )
    kernel = model.kernel_features(theta).matrix()
    exact = np.concatenate([[model.r_sharp], model.potential(theta), kernel[[0, 0, 1], [0, 1, 2]]])
    se = samples.std(axis=0) / math.sqrt(n_mc)
    # 7 independent-ish z-scores: |z| < 4.5 fails with probability < 5e-5 under the exact model
    assert np.all(np.abs(samples.mean(axis=0) - exact) < 4.5 * se + 1e-12), (
        samples.mean(axis=0) - exact
    ) / se


@pytest.mark.parametrize("name", sorted(MODELS))
def test_quadrature_order_is_converged(name: str, rng: np.random.Generator) -> None:
    """Doubling the chosen order moves V and U by less than quad_tol (relative), off the
    check points too."""
    model = MODELS[name]
    doubled = dataclasses.replace(model, quad_order=2 * model.tables.rule.order, compress_tol=None)
    raw = dataclasses.replace(model, compress_tol=None)
    theta = _points(model, 40, rng)
    scale = max(model.r_sharp, float(np.max(np.diag(raw.kernel_features(theta).matrix()))))
    dv = np.max(np.abs(raw.potential(theta) - doubled.potential(theta)))
    du = np.max(
        np.abs(raw.kernel_features(theta).matrix() - doubled.kernel_features(theta).matrix())
    )
    assert model.tables.change <= model.quad_tol
    # interior points have smoother integrands than the box corners the order was chosen on;
    # the factor 10 allows for the scale differing from the check set's
    assert max(dv, du) < 10 * model.quad_tol * scale, (dv, du)
    np.testing.assert_allclose(raw.r_sharp, doubled.r_sharp, rtol=10 * model.quad_tol)


def test_named_targets_and_teacher_are_what_the_docs_say() -> None:
    x = np.array([[0.3, -0.7], [1.1, 0.4]])
    np.testing.assert_allclose(TARGETS["sin"][0](x, np), np.sin(np.pi * x[:, 0]))
    np.testing.assert_allclose(
        TARGETS["sin_product"][0](x, np), np.sin(np.pi * x[:, 0]) * np.sin(np.pi * x[:, 1])
    )
    np.testing.assert_allclose(TARGETS["product"][0](x, np), x[:, 0] * x[:, 1])
    np.testing.assert_allclose(TARGETS["bump"][0](x, np), np.exp(-np.sum(x * x, axis=1)))
    direct = (special.erf(x @ [1.5, -0.5] + 0.2) + 0.7 * special.erf(x @ [0.3, 1.2] - 0.4)) / 2
    np.testing.assert_allclose(TEACHER_2D(x), direct, rtol=1e-14)


def test_kernel_compression_meets_its_entrywise_bound(rng: np.random.Generator) -> None:
    """|U_compressed - U| <= compress_tol max U_ii on the scale points, with fewer columns."""
    model = MODELS["k2_uniform_tanh_sinprod_aw2b"]
    grid = Grid(model.bounds, (8, 9, 7))
    points = grid.points()
    raw = dataclasses.replace(model, compress_tol=None)
    subset = points[rng.choice(points.shape[0], 200, replace=False)]
    compressed = model.kernel_features(subset, points)
    exact = raw.kernel_features(subset).matrix()
    assert compressed.n_features < raw.tables.rule.n_nodes / 2
    bound = model.compress_tol * np.max(np.diag(exact))
    # the bound is a theorem up to the round-off of the residual sums (1e-16 of U_ii)
    assert np.max(np.abs(compressed.matrix() - exact)) <= bound * 1.01 + 1e-15


# ---- gradients -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MODELS))
def test_gradients_match_finite_differences(name: str, rng: np.random.Generator) -> None:
    model = MODELS[name]
    theta = _points(model, 5, rng)
    basis_points = _points(model, 100, rng)  # fixes the compression basis for every call
    h = 1e-5
    fd_v = np.zeros_like(theta)
    fd_phi = []
    for axis in range(model.dim):
        step = np.zeros(model.dim)
        step[axis] = h
        fd_v[:, axis] = (model.potential(theta + step) - model.potential(theta - step)) / (2 * h)
        up = model.kernel_features(theta + step, basis_points).features
        down = model.kernel_features(theta - step, basis_points).features
        fd_phi.append((up - down) / (2 * h))
    grads = model.kernel_feature_gradients(theta, basis_points)
    # central differences: O(h^2) ~ 1e-10 times third derivatives of order |x|^3 ~ 10, plus
    # round-off 1e-16 |V| / h ~ 1e-11
    np.testing.assert_allclose(model.potential_gradient(theta), fd_v, atol=1e-8)
    np.testing.assert_allclose(grads, np.stack(fd_phi, axis=-1), atol=1e-8)


def test_backward_is_the_contracted_unit_gradient(rng: np.random.Generator) -> None:
    model = MODELS["k1_gauss_tanh_teacher_awb"]
    x = rng.standard_normal((2, 7, 1))
    theta = _points(model, 8, rng).reshape(2, 4, 3)
    coef = rng.standard_normal((2, 7, 4))
    values, cache = model.forward(x, theta, np)
    expected = np.einsum("rbi,rbid->rid", coef, model.unit_gradient(x, theta))
    np.testing.assert_allclose(model.backward(x, theta, cache, coef, np), expected, rtol=1e-13)
    np.testing.assert_allclose(values, model.unit(x, theta), rtol=1e-15)
    h = 1e-6
    fd = (model.unit(x, theta + [0, 0, h]) - model.unit(x, theta - [0, 0, h])) / (2 * h)
    # d sigma / d b = a s'(z); central differences, error ~ h^2 ~ 1e-12 plus 1e-16 / h
    np.testing.assert_allclose(model.unit_gradient(x, theta)[..., 2], fd, atol=1e-8)


# ---- the particle side ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["k1_gauss_tanh_teacher_awb", "k2_uniform_tanh_sinprod_aw2b", "k1_gauss_erf_sin_a"]
)
def test_population_risk_is_the_grid_functional(
    name: str, backend, rng: np.random.Generator
) -> None:
    """R(mu_N) = R_# + 2 <V, mu_N> + <<U, mu_N mu_N>>, the grid side's formula at the particles."""
    model = MODELS[name]
    theta = _points(model, 2 * 6, rng).reshape(2, 6, model.dim)
    risk = to_numpy(model.population_risk(backend.asarray(theta), None, backend))
    expected = []
    for rep in theta:
        kernel = model.kernel_features(rep)
        means = kernel.features.mean(axis=0)
        expected.append(
            model.r_sharp + 2 * model.potential(rep).mean() + np.sum(kernel.weights * means**2)
        )
    # the compressed U is within compress_tol max U_ii of the quadrature's: 1e-12 here
    np.testing.assert_allclose(risk, expected, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("name", ["k1_gauss_tanh_teacher_awb", "k2_gauss_erf_teacher_w1w2"])
def test_population_gradient_matches_finite_differences(
    name: str, backend, rng: np.random.Generator
) -> None:
    """grad_{theta_i} R(mu_N) = (2/N) grad Psi(theta_i; mu_N)."""
    model = MODELS[name]
    n = 4
    theta = _points(model, 2 * n, rng).reshape(2, n, model.dim)
    grad = to_numpy(model.population_gradient(backend.asarray(theta), None, backend))
    h = 1e-5
    fd = np.zeros_like(theta)
    for i in range(n):
        for axis in range(model.dim):
            shift = np.zeros_like(theta)
            shift[:, i, axis] = h
            up = model.population_risk(theta + shift, None, NUMPY)
            down = model.population_risk(theta - shift, None, NUMPY)
            fd[:, i, axis] = 0.5 * n * (up - down) / (2 * h)
    # central differences: O(h^2 R''') ~ 1e-10 plus round-off 1e-16 / h ~ 1e-11, times N/2
    np.testing.assert_allclose(grad, fd, atol=1e-8)


def test_population_gradient_at_one_unit_is_the_grid_gradient(rng: np.random.Generator) -> None:
    """grad Psi(theta; delta_theta) = grad V(theta) + sum_p w_p phi_p grad phi_p (N = 1)."""
    model = MODELS["k2_uniform_tanh_sinprod_aw2b"]
    theta = _points(model, 5, rng)
    kernel = model.kernel_features(theta)
    grads = model.kernel_feature_gradients(theta)
    expected = model.potential_gradient(theta) + np.einsum(
        "p,mp,mpd->md", kernel.weights, kernel.features, grads
    )
    particles = model.population_gradient(theta[:, None, :], None, NUMPY)[:, 0, :]
    # compressed features: U and its gradient within ~compress_tol of the raw quadrature
    np.testing.assert_allclose(particles, expected, atol=1e-9)


@pytest.mark.parametrize("name", ["k1_uniform_softplus_bump_wb", "k2_gauss_erf_teacher_w1w2"])
def test_stochastic_gradient_is_unbiased(name: str, global_seed: int) -> None:
    """E_x[(y - y_hat(x)) grad sigma_*(x; theta_i)] = -grad Psi(theta_i; mu_N) with the
    model's own samples: sample_data draws from the law the quadrature integrates."""
    model, n_mc, n = MODELS[name], 200_000, 3
    rng = CounterRNG.from_seed(global_seed, 1, NUMPY.xp)
    theta = _points(model, n, np.random.default_rng(global_seed))[None]
    x, y = model.sample_data(rng, 0, n_mc, NUMPY.xp)
    values, cache = model.forward(x, theta, np)
    residual = (y - values.mean(axis=-1))[..., None]  # (1, B, 1)
    per_sample = residual[..., None] * model.unit_gradient(x, theta)  # (1, B, N, D)
    mean, se = per_sample.mean(axis=1)[0], per_sample.std(axis=1)[0] / math.sqrt(n_mc)
    np.testing.assert_allclose(
        model.backward(x, theta, cache, residual, np)[0] / n_mc, mean, rtol=1e-10
    )
    exact = -model.population_gradient(theta, None, NUMPY)[0]
    # z-scores of N * D independent-ish means: |z| < 4.5 fails with probability < 1e-4
    assert np.all(np.abs(mean - exact) < 4.5 * se + 1e-12), (mean - exact) / se


def test_sample_data_and_an_sgd_step_run_on_every_backend(backend) -> None:
    model = MODELS["k2_uniform_tanh_sinprod_aw2b"]
    rng = CounterRNG.from_seed(3, 2, backend.xp, backend.asarray)
    x, y = model.sample_data(rng, 5, 64, backend.xp)
    assert x.shape == (2, 64, 2) and y.shape == (2, 64)
    x_np, y_np = to_numpy(x), to_numpy(y)
    assert np.all(np.abs(x_np) <= 1.0)
    np.testing.assert_allclose(y_np, model.target_fn(x_np), rtol=1e-14)
    theta = backend.asarray(np.full((2, 5, 3), 0.5))
    step = make_online_sgd(model, rng, backend, eps=0.01, batch=4, time_change=TimeChange())
    state = step(EnsembleState(theta))
    assert state.theta.shape == (2, 5, 3) and np.all(np.isfinite(to_numpy(state.theta)))
    ref = make_online_sgd(
        model, CounterRNG.from_seed(3, 2, np), NUMPY, eps=0.01, batch=4, time_change=TimeChange()
    )(EnsembleState(np.full((2, 5, 3), 0.5)))
    # same counter-based draws; only the ulp-level differences of the elementwise math remain
    np.testing.assert_allclose(to_numpy(state.theta), ref.theta, rtol=1e-12)


# ---- construction and grid checks ----------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"k": 3, "quad_order": 8},
        {"trained": ("a", "w1"), "quad_order": 8},
        {"trained": ("a", "w", "b", "a"), "quad_order": 8},
        {"target": "product", "quad_order": 8},
        {"target": TEACHER_2D, "quad_order": 8},
        {"activation": "relu", "quad_order": 8},
        {"input_law": "laplace", "quad_order": 8},
        {},
        {"bounds": ((0.0, 1.0),)},
        {"fixed_w": (1.0, 2.0), "quad_order": 8},
    ],
)
def test_invalid_models_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):  # noqa: PT011  (each case has its own message)
        TeacherStudent(**kwargs)


def test_validate_checks_the_grid_against_the_model() -> None:
    model = MODELS["k1_uniform_softplus_bump_wb"]
    model.validate(Grid(model.bounds, (10, 10)))
    with pytest.raises(ValueError, match="axes"):
        model.validate(Grid(((-1.0, 1.0),), (10,)))
    with pytest.raises(ValueError, match="certified"):
        model.validate(Grid(((-4.0, 3.0), (-2.0, 2.0)), (10, 10)))
    assert model.axis_names == ("w", "b") and model.ndim == model.dim == 2


def test_model_pickles_without_its_caches() -> None:
    model = dataclasses.replace(MODELS["k1_uniform_softplus_bump_wb"])
    model.population_risk(np.zeros((1, 2, 2)), None, NUMPY)
    model.kernel_features(np.zeros((3, 2)))
    copy = pickle.loads(pickle.dumps(model))
    assert copy == model and "_device_cache" not in copy.__dict__
    np.testing.assert_array_equal(copy.potential(np.ones((2, 2))), model.potential(np.ones((2, 2))))
