"""PDHG LP solver (perfmodel.fleet.pdhg) and envelope-theorem sensitivities
(perfmodel.fleet.sensitivity), checked against HiGHS and hand-solved LPs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize as so
from hypothesis import given, settings
from hypothesis import strategies as st

import perfmodel  # noqa: F401  (x64)
from perfmodel.fleet import sensitivity as sens
from perfmodel.fleet.lp import LP, stack_lps, to_scipy
from perfmodel.fleet.pdhg import (
    DUAL_INFEASIBLE,
    ITERATION_LIMIT,
    OPTIMAL,
    PRIMAL_INFEASIBLE,
    solve_lp,
    solve_lp_batch,
)
from perfmodel.fleet.testing import random_fleet_lp

SHAPE = dict(n_sites=2, n_chips=3, n_periods=4, n_eq=1)  # 24 variables, 24 rows: one compile


def lp2(c, A_ub, b_ub, A_eq=None, b_eq=None, lo=None, hi=None, rows=None):
    """A toy LP padded to 2 variables, 3 inequality and 1 equality rows (one compile for all)."""
    c = jnp.asarray(c, jnp.float64)
    n = c.shape[0]
    A_ub = np.asarray(A_ub, np.float64).reshape(-1, n)
    b_ub = np.asarray(b_ub, np.float64)
    A_eq = np.zeros((0, n)) if A_eq is None else np.asarray(A_eq, np.float64).reshape(-1, n)
    b_eq = np.zeros(A_eq.shape[0]) if b_eq is None else np.asarray(b_eq, np.float64)
    rows = tuple(rows or (f"r{i}" for i in range(A_ub.shape[0] + A_eq.shape[0])))
    m_ub, m_eq = A_ub.shape[0], A_eq.shape[0]
    pad_ub, pad_eq = 3 - m_ub, 1 - m_eq  # zero rows: 0 <= 0 and 0 == 0
    A_ub = np.vstack([A_ub, np.zeros((pad_ub, n))])
    b_ub = np.concatenate([b_ub, np.zeros(pad_ub)])
    A_eq = np.vstack([A_eq, np.zeros((pad_eq, n))])
    b_eq = np.concatenate([b_eq, np.zeros(pad_eq)])
    rows = (
        rows[:m_ub]
        + tuple(f"pad_ub{i}" for i in range(pad_ub))
        + rows[m_ub:]
        + tuple(f"pad_eq{i}" for i in range(pad_eq))
    )
    return LP(
        c=c,
        A_ub=jnp.asarray(A_ub),
        b_ub=jnp.asarray(b_ub),
        A_eq=jnp.asarray(A_eq),
        b_eq=jnp.asarray(b_eq),
        lo=jnp.zeros(n) if lo is None else jnp.asarray(lo, jnp.float64),
        hi=jnp.full(n, jnp.inf) if hi is None else jnp.asarray(hi, jnp.float64),
        var_names=tuple(f"x{i}" for i in range(n)),
        row_names=rows,
    )


def highs(lp):
    r = so.linprog(**to_scipy(lp), method="highs")
    assert r.status == 0, r.message
    return -r.fun, r


# ------------------------------------------------------------------ hand-solvable LPs

# max 3 x0 + 2 x1 s.t. x0 + x1 <= 4 (y=2), x0 + 3 x1 <= 9 (slack), 0 <= x0 <= 3 (mu_hi=1)
HAND = lp2(
    [3.0, 2.0], [[1.0, 1.0], [1.0, 3.0]], [4.0, 9.0], hi=[3.0, np.inf], rows=("cap", "other")
)
# max x0 + x1 s.t. x0 + 2 x1 == 4 (y=0.5), 0 <= x0 <= 2 (mu_hi=0.5) -> x = (2, 1), opt 3
HAND_EQ = lp2(
    [1.0, 1.0],
    np.zeros((0, 2)),
    np.zeros(0),
    A_eq=[[1.0, 2.0]],
    b_eq=[4.0],
    hi=[2.0, np.inf],
    rows=("commit",),
)


def test_hand_lp_exact_values():
    sol = solve_lp(HAND)
    assert int(sol.status) == OPTIMAL
    np.testing.assert_allclose(sol.x, [3.0, 1.0], atol=1e-5)
    np.testing.assert_allclose(sol.objective, 11.0, rtol=1e-6)
    np.testing.assert_allclose(sol.y_ub, [2.0, 0.0, 0.0], atol=1e-5)
    g = sens.objective_gradients(HAND, sol)
    np.testing.assert_allclose(g.hi, [1.0, 0.0], atol=1e-5)  # d opt / d hi0 = 3 - 2
    np.testing.assert_allclose(g.A_ub[0], [-6.0, -2.0], atol=1e-4)  # -y0 * x
    assert sens.row_sensitivity(HAND, sol, "cap") == pytest.approx(2.0, abs=1e-5)
    assert sens.var_sensitivity(HAND, sol, "x0") == pytest.approx(3.0, abs=1e-5)


def test_hand_lp_with_equality():
    sol = solve_lp(HAND_EQ)
    assert int(sol.status) == OPTIMAL
    np.testing.assert_allclose(sol.x, [2.0, 1.0], atol=1e-5)
    np.testing.assert_allclose(sol.objective, 3.0, rtol=1e-6)
    np.testing.assert_allclose(sol.y_eq, [0.5], atol=1e-5)
    np.testing.assert_allclose(sens.objective_gradients(HAND_EQ, sol).hi, [0.5, 0.0], atol=1e-5)


def test_free_variables_and_negative_bounds():
    # max x0 - x1, x0 free, x1 >= -1, x0 - x1 <= 2, x0 + x1 <= 0  ->  x0 = 1, x1 = -1, opt 2
    # (x0 - x1 <= 2 binds; x0 + x1 <= 0 binds at (1,-1)): y = (1, 0) + ... check vs HiGHS
    lp = lp2(
        [1.0, -1.0],
        [[1.0, -1.0], [1.0, 1.0], [-1.0, 0.0]],
        [2.0, 0.0, 5.0],
        lo=[-np.inf, -1.0],
        hi=[np.inf, np.inf],
    )
    sol = solve_lp(lp)
    ref, _ = highs(lp)
    assert int(sol.status) == OPTIMAL
    assert float(sol.objective) == pytest.approx(ref, rel=1e-5, abs=1e-6)


# ------------------------------------------------------------------ status flags


def test_primal_infeasible_flag():
    lp = lp2([1.0, 1.0], [[1.0, 1.0]], [-1.0])  # x >= 0, x0 + x1 <= -1
    assert int(solve_lp(lp).status) == PRIMAL_INFEASIBLE


def test_primal_infeasible_equality_flag():
    lp = lp2([1.0, 1.0], [[1.0, 1.0]], [3.0], A_eq=[[1.0, 1.0]], b_eq=[5.0])
    assert int(solve_lp(lp).status) == PRIMAL_INFEASIBLE


def test_unbounded_flag():
    lp = lp2([1.0, 1.0], [[1.0, -1.0]], [1.0])  # x1 can grow forever
    assert int(solve_lp(lp).status) == DUAL_INFEASIBLE


def test_iteration_limit_flag():
    lp = random_fleet_lp(3, **SHAPE)
    sol = solve_lp(lp, iters=64)
    assert int(sol.status) == ITERATION_LIMIT
    assert int(sol.iterations) == 64


# ------------------------------------------------------------------ input validation


@pytest.mark.parametrize(
    "field,value,match",
    [
        ("lo", jnp.array([1.0, 0.0]), "lo"),
        ("c", jnp.array([np.nan, 1.0]), "LP.c"),
        ("A_ub", jnp.ones((3, 3)), "A_ub"),
        ("hi", jnp.array([-np.inf, 1.0]), "LP.hi"),
    ],
)
def test_bad_input_raises_before_tracing(field, value, match):
    lp = HAND.replace(hi=jnp.array([0.5, 1.0])) if field == "lo" else HAND
    with pytest.raises(ValueError, match=match):
        solve_lp(lp.replace(**{field: value}))


def test_bad_options_raise():
    with pytest.raises(ValueError, match="tol"):
        solve_lp(HAND, tol=0.0)
    with pytest.raises(ValueError, match="unknown solver option"):
        solve_lp(HAND, iterations=10)
    with pytest.raises(ValueError, match="batch"):
        solve_lp_batch(HAND)


# ------------------------------------------------------------------ PDHG vs HiGHS


@settings(max_examples=8)
@given(seed=st.integers(0, 10_000), capped=st.booleans())
def test_pdhg_matches_highs_on_fleet_like_lps(seed, capped):
    lp = random_fleet_lp(seed, capped_vars=capped, **SHAPE)
    ref, r = highs(lp)
    sol = solve_lp(lp)
    assert int(sol.status) == OPTIMAL
    assert abs(float(sol.objective) - ref) <= 1e-4 * abs(ref)
    # the returned x is feasible to the (relative) tolerance, row by row
    viol = np.asarray(lp.A_ub @ sol.x - lp.b_ub)
    assert np.all(
        viol
        <= 1e-5
        * (
            1
            + np.abs(np.asarray(lp.b_ub))
            + np.abs(np.asarray(lp.A_ub)) @ np.abs(np.asarray(sol.x))
        )
    )
    # duals are nonnegative and close to HiGHS's marginals (-: scipy minimises -c @ x)
    assert np.all(np.asarray(sol.y_ub) >= 0)
    # strong duality in the original units: b @ y + bound terms == opt
    assert float(sens.lagrangian(lp, sol.x, sol.y_ub, sol.y_eq)) == pytest.approx(ref, rel=1e-4)


# ------------------------------------------------------------------ transforms agree

_LP_A = random_fleet_lp(13, **SHAPE)  # seeds whose LPs converge in a few hundred iterations
_LP_B = random_fleet_lp(8, **SHAPE)


def test_constants_traced_jit_vmap_agree():
    ref_a, _ = highs(_LP_A)
    ref_b, _ = highs(_LP_B)
    plain = float(solve_lp(_LP_A).objective)
    traced = float(jax.jit(lambda lp: solve_lp(lp).objective)(_LP_A))
    const = float(jax.jit(lambda: solve_lp(_LP_A).objective)())
    batch = np.asarray(solve_lp_batch(stack_lps([_LP_A, _LP_B])).objective)
    vmapped = np.asarray(jax.vmap(lambda lp: solve_lp(lp).objective)(stack_lps([_LP_A, _LP_B])))
    for v in (plain, traced, const, batch[0], vmapped[0]):
        assert v == pytest.approx(ref_a, rel=1e-3)
        assert v == pytest.approx(plain, rel=1e-3)
    for v in (batch[1], vmapped[1]):
        assert v == pytest.approx(ref_b, rel=1e-3)


def test_warm_start_same_answer_fewer_iterations():
    """Warm start from a perturbed LP's solution: same optimum, fewer PDHG iterations;
    broadcast to a batch it gives the members' own optima."""
    near = _LP_A.replace(b_ub=_LP_A.b_ub * 1.02)
    cold = solve_lp(_LP_A, tol=1e-7)
    warm = solve_lp(_LP_A, tol=1e-7, warm_start=solve_lp(near, tol=1e-7))
    assert int(warm.status) == OPTIMAL
    assert float(warm.objective) == pytest.approx(float(cold.objective), rel=1e-5)
    assert int(warm.iterations) < int(cold.iterations)
    batch = solve_lp_batch(stack_lps([_LP_A, near]), warm_start=cold, tol=1e-7, compact=False)
    assert float(batch.objective[0]) == pytest.approx(float(cold.objective), rel=1e-5)
    with pytest.raises(ValueError, match="warm_start.x has shape"):
        solve_lp(_LP_A, warm_start=(jnp.zeros(3), cold.y_ub, cold.y_eq))
    with pytest.raises(ValueError, match="NaN or inf"):
        solve_lp(_LP_A, warm_start=(cold.x.at[0].set(jnp.nan), cold.y_ub, cold.y_eq))


