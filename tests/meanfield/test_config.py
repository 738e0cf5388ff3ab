"""Tests of the run-config schema: defaults, rejections, overrides, TOML round trip."""

from __future__ import annotations

import copy
import math
import tomllib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meanfield.config import (
    MODEL_SCHEMA,
    SCHEMA,
    Config,
    ConfigError,
    Field,
    load_config,
    parse_config,
)

ISOTROPIC_TOML = """
[model]
name = "isotropic_gaussians"
d = 40
delta = 0.8
activation = "mmn"
[init]
kappa = 0.8
[dynamics]
t_end = 20.0
save_times = [0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0]
xi = 1.0
beta = inf
[pde]
cells = 2400
r_max = 8.0
order = 2
backend = "auto"
"""

QUADRATIC = {
    "model": {"name": "quadratic", "stiffness": 2.0},
    "init": {"mean": 1.0, "std": 0.5},
    "dynamics": {"t_end": 1.0, "save_times": {"count": 5}, "beta": 4.0},
    "pde": {"cells": [200], "bounds": [[-4, 4]], "limiter": "minmod"},
    "particles": {"n": 100, "step": 1e-3},
    "study": {"n": [10, 20, 40]},
}


def iso() -> dict:
    return tomllib.loads(ISOTROPIC_TOML)


def error_of(data: dict, overrides: tuple[str, ...] = ()) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(data, overrides)
    message = str(info.value)
    assert len(message.splitlines()) == 1
    return message


def test_isotropic_defaults_are_filled():
    cfg = parse_config(iso())
    assert cfg.model["kernel_tol"] == 1e-10
    assert cfg.init["d"] == 40  # inherits model.d
    assert cfg.dynamics["save_times"] == (0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0)
    assert cfg.dynamics["beta"] == math.inf
    assert cfg.dynamics["l2"] == 0.0
    assert cfg.pde["cells"] == (2400,)
    assert (cfg.pde["limiter"], cfg.pde["cfl"], cfg.pde["dtype"]) == ("mc", 0.8, "float64")
    assert cfg.particles is None
    assert cfg.study is None


def test_quadratic_resolves_and_fills_defaults():
    cfg = parse_config(QUADRATIC)
    assert cfg.model == {"name": "quadratic", "ndim": 1, "stiffness": 2.0, "center": 0.0}
    assert cfg.pde["bounds"] == ((-4.0, 4.0),)
    assert isinstance(cfg.pde["bounds"][0][0], float)
    assert cfg.dynamics["save_times"] == (0.0, 0.25, 0.5, 0.75, 1.0)
    assert cfg.particles == {
        "n": 100,
        "replicas": 1,
        "method": "online_sgd",
        "step": 1e-3,
        "batch": 1,
        "seed": 0,
        "backend": "auto",
        "quench_batch": 0,
        "quench_time": 0.0,
        "test_points": 10000,
        "keep_theta": False,
        "engine": "auto",
        "dtype": "float64",
    }
    assert cfg.study == {"n": (10, 20, 40), "replicas": 32, "observables": ("risk", "mean_r", "w1")}


def test_default_save_times_count_11():
    data = iso()
    del data["dynamics"]["save_times"]
    times = parse_config(data).dynamics["save_times"]
    assert len(times) == 11
    assert times[0] == 0.0
    assert times[-1] == 20.0


def test_config_is_read_only():
    cfg = parse_config(iso(), ["dynamics.xi={power=-0.25}"])
    with pytest.raises(TypeError):
        cfg.model["d"] = 3  # type: ignore[index]
    with pytest.raises(TypeError):
        cfg.dynamics["xi"]["power"] = 0.0
    with pytest.raises(AttributeError):
        cfg.model = {}  # type: ignore[misc]


@pytest.mark.parametrize(
    "overrides",
    [
        (),
        ("dynamics.xi={power=-0.25}", "model.activation=[[0.5, -2.5], [1.5, 7.5]]"),
        ("model.d=inf", "init.d=40"),
        ("dynamics.xi.power=-0.5", "dynamics.xi.offset=1", "particles.n=10", "particles.step=0.01"),
    ],
)
def test_toml_round_trip(overrides):
    cfg = parse_config(iso(), overrides)
    text = cfg.to_toml()
    assert parse_config(tomllib.loads(text)) == cfg
    assert parse_config(cfg.to_dict()) == cfg


def test_round_trip_quadratic_and_inf_written_as_inf():
    cfg = parse_config(QUADRATIC)
    assert parse_config(tomllib.loads(cfg.to_toml())) == cfg
    text = parse_config(iso()).to_toml()
    assert "beta = inf" in text
    assert tomllib.loads(text)["dynamics"]["beta"] == math.inf


def test_xi_table_resolves_with_offset_default():
    cfg = parse_config(iso(), ["dynamics.xi={power=-0.25}"])
    assert cfg.dynamics["xi"] == {"power": -0.25, "offset": 0.0}
    assert isinstance(cfg.dynamics["xi"], dict)
    assert parse_config(iso(), ["dynamics.xi=2"]).dynamics["xi"] == 2.0


