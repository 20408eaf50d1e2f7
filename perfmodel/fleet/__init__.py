"""Fleet planner: chips x sites x quarters under power, capex, supply and policy limits.

Data flow::

    scenario TOML --load_scenario (schema)--> Scenario --build_problem--> Problem (pytree)
        --build_lp (build: typed row blocks, sparse CSR)--> LP --HighsLP (highs)--> HiGHS
        --relaxed solve (HiGHS by default, or pdhg in JAX)--> x
        --round + repair, re-solves in place--> heuristic plan
        --HiGHS MILP from that plan (time limit, gap target)--> Plan --check_feasible--> []
    value curves: curves; pareto.pareto_front; report.format_plan
    demand, placement and TCO: demand (schema) -> values (per-chip rates) -> build
        (capacity and demand rows) -> milp.solve_exact / tco.solve_ratio -> report_placement

Main entry points: :func:`load_scenario`, :func:`build_problem`, :func:`solve`,
:func:`solve_relaxed`, :func:`solve_relaxed_batch`, :func:`check_feasible`.

Many variants of one scenario (price, delay, power-ramp draws): :func:`solve_relaxed_batch`
runs a batched dual simplex in JAX (:mod:`perfmodel.fleet.simplex`), warm-started from
the base scenario's optimal basis; the differentiable PDHG solver
(:mod:`perfmodel.fleet.pdhg`) is the one to use under ``jit``/``grad``.
"""

from perfmodel.fleet.check import Plan as Plan
from perfmodel.fleet.check import check_feasible as check_feasible
from perfmodel.fleet.lp import LP as LP
from perfmodel.fleet.lp import stack_lps as stack_lps
from perfmodel.fleet.lp import to_scipy as to_scipy
from perfmodel.fleet.milp import solve_milp as solve_milp
from perfmodel.fleet.problem import (
    FleetInfeasible as FleetInfeasible,
)
from perfmodel.fleet.problem import (
    Problem as Problem,
)
from perfmodel.fleet.problem import (
    Scenario as Scenario,
)
from perfmodel.fleet.problem import (
    build_lp as build_lp,
)
from perfmodel.fleet.problem import (
    build_problem as build_problem,
)
from perfmodel.fleet.problem import (
    generate_problem as generate_problem,
)
from perfmodel.fleet.problem import (
    generate_scenario as generate_scenario,
)
from perfmodel.fleet.problem import (
    load_scenario as load_scenario,
)
from perfmodel.fleet.problem import (
    parse_scenario as parse_scenario,
)
from perfmodel.fleet.problem import (
    scenario_names as scenario_names,
)
from perfmodel.fleet.rounding import solve as solve
from perfmodel.fleet.rounding import solve_relaxed as solve_relaxed


def solve_relaxed_batch(problems, *, method: str = "simplex", base=None, **opts):
    """Relaxed LPs of same-structure problems (scenario variants) in one batched call.

    Args:
      problems: a sequence of :class:`Problem` (same offers/sites/periods) or one Problem
        whose leaves carry a leading batch axis.
      method: "simplex" (default): the batched dual simplex of :mod:`perfmodel.fleet.simplex`
        started from ``base``'s optimal basis, with members it does not finish re-solved by
        the vmapped PDHG; exact vertices (objective equal to HiGHS to ~1e-11). "pdhg": one
        ``jit(vmap)`` PDHG call (works under tracing; thousands of iterations per LP).
      base: the Problem whose optimal basis starts the simplex (default: the first member).
      **opts: options of :func:`perfmodel.fleet.simplex.solve_lp_batch_simplex` or
        :func:`perfmodel.fleet.pdhg.solve_lp_batch`.

    Returns:
      LPSolution with a leading batch axis (x, y_ub, objective, status, iterations, ...).
    """
    import jax
    import jax.numpy as jnp

    if isinstance(problems, Problem):
        lps = jax.vmap(lambda p: build_lp(p, xp=jnp))(problems)
    else:
        lps = stack_lps([build_lp(p) for p in problems])
    if method == "pdhg":
        from perfmodel.fleet.pdhg import solve_lp_batch

        return solve_lp_batch(lps, **opts)
    if method != "simplex":
        raise ValueError(f"method = {method!r}; allowed: 'simplex', 'pdhg'")
    from perfmodel.fleet.simplex import lp_basis, solve_family

    basis = lp_basis(build_lp(base))[0] if base is not None else None
    return solve_family(lps, basis, **opts)[0]
