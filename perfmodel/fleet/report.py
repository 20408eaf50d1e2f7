"""Plan reports: tables (text), a JSON-ready dict and the ramp chart (matplotlib, Agg)."""

from __future__ import annotations

from typing import Any

import numpy as np

from perfmodel.fleet.check import (
    Plan,
    capex_by_year_usd,
    check_feasible,
    h100e_by_offer,
    installed_units,
    power_used_mw,
)
from perfmodel.fleet.lp import LP

__all__ = ["plan_dict", "format_plan", "plot_plan", "binding_constraints", "row_units"]


def row_units(lp: LP) -> dict:
    """Display units for :func:`perfmodel.fleet.sensitivity.sensitivity_lines` per row name."""
    out = {}
    for nm in lp.row_names:
        kind, _, args = nm.partition("[")
        a = args.rstrip("]").split(",")
        if kind == "power_mw":
            out[nm] = ("MW", 100, 1.0, f"at site {a[0]} in {a[1]}")
        elif kind == "capex_musd":
            out[nm] = ("$B", 1, 1000.0, f"of capex budget in {a[0]}")
        elif kind == "supply_units":
            out[nm] = ("units", 100, 1.0, f"of {a[0]} supply in {a[1]}")
        elif kind == "floor_racks":
            out[nm] = ("racks", 100, 1.0, f"of floor space at site {a[0]} in {a[1]}")
        elif kind == "own_share":
            out[nm] = ("MW", 1, 1.0, f"of own-hardware policy slack at site {a[0]} in {a[1]}")
        elif kind == "ratio":
            out[nm] = ("chips", 1000, 1.0, f"of ratio-rule {a[0]} slack at {a[1]} in {a[2]}")
        elif kind == "target_h100e":
            out[nm] = ("H100e", 1000, 1.0, f"of target in {a[0]}")
    return out


def binding_constraints(plan: Plan, rel: float = 0.02) -> list[str]:
    """Constraints the integer plan uses up (slack < ``rel`` of the limit, or of one unit)."""
    pr = plan.problem
    buy = plan.buy_units
    out = []
    P = np.asarray(pr.power_avail_mw)
    used = power_used_mw(pr, buy)
    for s, site in enumerate(pr.sites):
        ts = [
            pr.periods[t]
            for t in range(len(pr.periods))
            if P[s, t] > 0 and P[s, t] - used[s, t] <= rel * P[s, t]
        ]
        if ts:
            out.append(f"power at site {site}: {', '.join(ts)}")
    spent = capex_by_year_usd(pr, buy)
    bud = np.asarray(pr.budget_usd)
    for y, yr in enumerate(pr.years):
        if bud[y] > 0 and bud[y] - spent[y] <= rel * bud[y]:
            out.append(f"capex budget {yr}: ${spent[y] / 1e9:,.2f}B of ${bud[y] / 1e9:,.2f}B")
    sup = np.asarray(pr.supply_units)
    for k, off in enumerate(pr.offers):
        ts = [
            pr.periods[t]
            for t in range(len(pr.periods))
            if sup[k, t] > 0
            and buy[k, :, t].sum() >= sup[k, t] - 1e-9
            and sup[k, t] - buy[k, :, t].sum() < 1
        ]
        if ts:
            out.append(f"supply of {off}: {', '.join(ts)}")
    inst = installed_units(pr, buy)
    racks = np.einsum("k,kst->st", np.asarray(pr.racks_per_unit), inst)
    R = np.asarray(pr.racks)
    for s, site in enumerate(pr.sites):
        ts = [pr.periods[t] for t in range(len(pr.periods)) if R[s] - racks[s, t] <= rel * R[s]]
        if ts:
            out.append(f"floor space at site {site}: {', '.join(ts)}")
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
        binding=binding_constraints(plan),
    )
    if pr.objective == "min-cost":
        d["target_h100e"] = float(np.asarray(pr.target_h100e))
        d["target_period"] = pr.periods[pr.target_period]
    d.update(
        {
            k: v
            for k, v in plan.extra.items()
            if k
            in (
                "milp",
                "sensitivities",
                "relaxed_seconds",
                "gap",
                "bound",
                "gap_target",
                "exact",
                "heuristic_objective",
            )
        }
    )
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


def format_plan(plan: Plan, *, sensitivities: list[str] | None = None) -> str:
    """Plain-text report: purchases per quarter/site/offer, H100e over time, spend vs
    budget, power used vs available, binding constraints, gaps."""
    pr = plan.problem
    d = plan_dict(plan)
    K, S, T = pr.shape
    lines = [
        f"Fleet plan: scenario {pr.name}, objective {pr.objective}"
        + (
            f" (target {d['target_h100e']:,.0f} H100e by {d['target_period']})"
            if pr.objective == "min-cost"
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
    lines.append("Binding constraints:" + ("" if d["binding"] else " none"))
    lines += [f"  {b}" for b in d["binding"]]
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
        lines.append(
            f"Proven gap: {100 * gap:.4f}% to the bound {bound:,.2f} ({how})"
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
        lines.append("Sensitivities (LP duals, envelope theorem):")
        lines += [f"  {s}" for s in sensitivities]
    return "\n".join(lines)


def plot_plan(plan: Plan, path: str) -> str:
    """Ramp chart: H100e over time stacked by offer; power used vs available per site."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pr = plan.problem
    d = plan_dict(plan)
    x = np.arange(len(pr.periods))
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 4.8))
    bottom = np.zeros(len(x))
    for o in pr.offers:
        v = np.asarray(d["h100e_by_offer"][o])
        if v.max() > 0:
            a1.bar(x, v, bottom=bottom, label=o)
            bottom += v
    a1.set_xticks(x, pr.periods, rotation=45)
    a1.set_ylabel("H100-equivalents (H100e)")
    a1.set_title(f"{pr.name}: H100e by chip ({pr.objective})")
    a1.legend(fontsize=8)
    for s, site in enumerate(pr.sites):
        used = [p["used_mw"] for p in d["power"] if p["site"] == site]
        avail = [p["available_mw"] for p in d["power"] if p["site"] == site]
        (line,) = a2.plot(x, used, marker="o", label=f"{site} used")
        a2.plot(x, avail, linestyle="--", color=line.get_color(), label=f"{site} available")
    a2.set_xticks(x, pr.periods, rotation=45)
    a2.set_ylabel("facility power (MW, incl. PUE)")
    a2.set_title("Power used vs available per site")
    a2.legend(fontsize=8)
    fig.text(
        0.01,
        0.01,
        "Values: perfmodel training model (H100e); sites, prices, supply: scenario TOML sources "
        "(reference hardware.toml tesla_fleet, prices). Estimates marked there.",
        fontsize=7,
    )
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
