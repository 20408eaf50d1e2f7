"""Scenario TOML schema and validation: :func:`parse_scenario`, :func:`load_scenario`.

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
                   site's IT power drawn by own (``own = true``) hardware,
                   own_share_enforced (bool, default true; false: an aim the plan
                   reports against, not a constraint), sources
    [offers.KEY]   chip (a key or alias of the catalog: the built-in one plus the
                   user's --catalog files), unit (text), chips_per_unit > 0, unit_price_usd > 0,
                   unit_power_w > 0 (all-in IT power of one unit), racks_per_unit in [0, 1e6],
                   cooling = "air"|"liquid" (required), earliest (period), lead_quarters >= 0
                   (earliest delivery is also start + lead), supply_units [..] >= 0 (per
                   period, all sites together), sites = [...] (allowed sites, default all),
                   own (bool), counts (bool, default true: counts toward H100e), sources
    [[events]]     offer, units > 0, period, delay_quarters >= 0: moves supply of `units`
                   from `period` to `delay_quarters` later (e.g. the 12k-H100 diversion)
    [[existing]]   offer, site, chips in [0, 1e9]: installed at the start
    [budget]       capex_usd = { "2024" = ..., "2025" = ... } per calendar year (USD)
    [[ratios]]     site (key or "*"), numerator = [offers], denominator = [offers],
                   min_ratio in [0, 1e6], from (period): chips(numerator) >= min_ratio x chips(denominator)

Demand, placement and total cost of ownership (:mod:`perfmodel.fleet.demand`)::

    [[workloads]]  key, kind = "training"|"inference", model = "forward"|"serving",
                   scenario (serving only) = "offline" (default) | "server" | "interactive"
                   (tokens/s at that MLPerf latency target),
                   demand [..] (training: H100e; inference: tokens/s or samples/s)
    [sites.KEY]    energy_usd_per_mwh [..] >= 0, utilisation in [0, 1]
    [offers.KEY]   lifetime_quarters >= 1, opex_usd_per_unit_year >= 0, serves = [keys]
    [[existing]]   retire (period)
    [scenario]     objective also "min-tco" | "max-h100e-per-tco"

"""

from __future__ import annotations

import dataclasses
import re
from importlib import resources
from pathlib import Path
from typing import Any

from perfmodel.equivalence import ChipSpec, chip_spec
from perfmodel.errors import InputError
from perfmodel.fleet.curves import _STANDIN_BF16_TFLOPS
from perfmodel.fleet.demand import (
    WorkloadSpec,
    legacy_workloads,
    offer_costs,
    parse_workloads,
    retire_index,
    site_costs,
)
from perfmodel.fleet.fields import PERIOD_RE as _PERIOD_RE
from perfmodel.fleet.fields import array as _array
from perfmodel.fleet.fields import boolean as _bool
from perfmodel.fleet.fields import check_keys as _check_keys
from perfmodel.fleet.fields import integer as _int
from perfmodel.fleet.fields import num as _num
from perfmodel.fleet.fields import per_period as _per_period
from perfmodel.fleet.fields import period_idx as _period_idx
from perfmodel.fleet.fields import string as _str
from perfmodel.hardware import Catalog, load_catalog, read_toml
from perfmodel.workloads import WORKLOAD_NAMES

#: Objectives: H100e-quarters within the budget; the capex, or the capex + opex (TCO), of
#: reaching the target or meeting the demand; H100e-quarters per TCO dollar.
OBJECTIVES = ("max-h100e", "min-cost", "min-tco", "max-h100e-per-tco")

__all__ = [
    "OBJECTIVES",
    "Scenario",
    "Site",
    "Offer",
    "parse_scenario",
    "load_scenario",
    "scenario_names",
    "scenario_dir",
    "period_list",
]


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
    energy_usd_per_mwh: tuple[float, ...] = ()  # per period (empty: 0)
    utilisation: float = 1.0  # average IT load / nameplate IT power
    #: False: own_share_min is an aim the plan reports against, not a constraint
    own_share_enforced: bool = True


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
    lifetime_quarters: int = 0  # 0: never retires within the horizon
    opex_usd_per_unit_year: float = 0.0
    serves: tuple[str, ...] = ()  # workload keys (empty: all the models can value)


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
    workload_specs: tuple[WorkloadSpec, ...] = ()  # with kind, model and demand
    existing_retire: tuple[int, ...] = ()  # per existing entry: period index (T: never)
    #: The catalog the offers' chips were validated against (None: the built-in one);
    #: :meth:`chip_specs` resolves them in it, never again in the built-in catalog.
    catalog: Catalog | None = dataclasses.field(default=None, compare=False, repr=False)

    def chip_specs(self) -> tuple[ChipSpec, ...]:
        """Each offer's chip resolved in :attr:`catalog` (see
        :class:`perfmodel.equivalence.ChipSpec`), in offer order."""
        return tuple(chip_spec(o.chip, self.catalog) for o in self.offers)

    @property
    def placement(self) -> bool:
        """True when the plan assigns chips to workloads (a demand or an inference workload)."""
        return any(w.demand is not None or w.kind == "inference" for w in self.workload_specs)

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


def _known_workloads() -> tuple[str, ...]:

    return tuple(WORKLOAD_NAMES)


def _sources(v: Any) -> tuple[str, ...]:
    if v is None:
        return ()
    if isinstance(v, str):
        return (v,)
    return tuple(str(x) for x in v)


def _known_chips(catalog: Catalog | None) -> set[str]:
    cat = load_catalog() if catalog is None else catalog
    return set(_STANDIN_BF16_TFLOPS) | set(cat.chips) | set(cat.aliases)


