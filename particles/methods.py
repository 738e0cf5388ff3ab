"""Particle updates: ``make_*`` factories return ``step(state) -> state`` closures.

All methods share the model layer (no second implementation of sigma_*, V or U), use the time
change through the exact step integrals ``s_k = tau((k + 1) eps) - tau(k eps)`` (``eps xi(k eps)``
up to ``O(eps^2)``, finite where ``xi`` is singular), and treat the R replicas as a leading axis.

* ``online_sgd`` (SPEC section 1): a fresh batch of B samples every step,
  ``theta_i <- (1 - 2 lambda s_k) theta_i + (2 s_k / B) sum_b (y_b - y_hat(x_b)) grad sigma_*(x_b;
  theta_i)``.
* ``noisy_sgd``: the same plus ``2 sqrt(s_k / beta) g_i``, ``g_i ~ N(0, I_D)``: the pairing that
  matches the DD's ``2 xi / beta`` Laplacian. A model without data (the quadratic model) has
  no stochastic gradient: its exact gradient is used, which makes this the Langevin scheme.
* ``gd``: population gradient descent ``d theta_i / dt = -2 xi (grad Psi(theta_i; mu_N) +
  lambda theta_i)`` through the model's exact V and U, by Heun's method (SSP-RK2), one step
  ``s_k`` of ``tau`` per step: the noise-free particle method for the DD.
* ``kernel_gd``: the gradient flows of Gaussian-kernel units on the sphere
  (:mod:`particles.kernel_gd`), ``theta = (c, y)``.

Every method is a :class:`Method` of :data:`REGISTRY`: its options' check and its NumPy step.
The compiled engine runs the same methods (:func:`particles.engine.select_engine`).

References
----------
S. Mei, A. Montanari, P.-M. Nguyen, PNAS 115 (2018), eq. (3) and (7).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from meanfield.rng import Purpose, chunk_steps
from meanfield.schedules import TimeChange

from .state import EnsembleState

__all__ = [
    "make_online_sgd",
    "make_gd",
    "make_step",
    "check_method",
    "Method",
    "REGISTRY",
    "METHODS",
]


def _step_size(time_change: TimeChange, eps: float) -> Callable[[int], float]:
    return lambda k: float(time_change.step_integrals(eps, 1, start=k)[0])


def make_online_sgd(
    model: Any,
    rng: Any,
    backend: Any,
    *,
    eps: float,
    batch: int,
    time_change: TimeChange,
    l2: float = 0.0,
    beta: float = math.inf,
) -> Callable:
    """One-pass SGD with a fresh batch per step (noisy when ``beta < inf``).

    Parameters
    ----------
    model : a model with ``sample_data``, ``forward`` and ``backward`` (or, without data, an
        exact ``population_gradient``)
    rng : counter-based generator with one stream per replica (``normal(counter, shape,
        purpose)``, ``uniform(...)``)
    backend : meanfield.backends.Backend
    eps : float
        The step ``eps``: step ``k`` is PDE time ``k eps``.
    batch : int

    Notes
    -----
    Random numbers are drawn for a chunk of steps at once (counter = chunk index), which
    amortises the generator's per-call cost; every draw is still a pure function of the seed
    and the step index, so runs are reproducible and resumable at any step.
    """
    size = _step_size(time_change, eps)
    noisy = math.isfinite(beta)
    xp = backend.xp
    has_data = hasattr(model, "sample_data")
    data = _chunked(
        lambda chunk, n: model.sample_data(rng, chunk, n * batch, xp),
        lambda pair, i, n: tuple(_take_step(a, i, n) for a in pair),
        batch,
    )

    def step(state: EnsembleState) -> EnsembleState:
        s = size(state.step)
        theta = state.theta
        if has_data:
            x, y = data(state.step, int(theta.shape[0]) * batch * model.dim)
            values, cache = model.forward(x, theta, xp)
            coef = (2.0 * s / batch) * (y - xp.mean(values, axis=-1))  # (R, B)
            drift = model.backward(x, theta, cache, coef[..., None], xp)
        else:
            drift = -2.0 * s * model.population_gradient(theta, None, backend)
        new = theta + drift if l2 == 0.0 else (1.0 - 2.0 * l2 * s) * theta + drift
        if noisy:
            new = new + 2.0 * math.sqrt(s / beta) * _noise(rng, state.step, theta.shape)
        return state.replace(theta=new, step=state.step + 1)

    return step


def _chunked(draw: Callable, take: Callable, per_step: int) -> Callable:
    """Cache ``draw(chunk, n_steps)`` for a chunk of steps (:func:`meanfield.rng.chunk_steps`)
    and ``take`` the step's slice."""
    cache: dict[str, Any] = {"chunk": None}

    def get(step: int, numbers_per_step: int) -> Any:
        n_steps = chunk_steps(numbers_per_step)
        chunk = step // n_steps
        if cache["chunk"] != (chunk, n_steps):
            cache.update(chunk=(chunk, n_steps), value=draw(chunk, n_steps))
        return take(cache["value"], step - chunk * n_steps, per_step)

    return get


