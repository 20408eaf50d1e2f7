"""Fleet-planning problem: scenario TOML schema, validation, value curves and the LP.

A *scenario* (TOML, see ``perfmodel/data/scenarios/tesla-2024.toml`` for a commented
example) describes periods (quarters), sites, chip offers, the existing fleet, capex
budgets, ratio and policy constraints and the workloads the fleet serves. It is parsed
and validated by :func:`load_scenario` into a :class:`Scenario` (plain Python, names and
sources), which :func:`build_problem` turns into a :class:`Problem` (a pytree of float64
arrays; names static) that :func:`build_lp` turns into the :class:`~perfmodel.fleet.lp.LP`.

Schema (all keys lower case; ``[...]`` = per-period list or a scalar broadcast to all
periods; every number may carry ``_low``/``_high`` siblings, used by sensitivity draws)::

    [scenario]  name, description, start = "2024Q1", quarters = 8,
                objective = "max-h100e" | "min-cost", target_h100e, target_period,
                pick = "best"|"low"|"high", cost_tiebreak_per_usd (H100e-quarters per USD)
    [[workloads]]  name (perfmodel.workloads preset), weight > 0 (weights are normalised)
    [sites.KEY]    name, power_mw [..] >= 0 (facility power available), pue in [1, 3],
                   cooling = "air"|"liquid", racks >= 0 (floor space, racks),
                   own_share_min in [0, 1] and own_share_from (period): min share of the
                   site's IT power drawn by own (``own = true``) hardware, sources
    [offers.KEY]   chip (catalog key), unit (text), chips_per_unit > 0, unit_price_usd > 0,
                   unit_power_w > 0 (all-in IT power of one unit), racks_per_unit >= 0,
                   cooling = "air"|"liquid" (required), earliest (period), lead_quarters >= 0
                   (earliest delivery is also start + lead), supply_units [..] >= 0 (per
                   period, all sites together), sites = [...] (allowed sites, default all),
                   own (bool), counts (bool, default true: counts toward H100e), sources
    [[events]]     offer, units > 0, period, delay_quarters >= 0: moves supply of `units`
                   from `period` to `delay_quarters` later (e.g. the 12k-H100 diversion)
    [[existing]]   offer, site, chips >= 0: installed at the start
    [budget]       capex_usd = { "2024" = ..., "2025" = ... } per calendar year (USD)
    [[ratios]]     site (key or "*"), numerator = [offers], denominator = [offers],
                   min_ratio >= 0, from (period): chips(numerator) >= min_ratio x chips(denominator)

Model (units inside: MW for power rows, M$ for capex rows, chips, H100e):

* ``buy[k,s,t]`` units of offer k delivered to site s in quarter t (integer in the exact
  problem); paid in the calendar year of delivery; online from the quarter of delivery.
* installed chips ``n[k,s,t] = chips_per_unit_k (existing_units[k,s] + sum_{tau<=t} buy[k,s,tau])``.
* value ``V_ks(n) = sum_w weight_w * H100e_w(chip_k, n)`` (H100e delivered by n chips of
  kind k in one cluster at site s, from :func:`perfmodel.equivalence.h100e_curve`),
  replaced by its concave piecewise-linear interpolant on a few breakpoints over the
  site's feasible range; segment variables ``seg[k,s,t,j] in [0, len_j]`` with
  ``sum_j seg[k,s,t,j] <= n[k,s,t]``.
* ``max-h100e``: maximise ``sum_t sum_{k,s,j} slope_ksj seg[k,s,t,j]`` (H100e-quarters)
  minus a tiny cost tie-break; ``min-cost``: minimise capex subject to
  ``H100e(target_period) >= target_h100e``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from importlib import resources
from pathlib import Path
from typing import Any

import flax.struct
import jax
import jax.core
import jax.numpy as jnp
import numpy as np

from perfmodel.errors import InfeasibleError, InputError
from perfmodel.fleet.build import build_lp as build_lp
from perfmodel.fleet.build import row_blocks as row_blocks
from perfmodel.fleet.build import segment_slopes as segment_slopes
from perfmodel.fleet.build import var_index as var_index
from perfmodel.fleet.lp import LP, csr
from perfmodel.hardware import read_toml

__all__ = [
    "Scenario",
    "Site",
    "Offer",
    "Problem",
    "FleetInfeasible",
    "load_scenario",
    "parse_scenario",
    "scenario_names",
    "build_problem",
    "build_lp",
    "value_curve",
    "generate_problem",
    "relaxed_solve",
    "RelaxedSolution",
    "diagnose_infeasible",
    "precheck",
]

N_SEGMENTS = 4
_BP_FRACTIONS = (0.0, 1 / 16, 1 / 4, 1 / 2, 1.0)
_PERIOD_RE = re.compile(r"^(\d{4})Q([1-4])$")


class FleetInfeasible(InfeasibleError, ValueError):
    """The scenario has no feasible plan; the message names the binding constraint."""


# --------------------------------------------------------------------------------------
# Scenario (parsed, validated, names + numbers)
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Site:
    key: str
    name: str
    power_mw: tuple[float, ...]
    pue: float
    cooling: str
    racks: float
    own_share_min: float
    own_share_from: int  # period index (== number of periods: no policy)
    sources: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Offer:
    key: str
    chip: str
    unit: str
    chips_per_unit: float
    unit_price_usd: float
    unit_price_usd_low: float
    unit_price_usd_high: float
    unit_power_w: float
    racks_per_unit: float
    cooling: str
    earliest: int
    lead_quarters: int
    supply_units: tuple[float, ...]
    sites: tuple[str, ...]
    own: bool
    counts: bool
    sources: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    periods: tuple[str, ...]
    sites: tuple[Site, ...]
    offers: tuple[Offer, ...]
    workloads: tuple[tuple[str, float], ...]
    existing: tuple[tuple[str, str, float], ...]  # (offer, site, chips)
    events: tuple[tuple[str, float, int, int], ...]  # (offer, units, period idx, delay)
    budget_usd: tuple[tuple[str, float], ...]  # (year, USD)
    ratios: tuple[tuple[str, tuple[str, ...], tuple[str, ...], float, int], ...]
    objective: str = "max-h100e"
    target_h100e: float = 0.0
    target_period: int = -1
    pick: str = "best"
    cost_tiebreak_per_usd: float = 1e-9
    value_mode: str = "capacity"
    path: str = "<memory>"

    @property
    def years(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p[:4] for p in self.periods))


def period_list(start: str, quarters: int) -> tuple[str, ...]:
    m = _PERIOD_RE.match(start)
    if not m:
        raise ValueError(f"scenario.start = {start!r} must look like '2024Q1'")
    y, q = int(m.group(1)), int(m.group(2)) - 1
    out = []
    for i in range(quarters):
        out.append(f"{y + (q + i) // 4}Q{(q + i) % 4 + 1}")
    return tuple(out)


def _num(
    where: str, v: Any, lo: float | None = None, hi: float | None = None, lo_open: bool = False
) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise InputError(f"{where} = {v!r} must be a number")
    x = float(v)
    if not math.isfinite(x):
        raise InputError(f"{where} = {v!r} must be finite")
    if lo is not None and (x < lo or (lo_open and x == lo)):
        raise InputError(
            f"{where} = {v!r} must be {'>' if lo_open else '>='} {lo:g}"
            + (f" and <= {hi:g}" if hi is not None else "")
        )
    if hi is not None and x > hi:
        raise InputError(
            f"{where} = {v!r} must be <= {hi:g}" + (f" and >= {lo:g}" if lo is not None else "")
        )
    return x


def _per_period(where: str, v: Any, periods: tuple[str, ...], lo: float = 0.0) -> tuple[float, ...]:
    if isinstance(v, list):
        if len(v) != len(periods):
            raise InputError(
                f"{where} has {len(v)} values but the scenario has {len(periods)} periods "
                f"({periods[0]}..{periods[-1]}); give one per period or a scalar"
            )
        return tuple(_num(f"{where}[{p}]", x, lo) for p, x in zip(periods, v))
    x = _num(where, v, lo)
    return tuple(x for _ in periods)


def _period_idx(where: str, v: Any, periods: tuple[str, ...], allow_before: bool = True) -> int:
    if not isinstance(v, str) or not _PERIOD_RE.match(v):
        raise InputError(f"{where} = {v!r} must be a quarter like '2024Q3'")
    if v in periods:
        return periods.index(v)
    if v < periods[0] and allow_before:
        return 0
    if v > periods[-1]:
        return len(periods)
    raise InputError(f"{where} = {v!r} must be within {periods[0]}..{periods[-1]}")


def _check_keys(where: str, table: Any, allowed: set[str]) -> None:
    if not isinstance(table, dict):
        raise InputError(where, table, "a table (e.g. [" + where.split("[")[0] + "] or { ... })")
    for k in table:
        base = re.sub(r"_(low|high)$", "", k)
        if k not in allowed and base not in allowed:
            raise ValueError(f"{where}.{k}: unknown field (allowed: {', '.join(sorted(allowed))})")


def _int(where: str, v: Any, lo: int, hi: int) -> int:
    """An integer field: a TOML integer in [lo, hi] (2.5, "3" and true are rejected)."""
    if isinstance(v, bool) or not isinstance(v, int):
        raise InputError(where, v, f"an integer in [{lo}, {hi}]")
    if not lo <= v <= hi:
        raise InputError(where, v, f"an integer in [{lo}, {hi}]")
    return int(v)


def _bool(where: str, v: Any) -> bool:
    """A boolean field: a TOML boolean (``own = "false"`` is an error, not true)."""
    if not isinstance(v, bool):
        raise InputError(where, v, "a TOML boolean: true or false (no quotes)")
    return v


def _array(where: str, v: Any) -> list:
    """An array of tables ([[where]]) or of values."""
    if not isinstance(v, list):
        raise InputError(where, v, f"an array (e.g. [[{where}]] tables or [...])")
    return v


def _str(where: str, v: Any) -> str:
    if not isinstance(v, str):
        raise InputError(where, v, "a string")
    return v


def _known_workloads() -> tuple[str, ...]:
    from perfmodel.workloads import WORKLOAD_NAMES

    return tuple(WORKLOAD_NAMES)


def _sources(v: Any) -> tuple[str, ...]:
    if v is None:
        return ()
    if isinstance(v, str):
        return (v,)
    return tuple(str(x) for x in v)


def _known_chips() -> set[str]:
    keys = set(_STANDIN_BF16_TFLOPS)
    try:
        from perfmodel.hardware import load_catalog

        cat = load_catalog()
        keys |= set(cat.chips) | set(getattr(cat, "aliases", {}) or {})
    except Exception:  # catalog mid-edit: fall back to the stand-in table
        pass
    return keys


def parse_scenario(data: dict, path: str = "<memory>") -> Scenario:
    """Validate a scenario mapping (as read from TOML) and return a :class:`Scenario`.

    Raises ValueError naming the field, the value and the allowed range.
    """
    top = set(data) - {
        "scenario",
        "workloads",
        "sites",
        "offers",
        "events",
        "existing",
        "budget",
        "ratios",
        "sources",
        "notes",
    }
    if top:
        raise ValueError(f"{path}: unknown top-level table(s) {sorted(top)}")
    sc = data.get("scenario", {})
    _check_keys(
        "scenario",
        sc,
        {
            "name",
            "description",
            "start",
            "quarters",
            "objective",
            "target_h100e",
            "target_period",
            "pick",
            "cost_tiebreak_per_usd",
            "value_mode",
            "sources",
            "notes",
        },
    )
    quarters = _int("scenario.quarters", sc.get("quarters", 8), 1, 40)
    start = sc.get("start", "2024Q1")
    if not isinstance(start, str) or not _PERIOD_RE.match(start):
        raise InputError("scenario.start", start, 'a quarter string like "2024Q1"')
    periods = period_list(start, quarters)
    objective = sc.get("objective", "max-h100e")
    if objective not in ("max-h100e", "min-cost"):
        raise ValueError(f"scenario.objective = {objective!r} must be 'max-h100e' or 'min-cost'")
    pick = sc.get("pick", "best")
    if pick not in ("best", "low", "high"):
        raise ValueError(f"scenario.pick = {pick!r} must be 'best', 'low' or 'high'")
    value_mode = sc.get("value_mode", "capacity")
    if value_mode not in ("capacity", "job"):
        raise ValueError(f"scenario.value_mode = {value_mode!r} must be 'capacity' or 'job'")
    target = _num("scenario.target_h100e", sc.get("target_h100e", 0.0), 0)
    tp = sc.get("target_period", periods[-1])
    target_period = _period_idx("scenario.target_period", tp, periods, allow_before=False)
    if target_period >= len(periods):
        raise ValueError(
            f"scenario.target_period = {tp!r} must be within {periods[0]}..{periods[-1]}"
        )

    # workloads
    wl = _array("workloads", data.get("workloads", [{"name": "gpt3-175b", "weight": 1.0}]))
    workloads = []
    known_wl = _known_workloads()
    for i, w in enumerate(wl):
        _check_keys(f"workloads[{i}]", w, {"name", "weight", "sources"})
        name = w.get("name")
        if not isinstance(name, str) or name.strip().lower().replace("_", "-") not in known_wl:
            raise InputError(
                f"workloads[{i}].name", name, f"a workload preset ({', '.join(known_wl)})"
            )
        workloads.append(
            (w["name"], _num(f"workloads[{i}].weight", w.get("weight", 1.0), 0, lo_open=True))
        )
    if not workloads:
        raise ValueError("workloads: need at least one workload")
    tot = sum(x for _, x in workloads)
    workloads = tuple((n, x / tot) for n, x in workloads)

    # sites
    sites_raw = data.get("sites", {})
    _check_keys("sites", sites_raw, set(sites_raw) if isinstance(sites_raw, dict) else set())
    if not sites_raw:
        raise ValueError("sites: need at least one [sites.KEY] table")
    sites = []
    for key, s in sites_raw.items():
        w = f"sites.{key}"
        _check_keys(
            w,
            s,
            {
                "name",
                "power_mw",
                "pue",
                "cooling",
                "racks",
                "own_share_min",
                "own_share_from",
                "sources",
                "notes",
            },
        )
        if "power_mw" not in s:
            raise ValueError(f"{w}.power_mw is missing (facility power available per period, MW)")
        cooling = s.get("cooling", "air")
        if cooling not in ("air", "liquid"):
            raise ValueError(f"{w}.cooling = {cooling!r} must be 'air' or 'liquid'")
        share = _num(f"{w}.own_share_min", s.get("own_share_min", 0.0), 0, 1)
        sfrom = (
            _period_idx(f"{w}.own_share_from", s.get("own_share_from", periods[0]), periods)
            if share > 0
            else len(periods)
        )
        sites.append(
            Site(
                key=key,
                name=str(s.get("name", key)),
                power_mw=_per_period(f"{w}.power_mw", s["power_mw"], periods),
                pue=_num(f"{w}.pue", s.get("pue", 1.3), 1.0, 3.0),
                cooling=cooling,
                racks=_num(f"{w}.racks", s.get("racks", 1e6), 0),
                own_share_min=share,
                own_share_from=sfrom,
                sources=_sources(s.get("sources")),
            )
        )
    site_keys = tuple(s.key for s in sites)

    # offers
    offers_raw = data.get("offers", {})
    _check_keys("offers", offers_raw, set(offers_raw) if isinstance(offers_raw, dict) else set())
    if not offers_raw:
        raise ValueError("offers: need at least one [offers.KEY] table")
    known = _known_chips()
    offers = []
    for key, o in offers_raw.items():
        w = f"offers.{key}"
        _check_keys(
            w,
            o,
            {
                "chip",
                "unit",
                "chips_per_unit",
                "unit_price_usd",
                "unit_power_w",
                "racks_per_unit",
                "cooling",
                "earliest",
                "lead_quarters",
                "supply_units",
                "sites",
                "own",
                "counts",
                "sources",
                "notes",
            },
        )
        for req in ("chip", "chips_per_unit", "unit_price_usd", "unit_power_w"):
            if req not in o:
                raise ValueError(f"{w}.{req} is missing")
        if o["chip"] not in known:
            raise ValueError(
                f"{w}.chip = {o['chip']!r} is not a catalog chip (known: {', '.join(sorted(known))})"
            )
        price = _num(f"{w}.unit_price_usd", o["unit_price_usd"], 0, lo_open=True)
        plo = _num(f"{w}.unit_price_usd_low", o.get("unit_price_usd_low", price), 0, lo_open=True)
        phi = _num(f"{w}.unit_price_usd_high", o.get("unit_price_usd_high", price), 0, lo_open=True)
        if not plo <= price <= phi:
            raise ValueError(
                f"{w}: unit_price_usd_low <= unit_price_usd <= unit_price_usd_high must hold, "
                f"got {plo:g} <= {price:g} <= {phi:g}"
            )
        cooling = o.get("cooling", "air")
        if cooling not in ("air", "liquid"):
            raise ValueError(f"{w}.cooling = {cooling!r} must be 'air' or 'liquid'")
        osites = tuple(
            _str(f"{w}.sites[{j}]", x)
            for j, x in enumerate(_array(f"{w}.sites", o.get("sites", list(site_keys))))
        )
        for sk in osites:
            if sk not in site_keys:
                raise ValueError(
                    f"{w}.sites contains {sk!r}, not a site (sites: {', '.join(site_keys)})"
                )
        lead = _int(f"{w}.lead_quarters", o.get("lead_quarters", 0), 0, 40)
        offers.append(
            Offer(
                key=key,
                chip=o["chip"],
                unit=str(o.get("unit", "unit")),
                chips_per_unit=_num(
                    f"{w}.chips_per_unit", o["chips_per_unit"], 0, 1e6, lo_open=True
                ),
                unit_price_usd=price,
                unit_price_usd_low=plo,
                unit_price_usd_high=phi,
                unit_power_w=_num(f"{w}.unit_power_w", o["unit_power_w"], 0, 1e9, lo_open=True),
                racks_per_unit=_num(f"{w}.racks_per_unit", o.get("racks_per_unit", 0.0), 0),
                cooling=cooling,
                earliest=_period_idx(f"{w}.earliest", o.get("earliest", periods[0]), periods),
                lead_quarters=lead,
                supply_units=_per_period(f"{w}.supply_units", o.get("supply_units", 0.0), periods),
                sites=osites,
                own=_bool(f"{w}.own", o.get("own", False)),
                counts=_bool(f"{w}.counts", o.get("counts", True)),
                sources=_sources(o.get("sources")),
            )
        )
    offer_keys = tuple(o.key for o in offers)

    def _offer(where: str, v: Any) -> str:
        if v not in offer_keys:
            raise ValueError(f"{where} = {v!r} is not an offer (offers: {', '.join(offer_keys)})")
        return v

    events = []
    # supply after the events so far, per offer and period: an event moves supply that
    # is there (including supply earlier events delayed into its period), never creates it
    remaining = {o.key: list(o.supply_units) for o in offers}
    raw_events = list(enumerate(_array("events", data.get("events", []))))
    for i, e in raw_events:
        _check_keys(
            f"events[{i}]", e, {"offer", "units", "period", "delay_quarters", "note", "sources"}
        )
    by_period = sorted(
        raw_events,
        key=lambda ie: ie[1].get("period") if isinstance(ie[1].get("period"), str) else "",
    )
    for i, e in by_period:
        w = f"events[{i}]"
        off = _offer(f"{w}.offer", e.get("offer"))
        p = _period_idx(f"{w}.period", e.get("period"), periods, allow_before=False)
        if p >= len(periods):
            raise ValueError(
                f"{w}.period = {e.get('period')!r} must be within {periods[0]}..{periods[-1]}"
            )
        units = _num(f"{w}.units", e.get("units"), 0, lo_open=True)
        delay = _int(f"{w}.delay_quarters", e.get("delay_quarters", 1), 0, 40)
        sup = remaining[off]
        avail = sup[p]
        if units > avail + 1e-9:
            orig = offers[offer_keys.index(off)].supply_units[p]
            raise InputError(
                f"{w}.units",
                units,
                f"<= {avail:g}, the supply of offers.{off} left in {periods[p]} "
                f"(supply_units {orig:g}, after the earlier events); an event moves "
                "existing supply, it cannot create it",
            )
        sup[p] -= units
        if p + delay < len(periods):
            sup[p + delay] += units
        events.append((off, units, p, delay))

    existing = []
    for i, e in enumerate(_array("existing", data.get("existing", []))):
        w = f"existing[{i}]"
        _check_keys(w, e, {"offer", "site", "chips", "note", "sources"})
        off = _offer(f"{w}.offer", e.get("offer"))
        if e.get("site") not in site_keys:
            raise ValueError(
                f"{w}.site = {e.get('site')!r} is not a site (sites: {', '.join(site_keys)})"
            )
        existing.append((off, e["site"], _num(f"{w}.chips", e.get("chips"), 0)))

    bud = data.get("budget", {})
    _check_keys("budget", bud, {"capex_usd", "sources", "notes"})
    cap = bud.get("capex_usd", {})
    _check_keys("budget.capex_usd", cap, set(cap) if isinstance(cap, dict) else set())
    years = tuple(dict.fromkeys(p[:4] for p in periods))
    budget = []
    for y in years:
        if y not in cap:
            raise ValueError(
                f"budget.capex_usd.{y} is missing (capex budget for every year {', '.join(years)}, USD)"
            )
        budget.append((y, _num(f"budget.capex_usd.{y}", cap[y], 0)))
    extra = set(cap) - set(years) - {k for k in cap if re.sub(r"_(low|high)$", "", k) in years}
    if extra:
        raise ValueError(
            f"budget.capex_usd has year(s) {sorted(extra)} outside the periods ({years[0]}..{years[-1]})"
        )

    ratios = []
    for i, r in enumerate(_array("ratios", data.get("ratios", []))):
        w = f"ratios[{i}]"
        _check_keys(
            w, r, {"site", "numerator", "denominator", "min_ratio", "from", "note", "sources"}
        )
        site = r.get("site", "*")
        if site != "*" and site not in site_keys:
            raise ValueError(
                f"{w}.site = {site!r} must be a site or '*' (sites: {', '.join(site_keys)})"
            )
        num = tuple(_offer(f"{w}.numerator", x) for x in r.get("numerator", []))
        den = tuple(_offer(f"{w}.denominator", x) for x in r.get("denominator", []))
        if not num or not den:
            raise ValueError(f"{w}: numerator and denominator must each list at least one offer")
        ratios.append(
            (
                site,
                num,
                den,
                _num(f"{w}.min_ratio", r.get("min_ratio"), 0),
                _period_idx(f"{w}.from", r.get("from", periods[0]), periods),
            )
        )

    return Scenario(
        name=str(sc.get("name", Path(path).stem)),
        description=str(sc.get("description", "")),
        periods=periods,
        sites=tuple(sites),
        offers=tuple(offers),
        workloads=workloads,
        existing=tuple(existing),
        events=tuple(events),
        budget_usd=tuple(budget),
        ratios=tuple(ratios),
        objective=objective,
        target_h100e=target,
        target_period=target_period,
        pick=pick,
        cost_tiebreak_per_usd=_num(
            "scenario.cost_tiebreak_per_usd", sc.get("cost_tiebreak_per_usd", 1e-9), 0
        ),
        value_mode=value_mode,
        path=path,
    )


def scenario_dir() -> Path:
    return Path(str(resources.files("perfmodel") / "data" / "scenarios"))


def scenario_names() -> tuple[str, ...]:
    """Names of the built-in scenarios (``perfmodel/data/scenarios/*.toml``)."""
    return tuple(sorted(p.stem for p in scenario_dir().glob("*.toml")))


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load a built-in scenario by name (e.g. ``"tesla-2024"``) or a TOML file by path."""
    p = Path(name_or_path)
    if not p.suffix:
        cand = scenario_dir() / f"{name_or_path}.toml"
        if cand.exists():
            p = cand
    if not p.exists():
        raise ValueError(
            f"scenario {str(name_or_path)!r} not found: not a file and not a built-in "
            f"scenario ({', '.join(scenario_names())})"
        )
    data = read_toml(p, "scenario", missing=ValueError)
    return parse_scenario(data, str(p))


# --------------------------------------------------------------------------------------
# Value curves (H100e delivered by n chips of a kind in one cluster)
# --------------------------------------------------------------------------------------

# Stand-in only (used when neither perfmodel.equivalence nor perfmodel.training is
# available, and in tests): dense BF16 (int8 for the FSD computers) peak TFLOPS from
# /work/shared/reference/hardware.toml; the H100 reference is 989.4 (989.4 int8 -> 1978.9).
_STANDIN_BF16_TFLOPS = {
    "a100_80gb": 312.0,
    "h100_sxm": 989.4,
    "h100": 989.4,
    "h200": 989.4,
    "b200": 2250.0,
    "gb200": 2500.0,
    "mi300x": 1307.4,
    "d1": 362.0,
    "dojo_tile": 9050.0,
    "hw3": 144.0 / 2,
    "ai4": 250.0 / 2,
    "host_cpu": 0.0,
    "dojo_dip": 0.0,
}


def standin_h100e(chip_key: str, counts) -> np.ndarray:
    """STAND-IN value curve (tests and fallback only): spec ratio x n^0.98.

    ``H100e(n) = (peak_bf16(chip) / peak_bf16(H100)) * n^0.98`` -- a crude scaling
    efficiency that loses ~2% per decade of cluster size. Not the training model.
    """
    r = _STANDIN_BF16_TFLOPS.get(chip_key, 0.0) / 989.4
    n = np.asarray(counts, dtype=np.float64)
    return r * np.power(np.maximum(n, 0.0), 0.98)


_FINGERPRINT: str | None = None


def _model_fingerprint() -> str:
    """Hash of the model sources and data the value curves depend on (disk-cache key)."""
    global _FINGERPRINT
    if _FINGERPRINT is None:
        import hashlib

        root = Path(__file__).resolve().parents[1]
        h = hashlib.sha1()
        files = [
            root / f
            for f in (
                "equivalence.py",
                "training.py",
                "workloads.py",
                "interconnect.py",
                "roofline.py",
                "hardware.py",
            )
        ]
        files += sorted((root / "data").glob("catalog_*.toml")) + sorted(
            (root / "data").glob("workloads/*")
        )
        for f in files:
            if f.is_file():
                h.update(f.name.encode())
                h.update(f.read_bytes())
        _FINGERPRINT = h.hexdigest()[:16]
    return _FINGERPRINT


def _cache_path() -> Path:
    import os

    d = os.environ.get("PERFMODEL_CACHE_DIR") or str(Path.home() / ".cache" / "perfmodel")
    return Path(d) / "fleet_value_curves.json"


_DISK: dict | None = None


def _disk() -> dict:
    """The on-disk cache, read once per process."""
    global _DISK
    if _DISK is None:
        import json

        try:
            disk = json.loads(_cache_path().read_text())
        except Exception:  # noqa: BLE001  (absent or corrupt cache: start empty)
            disk = {}
        _DISK = disk
        return disk
    return _DISK


def _disk_get(key: str):
    return _disk().get(key)


def _disk_put(key: str, value) -> None:
    import json
    import os

    disk = _disk()
    disk[key] = value
    try:
        p = _cache_path()
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(disk))
        tmp.replace(p)
    except OSError:
        pass


@functools.lru_cache(maxsize=512)
def _curve_cached(
    chip_key: str, workload: str, counts: tuple[float, ...], pick: str, source: str, mode: str
) -> tuple[tuple[float, ...], str]:
    counts_arr = np.asarray(counts, dtype=np.float64)
    pos = counts_arr > 0
    out = np.zeros_like(counts_arr)
    label = f"training model via equivalence.model_curve ({mode} mode)"
    if source in ("auto", "equivalence"):
        key = f"{_model_fingerprint()}|{chip_key}|{workload}|{pick}|{mode}|" + ",".join(
            f"{c:.6g}" for c in counts
        )
        hit = _disk_get(key)
        if hit is not None:
            return tuple(hit), label
        try:
            from perfmodel.equivalence import REFERENCE_CHIP, curve_throughput, model_curve

            cx = model_curve(chip_key, workload, pick=pick, mode=mode)
            ch = model_curve(REFERENCE_CHIP, workload, pick="best", mode="capacity")
            t_ref = float(np.exp(np.max(np.asarray(ch.log_throughput) - np.asarray(ch.log_counts))))
            v = (
                np.asarray(curve_throughput(cx, jnp.asarray(counts_arr[pos])), dtype=np.float64)
                / t_ref
            )
            if np.all(np.isfinite(v)) and np.all(v >= 0):
                out[pos] = v
                _disk_put(key, [float(x) for x in out])
                return tuple(out), label
        except Exception as e:  # noqa: BLE001  (module missing, or chip/workload unsupported)
            if source == "equivalence":
                raise ValueError(f"value curve of {chip_key!r} on {workload!r} failed: {e}") from e
    out = standin_h100e(chip_key, counts_arr)
    return tuple(out), "STAND-IN spec ratio x n^0.98"


def value_curve(
    chip_key: str,
    workloads,
    counts,
    *,
    pick: str = "best",
    source: str = "auto",
    mode: str = "capacity",
) -> tuple[np.ndarray, str]:
    """Weighted H100e delivered by ``counts`` chips of ``chip_key`` at one site.

    ``V(n) = sum_w weight_w * T_w(chip, n) / t_ref_w`` where ``T_w`` is the training
    model's throughput curve (work units/s) from :func:`perfmodel.equivalence.model_curve`
    and ``t_ref_w`` the best per-chip H100 throughput on workload w (so 1 H100 at its best
    = 1 H100e). ``mode="capacity"`` (default): n chips may run several copies of the job
    on smaller slices (the fleet view behind "85k H100e"); ``mode="job"``: one job spans
    all n chips (fixed global batch: strong diminishing returns). ``source``: "auto"
    (training model, else the labelled stand-in), "equivalence" (training model or
    error) or "standin". Curves are cached on disk (``$PERFMODEL_CACHE_DIR`` or
    ``~/.cache/perfmodel``) keyed by a hash of the model sources. Returns (values
    [H100e], description of the source used).
    """
    counts_t = tuple(float(c) for c in np.asarray(counts, dtype=np.float64).ravel())
    total = np.zeros(len(counts_t))
    srcs = []
    for w, weight in workloads:
        if source == "standin":
            v, s = tuple(standin_h100e(chip_key, counts_t)), "STAND-IN spec ratio x n^0.98"
        else:
            v, s = _curve_cached(chip_key, w, counts_t, pick, source, mode)
        total += weight * np.asarray(v)
        srcs.append(s)
    return total, ", ".join(sorted(set(srcs)))


def concave_interpolant(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Values at ``xs`` of the least concave majorant of the points (xs, ys).

    Ensures segment slopes are non-increasing (required by the segment formulation).
    ``xs`` strictly increasing. Returns an array shaped like ``ys``.
    """
    hull: list[int] = []
    for i in range(len(xs)):
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            # drop b if it lies on or below the chord a -> i
            if (ys[b] - ys[a]) * (xs[i] - xs[a]) <= (ys[i] - ys[a]) * (xs[b] - xs[a]):
                hull.pop()
            else:
                break
        hull.append(i)
    return np.interp(xs, xs[hull], ys[hull])


# --------------------------------------------------------------------------------------
# Problem pytree
# --------------------------------------------------------------------------------------


@flax.struct.dataclass
class Problem:
    """Numeric fleet problem (float64 leaves; names and structure static).

    Shapes: K offers, S sites, T periods, Y years, J segments, R ratio rules.
    """

    power_avail_mw: jax.Array  # [S, T] facility power available, MW
    pue: jax.Array  # [S]
    racks: jax.Array  # [S] floor space, racks
    unit_price_usd: jax.Array  # [K] all-in price per purchase unit, USD
    unit_power_w: jax.Array  # [K] all-in IT power per unit, W
    chips_per_unit: jax.Array  # [K]
    racks_per_unit: jax.Array  # [K]
    supply_units: jax.Array  # [K, T] units deliverable per period (all sites), after events
    allowed: jax.Array  # [K, S, T] 1.0 if offer k may be delivered to site s in period t
    existing_units: jax.Array  # [K, S] units installed at the start
    budget_usd: jax.Array  # [Y] capex per calendar year, USD
    bp_chips: jax.Array  # [K, S, J+1] breakpoints of the value curve, chips
    bp_h100e: jax.Array  # [K, S, J+1] concave value at the breakpoints, H100e
    ratio_min: jax.Array  # [R]
    own_share_min: jax.Array  # [S]
    target_h100e: jax.Array  # [] (min-cost objective)
    period_weight: jax.Array  # [T] quarters per period (H100e-quarters weight)
    cost_tiebreak: jax.Array  # [] H100e-quarters per USD subtracted in max-h100e
    periods: tuple = flax.struct.field(pytree_node=False, default=())
    sites: tuple = flax.struct.field(pytree_node=False, default=())
    offers: tuple = flax.struct.field(pytree_node=False, default=())
    chip_keys: tuple = flax.struct.field(pytree_node=False, default=())
    years: tuple = flax.struct.field(pytree_node=False, default=())
    period_year: tuple = flax.struct.field(pytree_node=False, default=())  # [T] year index
    ratio_site: tuple = flax.struct.field(pytree_node=False, default=())  # [R] site idx or -1 (all)
    ratio_num: tuple = flax.struct.field(pytree_node=False, default=())  # [R] tuple of offer idx
    ratio_den: tuple = flax.struct.field(pytree_node=False, default=())
    ratio_from: tuple = flax.struct.field(pytree_node=False, default=())  # [R] period idx
    policy_from: tuple = flax.struct.field(
        pytree_node=False, default=()
    )  # [S] period idx (T = none)
    own: tuple = flax.struct.field(pytree_node=False, default=())  # [K] bool
    objective: str = flax.struct.field(pytree_node=False, default="max-h100e")
    target_period: int = flax.struct.field(pytree_node=False, default=-1)
    value_source: tuple = flax.struct.field(pytree_node=False, default=())  # [K] text
    name: str = flax.struct.field(pytree_node=False, default="")

    @property
    def shape(self) -> tuple[int, int, int]:
        """(K offers, S sites, T periods)."""
        return (len(self.offers), len(self.sites), len(self.periods))

    @property
    def n_segments(self) -> int:
        return int(np.shape(self.bp_chips)[-1]) - 1


def _supply_after_events(offers, events, periods) -> np.ndarray:
    K, T = len(offers), len(periods)
    sup = np.array([o.supply_units for o in offers], dtype=np.float64).reshape(K, T)
    keys = [o.key for o in offers]
    for off, units, p, delay in sorted(events, key=lambda e: e[2]):
        k = keys.index(off)
        if units > sup[k, p] + 1e-9:  # parse_scenario checks this; a hand-made Scenario may not
            raise InputError(
                f"event ({off}, {units:g} units, {periods[p]})",
                units,
                f"<= {sup[k, p]:g} units of {off} left in {periods[p]} (events cannot create supply)",
            )
        sup[k, p] -= units
        if p + delay < T:
            sup[k, p + delay] += units
    return np.maximum(sup, 0.0)  # only rounding below zero is left to clip


def build_problem(
    scenario: Scenario,
    *,
    objective: str | None = None,
    target_h100e: float | None = None,
    target_period: str | None = None,
    budget_scale: float = 1.0,
    price_scale: float = 1.0,
    power_scale: float = 1.0,
    pick: str | None = None,
    value_source: str = "auto",
    budget_usd: dict | None = None,
    value_mode: str | None = None,
) -> Problem:
    """Turn a validated :class:`Scenario` into a numeric :class:`Problem`.

    Overrides: ``objective`` ("max-h100e"|"min-cost"), ``target_h100e`` (H100e),
    ``target_period`` ("2024Q4"), ``budget_scale``/``price_scale``/``power_scale``
    (multipliers > 0), ``pick`` (value curve and price pick: "best"|"low"|"high"),
    ``value_source`` and ``value_mode`` (see :func:`value_curve`), ``budget_usd``
    ({year: USD}).
    """
    sc = scenario
    objective = objective or sc.objective
    if objective not in ("max-h100e", "min-cost"):
        raise ValueError(f"objective = {objective!r} must be 'max-h100e' or 'min-cost'")
    for nm, v in (
        ("budget_scale", budget_scale),
        ("price_scale", price_scale),
        ("power_scale", power_scale),
    ):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise ValueError(f"{nm} = {v!r} must be a finite number > 0")
    value_mode = value_mode or sc.value_mode
    if value_mode not in ("capacity", "job"):
        raise ValueError(f"value_mode = {value_mode!r} must be 'capacity' or 'job'")
    if value_source not in ("auto", "equivalence", "standin"):
        raise ValueError(
            f"value_source = {value_source!r} must be 'auto', 'equivalence' or 'standin'"
        )
    pick = pick or sc.pick
    if pick not in ("best", "low", "high"):
        raise ValueError(f"pick = {pick!r} must be 'best', 'low' or 'high'")
    periods, years = sc.periods, sc.years
    K, S, T = len(sc.offers), len(sc.sites), len(periods)
    site_keys = [s.key for s in sc.sites]
    offer_keys = [o.key for o in sc.offers]

    power = np.array([s.power_mw for s in sc.sites], dtype=np.float64).reshape(S, T) * power_scale
    pue = np.array([s.pue for s in sc.sites])
    racks = np.array([s.racks for s in sc.sites])
    liquid = np.array([s.cooling == "liquid" for s in sc.sites])
    price_key = {
        "best": "unit_price_usd",
        "low": "unit_price_usd_low",
        "high": "unit_price_usd_high",
    }[pick]
    price = np.array([getattr(o, price_key) for o in sc.offers]) * price_scale
    upow = np.array([o.unit_power_w for o in sc.offers])
    cpu = np.array([o.chips_per_unit for o in sc.offers])
    rpu = np.array([o.racks_per_unit for o in sc.offers])
    supply = _supply_after_events(sc.offers, sc.events, periods)
    allowed = np.zeros((K, S, T))
    for k, o in enumerate(sc.offers):
        first = max(o.earliest, o.lead_quarters)
        for s, site in enumerate(sc.sites):
            if site.key in o.sites and (o.cooling == "air" or liquid[s]):
                allowed[k, s, first:] = 1.0
    existing = np.zeros((K, S))
    for off, site, chips in sc.existing:
        k = offer_keys.index(off)
        existing[k, site_keys.index(site)] += chips / cpu[k]
    if budget_usd:
        bad = set(budget_usd) - set(years)
        if bad:
            raise ValueError(f"budget_usd years {sorted(bad)} must be among {years}")
    bmap = dict(sc.budget_usd) | dict(budget_usd or {})
    budget = np.array([bmap[y] for y in years]) * budget_scale

    if target_period is not None:
        if target_period not in periods:
            raise ValueError(
                f"target_period = {target_period!r} must be one of {periods[0]}..{periods[-1]}"
            )
        tp = periods.index(target_period)
    else:
        tp = sc.target_period
    target = sc.target_h100e if target_h100e is None else float(target_h100e)
    if objective == "min-cost" and not (math.isfinite(target) and target > 0):
        raise ValueError(f"target_h100e = {target!r} must be > 0 for objective 'min-cost'")

    # value-curve breakpoints over the site's feasible range for each kind
    J = N_SEGMENTS
    bp_chips = np.zeros((K, S, J + 1))
    bp_val = np.zeros((K, S, J + 1))
    sources = []
    for k, o in enumerate(sc.offers):
        total_supply = supply[k].sum()
        src = "not counted (counts = false)"
        for s in range(S):
            by_power = power[s].max() / max(pue[s] * upow[k] / 1e6, 1e-30)
            by_racks = racks[s] / rpu[k] if rpu[k] > 0 else np.inf
            can_buy = total_supply if allowed[k, s].any() else 0.0
            nmax_units = existing[k, s] + min(by_power, by_racks, can_buy)
            nmax = max(nmax_units * cpu[k], 0.0)
            if nmax <= 0:
                continue
            xs = np.array(_BP_FRACTIONS) * nmax
            if o.counts:
                vals, src = value_curve(
                    o.chip, sc.workloads, xs, pick=pick, source=value_source, mode=value_mode
                )
                vals = concave_interpolant(xs, np.maximum(vals, 0.0))
            else:
                vals = np.zeros_like(xs)
            bp_chips[k, s] = xs
            bp_val[k, s] = vals
        sources.append(src)

    R = len(sc.ratios)
    return Problem(
        power_avail_mw=jnp.asarray(power),
        pue=jnp.asarray(pue),
        racks=jnp.asarray(racks),
        unit_price_usd=jnp.asarray(price),
        unit_power_w=jnp.asarray(upow),
        chips_per_unit=jnp.asarray(cpu),
        racks_per_unit=jnp.asarray(rpu),
        supply_units=jnp.asarray(supply),
        allowed=jnp.asarray(allowed),
        existing_units=jnp.asarray(existing),
        budget_usd=jnp.asarray(budget),
        bp_chips=jnp.asarray(bp_chips),
        bp_h100e=jnp.asarray(bp_val),
        ratio_min=jnp.asarray(np.array([r[3] for r in sc.ratios], dtype=np.float64).reshape(R)),
        own_share_min=jnp.asarray(np.array([s.own_share_min for s in sc.sites])),
        target_h100e=jnp.asarray(float(target)),
        period_weight=jnp.ones(T),
        cost_tiebreak=jnp.asarray(float(sc.cost_tiebreak_per_usd)),
        periods=tuple(periods),
        sites=tuple(site_keys),
        offers=tuple(offer_keys),
        chip_keys=tuple(o.chip for o in sc.offers),
        years=tuple(years),
        period_year=tuple(years.index(p[:4]) for p in periods),
        ratio_site=tuple(-1 if r[0] == "*" else site_keys.index(r[0]) for r in sc.ratios),
        ratio_num=tuple(tuple(offer_keys.index(x) for x in r[1]) for r in sc.ratios),
        ratio_den=tuple(tuple(offer_keys.index(x) for x in r[2]) for r in sc.ratios),
        ratio_from=tuple(min(r[4], T) for r in sc.ratios),
        policy_from=tuple(min(s.own_share_from, T) for s in sc.sites),
        own=tuple(o.own for o in sc.offers),
        objective=objective,
        target_period=int(tp),
        value_source=tuple(sources),
        name=sc.name,
    )


# --------------------------------------------------------------------------------------
# Relaxed solve (HiGHS or the JAX PDHG solver)
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RelaxedSolution:
    x: np.ndarray
    objective: float
    status: str  # "optimal", "infeasible", "unbounded", "error: ..."
    y_ub: np.ndarray  # duals of A_ub rows (>= 0: objective gain per unit of rhs)
    method: str
    seconds: float
    iterations: int = 0
    # duals of A_eq rows (any sign), same convention as y_ub: d opt / d b_eq of the maximisation
    y_eq: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))


def relaxed_solve(lp: LP, method: str = "highs", *, model=None, **opts) -> RelaxedSolution:
    """Solve the LP relaxation: ``method`` = "highs" (HiGHS through
    :class:`perfmodel.fleet.highs.HighsLP`; pass ``model=`` a HighsLP of this LP to re-solve
    it in place) or "pdhg" (the JAX primal-dual solver :func:`perfmodel.fleet.pdhg.solve_lp`)."""
    import time

    t0 = time.perf_counter()
    if method == "highs":
        from perfmodel.fleet.highs import HighsLP

        model = model or HighsLP(lp)
        r = model.solve()
        return RelaxedSolution(
            r.x,
            r.objective,
            r.status,
            r.y_ub,
            "highs",
            time.perf_counter() - t0,
            r.iterations,
            y_eq=r.y_eq,
        )
    if method == "pdhg":
        from perfmodel.fleet.pdhg import STATUS_NAMES, solve_lp

        sol = solve_lp(lp, **opts)
        code = int(np.asarray(sol.status))
        status = (
            "optimal"
            if code == 0
            else ("infeasible" if code == 2 else STATUS_NAMES.get(code, f"status {code}"))
        )
        return RelaxedSolution(
            np.asarray(sol.x),
            float(sol.objective),
            status,
            np.asarray(sol.y_ub),
            "pdhg",
            time.perf_counter() - t0,
            int(np.asarray(sol.iterations)),
            y_eq=np.asarray(sol.y_eq),
        )
    raise ValueError(f"method = {method!r} must be 'highs' or 'pdhg'")


# --------------------------------------------------------------------------------------
# Infeasibility: obvious checks before solving, elastic LP to name the binding row
# --------------------------------------------------------------------------------------


def precheck(problem: Problem) -> list[str]:
    """Obvious infeasibilities visible before solving (existing fleet vs limits)."""
    msgs = []
    K, S, T = problem.shape
    ex = np.asarray(problem.existing_units)
    umw = np.asarray(problem.unit_power_w) / 1e6
    pue = np.asarray(problem.pue)
    P = np.asarray(problem.power_avail_mw)
    need = pue * (umw @ ex)  # [S]
    for s in range(S):
        for t in range(T):
            if need[s] > P[s, t] + 1e-9:
                msgs.append(
                    f"site {problem.sites[s]} has {P[s, t]:g} MW in {problem.periods[t]} but the existing "
                    f"fleet alone needs {need[s]:.1f} MW (IT power x PUE {pue[s]:g})"
                )
                break
    racks_need = np.asarray(problem.racks_per_unit) @ ex
    for s in range(S):
        if racks_need[s] > float(problem.racks[s]) + 1e-9:
            msgs.append(
                f"site {problem.sites[s]} has {float(problem.racks[s]):g} racks but the existing fleet "
                f"alone needs {racks_need[s]:.1f} racks"
            )
    return msgs


def diagnose_infeasible(problem: Problem, lp: LP | None = None) -> str:
    """Name the binding constraint(s) of an infeasible problem.

    Solves the elastic LP ``min sum_i e_i / scale_i`` s.t. ``A_ub x - e <= b_ub``, bounds,
    ``e >= 0`` with HiGHS; rows with ``e_i > 0`` are the ones that cannot hold. Returns a
    one-line message.
    """
    import scipy.sparse as sp
    from scipy.optimize import linprog

    pre = precheck(problem)
    if pre:
        return "; ".join(pre)
    lp = build_lp(problem) if lp is None else lp
    A = csr(lp.A_ub)
    b = np.asarray(lp.b_ub)
    m, n = len(b), len(np.asarray(lp.c))
    scale = np.maximum(abs(A).max(axis=1).toarray().ravel(), np.abs(b))
    scale = np.where(scale > 0, scale, 1.0)
    Ael = sp.hstack([A, -sp.identity(m, format="csr")]).tocsr()
    c = np.concatenate([np.zeros(n), 1.0 / scale])
    bounds = [
        (float(a), None if not np.isfinite(h) else float(h))
        for a, h in zip(np.asarray(lp.lo), np.asarray(lp.hi))
    ]
    bounds += [(0, None)] * m
    res = linprog(c, A_ub=Ael, b_ub=b, bounds=bounds, method="highs")
    if res.status != 0:
        return f"infeasible (elastic diagnosis failed: {res.message})"
    e = res.x[n:]
    bad = np.where(e / scale > 1e-7)[0]
    parts = []
    for i in bad[np.argsort(-(e / scale)[bad])][:3]:
        name = lp.row_names[i]
        kind, _, args = name.partition("[")
        args = args.rstrip("]").split(",")
        if kind == "target_h100e":
            parts.append(
                f"the target of {float(problem.target_h100e):,.0f} H100e in {args[0]} is out of reach "
                f"(short by {e[i]:,.0f} H100e within power, supply and budget)"
            )
        elif kind == "capex_musd":
            parts.append(f"the {args[0]} capex budget of ${b[i]:,.0f}M is short by ${e[i]:,.1f}M")
        elif kind == "power_mw":
            parts.append(
                f"site {args[0]} has {float(problem.power_avail_mw[problem.sites.index(args[0]), problem.periods.index(args[1])]):g} MW "
                f"in {args[1]} but needs {e[i]:.1f} MW more"
            )
        elif kind == "ratio":
            parts.append(
                f"ratio rule {args[0]} at {args[1]} cannot hold in {args[2]} (short by {e[i]:,.0f} chips)"
            )
        elif kind == "own_share":
            parts.append(
                f"the own-hardware share at site {args[0]} cannot be met in {args[1]} "
                f"(short by {e[i]:.2f} MW of own hardware)"
            )
        else:
            parts.append(f"constraint {name} is violated by {e[i]:.4g}")
    return (
        "; ".join(parts) if parts else "infeasible (no single violated row found by the elastic LP)"
    )


# --------------------------------------------------------------------------------------
# Generated problems (for tests and the benchmark suite)
# --------------------------------------------------------------------------------------


def generate_scenario(
    seed: int,
    n_offers: int = 5,
    n_sites: int = 2,
    n_periods: int = 4,
    *,
    ratio: bool = True,
    policy: bool = True,
) -> Scenario:
    """A random but plausible scenario (seeded): offers drawn around H100/H200/GB200/
    Dojo/AI4-like prices and powers, sites with ramping power, budgets that bind.

    Values come from the stand-in curve when built with ``value_source="standin"``.
    """
    if not (1 <= n_offers <= 12 and 1 <= n_sites <= 200 and 1 <= n_periods <= 40):
        raise ValueError(
            f"generate_scenario: n_offers={n_offers} in [1,12], n_sites={n_sites} in [1,200], "
            f"n_periods={n_periods} in [1,40] required"
        )
    rng = np.random.default_rng(seed)
    periods = period_list("2024Q1", n_periods)
    years = tuple(dict.fromkeys(p[:4] for p in periods))
    proto = [  # chip, chips/unit, price USD/unit, power W/unit, racks/unit, cooling, own
        ("h100_sxm", 8, 400e3, 11e3, 0.25, "air", False),
        ("h200", 8, 450e3, 11.5e3, 0.25, "air", False),
        ("gb200", 72, 3.3e6, 132e3, 1.0, "liquid", False),
        ("dojo_tile", 6, 2.7e6, 110e3, 1.0, "liquid", True),
        ("a100_80gb", 8, 150e3, 6.5e3, 0.25, "air", False),
        ("b200", 8, 500e3, 14.3e3, 0.25, "air", False),
        ("mi300x", 8, 300e3, 10e3, 0.25, "air", False),
        ("ai4", 1, 1.5e3, 300.0, 0.01, "air", True),
    ]
    offers = {}
    for i in range(n_offers):
        chip, cpu, price, pw, rpu, cool, own = proto[i % len(proto)]
        f = rng.uniform(0.85, 1.15)
        sup = rng.uniform(20, 400) * (8 / cpu) ** 0.5 * (10.0 if chip == "ai4" else 1.0)
        offers[f"o{i}_{chip}"] = {
            "chip": chip,
            "chips_per_unit": cpu,
            "unit_price_usd": float(price * f),
            "unit_power_w": float(pw * rng.uniform(0.9, 1.1)),
            "racks_per_unit": rpu,
            "cooling": cool,
            "earliest": periods[
                0 if chip == "ai4" else int(rng.integers(0, max(1, n_periods // 2)))
            ],
            "supply_units": [float(np.round(sup * rng.uniform(0.5, 1.5))) for _ in periods],
            "own": own,
            "counts": chip != "ai4",
        }
    sites = {}
    for s in range(n_sites):
        p0 = rng.uniform(5, 60)
        growth = rng.uniform(0, 0.4)
        sites[f"s{s}"] = {
            "power_mw": [float(p0 * (1 + growth) ** t) for t in range(n_periods)],
            "pue": float(rng.uniform(1.1, 1.5)),
            "cooling": "liquid" if rng.uniform() < 0.5 else "air",
            "racks": float(rng.uniform(100, 2000)),
        }
        if (
            policy
            and s == 0
            and sites["s0"]["cooling"] == "liquid"
            and any(o["chip"] == "dojo_tile" for o in offers.values())
            and rng.uniform() < 0.5
        ):
            sites[f"s{s}"]["own_share_min"] = 0.2
            sites[f"s{s}"]["own_share_from"] = periods[-1]
    okeys = list(offers)
    per_year = rng.uniform(0.2, 1.0) * 5e8 * n_sites
    data = {
        "scenario": {"name": f"gen-{seed}", "start": "2024Q1", "quarters": n_periods},
        "workloads": [{"name": "gpt3-175b", "weight": 1.0}],
        "sites": sites,
        "offers": offers,
        "budget": {"capex_usd": {y: float(per_year * rng.uniform(0.7, 1.3)) for y in years}},
        "existing": [
            {"offer": okeys[0], "site": "s0", "chips": float(8 * int(rng.integers(0, 200)))}
        ],
    }
    ai4 = [k for k in okeys if "ai4" in k]
    if ratio and ai4:
        gpus = [k for k in okeys if offers[k]["chip"] in ("h100_sxm", "h200", "b200")]
        if gpus:
            data["ratios"] = [
                {
                    "site": "*",
                    "numerator": ai4,
                    "denominator": gpus,
                    "min_ratio": 0.2,
                    "from": periods[0],
                }
            ]
    return parse_scenario(data, f"<generated seed={seed}>")


def generate_problem(
    seed: int, n_offers: int = 5, n_sites: int = 2, n_periods: int = 4, **kw
) -> Problem:
    """:func:`generate_scenario` built into a :class:`Problem` with the stand-in value curve."""
    return build_problem(
        generate_scenario(seed, n_offers, n_sites, n_periods, **kw), value_source="standin"
    )
