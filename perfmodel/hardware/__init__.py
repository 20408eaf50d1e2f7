"""Hardware catalog: sourced chip figures loaded into frozen JAX pytrees.

The catalog lives in TOML files shipped inside the package (``perfmodel/data/``).
Every numeric figure is an inline table with a unit in its key name, a source and a
confidence::

    bf16_flops_per_s = { value = 989.4e12, source = "nvidia-h100", confidence = "vendor" }
    allin_price_usd  = { best = 50000, low = 46000, high = 52000,
                         source = "musk-2024-01", confidence = "estimate" }

``source`` names an entry of the file's ``[sources]`` table (or is a free-text source).
``confidence`` is one of ``vendor``, ``benchmark``, ``reported``, ``derived`` (a
``formula`` is then expected) or ``estimate`` (``low``/``best``/``high`` required).

All values are SI inside: FLOP/s, byte, byte/s, W, USD, s. Peak FLOP/s are *dense*.

Loading validates everything and raises :class:`CatalogError` naming the file, the
entry, the field, the value and the allowed range. Nothing is checked inside ``jit``;
chips built or modified in Python are checked by :func:`validate_chip` (called by
:meth:`Chip.replace_fields` and :meth:`ChipRecord.to_chip` overrides).

Built-in files: ``catalog_chips.toml`` (``[chips.*]``, ``[aliases]``) and
``catalog_systems.toml`` (``[systems.*]`` with text ``chip``, ``link_scaleup``,
``link_scaleout``, ``topology`` and figures ``chips_count``, ``domain_chips_count``,
``power_w``, ``price_usd``; ``[links.*]`` with ``bytes_per_s_per_dir`` (per chip, one
direction), ``latency_s``, ``efficiency_ratio``, an optional ``switch_reduction_ratio``
and the boolean flag ``switch_reduction``; ``[link_defaults]`` with the figures used for
a link that lacks one, see :data:`LINK_DEFAULT_FIELDS`). A user file passed to
:func:`load_catalog` adds entries or replaces same-named ones (e.g. an H100 with your own
all-in price; a ``[links.X]`` entry replaces the whole built-in link ``X``; a
``[link_defaults]`` key replaces that one default).

Example::

    >>> from perfmodel.hardware import load_catalog
    >>> cat = load_catalog()
    >>> h100 = cat.chip("h100")
    >>> float(h100.peak_flops_per_s[PRECISION_INDEX["bf16"]])
    989400000000000.0

Modules (each imports only those below it; an import-linter contract checks it):

* :mod:`~perfmodel.hardware.catalog`: the :class:`Catalog`, TOML parsing and loading;
* :mod:`~perfmodel.hardware.records`: chip, system and link entries (``ChipRecord.to_chip``);
* :mod:`~perfmodel.hardware.pytree`: the :class:`Chip` pytree and :func:`validate_chip`;
* :mod:`~perfmodel.hardware.figures`: one sourced :class:`Figure`;
* :mod:`~perfmodel.hardware.schema`: unit suffixes, fields and ranges, :class:`CatalogError`;
* :mod:`~perfmodel.hardware.precision`: precisions and the precision fallback.

Only :mod:`~perfmodel.hardware.pytree` imports JAX, and only when one of its names is first
used (``from perfmodel.hardware import Chip``, ``ChipRecord.to_chip``): reading the catalog
needs no JAX (an import-linter contract checks it).
"""

from typing import TYPE_CHECKING

