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
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Container, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import flax.struct
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer

from perfmodel.errors import InputError, path_error

# --------------------------------------------------------------------------------------
# Precisions, memory levels, units
# --------------------------------------------------------------------------------------

#: Matmul precisions, in the order of :attr:`Chip.peak_flops_per_s`. New precisions are
#: appended so existing indices keep their meaning. ``fp4`` is the NVFP4 / MXFP4 class
#: (4-bit elements plus block scales, counted as 0.5 byte per element).
PRECISIONS: tuple[str, ...] = ("fp8", "bf16", "fp16", "tf32", "fp32", "int8", "fp4")
PRECISION_INDEX: dict[str, int] = {p: i for i, p in enumerate(PRECISIONS)}
#: Bytes per element of each precision (tf32 is stored as fp32; fp4 counts the 4-bit
#: element only, not its block scale: 1 byte per 16 or 32 elements, <= 0.0625 byte).
BYTES_PER_ELEMENT: dict[str, float] = {
    "fp8": 1.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "tf32": 4.0,
    "fp32": 4.0,
    "int8": 1.0,
    "fp4": 0.5,
}
#: Catalog key holding the dense peak rate of each precision.
PRECISION_KEYS: dict[str, str] = {
    "fp8": "fp8_flops_per_s",
    "bf16": "bf16_flops_per_s",
    "fp16": "fp16_flops_per_s",
    "tf32": "tf32_flops_per_s",
    "fp32": "fp32_flops_per_s",
    "int8": "int8_ops_per_s",
    "fp4": "fp4_flops_per_s",
}
#: When a chip has no figure for a precision, it runs that precision at the rate of the
#: first precision in this list that it does have (e.g. an A100 runs fp8 work as bf16;
#: an inference NPU without bf16 runs int8). The fallback is recorded in the chip's
#: ``fallbacks`` so reports can say so. ``fp4`` has NO fallback: a chip without an FP4
#: tensor rate does not support it (its fp4 peak is 0; :meth:`ChipRecord.peak` and
#: ``Chip.peak(..., strict=True)`` raise). Resolve with :func:`rate_precision` only.
PRECISION_FALLBACK: dict[str, tuple[str, ...]] = {
    "fp8": ("fp8", "bf16", "fp16", "int8", "tf32", "fp32"),
    "bf16": ("bf16", "fp16", "tf32", "fp32"),
    "fp16": ("fp16", "bf16", "tf32", "fp32"),
    "tf32": ("tf32", "fp32"),
    "fp32": ("fp32", "tf32"),
    "int8": ("int8", "fp8", "bf16", "fp16", "tf32", "fp32"),
    "fp4": ("fp4",),
}


def rate_precision(precision: str, keys: Container[str]) -> str | None:
    """The precision whose rate a chip runs ``precision`` at, given the catalog keys it
    has (``keys``: a record's ``figures``, plus any override keys): the first entry of
    :data:`PRECISION_FALLBACK` whose :data:`PRECISION_KEYS` key is in ``keys``, or
    ``None`` when there is none (the chip does not support ``precision``; always the
    case for ``fp4`` on a chip without an ``fp4_flops_per_s`` figure).

    This is THE precision-fallback rule; every peak-rate look-up should go through it.

    Example::

        >>> rate_precision("fp8", {"bf16_flops_per_s"})
        'bf16'
        >>> rate_precision("fp4", {"fp8_flops_per_s", "bf16_flops_per_s"}) is None
        True
    """
    if precision not in PRECISION_FALLBACK:
        raise ValueError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
    for q in PRECISION_FALLBACK[precision]:
        if PRECISION_KEYS[q] in keys:
            return q
    return None


def unsupported_precision_error(chip: str, precision: str, supported: list[str]) -> ValueError:
    """The error for a peak-rate request at a precision the chip has no rate for."""
    return ValueError(
        f"precision {precision!r} is not supported by chip {chip!r} "
        f"(supported: {', '.join(supported) or 'none'})"
    )


