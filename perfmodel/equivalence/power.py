"""Power equivalence: the H100e of the chips a site of given power hosts."""

from __future__ import annotations

from typing import Unpack

from perfmodel.equivalence.definitions import (
    DEFAULT_PUE,
    PUE_RANGE,
    PUE_SOURCE,
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
from perfmodel.hardware import PICKS


def chips_for_power(power_w: float, allin_power_w: float, pue: float = DEFAULT_PUE) -> float:
    """Chips a site hosts: ``power_w / (pue * allin_power_w)`` (W, W, dimensionless)."""
    _check_count("power_w", power_w)
    _check_count("allin_power_w", allin_power_w)
    if not (1.0 <= float(pue) <= 3.0):
        raise ValueError(f"pue = {pue!r} must be in [1, 3]")
    return float(power_w) / (float(pue) * float(allin_power_w))


def power_equivalence(
    power_w: float,
    chip_key: str,
    workload,
    pue: float | None = None,
    **opts: Unpack[CurveOptions],
) -> float:
    """H100e on ``workload`` of the ``chip_key`` chips a site of ``power_w`` (W, at the
    meter) hosts: ``h100e(X, power_w / (pue * allin_power_w(X)))``. ``pue`` None: the
    default (1.3) for best and the range end opposite to performance for low/high."""
    cat = opts["catalog"] = _catalog(opts.get("catalog"))
    pick = opts.get("pick", "best")
    opp = {"low": "high", "best": "best", "high": "low"}[_check_pick(pick)]
    if pue is None:
        pue = {"low": PUE_RANGE[1], "best": DEFAULT_PUE, "high": PUE_RANGE[0]}[pick]
    n = chips_for_power(power_w, _chip_value(cat, chip_key, "allin_power_w", opp), pue)
    return workload_equivalence(chip_key, n, workload, **opts)


def power_equivalence_range(
    power_w: float, chip_key: str, workload, pue: float | None = None, **kw
) -> EquivResult:
    """:func:`power_equivalence` at low/best/high, with assumptions."""
    cat = _catalog(kw.pop("catalog", None))
    v = {
        p: power_equivalence(power_w, chip_key, workload, pue, pick=p, catalog=cat, **kw)
        for p in PICKS
    }
    pw = _fig(cat, chip_key, "allin_power_w")
    pue_best = DEFAULT_PUE if pue is None else pue
    n = chips_for_power(power_w, _chip_value(cat, chip_key, "allin_power_w", "best"), pue_best)
    a = _count_assumptions(cat, chip_key, n, v["best"], workload, kw)
    a.update(
        {
            "power_w": float(power_w),
            "allin_power_w": pw,
            "pue": pue_best
            if pue is not None
            else {"low": PUE_RANGE[1], "best": DEFAULT_PUE, "high": PUE_RANGE[0]},
            "pue_source": "given" if pue is not None else PUE_SOURCE,
            "n_chips_best": n,
        }
    )
    return EquivResult("power", v["best"], min(v.values()), max(v.values()), a)
