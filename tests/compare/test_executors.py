"""Jobs on the serial executor, a spawn process pool and a dask cluster: same results, failed
jobs reported with their parameters, results handed out as they finish, arrays intact.

The job functions live at module level here so that spawned workers and dask workers can
import them as ``tests.compare.test_executors``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter

import numpy as np
import pytest

from compare.executors import JobResult, SerialExecutor, make_executor, run_jobs

KINDS = ("local", "processes", "dask")


def simulate_job(n_particles: int, seed: int) -> dict[str, np.ndarray]:
    """A deterministic stand-in for "simulate replicas with this seed": arrays of three dtypes."""
    rng = np.random.default_rng(seed)
    theta = rng.standard_normal((n_particles, 3))
    return {
        "theta": theta,
        "theta32": theta.astype(np.float32).T,  # a non-contiguous view
        "counts": rng.integers(0, 10, size=n_particles),
        "mean": theta.mean(axis=0),
    }


def fragile_job(n_particles: int, seed: int) -> dict[str, np.ndarray]:
    """:func:`simulate_job`, except that seed 2 raises with a two-line message."""
    if seed == 2:
        raise ValueError("seed 2 diverged\nat step 17")
    return simulate_job(n_particles, seed)


def sleepy_job(seconds: float, index: int) -> int:
    time.sleep(seconds)
    return index


def interrupting_job(index: int) -> int:
    """Stands for Ctrl-C arriving while the third job runs in this process."""
    if index == 2:
        raise KeyboardInterrupt
    return index


def pid_job() -> int:
    return os.getpid()


@pytest.fixture(scope="module")
def dask_address():
    """A two-worker dask cluster with worker processes, so jobs really travel by pickle."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
    ) as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module", params=KINDS)
def executor(request: pytest.FixtureRequest):
    """One executor of each kind, opened through make_executor and shared by the module."""
    if request.param == "local":
        scheduler = "local"
    elif request.param == "processes":
        scheduler = None
    else:
        scheduler = request.getfixturevalue("dask_address")
    with make_executor(scheduler, max_workers=2) as opened:
        yield opened


def _params(seeds) -> list[dict[str, int]]:
    return [{"n_particles": 50, "seed": seed} for seed in seeds]


