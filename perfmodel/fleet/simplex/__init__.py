"""Batched, warm-started dual simplex in JAX for families of related LPs.

The fleet planner's scenario variants (price draws, delivery delays, power ramps) are
small perturbations of one base LP. PDHG (:mod:`perfmodel.fleet.pdhg`) needs thousands of
iterations per variant whatever its start; a simplex method started from the base LP's
optimal basis needs a few dozen pivots (HiGHS, warm-started the same way on 40 variants of
tesla-2024: median 15, worst 33). This module runs that dual simplex for a whole batch in
one ``jit(vmap(...))`` call, with the batch's shared data shared rather than copied:

- **Shared matrix.** The members' constraint matrices may differ only in a few rows (price
  draws touch the capex rows). The batch keeps member 0's matrix ``K0`` once and, per
  member, only its differing rows ``D`` (``K = K0 + E_rows D``), so the products
  ``rho @ K`` of the whole batch are one matrix-matrix product.
- **Shared inverse.** The start basis is the same for every member; its inverse ``B0^-1``
  (member 0) is computed once. A member's own ``B^-1`` differs by a rank-``r`` term
  (Woodbury: ``B^-1 = B0^-1 - B0^-1[:, rows] Q``, ``Q = (I + V B0^-1[:, rows])^-1 V B0^-1``
  with ``V`` the member's basic columns of ``D``), and each pivot adds a rank-1 term
  ``u v^T`` (``v`` = the pivot row ``e_r^T B^-1``, ``u = -(B^-1 a_q - e_r) / alpha_rq``),
  stored in fixed-size arrays, so FTRAN/BTRAN are a few small matrix-vector products
  and no per-member ``m x m`` matrix exists.

Method (textbook bounded dual simplex, e.g. Koberstein, "The dual simplex method,
techniques for a fast and stable implementation", PhD thesis, Paderborn 2005, ch. 3):
standard form ``min g z  s.t. [K I] z = q`` with ``z = (x, s)``, slacks
``s in [0, inf)`` for ``<=`` rows and ``[0, 0]`` for ``==`` rows, ``g = (-c, 0)``;
rows and columns equilibrated (Ruiz, from :mod:`perfmodel.fleet.pdhg`) with member 0's
scaling. Start: the given basis; dual infeasible boxed nonbasic variables are moved to
their other bound, other dual infeasibilities are removed by shifting their costs
(HiGHS does the same). Pivot: leaving row = largest primal bound violation, Harris
two-pass ratio test on the reduced costs (largest ``|alpha|`` among near-ties), primal and
dual updates; every ``refresh`` pivots the basic values and reduced costs are recomputed
from the (updated) inverse. Stop: no primal violation after a refresh. Then the cost
shifts are removed; if the reduced costs of the true costs still have the optimal signs,
the basis is optimal (status 0), else status :data:`NEEDS_PRIMAL` (not optimal; the
driver re-solves such members with PDHG, warm-started from here). A dual ratio test with
no candidate proves primal infeasibility (status 2). Running out of rank-1 slots
(``max_pivots``) is status 1.

Execution: by default the batch runs in blocks of ``refresh`` pivots on fixed-size chunks
of the members still running (regrouped as members finish), so the work follows the
number of running members rather than the slowest one, and the compiled programs do not
depend on the batch size; early blocks read only the first 16 rank-1 slots. Members that
use up ``max_pivots`` restart in a later round from their current basis with their own
inverse. ``compact=False`` instead runs one fused ``jit(vmap(while_loop))`` per round.

The result is an exact vertex: the objective agrees with HiGHS to round-off, duals
included (``y_ub``, ``y_eq`` as in :class:`perfmodel.fleet.pdhg.LPSolution`). Measured
(benchmarks/fleet_bench.py, 2-core CPU): 1,000 tesla-2024 variants, 248 x 720 each,
all optimal, median 13 pivots, within 3e-11 of HiGHS, 2-2.4 s for the solve.

Not differentiable (use the PDHG solver and :mod:`perfmodel.fleet.sensitivity` for
gradients) and not traceable: the data preparation runs on concrete arrays.
"""

from perfmodel.fleet.simplex.basis import (
    NEEDS_PRIMAL,
    NUMERICAL,
    SIMPLEX_STATUS_NAMES,
    Basis,
    lp_basis,
)
from perfmodel.fleet.simplex.solve import solve_family, solve_lp_batch_simplex

__all__ = [
    "Basis",
    "lp_basis",
    "solve_lp_batch_simplex",
    "solve_family",
    "NEEDS_PRIMAL",
    "NUMERICAL",
    "SIMPLEX_STATUS_NAMES",
]
