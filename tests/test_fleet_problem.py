"""Fleet problem: scenario schema validation, LP building, infeasibility messages."""

import copy
import tomllib

import jax
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import perfmodel  # noqa: F401  (x64)
from perfmodel.fleet.lp import LP, dense, stack_lps, to_scipy
from perfmodel.fleet.problem import (
    FleetInfeasible,
    build_lp,
    build_problem,
    concave_interpolant,
    diagnose_infeasible,
    load_scenario,
    parse_scenario,
    precheck,
    relaxed_solve,
    scenario_dir,
    scenario_names,
)
from perfmodel.fleet.rounding import solve
from perfmodel.fleet.testing import generate_problem


def _tiny(**over):
    """1 site, 1 offer, 2 quarters; hand-checkable."""
    d = {
        "scenario": {"name": "tiny", "start": "2024Q3", "quarters": 2},
        "workloads": [{"name": "video-driving", "weight": 1.0}],
        "sites": {"s": {"power_mw": [1.0, 2.0], "pue": 1.25, "cooling": "air", "racks": 100}},
        "offers": {
            "h100": {
                "chip": "h100_sxm",
                "chips_per_unit": 8,
                "unit_price_usd": 400e3,
                "unit_power_w": 10e3,
                "supply_units": 1000,
            }
        },
        "budget": {"capex_usd": {"2024": 1e9}},
    }
    for k, v in over.items():
        d[k] = v
    return d


@pytest.fixture(scope="module")
def builtin_raw():
    return tomllib.loads((scenario_dir() / "tesla-2024.toml").read_text())


def test_builtin_scenarios_listed_and_valid():
    assert {"tesla-2024", "tesla-2025"} <= set(scenario_names())
    for nm in ("tesla-2024", "tesla-2025"):
        sc = load_scenario(nm)
        assert len(sc.periods) == 8 and {"cortex", "buffalo"} <= {s.key for s in sc.sites}
        assert {"h100", "h200", "gb200", "dojo", "ai4"} <= {o.key for o in sc.offers}
    sc = load_scenario("tesla-2024")
    assert sc.periods[0] == "2024Q1" and sc.periods[-1] == "2025Q4"
    cortex = next(s for s in sc.sites if s.key == "cortex")
    assert cortex.power_mw[3] == 130 and cortex.power_mw[-1] == 500
    assert dict(sc.budget_usd)["2024"] == 1e10
    assert sc.events == (("h100", 1500.0, 0, 2),)  # 12k H100 diverted, 2 quarters later


def test_builtin_offers_cite_sources():
    for nm in scenario_names():
        for o in load_scenario(nm).offers:
            assert o.sources, f"{nm}: offer {o.key} has no sources"


@pytest.mark.parametrize(
    "path,value,message",
    [
        (
            ("sites", "cortex", "power_mw"),
            [130, 130, -5, 130, 200, 300, 400, 500],
            "sites.cortex.power_mw[2024Q3] = -5 must be >= 0",
        ),
        (("sites", "cortex", "pue"), 0.8, "sites.cortex.pue = 0.8 must be >= 1"),
        (
            ("sites", "cortex", "cooling"),
            "water",
            "sites.cortex.cooling = 'water' must be 'air' or 'liquid'",
        ),
        (
            ("sites", "cortex", "power_mw"),
            [1, 2, 3],
            "sites.cortex.power_mw has 3 values but the scenario has 8",
        ),
        (("offers", "h100", "chip"), "h1000", "offers.h100.chip = 'h1000' is not a catalog chip"),
        (("offers", "h100", "unit_price_usd"), -1, "offers.h100.unit_price_usd = -1 must be > 0"),
        (
            ("offers", "h100", "earliest"),
            "2024Q5",
            "offers.h100.earliest = '2024Q5' must be a quarter",
        ),
        (("offers", "h100", "colour"), "red", "offers.h100.colour: unknown field"),
        (("scenario", "objective"), "max-fun", "scenario.objective = 'max-fun' must be"),
        (("budget", "capex_usd"), {"2024": 1e10}, "budget.capex_usd.2025 is missing"),
    ],
)
def test_schema_errors_name_field_value_and_range(builtin_raw, path, value, message):
    d = copy.deepcopy(builtin_raw)
    t = d
    for k in path[:-1]:
        t = t[k]
    t[path[-1]] = value
    with pytest.raises(ValueError) as e:
        parse_scenario(d)
    assert message in str(e.value)