@pytest.mark.slow
def test_no_jit_agrees_with_jit():
    with jax.disable_jit():
        sol = solve_lp(HAND, check_every=32)
    assert int(sol.status) == OPTIMAL
    assert float(sol.objective) == pytest.approx(float(solve_lp(HAND).objective), rel=1e-3)


def test_batch_with_infeasible_member():
    bad = _LP_B.replace(b_eq=-jnp.ones_like(_LP_B.b_eq))  # sum of buys == -1
    sol = solve_lp_batch(stack_lps([_LP_A, bad]))
    assert [int(s) for s in sol.status] == [OPTIMAL, PRIMAL_INFEASIBLE]


# ------------------------------------------------------------------ sensitivities vs finite differences


def _fd_rows(lp):
    names = lp.row_names
    picks = {}
    for prefix in ("power[", "budget[", "supply[", "ratio[", "commit["):
        picks[prefix] = [i for i, r in enumerate(names) if r.startswith(prefix)]
    return picks


def test_duals_bracketed_by_one_sided_differences():
    """opt is concave in b, so any optimal dual y lies in [d+, d-]; equal to both where unique."""
    lp = _LP_A
    sol = solve_lp(lp, tol=1e-9)  # duals to ~1e-6 relative (tol is not static: no recompile)
    m_ub = lp.b_ub.shape[0]
    y = np.concatenate([np.asarray(sol.y_ub), np.asarray(sol.y_eq)])
    f0 = sens.highs_optimum(lp)
    checked_unique = 0
    for prefix, rows in _fd_rows(lp).items():
        for i in rows[:6]:
            kind, j = ("ub", i) if i < m_ub else ("eq", i - m_ub)
            b = float((lp.b_ub if kind == "ub" else lp.b_eq)[j])
            h = 1e-4 * max(abs(b), 1.0)
            d_plus, d_minus = sens.finite_difference(lp, kind, j, h)
            slack = 1e-4 * (abs(d_plus) + abs(d_minus)) + 1e-6 * abs(f0) / max(abs(b), 1.0)
            assert d_plus - slack <= y[i] <= d_minus + slack, (
                lp.row_names[i],
                d_plus,
                y[i],
                d_minus,
            )
            if abs(d_plus - d_minus) <= 1e-6 * max(abs(d_plus), 1e-12):
                assert y[i] == pytest.approx(d_plus, rel=2e-3, abs=slack)
                checked_unique += 1
    assert checked_unique >= 5


