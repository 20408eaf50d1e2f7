"""Exact reference: the fleet problem with integer purchase units as a MILP (HiGHS).

The same LP as :func:`perfmodel.fleet.problem.build_lp` (concave piecewise-linear value
curves as segment variables, which need no binaries because the curves are concave and
the objective rewards value), with ``buy[k,s,t]`` integer, solved by HiGHS branch and
cut through :class:`perfmodel.fleet.highs.HighsLP` (the planner's default since it
proves its gap; :func:`perfmodel.fleet.rounding.solve` starts it from the rounding
heuristic's plan).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, cast

import numpy as np
import scipy.sparse as sp

from perfmodel.errors import SolverError
from perfmodel.fleet.check import (
    Plan,
    check_feasible,
    installed_units,
    integer_plan,
    plan_objective,
)
from perfmodel.fleet.highs import HighsLP
from perfmodel.fleet.lp import LP, csr, n_eq, n_ub
from perfmodel.fleet.problem import (
    FleetInfeasible,
    Problem,
    build_lp,
    relaxed_solve,
    require_precheck,
    require_solved,
)

__all__ = ["MilpResult", "solve_milp", "solve_exact", "start_vector", "to_scipy_milp"]


@dataclasses.dataclass(frozen=True)
class MilpResult:
    """HiGHS MILP outcome. ``objective``: best integer objective found (LP units);
    ``bound``: best proven bound; ``status``: "optimal", "time limit", "infeasible", ...;
    ``mip_gap``: HiGHS's relative gap between the two."""

    x: np.ndarray | None
    buy_units: np.ndarray | None
    objective: float
    bound: float
    status: str
    seconds: float
    mip_gap: float


def to_scipy_milp(lp: LP) -> dict:
    """Keyword arguments for ``scipy.optimize.milp`` (minimise ``-c @ x``), sparse rows."""
    from scipy.optimize import Bounds, LinearConstraint

    # scipy's Bounds and LinearConstraint take array_like bounds; they are unannotated, so
    # pyright infers ``float`` from their defaults (-inf, inf): hence cast(Any, ...).
    cons = []
    A_ub = csr(lp.A_ub)
    if n_ub(lp):
        cons.append(
            LinearConstraint(A_ub, -np.inf, cast(Any, np.asarray(lp.b_ub, dtype=np.float64)))
        )
    A_eq = csr(lp.A_eq)
    if n_eq(lp):
        b_eq = cast(Any, np.asarray(lp.b_eq, dtype=np.float64))
        cons.append(LinearConstraint(A_eq, b_eq, b_eq))
    n = int(np.shape(lp.c)[-1])
    integ = np.array(lp.integer, dtype=np.int64) if lp.integer else np.zeros(n, np.int64)
    return dict(
        c=-np.asarray(lp.c, dtype=np.float64),
        constraints=cons,
        integrality=integ,
        bounds=Bounds(
            cast(Any, np.asarray(lp.lo, dtype=np.float64)),
            cast(Any, np.asarray(lp.hi, dtype=np.float64)),
        ),
    )


def start_vector(problem: Problem, buy, assign=None) -> np.ndarray:
    """The full LP point of integer purchases ``buy`` [K,S,T]: the segment variables
    filled in order (the concave value at the installed chips), for a MILP start; with
    placement the assignment ``assign`` [K,T,W] (default: none)."""
    K, S, T = problem.shape
    if problem.placement:
        W = problem.n_workloads
        a = np.zeros((K, T, W)) if assign is None else np.asarray(assign, np.float64)
        return np.concatenate([np.asarray(buy, np.float64).reshape(-1), a.reshape(-1)])
    bx = np.asarray(problem.bp_chips, np.float64)
    x0, seglen = bx[..., :-1], bx[..., 1:] - bx[..., :-1]
    cpu = np.asarray(problem.chips_per_unit, np.float64)
    b = np.asarray(buy, np.float64).reshape(K, S, T)
    chips = installed_units(problem, b) * cpu[:, None, None]  # lifetimes, retirements
    seg = np.clip(chips[..., None] - x0[:, :, None, :], 0.0, seglen[:, :, None, :])
    return np.concatenate([b.reshape(-1), seg.reshape(-1)])


