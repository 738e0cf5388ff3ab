"""Philox4x32-10 counter-based generator: known answers, backends, reproducibility, statistics."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from meanfield.backends import available_backends, get_backend, to_numpy
from meanfield.rng import CounterRNG, philox4x32_10

MASK32 = 0xFFFFFFFF

# Known-answer vectors (counter c0..c3, key k0 k1, expected output x0..x3), in the column order
# of Random123's tests/kat_vectors ("CTR KEY EXPECTED").
# The three standard philox4x32 10 vectors are copied from DEShawResearch/Random123-Boost,
# libs/random/test/test_philox.cpp (commit 916db91ae4c6fd8324ef054a518851321ab41f91), whose
# comment says they are "cut-and-pasted from the kat_vectors file in the original Random123
# distribution".
KAT_STANDARD = [
    (
        (0x00000000, 0x00000000, 0x00000000, 0x00000000),
        (0x00000000, 0x00000000),
        (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8),
    ),
    (
        (0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF),
        (0xFFFFFFFF, 0xFFFFFFFF),
        (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD),
    ),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]
# Four more philox4x32 10 lines (single-bit counters and keys) copied from
# girving/random123-manual, examples/kat_vectors (commit
# 61e8479252c42f0f8c0490dec55237d7c01bf509), a file of Random123 known answers.
KAT_EXTRA = [
    (
        (0x00000001, 0x00000000, 0x00000000, 0x00000000),
        (0x00000001, 0x00000000),
        (0xAC08141B, 0xDFC5CCBE, 0x79C07A47, 0xA7F66093),
    ),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0x00000001, 0x00000000),
        (0x38527B8F, 0xFAD9A48C, 0x20E675C0, 0xF2FEA26A),
    ),
    (
        (0x452821E6, 0x38D01377, 0xBE5466CF, 0x34E90C6C),
        (0x00000000, 0xFFFFFFFF),
        (0x72CE44B3, 0xB44F9B78, 0x49AF0267, 0x726813AC),
    ),
    (
        (0x00000000, 0x00000000, 0x00000000, 0x80000000),
        (0x00000000, 0x80000000),
        (0xF7A0B371, 0xE51DC93D, 0x56CE135D, 0x1D4B5580),
    ),
]
KAT_ALL = KAT_STANDARD + KAT_EXTRA


def philox_reference(counter: tuple[int, ...], key: tuple[int, ...]) -> tuple[int, ...]:
    """Philox4x32-10 on Python ints, from Salmon et al. (2011), independent of ``rng.py``."""
    x0, x1, x2, x3 = counter
    k0, k1 = key
    for round_index in range(10):
        if round_index > 0:
            k0 = (k0 + 0x9E3779B9) % 2**32
            k1 = (k1 + 0xBB67AE85) % 2**32
        hi0, lo0 = divmod(0xD2511F53 * x0, 2**32)
        hi1, lo1 = divmod(0xCD9E8D57 * x2, 2**32)
        x0, x1, x2, x3 = hi1 ^ x1 ^ k0, lo1, hi0 ^ x3 ^ k1, lo0
    return x0, x1, x2, x3


def make_rng(backend, keys: np.ndarray) -> CounterRNG:
    """CounterRNG with given host keys of shape (n_streams, 2) on ``backend``."""
    return CounterRNG(keys=backend.asarray(keys, dtype=backend.xp.uint64), xp=backend.xp)


def host_rng(seed: int, n_streams: int, name: str = "numpy") -> CounterRNG:
    """CounterRNG.from_seed on the named backend."""
    backend = get_backend(name)
    return CounterRNG.from_seed(seed, n_streams, backend.xp, asarray=backend.asarray)


# ---------------------------------------------------------------- known answers and reference


def test_reference_reproduces_the_known_answers() -> None:
    for counter, key, expected in KAT_ALL:
        assert philox_reference(counter, key) == expected


def test_known_answers_on_every_backend(backend) -> None:
    xp = backend.xp
    counters = backend.asarray([c for c, _, _ in KAT_ALL], dtype=xp.uint64)
    keys = backend.asarray([k for _, k, _ in KAT_ALL], dtype=xp.uint64)
    out = to_numpy(philox4x32_10(counters, keys, xp))
    np.testing.assert_array_equal(out, np.array([e for _, _, e in KAT_ALL], dtype=np.uint64))


def test_known_answer_through_the_stream_api(backend) -> None:
    # block 0 at counter 0, purpose 0 has counter words (0, 0, 0, 0): the first standard vector
    words = to_numpy(make_rng(backend, np.zeros((1, 2), dtype=np.uint64)).raw(0, 1))
    np.testing.assert_array_equal(words[0, 0], np.array(KAT_STANDARD[0][2], dtype=np.uint64))


def test_philox_broadcasts_keys_with_more_axes_than_counters(numpy_backend) -> None:
    xp = numpy_backend.xp
    counter = numpy_backend.asarray(KAT_EXTRA[1][0], dtype=xp.uint64)  # shape (4,)
    keys = numpy_backend.asarray([KAT_EXTRA[1][1], KAT_STANDARD[2][1]], dtype=xp.uint64)
    out = to_numpy(philox4x32_10(counter, keys, xp))
    assert out.shape == (2, 4)
    np.testing.assert_array_equal(out[0], np.array(KAT_EXTRA[1][2], dtype=np.uint64))
    np.testing.assert_array_equal(out[1], np.array(KAT_STANDARD[2][2], dtype=np.uint64))


def test_raw_matches_reference_and_documented_layout(backend) -> None:
    gen = np.random.default_rng(7)
    keys = gen.integers(0, 2**32, size=(3, 2), dtype=np.uint64)
    cases = [(0, 0), (2**48 - 1, 2**16 - 1), (int(gen.integers(0, 2**48)), 2)]
    rng = make_rng(backend, keys)
    for counter, purpose in cases:
        words = to_numpy(rng.raw(counter, 5, purpose))
        assert words.shape == (3, 5, 4)
        for s in range(3):
            for j in range(5):
                ctr = (j & MASK32, j >> 32, counter & MASK32, (purpose << 16) | (counter >> 32))
                expected = philox_reference(ctr, (int(keys[s, 0]), int(keys[s, 1])))
                assert tuple(int(w) for w in words[s, j]) == expected


def test_uniform_and_normal_follow_the_documented_transforms() -> None:
    rng = host_rng(3, 2)
    words = to_numpy(rng.raw(11, 4, purpose=5)).astype(np.uint64)
    units = (((words[..., 0::2] >> 5) << 26) | (words[..., 1::2] >> 6)) * 2.0**-53
    units = units.reshape(2, 8)  # element e <- block e // 2, word pair e % 2
    np.testing.assert_array_equal(to_numpy(rng.uniform(11, (7,), purpose=5)), units[:, :7])
    radius = np.sqrt(-2.0 * np.log(1.0 - units[:, 0::2]))
    angle = 2.0 * np.pi * units[:, 1::2]
    normals = np.stack((radius * np.cos(angle), radius * np.sin(angle)), axis=-1).reshape(2, 8)
    np.testing.assert_array_equal(to_numpy(rng.normal(11, (7,), purpose=5)), normals[:, :7])


# ---------------------------------------------------------------- backends


def _draws(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = host_rng(20261123, 5, name)
    return (
        to_numpy(rng.raw(3, 6, purpose=1)),
        to_numpy(rng.uniform(2**40 + 3, (4, 3), purpose=2)),
        to_numpy(rng.normal(12345, (3, 7), purpose=0)),
    )


def test_numpy_and_array_api_strict_are_bit_identical() -> None:
    for ours, strict in zip(_draws("numpy"), _draws("array_api_strict"), strict=True):
        assert ours.dtype == strict.dtype
        np.testing.assert_array_equal(ours, strict)


@pytest.mark.gpu
def test_cupy_matches_numpy() -> None:
    if "cupy" not in available_backends():
        pytest.skip("CuPy or a GPU is not available")
    raw_np, uni_np, nor_np = _draws("numpy")
    raw_cp, uni_cp, nor_cp = _draws("cupy")
    np.testing.assert_array_equal(raw_cp, raw_np)  # integer arithmetic: exact
    np.testing.assert_array_equal(uni_cp, uni_np)  # exact conversion of 53-bit integers
    # log/cos/sin are not correctly rounded in either library: a few ulp of |z| < 8.6
    np.testing.assert_allclose(nor_cp, nor_np, rtol=0, atol=1e-13)


# ---------------------------------------------------------------- reproducibility


def test_shapes_dtypes_and_ranges() -> None:
    rng = host_rng(1, 3)
    uni = to_numpy(rng.uniform(0, (5, 2)))
    nor = to_numpy(rng.normal(0, (3,)))
    assert uni.shape == (3, 5, 2) and uni.dtype == np.float64
    assert nor.shape == (3, 3) and nor.dtype == np.float64
    assert to_numpy(rng.uniform(0, ())).shape == (3,)
    assert to_numpy(rng.normal(0, (0, 4))).shape == (3, 0, 4)
    assert to_numpy(rng.raw(0, 0)).shape == (3, 0, 4)
    assert rng.n_streams == 3 and rng.keys.dtype == rng.xp.uint64


def test_same_seed_same_numbers_and_keys_from_seed_sequence() -> None:
    first, second = host_rng(42, 4), host_rng(42, 4)
    np.testing.assert_array_equal(
        to_numpy(first.normal(9, (50,))), to_numpy(second.normal(9, (50,)))
    )
    spawned = np.random.SeedSequence(42).spawn(4)
    expected = np.array([child.generate_state(2, np.uint32) for child in spawned], dtype=np.uint64)
    np.testing.assert_array_equal(to_numpy(first.keys), expected)


def _equal_fraction(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(a == b))


def test_seeds_streams_counters_and_purposes_differ() -> None:
    rng = host_rng(5, 4)
    base = to_numpy(rng.uniform(10, (1000,)))
    variants = {
        "seed": to_numpy(host_rng(6, 4).uniform(10, (1000,))),
        "counter": to_numpy(rng.uniform(11, (1000,))),
        "purpose": to_numpy(rng.uniform(10, (1000,), purpose=1)),
    }
    # two independent 53-bit uniforms coincide with probability 2**-53: none should
    for name, other in variants.items():
        assert _equal_fraction(base, other) == 0.0, name
    for i in range(4):
        for j in range(i):
            assert _equal_fraction(base[i], base[j]) == 0.0


def test_stream_numbers_do_not_depend_on_the_other_streams() -> None:
    small, large = host_rng(8, 3), host_rng(8, 10)
    np.testing.assert_array_equal(
        to_numpy(small.normal(4, (6, 2), purpose=3)),
        to_numpy(large.normal(4, (6, 2), purpose=3))[:3],
    )
    full = to_numpy(large.uniform(4, (9,)))
    np.testing.assert_array_equal(
        to_numpy(large.select(slice(2, 7, 2)).uniform(4, (9,))), full[2:7:2]
    )
    np.testing.assert_array_equal(
        to_numpy(large.select([9, 0, 4]).uniform(4, (9,))), full[[9, 0, 4]]
    )
    strict = host_rng(8, 10, "array_api_strict").select([9, 0, 4])
    np.testing.assert_array_equal(to_numpy(strict.uniform(4, (9,))), full[[9, 0, 4]])


def test_element_values_do_not_depend_on_the_requested_size() -> None:
    rng = host_rng(12, 2)
    np.testing.assert_array_equal(
        to_numpy(rng.normal(1, (5,))), to_numpy(rng.normal(1, (12,)))[:, :5]
    )
    np.testing.assert_array_equal(
        to_numpy(rng.uniform(1, (3,))), to_numpy(rng.uniform(1, (8,)))[:, :3]
    )


def test_invalid_arguments_are_rejected(numpy_backend) -> None:
    rng = host_rng(0, 2)
    with pytest.raises(ValueError, match="counter"):
        rng.uniform(2**48, (3,))
    with pytest.raises(ValueError, match="counter"):
        rng.normal(-1, (3,))
    with pytest.raises(ValueError, match="purpose"):
        rng.raw(0, 1, purpose=2**16)
    with pytest.raises(ValueError, match="shape"):
        CounterRNG(
            keys=numpy_backend.asarray(np.zeros(4), dtype=numpy_backend.xp.uint64),
            xp=numpy_backend.xp,
        )
    with pytest.raises(ValueError, match="uint64"):
        CounterRNG(keys=numpy_backend.asarray(np.zeros((2, 2))), xp=numpy_backend.xp)


# ---------------------------------------------------------------- statistics

N_SAMPLES = 100_000
#: 5 standard errors: a correct generator fails such a check with probability 6e-7
N_SIGMA = 5.0
#: KS p-value floor: a correct generator fails with probability 1e-4 per test
KS_P_MIN = 1e-4
SEED_OFFSETS = (0, 1, 2)


def test_uniforms_have_53_bit_resolution() -> None:
    scaled = to_numpy(host_rng(2, 1).uniform(0, (N_SAMPLES,))) * 2.0**53
    np.testing.assert_array_equal(scaled, np.floor(scaled))  # multiples of 2**-53
    odd = np.mean(np.mod(scaled, 2.0))
    # the lowest bit is a fair coin: standard error 0.5 / sqrt(n)
    assert abs(odd - 0.5) < N_SIGMA * 0.5 / np.sqrt(N_SAMPLES)


@pytest.mark.parametrize("offset", SEED_OFFSETS)
def test_uniform_moments_and_ks(global_seed: int, offset: int) -> None:
    u = to_numpy(host_rng(global_seed + offset, 4).uniform(offset, (N_SAMPLES // 4,))).ravel()
    assert u.min() >= 0.0 and u.max() < 1.0
    # standard errors: mean sqrt(1/12/n); variance sqrt((1/80 - 1/144)/n)
    assert abs(u.mean() - 0.5) < N_SIGMA * np.sqrt(1.0 / 12.0 / N_SAMPLES)
    assert abs(u.var() - 1.0 / 12.0) < N_SIGMA * np.sqrt((1.0 / 80.0 - 1.0 / 144.0) / N_SAMPLES)
    assert stats.kstest(u, "uniform").pvalue > KS_P_MIN


@pytest.mark.parametrize("offset", SEED_OFFSETS)
def test_normal_moments_and_ks(global_seed: int, offset: int) -> None:
    z = to_numpy(host_rng(global_seed + offset, 4).normal(offset, (N_SAMPLES // 4,), 2)).ravel()
    assert np.all(np.isfinite(z)) and np.max(np.abs(z)) < 8.6  # Box-Muller bound for 53 bits
    # standard errors: mean 1/sqrt(n), variance sqrt(2/n), excess kurtosis sqrt(24/n)
    assert abs(z.mean()) < N_SIGMA / np.sqrt(N_SAMPLES)
    assert abs(z.var() - 1.0) < N_SIGMA * np.sqrt(2.0 / N_SAMPLES)
    assert abs(stats.kurtosis(z)) < N_SIGMA * np.sqrt(24.0 / N_SAMPLES)
    assert stats.kstest(z, "norm").pvalue > KS_P_MIN


def test_no_correlation_between_streams_counters_and_purposes(global_seed: int) -> None:
    rng = host_rng(global_seed, 6)
    z = to_numpy(rng.normal(100, (N_SAMPLES,)))
    later = to_numpy(rng.normal(101, (N_SAMPLES,)))
    other = to_numpy(rng.normal(100, (N_SAMPLES,), purpose=1))
    # sample correlations of independent series are ~ N(0, 1/n): 4 standard errors
    bound = 4.0 / np.sqrt(N_SAMPLES)
    between_streams = np.corrcoef(z)[np.triu_indices(6, k=1)]
    assert np.max(np.abs(between_streams)) < bound
    for s in range(6):
        assert abs(np.corrcoef(z[s], later[s])[0, 1]) < bound
        assert abs(np.corrcoef(z[s], other[s])[0, 1]) < bound
        # the two Box-Muller outputs of one block are uncorrelated too
        assert abs(np.corrcoef(z[s, 0::2], z[s, 1::2])[0, 1]) < 4.0 / np.sqrt(N_SAMPLES // 2)
