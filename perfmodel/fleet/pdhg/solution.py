"""The PDHG solver's result (:class:`LPSolution`), options (:class:`SolverOptions`) and
status codes (see :mod:`perfmodel.fleet.pdhg` for the method)."""

from __future__ import annotations

import jax
import jax.core

from perfmodel.hardware import struct

OPTIMAL, ITERATION_LIMIT, PRIMAL_INFEASIBLE, DUAL_INFEASIBLE = 0, 1, 2, 3
STATUS_NAMES = {
    OPTIMAL: "optimal",
    ITERATION_LIMIT: "iteration limit",
    PRIMAL_INFEASIBLE: "primal infeasible (suspected)",
    DUAL_INFEASIBLE: "dual infeasible / unbounded (suspected)",
}
_RUNNING = -1


def status_from_highs(name: str) -> int:
    """The status code of a HiGHS result (:data:`perfmodel.fleet.highs.STATUS` names):
    optimal, infeasible and unbounded map to their codes, any other stop (time or
    iteration limit, interrupt, error) to ITERATION_LIMIT (no solution)."""
    return {"optimal": OPTIMAL, "infeasible": PRIMAL_INFEASIBLE, "unbounded": DUAL_INFEASIBLE}.get(
        name, ITERATION_LIMIT
    )


@struct.dataclass
class LPSolution:
    """Result of :func:`solve_lp` (leaves gain a leading axis under :func:`solve_lp_batch`).

    Attributes:
      x: primal solution [n], in the LP's variable units.
      y_ub: duals of ``A_ub x <= b_ub`` [m_ub], >= 0: objective units per row unit
        (``d opt / d b_ub``).
      y_eq: duals of ``A_eq x == b_eq`` [m_eq] (``d opt / d b_eq``).
      objective: ``c @ x`` (the maximised objective, objective units).
      primal_residual: ``||viol(K x - q)|| / (1 + ||q||)`` in the equilibrated space.
      dual_residual: ``||g + K^T y - lambda|| / (1 + ||g||)`` in the equilibrated space.
      rel_gap: ``|P - D| / (1 + |P| + |D|)``, P/D primal/dual objective.
      iterations: PDHG iterations run (int).
      primal_weight: the solver's final primal weight (pass the solution back as
        ``warm_start`` to start a related LP from here).
      status: 0 optimal within tol, 1 iteration limit, 2 primal infeasible suspected,
        3 dual infeasible (unbounded) suspected. See :data:`STATUS_NAMES`.
    """

    x: jax.Array
    y_ub: jax.Array
    y_eq: jax.Array
    objective: jax.Array
    primal_residual: jax.Array
    dual_residual: jax.Array
    rel_gap: jax.Array
    iterations: jax.Array
    status: jax.Array
    primal_weight: jax.Array


@struct.dataclass
class SolverOptions:
    """Solver settings. Tolerances, limits and steps are pytree leaves (changing them does
    not recompile); the method and loop sizes are static (part of the jit cache key).

    Attributes:
      iters: iteration limit (PDHG steps).
      tol: relative tolerance on primal residual, dual residual and gap.
      infeas_tol: tolerance of the infeasibility certificates.
      step_safety: ``eta = step_safety / ||K||_2``.
      reflection: Halpern reflection rho in [0, 1] (1 = fully reflected ``2T - I``).
      method: "halpern" (reflected restarted Halpern PDHG, r2HPDHG) or "average"
        (restarted average PDHG, raPDHG).
      check_every: PDHG steps between restart / termination checks.
      ruiz_iters: Ruiz equilibration passes.
      power_iters: power-iteration steps for ``||K||_2``.
    """

    iters: int = 100_000
    tol: float = 1e-6
    infeas_tol: float = 1e-8
    step_safety: float = 0.95
    reflection: float = 1.0
    method: str = struct.field(pytree_node=False, default="halpern")
    check_every: int = struct.field(pytree_node=False, default=64)
    ruiz_iters: int = struct.field(pytree_node=False, default=12)
    power_iters: int = struct.field(pytree_node=False, default=64)
