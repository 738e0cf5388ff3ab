"""The compiled engine's building blocks against their array-API references.

The counter-based generator (bit for bit), the vectorisable ``exp`` (one unit in the last
place), the scalar closed-form pair kernel and the compiled pair sums of the exact risk and
grad Psi of the MMN models.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from meanfield.backends import get_backend
from meanfield.model import ACTIVATIONS, AnisotropicGaussians, IsotropicGaussians
from meanfield.model.integrals.bivariate import orthant, pair_moments
from meanfield.rng import CounterRNG
from particles.engine import bivariate as compiled_bivariate
from particles.engine.activations import exp_rows
from particles.engine.philox import block_words, fill_normals, uniform_element
from particles.engine.population import pair_population_gradient, pair_population_risk

NUMPY = get_backend("numpy")


def test_philox_blocks_and_uniforms_are_bit_identical() -> None:
    rng = CounterRNG.from_seed(7, 3, np)
    counter = (1 << 40) + 12345  # uses the high counter word too
    raw = rng.raw(counter, 40, purpose=2)
    keys = rng.keys
    for s in range(3):
        for j in range(40):
            words = block_words(keys[s, 0], keys[s, 1], j, counter, 2)
            assert tuple(int(w) for w in words) == tuple(int(w) for w in raw[s, j])
    uniforms = rng.uniform(99, (37,), purpose=1)
    compiled = [
        [uniform_element(keys[s, 0], keys[s, 1], 99, 1, e) for e in range(37)] for s in range(3)
    ]
    np.testing.assert_array_equal(np.array(compiled), uniforms)


@pytest.mark.parametrize("start", [0, 7, 40])
def test_normals_agree_to_an_ulp(start: int) -> None:
    """Box-Muller through the C library's log/cos/sin against NumPy's: within 2 ulp
    (|z| < 8.6, so 4e-15 absolute)."""
    rng = CounterRNG.from_seed(3, 2, np)
    reference = rng.normal(5, (10_001,), purpose=0)
    for s in range(2):
        out = np.empty(10_001 - start)
        fill_normals(out, rng.keys[s, 0], rng.keys[s, 1], 5, 0, start)
        np.testing.assert_allclose(out, reference[s, start:], rtol=0, atol=2 * np.spacing(8.6))


def test_vector_exp_is_within_one_ulp_of_numpy(rng: np.random.Generator) -> None:
    x = np.concatenate(
        [
            -np.abs(rng.standard_normal(20_000)) * 30.0,
            [0.0, -0.0, -1e-300, -0.34657, -0.3466, -700.0, -708.0],
        ]
    )
    out = np.empty_like(x)
    exp_rows(x, out, np.empty(len(x), dtype=np.int64), len(x))
    reference = np.exp(x)
    assert np.max(np.abs(out - reference) / np.spacing(reference)) <= 1.0


def test_compiled_closed_form_matches_the_array_version(rng: np.random.Generator) -> None:
    act = ACTIVATIONS["mmn_nonmonotone"]
    cases = np.column_stack(
        [
            rng.uniform(0.05, 3.0, 200),
            rng.uniform(0.05, 3.0, 200),
            np.tanh(rng.uniform(-4.0, 4.0, 200)),
        ]
    )
    cases[:5, 2] = [0.99999, -0.99999, 0.0, 1.0, -1.0]
    reference = np.array(pair_moments(act, cases[:, 0], cases[:, 1], cases[:, 2], NUMPY))
    scratch = compiled_bivariate.pair_scratch()
    ours = np.array(
        [
            compiled_bivariate.pair_moments(a, b, c, act.t, act.jumps, act.left_value, scratch)
            for a, b, c in cases
        ]
    ).T
    # the C library's erfc against SciPy's ndtr: a few ulp of terms of size up to ~100
    np.testing.assert_allclose(ours, reference, rtol=1e-12, atol=1e-12)
    h, k = rng.uniform(-3, 3, 200), rng.uniform(-3, 3, 200)
    np.testing.assert_allclose(
        [compiled_bivariate.orthant(*v) for v in zip(h, k, cases[:, 2], strict=True)],
        orthant(h, k, cases[:, 2], NUMPY),
        rtol=0,
        atol=1e-15,
    )


@pytest.mark.parametrize("c", [-0.99999, -0.95, 0.5, 0.95, 0.99999])
def test_compiled_closed_form_at_extreme_arguments(c: float) -> None:
    """Units near the origin (``a = tau r`` of 0.01: ``t / a`` of 50 and more)."""
    act = ACTIVATIONS["mmn_nonmonotone"]
    scratch = compiled_bivariate.pair_scratch()
    for a, b in ((0.012, 0.013), (0.012, 3.0), (5.0, 0.011)):
        expected = pair_moments(act, np.array(a), np.array(b), np.array(c), NUMPY)
        got = compiled_bivariate.pair_moments(a, b, c, act.t, act.jumps, act.left_value, scratch)
        np.testing.assert_allclose(got, [float(v) for v in expected], rtol=1e-12, atol=1e-12)


def _units(rng: np.random.Generator, d: int, n: int) -> np.ndarray:
    """Random units with two aligned pairs per replica (cosines near 0.95 and -0.9)."""
    theta = rng.standard_normal((3, n, d)) * 0.8 / math.sqrt(d)
    theta[:, 1] = 1.3 * theta[:, 0] + 0.3 * rng.standard_normal((3, d)) * 0.8 / math.sqrt(d)
    theta[:, 2] = -0.7 * theta[:, 3] + 0.3 * rng.standard_normal((3, d)) * 0.8 / math.sqrt(d)
    return theta


@pytest.mark.parametrize("kind", ["isotropic", "anisotropic"])
def test_compiled_pair_sums_match_the_numpy_risk_and_gradient(
    kind: str, rng: np.random.Generator
) -> None:
    """The same split (Mehler below 1/2, closed form above); a tight series tolerance, so the
    per-row orders of the compiled sums and the per-replica order of NumPy's both truncate
    below round-off."""
    if kind == "isotropic":
        model, d = IsotropicGaussians(40, 0.8, ACTIVATIONS["mmn_nonmonotone"], kernel_tol=1e-15), 40
    else:
        model, d = AnisotropicGaussians(12, 3, 0.6, ACTIVATIONS["mmn"], kernel_tol=1e-15), 12
    theta = _units(rng, d, 50)
    np.testing.assert_allclose(
        pair_population_risk(model, theta), model.population_risk(theta, None, NUMPY), rtol=1e-13
    )
    reference = model.population_gradient(theta, None, NUMPY)
    np.testing.assert_allclose(
        pair_population_gradient(model, theta),
        reference,
        rtol=0,
        atol=1e-12 * np.max(np.abs(reference)),
    )
