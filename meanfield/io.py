"""HDF5 storage of runs: the only module of the project that imports :mod:`h5py`.

One file per run (SPEC section 6). Root attributes record the schema version, package version,
creation time, backend, device, seed and the full resolved configuration as TOML text. Each
group (``/pde``, ``/particles``, ...) holds frames appended along a resizable first axis
``time``; coordinate datasets (``time``, ``r``, ...) are HDF5 dimension scales attached to every
axis, so ``xarray.open_dataset(path, engine="h5netcdf", group="pde")`` opens a group with named
dimensions. Layout and append-only design follow py-pde's ``pde/storage/file.py``.

Crash safety
------------
A run killed at any moment (SIGKILL included) leaves a file that opens with plain h5py and
xarray and holds every completed frame:

* :func:`create_file` builds the new file under a temporary name in the same directory and
  renames it into place, so ``path`` is never a half-written superblock;
* :meth:`FrameStore.append` flushes twice per frame: first the fields (and the frame's resume
  state), then the frame's commit (the checkpoint marker and ``time``). The length of ``time``
  therefore never exceeds that of a field, whatever order HDF5 writes its metadata in within
  one flush, and :func:`load` trims the fields to ``time``;
* the resume state of a group sits in a double-buffered ``checkpoint`` subgroup: frame ``k``
  writes slot ``k % 2``, so the slot of the last committed frame is never being overwritten.

The files use HDF5's default (earliest) format, not ``libver="latest"`` with SWMR: a SWMR
writer killed mid-run leaves the superblock's "file open for writing" flags set, after which
only SWMR readers open the file; plain readers (xarray, ``h5py.File(path)``) and a resuming
writer refuse it until ``h5clear -s`` is run. Flushes do not ``fsync``: what they write
survives the death of the process, not that of the machine.
"""

from __future__ import annotations

import datetime
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ._version import __version__

__all__ = [
    "SCHEMA_VERSION",
    "Checkpoint",
    "FrameStore",
    "RunData",
    "attach_scales",
    "create_file",
    "last_checkpoint",
    "load",
    "open_file",
    "truncate_frames",
    "write_points_layout",
    "write_root_attrs",
]

#: the version of the file layout, in the root attribute ``schema_version`` (docs/data-format.md)
SCHEMA_VERSION = 2
TIME = "time"
#: subgroup holding the double-buffered resume state of a frame group
CHECKPOINT = "checkpoint"
#: dataset of CHECKPOINT naming the frame held in each of its two slots (-1: none)
MARKER = "frame"
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
    path = Path(path)
    if path.exists() and not force:
        raise FileExistsError(
            f"{path} exists; pass --force to overwrite it (nothing is overwritten silently)"
        )
    # an empty file is built aside and renamed into place (atomic): a kill at any moment
    # leaves at ``path`` either the old file, nothing, or a valid (empty) HDF5 file
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
        h5py.File(temp, "w").close()
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return h5py.File(path, "r+")


