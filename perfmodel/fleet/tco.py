"""Total cost of ownership of a plan, and the ratio objective (H100e-quarters per TCO $).

TCO over the horizon = capex of the purchases + opex of every unit in service (the
existing fleet included; its capex is sunk):

* energy: IT power x utilisation x PUE x 2,191.5 h per quarter x the site's price (USD
  per MWh; :func:`perfmodel.fleet.check.opex_by_period_usd`);
* the offer's own opex per unit and year (support, maintenance), per quarter in service;
* a unit serves ``lifetime_quarters`` from its delivery quarter, then retires; existing
  units retire at their ``retire`` quarter.

Objectives: ``min-tco`` is linear (capex + horizon opex per purchase, in the LP's
purchase costs, :func:`perfmodel.fleet.build.opex_per_unit_usd`). ``max-h100e-per-tco``
maximises the ratio N(x) / D(x) of H100e-quarters to TCO by Dinkelbach's parametric
method: solve ``max N(x) - lambda D(x)`` (one MILP, :func:`perfmodel.fleet.milp.solve_exact`),
set ``lambda = N(x) / D(x)`` and repeat until ``max N - lambda D`` is within the MILP's
gap of 0 (W. Dinkelbach, "On nonlinear fractional programming", Management Science
13(7), 1967). Each step raises lambda; the last plan's ratio is the optimum to the
stated tolerance.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from perfmodel.errors import InputError
from perfmodel.fleet.check import Plan, capex_by_year_usd, opex_by_period_usd
from perfmodel.fleet.milp import solve_exact
from perfmodel.fleet.problem import Problem
from perfmodel.fleet.values import frozen_leaf

__all__ = ["opex_by_year_usd", "tco_usd", "solve_ratio", "tco_summary"]


def opex_by_year_usd(problem: Problem, buy_units) -> np.ndarray:
    """[Y] opex per calendar year of the units in service, USD."""
    out = np.zeros(len(problem.years))
    np.add.at(
        out, np.asarray(problem.period_year, dtype=int), opex_by_period_usd(problem, buy_units)
    )
    return out


def tco_usd(problem: Problem, buy_units) -> float:
    """Capex of the purchases plus the horizon opex of the fleet in service, USD."""
    return float(
        capex_by_year_usd(problem, buy_units).sum() + opex_by_period_usd(problem, buy_units).sum()
    )


def tco_summary(plan: Plan) -> dict:
    """Capex, opex and TCO per year (USD) and H100e-quarters per $M of TCO."""
    pr = plan.problem
    capex = capex_by_year_usd(pr, plan.buy_units)
    opex = opex_by_year_usd(pr, plan.buy_units)
    tco = float(capex.sum() + opex.sum())
    return dict(
        by_year=[
            dict(year=y, capex_usd=float(c), opex_usd=float(o), tco_usd=float(c + o))
            for y, c, o in zip(pr.years, capex, opex)
        ],
        tco_usd=tco,
        opex_usd=float(opex.sum()),
        h100e_quarters_per_musd_tco=plan.h100e_quarters / (tco / 1e6) if tco > 0 else None,
    )


def solve_ratio(
    problem: Problem,
    *,
    time_limit_s: float = 5.0,
    mip_rel_gap: float = 1e-4,
    max_steps: int = 30,
) -> Plan:
    """Maximise H100e-quarters per TCO dollar by Dinkelbach's method (module docstring).

    Returns the last step's :class:`Plan`; ``plan.extra["dinkelbach"]`` lists each step's
    lambda (H100e-quarters per $M) and ``plan.extra["ratio_h100e_quarters_per_musd"]``
    is the optimum ratio. Raises InputError when the TCO of every plan is zero (no
    energy prices, no purchases): the ratio is then undefined.
    """

    if problem.objective != "max-h100e-per-tco":
        raise InputError("objective", problem.objective, "'max-h100e-per-tco' for solve_ratio")
    lam = 0.0
    steps = []
    plan = None
    for _ in range(max_steps):
        step = dataclasses.replace(problem, tco_lambda=frozen_leaf(lam))
        trial = solve_exact(step, time_limit_s=time_limit_s, mip_rel_gap=mip_rel_gap)
        n = trial.h100e_quarters
        d = tco_usd(problem, trial.buy_units)
        if not d > 0 and plan is not None:
            break  # the empty plan ties at 0: the previous plan's ratio is the optimum
        plan = trial
        if not d > 0:
            raise InputError(
                f"objective = 'max-h100e-per-tco': the plan's TCO is {d:g} USD; give "
                "sites.*.energy_usd_per_mwh or prices so that TCO > 0"
            )
        f = n - lam * d  # max_x N - lambda D at this lambda (to the MILP gap)
        steps.append(dict(lambda_per_musd=lam * 1e6, h100e_quarters=n, tco_usd=d, f=f))
        if steps[1:] and f <= max(mip_rel_gap, 1e-9) * max(n, 1.0):
            break
        lam = n / d
    assert plan is not None
    plan.extra["dinkelbach"] = steps
    plan.extra["ratio_h100e_quarters_per_musd"] = steps[-1]["h100e_quarters"] / (
        steps[-1]["tco_usd"] / 1e6
    )
    plan.method += f" (Dinkelbach, {len(steps)} steps)"
    return plan
