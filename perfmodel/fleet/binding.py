"""Binding constraints of an integer plan: one record per rule and key (power, budget,
supply, racks, ratio, own share, target, demand), with the LP relaxation's shadow price
when the plan carries its duals. :mod:`perfmodel.fleet.report` renders the records as
sentences; :mod:`perfmodel.fleet.story` and :mod:`perfmodel.fleet.explain` read them."""

from __future__ import annotations

import numpy as np

from perfmodel.fleet.check import (
    Plan,
    capex_by_year_usd,
    h100e_by_offer,
    installed_units,
    power_used_mw,
)

__all__ = ["KINDS", "binding_records"]

#: Every kind of binding record (one per rule family of the LP a plan can use up).
KINDS = ("power", "budget", "supply", "racks", "ratio", "own_share", "target")


def _runs(periods: list[str], flags) -> list[str]:
    return [p for p, f in zip(periods, flags) if f]


def binding_records(plan: Plan, rel: float = 0.02) -> list[dict]:
    """Constraints the integer plan uses up, one record per rule and key: ``kind`` (power,
    racks, budget, supply, ratio, own_share, target), its keys (site, offer, year, rule),
    ``periods``, ``used``/``limit`` and ``unit`` (at the tightest period), and ``dual``
    (objective units per unit, from the LP relaxation, when the plan carries its duals in
    ``plan.extra["row_duals"]``; else None). A row binds when its slack is under ``rel``
    of the limit (power, budget, racks, target) or under one purchase unit of an offer in
    the rule (supply, ratio, own share)."""
    pr = plan.problem
    buy = plan.buy_units
    P = list(pr.periods)
    T = len(P)
    duals = plan.extra.get("row_duals") or {}
    to_obj = -1e6 if pr.objective in ("min-cost", "min-tco") else 1.0

    def dual(names, per=1.0):
        if not duals:
            return None
        return float(sum(duals.get(n, 0.0) for n in names) * to_obj / per)

    out: list[dict] = []

    def add(kind, key, periods, used, limit, unit, dual_value):
        """One record: its kind, what it is about (``key``), then the common fields."""
        out.append(
            dict(
                kind=kind,
                **key,
                periods=periods,
                used=float(used),
                limit=float(limit),
                unit=unit,
                dual=dual_value,
            )
        )

    cpu = np.asarray(pr.chips_per_unit)
    umw = np.asarray(pr.unit_power_w) / 1e6
    inst = installed_units(pr, buy)  # [K,S,T] units
    Pw = np.asarray(pr.power_avail_mw)
    used = power_used_mw(pr, buy)
    for s, site in enumerate(pr.sites):
        ts = _runs(P, [Pw[s, t] > 0 and Pw[s, t] - used[s, t] <= rel * Pw[s, t] for t in range(T)])
        if ts:
            t = P.index(ts[-1])
            add(
                "power",
                {"site": site},
                ts,
                used[s, t],
                Pw[s, t],
                "MW",
                dual([f"power_mw[{site},{p}]" for p in ts]),
            )
    spent = capex_by_year_usd(pr, buy)
    bud = np.asarray(pr.budget_usd)
    for y, yr in enumerate(pr.years):
        if bud[y] > 0 and bud[y] - spent[y] <= rel * bud[y]:
            add(
                "budget",
                {"year": yr},
                [p for p in P if p.startswith(yr)],
                spent[y],
                bud[y],
                "USD",
                dual([f"capex_musd[{yr}]"], per=1e6),
            )
    sup = np.asarray(pr.supply_units)
    for k, off in enumerate(pr.offers):
        ts = _runs(P, [sup[k, t] > 0 and sup[k, t] - buy[k, :, t].sum() < 1 for t in range(T)])
        if ts:
            add(
                "supply",
                {"offer": off},
                ts,
                buy[k, :, P.index(ts[-1])].sum(),
                sup[k, P.index(ts[-1])],
                "units",
                dual([f"supply_units[{off},{p}]" for p in ts]),
            )
    racks = np.einsum("k,kst->st", np.asarray(pr.racks_per_unit), inst)
    R = np.asarray(pr.racks)
    for s, site in enumerate(pr.sites):
        ts = _runs(P, [R[s] > 0 and R[s] - racks[s, t] <= rel * R[s] for t in range(T)])
        if ts:
            add(
                "racks",
                {"site": site},
                ts,
                racks[s, P.index(ts[-1])],
                R[s],
                "racks",
                dual([f"floor_racks[{site},{p}]" for p in ts]),
            )
    chips = inst * cpu[:, None, None]  # [K,S,T]
    for r in range(len(pr.ratio_from)):
        sites = list(range(len(pr.sites))) if pr.ratio_site[r] < 0 else [pr.ratio_site[r]]
        where = "all" if pr.ratio_site[r] < 0 else pr.sites[pr.ratio_site[r]]
        num = chips[list(pr.ratio_num[r])][:, sites].sum(axis=(0, 1))  # [T]
        den = chips[list(pr.ratio_den[r])][:, sites].sum(axis=(0, 1))
        need = float(np.asarray(pr.ratio_min)[r]) * den
        # under one purchase unit of slack: one more unit of a numerator offer, or the
        # need for one more unit of a denominator offer, does not fit
        one = max(
            float(max(cpu[list(pr.ratio_num[r])], default=1.0)),
            float(np.asarray(pr.ratio_min)[r])
            * float(max(cpu[list(pr.ratio_den[r])], default=0.0)),
        )
        ts = _runs(
            P, [t >= pr.ratio_from[r] and den[t] > 0 and num[t] - need[t] < one for t in range(T)]
        )
        if ts:
            t = P.index(ts[-1])
            add(
                "ratio",
                {
                    "rule": r,
                    "site": where,
                    "numerator": [pr.offers[k] for k in pr.ratio_num[r]],
                    "denominator": [pr.offers[k] for k in pr.ratio_den[r]],
                    "min_ratio": float(np.asarray(pr.ratio_min)[r]),
                },
                ts,
                num[t],
                need[t],
                "chips",
                dual([f"ratio[{r},{where},{p}]" for p in ts]),
            )
    own = np.array(pr.own, dtype=bool).reshape(len(pr.offers))
    share = np.asarray(pr.own_share_min)
    for s, site in enumerate(pr.sites):
        if pr.policy_from[s] >= T or not own.any():
            continue
        mw = umw[:, None] * inst[:, s, :]  # [K,T] IT MW
        own_mw, tot = mw[own].sum(axis=0), mw.sum(axis=0)
        one = max(float(umw[own].max()), float(share[s]) * float(umw.max()))
        ts = _runs(
            P,
            [
                t >= pr.policy_from[s] and tot[t] > 0 and own_mw[t] - share[s] * tot[t] < one
                for t in range(T)
            ],
        )
        if ts:
            t = P.index(ts[-1])
            add(
                "own_share",
                {"site": site, "share_min": float(share[s])},
                ts,
                own_mw[t],
                share[s] * tot[t],
                "MW",
                dual([f"own_share[{site},{p}]" for p in ts]),
            )
    if pr.objective == "min-cost":
        tp = pr.target_period
        hk = h100e_by_offer(pr, buy)[:, :, tp].sum(axis=1)  # [K]
        got = float(hk.sum())
        tgt = float(np.asarray(pr.target_h100e))
        units = inst[:, :, tp].sum(axis=1)
        per_unit = float(max([h / u for h, u in zip(hk, units) if u > 0], default=0.0))
        # binding: within rel of the target, or one purchase unit less would miss it
        if got - tgt <= max(rel * tgt, per_unit):
            d = dual([f"target_h100e[{P[tp]}]"])
            add("target", {}, [P[tp]], got, tgt, "H100e", None if d is None else -d)
    return out