def test_ints_accepted_as_floats_and_converted():
    cfg = parse_config(iso(), ["dynamics.t_end=20", "pde.r_max=8"])
    assert isinstance(cfg.dynamics["t_end"], float)
    assert isinstance(cfg.pde["r_max"], float)


def test_integral_float_d_becomes_int():
    cfg = parse_config(iso(), ["model.d=40.0"])
    assert cfg.model["d"] == 40
    assert isinstance(cfg.model["d"], int)


@pytest.mark.parametrize(
    ("overrides", "fragments"),
    [
        (["pde.cels=3"], ["unknown key 'pde.cels'", "did you mean 'pde.cells'?"]),
        (["pde.zzz=3"], ["unknown key 'pde.zzz'", "allowed keys", "cells"]),
        (["pdee.cells=3"], ["unknown section 'pdee'", "[pde]"]),
        (["pde.bounds=[[0, 1]]"], ["'pde.bounds'", "model 'isotropic_gaussians'"]),
        (["init.std=1.0"], ["'init.std'", "model 'isotropic_gaussians'"]),
        (["model.delta=true"], ["'model.delta'", "boolean", "float"]),
        (["pde.cells='many'"], ["'pde.cells'", "string", "integer"]),
        (["pde.cells=2400.0"], ["'pde.cells'", "float"]),
        (["model.delta=1.5"], ["'model.delta'", "1.5", "0 < delta < 1"]),
        (["model.d=1"], ["'model.d'", "integer >= 2"]),
        (["model.d=40.5"], ["'model.d'", "40.5"]),
        (["model.d=true"], ["'model.d'", "boolean"]),
        (["model.d=-inf"], ["'model.d'"]),
        (["model.d=nan"], ["'model.d'"]),
        (["model.name='gauss'"], ["'model.name'", "quadratic"]),
        (["model.activation=relu"], ["'model.activation'", "'mmn'"]),
        (["model.activation=[[1, 0], [0, 1]]"], ["'model.activation'", "increasing"]),
        (["model.activation=[[1, 0]]"], ["'model.activation'"]),
        (["model.kernel_tol=0.1"], ["'model.kernel_tol'", "1e-3"]),
        (["init.kappa=0"], ["'init.kappa'", "> 0"]),
        (["model.d=inf"], ["'init.d'", "finite d"]),
        (["model.d=inf", "init.d=40", "dynamics.beta=10"], ["'dynamics.beta'", "finite d"]),
        (["dynamics.t_end=-1"], ["'dynamics.t_end'"]),
        (["dynamics.save_times=[0.0, 30.0]"], ["'dynamics.save_times'", "t_end"]),
        (["dynamics.save_times=[1.0, 1.0]"], ["'dynamics.save_times'", "increasing"]),
        (["dynamics.save_times={count=1}"], ["'dynamics.save_times'", "count"]),
        (["dynamics.xi=0"], ["'dynamics.xi'"]),
        (["dynamics.xi={power=0.5}"], ["'dynamics.xi'", "-1 < p <= 0"]),
        (["dynamics.xi={power=-0.5, offset=-1}"], ["'dynamics.xi'"]),
        (["dynamics.xi={powr=-0.5}"], ["'dynamics.xi'"]),
        (["dynamics.beta=0"], ["'dynamics.beta'"]),
        (["dynamics.l2=-1"], ["'dynamics.l2'", ">= 0"]),
        (["pde.cells=1"], ["'pde.cells'", ">= 2"]),
        (["pde.cells=[100, 100]"], ["'pde.cells'", "1 integers"]),
        (["pde.order=3"], ["'pde.order'", "1, 2"]),
        (["pde.limiter=superbee"], ["'pde.limiter'", "minmod"]),
        (["pde.backend=torch"], ["'pde.backend'", "cupy"]),
        (["pde.cfl=1.5"], ["'pde.cfl'", "cfl <= 1"]),
        (["pde.dtype=float16"], ["'pde.dtype'"]),
        (["particles.n=5"], ["missing required key 'particles.step'"]),
        (["particles.step=0.1", "particles.n=0"], ["'particles.n'", ">= 1"]),
        (["particles.step=0.1", "particles.n=5", "particles.method=adam"], ["'particles.method'"]),
        (["particles.step=0.1", "particles.n=5", "particles.seed=-1"], ["'particles.seed'"]),
        (["study.n=[]"], ["'study.n'"]),
        (["study.n=[20, 10]"], ["'study.n'", "increasing"]),
        (["study.n=[10]", "study.replicas=1"], ["'study.replicas'", ">= 2"]),
        (["study.n=[10]", "study.observables=['risk', 'energy']"], ["'study.observables'"]),
        (["dynamics.t_end=1e400"], ["'dynamics.t_end'"]),
    ],
)
def test_rejections_name_the_key(overrides, fragments):
    message = error_of(iso(), tuple(overrides))
    for fragment in fragments:
        assert fragment in message, message


