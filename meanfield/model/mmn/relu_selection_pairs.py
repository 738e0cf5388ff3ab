"""The ReLU selection model in the full space: exact ``R(mu_N)`` and ``grad Psi`` for N units.

Given the class ``y``, ``x = S_y g`` with ``g ~ N(0, I_d)`` and ``S_y = diag(tau_y I_s0,
I_{d-s0})``, so ``<w, x> = <z, g>`` with the whitened ``z = S_y w``; write ``sig = |z|``,
``h = -b / sig`` and ``c_ij = <z_i, z_j> / (sig_i sig_j)``. For two different units

.. math::

    U_{ij} = a_i a_j \\tfrac12 \\sum_y G(\\sigma_i, b_i, \\sigma_j, b_j, c_{ij}), \\qquad
    G = E[(\\sigma_i X + b_i)_+ (\\sigma_j Y + b_j)_+] = \\sigma_i \\sigma_j\\,
        E[(X - h_i)_+ (Y - h_j)_+],

the ramp pair of :func:`~.bivariate.ramp_pair` (Genz's orthant probability ``L``, any ``c``);
on the diagonal ``U_ii = a_i^2 (1/2) sum_y E(sig Z + b)_+^2``. The derivatives are closed forms
too: ``dG/dc = sig_i sig_j L`` (Price), ``dG/db_i = sig_j A(h_i, h_j)`` with

.. math::

    A(h, k) = E[1\\{X > h\\} (Y - k)_+] = c \\varphi(h) \\bar\\Phi(\\tfrac{k - ch}{s})
              + \\varphi(k) \\bar\\Phi(\\tfrac{h - ck}{s}) - k L, \\qquad s = \\sqrt{1 - c^2}

(Stein's identity ``E[Y g(X, Y)] = E[c g_x + g_y]`` on ``g = 1{X > h, Y > k}``), and
``dG/dsig_i = sig_j (R + h_i A)`` since ``G`` is 1-homogeneous in ``(sig_i, b_i)``.
Then ``R = R_# + (2/N) sum_i V_i + (1/N^2) sum_ij U_ij`` and ``grad Psi(theta_i; mu_N) =
grad V(theta_i) + (1/N) sum_j grad_1 U(theta_i, theta_j)``, the ``j = i`` term being
``(1/2) grad [U(theta, theta)]``; ``grad_w = sum_y S_y grad_z``, ``grad_z sig = z / sig``,
``grad_{z_i} c_ij = (z_j / sig_j - c_ij z_i / sig_i) / sig_i``.

Cost: ``N^2`` orthant probabilities per class and replica (20 Gauss-Legendre nodes each); the
replicas are done one at a time, so memory stays at a few ``N x N`` arrays. Array-API code.
"""

from __future__ import annotations

import math
from typing import Any

from ..integrals.bivariate import C_CLIP, orthant, ramp_pair, shifted
from ..integrals.ramp import ramp_mean, ramp_second_moment

__all__ = ["population_risk", "population_gradient"]

_SQRT_2PI = math.sqrt(2.0 * math.pi)


def _phi(x: Any, xp: Any) -> Any:
    return xp.exp(-0.5 * x * x) / _SQRT_2PI


def _classes(model: Any, theta: Any, xp: Any) -> list[tuple[float, Any]]:
    """``(y, z)`` per class: the whitened units ``z = S_y w`` of one replica ``(N, d)``."""
    s0 = int(model.s0)
    w = theta[..., 2:]
    return [
        (label, xp.concat([tau * w[..., :s0], w[..., s0:]], axis=-1))
        for label, tau in zip((1.0, -1.0), model.taus, strict=True)
    ]


def _pairs(z: Any, b: Any, backend: Any) -> dict[str, Any]:
    """Everything the pair sums of one class need, for units ``z`` ``(N, d)`` and offsets ``b``
    ``(N,)``: ``sig``, the directions, ``c`` (clipped, zero diagonal), ``h``, ``L`` and the ramp
    pair ``R`` (``(N, N)``, zero diagonal)."""
    xp = backend.xp
    n = z.shape[0]
    sig = xp.sqrt(xp.sum(z * z, axis=-1))
    safe = xp.where(sig > 0, sig, 1.0 + 0.0 * sig)
    unit = z / safe[:, None]
    off = 1.0 - xp.eye(n, dtype=z.dtype)
    c = xp.clip(unit @ xp.matrix_transpose(unit), -C_CLIP, C_CLIP) * off
    h = -b / safe
    h_i, h_j = h[:, None] + 0.0 * c, h[None, :] + 0.0 * c
    orth = orthant(h_i, h_j, c, backend)
    return {
        "sig": sig,
        "safe": safe,
        "unit": unit,
        "c": c,
        "off": off,
        "h_i": h_i,
        "h_j": h_j,
        "L": orth,
        "R": ramp_pair(h_i, h_j, c, orth, backend) * off,
    }