MEMORY_LEVELS: tuple[str, ...] = ("sram", "dram")
"""Memory levels: on-chip SRAM (or L2 / last-level cache), then off-chip DRAM
(HBM, GDDR or LPDDR; the kind is in ``dram_type``)."""

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


# --------------------------------------------------------------------------------------
# Sourced figures
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Figure:
    """One sourced number: ``best`` with ``low``/``high`` (equal to ``best`` unless it is
    an estimate), its unit, its source and confidence."""

    key: str
    best: float
    low: float
    high: float
    unit: str
    source: str
    confidence: str
    formula: str = ""

    def pick(self, which: str = "best") -> float:
        return {"best": self.best, "low": self.low, "high": self.high}[which]

    @property
    def is_estimate(self) -> bool:
        return self.low != self.high or self.confidence == "estimate"


def _where(path: str, entry: str, key: str | None = None) -> str:
    return f"{path}: [{entry}]" + (f" field '{key}'" if key else "")


def parse_figure(
    raw: Any,
    key: str,
    *,
    path: str,
    entry: str,
    sources: Mapping[str, str],
    allowed: tuple[float, float] = (0.0, math.inf),
) -> Figure:
    """Validate one catalog figure (an inline table) and return a :class:`Figure`."""
    where = _where(path, entry, key)
    unit = unit_of(key)
    if unit is None:
        raise CatalogError(
            f"{where}: key has no unit suffix; numeric keys must end with one of "
            f"{', '.join(UNIT_SUFFIXES)}"
        )
    if isinstance(raw, bool) or not isinstance(raw, (Mapping, int, float)):
        raise CatalogError(
            f"{where}: expected an inline table "
            "{{ value = ..., source = ..., confidence = ... }}, got {raw!r}"
        )
    if not isinstance(raw, Mapping):
        raise CatalogError(
            f"{where}: bare number {raw!r} has no source; write "
            f'{{ value = {raw!r}, source = "...", confidence = "vendor|derived|..." }}'
        )
    known = {"value", "best", "low", "high", "source", "confidence", "formula", "note"}
    unknown = set(raw) - known
    if unknown:
        raise CatalogError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(known)}")
    confidence = raw.get("confidence")
    if confidence not in CONFIDENCES:
        raise CatalogError(f"{where}: confidence {confidence!r} must be one of {CONFIDENCES}")
    source = raw.get("source")
    if not isinstance(source, str) or not source.strip():
        raise CatalogError(f"{where}: missing 'source' (every figure cites its source)")
    source_text = sources.get(source, source)
    if "value" in raw and "best" in raw:
        raise CatalogError(f"{where}: give either 'value' or 'best' (with low/high), not both")
    best = raw.get("value", raw.get("best"))
    if best is None:
        raise CatalogError(f"{where}: missing 'value' (or 'best' with 'low'/'high')")
    low = raw.get("low", best)
    high = raw.get("high", best)
    if confidence == "estimate" and ("low" not in raw or "high" not in raw):
        raise CatalogError(f"{where}: an estimate must give 'low', 'best' and 'high'")
    if confidence == "derived" and not raw.get("formula"):
        raise CatalogError(f"{where}: a derived figure must give its 'formula'")
    vals = {}
    for name, v in (("low", low), ("best", best), ("high", high)):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise CatalogError(f"{where}: {name} must be a number, got {v!r}")
        v = float(v)
        if not math.isfinite(v):
            raise CatalogError(f"{where}: {name} = {v} is not finite")
        lo, hi = allowed
        if not lo <= v <= hi:
            raise CatalogError(
                f"{where}: {name} = {v:g} {unit} is outside the allowed range [{lo:g}, {hi:g}]"
            )
        vals[name] = v
    if not vals["low"] <= vals["best"] <= vals["high"]:
        raise CatalogError(
            f"{where}: need low <= best <= high, got low={vals['low']:g}, "
            f"best={vals['best']:g}, high={vals['high']:g}"
        )
    return Figure(
        key,
        vals["best"],
        vals["low"],
        vals["high"],
        unit,
        source_text,
        confidence,
        str(raw.get("formula", "")),
    )


