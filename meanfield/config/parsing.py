"""Run configuration: one TOML schema for every run, checked before any work starts.

A run config names a model, an initial law, the dynamics, and a ``[pde]`` and/or
``[particles]`` section; a study adds ``[study]`` (SPEC section 7). The schema is data:
:data:`SCHEMA` maps each section to its keys, each model adds its own keys through its registry
entry (:mod:`meanfield.model.registry`; :data:`MODEL_SCHEMA` views the built-in ones), and
every key is a frozen :class:`Field` (:mod:`meanfield.fields`). ``model.name`` may also
name a model of your own, ``"package.module:Attribute"``, whose keys are checked the same way.
:func:`parse_config` walks the schema once and returns a frozen :class:`Config` with every
default filled in, or raises :class:`ConfigError` whose message is one line naming the key and
what is allowed.

Examples
--------
>>> cfg = parse_config({"model": {"name": "quadratic"}, "init": {"std": 1.0},
...                     "dynamics": {"t_end": 1.0}, "pde": {"cells": 64, "bounds": [[-5, 5]]}})
>>> cfg.pde["cells"], cfg.dynamics["save_times"][:3]
((64,), (0.0, 0.1, 0.2))
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import tomli_w

from ..fields import AXES, resolve_value, unknown_key
from ..model.registry import builtin_entries, model_entry
from .schema import (
    MODEL_SCHEMA,
    REDUCED_DIM,
    REQUIRED,
    REQUIRED_SECTIONS,
    SCHEMA,
    SECTION_ORDER,
    ConfigError,
    Context,
    Derived,
    Field,
    model_keys,
    reduced_dim,
    short_repr,
    toml_kind,
)
from .shipped import resolve_config

__all__ = [
    "REQUIRED",
    "SCHEMA",
    "MODEL_SCHEMA",
    "REDUCED_DIM",
    "Config",
    "ConfigError",
    "apply_overrides",
    "Derived",
    "Field",
    "load_config",
    "parse_config",
    "reduced_dim",
]


# ----------------------------------------------------------------------------- resolution


def _reject_unknown(section: str, raw: Mapping, fields: Mapping, model_name: str) -> None:
    for key in raw:
        if key in fields:
            continue
        where = f"{section}.{key}"
        owners = [m for m, entry in builtin_entries().items() if key in entry.fields(section)]
        if owners:
            raise ConfigError(
                f"key {where!r} is not used by model {model_name!r} "
                f"(it belongs to model {', '.join(owners)})"
            )
        raise unknown_key(section, key, fields)


def _resolve_section(section: str, raw: Mapping, model_name: str, ctx: Context) -> dict:
    fields = model_keys(section, model_name)
    _reject_unknown(section, raw, fields, model_name)
    out: dict[str, Any] = {}
    ctx[section] = out
    for key, spec in fields.items():
        where = f"{section}.{key}"
        if key in raw:
            value = raw[key]
        elif spec.default is REQUIRED:
            raise ConfigError(f"missing required key {where!r} ({spec.doc})")
        elif isinstance(spec.default, Derived):
            value = spec.default.fn(ctx)
        else:
            value = spec.default
        out[key] = resolve_value(where, spec, value, ctx)
    return out


def _check_sections(data: Mapping) -> None:
    for name, value in data.items():
        if name not in SECTION_ORDER:
            close = difflib.get_close_matches(str(name), SECTION_ORDER, n=1)
            hint = (
                f"did you mean [{close[0]}]?" if close else "allowed: " + ", ".join(SECTION_ORDER)
            )
            raise ConfigError(f"unknown section {name!r}; {hint}")
        if not isinstance(value, Mapping):
            raise ConfigError(
                f"wrong type for section [{name}]: got {toml_kind(value)}, expected table"
            )
    for name in REQUIRED_SECTIONS:
        if name not in data:
            raise ConfigError(f"missing required section [{name}]")
    if "pde" not in data and "particles" not in data:
        raise ConfigError("missing section: a run config needs [pde], [particles] or both")


def _parse_override(item: Any) -> tuple[list[str], Any]:
    """Split ``"section.key=value"`` into a key path and a TOML-parsed value."""
    text = item if isinstance(item, str) else ""
    path_text, sep, value_text = text.partition("=")
    path = [part.strip() for part in path_text.split(".")]
    if not sep or len(path) < 2 or not all(path):
        raise ConfigError(f"malformed override {short_repr(item)}; expected section.key=value")
    try:
        value = tomllib.loads("v = " + value_text.strip())["v"]
    except (tomllib.TOMLDecodeError, KeyError):
        value = value_text.strip()
    return path, value


def apply_overrides(data: Mapping, overrides: Iterable[str]) -> dict:
    """A copy of the raw TOML ``data`` with ``section.key=value`` overrides (TOML values) set."""
    if isinstance(overrides, str):
        overrides = [overrides]
    out = _thaw(data)
    for item in overrides:
        path, value = _parse_override(item)
        node = out
        for part in path[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[path[-1]] = value
    return out


class _FrozenDict(dict):
    """A ``dict`` that refuses changes (resolved nested tables such as ``dynamics.xi``)."""

    def _readonly(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("configuration values are read-only")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _readonly  # type: ignore[assignment]
    __ior__ = _readonly  # type: ignore[assignment]

    def __reduce__(self) -> tuple:
        return (_FrozenDict, (dict(self),))


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return _FrozenDict({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_thaw(v) for v in value]
    return value


def _section_proxy(values: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType({k: _freeze(v) for k, v in values.items()})


@dataclass(frozen=True)
class Config:
    """A validated run configuration with every default filled in.

    Build it with :func:`load_config` or :func:`parse_config`, not directly. Each section is a
    read-only mapping; arrays are tuples and nested tables (``dynamics.xi``) read-only dicts.

    Attributes
    ----------
    model, init, dynamics : Mapping
        Always present.
    pde, particles, study : Mapping or None
        ``None`` when the section is absent.
    """

    model: Mapping[str, Any]
    init: Mapping[str, Any]
    dynamics: Mapping[str, Any]
    pde: Mapping[str, Any] | None = None
    particles: Mapping[str, Any] | None = None
    study: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain nested dicts and lists of the present sections, in schema order."""
        sections = {name: getattr(self, name) for name in SECTION_ORDER}
        return {name: _thaw(values) for name, values in sections.items() if values is not None}

    def to_toml(self) -> str:
        """TOML text that :func:`parse_config` maps back to an equal :class:`Config`."""
        return tomli_w.dumps(self.to_dict())