def test_event_and_ratio_references_checked(builtin_raw):
    d = copy.deepcopy(builtin_raw)
    d["events"][0]["offer"] = "h300"
    with pytest.raises(ValueError, match=r"events\[0\]\.offer = 'h300' is not an offer"):
        parse_scenario(d)
    d = copy.deepcopy(builtin_raw)
    d["events"][0]["units"] = 1e6
    with pytest.raises(
        ValueError,
        match=r"events\[0\]\.units = 1000000.0 must be <= 3500, the supply of offers\.h100 left in 2024Q1",
    ):
        parse_scenario(d)
    d = copy.deepcopy(builtin_raw)
    d["ratios"][0]["site"] = "mars"
    with pytest.raises(ValueError, match=r"ratios\[0\]\.site = 'mars' must be a site"):
        parse_scenario(d)


def test_unknown_scenario_names_builtins():
    with pytest.raises(ValueError, match="tesla-2024"):
        load_scenario("no-such-scenario")


def test_tiny_lp_by_hand():
    """1 MW then 2 MW at PUE 1.25, 10 kW per 8-GPU unit: 80 then 160 units fit.
    With the stand-in value (H100: n^0.98 on 5 breakpoints) the LP fills the site."""
    pr = build_problem(parse_scenario(_tiny()), value_source="standin")
    lp = build_lp(pr)
    sol = relaxed_solve(lp, "highs")
    assert sol.status == "optimal"
    buy = sol.x[:2]
    np.testing.assert_allclose(buy, [80.0, 80.0], atol=1e-6)
    # power rows: MW used = 1.25 * 10 kW * units
    i = lp.row_names.index("power_mw[s,2024Q4]")
    np.testing.assert_allclose(lp.A_ub.toarray()[i, :2], [0.0125, 0.0125])
    np.testing.assert_allclose(np.asarray(lp.b_ub)[i], 2.0)
    # capex row in M$
    i = lp.row_names.index("capex_musd[2024]")
    np.testing.assert_allclose(lp.A_ub.toarray()[i, :2], [0.4, 0.4])
    np.testing.assert_allclose(np.asarray(lp.b_ub)[i], 1000.0)
    # objective: H100e-quarters of 640 then 1280 chips (PWL of n^0.98 at breakpoints) minus tie-break
    plan = solve(pr, method="highs")
    assert plan.buy_units.reshape(-1).tolist() == [80, 80]
    xs = np.asarray(pr.bp_chips)[0, 0]
    ys = np.asarray(pr.bp_h100e)[0, 0]
    want = np.interp(640, xs, ys) + np.interp(1280, xs, ys) - 1e-9 * 160 * 400e3
    np.testing.assert_allclose(plan.objective, want, rtol=1e-9)


@pytest.mark.slow
def test_build_lp_traced_equals_concrete():
    pr = generate_problem(3, 5, 2, 4)
    a = dense(build_lp(pr))
    b = jax.jit(build_lp)(pr)
    for f in ("c", "A_ub", "b_ub", "lo", "hi"):
        np.testing.assert_allclose(
            np.asarray(getattr(b, f)), np.asarray(getattr(a, f)), rtol=1e-12, atol=1e-12
        )
    assert a.row_names == b.row_names and a.var_names == b.var_names
    # vmapped build over a price perturbation matches one-at-a-time builds
    prs = [pr.replace(unit_price_usd=pr.unit_price_usd * f) for f in (0.9, 1.0, 1.2)]
    stacked = jax.tree_util.tree_map(lambda *x: np.stack(x), *prs)
    import jax.numpy as jnp

    lps = jax.vmap(lambda p: build_lp(p, xp=jnp))(stacked)
    ref = stack_lps([build_lp(p) for p in prs])
    np.testing.assert_allclose(np.asarray(lps.A_ub), np.asarray(ref.A_ub), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(lps.c), np.asarray(ref.c), rtol=1e-12)


