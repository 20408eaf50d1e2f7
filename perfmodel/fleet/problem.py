"""Fleet-planning problem: the numeric :class:`Problem` pytree, built from a validated
:class:`~perfmodel.fleet.schema.Scenario` (:mod:`perfmodel.fleet.schema`) and its value
curves (:mod:`perfmodel.fleet.curves`); its LP is built by :mod:`perfmodel.fleet.build`.

The path: a scenario TOML (its schema in :mod:`perfmodel.fleet.schema`) ->
:func:`load_scenario` -> :class:`Scenario` -> :func:`build_problem` -> :class:`Problem`
(float64 arrays, names static) -> :func:`build_lp` -> :class:`~perfmodel.fleet.lp.LP`.

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
  ``H100e(target_period) >= target_h100e``; ``min-tco``: capex + horizon opex.
* with demand (placement, :mod:`perfmodel.fleet.demand`): no segments; ``assign[k,t,w]``
  chips of kind k on workload w, ``sum_w assign <= chips in service`` (all sites),
  ``sum_k rate_kw assign[k,t,w] <= demand[t,w]`` (max objectives: value is
  ``weight_w x H100e``) or ``>=`` (min objectives); rates from
  :mod:`perfmodel.fleet.values`.
* units serve ``lifetime_quarters`` from delivery; existing units retire at ``retire``;
  ``max-h100e-per-tco`` is solved by Dinkelbach steps (:mod:`perfmodel.fleet.tco`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.core
import numpy as np

from perfmodel.errors import InfeasibleError, InputError, SolverError
from perfmodel.fleet.build import build_lp as build_lp
from perfmodel.fleet.build import existing_in_service
from perfmodel.fleet.build import row_blocks as row_blocks
from perfmodel.fleet.build import segment_slopes as segment_slopes
from perfmodel.fleet.build import var_index as var_index
from perfmodel.fleet.curves import concave_interpolant as concave_interpolant
from perfmodel.fleet.curves import standin_h100e as standin_h100e
from perfmodel.fleet.curves import value_curve as value_curve
from perfmodel.fleet.generated import generate_scenario as generate_scenario
from perfmodel.fleet.highs import HighsLP
from perfmodel.fleet.lp import LP, csr, split_row_name
from perfmodel.fleet.schema import OBJECTIVES
from perfmodel.fleet.schema import Offer as Offer
from perfmodel.fleet.schema import Scenario as Scenario
from perfmodel.fleet.schema import Site as Site
from perfmodel.fleet.schema import load_scenario as load_scenario
from perfmodel.fleet.schema import parse_scenario as parse_scenario
from perfmodel.fleet.schema import period_list as period_list
from perfmodel.fleet.schema import scenario_dir as scenario_dir
from perfmodel.fleet.schema import scenario_names as scenario_names
from perfmodel.fleet.values import cost_and_placement_leaves, frozen_leaf
from perfmodel.hardware import struct

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
    "relaxed_solve",
    "RelaxedSolution",
    "diagnose_infeasible",
    "precheck",
]

N_SEGMENTS = 4
_BP_FRACTIONS = (0.0, 1 / 16, 1 / 4, 1 / 2, 1.0)


class FleetInfeasible(InfeasibleError, ValueError):
    """The scenario has no feasible plan; the message names the binding constraint."""


# --------------------------------------------------------------------------------------
# Problem pytree
# --------------------------------------------------------------------------------------


#: A numeric leaf of :class:`Problem`: NumPy when concrete, JAX when traced or stacked.
Leaf = jax.Array | np.ndarray


@struct.dataclass
class Problem:
    """Numeric fleet problem (float64 leaves; names and structure static).

    :func:`build_problem` gives read-only NumPy leaves (planning a concrete problem runs
    no JAX program); under ``jit``/``vmap`` they are JAX arrays or tracers.

    Shapes: K offers, S sites, T periods, Y years, J segments, R ratio rules.
    """

    power_avail_mw: Leaf  # [S, T] facility power available, MW
    pue: Leaf  # [S]
    racks: Leaf  # [S] floor space, racks
    unit_price_usd: Leaf  # [K] all-in price per purchase unit, USD
    unit_power_w: Leaf  # [K] all-in IT power per unit, W
    chips_per_unit: Leaf  # [K]
    racks_per_unit: Leaf  # [K]
    supply_units: Leaf  # [K, T] units deliverable per period (all sites), after events
    allowed: Leaf  # [K, S, T] 1.0 if offer k may be delivered to site s in period t
    existing_units: Leaf  # [K, S] units installed at the start
    budget_usd: Leaf  # [Y] capex per calendar year, USD
    bp_chips: Leaf  # [K, S, J+1] breakpoints of the value curve, chips
    bp_h100e: Leaf  # [K, S, J+1] concave value at the breakpoints, H100e
    ratio_min: Leaf  # [R]
    own_share_min: Leaf  # [S]
    target_h100e: Leaf  # [] (min-cost objective)
    period_weight: Leaf  # [T] quarters per period (H100e-quarters weight)
    cost_tiebreak: Leaf  # [] H100e-quarters per USD subtracted in max-h100e
    periods: tuple = struct.field(pytree_node=False, default=())
    sites: tuple = struct.field(pytree_node=False, default=())
    offers: tuple = struct.field(pytree_node=False, default=())
    chip_keys: tuple = struct.field(pytree_node=False, default=())
    # [K] perfmodel.equivalence.ChipSpec: each offer's chip as resolved in the scenario's
    # catalog (its Chip pytree is chip_specs[k].chip(pick)); () for a hand-made Problem
    chip_specs: tuple = struct.field(pytree_node=False, default=())
    pick: str = struct.field(pytree_node=False, default="best")  # catalog pick used
    years: tuple = struct.field(pytree_node=False, default=())
    period_year: tuple = struct.field(pytree_node=False, default=())  # [T] year index
    ratio_site: tuple = struct.field(pytree_node=False, default=())  # [R] site idx or -1 (all)
    ratio_num: tuple = struct.field(pytree_node=False, default=())  # [R] tuple of offer idx
    ratio_den: tuple = struct.field(pytree_node=False, default=())
    ratio_from: tuple = struct.field(pytree_node=False, default=())  # [R] period idx
    policy_from: tuple = struct.field(pytree_node=False, default=())  # [S] period idx (T = none)
    own: tuple = struct.field(pytree_node=False, default=())  # [K] bool
    objective: str = struct.field(pytree_node=False, default="max-h100e")
    target_period: int = struct.field(pytree_node=False, default=-1)
    value_source: tuple = struct.field(pytree_node=False, default=())  # [K] text
    name: str = struct.field(pytree_node=False, default="")
    # "why not" records: (offer, site, reason) for each offer x site it can never be
    # bought at (site not listed, cooling, first delivery after the horizon, no supply)
    unplaceable: tuple = struct.field(pytree_node=False, default=())
    # --- total cost of ownership (perfmodel.fleet.tco) and placement (build.py) ---
    lifetime_q: Any = None  # [K] quarters a unit serves (>= T: to the end)
    existing_until: Any = None  # [K,S] period index existing units retire
    energy_usd_per_mwh: Any = None  # [S,T]
    utilisation: Any = None  # [S] average IT load / nameplate
    opex_usd_per_unit_q: Any = None  # [K] per unit and quarter
    tco_lambda: Any = None  # [] H100e-quarters per USD (ratio objective)
    rate: Any = None  # [K,W] workload units per chip (0: not eligible)
    demand: Any = None  # [T,W] workload units (rows only where has_demand)
    h100e_per_unit: Leaf | None = None  # [W]
    workload_weight: Any = None  # [W]
    placement: bool = struct.field(pytree_node=False, default=False)
    workload_keys: tuple = struct.field(pytree_node=False, default=())
    workload_units: tuple = struct.field(pytree_node=False, default=())
    has_demand: tuple = struct.field(pytree_node=False, default=())  # [W] bool
    ineligible: tuple = struct.field(pytree_node=False, default=())  # (offer, wl, why)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(K offers, S sites, T periods)."""
        return (len(self.offers), len(self.sites), len(self.periods))

    @property
    def n_segments(self) -> int:
        return int(np.shape(self.bp_chips)[-1]) - 1

    @property
    def n_workloads(self) -> int:
        return len(self.workload_keys)

    @property
    def extended(self) -> bool:
        """Placement, retirements or a TCO objective: planned by the exact MILP alone
        (the rounding heuristic knows only the original model)."""
        T = len(self.periods)
        life = np.asarray(self.lifetime_q) if self.lifetime_q is not None else np.full(1, T)
        until = np.asarray(self.existing_until) if self.existing_until is not None else None
        return bool(
            self.placement
            or self.objective in ("min-tco", "max-h100e-per-tco")
            or np.any(life < T)
            or (until is not None and np.any(until < T))
        )


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
    if objective not in OBJECTIVES:
        raise InputError("objective", objective, " | ".join(OBJECTIVES))
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
    why_not = []
    for k, o in enumerate(sc.offers):
        first = max(o.earliest, o.lead_quarters)
        for s, site in enumerate(sc.sites):
            if site.key not in o.sites:
                why_not.append((o.key, site.key, f"site {site.key} is not in the offer's sites"))
            elif not (o.cooling == "air" or liquid[s]):
                why_not.append(
                    (o.key, site.key, f"needs liquid cooling; {site.key} is {site.cooling}")
                )
            elif first >= T:
                why_not.append(
                    (
                        o.key,
                        site.key,
                        f"first delivery {first} quarters after the start, past the horizon",
                    )
                )
            else:
                allowed[k, s, first:] = 1.0
        if allowed[k].any() and not supply[k, first:].any():
            why_not.append((o.key, "*", "no supply in any quarter it can be delivered"))
    existing = np.zeros((K, S))
    until = np.full((K, S), float(T))
    retire = sc.existing_retire or (T,) * len(sc.existing)
    for (off, site, chips), r in zip(sc.existing, retire):
        k, s = offer_keys.index(off), site_keys.index(site)
        if existing[k, s] > 0 and until[k, s] != r:
            raise InputError(
                f"existing ({off} at {site}).retire", r, "the same quarter for every entry"
            )
        existing[k, s] += chips / cpu[k]
        until[k, s] = min(float(r), float(T))
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
    has_demand = any(w.demand is not None for w in sc.workload_specs)
    if objective in ("min-cost", "min-tco") and sc.placement and not has_demand:
        raise InputError(
            f"objective = {objective!r} needs a demand: give workloads[i].demand (per "
            "quarter, >= 0) on at least one workload"
        )
    if (
        objective in ("min-cost", "min-tco")
        and not sc.placement
        and not (math.isfinite(target) and target > 0)
    ):
        raise ValueError(f"target_h100e = {target!r} must be > 0 for objective {objective!r}")

    # value-curve breakpoints over the site's feasible range for each kind
    J = N_SEGMENTS
    bp_chips = np.zeros((K, S, J + 1))
    bp_val = np.zeros((K, S, J + 1))
    sources = []
    specs = sc.chip_specs()
    for k, o in enumerate(sc.offers):
        total_supply = supply[k].sum()
        src = "not counted (counts = false)" if not o.counts else "not valued (fits no site)"
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
                    specs[k], sc.workloads, xs, pick=pick, source=value_source, mode=value_mode
                )
                vals = concave_interpolant(xs, np.maximum(vals, 0.0))
            else:
                vals = np.zeros_like(xs)
            bp_chips[k, s] = xs
            bp_val[k, s] = vals
        sources.append(src)

    R = len(sc.ratios)
    return Problem(
        power_avail_mw=frozen_leaf(power),
        pue=frozen_leaf(pue),
        racks=frozen_leaf(racks),
        unit_price_usd=frozen_leaf(price),
        unit_power_w=frozen_leaf(upow),
        chips_per_unit=frozen_leaf(cpu),
        racks_per_unit=frozen_leaf(rpu),
        supply_units=frozen_leaf(supply),
        allowed=frozen_leaf(allowed),
        existing_units=frozen_leaf(existing),
        budget_usd=frozen_leaf(budget),
        bp_chips=frozen_leaf(bp_chips),
        bp_h100e=frozen_leaf(bp_val),
        ratio_min=frozen_leaf(np.array([r[3] for r in sc.ratios], dtype=np.float64).reshape(R)),
        own_share_min=frozen_leaf(np.array([s.own_share_min for s in sc.sites])),
        target_h100e=frozen_leaf(float(target)),
        period_weight=frozen_leaf(np.ones(T)),
        cost_tiebreak=frozen_leaf(float(sc.cost_tiebreak_per_usd)),
        periods=tuple(periods),
        sites=tuple(site_keys),
        offers=tuple(offer_keys),
        chip_keys=tuple(o.chip for o in sc.offers),
        chip_specs=specs,
        pick=pick,
        years=tuple(years),
        period_year=tuple(years.index(p[:4]) for p in periods),
        ratio_site=tuple(-1 if r[0] == "*" else site_keys.index(r[0]) for r in sc.ratios),
        ratio_num=tuple(tuple(offer_keys.index(x) for x in r[1]) for r in sc.ratios),
        ratio_den=tuple(tuple(offer_keys.index(x) for x in r[2]) for r in sc.ratios),
        ratio_from=tuple(min(r[4], T) for r in sc.ratios),
        policy_from=tuple(
            min(s.own_share_from if s.own_share_enforced else T, T) for s in sc.sites
        ),
        own=tuple(o.own for o in sc.offers),
        objective=objective,
        target_period=int(tp),
        value_source=tuple(sources),
        name=sc.name,
        unplaceable=tuple(why_not),
        existing_until=frozen_leaf(until),
        **cost_and_placement_leaves(sc, T, pick=pick, value_source=value_source),
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
        # here, not at the top: the JAX solver loads only for the method that uses it
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
    ex = existing_in_service(jax.tree_util.tree_map(np.asarray, problem), np)  # [K,S,T]
    umw = np.asarray(problem.unit_power_w) / 1e6
    pue = np.asarray(problem.pue)
    P = np.asarray(problem.power_avail_mw)
    need = pue[:, None] * np.einsum("k,kst->st", umw, ex)  # [S,T]
    for s in range(S):
        for t in range(T):
            if need[s, t] > P[s, t] + 1e-9:
                msgs.append(
                    f"site {problem.sites[s]} has {P[s, t]:g} MW in {problem.periods[t]} but the existing "
                    f"fleet alone needs {need[s, t]:.1f} MW (IT power x PUE {pue[s]:g})"
                )
                break
    racks_need = np.einsum("k,kst->st", np.asarray(problem.racks_per_unit), ex).max(axis=1)
    for s in range(S):
        if racks_need[s] > float(problem.racks[s]) + 1e-9:
            msgs.append(
                f"site {problem.sites[s]} has {float(problem.racks[s]):g} racks but the existing fleet "
                f"alone needs {racks_need[s]:.1f} racks"
            )
    return msgs


#: What a violated row of the elastic LP (:func:`diagnose_infeasible`) means, per row
#: kind: a template over the row's arguments (``{0}``, ``{1}``, ...), its violation ``e``,
#: its right-hand side ``b`` and the ``target`` (H100e) or the site's ``mw`` of the period.
_VIOLATED = {
    "target_h100e": "the target of {target:,.0f} H100e in {0} is out of reach "
    "(short by {e:,.0f} H100e within power, supply and budget)",
    "capex_musd": "the {0} capex budget of ${b:,.0f}M is short by ${e:,.1f}M",
    "power_mw": "site {0} has {mw:g} MW in {1} but needs {e:.1f} MW more",
    "ratio": "ratio rule {0} at {1} cannot hold in {2} (short by {e:,.0f} chips)",
    "own_share": "the own-hardware share at site {0} cannot be met in {1} "
    "(short by {e:.2f} MW of own hardware)",
    "floor_racks": "site {0} needs {e:,.1f} racks more floor space in {1}",
    "supply_units": "offer {0} is short of {e:,.1f} units of supply in {1}",
    "demand": "the demand of workload {0} in {1} cannot be met (short by "
    "{e:,.4g} of its unit within power, supply and budget)",
    "capacity": "the chips of offer {0} assigned in {1} exceed those in service by {e:,.4g}",
    "link": "the value of offer {0} at site {1} in {2} exceeds its installed chips by {e:.4g}",
}


def _violated_words(problem: Problem, name: str, e, b) -> str:
    """One phrase of :func:`diagnose_infeasible` for the row ``name`` violated by ``e``."""
    kind, args = split_row_name(name)
    extra = {}
    if kind == "target_h100e":
        extra["target"] = float(problem.target_h100e)
    elif kind == "power_mw":
        s, t = problem.sites.index(args[0]), problem.periods.index(args[1])
        extra["mw"] = float(problem.power_avail_mw[s, t])
    template = _VIOLATED.get(kind, "a {kind} constraint is violated by {e:.4g}")
    return template.format(*args, kind=kind, e=e, b=b, **extra)


def require_precheck(problem: Problem) -> None:
    """Raise :class:`FleetInfeasible` with the :func:`precheck` messages, if any."""
    pre = precheck(problem)
    if pre:
        raise FleetInfeasible("; ".join(pre))


def require_solved(problem: Problem, lp: LP, sol: RelaxedSolution) -> None:
    """Raise unless the relaxed LP ``sol`` of ``lp`` is optimal: :class:`FleetInfeasible`
    naming the binding constraint(s) (:func:`diagnose_infeasible`) when it is infeasible,
    :class:`~perfmodel.errors.SolverError` for any other status."""
    if sol.status == "infeasible":
        raise FleetInfeasible(
            f"{problem.name}: no feasible plan: {diagnose_infeasible(problem, lp)}"
        )
    if sol.status != "optimal":
        raise SolverError(f"{problem.name}: relaxed LP not solved (HiGHS status: {sol.status})")


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
    parts = [
        _violated_words(problem, lp.row_names[i], e[i], b[i])
        for i in bad[np.argsort(-(e / scale)[bad])][:3]
    ]
    return (
        "; ".join(parts) if parts else "infeasible (no single violated row found by the elastic LP)"
    )
