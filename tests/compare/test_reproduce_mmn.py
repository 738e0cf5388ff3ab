"""MMN's experiments through ``meanfield reproduce`` (``compare/reproduce/mmn.py``).

The small scales run here with fewer saved times; every check is against something the driver
does not compute itself: the exact t = 0 identity of i.i.d. units (a Monte Carlo of the
particles' exact risk), or the paper's qualitative outcome (the non-monotone activation
collapses the units from kappa = 0.1 and grows them from 0.4).
"""

from __future__ import annotations

import math
import tomllib

import numpy as np
import pytest

from compare.reproduce import EXPERIMENTS, Options, mmn, read_results, reproduce
from compare.reproduce.base import load_raw
from meanfield.backends import get_backend
from meanfield.config import ConfigError, parse_config
from meanfield.config.builders import build_particle_setup
from particles.run import build_particle_run

QUIET = Options(workers=1, scheduler="local", progress=False, report=lambda line: None)


def _rows(rows: list, quantity: str) -> dict[float, float]:
    return {r.x: r.ours for r in rows if r.quantity == quantity}


def test_iid_bias_is_the_t0_gap_of_the_exact_particle_risk() -> None:
    """At t = 0 the units are i.i.d. from rho_0: E R(mu_N) - R(rho_0) = iid_bias exactly. The
    particles' exact pair risk averaged over 400 replicas of N = 20 units (an independent code
    path: closed-form pair integrals in R^40) must match it within 4.5 standard errors plus the
    grid's quadrature error of R(rho_0) (1200 cells: below 1e-5)."""
    raw = load_raw(
        EXPERIMENTS["mmn-fig1"], "small", ["dynamics.save_times=[0.0]", "dynamics.t_end=0.1"]
    )
    variant = EXPERIMENTS["mmn-fig1"].plan(raw).variants[0]
    pde = mmn.run_job(variant.config, "pde", 0, 0, False)
    n, replicas = 20, 400
    bias = mmn.iid_bias(pde, 1.0, n)[0]
    config = parse_config(tomllib.loads(variant.config))
    run = build_particle_run(build_particle_setup(config), n=n, replicas=replicas, seed=5)
    risks = np.asarray(run.model.population_risk(run.state.theta, None, get_backend("numpy")))
    se = risks.std(ddof=1) / math.sqrt(replicas)
    assert abs(risks.mean() - pde["risk"][0] - bias) < 4.5 * se + 1e-5, (
        risks.mean() - pde["risk"][0],
        bias,
        se,
    )
    assert bias > 6 * se  # the identity has power: 7.41 / 20 = 0.37 is many standard errors
    assert n * bias == pytest.approx(7.41, abs=0.01)  # docs/studies.md's exact value at d = 40


def test_fig1_small_runs_and_agrees_at_t0(tmp_path) -> None:
    sets = ["dynamics.save_times=[0.0, 0.5]", "dynamics.t_end=0.5", "experiment.hist_times=[0.5]"]
    rows = reproduce("mmn-fig1", tmp_path, scale="small", overrides=sets, options=QUIET)
    assert (tmp_path / "mmn-fig1.png").stat().st_size > 10_000
    pde, sgd = _rows(rows, "risk_pde"), _rows(rows, "risk_sgd")
    assert sorted(pde) == [0.0, 0.5]
    assert sgd[0.5] < sgd[0.0] - 0.4  # SGD learns: 1.75 -> 1.14
    assert _rows(rows, "risk_agree")[0.0] == 1.0
    spread_clt = _rows(rows, "risk_spread_clt")
    assert all(np.isfinite(v) and v > 0 for v in spread_clt.values())
    # the CSV holds the same rows, and a rerun takes every job from the cache
    assert len(read_results(tmp_path / "results.csv")) == len(rows)
    lines: list[str] = []
    again = reproduce(
        "mmn-fig1",
        tmp_path,
        scale="small",
        overrides=sets,
        options=Options(workers=1, scheduler="local", progress=False, report=lines.append),
    )
    assert not any("jobs to run" in line for line in lines)
    assert [r.ours for r in again] == [r.ours for r in rows]


def test_nonmonotone_collapses_from_the_narrow_start_only(tmp_path) -> None:
    """MMN's outcome in the PDE: from kappa = 0.1 the units shrink towards w = 0, from 0.4 they
    grow, and SGD follows the growth. (SGD from kappa = 0.1 at d = 320 grows instead at any step
    the small scale affords: the step's noise, docs/reproductions.md.)"""
    sets = ["experiment.clt=false", "dynamics.save_times=[0.0, 1.0]", "dynamics.t_end=1.0"]
    rows = reproduce("mmn-nonmonotone", tmp_path, scale="small", overrides=sets, options=QUIET)
    for label, sign in (("kappa=0.1", -1.0), ("kappa=0.4", 1.0)):
        pde = _rows(rows, f"{label}:mean_r_pde")
        assert sign * (pde[1.0] - pde[0.0]) > 0.01, (label, pde)
        assert _rows(rows, f"{label}:risk_agree")[0.0] == 1.0
    sgd = _rows(rows, "kappa=0.4:mean_r_sgd")
    assert sgd[1.0] - sgd[0.0] > 0.1, sgd
    assert (tmp_path / "mmn-nonmonotone.png").exists()


def test_relu_selection_small_runs_on_the_4d_grid(tmp_path) -> None:
    sets = ["dynamics.save_times=[0.0, 1.0]", "dynamics.t_end=1.0"]
    rows = reproduce("mmn-relu-selection", tmp_path, scale="small", overrides=sets, options=QUIET)
    for name in ("a", "b", "r1", "r2"):
        assert set(_rows(rows, f"mean_{name}_pde")) == {0.0, 1.0}
    # E a = 0 at t = 0: R(rho_0) = 1 exactly (the cell masses are exact and centred)
    assert _rows(rows, "risk_pde")[0.0] == pytest.approx(1.0, abs=1e-6)
    assert _rows(rows, "risk_sgd")[1.0] < _rows(rows, "risk_sgd")[0.0]
    assert (tmp_path / "mmn-relu-selection-marginals.png").exists()


def test_bad_experiment_keys_are_named(tmp_path) -> None:
    with pytest.raises(ConfigError, match="experiment.variants.bad"):
        reproduce(
            "mmn-nonmonotone",
            tmp_path,
            scale="small",
            overrides=['experiment.variants.bad="init.kappa=0.2"'],
            options=QUIET,
        )
    with pytest.raises(ConfigError, match="experiment.replicas_per_job"):
        reproduce(
            "mmn-fig1",
            tmp_path,
            scale="small",
            overrides=["experiment.replicas_per_job=0"],
            options=QUIET,
        )
    with pytest.raises(ConfigError, match="init.kappa"):
        reproduce("mmn-fig1", tmp_path, scale="small", overrides=["init.kappa=-1.0"], options=QUIET)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mmn-fig1", "mmn-nonmonotone", "mmn-relu-selection"])
def test_small_scale_runs_as_shipped(tmp_path, name: str) -> None:
    """``meanfield reproduce NAME --scale small`` as shipped (75 s, 145 s and 6 s on two cores,
    most of it the CLT layer's Monte Carlo of the SGD term)."""
    rows = reproduce(name, tmp_path, scale="small", options=QUIET)
    agree = [r for r in rows if r.quantity.endswith("risk_agree") and r.x == 0.0]
    assert agree and all(r.ours == 1.0 for r in agree)
