"""From a checked :class:`~meanfield.config.Config` to the objects of a run (no numerics here)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backends.arrays import Backend, BackendError, get_backend
from ..fields import naming as name_keys
from ..grid import Grid
from ..model import GridTooSmallError, ReducedModel, initial_density, model_entry
from ..model.laws import OUTSIDE_MASS_TOL
from ..model.registry import ModelEntry, Tolerance
from ..pde.characteristics import (
    CellRule,
    CharacteristicsPDE,
    Refinement,
    axis_laws_of,
    ridge_is_euclidean,
)
from ..pde.equation import MeanFieldPDE
from ..run_setup import ParticleSetup, ParticleSpec, RunSetup
from ..schedules import TimeChange, time_change_from_spec
from .parsing import ConfigError

__all__ = [
    "build_model",
    "build_law",
    "build_grid",
    "PDESetup",
    "CharacteristicsSetup",
    "build_pde_setup",
    "build_particle_setup",
    "build_run_setup",
    "GridTooSmallConfigError",
    "naming",
    "model_from_config",
    "law_from_config",
]


def build_model(spec: Mapping[str, Any], pde: Mapping[str, Any] | None = None) -> Any:
    """The model named by ``[model]`` (``[pde]``, when given, fixes the box on which a
    quadrature model certifies its accuracy): its registry entry's ``build``."""
    return model_entry(spec["name"]).build(spec, pde)


def build_law(model_spec: Mapping[str, Any], init: Mapping[str, Any]) -> Any:
    """The initial law of ``[init]`` for the model of ``[model]``: its registry entry's ``law``
    (``ValueError`` for a model whose particles bring their own law)."""
    entry = model_entry(model_spec["name"])
    if entry.law is None:
        raise ValueError(f"model {model_spec['name']!r} has no initial law of [init]")
    return entry.law(model_spec, init)


def build_grid(model: ReducedModel, pde: Mapping[str, Any]) -> Grid:
    """The grid of ``[pde]``: ``[0, r_max]`` for the radial model, ``bounds`` otherwise."""
    cells = pde["cells"]
    cells = tuple(cells) if isinstance(cells, list | tuple) else (int(cells),)
    if "r_max" in pde and pde["r_max"] is not None:
        bounds = ((0.0, float(pde["r_max"])),) * model.ndim
    else:
        bounds = tuple(tuple(b) for b in pde["bounds"])
    return Grid(bounds, cells, tuple(model.axis_names))


class GridTooSmallConfigError(ConfigError, GridTooSmallError):
    """The ``[pde]`` box cannot hold the initial law (a :class:`ConfigError` naming
    ``pde.r_max`` or ``pde.bounds``, and a :class:`~meanfield.model.GridTooSmallError`)."""


# ----------------------------------------------------------------------------- naming the keys


def naming(keys: str, hint: str = "") -> Any:
    """:func:`meanfield.fields.naming`, for the errors of the model, law, grid and backend
    classes (a :class:`BackendError` too: a backend this machine lacks)."""
    return name_keys(keys, hint, errors=(ValueError, BackendError))


def _fmt(value: Any) -> str:
    """A config value as it would be written in TOML (floats with ``:g``)."""
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:g}"
    return repr(value)


def _entry(config: Any) -> ModelEntry:
    return model_entry(config.model["name"])


def _box_key(config: Any) -> str:
    """The ``[pde]`` key that sets the box of the grid (the model's ``box_key``)."""
    return _entry(config).box_key


def _box_setting(config: Any) -> str:
    key = _box_key(config)
    return f"{key} = {_fmt(config.pde[key.split('.')[1]])}"


def model_from_config(config: Any) -> Any:
    """:func:`build_model` of ``config`` (on the box of its ``[pde]``, if any), with errors
    raised as :class:`ConfigError` naming the keys. A model whose entry certifies a tolerance
    at build time (the teacher-student quadrature order) does it here, so that a tolerance that
    cannot be reached on the box is a config error before any work, not a failure in the
    middle of a run."""
    entry = _entry(config)
    with naming(f"[model] ({_model_name(config)})"):
        model = entry.build(config.model, config.pde)
    tolerance = entry.tolerance
    if tolerance is not None and tolerance.certify is not None:
        with naming(_tolerance_keys(config), _tolerance_hint(config)):
            tolerance.certify(model, config.model)
    return model


def _model_name(config: Any) -> str:
    return f"model.name = {config.model['name']!r}"


