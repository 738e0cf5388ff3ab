"""Config errors found after the schema parse name their key (issue 18, item 6).

Some input is rejected only when a parsed config becomes the objects of a run: a grid too small
for the initial law, a kernel series or quadrature that cannot reach its tolerance on the grid,
a backend this machine lacks, output times that are not whole particle steps. Each is a
:class:`~meanfield.config.ConfigError` whose message starts with the key (or keys) at fault and
says what would be accepted; ``meanfield run`` prints it as one ``error:`` line, status 2. The
model and law classes, used from Python too, keep raising their plain ``ValueError``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from compare.cli import main
from meanfield.backends import available_backends
from meanfield.config import ConfigError, load_config, parse_config
from meanfield.config.builders import build_particle_setup, build_pde_setup
from meanfield.grid import Grid
from meanfield.model import GridTooSmallError, IsotropicGaussians, activation_from_spec
from meanfield.model.laws import ScaledChiLaw, initial_density
from particles.run import build_particle_run

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "data" / "configs"
ISO = CONFIGS / "mmn-isotropic.toml"
ANISO = CONFIGS / "mmn-anisotropic.toml"
RELU = CONFIGS / "mmn-relu-selection.toml"
TEACHER = CONFIGS / "teacher-student-2d.toml"
OU = CONFIGS / "ou-3d.toml"
PSPIN = CONFIGS / "rve-pspin-d10.toml"
NO_GPU = "cupy" not in available_backends()


def _pde_error(path: Path, *overrides: str) -> ConfigError:
    config = load_config(path, overrides)
    with pytest.raises(ConfigError) as info:
        build_pde_setup(config)
    return info.value


def _particles_error(path: Path, *overrides: str) -> ConfigError:
    config = load_config(path, overrides)
    with pytest.raises(ConfigError) as info:
        build_particle_run(build_particle_setup(config), n=2, replicas=1)
    return info.value


# ----------------------------------------------------------------------------- the PDE setup

#: config, overrides, the key the message starts with, fragments the message holds
PDE_CASES = [
    pytest.param(
        ISO,
        ("pde.r_max=0.05",),
        "pde.r_max",
        ("pde.r_max = 0.05", "cannot hold the initial law", "pde.r_max >= ", "init.kappa"),
        id="iso-r_max",
    ),
    pytest.param(
        ISO,
        ("init.kappa=5.0", "pde.cells=50"),
        "pde.r_max",
        ("cannot hold the initial law", "init.kappa"),
        id="iso-kappa",
    ),
    pytest.param(
        ANISO,
        ("pde.r_max=0.1", "pde.cells=[8, 8]"),
        "pde.r_max",
        ("cannot hold the initial law", "pde.r_max >= "),
        id="aniso-r_max",
    ),
    pytest.param(
        RELU,
        ("pde.cells=[4, 4, 4, 4]", "pde.bounds=[[-0.1, 0.1], [-3, 3], [0, 3], [0, 3]]"),
        "pde.bounds",
        ("cannot hold the initial law", "init.a_std", "or wider"),
        id="relu-bounds",
    ),
    pytest.param(
        TEACHER,
        ("pde.cells=[8, 8]", "pde.bounds=[[0, 0.1], [0, 0.1]]"),
        "pde.bounds",
        ("cannot hold the initial law", "init.mean, init.std", "or wider"),
        id="teacher-bounds",
    ),
    pytest.param(
        OU,
        ("pde.cells=[4, 4, 4]", "pde.bounds=[[0, 0.1], [0, 0.1], [0, 0.1]]"),
        "pde.bounds",
        ("cannot hold the initial law",),
        id="quadratic-bounds",
    ),
    pytest.param(
        ISO,
        ("model.d=3", "init.d=3", "model.kernel_tol=1e-14", "pde.cells=20"),
        "model.kernel_tol",
        ("pde.r_max = 8", "does not reach kernel_tol", "at most 1e-3"),
        id="iso-kernel_tol",
    ),
    pytest.param(
        TEACHER,
        (
            "pde.bounds=[[-300, 300], [-300, 300]]",
            "pde.cells=[8, 8]",
            "init.std=30.0",
            "model.quad_tol=1e-10",
        ),
        "model.quad_tol",
        (
            "pde.bounds = [[-300, 300], [-300, 300]]",
            "quadrature did not converge",
            "model.quad_order",
        ),
        id="teacher-quad_tol",
    ),
    pytest.param(
        ISO,
        ("pde.dtype='float32'", "pde.cells=20"),
        "pde.dtype",
        ("allowed: 'float64'",),
        id="pde-dtype",
    ),
    pytest.param(
        ISO,
        ("pde.backend='cupy'", "pde.cells=20"),
        "pde.backend",
        ("cuda12 or cuda13", "'numpy'"),
        id="pde-backend",
        marks=pytest.mark.skipif(not NO_GPU, reason="a GPU is present"),
    ),
]


@pytest.mark.parametrize(("path", "overrides", "key", "fragments"), PDE_CASES)
def test_pde_setup_errors_start_with_the_key(path, overrides, key, fragments) -> None:
    message = str(_pde_error(path, *overrides))
    assert message.startswith(key), message
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_r_max_too_small_on_the_isotropic_config() -> None:
    """The issue's example: ``pde.r_max = 0.05`` on the shipped isotropic config."""
    err = _pde_error(ISO, "pde.r_max=0.05")
    assert str(err).startswith("pde.r_max = 0.05: the grid cannot hold the initial law")
    assert isinstance(err, GridTooSmallError)  # still catchable as before