# --------------------------------------------------------------------------------------
# The Chip pytree
# --------------------------------------------------------------------------------------


@flax.struct.dataclass
class Chip:
    """A chip (or a purchase-unit-sized compute package such as a Dojo tile) as a pytree.

    Numeric fields are JAX leaves, so a stack of chips can be ``vmap``-ed and gradients
    taken with respect to any of them. The name is static.

    Attributes:
      peak_flops_per_s: dense peak rate per precision, shape ``(len(PRECISIONS),)``,
        FLOP/s (op/s for int8), after the precision fallback; 0.0 at a precision the
        chip does not support (no figure and no fallback, e.g. fp4 before Blackwell).
      mem_bytes: capacity per memory level ``(sram, dram)``, byte.
      mem_bytes_per_s: bandwidth per memory level ``(sram, dram)``, byte/s.
      scaleup_bytes_per_s: scale-up (NVLink-class) bandwidth per chip, one direction.
      scaleout_bytes_per_s: scale-out (NIC) bandwidth per chip, one direction.
      tdp_w: chip (or package) power, W.
      allin_power_w: IT power per chip including its share of host, network and
        storage; facility overhead (PUE) is applied at the site, W.
      price_usd: chip price, USD.
      allin_price_usd: installed price per chip including its share of server,
        network and storage, USD.
      name: catalog key (static).
    """

    peak_flops_per_s: jnp.ndarray
    mem_bytes: jnp.ndarray
    mem_bytes_per_s: jnp.ndarray
    scaleup_bytes_per_s: jnp.ndarray
    scaleout_bytes_per_s: jnp.ndarray
    tdp_w: jnp.ndarray
    allin_power_w: jnp.ndarray
    price_usd: jnp.ndarray
    allin_price_usd: jnp.ndarray
    name: str = flax.struct.field(pytree_node=False, default="")

    def peak(self, precision: str, strict: bool = False) -> jnp.ndarray:
        """Dense peak rate at ``precision`` (FLOP/s); 0.0 where the chip does not support
        it. With ``strict=True`` a concrete (non-traced) zero rate raises ValueError
        "precision 'fp4' is not supported by chip ..." instead."""
        if precision not in PRECISION_INDEX:
            raise ValueError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
        rate = self.peak_flops_per_s[..., PRECISION_INDEX[precision]]
        if strict and not isinstance(rate, Tracer) and not self.supports(precision):
            raise unsupported_precision_error(
                self.name or "<unnamed>", precision, self.supported_precisions()
            )
        return rate

    def supports(self, precision: str) -> bool:
        """Whether the chip has a positive peak rate at ``precision`` (own or fallback;
        for a stack of chips: every chip). Needs concrete values (not inside ``jit``)."""
        if precision not in PRECISION_INDEX:
            raise ValueError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
        if isinstance(self.peak_flops_per_s, Tracer):
            raise TypeError("Chip.supports needs concrete values; call it outside jit")
        rates = np.asarray(self.peak_flops_per_s)[..., PRECISION_INDEX[precision]]
        return bool(np.all(rates > 0))

    def supported_precisions(self) -> list[str]:
        """The precisions with a positive peak rate (concrete values only)."""
        return [p for p in PRECISIONS if self.supports(p)]

    def replace_fields(self, **kw: Any) -> Chip:
        """Return a copy with numeric fields overridden (values converted to arrays).
        Concrete values are checked with :func:`validate_chip` (tracers are not)."""
        for k in kw:
            if k not in CHIP_PYTREE_RANGES:
                raise CatalogError(
                    f"'{k}' is not a Chip field; fields: {', '.join(CHIP_PYTREE_RANGES)}"
                )
        new = dataclasses.replace(
            self, **{k: jnp.asarray(v, dtype=jnp.result_type(float)) for k, v in kw.items()}
        )
        return validate_chip(new)


