"""Report sections for placement of work and total cost of ownership (text and JSON).

:func:`placement_dict` / :func:`placement_lines`: which chips serve which workload per
quarter (chips and the work they deliver in the workload's unit), served vs demand, and
the offer x workload pairs the models cannot value (why not). :func:`tco_dict` /
:func:`tco_lines`: capex and opex per year, TCO and H100e-quarters per $M of TCO.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from perfmodel.fleet.check import Plan, served, served_h100e
from perfmodel.fleet.tco import tco_summary

__all__ = ["placement_dict", "placement_lines", "tco_dict", "tco_lines", "has_costs"]


def placement_dict(plan: Plan) -> dict[str, Any]:
    """``{"placement": {...}}`` for a plan with placement, else ``{}``."""
    pr = plan.problem
    if not pr.placement or plan.assign_chips is None:
        return {}
    a = np.asarray(plan.assign_chips, np.float64)
    rate = np.asarray(pr.rate, np.float64)
    got = served(pr, a)
    got_h = served_h100e(pr, a)
    dem = np.asarray(pr.demand, np.float64)
    K, _, T = pr.shape
    workloads = []
    for w, key in enumerate(pr.workload_keys):
        workloads.append(
            dict(
                key=key,
                unit=pr.workload_units[w],
                weight=float(np.asarray(pr.workload_weight)[w]),
                h100e_per_unit=float(np.asarray(pr.h100e_per_unit)[w]),
                demand=[float(x) for x in dem[:, w]] if pr.has_demand[w] else None,
                served=[float(x) for x in got[:, w]],
                served_h100e=[float(x) for x in got_h[:, w]],
                chips={
                    pr.offers[k]: [float(x) for x in a[k, :, w]]
                    for k in range(K)
                    if a[k, :, w].max() > 0.5
                },
                delivered_by_offer={
                    pr.offers[k]: [float(x) for x in a[k, :, w] * rate[k, w]]
                    for k in range(K)
                    if a[k, :, w].max() > 0.5
                },
            )
        )
    return dict(
        placement=dict(
            periods=list(pr.periods),
            workloads=workloads,
            ineligible=[dict(offer=o, workload=w, reason=r) for o, w, r in pr.ineligible],
        )
    )


def placement_lines(plan: Plan) -> list[str]:
    """The placement section of the text report (empty without placement)."""
    d = placement_dict(plan).get("placement")
    if not d:
        return []
    P = d["periods"]
    lines = ["", "Placement: chips serving each workload per quarter (work delivered):"]
    wk = max([len(o) for w in d["workloads"] for o in w["chips"]] + [10]) + 2
    lines.append(f"  {'workload / offer':<{wk + 2}}" + "".join(f"{p:>12}" for p in P))
    for w in d["workloads"]:
        lines.append(f"  {w['key']} ({w['unit']}):")
        for o, chips in w["chips"].items():
            lines.append(f"    {o:<{wk}}" + "".join(f"{c:>12,.0f}" for c in chips))
        lines.append(f"    {'served':<{wk}}" + "".join(f"{x:>12,.0f}" for x in w["served"]))
        if w["demand"] is not None:
            lines.append(f"    {'demand':<{wk}}" + "".join(f"{x:>12,.0f}" for x in w["demand"]))
    if d["ineligible"]:
        lines.append("  Not eligible (the models cannot value the chip on the workload):")
        lines += [f"    {x['offer']} on {x['workload']}: {x['reason']}" for x in d["ineligible"]]
    return lines


def tco_dict(plan: Plan) -> dict[str, Any]:
    """``{"tco": {...}}``: capex and opex per year, TCO, H100e-quarters per $M."""
    out = tco_summary(plan)
    if "ratio_h100e_quarters_per_musd" in plan.extra:
        out["dinkelbach"] = plan.extra.get("dinkelbach")
    return dict(tco=out)


def tco_lines(plan: Plan) -> list[str]:
    """The capex / opex / TCO section of the text report."""
    t = tco_dict(plan)["tco"]
    lines = ["", "Total cost of ownership per year (capex of purchases, opex of the fleet):"]
    for y in t["by_year"]:
        lines.append(
            f"  {y['year']}: capex ${y['capex_usd'] / 1e9:,.3f}B + opex "
            f"${y['opex_usd'] / 1e9:,.3f}B = ${y['tco_usd'] / 1e9:,.3f}B"
        )
    ratio = t["h100e_quarters_per_musd_tco"]
    lines.append(
        f"  TCO ${t['tco_usd'] / 1e9:,.3f}B"
        + (f"; {ratio:,.2f} H100e-quarters per $M of TCO" if ratio is not None else "")
    )
    if t.get("dinkelbach"):
        lams = ", ".join(f"{s['lambda_per_musd']:,.2f}" for s in t["dinkelbach"])
        lines.append(f"  Dinkelbach steps (lambda, H100e-quarters per $M): {lams}")
    return lines


def has_costs(plan: Plan) -> bool:
    """True when the plan has opex (energy prices, offer opex) or a TCO objective."""
    pr = plan.problem
    if pr.objective in ("min-tco", "max-h100e-per-tco"):
        return True
    return tco_summary(plan)["opex_usd"] > 0
