"""min-cost integer plans (issue 15, item 10): within 1% of the MILP optimum on generated
scenarios, and the proven gap reported, in the text and the JSON, without ``--exact``."""

from __future__ import annotations

import re

import numpy as np
import pytest

from perfmodel.fleet.check import check_feasible, h100e_by_offer
from perfmodel.fleet.milp import solve_milp
from perfmodel.fleet.problem import build_problem
from perfmodel.fleet.report import format_plan, plan_dict
from perfmodel.fleet.rounding import solve
from perfmodel.fleet.testing import generate_scenario


def _min_cost(seed: int, frac: float):
    sc = generate_scenario(seed, n_offers=5, n_sites=2, n_periods=4)
    best = solve(build_problem(sc, value_source="standin"), method="highs", exact=False)
    reach = float(h100e_by_offer(best.problem, best.buy_units).sum(axis=(0, 1))[-1])
    assert reach > 0
    return build_problem(
        sc, value_source="standin", objective="min-cost", target_h100e=frac * reach
    )


@pytest.mark.parametrize("seed, frac", [(0, 0.3), (1, 0.7), (2, 0.5), (5, 0.9)])
def test_min_cost_plan_is_within_1pct_of_the_milp_and_says_so(seed, frac):
    pr = _min_cost(seed, frac)
    plan = solve(pr, method="highs")  # the default: no --exact
    assert check_feasible(pr, plan) == []
    m = solve_milp(pr, time_limit_s=20, mip_rel_gap=1e-6)
    assert (m.objective - plan.objective) / abs(m.objective) <= 0.01  # capex, -M$
    gap = plan.extra["gap"]
    assert 0 <= gap <= 0.01 and plan.extra["bound"] >= m.objective - 1e-6 * abs(m.objective)


@pytest.mark.parametrize("exact", [True, False])
@pytest.mark.parametrize("objective", ["max-h100e", "min-cost"])
def test_the_proven_gap_is_in_the_text_and_the_json(objective, exact):
    pr = _min_cost(3, 0.5) if objective == "min-cost" else None
    if pr is None:
        sc = generate_scenario(3, n_offers=5, n_sites=2, n_periods=4)
        pr = build_problem(sc, value_source="standin")
    plan = solve(pr, method="highs", exact=exact)
    d = plan_dict(plan)
    assert d["proven_gap"] == pytest.approx(plan.extra["gap"]) and np.isfinite(d["proven_gap"])
    (line,) = [s for s in format_plan(plan).splitlines() if s.startswith("Proven gap:")]
    m = re.search(r"Proven gap: ([0-9.]+)%", line)
    assert m is not None
    shown = float(m.group(1)) / 100
    assert shown == pytest.approx(d["proven_gap"], abs=1e-6)
    if objective == "min-cost":  # the bound in dollars, not as the LP's -M$
        assert re.search(r"no plan costs under \$[0-9,.]+M of capex", line)
