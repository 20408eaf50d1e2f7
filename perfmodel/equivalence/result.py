"""An equivalence with its low/best/high range and the assumptions it rests on."""

from __future__ import annotations

import dataclasses

from perfmodel.hardware import Catalog


@dataclasses.dataclass(frozen=True)
class EquivResult:
    """An H100-equivalent with its range and the assumptions it rests on."""

    kind: str
    h100e: float
    h100e_low: float
    h100e_high: float
    assumptions: dict

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "h100e": self.h100e,
            "h100e_low": self.h100e_low,
            "h100e_high": self.h100e_high,
            "assumptions": self.assumptions,
        }


def _fig(cat: Catalog, key: str, field: str) -> dict:
    rec = cat.record(key)
    f = rec.figure(field)
    if f is None:
        return {"best": None, "low": None, "high": None, "source": "not in catalog"}
    return {
        "best": f.best,
        "low": f.low,
        "high": f.high,
        "source": f.source,
        "confidence": f.confidence,
    }


def _chip_value(cat: Catalog, key: str, field: str, pick: str) -> float:
    chip = cat.chip(key, pick)
    v = float(getattr(chip, field))
    if v <= 0:
        raise ValueError(
            f"chip '{key}' has no {field} in the catalog (needed for this "
            "equivalence); add it or pass it explicitly"
        )
    return v
