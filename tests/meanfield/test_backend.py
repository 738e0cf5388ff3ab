"""Backend resolution."""

from __future__ import annotations

import numpy as np
import pytest

from meanfield.backends import BackendError, available_backends, get_backend, to_numpy


def test_auto_resolves_to_an_available_backend() -> None:
    assert get_backend("auto").name in available_backends()


def test_unknown_backend_is_rejected() -> None:
    with pytest.raises(BackendError, match="unknown backend"):
        get_backend("torch")


def test_cupy_without_gpu_says_what_to_do() -> None:
    if "cupy" in available_backends():
        pytest.skip("a GPU is present")
    with pytest.raises(BackendError, match="cuda12 or cuda13"):
        get_backend("cupy")


def test_round_trip_is_float64_and_copies(backend) -> None:
    host = np.linspace(0.0, 1.0, 5)
    arr = backend.asarray(host)
    assert arr.dtype == backend.xp.float64
    back = to_numpy(arr)
    np.testing.assert_array_equal(back, host)
    host[0] = 7.0
    assert to_numpy(arr)[0] == 0.0
