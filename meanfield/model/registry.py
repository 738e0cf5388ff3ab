"""The model registry: each model declares, in its own module, everything a config needs of it.

A :class:`ModelEntry` holds a model's name, its config keys per section (the
:class:`~meanfield.fields.Field` objects: types, defaults, checks, help text), how the
model and its initial law are built from the parsed sections, its number of grid axes, what it
offers (a PDE grid, particles), the keys that error messages name, and optional hooks (rules across
sections, a tolerance certified on the grid's box, a particle-side wrapper, a study protocol).
Every built-in model module ends with ``register(ModelEntry(...))``, and
:mod:`meanfield.model` imports them all, so the schema, the builders, the config checker and the
study look models up here and know no model by name.

Bring your own model
--------------------
``[model] name = "mypackage.mymodule:MyModel"`` imports ``mypackage.mymodule`` and takes the
attribute ``MyModel`` (dots allowed: ``"pkg.mod:Outer.Inner"``), which is either a
:class:`ModelEntry` or an object (usually the model class) with an attribute ``model_entry``: a
:class:`ModelEntry`, or a callable returning one. A name without ``:`` that no built-in model has
is looked up among the entry points of the group ``meanfield.models`` (a package declares
``[project.entry-points."meanfield.models"] mymodel = "mypackage.mymodule:MyModel"``). Nothing in
this package needs to change; ``meanfield info --models NAME`` prints the keys of such a model.
The config checker validates its keys like a built-in model's (unknown key, wrong type, bad
value, all naming ``model.KEY``); a module that fails to import is a
:class:`~meanfield.fields.ConfigError` naming ``model.name`` and the module.

What the model object (``entry.build(model_spec, pde_spec)``) must provide:

* for the PDE (``entry.pde = True``): the :class:`~meanfield.model.base.ReducedModel` interface,
  ``ndim``, ``axis_names``, ``r_sharp``, ``potential(points)`` and
  ``kernel_features(points, scale_points)`` (a low-rank ``U``), optionally ``norm_sq``,
  ``log_jacobian``, ``self_interaction``, ``check_noise(beta)`` and ``validate(grid)``. For the
  CLT predictions of a study and for ``pde.method = "characteristics"``, also
  ``potential_gradient(points)`` and ``kernel_feature_gradients(points, scale_points)``
  (optionally ``kernel_features_with_gradients``, both from one evaluation, and
  ``domain_lower``, 0 on radial axes). A model whose grid is its parameter space subclasses
  :class:`~meanfield.model.base.FullSpaceModel` (``dim = ndim``, ``reduce`` = identity).
* for the particles (``entry.particles = True``; see :mod:`particles.methods`):
  ``dim`` (parameters per unit), ``axis_names``, ``reduce(theta, xp)`` (``(R, N, dim)`` to the
  reduced coordinates ``(R, N, k)``) and ``population_risk(theta, order, backend)`` (``(R,)``),
  or ``test_risk(rng, counter, n_points, theta, xp)`` where there is no formula. Online SGD needs
  data, ``sample_data(rng, counter, batch, xp) -> (x (R, B, ...), y (R, B))``,
  ``forward(x, theta, xp) -> (outputs (R, B, N), cache)`` and
  ``backward(x, theta, cache, coef, xp) -> (R, N, dim)`` (``sum_b coef[r, b, i] grad_theta
  sigma_*(x_b; theta_i)``); ``gd``, and SGD of a model without data, need
  ``population_gradient(theta, order, backend)`` (``grad Psi(theta_i; mu_N)``, ``(R, N, dim)``).
  All of these take the array namespace ``xp`` (or ``backend.xp``) and use ``xp.*`` only. The
  compiled engine is used only for models that also describe themselves to it,
  ``engine_pieces()`` (:class:`~meanfield.model.base.ParticleEngineModel`, the records of
  :mod:`meanfield.model.pieces`); any other model runs on the NumPy path.
* the initial law (``entry.law(model_spec, init_spec)``): ``cell_masses(grid) -> (masses,
  outside)`` and ``box(tol)`` for the PDE, ``axis_laws()`` (independent one-axis laws with
  ``from_score(z)``, the quantile at normal score ``z``) for the characteristics solver,
  ``sample_streams(rng, n) -> (R, n, dim)`` for the particles
  (:class:`~meanfield.model.laws.NormalLaw` of :func:`meanfield.model.keys.normal_law` serves
  every model whose grid is its parameter space).

Examples
--------
>>> from meanfield.model.registry import model_entry
>>> entry = model_entry("quadratic")
>>> entry.pde, sorted(entry.keys["model"])
(True, ['center', 'ndim', 'stiffness'])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ..fields import ConfigError, Context, Field, short_repr
from ..plugins import Registry

__all__ = [
    "ModelEntry",
    "Tolerance",
    "register",
    "model_entry",
    "builtin_entries",
    "entry_point_names",
    "ENTRY_POINT_GROUP",
]

#: the entry-point group through which installed packages offer models
ENTRY_POINT_GROUP = "meanfield.models"
#: the sections a model may add keys to
MODEL_SECTIONS = ("model", "init", "dynamics", "pde", "particles", "study")

Spec = Mapping[str, Any]


@dataclass(frozen=True)
class Tolerance:
    """A ``[model]`` key whose tolerance the model certifies on the ``[pde]`` box.

    Errors of the certification are config errors naming ``model.KEY = value on pde.BOX``
    and ending with ``hint``.

    Attributes
    ----------
    key : str
        The ``[model]`` key (``"kernel_tol"``).
    hint : str
        What would be accepted; ``{box}`` is replaced by the box key (``pde.r_max``).
    certify : callable ``(model, model_spec) -> None``, optional
        Work done right after the model is built (choosing a quadrature order, say) that raises
        ``ValueError`` when the tolerance cannot be met. Without it, ``model.validate(grid)``
        certifies the tolerance.
    """

    key: str
    hint: str
    certify: Callable[[Any, Spec], None] | None = None


@dataclass(frozen=True)
class ModelEntry:
    """Everything the config layer needs of one model (see the module docstring).

    Attributes
    ----------
    name : str
        The ``model.name`` of a built-in model (a user model is named by its reference).
    keys : mapping section -> key -> Field
        The keys only this model uses, e.g. ``{"model": {...}, "init": {...}, "pde": {...}}``;
        the keys every model shares are in :data:`meanfield.config.schema.SCHEMA`.
    build : callable ``(model_spec, pde_spec or None) -> model``
        The model of a resolved ``[model]`` section (``[pde]`` fixes the box of a model that
        certifies its accuracy there). Raise ``ValueError`` for values it rejects.
    law : callable ``(model_spec, init_spec) -> law``, optional
        The initial law of ``[init]`` (None: the particle setup provides it).
    reduced_dim : int or callable ``model_spec -> int``
        Number of axes of the PDE grid (0: no PDE).
    doc : str
        One line shown by ``meanfield info --models``.
    pde, particles : bool
        Whether the model has a PDE grid, and particles.
    no_pde_reason : str
        Why there is no PDE (said when a config gives ``[pde]`` anyway).
    box_key : str
        The ``[pde]`` key that sets the box of the grid (``"pde.bounds"`` or ``"pde.r_max"``).
    law_keys : str
        The ``[init]`` keys that set the spread of the initial law (named when the box is too
        small for it).
    tolerance : Tolerance, optional
        A tolerance the model certifies on the box.
    check : callable ``ctx -> None``, optional
        Rules across sections, run after parsing; raises :class:`ConfigError`.
    particle_setup : callable ``(model, backend) -> (particle_model, law)``, optional
        The particle-side model and its initial law, when they are not the model itself and
        ``law(...)`` (p-spin: a task holding the teacher on the device).
    study_overrides : callable ``(config, n) -> list of "section.key=value"``, optional
        The protocol of a study: overrides applied to the jobs of width ``n``.
    """

    name: str
    keys: Mapping[str, Mapping[str, Field]]
    build: Callable[[Spec, Spec | None], Any]
    law: Callable[[Spec, Spec], Any] | None = None
    reduced_dim: int | Callable[[Spec], int] = 1
    doc: str = ""
    pde: bool = True
    particles: bool = True
    no_pde_reason: str = ""
    box_key: str = "pde.bounds"
    law_keys: str = "init.mean, init.std"
    tolerance: Tolerance | None = None
    check: Callable[[Context], None] | None = None
    particle_setup: Callable[[Any, Any], tuple[Any, Any]] | None = None
    study_overrides: Callable[[Any, int], Sequence[str]] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"ModelEntry.name must be a non-empty string, got {self.name!r}")
        keys = {}
        for section, fields in dict(self.keys).items():
            if section not in MODEL_SECTIONS:
                raise ValueError(
                    f"model {self.name!r}: unknown section {section!r} in keys; "
                    f"allowed: {', '.join(MODEL_SECTIONS)}"
                )
            for key, spec in fields.items():
                if not isinstance(spec, Field):
                    raise TypeError(f"model {self.name!r}: {section}.{key} is not a Field")
            if section == "model" and "name" in fields:
                raise ValueError(f"model {self.name!r}: model.name is not a model key")
            keys[section] = MappingProxyType(dict(fields))
        object.__setattr__(self, "keys", MappingProxyType(keys))
        if not callable(self.build):
            raise TypeError(f"model {self.name!r}: build must be callable")
        if self.pde and self.law is None:
            raise ValueError(f"model {self.name!r}: a model with a PDE needs a law")

    def n_axes(self, model_spec: Spec) -> int:
        """Number of grid axes for a resolved ``[model]`` section (0 without a PDE)."""
        if not self.pde:
            return 0
        n = self.reduced_dim
        return int(n(model_spec)) if callable(n) else int(n)

    def fields(self, section: str) -> Mapping[str, Field]:
        """The keys this model adds to ``section`` (empty when none)."""
        return self.keys.get(section, MappingProxyType({}))


def _bad_name(name: Any, why: str = "") -> ConfigError:
    why = f" ({why})" if why else ""
    names = ", ".join(repr(n) for n in REGISTRY.names())
    return ConfigError(
        f"invalid value for 'model.name': {short_repr(name)}{why}; "
        f"allowed: one of {names}, or 'package.module:Attribute' (a model of "
        "your own)"
    )


#: the models: built-in ones register at import; references and entry points load on demand
REGISTRY: Registry[ModelEntry] = Registry(
    ModelEntry, ENTRY_POINT_GROUP, _bad_name, noun="a model", carried="model_entry"
)


def register(entry: ModelEntry) -> ModelEntry:
    """Add a built-in ``entry`` (called by each model module at import); returns it."""
    if not isinstance(entry, ModelEntry):
        raise TypeError(f"register needs a ModelEntry, got {type(entry).__name__}")
    return REGISTRY.register(entry, entry.name)


def builtin_entries() -> Mapping[str, ModelEntry]:
    """The built-in models, by name (a read-only view)."""
    return REGISTRY.builtin()


def entry_point_names() -> tuple[str, ...]:
    """Names of the models installed packages offer through :data:`ENTRY_POINT_GROUP`."""
    return REGISTRY.entry_point_names()


def model_entry(name: str) -> ModelEntry:
    """The entry of ``model.name``: a built-in name, ``"module:Attribute"`` or an entry point.

    Raises
    ------
    ConfigError
        Naming ``model.name`` (and the module) when the name is unknown or cannot be loaded.
    """
    return REGISTRY.get(name)
