"""Fleet planner: chips x sites x quarters under power, capex, supply and policy limits.

Data flow::

    scenario TOML --load_scenario--> Scenario --build_problem--> Problem (pytree)
        --build_lp--> LP --relaxed solve (pdhg in JAX, or HiGHS)--> x
        --round + repair (rounding.solve)--> Plan (integer) --check_feasible--> []
    exact reference: milp.solve_milp (HiGHS MILP); pareto.pareto_front; report.format_plan

Main entry points: :func:`load_scenario`, :func:`build_problem`, :func:`solve`,
:func:`solve_relaxed`, :func:`solve_relaxed_batch`, :func:`check_feasible`.
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


def solve_relaxed_batch(problems, **opts):
    """Relaxed LPs of same-structure problems in one ``jit(vmap)`` PDHG call.

    ``problems``: a sequence of :class:`Problem` (same offers/sites/periods) or one
    Problem whose leaves carry a leading batch axis. Returns the solver's LPSolution with
    a leading batch axis (x, objective, status, ...).
    """
    import jax
    import jax.numpy as jnp

    from perfmodel.fleet.pdhg import solve_lp_batch

    if isinstance(problems, Problem):
        lps = jax.vmap(lambda p: build_lp(p, xp=jnp))(problems)
    else:
        lps = stack_lps([build_lp(p) for p in problems])
    return solve_lp_batch(lps, **opts)
