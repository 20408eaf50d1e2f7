"""Integer plans from the relaxed LP: round down, fix and re-solve, repair, greedy fill,
local search -- then the independent checker.

Algorithm (:func:`solve`):

1. Solve the LP relaxation (HiGHS, the default, or the JAX PDHG solver).
2. *Fix and re-solve*: round the purchases down to whole units, fix them as lower bounds
   and re-solve the relaxation on the remainder; repeat while the rounded-down counts
   grow (at most ``resolve_rounds`` times). Rounding down never breaks a capacity row
   (power, floor, supply, capex: all coefficients >= 0).
3. *Repair*: rows that rounding down can break (ratio rules, own-hardware share) are
   fixed one unit at a time: add a unit that helps the row and breaks nothing else (best
   value first), else remove a unit that hurts it (least value lost).
4. *Fill*: add single units greedily, best marginal value first (value per USD as a
   second pass; the better result is kept), while every row still holds.
   ``min-cost``: add the cheapest H100e per USD until the target holds, then drop
   units whose removal keeps every row and the target (most expensive first).
5. *Local search* (max-h100e): remove one unit of a low-value purchase and re-fill;
   keep if the objective improves.
6. *Exact* (default): the HiGHS MILP on the same model, started from the heuristic's
   plan, with a time limit and a gap target; the better plan wins and the proven gap
   is reported. The local search (5) then runs only when ``exact=False``.
7. :func:`perfmodel.fleet.check.check_feasible` on the result; a plan that fails is
   never returned (raises RuntimeError, which would be a bug).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import scipy.sparse as sp

from perfmodel.fleet.check import Plan, check_feasible, integer_plan, plan_objective
from perfmodel.fleet.highs import HighsLP
from perfmodel.fleet.lp import LP, csr
from perfmodel.fleet.milp import solve_exact, solve_milp
from perfmodel.fleet.problem import (
    FleetInfeasible,
    Problem,
    build_lp,
    relaxed_solve,
    require_precheck,
    require_solved,
)
from perfmodel.fleet.tco import solve_ratio

__all__ = ["solve", "round_plan", "solve_relaxed", "default_method"]

TOL = 1e-10  # rows are met to TOL x row scale: stricter than the checker's 1e-9 relative


def default_method() -> str:
    """The default relaxed-LP solver of :func:`solve` and ``perfmodel plan``: "highs".

    Measured (benchmarks/fleet_bench.py): on a CPU, HiGHS is 13-90x faster than the JAX
    PDHG solver on one scenario; PDHG is for batches under ``jit``/``vmap`` (and
    :func:`perfmodel.fleet.solve_relaxed_batch` for variants).
    """
    return "highs"


class _Rows:
    """Capacity/ratio/policy rows restricted to the purchase variables (link and target
    rows excluded: the segment variables are implicit, value = PWL at installed chips)."""

    def __init__(self, problem: Problem, lp: LP):
        K, S, T = problem.shape
        nb = K * S * T
        keep = [
            i for i, nm in enumerate(lp.row_names) if not nm.startswith(("link[", "target_h100e["))
        ]
        A = csr(lp.A_ub)[keep][:, :nb]
        self.A = sp.csc_matrix(A)
        self.Ar = sp.csr_matrix(A)
        self.b = np.asarray(lp.b_ub, dtype=np.float64)[keep]
        self.scale = np.maximum(
            abs(A).max(axis=1).toarray().ravel() if A.nnz else np.zeros(len(keep)),
            np.abs(self.b),
        )
        self.scale = np.where(self.scale > 0, self.scale, 1.0)
        self.names = [lp.row_names[i] for i in keep]
        self.hi = np.floor(np.asarray(lp.hi, dtype=np.float64)[:nb] + 1e-9)
        self.nnz_col = np.diff(self.A.indptr)

    def slack(self, buy_vec):
        return self.b - self.A @ buy_vec

    def can_add(self, slack, buy_vec):
        """Mask of variables to which one more unit can be added keeping every row."""
        data, idx, ptr = np.asarray(self.A.data, np.float64), self.A.indices, self.A.indptr
        bad_nz = (data > 0) & (data > slack[idx] + TOL * self.scale[idx])
        bad = np.zeros(len(buy_vec), dtype=bool)
        if len(data):
            cnt = np.add.reduceat(bad_nz.astype(np.int64), np.minimum(ptr[:-1], len(data) - 1))
            bad = np.where(self.nnz_col > 0, cnt > 0, False)
        return (~bad) & (buy_vec + 1 <= self.hi + 1e-9)

    def can_remove(self, slack, buy_vec):
        """Mask of variables from which one unit can be removed keeping every row."""
        data, idx, ptr = np.asarray(self.A.data, np.float64), self.A.indices, self.A.indptr
        bad_nz = (data < 0) & (-data > slack[idx] + TOL * self.scale[idx])
        bad = np.zeros(len(buy_vec), dtype=bool)
        if len(data):
            cnt = np.add.reduceat(bad_nz.astype(np.int64), np.minimum(ptr[:-1], len(data) - 1))
            bad = np.where(self.nnz_col > 0, cnt > 0, False)
        return (~bad) & (buy_vec >= 1)


class _Value:
    """Vectorised concave PWL value and marginal gains."""

    def __init__(self, problem: Problem):
        self.p = problem
        bx = np.asarray(problem.bp_chips, dtype=np.float64)
        by = np.asarray(problem.bp_h100e, dtype=np.float64)
        dx = bx[..., 1:] - bx[..., :-1]
        self.x0 = bx[..., :-1]
        self.len = dx
        self.slope = np.where(dx > 0, (by[..., 1:] - by[..., :-1]) / np.where(dx > 0, dx, 1.0), 0.0)
        self.cpu = np.asarray(problem.chips_per_unit, dtype=np.float64)
        self.ex = np.asarray(problem.existing_units, dtype=np.float64)
        self.w = np.asarray(problem.period_weight, dtype=np.float64)
        self.price = np.asarray(problem.unit_price_usd, dtype=np.float64)
        self.tiebreak = float(np.asarray(problem.cost_tiebreak))
        self.shape = problem.shape

    def v(self, chips):  # chips [K,S,T] -> H100e [K,S,T]
        seg = np.clip(chips[..., None] - self.x0[:, :, None, :], 0.0, self.len[:, :, None, :])
        return np.einsum("kstj,ksj->kst", seg, self.slope)

    def chips(self, buy):
        return (self.ex[:, :, None] + np.cumsum(buy, axis=2)) * self.cpu[:, None, None]

    def delta(self, buy, sign=+1):
        """Per [K,S,T]: change in H100e at each period t' when one unit is added (sign=+1)
        or removed (-1) at each delivery period t, as D[k,s,t'] (not yet accumulated)."""
        n = self.chips(buy)
        return self.v(n + sign * self.cpu[:, None, None]) - self.v(n)

    def gain_quarters(self, buy, sign=+1):
        """Change in H100e-quarters from one unit more/less delivered at (k,s,t)."""
        D = self.delta(buy, sign) * self.w[None, None, :]
        return np.flip(np.cumsum(np.flip(D, axis=2), axis=2), axis=2)  # sum over t' >= t

    def gain_at(self, buy, tp, sign=+1):
        """Change in H100e at period tp from one unit more/less delivered at (k,s,t)."""
        D = self.delta(buy, sign)[:, :, tp]
        K, S, T = self.shape
        out = np.broadcast_to(D[:, :, None], (K, S, T)).copy()
        out[:, :, tp + 1 :] = 0.0
        return out


def _objective(problem, buy):
    return plan_objective(problem, buy)[0]


def _repair(problem, rows: _Rows, val: _Value, buy, max_iter: int = 100000):
    """Fix violated rows one unit at a time (see module docstring).

    For the most violated row: add a unit that helps it and breaks nothing (best value
    first); else remove a unit that hurts it (least value lost); else add the helping
    unit that leaves the least total violation and lock it (later removals may not undo
    it), so the rows it overloads (budget, power) are repaired by removals elsewhere.
    """
    shape = buy.shape
    bv = buy.reshape(-1).astype(np.float64).copy()
    locked = np.zeros_like(bv)
    price = np.repeat(val.price, shape[1] * shape[2])
    for _ in range(max_iter):
        slack = rows.slack(bv)
        viol = -slack / rows.scale
        i = int(np.argmax(viol)) if len(viol) else -1
        if i < 0 or viol[i] <= TOL:
            return bv.reshape(shape)
        row = rows.Ar.getrow(i)
        cols, coef = row.indices, row.data
        gain = val.gain_quarters(bv.reshape(shape), +1).reshape(-1) - val.tiebreak * price
        addable = rows.can_add(np.where(np.arange(len(slack)) == i, np.inf, slack), bv)
        cand = cols[(coef < 0) & addable[cols]]
        if len(cand):
            v = cand[np.argmax(gain[cand])]
            bv[v] += 1
            continue
        loss = -val.gain_quarters(bv.reshape(shape), -1).reshape(-1)
        rem = cols[(coef > 0) & (bv[cols] - 1 >= locked[cols])]
        if len(rem):
            v = rem[np.argmin(loss[rem])]
            bv[v] -= 1
            continue
        helps = cols[(coef < 0) & (bv[cols] + 1 <= rows.hi[cols] + 1e-9)]
        if not len(helps):
            break
        tot = []
        for v in helps:
            col = rows.A.getcol(v)
            s2 = slack.copy()
            s2[col.indices] -= col.data
            tot.append(np.maximum(-s2 / rows.scale, 0).sum())
        v = helps[int(np.argmin(tot))]
        bv[v] += 1
        locked[v] = bv[v]
    return bv.reshape(shape)


def _rows_ok(rows: _Rows, bv) -> bool:
    return bool(np.all(rows.slack(bv) >= -TOL * rows.scale))


def _compound(problem, rows: _Rows, val: _Value, bv, score, accept, tries: int = 6):
    """One unit of a blocked candidate (best ``score`` first) plus the units that
    :func:`_repair` adds or removes to make every row hold again (e.g. an H100 server
    plus the AI4 computers a ratio rule asks for). Returns the first trial that
    ``accept(trial)`` approves, else None."""
    shape = val.shape
    order = np.argsort(-score)
    for v in order[:tries]:
        if not np.isfinite(score[v]) or bv[v] + 1 > rows.hi[v] + 1e-9:
            continue
        trial = bv.copy()
        trial[v] += 1
        trial = _repair(problem, rows, val, trial.reshape(shape), max_iter=200).reshape(-1)
        if trial[v] >= bv[v] + 1 and _rows_ok(rows, trial) and accept(trial):
            return trial
    return None


def _add_best(problem, rows: _Rows, val: _Value, bv, ok, g, score, measure, tol):
    """One step of the fill loops: add the unit of highest ``score`` among those that
    gain (``g > 0``) and fit (``ok``) in place; if none fits, the first
    :func:`_compound` trial of the blocked ones that raises ``measure`` by more than
    ``tol(measure(bv))``. Returns the new vector, or None when neither exists."""
    feas_score = np.where(ok & (g > 1e-12), score, -np.inf)
    v = int(np.argmax(feas_score))
    if np.isfinite(feas_score[v]):
        bv[v] += 1
        return bv
    base = measure(bv)
    blocked = np.where(~ok & (g > 1e-12), score, -np.inf)
    return _compound(problem, rows, val, bv, blocked, lambda tr: measure(tr) > base + tol(base))


def _fill_max(problem, rows: _Rows, val: _Value, buy, density: bool, max_iter: int = 200000):
    shape = buy.shape
    bv = buy.reshape(-1).astype(np.float64).copy()
    price = np.repeat(val.price, shape[1] * shape[2])
    for _ in range(max_iter):
        ok = rows.can_add(rows.slack(bv), bv)
        if not ok.any():
            break
        g = val.gain_quarters(bv.reshape(shape), +1).reshape(-1) - val.tiebreak * price
        score = g / price if density else g
        nxt = _add_best(
            problem,
            rows,
            val,
            bv,
            ok,
            g,
            score,
            lambda x: _objective(problem, x.reshape(shape)),
            lambda base: 1e-9 * max(1.0, abs(base)),
        )
        if nxt is None:
            break
        bv = nxt
    return bv.reshape(shape)


def _fill_target(problem, rows: _Rows, val: _Value, buy, max_iter: int = 200000):
    """min-cost: add the cheapest H100e (at the target period) per USD until the target holds."""
    shape = buy.shape
    tp = problem.target_period
    target = float(np.asarray(problem.target_h100e))
    bv = buy.reshape(-1).astype(np.float64).copy()
    price = np.repeat(val.price, shape[1] * shape[2])

    def have_at_target(x):
        return val.v(val.chips(x.reshape(shape)))[:, :, tp].sum()

    for _ in range(max_iter):
        have = have_at_target(bv)
        if have >= target * (1 - 1e-12):
            break
        ok = rows.can_add(rows.slack(bv), bv)
        g = val.gain_at(bv.reshape(shape), tp, +1).reshape(-1)
        raw = np.minimum(g, target - have) / price
        nxt = _add_best(problem, rows, val, bv, ok, g, raw, have_at_target, lambda _: 1e-9)
        if nxt is None:
            break
        bv = nxt
    return bv.reshape(shape)


def _prune_target(problem, rows: _Rows, val: _Value, buy):
    """min-cost: drop units (most expensive first) while the target and all rows hold."""
    shape = buy.shape
    tp = problem.target_period
    target = float(np.asarray(problem.target_h100e))
    bv = buy.reshape(-1).astype(np.float64).copy()
    price = np.repeat(val.price, shape[1] * shape[2])
    changed = True
    while changed:
        changed = False
        have = val.v(val.chips(bv.reshape(shape)))[:, :, tp].sum()
        ok = rows.can_remove(rows.slack(bv), bv)
        loss = -val.gain_at(bv.reshape(shape), tp, -1).reshape(-1)
        ok &= have - loss >= target * (1 - 1e-12)
        if ok.any():
            v = int(np.argmax(np.where(ok, price, -np.inf)))
            bv[v] -= 1
            changed = True
    return bv.reshape(shape)


def _local_search(problem, rows, val, buy, rounds: int = 30, max_seconds: float = 1.0):
    """Remove one unit of a low-value purchase and re-fill (at most ``rounds`` moves and
    ``max_seconds``: single-unit moves cost seconds on large problems, where the MILP
    closes the gap instead)."""
    best = buy.copy()
    best_obj = _objective(problem, best)
    shape = buy.shape
    tried = set()
    t_end = time.perf_counter() + max_seconds
    for _ in range(rounds):
        if time.perf_counter() > t_end:
            break
        loss = -val.gain_quarters(best, -1).reshape(-1)
        bv = best.reshape(-1)
        cand = np.where(bv >= 1)[0]
        cand = [
            c
            for c in cand[np.argsort(loss[cand] / np.repeat(val.price, shape[1] * shape[2])[cand])]
            if c not in tried
        ]
        if not cand:
            break
        v = cand[0]
        tried.add(v)
        trial = bv.astype(np.float64).copy()
        trial[v] -= 1
        trial = _fill_max(problem, rows, val, trial.reshape(shape), density=False)
        trial = _repair(problem, rows, val, trial)
        if not check_feasible(problem, trial):
            o = _objective(problem, trial)
            if o > best_obj + 1e-9 * max(1.0, abs(best_obj)):
                best, best_obj = trial, o
                tried.clear()
    return best


def round_plan(
    problem: Problem,
    lp: LP,
    x_relaxed,
    *,
    method: str = "highs",
    resolve_rounds: int = 3,
    local_search: bool = True,
    model=None,
) -> np.ndarray:
    """Integer purchases [K,S,T] from a relaxed solution ``x_relaxed`` (see module doc).

    ``method``: solver of the fix-and-re-solve rounds ("highs", the default, returns exact
    vertices, which round down cleanly; "pdhg" keeps everything in JAX at some speed cost).
    ``model``: the :class:`perfmodel.fleet.highs.HighsLP` of ``lp`` to re-solve in place
    (its purchase lower bounds are restored to ``lp.lo`` on return).
    """
    if method not in ("highs", "pdhg"):
        raise ValueError(f"method = {method!r}; allowed: 'highs', 'pdhg'")
    K, S, T = problem.shape
    nb = K * S * T
    rows = _Rows(problem, lp)
    val = _Value(problem)
    x = np.asarray(x_relaxed, dtype=np.float64)
    buy = np.floor(np.clip(x[:nb], 0, None) + 1e-6).reshape(K, S, T)
    # fix the rounded-down counts and re-solve the relaxation on the remainder
    if method == "highs" and model is None:
        model = HighsLP(lp)
    lo0 = np.asarray(lp.lo, dtype=np.float64)
    try:
        for _ in range(resolve_rounds):
            lo = lo0.copy()
            lo[:nb] = buy.reshape(-1)
            if np.any(lo[:nb] > np.asarray(lp.hi)[:nb] + 1e-9):
                break
            if method == "highs" and model is not None:
                model.set_bounds(lo=lo[:nb], cols=np.arange(nb))
                sol = relaxed_solve(lp, method="highs", model=model)
            else:
                sol = relaxed_solve(dataclasses.replace(lp, lo=lo), method=method)
            if sol.status != "optimal":
                break
            nxt = np.maximum(np.floor(sol.x[:nb] + 1e-6).reshape(K, S, T), buy)
            if np.array_equal(nxt, buy):
                break
            buy = nxt
    finally:
        if model is not None:
            model.set_bounds(lo=lo0[:nb], cols=np.arange(nb))
    buy = _repair(problem, rows, val, buy)
    if problem.objective == "min-cost":
        buy = _fill_target(problem, rows, val, buy)
        buy = _repair(problem, rows, val, buy)
        buy = _fill_target(problem, rows, val, buy)
        return _prune_target(problem, rows, val, buy)
    cands = [_fill_max(problem, rows, val, buy, density=d) for d in (False, True)]
    cands = [_repair(problem, rows, val, c) for c in cands]
    best = max(cands, key=lambda c: (not check_feasible(problem, c), _objective(problem, c)))
    if local_search:
        best = _local_search(problem, rows, val, best)
    return best


def solve_relaxed(problem: Problem, method: str | None = None, **opts):
    """Relaxed LP solution of ``problem`` (:class:`perfmodel.fleet.problem.RelaxedSolution`)."""
    return relaxed_solve(build_lp(problem), method=method or default_method(), **opts)


def solve(
    problem: Problem,
    *,
    method: str | None = None,
    exact: bool = True,
    time_limit_s: float = 5.0,
    mip_rel_gap: float = 1e-4,
    local_search: bool | None = None,
    resolve_rounds: int = 3,
    resolve_method: str = "highs",
) -> Plan:
    """Integer plan that satisfies every constraint (checked independently).

    1. The LP relaxation (``method``: "highs", the default, or "pdhg", the JAX solver),
    2. the rounding heuristic (:func:`round_plan`; its re-solves modify one HiGHS model
       in place; ``resolve_method`` "highs" or "pdhg"),
    3. ``exact`` (default): the HiGHS MILP on the same model, started from the heuristic's
       plan, within ``time_limit_s`` to a relative gap of ``mip_rel_gap``. The better of
       the two plans is returned; the heuristic is the fallback when the MILP finds no
       better point in time. ``plan.extra["gap"]`` is the proven relative gap
       ``(bound - objective) / |objective|`` to the best bound ``plan.extra["bound"]``
       (the MILP's, else the LP relaxation's).

    ``local_search`` (default: only when not ``exact``) runs the heuristic's one-unit
    moves, capped at one second. The Plan's ``method`` string names what produced it.
    Problems with placement of work, retirements or a TCO objective
    (``problem.extended``) are planned by :func:`perfmodel.fleet.milp.solve_exact` (the
    ratio objective by :func:`perfmodel.fleet.tco.solve_ratio`), whatever ``exact`` says.
    Raises :class:`~perfmodel.fleet.problem.FleetInfeasible` naming the binding
    constraint if the problem has no feasible plan.
    """

    # placement, retirements and the TCO objectives: the exact MILP alone (the rounding
    # heuristic below knows the original model only)
    if problem.objective == "max-h100e-per-tco":
        return solve_ratio(problem, time_limit_s=time_limit_s, mip_rel_gap=mip_rel_gap)
    if problem.extended:
        return solve_exact(problem, time_limit_s=time_limit_s, mip_rel_gap=mip_rel_gap)
    t0 = time.perf_counter()
    method = method or default_method()
    if method not in ("highs", "pdhg"):
        raise ValueError(f"method = {method!r}; allowed: 'highs', 'pdhg'")
    if resolve_method not in ("highs", "pdhg"):
        raise ValueError(f"resolve_method = {resolve_method!r}; allowed: 'highs', 'pdhg'")
    require_precheck(problem)
    t_build = time.perf_counter()
    lp = build_lp(problem)
    need_highs = exact or "highs" in (method, resolve_method)
    model = HighsLP(lp) if need_highs else None
    build_s = time.perf_counter() - t_build
    sol = relaxed_solve(lp, method=method, model=model)
    used = method
    if sol.status != "optimal" and method != "highs":
        model = model or HighsLP(lp)
        sol = relaxed_solve(lp, method="highs", model=model)  # PDHG did not converge
        used = f"{method} -> highs fallback"
    require_solved(problem, lp, sol)
    t_round = time.perf_counter()
    buy = round_plan(
        problem,
        lp,
        sol.x,
        method=resolve_method,
        resolve_rounds=resolve_rounds,
        local_search=(not exact) if local_search is None else local_search,
        model=model if resolve_method == "highs" else None,
    )
    heuristic_s = time.perf_counter() - t_round
    viol = check_feasible(problem, buy)
    heur_obj = _objective(problem, buy) if not viol else float("-inf")
    source = f"round/repair (re-solves: {resolve_method})"
    bound = float(sol.objective)
    milp_info = None
    if exact or viol:
        # exact by default; also the last resort when the heuristic's plan fails the checker
        m = solve_milp(
            problem,
            time_limit_s=time_limit_s if exact else 10.0,
            mip_rel_gap=mip_rel_gap if exact else 1e-3,
            model=model or HighsLP(lp),
            start_buy=None if viol else buy,
        )
        milp_info = dict(status=m.status, seconds=m.seconds, objective=m.objective)
        if np.isfinite(m.bound):
            bound = min(bound, float(m.bound))
        if m.buy_units is not None and not check_feasible(problem, m.buy_units):
            m_obj = _objective(problem, m.buy_units)
            if viol or m_obj > heur_obj:
                buy, viol = m.buy_units, []
                source = "HiGHS MILP" + ("" if exact else " fallback")
                if not exact:
                    source += " (heuristic plan failed the checker)"
            elif exact:
                source += " (the HiGHS MILP found nothing better)"
    if viol:
        if problem.objective == "min-cost":
            raise FleetInfeasible(
                f"{problem.name}: no integer plan found meeting the target: {viol[0]}"
            )
        raise RuntimeError(f"{problem.name}: integer plan failed the checker (bug): {viol[:3]}")
    return integer_plan(
        problem,
        buy,
        sol,
        method=f"relaxed {used} + {source}",
        started_s=t0,
        bound=bound,
        gap_target=mip_rel_gap if exact else None,
        build_seconds=build_s,
        heuristic_seconds=heuristic_s,
        heuristic_objective=heur_obj if np.isfinite(heur_obj) else None,
        fallback=source.startswith("HiGHS MILP fallback"),
        exact=milp_info,
    )