#: Allowed range of each Chip pytree field (inclusive), per element, SI units.
CHIP_PYTREE_RANGES: dict[str, tuple[float, float]] = {
    "peak_flops_per_s": (0.0, 1e20),
    "mem_bytes": (0.0, 1e14),
    "mem_bytes_per_s": (1.0, 1e17),
    "scaleup_bytes_per_s": (0.0, 1e15),
    "scaleout_bytes_per_s": (0.0, 1e14),
    "tdp_w": (1e-3, 1e7),
    "allin_power_w": (1e-3, 1e8),
    "price_usd": (0.0, 1e10),
    "allin_price_usd": (0.0, 1e10),
}


def validate_chip(chip: Chip, what: str = "") -> Chip:
    """Check a Python-built (or overridden, or stacked) :class:`Chip` before tracing.

    Raises :class:`CatalogError` naming the chip, the field, the offending value and the
    allowed range for a non-finite, negative or out-of-range leaf, a wrong shape, or a
    chip with no positive peak rate. Leaves that are JAX tracers (inside ``jit``) are
    skipped: validate at the API boundary. Returns ``chip`` unchanged.

    Example::

        >>> try:
        ...     chip("h100").replace_fields(tdp_w=float("nan"))
        ... except CatalogError as e:
        ...     print(str(e).split(";")[0])
        chip 'h100_sxm': field 'tdp_w' = nan is not finite
    """
    name = what or chip.name or "<unnamed>"
    shapes = {
        "peak_flops_per_s": len(PRECISIONS),
        "mem_bytes": len(MEMORY_LEVELS),
        "mem_bytes_per_s": len(MEMORY_LEVELS),
    }
    for field, (lo, hi) in CHIP_PYTREE_RANGES.items():
        x = getattr(chip, field)
        if isinstance(x, Tracer):
            continue
        a = np.asarray(x, dtype=float)
        if field in shapes and (a.ndim == 0 or a.shape[-1] != shapes[field]):
            raise CatalogError(
                f"chip '{name}': field '{field}' has shape {a.shape}; the last "
                f"axis must have length {shapes[field]}"
            )
        bad = ~np.isfinite(a)
        if bad.any():
            raise CatalogError(
                f"chip '{name}': field '{field}' = {a[bad].flat[0]} is not finite; "
                f"allowed range [{lo:g}, {hi:g}] {_unit_of_field(field)}"
            )
        out = (a < lo) | (a > hi)
        if out.any():
            raise CatalogError(
                f"chip '{name}': field '{field}' = {a[out].flat[0]:g} is outside "
                f"the allowed range [{lo:g}, {hi:g}] {_unit_of_field(field)}"
            )
    peaks = getattr(chip, "peak_flops_per_s")
    if not isinstance(peaks, Tracer) and (np.max(np.asarray(peaks), axis=-1) <= 0).any():
        raise CatalogError(
            f"chip '{name}': field 'peak_flops_per_s' has no positive peak rate at any precision"
        )
    return chip


def _unit_of_field(field: str) -> str:
    return unit_of(field) or ("byte" if field == "mem_bytes" else "")


def stack_chips(chips: list[Chip]) -> Chip:
    """Stack chips along a new leading axis (for ``vmap``); the name becomes ``""``."""
    import jax

    unnamed = [dataclasses.replace(c, name="") for c in chips]
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *unnamed)


