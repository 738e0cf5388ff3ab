"""The GPU twin of :mod:`.sgd`: one-pass SGD, a whole chunk of steps per kernel launch.

On a GPU the array step of one-pass SGD with a batch of one is bound by kernel launches
(about 26 per step, docs/performance.md), not by arithmetic. Here one launch advances every
replica by a chunk of steps: one thread block per replica, its threads sharing the units
(thread ``t`` owns units ``t, t + T, ...``), the sample drawn by the block's threads into
shared memory, ``y_hat`` by a tree reduction in shared memory. The parameters stay
unit-minor ``(R, D, N)`` in device memory, so each input row is read coalesced.

The random numbers are the same ``register_jitable`` Philox functions as the CPU kernels
(:mod:`.philox`), and the activations the scalar form of :mod:`.activations`: the same
source compiled for the GPU. Data laws drawn in the kernel only (``"mixture"``,
``"pspin"``); other models run the array steps on CuPy.

numba-cuda takes CuPy arrays through the CUDA array interface: no CuPy import here. The tests
run these kernels under numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) against the CPU
kernels; ``benchmarks/gpu_session.sh`` runs them on a real GPU.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda, float64

from .activations import activation_at
from .data import MIXTURE, PURPOSE_DATA, PURPOSE_LABEL, PURPOSE_NOISE
from .philox import normal_at, uniform_at

__all__ = ["sgd_chunk", "THREADS", "MAX_INPUTS", "launch_sgd"]

#: threads per block (a power of two, for the reduction); the most the kernel is built for
THREADS = 128
#: largest input dimension the shared sample buffer holds
MAX_INPUTS = 1024


@cuda.jit
def sgd_chunk(
    theta,
    keys,
    first_step,
    sizes,
    decay,
    noise,
    batch,
    per_chunk,
    w_rows,
    b_row,
    c_row,
    act_code,
    knots,
    jumps,
    left,
    data_code,
    class_scales,
    tensor,
    scratch,
    grad,
):
    """Advance replica ``blockIdx.x`` by ``len(sizes)`` steps (arguments as :func:`.sgd.sgd_steps`,
    with the unit's rows ``w_rows``, ``b_row``, ``c_row`` (-1: absent), and device scratch
    ``scratch`` ``(R, 2, N)`` and ``grad`` ``(R, D, N)`` (used when ``batch > 1``))."""
    r = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    step_threads = cuda.blockDim.x
    dim = theta.shape[1]
    n_units = theta.shape[2]
    n_inputs = w_rows.shape[0]
    weights = theta[r]
    x = cuda.shared.array(MAX_INPUTS, float64)
    reduce = cuda.shared.array(THREADS, float64)
    shared = cuda.shared.array(2, float64)  # the label y, then the coefficient of the sample
    k0 = keys[r, 0]
    k1 = keys[r, 1]
    for step in range(sizes.shape[0]):
        k = first_step + step
        counter = k // per_chunk
        scale = 2.0 * sizes[step] / batch
        if batch > 1:
            for n in range(tid, n_units, step_threads):
                for row in range(dim):
                    grad[r, row, n] = 0.0
        for b in range(batch):
            sample = (k - counter * per_chunk) * batch + b
            _draw(
                x,
                shared,
                reduce,
                tid,
                step_threads,
                n_inputs,
                data_code,
                k0,
                k1,
                counter,
                sample,
                class_scales,
                tensor,
            )
            partial = 0.0
            for n in range(tid, n_units, step_threads):
                z = weights[b_row, n] if b_row >= 0 else 0.0
                for j in range(n_inputs):
                    z += weights[w_rows[j], n] * x[j]
                h, slope = activation_at(act_code, z, knots, jumps, left)
                c = weights[c_row, n] if c_row >= 0 else 1.0
                scratch[r, 0, n] = h
                scratch[r, 1, n] = c * slope
                partial += c * h
            total = _block_sum(reduce, partial, tid)
            coef = scale * (shared[0] - total / n_units)
            for n in range(tid, n_units, step_threads):
                g = coef * scratch[r, 1, n]
                if batch == 1:
                    for j in range(n_inputs):
                        row = w_rows[j]
                        weights[row, n] = decay[step] * weights[row, n] + g * x[j]
                    if b_row >= 0:
                        weights[b_row, n] = decay[step] * weights[b_row, n] + g
                    if c_row >= 0:
                        weights[c_row, n] = (
                            decay[step] * weights[c_row, n] + coef * scratch[r, 0, n]
                        )
                else:
                    for j in range(n_inputs):
                        grad[r, w_rows[j], n] += g * x[j]
                    if b_row >= 0:
                        grad[r, b_row, n] += g
                    if c_row >= 0:
                        grad[r, c_row, n] += coef * scratch[r, 0, n]
            cuda.syncthreads()  # the next sample overwrites x
        for n in range(tid, n_units, step_threads):
            if batch > 1:
                for row in range(dim):
                    weights[row, n] = decay[step] * weights[row, n] + grad[r, row, n]
            if noise[step] > 0.0:  # element n D + j of normal(k, (N, D), purpose 2)
                for row in range(dim):
                    weights[row, n] += noise[step] * normal_at(
                        k0, k1, k, PURPOSE_NOISE, n * dim + row
                    )
        cuda.syncthreads()


@cuda.jit(device=True)
def _block_sum(reduce, value, tid):
    """Sum of ``value`` over the block's threads (every thread gets it)."""
    reduce[tid] = value
    cuda.syncthreads()
    width = cuda.blockDim.x // 2
    while width > 0:
        if tid < width:
            reduce[tid] += reduce[tid + width]
        cuda.syncthreads()
        width //= 2
    total = reduce[0]
    cuda.syncthreads()
    return total


