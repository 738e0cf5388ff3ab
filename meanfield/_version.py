"""The package version, read from the installed distribution's metadata: its one place is
``pyproject.toml``'s ``[project] version``."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("meanfield-dd")  # the distribution (pyproject [project] name)
except PackageNotFoundError:  # a source tree on sys.path that was never installed
    __version__ = "0+unknown"