def test_objective_convex_in_c_with_x_as_subgradient():
    lp = _LP_A
    sol = solve_lp(lp)
    f0 = sens.highs_optimum(lp)
    rng = np.random.default_rng(0)
    for _ in range(4):
        dc = rng.normal(size=lp.c.shape) * np.asarray(lp.c) * 0.05
        f1 = sens.highs_optimum(lp.replace(c=lp.c + dc))
        assert f1 >= f0 + float(dc @ np.asarray(sol.x)) - 1e-4 * abs(f0)


def _priced_lp(params):
    """_LP_A with its budget rows' prices and site-0 power scaled by params (differentiable)."""
    price_scale, power_scale = params
    budget = jnp.array([r.startswith("budget[") for r in _LP_A.row_names[: _LP_A.b_ub.shape[0]]])
    power0 = jnp.array(
        [r.startswith("power[site0") for r in _LP_A.row_names[: _LP_A.b_ub.shape[0]]]
    )
    A = jnp.where(budget[:, None], _LP_A.A_ub * price_scale, _LP_A.A_ub)
    b = jnp.where(power0, _LP_A.b_ub * power_scale, _LP_A.b_ub)
    return _LP_A.replace(A_ub=A, b_ub=b)


def test_envelope_grad_prices_and_power_vs_finite_differences():
    p0 = jnp.array([1.0, 1.0])
    sol = solve_lp(_priced_lp(p0), tol=1e-9)
    g = np.asarray(sens.envelope_grad(_priced_lp, p0, sol))
    for k in range(2):
        h = 1e-4
        e = np.zeros(2)
        e[k] = h
        fp = sens.highs_optimum(_priced_lp(p0 + e))
        fm = sens.highs_optimum(_priced_lp(p0 - e))
        f0 = sens.highs_optimum(_priced_lp(p0))
        d_plus, d_minus = (fp - f0) / h, (f0 - fm) / h
        slack = 1e-3 * (abs(d_plus) + abs(d_minus)) + 1e-6 * abs(f0)
        # opt is not concave in price; check against the central difference where smooth
        if abs(d_plus - d_minus) <= 1e-3 * max(abs(d_plus), abs(d_minus), 1e-9):
            assert g[k] == pytest.approx(0.5 * (d_plus + d_minus), rel=2e-3, abs=slack)
        else:
            assert min(d_plus, d_minus) - slack <= g[k] <= max(d_plus, d_minus) + slack


