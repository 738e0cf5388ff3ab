"""Compiled one-pass SGD: a whole chunk of steps per call, replicas in parallel.

The update is the NumPy reference's (:func:`particles.methods.make_online_sgd`, SPEC section 1)
for units ``c h(<w, x> + b)``:

.. math::

    \\theta_i \\leftarrow (1 - 2\\lambda s_k)\\,\\theta_i
      + \\frac{2 s_k}{B} \\sum_b (y_b - \\hat y(x_b))\\, \\nabla_\\theta \\sigma_*(x_b; \\theta_i)
      + 2 \\sqrt{s_k / \\beta}\\, g_i ,

with ``grad_w = c h'(z) x``, ``grad_b = c h'(z)``, ``grad_c = h(z)``. Each replica is one
task of the parallel loop and keeps its parameters, stored unit-minor as ``(D, N)`` so that the
loops over units vectorise, in the core's cache for the whole chunk. Samples are taken in
blocks of :data:`SAMPLE_BLOCK`: one pass over the weights computes the block's pre-activations,
one pass adds the block's gradient. A sample whose units all have zero slope (the flat parts
of the piecewise-linear activations) adds nothing to the ``w`` and ``b`` rows: the pass over
those rows is skipped for it.

Random numbers come from the compiled counter-based generator (:mod:`.philox`), indexed as in
the NumPy path, so both draw the same data and noise.
"""

from __future__ import annotations

import numba
import numpy as np

from .activations import FAST, apply_activation
from .data import HOST, PURPOSE_NOISE, draw_sample
from .philox import JIT, fill_normals

__all__ = ["sgd_steps", "SAMPLE_BLOCK"]

#: samples whose pre-activations one pass over the weights computes
SAMPLE_BLOCK = 8


@numba.njit(parallel=True, fastmath=FAST, **JIT)
def sgd_steps(
    theta, keys, first_step, sizes, decay, noise, batch, per_chunk, unit, act, data, host_x, host_y
):
    """Advance every replica by ``len(sizes)`` SGD steps, in place.

    Parameters
    ----------
    theta : array of shape ``(R, D, N)``
        Unit-minor parameters (float64 or float32); updated in place.
    keys : uint64 array of shape ``(R, 2)``
        Philox keys of the replicas.
    first_step : int
        Index ``k`` of the first step (it fixes the random numbers).
    sizes, decay, noise : float64 arrays of shape ``(n_steps,)``
        ``s_k``, ``1 - 2 lambda s_k`` and ``2 sqrt(s_k / beta)`` (0: noiseless) per step.
    batch : int
        Samples per step ``B``.
    per_chunk : int
        Steps per chunk of the data draws (the NumPy path's chunking).
    unit : tuple ``(w_columns, w_fixed, b_column, b_fixed, c_column, c_fixed)``
        Where ``w``, ``b``, ``c`` live (:class:`meanfield.model.pieces.UnitPieces`).
    act : tuple ``(code, knots, jumps, left)``
    data : tuple ``(code, class_scales, tensor)``
        The law drawn in the kernel; with code ``HOST``, the samples are ``host_x``
        ``(R, n_steps B, k)`` and ``host_y`` ``(R, n_steps B)``, in step order.
    host_x, host_y : arrays
    """
    n_replicas, dim, n_units = theta.shape
    w_columns, w_fixed, b_column, b_fixed, c_column, c_fixed = unit
    act_code, knots, jumps, left = act
    data_code, class_scales, tensor = data
    n_inputs = w_columns.shape[0]
    n_steps = sizes.shape[0]
    block = min(batch, SAMPLE_BLOCK)
    many_blocks = batch > SAMPLE_BLOCK
    for r in numba.prange(n_replicas):
        weights = theta[r]
        k0 = keys[r, 0]
        k1 = keys[r, 1]
        x = np.empty((block, n_inputs))
        y = np.empty(block)
        x_next = np.empty((block, n_inputs))
        y_next = np.empty(block)
        coef = np.empty(block)
        z = np.empty((block, n_units), dtype=theta.dtype)
        h = np.empty((block, n_units), dtype=theta.dtype)
        slope = np.empty((block, n_units), dtype=theta.dtype)
        out_weight = np.empty(n_units, dtype=theta.dtype)
        active = np.zeros(block, dtype=np.bool_)
        grad = np.zeros((dim if many_blocks else 0, n_units), dtype=theta.dtype)
        pairs = np.empty(n_inputs * n_inputs)
        buffer = np.empty(dim)
        bits = np.empty(n_units, dtype=np.int64)
        ones = np.ones(block)
        have_forward = False  # z holds this step's pre-activations (from the fused pass)
        for step in range(n_steps):
            k = first_step + step
            scale = 2.0 * sizes[step] / batch
            for n in range(n_units):
                out_weight[n] = weights[c_column, n] if c_column >= 0 else c_fixed
            if many_blocks:
                grad[:, :] = 0
                for b0 in range(0, batch, block):
                    count = min(block, batch - b0)
                    _draw(
                        x,
                        y,
                        count,
                        r,
                        first_step,
                        step,
                        b0,
                        batch,
                        per_chunk,
                        data_code,
                        k0,
                        k1,
                        class_scales,
                        tensor,
                        pairs,
                        host_x,
                        host_y,
                    )
                    _forward(weights, x, z, count, w_columns, w_fixed, b_column, b_fixed)
                    _residuals(
                        z,
                        h,
                        slope,
                        y,
                        coef,
                        active,
                        out_weight,
                        count,
                        scale,
                        act_code,
                        knots,
                        jumps,
                        left,
                        bits,
                        ones,
                    )
                    _add_gradient(
                        grad,
                        x,
                        h,
                        slope,
                        coef,
                        active,
                        count,
                        w_columns,
                        b_column,
                        c_column,
                        1.0,
                        True,
                    )
                for row in range(dim):
                    for n in range(n_units):
                        weights[row, n] = decay[step] * weights[row, n] + grad[row, n]
            else:  # one block holds the batch: update the weights directly
                if not have_forward:
                    _draw(
                        x,
                        y,
                        batch,
                        r,
                        first_step,
                        step,
                        0,
                        batch,
                        per_chunk,
                        data_code,
                        k0,
                        k1,
                        class_scales,
                        tensor,
                        pairs,
                        host_x,
                        host_y,
                    )
                    _forward(weights, x, z, batch, w_columns, w_fixed, b_column, b_fixed)
                _residuals(
                    z,
                    h,
                    slope,
                    y,
                    coef,
                    active,
                    out_weight,
                    batch,
                    scale,
                    act_code,
                    knots,
                    jumps,
                    left,
                    bits,
                    ones,
                )
                have_forward = step + 1 < n_steps and noise[step] == 0.0
                if have_forward:  # one pass: this step's update, the next step's forward
                    _draw(
                        x_next,
                        y_next,
                        batch,
                        r,
                        first_step,
                        step + 1,
                        0,
                        batch,
                        per_chunk,
                        data_code,
                        k0,
                        k1,
                        class_scales,
                        tensor,
                        pairs,
                        host_x,
                        host_y,
                    )
                    _update_and_forward(
                        weights,
                        x,
                        h,
                        slope,
                        coef,
                        active,
                        batch,
                        decay[step],
                        x_next,
                        z,
                        w_columns,
                        w_fixed,
                        b_column,
                        b_fixed,
                        c_column,
                    )
                    x, x_next = x_next, x
                    y, y_next = y_next, y
                else:
                    _add_gradient(
                        weights,
                        x,
                        h,
                        slope,
                        coef,
                        active,
                        batch,
                        w_columns,
                        b_column,
                        c_column,
                        decay[step],
                        False,
                    )
            if noise[step] > 0.0:
                amplitude = noise[step]
                for n in range(n_units):  # element n D + j of normal(k, (N, D), purpose 2)
                    fill_normals(buffer, k0, k1, k, PURPOSE_NOISE, n * dim)
                    for row in range(dim):
                        weights[row, n] += amplitude * buffer[row]


