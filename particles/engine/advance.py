"""The compiled engine seen from a run: ``advance(state, to_step) -> state`` closures.

:func:`make_sgd_advance` builds the SGD advance of a model from its pieces
(:class:`meanfield.model.pieces.EnginePieces`), resolves everything that does not change during
the run (chunking of the random draws, step integrals, the model's arrays), and calls the
compiled kernel of :mod:`.sgd` on whole chunks of steps. The state keeps the ``(R, N, D)``
layout of the NumPy path; the kernel works on ``(R, D, N)`` copies made once per call of the
advance. Which advance runs is :func:`particles.engine.select_engine`'s choice.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from meanfield.model.pieces import EnginePieces, NodePieces, SeparablePieces
from meanfield.rng import chunk_steps
from meanfield.schedules import TimeChange

from ..state import EnsembleState

__all__ = [
    "make_sgd_advance",
    "make_separable_advance",
    "make_node_advance",
    "make_pair_gd_advance",
    "make_gpu_sgd_advance",
    "CALL_STEPS",
    "Advance",
    "chunked_advance",
    "schedule",
    "host",
]

#: steps per kernel call at most: a progress report between calls, and step-size arrays of
#: bounded length
CALL_STEPS = 4096

Advance = Callable[[EnsembleState, int, Callable[[int], None] | None], EnsembleState]


def _unit_arrays(pieces: Any) -> tuple:
    return (
        np.asarray(pieces.w_columns, dtype=np.int64),
        np.asarray(pieces.w_fixed, dtype=np.float64),
        int(pieces.b_column),
        float(pieces.b_fixed),
        int(pieces.c_column),
        float(pieces.c_fixed),
    )


def _activation_arrays(pieces: Any) -> tuple:
    return (
        pieces.code,
        np.ascontiguousarray(pieces.knots, dtype=np.float64),
        np.ascontiguousarray(pieces.jumps, dtype=np.float64),
        float(pieces.left),
    )


def _data_arrays(pieces: Any, n_inputs: int) -> tuple:
    scales = np.ascontiguousarray(pieces.class_scales, dtype=np.float64)
    if scales.shape[1] == 0:
        scales = np.ones((2, n_inputs))
    tensor = np.ascontiguousarray(pieces.tensor, dtype=np.float64)
    d = tensor.shape[0]
    return pieces.code, scales, tensor.reshape(d, d * d)


def make_sgd_advance(
    model: Any,
    pieces: EnginePieces,
    rng: Any,
    *,
    eps: float,
    batch: int,
    time_change: TimeChange,
    l2: float = 0.0,
    beta: float = math.inf,
    dtype: Any = np.float64,
) -> Advance:
    """The compiled counterpart of :func:`particles.methods.make_online_sgd`.

    Parameters
    ----------
    model : the model: its ``dim`` (which fixes the data chunks) and, when its data kind is
        ``"host"``, its ``sample_data``
    pieces : EnginePieces
        The model's ``unit`` and ``data``.
    rng : meanfield.rng.CounterRNG
        One stream per replica (its keys are read once).
    eps, batch, time_change, l2, beta
        As for :func:`~particles.methods.make_online_sgd`.
    dtype : numpy dtype
        Floating type of the parameters inside the kernel.

    Returns
    -------
    callable ``advance(state, to_step, report=None) -> state``
        Takes ``state`` to step ``to_step``; ``report(n)`` is called after every ``n`` steps.
    """
    from .sgd import sgd_steps  # noqa: PLC0415  (compiles on first use)

    unit = _unit_arrays(pieces.unit)
    act = _activation_arrays(pieces.unit.activation)
    data = _data_arrays(pieces.data, len(unit[0]))
    host_data = pieces.data.kind == "host"
    keys = np.ascontiguousarray(host(rng.keys), dtype=np.uint64)
    empty_x, empty_y = np.zeros((keys.shape[0], 0, len(unit[0]))), np.zeros((keys.shape[0], 0))

    def advance(
        state: EnsembleState, to_step: int, report: Callable[[int], None] | None = None
    ) -> EnsembleState:
        if to_step <= state.step:
            return state
        theta = _to_kernel(state.theta, dtype)
        n_replicas = theta.shape[0]
        per_chunk = chunk_steps(n_replicas * batch * int(model.dim))
        step = state.step
        while step < to_step:
            stop = min(to_step, step + CALL_STEPS)
            x, y = empty_x, empty_y
            if host_data:  # one chunk of the model's own draws per call
                counter = step // per_chunk
                stop = min(stop, (counter + 1) * per_chunk)
                x, y = _host_samples(model, rng, counter, per_chunk, batch, step, stop)
            sizes, decay, noise = schedule(time_change, eps, l2, beta, step, stop)
            sgd_steps(
                theta, keys, step, sizes, decay, noise, batch, per_chunk, unit, act, data, x, y
            )
            if report is not None:
                report(stop - step)
            step = stop
        return state.replace(theta=_from_kernel(theta), step=step)

    return advance


def make_gpu_sgd_advance(
    model: Any,
    pieces: EnginePieces,
    rng: Any,
    backend: Any,
    *,
    eps: float,
    batch: int,
    time_change: TimeChange,
    l2: float = 0.0,
    beta: float = math.inf,
    dtype: Any = np.float64,
    threads: int | None = None,
) -> Advance:
    """The GPU twin of :func:`make_sgd_advance` (:mod:`.cuda`): the state stays on the device.

    ``backend`` holds the arrays (CuPy on a GPU; NumPy under numba's CUDA simulator).
    """
    from . import cuda as gpu  # noqa: PLC0415  (numba.cuda only where it is used)

    xp = backend.xp
    unit = _unit_arrays(pieces.unit)
    act = _activation_arrays(pieces.unit.activation)
    data = _data_arrays(pieces.data, len(unit[0]))
    move = backend.asarray
    unit = (move(unit[0], xp.int64), *unit[1:])
    act = (act[0], move(act[1]), move(act[2]), act[3])
    data = (data[0], move(data[1]), move(data[2]))
    kernel_dtype = getattr(xp, np.dtype(dtype).name)
    threads = gpu.THREADS if threads is None else threads

    def advance(
        state: EnsembleState, to_step: int, report: Callable[[int], None] | None = None
    ) -> EnsembleState:
        if to_step <= state.step:
            return state
        n_replicas, n_units, dim = (int(v) for v in state.theta.shape)
        theta = xp.empty((n_replicas, dim, n_units), dtype=kernel_dtype)
        theta[...] = xp.permute_dims(xp.astype(state.theta, kernel_dtype), (0, 2, 1))
        scratch = xp.zeros((n_replicas, 2, n_units), dtype=xp.float64)
        grad = xp.zeros((n_replicas, dim, n_units) if batch > 1 else (1, 1, 1), dtype=xp.float64)
        per_chunk = chunk_steps(n_replicas * batch * int(model.dim))
        for start, stop in _calls(state.step, to_step):
            sizes, decay, noise = schedule(time_change, eps, l2, beta, start, stop)
            gpu.launch_sgd(
                theta,
                rng.keys,
                start,
                move(sizes),
                move(decay),
                move(noise),
                batch,
                per_chunk,
                unit,
                act,
                data,
                scratch,
                grad,
                threads,
            )
            if report is not None:
                report(stop - start)
        out = xp.empty((n_replicas, n_units, dim), dtype=kernel_dtype)
        out[...] = xp.permute_dims(theta, (0, 2, 1))
        return state.replace(theta=out, step=to_step)

    return advance


def _calls(step: int, to_step: int, limit: int = CALL_STEPS):
    """``(start, stop)`` of the kernel calls that take ``step`` to ``to_step``."""
    while step < to_step:
        stop = min(to_step, step + limit)
        yield step, stop
        step = stop


def make_separable_advance(
    pieces: SeparablePieces,
    rng: Any,
    *,
    eps: float,
    time_change: TimeChange,
    heun: bool,
    l2: float = 0.0,
    beta: float = math.inf,
    dtype: Any = np.float64,
) -> Advance:
    """Population GD (``heun``) or the Euler(-Maruyama) step of a separable model.

    The compiled counterpart of :func:`~particles.methods.make_gd` and, for a model without
    data, of :func:`~particles.methods.make_online_sgd` (see :mod:`.gd`).
    """
    from .gd import separable_steps  # noqa: PLC0415

    poly = np.ascontiguousarray(pieces.poly, dtype=np.float64)
    linear = np.ascontiguousarray(pieces.linear, dtype=np.float64)
    cosine = np.ascontiguousarray(pieces.cosine, dtype=np.float64)
    keys = np.ascontiguousarray(host(rng.keys), dtype=np.uint64)

    def call(theta: np.ndarray, start: int, stop: int) -> None:
        sizes, decay, noise = schedule(time_change, eps, l2, beta, start, stop)
        separable_steps(theta, keys, start, sizes, decay, noise, heun, l2, poly, linear, cosine)

    return chunked_advance(call, eps, dtype)


def make_node_advance(
    pieces: EnginePieces,
    *,
    eps: float,
    time_change: TimeChange,
    l2: float = 0.0,
    dtype: Any = np.float64,
) -> Advance:
    """Population GD of a quadrature model (teacher-student) through its nodes (see :mod:`.gd`)."""
    from .gd import node_steps  # noqa: PLC0415

    node_pieces: NodePieces = pieces.nodes
    unit = _unit_arrays(pieces.unit)
    act = _activation_arrays(pieces.unit.activation)
    nodes = np.ascontiguousarray(node_pieces.nodes, dtype=np.float64).reshape(
        len(node_pieces.weights), -1
    )
    weights = np.ascontiguousarray(node_pieces.weights, dtype=np.float64)
    targets = np.ascontiguousarray(node_pieces.targets, dtype=np.float64)

    def call(theta: np.ndarray, start: int, stop: int) -> None:
        node_steps(
            theta,
            time_change.step_integrals(eps, stop - start, start=start),
            l2,
            unit,
            act,
            nodes,
            weights,
            targets,
        )

    return chunked_advance(call, eps, dtype)


def make_pair_gd_advance(
    model: Any,
    views: Any,
    *,
    eps: float,
    time_change: TimeChange,
    l2: float = 0.0,
    dtype: Any = np.float64,
) -> Advance:
    """Population GD of an MMN model: Heun's method as :func:`~particles.methods.make_gd`,
    with grad Psi from the compiled pair sums (:mod:`.population`) of its pair ``views``."""
    from .population import pair_population_gradient  # noqa: PLC0415

    def velocity(theta: np.ndarray) -> np.ndarray:
        return -2.0 * (pair_population_gradient(model, theta, views) + l2 * theta)

    def advance(
        state: EnsembleState, to_step: int, report: Callable[[int], None] | None = None
    ) -> EnsembleState:
        theta = np.asarray(host(state.theta), dtype=np.float64)
        for step in range(state.step, to_step):
            s = float(time_change.step_integrals(eps, 1, start=step)[0])
            first = velocity(theta)
            stage = theta + s * first
            theta = theta + 0.5 * s * (first + velocity(stage))
            if report is not None:
                report(1)
        step = max(to_step, state.step)
        return state.replace(theta=np.asarray(theta, dtype=dtype), step=step)

    return advance


def schedule(
    time_change: TimeChange, eps: float, l2: float, beta: float, start: int, stop: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per step of ``start .. stop - 1``: ``s_k``, ``1 - 2 lambda s_k``, ``2 sqrt(s_k / beta)``."""
    sizes = time_change.step_integrals(eps, stop - start, start=start)
    decay = 1.0 - 2.0 * l2 * sizes if l2 != 0.0 else np.ones_like(sizes)
    noise = 2.0 * np.sqrt(sizes / beta) if math.isfinite(beta) else np.zeros_like(sizes)
    return sizes, decay, noise


def chunked_advance(
    call: Callable[[np.ndarray, int, int], None], eps: float, dtype: Any
) -> Advance:
    """An advance that runs ``call(theta, start, stop)`` on ``(R, D, N)`` copies, a chunk of at
    most :data:`CALL_STEPS` steps at a time."""

    def advance(
        state: EnsembleState, to_step: int, report: Callable[[int], None] | None = None
    ) -> EnsembleState:
        theta = _to_kernel(state.theta, dtype)
        for start, stop in _calls(state.step, to_step):
            call(theta, start, stop)
            if report is not None:
                report(stop - start)
        step = max(to_step, state.step)
        return state.replace(theta=_from_kernel(theta), step=step)

    return advance


def _host_samples(
    model: Any, rng: Any, counter: int, per_chunk: int, batch: int, start: int, stop: int
) -> tuple[np.ndarray, np.ndarray]:
    """The model's draws of chunk ``counter`` for steps ``start .. stop - 1`` (NumPy)."""
    x, y = model.sample_data(rng, counter, per_chunk * batch, rng.xp)
    first = (start - counter * per_chunk) * batch
    last = (stop - counter * per_chunk) * batch
    x = np.ascontiguousarray(host(x)[:, first:last, :], dtype=np.float64)
    y = np.ascontiguousarray(host(y)[:, first:last], dtype=np.float64)
    return x, y


def host(array: Any) -> np.ndarray:
    """A NumPy view or copy of a backend array (the engine runs on the host)."""
    if isinstance(array, np.ndarray):
        return array
    from meanfield.backends import to_numpy  # noqa: PLC0415

    return to_numpy(array)


def _to_kernel(theta: Any, dtype: Any) -> np.ndarray:
    """``(R, N, D)`` state -> a contiguous ``(R, D, N)`` copy of type ``dtype``.

    Always a copy: the kernels work in place, and a state is never modified (for ``D = 1``
    the transpose of a C-ordered array is itself C-ordered, and would be a view).
    """
    return np.array(np.transpose(host(theta), (0, 2, 1)), dtype=dtype, order="C", copy=True)


def _from_kernel(theta: np.ndarray) -> np.ndarray:
    """``(R, D, N)`` -> the ``(R, N, D)`` state layout (C order), in the kernel's dtype."""
    return np.ascontiguousarray(np.transpose(theta, (0, 2, 1)))
