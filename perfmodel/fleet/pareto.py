"""Pareto front between capex and delivered compute.

Two sweeps over the same scenario: ``max-h100e`` at budgets scaled by each factor in
``budget_scales`` (the most H100e-quarters a budget buys), and ``min-cost`` for each
H100e target in ``targets`` (the least capex that reaches it). Each point is an integer
plan that passed the checker; dominated points are flagged.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from perfmodel.fleet.check import h100e_by_offer
from perfmodel.fleet.problem import FleetInfeasible, Scenario, build_problem
from perfmodel.fleet.rounding import solve

__all__ = ["ParetoPoint", "pareto_front"]


@dataclasses.dataclass(frozen=True)
class ParetoPoint:
    kind: str  # "budget" or "target"
    parameter: float  # budget scale or target H100e
    capex_usd: float
    h100e_quarters: float
    h100e_target_period: float
    feasible: bool
    dominated: bool = False
    note: str = ""


def _point(kind: str, parameter: float, scenario: Scenario, method, **build) -> ParetoPoint:
    """Solve one problem of the sweep; an infeasible one is kept as a flagged point."""
    pr = build_problem(scenario, **build)
    try:
        p = solve(pr, method=method)
    except FleetInfeasible as e:
        nan = float("nan")
        return ParetoPoint(kind, parameter, nan, nan, nan, False, note=str(e))
    h = h100e_by_offer(pr, p.buy_units).sum(axis=(0, 1))
    return ParetoPoint(
        kind, parameter, p.capex_usd, p.h100e_quarters, float(h[pr.target_period]), True
    )


def pareto_front(
    scenario: Scenario,
    *,
    budget_scales=(0.25, 0.5, 0.75, 1.0, 1.5),
    targets=(),
    method: str | None = None,
    **build_kw,
) -> list[ParetoPoint]:
    """Sweep budgets (max-h100e) and targets (min-cost); return points sorted by capex."""
    for b in budget_scales:
        if not b > 0:
            raise ValueError(f"budget_scales contains {b!r}; each must be > 0")
    sweeps = (  # point kind, objective, the build_problem argument swept, its values
        ("budget", "max-h100e", "budget_scale", budget_scales),
        ("target", "min-cost", "target_h100e", targets),
    )
    pts = [
        _point(kind, float(v), scenario, method, objective=obj, **{arg: float(v)}, **build_kw)
        for kind, obj, arg, values in sweeps
        for v in values
    ]
    ok = [p for p in pts if p.feasible]
    out = []
    for p in pts:
        dom = p.feasible and any(
            q.capex_usd <= p.capex_usd * (1 + 1e-9)
            and q.h100e_quarters > p.h100e_quarters * (1 + 1e-9)
            for q in ok
            if q is not p
        )
        out.append(dataclasses.replace(p, dominated=bool(dom)))
    return sorted(out, key=lambda p: np.inf if not p.feasible else p.capex_usd)
