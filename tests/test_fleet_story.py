"""The seed story told truthfully (issue 15 item 8): the own-hardware share per quarter and
its optional rule, each delivery event's cost, the plan-milestone claim's verdicts, and the
new scenario field's input errors."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from fleet_parts import h100_offer
from hypothesis import given, settings
from hypothesis import strategies as st

from perfmodel.claims.plans import binding_at, check_plan_milestones, milestone_verdicts
from perfmodel.claims.verdicts import Claim
from perfmodel.fleet.check import check_feasible, installed_units
from perfmodel.fleet.problem import build_problem
from perfmodel.fleet.rounding import solve
from perfmodel.fleet.schema import parse_scenario
from perfmodel.fleet.story import event_costs, own_share_rows, story_lines

# A tiny scenario: one liquid-cooled site, a GPU server and an own (Dojo-like) tray, one
# delivery event that moves 40 of the 60 GPU servers of 2024Q1 a quarter later.
_DATA = {
    "scenario": {"name": "story", "start": "2024Q1", "quarters": 4},
    "workloads": [{"name": "gpt3-175b", "weight": 1.0}],
    "sites": {
        "a": {
            "power_mw": 4.0,
            "pue": 1.0,
            "cooling": "liquid",
            "racks": 1000,
            "own_share_min": 0.5,
            "own_share_from": "2024Q3",
            "own_share_enforced": True,
        }
    },
    "offers": {
        "gpu": h100_offer(racks_per_unit=0.25, supply_units=60, sites=["a"]),
        "tray": {
            "chip": "dojo_tile",
            "chips_per_unit": 6,
            "unit_price_usd": 2760000,
            "unit_power_w": 100000,
            "racks_per_unit": 0.5,
            "cooling": "liquid",
            "supply_units": 4,
            "sites": ["a"],
            "own": True,
        },
    },
    "events": [{"offer": "gpu", "units": 40, "period": "2024Q1", "delay_quarters": 1}],
    "budget": {"capex_usd": {"2024": 1e11}},
}


def _sc(**site):
    d = copy.deepcopy(_DATA)
    d["sites"]["a"].update(site)
    return parse_scenario(d)


def _plan(sc):
    return solve(build_problem(sc, value_source="standin"), time_limit_s=20, mip_rel_gap=1e-9)


# ------------------------------------------------------------------ own-hardware share
@pytest.mark.parametrize("enforced", [True, False])
def test_own_share_rows_by_hand_and_the_rule_holds_when_enforced(enforced):
    sc = _sc(own_share_enforced=enforced)
    plan = _plan(sc)
    assert not check_feasible(plan.problem, plan)
    (row,) = own_share_rows(plan, sc)
    inst = installed_units(plan.problem, plan.buy_units)[:, 0, :]  # [K,T] units
    gpu_mw, own_mw = inst[0] * 10000e-6, inst[1] * 100000e-6
    for t in range(4):
        tot = gpu_mw[t] + own_mw[t]
        assert row["it_mw"][t] == pytest.approx(tot)
        assert row["share"][t] == (pytest.approx(own_mw[t] / tot) if tot > 0 else None)
    assert row["share_min"] == 0.5 and row["from_period"] == "2024Q3"
    assert row["enforced"] is enforced
    assert row["met"][:2] == [None, None]
    if enforced:  # the rule holds in every quarter it applies to
        assert all(row["met"][2:]) and all(s >= 0.5 - 1e-9 for s in row["share"][2:])
    else:  # the unconstrained plan fills the site with GPUs: the aim is missed
        assert row["met"][2:] == [False, False]
    text = "\n".join(story_lines(_extra(plan, sc)))
    assert "Own-hardware share" in text and ("enforced" if enforced else "not enforced") in text


def _extra(plan, sc):
    plan.extra["own_share"] = own_share_rows(plan, sc)
    return plan


def test_checker_flags_a_plan_below_the_enforced_share():
    pr = build_problem(_sc(), value_source="standin")
    buy = np.zeros(pr.shape)
    buy[0, 0, 0] = 20  # GPUs only: 0% own from 2024Q3 on
    viol = check_feasible(pr, buy)
    assert any("own" in v and "2024Q3" in v for v in viol), viol
    # not enforced: the same plan is feasible (the share is an aim, reported only)
    assert not check_feasible(
        build_problem(_sc(own_share_enforced=False), value_source="standin"), buy
    )


# ------------------------------------------------------------------ events' cost
def test_event_cost_equals_a_by_hand_re_solve():
    sc = _sc(own_share_enforced=False)
    plan = _plan(sc)
    (e,) = event_costs(
        sc, plan, solve_kw=dict(time_limit_s=20, mip_rel_gap=1e-9), value_source="standin"
    )
    d = copy.deepcopy(_DATA)
    d["sites"]["a"]["own_share_enforced"] = False
    del d["events"]
    alt = _plan(parse_scenario(d))
    assert e["h100e_quarters_lost"] == pytest.approx(alt.h100e_quarters - plan.h100e_quarters)
    assert e["capex_change_usd"] == pytest.approx(plan.capex_usd - alt.capex_usd)
    assert e["h100e_quarters_lost"] > 0  # 40 servers withheld in 2024Q1 cost compute
    assert e["chips"] == 320 and e["period"] == "2024Q1" and e["delay_quarters"] == 1
    assert sum(e["h100e_lost"]) == pytest.approx(e["h100e_quarters_lost"])
    assert e["rent_usd"]["best"] == pytest.approx(e["h100e_quarters_lost"] * 2191.5 * 2.40)


# ------------------------------------------------------------------ the claim's verdicts
_BINDING = [
    dict(kind="supply", offer="h100", periods=["2024Q1"]),
    dict(kind="power", site="legacy", periods=["2024Q2", "2024Q4"]),
    dict(
        kind="ratio",
        rule=0,
        numerator=["ai4"],
        denominator=["h100"],
        min_ratio=1.0,
        periods=["2024Q4"],
    ),
]


def test_milestone_verdicts_hand_computed():
    P = ["2024Q1", "2024Q2", "2024Q3", "2024Q4"]
    ms = [("Q1", "2024Q1", 40000.0), ("end", "2024Q4", 85000.0)]
    # 30,000 < 40,000 x 0.9 = 36,000: short; 90,000 in 85,000 x [0.9, 1.1]: within
    overall, rows = milestone_verdicts(ms, P, [30000, 0, 0, 90000], _BINDING)
    assert [r["verdict"] for r in rows] == ["overstated", "consistent"]
    assert overall == "does not fit"
    assert rows[0]["ratio"] == pytest.approx(0.75)
    assert rows[0]["binding"] == ["supply of h100"]
    assert rows[1]["binding"] == ["power at legacy", "ratio rule 0 (ai4 >= 1 x h100)"]
    # 37,000 >= 36,000 and 95,000 > 93,500: Q1 within, end 2024 above
    overall, rows = milestone_verdicts(ms, P, [37000, 0, 0, 95000], _BINDING)
    assert [r["verdict"] for r in rows] == ["consistent", "understated"]
    assert overall == "understated"
    overall, _ = milestone_verdicts(ms, P, [40000, 0, 0, 85000], _BINDING)
    assert overall == "consistent"
    with pytest.raises(ValueError, match="2025Q1"):
        milestone_verdicts([("x", "2025Q1", 1.0)], P, [1, 1, 1, 1], [])
    assert binding_at(_BINDING, "2024Q3") == []


def test_plan_milestone_claim_with_a_given_planner():
    from perfmodel.claims.context import Context
    from perfmodel.hardware import load_catalog

    c = Claim(
        "m",
        "2024-04-23",
        "s",
        "q",
        ("u",),
        "plan_milestones",
        {
            "scenario": "x",
            "milestones": [["Q1", "2024Q1", 40000], ["end", "2024Q4", 85000]],
            "also_offer": "h100",
        },
    )
    st_ = dict(
        periods=["2024Q1", "2024Q2", "2024Q3", "2024Q4"],
        h100e=[30000.0, 0.0, 0.0, 90000.0],
        binding=_BINDING,
        h100e_by_offer={"h100": [26000.0, 0.0, 0.0, 76000.0]},
        event_costs=[
            dict(
                event=0,
                offer="h100",
                chips=12000,
                period="2024Q1",
                h100e_quarters_lost=5.0,
                h100e_lost=[5.0, 0, 0, 0],
            )
        ],
    )
    r = check_plan_milestones(c, Context(load_catalog(), plan_fn=lambda s, v: st_))
    assert r.verdict == "does not fit"
    assert (
        "2024Q1: 30,000 H100e (h100 alone 26,000), short of ~40,000 (75%); binding: supply of h100"
        in r.summary
    )
    assert r.numbers["h100_h100e[2024Q4]"] == 76000.0
    assert "withholds 5 H100e in 2024Q1" in r.summary
    assert check_plan_milestones(c, Context(load_catalog())).verdict == "n/a"


# ------------------------------------------------------------------ input errors
@settings(max_examples=12, deadline=None)
@given(
    st.one_of(
        st.integers(-5, 5),
        st.floats(allow_nan=False, allow_infinity=False, width=32),
        st.sampled_from(['"true"', '"false"', '"yes"', "[true]"]),
    )
)
def test_own_share_enforced_bad_value_one_line_exit_2(v):
    import contextlib
    import io

    from perfmodel.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(["plan", "--set", f"sites.cortex.own_share_enforced={v}"])
    msg = err.getvalue().strip()
    assert rc == 2 and len(msg.splitlines()) == 1, msg
    assert "sites.cortex.own_share_enforced" in msg and "true or false" in msg


def test_tesla_plan_milestone_claim_on_the_stand_in_curves():
    from perfmodel import claims as cl
    from perfmodel.fleet.story import plan_story

    (r,) = cl.evaluate_claims(
        only=["tesla-2024-plan-milestones"], plan_fn=lambda s, _v: plan_story(s, "standin")
    )
    rows = {m["period"]: m for m in r.numbers["milestones"]}
    # 2024Q1: 10k existing + 16k bought H100 (the diverted 12k come in 2024Q3) + 14k A100
    assert rows["2024Q1"]["verdict"] == "overstated" and r.verdict == "does not fit"
    assert "supply of h100" in rows["2024Q1"]["binding"]
    assert any(b.startswith("ratio rule 0") for b in rows["2024Q4"]["binding"])


@pytest.mark.slow
def test_tesla_plan_milestone_claim_cli(capsys):
    import json

    from perfmodel.cli import main

    assert main(["claims", "--only", "tesla-2024-plan-milestones", "--json"]) == 0
    (r,) = json.loads(capsys.readouterr().out)
    q1, q4 = r["numbers"]["milestones"]
    # 2024Q1: 26k H100 (the diverted 12k arrive in 2024Q3) + 14k A100, short of ~40k
    assert r["verdict"] == "does not fit" and q1["verdict"] == "overstated"
    assert 26_000 <= q1["planned_h100e"] < 36_000 and q4["planned_h100e"] > 85_000 * 0.9


def test_uncounted_offers_are_listed_with_their_chips():
    from perfmodel.fleet.story import uncounted_rows

    d = copy.deepcopy(_DATA)
    d["offers"]["tray"]["counts"] = False
    sc = parse_scenario(d)
    plan = _plan(sc)
    rows = uncounted_rows(plan, sc)
    inst = installed_units(plan.problem, plan.buy_units)[1].sum(axis=0)
    if inst.any():
        (r,) = rows
        assert r["offer"] == "tray" and r["chips_installed"] == [6 * x for x in inst]
        plan.extra["uncounted"] = rows
        assert "perfmodel equiv --chip dojo_tile --count" in "\n".join(story_lines(plan))
    else:
        assert rows == []


# ------------------------------------------------------------------ sources ship
def test_every_reference_of_the_builtin_scenarios_resolves_to_a_shipped_url():
    import re

    from perfmodel.fleet.schema import scenario_dir, scenario_names
    from perfmodel.fleet.sources import citations, resolve, scenario_sources

    url = re.compile(r"https?://")
    seen = 0
    for name in scenario_names():
        text = (scenario_dir() / f"{name}.toml").read_text()
        assert "/work/shared" not in text, name  # no path outside the package
        for key in citations(text):
            e = resolve(key)  # KeyError names an unresolved citation
            srcs = list(e.get("sources", [])) + list(e.get("sources_added", []))
            # an entry points at URLs itself, or at another shipped entry ('see KEY')
            via = [s[4:].split()[0] for s in srcs if s.startswith("see ")]
            ok = any(url.search(s) for s in srcs) or any(
                url.search(s) for v in via for s in resolve(v).get("sources", [])
            )
            # a derived entry names the shipped entries it is derived from
            derived = all(resolve(d) for d in e.get("derived_from", [])) and e.get("derived_from")
            assert ok or derived, key
            if key.startswith("tesla_fleet.events"):
                assert e["date"].startswith(key.split(" ", 1)[1]), key
            seen += 1
    assert seen >= 40 and len(scenario_sources()) >= 20
    with pytest.raises(KeyError, match="nope"):
        resolve("chips.nope")


def test_min_cost_plan_prints_the_event_without_an_lp_figure(capsys):
    from perfmodel.cli import main

    argv = ["plan", "--objective", "min-cost", "--target-h100e", "60000"]
    assert main(argv + ["--target-period", "2024Q4", "--values", "standin"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("Event 0"))
    assert "LP relaxation" not in line and "capex" in line
    assert "Own-hardware share" in out and "an aim, not enforced" in out


def test_event_whose_removal_leaves_no_plan_is_reported_not_raised():
    d = copy.deepcopy(_DATA)
    d["scenario"].update(
        start="2024Q4", quarters=2, objective="min-cost", target_h100e=100, target_period="2025Q1"
    )
    del d["sites"]["a"]["own_share_min"], d["sites"]["a"]["own_share_from"]
    d["offers"]["gpu"]["supply_units"] = [40, 0]
    d["offers"]["tray"]["supply_units"] = 0
    d["events"] = [{"offer": "gpu", "units": 40, "period": "2024Q4", "delay_quarters": 1}]
    d["budget"] = {"capex_usd": {"2024": 1.0, "2025": 1e9}}  # the GPUs only in 2025's budget
    sc = parse_scenario(d)
    plan = _plan(sc)
    (e,) = event_costs(sc, plan, value_source="standin")
    assert "infeasible_without_event" in e and "h100e_lost" not in e
    plan.extra["event_costs"] = [e]
    assert "no plan without it" in "\n".join(story_lines(plan))