def solve_milp(
    problem: Problem,
    *,
    time_limit_s: float = 60.0,
    mip_rel_gap: float = 1e-6,
    lp: LP | None = None,
    model=None,
    start_buy=None,
    start_assign=None,
) -> MilpResult:
    """Solve the integer problem exactly (to ``mip_rel_gap``) with HiGHS.

    ``model``: a :class:`perfmodel.fleet.highs.HighsLP` of the problem's LP to solve in
    place (default: a new one); ``start_buy``: integer purchases [K,S,T] that start the
    search (e.g. the rounding heuristic's plan). Returns a :class:`MilpResult`;
    ``buy_units`` is [K,S,T] (rounded to exact integers).
    """

    if not (time_limit_s > 0):
        raise ValueError(f"time_limit_s = {time_limit_s!r} must be > 0")
    if model is None:
        model = HighsLP(build_lp(problem) if lp is None else lp)
    start = None if start_buy is None else start_vector(problem, start_buy, start_assign)
    t0 = time.perf_counter()
    r = model.solve_mip(time_limit_s=time_limit_s, mip_rel_gap=mip_rel_gap, start=start)
    dt = time.perf_counter() - t0
    K, S, T = problem.shape
    if r.x is None:
        return MilpResult(None, None, float("nan"), r.bound, r.status, dt, float("nan"))
    buy = np.round(r.x[: K * S * T]).reshape(K, S, T).astype(np.int64)
    return MilpResult(r.x, buy, r.objective, r.bound, r.status, dt, r.gap)


def _assignment(problem: Problem, x, buy) -> np.ndarray | None:
    """The [K,T,W] assignment of LP point ``x``, fitted to the chips in service under
    ``buy`` (clipped at 0, scaled down where rounding left it above capacity)."""
    if not problem.placement:
        return None
    K, S, T = problem.shape
    nb = K * S * T
    a = np.clip(np.asarray(x[nb:], np.float64), 0.0, None).reshape(K, T, problem.n_workloads)
    a = np.where(np.asarray(problem.rate)[:, None, :] > 0, a, 0.0)
    cap = (installed_units(problem, buy) * np.asarray(problem.chips_per_unit)[:, None, None]).sum(1)
    used = a.sum(axis=2)
    f = np.where(used > cap, cap / np.maximum(used, 1e-300), 1.0)
    return a * f[:, :, None]


def integer_start(lp: LP, model, x, nb: int, rounds: int = 4):
    """A good integer point for the MILP start, from the LP relaxation ``x``: round the
    integer columns (the first ``nb``) down, fix them as lower bounds and re-solve
    (``rounds`` times, in place on ``model``); round up, largest fraction first, each
    unit that keeps every row on integer columns alone (power, floor, supply, capex,
    ratio, policy); then re-solve the continuous columns (assignment) with the integer
    ones fixed. Returns (integer values [nb], full LP point; the rounded point when the
    last solve fails)."""
    lo0 = np.asarray(lp.lo, np.float64)[:nb].copy()
    hi0 = np.asarray(lp.hi, np.float64)[:nb].copy()
    cols = np.arange(nb)
    buy = np.floor(np.clip(x[:nb], 0, None) + 1e-6)
    try:
        for _ in range(rounds):
            model.set_bounds(lo=np.minimum(buy, hi0), cols=cols)
            r = model.solve()
            if r.status != "optimal":
                break
            x = r.x
            nxt = np.maximum(np.floor(x[:nb] + 1e-6), buy)
            if np.array_equal(nxt, buy):
                break
            buy = nxt
        A = csr(lp.A_ub)
        pure = np.flatnonzero(
            np.asarray((A[:, nb:] != 0).sum(axis=1)).ravel() == 0
        )  # rows on integer columns only
        Ab = sp.csc_matrix(A[pure][:, :nb])
        slack = np.asarray(lp.b_ub, np.float64)[pure] - Ab @ buy
        frac = x[:nb] - buy
        for v in np.argsort(-frac):
            if frac[v] <= 1e-6:
                break
            lo, hi = Ab.indptr[v], Ab.indptr[v + 1]
            idx, val = Ab.indices[lo:hi], Ab.data[lo:hi]
            if buy[v] + 1 <= hi0[v] + 1e-9 and np.all(val <= slack[idx] + 1e-9):
                buy[v] += 1
                slack[idx] -= val
        model.set_bounds(lo=buy, hi=buy, cols=cols)
        r = model.solve()
        full = r.x if r.status == "optimal" else np.concatenate([buy, x[nb:]])
    finally:
        model.set_bounds(lo=lo0, hi=hi0, cols=cols)
    return buy, full


