"""Run a study's independent jobs on any :class:`concurrent.futures.Executor`.

A study (LLN, CLT, error scaling) is a list of independent jobs, e.g. "simulate ``R`` replicas
of ``N`` particles with seed ``s`` and return the arrays". :func:`run_jobs` submits
``fn(**params)`` for each ``params`` to an executor, hands every result to a callback the
moment it is done (so the caller writes it to HDF5 at once: a later crash loses nothing
already computed), reports a failed job with its parameters instead of raising, and returns
every :class:`JobResult` in the order of the parameters. :func:`make_executor` opens the
executor that a study runs on:

=========================  ====================================================================
``scheduler``              executor
=========================  ====================================================================
``None``                   :class:`concurrent.futures.ProcessPoolExecutor`, ``spawn`` workers
``"local"``                :class:`SerialExecutor`: every job runs at once, in this process
an address                 a ``dask.distributed`` cluster, ``Client(address).get_executor()``
=========================  ====================================================================

Worker processes start with the ``spawn`` method everywhere. ``fork`` copies a process that
already runs threads (the tqdm monitor, a dask client's event loop, BLAS thread pools) and
holds library state that does not survive a fork (HDF5's global lock inside h5py, a CUDA
context opened by CuPy, which a forked child cannot use at all): a forked worker may deadlock
or crash. ``forkserver`` is safe too but exists only on POSIX. ``spawn`` is the default on
macOS and Windows and the only method that exists everywhere, so a study behaves the same on
every platform; it costs one fresh interpreter per worker (the imports, well under a second),
paid once per pool. What it asks of a job is what a dask cluster asks anyway: ``fn`` is
defined at module level in an importable module, and ``params`` and the return value pickle.
A script that starts a pool keeps its top-level code under ``if __name__ == "__main__":``
(each spawned worker imports the script; code typed on stdin cannot be imported at all).

Examples
--------
>>> from fractions import Fraction
>>> from compare.executors import make_executor, run_jobs
>>> params_list = [{"numerator": 7, "denominator": 2}, {"numerator": 1, "denominator": 0}]
>>> with make_executor("local") as executor:
...     results = run_jobs(executor, Fraction, params_list)
>>> results[0].value
Fraction(7, 2)
>>> results[1].error
"ZeroDivisionError: Fraction(1, 0) | params: {'denominator': 0, 'numerator': 1}"
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import math
import multiprocessing
import reprlib
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["JobResult", "SerialExecutor", "make_executor", "run_jobs"]

#: the one-line hint given when a dask scheduler is asked for without ``distributed``
DASK_HINT = "pip install meanfield-dd[dask]"


@dataclass(frozen=True)
class JobResult:
    """The outcome of one job.

    Attributes
    ----------
    params : Mapping[str, Any]
        The job's keyword arguments, the very object given to :func:`run_jobs`.
    value : Any or None
        What ``fn(**params)`` returned; ``None`` when the job failed.
    error : str or None
        ``None`` on success; otherwise one line, ``"ExceptionType: message | params: {...}"``.
    seconds : float
        Wall time of the call, measured inside the worker; NaN when the job never ran or its
        outcome was lost on the way back (worker died, result did not pickle, cancelled).
    """

    params: Mapping[str, Any]
    value: Any | None
    error: str | None
    seconds: float

    @property
    def ok(self) -> bool:
        """Whether the job succeeded (``error is None``)."""
        return self.error is None


class SerialExecutor(cf.Executor):
    """An executor that runs each job at once, in the calling process, when it is submitted.

    For debugging (a breakpoint or a traceback inside a job works as usual) and for tests.
    No thread or process is involved. ``submit`` returns a future that is already done; an
    ``Exception`` raised by the job is stored in the future, while ``KeyboardInterrupt`` and
    ``SystemExit`` are stored and then propagate, so Ctrl-C stops a serial study at once.
    """

    def __init__(self) -> None:
        self._shut_down = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        """Run ``fn(*args, **kwargs)`` now; return its finished future."""
        if self._shut_down:
            raise RuntimeError("cannot schedule new futures after shutdown")
        future: cf.Future = cf.Future()
        future.set_running_or_notify_cancel()
        try:
            value = fn(*args, **kwargs)
        except Exception as exc:
            future.set_exception(exc)
        except BaseException as exc:
            future.set_exception(exc)
            raise
        else:
            future.set_result(value)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Refuse further jobs; nothing is ever pending, so there is nothing to wait for."""
        self._shut_down = True


