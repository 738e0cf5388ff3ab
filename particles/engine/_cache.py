"""Keep numba's on-disk cache of the engine consistent with the engine's sources.

numba keys a cached function on its own file only: a kernel whose callee in another module
changed would load stale machine code. Before the first kernel is compiled or loaded, this
hashes every source file of the engine (and the numba version); when the hash differs from
the one stored beside the cache, the engine's cache files are deleted. Where the package
directory is read-only, numba caches elsewhere and nothing is done here.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numba

__all__ = ["refresh_cache"]

_STAMP = "engine-sources.sha256"


def refresh_cache() -> None:
    """Delete the engine's numba cache files if any engine source changed since they were made."""
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256(numba.__version__.encode())
    for path in sorted(here.glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    cache = here / "__pycache__"
    stamp = cache / _STAMP
    try:
        if stamp.exists() and stamp.read_text() == digest.hexdigest():
            return
        cache.mkdir(exist_ok=True)
        for path in list(cache.glob("*.nbi")) + list(cache.glob("*.nbc")):
            path.unlink()
        stamp.write_text(digest.hexdigest())
    except OSError:  # a read-only install: numba uses its own cache directory
        return
