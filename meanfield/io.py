"""HDF5 storage of runs: the only module of the project that imports :mod:`h5py`.

One file per run (SPEC section 6). Root attributes record the schema version, package version,
creation time, backend, device, seed and the full resolved configuration as TOML text. Each
group (``/pde``, ``/particles``, ...) holds frames appended along a resizable first axis
``time``; coordinate datasets (``time``, ``r``, ...) are HDF5 dimension scales attached to every
axis, so ``xarray.open_dataset(path, engine="h5netcdf", group="pde")`` opens a group with named
dimensions. Every append is flushed: a killed run leaves a readable file holding every
completed frame. Layout and append-only design follow py-pde's ``pde/storage/file.py``.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

__all__ = [
    "SCHEMA_VERSION",
    "FrameStore",
    "RunData",
    "create_file",
    "load",
    "summary",
    "write_root_attrs",
]

SCHEMA_VERSION = 1
TIME = "time"
_SCALAR_CHUNK = 1024
_GZIP_LEVEL = 4


def create_file(path: str | Path, *, force: bool = False) -> h5py.File:
    """Create a new HDF5 run file, refusing to replace an existing one.

    Parameters
    ----------
    path : str or Path
        Where to create the file.
    force : bool
        Overwrite an existing file.

    Returns
    -------
    h5py.File
        Open for writing; the caller closes it (use it as a context manager).

    Raises
    ------
    FileExistsError
        When ``path`` exists and ``force`` is false.
    """
    if Path(path).exists() and not force:
        raise FileExistsError(
            f"{path} exists; pass --force to overwrite it (nothing is overwritten silently)"
        )
    return h5py.File(path, "w")


def write_root_attrs(
    f: h5py.File, *, config_toml: str, seed: int | None, backend: str, device: str
) -> None:
    """Write the provenance attributes of the root group and flush.

    Parameters
    ----------
    f : h5py.File
        The open run file.
    config_toml : str
        The full resolved configuration (:meth:`meanfield.config.Config.to_toml`).
    seed : int or None
        Base random seed; stored as -1 when ``None``.
    backend, device : str
        Array backend name and a description of the device it ran on.
    """
    from meanfield import __version__

    f.attrs["schema_version"] = SCHEMA_VERSION
    f.attrs["package_version"] = __version__
    f.attrs["created_utc"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
    f.attrs["backend"] = str(backend)
    f.attrs["device"] = str(device)
    f.attrs["seed"] = -1 if seed is None else int(seed)
    f.attrs["config"] = str(config_toml)
    f.flush()


def _as_frame(name: str, value: Any) -> np.ndarray:
    """One frame as a host array: integers as int64, floats as float64."""
    array = np.asarray(value)
    if array.dtype.kind in "iu":
        return array.astype(np.int64, copy=False)
    if array.dtype.kind == "f":
        return array.astype(np.float64, copy=False)
    raise TypeError(f"field {name!r}: cannot store dtype {array.dtype} (integers or floats only)")


class FrameStore:
    """Append-only frames under one group; time is the first axis of every dataset.

    Parameters
    ----------
    group : h5py.Group
        The (empty) group that receives the frames, e.g. ``f.require_group("pde")``.
    coords : dict of str to array of shape (n_points,)
        Coordinate of each non-time axis by dimension name, e.g. ``{"r": cell_centres}``.

    Notes
    -----
    The constructor only stores its arguments; the datasets are created by the first
    :meth:`append`. Within one append the fields are written before ``time``, so the length of
    ``time`` never exceeds that of a field, and :func:`load` trims fields to it.

    Examples
    --------
    >>> store = FrameStore(f.require_group("pde"), {"r": r})            # doctest: +SKIP
    >>> store.append(0.0, {"density": (rho, ("r",)), "risk": (0.42, ())})  # doctest: +SKIP
    """

    def __init__(self, group: h5py.Group, coords: dict[str, np.ndarray]) -> None:
        self.group = group
        self.coords = coords
        self._shapes: dict[str, tuple[int, ...]] | None = None

    def append(self, t: float, fields: Mapping[str, tuple[Any, tuple[str, ...]]]) -> None:
        """Append one frame at time ``t`` and flush the file.

        Parameters
        ----------
        t : float
            Time of the frame.
        fields : Mapping
            ``name -> (value, dims)``, ``dims`` naming the non-time axes of ``value`` (``()``
            for a scalar). Every call must give the same names, dims and shapes.
        """
        frames = {name: _as_frame(name, value) for name, (value, _) in fields.items()}
        if self._shapes is None:
            self._initialize(frames, {name: tuple(dims) for name, (_, dims) in fields.items()})
        self._check_frames(frames)
        for name, frame in frames.items():
            dset = self.group[name]
            dset.resize(dset.shape[0] + 1, axis=0)
            dset[-1] = frame
        time = self.group[TIME]
        time.resize(time.shape[0] + 1, axis=0)
        time[-1] = float(t)
        self.group.file.flush()

    def write_attrs(self, **attrs: Any) -> None:
        """Set attributes of the group (e.g. ``last_good_time``) and flush."""
        for key, value in attrs.items():
            self.group.attrs[key] = value
        self.group.file.flush()

    def _check_frames(self, frames: Mapping[str, np.ndarray]) -> None:
        assert self._shapes is not None
        if set(frames) != set(self._shapes):
            raise ValueError(
                f"fields {sorted(frames)} differ from the first frame's {sorted(self._shapes)}"
            )
        for name, frame in frames.items():
            if frame.shape != self._shapes[name]:
                raise ValueError(
                    f"field {name!r}: shape {frame.shape}, expected {self._shapes[name]}"
                )

    def _initialize(self, frames: Mapping[str, np.ndarray], dims: Mapping[str, tuple]) -> None:
        """Create coordinate scales, ``time`` and one resizable dataset per field."""
        group = self.group
        for name, frame in frames.items():
            if name == TIME or name in self.coords:
                raise ValueError(f"field name {name!r} clashes with a coordinate")
            self._check_dims(name, frame, dims[name])
        for name, values in self.coords.items():
            group.create_dataset(name, data=np.asarray(values)).make_scale(name)
        time = group.create_dataset(
            TIME, shape=(0,), maxshape=(None,), dtype=np.float64, chunks=(_SCALAR_CHUNK,)
        )
        time.make_scale(TIME)
        for name, frame in frames.items():
            self._create_field(name, frame, dims[name])
        self._shapes = {name: frame.shape for name, frame in frames.items()}

    def _check_dims(self, name: str, frame: np.ndarray, dims: tuple[str, ...]) -> None:
        if len(dims) != frame.ndim:
            raise ValueError(f"field {name!r}: {frame.ndim} axes but dims {dims}")
        for axis, dim in enumerate(dims):
            if dim not in self.coords:
                raise ValueError(f"field {name!r}: no coordinate named {dim!r}")
            if len(self.coords[dim]) != frame.shape[axis]:
                raise ValueError(
                    f"field {name!r}: axis {dim!r} has length {frame.shape[axis]}, "
                    f"coordinate has {len(self.coords[dim])}"
                )

    def _create_field(self, name: str, frame: np.ndarray, dims: tuple[str, ...]) -> None:
        options: dict[str, Any] = {"chunks": (_SCALAR_CHUNK,)}
        if frame.ndim > 0:
            options = {"chunks": (1, *frame.shape), "compression": "gzip",
                       "compression_opts": _GZIP_LEVEL}
        dset = self.group.create_dataset(
            name, shape=(0, *frame.shape), maxshape=(None, *frame.shape), dtype=frame.dtype,
            **options,
        )
        for axis, dim in enumerate((TIME, *dims)):
            dset.dims[axis].attach_scale(self.group[dim])
            dset.dims[axis].label = dim


# ----------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class RunData:
    """Everything in a run file, read into memory.

    Attributes
    ----------
    attrs : dict
        Root attributes (``config`` is the TOML text).
    groups : dict of str to dict of str to ndarray
        Datasets by group path, e.g. ``groups["pde"]["density"]``; nested groups are named
        by path (``"pde/last_good"``), datasets at the root go under ``"/"``.
    group_attrs : dict of str to dict
        Attributes of each group.
    dims : dict of str to dict of str to tuple of str
        Dimension names per dataset, e.g. ``dims["pde"]["density"] == ("time", "r")``.
    """

    attrs: dict
    groups: dict[str, dict[str, np.ndarray]]
    group_attrs: dict[str, dict]
    dims: dict[str, dict[str, tuple[str, ...]]]


def _attr_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.generic):
        return value.item()
    return value


def _attrs(obj: h5py.HLObject) -> dict:
    return {key: _attr_value(value) for key, value in obj.attrs.items()}


def _dataset_dims(dset: h5py.Dataset) -> tuple[str, ...]:
    """Names of the axes of ``dset`` from its attached dimension scales."""
    if dset.is_scale:
        return (dset.name.rsplit("/", 1)[-1],)
    names = []
    for axis, dim in enumerate(dset.dims):
        if len(dim) > 0:
            names.append(dim[0].name.rsplit("/", 1)[-1])
        else:
            names.append(dim.label or f"dim_{axis}")
    return tuple(names)


def _read_group(group: h5py.Group) -> tuple[dict, dict]:
    """Datasets and dims of one group, fields trimmed to the completed frames."""
    data: dict[str, np.ndarray] = {}
    dims: dict[str, tuple[str, ...]] = {}
    for name, obj in group.items():
        if isinstance(obj, h5py.Dataset):
            data[name], dims[name] = obj[()], _dataset_dims(obj)
    if TIME in data:
        n_frames = len(data[TIME])
        for name, names in dims.items():
            if names[:1] == (TIME,) and name != TIME:
                data[name] = data[name][:n_frames]
    return data, dims


def load(path: str | Path) -> RunData:
    """Read a run file written with :class:`FrameStore` into a :class:`RunData`.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    RunData
    """
    groups: dict[str, dict[str, np.ndarray]] = {}
    group_attrs: dict[str, dict] = {}
    dims: dict[str, dict[str, tuple[str, ...]]] = {}

    with h5py.File(path, "r") as f:
        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Group):
                groups[name], dims[name] = _read_group(obj)
                group_attrs[name] = _attrs(obj)

        f.visititems(visit)
        root_data, root_dims = _read_group(f)
        if root_data:
            groups["/"], dims["/"], group_attrs["/"] = root_data, root_dims, {}
        return RunData(attrs=_attrs(f), groups=groups, group_attrs=group_attrs, dims=dims)


def _format_group(name: str, data: dict, dims: dict, attrs: dict) -> list[str]:
    lines = [f"/{name}"]
    for key, value in attrs.items():
        lines.append(f"  @{key} = {value!r}")
    for key, array in data.items():
        lines.append(f"  {key:<16} {str(array.shape):<16} ({', '.join(dims[key])}) {array.dtype}")
    if TIME in data and len(data[TIME]) > 0:
        times = data[TIME]
        lines.append(f"  time: {len(times)} frames from {times[0]:g} to {times[-1]:g}")
    elif TIME in data:
        lines.append("  time: no frames")
    if name == "pde":
        for key in ("mass", "risk", "free_energy"):
            if key in data and data[key].ndim == 1 and len(data[key]) > 0:
                lines.append(f"  {key}: first {data[key][0]:.10g}, last {data[key][-1]:.10g}")
    return lines


def summary(path: str | Path) -> str:
    """Human-readable description of a run file.

    Shows the root attributes (the configuration as its TOML text), then each group with its
    datasets' shapes and dimensions, the time range and frame count, and for ``/pde`` the
    first and last mass, risk and free energy.
    """
    run = load(path)
    lines = [f"{path}"]
    for key, value in run.attrs.items():
        if key != "config":
            lines.append(f"  {key}: {value}")
    if "config" in run.attrs:
        lines.append("  config:")
        config_lines = str(run.attrs["config"]).rstrip().splitlines()
        lines.extend(("    " + line).rstrip() for line in config_lines)
    for name in sorted(run.groups):
        lines.extend(_format_group(name, run.groups[name], run.dims[name], run.group_attrs[name]))
    return "\n".join(lines)
