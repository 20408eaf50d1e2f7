"""Budget equivalence: the H100e of the chips a budget buys, and the pure-price count."""

from __future__ import annotations

from typing import Unpack

from perfmodel.equivalence.definitions import (
    REFERENCE_CHIP,
    _catalog,
    _check_count,
    _check_pick,
)
from perfmodel.equivalence.model import CurveOptions
from perfmodel.equivalence.result import EquivResult, _chip_value, _fig
from perfmodel.equivalence.workload import (
    _count_assumptions,
    workload_equivalence,
)
from perfmodel.hardware import PICKS, Catalog


def h100_count_for_budget(
    budget_usd: float, price_usd: float | None = None, catalog: Catalog | None = None
) -> EquivResult:
    """Pure-price equivalence: H100s a budget buys at the all-in H100 price
    (``budget_usd / allin_price_usd``). Linear in the budget; the range comes from the
    catalog's all-in price range (or is a point if ``price_usd`` is given)."""
    b = float(_check_count("budget_usd", budget_usd))
    cat = _catalog(catalog)
    if price_usd is not None:
        p = float(_check_count("price_usd", price_usd))
        lo = hi = best = p
        src = "given"
    else:
        f = _fig(cat, REFERENCE_CHIP, "allin_price_usd")
        lo, best, hi, src = f["low"], f["best"], f["high"], f["source"]
    return EquivResult(
        "price",
        b / best,
        b / hi,
        b / lo,
        {
            "budget_usd": b,
            "h100_allin_price_usd": {"low": lo, "best": best, "high": hi},
            "workload": "none (price only)",
            "precision": "n/a",
            "scale": "linear in budget",
            "sources": {"h100_allin_price_usd": src},
        },
    )


def budget_equivalence(
    budget_usd: float,
    chip_key: str,
    workload,
    **opts: Unpack[CurveOptions],
) -> float:
    """H100e on ``workload`` of the chips ``budget_usd`` buys at ``chip_key``'s all-in
    price: ``h100e(X, budget / allin_price_usd(X))``. ``pick`` applies to performance;
    price is taken at the opposite end (low perf <-> high price).

    What holds (tested): exactly linear in the budget for X = H100 (identity); monotone
    non-decreasing in the budget for any X; exactly linear once both X and the H100 are past
    the top of the grid (proportional extrapolation), and in capacity mode once both curves
    have reached their best per-chip slice. It is NOT concave in general: in job mode it
    grows faster than linearly where the H100 curve flattens (fixed global batch)."""
    b = float(_check_count("budget_usd", budget_usd))
    cat = opts["catalog"] = _catalog(opts.get("catalog"))
    pick = opts.get("pick", "best")
    price_pick = {"low": "high", "best": "best", "high": "low"}[_check_pick(pick)]
    n = b / _chip_value(cat, chip_key, "allin_price_usd", price_pick)
    return workload_equivalence(chip_key, n, workload, **opts)


def budget_equivalence_range(budget_usd: float, chip_key: str, workload, **kw) -> EquivResult:
    """:func:`budget_equivalence` at low/best/high, with assumptions."""
    cat = _catalog(kw.pop("catalog", None))
    b = float(_check_count("budget_usd", budget_usd))
    v = {p: budget_equivalence(b, chip_key, workload, pick=p, catalog=cat, **kw) for p in PICKS}
    price = _fig(cat, chip_key, "allin_price_usd")
    n = b / _chip_value(cat, chip_key, "allin_price_usd", "best")
    a = _count_assumptions(cat, chip_key, n, v["best"], workload, kw)
    a.update(
        {
            "budget_usd": b,
            "allin_price_usd": price,
            "n_chips_range": {"low": b / price["high"], "best": n, "high": b / price["low"]},
            "pure_price_h100e": h100_count_for_budget(b, catalog=cat).h100e,
        }
    )
    return EquivResult("budget", v["best"], min(v.values()), max(v.values()), a)