# --------------------------------------------------------------------------------------
# Catalog records
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ChipRecord:
    """A validated catalog entry: text fields plus sourced figures."""

    key: str
    text: Mapping[str, str]
    figures: Mapping[str, Figure]
    path: str

    @property
    def display_name(self) -> str:
        return self.text.get("name", self.key)

    def figure(self, key: str) -> Figure | None:
        return self.figures.get(key)

    def value(self, key: str, pick: str = "best", default: float | None = None) -> float:
        fig = self.figures.get(key)
        if fig is None:
            if default is None:
                raise KeyError(f"chip '{self.key}' has no field '{key}'")
            return default
        return fig.pick(pick)

    def rate_precision(self, precision: str) -> str | None:
        """The precision whose figure this chip runs ``precision`` at (itself, a
        fallback, or ``None`` when unsupported); see :func:`rate_precision`."""
        return rate_precision(precision, self.figures)

    def supports(self, precision: str) -> bool:
        """Whether the chip has a rate for ``precision`` (its own or a fallback's)."""
        return self.rate_precision(precision) is not None

    def supported_precisions(self) -> list[str]:
        """Precisions with a rate; a fallback one is written ``"fp8 (at its bf16 rate)"``."""
        out = []
        for p in PRECISIONS:
            q = self.rate_precision(p)
            if q is not None:
                out.append(p if q == p else f"{p} (at its {q} rate)")
        return out

    def peak(self, precision: str, pick: str = "best") -> float:
        """Dense peak rate at ``precision`` (after the fallback), FLOP/s. Raises
        ValueError "precision 'fp4' is not supported by chip 'h100_sxm' (supported:
        ...)" when the chip has no rate for it."""
        q = self.rate_precision(precision)
        if q is None:
            raise unsupported_precision_error(self.key, precision, self.supported_precisions())
        return self.value(PRECISION_KEYS[q], pick)

    def fallbacks(self) -> dict[str, str]:
        """For each precision the chip lacks but runs at another's rate, that precision.
        Unsupported precisions (no fallback, e.g. fp4) are not listed: see
        :meth:`supports`."""
        out = {}
        for p in PRECISIONS:
            q = self.rate_precision(p)
            if q is not None and q != p:
                out[p] = q
        return out

    def to_chip(self, pick: str = "best", **overrides: float) -> Chip:
        """Build the :class:`Chip` pytree using the ``pick`` (best/low/high) of every
        figure; ``overrides`` replace single fields (SI units, by catalog key)."""
        if pick not in PICKS:
            raise CatalogError(f"pick must be one of {PICKS}, got {pick!r}")
        for k, v in overrides.items():
            if k not in CHIP_FIELDS:
                raise CatalogError(
                    f"override '{k}' is not a chip field; known: {sorted(CHIP_FIELDS)}"
                )
            lo, hi = CHIP_FIELDS[k]
            if not (isinstance(v, (int, float)) and math.isfinite(v) and lo <= v <= hi):
                raise CatalogError(
                    f"override {k} = {v!r} is outside the allowed range [{lo:g}, {hi:g}]"
                )

        def val(key: str, default: float | None = None) -> float:
            if key in overrides:
                return float(overrides[key])
            return self.value(key, pick, default)

        keys = set(self.figures) | set(overrides)
        peaks = []
        for p in PRECISIONS:
            q = rate_precision(p, keys)
            peaks.append(0.0 if q is None else val(PRECISION_KEYS[q]))
        if max(peaks) <= 0:
            raise CatalogError(f"{self.path}: [chips.{self.key}] has no peak rate at any precision")
        dram_bw = val("dram_bytes_per_s")
        sram_bytes = val("sram_bytes", 0.0)
        # A chip without a separately listed on-chip bandwidth serves its SRAM at DRAM speed.
        sram_bw = val("sram_bytes_per_s", dram_bw)
        tdp = val("tdp_w")
        price = val("price_usd", 0.0)
        f = lambda x: jnp.asarray(x, dtype=jnp.result_type(float))  # noqa: E731
        chip = Chip(
            peak_flops_per_s=f(peaks),
            mem_bytes=f([sram_bytes, val("dram_bytes")]),
            mem_bytes_per_s=f([sram_bw, dram_bw]),
            scaleup_bytes_per_s=f(val("scaleup_bytes_per_s_per_dir", 0.0)),
            scaleout_bytes_per_s=f(val("scaleout_bytes_per_s_per_dir", 0.0)),
            tdp_w=f(tdp),
            allin_power_w=f(val("allin_power_w", tdp)),
            price_usd=f(price),
            allin_price_usd=f(val("allin_price_usd", price)),
            name=self.key,
        )
        return validate_chip(chip)


