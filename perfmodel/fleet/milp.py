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

from perfmodel.fleet.lp import LP, csr, n_eq, n_ub
from perfmodel.fleet.problem import Problem, build_lp

__all__ = ["MilpResult", "solve_milp", "start_vector", "to_scipy_milp"]


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


def start_vector(problem: Problem, buy) -> np.ndarray:
    """The full LP point of integer purchases ``buy`` [K,S,T]: the segment variables
    filled in order (the concave value at the installed chips), for a MILP start."""
    K, S, T = problem.shape
    bx = np.asarray(problem.bp_chips, np.float64)
    x0, seglen = bx[..., :-1], bx[..., 1:] - bx[..., :-1]
    cpu = np.asarray(problem.chips_per_unit, np.float64)
    ex = np.asarray(problem.existing_units, np.float64)
    b = np.asarray(buy, np.float64).reshape(K, S, T)
    chips = (ex[:, :, None] + np.cumsum(b, axis=2)) * cpu[:, None, None]
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
) -> MilpResult:
    """Solve the integer problem exactly (to ``mip_rel_gap``) with HiGHS.

    ``model``: a :class:`perfmodel.fleet.highs.HighsLP` of the problem's LP to solve in
    place (default: a new one); ``start_buy``: integer purchases [K,S,T] that start the
    search (e.g. the rounding heuristic's plan). Returns a :class:`MilpResult`;
    ``buy_units`` is [K,S,T] (rounded to exact integers).
    """
    from perfmodel.fleet.highs import HighsLP

    if not (time_limit_s > 0):
        raise ValueError(f"time_limit_s = {time_limit_s!r} must be > 0")
    if model is None:
        model = HighsLP(build_lp(problem) if lp is None else lp)
    start = None if start_buy is None else start_vector(problem, start_buy)
    t0 = time.perf_counter()
    r = model.solve_mip(time_limit_s=time_limit_s, mip_rel_gap=mip_rel_gap, start=start)
    dt = time.perf_counter() - t0
    K, S, T = problem.shape
    if r.x is None:
        return MilpResult(None, None, float("nan"), r.bound, r.status, dt, float("nan"))
    buy = np.round(r.x[: K * S * T]).reshape(K, S, T).astype(np.int64)
    return MilpResult(r.x, buy, r.objective, r.bound, r.status, dt, r.gap)
