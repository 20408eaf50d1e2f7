"""Simplex bases and status codes: :class:`Basis` (one state per variable and row slack)
and :func:`lp_basis`, the optimal basis of one LP from HiGHS, the start of the batched dual
simplex (:mod:`perfmodel.fleet.simplex`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from perfmodel.fleet.highs import HighsLP
from perfmodel.fleet.pdhg.checks import _check_shapes, _check_values
from perfmodel.fleet.pdhg.solution import STATUS_NAMES
from perfmodel.hardware import struct

NEEDS_PRIMAL, NUMERICAL = 4, 5
SIMPLEX_STATUS_NAMES = dict(STATUS_NAMES)
SIMPLEX_STATUS_NAMES[NEEDS_PRIMAL] = "not optimal after removing cost shifts (needs primal simplex)"
SIMPLEX_STATUS_NAMES[NUMERICAL] = "numerical trouble (tiny or inconsistent pivot)"
_RUNNING = -1
_INFEAS_TOL = 1e-7  # a bound violation (scaled, values O(1)) no pivot can fix: infeasible

# variable states in the standard form
BASIC, AT_LO, AT_HI, FREE, FIXED = 0, 1, 2, 3, 4


@struct.dataclass
class Basis:
    """A simplex basis of ``max c x, A_ub x <= b_ub, A_eq x == b_eq, lo <= x <= hi``.

    Attributes:
      stat: ``[n + m]`` int32, one state per structural variable then per row slack
        (``s = b - A x``): 0 basic, 1 at lower bound, 2 at upper bound, 3 free at 0,
        4 fixed (lower = upper; equality-row slacks).
    """

    stat: jax.Array


def _highs_model(lp):

    # a basis of the model itself, not of a presolved one
    return HighsLP(lp, presolve="off").h


def lp_basis(lp) -> tuple[Basis, float]:
    """The optimal basis of one (unbatched, concrete) LP from HiGHS (dual simplex, no
    presolve), and its optimal objective. Raises ValueError if the LP is not optimal."""
    import highspy

    _check_shapes(lp, batched=False)
    _check_values(lp)
    h = _highs_model(lp)
    h.setOptionValue("solver", "simplex")
    h.run()
    st = h.getModelStatus()
    if st != highspy.HighsModelStatus.kOptimal:
        raise ValueError(
            f"base LP for the warm start is not optimal: HiGHS says {h.modelStatusToString(st)}"
        )
    basis = h.getBasis()
    K = highspy.HighsBasisStatus
    lo, hi = np.asarray(lp.lo, np.float64), np.asarray(lp.hi, np.float64)
    n, m_ub = lo.shape[0], np.shape(lp.b_ub)[0]
    col = np.empty(n, np.int32)
    for j, s in enumerate(basis.col_status):
        if s == K.kBasic:
            col[j] = BASIC
        elif lo[j] == hi[j]:
            col[j] = FIXED
        elif s == K.kLower:
            col[j] = AT_LO
        elif s == K.kUpper:
            col[j] = AT_HI
        else:
            col[j] = (
                FREE
                if not (np.isfinite(lo[j]) or np.isfinite(hi[j]))
                else (AT_LO if np.isfinite(lo[j]) else AT_HI)
            )
    row = np.empty(len(basis.row_status), np.int32)
    for i, s in enumerate(basis.row_status):
        if s == K.kBasic:
            row[i] = BASIC
        else:  # row at a bound: slack s = b - a x at 0
            row[i] = AT_LO if i < m_ub else FIXED
    stat = np.concatenate([col, row])
    if int(np.sum(stat == BASIC)) != len(row):
        raise ValueError(
            f"HiGHS basis has {int(np.sum(stat == BASIC))} basic variables for {len(row)} rows"
        )
    return Basis(stat=jnp.asarray(stat)), float(h.getInfo().objective_function_value)
