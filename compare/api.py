"""The Python API for notebooks: run a config, or a study, and get the results as xarray.

:func:`run` and :func:`study` do what ``meanfield run`` and ``meanfield study`` do, and return
what they wrote, read into memory as an :class:`xarray.DataTree` with one node per group of the
file (``pde``, ``particles``, ``study``), or as an :class:`xarray.Dataset` when the file holds
one group only (a PDE-only or a particle-only run). The HDF5 file stays the record (layout:
docs/data-format.md): ``output=None`` writes it to a temporary file that is deleted once read.
:func:`read` reads any such file; :func:`plot` draws the figures of ``meanfield plot``.

Examples
--------
>>> from compare import api
>>> tree = api.run("data/configs/mmn-isotropic.toml",
...                overrides=["particles.replicas=2"])               # doctest: +SKIP
>>> tree["pde"]["risk"].plot()                                     # doctest: +SKIP
>>> api.plot(tree, "figures/")                                     # doctest: +SKIP

The returned objects are plain xarray: dimensions are named as in the file (``time``, ``r``,
``replica``, ...), every coordinate of the file is an index, and the groups' attributes (with the
root's: ``config``, ``seed``, ``package_version``, ...) come along. The resume checkpoints
(``/pde/checkpoint``, ``/particles/checkpoint``) are left out: they are the state a resumed run
starts from, not results. ``attrs["source"]`` names the file the object was read from, when
there is one to keep.
"""

from __future__ import annotations

import os
import tempfile
import tomllib
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from meanfield.config import Config, ConfigError, load_config, parse_config

if TYPE_CHECKING:  # xarray is imported when a function needs it: `meanfield --help` stays quick
    import xarray as xr

__all__ = ["run", "study", "read", "plot"]

#: the engine that reads our files: HDF5 dimension scales become named dimensions
ENGINE: Final = "h5netcdf"
#: groups left out of the returned objects (the resume state of a group of frames)
CHECKPOINT = "checkpoint"


def run(
    config: str | os.PathLike | Mapping | Config,
    overrides: Iterable[str] = (),
    output: str | os.PathLike | None = None,
    *,
    force: bool = False,
    progress: bool = False,
) -> xr.DataTree | xr.Dataset:
    """Run the PDE and the particles of ``config`` (``meanfield run``) and return the results.

    Parameters
    ----------
    config : path, TOML text, mapping or :class:`meanfield.config.Config`
        A path (``str`` without a line break, or a path object) to a TOML config, the TOML text
        itself, the parsed table (``{"model": {...}, ...}``) or a parsed config.
    overrides : iterable of str
        ``"section.key=value"`` items, the value in TOML syntax, as ``meanfield run --set``.
    output : path, optional
        The HDF5 file to write (the record, kept). ``None`` writes a temporary file, read into
        memory and deleted before returning.
    force : bool
        Overwrite an existing ``output`` (otherwise :class:`FileExistsError`, before any work).
    progress : bool
        Progress bars (shown on a terminal only).

    Returns
    -------
    xarray.DataTree or xarray.Dataset
        The file read into memory (see :func:`read`): a tree with nodes ``pde`` and
        ``particles``, or a Dataset where the config has one of the two only.

    Raises
    ------
    meanfield.config.ConfigError
        On a bad config or override, naming the key, before any work starts.
    meanfield.pde.trackers.InvariantViolation
        When the PDE breaks an invariant; pass ``output`` to keep the file with the last good
        state.
    """
    from compare.runner import run_config

    resolved = _resolve(config, overrides)

    def write(path: Path, replace: bool) -> None:
        run_config(resolved, path, force=replace, progress=progress)

    return _write_and_read(write, output, force, "run.h5")


def study(
    config: str | os.PathLike | Mapping | Config,
    overrides: Iterable[str] = (),
    output: str | os.PathLike | None = None,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    force: bool = False,
    progress: bool = False,
) -> xr.DataTree | xr.Dataset:
    """Run the LLN/CLT study of ``config`` (``meanfield study``) and return the results.

    Parameters
    ----------
    config, overrides, output, force, progress
        As in :func:`run`; the config needs a ``[study]`` section.
    workers : int, optional
        Size of the local process pool.
    scheduler : str, optional
        ``"local"`` runs the jobs in this process; a ``tcp://host:port`` address, a
        ``dask.distributed`` cluster; ``None``, a local process pool.

    Returns
    -------
    xarray.DataTree
        Nodes ``pde`` (when the model has one) and ``study`` (``study/<observable>`` tables,
        ``study/raw/n{N}_seed{S}`` raw jobs; layout in docs/data-format.md).

    Warns
    -----
    RuntimeWarning
        When some jobs failed (each is listed in ``attrs["failures"]`` of ``study/raw``).
    """
    from compare.study import run_study

    resolved = _resolve(config, overrides)
    failures: list[str] = []

    def write(path: Path, replace: bool) -> None:
        result = run_study(
            resolved, path, scheduler=scheduler, workers=workers, force=replace, progress=progress
        )
        failures.extend(result.failures)

    result = _write_and_read(write, output, force, "study.h5")
    if failures:
        warnings.warn(
            f"{len(failures)} study job(s) failed (attrs['failures'] of study/raw); "
            f"the first: {failures[0]}",
            RuntimeWarning,
            stacklevel=2,
        )
    return result