def _assert_same_arrays(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert got.keys() == expected.keys()
    for key, array in expected.items():
        assert isinstance(got[key], np.ndarray)
        assert got[key].dtype == array.dtype and got[key].shape == array.shape
        np.testing.assert_array_equal(got[key], array)  # bit for bit: pickling is lossless


def test_every_executor_gives_the_serial_results_with_arrays_intact(executor) -> None:
    params = _params(range(6))
    results = run_jobs(executor, simulate_job, params)
    assert [r.params for r in results] == params  # in the order given, whatever the finish
    for result, p in zip(results, params, strict=True):
        assert result.ok and result.error is None and result.seconds >= 0.0
        _assert_same_arrays(result.value, simulate_job(**p))


def test_failed_job_is_reported_with_its_params_and_the_others_complete(executor) -> None:
    params = _params(range(5))
    seen: list[JobResult] = []
    results = run_jobs(executor, fragile_job, params, on_result=seen.append)
    failed = results[2]
    assert failed.value is None and not failed.ok
    assert "\n" not in failed.error
    assert failed.error.startswith("ValueError: seed 2 diverged at step 17")
    assert "'seed': 2" in failed.error and "'n_particles': 50" in failed.error
    assert failed.seconds >= 0.0  # the job ran; its time was measured in the worker
    for index in (0, 1, 3, 4):
        assert results[index].ok
        _assert_same_arrays(results[index].value, simulate_job(**params[index]))
    counts = Counter(r.params["seed"] for r in seen)
    assert counts == Counter(range(5))  # every finished job, failed one included, exactly once
    assert all(any(s is r for s in seen) for r in results)  # the very objects returned


@pytest.mark.parametrize("kind", ["processes", "dask"])
def test_results_reach_on_result_as_they_finish(kind: str, request) -> None:
    """The slow job is submitted first, yet the fast one is handed out long before the end."""
    scheduler = None if kind == "processes" else request.getfixturevalue("dask_address")
    calls: list[tuple[float, int]] = []
    with make_executor(scheduler, max_workers=2) as opened:
        run_jobs(opened, sleepy_job, [{"seconds": 0.3, "index": -1}])  # workers warm
        params = [{"seconds": 1.5, "index": 0}, {"seconds": 0.0, "index": 1}]
        results = run_jobs(
            opened,
            sleepy_job,
            params,
            on_result=lambda r: calls.append((time.monotonic(), r.value)),
        )
        returned = time.monotonic()
    assert [index for _, index in calls] == [1, 0]  # order of completion
    assert calls[0][0] < returned - 0.75  # 1.5 s job still running: wide margin for jitter
    assert [r.value for r in results] == [0, 1]  # returned in the order given
    assert results[0].seconds >= 1.5


def test_serial_results_are_written_before_a_later_job_interrupts(tmp_path) -> None:
    """The caller writes each result as it arrives; Ctrl-C in job 2 keeps jobs 0 and 1."""
    path = tmp_path / "results.jsonl"

    def write(result: JobResult) -> None:
        with path.open("a") as f:
            f.write(json.dumps({"index": result.value}) + "\n")

    with pytest.raises(KeyboardInterrupt), make_executor("local") as opened:
        run_jobs(opened, interrupting_job, [{"index": i} for i in range(5)], on_result=write)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == [{"index": 0}, {"index": 1}]  # job 3 and 4 never ran


def test_interrupt_cancels_pending_jobs_and_flushes_finished_ones() -> None:
    """Ctrl-C (raised here by the callback on the first result) stops a process pool study."""
    seen: list[int] = []

    def interrupt_on_first(result: JobResult) -> None:
        seen.append(result.value)
        if len(seen) == 1:
            time.sleep(1.0)  # job 1, already sent to the worker, finishes meanwhile (0.2 s)
            raise KeyboardInterrupt

    params = [{"seconds": 0.2, "index": i} for i in range(8)]
    with pytest.raises(KeyboardInterrupt), make_executor(None, max_workers=1) as opened:
        run_jobs(opened, sleepy_job, params, on_result=interrupt_on_first)
    assert len(seen) == len(set(seen))  # each finished job handed out once
    assert seen[:2] == [0, 1]  # job 1 finished before the interrupt: handed out, not lost
    assert len(seen) < len(params)  # the jobs still queued were cancelled, not run


def test_local_runs_in_this_process_and_the_pool_does_not() -> None:
    with make_executor("local") as opened:
        assert isinstance(opened, SerialExecutor)
        assert run_jobs(opened, pid_job, [{}])[0].value == os.getpid()
    with make_executor(None, max_workers=1) as opened:
        assert run_jobs(opened, pid_job, [{}])[0].value != os.getpid()


def test_unpicklable_params_and_bad_calls_are_failed_jobs_not_crashes() -> None:
    params = [{"seconds": 0.0, "index": lambda: 0}, {"seconds": 0.0}, {"seconds": 0.0, "index": 3}]
    with make_executor(None, max_workers=1) as opened:
        results = run_jobs(opened, sleepy_job, params)
    assert not results[0].ok and "index" in results[0].error  # lambdas do not pickle
    assert results[1].error.startswith("TypeError:") and "'seconds': 0.0" in results[1].error
    assert results[2].value == 3


def test_missing_distributed_gives_a_one_line_install_hint(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # makes the import fail
    with pytest.raises(ImportError, match=r"pip install meanfield-dd\[dask\]") as info:
        make_executor("tcp://127.0.0.1:8786")
    assert "\n" not in str(info.value)


def test_serial_executor_refuses_jobs_after_shutdown() -> None:
    with make_executor("local") as opened:
        pass
    with pytest.raises(RuntimeError, match="shutdown"):
        opened.submit(pid_job)
