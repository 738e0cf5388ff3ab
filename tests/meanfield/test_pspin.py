"""The spherical 3-spin model: target moments, gradients, sampling, SGD and backend parity."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
from scipy import stats

from meanfield.backends import get_backend, to_numpy
from meanfield.model.rve.pspin import PSpin

XP = get_backend("numpy").xp


class NumpyStreams:
    """Stand-in for the counter-based generator: ``(n_streams, *shape)`` normals per call."""

    def __init__(self, seed: int, n_streams: int) -> None:
        self.seed, self.n = seed, n_streams

    def normal(self, counter: int, shape: tuple[int, ...], purpose: int = 0) -> np.ndarray:
        return np.random.default_rng([self.seed, counter, purpose]).standard_normal(
            (self.n, *shape)
        )


def _exact_second_moment(a: np.ndarray) -> float:
    """``E_x f(x)^2`` for one teacher, x uniform on the sphere of radius sqrt(d).

    The sixth moments are ``E[x_i1 ... x_i6] = d^3 / (d (d+2) (d+4)) * sum over the 15
    pairings of Kronecker deltas``. The 6 pairings that match (p, q, r) with (p', q', r')
    give ``<a, a o sigma>`` for the permutations sigma; the 9 that trace one pair on each side
    give ``|v|^2`` with ``v = tr_qr a + tr_pr a + tr_pq a``. With the 1/d^2 of f:
    ``E f^2 = (sum_sigma <a, a o sigma> + |v|^2) / ((d+2)(d+4))``; its mean over teachers
    is ``(d^3 + 6 d^2 + 8 d) / ((d+2)(d+4)) = d``.
    """
    d = a.shape[0]
    cross = sum(np.sum(a * np.transpose(a, p)) for p in itertools.permutations(range(3)))
    v = np.einsum("pqq->p", a) + np.einsum("pqp->q", a) + np.einsum("ppr->r", a)
    return float((cross + v @ v) / ((d + 2) * (d + 4)))


def test_construction_and_teacher() -> None:
    model = PSpin(10, teacher_seed=3)
    assert model.dim == 12
    a = model.teacher()
    assert a.shape == (10, 10, 10)
    np.testing.assert_array_equal(a, PSpin(10, teacher_seed=3).teacher())
    assert not np.array_equal(a, PSpin(10, teacher_seed=4).teacher())
    for bad in (0, -2, 2.5, True):
        with pytest.raises(ValueError, match="d must be"):
            PSpin(bad)


def test_exact_second_moment_averages_to_d() -> None:
    """Averaged over teachers, E_a f(x)^2 = |x|^6 / d^2 = d (the pairing formula is exact)."""
    for d in (10, 25):
        moments = np.array([_exact_second_moment(PSpin(d, k).teacher()) for k in range(400)])
        se = moments.std(ddof=1) / math.sqrt(moments.size)
        # 4.5 standard errors of a 400-teacher mean (two comparisons: false alarm < 1e-4)
        assert abs(moments.mean() - d) < 4.5 * se, (d, moments.mean(), se)


@pytest.mark.parametrize(("d", "teacher_seed"), [(10, 0), (10, 1), (25, 0), (25, 1)])
def test_trivial_predictor_loss_is_about_half_d(d: int, teacher_seed: int) -> None:
    """Loss of f_n = 0, (1/2) E f^2, for one teacher: exact value, Monte Carlo, and d/2.

    The teacher-to-teacher spread (standard deviation) of (1/2) E_x f^2, from 200 teachers with
    the exact formula, is 0.77 (15 % of d/2) at d = 10 and 0.48 (3.8 %) at d = 25. Seen for
    teacher 0: Monte Carlo 4.45 +- 0.04 (exact 4.48) at d = 10, 11.70 +- 0.12 (exact 11.90)
    at d = 25.
    """
    model = PSpin(d, teacher_seed)
    tensor = model.teacher()
    x, y = model.sample_data(NumpyStreams(7, 1), 0, 20_000, tensor, XP)
    half_sq = 0.5 * y[0] ** 2
    mc, mc_se = half_sq.mean(), half_sq.std(ddof=1) / math.sqrt(half_sq.size)
    exact = 0.5 * _exact_second_moment(tensor)
    # Monte Carlo against this teacher's exact value: 4.5 standard errors (false alarm < 1e-5)
    assert abs(mc - exact) < 4.5 * mc_se, (mc, exact, mc_se)
    spread = 0.5 * np.std(
        [_exact_second_moment(PSpin(d, 1000 + k).teacher()) for k in range(200)], ddof=1
    )
    # one teacher is one draw from the teacher law (skewed, chi-square like): 3 spreads
    assert abs(mc - d / 2) < 3 * spread, (mc, d / 2, spread)


def test_target_gradient_matches_finite_differences(rng: np.random.Generator) -> None:
    model = PSpin(6, teacher_seed=2)
    tensor = model.teacher()
    x = 1.3 * rng.standard_normal((5, 6))
    grad = model.target_gradient(x, tensor, XP)
    h = 1e-5
    fd = np.empty_like(x)
    for k in range(6):
        e = np.zeros(6)
        e[k] = h
        fd[:, k] = (model.target(x + e, tensor, XP) - model.target(x - e, tensor, XP)) / (2 * h)
    # central differences of a cubic: truncation h^2 |a| / d ~ 1e-10, round-off ~ 1e-16 |f| / h
    np.testing.assert_allclose(grad, fd, rtol=1e-7, atol=1e-8)


def test_backward_matches_finite_differences(rng: np.random.Generator) -> None:
    """backward = grad_theta of S(theta) = sum_rbi coef_rbi sigma_*(x_rb; theta_ri)."""
    model = PSpin(4)
    r_, b_, n_ = 2, 7, 3
    x = model.inputs_from_normals(rng.standard_normal((r_, b_, 4)), XP)
    theta = rng.standard_normal((r_, n_, model.dim))
    coef = rng.standard_normal((r_, b_, n_))
    _, cache = model.forward(x, theta, XP)
    grad = model.backward(x, theta, cache, coef, XP)
    assert grad.shape == theta.shape

    def total(th: np.ndarray) -> float:
        return float(np.sum(coef * model.forward(x, th, XP)[0]))

    h = 1e-6
    fd = np.empty_like(theta)
    for idx in np.ndindex(theta.shape):
        e = np.zeros_like(theta)
        e[idx] = h
        fd[idx] = (total(theta + e) - total(theta - e)) / (2 * h)
    # float64 central differences, step 1e-6: truncation ~ 1e-12, round-off ~ 1e-16 * |S| / h
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)


def test_unit_tangent_is_the_derivative_of_each_unit_along_v(rng: np.random.Generator) -> None:
    """unit_tangent[r, b, i] = d/dh sigma_*(x_rb; theta_ri + h v_ri) at h = 0."""
    model = PSpin(4)
    x = model.inputs_from_normals(rng.standard_normal((2, 7, 4)), XP)
    theta = rng.standard_normal((2, 3, model.dim))
    v = rng.standard_normal(theta.shape)
    _, cache = model.forward(x, theta, XP)
    tangent = model.unit_tangent(x, theta, cache, v, XP)
    h = 1e-6
    fd = (model.forward(x, theta + h * v, XP)[0] - model.forward(x, theta - h * v, XP)[0]) / (2 * h)
    # central differences, step 1e-6: truncation ~ 1e-12, round-off ~ 1e-16 |sigma_*| / h
    np.testing.assert_allclose(tangent, fd, rtol=1e-6, atol=1e-9)
    # the two contractions of one Jacobian: <J v, u> = <v, J^T u> for any u
    u = rng.standard_normal(cache.shape)
    lhs = np.sum(u * tangent)
    rhs = np.sum(v * model.backward(x, theta, cache, u, XP))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12)  # same sums, another order: round-off


def test_inputs_from_normals_are_uniform_on_the_sphere(rng: np.random.Generator) -> None:
    d, m = 5, 200_000
    model = PSpin(d)
    x = model.inputs_from_normals(rng.standard_normal((m, d)), XP)
    # the radius is exact up to round-off
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), math.sqrt(d), rtol=1e-14)
    # E x = 0 and E x x^T = I; per-entry variances 1, d/(d+2) off the diagonal and
    # 2(d-1)/(d+2) on it; 5 standard errors over 5 + 25 entries (false alarm < 2e-5)
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=5 / math.sqrt(m))
    np.testing.assert_allclose(x.T @ x / m, np.eye(d), atol=5 * math.sqrt(1.2 / m))
    # the direction is uniform: (1 + x_1/sqrt(d)) / 2 ~ Beta((d-1)/2, (d-1)/2)
    u = (1.0 + x[:, 0] / math.sqrt(d)) / 2.0
    assert stats.kstest(u, stats.beta((d - 1) / 2, (d - 1) / 2).cdf).pvalue > 1e-3


def test_init_theta_law_and_reproducibility() -> None:
    model = PSpin(8)
    rng = NumpyStreams(11, 2)
    theta = model.init_theta(rng, 0, 20_000, XP)
    assert theta.shape == (2, 20_000, 10)
    np.testing.assert_array_equal(theta, model.init_theta(rng, 0, 20_000, XP))
    expected_std = np.r_[np.full(8, 1 / math.sqrt(8)), 1.0, 1.0]
    # 40 000 draws per column: relative std error of a std is 1/sqrt(2 * 40 000) = 0.0035
    np.testing.assert_allclose(theta.reshape(-1, 10).std(axis=0), expected_std, rtol=0.02)
    # model.c_std scales the output weights only, from the same draws (the sensitivity study)
    wide = PSpin(8, c_std=30.0).init_theta(rng, 0, 20_000, XP)
    np.testing.assert_array_equal(wide[..., :-1], theta[..., :-1])
    np.testing.assert_allclose(wide[..., -1], 30.0 * theta[..., -1], rtol=1e-15)
    with pytest.raises(ValueError, match="c_std"):
        PSpin(8, c_std=-1.0)


def test_test_loss_of_the_zero_network_and_its_residuals() -> None:
    model = PSpin(5)
    tensor = model.teacher()
    x, f = model.sample_data(NumpyStreams(3, 2), 0, 1000, tensor, XP)
    theta = model.init_theta(NumpyStreams(3, 2), 0, 4, XP)
    theta[..., -1] = 0.0  # c = 0: f_n = 0
    out = model.test_loss(theta, x, f, XP)
    half_sq = 0.5 * f * f
    # same arithmetic in another order: round-off only
    np.testing.assert_allclose(out["loss"], half_sq.mean(axis=1), rtol=1e-13)
    np.testing.assert_allclose(
        out["loss_se"], half_sq.std(axis=1, ddof=1) / math.sqrt(1000), rtol=1e-12
    )
    # eq. (4.11) of RVE with f_n = 0: <f 1{f > 0}> and <-f 1{f < 0}>, averages over all points
    for r in range(2):
        np.testing.assert_allclose(
            out["residual_pos"][r], np.where(f[r] > 0, f[r], 0).mean(), rtol=1e-13
        )
        np.testing.assert_allclose(
            out["residual_neg"][r], np.where(f[r] < 0, -f[r], 0).mean(), rtol=1e-13
        )
    only_positive = model.test_loss(theta, x[:, :3], np.ones((2, 3)), XP)
    np.testing.assert_array_equal(only_positive["residual_neg"], 0.0)


def test_forward_saturates_without_overflow() -> None:
    model = PSpin(3)
    x = np.full((1, 2, 3), 1.0)
    theta = np.array([[[800.0, 0, 0, 0, 2.0], [-800.0, 0, 0, 0, 2.0]]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values, cache = model.forward(x, theta, XP)
    np.testing.assert_array_equal(values[0, 0], [2.0, 0.0])
    np.testing.assert_array_equal(cache[0, 0], [1.0, 0.0])


def test_online_sgd_beats_the_trivial_predictor() -> None:
    """300 steps of mean-field online SGD (n = 200, d = 10, batch 40 = n/5, eps = 0.1).

    Seen (two replicas, 10 000 test points each): test loss 4.40 / 4.53 at the start,
    2.95 / 2.93 (+- 0.04) after 300 steps; the trivial predictor's loss on the same test
    points is 4.41 / 4.53.
    """
    model, n, batch, eps = PSpin(10), 200, 40, 0.1
    tensor = model.teacher()
    rng = NumpyStreams(5, 2)
    x_test, f_test = model.sample_data(NumpyStreams(99, 2), 0, 10_000, tensor, XP)
    theta = model.init_theta(rng, 0, n, XP)
    for step in range(1, 301):
        x, y = model.sample_data(rng, step, batch, tensor, XP)
        values, cache = model.forward(x, theta, XP)
        coef = (y - values.mean(axis=-1))[..., None]
        theta = theta + 2 * eps / batch * model.backward(x, theta, cache, coef, XP)
    out = model.test_loss(theta, x_test, f_test, XP)
    trivial = 0.5 * np.mean(f_test**2, axis=1)
    print("pspin SGD: loss", out["loss"], "+-", out["loss_se"], "trivial", trivial)
    # a clear gain, far beyond the Monte Carlo error of the test loss (about 0.05)
    assert np.all(out["loss"] < 0.8 * trivial)
    assert np.all(out["loss"] + 5 * out["loss_se"] < trivial)


def test_backends_match_numpy(backend) -> None:
    """Every function on the given backend equals the NumPy result to round-off."""
    model = PSpin(6, teacher_seed=1)
    tensor = model.teacher()
    rng = NumpyStreams(4, 2)
    ref = _all_outputs(model, get_backend("numpy"), tensor, rng)
    got = _all_outputs(model, backend, tensor, rng)
    for key, value in ref.items():
        # float64, same formulas: only summation order may differ (GPU reductions)
        np.testing.assert_allclose(to_numpy(got[key]), value, rtol=1e-11, atol=1e-13, err_msg=key)


def _all_outputs(model: PSpin, backend, tensor: np.ndarray, rng: NumpyStreams) -> dict:
    xp = backend.xp
    t = backend.asarray(tensor)
    x, y = model.sample_data(rng, 1, 9, t, xp)
    theta = model.init_theta(rng, 0, 5, xp)
    values, cache = model.forward(x, theta, xp)
    coef = (y - model.predict(x, theta, xp))[..., None]
    out = {
        "x": x,
        "y": y,
        "theta": theta,
        "values": values,
        "cache": cache,
        "predict": model.predict(x, theta, xp),
        "grad_x": model.target_gradient(x, t, xp),
        "normals": model.inputs_from_normals(
            backend.asarray(np.arange(1.0, 13.0).reshape(2, 6)), xp
        ),
        "backward": model.backward(x, theta, cache, coef, xp),
        "backward_full": model.backward(x, theta, cache, coef * cache, xp),
    }
    out.update(model.test_loss(theta, x, y, xp))
    return {k: to_numpy(v) for k, v in out.items()}