def make_executor(
    scheduler: str | None = None, max_workers: int | None = None
) -> contextlib.AbstractContextManager[cf.Executor]:
    """Open the executor a study runs on, as a context manager that closes it on exit.

    Parameters
    ----------
    scheduler : str or None
        ``None``: a local process pool (``spawn`` start method, see the module docstring).
        ``"local"``: a :class:`SerialExecutor`, every job in this process.
        Anything else: the address of a running ``dask.distributed`` scheduler, e.g.
        ``"tcp://10.0.0.5:8786"``; its workers must be able to import ``compare`` and ``fn``.
    max_workers : int or None
        Number of worker processes of the local pool (``None``: one per CPU). Ignored by
        ``"local"`` and by a dask cluster, whose size is the cluster's own.

    Returns
    -------
    contextlib.AbstractContextManager[concurrent.futures.Executor]
        Entering it yields the executor. Leaving it normally waits for the submitted jobs;
        leaving it on an exception (Ctrl-C included) first cancels those not yet started.
        A dask client opened here is closed; the cluster itself keeps running.

    Raises
    ------
    ImportError
        A scheduler address was given but ``distributed`` is not installed (the message is one
        line with the ``pip install`` command).
    """
    assert max_workers is None or max_workers >= 1, f"max_workers={max_workers!r} < 1"
    if scheduler is None:
        return _process_pool(max_workers)
    assert isinstance(scheduler, str) and scheduler, f"bad scheduler {scheduler!r}"
    if scheduler == "local":
        return SerialExecutor()
    return _dask_executor(_import_dask_client(), scheduler)


@contextlib.contextmanager
def _process_pool(max_workers: int | None) -> Iterator[cf.Executor]:
    """Open a spawn-based process pool; cancel its pending jobs when the block raises."""
    context = multiprocessing.get_context("spawn")
    executor = cf.ProcessPoolExecutor(max_workers=max_workers, mp_context=context)
    try:
        yield executor
    except BaseException:
        executor.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        executor.shutdown(wait=True)  # a second call is a no-op


def _import_dask_client() -> type:
    """Return ``distributed.Client``, or raise an ImportError with the install hint."""
    try:
        from distributed import Client  # noqa: PLC0415
    except ImportError as exc:
        raise ImportError(f"a dask scheduler needs the 'distributed' package: {DASK_HINT}") from exc
    return Client


@contextlib.contextmanager
def _dask_executor(client_cls: type, address: str) -> Iterator[cf.Executor]:
    """Connect a dask client to ``address`` and yield its concurrent.futures executor.

    ``pure=False``: dask would otherwise key tasks by a hash of ``(fn, params)`` and run two
    jobs with equal parameters once, which silently merges replicas that draw their own noise
    (and hashes every array argument).
    """
    with client_cls(address, set_as_default=False) as client:
        executor = client.get_executor(pure=False)
        try:
            yield executor
        except BaseException:
            executor.shutdown(wait=False)  # dask's ClientExecutor cancels its futures here
            raise
        finally:
            executor.shutdown(wait=True)


def _call_job(fn: Callable[..., Any], params: dict[str, Any]) -> tuple[Any, str | None, float]:
    """Run one job inside the worker: ``(value, error, seconds)``, never raising an Exception.

    The exception is turned into its one-line description here, in the worker, so that an
    exception class that does not pickle still comes back.
    """
    start = time.perf_counter()
    try:
        value = fn(**params)
    except Exception as exc:
        return None, _describe(exc), time.perf_counter() - start
    return value, None, time.perf_counter() - start


def _describe(exc: BaseException) -> str:
    """Return ``"ExceptionType: message"`` on one line (whitespace runs collapsed)."""
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _params_repr(params: Mapping[str, Any]) -> str:
    """Return a one-line repr of the parameters (long strings, arrays, lists abbreviated)."""
    short = reprlib.Repr()
    short.maxstring, short.maxother, short.maxlist, short.maxdict = 80, 80, 8, 16
    return " ".join(short.repr(dict(params)).split())


def _failed(params: Mapping[str, Any], description: str, seconds: float) -> JobResult:
    """Build the result of a failed job: the description, then the parameters."""
    return JobResult(
        params=params,
        value=None,
        seconds=seconds,
        error=f"{description} | params: {_params_repr(params)}",
    )


