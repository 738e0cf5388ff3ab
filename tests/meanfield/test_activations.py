"""Closed-form Gaussian integrals of the piecewise-linear activations, against quadrature."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, special

from meanfield.model import ACTIVATIONS, PiecewiseLinear
from meanfield.model.integrals.hermite import CRAMER_BOUND, cosine_moments, hermite_functions

# quad warns of round-off once it reaches its 1e-14 target; the tolerances below allow for it
pytestmark = pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")

NAMES = sorted(ACTIVATIONS)
A_VALUES = [1e-3, 0.05, 0.3, 1.0, 2.5, 14.4]  # 14.4 = tau_+ r_max of the shipped config


def _gauss_quad(fn, a: float, act: PiecewiseLinear) -> float:
    """E[fn(G)] by adaptive quadrature with the kinks t_i / a as break points."""
    kinks = [t / a for t in act.t if abs(t / a) < 40]
    value, _ = integrate.quad(
        lambda g: fn(g) * math.exp(-0.5 * g * g) / math.sqrt(2 * math.pi),
        -40,
        40,
        points=kinks or None,
        limit=400,
        epsabs=1e-14,
        epsrel=1e-13,
    )
    return value


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("a", A_VALUES)
def test_gaussian_mean_matches_quadrature(name: str, a: float) -> None:
    act = ACTIVATIONS[name]
    expected = _gauss_quad(lambda g: float(act(np.array(a * g))), a, act)
    # quad with epsabs 1e-14 over a function bounded by 7.5: agreement to ~1e-13
    np.testing.assert_allclose(act.gaussian_mean(np.array([a])), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("a", A_VALUES)
def test_hermite_coefficients_match_quadrature(name: str, a: float) -> None:
    act = ACTIVATIONS[name]
    k_max = 6
    coeffs = act.hermite_coefficients(np.array([a]), k_max)[0]
    for k in range(k_max + 1):
        norm = math.sqrt(math.factorial(k))
        expected = _gauss_quad(
            lambda g, k=k, norm=norm: (
                float(act(np.array(a * g))) * special.eval_hermitenorm(k, g) / norm
            ),
            a,
            act,
        )
        # He_k grows like g^k: quad's absolute error stays near 1e-12 for k <= 6
        np.testing.assert_allclose(coeffs[k], expected, rtol=0, atol=5e-12, err_msg=f"k = {k}")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("a", A_VALUES)
def test_second_moment_matches_quadrature(name: str, a: float) -> None:
    act = ACTIVATIONS[name]
    expected = _gauss_quad(lambda g: float(act(np.array(a * g))) ** 2, a, act)
    # s^2 <= 56.25: quad's relative accuracy 1e-13 gives ~1e-11 absolute at worst
    np.testing.assert_allclose(
        act.gaussian_second_moment(np.array([a])), expected, rtol=1e-12, atol=1e-11
    )


@pytest.mark.parametrize("name", NAMES)
def test_mehler_series_matches_bivariate_quadrature(name: str) -> None:
    """sum_k c^k F_k(a) F_k(b) = E[s(aG) s(bG')], corr(G, G') = c, by 2-D quadrature."""
    act = ACTIVATIONS[name]
    a, b, c = 1.3, 0.7, 0.6
    coeffs = act.hermite_coefficients(np.array([a, b]), 400)
    series = float(np.sum(c ** np.arange(401) * coeffs[0] * coeffs[1]))
    # G' = c G + sqrt(1 - c^2) Z: integrate the inner expectation over Z by quadrature
    root = math.sqrt(1 - c * c)

    def inner(g: float) -> float:
        kinks = [(t / b - c * g) / root for t in act.t]

        def fz(z: float) -> float:
            return float(act(np.array(b * (c * g + root * z)))) * math.exp(-0.5 * z * z)

        val = integrate.quad(fz, -12, 12, points=kinks, limit=200, epsabs=1e-13)[0]
        return float(act(np.array(a * g))) * val / math.sqrt(2 * math.pi)

    expected = _gauss_quad(inner, a, act)
    # c^401 < 1e-88 truncation; nested quad accurate to ~1e-10
    np.testing.assert_allclose(series, expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_parseval_remainder_shrinks_to_zero(name: str) -> None:
    """sum_k F_k(a)^2 <= E[s(aG)^2] and the gap shrinks as more orders are kept."""
    act = ACTIVATIONS[name]
    a = np.array([0.4, 1.5, 6.0])
    coeffs = act.hermite_coefficients(a, 2000)
    remainder = act.gaussian_second_moment(a)[:, None] - np.cumsum(coeffs**2, axis=1)
    assert np.all(remainder[:, -1] > -1e-10)  # round-off of a sum of 2000 squares
    assert np.all(np.diff(remainder, axis=1) <= 1e-12)
    assert np.all(remainder[:, 2000] < 0.01 * remainder[:, 10])


def test_hermite_functions_match_scipy() -> None:
    x = np.linspace(-6, 6, 41)
    psi = hermite_functions(x, 12)
    for n in range(13):
        expected = (
            special.eval_hermitenorm(n, x)
            * np.exp(-0.5 * x * x)
            / math.sqrt(2 * math.pi * math.factorial(n))
        )
        np.testing.assert_allclose(psi[n], expected, rtol=1e-12, atol=1e-15)


def test_hermite_functions_obey_cramer_bound() -> None:
    x = np.linspace(-50, 50, 2001)
    psi = hermite_functions(x, 3000)
    assert np.all(np.isfinite(psi))
    assert np.max(np.abs(psi)) <= CRAMER_BOUND


@pytest.mark.parametrize("d", [3, 5, 40])
def test_cosine_moments_match_density(d: int) -> None:
    """E[c^k] against the density (1 - c^2)^((d - 3)/2) on [-1, 1], normalised numerically."""
    moments = cosine_moments(d, 8)

    def dens(c: float) -> float:
        return (1 - c * c) ** ((d - 3) / 2)

    norm = integrate.quad(dens, -1, 1)[0]
    for k in range(9):
        expected = integrate.quad(lambda c, k=k: c**k * dens(c), -1, 1)[0] / norm
        np.testing.assert_allclose(moments[k], expected, rtol=1e-10, atol=1e-14)


def test_cosine_moments_match_sampled_directions(rng: np.random.Generator) -> None:
    d, n = 7, 400_000
    u = rng.standard_normal((n, d))
    v = rng.standard_normal((n, d))
    c = np.sum(u * v, axis=1) / np.linalg.norm(u, axis=1) / np.linalg.norm(v, axis=1)
    for k in (2, 4):
        se = np.std(c**k) / math.sqrt(n)
        assert abs(np.mean(c**k) - cosine_moments(d, 4)[k]) < 5 * se  # 5 sigma: fails w.p. 6e-7


def test_cosine_moments_vanish_at_infinite_d() -> None:
    np.testing.assert_array_equal(cosine_moments(math.inf, 6), [1, 0, 0, 0, 0, 0, 0])


def test_piecewise_linear_rejects_bad_knots() -> None:
    with pytest.raises(ValueError, match="increasing"):
        PiecewiseLinear(((1.0, 0.0), (0.5, 1.0)))
    with pytest.raises(ValueError, match="at least 2"):
        PiecewiseLinear(((1.0, 0.0),))


def test_activation_values_and_derivative() -> None:
    act = ACTIVATIONS["mmn_nonmonotone"]
    x = np.array([-1.0, 0.0, 0.25, 0.5, 1.0, 1.5, 3.0])
    np.testing.assert_allclose(act(x), [-2.5, -2.5, -3.25, -4.0, 1.75, 7.5, 7.5])
    np.testing.assert_allclose(
        act.derivative(np.array([-1.0, 0.25, 1.0, 2.0])), [0.0, -3.0, 11.5, 0.0]
    )