def read(path: str | os.PathLike) -> xr.DataTree | xr.Dataset:
    """Read a meanfield HDF5 file (run, study or sweep) into memory as xarray.

    The file is opened with ``xarray.open_datatree(path, engine="h5netcdf")``, which names
    every dimension after the file's dimension scales; nothing is decoded (our files are not
    CF: the values are the file's, bit for bit), everything is loaded, and the file is closed.

    Parameters
    ----------
    path : path of the HDF5 file

    Returns
    -------
    xarray.DataTree or xarray.Dataset
        The tree of the file's groups, the root attributes on the root node, without the resume
        checkpoints; or, when one group is left and it has no subgroup, that group as a
        Dataset whose attributes are the root's, then the group's, and ``"group"`` (its name).
        ``attrs["source"]`` is the absolute path of the file.
    """
    tree = _load(path)
    tree.attrs["source"] = str(Path(path).resolve())
    return _simplify(tree)


def plot(result: xr.DataTree | xr.Dataset, out_dir: str | os.PathLike) -> list[Path]:
    """Write the figures of ``meanfield plot`` for a result of :func:`run`, :func:`study` or
    :func:`read` into ``out_dir``.

    The object is written to a temporary HDF5 file with xarray and drawn by the figure code of
    ``meanfield plot`` (:func:`compare.figures.plot_any`), so the figures show the data held,
    selections and edits included. Figure names start with the stem of ``attrs["source"]``
    (``run`` or ``study`` without one), as ``meanfield plot`` names them after the file.

    Parameters
    ----------
    result : xarray.DataTree or xarray.Dataset
    out_dir : path of the figure directory (created if missing)

    Returns
    -------
    list of Path
        The figures written.
    """
    from compare.figures import plot_any

    tree = _as_tree(result)
    source = result.attrs.get("source")
    stem = Path(source).stem if source else ("study" if "study" in tree.children else "run")
    with tempfile.TemporaryDirectory(prefix="meanfield-plot-") as tmp:
        path = Path(tmp) / f"{stem}.h5"
        tree.to_netcdf(path, engine=ENGINE)
        return plot_any(path, Path(out_dir))


# ----------------------------------------------------------------------------- helpers


def _resolve(config: Any, overrides: Iterable[str]) -> Config:
    """A validated :class:`Config` from any of the forms :func:`run` accepts."""
    overrides = [overrides] if isinstance(overrides, str) else list(overrides)
    if isinstance(config, Config):
        if not overrides:
            return config
        return parse_config(tomllib.loads(config.to_toml()), overrides)
    if isinstance(config, Mapping):
        return parse_config(config, overrides)
    if isinstance(config, str) and "\n" in config:  # a config has several lines: TOML text
        try:
            data = tomllib.loads(config)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config text: invalid TOML: {exc}") from None
        return parse_config(data, overrides)
    if isinstance(config, str | os.PathLike):
        return load_config(config, overrides)
    raise TypeError(
        "config must be a path, TOML text, a mapping or a meanfield.config.Config, "
        f"got {type(config).__name__}"
    )


def _write_and_read(
    write: Callable[[Path, bool], None], output: Any, force: bool, name: str
) -> xr.DataTree | xr.Dataset:
    """Call ``write(path, force)`` on ``output`` (or a temporary file) and read the file back."""
    if output is None:
        with tempfile.TemporaryDirectory(prefix="meanfield-") as tmp:
            write(Path(tmp) / name, False)
            return _simplify(_load(Path(tmp) / name))  # in memory: the file goes next
    output = Path(output)
    if output.exists() and not force:
        raise FileExistsError(
            f"{output} exists; pass force=True to overwrite it (nothing is overwritten silently)"
        )
    write(output, force)
    return read(output)


def _load(path: str | os.PathLike) -> xr.DataTree:
    """Every group of the file but the checkpoints, loaded into memory; the file is closed."""
    import xarray as xr

    # decode_cf=False: our files are not CF-encoded, so nothing is masked, scaled or decoded
    with xr.open_datatree(path, engine=ENGINE, decode_cf=False) as tree:
        tree.load()
        return tree.filter(lambda node: not _is_checkpoint(node))


def _is_checkpoint(node: xr.DataTree) -> bool:
    return node.name == CHECKPOINT and node.level == 2  # /pde/checkpoint, /particles/checkpoint


def _simplify(tree: xr.DataTree) -> xr.DataTree | xr.Dataset:
    """The one group as a Dataset (root attributes first), or the tree."""
    groups = list(tree.children.values())
    if len(groups) != 1 or groups[0].children or tree.has_data:
        return tree
    group = groups[0]
    dataset = group.to_dataset()
    source = tree.attrs.get("source")
    dataset.attrs = {
        **{k: v for k, v in tree.attrs.items() if k != "source"},
        **group.attrs,
        "group": group.name,
    }
    if source is not None:
        dataset.attrs["source"] = source
    return dataset


def _as_tree(result: Any) -> xr.DataTree:
    """The tree of groups that :func:`read` would return ``result`` from (for writing)."""
    import xarray as xr

    if isinstance(result, xr.Dataset):
        if "group" not in result.attrs:
            raise ValueError(
                "a Dataset to plot needs attrs['group'] (the group it was read "
                "from), as compare.run, compare.study and compare.read set it"
            )
        attrs = {k: v for k, v in result.attrs.items() if k not in ("group", "source")}
        group = result.drop_encoding()
        group.attrs = attrs
        return xr.DataTree.from_dict(
            {"/": xr.Dataset(attrs=attrs), str(result.attrs["group"]): group}
        )
    if isinstance(result, xr.DataTree):
        tree = result.map_over_datasets(lambda ds: ds.drop_encoding())
        tree.attrs = {k: v for k, v in result.attrs.items() if k != "source"}
        return tree
    raise TypeError(f"expected an xarray DataTree or Dataset, got {type(result).__name__}")
