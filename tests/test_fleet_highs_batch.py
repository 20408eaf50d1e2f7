"""Scenario variants solved by HiGHS one at a time from the base basis
(perfmodel.fleet.highs_batch), the CPU default of solve_relaxed_batch: the same optimum as
a cold HiGHS solve of each member, residuals that are those of the returned point, and
infeasible members reported, not hidden."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfmodel.fleet import (
    BATCH_METHODS,
    build_lp,
    default_batch_method,
    generate_problem,
    solve_relaxed_batch,
)
from perfmodel.fleet.highs_batch import residuals, solve_lp_batch_highs
from perfmodel.fleet.lp import LP, stack_lps
from perfmodel.fleet.pdhg import OPTIMAL, PRIMAL_INFEASIBLE
from perfmodel.fleet.problem import relaxed_solve

BASE = generate_problem(7, 5, 2, 4)


def _variants(seed: int, n: int):
    rng = np.random.default_rng(seed)
    return [
        BASE.replace(
            unit_price_usd=BASE.unit_price_usd * rng.lognormal(0, 0.2, BASE.shape[0]),
            power_avail_mw=BASE.power_avail_mw * rng.uniform(0.6, 1.4),
            budget_usd=BASE.budget_usd * rng.uniform(0.5, 1.5),
        )
        for _ in range(n)
    ]


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 4))
def test_each_member_is_the_cold_highs_optimum(seed, n):
    probs = _variants(seed, n)
    sol = solve_relaxed_batch(probs, base=BASE, method="highs")
    ref = np.array([relaxed_solve(build_lp(p), "highs").objective for p in probs])
    assert np.all(np.asarray(sol.status) == OPTIMAL)
    np.testing.assert_allclose(np.asarray(sol.objective), ref, rtol=1e-9, atol=1e-9)
    assert np.all(np.asarray(sol.primal_residual) < 1e-7)
    assert np.all(np.asarray(sol.dual_residual) < 1e-7)
    assert np.all(np.asarray(sol.rel_gap) < 1e-7)


def test_same_vertex_objective_as_the_batched_simplex():
    probs = _variants(1, 3)
    a = solve_relaxed_batch(probs, base=BASE, method="highs")
    b = solve_relaxed_batch(probs, base=BASE, method="simplex")
    np.testing.assert_allclose(np.asarray(a.objective), np.asarray(b.objective), rtol=1e-9)


def test_residuals_by_hand():
    """max x1 + x2 s.t. x1 + x2 <= 1, 0 <= x <= 1: at x = (1, 0), y = 1 the point is
    optimal (residuals 0); at x = (1, 1) the row is 1 over, ||b|| = 1, so 1 / 2."""
    lp = LP(
        c=np.array([1.0, 1.0]),
        A_ub=np.array([[1.0, 1.0]]),
        b_ub=np.array([1.0]),
        A_eq=np.zeros((0, 2)),
        b_eq=np.zeros(0),
        lo=np.zeros(2),
        hi=np.ones(2),
    )
    assert residuals(lp, np.array([1.0, 0.0]), np.array([1.0]), np.zeros(0)) == (0.0, 0.0, 0.0)
    pres, dres, _ = residuals(lp, np.array([1.0, 1.0]), np.array([1.0]), np.zeros(0))
    assert pres == pytest.approx(0.5) and dres == 0.0


def test_an_infeasible_member_is_reported():
    ok = build_lp(BASE)
    # a lower bound on every variable above any upper bound: no point satisfies it
    n = np.shape(ok.c)[0]
    bad = ok.replace(lo=np.full(n, 1e12), hi=np.full(n, 1e12 + 1))  # buys past any budget
    sol, info = solve_lp_batch_highs(stack_lps([ok, bad]), ok)
    status = np.asarray(sol.status)
    assert status[0] == OPTIMAL and status[1] == PRIMAL_INFEASIBLE
    assert np.asarray(sol.objective)[1] == 0.0 and info["optimal"] == 1
    assert np.asarray(sol.primal_residual)[1] > 0.1  # x = 0 is far from x >= 1e12


def test_default_by_backend_and_bad_method():
    assert default_batch_method() == ("highs" if jax.default_backend() == "cpu" else "simplex")
    assert "auto" in BATCH_METHODS
    with pytest.raises(ValueError, match=r"method = 'simplx'; allowed: 'auto', 'highs'"):
        solve_relaxed_batch([BASE], method="simplx")