@dataclasses.dataclass(frozen=True)
class SystemRecord:
    """A system built from chips (a DGX node, an NVL72 rack, a Dojo tray, an ExaPOD)."""

    key: str
    text: Mapping[str, Any]
    figures: Mapping[str, Figure]
    path: str

    @property
    def chip(self) -> str:
        return str(self.text["chip"])

    @property
    def chips_per_system(self) -> int:
        return int(self.figures["chips_count"].best)

    def value(self, key: str, pick: str = "best", default: float | None = None) -> float:
        fig = self.figures.get(key)
        if fig is None:
            if default is None:
                raise KeyError(f"system '{self.key}' has no field '{key}'")
            return default
        return fig.pick(pick)


@dataclasses.dataclass(frozen=True)
class LinkRecord:
    """An interconnect (NVLink generation, InfiniBand NDR, Dojo mesh edge, ...)."""

    key: str
    text: Mapping[str, Any]
    figures: Mapping[str, Figure]
    path: str

    def value(self, key: str, pick: str = "best", default: float | None = None) -> float:
        fig = self.figures.get(key)
        if fig is None:
            if default is None:
                raise KeyError(f"link '{self.key}' has no field '{key}'")
            return default
        return fig.pick(pick)


#: Short names accepted wherever a chip name is.
ALIASES: dict[str, str] = {}


@dataclasses.dataclass
class Catalog:
    """All chips, systems and links; look-ups by key or alias with clear errors.
    ``link_defaults`` holds the ``[link_defaults]`` figures by key."""

    chips: dict[str, ChipRecord]
    systems: dict[str, SystemRecord]
    links: dict[str, LinkRecord]
    aliases: dict[str, str]
    sources: dict[str, str]
    link_defaults: dict[str, Figure] = dataclasses.field(default_factory=dict)

    def resolve(self, name: str) -> str:
        """Canonical chip key for ``name`` (a key or an alias, case-insensitive)."""
        n = name.strip().lower().replace("-", "_")
        if n in self.chips:
            return n
        if n in self.aliases:
            return self.aliases[n]
        raise CatalogError(
            f"unknown chip '{name}'; known chips: {', '.join(sorted(self.chips))}"
            f" (aliases: {', '.join(sorted(self.aliases))})"
        )

    def record(self, name: str) -> ChipRecord:
        return self.chips[self.resolve(name)]

    def chip(self, name: str, pick: str = "best", **overrides: float) -> Chip:
        """The :class:`Chip` pytree for ``name`` (``pick`` = best/low/high estimates)."""
        return self.record(name).to_chip(pick, **overrides)

    def system(self, name: str) -> SystemRecord:
        n = name.strip().lower().replace("-", "_")
        if n not in self.systems:
            raise CatalogError(
                f"unknown system '{name}'; known systems: {', '.join(sorted(self.systems))}"
            )
        return self.systems[n]

    def link(self, name: str) -> LinkRecord:
        n = name.strip().lower().replace("-", "_")
        if n not in self.links:
            raise CatalogError(
                f"unknown link '{name}'; known links: {', '.join(sorted(self.links))}"
            )
        return self.links[n]

    def merged(self, other: Catalog) -> Catalog:
        """This catalog with ``other``'s entries added or replacing same-named ones."""
        return Catalog(
            {**self.chips, **other.chips},
            {**self.systems, **other.systems},
            {**self.links, **other.links},
            {**self.aliases, **other.aliases},
            {**self.sources, **other.sources},
            {**self.link_defaults, **other.link_defaults},
        )


