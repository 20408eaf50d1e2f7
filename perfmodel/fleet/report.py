"""Plan reports: tables (text), a JSON-ready dict and the ramp chart (matplotlib, Agg)."""

from __future__ import annotations

from typing import Any

import numpy as np

from perfmodel.fleet.binding import binding_records as binding_records
from perfmodel.fleet.check import (
    Plan,
    capex_by_year_usd,
    check_feasible,
    h100e_by_offer,
    installed_units,
    power_used_mw,
)
from perfmodel.fleet.lp import LP, split_row_name
from perfmodel.fleet.report_placement import (
    has_costs,
    placement_dict,
    placement_lines,
    tco_dict,
    tco_lines,
)
from perfmodel.fleet.schema import scenario_names
from perfmodel.fleet.sensitivity import range_text, sensitivity_sentence
from perfmodel.fleet.story import story_dict, story_lines

__all__ = [
    "plan_dict",
    "format_plan",
    "plot_plan",
    "binding_constraints",
    "binding_records",
    "binding_sentence",
    "why_not",
    "warnings",
    "row_units",
]


#: (unit, natural step, scale, words) of :func:`row_units` per row kind: the words are a
#: template over the row's arguments (``{0}``, ...) and ``where`` (a ratio rule's site or
#: all sites).
_ROW_UNITS = {
    "power_mw": ("MW", 1, 1.0, "at site {0} in {1}"),
    "capex_musd": ("$M", 100, 1.0, "of capex budget in {0}"),
    "supply_units": ("unit", 1, 1.0, "of {0} supply in {1}"),
    "floor_racks": ("rack", 1, 1.0, "of floor space at site {0} in {1}"),
    "own_share": ("MW", 1, 1.0, "of slack in the own-hardware share at site {0} in {1}"),
    "ratio": ("chip", 1, 1.0, "of slack in ratio rule {0} at {where} in {2}"),
    "target_h100e": ("H100e", 1000, 1.0, "less of target in {0}"),
    "link": ("chip", 1, 1.0, "of {0} given free at site {1} in {2}"),
}


def row_units(lp: LP) -> dict:
    """Display units per row name for :func:`perfmodel.fleet.sensitivity.sensitivity_lines`:
    natural steps (1 MW, $100M, one unit of supply, 1 rack, 1 chip of a ratio rule, 1 MW of
    own share) and a readable description for every row, internal link rows included. A
    step raises the row's right-hand side, so the min-cost target row reads "less of
    target" (its rhs is minus the target)."""
    out = {}
    for nm in lp.row_names:
        kind, a = split_row_name(nm)
        if kind in _ROW_UNITS:
            unit, step, scale, words = _ROW_UNITS[kind]
            where = ("all sites" if a[1] == "all" else f"site {a[1]}") if kind == "ratio" else ""
            out[nm] = (unit, step, scale, words.format(*a, where=where))
    return out


def binding_sentence(b: dict, objective_unit: str = "H100e-quarters") -> str:
    """One line of text for a :func:`binding_records` record, with its shadow price."""
    text = _binding_text(b)
    d = b.get("dual")
    if d is None or d == 0:
        return text
    unit: str = b["unit"]
    unit = {"USD": "$M", "units": "unit", "chips": "chip", "racks": "rack"}.get(unit) or unit
    if unit == "$M":
        d *= 1e6
    if b.get("degenerate"):
        return f"{text} ({_degenerate_text(b, unit, objective_unit)})"
    rng = ""
    if "valid_from" in b:  # HiGHS ranging (perfmodel.fleet.explain)
        rng = ", " + range_text(b["valid_from"], b["valid_to"], b["unit"])
    if objective_unit == "H100e-quarters":
        return f"{text} (shadow price {d:,.4g} H100e-quarters per {unit}{rng})"
    if abs(d) < 1.0:  # under $1 per unit: the min-cost objective's H100e tie-break only
        return text
    return f"{text} (shadow price {d:+,.4g} USD of capex per {unit}{rng})"


