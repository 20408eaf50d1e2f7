"""Batched warm-started dual simplex (perfmodel.fleet.simplex) against HiGHS.

One family shape is used throughout so that each compiled function is built once.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import linprog

from perfmodel.fleet.lp import LP, stack_lps
from perfmodel.fleet.pdhg import OPTIMAL, PRIMAL_INFEASIBLE
from perfmodel.fleet.simplex import Basis, lp_basis, solve_family, solve_lp_batch_simplex
from perfmodel.fleet.testing import random_fleet_lp

BASE = random_fleet_lp(3, n_sites=2, n_chips=4, n_periods=6, n_eq=1, capped_vars=True)


def _variant(base: LP, seed: int, spread: float = 0.25) -> LP:
    """b, c and the budget rows' coefficients perturbed (so the matrix varies in a few rows)."""
    rng = np.random.default_rng(seed)
    A = np.array(base.A_ub)
    budget = [i for i, nm in enumerate(base.row_names) if nm.startswith("budget")]
    A[budget] *= rng.uniform(1 - spread / 2, 1 + spread / 2, size=(len(budget), 1))
    return base.replace(
        c=jnp.asarray(np.asarray(base.c) * rng.uniform(0.95, 1.05, base.c.shape)),
        A_ub=jnp.asarray(A),
        b_ub=jnp.asarray(
            np.asarray(base.b_ub) * rng.uniform(1 - spread, 1 + spread, base.b_ub.shape)
        ),
    )


def _highs(lp: LP):
    bounds = [
        (lo, None if not np.isfinite(hi) else hi)
        for lo, hi in zip(np.asarray(lp.lo), np.asarray(lp.hi))
    ]
    res = linprog(
        -np.asarray(lp.c),
        A_ub=np.asarray(lp.A_ub),
        b_ub=np.asarray(lp.b_ub),
        A_eq=np.asarray(lp.A_eq),
        b_eq=np.asarray(lp.b_eq),
        bounds=bounds,
        method="highs",
    )
    return res


VARIANTS = [_variant(BASE, s) for s in range(12)]
BASIS, BASE_OBJ = lp_basis(BASE)
STACK = stack_lps([BASE] + VARIANTS)
SOL = solve_lp_batch_simplex(STACK, BASIS)


def test_matches_highs_objective_on_every_member():
    status = np.asarray(SOL.status)
    assert np.all(status == OPTIMAL), status
    for i, lp in enumerate([BASE] + VARIANTS):
        ref = -_highs(lp).fun
        assert abs(float(SOL.objective[i]) - ref) <= 1e-8 * abs(ref), (
            i,
            float(SOL.objective[i]),
            ref,
        )


def test_base_member_needs_no_pivot_and_keeps_the_highs_objective():
    assert int(SOL.iterations[0]) == 0
    assert abs(float(SOL.objective[0]) - BASE_OBJ) <= 1e-9 * abs(BASE_OBJ)


def test_kkt_conditions_in_the_lps_own_units():
    """Primal feasibility, dual signs, complementary slackness and zero duality gap: the
    answer is an exact optimum (a certificate), not just an objective close to HiGHS."""
    for i, lp in enumerate([BASE] + VARIANTS):
        x = np.asarray(SOL.x[i])
        y, w = np.asarray(SOL.y_ub[i]), np.asarray(SOL.y_eq[i])
        A, b = np.asarray(lp.A_ub), np.asarray(lp.b_ub)
        Ae, be = np.asarray(lp.A_eq), np.asarray(lp.b_eq)
        scale = 1.0 + np.abs(b)
        assert np.all((A @ x - b) <= 1e-7 * scale), i
        assert np.allclose(Ae @ x, be, rtol=1e-9, atol=1e-7)
        assert np.all(y >= -1e-9 * (1 + np.abs(y).max())), i
        slack = (b - A @ x) / scale
        assert np.all(
            np.abs(y * scale) * np.maximum(slack, 0) <= 1e-6 * (1 + np.abs(y * scale).max())
        ), i
        # reduced costs r = c - A^T y - A_eq^T w: r > 0 only at the upper bound, r < 0 only at 0
        r = np.asarray(lp.c) - y @ A - w @ Ae
        tol = 1e-7 * (1 + np.abs(np.asarray(lp.c)).max())
        hi = np.asarray(lp.hi)
        assert np.all((r <= tol) | (np.abs(x - hi) <= 1e-7 * (1 + np.abs(hi)))), i
        assert np.all((r >= -tol) | (x <= 1e-7)), i
        dual_obj = y @ b + w @ be + np.sum(np.maximum(r, 0) * hi)
        primal_obj = np.asarray(lp.c) @ x
        assert abs(dual_obj - primal_obj) <= 1e-7 * (1 + abs(primal_obj)), i


