"""Exact reference: the fleet problem with integer purchase units as a MILP (HiGHS).

The same LP as :func:`perfmodel.fleet.problem.build_lp` (concave piecewise-linear value
curves as segment variables, which need no binaries because the curves are concave and
the objective rewards value), with ``buy[k,s,t]`` integer, solved by
``scipy.optimize.milp`` (HiGHS branch and cut).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, cast

import numpy as np

from perfmodel.fleet.lp import LP
from perfmodel.fleet.problem import Problem, build_lp

__all__ = ["MilpResult", "solve_milp", "to_scipy_milp"]


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
    import scipy.sparse as sp
    from scipy.optimize import Bounds, LinearConstraint

    # scipy's Bounds and LinearConstraint take array_like bounds; they are unannotated, so
    # pyright infers ``float`` from their defaults (-inf, inf): hence cast(Any, ...).
    cons = []
    A_ub = np.asarray(lp.A_ub, dtype=np.float64)
    if A_ub.shape[0]:
        cons.append(
            LinearConstraint(
                sp.csr_matrix(A_ub), -np.inf, cast(Any, np.asarray(lp.b_ub, dtype=np.float64))
            )
        )
    A_eq = np.asarray(lp.A_eq, dtype=np.float64)
    if A_eq.shape[0]:
        b_eq = cast(Any, np.asarray(lp.b_eq, dtype=np.float64))
        cons.append(LinearConstraint(sp.csr_matrix(A_eq), b_eq, b_eq))
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


def solve_milp(
    problem: Problem, *, time_limit_s: float = 60.0, mip_rel_gap: float = 1e-6, lp: LP | None = None
) -> MilpResult:
    """Solve the integer problem exactly (to ``mip_rel_gap``) with HiGHS.

    Returns a :class:`MilpResult`; ``buy_units`` is [K,S,T] (rounded to exact integers).
    """
    from scipy.optimize import milp

    if not (time_limit_s > 0):
        raise ValueError(f"time_limit_s = {time_limit_s!r} must be > 0")
    lp = build_lp(problem) if lp is None else lp
    t0 = time.perf_counter()
    res = milp(
        **to_scipy_milp(lp),
        options={"time_limit": float(time_limit_s), "mip_rel_gap": mip_rel_gap, "disp": False},
    )
    dt = time.perf_counter() - t0
    status = {0: "optimal", 1: "time limit", 2: "infeasible", 3: "unbounded"}.get(
        res.status, f"error {res.status}"
    )
    K, S, T = problem.shape
    if res.x is None:
        return MilpResult(None, None, float("nan"), float("nan"), status, dt, float("nan"))
    x = np.asarray(res.x)
    buy = np.round(x[: K * S * T]).reshape(K, S, T).astype(np.int64)
    bound = -float(
        getattr(res, "mip_dual_bound", np.nan)
        if getattr(res, "mip_dual_bound", None) is not None
        else np.nan
    )
    return MilpResult(
        x,
        buy,
        float(-res.fun),
        bound,
        status,
        dt,
        float(
            getattr(res, "mip_gap", np.nan) if getattr(res, "mip_gap", None) is not None else np.nan
        ),
    )
