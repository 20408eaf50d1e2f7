"""Claims and their verdicts: :class:`Claim`, :class:`ClaimResult`, the verdict names and
the comparison of a claimed figure with the model's range (:func:`compare`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

TOL = 0.10
VERDICTS = (
    "consistent",
    "overstated",
    "understated",
    "fits",
    "does not fit",
    "marginal",
    "plausible",
    "doubtful",
    "n/a",
)


@dataclasses.dataclass(frozen=True)
class Claim:
    id: str
    date: str
    speaker: str
    quote: str
    sources: tuple[str, ...]
    check: str
    params: Mapping[str, Any]


@dataclasses.dataclass
class ClaimResult:
    """One evaluated claim: model ``numbers`` (label -> value; None = not computed),
    ``verdict`` (one of :data:`VERDICTS`) with a one-line ``summary``, and ``assumptions``."""

    claim: Claim
    numbers: dict[str, Any]
    verdict: str
    summary: str
    assumptions: list[str]
    errors: list[str] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict:
        c = self.claim
        return {
            "id": c.id,
            "date": c.date,
            "speaker": c.speaker,
            "quote": c.quote,
            "sources": list(c.sources),
            "check": c.check,
            "params": dict(c.params),
            "numbers": self.numbers,
            "verdict": self.verdict,
            "summary": self.summary,
            "assumptions": self.assumptions,
            "errors": self.errors,
        }


def compare(claimed: float, low: float, high: float, tol: float = TOL) -> str:
    """``consistent`` if ``low (1 - tol) <= claimed <= high (1 + tol)``; else
    ``overstated`` (claimed above) or ``understated``."""
    if claimed > high * (1 + tol):
        return "overstated"
    if claimed < low * (1 - tol):
        return "understated"
    return "consistent"
