"""A run is built once: `meanfield run` builds the model and each backend one time for the PDE and
the particles together (the config layer's :func:`build_run_setup`), and the particles take the
typed setup, with every option under its config name."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from compare.runner import run_config
from meanfield.config import load_config
from meanfield.config.builders import build_run_setup
from meanfield.model import registry

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "data" / "configs" / "mmn-isotropic.toml"
SMALL = [
    "pde.cells=200",
    "dynamics.t_end=0.01",
    "dynamics.save_times=[0.0, 0.01]",
    "particles.n=8",
    "particles.replicas=1",
    "particles.step=0.005",
]


@pytest.fixture
def counts(monkeypatch) -> dict[str, int]:
    """Count the model builds (through the registry entry) and the backend builds."""
    seen = {"model": 0, "backend": 0}
    entry = registry.model_entry("isotropic_gaussians")

    def build(*args, **kwargs):
        seen["model"] += 1
        return entry.build(*args, **kwargs)

    def get_backend(name):
        seen["backend"] += 1
        return real_get_backend(name)

    import meanfield.config.builders as builders  # noqa: PLC0415

    real_get_backend = builders.get_backend
    monkeypatch.setitem(
        registry.REGISTRY._builtin, "isotropic_gaussians", dataclasses.replace(entry, build=build)
    )
    monkeypatch.setattr(builders, "get_backend", get_backend)
    return seen


def test_run_builds_the_model_and_the_backend_once(tmp_path: Path, counts) -> None:
    config = load_config(CONFIG, SMALL)
    results = run_config(config, tmp_path / "run.h5", progress=False)
    assert set(results) == {"pde", "particles"}  # both parts ran
    assert counts == {"model": 1, "backend": 1}


def test_two_backend_names_build_two_backends(counts) -> None:
    """The count above can fail: a PDE on "numpy" and particles on "auto" are two backends."""
    build_run_setup(load_config(CONFIG, [*SMALL, 'pde.backend="numpy"']))
    assert counts == {"model": 1, "backend": 2}


def test_the_particle_options_keep_their_config_names() -> None:
    config = load_config(CONFIG, [*SMALL, "particles.batch=3"])
    spec = build_run_setup(config).particles.spec
    for key in ("n", "replicas", "seed", "method", "step", "batch"):
        assert getattr(spec, key) == config.particles[key], key
    assert spec.save_times == tuple(config.dynamics["save_times"])
