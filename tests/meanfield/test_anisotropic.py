"""The anisotropic model: reduced v(r1, r2), the exact finite-(s0, d - s0) kernel, gradients, the
particle side and the initial law of (r1, r2), against Monte Carlo in R^d and quadrature."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special, stats

from meanfield.backends import get_backend, to_numpy
from meanfield.grid import Grid
from meanfield.model import ACTIVATIONS, IsotropicGaussians
from meanfield.model.laws import GridTooSmallError, ScaledChiPairLaw, initial_density
from meanfield.model.mmn.anisotropic import AnisotropicGaussians
from meanfield.rng import CounterRNG

N_MC = 200_000
S_MAX2 = 7.5**2  # max |s|^2 of both shipped activations
# (r1, r2, r1', r2'): small and large radii, mostly-informative and mostly-noise units
PAIRS = [(0.5, 0.8, 0.9, 0.3), (1.2, 0.4, 0.3, 1.5), (2.0, 2.0, 1.0, 0.5), (0.6, 0.6, 0.6, 0.6)]


def _sample(
    model: AnisotropicGaussians, rng: np.random.Generator, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """The data law, written out independently of the model: x | y ~ N(0, diag(tau_y^2, 1))."""
    d, s0 = int(model.d), int(model.s0)
    y = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    scale = np.ones((n, d))
    scale[:, :s0] = np.where(y > 0, 1.0 + model.delta, 1.0 - model.delta)[:, None]
    return rng.standard_normal((n, d)) * scale, y


def _directions(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    """Uniform unit vectors of R^dim (random signs for dim = 1)."""
    u = rng.standard_normal((n, dim))
    return u / np.linalg.norm(u, axis=1, keepdims=True)


def _units(rng: np.random.Generator, n: int, r1: float, r2: float, d: int, s0: int) -> np.ndarray:
    """Units with block norms (r1, r2) and independent uniform block directions."""
    return np.concatenate([r1 * _directions(rng, n, s0), r2 * _directions(rng, n, d - s0)], axis=1)


def _mc_kernel(
    model: AnisotropicGaussians, pair: tuple, rng: np.random.Generator
) -> tuple[float, float]:
    """E[s(<w, x>) s(<w', x>)] over x and the directions of the blocks of w and w'."""
    d, s0 = int(model.d), int(model.s0)
    x, _ = _sample(model, rng, N_MC)
    w1 = _units(rng, N_MC, pair[0], pair[1], d, s0)
    w2 = _units(rng, N_MC, pair[2], pair[3], d, s0)
    act = model.activation
    values = act(np.sum(w1 * x, axis=1)) * act(np.sum(w2 * x, axis=1))
    return float(values.mean()), float(values.std() / math.sqrt(N_MC))


def _pair_kernel(model: AnisotropicGaussians, pair: tuple, scale: np.ndarray) -> float:
    points = np.array([pair[:2], pair[2:]])
    return float(model.kernel_features(points, scale).matrix()[0, 1])


# ---- reduced V and U against Monte Carlo and quadrature -------------------------------------


@pytest.mark.parametrize(("d", "s0"), [(40, 8), (6, 2)])
def test_potential_matches_monte_carlo(d: int, s0: int, rng: np.random.Generator) -> None:
    for name in sorted(ACTIVATIONS):
        model = AnisotropicGaussians(d, s0, 0.8, ACTIVATIONS[name])
        x, y = _sample(model, rng, N_MC)
        for r1, r2 in [(0.3, 0.5), (1.0, 0.2), (2.0, 2.0), (0.0, 1.5), (4.0, 1.0)]:
            w = _units(rng, 1, r1, r2, d, s0)[0]
            values = -y * model.activation(x @ w)
            se = values.std() / math.sqrt(N_MC)
            # 4.5 standard errors: the 20 comparisons of a case pass together w.p. > 0.9998
            assert abs(model.potential(np.array([[r1, r2]]))[0] - values.mean()) < 4.5 * se


@pytest.mark.parametrize(("s0", "tol"), [(2, 1e-4), (1, 1e-3)])
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_finite_kernel_matches_monte_carlo(
    s0: int, tol: float, name: str, rng: np.random.Generator
) -> None:
    # d = 6 converges slowly (and s0 = 1 slowest: c1 = +-1): the kernel error bound tol * 56 is
    # looser than the Monte Carlo error, but the error itself is far smaller at these pairs
    # (see test_truncation_error_is_below_the_stated_tolerance for the bound's honesty)
    model = AnisotropicGaussians(6, s0, 0.8, ACTIVATIONS[name], kernel_tol=tol)
    kernel = model.kernel_features(np.reshape(PAIRS, (-1, 2))).matrix()
    for i, pair in enumerate(PAIRS):
        mean, se = _mc_kernel(model, pair, rng)
        # 4.5 standard errors: the 4 pairs of a case pass together w.p. > 0.99997
        assert abs(kernel[2 * i, 2 * i + 1] - mean) < 4.5 * se, (pair, mean, se)


def test_monte_carlo_distinguishes_finite_kernel_from_the_limit(rng: np.random.Generator) -> None:
    """The previous test has the power to see the finite-(s0, d) correction."""
    act = ACTIVATIONS["mmn"]
    finite = AnisotropicGaussians(6, 2, 0.8, act, kernel_tol=1e-4)
    limit = AnisotropicGaussians(math.inf, 2, 0.8, act)
    pair, scale = PAIRS[3], np.array([[2.0, 2.0]])
    mean, se = _mc_kernel(finite, pair, rng)
    assert abs(_pair_kernel(finite, pair, scale) - mean) < 4.5 * se
    assert abs(_pair_kernel(limit, pair, scale) - mean) > 8 * se


def _gauss_kernel(act, a1: float, a2: float, rho: np.ndarray) -> np.ndarray:
    """E[s(a1 G) s(a2 G')], corr(G, G') = rho, by Gauss-Legendre in G split at the kinks of
    s(a1 G); the expectation over G' given G is in closed form (s is piecewise linear)."""
    cuts = np.unique(np.r_[-12.0, np.clip(act.t / a1, -12.0, 12.0), 12.0])
    nodes, weights = np.polynomial.legendre.leggauss(120)
    total = np.zeros_like(rho)
    for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
        g = 0.5 * (hi - lo) * nodes + 0.5 * (hi + lo)
        mu = a2 * rho[:, None] * g
        sigma = a2 * np.sqrt(1.0 - rho**2)[:, None]
        inner = act.left_value + 0.0 * mu
        for t, jump in zip(act.t, act.jumps, strict=True):
            z = (mu - t) / sigma
            inner = inner + jump * ((mu - t) * special.ndtr(z) + sigma * stats.norm.pdf(z))
        dens = 0.5 * (hi - lo) * weights * stats.norm.pdf(g) * act(a1 * g)
        total = total + inner @ dens
    return total


def _quadrature_kernel(model: AnisotropicGaussians, pair: tuple, n_nodes: int = 40) -> float:
    """u(r, r') by Gauss-Jacobi quadrature over the two cosines (density (1 - c^2)^((n-3)/2))."""
    d, s0 = int(model.d), int(model.s0)
    c1, w1 = special.roots_jacobi(n_nodes, (s0 - 3) / 2, (s0 - 3) / 2)
    c2, w2 = special.roots_jacobi(n_nodes, (d - s0 - 3) / 2, (d - s0 - 3) / 2)
    c1, c2 = np.meshgrid(c1, c2, indexing="ij")
    weights = np.outer(w1 / w1.sum(), w2 / w2.sum()).ravel()
    r1, r2, q1, q2 = pair
    out = 0.0
    for tau in model.taus:
        a, b = math.hypot(tau * r1, r2), math.hypot(tau * q1, q2)
        rho = ((tau**2 * r1 * q1 * c1 + r2 * q2 * c2) / (a * b)).ravel()
        out += 0.5 * weights @ _gauss_kernel(model.activation, a, b, rho)
    return float(out)


@pytest.mark.parametrize(("d", "s0", "tol"), [(40, 8, 1e-10), (6, 2, 1e-4)])
def test_kernel_matches_quadrature(d: int, s0: int, tol: float) -> None:
    model = AnisotropicGaussians(d, s0, 0.8, ACTIVATIONS["mmn_nonmonotone"], kernel_tol=tol)
    kernel = model.kernel_features(np.reshape(PAIRS[:3], (-1, 2))).matrix()
    for i, pair in enumerate(PAIRS[:3]):
        # the model's stated error bound, plus the quadrature's error: |rho| < 1 strictly for
        # these pairs, so the integrand is analytic in the cosines (40 and 60 Gauss-Jacobi nodes
        # agree to 1e-13)
        assert abs(kernel[2 * i, 2 * i + 1] - _quadrature_kernel(model, pair)) <= (
            tol * S_MAX2 + 1e-11
        )


def test_kernel_on_the_first_axis_is_the_isotropic_kernel_in_dimension_s0() -> None:
    """At r2 = r2' = 0, rho = c1 (a cosine in R^s0) and a = tau r1: the isotropic model."""
    for name in sorted(ACTIVATIONS):
        act = ACTIVATIONS[name]
        model = AnisotropicGaussians(40, 8, 0.8, act, kernel_tol=1e-10)
        iso = IsotropicGaussians(8, 0.8, act, kernel_tol=1e-10)
        r = np.linspace(0.02, 5.0, 25)
        points = np.c_[r, 0.0 * r]
        # both models within their error bounds (1e-10 max s^2 each)
        np.testing.assert_allclose(
            model.potential(points), iso.potential(r[:, None]), rtol=0, atol=1e-14
        )
        np.testing.assert_allclose(
            model.kernel_features(points, np.array([[5.0, 5.0]])).matrix(),
            iso.kernel_features(r[:, None]).matrix(),
            rtol=0,
            atol=2e-10 * S_MAX2,
        )


def test_potential_vanishes_without_informative_weight() -> None:
    """r1 = 0: both classes see N(0, r2^2), so v = 0 and the kernel has no class split."""
    model = AnisotropicGaussians(40, 8, 0.8, ACTIVATIONS["mmn"])
    r2 = np.linspace(0.0, 5.0, 11)
    np.testing.assert_array_equal(model.potential(np.c_[0.0 * r2, r2]), 0.0)


def _reference_kernel(model: AnisotropicGaussians, points: np.ndarray, order: int) -> np.ndarray:
    """The full binomial series up to ``order``, no column dropped, pair by pair."""
    act, (r1, r2) = model.activation, points.T
    m1, m2 = model.block_moments(order)
    out = np.zeros((len(points), len(points)))
    for tau in model.taus:
        a = np.hypot(tau * r1, r2)
        alpha = np.outer(tau * r1 / a, tau * r1 / a)
        beta = np.outer(r2 / a, r2 / a)
        coeffs = act.hermite_coefficients(a, order)
        for k in range(0, order + 1, 2):
            j = np.arange(0, k + 1, 2)
            log_terms = (
                special.gammaln(k + 1.0)
                - special.gammaln(j + 1.0)
                - special.gammaln(k - j + 1.0)
                + np.log(m1[j])
                + np.log(m2[k - j])
            )
            terms = np.exp(
                log_terms
                + special.xlogy(j, alpha[..., None])
                + special.xlogy(k - j, beta[..., None])
            )
            out += 0.5 * np.outer(coeffs[:, k], coeffs[:, k]) * terms.sum(axis=-1)
    return out


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_truncation_error_is_below_the_stated_tolerance(
    name: str, rng: np.random.Generator
) -> None:
    model = AnisotropicGaussians(40, 8, 0.8, ACTIVATIONS[name], kernel_tol=1e-8)
    points = np.r_[rng.uniform(0.0, 6.0, (22, 2)), [[6.0, 0.0], [3.0, 0.0], [0.0, 6.0]]]
    columns = model.kernel_columns(6.0, 6.0)
    assert columns.n_features < columns.n_candidates / 10  # most columns are negligible
    # reference order 400: by the same Parseval bound its tail is below 7e-9 << 1e-8 * 56
    reference = _reference_kernel(model, points, 400)
    error = np.max(np.abs(model.kernel_features(points).matrix() - reference))
    assert error <= 1e-8 * S_MAX2


def test_finite_dimension_moves_the_risk_of_the_initial_law() -> None:
    """SPEC 2.2: at s0 = 8, d = 40 the finite kernel moves the risk by several per cent."""
    grid = Grid(((0.0, 3.0), (0.0, 3.0)), (60, 60), ("r1", "r2"))
    mass = initial_density(ScaledChiPairLaw(1.5, 40, 8), grid).ravel() * grid.cell_volume
    risks = []
    for d in (40, math.inf):
        model = AnisotropicGaussians(d, 8, 0.8, ACTIVATIONS["mmn"])
        kernel = model.kernel_features(grid.points())
        pushed = kernel.features.T @ mass
        risks.append(1.0 + 2.0 * model.potential(grid.points()) @ mass + kernel.weights @ pushed**2)
    # measured: 0.580 (finite) against 0.515 (limit), 11 %; the grid error is O(h^2) ~ 1e-3
    assert 0.08 < (risks[0] - risks[1]) / risks[0] < 0.15


def test_kernel_is_positive_semidefinite() -> None:
    model = AnisotropicGaussians(40, 8, 0.8, ACTIVATIONS["mmn_nonmonotone"])
    r1, r2 = np.meshgrid(np.linspace(0.0, 5.0, 14), np.linspace(0.0, 5.0, 14))
    eig = np.linalg.eigvalsh(model.kernel_features(np.c_[r1.ravel(), r2.ravel()]).matrix())
    assert eig.min() > -1e-10 * eig.max()  # round-off of a 196 x 196 eigensolve


# ---- gradients ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_gradients_match_finite_differences(name: str, rng: np.random.Generator) -> None:
    model = AnisotropicGaussians(40, 8, 0.8, ACTIVATIONS[name], kernel_tol=1e-8)
    points = np.r_[rng.uniform(0.1, 4.0, (12, 2)), [[1e-3, 2.0], [2.0, 1e-3]]]
    scale = np.array([[5.0, 5.0]])
    grads = model.kernel_feature_gradients(points, scale)
    slopes = model.potential_gradient(points)
    assert grads.shape == (len(points), model.kernel_features(points, scale).n_features, 2)
    step = 1e-5
    for axis in range(2):
        shift = np.zeros(2)
        shift[axis] = step
        up, down = points + shift, np.abs(points - shift)  # mirrored: features are even in r
        fd = (
            model.kernel_features(up, scale).features - model.kernel_features(down, scale).features
        ) / (2 * step)
        # central differences: O(step^2 f''') ~ 1e-10 plus round-off 1e-16 * 10 / step
        np.testing.assert_allclose(grads[..., axis], fd, rtol=0, atol=1e-8)
        fd_v = (model.potential(up) - model.potential(down)) / (2 * step)
        np.testing.assert_allclose(slopes[:, axis], fd_v, rtol=0, atol=1e-8)


# ---- the particle side --------------------------------------------------------------------


def test_sample_data_scales_the_informative_block_only(backend) -> None:
    d, s0 = 7, 3
    model = AnisotropicGaussians(d, s0, 0.8, ACTIVATIONS["mmn"])
    iso = IsotropicGaussians(d, 0.8, ACTIVATIONS["mmn"])
    rng = CounterRNG.from_seed(5, 2, backend.xp, backend.asarray)
    x, y = model.sample_data(rng, 4, 3000, backend.xp)
    x_iso, y_iso = iso.sample_data(rng, 4, 3000, backend.xp)
    assert x.shape == (2, 3000, d) and y.shape == (2, 3000)
    x, y, x_iso = to_numpy(x), to_numpy(y), to_numpy(x_iso)
    np.testing.assert_array_equal(y, to_numpy(y_iso))  # same draws as the isotropic model
    tau = np.where(y > 0, 1.8, 0.2)[..., None]
    # the same normals: x_iso = tau g on every coordinate, x = tau g on the first s0 only
    np.testing.assert_allclose(x[..., :s0], x_iso[..., :s0], rtol=1e-15)
    np.testing.assert_allclose(x[..., s0:] * tau, x_iso[..., s0:], rtol=1e-14)
    # and the class variances: 3000 x 3 x 2 draws per class-block, SE of a variance
    # sigma^2 sqrt(2/n) ~ 1.2 % (5 SE margin)
    for label, var in ((1.0, 1.8**2), (-1.0, 0.2**2)):
        np.testing.assert_allclose(np.var(x[y == label][:, :s0]), var, rtol=0.06)
        np.testing.assert_allclose(np.var(x[y == label][:, s0:]), 1.0, rtol=0.06)


def test_reduce_and_units_run_on_every_backend(backend) -> None:
    d, s0 = 6, 2
    model = AnisotropicGaussians(d, s0, 0.8, ACTIVATIONS["mmn_nonmonotone"])
    host = np.random.default_rng(3)
    theta, x = host.standard_normal((2, 5, d)), host.standard_normal((2, 4, d))
    coef = host.standard_normal((2, 4, 1))
    reduced = model.reduce(backend.asarray(theta), backend.xp)
    assert reduced.shape == (2, 5, 2)
    expected = np.stack(
        [np.linalg.norm(theta[..., :s0], axis=-1), np.linalg.norm(theta[..., s0:], axis=-1)],
        axis=-1,
    )
    np.testing.assert_allclose(to_numpy(reduced), expected, rtol=1e-14)
    values, cache = model.forward(backend.asarray(x), backend.asarray(theta), backend.xp)
    pushed = model.backward(
        backend.asarray(x), backend.asarray(theta), cache, backend.asarray(coef), backend.xp
    )
    assert values.shape == (2, 4, 5) and pushed.shape == (2, 5, d)
    act = model.activation
    z = x @ np.swapaxes(theta, -1, -2)
    np.testing.assert_allclose(to_numpy(values), act(z), rtol=1e-13)
    np.testing.assert_allclose(
        to_numpy(pushed), np.swapaxes(coef * act.derivative(z), -1, -2) @ x, rtol=1e-12
    )


def test_population_risk_matches_monte_carlo_and_the_reduced_potential(
    rng: np.random.Generator,
) -> None:
    backend = get_backend("numpy")
    d, s0 = 6, 2
    model = AnisotropicGaussians(d, s0, 0.8, ACTIVATIONS["mmn_nonmonotone"])
    theta = rng.standard_normal((1, 3, d)) * 0.7
    risk = float(model.population_risk(theta, None, backend)[0])
    x, y = _sample(model, rng, N_MC)
    losses = (model.activation(x @ theta[0].T).mean(axis=1) - y) ** 2
    se = losses.std() / math.sqrt(N_MC)
    assert abs(risk - losses.mean()) < 4.5 * se  # P(fail) < 1e-5
    # one unit: R = 1 + 2 v(r1, r2) + (1/2) sum_tau E[s(a G)^2], the same v as the PDE's
    one = theta[:, :1]
    r1, r2 = to_numpy(model.reduce(one, np))[0, 0]
    second = sum(
        0.5 * model.activation.gaussian_second_moment(np.hypot(tau * r1, r2)) for tau in model.taus
    )
    expected = 1.0 + 2.0 * model.potential(np.array([[r1, r2]]))[0] + second
    # the pair sums use the closed-form diagonal: agreement to round-off
    np.testing.assert_allclose(model.population_risk(one, None, backend), [expected], rtol=1e-13)


def test_population_gradient_matches_finite_differences(backend) -> None:
    """dR/dtheta_i = (2/N) grad Psi(theta_i; mu_N), on every backend."""
    d, s0, n, order = 4, 2, 3, 40  # a fixed order: the same series on both sides
    model = AnisotropicGaussians(d, s0, 0.8, ACTIVATIONS["mmn"])
    theta = np.random.default_rng(8).standard_normal((2, n, d)) * 0.6
    grad = to_numpy(model.population_gradient(backend.asarray(theta), order, backend))
    step = 1e-6
    fd = np.zeros_like(theta)
    for i in range(n):
        for c in range(d):
            shift = np.zeros_like(theta)
            shift[:, i, c] = step
            up = to_numpy(model.population_risk(backend.asarray(theta + shift), order, backend))
            down = to_numpy(model.population_risk(backend.asarray(theta - shift), order, backend))
            fd[:, i, c] = (up - down) / (2 * step)
    # central differences: O(step^2) truncation, round-off 1e-16 * R / step ~ 1e-10
    np.testing.assert_allclose(2.0 / n * grad, fd, rtol=0, atol=1e-8)


# ---- the initial law of (r1, r2) ------------------------------------------------------------


def test_pair_law_cell_masses_are_products_of_chi_probabilities() -> None:
    kappa, d, s0 = 0.8, 40, 8
    law = ScaledChiPairLaw(kappa, d, s0)
    grid = Grid(((0.0, 0.45), (0.0, 0.8)), (30, 40), ("r1", "r2"))  # cuts off both upper tails
    masses, outside = law.cell_masses(grid)
    assert masses.shape == (30, 40)
    chi1 = stats.chi(s0, scale=kappa / math.sqrt(d))
    chi2 = stats.chi(d - s0, scale=kappa / math.sqrt(d))
    inside = chi1.cdf(0.45) * chi2.cdf(0.8)
    assert 0.05 < 1.0 - inside < 0.95  # the box leaves a real share outside
    # probabilities computed two ways (incomplete gamma vs SciPy's chi): round-off
    np.testing.assert_allclose(masses.sum(), inside, rtol=1e-13)
    np.testing.assert_allclose(outside, 1.0 - inside, rtol=1e-12)
    np.testing.assert_allclose(
        masses,
        np.outer(np.diff(chi1.cdf(grid.edges(0))), np.diff(chi2.cdf(grid.edges(1)))),
        rtol=1e-10,
        atol=1e-300,
    )


def test_pair_law_initial_density_and_samples(backend) -> None:
    law = ScaledChiPairLaw(0.8, 40, 8)
    grid = Grid(((0.0, 1.5), (0.0, 2.0)), (20, 30), ("r1", "r2"))
    rho = initial_density(law, grid)
    np.testing.assert_allclose(rho.sum() * grid.cell_volume, 1.0, rtol=1e-14)
    with pytest.raises(GridTooSmallError):
        initial_density(law, Grid(((0.0, 0.5), (0.0, 2.0)), (20, 30)))
    rng = CounterRNG.from_seed(1, 3, backend.xp, backend.asarray)
    theta = law.sample_streams(rng, 500)
    assert theta.shape == (3, 500, 40)
    model = AnisotropicGaussians(40, 8, 0.8, ACTIVATIONS["mmn"])
    reduced = to_numpy(model.reduce(theta, backend.xp)).reshape(-1, 2)
    for axis, law_1d in enumerate(law.marginals):
        cdf = lambda r, law_1d=law_1d: law_1d.cdf(r)  # noqa: E731
        # 1500 draws from the exact law: the KS test passes w.p. 0.999
        assert stats.kstest(reduced[:, axis], cdf).pvalue > 1e-3
    host = law.sample(np.random.default_rng(0), (4, 7))
    assert host.shape == (4, 7, 40)


# ---- parameters and grids -------------------------------------------------------------------


def test_model_rejects_bad_parameters_and_grids() -> None:
    act = ACTIVATIONS["mmn"]
    with pytest.raises(ValueError, match="s0"):
        AnisotropicGaussians(40, 40, 0.8, act)
    with pytest.raises(ValueError, match="s0"):
        AnisotropicGaussians(40, 2.5, 0.8, act)
    with pytest.raises(ValueError, match="delta"):
        AnisotropicGaussians(40, 8, 1.0, act)
    with pytest.raises(ValueError, match="integer"):
        AnisotropicGaussians(40.5, 8, 0.8, act)
    model = AnisotropicGaussians(40, 8, 0.8, act)
    with pytest.raises(ValueError, match="2-D"):
        model.validate(Grid(((0.0, 4.0),), (10,)))
    with pytest.raises(ValueError, match="start at 0"):
        model.validate(Grid(((0.1, 4.0), (0.0, 4.0)), (10, 10)))
    model.validate(Grid(((0.0, 4.0), (0.0, 4.0)), (10, 10)))
    with pytest.raises(ValueError, match="kernel_tol"):
        AnisotropicGaussians(6, 1, 0.8, act, kernel_tol=1e-5).truncation_order(4.0, 4.0)
    limit = AnisotropicGaussians(math.inf, 8, 0.8, act)
    assert limit.kernel_columns(6.0, 6.0).n_features == 2  # k = 0 per class
    with pytest.raises(ValueError, match="finite d"):
        limit.check_noise(10.0)
    AnisotropicGaussians(40, 1, 0.8, act).check_noise(10.0)


def test_norm_and_log_jacobian() -> None:
    points = np.array([[0.5, 2.0], [1.5, 0.25]])
    model = AnisotropicGaussians(10, 3, 0.8, ACTIVATIONS["mmn"])
    np.testing.assert_allclose(model.norm_sq(points), [4.25, 2.3125], rtol=1e-15)
    np.testing.assert_allclose(
        model.log_jacobian(points), 2 * np.log(points[:, 0]) + 6 * np.log(points[:, 1]), rtol=1e-14
    )
    # a block of dimension 1 has no surface factor, even at r = 0
    edge = AnisotropicGaussians(2, 1, 0.8, ACTIVATIONS["mmn"])
    np.testing.assert_array_equal(edge.log_jacobian(np.array([[0.0, 0.0]])), [0.0])
