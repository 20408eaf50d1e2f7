"""What evaluators share: the :class:`Context` (catalog, stand-in model functions, grid)
and small helpers (recorded errors, low/best/high ranges, catalog figures)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

from perfmodel import equivalence as eq
from perfmodel.hardware import Catalog


@dataclasses.dataclass
class Context:
    """What evaluators use: the catalog and (for tests) stand-in model functions."""

    catalog: Catalog
    curve_fn: Callable | None = None
    inference_fn: Callable | None = None
    grid: tuple[int, ...] = eq.DEFAULT_GRID
    #: the fleet planner for claims about a scenario's plan (perfmodel.claims.plans):
    #: (scenario, value_source) -> dict; the fleet layer sits above, so callers pass it
    plan_fn: Callable | None = None

    @property
    def kw(self) -> dict:
        return {"curve_fn": self.curve_fn, "grid": self.grid, "catalog": self.catalog}

    @property
    def ikw(self) -> dict:
        return {"curve_fn": self.inference_fn, "grid": self.grid, "catalog": self.catalog}


#: What the models raise for inputs they cannot evaluate (a workload that does not fit a
#: chip's memory, a precision the chip lacks, an unknown catalog key, limits no layout
#: meets): :func:`_recorded` notes these with the claim. Any other exception is a bug in
#: perfmodel and propagates rather than becoming a blank cell.
MODEL_ERRORS: tuple[type[Exception], ...] = (ValueError, KeyError)


def _recorded(errors: list[str], label: str, fn: Callable, *a, **kw):
    """``fn(*a, **kw)``, or None with ``"label: ErrorType: message"`` appended to
    ``errors`` when the model raises one of :data:`MODEL_ERRORS`."""
    try:
        return fn(*a, **kw)
    except MODEL_ERRORS as e:
        errors.append(f"{label}: {type(e).__name__}: {e}")
        return None


def _range(fn: Callable) -> dict[str, float]:
    return {p: float(fn(p)) for p in ("low", "best", "high")}


def _lohi(r: Mapping[str, float]) -> tuple[float, float]:
    v = [x for x in r.values() if x is not None]
    return min(v), max(v)


def _fig(cat: Catalog, chip: str, field: str) -> dict:
    f = cat.record(chip).figure(field)
    if f is None:
        raise KeyError(f"chip {chip!r} has no figure {field!r}")
    return {"low": f.low, "best": f.best, "high": f.high}


def _opp(p: str) -> str:
    return {"low": "high", "best": "best", "high": "low"}[p]
