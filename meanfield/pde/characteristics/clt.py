"""CLT predictions from the characteristics solver: ``Var_{rho_0}(phi_0)`` and the SGD term.

For every observable and saved time ``T``, :func:`clt_variances` returns

* ``Var_{rho_0}(phi_0)``, ``phi_0 = dF/dw`` from one reverse pass over the forward run
  (:mod:`.adjoint`): the limit of ``N Var F(mu_N(T))`` for population gradient descent from
  i.i.d. units (and for SGD as its step goes to 0);
* for online SGD with step ``eps`` and batch ``B``, the term that a fixed step adds and that
  does not shrink with ``N`` (SPEC section 5),
  ``(4 eps / B) int_0^T xi^2 Var_x[(y - y_hat_s(x)) <grad sigma_*(x; .) . grad phi_s, rho_s>] ds``,
  with ``grad phi_s(X_j(s)) = (dF/dX_j(s)) / w_j`` read off the same reverse pass at
  ``n_times`` times per ``T`` (trapezoid rule in ``tau``; ``xi^2 dt = xi d tau``) and the
  inner variance by Monte Carlo over units drawn from the points
  (:func:`~meanfield.pde.linearized.point_noise_rate`).

Observables: ``"risk"``, ``"mean_r"`` and ``"second_moment_r"`` on one axis, ``"mean_<axis>"``
on any.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ...backends.arrays import to_numpy
from ..linearized import has_sgd_noise_rate, point_noise_rate
from .adjoint import Functional, moment, reverse_pass, risk_functional

__all__ = ["functionals_for", "clt_variances", "METHOD"]

#: how the study names the predictions of this module
METHOD = "characteristics adjoint"


def functionals_for(names: Sequence[str], axis_names: Sequence[str]) -> list[Functional]:
    """The :class:`~.adjoint.Functional` of each observable name (unknown names are skipped)."""
    out = []
    for name in names:
        if name == "risk":
            out.append(risk_functional())
        elif name in ("mean_r", "second_moment_r") and len(axis_names) == 1:
            out.append(moment(name, 0, 1 if name == "mean_r" else 2))
        elif name.startswith("mean_") and name[5:] in axis_names:
            out.append(moment(name, list(axis_names).index(name[5:])))
    return out


def clt_variances(
    setup: Any,
    run: Any,
    names: Sequence[str],
    *,
    eps: float | None = None,
    batch: int = 1,
    n_times: int = 21,
    n_samples: int = 4000,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Per observable ``NAME``: ``Var(phi_0)`` at each saved time, and with ``eps`` the SGD
    term per unit ``N`` as ``NAME/sgd`` (so that ``N Var = pred + N sgd``).

    Parameters
    ----------
    setup : CharacteristicsSetup
    run : CharacteristicsRun
        Its final pass (points, weights, step record).
    names : observable names
    eps, batch : the SGD step and batch (``eps = None``: no SGD term, or the model has no
        noise rate)
    """
    model, backend = setup.model, setup.backend
    functionals = functionals_for(names, model.axis_names)
    record = run.record
    with_sgd = eps is not None and has_sgd_noise_rate(model, setup.grid.ndim)
    rates: dict[int, dict[int, float]] = {}
    hook = None
    if with_sgd:
        hook, rates = _sgd_sampler(setup, run, len(functionals), n_times, n_samples, seed)
    result = reverse_pass(
        setup.pde, run.points0, run.weights, record, functionals, backend, on_boundary=hook
    )
    out: dict[str, np.ndarray] = {}
    for q, fun in enumerate(functionals):
        out[fun.name] = result.variance[fun.name]
        if with_sgd:
            out[f"{fun.name}/sgd"] = np.array(
                [
                    _integrate(setup, record, rates, k, k * len(functionals) + q, eps, batch)
                    for k in range(len(record.frame_steps))
                ]
            )
    return out


def _boundary_taus(record: Any) -> np.ndarray:
    """``tau`` at every step boundary ``0 .. n_steps``."""
    taus = list(record.taus)
    end = record.taus[-1] + record.sizes[-1] if record.sizes else 0.0
    return np.array([*taus, end]) if taus else np.array([0.0])


def _sgd_sampler(
    setup: Any, run: Any, n_fun: int, n_times: int, n_samples: int, seed: int
) -> tuple[Any, dict[int, dict[int, float]]]:
    """A reverse-pass hook that evaluates the noise rate of every live column at the step
    boundaries nearest to ``n_times`` evenly spaced ``tau`` in ``[0, T]`` of every frame."""
    record = run.record
    taus = _boundary_taus(record)
    frame_taus = taus[record.frame_steps]
    wanted: dict[int, set[int]] = {}
    for k, tau_k in enumerate(frame_taus):
        for s in np.linspace(0.0, tau_k, n_times):
            n = int(np.argmin(np.abs(taus - s)))
            if taus[n] <= tau_k:
                wanted.setdefault(n, set()).add(k)
        wanted.setdefault(int(record.frame_steps[k]), set()).add(k)
        wanted.setdefault(0, set()).add(k)
    rates: dict[int, dict[int, float]] = {}
    rng = np.random.default_rng(seed)
    weights = np.asarray(run.weights)

    def hook(step: int, x: Any, lam: Any, mu: Any) -> None:
        if step not in wanted:
            return
        host_x = np.asarray(to_numpy(x), dtype=np.float64)
        host_lam = np.asarray(to_numpy(lam), dtype=np.float64)
        for k in wanted[step]:
            for q in range(n_fun):
                b = k * n_fun + q
                grad_phi = host_lam[b] / weights[:, None]
                rates.setdefault(b, {})[step] = point_noise_rate(
                    setup.model, host_x, grad_phi, weights, rng, n_samples
                )

    return hook, rates


def _integrate(
    setup: Any,
    record: Any,
    rates: dict[int, dict[int, float]],
    k: int,
    b: int,
    eps: float,
    batch: int,
) -> float:
    """``(4 eps / B) int_0^{tau_k} xi Var d tau`` of column ``b`` by the trapezoid rule."""
    if k == 0 or b not in rates:
        return 0.0
    taus = _boundary_taus(record)
    steps = sorted(rates[b])
    tau = taus[steps]
    xi = np.array(
        [float(setup.time_change.xi(max(float(setup.time_change.t_of_tau(s)), 1e-12))) for s in tau]
    )
    values = xi * np.array([rates[b][n] for n in steps])
    return 4.0 * eps / batch * float(np.trapezoid(values, tau))
