"""Shared fixtures: the backend fixture, the global seed, and the slow / gpu markers."""

from __future__ import annotations

import os

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

#: backends the hot-loop tests run on: NumPy, the array-API-strict checker, and CuPy with a GPU
BACKENDS = ("numpy", "array_api_strict", "cupy")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False, help="run slow tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    if config.getoption("--runslow"):
        return
    skip_slow = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest):
    """A :class:`meanfield.backends.Backend`; CuPy is skipped without a GPU."""
    from meanfield.backends import available_backends, get_backend

    name = request.param
    if name == "cupy" and "cupy" not in available_backends():
        pytest.skip("CuPy or a GPU is not available")
    return get_backend(name)


@pytest.fixture
def numpy_backend():
    from meanfield.backends import get_backend

    return get_backend("numpy")


@pytest.fixture
def global_seed() -> int:
    """Seed for statistical tests; set MEANFIELD_TEST_SEED to run them across seeds."""
    return int(os.environ.get("MEANFIELD_TEST_SEED", "20261123"))


@pytest.fixture
def rng(global_seed: int) -> np.random.Generator:
    return np.random.default_rng(global_seed)


def assert_every_group_opens_in_xarray(path) -> list[str]:
    """Open every HDF5 group of ``path`` with xarray (h5netcdf) and check that every dimension
    has a name given by a dimension scale (no ``phony_dim``); return the group names."""
    import warnings

    import h5py
    import xarray as xr

    with h5py.File(path, "r") as f:
        groups: list[str] = []
        f.visititems(lambda name, obj: groups.append(name) if isinstance(obj, h5py.Group) else None)
        holds_data = {g: any(isinstance(o, h5py.Dataset) for o in f[g].values()) for g in groups}
    for group in groups:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # h5netcdf's phony_dims notice
            with xr.open_dataset(path, engine="h5netcdf", group=group) as ds:
                phony = [d for d in ds.sizes if str(d).startswith("phony_dim")]
                assert not phony, f"group {group}: unnamed dimensions {phony}"
                if holds_data[group]:
                    assert ds.data_vars or ds.coords, f"group {group}: xarray sees no data"
    return groups


@pytest.fixture
def install_entry_point(monkeypatch):
    """``install_entry_point(group, name, value)``: make ``importlib.metadata.entry_points``
    offer one more entry point in ``group``, as an installed package would (undone after the
    test)."""
    import importlib.metadata  # noqa: PLC0415

    real = importlib.metadata.entry_points
    extra: dict[str, list] = {}

    def entry_points(**params):
        if params.get("group") in extra:
            return list(extra[params["group"]])
        return real(**params)

    def install(group: str, name: str, value: str) -> None:
        extra.setdefault(group, []).append(
            importlib.metadata.EntryPoint(name=name, value=value, group=group)
        )
        monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)

    return install