@pytest.mark.parametrize(
    ("path", "overrides"),
    [
        (ISO, ("pde.r_max=0.05", "pde.cells=50")),
        (ISO, ("init.kappa=5.0", "pde.cells=50")),
        (ANISO, ("pde.r_max=0.1", "pde.cells=[8, 8]")),
        (RELU, ("pde.cells=[4, 4, 4, 4]", "pde.bounds=[[-0.1, 0.1], [-3, 3], [0, 3], [0, 3]]")),
        (TEACHER, ("pde.cells=[8, 8]", "pde.bounds=[[0, 0.1], [0, 0.1]]")),
        (OU, ("pde.cells=[4, 4, 4]", "pde.bounds=[[0, 0.1], [0, 0.1], [0, 0.1]]")),
    ],
    ids=["iso-r_max", "iso-kappa", "aniso", "relu", "teacher", "quadratic"],
)
def test_the_grid_the_message_suggests_is_accepted(path, overrides) -> None:
    message = str(_pde_error(path, *overrides))
    found = re.search(r"allowed: pde\.r_max >= (\S+) ", message) or re.search(
        r"allowed: (pde\.bounds = \[\[.*?\]\]) or wider", message
    )
    assert found, message
    text = found.group(1)
    fix = (
        f"pde.r_max={text}"
        if found.re.pattern.startswith("allowed: pde\\.r_max")
        else text.replace(" = ", "=", 1)
    )
    build_pde_setup(load_config(path, [*overrides, fix]))


# ----------------------------------------------------------------------------- the particle run

PARTICLE_CASES = [
    pytest.param(
        ISO,
        ("particles.step=3e-5",),
        "dynamics.save_times",
        ("not a multiple of particles.step = 3e-05", "e.g. 2.5e-05"),
        id="save_times",
    ),
    pytest.param(
        ISO,
        ("particles.quench_batch=10", "particles.quench_time=0.33333"),
        "particles.quench_time",
        ("not a multiple of particles.step", "e.g. 0.33332"),
        id="quench_time",
    ),
    pytest.param(
        ISO,
        ("dynamics.beta=10.0",),
        "particles.method",
        ("dynamics.beta = 10", "noisy_sgd"),
        id="method-beta",
    ),
    pytest.param(
        PSPIN,
        ("particles.method='gd'", "particles.engine='compiled'"),
        "particles.engine",
        ("not available", "'numpy' or 'auto'"),
        id="engine",
    ),
    pytest.param(
        ISO,
        ("particles.engine='numpy'", "particles.dtype='float32'"),
        "particles.dtype",
        ("compiled engine",),
        id="dtype",
    ),
    pytest.param(ISO, ("model.d=inf", "init.d=40"), "model.d", ("integer >= 2",), id="d-inf"),
    pytest.param(
        ISO,
        ("particles.backend='cupy'",),
        "particles.backend",
        ("cuda12 or cuda13", "'numpy'"),
        id="backend",
        marks=pytest.mark.skipif(not NO_GPU, reason="a GPU is present"),
    ),
]