def _tolerance(config: Any) -> Tolerance:
    tolerance = _entry(config).tolerance
    assert tolerance is not None, "only a model with a certified tolerance names its keys"
    return tolerance


def _tolerance_keys(config: Any) -> str:
    key = _tolerance(config).key
    box = f" on {_box_setting(config)}" if config.pde is not None else ""
    return f"model.{key} = {_fmt(config.model.get(key))}{box}"


def _tolerance_hint(config: Any) -> str:
    box = _box_key(config) if config.pde is not None else "pde box"
    return _tolerance(config).hint.replace("{box}", box)


def law_from_config(config: Any) -> Any:
    """:func:`build_law` of ``config``, with errors raised as :class:`ConfigError`."""
    with naming("[init]"):
        return build_law(config.model, config.init)


def _grid_too_small(config: Any, law: Any, grid: Grid) -> GridTooSmallConfigError:
    """The error for a ``[pde]`` box that cannot hold the initial law, with a box that can."""
    _, outside = law.cell_masses(grid)
    wider = tuple(
        (min(lo, _round_out(need_lo, up=False)), max(hi, _round_out(need_hi, up=True)))
        for (lo, hi), (need_lo, need_hi) in zip(grid.bounds, law.box(OUTSIDE_MASS_TOL), strict=True)
    )
    key = _box_key(config)
    if key == "pde.r_max":
        allowed = f"pde.r_max >= {max(hi for _, hi in wider):g}"
    else:
        allowed = f"pde.bounds = {_fmt(wider)} or wider"
    law_keys = _entry(config).law_keys
    return GridTooSmallConfigError(
        f"{_box_setting(config)}: the grid cannot hold the initial law: "
        f"mass {outside:.3g} lies outside it (allowed {OUTSIDE_MASS_TOL:g}); allowed: {allowed} "
        f"(or change {law_keys} so that the initial law fits)"
    )


def _round_out(x: float, *, up: bool) -> float:
    """``x`` rounded away from the inside of a box to two significant digits."""
    if x == 0.0 or not math.isfinite(x):
        return x
    step = 10.0 ** (math.floor(math.log10(abs(x))) - 1)
    n = math.ceil(x / step) if up else math.floor(x / step)
    return float(f"{n * step:.12g}")


@dataclass(frozen=True)
class PDESetup:
    """Everything :func:`~meanfield.pde.controller.integrate` needs."""

    pde: MeanFieldPDE
    rho0: np.ndarray
    save_times: tuple[float, ...]
    time_change: TimeChange
    backend: Backend
    cfl: float
    dtype: Any

    method = "grid"

    @property
    def model(self) -> Any:
        return self.pde.model

    @property
    def grid(self) -> Grid:
        """The grid the density lives on."""
        return self.pde.grid


@dataclass(frozen=True)
class CharacteristicsSetup:
    """Everything :func:`~meanfield.pde.characteristics.solve_with_refinement` needs.

    Attributes
    ----------
    pde : CharacteristicsPDE
    rule : CellRule
        The initial rule (refined by the solver where the flow stretches).
    grid : Grid
        Where the densities of the output frames are deposited (``[pde] cells`` on the box).
    save_times, time_change, backend : as :class:`PDESetup`'s
    refinement : Refinement
    """

    pde: CharacteristicsPDE
    rule: CellRule
    grid: Grid
    save_times: tuple[float, ...]
    time_change: TimeChange
    backend: Backend
    refinement: Refinement

    method = "characteristics"

    @property
    def model(self) -> Any:
        return self.pde.model


def build_run_setup(config: Any) -> RunSetup:
    """Build every part of ``config`` once: the model, each backend, the PDE setup (if there is a
    ``[pde]``) and the particle setup (if there is a ``[particles]``).

    Raises
    ------
    ConfigError
        As :func:`build_pde_setup` and :func:`build_particle_setup`, before any work.
    """
    backends: dict[str, Backend] = {}

    def backend(name: str) -> Backend:  # one backend per name: "auto" for both is built once
        if name not in backends:
            backends[name] = get_backend(name)
        return backends[name]

    model = model_from_config(config)
    pde = (
        build_pde_setup(config, model=model, backend_of=backend) if config.pde is not None else None
    )
    particles = (
        build_particle_setup(config, model=model, backend_of=backend)
        if config.particles is not None
        else None
    )
    return RunSetup(config, model, pde, particles)