def _ramp_moments(sig: Any, b: Any, backend: Any) -> tuple[Any, Any, Any]:
    """``E(sig Z + b)_+``, ``E(sig Z + b)_+^2`` and ``Phi(b/sig)`` (closed forms)."""
    xp = backend.xp
    safe = xp.where(sig > 0, sig, 1.0 + 0.0 * sig)
    return (
        ramp_mean(sig, b, backend),
        ramp_second_moment(sig, b, backend),
        xp.where(sig > 0, backend.ndtr(b / safe), xp.astype(b > 0, b.dtype)),
    )


def population_risk(model: Any, theta: Any, backend: Any) -> Any:
    """``R(mu_N)`` of every replica, shape ``(R,)``: exact (closed-form pair integrals).

    Parameters
    ----------
    model : ReluSelection
    theta : array of shape ``(R, N, d + 2)``, columns ``(a, b, w)``
    backend : meanfield.backends.Backend
    """
    xp = backend.xp
    n = theta.shape[-2]
    out = []
    for r in range(theta.shape[0]):
        a, b = theta[r, :, 0], theta[r, :, 1]
        potential = 0.0 * a
        pairs = 0.0 * a[0]
        for label, z in _classes(model, theta[r, ...], xp):
            p = _pairs(z, b, backend)
            mean, second, _ = _ramp_moments(p["sig"], b, backend)
            potential = potential - 0.5 * label * a * mean
            scaled = a * p["sig"]
            off_diagonal = xp.sum(scaled * xp.squeeze(p["R"] @ scaled[:, None], axis=-1))
            pairs = pairs + 0.5 * (off_diagonal + xp.sum(a * a * second))
        out.append(model.r_sharp + 2.0 * xp.mean(potential) + pairs / (n * n))
    return xp.stack(out)


def population_gradient(model: Any, theta: Any, backend: Any) -> Any:
    """``grad Psi(theta_i; mu_N)``, shape ``(R, N, d + 2)``, columns ``(a, b, w)``.

    Parameters as :func:`population_risk`; the formulas are in the module docstring.
    """
    xp = backend.xp
    return xp.stack(
        [_replica_gradient(model, theta[r, ...], backend) for r in range(theta.shape[0])]
    )


def _replica_gradient(model: Any, theta: Any, backend: Any) -> Any:
    """``grad Psi`` of the ``N`` units of one replica, ``(N, d + 2)``."""
    xp = backend.xp
    n = theta.shape[0]
    s0 = int(model.s0)
    a, b = theta[:, 0], theta[:, 1]
    d_a = 0.0 * a
    d_b = 0.0 * a
    d_w = 0.0 * theta[:, 2:]
    for (label, z), tau in zip(_classes(model, theta, xp), model.taus, strict=True):
        p = _pairs(z, b, backend)
        sig, safe, unit, c, off = p["sig"], p["safe"], p["unit"], p["c"], p["off"]
        mean, second, cdf = _ramp_moments(sig, b, backend)
        h_i, h_j, orth = p["h_i"], p["h_j"], p["L"]
        s = xp.sqrt((1.0 - c) * (1.0 + c))
        tilt = (
            c * _phi(h_i, xp) * backend.ndtr(-shifted(h_j, h_i, c, xp) / s)
            + _phi(h_j, xp) * backend.ndtr(-shifted(h_i, h_j, c, xp) / s)
            - h_j * orth
        )
        sig_j = sig[None, :]
        pair_a = a[None, :] * sig[:, None] * sig_j * p["R"]  # a_j G_ij
        by_b = a[None, :] * sig_j * tilt * off  # a_j dG/db_i
        by_sig = a[None, :] * sig_j * (p["R"] + h_i * tilt) * off  # a_j dG/dsig_i
        by_c = a[None, :] * sig[:, None] * sig_j * orth * off  # a_j dG/dc_ij
        phi_b = _phi(b / safe, xp) * xp.astype(sig > 0, sig.dtype)
        # V: -(a/2) y F_0; dF_0/db = Phi(b/sig), dF_0/dsig = phi(b/sig)
        d_a = d_a - 0.5 * label * mean + 0.5 * (xp.sum(pair_a, axis=-1) + a * second) / n
        d_b = d_b - 0.5 * label * a * cdf + 0.5 * a * (xp.sum(by_b, axis=-1) + a * mean) / n
        radial = -0.5 * label * a * phi_b + 0.5 * a * (xp.sum(by_sig, axis=-1) + a * sig * cdf) / n
        tangential = 0.5 * a[:, None] * (by_c @ unit - xp.sum(by_c * c, axis=-1)[:, None] * unit)
        grad_z = radial[:, None] * unit + tangential / (n * safe[:, None])
        d_w = d_w + xp.concat([tau * grad_z[:, :s0], grad_z[:, s0:]], axis=-1)
    return xp.concat([d_a[:, None], d_b[:, None], d_w], axis=-1)
