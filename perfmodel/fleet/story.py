"""What a plan owes the story it tells: each site's own-hardware share in every quarter
(against the site's aim or rule) and what each delivery event cost (the plan re-solved
without it).

``own_share_rows(plan, scenario)`` and ``event_costs(scenario, plan, ...)`` compute the
records; :func:`story_dict` and :func:`story_lines` render what ``plan.extra`` carries
into the plan JSON and text (``perfmodel.fleet.report``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from perfmodel.fleet.binding import binding_records
from perfmodel.fleet.check import Plan, h100e_by_offer, installed_units
from perfmodel.fleet.problem import FleetInfeasible, build_problem
from perfmodel.fleet.rounding import solve
from perfmodel.fleet.schema import load_scenario

__all__ = [
    "event_costs",
    "own_share_rows",
    "plan_story",
    "story_dict",
    "story_lines",
    "uncounted_rows",
]

#: Cloud rental price of one H100 for an hour (USD), low/best/high: what the compute an
#: event withheld would have cost to rent. Source: https://gpu.blog/gpus/nvidia-h100-sxm
#: (cloud H100 $1.90-2.94 per GPU-hour, read 2025; as claims.toml 12k-h100-diverted-to-x).
H100_RENT_USD_PER_HOUR = {"low": 1.90, "best": 2.40, "high": 2.94}
HOURS_PER_QUARTER = 365.25 * 24 / 4


def own_share_rows(plan: Plan, scenario) -> list[dict]:
    """Per site with an own-share aim or rule, or with own hardware installed: the IT MW
    drawn by own (``own = true``) hardware and by all hardware, and the share, in every
    quarter. ``share_min``/``from_period``/``enforced`` come from the scenario's site
    (enforced = the LP holds the plan to it; otherwise the plan reports against the aim).
    ``met`` per quarter: None before the rule's period or with no hardware, else whether
    the share reaches the minimum (to 1e-9 relative)."""
    pr = plan.problem
    K, S, T = pr.shape
    inst = installed_units(pr, plan.buy_units)  # [K,S,T] units
    umw = np.asarray(pr.unit_power_w, np.float64) * 1e-6  # IT MW per unit
    own = np.array(pr.own, dtype=bool).reshape(K)
    out = []
    for s, site in enumerate(scenario.sites):
        mw = umw[:, None] * inst[:, s, :]  # [K,T]
        own_mw, tot = mw[own].sum(axis=0), mw.sum(axis=0)
        aim = float(site.own_share_min)
        if aim <= 0 and not own_mw.any():
            continue
        frm = int(site.own_share_from)
        share = [float(o / t) if t > 0 else None for o, t in zip(own_mw, tot)]
        met = [
            None
            if aim <= 0 or t < frm or tot[t] <= 0
            else bool(own_mw[t] >= aim * tot[t] * (1 - 1e-9))
            for t in range(T)
        ]
        out.append(
            dict(
                site=site.key,
                share_min=aim,
                from_period=pr.periods[frm] if aim > 0 and frm < T else None,
                enforced=bool(site.own_share_enforced) and aim > 0 and frm < T,
                periods=list(pr.periods),
                own_it_mw=[float(x) for x in own_mw],
                it_mw=[float(x) for x in tot],
                share=share,
                met=met,
            )
        )
    return out


def uncounted_rows(plan: Plan, scenario) -> list[dict]:
    """Offers that count 0 H100e (``counts = false``) but are installed: their chips per
    quarter, so a reader sees what the H100e totals leave out and can value it (forward-
    only inference H100e: ``perfmodel equiv --kind inference``; not computed here, it
    costs seconds per plan)."""
    pr = plan.problem
    inst = installed_units(pr, plan.buy_units).sum(axis=1)  # [K,T] units
    out = []
    for k, o in enumerate(scenario.offers):
        if o.counts or not inst[k].any():
            continue
        chips = [float(x * o.chips_per_unit) for x in inst[k]]
        out.append(dict(offer=o.key, chip=o.chip, chips_installed=chips, own=bool(o.own)))
    return out


def event_costs(
    scenario, plan: Plan, *, solve_kw: dict | None = None, **build_kw: Any
) -> list[dict]:
    """What each ``[[events]]`` entry cost the plan: the scenario re-planned without it
    (same build and solve options), the difference in H100e-quarters, capex and H100e per
    quarter, the LP relaxations' difference (free of integer noise; max-h100e only: the
    LP objective, H100e-quarters less the cost tie-break), and the withheld
    H100e-quarters at a cloud H100's rental price (:data:`H100_RENT_USD_PER_HOUR`).
    Positive ``h100e_quarters_lost``: the event cost compute."""

    solve_kw = dict(solve_kw or {})
    out = []
    base = np.asarray(_h100e(plan))
    for i, (offer, units, period, delay) in enumerate(scenario.events):
        sc2 = dataclasses.replace(scenario, events=scenario.events[:i] + scenario.events[i + 1 :])
        rec: dict[str, Any] = dict(
            event=i,
            offer=offer,
            units=float(units),
            chips=float(units * _chips_per_unit(scenario, offer)),
            period=plan.problem.periods[period],
            delay_quarters=int(delay),
        )
        try:
            p2 = solve(build_problem(sc2, **build_kw), **solve_kw)
        except FleetInfeasible as e:  # earlier supply can leave a later year's budget short
            out.append(rec | dict(infeasible_without_event=str(e)))
            continue
        lost = p2.h100e_quarters - plan.h100e_quarters
        alt = np.asarray(_h100e(p2))
        maxh = plan.problem.objective == "max-h100e"  # else the LP objective is -M$
        out.append(
            rec
            | dict(
                h100e_quarters_lost=float(lost),
                h100e_quarters_lost_relaxed=(
                    float(p2.relaxed_objective - plan.relaxed_objective) if maxh else None
                ),
                capex_change_usd=float(plan.capex_usd - p2.capex_usd),
                h100e_lost=[float(a - b) for a, b in zip(alt, base)],
                rent_usd={
                    k: float(lost * HOURS_PER_QUARTER * v)
                    for k, v in H100_RENT_USD_PER_HOUR.items()
                },
                without_event=dict(
                    h100e_quarters=float(p2.h100e_quarters),
                    capex_usd=float(p2.capex_usd),
                    h100e=[float(x) for x in alt],
                ),
            )
        )
    return out


def plan_story(scenario: str, value_source: str = "auto") -> dict:
    """Plan a scenario as ``perfmodel plan`` does by default and return what claims about
    it read: periods, H100e per quarter (total and by offer), the binding-constraint
    records (:func:`perfmodel.fleet.binding.binding_records`), the events' costs and the
    own-hardware shares."""
    sc = load_scenario(scenario)
    pr = build_problem(sc, value_source=value_source)
    plan = solve(pr)
    h = h100e_by_offer(pr, plan.buy_units)
    return dict(
        scenario=sc.name,
        periods=list(pr.periods),
        h100e=_h100e(plan),
        h100e_by_offer={o: [float(x) for x in h[k].sum(axis=0)] for k, o in enumerate(pr.offers)},
        h100e_quarters=float(plan.h100e_quarters),
        binding=binding_records(plan),
        event_costs=event_costs(sc, plan, value_source=value_source),
        own_share=own_share_rows(plan, sc),
    )


def _h100e(plan: Plan) -> list[float]:

    h = h100e_by_offer(plan.problem, plan.buy_units)
    return [float(x) for x in h.sum(axis=(0, 1))]


def _chips_per_unit(scenario, offer: str) -> float:
    return next(float(o.chips_per_unit) for o in scenario.offers if o.key == offer)


def story_dict(plan: Plan) -> dict:
    """The plan JSON's ``own_share`` and ``event_costs`` (when the plan carries them)."""
    keys = ("own_share", "event_costs", "uncounted")
    return {k: plan.extra[k] for k in keys if k in plan.extra}


