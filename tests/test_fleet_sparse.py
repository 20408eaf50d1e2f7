"""The sparse LP (typed row blocks), the one HiGHS adapter (in-place re-solves), exact
integer plans by default (MILP from the heuristic, proven gap) and the LP memory limit."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog, milp

import perfmodel  # noqa: F401  (x64)
from perfmodel.fleet.build import lp_size
from perfmodel.fleet.check import check_feasible, plan_objective
from perfmodel.fleet.highs import HighsLP
from perfmodel.fleet.lp import LPTooLarge, dense, to_scipy
from perfmodel.fleet.milp import start_vector, to_scipy_milp
from perfmodel.fleet.problem import build_lp, build_problem
from perfmodel.fleet.rounding import solve
from perfmodel.fleet.testing import generate_scenario


def _problem(seed, k, s, t, objective=None):
    sc = generate_scenario(seed, k, s, t)
    if objective == "min-cost":
        return build_problem(sc, value_source="standin", objective="min-cost", target_h100e=50.0)
    return build_problem(sc, value_source="standin")


@given(
    seed=st.integers(0, 10_000),
    k=st.integers(1, 8),
    s=st.integers(1, 3),
    t=st.integers(1, 6),
    objective=st.sampled_from(["max-h100e", "min-cost"]),
)
@settings(max_examples=12, deadline=None)
def test_sparse_dense_and_traced_builds_hold_the_same_lp(seed, k, s, t, objective):
    pr = _problem(seed, k, s, t, objective)
    a = build_lp(pr)
    assert sp.issparse(a.A_ub) and a.A_ub.format == "csr"
    b = build_lp(pr, dense=True)
    c = jax.jit(lambda p: build_lp(p, xp=jnp))(pr)
    A = a.A_ub.toarray()
    np.testing.assert_array_equal(A, b.A_ub)
    np.testing.assert_allclose(np.asarray(c.A_ub), A, rtol=1e-14, atol=0)
    for f in ("c", "b_ub", "lo", "hi"):
        np.testing.assert_allclose(np.asarray(getattr(c, f)), getattr(a, f), rtol=1e-14)
    assert a.row_names == c.row_names and a.var_names == c.var_names
    m, n, nnz = lp_size(pr)
    assert A.shape == (m, n) == (len(a.row_names), len(a.var_names))
    assert a.A_ub.nnz == np.count_nonzero(A) <= nnz  # the estimate bounds the real count


def test_highs_model_in_place_resolves_match_fresh_solves():
    pr = _problem(4, 6, 3, 5)
    lp = build_lp(pr)
    model = HighsLP(lp)
    base = model.solve()
    ref = linprog(**to_scipy(lp), method="highs")
    assert base.status == "optimal" and ref.status == 0
    np.testing.assert_allclose(base.objective, -ref.fun, rtol=1e-9)
    # a capex row 30% lower, then purchase lower bounds; each against a fresh scipy solve
    i = next(j for j, nm in enumerate(lp.row_names) if nm.startswith("capex"))
    b = np.array(lp.b_ub, dtype=np.float64)
    b[i] *= 0.7
    model.set_b_ub([i], [b[i]])
    r1 = model.solve()
    ref1 = linprog(**to_scipy(lp.replace(b_ub=b)), method="highs")
    np.testing.assert_allclose(r1.objective, -ref1.fun, rtol=1e-9)
    assert r1.objective < base.objective
    nb = int(np.prod(pr.shape))
    lo = np.array(lp.lo, dtype=np.float64)
    lo[:nb] = np.floor(0.5 * np.asarray(base.x)[:nb])
    model.set_bounds(lo=lo[:nb], cols=np.arange(nb))
    r2 = model.solve()
    ref2 = linprog(**to_scipy(lp.replace(b_ub=b, lo=lo)), method="highs")
    if ref2.status == 0:
        np.testing.assert_allclose(r2.objective, -ref2.fun, rtol=1e-9)
    else:
        assert r2.status == "infeasible"
    # the duals are those of the maximisation: >= 0 and b @ y + bound terms = objective
    assert np.all(base.y_ub >= -1e-9)


def test_highs_status_mapping_infeasible():
    pr = _problem(1, 5, 2, 4)
    lp = build_lp(pr)
    model = HighsLP(lp)
    i = next(j for j, nm in enumerate(lp.row_names) if nm.startswith("supply"))
    nb = int(np.prod(pr.shape))
    model.set_bounds(lo=np.full(nb, 1e6), hi=np.full(nb, 1e7), cols=np.arange(nb))
    assert model.solve().status == "infeasible"
    model.set_b_ub([i], [lp.b_ub[i]])


@given(seed=st.integers(0, 10_000), k=st.integers(4, 6), s=st.integers(1, 3), t=st.integers(2, 5))
@settings(max_examples=6, deadline=None)
def test_default_plan_is_the_milp_optimum_with_a_proven_gap(seed, k, s, t):
    pr = _problem(seed, k, s, t)
    plan = solve(pr)  # defaults: HiGHS relaxation, MILP from the heuristic's plan
    assert check_feasible(pr, plan) == []
    ex = plan.extra["exact"]
    assert ex is not None and "HiGHS MILP" in plan.method
    # independent reference: scipy's own HiGHS MILP binding, proven to 1e-7
    ref = milp(**to_scipy_milp(build_lp(pr)), options={"mip_rel_gap": 1e-7, "time_limit": 60})
    assert ref.status == 0
    best = -ref.fun
    assert plan.objective <= best * (1 + 1e-7) + 1e-6
    if ex["status"] == "optimal":
        assert plan.extra["gap"] <= plan.extra["gap_target"] + 1e-9
        assert (best - plan.objective) / abs(best) <= plan.extra["gap_target"] + 1e-7
    # the reported bound is a true bound and the gap is measured to it
    assert plan.extra["bound"] >= best * (1 - 1e-7) - 1e-6
    heur = plan.extra["heuristic_objective"]
    assert heur is None or plan.objective >= heur - 1e-9 * abs(heur)


def test_heuristic_only_reports_the_gap_to_the_relaxation():
    pr = _problem(7, 6, 2, 4)
    plan = solve(pr, exact=False)
    assert check_feasible(pr, plan) == [] and plan.extra["exact"] is None
    np.testing.assert_allclose(plan.extra["bound"], plan.relaxed_objective)
    want = (plan.relaxed_objective - plan.objective) / abs(plan.objective)
    np.testing.assert_allclose(plan.extra["gap"], want, rtol=1e-9, atol=1e-15)


def test_start_vector_is_feasible_for_the_lp():
    pr = _problem(3, 6, 2, 4)
    lp = build_lp(pr)
    plan = solve(pr, exact=False)
    x = start_vector(pr, plan.buy_units)
    A = lp.A_ub
    assert np.all(A @ x <= np.asarray(lp.b_ub) + 1e-7 * (1 + np.abs(lp.b_ub)))
    assert np.all(x >= lp.lo - 1e-12) and np.all(x <= lp.hi + 1e-9)
    np.testing.assert_allclose(lp.c @ x, plan_objective(pr, plan.buy_units)[0], rtol=1e-9)


def test_memory_limit_refuses_with_one_line(monkeypatch):
    pr = _problem(0, 5, 2, 4)
    lp = build_lp(pr)
    monkeypatch.setenv("PERFMODEL_LP_MEMORY_GB", "1e-6")
    with pytest.raises(LPTooLarge, match=r"rows x .* columns.*limit is 0\.00 GiB"):
        build_lp(pr)
    with pytest.raises(LPTooLarge, match="dense LP"):
        dense(lp)
    monkeypatch.setenv("PERFMODEL_LP_MEMORY_GB", "lots")
    with pytest.raises(ValueError, match="PERFMODEL_LP_MEMORY_GB"):
        build_lp(pr)


def test_cli_refuses_a_too_large_lp_with_exit_2(tmp_path):
    env = {"PERFMODEL_LP_MEMORY_GB": "1e-4", "PERFMODEL_CACHE_DIR": str(tmp_path)}
    import os

    r = subprocess.run(
        [sys.executable, "-m", "perfmodel", "plan", "--values", "standin"],
        capture_output=True,
        text=True,
        env=os.environ | env,
        timeout=120,
    )
    assert r.returncode == 2, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert "the fleet LP" in last and "limit" in last and "Traceback" not in r.stderr


def test_cli_json_is_alone_on_stdout_in_a_fresh_process(tmp_path):
    """HiGHS prints a banner when a process makes its first model: it goes to stderr."""
    import json
    import os

    r = subprocess.run(
        [sys.executable, "-m", "perfmodel", "plan", "--values", "standin", "--json"],
        capture_output=True,
        text=True,
        env=os.environ | {"PERFMODEL_CACHE_DIR": str(tmp_path)},
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)  # strict: the whole of stdout is one JSON document
    assert "HiGHS" not in r.stdout.split("{", 1)[0]
    assert d["proven_gap"] is not None and d["proven_gap"] <= d["gap_target"]