def _take_step(array: Any, index: int, per_step: int) -> Any:
    """Rows ``index * per_step .. (index + 1) * per_step`` of axis 1 (the sample axis)."""
    return array[:, index * per_step : (index + 1) * per_step, ...]


def _noise(rng: Any, step: int, shape: tuple) -> Any:
    """Standard normal noise for every unit, ``(R, N, D)``, a pure function of ``step``."""
    return rng.normal(step, tuple(shape[1:]), Purpose.NOISE)


def make_gd(
    model: Any, backend: Any, *, eps: float, time_change: TimeChange, l2: float = 0.0
) -> Callable:
    """Population gradient descent by Heun's method with ``d tau = s_k`` per step."""
    size = _step_size(time_change, eps)

    def velocity(theta: Any) -> Any:
        return -2.0 * (model.population_gradient(theta, None, backend) + l2 * theta)

    def step(state: EnsembleState) -> EnsembleState:
        s = size(state.step)
        first = velocity(state.theta)
        stage = state.theta + s * first
        new = state.theta + 0.5 * s * (first + velocity(stage))
        return state.replace(theta=new, step=state.step + 1)

    return step


def _check_sgd(method: str, beta: float = math.inf, **_: Any) -> None:
    if method == "online_sgd" and math.isfinite(beta):
        raise ValueError("online_sgd is noiseless: use method = 'noisy_sgd' with beta < inf")
    if method == "noisy_sgd" and not math.isfinite(beta):
        raise ValueError("noisy_sgd needs a finite dynamics.beta")


def _check_gd(method: str, beta: float = math.inf, **_: Any) -> None:
    if math.isfinite(beta):
        raise ValueError("gd is noiseless: use method = 'noisy_sgd' with beta < inf")


def _check_kernel_gd(method: str, *, objective: str = "collocation", **_: Any) -> None:
    from meanfield.model.rve.sphere_kernel import OBJECTIVES  # noqa: PLC0415

    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")


def _sgd_step(
    model: Any,
    rng: Any,
    backend: Any,
    *,
    eps: float,
    batch: int,
    time_change: TimeChange,
    l2: float,
    beta: float,
) -> Callable:
    return make_online_sgd(
        model, rng, backend, eps=eps, batch=batch, time_change=time_change, l2=l2, beta=beta
    )


def _gd_step(
    model: Any,
    rng: Any,
    backend: Any,
    *,
    eps: float,
    time_change: TimeChange,
    l2: float,
    batch: int = 1,
    beta: float = math.inf,
) -> Callable:
    return make_gd(model, backend, eps=eps, time_change=time_change, l2=l2)


def _kernel_gd_step(model: Any, rng: Any, backend: Any, **options: Any) -> Callable:
    from .kernel_gd import make_kernel_gd_step  # noqa: PLC0415  (the sphere model's imports)

    return make_kernel_gd_step(model, rng, backend, **options)


@dataclass(frozen=True)
class Method:
    """A particle method: its options' check and its NumPy step (the reference).

    Attributes
    ----------
    name : str
    check : callable ``(name, **options) -> None``
        Raises ``ValueError`` for options the method does not take (a noise where it has
        none); a run checks them so whichever engine runs the method.
    make_step : callable ``(model, rng, backend, **options) -> step(state) -> state``
    """

    name: str
    check: Callable[..., None]
    make_step: Callable[..., Callable]


#: every particle method, by name: SGD and GD of :mod:`particles.methods`, the kernel-unit flows
#: of :mod:`particles.kernel_gd`
REGISTRY = {
    method.name: method
    for method in (
        Method("online_sgd", _check_sgd, _sgd_step),
        Method("noisy_sgd", _check_sgd, _sgd_step),
        Method("gd", _check_gd, _gd_step),
        Method("kernel_gd", _check_kernel_gd, _kernel_gd_step),
    )
}
METHODS = tuple(REGISTRY)


def check_method(method: str, **options: Any) -> Method:
    """The :class:`Method` ``method``, after its check of ``options``; raises ``ValueError``."""
    if method not in REGISTRY:
        raise ValueError(f"unknown particle method {method!r}; allowed: {', '.join(METHODS)}")
    entry = REGISTRY[method]
    entry.check(method, **options)
    return entry


def make_step(method: str, model: Any, rng: Any, backend: Any, **options: Any) -> Callable:
    """The NumPy step function of ``method`` (one of :data:`METHODS`).

    ``options``: ``eps``, ``batch``, ``time_change``, ``l2`` and ``beta`` for SGD and GD;
    ``eps``, ``beta``, ``noise_steps`` and ``objective`` for ``kernel_gd``.
    """
    return check_method(method, **options).make_step(model, rng, backend, **options)