def open_file(path: str | Path, mode: str = "r") -> h5py.File:
    """Open an existing run file, ``mode`` ``"r"`` (read only) or ``"r+"`` (to resume it)."""
    if mode not in ("r", "r+"):
        raise ValueError(f"mode must be 'r' or 'r+', got {mode!r}")
    return h5py.File(path, mode)


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
    f.attrs["schema_version"] = SCHEMA_VERSION
    f.attrs["package_version"] = __version__
    f.attrs["created_utc"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
    f.attrs["backend"] = str(backend)
    f.attrs["device"] = str(device)
    f.attrs["seed"] = -1 if seed is None else int(seed)
    f.attrs["config"] = str(config_toml)
    f.flush()


#: the attributes of ``/pde`` (SPEC 6): the summary of every run ...
PDE_SUMMARY_ATTRS = (
    "n_steps",
    "wall_time_s",
    "max_mass_error",
    "max_free_energy_rise",
    "min_density",
)
#: ... and those of a characteristics run besides (how its points and refinement went)
PDE_POINT_ATTRS = (
    "method",
    "max_outside_mass",
    "n_points",
    "refinement_passes",
    "points_per_pass",
    "refinement_converged",
    "refinement_reason",
    "refinement_risk_change",
)
#: the attributes of ``/particles``: how the ensemble was run
PARTICLE_ATTRS = ("reduced_names", "seed", "step_size", "backend", "engine", "dtype")
#: the attributes of ``/study`` and its tables, of ``/study/raw`` (the failed jobs' messages),
#: of ``/sweep``, and of ``/pde/last_good`` (the last good state before a failure)
STUDY_ATTRS = ("failed_jobs", "clt_method", "failures")
SWEEP_ATTRS = ("swept_key",)
LAST_GOOD_ATTRS = ("time", "step")


def write_group_attrs(group: h5py.Group, values: Mapping[str, Any]) -> None:
    """Write the attributes ``values`` of a group of frames (``/pde``, ``/particles``, a sweep):
    every name must be one this module lays out (:data:`PDE_SUMMARY_ATTRS`,
    :data:`PDE_POINT_ATTRS`, :data:`PARTICLE_ATTRS`, :data:`STUDY_ATTRS`, :data:`SWEEP_ATTRS`,
    :data:`LAST_GOOD_ATTRS`), so the file format has one place."""
    unknown = sorted(set(values) - _GROUP_ATTRS)
    if unknown:
        raise ValueError(f"attributes {unknown} are not part of the file layout (meanfield.io)")
    group.attrs.update(values)


_GROUP_ATTRS = frozenset(
    PDE_SUMMARY_ATTRS
    + PDE_POINT_ATTRS
    + PARTICLE_ATTRS
    + STUDY_ATTRS
    + SWEEP_ATTRS
    + LAST_GOOD_ATTRS
)


def mark_resumed(f: h5py.File) -> None:
    """Record on the root that a run was resumed, and when (UTC)."""
    f.attrs["resumed_utc"] = datetime.datetime.now(datetime.timezone.utc).isoformat()


def _as_frame(name: str, value: Any) -> np.ndarray:
    """One frame as a host array: integers as int64, floats as float64."""
    array = np.asarray(value)
    if array.dtype.kind in "iu":
        return array.astype(np.int64, copy=False)
    if array.dtype.kind == "f":
        return array.astype(np.float64, copy=False)
    raise TypeError(f"field {name!r}: cannot store dtype {array.dtype} (integers or floats only)")


@dataclass(frozen=True)
class Checkpoint:
    """The last complete frame of a group and the resume state stored with it.

    Attributes
    ----------
    index : int
        Index of the frame (the group keeps frames ``0 .. index``).
    state : dict of str to ndarray
        The ``state`` given to :meth:`FrameStore.append` with that frame.
    """

    index: int
    state: dict[str, np.ndarray]


def _frame_datasets(group: h5py.Group) -> dict[str, h5py.Dataset]:
    """The datasets of ``group`` that grow along time (``time`` itself included)."""
    return {
        name: obj
        for name, obj in group.items()
        if isinstance(obj, h5py.Dataset) and obj.maxshape[:1] == (None,)
    }


def attach_scales(
    group: h5py.Group,
    dset: h5py.Dataset,
    names: Sequence[str],
    coords: Mapping[str, np.ndarray] | None = None,
) -> None:
    """Name every axis of ``dset`` by a dimension scale of ``group`` (xarray's named dims).

    A missing scale is created from ``coords[name]`` when its length fits the axis, else as
    indices ``0 .. n - 1``.
    """
    coords = coords or {}
    for axis, name in enumerate(names):
        if name not in group:
            values = coords.get(name)
            if values is None or len(values) != dset.shape[axis]:
                values = np.arange(dset.shape[axis])
            group.create_dataset(name, data=np.asarray(values)).make_scale(name)
        dset.dims[axis].attach_scale(group[name])
        dset.dims[axis].label = name


def last_checkpoint(group: h5py.Group, times: Sequence[float] | None = None) -> Checkpoint | None:
    """The newest frame of ``group`` that is committed and has its resume state.

    A frame ``k`` qualifies when its checkpoint slot names it, ``time`` and every field hold
    it, and (given ``times``) ``time[:k + 1]`` equals ``times[:k + 1]`` exactly.

    Parameters
    ----------
    group : h5py.Group
        A group written by :class:`FrameStore` with ``state``.
    times : sequence of float, optional
        The run's output times.

    Returns
    -------
    Checkpoint or None
        ``None`` when no frame qualifies (no frame committed, or no checkpoint).
    """
    if CHECKPOINT not in group or TIME not in group:
        return None
    slots = group[CHECKPOINT]
    n_frames = min(len(dset) for dset in _frame_datasets(group).values())
    recorded = group[TIME][:n_frames]
    for index in sorted((int(k) for k in slots[MARKER][()]), reverse=True):
        if not 0 <= index < n_frames:
            continue
        if times is not None and not (
            len(times) > index
            and np.array_equal(recorded[: index + 1], np.asarray(times[: index + 1], np.float64))
        ):
            continue
        state = {
            name: dset[index % 2]
            for name, dset in slots.items()
            if name != MARKER and not dset.is_scale
        }
        return Checkpoint(index, state)
    return None


def truncate_frames(group: h5py.Group, n_frames: int) -> None:
    """Cut every time-axis dataset of ``group`` to ``n_frames`` frames and flush.

    Checkpoint slots naming a later frame are cleared, so that only frames still on file
    can be resumed from.
    """
    for dset in _frame_datasets(group).values():
        if dset.shape[0] > n_frames:
            dset.resize(n_frames, axis=0)
    if CHECKPOINT in group:
        marker = group[CHECKPOINT][MARKER]
        values = marker[()]
        marker[...] = np.where(values >= n_frames, -1, values)
    group.file.flush()


class FrameStore:
    """Append-only frames under one group; time is the first axis of every dataset.

    Parameters
    ----------
    group : h5py.Group
        The group that receives the frames, e.g. ``f.require_group("pde")``: empty, or holding
        the frames of an earlier session (appends continue after them).
    coords : dict of str to array of shape (n_points,)
        Coordinate of each non-time axis by dimension name, e.g. ``{"r": cell_centres}``.

    Notes
    -----
    The constructor only stores its arguments; the datasets are created by the first
    :meth:`append`. Each append flushes twice: after the fields (and the resume state), and
    after ``time`` (the commit), so the length of ``time`` never exceeds that of a field and
    :func:`load` trims fields to it.

    Examples
    --------
    >>> store = FrameStore(f.require_group("pde"), {"r": r})            # doctest: +SKIP
    >>> store.append(0.0, {"density": (rho, ("r",)), "risk": (0.42, ())})  # doctest: +SKIP
    """

    def __init__(self, group: h5py.Group, coords: dict[str, np.ndarray]) -> None:
        self.group = group
        self.coords = coords
        self._shapes: dict[str, tuple[int, ...]] | None = None

    @property
    def n_frames(self) -> int:
        """Frames committed so far."""
        return int(self.group[TIME].shape[0]) if TIME in self.group else 0

    def append(
        self,
        t: float,
        fields: Mapping[str, tuple[Any, tuple[str, ...]]],
        state: Mapping[str, Any] | None = None,
    ) -> None:
        """Append one frame at time ``t``, flushed as described in the class notes.

        Parameters
        ----------
        t : float
            Time of the frame.
        fields : Mapping
            ``name -> (value, dims)``, ``dims`` naming the non-time axes of ``value`` (``()``
            for a scalar). Every call must give the same names, dims and shapes.
        state : Mapping of str to array, optional
            What a resumed run needs besides the fields to continue from this frame (see
            :func:`last_checkpoint`), kept for the last two frames in subgroup
            ``checkpoint``, in its own dtype (integers and floats only).
        """
        frames = {name: _as_frame(name, value) for name, (value, _) in fields.items()}
        if self._shapes is None:
            if TIME in self.group:
                self._shapes = {
                    name: dset.shape[1:]
                    for name, dset in _frame_datasets(self.group).items()
                    if name != TIME
                }
            else:
                self._initialize(frames, {name: tuple(dims) for name, (_, dims) in fields.items()})
        self._check_frames(frames)
        index = self.n_frames
        for name, frame in frames.items():
            dset = self.group[name]
            dset.resize(index + 1, axis=0)
            dset[index] = frame
        if state is not None:
            self._write_state(index % 2, state)
        self.group.file.flush()
        if state is not None:
            self.group[CHECKPOINT][MARKER][index % 2] = index
        time = self.group[TIME]
        time.resize(index + 1, axis=0)
        time[index] = float(t)
        self.group.file.flush()

    def write_attrs(self, **attrs: Any) -> None:
        """Set attributes of the group (e.g. ``last_good_time``) and flush."""
        for key, value in attrs.items():
            self.group.attrs[key] = value
        self.group.file.flush()

    def _write_state(self, slot: int, state: Mapping[str, Any]) -> None:
        """Write ``state`` into checkpoint slot ``slot`` (datasets created on first use)."""
        slots = self.group.require_group(CHECKPOINT)
        if MARKER not in slots:
            slots.create_dataset(MARKER, data=np.full(2, -1, dtype=np.int64))
            attach_scales(slots, slots[MARKER], ("slot",))
        for name, value in state.items():
            array = np.asarray(value)
            if array.dtype.kind not in "iuf":
                raise TypeError(f"state {name!r}: cannot store dtype {array.dtype}")
            if name not in slots:  # contiguous, uncompressed: each write lands in place
                slots.create_dataset(name, shape=(2, *array.shape), dtype=array.dtype)
                axes = ("slot", *(f"{name}_dim{i}" for i in range(1, array.ndim + 1)))
                attach_scales(slots, slots[name], axes)
            dset = slots[name]
            if dset.shape[1:] != array.shape or dset.dtype != array.dtype:
                raise ValueError(
                    f"state {name!r}: {array.dtype}{array.shape}, expected "
                    f"{dset.dtype}{dset.shape[1:]}"
                )
            dset[slot] = array

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
            if name not in group:  # a layout may have written it (write_points_layout)
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
            options = {
                "chunks": (1, *frame.shape),
                "compression": "gzip",
                "compression_opts": _GZIP_LEVEL,
            }
        dset = self.group.create_dataset(
            name,
            shape=(0, *frame.shape),
            maxshape=(None, *frame.shape),
            dtype=frame.dtype,
            **options,
        )
        for axis, dim in enumerate((TIME, *dims)):
            dset.dims[axis].attach_scale(self.group[dim])
            dset.dims[axis].label = dim


def write_points_layout(
    group: h5py.Group, weights: np.ndarray, n_axes: int, quantiles: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """The fixed part of a characteristics run in ``group``: the scales ``point`` and ``axis``,
    the dataset ``weights`` (``point``) and, when given, ``quantiles`` (``point x axis``: the
    initial law's CDF at each point), written once (kept when the group has them).

    Returns the coordinates to give :class:`FrameStore` for the per-frame ``points``
    (``time x point x axis``).
    """
    weights = np.asarray(weights, dtype=np.float64)
    coords = {"point": np.arange(weights.size), "axis": np.arange(n_axes)}
    for name, values in coords.items():
        if name not in group:
            group.create_dataset(name, data=values).make_scale(name)
    if "weights" not in group:
        dset = group.create_dataset("weights", data=weights)
        attach_scales(group, dset, ("point",))
    if quantiles is not None and "quantiles" not in group:
        dset = group.create_dataset("quantiles", data=np.asarray(quantiles, dtype=np.float64))
        attach_scales(group, dset, ("point", "axis"))
    group.file.flush()
    return coords


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
    if TIME in data:  # a frame counts once every field and time hold it
        on_time = [name for name, names in dims.items() if names[:1] == (TIME,)] or [TIME]
        n_frames = min(len(data[name]) for name in on_time)
        for name in on_time:
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
