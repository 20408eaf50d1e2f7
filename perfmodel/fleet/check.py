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
import time

import numpy as np

from perfmodel.fleet.demand import HOURS_PER_QUARTER
from perfmodel.fleet.problem import Problem

__all__ = [
    "Plan",
    "check_feasible",
    "installed_units",
    "h100e_by_offer",
    "plan_objective",
    "power_used_mw",
    "capex_by_year_usd",
    "served",
    "served_h100e",
    "opex_by_period_usd",
    "purchase_opex_usd",
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
    #: with placement: chips of kind k given to workload w in period t, [K,T,W]
    assign_chips: np.ndarray | None = None

    @property
    def gap_to_relaxed(self) -> float:
        """(relaxed - integer) / |relaxed|: an upper bound on the gap to the integer optimum."""
        r = self.relaxed_objective
        return float((r - self.objective) / max(abs(r), 1e-12)) if np.isfinite(r) else float("nan")


def _np(problem: Problem) -> dict:
    return {
        f.name: np.asarray(getattr(problem, f.name), dtype=np.float64)
        for f in dataclasses.fields(problem)
        if f.metadata.get("pytree_node", True) and getattr(problem, f.name) is not None
    }


def installed_units(problem: Problem, buy_units) -> np.ndarray:
    """Units in service per [K,S,T]: existing units until they retire, plus deliveries
    until their lifetime ends (a unit delivered in tau serves tau .. tau + life - 1)."""
    d = _np(problem)
    K, S, T = problem.shape
    buy = np.asarray(buy_units, dtype=np.float64).reshape(K, S, T)
    until = d.get("existing_until", np.full((K, S), float(T)))
    ex = d["existing_units"][:, :, None] * (np.arange(T)[None, None, :] < until[:, :, None])
    life = d.get("lifetime_q", np.full(K, float(T)))
    inst = ex.copy()
    for k in range(K):
        for tau in range(T):
            end = int(min(T, tau + min(life[k], T)))
            inst[k, :, tau:end] += buy[k, :, tau : tau + 1]
    return inst


def served(problem: Problem, assign_chips) -> np.ndarray:
    """[T, W] work delivered per period and workload, in the workload's unit."""
    rate = np.asarray(problem.rate, np.float64)
    return np.einsum("ktw,kw->tw", np.asarray(assign_chips, np.float64), rate)


def served_h100e(problem: Problem, assign_chips) -> np.ndarray:
    """[T, W] work delivered, in H100e."""
    return served(problem, assign_chips) * np.asarray(problem.h100e_per_unit)[None, :]


def opex_by_period_usd(problem: Problem, buy_units) -> np.ndarray:
    """[T] opex of the units in service (existing ones included), USD: energy (IT power
    x utilisation x PUE x 2,191.5 h x price) plus each offer's own opex per unit."""

    d = _np(problem)
    K, S, T = problem.shape
    if "energy_usd_per_mwh" not in d:
        return np.zeros(T)
    inst = installed_units(problem, buy_units)
    it_mwh = np.einsum("k,kst->st", d["unit_power_w"] / 1e6, inst) * HOURS_PER_QUARTER
    energy = (it_mwh * (d["pue"] * d["utilisation"])[:, None] * d["energy_usd_per_mwh"]).sum(0)
    return energy + np.einsum("k,kst->t", d["opex_usd_per_unit_q"], inst)


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


def purchase_opex_usd(problem: Problem, buy_units) -> float:
    """Horizon opex of the purchases alone (the plan's opex less the existing fleet's)."""
    zero = np.zeros(problem.shape)
    return float((opex_by_period_usd(problem, buy_units) - opex_by_period_usd(problem, zero)).sum())


def integer_plan(
    problem: Problem,
    buy_units,
    relaxed,
    *,
    method: str,
    started_s: float,
    bound: float,
    gap_target: float | None,
    assign_chips=None,
    **extra,
) -> Plan:
    """The :class:`Plan` of an integer ``buy_units`` (and placement) found from the relaxed
    solution ``relaxed`` (objective, seconds, iterations): its objective, H100e-quarters and
    capex by :func:`plan_objective`, wall time since ``started_s`` (``time.perf_counter``),
    and in ``extra`` the relaxed solve's figures, then ``extra``, then the proven ``bound``
    on the optimum, the gap to it (inf where no bound is known) and ``gap_target``."""
    obj, hq, cost = plan_objective(problem, buy_units, assign_chips)
    gap = max(0.0, (bound - obj) / max(abs(obj), 1e-12)) if np.isfinite(bound) else float("inf")
    return Plan(
        problem=problem,
        buy_units=np.round(buy_units).astype(np.int64),
        objective=obj,
        h100e_quarters=hq,
        capex_usd=cost,
        relaxed_objective=relaxed.objective,
        method=method,
        seconds=time.perf_counter() - started_s,
        extra={
            "relaxed_seconds": relaxed.seconds,
            "relaxed_iterations": relaxed.iterations,
            **extra,
            "bound": bound,
            "gap": gap,
            "gap_target": gap_target,
        },
        assign_chips=assign_chips,
    )


def plan_objective(problem: Problem, buy_units, assign_chips=None) -> tuple[float, float, float]:
    """(objective as the LP defines it, H100e-quarters, total capex USD) of a plan.

    With placement the H100e-quarters are those served (``assign_chips`` [K,T,W]) and the
    objective weighs them by the workloads' weights."""
    d = _np(problem)
    buy = np.asarray(buy_units, dtype=np.float64)
    if problem.placement:
        a = np.zeros((problem.shape[0], problem.shape[2], problem.n_workloads))
        h = served_h100e(problem, a if assign_chips is None else assign_chips)  # [T,W]
        hq = float(d["period_weight"] @ h.sum(axis=1))
        val = float(d["period_weight"] @ (h @ d["workload_weight"]))
    else:
        h = h100e_by_offer(problem, buy).sum(axis=(0, 1))
        hq = val = float(h @ d["period_weight"])
    cost = float(np.einsum("k,kst->", d["unit_price_usd"], buy))
    if problem.placement and problem.objective in ("min-cost", "min-tco"):
        val = -val  # the LP's tie-break: serve the demand, no more
    if problem.objective == "max-h100e":
        obj = val - float(d["cost_tiebreak"]) * cost
    elif problem.objective == "min-cost":
        obj = -cost / 1e6 + 1e-9 * val
    elif problem.objective == "min-tco":
        obj = -(cost + purchase_opex_usd(problem, buy)) / 1e6 + 1e-9 * val
    else:
        lam = float(d.get("tco_lambda", 0.0))
        obj = val - lam * (cost + purchase_opex_usd(problem, buy))
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
    inst = installed_units(problem, buy)  # retirements and lifetimes included
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
    if problem.placement:
        a = plan.assign_chips if isinstance(plan, Plan) else None
        msgs += _check_placement(problem, inst, a)
    # target
    if problem.objective in ("min-cost", "min-tco") and not problem.placement:
        tp = problem.target_period
        h = h100e_by_offer(problem, buy)[:, :, tp].sum()
        if h < float(d["target_h100e"]) * (1 - REL_TOL) - ABS_TOL:
            msgs.append(
                f"target: {h:,.0f} H100e in {problem.periods[tp]} < {float(d['target_h100e']):,.0f}"
            )
    return msgs


def _check_placement(problem: Problem, inst, assign) -> list[str]:
    """Chips given to workloads: eligible only, within the chips in service, demand met."""
    K, S, T = problem.shape
    W = problem.n_workloads
    if assign is None:
        return ["placement: the plan carries no assignment of chips to workloads"]
    a = np.asarray(assign, dtype=np.float64)
    if a.shape != (K, T, W):
        return [
            f"assign_chips has shape {a.shape}, expected {(K, T, W)} (offers, periods, workloads)"
        ]
    if not np.all(np.isfinite(a)):
        return ["assign_chips contains non-finite values"]
    msgs = []
    rate = np.asarray(problem.rate, np.float64)
    cpu = np.asarray(problem.chips_per_unit, np.float64)
    for k, t, w in zip(*np.where(a < -ABS_TOL)):
        msgs.append(f"placement: negative assignment {a[k, t, w]:g} chips")
    for k, t, w in zip(*np.where((a > ABS_TOL) & (rate[:, None, :] <= 0))):
        msgs.append(
            f"placement: {a[k, t, w]:,.1f} chips of {problem.offers[k]} on "
            f"{problem.workload_keys[w]} in {problem.periods[t]}, which it cannot serve"
        )
    chips = (inst * cpu[:, None, None]).sum(axis=1)  # [K,T]
    used = a.sum(axis=2)
    for k in range(K):
        for t in range(T):
            if _exceeds(used[k, t], chips[k, t]):
                msgs.append(
                    f"placement: {used[k, t]:,.1f} chips of {problem.offers[k]} assigned in "
                    f"{problem.periods[t]} > {chips[k, t]:,.1f} in service"
                )
    got = served(problem, a)
    dem = np.asarray(problem.demand, np.float64)
    minimise = problem.objective in ("min-cost", "min-tco")
    for w in range(W):
        if not problem.has_demand[w]:
            continue
        unit = problem.workload_units[w]
        for t in range(T):
            if minimise and got[t, w] < dem[t, w] * (1 - REL_TOL) - ABS_TOL:
                msgs.append(
                    f"demand: {got[t, w]:,.1f} {unit} of {problem.workload_keys[w]} served in "
                    f"{problem.periods[t]} < {dem[t, w]:,.1f} demanded"
                )
            if not minimise and _exceeds(got[t, w], dem[t, w]):
                msgs.append(
                    f"demand: {got[t, w]:,.1f} {unit} of {problem.workload_keys[w]} counted in "
                    f"{problem.periods[t]} > {dem[t, w]:,.1f} demanded"
                )
    return msgs