from perfmodel.hardware.catalog import ALIASES as ALIASES
from perfmodel.hardware.catalog import Catalog as Catalog
from perfmodel.hardware.catalog import builtin_catalog_paths as builtin_catalog_paths
from perfmodel.hardware.catalog import chip as chip
from perfmodel.hardware.catalog import load_catalog as load_catalog
from perfmodel.hardware.catalog import load_catalog_file as load_catalog_file
from perfmodel.hardware.catalog import parse_catalog as parse_catalog
from perfmodel.hardware.catalog import read_toml as read_toml
from perfmodel.hardware.figures import Figure as Figure
from perfmodel.hardware.figures import parse_figure as parse_figure
from perfmodel.hardware.precision import BYTES_PER_ELEMENT as BYTES_PER_ELEMENT
from perfmodel.hardware.precision import PRECISION_FALLBACK as PRECISION_FALLBACK
from perfmodel.hardware.precision import PRECISION_INDEX as PRECISION_INDEX
from perfmodel.hardware.precision import PRECISION_KEYS as PRECISION_KEYS
from perfmodel.hardware.precision import PRECISIONS as PRECISIONS
from perfmodel.hardware.precision import rate_precision as rate_precision
from perfmodel.hardware.precision import unsupported_precision_error as unsupported_precision_error
from perfmodel.hardware.records import ChipRecord as ChipRecord
from perfmodel.hardware.records import LinkRecord as LinkRecord
from perfmodel.hardware.records import SystemRecord as SystemRecord
from perfmodel.hardware.schema import CHIP_FIELDS as CHIP_FIELDS
from perfmodel.hardware.schema import CHIP_KINDS as CHIP_KINDS
from perfmodel.hardware.schema import CHIP_TEXT_FIELDS as CHIP_TEXT_FIELDS
from perfmodel.hardware.schema import CONFIDENCES as CONFIDENCES
from perfmodel.hardware.schema import LINK_DEFAULT_FIELDS as LINK_DEFAULT_FIELDS
from perfmodel.hardware.schema import LINK_FLAG_FIELDS as LINK_FLAG_FIELDS
from perfmodel.hardware.schema import LINK_TEXT_FIELDS as LINK_TEXT_FIELDS
from perfmodel.hardware.schema import PICKS as PICKS
from perfmodel.hardware.schema import REQUIRED_CHIP_FIELDS as REQUIRED_CHIP_FIELDS
from perfmodel.hardware.schema import SYSTEM_TEXT_FIELDS as SYSTEM_TEXT_FIELDS
from perfmodel.hardware.schema import UNIT_SUFFIXES as UNIT_SUFFIXES
from perfmodel.hardware.schema import CatalogError as CatalogError
from perfmodel.hardware.schema import unit_of as unit_of

if TYPE_CHECKING:
    from perfmodel.hardware.pytree import CHIP_PYTREE_RANGES as CHIP_PYTREE_RANGES
    from perfmodel.hardware.pytree import MEMORY_LEVELS as MEMORY_LEVELS
    from perfmodel.hardware.pytree import Chip as Chip
    from perfmodel.hardware.pytree import stack_chips as stack_chips
    from perfmodel.hardware.pytree import to_numpy as to_numpy
    from perfmodel.hardware.pytree import validate_chip as validate_chip

#: The names of :mod:`~perfmodel.hardware.pytree`, loaded on first use (:func:`__getattr__`).
_PYTREE_NAMES = frozenset(
    ("CHIP_PYTREE_RANGES", "MEMORY_LEVELS", "Chip", "stack_chips", "to_numpy", "validate_chip")
)


def __getattr__(name: str):
    """The pytree names (:data:`_PYTREE_NAMES`) import JAX, so they load on first use:
    reading the catalog (``perfmodel chips``) needs no JAX."""
    if name in _PYTREE_NAMES:
        from perfmodel.hardware import pytree  # here, not above: JAX takes 1.5 s

        value = getattr(pytree, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'perfmodel.hardware' has no attribute {name!r}")


__all__ = [
    "ALIASES",
    "BYTES_PER_ELEMENT",
    "CHIP_FIELDS",
    "CHIP_KINDS",
    "CHIP_PYTREE_RANGES",
    "CHIP_TEXT_FIELDS",
    "CONFIDENCES",
    "Catalog",
    "CatalogError",
    "Chip",
    "ChipRecord",
    "Figure",
    "LINK_DEFAULT_FIELDS",
    "LINK_FLAG_FIELDS",
    "LINK_TEXT_FIELDS",
    "LinkRecord",
    "MEMORY_LEVELS",
    "PICKS",
    "PRECISIONS",
    "PRECISION_FALLBACK",
    "PRECISION_INDEX",
    "PRECISION_KEYS",
    "REQUIRED_CHIP_FIELDS",
    "SYSTEM_TEXT_FIELDS",
    "SystemRecord",
    "UNIT_SUFFIXES",
    "builtin_catalog_paths",
    "chip",
    "load_catalog",
    "load_catalog_file",
    "parse_catalog",
    "parse_figure",
    "rate_precision",
    "read_toml",
    "stack_chips",
    "to_numpy",
    "unit_of",
    "unsupported_precision_error",
    "validate_chip",
]