@pytest.mark.parametrize(("path", "overrides", "key", "fragments"), PARTICLE_CASES)
def test_particle_run_errors_start_with_the_key(path, overrides, key, fragments) -> None:
    message = str(_particles_error(path, *overrides))
    assert message.startswith(key), message
    for fragment in fragments:
        assert fragment in message, message


def test_the_step_the_message_suggests_is_accepted() -> None:
    message = str(_particles_error(ISO, "particles.step=3e-5"))
    step = re.search(r"e\.g\. (\S+)$", message).group(1)
    setup = build_particle_setup(load_config(ISO, [f"particles.step={step}"]))
    build_particle_run(setup, n=2, replicas=1)


# ----------------------------------------------------------------------------- parse time

_TEACHER_ONLY_PARTICLES = {
    "model": {"name": "teacher_student", "target": "sin", "trained": ["w", "b"]},
    "init": {"mean": [0.5, 0.0], "std": 0.25},
    "dynamics": {"t_end": 1.0, "save_times": {"count": 3}},
    "particles": {"n": 10, "method": "gd", "step": 0.1},
}


@pytest.mark.parametrize(
    ("path", "overrides", "key"),
    [
        (RELU, ("pde.bounds=[[-3, 3], [-3, 3], [-1, 3], [0, 3]]",), "pde.bounds"),
        (PSPIN, ("pde.cells=10", "pde.bounds=[[0, 1]]"), "model.name"),
        (ANISO, ("init.d=8",), "init.d"),
        (ISO, ("particles.quench_batch=10", "particles.quench_time=30.0"), "particles.quench_time"),
    ],
    ids=["relu-negative-radius", "pspin-pde", "aniso-init-d", "quench-time"],
)
def test_parse_time_combination_checks_name_the_key(path, overrides, key) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    assert key in str(info.value).split(":")[0], str(info.value)


def test_teacher_without_pde_needs_quad_order() -> None:
    with pytest.raises(ConfigError, match=r"model\.quad_order"):
        parse_config(_TEACHER_ONLY_PARTICLES)


# ----------------------------------------------------------------------------- the command line


def test_cli_prints_the_key_and_exits_2(tmp_path, capsys) -> None:
    out = tmp_path / "out.h5"
    status = main(["run", str(ISO), "-o", str(out), "--quiet", "--set", "pde.r_max=0.05"])
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.startswith("error: pde.r_max = 0.05") and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and not out.exists()


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (("pde.r_max=0.05",), "pde.r_max"),
        (("particles.step=3e-5",), "dynamics.save_times"),
        pytest.param(
            ("particles.backend='cupy'",),
            "particles.backend",
            marks=pytest.mark.skipif(not NO_GPU, reason="a GPU is present"),
        ),
    ],
)
def test_cli_dry_run_prints_the_key_and_exits_2(tmp_path, capsys, overrides, key) -> None:
    args = ["run", str(ISO), "-o", str(tmp_path / "out.h5"), "--dry-run"]
    for item in overrides:
        args += ["--set", item]
    status = main(args)
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.startswith(f"error: {key}") and len(err.strip().splitlines()) == 1, err


# ----------------------------------------------------------------------------- the classes


def test_model_and_law_classes_keep_raising_plain_value_errors() -> None:
    model = IsotropicGaussians(
        d=3.0, delta=0.8, activation=activation_from_spec("mmn"), kernel_tol=1e-14
    )
    grid = Grid(((0.0, 8.0),), (20,))
    with pytest.raises(ValueError, match="kernel_tol") as info:
        model.validate(grid)
    assert not isinstance(info.value, ConfigError)
    with pytest.raises(GridTooSmallError, match="enlarge the domain") as info:
        initial_density(ScaledChiLaw(kappa=0.8, d=40), Grid(((0.0, 0.05),), (10,)))
    assert not isinstance(info.value, ConfigError)
