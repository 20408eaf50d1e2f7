"""Sourced figures: one catalog number (an inline table with value or best/low/high,
source and confidence), validated into a :class:`Figure`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from perfmodel.hardware.schema import CONFIDENCES, UNIT_SUFFIXES, CatalogError, unit_of


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
