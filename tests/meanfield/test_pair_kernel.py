"""The exact pair kernel in closed form (bivariate normal orthants) against independent checks.

* the orthant probability against adaptive quadrature of its one-dimensional integral;
* ``G = E[s(aX) s(bY)]`` against quadrature, its derivatives against finite differences;
* the closed form against the Mehler series where the series converges (``|c| <= 0.9``);
* the closed form against Monte Carlo in ``R^d`` at ``|c| = 0.99`` and ``0.999``, where the
  series would need thousands of terms;
* the population risk and gradient (Mehler below ``|c| = 1/2``, closed form above) against the
  pure series, and on the array-API-strict backend against NumPy.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, special

from meanfield.backends import get_backend, to_numpy
from meanfield.model import ACTIVATIONS, AnisotropicGaussians, IsotropicGaussians
from meanfield.model.integrals.bivariate import orthant, pair_moments
from meanfield.model.mmn.isotropic_pairs import pair_order

NUMPY = get_backend("numpy")
CORRELATIONS = (
    -0.99999,
    -0.999,
    -0.99,
    -0.95,
    -0.93,
    -0.9,
    -0.5,
    -0.1,
    0.0,
    0.2,
    0.7,
    0.92,
    0.925,
    0.93,
    0.97,
    0.99,
    0.999,
    0.99999,
)


def _orthant_by_quadrature(h: float, k: float, c: float) -> float:
    """``P(X > h, Y > k) = int_h^inf phi(x) Phibar((k - c x)/sqrt(1 - c^2)) dx``."""
    sigma = math.sqrt((1.0 - c) * (1.0 + c))

    def integrand(x: float) -> float:
        return math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi) * special.ndtr((c * x - k) / sigma)

    upper = max(h, 0.0) + 40.0
    # near |c| = 1 the integrand steps from 0 to 1 over a width sigma around x = k / c: split
    # the range there so the adaptive rule sees the step
    edges = [h, upper]
    if c != 0:
        edges += [k / c + m * sigma for m in (-30.0, 30.0)]
    edges = sorted(e for e in set(edges) if h <= e <= upper)
    return sum(
        integrate.quad(integrand, lo, hi, epsabs=1e-17, epsrel=1e-13, limit=400)[0]
        for lo, hi in zip(edges[:-1], edges[1:], strict=True)
    )


@pytest.mark.parametrize("c", CORRELATIONS)
def test_orthant_matches_quadrature(c: float, rng: np.random.Generator) -> None:
    hk = np.concatenate(
        [rng.uniform(-3.0, 3.0, (6, 2)), [[0.5, 0.5], [1.0, -1.0], [-2.0, -2.0], [2.5, 2.4]]]
    )
    ours = to_numpy(orthant(hk[:, 0], hk[:, 1], np.full(len(hk), c), NUMPY))
    reference = [_orthant_by_quadrature(h, k, c) for h, k in hk]
    # Genz's rule reaches about 1e-15 absolute; the quadrature is asked for 1e-16
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-14)


def _g_by_quadrature(act, a: float, b: float, c: float) -> float:
    """``E[s(aX) E[s(bY) | X]]``, the inner expectation in closed form (a smooth function),
    the outer by quadrature split at the kinks of ``s(aX)``."""
    sigma = math.sqrt((1.0 - c) * (1.0 + c))

    def conditional(x: float) -> float:
        mu, scale = b * c * x, b * sigma
        out = act.left_value
        for t, jump in zip(act.t, act.jumps, strict=True):
            m = (mu - t) / scale
            out += jump * (
                (mu - t) * special.ndtr(m) + scale * math.exp(-0.5 * m * m) / math.sqrt(2 * math.pi)
            )
        return out

    def integrand(x: float) -> float:
        return (
            math.exp(-0.5 * x * x)
            / math.sqrt(2 * math.pi)
            * float(act(np.array(a * x)))
            * conditional(x)
        )

    breaks = [-np.inf, *sorted(t / a for t in act.t), np.inf]
    return sum(
        integrate.quad(integrand, lo, hi, epsabs=1e-15, epsrel=1e-13, limit=400)[0]
        for lo, hi in zip(breaks[:-1], breaks[1:], strict=True)
    )


@pytest.mark.parametrize("activation", ["mmn", "mmn_nonmonotone"])
@pytest.mark.parametrize(
    ("a", "b", "c"),
    [(0.3, 1.2, 0.5), (1.5, 1.5, 0.99), (0.8, 2.0, -0.97), (2.0, 0.7, 0.2), (1.1, 1.0, 0.999)],
)
def test_pair_moments_match_quadrature_and_differences(
    activation: str, a: float, b: float, c: float
) -> None:
    act = ACTIVATIONS[activation]
    value, d_a, d_c = (
        float(v) for v in pair_moments(act, np.array(a), np.array(b), np.array(c), NUMPY)
    )
    assert value == pytest.approx(_g_by_quadrature(act, a, b, c), rel=1e-12, abs=1e-12)
    # central differences of the closed form: truncation h^2 |G'''| / 6 ~ 1e-9, round-off
    # 1e-16 / h ~ 1e-11
    h = 1e-4
    diff_a = float(pair_moments(act, np.array(a + h), np.array(b), np.array(c), NUMPY)[0]) - float(
        pair_moments(act, np.array(a - h), np.array(b), np.array(c), NUMPY)[0]
    )
    c_step = min(h, 0.5 * (1 - abs(c)))
    diff_c = float(
        pair_moments(act, np.array(a), np.array(b), np.array(c + c_step), NUMPY)[0]
    ) - float(pair_moments(act, np.array(a), np.array(b), np.array(c - c_step), NUMPY)[0])
    assert d_a == pytest.approx(diff_a / (2 * h), rel=1e-6, abs=1e-7)
    assert d_c == pytest.approx(diff_c / (2 * c_step), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("activation", ["mmn", "mmn_nonmonotone"])
def test_closed_form_agrees_with_the_mehler_series_where_it_converges(activation: str) -> None:
    """``sum_k c^k F_k(a) F_k(b)`` and its derivatives, cut where ``|c|^(K+1) <= 1e-14``."""
    act = ACTIVATIONS[activation]
    c = np.array([-0.9, -0.6, -0.2, 0.0, 0.3, 0.75, 0.9])
    a, b = 1.3, 0.45
    order = pair_order(0.9, 1e-14)
    fa = act.hermite_coefficients(np.array(a), order + 2)
    fb = act.hermite_coefficients(np.array(b), order + 2)
    slope_a = act.hermite_derivatives(fa, np.array(a))
    k = np.arange(order + 1)
    powers = c[:, None] ** k
    series = powers @ (fa[: order + 1] * fb[: order + 1])
    series_a = powers @ (slope_a * fb[: order + 1])
    series_c = (k[1:] * c[:, None] ** (k[1:] - 1)) @ (fa[1 : order + 1] * fb[1 : order + 1])
    value, d_a, d_c = pair_moments(act, np.full_like(c, a), np.full_like(c, b), c, NUMPY)
    scale = max(abs(act.left_value), 7.5) ** 2  # max s^2: the bound on both forms
    np.testing.assert_allclose(value, series, rtol=0, atol=1e-10 * scale)
    np.testing.assert_allclose(d_a, series_a, rtol=0, atol=1e-10 * scale)
    np.testing.assert_allclose(d_c, series_c, rtol=0, atol=1e-10 * scale)


@pytest.mark.parametrize("c", [0.99, 0.999, -0.999])
def test_closed_form_matches_monte_carlo_in_the_full_space(c: float, global_seed: int) -> None:
    """Two units at cosine ``c`` in ``R^40``, inputs ``x ~ N(0, I)``: the mean of
    ``s(<w, x>) s(<w', x>)`` over 4e5 inputs within 3 standard errors of ``G(|w|, |w'|, c)``."""
    rng = np.random.default_rng(global_seed)
    act = ACTIVATIONS["mmn_nonmonotone"]
    d, n = 40, 400_000
    e1, e2 = np.eye(d)[0], np.eye(d)[1]
    w = 1.4 * e1
    w2 = 1.1 * (c * e1 + math.sqrt(1 - c * c) * e2)
    x = rng.standard_normal((n, d))
    samples = act(x @ w) * act(x @ w2)
    mean, se = samples.mean(), samples.std(ddof=1) / math.sqrt(n)
    value = float(pair_moments(act, np.array(1.4), np.array(1.1), np.array(c), NUMPY)[0])
    assert abs(mean - value) < 3 * se, (mean, value, se)


def _aligned_units(rng: np.random.Generator, d: int, n: int) -> np.ndarray:
    """Random units, and in each replica two pairs set to cosines 0.93 and -0.9."""
    theta = rng.standard_normal((2, n, d)) * 0.8 / math.sqrt(d)
    for first, second, cosine, scale in ((0, 1, 0.93, 1.3), (3, 2, -0.9, 0.7)):
        for rep in range(2):
            u = theta[rep, first] / np.linalg.norm(theta[rep, first])
            other = rng.standard_normal(d)
            other -= (other @ u) * u
            other /= np.linalg.norm(other)
            radius = scale * np.linalg.norm(theta[rep, first])
            theta[rep, second] = radius * (cosine * u + math.sqrt(1 - cosine**2) * other)
    return theta


@pytest.mark.parametrize("kind", ["isotropic", "anisotropic"])
def test_risk_and_gradient_match_the_pure_series(kind: str, rng: np.random.Generator) -> None:
    if kind == "isotropic":
        model, d = IsotropicGaussians(40, 0.8, ACTIVATIONS["mmn_nonmonotone"]), 40
    else:
        model, d = AnisotropicGaussians(12, 3, 0.6, ACTIVATIONS["mmn"], kernel_tol=1e-10), 12
    theta = _aligned_units(rng, d, 30)
    c_max = model.max_pair_cosine(theta, np)
    assert 0.8 < c_max < 0.99  # pairs on both sides of the split (whitening moves them)
    order = pair_order(c_max, 1e-13)
    # both within kernel_tol max s^2 / N^2 of the exact risk: 1e-10 leaves a margin
    np.testing.assert_allclose(
        model.population_risk(theta, None, NUMPY),
        model.population_risk(theta, order, NUMPY),
        rtol=0,
        atol=1e-10,
    )
    reference = model.population_gradient(theta, order, NUMPY)
    np.testing.assert_allclose(
        model.population_gradient(theta, None, NUMPY),
        reference,
        rtol=0,
        atol=1e-9 * np.max(np.abs(reference)),
    )


def test_pair_kernel_on_the_strict_backend(rng: np.random.Generator) -> None:
    """The split evaluation (masks, gathers, closed form) is array-API code."""
    strict = get_backend("array_api_strict")
    model = IsotropicGaussians(20, 0.7, ACTIVATIONS["mmn"])
    theta = _aligned_units(rng, 20, 12)
    risk = model.population_risk(strict.asarray(theta), None, strict)
    grad = model.population_gradient(strict.asarray(theta), None, strict)
    np.testing.assert_allclose(
        to_numpy(risk), model.population_risk(theta, None, NUMPY), rtol=1e-13
    )
    np.testing.assert_allclose(
        to_numpy(grad), model.population_gradient(theta, None, NUMPY), rtol=1e-12, atol=1e-14
    )


def test_parallel_units_have_a_finite_exact_risk() -> None:
    """Two identical units (c = 1): the pure series diverges, the closed form does not; the
    risk equals that of one unit, ``r_# + 2 V + U(w, w)``. (``k - c h`` is formed without
    cancellation: the naive form loses 1e-9 here.)"""
    model = IsotropicGaussians(10, 0.8, ACTIVATIONS["mmn"])
    w = np.full((1, 1, 10), 0.3)
    twice = np.concatenate([w, w], axis=1)
    np.testing.assert_allclose(
        model.population_risk(twice, None, NUMPY), model.population_risk(w, None, NUMPY), rtol=1e-12
    )


@pytest.mark.parametrize("c", [-0.99999, -0.95, 0.5, 0.95, 0.99999])
def test_orthant_at_extreme_arguments(c: float) -> None:
    """Units near the origin give ``t / a`` of 40 and more: no overflow (the test run turns
    RuntimeWarnings of meanfield into errors), and the tails are right to 1e-15."""
    hk = np.array(
        [
            [38.0, -40.0],
            [-40.0, 38.0],
            [-45.0, -44.0],
            [40.0, 41.0],
            [6.0, -7.5],
            [-6.0, 7.5],
            [0.3, -40.0],
        ]
    )
    ours = to_numpy(orthant(hk[:, 0], hk[:, 1], np.full(len(hk), c), NUMPY))
    reference = [_orthant_by_quadrature(h, k, c) for h, k in hk]
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-15)


@pytest.mark.parametrize("c", [-0.999, 0.3, 0.9999])
def test_smooth_pair_moments_match_erf_closed_form(c: float) -> None:
    """``E[erf(aX) erf(bY)] = (2/pi) asin(2abc / sqrt((1 + 2a^2)(1 + 2b^2)))`` (Williams)."""
    from meanfield.model.integrals.bivariate import smooth_pair_moments
    from meanfield.model.integrals.smooth import SMOOTH_ACTIVATIONS

    act = SMOOTH_ACTIVATIONS["erf"]
    for a, b in ((0.5, 1.0), (1.0, 0.7), (1.0, 1.0)):
        exact = (
            2 / math.pi * math.asin(2 * a * b * c / math.sqrt((1 + 2 * a * a) * (1 + 2 * b * b)))
        )
        value, d_a, d_c = (
            float(v)
            for v in smooth_pair_moments(
                act.fn, act.derivative_fn, np.array(a), np.array(b), np.array(c), 64, NUMPY
            )
        )
        assert value == pytest.approx(exact, abs=1e-12)
        h = 1e-5  # the derivatives of the closed form by central differences (1e-9)
        exact_a = (
            2
            / math.pi
            * math.asin(2 * (a + h) * b * c / math.sqrt((1 + 2 * (a + h) ** 2) * (1 + 2 * b * b)))
            - 2
            / math.pi
            * math.asin(2 * (a - h) * b * c / math.sqrt((1 + 2 * (a - h) ** 2) * (1 + 2 * b * b)))
        ) / (2 * h)
        assert d_a == pytest.approx(exact_a, abs=1e-8)
        scale = 2 * a * b / math.sqrt((1 + 2 * a * a) * (1 + 2 * b * b))
        assert d_c == pytest.approx(2 / math.pi * scale / math.sqrt(1 - (scale * c) ** 2), rel=1e-9)


@pytest.mark.parametrize(
    ("name", "scale", "n_nodes"), [("tanh", 0.7, 64), ("tanh", 1.0, 128), ("softplus", 1.0, 64)]
)
def test_smooth_pair_moments_match_quadrature(name: str, scale: float, n_nodes: int) -> None:
    """The node counts that reach 1e-12 at every correlation for units up to ``scale``
    (tanh's poles at +-i pi/2 make it the slowest of the three)."""
    from meanfield.model.integrals.bivariate import smooth_pair_moments
    from meanfield.model.integrals.smooth import SMOOTH_ACTIVATIONS

    act = SMOOTH_ACTIVATIONS[name]
    for a, b, c in ((0.5 * scale, scale, 0.3), (scale, scale, 0.9999), (scale, 0.8 * scale, -0.99)):
        sigma = math.sqrt((1 - c) * (1 + c))

        def integrand(z: float, x: float, a=a, b=b, c=c, sigma=sigma) -> float:
            return (
                math.exp(-0.5 * (x * x + z * z))
                / (2 * math.pi)
                * float(act(np.array(a * x)))
                * float(act(np.array(b * (c * x + sigma * z))))
            )

        reference = integrate.dblquad(integrand, -12, 12, -12, 12, epsabs=1e-14, epsrel=1e-13)[0]
        value = float(
            smooth_pair_moments(
                act.fn, act.derivative_fn, np.array(a), np.array(b), np.array(c), n_nodes, NUMPY
            )[0]
        )
        assert value == pytest.approx(reference, abs=1e-12)
