"""The configs shipped with the package (the repository's ``data/configs``), found by name.

In a source checkout or an editable install they are read in place, from ``data/configs`` at the
root of the repository; a wheel carries them as package data, in ``meanfield/_configs``
(``pyproject.toml`` maps ``data/configs`` there). :func:`shipped_dir` finds whichever of the two
exists, so ``meanfield run mmn-isotropic`` and ``meanfield reproduce`` work from any directory
with either kind of install.

Examples
--------
>>> resolve_config("mmn-isotropic").name
'mmn-isotropic.toml'
>>> "full/mmn-isotropic" in shipped_names()
True
"""

from __future__ import annotations

import difflib
import os
from importlib import resources
from pathlib import Path

from ..fields import ConfigError

__all__ = ["resolve_config", "shipped_dir", "shipped_names"]

#: the folders of the shipped configs that ``meanfield run NAME`` finds (``reproduce/`` holds the
#: experiments' configs, which ``meanfield reproduce`` reads)
RUN_FOLDERS = ("", "full")


def shipped_dir() -> Path:
    """The folder of the shipped configs.

    The package data of an installed wheel (``meanfield/_configs``) when it is there, else the
    repository's ``data/configs`` (a source checkout or an editable install). The path is
    returned even when neither exists; reading from it then fails with a clear message.
    """
    installed = resources.files("meanfield") / "_configs"
    if isinstance(installed, Path) and installed.is_dir():
        return installed
    return Path(__file__).resolve().parents[2] / "data" / "configs"


def shipped_names() -> list[str]:
    """The names ``meanfield run NAME`` accepts: ``mmn-isotropic``, ``full/mmn-isotropic``, ..."""
    root = shipped_dir()
    names = []
    for folder in RUN_FOLDERS:
        names += sorted(
            p.relative_to(root).with_suffix("").as_posix() for p in (root / folder).glob("*.toml")
        )
    return names


def resolve_config(config: str | os.PathLike[str]) -> Path:
    """The path of ``config``: a path as given, or a shipped config named without ``.toml``.

    A name that ends in ``.toml`` or is an existing path is a path (read as it is). Otherwise
    it is looked up among :func:`shipped_names`: ``"mmn-isotropic"`` is
    ``data/configs/mmn-isotropic.toml``, ``"full/mmn-isotropic"`` its full-size version.

    Raises
    ------
    ConfigError
        When ``config`` is neither an existing path nor a shipped name (the message lists the
        shipped names).
    """
    path = Path(config)
    if path.suffix == ".toml" or path.exists():
        return path
    name = path.as_posix()
    names = shipped_names()
    if name in names:
        return shipped_dir() / f"{name}.toml"
    close = difflib.get_close_matches(name, names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    listing = ", ".join(names) if names else f"none found in {shipped_dir()}"
    raise ConfigError(
        f"no config file {str(config)!r} and no shipped config of that name{hint}; "
        f"shipped configs: {listing}"
    )