#: The keys of a ``[sites.KEY]`` table.
_SITE_KEYS = {
    "name",
    "power_mw",
    "pue",
    "cooling",
    "racks",
    "own_share_min",
    "own_share_from",
    "own_share_enforced",
    "energy_usd_per_mwh",
    "utilisation",
    "sources",
    "notes",
}
#: The keys of an ``[offers.KEY]`` table.
_OFFER_KEYS = {
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
    "lifetime_quarters",
    "opex_usd_per_unit_year",
    "serves",
    "sources",
    "notes",
}


def _keyed_tables(data: dict, section: str) -> dict:
    """The ``[section.KEY]`` tables of a scenario: a table of at least one table."""
    raw = data.get(section, {})
    _check_keys(section, raw, set(raw) if isinstance(raw, dict) else set())
    if not raw:
        raise ValueError(f"{section}: need at least one [{section}.KEY] table")
    return raw


def parse_scenario(
    data: dict, path: str = "<memory>", *, catalog: Catalog | None = None
) -> Scenario:
    """Validate a scenario mapping (as read from TOML) and return a :class:`Scenario`.
    Offers may name the chips of ``catalog`` (the built-in catalog with the user's
    files on top, :func:`perfmodel.hardware.load_catalog`; None: the built-in one),
    which the scenario then carries.

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
    if objective not in OBJECTIVES:
        raise InputError("scenario.objective", objective, " | ".join(OBJECTIVES))
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

    # workloads (kind, model, demand: perfmodel.fleet.demand)
    raw_wl = data.get("workloads", [{"name": "gpt3-175b", "weight": 1.0}])
    specs = parse_workloads(raw_wl, periods, _known_workloads())
    placement = any(w.demand is not None or w.kind == "inference" for w in specs)
    workloads = legacy_workloads(specs, placement)
    wl_keys = tuple(w.key for w in specs)

    # sites
    sites_raw = _keyed_tables(data, "sites")
    sites = []
    for key, s in sites_raw.items():
        w = f"sites.{key}"
        _check_keys(w, s, _SITE_KEYS)
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
        energy, util = site_costs(w, s, periods)
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
                own_share_enforced=_bool(
                    f"{w}.own_share_enforced", s.get("own_share_enforced", True)
                ),
                sources=_sources(s.get("sources")),
                energy_usd_per_mwh=energy,
                utilisation=util,
            )
        )
    site_keys = tuple(s.key for s in sites)

    # offers
    offers_raw = _keyed_tables(data, "offers")
    known = _known_chips(catalog)
    offers = []
    for key, o in offers_raw.items():
        w = f"offers.{key}"
        _check_keys(w, o, _OFFER_KEYS)
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
        life, opex, serves = offer_costs(w, o, wl_keys)
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
                racks_per_unit=_num(f"{w}.racks_per_unit", o.get("racks_per_unit", 0.0), 0, 1e6),
                cooling=cooling,
                earliest=_period_idx(f"{w}.earliest", o.get("earliest", periods[0]), periods),
                lead_quarters=lead,
                supply_units=_per_period(f"{w}.supply_units", o.get("supply_units", 0.0), periods),
                sites=osites,
                own=_bool(f"{w}.own", o.get("own", False)),
                counts=_bool(f"{w}.counts", o.get("counts", True)),
                sources=_sources(o.get("sources")),
                lifetime_quarters=life,
                opex_usd_per_unit_year=opex,
                serves=serves,
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

    existing, retire = [], []
    for i, e in enumerate(_array("existing", data.get("existing", []))):
        w = f"existing[{i}]"
        _check_keys(w, e, {"offer", "site", "chips", "retire", "note", "sources"})
        retire.append(retire_index(w, e, periods))
        off = _offer(f"{w}.offer", e.get("offer"))
        if e.get("site") not in site_keys:
            raise ValueError(
                f"{w}.site = {e.get('site')!r} is not a site (sites: {', '.join(site_keys)})"
            )
        existing.append((off, e["site"], _num(f"{w}.chips", e.get("chips"), 0, 1e9)))

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
                _num(f"{w}.min_ratio", r.get("min_ratio"), 0, 1e6),
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
        workload_specs=specs,
        existing_retire=tuple(retire),
        catalog=catalog,
    )


def scenario_dir() -> Path:
    return Path(str(resources.files("perfmodel") / "data" / "scenarios"))


def scenario_names() -> tuple[str, ...]:
    """Names of the built-in scenarios (``perfmodel/data/scenarios/*.toml``)."""
    return tuple(sorted(p.stem for p in scenario_dir().glob("*.toml")))


def scenario_path(name_or_path: str | Path, missing: type[Exception] = ValueError) -> Path:
    """The file of a built-in scenario (by name, e.g. ``"tesla-2024"``) or of a scenario
    path; ``missing`` (one line naming the built-in scenarios) when there is none."""
    p = Path(name_or_path)
    if not p.suffix:
        cand = scenario_dir() / f"{name_or_path}.toml"
        if cand.exists():
            p = cand
    if not p.exists():
        raise missing(
            f"scenario {str(name_or_path)!r} not found: not a file and not a built-in "
            f"scenario ({', '.join(scenario_names())})"
        )
    return p


def load_scenario(name_or_path: str | Path, *, catalog: Catalog | None = None) -> Scenario:
    """Load a built-in scenario by name (e.g. ``"tesla-2024"``) or a TOML file by path;
    its offers may name the chips of ``catalog`` (see :func:`parse_scenario`)."""
    p = scenario_path(name_or_path)
    data = read_toml(p, "scenario", missing=ValueError)
    return parse_scenario(data, str(p), catalog=catalog)