def test_spec_chain_rule_matches_finite_difference():
    """c depends on a chip spec through a value curve; d opt/d spec = x* @ dc/dspec."""
    base_c = _LP_A.c
    n = base_c.shape[0]
    weight = jnp.linspace(0.5, 1.5, n)

    def c_of(bw):  # a smooth, saturating value curve
        return base_c * (1.0 + weight * bw / (1.0 + bw))

    bw0 = 0.7
    lp0 = _LP_A.replace(c=c_of(bw0))
    sol = solve_lp(lp0, tol=1e-9)
    g = float(sens.spec_gradient(sol.x, jax.jacfwd(c_of)(bw0)))
    g_env = float(sens.envelope_grad(lambda b: _LP_A.replace(c=c_of(b)), bw0, sol))
    h = 1e-4
    fd = (
        sens.highs_optimum(_LP_A.replace(c=c_of(bw0 + h)))
        - sens.highs_optimum(_LP_A.replace(c=c_of(bw0 - h)))
    ) / (2 * h)
    assert g == pytest.approx(fd, rel=2e-3)
    assert g_env == pytest.approx(g, rel=1e-9)


# ------------------------------------------------------------------ sentences


def test_sensitivity_lines_text_and_values():
    sol = solve_lp(HAND)
    lines = sens.sensitivity_lines(
        HAND,
        sol,
        top=5,
        row_units={"cap": ("units", 1, 1.0, "at the cap")},
        objective_unit="points",
        resolve=sens.highs_optimum,
    )
    assert lines == ["1 units more at the cap is worth 2.00 points (dual estimate 2.00)"]
    assert sens.sensitivity_lines(
        HAND,
        sol,
        row_units={"cap": ("units", 1, 1.0, "at the cap")},
        objective_unit="points",
        resolve=None,
    ) == ["1 units more at the cap is worth 2.00 points"]