def test_fused_single_call_and_small_rank1_store_give_the_same_vertices():
    fused = solve_lp_batch_simplex(STACK, BASIS, compact=False)
    rounds = solve_lp_batch_simplex(
        STACK, BASIS, max_pivots=4, refresh=2, rounds=12
    )  # restarts with own inverses
    for other in (fused, rounds):
        assert np.all(np.asarray(other.status) == OPTIMAL)
        np.testing.assert_allclose(
            np.asarray(other.objective), np.asarray(SOL.objective), rtol=1e-10
        )
    assert int(np.max(np.asarray(rounds.iterations))) > 4  # some members did need a second round


def test_default_start_basis_is_member_zeros():
    sol = solve_lp_batch_simplex(stack_lps([VARIANTS[0], VARIANTS[1]]))
    np.testing.assert_allclose(
        np.asarray(sol.objective), np.asarray(SOL.objective[1:3]), rtol=1e-10
    )
    assert int(sol.iterations[0]) == 0


def test_infeasible_member_is_reported_and_others_still_solve():
    bad = VARIANTS[0].replace(
        b_eq=jnp.asarray(np.asarray(VARIANTS[0].b_eq) + 1e7)
    )  # delivery beyond any cap
    assert _highs(bad).status == 2
    sol = solve_lp_batch_simplex(stack_lps([VARIANTS[1], bad]), BASIS)
    assert int(sol.status[1]) == PRIMAL_INFEASIBLE
    assert int(sol.status[0]) == OPTIMAL


def test_solve_family_falls_back_to_pdhg_for_unfinished_members():
    sol, info = solve_family(
        stack_lps([VARIANTS[2], VARIANTS[3]]),
        BASIS,
        max_pivots=1,
        refresh=1,
        rounds=1,
        pdhg_opts=dict(tol=1e-8),
    )
    assert info["fallback"] >= 1 and info["fallback_method"] == "pdhg"
    np.testing.assert_allclose(np.asarray(sol.objective), np.asarray(SOL.objective[3:5]), rtol=1e-5)
    sol, info = solve_family(
        stack_lps([VARIANTS[2], VARIANTS[3]]),
        BASIS,
        max_pivots=1,
        refresh=1,
        rounds=1,
        fallback="highs",
    )
    assert info["fallback"] >= 1 and np.all(np.asarray(sol.status) == OPTIMAL)
    np.testing.assert_allclose(np.asarray(sol.objective), np.asarray(SOL.objective[3:5]), rtol=1e-9)
    with pytest.raises(ValueError, match="fallback"):
        solve_family(STACK, BASIS, fallback="cplex")


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match="basis.stat has shape"):
        solve_lp_batch_simplex(STACK, Basis(stat=jnp.zeros(3, jnp.int32)))
    with pytest.raises(ValueError, match="basic variables"):
        solve_lp_batch_simplex(STACK, Basis(stat=jnp.ones_like(BASIS.stat)))
    with pytest.raises(ValueError, match="max_pivots"):
        solve_lp_batch_simplex(STACK, BASIS, max_pivots=0)
    with pytest.raises(ValueError, match="dual_tol"):
        solve_lp_batch_simplex(STACK, BASIS, dual_tol=0.5)
    with pytest.raises(ValueError, match="not optimal"):
        lp_basis(VARIANTS[0].replace(b_eq=jnp.asarray(np.asarray(VARIANTS[0].b_eq) + 1e7)))
    nan = stack_lps([VARIANTS[0], VARIANTS[0].replace(c=VARIANTS[0].c.at[0].set(jnp.nan))])
    with pytest.raises(ValueError, match=r"LP.c\[1, 0\]"):
        solve_lp_batch_simplex(nan, BASIS)


@pytest.mark.slow
def test_solve_relaxed_batch_on_scenario_variants():
    """The public entry point on generated scenario variants: simplex == PDHG == HiGHS."""
    from perfmodel.fleet import build_lp, generate_problem, solve_relaxed_batch
    from perfmodel.fleet.problem import relaxed_solve

    base = generate_problem(7, 5, 2, 4)
    rng = np.random.default_rng(0)
    probs = [
        base.replace(
            unit_price_usd=base.unit_price_usd * rng.lognormal(0, 0.1, base.shape[0]),
            power_avail_mw=base.power_avail_mw * rng.uniform(0.8, 1.2),
        )
        for _ in range(5)
    ]
    sol = solve_relaxed_batch(probs, base=base)
    ref = np.array([relaxed_solve(build_lp(p), "highs").objective for p in probs])
    np.testing.assert_allclose(np.asarray(sol.objective), ref, rtol=1e-8)
    with pytest.raises(ValueError, match="method"):
        solve_relaxed_batch(probs, method="simplx")
