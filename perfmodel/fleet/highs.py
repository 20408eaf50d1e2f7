"""The one HiGHS adapter of the planner (highspy): the LP passed once, modified in place.

:class:`HighsLP` loads an :class:`~perfmodel.fleet.lp.LP` (sparse or dense) into one
``highspy.Highs`` object as ``max c @ x`` with rows ``-inf <= A_ub x <= b_ub`` and
``b_eq <= A_eq x <= b_eq``. Re-solves (the fix-and-re-solve rounds of the rounding, the
sensitivity checks, the MILP after the relaxation) change bounds, right-hand sides or
integrality in place and start from the previous basis; nothing is rebuilt.

Statuses (one mapping, :data:`STATUS`): "optimal", "infeasible", "unbounded",
"time limit", "iteration limit", "interrupted" and "error: <HiGHS model status>".
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import scipy.sparse as sp

from perfmodel.errors import SolverError
from perfmodel.fleet.lp import LP, csr, n_eq, n_ub

__all__ = [
    "HighsLP",
    "LPResult",
    "MipResult",
    "RhsRange",
    "new_highs",
    "stacked_rows",
    "status_name",
]


_BANNER_SHOWN = False


def _hs():
    import highspy

    return highspy


def new_highs(threads: int | None = None):
    """A silent ``highspy.Highs``. HiGHS prints a banner on stdout when the first one of
    a process is made; it goes to stderr instead, so that ``--json`` stays alone on stdout."""
    global _BANNER_SHOWN
    hs = _hs()
    if _BANNER_SHOWN:
        h = hs.Highs()
    else:
        import os
        import sys

        sys.stdout.flush()
        saved = os.dup(1)
        try:
            os.dup2(2, 1)
            h = hs.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        _BANNER_SHOWN = True
    h.setOptionValue("output_flag", False)
    if threads is not None:
        h.setOptionValue("threads", int(threads))
    return h


def status_name(model_status) -> str:
    """Our status string for a ``highspy.HighsModelStatus``."""
    S = _hs().HighsModelStatus
    table = {
        S.kOptimal: "optimal",
        S.kInfeasible: "infeasible",
        S.kUnbounded: "unbounded",
        S.kUnboundedOrInfeasible: "infeasible",  # the planner's LPs are bounded (box, budget)
        S.kTimeLimit: "time limit",
        S.kIterationLimit: "iteration limit",
        S.kInterrupt: "interrupted",
        S.kSolutionLimit: "solution limit",
    }
    return table.get(model_status, f"error: {model_status!s}")


@dataclasses.dataclass(frozen=True)
class LPResult:
    """An LP solve: ``x`` [n], ``objective`` (max c @ x), ``y_ub`` [m_ub] >= 0 and ``y_eq``
    [m_eq]: d opt / d b of the maximisation; ``status``; ``seconds``; ``iterations``."""

    x: np.ndarray
    objective: float
    status: str
    y_ub: np.ndarray
    y_eq: np.ndarray
    seconds: float
    iterations: int


@dataclasses.dataclass(frozen=True)
class MipResult:
    """A MILP solve: ``x`` (None when no integer point was found), ``objective`` (best
    integer point), ``bound`` (proven bound on the optimum), ``gap`` (HiGHS's relative
    gap ``|bound - objective| / |objective|``), ``status``, ``seconds``, ``nodes``."""

    x: np.ndarray | None
    objective: float
    bound: float
    gap: float
    status: str
    seconds: float
    nodes: int


@dataclasses.dataclass(frozen=True)
class RhsRange:
    """How the LP optimum moves when the right-hand sides of some ``<=`` rows move together,
    ``b_ub[rows] += theta * delta``, from HiGHS's ranging at the optimal basis.

    ``slope``: d opt / d theta (objective units per step, the rows' duals times delta);
    ``lo <= 0 <= hi``: the interval of theta over which the optimal basis stays optimal,
    so that ``opt(theta) = opt(0) + slope * theta`` exactly (``-inf``/``inf`` when
    unbounded on that side). At a degenerate optimum a side can be 0: the price holds
    for no step that way and a re-solve is the only figure there."""

    slope: float
    lo: float
    hi: float


def stacked_rows(lp: LP) -> sp.csr_array:
    """The constraint matrix of ``lp`` as HiGHS holds it: inequality rows, then equality
    rows, one float64 CSR array."""
    A = csr(lp.A_ub)
    if n_eq(lp):
        A = sp.csr_array(sp.vstack([A, csr(lp.A_eq)]))
    return A


class HighsLP:
    """One LP held by HiGHS. ``presolve``: HiGHS's presolve ("choose" or "off");
    ``threads``: HiGHS threads (default: HiGHS's choice)."""

    def __init__(
        self,
        lp: LP,
        *,
        presolve: str = "choose",
        threads: int | None = None,
        rows=None,
        highs=None,
    ):
        """``rows``: the LP's constraint matrix, inequality rows then equality rows, as a
        CSR array, where the caller has it already (a family of LPs sharing one pattern);
        default: built from ``lp``. ``highs``: a ``highspy.Highs`` to load the LP into
        (its options and thread pool kept; the previous model replaced)."""
        hs = _hs()
        self.n = int(np.shape(lp.c)[-1])
        self.m_ub, self.m_eq = n_ub(lp), n_eq(lp)
        self.integer = tuple(lp.integer)
        inf = hs.kHighsInf
        A = rows if rows is not None else stacked_rows(lp)
        b_ub = np.asarray(lp.b_ub, np.float64)
        b_eq = np.asarray(lp.b_eq, np.float64)
        model = hs.HighsLp()
        model.num_col_ = self.n
        model.num_row_ = self.m_ub + self.m_eq
        model.sense_ = hs.ObjSense.kMaximize
        model.col_cost_ = np.asarray(lp.c, np.float64)
        self.lo = np.asarray(lp.lo, np.float64).copy()
        self.hi = np.asarray(lp.hi, np.float64).copy()
        model.col_lower_ = np.where(np.isfinite(self.lo), self.lo, -inf)
        model.col_upper_ = np.where(np.isfinite(self.hi), self.hi, inf)
        model.row_lower_ = np.concatenate([np.full(self.m_ub, -inf), b_eq])
        model.row_upper_ = np.concatenate([b_ub, b_eq])
        model.a_matrix_.format_ = hs.MatrixFormat.kRowwise
        model.a_matrix_.num_col_ = self.n
        model.a_matrix_.num_row_ = self.m_ub + self.m_eq
        model.a_matrix_.start_ = A.indptr.astype(np.int32)
        model.a_matrix_.index_ = A.indices.astype(np.int32)
        model.a_matrix_.value_ = np.asarray(A.data, np.float64)
        h = highs if highs is not None else new_highs(threads)
        h.setOptionValue("presolve", presolve)
        self.presolve = presolve
        h.passModel(model)
        self.h = h
        self.b_ub = b_ub.copy()
        self._is_mip = False

    # ---------------------------------------------------------------- in-place changes
    def set_bounds(self, lo=None, hi=None, cols=None) -> None:
        """Change the bounds of ``cols`` (default all) to ``lo``/``hi`` (arrays over cols)."""
        inf = _hs().kHighsInf
        cols = np.arange(self.n) if cols is None else np.asarray(cols, np.int64)
        if lo is not None:
            self.lo[cols] = np.asarray(lo, np.float64)
        if hi is not None:
            self.hi[cols] = np.asarray(hi, np.float64)
        lo_c, hi_c = self.lo[cols], self.hi[cols]
        self.h.changeColsBounds(
            len(cols),
            cols.astype(np.int32),
            np.where(np.isfinite(lo_c), lo_c, -inf),
            np.where(np.isfinite(hi_c), hi_c, inf),
        )

    def set_b_ub(self, rows, values) -> None:
        """Set the right-hand sides of inequality rows ``rows`` to ``values``."""
        inf = _hs().kHighsInf
        rows = np.asarray(rows, np.int64).reshape(-1)
        vals = np.asarray(values, np.float64).reshape(-1)
        self.b_ub[rows] = vals
        self.h.changeRowsBounds(  # pyright: ignore[reportAttributeAccessIssue]
            len(rows), rows.astype(np.int32), np.full(len(rows), -inf), vals
        )

    def set_integer(self, on: bool) -> None:
        """Make the LP's integer columns integer (``on``) or continuous again."""
        hs = _hs()
        idx = np.flatnonzero(np.array(self.integer, dtype=bool)).astype(np.int32)
        if not len(idx) or on == self._is_mip:
            self._is_mip = on
            return
        kind = hs.HighsVarType.kInteger if on else hs.HighsVarType.kContinuous
        self.h.changeColsIntegrality(len(idx), idx, np.array([kind] * len(idx)))
        self._is_mip = on

    # ---------------------------------------------------------------------- solves
    def solve(self) -> LPResult:
        """Solve the LP relaxation (integrality off) from the current basis."""
        self.set_integer(False)
        t0 = time.perf_counter()
        self.h.run()
        dt = time.perf_counter() - t0
        status = status_name(self.h.getModelStatus())
        info = self.h.getInfo()
        it = int(info.simplex_iteration_count) + int(info.ipm_iteration_count)
        if status != "optimal":
            return LPResult(
                np.full(self.n, np.nan),
                float("nan"),
                status,
                np.zeros(self.m_ub),
                np.zeros(self.m_eq),
                dt,
                it,
            )
        sol = self.h.getSolution()
        # HiGHS row duals of a maximisation are d opt / d (row bound): >= 0 on <= rows
        y = np.asarray(sol.row_dual, np.float64)
        return LPResult(
            np.asarray(sol.col_value, np.float64),
            float(info.objective_function_value),
            status,
            y[: self.m_ub],
            y[self.m_ub :],
            dt,
            it,
        )

    def rhs_ranging(self, rows, delta) -> RhsRange:
        """The price and its range for moving ``b_ub[rows]`` by ``theta * delta`` (see
        :class:`RhsRange`), at the basis of the last optimal :meth:`solve`.

        The direction is one extra column ``theta`` fixed at 0 with entries ``-delta`` on
        ``rows`` (so its row activity reads ``A x - delta theta <= b``): its reduced cost is
        the slope and HiGHS's column-bound ranging (``getRanging``) is the interval. The
        column is nonbasic at 0, so the basis stays optimal (no simplex iteration, presolve
        off) and is removed again afterwards."""
        r = self._theta_ranging(rows, delta, 0.0)
        if r is None:
            raise SolverError(
                f"HiGHS ranging: status {status_name(self.h.getModelStatus())} (expected optimal)"
            )
        return RhsRange(r.slope, min(r.lo, 0.0), max(r.hi, 0.0))

    def rhs_side(self, rows, delta, step: float) -> RhsRange | None:
        """One side of a degenerate price (:meth:`rhs_ranging` with a side of width 0):
        the LP re-solved (warm, in place) with ``b_ub[rows] += step * delta``; ``slope``:
        d opt / d theta just past 0 on the side of ``step`` (the one-sided derivative, when
        ``step`` is inside the first linear piece) and the interval of theta over which
        that basis holds, clamped to the side: ``(0, hi)`` for ``step > 0``, ``(lo, 0)``
        for ``step < 0``. None when the LP is infeasible there."""
        r = self._theta_ranging(rows, delta, float(step))
        if r is None:
            return None
        if step > 0:
            return RhsRange(r.slope, 0.0, max(r.hi, float(step)))
        return RhsRange(r.slope, min(r.lo, float(step)), 0.0)

    def _theta_ranging(self, rows, delta, at: float) -> RhsRange | None:
        """Slope and theta interval (absolute) with the direction column fixed at
        ``at``; None when HiGHS does not reach an optimum there."""
        rows = np.asarray(rows, np.int32).reshape(-1)
        d = np.broadcast_to(np.asarray(delta, np.float64), rows.shape)
        h = self.h
        h.setOptionValue("presolve", "off")
        try:
            h.addCol(0.0, at, at, len(rows), rows, -d)
            j = h.getNumCol() - 1
            try:
                h.run()
                if status_name(h.getModelStatus()) != "optimal":
                    return None
                slope = float(h.getSolution().col_dual[j])
                _, rng = h.getRanging()
                if not rng.valid:
                    raise SolverError("HiGHS ranging: no valid basis at the optimum")
                inf = _hs().kHighsInf
                lo = float(rng.col_bound_dn.value_[j])
                hi = float(rng.col_bound_up.value_[j])
            finally:
                h.deleteCols(1, np.array([j], np.int32))
        finally:
            h.setOptionValue("presolve", self.presolve)
        return RhsRange(slope, -np.inf if lo <= -inf else lo, np.inf if hi >= inf else hi)

    def solve_mip(
        self, *, time_limit_s: float, mip_rel_gap: float, start: np.ndarray | None = None
    ) -> MipResult:
        """Solve with the integer columns integer, from the integer point ``start`` (if any),
        within ``time_limit_s`` to a relative gap of ``mip_rel_gap``."""
        if not (time_limit_s > 0 and np.isfinite(time_limit_s)):
            raise ValueError(f"time_limit_s = {time_limit_s!r} must be a finite number > 0")
        if not (0 <= mip_rel_gap < 1):
            raise ValueError(f"mip_rel_gap = {mip_rel_gap!r} must be in [0, 1)")
        hs = _hs()
        self.set_integer(True)
        self.h.setOptionValue("time_limit", float(time_limit_s))
        self.h.setOptionValue("mip_rel_gap", float(mip_rel_gap))
        if start is not None:
            sol = hs.HighsSolution()
            sol.col_value = np.asarray(start, np.float64)
            sol.value_valid = True
            self.h.setSolution(sol)
        t0 = time.perf_counter()
        self.h.run()
        dt = time.perf_counter() - t0
        self.h.setOptionValue("time_limit", float("inf"))
        status = status_name(self.h.getModelStatus())
        info = self.h.getInfo()
        have = int(info.primal_solution_status) == 2  # kSolutionStatusFeasible
        x = np.asarray(self.h.getSolution().col_value, np.float64) if have else None
        obj = float(info.objective_function_value) if have else float("nan")
        bound = float(info.mip_dual_bound)
        gap = float(info.mip_gap) if have else float("inf")
        return MipResult(x, obj, bound, gap, status, dt, int(info.mip_node_count))