def test_degenerate_row_one_sided_difference_and_resolved_line():
    """A power-like row the fixed part of the plan already fills: lowering it is infeasible
    (d- = inf), so the dual is only bounded below by d+; the re-solved line states d+ * step."""
    # max x0 + x1; x0 <= 1 (row a), x0 + x1 <= 1 (row b), x0 == 1 (row e) -> x=(1,0);
    # raising a: worth 0; raising b: worth 1 per unit; lowering b below 1: infeasible
    lp = lp2(
        [1.0, 1.0],
        [[1.0, 0.0], [1.0, 1.0]],
        [1.0, 1.0],
        A_eq=[[1.0, 0.0]],
        b_eq=[1.0],
        rows=("a", "b", "e"),
    )
    sol = solve_lp(lp, tol=1e-9)
    d_plus, d_minus = sens.finite_difference(lp, "ub", 1, 0.1)
    assert d_plus == pytest.approx(1.0) and d_minus == np.inf
    assert d_plus - 1e-6 <= float(sol.y_ub[1]) <= d_minus
    lines = sens.sensitivity_lines(
        lp,
        sol,
        top=1,
        row_units={"b": ("MW", 10, 1.0, "at b")},
        objective_unit="pts",
        resolve="highs",
    )
    assert lines[0].startswith("10 MW more at b is worth 10.00 pts")


