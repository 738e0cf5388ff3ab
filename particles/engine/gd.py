"""Compiled population dynamics: a chunk of gradient steps per call, replicas in parallel.

Two kinds of models have a population gradient that is cheap per unit, ``O(D)`` or ``O(Q D)``,
so a whole chunk of steps runs in one compiled call:

* **separable** models (:class:`meanfield.model.pieces.SeparablePieces`: linear unit, cosine
  interaction, quadratic potential), with the mean-field order parameters
  ``m_a = <theta_a>``, ``<cos theta_a>``, ``<sin theta_a>`` of each replica:
  ``grad Psi_a = V_a'(theta_a) + linear_a m_a + cosine_a (<sin> cos theta_a - <cos> sin theta_a)``;
* **quadrature** models (:class:`~meanfield.model.pieces.NodePieces`: teacher-student), where
  ``grad Psi(theta_i) = sum_q w_q (y_hat(x_q) - y_q) grad sigma_*(x_q; theta_i)`` is one batched
  forward and backward pass over the nodes (the SGD kernel's, with weights ``w_q``).

``gd`` is Heun's method as in :func:`particles.methods.make_gd`; for a model without data the
SGD methods are the Euler(-Maruyama) step of :func:`~particles.methods.make_online_sgd`.
The pair models (isotropic, anisotropic) take their gradient from :mod:`.pairs` instead.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .activations import FAST
from .data import PURPOSE_NOISE
from .philox import JIT, fill_normals
from .sgd import SAMPLE_BLOCK, _add_gradient, _forward, _residuals

__all__ = ["separable_steps", "node_steps"]


@numba.njit(fastmath=FAST, **JIT)
def _separable_gradient(theta, poly, linear, cosine, out):
    """``grad Psi`` of every unit of one replica, ``theta`` and ``out`` of shape ``(D, N)``."""
    dim, n_units = theta.shape
    for a in range(dim):
        mean = 0.0
        mean_cos = 0.0
        mean_sin = 0.0
        for n in range(n_units):
            mean += theta[a, n]
            if cosine[a] != 0.0:
                mean_cos += math.cos(theta[a, n])
                mean_sin += math.sin(theta[a, n])
        mean /= n_units
        mean_cos /= n_units
        mean_sin /= n_units
        for n in range(n_units):
            v = theta[a, n]
            slope = poly[a, 1] + v * (
                2.0 * poly[a, 2] + v * (3.0 * poly[a, 3] + v * 4.0 * poly[a, 4])
            )
            slope += linear[a] * mean
            if cosine[a] != 0.0:
                slope += cosine[a] * (mean_sin * math.cos(v) - mean_cos * math.sin(v))
            out[a, n] = slope


@numba.njit(parallel=True, fastmath=FAST, **JIT)
def separable_steps(theta, keys, first_step, sizes, decay, noise, heun, l2, poly, linear, cosine):
    """Advance every replica by ``len(sizes)`` steps, in place (``theta`` ``(R, D, N)``).

    ``heun``: population GD, ``theta += (s/2) (v(theta) + v(theta + s v(theta)))`` with
    ``v = -2 (grad Psi + l2 theta)``. Otherwise the Euler step
    ``theta <- decay theta - 2 s grad Psi + noise g`` (``g`` of purpose 2, as the SGD noise).
    """
    n_replicas, dim, n_units = theta.shape
    for r in numba.prange(n_replicas):
        current = theta[r]
        first = np.empty((dim, n_units))
        stage = np.empty((dim, n_units))
        second = np.empty((dim, n_units))
        buffer = np.empty(dim)
        for step in range(sizes.shape[0]):
            s = sizes[step]
            _separable_gradient(current, poly, linear, cosine, first)
            if heun:
                for a in range(dim):
                    for n in range(n_units):
                        first[a, n] = -2.0 * (first[a, n] + l2 * current[a, n])
                        stage[a, n] = current[a, n] + s * first[a, n]
                _separable_gradient(stage, poly, linear, cosine, second)
                for a in range(dim):
                    for n in range(n_units):
                        velocity = -2.0 * (second[a, n] + l2 * stage[a, n])
                        current[a, n] = current[a, n] + 0.5 * s * (first[a, n] + velocity)
            else:
                for a in range(dim):
                    for n in range(n_units):
                        current[a, n] = decay[step] * current[a, n] - 2.0 * s * first[a, n]
                if noise[step] > 0.0:
                    k = first_step + step
                    for n in range(n_units):
                        fill_normals(buffer, keys[r, 0], keys[r, 1], k, PURPOSE_NOISE, n * dim)
                        for a in range(dim):
                            current[a, n] += noise[step] * buffer[a]


@numba.njit(fastmath=FAST, **JIT)
def _node_velocity(theta, nodes, weights, targets, l2, unit, act, out, scratch):
    """``v = -2 (grad Psi + l2 theta)`` of one replica by a pass over the quadrature nodes."""
    w_columns, w_fixed, b_column, b_fixed, c_column, c_fixed = unit
    act_code, knots, jumps, left = act
    x, y, sample_weights, coef, z, h, slope, out_weight, active, bits = scratch
    dim, n_units = theta.shape
    n_nodes = nodes.shape[0]
    for n in range(n_units):
        out_weight[n] = theta[c_column, n] if c_column >= 0 else c_fixed
    out[:, :] = 0.0
    for q0 in range(0, n_nodes, SAMPLE_BLOCK):
        count = min(SAMPLE_BLOCK, n_nodes - q0)
        for bb in range(count):
            for j in range(nodes.shape[1]):
                x[bb, j] = nodes[q0 + bb, j]
            y[bb] = targets[q0 + bb]
            sample_weights[bb] = weights[q0 + bb]
        _forward(theta, x, z, count, w_columns, w_fixed, b_column, b_fixed)
        _residuals(
            z,
            h,
            slope,
            y,
            coef,
            active,
            out_weight,
            count,
            2.0,
            act_code,
            knots,
            jumps,
            left,
            bits,
            sample_weights,
        )
        _add_gradient(
            out, x, h, slope, coef, active, count, w_columns, b_column, c_column, 1.0, True
        )
    for a in range(dim):
        for n in range(n_units):
            out[a, n] -= 2.0 * l2 * theta[a, n]


@numba.njit(parallel=True, fastmath=FAST, **JIT)
def node_steps(theta, sizes, l2, unit, act, nodes, weights, targets):
    """Population GD (Heun) of a quadrature model, ``len(sizes)`` steps, in place."""
    n_replicas, dim, n_units = theta.shape
    k = nodes.shape[1]
    for r in numba.prange(n_replicas):
        current = theta[r]
        scratch = (
            np.empty((SAMPLE_BLOCK, k)),
            np.empty(SAMPLE_BLOCK),
            np.empty(SAMPLE_BLOCK),
            np.empty(SAMPLE_BLOCK),
            np.empty((SAMPLE_BLOCK, n_units)),
            np.empty((SAMPLE_BLOCK, n_units)),
            np.empty((SAMPLE_BLOCK, n_units)),
            np.empty(n_units),
            np.zeros(SAMPLE_BLOCK, dtype=np.bool_),
            np.empty(n_units, dtype=np.int64),
        )
        first = np.empty((dim, n_units))
        stage = np.empty((dim, n_units))
        second = np.empty((dim, n_units))
        for step in range(sizes.shape[0]):
            s = sizes[step]
            _node_velocity(current, nodes, weights, targets, l2, unit, act, first, scratch)
            for a in range(dim):
                for n in range(n_units):
                    stage[a, n] = current[a, n] + s * first[a, n]
            _node_velocity(stage, nodes, weights, targets, l2, unit, act, second, scratch)
            for a in range(dim):
                for n in range(n_units):
                    current[a, n] = current[a, n] + 0.5 * s * (first[a, n] + second[a, n])