def test_stack_lps_and_to_scipy():
    lp = LP(
        c=np.array([1.0, 2.0]),
        A_ub=np.array([[1.0, 1.0]]),
        b_ub=np.array([3.0]),
        A_eq=np.zeros((0, 2)),
        b_eq=np.zeros(0),
        lo=np.zeros(2),
        hi=np.array([np.inf, 2.0]),
    )
    from scipy.optimize import linprog

    r = linprog(**to_scipy(lp))
    assert r.status == 0 and abs(-r.fun - 5.0) < 1e-9
    s = stack_lps([lp, lp.replace(b_ub=np.array([4.0]))])
    assert s.A_ub.shape == (2, 1, 2) and float(s.b_ub[1, 0]) == 4.0
    with pytest.raises(ValueError, match="shape"):
        stack_lps([lp, lp.replace(c=np.ones(3))])


@given(st.lists(st.floats(0, 100), min_size=3, max_size=8))
def test_concave_interpolant_is_concave_majorant(ys):
    xs = np.arange(len(ys), dtype=float) ** 1.5
    ys = np.asarray(ys)
    v = concave_interpolant(xs, ys)
    assert np.all(v >= ys - 1e-9)
    s = np.diff(v) / np.diff(xs)
    assert np.all(np.diff(s) <= 1e-9 * (1 + np.abs(s[1:])))


def test_existing_fleet_over_power_is_named():
    d = _tiny(
        existing=[{"offer": "h100", "site": "s", "chips": 8 * 120}]
    )  # 120 units x 12.5 kW = 1.5 MW
    pr = build_problem(parse_scenario(d), value_source="standin")
    msgs = precheck(pr)
    assert msgs == [
        "site s has 1 MW in 2024Q3 but the existing fleet alone needs 1.5 MW (IT power x PUE 1.25)"
    ]
    with pytest.raises(
        FleetInfeasible, match="site s has 1 MW in 2024Q3 but the existing fleet alone needs 1.5 MW"
    ):
        solve(pr, method="highs")


def test_unreachable_target_names_target():
    d = _tiny()
    d["scenario"].update(objective="min-cost", target_h100e=1e6, target_period="2024Q4")
    pr = build_problem(parse_scenario(d), value_source="standin")
    with pytest.raises(
        FleetInfeasible, match=r"target of 1,000,000 H100e in 2024Q4 is out of reach"
    ):
        solve(pr, method="highs")


def test_ratio_needing_more_budget_names_budget():
    d = _tiny(existing=[{"offer": "h100", "site": "s", "chips": 8 * 10}])
    d["offers"]["ai4"] = {
        "chip": "ai4",
        "chips_per_unit": 1,
        "unit_price_usd": 1e6,
        "unit_power_w": 10,
        "supply_units": 1000,
        "own": True,
        "counts": False,
    }
    d["ratios"] = [{"site": "s", "numerator": ["ai4"], "denominator": ["h100"], "min_ratio": 0.5}]
    d["budget"] = {"capex_usd": {"2024": 10e6}}  # 40 AI4 needed at $1M each; $10M budget
    pr = build_problem(parse_scenario(d), value_source="standin")
    msg = diagnose_infeasible(pr)
    assert "2024 capex budget" in msg or "ratio rule 0" in msg
    with pytest.raises(FleetInfeasible):
        solve(pr, method="highs")


def test_generator_is_seeded_and_validates_sizes():
    a, b = generate_problem(7, 5, 3, 6), generate_problem(7, 5, 3, 6)
    np.testing.assert_array_equal(np.asarray(a.supply_units), np.asarray(b.supply_units))
    assert a.shape == (5, 3, 6)
    with pytest.raises(ValueError, match="n_sites=0"):
        generate_problem(1, 5, 0, 4)
