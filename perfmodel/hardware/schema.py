"""What a catalog may contain: unit suffixes and the unit each means, confidences and
picks, the known chip, system and link fields with their allowed ranges, and
:class:`CatalogError`.
"""

from perfmodel.errors import InputError
from perfmodel.hardware.precision import PRECISION_KEYS

#: Unit suffixes a numeric key may end with, and the unit they mean.
UNIT_SUFFIXES: dict[str, str] = {
    "_flops_per_s": "FLOP/s",
    "_ops_per_s": "op/s",
    "_bytes_per_s_per_dir": "byte/s per direction",
    "_bytes_per_s": "byte/s",
    "_bytes": "byte",
    "_w": "W",
    "_usd": "USD",
    "_s": "s",
    "_count": "count",
    "_ratio": "dimensionless",
}

CONFIDENCES = ("vendor", "benchmark", "reported", "derived", "estimate")
PICKS = ("best", "low", "high")

#: Fields every chip must have.
REQUIRED_CHIP_FIELDS = ("dram_bytes", "dram_bytes_per_s", "tdp_w")

#: Known numeric fields of a chip and their allowed range (inclusive lower, upper).
CHIP_FIELDS: dict[str, tuple[float, float]] = {
    **{k: (0.0, 1e20) for k in PRECISION_KEYS.values()},
    "sram_bytes": (0.0, 1e13),
    "sram_bytes_per_s": (0.0, 1e17),
    "dram_bytes": (0.0, 1e14),
    "dram_bytes_per_s": (1.0, 1e16),
    "scaleup_bytes_per_s_per_dir": (0.0, 1e15),
    "scaleout_bytes_per_s_per_dir": (0.0, 1e14),
    "host_bytes_per_s_per_dir": (0.0, 1e15),
    "tdp_w": (1e-3, 1e6),
    "allin_power_w": (1e-3, 1e7),
    "price_usd": (0.0, 1e9),
    "allin_price_usd": (0.0, 1e9),
    "unit_count": (1.0, 1e6),
}
#: Non-numeric (string) chip fields.
CHIP_TEXT_FIELDS = (
    "name",
    "vendor",
    "kind",
    "available",
    "dram_type",
    "sram_type",
    "unit_name",
    "note",
    "purchase_unit",
)
CHIP_KINDS = ("gpu", "wafer_tile", "asic", "inference", "cpu")
#: Non-numeric (string) system and link fields; every other key must be a sourced,
#: unit-suffixed figure.
SYSTEM_TEXT_FIELDS = (
    "name",
    "chip",
    "link_scaleup",
    "link_scaleout",
    "note",
    "topology",
    "vendor",
    "available",
)
LINK_TEXT_FIELDS = ("name", "note", "topology", "kind", "vendor", "generation")
#: Boolean (``true``/``false``) link fields: ``switch_reduction`` = the scale-up switch
#: reduces in the network (NVLink SHARP, NCCL's NVLS).
LINK_FLAG_FIELDS = ("switch_reduction",)
#: Figures of the ``[link_defaults]`` table (used by :mod:`perfmodel.interconnect` for a
#: link without its own figure, and for networks built by hand), with allowed ranges.
LINK_DEFAULT_FIELDS: dict[str, tuple[float, float]] = {
    "scaleup_switched_efficiency_ratio": (1e-6, 1.0),
    "scaleup_mesh_efficiency_ratio": (1e-6, 1.0),
    "scaleout_efficiency_ratio": (1e-6, 1.0),
    "scaleup_latency_s": (0.0, 1.0),
    "scaleout_latency_s": (0.0, 1.0),
    "switch_reduction_ratio": (1e-6, 10.0),
}


class CatalogError(InputError):
    """A catalog file or a chip specification is invalid. The message names the
    file, the entry, the field, the offending value and the allowed range."""


def unit_of(key: str) -> str | None:
    """The unit a key's suffix denotes, or ``None`` when it has no unit suffix."""
    for suffix, unit in UNIT_SUFFIXES.items():
        if key.endswith(suffix) or key == suffix[1:]:  # e.g. "bytes_per_s_per_dir"
            return unit
    return None
