"""perfmodel: roofline, interconnect, training-step, H100-equivalence and fleet models
for AI accelerators, in JAX."""

import jax as _jax

_jax.config.update("jax_enable_x64", True)

from perfmodel.hardware import (  # noqa: E402
    Catalog as Catalog,
    CatalogError as CatalogError,
    Chip as Chip,
    chip as chip,
    load_catalog as load_catalog,
)

__version__ = "0.1.0"
