"""``U(theta, theta) = E sigma_*(x; theta)^2`` of the reduced models against Monte Carlo.

The diagonal sets the exact ``1/N`` bias of ``N`` i.i.d. units, which the MMN reproductions
compare the PDE-SGD gap with (``compare/reproduce/mmn.py``). Each unit's second moment is
averaged over 2e5 fresh data samples drawn by the particles' own sampler; the tolerance is 5
standard errors of that mean (a fixed seed; the measured deviations are below 2.5 SE).
"""

from __future__ import annotations

import numpy as np
import pytest

from meanfield.model import AnisotropicGaussians, IsotropicGaussians, ReluSelection
from meanfield.model.activations import activation_from_spec
from meanfield.rng import CounterRNG

SAMPLES = 200_000


def _models() -> dict:
    mmn = activation_from_spec("mmn")
    return {
        "isotropic": IsotropicGaussians(12, 0.8, mmn),
        "anisotropic": AnisotropicGaussians(12, 4, 0.5, mmn),
        "relu": ReluSelection(12, 4, 0.5),
    }


@pytest.mark.parametrize("name", ["isotropic", "anisotropic", "relu"])
def test_self_interaction_is_the_second_moment_of_a_unit(name: str) -> None:
    model = _models()[name]
    rng = np.random.default_rng(7)
    theta = rng.normal(size=(6, model.dim)) * 0.6  # six units of various sizes
    stream = CounterRNG.from_seed(11, 1, np)
    x, _ = model.sample_data(stream, 0, SAMPLES, np)  # (1, B, d)
    values = model.unit(x, theta[None], np)[0] ** 2  # (B, 6)
    mc, se = values.mean(axis=0), values.std(axis=0, ddof=1) / np.sqrt(SAMPLES)
    exact = model.self_interaction(model.reduce(theta, np))
    assert np.all(np.abs(mc - exact) < 5.0 * se), (mc, exact, (mc - exact) / se)
    # the check has power: U(theta, theta) differs from the reduced kernel's diagonal (two
    # independent directions), which is what a wrong implementation would most likely return
    reduced = model.reduce(theta, np)
    features = model.kernel_features(reduced)
    kernel_diagonal = np.einsum(
        "mp,p,mp->m", features.features, features.weights, features.features
    )
    assert np.max(np.abs(kernel_diagonal - exact) / se) > 20.0