def _degenerate_text(b: dict, unit: str, objective_unit: str) -> str:
    """A degenerate shadow price in words: the price each way with its own range
    (:meth:`perfmodel.fleet.explain.LPExplain.price_range`), instead of a dual that
    holds for no step ("valid for +0..+0")."""
    scale = 1e6 if unit == "$M" else 1.0
    usd = objective_unit != "H100e-quarters"
    why = (
        "a purchase bound binds at the same point"
        if b["degenerate"] == "bound"
        else "another constraint binds at the same point"
    )

    def side(key: str, words: str) -> str:
        p = b.get(f"price_{key}")
        if p is None:
            return f"{words}: infeasible"
        lo, hi = (0.0, b[f"{key}_valid"]) if key == "up" else (b[f"{key}_valid"], 0.0)
        fig = f"{p * scale:,.4g} USD of capex" if usd else f"{p * scale:,.4g} H100e-quarters"
        return f"{words} {fig} per {unit} ({range_text(lo, hi, b['unit'])})"

    text = (
        f"shadow price degenerate, {why}: {side('up', 'more is worth')}, "
        f"{side('down', 'less costs')}"
    )
    if b.get("valid_from") == 0 and b.get("valid_to") == 0:
        d = b["dual"] * scale
        dual = f"{d:,.4g} USD" if usd else f"{d:,.4g} H100e-quarters"
        text += f"; the LP dual {dual} per {unit} holds for no step either way"
    return text


def _binding_text(b: dict) -> str:
    ps = ", ".join(b["periods"])
    k = b["kind"]
    if k == "power":
        return f"power at site {b['site']}: {ps}"
    if k == "budget":
        return f"capex budget {b['year']}: ${b['used'] / 1e9:,.2f}B of ${b['limit'] / 1e9:,.2f}B"
    if k == "supply":
        return f"supply of {b['offer']}: {ps}"
    if k == "racks":
        return f"floor space at site {b['site']}: {ps}"
    if k == "ratio":
        where = "all sites" if b["site"] == "all" else f"site {b['site']}"
        return (
            f"ratio rule {b['rule']} ({'+'.join(b['numerator'])} >= {b['min_ratio']:g} x "
            f"{'+'.join(b['denominator'])} chips, {where}): {ps}"
        )
    if k == "own_share":
        return (
            f"own-hardware share >= {100 * b['share_min']:g}% of IT power at site {b['site']}: {ps}"
        )
    if k == "target":
        return f"target {b['limit']:,.0f} H100e in {ps} (delivered {b['used']:,.0f})"
    raise ValueError(f"binding record kind = {k!r} unknown")


def binding_constraints(plan: Plan, rel: float = 0.02) -> list[str]:
    """Constraints the integer plan uses up, as sentences (see :func:`binding_records`)."""
    unit = "USD" if plan.problem.objective in ("min-cost", "min-tco") else "H100e-quarters"
    recs = plan.extra.get("binding") or binding_records(plan, rel)  # with ranges if any
    return [binding_sentence(b, unit) for b in recs]


def why_not(plan: Plan) -> list[dict]:
    """Offers never bought anywhere, with the reason per site: ``{"offer", "site",
    "reason"}`` (from the problem's placement rules; site ``"*"`` for the whole offer)."""
    pr = plan.problem
    bought = set(np.flatnonzero(plan.buy_units.sum(axis=(1, 2)) > 0).tolist())
    never = {pr.offers[k] for k in range(len(pr.offers)) if k not in bought}
    allowed = np.asarray(np.asarray(pr.allowed).any(axis=2))  # [K,S]
    out = []
    for k, off in enumerate(pr.offers):
        if off in never and not allowed[k].any():
            out += [dict(offer=o, site=s, reason=r) for o, s, r in pr.unplaceable if o == off]
        elif off in never:
            out += [
                dict(offer=o, site=s, reason=r)
                for o, s, r in pr.unplaceable
                if o == off and s == "*"
            ]
    return out


