"""``relaxed_solve`` returns the duals of both row blocks (y_ub, y_eq), so its result goes
straight into :mod:`perfmodel.fleet.sensitivity` (no namespace to build by hand)."""

import jax.numpy as jnp
import numpy as np
import pytest

import perfmodel  # noqa: F401  (x64)
from perfmodel.fleet import sensitivity as sens
from perfmodel.fleet.lp import LP
from perfmodel.fleet.problem import RelaxedSolution, relaxed_solve

# max x0 + 2 x1 + 3 x2 + x3
#   cap01: x0 + x1 <= 4          cap23: x2 + x3 <= 5
#   fix0:  x0 == 1               link:  x2 - x3 == 1          0 <= x <= 10
# optimum: x = (1, 3, 3, 2), opt = 1 + 6 + 9 + 2 = 18.
# In the rhs (b1, b2 | e1, e2): opt = e1 + 2 (b1 - e1) + 2 (b2 - e2) + 3 e2
#   -> y_ub = (2, 2), y_eq = (-1, 1): one equality row costs, one pays (both signs checked).
EQ_LP = LP(
    c=jnp.array([1.0, 2.0, 3.0, 1.0]),
    A_ub=jnp.array([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]]),
    b_ub=jnp.array([4.0, 5.0]),
    A_eq=jnp.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, -1.0]]),
    b_eq=jnp.array([1.0, 1.0]),
    lo=jnp.zeros(4),
    hi=jnp.full(4, 10.0),
    var_names=("x0", "x1", "x2", "x3"),
    row_names=("cap01", "cap23", "fix0", "link"),
)


def test_highs_relaxed_solution_has_eq_duals_matching_finite_differences():
    sol = relaxed_solve(EQ_LP, "highs")
    assert isinstance(sol, RelaxedSolution) and sol.status == "optimal"
    assert sol.objective == pytest.approx(18.0)
    np.testing.assert_allclose(sol.x, [1.0, 3.0, 3.0, 2.0], atol=1e-9)
    np.testing.assert_allclose(sol.y_ub, [2.0, 2.0], atol=1e-9)
    assert sol.y_eq.shape == (2,)
    np.testing.assert_allclose(sol.y_eq, [-1.0, 1.0], atol=1e-9)
    # y_eq = d opt / d b_eq of the maximisation: central difference of the HiGHS optimum
    h = 1e-3
    for i in range(2):
        d_plus, d_minus = sens.finite_difference(EQ_LP, "eq", i, h)
        assert d_plus == pytest.approx(d_minus, abs=1e-7)  # nondegenerate: unique dual
        assert float(sol.y_eq[i]) == pytest.approx(0.5 * (d_plus + d_minus), abs=1e-6)
        assert sens.row_sensitivity(EQ_LP, sol, EQ_LP.row_names[2 + i]) == pytest.approx(
            float(sol.y_eq[i])
        )


def test_sensitivity_lines_accepts_relaxed_solution_directly():
    sol = relaxed_solve(EQ_LP, "highs")
    units = {"fix0": ("units", 1, 1.0, "on fix0"), "link": ("units", 1, 1.0, "on link")}
    lines = sens.sensitivity_lines(EQ_LP, sol, top=4, row_units=units, objective_unit="pts")
    assert len(lines) == 4
    assert "1 units more on fix0 costs 1.00 pts (dual estimate -1.00)" in lines
    assert "1 units more on link is worth 1.00 pts (dual estimate 1.00)" in lines
    table = sens.sensitivity_table(EQ_LP, sol, top=4)
    assert {(d["row"], d["kind"]) for d in table} == {
        ("cap01", "ub"),
        ("cap23", "ub"),
        ("fix0", "eq"),
        ("link", "eq"),
    }
    g = sens.objective_gradients(EQ_LP, sol)
    np.testing.assert_allclose(g.b_eq, [-1.0, 1.0], atol=1e-9)


def test_pdhg_relaxed_solution_has_eq_duals():
    sol = relaxed_solve(EQ_LP, "pdhg", tol=1e-8)
    assert sol.status == "optimal"
    assert sol.y_eq.shape == (2,)
    np.testing.assert_allclose(sol.y_eq, [-1.0, 1.0], atol=1e-3)
    np.testing.assert_allclose(sol.y_ub, [2.0, 2.0], atol=1e-3)
    assert sens.sensitivity_lines(EQ_LP, sol, top=2, resolve=None)


def test_no_equality_rows_gives_empty_eq_duals():
    lp = EQ_LP.replace(A_eq=jnp.zeros((0, 4)), b_eq=jnp.zeros(0), row_names=("cap01", "cap23"))
    for method in ("highs", "pdhg"):
        sol = relaxed_solve(lp, method)
        assert sol.status == "optimal" and np.shape(sol.y_eq) == (0,)
    assert sens.sensitivity_lines(lp, relaxed_solve(lp, "highs"), top=2)
