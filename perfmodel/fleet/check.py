"""Integer fleet plans and an independent feasibility checker.

:class:`Plan` holds the purchase decisions ``buy_units[k, s, t]`` (integer purchase units
of offer k delivered to site s in period t) plus what was computed from them.
:func:`check_feasible` recomputes every constraint -- delivery windows and cooling, supply,
power, floor space, capex per year, ratio rules, own-hardware policy, the H100e target --
directly from the purchases and the :class:`~perfmodel.fleet.problem.Problem` data. It
does not use the LP rows, so a bug in :func:`~perfmodel.fleet.problem.build_lp` cannot
hide an infeasible plan.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from perfmodel.fleet.problem import Problem

__all__ = [
    "Plan",
    "check_feasible",
    "installed_units",
    "h100e_by_offer",
    "plan_objective",
    "power_used_mw",
    "capex_by_year_usd",
]

REL_TOL = 1e-9
ABS_TOL = 1e-6


@dataclasses.dataclass
class Plan:
    """An integer plan and its figures.

    Attributes: buy_units [K,S,T] int; objective (same units as the LP objective: H100e-
    quarters minus the cost tie-break for max-h100e, -M$ for min-cost); h100e_quarters;
    relaxed_objective (LP upper bound); method; seconds; extra (dict: MILP reference etc.).
    """

    problem: Problem
    buy_units: np.ndarray
    objective: float
    h100e_quarters: float
    capex_usd: float
    relaxed_objective: float = float("nan")
    method: str = ""
    seconds: float = 0.0
    extra: dict = dataclasses.field(default_factory=dict)

    @property
    def gap_to_relaxed(self) -> float:
        """(relaxed - integer) / |relaxed|: an upper bound on the gap to the integer optimum."""
        r = self.relaxed_objective
        return float((r - self.objective) / max(abs(r), 1e-12)) if np.isfinite(r) else float("nan")


def _np(problem: Problem) -> dict:
    return {
        f.name: np.asarray(getattr(problem, f.name), dtype=np.float64)
        for f in dataclasses.fields(problem)
        if f.metadata.get("pytree_node", True)
    }


def installed_units(problem: Problem, buy_units) -> np.ndarray:
    """Units installed per [K,S,T]: existing + cumulative deliveries."""
    d = _np(problem)
    return d["existing_units"][:, :, None] + np.cumsum(
        np.asarray(buy_units, dtype=np.float64), axis=2
    )


def h100e_by_offer(problem: Problem, buy_units) -> np.ndarray:
    """H100e [K,S,T] delivered per offer, site and period: the concave PWL value at the
    installed chip count (flat beyond the last breakpoint)."""
    d = _np(problem)
    n = installed_units(problem, buy_units) * d["chips_per_unit"][:, None, None]
    K, S, T = n.shape
    out = np.zeros_like(n)
    for k in range(K):
        for s in range(S):
            xs, ys = d["bp_chips"][k, s], d["bp_h100e"][k, s]
            if xs[-1] <= 0:
                continue
            out[k, s] = np.interp(n[k, s], xs, ys)
    return out


def power_used_mw(problem: Problem, buy_units) -> np.ndarray:
    """Facility power drawn [S,T], MW: PUE x sum_k unit IT power x installed units."""
    d = _np(problem)
    inst = installed_units(problem, buy_units)
    return d["pue"][:, None] * np.einsum("k,kst->st", d["unit_power_w"], inst) / 1e6


def capex_by_year_usd(problem: Problem, buy_units) -> np.ndarray:
    """Capex [Y] per calendar year, USD (paid in the year of delivery)."""
    d = _np(problem)
    per_t = np.einsum("k,kst->t", d["unit_price_usd"], np.asarray(buy_units, dtype=np.float64))
    out = np.zeros(len(problem.years))
    np.add.at(out, np.asarray(problem.period_year, dtype=int), per_t)
    return out


def plan_objective(problem: Problem, buy_units) -> tuple[float, float, float]:
    """(objective as the LP defines it, H100e-quarters, total capex USD) of a plan."""
    d = _np(problem)
    h = h100e_by_offer(problem, buy_units).sum(axis=(0, 1))
    hq = float(h @ d["period_weight"])
    cost = float(np.einsum("k,kst->", d["unit_price_usd"], np.asarray(buy_units, dtype=np.float64)))
    if problem.objective == "max-h100e":
        obj = hq - float(d["cost_tiebreak"]) * cost
    else:
        obj = -cost / 1e6 + 1e-9 * hq
    return obj, hq, cost


def _exceeds(used: float, limit: float, scale: float = 0.0) -> bool:
    """used > limit beyond rounding noise (relative to the larger of |limit| and |scale|)."""
    return used > limit + ABS_TOL + REL_TOL * max(abs(limit), abs(scale), abs(used))


def check_feasible(problem: Problem, plan) -> list[str]:
    """Every violated constraint of ``plan`` (a :class:`Plan` or a [K,S,T] array of units),
    as human-readable lines; empty list = feasible."""
    buy = np.asarray(plan.buy_units if isinstance(plan, Plan) else plan, dtype=np.float64)
    d = _np(problem)
    K, S, T = problem.shape
    msgs: list[str] = []
    if buy.shape != (K, S, T):
        return [f"buy_units has shape {buy.shape}, expected {(K, S, T)} (offers, sites, periods)"]
    if not np.all(np.isfinite(buy)):
        return ["buy_units contains non-finite values"]
    name = lambda k, s, t: f"{problem.offers[k]} at {problem.sites[s]} in {problem.periods[t]}"  # noqa: E731
    for k, s, t in zip(*np.where(np.abs(buy - np.round(buy)) > 1e-9)):
        msgs.append(f"non-integer purchase {buy[k, s, t]:g} units of {name(k, s, t)}")
    for k, s, t in zip(*np.where(buy < 0)):
        msgs.append(f"negative purchase {buy[k, s, t]:g} units of {name(k, s, t)}")
    for k, s, t in zip(*np.where((buy > 0) & (d["allowed"] <= 0))):
        msgs.append(
            f"{buy[k, s, t]:g} units of {name(k, s, t)}: not deliverable there/then "
            "(before earliest delivery + lead time, wrong cooling, or site not allowed)"
        )
    # supply
    for k in range(K):
        for t in range(T):
            tot = buy[k, :, t].sum()
            if _exceeds(tot, d["supply_units"][k, t]):
                msgs.append(
                    f"supply: {tot:g} units of {problem.offers[k]} in {problem.periods[t]} > "
                    f"{d['supply_units'][k, t]:g} available"
                )
    inst = d["existing_units"][:, :, None] + np.cumsum(buy, axis=2)
    # power
    it_mw = np.einsum("k,kst->st", d["unit_power_w"], inst) / 1e6
    used = d["pue"][:, None] * it_mw
    for s in range(S):
        for t in range(T):
            if _exceeds(used[s, t], d["power_avail_mw"][s, t]):
                msgs.append(
                    f"power: site {problem.sites[s]} uses {used[s, t]:.3f} MW in {problem.periods[t]} > "
                    f"{d['power_avail_mw'][s, t]:g} MW available"
                )
    # floor space
    racks = np.einsum("k,kst->st", d["racks_per_unit"], inst)
    for s in range(S):
        for t in range(T):
            if _exceeds(racks[s, t], d["racks"][s]):
                msgs.append(
                    f"floor: site {problem.sites[s]} needs {racks[s, t]:.2f} racks in {problem.periods[t]} > "
                    f"{d['racks'][s]:g}"
                )
    # capex per year
    spent = np.zeros(len(problem.years))
    for t in range(T):
        spent[problem.period_year[t]] += float(d["unit_price_usd"] @ buy[:, :, t].sum(axis=1))
    for y, yr in enumerate(problem.years):
        if _exceeds(spent[y], d["budget_usd"][y]):
            msgs.append(
                f"capex: {yr} spend ${spent[y] / 1e6:,.1f}M > budget ${d['budget_usd'][y] / 1e6:,.1f}M"
            )
    # ratio rules: chips(num) >= r * chips(den)
    chips = inst * d["chips_per_unit"][:, None, None]
    for r in range(len(problem.ratio_from)):
        sites = range(S) if problem.ratio_site[r] < 0 else [problem.ratio_site[r]]
        for t in range(problem.ratio_from[r], T):
            num = sum(chips[k, s, t] for k in problem.ratio_num[r] for s in sites)
            den = sum(chips[k, s, t] for k in problem.ratio_den[r] for s in sites)
            need = d["ratio_min"][r] * den
            if _exceeds(need, num):
                msgs.append(
                    f"ratio rule {r}: {num:,.0f} chips of {'+'.join(problem.offers[k] for k in problem.ratio_num[r])} "
                    f"< {d['ratio_min'][r]:g} x {den:,.0f} in {problem.periods[t]}"
                )
    # own-hardware share of IT power
    own = np.array(problem.own, dtype=bool)
    for s in range(S):
        for t in range(problem.policy_from[s], T):
            p_all = float(d["unit_power_w"] @ inst[:, s, t])
            p_own = float(d["unit_power_w"][own] @ inst[own, s, t]) if own.any() else 0.0
            if _exceeds(d["own_share_min"][s] * p_all, p_own):
                msgs.append(
                    f"policy: own hardware is {p_own / max(p_all, 1e-30):.1%} of IT power at "
                    f"{problem.sites[s]} in {problem.periods[t]} < {d['own_share_min'][s]:.0%}"
                )
    # target
    if problem.objective == "min-cost":
        tp = problem.target_period
        h = h100e_by_offer(problem, buy)[:, :, tp].sum()
        if h < float(d["target_h100e"]) * (1 - REL_TOL) - ABS_TOL:
            msgs.append(
                f"target: {h:,.0f} H100e in {problem.periods[tp]} < {float(d['target_h100e']):,.0f}"
            )
    return msgs
