"""A restarted primal-dual hybrid gradient (PDHG / PDLP-style) LP solver in JAX.

Solves the fleet planner's linear program (:class:`perfmodel.fleet.lp.LP`)::

    maximise   c @ x
    subject to A_ub @ x <= b_ub      (dual y_ub >= 0)
               A_eq @ x == b_eq      (dual y_eq free)
               lo <= x <= hi

as the saddle point problem, with ``g = -c``, ``K = [A_ub; A_eq]``, ``q = [b_ub; b_eq]``::

    min_{lo <= x <= hi}  max_{y_ub >= 0, y_eq}   g @ x + y @ (K @ x - q)

The signs are chosen so that ``y`` is the shadow price of the *maximisation*:
``d opt / d b_ub = y_ub`` and ``d opt / d b_eq = y_eq`` (see :mod:`perfmodel.fleet.sensitivity`).

Method (after Applegate et al., "Practical large-scale linear programming using
primal-dual hybrid gradient", NeurIPS 2021 (PDLP); Lu & Yang, "Restarted Halpern PDHG
for linear programming", 2024 (r2HPDHG, cuPDLP+)):

1. Diagonal preconditioning: ``ruiz_iters`` Ruiz equilibration passes (rows and columns
   divided by the square root of their infinity norm) then one Pock-Chambolle pass
   (alpha = 1: divide by the square root of the row/column 1-norms). The result:
   ``K~ = D_r K D_c``, ``x = D_c x~``, ``y = D_r y~``. This is what makes rows in W,
   USD and chip counts (scales 1e0..1e10) solvable by one step size.
2. Bound/objective rescaling: ``q~`` and the bounds are divided by ``1 + ||q~||``,
   ``g~`` by ``1 + ||g~||``.
3. Fixed steps ``tau = eta / w``, ``sigma = eta * w`` with ``eta = 0.95 / ||K~||_2``
   (``||K~||_2`` from power iteration), so ``tau * sigma * ||K~||^2 < 1``. ``w`` is the
   primal weight, updated at each restart to ``exp(0.5 log(dy/dx) + 0.5 log w)``.
4. The PDHG operator ``T``::

       x+ = clip(x - tau (g + K^T y), lo, hi)
       y+ = proj_Y(y + sigma (K (2 x+ - x) - q))

   ``method="halpern"`` (default) iterates the reflected Halpern scheme
   ``z_{k+1} = (k+1)/(k+2) ((1 + rho) T(z_k) - rho z_k) + 1/(k+2) z_0`` (rho = 1) and
   uses ``T(z_k)`` as the candidate; ``method="average"`` iterates ``z_{k+1} = T(z_k)``
   and uses the better of the current and the average iterate (raPDHG). Measured on
   random fleet LPs (benchmarks/pdhg_bench.py): Halpern needs ~1.7x fewer iterations.
5. Every ``check_every`` iterations: restart (to the candidate; it becomes the new
   anchor ``z_0``) when its weighted KKT error fell below 0.2x (sufficient) or 0.8x
   and stopped falling (necessary) of its value at the last restart, or after 36% of
   all iterations so far (artificial), as in cuPDLP.
6. Termination (status 0) when, in the equilibrated space of step 1, the relative
   primal residual ``||viol(K x - q)|| / (1 + ||q||)``, the relative dual residual
   ``||g + K^T y - lambda|| / (1 + ||g||)`` (``lambda`` = reduced costs the bounds
   absorb) and the relative gap ``|P - D| / (1 + |P| + |D|)`` are all ``<= tol``.
   Status 2 (primal infeasible suspected) / 3 (dual infeasible, i.e. unbounded,
   suspected) when the iterate difference over a check block is a Farkas / recession
   ray to ``infeas_tol`` at two consecutive checks; status 1 at the iteration limit.

Everything is one ``jax.lax.while_loop``, so :func:`solve_lp` is jit-compiled, runs the
same traced or with constant data, and :func:`solve_lp_batch` vmaps it over a leading
scenario axis (optionally in compacting rounds, so that a batch does not run at full
width until its slowest member finishes). Sensitivities come from the duals by the
envelope theorem (:mod:`perfmodel.fleet.sensitivity`), not by unrolling the loop.

With the default ``tol = 1e-6`` the objective is within ~1e-6 (median) of HiGHS on
fleet-like LPs; use ``tol = 1e-8`` or smaller when individual duals matter (their
relative error is larger than the objective's).

Example::

    >>> from perfmodel.fleet.lp import LP
    >>> import jax.numpy as jnp
    >>> lp = LP(c=jnp.array([3., 2.]), A_ub=jnp.array([[1., 1.], [1., 3.]]),
    ...         b_ub=jnp.array([4., 9.]), A_eq=jnp.zeros((0, 2)), b_eq=jnp.zeros(0),
    ...         lo=jnp.zeros(2), hi=jnp.array([3., jnp.inf]))
    >>> sol = solve_lp(lp)
    >>> round(float(sol.objective), 4), int(sol.status)
    (11.0, 0)
"""

from perfmodel.fleet.pdhg.solution import (
    DUAL_INFEASIBLE,
    ITERATION_LIMIT,
    OPTIMAL,
    PRIMAL_INFEASIBLE,
    STATUS_NAMES,
    LPSolution,
    SolverOptions,
)
from perfmodel.fleet.pdhg.solve import solve_lp, solve_lp_batch

__all__ = [
    "LPSolution",
    "SolverOptions",
    "solve_lp",
    "solve_lp_batch",
    "STATUS_NAMES",
    "OPTIMAL",
    "ITERATION_LIMIT",
    "PRIMAL_INFEASIBLE",
    "DUAL_INFEASIBLE",
]