def _to_result(future: cf.Future, params: Mapping[str, Any]) -> JobResult:
    """Wrap a finished future of :func:`_call_job` (or of a failed submission)."""
    if future.cancelled():
        return _failed(params, "CancelledError: the job was cancelled", math.nan)
    exc = future.exception()
    if exc is not None:  # the job never ran, or its outcome was lost on the way back
        return _failed(params, _describe(exc), math.nan)
    value, error, seconds = future.result()
    if error is not None:
        return _failed(params, error, seconds)
    return JobResult(params=params, value=value, error=None, seconds=seconds)


def _submit(executor: cf.Executor, fn: Callable[..., Any], params: Mapping[str, Any]) -> cf.Future:
    """Submit one job; a submission that raises gives a future holding that exception."""
    try:
        return executor.submit(_call_job, fn, dict(params))
    except Exception as exc:
        future: cf.Future = cf.Future()
        future.set_exception(exc)
        return future


def run_jobs(
    executor: cf.Executor,
    fn: Callable[..., Any],
    params_list: Sequence[Mapping[str, Any]],
    *,
    on_result: Callable[[JobResult], None] | None = None,
    progress: bool = False,
) -> list[JobResult]:
    """Run ``fn(**params)`` for every ``params`` on ``executor``; never raise for a failed job.

    Parameters
    ----------
    executor : concurrent.futures.Executor
        Where the jobs run, e.g. from :func:`make_executor`.
    fn : callable
        The job, called as ``fn(**params)``. It must be defined at module level in an
        importable module (process pools and dask import it by name), and ``params`` and its
        return value must pickle.
    params_list : sequence of mappings
        One mapping of keyword arguments per job.
    on_result : callable, optional
        Called with each :class:`JobResult` in the calling thread as soon as that job is done
        (in order of completion, not of ``params_list``), exactly once per finished job, and
        before this function returns: write the result to disk here. An exception it raises
        cancels the jobs not yet started and propagates.
    progress : bool
        Show a tqdm bar on stderr; it stays off when stderr is not a terminal.

    Returns
    -------
    list of JobResult
        One per job, in the order of ``params_list``. A job that raised has ``value=None``
        and a one-line ``error`` naming the exception, its message and the parameters.

    Raises
    ------
    KeyboardInterrupt
        Re-raised after cancelling the jobs not yet started and passing every job already
        finished to ``on_result``; a job already running is not waited for.
    """
    from tqdm.auto import tqdm  # noqa: PLC0415

    params_list = list(params_list)
    results: list[JobResult | None] = [None] * len(params_list)
    bar = tqdm(
        total=len(params_list),
        unit="job",
        desc="jobs",
        mininterval=0.5,
        disable=not (progress and sys.stderr.isatty()),
    )

    def report(index: int, future: cf.Future) -> None:
        results[index] = result = _to_result(future, params_list[index])
        bar.update(1)
        if on_result is not None:
            on_result(result)

    pending: dict[cf.Future, int] = {}
    try:
        _submit_all(executor, fn, params_list, pending, report)
        for future in cf.as_completed(list(pending)):
            report(pending.pop(future), future)
    except KeyboardInterrupt:
        _cancel(pending)
        for future in [f for f in pending if f.done() and not f.cancelled()]:
            report(pending.pop(future), future)
        raise
    except BaseException:
        _cancel(pending)
        raise
    finally:
        bar.close()
    return results  # type: ignore[return-value]  # every slot is filled by now


def _submit_all(
    executor: cf.Executor,
    fn: Callable[..., Any],
    params_list: list[Mapping[str, Any]],
    pending: dict[cf.Future, int],
    report: Callable[[int, cf.Future], None],
) -> None:
    """Submit every job into ``pending``; a job already done when submitted is reported now.

    With :class:`SerialExecutor` every job is done on submission, so its result reaches
    ``on_result`` before the next job starts.
    """
    for index, params in enumerate(params_list):
        future = _submit(executor, fn, params)
        if future.done():
            report(index, future)
        else:
            pending[future] = index


def _cancel(pending: dict[cf.Future, int]) -> None:
    """Cancel the jobs that have not started; those running cannot be stopped from here."""
    for future in pending:
        future.cancel()
