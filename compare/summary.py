"""``meanfield info FILE``: a human-readable description of a run or study file."""

from __future__ import annotations

from pathlib import Path

from meanfield.io import TIME, load

__all__ = ["summary"]


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
