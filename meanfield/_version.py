"""The package version, read from the installed distribution's metadata: its one place is
``pyproject.toml``'s ``[project] version``."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    #: the installed version of the package (``"0+unknown"`` for a source tree never installed)
    __version__ = version("meanfield-dd")  # the distribution (pyproject [project] name)
except PackageNotFoundError:  # a source tree on sys.path that was never installed
    __version__ = "0+unknown"