def story_lines(plan: Plan) -> list[str]:
    """Text: the own-hardware share per site and quarter, then each event's cost."""
    lines: list[str] = []
    rows = plan.extra.get("own_share") or []
    if rows:
        P = plan.problem.periods
        lines += ["", "Own-hardware share (own IT MW / all IT MW at the site):"]
        lines.append(f"  {'site':<10}" + "".join(f"{p:>10}" for p in P))
        for r in rows:
            cells = "".join(f"{('-' if x is None else f'{100 * x:.1f}%'):>10}" for x in r["share"])
            lines.append(f"  {r['site']:<10}{cells}")
            if r["share_min"] > 0 and r["from_period"]:
                miss = [p for p, m in zip(P, r["met"]) if m is False]
                how = "enforced" if r["enforced"] else "an aim, not enforced"
                lines.append(
                    f"  {'':<10}rule: >= {100 * r['share_min']:.0f}% from {r['from_period']} "
                    f"({how}): "
                    + (
                        f"met from {r['from_period']} on"
                        if not miss
                        else f"missed in {', '.join(miss)}"
                    )
                )
    for u in plan.extra.get("uncounted") or []:
        n = u["chips_installed"][-1]
        lines += [
            "",
            f"Not in the H100e totals (counts = false): {u['offer']}, {n:,.0f} {u['chip']} chips "
            f"at {plan.problem.periods[-1]}; their forward-only (inference) H100e: "
            f"perfmodel equiv --chip {u['chip']} --count {n:.0f} --kind inference",
        ]
    for e in plan.extra.get("event_costs") or []:
        if not lines or lines[-1] != "":
            lines.append("")
        what = (
            f"Event {e['event']} ({e['chips']:,.0f} {e['offer']} chips of {e['period']} "
            f"{e['delay_quarters']} quarter(s) late)"
        )
        if "infeasible_without_event" in e:
            lines.append(f"{what}: no plan without it ({e['infeasible_without_event']})")
            continue
        worst = max(range(len(e["h100e_lost"])), key=lambda t: e["h100e_lost"][t])
        rent = e["rent_usd"]
        rel = e["h100e_quarters_lost_relaxed"]
        lines.append(
            f"{what} cost {e['h100e_quarters_lost']:,.0f} H100e-quarters"
            + (f" (LP relaxation {rel:,.0f})" if rel is not None else "")
            + ", "
            f"{e['h100e_lost'][worst]:,.0f} H100e fewer at worst ({plan.problem.periods[worst]}); "
            f"capex {_usd(e['capex_change_usd'])} against the plan without it; renting the "
            f"withheld compute: ${rent['best'] / 1e6:,.0f}M "
            f"(${rent['low'] / 1e6:,.0f}-{rent['high'] / 1e6:,.0f}M at "
            f"${H100_RENT_USD_PER_HOUR['low']:.2f}-{H100_RENT_USD_PER_HOUR['high']:.2f} per "
            "H100-hour)"
        )
    return lines


def _usd(x: float) -> str:
    sign = "+" if x > 0 else "-" if x < 0 else ""
    return f"{sign}${abs(x) / 1e6:,.0f}M"