def warnings(plan: Plan) -> list[str]:
    """One line per offer that fits no site (the plan cannot buy it at all)."""
    pr = plan.problem
    allowed = np.asarray(np.asarray(pr.allowed).any(axis=2))
    out = []
    for k, off in enumerate(pr.offers):
        reasons = [f"{r}" for o, s, r in pr.unplaceable if o == off]
        if not allowed[k].any():
            out.append(f"offer {off} fits no site and is never bought: {'; '.join(reasons)}")
    return out


def plan_dict(plan: Plan) -> dict:
    """JSON-ready description of a plan (units in the key names)."""
    pr = plan.problem
    buy = plan.buy_units
    K, S, T = pr.shape
    cpu = np.asarray(pr.chips_per_unit)
    price = np.asarray(pr.unit_price_usd)
    h = h100e_by_offer(pr, buy)
    purchases = [
        dict(
            period=pr.periods[t],
            site=pr.sites[s],
            offer=pr.offers[k],
            chip=pr.chip_keys[k],
            units=int(buy[k, s, t]),
            chips=float(buy[k, s, t] * cpu[k]),
            capex_usd=float(buy[k, s, t] * price[k]),
        )
        for t in range(T)
        for s in range(S)
        for k in range(K)
        if buy[k, s, t] > 0
    ]
    used = power_used_mw(pr, buy)
    P = np.asarray(pr.power_avail_mw)
    spent = capex_by_year_usd(pr, buy)
    inst = installed_units(pr, buy) * cpu[:, None, None]
    viol = check_feasible(pr, plan)
    d: dict[str, Any] = dict(
        scenario=pr.name,
        objective=pr.objective,
        method=plan.method,
        seconds=round(plan.seconds, 3),
        feasible=not viol,
        violations=viol,
        objective_value=plan.objective,
        h100e_quarters=plan.h100e_quarters,
        capex_usd=plan.capex_usd,
        relaxed_objective=plan.relaxed_objective,
        gap_to_relaxed=plan.gap_to_relaxed,
        periods=list(pr.periods),
        sites=list(pr.sites),
        offers=list(pr.offers),
        value_source=dict(zip(pr.offers, pr.value_source)),
        purchases=purchases,
        h100e=[float(x) for x in h.sum(axis=(0, 1))],
        h100e_by_offer={o: [float(x) for x in h[k].sum(axis=0)] for k, o in enumerate(pr.offers)},
        chips_installed={
            o: [float(x) for x in inst[k].sum(axis=0)] for k, o in enumerate(pr.offers)
        },
        spend=[
            dict(year=y, capex_usd=float(spent[i]), budget_usd=float(np.asarray(pr.budget_usd)[i]))
            for i, y in enumerate(pr.years)
        ],
        power=[
            dict(
                site=pr.sites[s],
                period=pr.periods[t],
                used_mw=float(used[s, t]),
                available_mw=float(P[s, t]),
            )
            for s in range(S)
            for t in range(T)
        ],
        binding=plan.extra.get("binding") or binding_records(plan),
        warnings=warnings(plan),
        why_not=plan.extra.get("why_not") or why_not(plan),
    )
    if pr.objective == "min-cost" and not pr.placement:
        d["target_h100e"] = float(np.asarray(pr.target_h100e))
        d["target_period"] = pr.periods[pr.target_period]
    d.update(placement_dict(plan))  # placement of work and TCO: report_placement.py
    d.update(story_dict(plan))  # own-hardware share per quarter, events' costs: story.py
    if has_costs(plan):
        d.update(tco_dict(plan))
    d.update(
        {
            k: v
            for k, v in plan.extra.items()
            if k
            in (
                "milp",
                "relaxed_seconds",
                "gap",
                "bound",
                "gap_target",
                "exact",
                "heuristic_objective",
            )
        }
    )
    if plan.extra.get("sensitivities"):
        d["sensitivities"] = [
            {k: v for k, v in r.items() if k != "label"} for r in plan.extra["sensitivities"]
        ]
    if "gap" in d:
        d["proven_gap"] = d.pop("gap")
    for k in ("proven_gap", "bound"):  # strict JSON: no inf or NaN
        if k in d and not np.isfinite(d[k]):
            d[k] = None
    if d.get("exact"):
        d["exact"] = {
            k: (None if isinstance(v, float) and not np.isfinite(v) else v)
            for k, v in d["exact"].items()
        }
    return d


