"""The closed forms of the Gaussian-kernel model on the sphere (RVE Experiment 1).

The series for ``h^(k)`` against SciPy's Bessel functions and the exact ``d = 3`` case; ``K``,
``F``, ``E f^2`` and the loss against independent Monte Carlo; the centre gradients against
finite differences; the array-API cleanliness of the math under ``array_api_strict``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special

from meanfield.backends import get_backend, to_numpy
from meanfield.model.rve.pspin import sphere_sixth_moment_pairings
from meanfield.model.rve.sphere_kernel import MAX_ORDER, SphereKernel
from meanfield.rng import CounterRNG

D, ALPHA = 5, 1.0
NUMPY = get_backend("numpy")


def _sphere(rng: np.random.Generator, shape: tuple[int, ...], d: int = D) -> np.ndarray:
    g = rng.standard_normal((*shape, d))
    return math.sqrt(d) * g / np.linalg.norm(g, axis=-1, keepdims=True)


def _bessel_form(d: int, s: np.ndarray, k: int) -> np.ndarray:
    """``h^(k) = d^k Gamma(nu+1) 2^nu s^(-nu-k) I_{nu+k}(s)``, scaled Bessel from SciPy."""
    nu = d / 2 - 1
    return (
        d**k * special.gamma(nu + 1) * 2**nu * s ** (-nu - k) * special.ive(nu + k, s) * np.exp(s)
    )


@pytest.mark.parametrize(("d", "alpha"), [(5, 1.0), (3, 2.0), (10, 0.5), (4, 1.5)])
def test_series_matches_scipy_bessel_from_zero_to_the_largest_argument(
    d: int, alpha: float
) -> None:
    model = SphereKernel(d, alpha)
    task = model.task(NUMPY.asarray)
    s_max = 2 * alpha * d  # two equal centres
    s = np.array([1e-6, 1e-3, 0.1, 0.5, 1.0, 3.0, 0.5 * s_max, 0.9 * s_max, s_max])
    u = s**2 / (2 * d)
    for k in range(MAX_ORDER + 1):
        # positive-term Horner: a few ulps per term (23-40 terms); ive is good to ~1e-15
        np.testing.assert_allclose(task.radial(u, k, np), _bessel_form(d, s, k), rtol=1e-13)
        at_zero = (d / 2) ** k * math.gamma(d / 2) / math.gamma(d / 2 + k)  # s -> 0 limit
        # the coefficients come from exp(gammaln(...)): a few ulps
        np.testing.assert_allclose(task.radial(np.zeros(1), k, np), [at_zero], rtol=1e-14)
    assert model.series_coefficients().shape[0] == MAX_ORDER + 1


def test_series_is_exact_for_d3_where_the_mgf_is_sinh_s_over_s() -> None:
    d, alpha = 3, 1.0
    task = SphereKernel(d, alpha).task(NUMPY.asarray)
    s = np.linspace(0.5, 2 * alpha * d, 40)
    u = s**2 / (2 * d)
    np.testing.assert_allclose(task.radial(u, 0, np), np.sinh(s) / s, rtol=1e-14)
    # h'(u) = (d/s) d/ds (sinh s / s); cancellation-free for s >= 0.5 in float64 (to 1e-14)
    slope = (d / s) * (np.cosh(s) / s - np.sinh(s) / s**2)
    np.testing.assert_allclose(task.radial(u, 1, np), slope, rtol=1e-13)
    tiny = np.array([1e-6, 1e-3])  # no cancellation near s = 0 either
    np.testing.assert_allclose(
        task.radial(tiny**2 / (2 * d), 0, np), np.sinh(tiny) / tiny, rtol=1e-15
    )


def test_series_length_is_sized_for_the_largest_argument() -> None:
    model = SphereKernel(D, ALPHA)
    coef = model.series_coefficients()
    n_terms, z, nu = coef.shape[1], model.max_z, model.nu
    sums = (coef * z ** np.arange(n_terms)).sum(axis=1)
    # the whole dropped tail is below 1e-17 of each sum: from the first dropped term on, terms
    # fall by at least the ratio r = z / ((M + 1) (M + nu + 1)), so tail <= first / (1 - r)
    k = np.arange(MAX_ORDER + 1)
    first_dropped = np.exp(
        k * math.log(D / 2)
        + special.gammaln(nu + 1)
        - special.gammaln(n_terms + 1)
        - special.gammaln(n_terms + nu + k + 1)
        + n_terms * math.log(z)
    )
    ratio = z / ((n_terms + 1) * (n_terms + nu + 1))
    assert ratio < 0.5
    assert np.all(first_dropped / (1 - ratio) / sums < 1e-17)
    assert SphereKernel(D, 3.0).series_coefficients().shape[1] > n_terms


def test_target_square_mean_exact_cases_and_monte_carlo(rng: np.random.Generator) -> None:
    assert len(set(sphere_sixth_moment_pairings())) == 15
    d = D
    model = SphereKernel(d, ALPHA, teacher_seed=3)
    # a = e1 e1 e1: f = x1^3 / d and E x1^6 = 15 d^3 / (d (d+2) (d+4)) on the sphere
    single = np.zeros((d, d, d))
    single[0, 0, 0] = 1.0
    assert model.target_square_mean(single) == pytest.approx(15 / ((d + 2) * (d + 4)), rel=1e-14)
    # the teacher, against Monte Carlo: 5 standard errors
    tensor = model.pspin.teacher()
    x = _sphere(rng, (400_000,), d)
    f2 = model.pspin.target(x, tensor, np) ** 2
    se = f2.std() / math.sqrt(f2.size)
    assert abs(model.target_square_mean(tensor) - f2.mean()) < 5 * se


def test_kernel_and_projection_match_monte_carlo(rng: np.random.Generator) -> None:
    model = SphereKernel(D, ALPHA, teacher_seed=1)
    task = model.task(NUMPY.asarray)
    y = _sphere(rng, (4,))
    y = np.concatenate([y, y[:1], -y[1:2]])  # a repeated centre (s = 2 alpha d), an antipodal
    x = _sphere(rng, (400_000,))
    phi = np.exp(-0.5 * ALPHA * np.sum((x[:, None, :] - y[None]) ** 2, axis=-1))
    f = model.pspin.target(x, task.tensor, np)
    products = phi[:, :, None] * phi[:, None, :]
    # 5 Monte Carlo standard errors per entry (plus round-off for the near-zero entries)
    se = products.std(axis=0) / math.sqrt(x.shape[0])
    assert np.all(np.abs(task.kernel(y, np) - products.mean(axis=0)) < 5 * se + 1e-12)
    weighted = f[:, None] * phi
    se = weighted.std(axis=0) / math.sqrt(x.shape[0])
    assert np.all(np.abs(task.projection(y, np) - weighted.mean(axis=0)) < 5 * se + 1e-12)


def _central_difference(fn, y: np.ndarray, i: int, h: float) -> np.ndarray:
    """``d fn(y) / d y_i`` by central differences, one coordinate at a time: ``(..., d)``."""
    out = []
    for a in range(y.shape[-1]):
        step = np.zeros_like(y)
        step[i, a] = h
        out.append((fn(y + step) - fn(y - step)) / (2 * h))
    return np.stack(out, axis=-1)


def test_centre_gradients_match_finite_differences(rng: np.random.Generator) -> None:
    task = SphereKernel(D, ALPHA, teacher_seed=2).task(NUMPY.asarray)
    y = _sphere(rng, (5,))
    grad_k = task.kernel_gradient(y, np)  # (N, N, d): d K_ij / d y_i
    _, grad_f = task.projection_gradient(y, np)
    h = 1e-5  # central differences: O(h^2) ~ 1e-10 truncation, ~1e-11 round-off / h
    for i in range(y.shape[0]):
        # K_ij for j != i depends on y_i through its first argument only; K_ii through both
        numeric = _central_difference(lambda yy, i=i: task.kernel(yy, np)[i], y, i, h)
        expected = grad_k[i].copy()
        expected[i] *= 2.0
        np.testing.assert_allclose(numeric, expected, rtol=1e-7, atol=1e-10)
        numeric_f = _central_difference(lambda yy, i=i: task.projection(yy, np)[i], y, i, h)
        np.testing.assert_allclose(numeric_f, grad_f[i], rtol=1e-7, atol=1e-10)


def test_loss_and_its_gradient(rng: np.random.Generator) -> None:
    model = SphereKernel(D, ALPHA, teacher_seed=0)
    task = model.task(NUMPY.asarray)
    n = 6
    c = 20 * rng.standard_normal(n)
    y = _sphere(rng, (n,))
    loss, grad_c, grad_y = task.loss_gradient(c, y, np)
    assert float(task.loss(c, y, np)) == pytest.approx(float(loss), rel=1e-14)
    # against an independent Monte Carlo of (1/2) E (f - f_n)^2: 5 standard errors
    x = _sphere(rng, (400_000,))
    half_sq = 0.5 * (task.predict(x, c, y, np) - model.pspin.target(x, task.tensor, np)) ** 2
    assert abs(float(loss) - half_sq.mean()) < 5 * half_sq.std() / math.sqrt(x.shape[0])
    # and against the chunked test loss of the model (its own standard error)
    counter = CounterRNG.from_seed(5, 1, np)
    test = task.test_loss(c[None], y[None], counter, 300_000, np, chunk=70_000)
    assert abs(float(loss) - float(test["loss"][0])) < 5 * float(test["loss_se"][0])
    h = 1e-5  # central differences, as above
    for i in range(n):
        dc = np.zeros(n)
        dc[i] = h
        numeric = (task.loss(c + dc, y, np) - task.loss(c - dc, y, np)) / (2 * h)
        assert float(numeric) == pytest.approx(float(grad_c[i]), rel=1e-7, abs=1e-10)
        numeric_y = _central_difference(lambda yy: task.loss(c, yy, np), y, i, h)
        np.testing.assert_allclose(numeric_y, grad_y[i], rtol=1e-6, atol=1e-9)


def test_math_is_array_api_clean(rng: np.random.Generator) -> None:
    """K, F, the loss, its gradient and the test loss under ``array_api_strict``."""
    strict = get_backend("array_api_strict")
    model = SphereKernel(D, ALPHA, teacher_seed=4)
    c = rng.standard_normal((2, 7))
    y = _sphere(rng, (2, 7))
    results = []
    for backend in (NUMPY, strict):
        xp = backend.xp
        task = model.task(backend.asarray)
        cc, yy = backend.asarray(c), backend.asarray(y)
        counter = CounterRNG.from_seed(0, 2, xp, backend.asarray)
        out = [
            task.kernel(yy, xp),
            task.projection(yy, xp),
            *task.loss_gradient(cc, yy, xp),
            task.loss(cc, yy, xp),
            task.test_loss(cc, yy, counter, 3000, xp, chunk=1024)["loss"],
        ]
        results.append([to_numpy(a) for a in out])
    for ours, theirs in zip(*results, strict=True):
        # same elementwise math library, different reduction order: round-off only
        np.testing.assert_allclose(theirs, ours, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    ("d", "alpha"), [(1, 1.0), (5, 0.0), (5, -1.0), (True, 1.0), (5, float("nan"))]
)
def test_bad_parameters_are_rejected(d: object, alpha: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        SphereKernel(d, alpha)  # type: ignore[arg-type]
