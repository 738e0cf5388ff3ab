"""The isotropic model's reduced v(r) and exact finite-d u_d(r, r') against Monte Carlo in R^d."""

from __future__ import annotations

import math

import numpy as np
import pytest

from meanfield.model import ACTIVATIONS, IsotropicGaussians

N_MC = 400_000
# pairs (r, r') spanning the shipped dynamics (r from 0 to about 7)
R_PAIRS = [(0.3, 0.8), (0.8, 0.8), (1.2, 2.5), (4.0, 0.6)]


def _sample(
    model: IsotropicGaussians, rng: np.random.Generator, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """The data law, written out independently of the model: y = +-1, x | y ~ N(0, tau_y^2 I)."""
    y = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    tau = np.where(y > 0, 1.0 + model.delta, 1.0 - model.delta)
    return rng.standard_normal((n, int(model.d))) * tau[:, None], y


def _random_directions(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    u = rng.standard_normal((n, d))
    return u / np.linalg.norm(u, axis=1, keepdims=True)


def _mc_kernel(
    model: IsotropicGaussians, r1: float, r2: float, rng: np.random.Generator, n: int = N_MC
) -> tuple[float, float]:
    """E[s(<w, x>) s(<w', x>)] over x and independent uniform directions of w, w'."""
    d = int(model.d)
    x, _ = _sample(model, rng, n)
    w1 = r1 * _random_directions(rng, n, d)
    w2 = r2 * _random_directions(rng, n, d)
    act = model.activation
    values = act(np.sum(w1 * x, axis=1)) * act(np.sum(w2 * x, axis=1))
    return float(values.mean()), float(values.std() / math.sqrt(n))


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("d", [5, 40])
def test_potential_matches_monte_carlo(name: str, d: int, rng: np.random.Generator) -> None:
    model = IsotropicGaussians(d, 0.8, ACTIVATIONS[name])
    x, y = _sample(model, rng, N_MC)
    for r in (0.2, 0.8, 2.0, 5.0):
        w = r * _random_directions(rng, 1, d)[0]
        values = -y * model.activation(x @ w)
        se = values.std() / math.sqrt(N_MC)
        # 4.5 standard errors: 16 comparisons in this test pass together w.p. > 0.9999
        assert abs(model.potential(np.array([[r]]))[0] - values.mean()) < 4.5 * se


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("d", [5, 40])
def test_finite_d_kernel_matches_monte_carlo(name: str, d: int, rng: np.random.Generator) -> None:
    # d = 5 converges slowly (E[c^2m] ~ m^-2): a looser truncation keeps the test fast, still
    # 1e-6 * 56 below the Monte Carlo error
    model = IsotropicGaussians(d, 0.8, ACTIVATIONS[name], kernel_tol=1e-6 if d == 5 else 1e-10)
    pts = np.array([[r] for pair in R_PAIRS for r in pair])
    kernel = model.kernel_features(pts).matrix()
    n = N_MC if d == 5 else N_MC // 2  # d = 40 costs 8x more per sample
    for i, (r1, r2) in enumerate(R_PAIRS):
        mean, se = _mc_kernel(model, r1, r2, rng, n)
        assert abs(kernel[2 * i, 2 * i + 1] - mean) < 4.5 * se, (r1, r2, mean, se)


def test_monte_carlo_distinguishes_finite_d_from_the_limit(rng: np.random.Generator) -> None:
    """At d = 5 the exact kernel agrees with Monte Carlo while the d = inf kernel does not:
    the previous test has the power to see the finite-d correction."""
    act = ACTIVATIONS["mmn"]
    finite = IsotropicGaussians(5, 0.8, act, kernel_tol=1e-6)
    limit = IsotropicGaussians(math.inf, 0.8, act)
    r1, r2 = 0.6, 0.6  # where the finite-d correction is largest (about 0.29)
    pts = np.array([[r1], [r2]])
    mean, se = _mc_kernel(finite, r1, r2, rng)
    assert abs(finite.kernel_features(pts).matrix()[0, 1] - mean) < 4.5 * se
    assert abs(limit.kernel_features(pts).matrix()[0, 1] - mean) > 8 * se


def test_kernel_converges_to_infinite_d_like_one_over_d() -> None:
    """u_d - u_inf = (1/2) sum_k E[c^k] ... is dominated by E[c^2] = 1/d: error ratio -> 4."""
    act = ACTIVATIONS["mmn"]
    pts = np.linspace(0.05, 6.0, 40)[:, None]
    limit = IsotropicGaussians(math.inf, 0.8, act).kernel_features(pts).matrix()
    errors = [
        np.max(np.abs(IsotropicGaussians(d, 0.8, act).kernel_features(pts).matrix() - limit))
        for d in (100, 400, 1600)
    ]
    assert errors[0] > errors[1] > errors[2]
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    # next order is E[c^4] ~ 3/d^2: the ratio is 4 (1 + O(1/d))
    np.testing.assert_allclose(ratios, 4.0, rtol=0.05)


@pytest.mark.parametrize("d", [10, 40])
def test_truncation_error_is_below_the_stated_tolerance(d: int) -> None:
    act = ACTIVATIONS["mmn"]
    model = IsotropicGaussians(d, 0.8, act, kernel_tol=1e-10)
    pts = np.linspace(0.01, 8.0, 60)[:, None]
    truncated = model.kernel_features(pts).matrix()
    # a much longer series (the tail beyond order 600 is below 1e-30 at d >= 10)
    order = 600
    moments = np.zeros(order + 1)
    moments[::2] = np.cumprod(
        np.r_[1.0, [(2 * m - 1) / (d + 2 * m - 2) for m in range(1, order // 2 + 1)]]
    )
    reference = sum(
        0.5
        * (act.hermite_coefficients(tau * pts[:, 0], order) * moments)
        @ act.hermite_coefficients(tau * pts[:, 0], order).T
        for tau in model.taus
    )
    assert model.truncation_order(8.0) < order
    assert np.max(np.abs(truncated - reference)) <= 1e-10 * 7.5**2


def test_kernel_is_positive_semidefinite() -> None:
    model = IsotropicGaussians(40, 0.8, ACTIVATIONS["mmn_nonmonotone"])
    pts = np.linspace(0.01, 8.0, 200)[:, None]
    eig = np.linalg.eigvalsh(model.kernel_features(pts).matrix())
    assert eig.min() > -1e-10 * eig.max()  # round-off of a 200 x 200 eigensolve


def test_potential_is_even_and_smooth_at_zero() -> None:
    """q(a) is even in a; with no knot at 0 (mmn) v is flat at r = 0 (zero velocity there)."""
    model = IsotropicGaussians(40, 0.8, ACTIVATIONS["mmn"])
    r = np.array([[1e-4], [2e-4]])
    v = model.potential(r)
    assert abs(v[1] - v[0]) < 1e-12


def test_model_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match="delta"):
        IsotropicGaussians(40, 1.2, ACTIVATIONS["mmn"])
    with pytest.raises(ValueError, match="integer"):
        IsotropicGaussians(40.5, 0.8, ACTIVATIONS["mmn"])
    with pytest.raises(ValueError, match="kernel_tol"):
        IsotropicGaussians(2, 0.8, ACTIVATIONS["mmn"], kernel_tol=1e-14).truncation_order(8.0)


def test_unit_slope_matches_finite_differences(rng: np.random.Generator) -> None:
    """grad_theta s(<theta, x>) = s'(<theta, x>) x, away from the kinks."""
    import array_api_compat.numpy as xp

    model = IsotropicGaussians(8, 0.8, ACTIVATIONS["mmn_nonmonotone"])
    x, _ = _sample(model, rng, 50)
    theta = rng.standard_normal((3, 8)) * 0.3
    value, slope = model.unit_and_slope(x, theta, xp)
    np.testing.assert_allclose(value, model.unit(x, theta, xp))
    step = 1e-6
    for j in range(8):
        shifted = theta.copy()
        shifted[:, j] += step
        fd = (model.unit(x, shifted, xp) - value) / step
        z = x @ theta.T
        away = np.min(np.abs(z[..., None] - model.activation.t), axis=-1) > 10 * step * 8
        # piecewise linear: the difference quotient is exact unless a kink lies in between
        np.testing.assert_allclose(fd[away], (slope * x[:, None, j])[away], rtol=0, atol=1e-6)


def test_sgd_noise_rate_is_the_variance_of_one_step_kick(rng: np.random.Generator) -> None:
    """``sgd_noise_rate`` (Monte Carlo over radial laws and directions) against the kick that one
    SGD step (B = 1, unit outputs and slopes from the particle code's ``forward``) gives to
    ``<phi, mu_N>`` for N units drawn from the law:
    ``(1/N) sum_i phi'(r_i) <theta_i / r_i, g_i>`` with ``g_i = (y - y_hat) s'(<theta_i, x>) x``,
    whose variance over x at large N is the rate (SPEC section 5, divided by (2 eps)^2)."""
    from meanfield.grid import Grid
    from meanfield.model import ScaledChiLaw, initial_density

    model = IsotropicGaussians(d=20, delta=0.6, activation=ACTIVATIONS["mmn"])
    law = ScaledChiLaw(kappa=1.2, d=20)
    grid = Grid(((0.0, 4.0),), (800,))
    density = initial_density(law, grid)
    r_c = grid.centres()
    phi = r_c**2  # phi'(r) = 2 r
    rate = model.sgd_noise_rate(grid.edges(), density, phi, rng, n_samples=6000)

    n_units, n_inputs = 4000, 6000
    theta = law.sample(rng, (1, n_units))  # (1, N, d)
    r = np.linalg.norm(theta, axis=-1)
    y = np.where(rng.random(n_inputs) < 0.5, 1.0, -1.0)
    x = rng.standard_normal((n_inputs, 20)) * np.where(y > 0, 1.6, 0.4)[:, None]
    kicks = np.empty(n_inputs)
    for start in range(0, n_inputs, 500):  # chunks of inputs, one SGD step each
        xs = x[None, start : start + 500, :]
        values, slope = model.forward(xs, theta, np)
        coef = (y[None, start : start + 500] - values.mean(axis=-1))[..., None]
        # per input b: grad_i = coef_b s'_ib x_b; project on the radial direction of unit i
        along = xs @ np.swapaxes(theta / r[..., None], -1, -2)  # <x_b, theta_i / r_i>
        kicks[start : start + 500] = np.mean(coef * slope * along * (2.0 * r[:, None, :]), axis=-1)[
            0
        ]
    measured = np.var(kicks, ddof=1)
    print(f"rate {rate:.5g}, one-step kick variance {measured:.5g}")
    # both sides are Monte Carlo over ~6000 inputs: relative standard error of a variance of a
    # heavy-tailed (kurtosis ~ 10) variable is sqrt((kurt - 1) / n) ~ 4 %; the finite N = 4000
    # units add O(1/N) to the kick variance. 15 % is about 3 combined standard errors.
    assert measured == pytest.approx(rate, rel=0.15)
    assert rate > 0