def _fmt_n(x: float) -> str:
    return f"{x:,.0f}"


def format_plan(plan: Plan, *, sensitivities: list | None = None) -> str:
    """Plain-text report: purchases per quarter/site/offer, H100e over time, spend vs
    budget, power used vs available, binding constraints, gaps."""
    pr = plan.problem
    d = plan_dict(plan)
    K, S, T = pr.shape
    lines = [
        f"Fleet plan: scenario {pr.name}, objective {pr.objective}"
        + (
            f" (target {d['target_h100e']:,.0f} H100e by {d['target_period']})"
            if pr.objective == "min-cost" and not pr.placement
            else ""
        ),
        f"values: {'; '.join(sorted(set(pr.value_source)))}",
        "",
    ]
    lines.append("Purchases (units / chips):")
    w = max(8, max(len(o) for o in pr.offers) + 2)
    head = f"  {'period':<8}{'site':<10}" + "".join(f"{o:>{w + 8}}" for o in pr.offers)
    lines.append(head)
    buy = plan.buy_units
    cpu = np.asarray(pr.chips_per_unit)
    for t in range(T):
        for s in range(S):
            if buy[:, s, t].sum() == 0:
                continue
            cells = "".join(
                f"{(f'{int(buy[k, s, t]):,}/{buy[k, s, t] * cpu[k]:,.0f}' if buy[k, s, t] else '-'):>{w + 8}}"
                for k in range(K)
            )
            lines.append(f"  {pr.periods[t]:<8}{pr.sites[s]:<10}{cells}")
    lines.append("")
    lines.append("H100e delivered per quarter (by offer):")
    lines.append(f"  {'offer':<{w}}" + "".join(f"{p:>10}" for p in pr.periods))
    for o in pr.offers:
        vals = d["h100e_by_offer"][o]
        if max(vals) > 0:
            lines.append(f"  {o:<{w}}" + "".join(f"{_fmt_n(v):>10}" for v in vals))
    lines.append(f"  {'total':<{w}}" + "".join(f"{_fmt_n(v):>10}" for v in d["h100e"]))
    lines.append("")
    lines.append("Spend per year vs budget:")
    for sp in d["spend"]:
        lines.append(
            f"  {sp['year']}: ${sp['capex_usd'] / 1e9:,.2f}B of ${sp['budget_usd'] / 1e9:,.2f}B"
        )
    lines.append("")
    lines.append("Power used / available (MW, facility incl. PUE):")
    lines.append(f"  {'site':<10}" + "".join(f"{p:>14}" for p in pr.periods))
    for s, site in enumerate(pr.sites):
        cells = "".join(
            f"{(str(round(x['used_mw'])) + '/' + str(round(x['available_mw']))):>14}"
            for x in d["power"]
            if x["site"] == site
        )
        lines.append(f"  {site:<10}{cells}")
    lines.append("")
    binding = binding_constraints(plan)
    lines.append("Binding constraints:" + ("" if binding else " none"))
    lines += [f"  {b}" for b in binding]
    if d["warnings"]:
        lines.append("")
        lines.append("Warnings:")
        lines += [f"  {w}" for w in d["warnings"]]
    if plan.extra.get("why_not"):  # LP reduced costs (perfmodel.fleet.explain)
        # here, not at the top: explain brings JAX and HiGHS, which formatting a plan
        # without why-not records (e.g. one read back from JSON) does not need
        from perfmodel.fleet.explain import why_not_sentence

        lines += ["", "Why not bought (offer at site, never bought):"]
        lines += [f"  {why_not_sentence(r)}" for r in plan.extra["why_not"]]
    lines += placement_lines(plan) + (tco_lines(plan) if has_costs(plan) else [])
    lines += story_lines(plan)  # own-hardware share per quarter, events' costs
    lines.append("")
    lines.append(
        f"Total: {d['h100e_quarters']:,.0f} H100e-quarters, capex ${d['capex_usd'] / 1e9:,.2f}B, "
        f"{d['h100e'][-1]:,.0f} H100e at {pr.periods[-1]}"
    )
    lines.append(
        f"Integer plan: objective {d['objective_value']:,.2f}; relaxed bound {d['relaxed_objective']:,.2f}; "
        f"gap to relaxed <= {100 * d['gap_to_relaxed']:.3f}%; checker: "
        f"{'all constraints hold' if d['feasible'] else d['violations']}; {plan.method}, {plan.seconds:.2f} s"
    )
    ex = plan.extra.get("exact")
    if "gap" in plan.extra:
        gap, bound = plan.extra["gap"], plan.extra.get("bound", float("nan"))
        how = (
            f"HiGHS MILP {ex['status']} in {ex['seconds']:.2f} s"
            + (
                f" (target {100 * plan.extra['gap_target']:.3g}%)"
                if plan.extra.get("gap_target") is not None
                else ""
            )
            if ex
            else "LP relaxation bound (heuristic only)"
        )
        costs = {"min-cost": "capex", "min-tco": "capex + opex"}.get(pr.objective)
        # a cost objective is maximised as -M$: the bound reads as the least possible cost
        at = (
            f"the bound {bound:,.2f} (no plan costs under ${-bound:,.2f}M of {costs})"
            if costs and np.isfinite(bound)
            else f"the bound {bound:,.2f}"
        )
        lines.append(
            f"Proven gap: {100 * gap:.4f}% to {at} ({how})"
            if np.isfinite(gap)
            else f"Proven gap: unknown ({how})"
        )
    m = plan.extra.get("milp")
    if m:
        lines.append(
            f"HiGHS MILP: objective {m['objective']:,.2f} ({m['status']}, {m['seconds']:.2f} s); "
            f"integer plan gap to it {100 * m['gap']:.4f}%"
        )
    if sensitivities:
        lines.append("")
        lines.append(
            "Sensitivities (LP relaxation; one natural step each: the optimum's change "
            "re-solved, and the dual's linear estimate):"
        )
        lines += [
            f"  {x if isinstance(x, str) else sensitivity_sentence(x)}" for x in sensitivities
        ]
    return "\n".join(lines)


