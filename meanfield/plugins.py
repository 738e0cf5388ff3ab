"""Plug-ins by name: a registry of built-in objects, extended by ``"package.module:Attribute"``
references and by the entry points installed packages declare.

The model registry (:mod:`meanfield.model.registry`) and the experiment registry
(:mod:`compare.reproduce.base`) are two :class:`Registry` objects: they differ only in the type
they hold, their entry-point group and the error that names the config key at fault.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Generic, TypeVar

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Objects of type ``kind`` by name.

    Parameters
    ----------
    kind : type
        What the registry holds; every lookup returns an instance of it.
    group : str
        The entry-point group through which installed packages offer more (``name = "package.
        module:Attribute"``).
    error : callable ``(name, why) -> Exception``
        The error for a name that cannot be resolved (``why`` is empty for an unknown name, else
        the reason).
    noun : str
        What one object is called in the messages (``"a model"``, ``"an experiment"``).
    carried : str, optional
        An attribute a referenced object may carry instead of being a ``kind`` itself (called
        when callable: a class that carries its entry).
    """

    def __init__(
        self,
        kind: type[T],
        group: str,
        error: Callable[[Any, str], Exception],
        *,
        noun: str,
        carried: str | None = None,
    ) -> None:
        self.kind, self.group, self.error = kind, group, error
        self.noun, self.carried = noun, carried
        self._builtin: dict[str, T] = {}
        self._loaded: dict[str, T] = {}

    def register(self, item: T, name: str) -> T:
        """Add the built-in ``item`` under ``name``; returns it."""
        if not isinstance(item, self.kind):
            raise TypeError(
                f"register needs {self.kind.__name__} objects, got {type(item).__name__}"
            )
        if self._builtin.get(name, item) is not item:
            raise ValueError(f"{self.noun} named {name!r} is registered already")
        self._builtin[name] = item
        return item

    def builtin(self) -> Mapping[str, T]:
        """The built-in objects, by name (a read-only view)."""
        return MappingProxyType(self._builtin)

    def entry_point_names(self) -> tuple[str, ...]:
        """Names that installed packages offer through the entry-point group."""
        return tuple(ep.name for ep in importlib.metadata.entry_points(group=self.group))

    def names(self) -> tuple[str, ...]:
        """Every name a lookup accepts besides references: built-ins, then entry points."""
        return (*self._builtin, *self.entry_point_names())

    def get(self, name: Any) -> T:
        """The object ``name``: a built-in name, ``"package.module:Attribute"`` or an entry
        point (each reference is imported once)."""
        if not isinstance(name, str):
            raise self.error(name, "")
        found = self._builtin.get(name) or self._loaded.get(name)
        if found is not None:
            return found
        if ":" in name:
            reference = name
        else:
            points = [
                ep for ep in importlib.metadata.entry_points(group=self.group) if ep.name == name
            ]
            if not points:
                raise self.error(name, "")
            reference = points[0].value
        found = self._load(name, reference)
        self._loaded[name] = found
        return found

    def _load(self, name: str, reference: str) -> T:
        """Import ``module:attr.path`` and take its object (or the object it carries)."""
        module_name, _, attr_path = (part.strip() for part in reference.partition(":"))
        if not module_name or not attr_path:
            raise self.error(name, "expected 'package.module:Attribute'")
        try:
            obj: Any = importlib.import_module(module_name)
        except Exception as err:  # noqa: BLE001  (any failure of user code is a config error)
            raise self.error(
                name, f"cannot import module {module_name!r}: {type(err).__name__}: {err}"
            ) from err
        for part in attr_path.split("."):
            if not hasattr(obj, part):
                raise self.error(name, f"module {module_name!r} has no attribute {attr_path!r}")
            obj = getattr(obj, part)
        if not isinstance(obj, self.kind) and self.carried is not None:
            carried = getattr(obj, self.carried, None)
            try:
                obj = carried() if callable(carried) else carried
            except Exception as err:  # noqa: BLE001
                raise self.error(
                    name, f"{reference}.{self.carried}() failed: {type(err).__name__}: {err}"
                ) from err
        if not isinstance(obj, self.kind):
            kind = self.kind.__name__
            if self.carried:
                raise self.error(
                    name,
                    f"{reference} is neither a {kind} nor an object with a "
                    f"{kind} as attribute {self.carried!r}",
                )
            article = self.noun.split()[0]
            raise self.error(name, f"{reference} is a {type(obj).__name__}, not {article} {kind}")
        return obj