def solve_exact(problem: Problem, *, time_limit_s: float = 5.0, mip_rel_gap: float = 1e-4) -> Plan:
    """The integer plan of a problem with placement, retirements or a TCO objective:
    the LP relaxation (HiGHS; its bound and infeasibility diagnosis), then the HiGHS
    MILP started from the relaxation rounded down (with the assignment scaled to fit),
    then the independent checker. The plan carries the proven gap in ``extra``."""

    t0 = time.perf_counter()
    require_precheck(problem)
    lp = build_lp(problem)
    model = HighsLP(lp)
    build_s = time.perf_counter() - t0
    sol = relaxed_solve(lp, method="highs", model=model)
    require_solved(problem, lp, sol)
    K, S, T = problem.shape
    start, x0 = integer_start(lp, model, sol.x, K * S * T)
    start = start.reshape(K, S, T)
    start_a = _assignment(problem, x0, start)
    lp_bound = float(sol.objective)
    start_plan = Plan(problem, start, 0.0, 0.0, 0.0, assign_chips=start_a)
    start_obj = plan_objective(problem, start, start_a)[0]
    if not check_feasible(problem, start_plan) and (lp_bound - start_obj) <= mip_rel_gap * abs(
        start_obj
    ):
        # the rounded plan is within the gap target of the LP bound: proven, no MILP
        m = MilpResult(None, None, float("nan"), lp_bound, "not needed", 0.0, float("nan"))
    else:
        m = solve_milp(
            problem,
            time_limit_s=time_limit_s,
            mip_rel_gap=mip_rel_gap,
            model=model,
            start_buy=start,
            start_assign=start_a,
        )
    cands = []
    if m.buy_units is not None and m.x is not None:
        cands.append(
            (m.buy_units.astype(np.float64), _assignment(problem, m.x, m.buy_units), "HiGHS MILP")
        )
    cands.append((start, start_a, "relaxation rounded (fix and re-solve)"))
    for buy, a, source in cands:
        plan = Plan(problem, buy, 0.0, 0.0, 0.0, assign_chips=a)
        if not check_feasible(problem, plan):
            break
    else:
        viol = check_feasible(
            problem, Plan(problem, cands[0][0], 0.0, 0.0, 0.0, assign_chips=cands[0][1])
        )
        if problem.objective in ("min-cost", "min-tco"):
            raise FleetInfeasible(
                f"{problem.name}: no integer plan found meeting the demand: {viol[0]}"
            )
        raise SolverError(f"{problem.name}: no integer plan passed the checker: {viol[:3]}")
    bound = float(sol.objective)
    if np.isfinite(m.bound):
        bound = min(bound, float(m.bound))
    return integer_plan(
        problem,
        buy,
        sol,
        method=f"relaxed highs + {source}",
        started_s=t0,
        bound=bound,
        gap_target=mip_rel_gap,
        assign_chips=a,
        build_seconds=build_s,
        exact=dict(status=m.status, seconds=m.seconds, objective=m.objective),
    )