def test_huge_int_for_a_float_key_is_a_config_error():
    data = iso()
    data["dynamics"]["t_end"] = 10**400
    assert "'dynamics.t_end'" in error_of(data)


def test_missing_sections_and_keys():
    data = iso()
    del data["pde"]
    assert "[pde]" in error_of(data)
    data = iso()
    del data["init"]
    assert "[init]" in error_of(data)
    data = iso()
    del data["model"]["delta"]
    assert "missing required key 'model.delta'" in error_of(data)
    data = iso()
    del data["model"]["name"]
    assert "'model.name'" in error_of(data)
    assert "missing required section [init]" in error_of({"model": {}})
    assert "a table of sections" in error_of([1, 2])  # type: ignore[arg-type]


def test_quadratic_rejects_isotropic_keys_and_requires_bounds():
    assert "'pde.r_max'" in error_of(QUADRATIC, ("pde.r_max=3.0",))
    data = copy.deepcopy(QUADRATIC)
    del data["pde"]["bounds"]
    assert "missing required key 'pde.bounds'" in error_of(data)
    assert "'pde.bounds'" in error_of(QUADRATIC, ("pde.bounds=[[1, 0]]",))
    assert "'pde.bounds'" in error_of(QUADRATIC, ("pde.bounds=[[0, 1], [0, 1]]",))


@pytest.mark.parametrize("item", ["pde.cells", "cells=3", "=3", "pde.=3", ".cells=3"])
def test_malformed_override(item):
    assert "override" in error_of(iso(), (item,))


def test_override_string_fallback_and_precedence():
    cfg = parse_config(iso(), ["model.activation=mmn_nonmonotone", "pde.cells=1200"])
    assert cfg.model["activation"] == "mmn_nonmonotone"
    assert cfg.pde["cells"] == (1200,)
    data = iso()
    parse_config(data, ["pde.cells=10"])
    assert data["pde"]["cells"] == 2400  # the input is not modified


def test_load_config_file_errors(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text(ISOTROPIC_TOML)
    assert load_config(good, ["pde.cells=1200"]).pde["cells"] == (1200,)
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\nname = 3\n")
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    assert "bad.toml" in str(info.value)
    assert len(str(info.value).splitlines()) == 1
    with pytest.raises(ConfigError, match="missing.toml"):
        load_config(tmp_path / "missing.toml")


def test_schema_is_data():
    sections = [*SCHEMA.values(), *[s for m in MODEL_SCHEMA.values() for s in m.values()]]
    for section in sections:
        for field in section.values():
            assert isinstance(field, Field)
            assert field.doc
    assert isinstance(parse_config(iso()), Config)


# ----------------------------------------------------------------------------- property test

_KEYS = sorted(
    {(s, k) for s, keys in SCHEMA.items() for k in keys}
    | {(s, k) for m in MODEL_SCHEMA.values() for s, keys in m.items() for k in keys}
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.text(max_size=8),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, 2, -1, 0.0, 1e-3, 1e-12, 1.5, 0.999, 10**400, math.inf, -math.inf]),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
_names = st.one_of(st.text(max_size=8), st.sampled_from(["cels", "count", "power", "d", "n"]))
_override_values = st.one_of(
    st.text(max_size=10),
    st.sampled_from(["inf", "-1", "0", "nan", "true", "[1, 2]", "{count = 3}", "'x'", "1e400"]),
)
_overrides = st.one_of(
    st.text(max_size=20),
    st.builds(
        lambda key, value: f"{key[0]}.{key[1]}={value}", st.sampled_from(_KEYS), _override_values
    ),
)
_mutation = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(_KEYS), _values),
    st.tuples(st.just("del"), st.sampled_from(_KEYS), st.none()),
    st.tuples(st.just("new_key"), st.tuples(st.sampled_from(list(SCHEMA)), _names), _values),
    st.tuples(st.just("new_section"), st.tuples(_names, st.none()), _values),
)


def _mutate(data: dict, mutation: tuple) -> None:
    op, (section, key), value = mutation
    if op == "new_section":
        data[section] = value
    elif op == "del":
        data.get(section, {}).pop(key, None)
    elif isinstance(data.get(section), dict):
        data[section][key] = value
    else:
        data[section] = {key: value}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from(["isotropic", "quadratic"]),
    mutations=st.lists(_mutation, min_size=1, max_size=3),
    overrides=st.lists(_overrides, max_size=2),
)
def test_mutated_configs_fail_only_with_one_line_config_errors(base, mutations, overrides):
    data = iso() if base == "isotropic" else copy.deepcopy(QUADRATIC)
    for mutation in mutations:
        _mutate(data, mutation)
    try:
        cfg = parse_config(data, overrides)
    except ConfigError as exc:  # any other exception type fails the test
        message = str(exc)
    else:
        assert parse_config(tomllib.loads(cfg.to_toml())) == cfg
        return
    assert message
    assert len(message.splitlines()) == 1