@numba.njit(**JIT)
def _draw(
    x,
    y,
    count,
    r,
    first_step,
    step,
    b0,
    batch,
    per_chunk,
    data_code,
    k0,
    k1,
    class_scales,
    tensor,
    pairs,
    host_x,
    host_y,
):
    """Samples ``b0 .. b0 + count - 1`` of step ``first_step + step`` into ``x``, ``y``."""
    k = first_step + step
    counter = k // per_chunk
    first_sample = (k - counter * per_chunk) * batch + b0
    for bb in range(count):
        if data_code == HOST:
            row = step * batch + b0 + bb
            for j in range(x.shape[1]):
                x[bb, j] = host_x[r, row, j]
            y[bb] = host_y[r, row]
        else:
            y[bb] = draw_sample(
                data_code, k0, k1, counter, first_sample + bb, x[bb], class_scales, tensor, pairs
            )


@numba.njit(fastmath=FAST, **JIT)
def _residuals(
    z,
    h,
    slope,
    y,
    coef,
    active,
    out_weight,
    count,
    scale,
    act_code,
    knots,
    jumps,
    left,
    bits,
    sample_weights,
):
    """Activations, ``coef_b = scale w_b (y_b - y_hat_b)`` and ``g_bn = coef_b c_n h'(z_bn)``.

    ``g`` overwrites ``slope``; ``active[b]`` tells whether any unit has a nonzero slope;
    ``w_b = sample_weights[b]`` (ones for SGD, quadrature weights for population GD).
    """
    n_units = z.shape[1]
    for bb in range(count):
        apply_activation(act_code, z[bb], h[bb], slope[bb], n_units, knots, jumps, left, bits)
        total = 0.0
        any_slope = False
        for n in range(n_units):
            total += out_weight[n] * h[bb, n]
            any_slope |= slope[bb, n] != 0
        coef[bb] = scale * sample_weights[bb] * (y[bb] - total / n_units)
        active[bb] = any_slope
        for n in range(n_units):
            slope[bb, n] = coef[bb] * out_weight[n] * slope[bb, n]