@cuda.jit(device=True)
def _draw(
    x,
    shared,
    reduce,
    tid,
    step_threads,
    n_inputs,
    data_code,
    k0,
    k1,
    counter,
    sample,
    class_scales,
    tensor,
):
    """Sample ``sample`` of chunk ``counter`` into shared ``x`` and ``shared[0]`` (the label)."""
    for j in range(tid, n_inputs, step_threads):
        x[j] = normal_at(k0, k1, counter, PURPOSE_DATA, sample * n_inputs + j)
    if data_code == MIXTURE:
        positive = uniform_at(k0, k1, counter, PURPOSE_LABEL, sample) < 0.5
        row = 0 if positive else 1
        cuda.syncthreads()
        for j in range(tid, n_inputs, step_threads):
            x[j] = x[j] * class_scales[row, j]
        if tid == 0:
            shared[0] = 1.0 if positive else -1.0
        cuda.syncthreads()
        return
    # p-spin: x on the sphere of radius sqrt(d), y = (1/d) sum_pqr T_p,qr x_p x_q x_r
    norm = math.sqrt(_block_sum(reduce, _square_sum(x, tid, step_threads, n_inputs), tid))
    root = math.sqrt(float(n_inputs))
    for j in range(tid, n_inputs, step_threads):
        x[j] = root * x[j] / norm
    cuda.syncthreads()
    partial = 0.0
    for p in range(tid, n_inputs, step_threads):
        contracted = 0.0
        for q in range(n_inputs):
            for s in range(n_inputs):
                contracted += tensor[p, q * n_inputs + s] * (x[q] * x[s])
        partial += contracted * x[p]
    total = _block_sum(reduce, partial, tid)
    if tid == 0:
        shared[0] = total / n_inputs
    cuda.syncthreads()


@cuda.jit(device=True)
def _square_sum(x, tid, step_threads, n_inputs):
    total = 0.0
    for j in range(tid, n_inputs, step_threads):
        total += x[j] * x[j]
    return total


def launch_sgd(
    theta,
    keys,
    first_step,
    sizes,
    decay,
    noise,
    batch,
    per_chunk,
    unit,
    act,
    data,
    scratch,
    grad,
    threads=THREADS,
):
    """Launch :func:`sgd_chunk` with one block of ``threads`` threads per replica (a power of
    two up to :data:`THREADS`; the simulator tests use fewer).

    ``unit``, ``act``, ``data`` as for :func:`.sgd.sgd_steps` (the unit's ``w`` all trained);
    arrays may be CuPy arrays (device) or, under the simulator, NumPy arrays.
    """
    w_columns, _, b_column, _, c_column, _ = unit
    if np.any(np.asarray(w_columns) < 0):
        raise ValueError("the GPU kernel needs every input weight trained")
    if len(w_columns) > MAX_INPUTS:
        raise ValueError(f"the GPU kernel holds at most {MAX_INPUTS} inputs per sample")
    act_code, knots, jumps, left = act
    data_code, class_scales, tensor = data
    if threads > THREADS or threads & (threads - 1):
        raise ValueError(f"threads must be a power of two up to {THREADS}, got {threads}")
    sgd_chunk[int(theta.shape[0]), threads](
        theta,
        keys,
        first_step,
        sizes,
        decay,
        noise,
        batch,
        per_chunk,
        w_columns,
        b_column,
        c_column,
        act_code,
        knots,
        jumps,
        left,
        data_code,
        class_scales,
        tensor,
        scratch,
        grad,
    )
