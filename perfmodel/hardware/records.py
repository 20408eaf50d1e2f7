"""Validated catalog entries: :class:`ChipRecord` (which builds the :class:`Chip`
pytree), :class:`SystemRecord` and :class:`LinkRecord`.

Plain Python: reading a record needs no JAX (the catalog commands never import it).
Only :meth:`ChipRecord.to_chip` builds a pytree, and imports the pytree module there.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from perfmodel.hardware.figures import Figure
from perfmodel.hardware.precision import (
    PRECISION_KEYS,
    PRECISIONS,
    rate_precision,
    unsupported_precision_error,
)
from perfmodel.hardware.schema import CHIP_FIELDS, PICKS, CatalogError

if TYPE_CHECKING:
    from perfmodel.hardware.pytree import Chip


@dataclasses.dataclass(frozen=True)
class _Record:
    """A catalog entry: its key, text fields and sourced figures, and the file it came
    from."""

    #: What the entry is, in the error for a missing field.
    KIND = "entry"

    key: str
    text: Mapping[str, Any]
    figures: Mapping[str, Figure]
    path: str

    def value(self, key: str, pick: str = "best", default: float | None = None) -> float:
        fig = self.figures.get(key)
        if fig is None:
            if default is None:
                raise KeyError(f"{self.KIND} '{self.key}' has no field '{key}'")
            return default
        return fig.pick(pick)


@dataclasses.dataclass(frozen=True)
class ChipRecord(_Record):
    """A validated catalog entry: text fields plus sourced figures."""

    KIND = "chip"

    @property
    def display_name(self) -> str:
        return self.text.get("name", self.key)

    def figure(self, key: str) -> Figure | None:
        return self.figures.get(key)

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
        # here, not at the top: the pytree module imports JAX (1.5 s), which reading
        # the catalog (`perfmodel chips`, `chip`, `systems`) does not need
        from perfmodel.hardware.pytree import build_chip

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
        return build_chip(
            self.key,
            peak_flops_per_s=peaks,
            mem_bytes=[sram_bytes, val("dram_bytes")],
            mem_bytes_per_s=[sram_bw, dram_bw],
            scaleup_bytes_per_s=val("scaleup_bytes_per_s_per_dir", 0.0),
            scaleout_bytes_per_s=val("scaleout_bytes_per_s_per_dir", 0.0),
            host_bytes_per_s=val("host_bytes_per_s_per_dir", 0.0),
            tdp_w=tdp,
            allin_power_w=val("allin_power_w", tdp),
            price_usd=price,
            allin_price_usd=val("allin_price_usd", price),
        )


@dataclasses.dataclass(frozen=True)
class SystemRecord(_Record):
    """A system built from chips (a DGX node, an NVL72 rack, a Dojo tray, an ExaPOD)."""

    KIND = "system"

    @property
    def chip(self) -> str:
        return str(self.text["chip"])

    @property
    def chips_per_system(self) -> int:
        return int(self.figures["chips_count"].best)


@dataclasses.dataclass(frozen=True)
class LinkRecord(_Record):
    """An interconnect (NVLink generation, InfiniBand NDR, Dojo mesh edge, ...)."""

    KIND = "link"