def _parse_entries(
    table: Mapping[str, Any],
    section: str,
    path: str,
    sources: Mapping[str, str],
    *,
    text_fields: tuple[str, ...],
    allowed: Mapping[str, tuple[float, float]] | None,
    extra_text: tuple[str, ...] = (),
    flag_fields: tuple[str, ...] = (),
) -> dict[str, tuple[dict, dict]]:
    out = {}
    if not isinstance(table, Mapping):
        raise CatalogError(f"{path}: [{section}] must be a table of entries")
    for key, body in table.items():
        entry = f"{section}.{key}"
        if not isinstance(body, Mapping):
            raise CatalogError(f"{_where(path, entry)}: must be a table")
        text, figs = {}, {}
        for k, v in body.items():
            if k in flag_fields:
                if not isinstance(v, bool):
                    raise CatalogError(
                        f"{_where(path, entry, k)}: must be true or false, got {v!r}"
                    )
                text[k] = v
                continue
            if k in text_fields or k in extra_text:
                if not isinstance(v, (str, list)):
                    raise CatalogError(f"{_where(path, entry, k)}: must be text, got {v!r}")
                text[k] = v
                continue
            if allowed is not None and k not in allowed:
                hint = (
                    "key has no unit suffix (numeric keys end with one of "
                    f"{', '.join(UNIT_SUFFIXES)}) and is an "
                    if unit_of(k) is None
                    else ""
                )
                raise CatalogError(
                    f"{_where(path, entry, k)}: {hint}unknown key; allowed numeric keys: "
                    f"{', '.join(sorted(allowed))}; text keys: {', '.join(text_fields)}"
                )
            rng = (allowed or {}).get(k, (0.0, math.inf))
            figs[k] = parse_figure(v, k, path=path, entry=entry, sources=sources, allowed=rng)
        out[key] = (text, figs)
    return out


def parse_catalog(data: Mapping[str, Any], path: str = "<memory>") -> Catalog:
    """Validate a parsed TOML mapping and build a :class:`Catalog`."""
    allowed_top = {"sources", "chips", "systems", "links", "link_defaults", "aliases", "meta"}
    unknown = set(data) - allowed_top
    if unknown:
        raise CatalogError(
            f"{path}: unknown top-level table(s) {sorted(unknown)}; allowed: {sorted(allowed_top)}"
        )
    sources = dict(data.get("sources", {}))
    for k, v in sources.items():
        if not isinstance(v, str):
            raise CatalogError(f"{path}: [sources] '{k}' must be text")
    chips = {}
    for key, (text, figs) in _parse_entries(
        data.get("chips", {}),
        "chips",
        path,
        sources,
        text_fields=CHIP_TEXT_FIELDS,
        allowed=CHIP_FIELDS,
    ).items():
        for req in REQUIRED_CHIP_FIELDS:
            if req not in figs:
                raise CatalogError(
                    f"{_where(path, 'chips.' + key, req)}: required field is missing"
                )
        if not any(k in figs for k in PRECISION_KEYS.values()):
            raise CatalogError(
                f"{_where(path, 'chips.' + key)}: needs a peak rate for at least one "
                f"precision ({', '.join(PRECISION_KEYS.values())})"
            )
        kind = text.get("kind", "gpu")
        if kind not in CHIP_KINDS:
            raise CatalogError(
                f"{_where(path, 'chips.' + key, 'kind')}: {kind!r} must be one of {CHIP_KINDS}"
            )
        chips[key] = ChipRecord(key, text, figs, path)
    systems = {}
    for key, (text, figs) in _parse_entries(
        data.get("systems", {}),
        "systems",
        path,
        sources,
        text_fields=SYSTEM_TEXT_FIELDS,
        allowed=None,
    ).items():
        if "chip" not in text:
            raise CatalogError(
                f"{_where(path, 'systems.' + key, 'chip')}: required field is missing"
            )
        if "chips_count" not in figs:
            raise CatalogError(
                f"{_where(path, 'systems.' + key, 'chips_count')}: required field is missing"
            )
        systems[key] = SystemRecord(key, text, figs, path)
    links = {}
    for key, (text, figs) in _parse_entries(
        data.get("links", {}),
        "links",
        path,
        sources,
        text_fields=LINK_TEXT_FIELDS,
        allowed=None,
        flag_fields=LINK_FLAG_FIELDS,
    ).items():
        links[key] = LinkRecord(key, text, figs, path)
    link_defaults = {}
    raw_defaults = data.get("link_defaults", {})
    if not isinstance(raw_defaults, Mapping):
        raise CatalogError(f"{path}: [link_defaults] must be a table of figures")
    for k, v in raw_defaults.items():
        if k not in LINK_DEFAULT_FIELDS:
            raise CatalogError(
                f"{_where(path, 'link_defaults', k)}: unknown key; allowed: "
                f"{', '.join(LINK_DEFAULT_FIELDS)}"
            )
        link_defaults[k] = parse_figure(
            v, k, path=path, entry="link_defaults", sources=sources, allowed=LINK_DEFAULT_FIELDS[k]
        )
    aliases = {}
    for a, target in dict(data.get("aliases", {})).items():
        aliases[a.lower()] = str(target)
    return Catalog(chips, systems, links, aliases, sources, link_defaults)


