"""Related LPs (variants of one scenario) solved one by one by HiGHS, each started from
the base LP's optimal basis: the CPU default of :func:`perfmodel.fleet.solve_relaxed_batch`.

Why a loop and not a batch: on a CPU, HiGHS's dual simplex started from the base
scenario's optimal basis needs a few pivots per variant, and nothing in JAX beats it
there (``benchmarks/fleet_bench.py``, 1,000 tesla-2024 variants on 2 cores: HiGHS
warm-started from the same basis 0.54 s of solve time, against 2.0 s for the batched
dual simplex in JAX and about a minute for the vmapped PDHG). The batched solvers stay
the choice under ``jit``/``vmap`` and on accelerators.

The result is an :class:`~perfmodel.fleet.pdhg.LPSolution` with a leading batch axis,
like the batched solvers': a vertex to HiGHS's tolerances, with its residuals measured in
the LP's own units (relative, as the PDHG reports them) so that the fields mean the
same whatever solver filled them.
"""

from __future__ import annotations

import time
from typing import Any

import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from perfmodel.fleet.highs import HighsLP, stacked_rows
from perfmodel.fleet.lp import LP, n_eq, n_ub
from perfmodel.fleet.pdhg.solution import (
    OPTIMAL,
    LPSolution,
    status_from_highs,
)

__all__ = ["solve_lp_batch_highs", "member", "to_numpy", "residuals"]


def member(stacked_lp: LP, i: int) -> LP:
    """Member ``i`` of an LP whose leaves carry a leading batch axis, as NumPy (convert the
    stack once with :func:`to_numpy` before taking many members of a device array)."""
    return _numpy_lp(stacked_lp, lambda a: np.asarray(a[i]))


def to_numpy(stacked_lp: LP) -> LP:
    """The LP with every leaf a NumPy array (one device-to-host copy per leaf)."""
    return _numpy_lp(stacked_lp, np.asarray)


def _numpy_lp(lp: LP, f) -> LP:
    return LP(
        c=f(lp.c),
        A_ub=f(lp.A_ub),
        b_ub=f(lp.b_ub),
        A_eq=f(lp.A_eq),
        b_eq=f(lp.b_eq),
        lo=f(lp.lo),
        hi=f(lp.hi),
    )


def batch_size(stacked_lp: LP) -> int:
    """The leading batch axis of a stacked LP (its ``c`` is ``[B, n]``)."""
    shape = np.shape(stacked_lp.c)
    if len(shape) != 2:
        raise ValueError(f"stacked LP: c has shape {shape}; a batch is [B, n]")
    return int(shape[0])


def residuals(lp: LP, x, y_ub, y_eq, rows=None) -> tuple[float, float, float]:
    """(primal residual, dual residual, relative duality gap) of ``(x, y)`` for ``lp``, in
    its own units: the norm of the row and bound violations
    (``max(A_ub x - b_ub, 0)``, ``A_eq x - b_eq``, ``max(lo - x, 0)``, ``max(x - hi, 0)``)
    over ``1 + ||b||``;
    the reduced cost ``r = c - A^T y`` where no bound lets it be nonzero (r > 0 below an
    upper bound, r < 0 above a lower one) over ``1 + ||c||``; and ``|P - D| / (1 + |P| +
    |D|)`` with ``D = b y + hi max(r, 0) - lo max(-r, 0)`` over finite bounds. ``rows``:
    the constraint matrix as :func:`~perfmodel.fleet.highs.stacked_rows` gives it, where
    the caller has it."""
    A = stacked_rows(lp) if rows is None else rows
    m_ub = n_ub(lp)
    b_ub, b_eq = np.asarray(lp.b_ub, np.float64), np.asarray(lp.b_eq, np.float64)
    c, lo, hi = (np.asarray(getattr(lp, f), np.float64) for f in ("c", "lo", "hi"))
    ax = A @ x
    viol = np.concatenate(
        [
            np.maximum(ax[:m_ub] - b_ub, 0.0),
            ax[m_ub:] - b_eq,
            np.maximum(lo - x, 0.0),  # -inf bounds give 0
            np.maximum(x - hi, 0.0),
        ]
    )
    pres = float(np.linalg.norm(viol) / (1.0 + np.linalg.norm(np.concatenate([b_ub, b_eq]))))
    r = c - A.T @ np.concatenate([y_ub, y_eq])
    up, down = np.maximum(r, 0.0), np.maximum(-r, 0.0)
    bad = np.where(np.isfinite(hi), 0.0, up) + np.where(np.isfinite(lo), 0.0, down)
    dres = float(np.linalg.norm(bad) / (1.0 + np.linalg.norm(c)))
    primal = float(c @ x)
    dual = float(
        b_ub @ y_ub
        + b_eq @ y_eq
        + np.where(np.isfinite(hi), hi, 0.0) @ up
        - np.where(np.isfinite(lo), lo, 0.0) @ down
    )
    gap = abs(primal - dual) / (1.0 + abs(primal) + abs(dual))
    return pres, dres, gap


