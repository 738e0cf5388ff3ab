"""The collocation energy of RVE's (4.5) on the sphere-kernel model, and its meeting with L2.

Its gradients against central differences, against an independent direct sum, under
``array_api_strict``; the narrow-unit limit in which the ``L^2(mu)`` ingredients ``F`` and ``K``
reduce to ``f`` and ``phi``; the objective selector.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from meanfield.backends import get_backend, to_numpy
from meanfield.model.rve.sphere_kernel import OBJECTIVES, SphereKernel

D, ALPHA = 5, 1.0
NUMPY = get_backend("numpy")


def _sphere(rng: np.random.Generator, shape: tuple[int, ...], d: int = D) -> np.ndarray:
    g = rng.standard_normal((*shape, d))
    return math.sqrt(d) * g / np.linalg.norm(g, axis=-1, keepdims=True)


def test_energy_is_the_direct_double_sum(rng: np.random.Generator) -> None:
    task = SphereKernel(D, ALPHA, teacher_seed=1).task(NUMPY.asarray)
    n = 7
    c, y = 5 * rng.standard_normal(n), _sphere(rng, (n,))
    f = [float(task.model.pspin.target(y[i], task.tensor, np)) for i in range(n)]
    direct = -sum(c[i] * f[i] for i in range(n)) / n + sum(
        c[i] * c[j] * math.exp(-0.5 * ALPHA * float(np.sum((y[i] - y[j]) ** 2)))
        for i in range(n)
        for j in range(n)
    ) / (2 * n * n)
    # the Gram form |y_i|^2 + |y_j|^2 - 2 y_i.y_j of the distance: round-off of |y|^2 = 5
    assert float(task.collocation(c, y, np)) == pytest.approx(direct, rel=1e-13, abs=1e-13)


def test_collocation_gradients_match_central_differences(rng: np.random.Generator) -> None:
    task = SphereKernel(D, ALPHA, teacher_seed=2).task(NUMPY.asarray)
    n = 6
    c, y = 10 * rng.standard_normal(n), _sphere(rng, (n,))
    energy, grad_c, grad_y = task.collocation_gradient(c, y, np)
    assert float(task.collocation(c, y, np)) == pytest.approx(float(energy), rel=1e-15)
    h = 1e-5  # central differences: O(h^2) ~ 1e-10 truncation, ~1e-11 round-off / h
    for i in range(n):
        dc = np.zeros(n)
        dc[i] = h
        numeric = (task.collocation(c + dc, y, np) - task.collocation(c - dc, y, np)) / (2 * h)
        assert float(numeric) == pytest.approx(float(grad_c[i]), rel=1e-7, abs=1e-10)
        # E is a function on R^{N x d} (the Gaussian form of phi): every ambient direction
        for a in range(D):
            dy = np.zeros_like(y)
            dy[i, a] = h
            numeric = (task.collocation(c, y + dy, np) - task.collocation(c, y - dy, np)) / (2 * h)
            assert float(numeric) == pytest.approx(float(grad_y[i, a]), rel=1e-6, abs=1e-9)
    # and along a tangent curve of the sphere, the derivative the flow descends: the geodesic
    # y(s) = cos(s) y + sin(s) sqrt(d) u, u a unit tangent field, has y'(0) = sqrt(d) u
    u = rng.standard_normal(y.shape)
    u -= np.sum(u * y, axis=-1, keepdims=True) / D * y
    u /= np.linalg.norm(u, axis=-1, keepdims=True)
    along = [
        float(task.collocation(c, math.cos(s) * y + math.sin(s) * math.sqrt(D) * u, np))
        for s in (h, -h)
    ]
    expected = math.sqrt(D) * float(np.sum(grad_y * u))
    assert (along[0] - along[1]) / (2 * h) == pytest.approx(expected, rel=1e-6)


def test_collocation_is_array_api_clean(rng: np.random.Generator) -> None:
    strict = get_backend("array_api_strict")
    model = SphereKernel(D, ALPHA, teacher_seed=4)
    c, y = rng.standard_normal((2, 7)), _sphere(rng, (2, 7))
    results = []
    for backend in (NUMPY, strict):
        xp = backend.xp
        task = model.task(backend.asarray)
        out = task.objective_gradient("collocation")(backend.asarray(c), backend.asarray(y), xp)
        results.append([to_numpy(a) for a in out])
    for ours, theirs in zip(*results, strict=True):
        np.testing.assert_allclose(theirs, ours, rtol=1e-12, atol=1e-14)  # round-off only


def test_objective_selector() -> None:
    task = SphereKernel(D, ALPHA).task(NUMPY.asarray)
    assert OBJECTIVES == ("collocation", "l2")
    assert task.objective_gradient("l2") == task.loss_gradient
    assert task.objective_gradient("collocation") == task.collocation_gradient
    with pytest.raises(ValueError, match="objective must be one of collocation, l2"):
        task.objective_gradient("rkhs")


def test_narrow_units_turn_the_l2_ingredients_into_f_and_phi(rng: np.random.Generator) -> None:
    """``F_i / m_alpha -> f(y_i)`` and ``K_ij / m_{2 alpha} -> exp(-alpha |y_i - y_j|^2 / 4)``.

    ``E_x[g(x) phi_alpha(x, y)] / m_alpha`` is the mean of ``g`` under a law concentrated at
    ``y`` with variance ``O(1/alpha)`` per tangent direction, so it is ``g(y) + O(1/alpha)``
    (Laplace's method; the first correction is ``(1/(2 alpha))`` times a Laplacian). With the
    product identity ``phi_a(x,p) phi_a(x,q) = exp(-a|p-q|^2/4) exp(-a|x-(p+q)/2|^2)``,
    ``K_ij / (m_{2 alpha} phi_{alpha/2}(y_i, y_j)) - 1`` is the same kind of average around the
    midpoint, which lies ``|y_i - y_j|^2 / (8 sqrt d)`` inside the sphere: with centres a fixed
    number of unit widths apart (``|y_i - y_j| = 1 / sqrt(alpha)``) that is ``O(1/alpha)`` too.
    So each discrepancy times ``alpha`` must settle to a constant: doubling ``alpha`` must
    halve it, up to the ``O(1/alpha^2)`` term.

    The closed-form series of the model underflows beyond ``alpha d ~ 50`` (its coefficients
    ``1/(m! Gamma(m + nu + k + 1))`` fall below float64 where ``z^m`` is still needed), so
    ``alpha = 2.5, 5, 10`` at the paper's ``d = 5`` (width ``1/sqrt(alpha)`` from 0.63 to 0.32,
    against the sphere's radius 2.24).
    """
    y = _sphere(rng, (6,))
    tangent = rng.standard_normal(y.shape)
    tangent -= np.sum(tangent * y, axis=-1, keepdims=True) / D * y
    tangent /= np.linalg.norm(tangent, axis=-1, keepdims=True)
    f_discrepancy, k_discrepancy = [], []
    for alpha in (2.5, 5.0, 10.0):
        task = SphereKernel(D, alpha, teacher_seed=0).task(NUMPY.asarray)
        f = task.model.pspin.target(y, task.tensor, np)
        # relative to the target's scale, sqrt(E f^2), not to f(y_i) (which may be near 0)
        f_discrepancy.append(
            np.max(np.abs(task.projection(y, np) / task.unit_mass(alpha) - f))
            / math.sqrt(task.target_square)
        )
        angle = 1.0 / math.sqrt(alpha * D)  # a chord of about 1 / sqrt(alpha): one unit width
        partner = math.cos(angle) * y + math.sin(angle) * math.sqrt(D) * tangent
        pairs = np.stack([y, partner], axis=1)  # (6, 2, d): one nearby pair per row
        kernel = task.kernel(pairs, np)[:, 0, 1]
        half = np.exp(-alpha * np.sum((y - partner) ** 2, axis=-1) / 4)
        k_discrepancy.append(np.max(np.abs(kernel / (task.unit_mass(2 * alpha) * half) - 1)))
    f_discrepancy, k_discrepancy = np.array(f_discrepancy), np.array(k_discrepancy)
    # measured (default seed): 0.77, 0.45, 0.24 (F) and 0.0186, 0.0093, 0.0047 (K); the ratio
    # per doubling is 2 / (1 + b / alpha): 1.67-1.71 then 1.83-1.85 for F over four seeds,
    # 1.99 then 2.00 for K (the midpoint's depth is the same for every pair)
    for discrepancy in (f_discrepancy, k_discrepancy):
        ratios = discrepancy[:-1] / discrepancy[1:]
        assert np.all((ratios > 1.5) & (ratios < 2.2)), ratios
        assert ratios[-1] >= ratios[0] - 0.02  # approaching 2 from below (or at it)
    assert k_discrepancy[-1] < 0.01 and f_discrepancy[-1] < 0.5