def _check_references(cat: Catalog, path: str) -> None:
    for a, target in cat.aliases.items():
        if target not in cat.chips:
            raise CatalogError(f"{path}: [aliases] '{a}' points to unknown chip '{target}'")
    for key, s in cat.systems.items():
        if s.chip not in cat.chips:
            raise CatalogError(
                f"{s.path}: [systems.{key}] field 'chip': unknown chip '{s.chip}'; "
                f"known chips: {', '.join(sorted(cat.chips))}"
            )
        for lk in ("link_scaleup", "link_scaleout"):
            if lk in s.text and s.text[lk] not in cat.links:
                raise CatalogError(
                    f"{s.path}: [systems.{key}] field '{lk}': unknown link "
                    f"'{s.text[lk]}'; known links: {', '.join(sorted(cat.links))}"
                )


def read_toml(
    path: str | Path,
    what: str,
    *,
    error: type[Exception] = ValueError,
    missing: type[Exception] = FileNotFoundError,
    missing_hint: str = "",
) -> dict:
    """Parse the TOML file at ``path`` (``~`` expanded). A missing file raises ``missing``
    ("<path>: <what> file not found<missing_hint>"), bad TOML raises ``error``
    ("<path>: not valid TOML: ..."); both name the file, never a parser traceback."""
    p = Path(path).expanduser()
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise missing(f"{p}: {what} file not found{missing_hint}") from None
    except tomllib.TOMLDecodeError as e:
        raise error(f"{p}: not valid TOML: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise path_error(p, e, f"{what} file") from None


def load_catalog_file(path: str | Path) -> Catalog:
    """Load and validate one catalog TOML file (references checked on merge)."""
    p = Path(path).expanduser()
    data = read_toml(p, "catalog", error=CatalogError, missing=CatalogError)
    return parse_catalog(data, str(p))


_BUILTIN: Catalog | None = None


def builtin_catalog_paths() -> list[Path]:
    d = resources.files("perfmodel") / "data"
    return sorted(Path(str(d)).glob("catalog_*.toml"))


def load_catalog(*extra: str | Path, builtin: bool = True) -> Catalog:
    """Load the built-in catalog, then each ``extra`` file on top of it (later files
    add chips or replace same-named entries). References are checked at the end."""
    global _BUILTIN
    cat = Catalog({}, {}, {}, {}, {})
    if builtin:
        if _BUILTIN is None:
            b = Catalog({}, {}, {}, {}, {})
            for p in builtin_catalog_paths():
                b = b.merged(load_catalog_file(p))
            _check_references(b, "built-in catalog")
            _BUILTIN = b
        cat = _BUILTIN
    for p in extra:
        cat = cat.merged(load_catalog_file(p))
    _check_references(cat, ", ".join(str(p) for p in extra) or "catalog")
    return cat


def chip(name: str, pick: str = "best", **overrides: float) -> Chip:
    """Shortcut: the built-in catalog's chip ``name`` as a pytree."""
    return load_catalog().chip(name, pick, **overrides)


def to_numpy(x: Any) -> np.ndarray:
    return np.asarray(x)
