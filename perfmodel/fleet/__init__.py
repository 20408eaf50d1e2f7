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
solves them from the base scenario's optimal basis, by HiGHS one at a time on a CPU
(:mod:`perfmodel.fleet.highs_batch`) or by a batched dual simplex in JAX on an
accelerator (:mod:`perfmodel.fleet.simplex`); the differentiable PDHG solver
(:mod:`perfmodel.fleet.pdhg`) is the one to use under ``jit``/``grad``.
"""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING

#: The public names and the submodule each comes from. They load on first use
#: (:func:`__getattr__`): ``perfmodel plan`` imports the planner it runs, not the batch
#: solvers (PDHG, the batched simplex) and the test generators.
_LAZY = {
    "Plan": "check",
    "check_feasible": "check",
    "solve_lp_batch_highs": "highs_batch",
    "LP": "lp",
    "stack_lps": "lp",
    "to_scipy": "lp",
    "solve_milp": "milp",
    "solve_lp_batch": "pdhg",
    "FleetInfeasible": "problem",
    "Problem": "problem",
    "Scenario": "problem",
    "build_lp": "problem",
    "build_problem": "problem",
    "load_scenario": "problem",
    "parse_scenario": "problem",
    "scenario_names": "problem",
    "solve": "rounding",
    "solve_relaxed": "rounding",
    "lp_basis": "simplex",
    "solve_family": "simplex",
    "generate_problem": "testing",
    "generate_scenario": "testing",
}

if TYPE_CHECKING:
    from perfmodel.fleet.check import Plan as Plan
    from perfmodel.fleet.check import check_feasible as check_feasible
    from perfmodel.fleet.highs_batch import solve_lp_batch_highs as solve_lp_batch_highs
    from perfmodel.fleet.lp import LP as LP
    from perfmodel.fleet.lp import stack_lps as stack_lps
    from perfmodel.fleet.lp import to_scipy as to_scipy
    from perfmodel.fleet.milp import solve_milp as solve_milp
    from perfmodel.fleet.pdhg import solve_lp_batch as solve_lp_batch
    from perfmodel.fleet.problem import FleetInfeasible as FleetInfeasible
    from perfmodel.fleet.problem import Problem as Problem
    from perfmodel.fleet.problem import Scenario as Scenario
    from perfmodel.fleet.problem import build_lp as build_lp
    from perfmodel.fleet.problem import build_problem as build_problem
    from perfmodel.fleet.problem import load_scenario as load_scenario
    from perfmodel.fleet.problem import parse_scenario as parse_scenario
    from perfmodel.fleet.problem import scenario_names as scenario_names
    from perfmodel.fleet.rounding import solve as solve
    from perfmodel.fleet.rounding import solve_relaxed as solve_relaxed
    from perfmodel.fleet.simplex import lp_basis as lp_basis
    from perfmodel.fleet.simplex import solve_family as solve_family
    from perfmodel.fleet.testing import generate_problem as generate_problem
    from perfmodel.fleet.testing import generate_scenario as generate_scenario


def __getattr__(name: str):
    """The public names of :data:`_LAZY`, imported from their submodule on first use."""
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'perfmodel.fleet' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"perfmodel.fleet.{mod}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


#: The methods of :func:`solve_relaxed_batch` ("auto" picks one by backend).
BATCH_METHODS = ("auto", "highs", "simplex", "pdhg")


@functools.cache
def _build_batch():
    """The LPs of a stacked Problem, one compiled program per problem shape."""
    # here, not at the top: `perfmodel.fleet` loads its modules on first use, so that a
    # plan does not import the batch solvers (and JAX's tracing of them)
    import jax
    import jax.numpy as jnp

    from perfmodel.fleet.problem import build_lp

    return jax.jit(jax.vmap(lambda p: build_lp(p, xp=jnp)))


def default_batch_method() -> str:
    """The default of :func:`solve_relaxed_batch` on this JAX backend: "highs" on a CPU
    (HiGHS one by one from the base basis is the fastest there, measured in
    ``benchmarks/fleet_bench.py``), "simplex" on an accelerator (the batched dual simplex
    in JAX; not yet measured on one, see ``benchmarks/gpu_suite.py``)."""
    import jax

    return "highs" if jax.default_backend() == "cpu" else "simplex"


def solve_relaxed_batch(problems, *, method: str = "auto", base=None, **opts):
    """Relaxed LPs of same-structure problems (scenario variants) in one call.

    Args:
      problems: a sequence of :class:`Problem` (same offers/sites/periods) or one Problem
        whose leaves carry a leading batch axis.
      method: "auto" (default): :func:`default_batch_method`. "highs": HiGHS's dual
        simplex one member at a time, each started from ``base``'s optimal basis
        (:mod:`perfmodel.fleet.highs_batch`). "simplex": the batched dual simplex of
        :mod:`perfmodel.fleet.simplex` started from the same basis, with members it does
        not finish re-solved by the vmapped PDHG. All three give vertices equal to HiGHS
        to ~1e-11. "pdhg": one ``jit(vmap)`` PDHG call (works under tracing; thousands of
        iterations per LP).
      base: the Problem whose optimal basis starts the simplex (default: the first member).
      **opts: options of :func:`perfmodel.fleet.highs_batch.solve_lp_batch_highs`,
        :func:`perfmodel.fleet.simplex.solve_lp_batch_simplex` or
        :func:`perfmodel.fleet.pdhg.solve_lp_batch`.

    Returns:
      LPSolution with a leading batch axis (x, y_ub, objective, status, iterations, ...).
    """
    if method == "auto":
        method = default_batch_method()
    if method not in BATCH_METHODS:
        raise ValueError(f"method = {method!r}; allowed: {', '.join(map(repr, BATCH_METHODS))}")
    # the batch solvers load when a batch is solved, not when `perfmodel.fleet` is imported
    from perfmodel.fleet.highs_batch import solve_lp_batch_highs
    from perfmodel.fleet.lp import stack_lps
    from perfmodel.fleet.pdhg import solve_lp_batch
    from perfmodel.fleet.problem import Problem, build_lp
    from perfmodel.fleet.simplex import lp_basis, solve_family

    if isinstance(problems, Problem):
        lps = _build_batch()(problems)
    else:
        lps = stack_lps([build_lp(p) for p in problems])
    if method == "pdhg":
        return solve_lp_batch(lps, **opts)
    base_lp = build_lp(base) if base is not None else None
    if method == "highs":
        return solve_lp_batch_highs(lps, base_lp, **opts)[0]
    basis = lp_basis(base_lp)[0] if base_lp is not None else None
    return solve_family(lps, basis, **opts)[0]
