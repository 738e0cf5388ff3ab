"""An experiment outside the package (``tests/plugin_experiments/toy.py``) through
``meanfield reproduce``: named ``module:Attribute`` or by an entry point, as plug-in models are."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from compare.cli import main
from compare.reproduce import ENTRY_POINT_GROUP, EXPERIMENTS, base, get_experiment, read_results
from meanfield.fields import ConfigError

TOY = "tests.plugin_experiments.toy:EXPERIMENT"
LOCAL = ["--workers", "1", "--scheduler", "local"]
DOC = Path(__file__).resolve().parents[2] / "docs" / "extending.md"


@pytest.fixture(autouse=True)
def _fresh_registry(monkeypatch) -> None:
    """Each test loads the plug-in afresh (the registry keeps what it loaded by name)."""
    monkeypatch.setattr(base.REGISTRY, "_loaded", {})


def test_a_plugin_experiment_runs_through_the_command(tmp_path, capsys) -> None:
    out = tmp_path / "toy"
    assert main(["reproduce", TOY, "-o", str(out), *LOCAL]) == 0
    report = capsys.readouterr().out
    assert "12 of 12 jobs to run" in report and "slope" in report
    table = read_results(out / "results.csv")
    errors = {r["x"]: r for r in table if r["quantity"] == "abs_error"}
    assert sorted(errors) == [10.0, 100.0, 1000.0]
    for row in errors.values():
        assert row["experiment"] == "toy-lln"
        # 800 draws of |mean|: the mean is within 10 % of sqrt(2 / (pi n)) (5 standard errors)
        assert row["ours"] == pytest.approx(row["paper_low"], rel=0.1)
        assert row["ours_low"] <= row["ours"] <= row["ours_high"]
    slope = next(r for r in table if r["quantity"] == "slope")
    assert slope["ours_low"] < -0.5 < slope["ours_high"]
    assert len(list((out / "runs").glob("*.npz"))) == 12  # 3 widths x 4 seeds
    assert (out / "results.md").read_text().startswith("| quantity |")
    assert (out / "toy-lln.png").stat().st_size > 1000
    # a rerun takes every job from DIR/runs and writes the same table
    before = (out / "results.csv").read_bytes()
    assert main(["reproduce", TOY, "-o", str(out), *LOCAL]) == 0
    assert "jobs to run" not in capsys.readouterr().out
    assert (out / "results.csv").read_bytes() == before


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("protocol.repeats=1", "invalid value for 'protocol.repeats': 1; allowed: an integer >= 2"),
        ("protocol.repeat=3", "unknown key 'protocol.repeat'; did you mean 'protocol.repeats'?"),
        ("study.n=[10, 0]", "invalid value for 'study.n'"),
        ("study.seeds=2.0", "wrong type for 'study.seeds': got float 2.0, expected integer"),
        ("model.name='x'", "unknown section 'model' in experiment 'toy-lln'"),
    ],
)
def test_its_keys_are_checked_before_any_work(
    tmp_path, capsys, override: str, message: str
) -> None:
    assert main(["reproduce", TOY, "-o", str(tmp_path / "x"), "--set", override, *LOCAL]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err, err
    assert not (tmp_path / "x").exists()


def test_a_missing_key_names_itself_and_its_doc(tmp_path) -> None:
    raw = {"study": {"n": [10]}, "protocol": {"repeats": 2}}
    with pytest.raises(
        ConfigError,
        match=re.escape("missing required key 'study.seeds' (jobs (independent streams) per n)"),
    ):
        get_experiment(TOY).run(raw, tmp_path)


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("tests.plugin_experiments.toy:NOPE", "has no attribute 'NOPE'"),
        ("tests.plugin_experiments.nowhere:EXPERIMENT", "ModuleNotFoundError"),
        ("tests.plugin_experiments.toy:LawOfLargeNumbers", "is a type, not an Experiment"),
        ("toy-lln", "unknown experiment 'toy-lln'"),  # its name alone: not installed
    ],
)
def test_a_bad_reference_is_a_usage_error(tmp_path, capsys, name: str, why: str) -> None:
    assert main(["reproduce", name, "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert why in err and "rve-pspin" in err, err  # the message lists the built-in names


def test_a_scale_it_does_not_ship_is_a_usage_error(tmp_path, capsys) -> None:
    assert main(["reproduce", TOY, "--scale", "paper", "-o", str(tmp_path)]) == 2
    assert "--scale must be one of small" in capsys.readouterr().err


def test_an_installed_entry_point_names_an_experiment(
    install_entry_point, tmp_path, capsys
) -> None:
    install_entry_point(ENTRY_POINT_GROUP, "lln", TOY)
    assert get_experiment("lln") is get_experiment(TOY)
    assert "lln" not in EXPERIMENTS  # the built-in registry is untouched
    assert main(["reproduce", "--list"]) == 0
    listed = capsys.readouterr().out
    assert "toy-lln" in listed and "rve-kernel" in listed
    assert (
        main(
            [
                "reproduce",
                "lln",
                "-o",
                str(tmp_path),
                "--set",
                "study.n=[10, 20]",
                "--quiet",
                *LOCAL,
            ]
        )
        == 0
    )
    assert capsys.readouterr().out == ""
    assert {r["x"] for r in read_results(tmp_path / "results.csv")} == {10.0, 20.0, None}


def test_the_docs_show_the_worked_example_as_it_is() -> None:
    """docs/extending.md, "A new experiment", shows this module and its config in full (its
    blocks run in tests/test_docs_extending.py)."""
    from tests.test_docs_extending import file_blocks  # noqa: PLC0415

    text = DOC.read_text()
    section = text[text.index("## A new experiment") :]
    assert "(../tests/plugin_experiments/toy.py)" in section
    files = file_blocks(section)
    here = Path(__file__).resolve().parents[1] / "plugin_experiments"
    assert files["toy.py"] == (here / "toy.py").read_text()
    assert (
        files["configs/toy-lln.small.toml"] == (here / "configs" / "toy-lln.small.toml").read_text()
    )
