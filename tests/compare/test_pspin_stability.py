"""The p-spin reproduction's stability number and quench spread, against independent checks."""

from __future__ import annotations

import numpy as np

from compare.reproduce.rve_pspin import quench_spread, stability, stability_points
from meanfield.model.rve.pspin import PSpin


def test_stability_is_dt_times_the_top_eigenvalue_of_the_dense_gauss_newton_matrix() -> None:
    """Against ``J^T J / (n P)`` built from central differences of the unit values."""
    rng = np.random.default_rng(3)
    model = PSpin(4)
    n, points, dt = 3, 40, 0.02
    theta = rng.standard_normal((n, model.dim))
    theta[:, -1] = rng.normal(0.0, 30.0, n)  # large output weights: the stiff regime
    x = stability_points(model, points, seed=5)
    h = 1e-6
    jac = np.empty((points, n * model.dim))  # d sigma_*(x_p; theta_i) / d theta_ik
    for col, (i, k) in enumerate(np.ndindex(n, model.dim)):
        step = np.zeros_like(theta)
        step[i, k] = h
        plus = model.forward(x, (theta + step)[None], np)[0][0, :, i]
        minus = model.forward(x, (theta - step)[None], np)[0][0, :, i]
        jac[:, col] = (plus - minus) / (2 * h)
    dense = np.linalg.eigvalsh(jac.T @ jac / (n * points))[-1]
    # central differences, step 1e-6: relative error ~ 1e-10 in J (truncation h^2, round-off
    # 1e-16 |c| / h), so ~1e-9 in the eigenvalue; Lanczos is converged to 1e-8
    np.testing.assert_allclose(stability(model, theta, dt, x), dt * dense, rtol=1e-6)


def test_stability_scales_with_the_output_weights_squared() -> None:
    """G = A + C: the ``a, b`` rows carry ``c^2`` (A), the ``c`` rows do not (C, top eigenvalue
    at most ``E s^2 <= 1``). Multiplying every ``c`` by 10 gives ``100 A + C``, whose top
    eigenvalue lies in ``[100 (lambda - 1), 100 lambda]``, ``lambda`` that of ``A + C``."""
    rng = np.random.default_rng(4)
    model = PSpin(5)
    theta = rng.standard_normal((6, model.dim))
    theta[:, -1] = rng.normal(0.0, 100.0, 6)
    x = stability_points(model, 2000)
    big = theta.copy()
    big[:, -1] *= 10
    small = stability(model, theta, 1.0, x)
    assert small > 10  # so that the bracket below is narrow (here about 65)
    # 1e-7 on the upper end: Lanczos converges each eigenvalue to 1e-8 (relative)
    assert 100 * (small - 1) <= stability(model, big, 1.0, x) <= 100 * small * (1 + 1e-7)


def test_quench_spread_reads_the_second_half_of_the_quench() -> None:
    steps = np.array([0, 50, 100, 110, 150, 160, 180, 200])
    loss = np.array([9.0, 8.0, 7.0, 5.0, 2.0, 4.0, 3.0, 2.5])
    # sgd_steps = 100, quench_steps = 100: the records at steps >= 150 are 2, 4, 3, 2.5
    assert quench_spread(steps, loss, 100, 100) == 2.0