@numba.njit(fastmath=FAST, **JIT)
def _update_and_forward(
    weights,
    x,
    h,
    g,
    coef,
    active,
    count,
    decay,
    x_next,
    z,
    w_columns,
    w_fixed,
    b_column,
    b_fixed,
    c_column,
):
    """This step's update and the next step's pre-activations in one pass over the weights.

    Each row ``w_j <- decay w_j + sum_b g_b x_bj`` is used at once, while in cache, for
    ``z_next += w_j x_next_j``: the same sums as :func:`_add_gradient` then :func:`_forward`.
    """
    n_units = weights.shape[1]
    n_inputs = w_columns.shape[0]
    if b_column >= 0:
        _update_row(weights, b_column, x, n_inputs, g, active, count, decay)
        for bb in range(count):
            for n in range(n_units):
                z[bb, n] = weights[b_column, n]
    else:
        for bb in range(count):
            for n in range(n_units):
                z[bb, n] = b_fixed
    for j in range(n_inputs):
        column = w_columns[j]
        if column < 0:
            for bb in range(count):
                shift = w_fixed[j] * x_next[bb, j]
                for n in range(n_units):
                    z[bb, n] += shift
        elif count == 1:  # the common case, fused into one loop
            xj = x[0, j] if active[0] else 0.0
            xn = x_next[0, j]
            g0 = g[0]
            row = weights[column]
            z0 = z[0]
            for n in range(n_units):
                w = decay * row[n] + g0[n] * xj
                row[n] = w
                z0[n] += w * xn
        else:
            _update_row(weights, column, x, j, g, active, count, decay)
            for bb in range(count):
                xn = x_next[bb, j]
                for n in range(n_units):
                    z[bb, n] += weights[column, n] * xn
    if c_column >= 0:
        _update_output_row(weights, c_column, h, coef, count, decay)


@numba.njit(fastmath=FAST, **JIT)
def _update_output_row(weights, row, h, coef, count, decay):
    """``c <- decay c + sum_b coef_b h(z_b)``: the output weights' row."""
    n_units = weights.shape[1]
    if decay != 1.0:
        for n in range(n_units):
            weights[row, n] = decay * weights[row, n]
    for bb in range(count):
        f = coef[bb]
        for n in range(n_units):
            weights[row, n] += h[bb, n] * f


@numba.njit(fastmath=FAST, **JIT)
def _update_row(weights, row, x, j, g, active, count, decay):
    """``w_row <- decay w_row + sum_b g_b f_b`` over the active samples, ``f_b = x[b, j]``
    (or 1 for ``j = k``, the bias row)."""
    n_units = weights.shape[1]
    if decay != 1.0:  # without ridge the weights are not rescaled (multiplying by 1 is exact)
        for n in range(n_units):
            weights[row, n] = decay * weights[row, n]
    for bb in range(count):
        if active[bb]:
            f = x[bb, j] if j < x.shape[1] else 1.0
            for n in range(n_units):
                weights[row, n] += g[bb, n] * f


@numba.njit(fastmath=FAST, **JIT)
def _forward(weights, x, z, count, w_columns, w_fixed, b_column, b_fixed):
    """``z[b, n] = b_n + sum_j w_jn x_bj`` for the first ``count`` samples."""
    n_units = weights.shape[1]
    for bb in range(count):
        if b_column >= 0:
            for n in range(n_units):
                z[bb, n] = weights[b_column, n]
        else:
            for n in range(n_units):
                z[bb, n] = b_fixed
    for j in range(w_columns.shape[0]):
        column = w_columns[j]
        for bb in range(count):
            xj = x[bb, j]
            if column >= 0:
                for n in range(n_units):
                    z[bb, n] += weights[column, n] * xj
            else:
                shift = w_fixed[j] * xj
                for n in range(n_units):
                    z[bb, n] += shift


@numba.njit(fastmath=FAST, **JIT)
def _add_gradient(
    target, x, h, g, coef, active, count, w_columns, b_column, c_column, decay, accumulate
):
    """Add the block's gradient to ``target``.

    ``accumulate``: ``target += G``; otherwise ``target = decay * target + G`` (the weights
    themselves, when one block holds the whole batch). ``g[b, n] = coef_b c_n h'(z_bn)``;
    samples with no nonzero slope (``active[b]`` false) add nothing to the ``w`` and ``b`` rows.
    """
    n_inputs = w_columns.shape[0]
    scale = 1.0 if accumulate else decay
    for j in range(n_inputs + 1):  # the trained w_j rows, then the b row
        row = w_columns[j] if j < n_inputs else b_column
        if row >= 0:
            _update_row(target, row, x, j, g, active, count, scale)
    if c_column >= 0:
        _update_output_row(target, c_column, h, coef, count, scale)
