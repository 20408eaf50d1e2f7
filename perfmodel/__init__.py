"""perfmodel: roofline, interconnect, training-step, H100-equivalence and fleet models
for AI accelerators, in JAX."""

import jax as _jax

_jax.config.update("jax_enable_x64", True)


#: Bound on the on-disk compile cache (bytes); JAX evicts the least recently used.
JAX_CACHE_MAX_BYTES = 2 * 1024**3


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
    _jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    _jax.config.update("jax_compilation_cache_max_size", JAX_CACHE_MAX_BYTES)


_persistent_compile_cache()

from perfmodel.hardware import Catalog as Catalog  # noqa: E402
from perfmodel.hardware import CatalogError as CatalogError  # noqa: E402
from perfmodel.hardware import Chip as Chip  # noqa: E402
from perfmodel.hardware import chip as chip  # noqa: E402
from perfmodel.hardware import load_catalog as load_catalog  # noqa: E402

__version__ = "0.1.0"