def build_pde_setup(
    config: Any, *, model: Any = None, backend_of: Callable[[str], Backend] = get_backend
) -> PDESetup | CharacteristicsSetup:
    """Build the PDE run described by ``config`` (a :class:`CharacteristicsSetup` for
    ``pde.method = "characteristics"``), with ``model`` if it is built already.

    Raises
    ------
    ConfigError
        For input the schema alone cannot reject: a grid too small for the initial law
        (:class:`GridTooSmallConfigError`), a kernel series or quadrature that cannot reach its
        tolerance on the grid, a backend this machine lacks, float32 (not validated yet). The
        message starts with the keys at fault.
    """
    with naming("[pde]"):  # the stages below name their keys; this is only a safety net
        return _build_pde_setup(config, model, backend_of)


def _build_pde_setup(
    config: Any, model: Any, backend_of: Callable[[str], Backend]
) -> PDESetup | CharacteristicsSetup:
    spec, dyn = config.pde, config.dynamics
    if spec.get("dtype", "float64") != "float64":
        raise ConfigError(
            "pde.dtype = 'float32' is not validated for the PDE yet (the invariant "
            "tolerances assume float64); allowed: 'float64'"
        )
    with naming(
        f"pde.backend = {spec.get('backend', 'auto')!r}", "allowed here: 'numpy' or 'auto'"
    ):
        backend = backend_of(spec.get("backend", "auto"))
    model = model_from_config(config) if model is None else model
    with naming(f"{_box_setting(config)}, pde.cells = {_fmt(spec['cells'])}"):
        grid = build_grid(model, spec)
    beta = float(dyn.get("beta", math.inf))
    with naming(f"dynamics.beta = {beta:g}", "allowed: dynamics.beta = inf, or a finite model.d"):
        model.check_noise(beta)
    _check_on_grid(config, model, grid)
    if spec.get("method", "grid") == "characteristics":
        return _characteristics_setup(config, model, grid, backend)
    with naming("pde.order, pde.limiter, dynamics.l2"):
        pde = MeanFieldPDE(
            model,
            grid,
            beta=beta,
            l2=float(dyn.get("l2", 0.0)),
            order=int(spec.get("order", 2)),
            limiter=spec.get("limiter", "mc"),
        )
    law = law_from_config(config)
    try:
        rho0 = initial_density(law, grid)
    except GridTooSmallError as err:
        raise _grid_too_small(config, law, grid) from err
    with naming("dynamics.xi"):
        time_change = time_change_from_spec(dyn.get("xi", 1.0))
    dtype = getattr(backend.xp, spec.get("dtype", "float64"))
    return PDESetup(
        pde,
        rho0,
        tuple(dyn["save_times"]),
        time_change,
        backend,
        float(spec.get("cfl", 0.8)),
        dtype,
    )


#: what the characteristics solver needs of a model besides the grid's methods
POINT_METHODS = ("potential_gradient", "kernel_feature_gradients")


