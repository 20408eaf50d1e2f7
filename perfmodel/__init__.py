"""perfmodel: roofline, interconnect, training-step, H100-equivalence and fleet models
for AI accelerators, in JAX."""

import jax as _jax

_jax.config.update("jax_enable_x64", True)


#: Bound on the on-disk compile cache (bytes): past it, the oldest programs are removed
#: (checked at most once an hour). JAX's own bound (``jax_compilation_cache_max_size``)
#: is not used: it fails on entries written without it (their access-time files).
JAX_CACHE_MAX_BYTES = 2 * 1024**3


def _bound_cache_dir(path: str, max_bytes: int, every_s: float = 3600.0) -> None:
    """Remove the oldest files of ``path`` until it holds at most 3/4 of ``max_bytes``
    (when it holds more), at most once per ``every_s`` (a stamp file's age)."""
    import os
    import time

    stamp = os.path.join(path, ".perfmodel-size-check")
    try:
        if time.time() - os.path.getmtime(stamp) < every_s:
            return
    except OSError:
        pass
    try:
        os.makedirs(path, exist_ok=True)
        with open(stamp, "w"):
            pass
        files = [
            (e.stat().st_mtime, e.stat().st_size, e.path) for e in os.scandir(path) if e.is_file()
        ]
    except OSError:
        return
    total = sum(f[1] for f in files)
    if total <= max_bytes:
        return
    for _, size, p in sorted(files):  # oldest first
        if total <= max_bytes * 3 // 4:
            break
        try:
            os.remove(p)
            total -= size
        except OSError:
            pass


def _persistent_compile_cache() -> None:
    """Keep every compiled XLA program on disk (under ``$PERFMODEL_CACHE_DIR/jax``,
    default ``~/.cache/perfmodel/jax``, at most :data:`JAX_CACHE_MAX_BYTES`), so a new
    process does not compile the model or the solvers again (tracing is not cached).
    ``PERFMODEL_JAX_CACHE=0`` turns it off; a cache directory already set by the user is
    left alone."""
    import os

    if (
        os.environ.get("PERFMODEL_JAX_CACHE", "1") == "0"
        or _jax.config.values["jax_compilation_cache_dir"]
    ):
        return
    root = os.environ.get("PERFMODEL_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "perfmodel"
    )
    _jax.config.update("jax_compilation_cache_dir", os.path.join(root, "jax"))
    _bound_cache_dir(os.path.join(root, "jax"), JAX_CACHE_MAX_BYTES)
    _jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


_persistent_compile_cache()

from perfmodel.hardware import Catalog as Catalog  # noqa: E402
from perfmodel.hardware import CatalogError as CatalogError  # noqa: E402
from perfmodel.hardware import Chip as Chip  # noqa: E402
from perfmodel.hardware import chip as chip  # noqa: E402
from perfmodel.hardware import load_catalog as load_catalog  # noqa: E402

__version__ = "0.1.0"
