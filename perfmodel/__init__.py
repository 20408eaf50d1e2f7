"""perfmodel: roofline, interconnect, training-step, H100-equivalence and fleet models
for AI accelerators, in JAX.

Importing ``perfmodel`` does not import JAX (1.5 s of a 2.1 s import on 2 cores), so
the catalog commands (``perfmodel chips``, ``chip``, ``systems``) and ``--help`` run
without it. What every JAX use needs is settled here, before any module can import JAX
(:func:`_configure_jax`): 64-bit floats and the on-disk compile cache. The :class:`Chip`
pytree loads on first use (``perfmodel.Chip``); the other public names are plain
re-exports.
"""

import os as _os
import sys as _sys
import time as _time
from typing import TYPE_CHECKING

__version__ = "0.1.0"

#: Bound on the on-disk compile cache (bytes): past it, the oldest programs are removed
#: (checked at most once an hour). JAX's own bound (``jax_compilation_cache_max_size``)
#: is not used: it fails on entries written without it (their access-time files).
JAX_CACHE_MAX_BYTES = 2 * 1024**3

#: Environment variable naming the compile-cache directory perfmodel itself put in
#: ``JAX_COMPILATION_CACHE_DIR`` (a child process inherits both, and then recomputes
#: its own from its ``PERFMODEL_CACHE_DIR``; a directory the user set is left alone).
_OWN_CACHE_DIR_ENV = "PERFMODEL_JAX_CACHE_DIR_SET"


def _bound_cache_dir(path: str, max_bytes: int, every_s: float = 3600.0) -> None:
    """Remove the oldest files of ``path`` until it holds at most 3/4 of ``max_bytes``
    (when it holds more), at most once per ``every_s`` (a stamp file's age)."""
    stamp = _os.path.join(path, ".perfmodel-size-check")
    try:
        if _time.time() - _os.path.getmtime(stamp) < every_s:
            return
    except OSError:
        pass
    try:
        _os.makedirs(path, exist_ok=True)
        with open(stamp, "w"):
            pass
        files = [
            (e.stat().st_mtime, e.stat().st_size, e.path) for e in _os.scandir(path) if e.is_file()
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
            _os.remove(p)
            total -= size
        except OSError:
            pass


def _compile_cache_dir() -> str | None:
    """Where perfmodel keeps every compiled XLA program (``$PERFMODEL_CACHE_DIR/jax``,
    default ``~/.cache/perfmodel/jax``, at most :data:`JAX_CACHE_MAX_BYTES`), so a new
    process does not compile the model or the solvers again (tracing is not cached).
    ``None`` when ``PERFMODEL_JAX_CACHE=0`` turns it off or the user set a directory of
    their own (``JAX_COMPILATION_CACHE_DIR``)."""
    env = _os.environ
    user_dir = env.get("JAX_COMPILATION_CACHE_DIR")
    if (user_dir and user_dir != env.get(_OWN_CACHE_DIR_ENV)) or env.get(
        "PERFMODEL_JAX_CACHE", "1"
    ) == "0":
        return None
    root = env.get("PERFMODEL_CACHE_DIR") or _os.path.join(
        _os.path.expanduser("~"), ".cache", "perfmodel"
    )
    return _os.path.join(root, "jax")


def _configure_jax() -> None:
    """64-bit floats (``jax_enable_x64``) and the compile cache of
    :func:`_compile_cache_dir`, for every JAX use in the process.

    JAX reads its ``JAX_*`` environment variables when it is first imported, so before
    that they are set in ``os.environ`` (child processes inherit them; a cache directory
    inherited from a perfmodel parent is replaced by this process's own). A JAX imported
    before perfmodel is configured directly, its own cache directory left alone."""
    env = _os.environ
    cache = _compile_cache_dir()
    jax = _sys.modules.get("jax")
    if jax is None:
        env["JAX_ENABLE_X64"] = "1"
        inherited = env.pop(_OWN_CACHE_DIR_ENV, None)
        if inherited is not None and env.get("JAX_COMPILATION_CACHE_DIR") == inherited:
            del env["JAX_COMPILATION_CACHE_DIR"]
            env.pop("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", None)
        if cache is not None:
            env["JAX_COMPILATION_CACHE_DIR"] = cache
            env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
            env[_OWN_CACHE_DIR_ENV] = cache
    else:
        jax.config.update("jax_enable_x64", True)
        if cache is not None and not jax.config.values["jax_compilation_cache_dir"]:
            jax.config.update("jax_compilation_cache_dir", cache)
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    if cache is not None:
        _bound_cache_dir(cache, JAX_CACHE_MAX_BYTES)


_configure_jax()

# the public API (after _configure_jax: no module below may see JAX unconfigured)
from perfmodel.hardware import Catalog as Catalog  # noqa: E402
from perfmodel.hardware import CatalogError as CatalogError  # noqa: E402
from perfmodel.hardware import chip as chip  # noqa: E402
from perfmodel.hardware import load_catalog as load_catalog  # noqa: E402

if TYPE_CHECKING:
    from perfmodel.hardware.pytree import Chip as Chip


def __getattr__(name: str):
    """``perfmodel.Chip`` loads the pytree module (and with it JAX) on first use."""
    if name == "Chip":
        from perfmodel.hardware.pytree import Chip  # here, not above: importing JAX takes 1.5 s

        return Chip
    raise AttributeError(f"module 'perfmodel' has no attribute {name!r}")