def plot_plan(plan: Plan, path, *, pareto=None, pareto_path=None) -> str:
    """Ramp chart of ``plan`` written to ``path``: H100e per quarter stacked by chip with
    the min-cost target line, capex against budget per year, power used vs available per
    site (:func:`perfmodel.plots.plan_chart`). With ``pareto`` (the points of
    :func:`perfmodel.fleet.pareto.pareto_front`) also the capex vs H100e-quarters chart,
    this plan starred, to ``pareto_path`` (:func:`perfmodel.plots.pareto_chart`).
    Returns ``path``."""
    # matplotlib only when a chart is drawn (about 1 s to import)
    from perfmodel.plots import pareto_chart, plan_chart

    pr = plan.problem
    note = (
        f"Values: {'; '.join(sorted(set(pr.value_source)))}; sites, prices, supply: the "
        "scenario file's sources"
        + (" (perfmodel/data/scenario_sources.toml)" if pr.name in scenario_names() else "")
    )
    plan_chart(path, plan_dict(plan), dict(zip(pr.offers, pr.chip_keys)), note=note)
    if pareto is not None and pareto_path is not None:
        pareto_chart(
            pareto_path,
            [p if isinstance(p, dict) else p.__dict__ for p in pareto],
            chosen=(plan.capex_usd, plan.h100e_quarters),
            title=f"{pr.name}: capex vs H100e-quarters ("
            + (
                "target sweep, min-cost"
                if any(
                    (p if isinstance(p, dict) else p.__dict__)["kind"] == "target" for p in pareto
                )
                else "budget sweep, max-h100e"
            )
            + ")",
            note=note,
        )
    return path
