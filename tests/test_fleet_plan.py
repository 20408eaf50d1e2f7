"""Integer fleet plans: checker, gap to the HiGHS MILP, built-in scenarios, CLI, Pareto."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import perfmodel  # noqa: F401  (x64)
from perfmodel.fleet.check import check_feasible, plan_objective, power_used_mw
from perfmodel.fleet.milp import solve_milp
from perfmodel.fleet.problem import build_problem, load_scenario
from perfmodel.fleet.rounding import solve
from perfmodel.fleet.testing import generate_problem


@given(seed=st.integers(0, 10_000), k=st.integers(5, 6), s=st.integers(1, 2), t=st.integers(2, 4))
@settings(max_examples=10)
def test_every_integer_plan_passes_checker_and_is_near_milp(seed, k, s, t):
    pr = generate_problem(seed, k, s, t)
    plan = solve(pr, method="highs")
    assert check_feasible(pr, plan) == []
    assert np.all(plan.buy_units >= 0) and plan.buy_units.dtype.kind == "i"
    m = solve_milp(pr, time_limit_s=20, mip_rel_gap=1e-5)
    assert m.status == "optimal"
    assert check_feasible(pr, m.buy_units) == []  # the checker agrees with HiGHS
    np.testing.assert_allclose(plan_objective(pr, m.buy_units)[0], m.objective, rtol=1e-6)
    gap = (m.objective - plan.objective) / abs(m.objective)
    assert -2e-5 <= gap <= 0.01  # worst-case bar: 1% (MILP proven to 1e-5)
    assert plan.objective <= plan.relaxed_objective * (1 + 1e-7) + 1e-6


def test_checker_catches_each_kind_of_violation():
    pr = generate_problem(11, 5, 2, 4)
    plan = solve(pr, method="highs")
    K, S, T = pr.shape
    bad = plan.buy_units.copy()
    bad[0, 0, 0] += 10**6  # way over supply, power, budget
    msgs = " | ".join(check_feasible(pr, bad))
    for word in ("supply:", "power:", "capex:"):
        assert word in msgs
    frac = plan.buy_units.astype(float)
    frac[0, 0, -1] += 0.5
    assert any("non-integer" in m for m in check_feasible(pr, frac))
    neg = plan.buy_units.copy()
    neg[1, 0, 0] = -1
    assert any("negative" in m for m in check_feasible(pr, neg))
    allowed = np.asarray(pr.allowed)
    if (allowed == 0).any():
        k, s, t = map(int, np.argwhere(allowed == 0)[0])
        b = np.zeros((K, S, T), dtype=int)
        b[k, s, t] = 1
        assert any("not deliverable" in m for m in check_feasible(pr, b))


def test_power_used_matches_hand_formula():
    pr = generate_problem(5, 5, 1, 3)
    buy = np.zeros(pr.shape, dtype=int)
    buy[0, 0, 1] = 3
    inst = np.asarray(pr.existing_units)[:, 0] + 0.0
    want = float(pr.pue[0]) * (np.asarray(pr.unit_power_w) @ inst) / 1e6
    got = power_used_mw(pr, buy)
    np.testing.assert_allclose(got[0, 0], want, rtol=1e-12)
    np.testing.assert_allclose(
        got[0, 1] - got[0, 0], 3 * float(pr.pue[0]) * float(pr.unit_power_w[0]) / 1e6, rtol=1e-9
    )


@pytest.fixture(scope="module")
def tesla():
    return build_problem(load_scenario("tesla-2024"), value_source="standin")


def test_tesla_2024_plan_is_feasible_and_within_0p1pct_of_milp(tesla):
    plan = solve(tesla, method="highs")
    assert check_feasible(tesla, plan) == []
    m = solve_milp(tesla, time_limit_s=30, mip_rel_gap=1e-5)
    assert (m.objective - plan.objective) / m.objective <= 1e-3
    # starting fleet ~15k H100e: 10k H100 + 14k A100; under the stand-in the A100s (at the
    # last breakpoint, 14,000 chips) are worth exactly (312 / 989.4) x 14000^0.98
    from perfmodel.fleet.check import h100e_by_offer

    h = h100e_by_offer(tesla, np.zeros(tesla.shape, int))[:, :, 0]
    np.testing.assert_allclose(
        h[tesla.offers.index("a100")].sum(), 312 / 989.4 * 14000**0.98, rtol=1e-12
    )
    assert 11_000 < h.sum() < 17_000
    # the diverted 12k H100 cap Q1 2024 deliveries at 3,500 - 1,500 = 2,000 units
    assert plan.buy_units[tesla.offers.index("h100"), :, 0].sum() <= 2000


def test_min_cost_reaches_target(tesla):
    pr = build_problem(
        load_scenario("tesla-2024"),
        objective="min-cost",
        target_h100e=60_000,
        target_period="2024Q4",
        value_source="standin",
    )
    plan = solve(pr, method="highs")
    assert check_feasible(pr, plan) == []
    from perfmodel.fleet.check import h100e_by_offer

    assert h100e_by_offer(pr, plan.buy_units)[:, :, 3].sum() >= 60_000
    m = solve_milp(pr, time_limit_s=30, mip_rel_gap=1e-4)
    assert plan.capex_usd <= -m.objective * 1e6 * 1.01  # within 1% of the cheapest


def test_pdhg_relaxation_matches_highs():
    pr = generate_problem(2, 5, 2, 3)
    from perfmodel.fleet.problem import build_lp, relaxed_solve

    lp = build_lp(pr)
    a = relaxed_solve(lp, "highs")
    b = relaxed_solve(lp, "pdhg")
    assert b.status == "optimal"
    assert abs(a.objective - b.objective) <= 1e-3 * abs(a.objective)
    plan = solve(pr, method="pdhg")
    assert check_feasible(pr, plan) == []
    assert "relaxed pdhg" in plan.method and "re-solves: highs" in plan.method
    jax_only = solve(pr, method="pdhg", resolve_method="pdhg")  # every LP solve in JAX
    assert check_feasible(pr, jax_only) == [] and "re-solves: pdhg" in jax_only.method
    m = solve_milp(pr)
    assert jax_only.objective >= m.objective - 0.01 * abs(m.objective)
    with pytest.raises(ValueError, match="method"):
        solve(pr, resolve_method="simplx")


def test_pareto_more_budget_never_less_compute(tesla):
    from perfmodel.fleet.pareto import pareto_front

    pts = pareto_front(
        load_scenario("tesla-2024"),
        budget_scales=(0.1, 0.3, 1.0),
        value_source="standin",
        method="highs",
    )
    pts = sorted((p for p in pts if p.kind == "budget"), key=lambda p: p.parameter)
    assert all(p.feasible for p in pts)
    hq = [p.h100e_quarters for p in pts]
    assert hq[0] <= hq[1] <= hq[2]


@pytest.mark.slow
def test_cli_plan_json_default(capsys):
    from perfmodel.cli import main

    assert main(["plan", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["scenario"] == "tesla-2024" and d["objective"] == "max-h100e"
    assert d["feasible"] and d["violations"] == []
    assert d["purchases"] and len(d["h100e"]) == 8
    assert {p["site"] for p in d["power"]} == {"legacy", "cortex", "buffalo"}
    assert all(p["used_mw"] <= p["available_mw"] * (1 + 1e-9) + 1e-6 for p in d["power"])
    # exact by default: the MILP's proven gap, in strict JSON
    assert d["exact"]["status"] == "optimal" and 0 <= d["proven_gap"] <= d["gap_target"] == 1e-4
    assert d["bound"] >= d["objective_value"]


def test_cli_errors_are_one_line(capsys, tmp_path):
    from perfmodel.cli import main

    assert main(["plan", "--scenario", "no-such"]) == 2
    assert "not found" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("[scenario]\nquarters = 2\n[sites.x]\npower_mw = [1, -5]\n")
    assert main(["plan", "--scenario", str(bad), "--values", "standin"]) == 2
    err = capsys.readouterr().err
    assert "sites.x.power_mw[2024Q2] = -5 must be >= 0" in err and err.count("\n") == 1


def test_cli_text_plot_and_sensitivities(capsys, tmp_path):
    from perfmodel.cli import main

    png = tmp_path / "ramp.png"
    assert main(["plan", "--values", "standin", "--sensitivities", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "H100e delivered per quarter" in out and "Binding constraints" in out
    assert "MW more at site" in out and "is worth" in out
    assert png.exists() and png.stat().st_size > 10_000


def test_cli_pareto_min_cost_sweeps_targets_each_at_the_milp_capex(capsys):
    """``plan --pareto`` for the min-cost objective sweeps H100e targets around the plan's
    (not budgets): capex never falls as the target rises, and each point's capex is the
    HiGHS MILP's least capex for that target within 1%; the text names the sweep."""
    from perfmodel.cli import main
    from perfmodel.fleet.check import capex_by_year_usd

    args = ["plan", "--values", "standin", "--objective", "min-cost"]
    args += ["--target-h100e", "40000", "--target-period", "2024Q4", "--pareto"]
    assert main(args + ["--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    pts = [p for p in d["pareto"] if p["feasible"]]
    assert {p["kind"] for p in d["pareto"]} == {"target"} and len(pts) >= 4
    assert sorted(p["parameter"] for p in d["pareto"]) == pytest.approx(
        [40000 * f for f in (0.25, 0.5, 0.75, 1.0, 1.25, 1.5)]
    )
    pts.sort(key=lambda p: p["parameter"])
    assert all(a["capex_usd"] <= b["capex_usd"] + 1.0 for a, b in zip(pts, pts[1:]))
    sc = load_scenario("tesla-2024")
    for p in pts:
        assert p["h100e_target_period"] >= p["parameter"] * (1 - 1e-9)
        pr = build_problem(
            sc,
            value_source="standin",
            objective="min-cost",
            target_h100e=p["parameter"],
            target_period="2024Q4",
        )
        m = solve_milp(pr, time_limit_s=30, mip_rel_gap=1e-6)
        assert m.buy_units is not None
        best = float(capex_by_year_usd(pr, m.buy_units).sum())
        assert p["capex_usd"] <= best * 1.01 + 1.0, (p, best)
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "Pareto front (target sweep, min-cost):" in out and "target H100e" in out