def _characteristics_setup(
    config: Any, model: ReducedModel, grid: Grid, backend: Backend
) -> CharacteristicsSetup:
    """The points of ``[pde]``'s initial rule, checked against the box."""
    spec, dyn = config.pde, config.dynamics
    missing = [name for name in POINT_METHODS if not callable(getattr(model, name, None))]
    if missing:
        raise ConfigError(
            f"pde.method = 'characteristics' with {_model_name(config)}: the "
            f"model has no {', '.join(missing)} (the velocity of a point needs the "
            "gradients of V and of the kernel features); allowed: pde.method = "
            "'grid'"
        )
    law = law_from_config(config)
    with naming(
        f"pde.method = 'characteristics' with {_model_name(config)}", "allowed: pde.method = 'grid'"
    ):
        laws = axis_laws_of(law, grid.ndim)
    gauss, points = int(spec["gauss"]), tuple(int(p) for p in spec["points"])
    rule = CellRule.uniform(laws, [p // gauss for p in points], gauss)
    x0, w0 = rule.points()
    l2 = float(dyn.get("l2", 0.0))
    if l2 and not ridge_is_euclidean(model, x0):
        raise ConfigError(
            f"dynamics.l2 = {l2:g} with pde.method = 'characteristics': model "
            f"{config.model['name']!r} has |theta|^2 other than |q|^2 on its "
            "reduced axes; allowed: dynamics.l2 = 0, or pde.method = 'grid'"
        )
    with naming("pde.scheme, pde.tol, pde.outside_tol, dynamics.l2"):
        pde = CharacteristicsPDE(
            model,
            grid.bounds,
            l2=l2,
            scheme=spec["scheme"],
            tol=float(spec["tol"]),
            box_name=_box_setting(config),
            outside_tol=float(spec["outside_tol"]),
            scale_grid=grid,
        )
    _check_points_in_box(config, pde, x0, w0)
    refinement = Refinement(
        tol=float(spec["refine"]),
        risk_tol=float(spec["risk_tol"]),
        max_passes=int(spec["refine_passes"]),
        max_points=int(spec["max_points"]),
    )
    with naming("dynamics.xi"):
        time_change = time_change_from_spec(dyn.get("xi", 1.0))
    return CharacteristicsSetup(
        pde, rule, grid, tuple(dyn["save_times"]), time_change, backend, refinement
    )


def _check_points_in_box(
    config: Any, pde: CharacteristicsPDE, points: np.ndarray, weights: np.ndarray
) -> None:
    """No more than ``pde.outside_tol`` of the initial weight outside the box (the kernel is
    certified there only)."""
    mass = pde.outside_mass(points, weights)
    if mass > pde.outside_tol:
        reach = [
            (float(points[:, a].min()), float(points[:, a].max())) for a in range(points.shape[1])
        ]
        raise GridTooSmallConfigError(
            f"{_box_setting(config)}: weight {mass:.3g} of the initial points of pde.method = "
            f"'characteristics' lies outside the box (allowed pde.outside_tol = "
            f"{pde.outside_tol:g}); the points reach "
            f"{', '.join(f'[{lo:.4g}, {hi:.4g}]' for lo, hi in reach)}; allowed: a larger box "
            f"(or change {_entry(config).law_keys})"
        )


def _check_on_grid(config: Any, model: ReducedModel, grid: Grid) -> None:
    """``model.validate(grid)`` as a config error naming the keys: the box, or the tolerance
    the model certifies on it (the kernel expansion of the MMN models)."""
    tolerance = _entry(config).tolerance
    if tolerance is None or tolerance.certify is not None:
        with naming(_box_setting(config)):
            model.validate(grid)
        return
    with naming(_tolerance_keys(config), _tolerance_hint(config)):
        model.validate(grid)


def build_particle_setup(
    config: Any, *, model: Any = None, backend_of: Callable[[str], Backend] = get_backend
) -> ParticleSetup:
    """The particle side of ``config``: the particle-side model and law (the model entry's
    ``particle_setup``, else the model and ``[init]``'s law), the backend and the options, with
    ``model`` if it is built already.

    Raises
    ------
    ConfigError
        A backend this machine lacks, a model with no particles at these keys (``model.d =
        inf``), a particle setup the model's entry rejects.
    """
    spec, dyn = config.particles, config.dynamics
    with naming(
        f"particles.backend = {spec.get('backend', 'auto')!r}", "allowed here: 'numpy' or 'auto'"
    ):
        backend = backend_of(spec.get("backend", "auto"))
    model = model_from_config(config) if model is None else model
    hook = model_entry(config.model["name"]).particle_setup
    if hook is not None:  # the particle-side model and law of the entry (p-spin: a task)
        with naming(f"[model] ({_model_name(config)})"):
            model, law = hook(model, backend)
    elif not math.isfinite(float(getattr(model, "d", 0))):
        raise ConfigError(
            "model.d = inf has no particles: set a finite d for [particles]; "
            "allowed: an integer >= 2 (or drop [particles])"
        )
    else:
        law = law_from_config(config)
    quench_batch = int(spec.get("quench_batch", 0))
    options = ParticleSpec(
        n=int(spec["n"]),
        replicas=int(spec["replicas"]),
        seed=int(spec["seed"]),
        method=str(spec.get("method", "online_sgd")),
        step=float(spec["step"]),
        batch=int(spec.get("batch", 1)),
        quench_batch=quench_batch,
        quench_time=float(spec["quench_time"]) if quench_batch else None,
        engine=str(spec.get("engine", "auto")),
        dtype=str(spec.get("dtype", "float64")),
        keep_theta=bool(spec.get("keep_theta", False)),
        test_points=int(spec.get("test_points", 10000)),
        time_change=time_change_from_spec(dyn.get("xi", 1.0)),
        l2=float(dyn.get("l2", 0.0)),
        beta=float(dyn.get("beta", math.inf)),
        save_times=tuple(float(s) for s in dyn["save_times"]),
    )
    return ParticleSetup(model, law, backend, options)