class _Pattern:
    """The constraint rows of a stacked family (``A_ub`` then ``A_eq``, ``[B, m, n]``) on
    the union of the members' nonzero patterns: the pattern is found once, and member
    ``i``'s CSR array is a gather of its values (no scan of the dense matrix per member)."""

    def __init__(self, stacked_lp: LP):
        self.A_ub, self.A_eq = np.asarray(stacked_lp.A_ub), np.asarray(stacked_lp.A_eq)
        self.m_ub, self.m_eq = self.A_ub.shape[1], self.A_eq.shape[1]
        self.n = self.A_ub.shape[2]
        self.ub = np.nonzero(np.any(self.A_ub != 0, axis=0))  # row-major: CSR order
        self.eq = np.nonzero(np.any(self.A_eq != 0, axis=0))
        r = np.concatenate([self.ub[0], self.eq[0] + self.m_ub])
        self.indices = np.concatenate([self.ub[1], self.eq[1]])
        self.indptr = np.searchsorted(r, np.arange(self.m_ub + self.m_eq + 1))

    def rows(self, i: int) -> sp.csr_array:
        data = np.concatenate([self.A_ub[i][self.ub], self.A_eq[i][self.eq]])
        return sp.csr_array(
            (data, self.indices, self.indptr), shape=(self.m_ub + self.m_eq, self.n)
        )


def solve_lp_batch_highs(
    stacked_lp: LP, base_lp: LP | None = None
) -> tuple[LPSolution, dict[str, Any]]:
    """Solve every member of ``stacked_lp`` (leaves with a leading batch axis) by HiGHS's
    dual simplex (no presolve), each started from the optimal basis of ``base_lp``
    (default: member 0). HiGHS keeps its own thread count (one scheduler per process:
    it cannot change between solves).

    Returns the stacked solution (statuses as :data:`perfmodel.fleet.pdhg.STATUS_NAMES`:
    0 optimal, 2 infeasible, 3 unbounded, 1 any other HiGHS stop; a member with no
    solution returns the point ``x = 0, y = 0`` with its own objective and residuals) and
    ``{"optimal", "seconds", "solve_seconds", "iterations"}``.
    """
    t_start = time.perf_counter()
    stacked_lp = to_numpy(stacked_lp)
    B = batch_size(stacked_lp)
    base = HighsLP(member(stacked_lp, 0) if base_lp is None else base_lp, presolve="off")
    base.h.setOptionValue("solver", "simplex")
    first = base.solve()
    if first.status != "optimal":
        raise ValueError(f"base LP for the warm start is not optimal: HiGHS says {first.status}")
    basis = base.h.getBasis()
    n, m_ub, m_eq = int(np.shape(stacked_lp.c)[-1]), n_ub(stacked_lp), n_eq(stacked_lp)
    family = _Pattern(stacked_lp)
    x = np.zeros((B, n))
    y_ub, y_eq = np.zeros((B, m_ub)), np.zeros((B, m_eq))
    obj, pres, dres, gap = (np.zeros(B) for _ in range(4))
    status, iters = np.zeros(B, np.int32), np.zeros(B, np.int64)
    solve_s = 0.0
    for i in range(B):
        lp_i, rows = member(stacked_lp, i), family.rows(i)
        model = HighsLP(lp_i, presolve="off", rows=rows, highs=base.h)
        model.h.setBasis(basis)
        r = model.solve()
        solve_s += r.seconds
        status[i] = status_from_highs(r.status)
        iters[i] = r.iterations
        if r.status == "optimal":
            x[i], y_ub[i], y_eq[i], obj[i] = r.x, r.y_ub, r.y_eq, r.objective
        # no solution: the point returned stays 0 and its residuals say how far off it is
        pres[i], dres[i], gap[i] = residuals(lp_i, x[i], y_ub[i], y_eq[i], rows)
    sol = LPSolution(
        x=jnp.asarray(x),
        y_ub=jnp.asarray(y_ub),
        y_eq=jnp.asarray(y_eq),
        objective=jnp.asarray(obj),
        primal_residual=jnp.asarray(pres),
        dual_residual=jnp.asarray(dres),
        rel_gap=jnp.asarray(gap),
        iterations=jnp.asarray(iters),
        status=jnp.asarray(status),
        primal_weight=jnp.full((B,), jnp.nan),
    )
    info = dict(
        optimal=int(np.sum(status == OPTIMAL)),
        seconds=time.perf_counter() - t_start,
        solve_seconds=solve_s,
        iterations=int(iters.sum()),
    )
    return sol, info
