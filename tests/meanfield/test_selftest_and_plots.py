"""The installation self-test and the run figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from meanfield.config import load_config
from meanfield.config.driver import run_pde
from meanfield.plotting import plot_file
from meanfield.selftest import run_selftest

ROOT = Path(__file__).resolve().parents[2]


def test_selftest_passes_and_reports_every_model() -> None:
    lines: list[str] = []
    assert run_selftest(lines.append)
    assert sum(line.startswith("ok") for line in lines) >= 10
    assert lines[-1] == "selftest passed"
    text = "\n".join(lines)
    for family in (
        "isotropic",
        "anisotropic",
        "teacher-student",
        "quadratic 3-D",
        "linear unit",
        "cosine interaction",
    ):  # every model the PDE can run
        assert family in text, family


def test_plot_file_writes_a_png(tmp_path: Path) -> None:
    config = load_config(
        ROOT / "data/configs/mmn-isotropic.toml",
        ["pde.cells=300", "dynamics.t_end=1.0", "dynamics.save_times=[0, 0.5, 1]"],
    )
    run_pde(config, tmp_path / "run.h5", progress=False)
    paths = plot_file(tmp_path / "run.h5", tmp_path / "fig")
    assert len(paths) == 1 and paths[0].suffix == ".png"
    with open(paths[0], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert np.isfinite(paths[0].stat().st_size) and paths[0].stat().st_size > 10_000