def test_sensitivity_lines_units_and_prefixes():
    lp = _LP_A
    sol = solve_lp(lp)
    units = {
        "power[": ("MW", 100, 1e6),
        "power[site1": ("MW", 10, 1e6, "at site1"),
        "budget[": ("$B", 1, 1e9),
    }
    table = sens.sensitivity_table(lp, sol, row_units=units, top=50)
    worths = [abs(d["worth"]) for d in table]
    assert worths == sorted(worths, reverse=True)
    for d in table:
        i = lp.row_names.index(d["row"])
        y = float(np.concatenate([np.asarray(sol.y_ub), np.asarray(sol.y_eq)])[i])
        if d["row"].startswith("power[site1"):
            assert (d["unit"], d["step"], d["description"]) == ("MW", 10.0, "at site1")
            assert d["worth"] == pytest.approx(y * 10 * 1e6)
        elif d["row"].startswith("power["):
            assert d["worth"] == pytest.approx(y * 100 * 1e6)
        elif d["row"].startswith("budget["):
            assert d["worth"] == pytest.approx(y * 1e9)
    lines = sens.sensitivity_lines(lp, sol, top=3, row_units=units, resolve=None)
    assert len(lines) == min(3, len(table)) and all("H100e-quarters" in s for s in lines)
    with pytest.raises(KeyError, match="not in the LP"):
        sens.row_sensitivity(lp, sol, "power[nowhere,q0]")


def test_scale_sensitivity_matches_envelope_grad():
    """Scaling the budget rows' coefficients (all prices) agrees with envelope_grad of _priced_lp."""
    p0 = jnp.array([1.0, 1.0])
    lp = _priced_lp(p0)
    sol = solve_lp(lp, tol=1e-9)
    g = np.asarray(sens.envelope_grad(_priced_lp, p0, sol))
    s_price = sens.scale_sensitivity(lp, sol, rows=lambda r: r.startswith("budget["))
    s_power = sens.scale_sensitivity(
        lp, sol, field="b_ub", rows=lambda r: r.startswith("power[site0")
    )
    assert s_price == pytest.approx(g[0], rel=1e-9, abs=1e-9)
    assert s_power == pytest.approx(g[1], rel=1e-9, abs=1e-9)
    # scaling all of c by (1 + s) scales the optimum: d opt / d s = opt
    assert sens.scale_sensitivity(lp, sol, field="c") == pytest.approx(
        float(sol.objective), rel=1e-9
    )
    with pytest.raises(ValueError, match="field"):
        sens.scale_sensitivity(lp, sol, field="lo")


def test_compacting_batch_driver_matches_one_call():
    """Rounds of 64, 128, ... iterations on shrinking sub-batches give the same answers."""
    bad = _LP_B.replace(b_eq=-jnp.ones_like(_LP_B.b_eq))
    stacked = stack_lps([_LP_A, _LP_B, bad])
    one = solve_lp_batch(stacked, compact=False)
    rounds = solve_lp_batch(stacked, compact=True, first_round=64)
    assert (
        [int(s) for s in rounds.status]
        == [int(s) for s in one.status]
        == [OPTIMAL, OPTIMAL, PRIMAL_INFEASIBLE]
    )
    np.testing.assert_allclose(
        np.asarray(rounds.objective)[:2], np.asarray(one.objective)[:2], rtol=1e-4
    )
    assert int(rounds.iterations[0]) > 64  # it really ran more than one round
    with pytest.raises(ValueError, match=r"compact=True\) needs concrete"):
        jax.jit(lambda lp: solve_lp_batch(lp, compact=True).objective)(stacked)