def parse_config(data: Mapping[str, Any], overrides: Iterable[str] = ()) -> Config:
    """Validate a parsed TOML document and fill in defaults.

    Parameters
    ----------
    data : Mapping
        Section name -> table, as returned by :func:`tomllib.loads`.
    overrides : iterable of str
        ``"section.key=value"`` items, the value parsed as TOML (falling back to the raw
        string), applied before validation.

    Returns
    -------
    Config

    Raises
    ------
    ConfigError
        On the first unknown section or key, wrong type, out-of-range or missing value.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"a config must be a table of sections, got {toml_kind(data)}")
    data = apply_overrides(data, overrides)
    _check_sections(data)
    if "name" not in data["model"]:
        raise ConfigError(
            "missing required key 'model.name' (one of "
            f"{', '.join(builtin_entries())}, or 'package.module:Attribute')"
        )
    model_name = resolve_value("model.name", SCHEMA["model"]["name"], data["model"]["name"], {})
    _check_offers(model_name, data)
    ctx: Context = {AXES: {"count": model_entry(model_name).n_axes}}
    for section in SECTION_ORDER:
        if section in data:
            _resolve_section(section, data[section], model_name, ctx)
    _check_combinations(ctx)
    return Config(**{name: _section_proxy(values) for name, values in ctx.items() if name != AXES})


def _check_offers(model_name: str, data: Mapping) -> None:
    """A ``[pde]`` or ``[particles]`` section the model does not offer."""
    entry = model_entry(model_name)
    if not entry.pde and "pde" in data:
        why = f" ({entry.no_pde_reason})" if entry.no_pde_reason else ""
        raise ConfigError(f"model.name = {model_name!r} has no PDE{why}: remove the [pde] section")
    if not entry.particles and "particles" in data:
        raise ConfigError(
            f"model.name = {model_name!r} has no particles: remove the [particles] section"
        )


def _check_combinations(ctx: Context) -> None:
    """Rules that involve several sections (the model's own, then the shared ones)."""
    name = ctx["model"]["name"]
    check = model_entry(name).check
    try:
        if check is not None:
            check(ctx)
    except ConfigError:
        raise
    except ValueError as err:  # a user model's rule that raised a plain ValueError
        raise ConfigError(f"[model] (model.name = {name!r}): {err}") from err
    particles = ctx.get("particles")
    if particles and particles["quench_batch"] > 0:
        t_end = ctx["dynamics"]["t_end"]
        if not 0 < particles["quench_time"] < t_end:
            raise ConfigError(
                f"invalid value for 'particles.quench_time': "
                f"{particles['quench_time']}; allowed: 0 < quench_time < "
                f"dynamics.t_end = {t_end}"
            )


def load_config(path: str | os.PathLike[str], overrides: Iterable[str] = ()) -> Config:
    """Read a TOML run configuration from ``path`` and validate it (see :func:`parse_config`).

    ``path`` may also name a shipped config without ``.toml`` (``"mmn-isotropic"``, see
    :func:`~meanfield.config.shipped.resolve_config`).

    Raises
    ------
    ConfigError
        When the file cannot be read, is not valid TOML, or fails validation.
    """
    path = resolve_config(path)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(path)!r}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    return parse_config(data, overrides)
