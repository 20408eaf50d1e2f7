"""The plan explains itself: every binding rule family named (ratio, own share), no
internal row names, sensitivities in natural steps with the right sign (checked against
HiGHS re-solves), and offers that fit no site reported with the reason."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from perfmodel.fleet.problem import build_lp, build_problem, parse_scenario, relaxed_solve
from perfmodel.fleet.report import binding_constraints, format_plan, plan_dict
from perfmodel.fleet.rounding import solve
from perfmodel.fleet.sensitivity import natural_sensitivities, sensitivity_sentence


def _gpu(**over):
    d = {
        "chip": "h100_sxm",
        "chips_per_unit": 8,
        "unit_price_usd": 400e3,
        "unit_power_w": 10e3,
        "supply_units": 1000,
    }
    return d | over


def _scenario(offers, sites=None, **extra):
    d = {
        "scenario": {"name": "explain", "start": "2024Q3", "quarters": 2},
        "workloads": [{"name": "video-driving", "weight": 1.0}],
        "sites": sites
        or {"s": {"power_mw": [50.0, 50.0], "pue": 1.25, "cooling": "air", "racks": 1000}},
        "offers": offers,
        "budget": {"capex_usd": {"2024": 1e10}},
    }
    return d | extra


def _ratio_problem(**kw):
    # 16 AI computers a quarter; the rule needs 1 AI computer per GPU chip, so the
    # GPUs (2 units = 16 chips a quarter) are capped by the rule, not by power or money
    offers = {
        "gpu": _gpu(),
        "ai": {
            "chip": "ai4",
            "chips_per_unit": 1,
            "unit_price_usd": 2e3,
            "unit_power_w": 200.0,
            "supply_units": 16,
            "counts": False,
            "own": True,
        },
    }
    ratios = [{"site": "*", "numerator": ["ai"], "denominator": ["gpu"], "min_ratio": 1.0}]
    return build_problem(
        parse_scenario(_scenario(offers, ratios=ratios)), value_source="standin", **kw
    )


def _no_internal_names(text: str):
    for raw in (
        "link[",
        "power_mw[",
        "capex_musd[",
        "supply_units[",
        "ratio[",
        "own_share[",
        "target_h100e[",
    ):
        assert raw not in text, raw


def test_ratio_rule_binds_and_is_named_in_text_and_json():
    pr = _ratio_problem()
    plan = solve(pr, method="highs")
    assert plan.buy_units[0].sum() == 4  # 32 GPU chips = 32 AI computers bought
    lines = binding_constraints(plan)
    assert any(line.startswith("ratio rule 0 (ai >= 1 x gpu chips, all sites)") for line in lines)
    d = plan_dict(plan)
    rec = [b for b in d["binding"] if b["kind"] == "ratio"]
    assert rec and rec[0]["site"] == "all" and rec[0]["numerator"] == ["ai"]
    assert rec[0]["periods"] == ["2024Q3", "2024Q4"] and rec[0]["unit"] == "chips"
    assert all(isinstance(b, dict) and "kind" in b for b in d["binding"])
    text = format_plan(plan, sensitivities=natural_sensitivities(pr))
    assert "ratio rule 0" in text
    _no_internal_names(text)
    json.dumps(d, allow_nan=False)


def test_ratio_sensitivity_matches_a_resolve_of_the_relaxed_rule():
    pr = _ratio_problem()
    recs = natural_sensitivities(pr, top=20)
    ratio = [r for r in recs if r["kind"] == "ratio" and r["periods"][0] == "2024Q3"]
    assert ratio, [sensitivity_sentence(r) for r in recs]
    r = ratio[0]
    assert r["step"] == 1.0 and r["unit"] == "chips" and r["resolved"] > 0
    # the same relaxation by hand: one more AI computer already installed at the start
    lp = build_lp(pr)
    rows = [i for i, nm in enumerate(lp.row_names) if nm.startswith("ratio[")]
    b = np.asarray(lp.b_ub, np.float64).copy()
    b[rows] += 1.0
    base = relaxed_solve(lp, "highs").objective
    bumped = relaxed_solve(dataclasses.replace(lp, b_ub=b), "highs").objective
    assert r["resolved"] == pytest.approx(bumped - base, rel=1e-6)


def test_own_share_binds_and_is_named():
    sites = {
        "s": {
            "power_mw": [50.0, 50.0],
            "pue": 1.25,
            "cooling": "air",
            "racks": 1000,
            "own_share_min": 0.5,
            "own_share_from": "2024Q3",
        }
    }
    offers = {"gpu": _gpu(), "mine": _gpu(chip="h200", supply_units=3, own=True)}
    pr = build_problem(parse_scenario(_scenario(offers, sites=sites)), value_source="standin")
    plan = solve(pr, method="highs")
    d = plan_dict(plan)
    rec = [b for b in d["binding"] if b["kind"] == "own_share"]
    assert rec and rec[0]["site"] == "s" and rec[0]["share_min"] == 0.5
    assert any(
        s.startswith("own-hardware share >= 50% of IT power at site s")
        for s in binding_constraints(plan)
    )


@pytest.mark.parametrize("target", [40.0, 120.0])
def test_min_cost_target_sensitivity_has_the_sign_of_the_resolve(target):
    d = _scenario({"gpu": _gpu(), "h200": _gpu(chip="h200", unit_price_usd=500e3, supply_units=5)})
    d["scenario"] |= {"objective": "min-cost", "target_h100e": target, "target_period": "2024Q4"}
    sc = parse_scenario(d)
    pr = build_problem(sc, value_source="standin")
    recs = natural_sensitivities(pr, top=50)
    tgt = [r for r in recs if r["kind"] == "target"]
    assert len(tgt) == 1 and tgt[0]["unit"] == "H100e" and tgt[0]["step"] == 1000.0
    # independent re-solve: the problem rebuilt with a 1,000 H100e higher target
    pr2 = build_problem(sc, value_source="standin", target_h100e=target + 1000.0)
    c0 = -relaxed_solve(build_lp(pr), "highs").objective * 1e6
    r2 = relaxed_solve(build_lp(pr2), "highs")
    if r2.status != "optimal":
        assert tgt[0]["resolved"] is None
        return
    c1 = -r2.objective * 1e6
    assert c1 > c0  # a higher target costs more capex
    assert np.sign(tgt[0]["resolved"]) == np.sign(c1 - c0) == np.sign(tgt[0]["dual_estimate"])
    assert tgt[0]["resolved"] == pytest.approx(c1 - c0, rel=1e-4)
    # the dual is the rate at zero step; the re-solve can only cost more (convexity)
    assert tgt[0]["resolved"] >= tgt[0]["dual_estimate"] * (1 - 1e-9)
    assert "changes capex by +$" in sensitivity_sentence(tgt[0])


def test_power_sensitivity_in_mw_with_both_figures_and_the_note():
    pr = _ratio_problem()
    for r in natural_sensitivities(pr, top=50):
        assert {"dual", "dual_estimate", "resolved", "step", "unit", "note"} <= set(r)
        if r["kind"] == "power":
            assert r["unit"] == "MW" and r["step"] == 1.0
        if r["resolved"] is not None and r["kind"] != "price":  # a price is not a rhs
            # concave LP optimum: the re-solved gain of a relaxation never beats the dual
            assert r["resolved"] <= r["dual_estimate"] + 1e-6 * (1 + abs(r["dual_estimate"]))
            differ = abs(r["resolved"] - r["dual_estimate"]) > 1e-6 * (1 + abs(r["resolved"]))
            assert (r["note"] is not None) == differ
            assert ("they differ" in sensitivity_sentence(r)) == differ


def test_offer_that_fits_no_site_is_a_warning_with_the_reason():
    offers = {
        "gpu": _gpu(),
        "gb200": _gpu(
            chip="gb200",
            chips_per_unit=72,
            unit_price_usd=3.3e6,
            unit_power_w=132e3,
            cooling="liquid",
        ),
    }
    pr = build_problem(parse_scenario(_scenario(offers)), value_source="standin")
    plan = solve(pr, method="highs")
    assert plan.buy_units[1].sum() == 0
    d = plan_dict(plan)
    assert d["why_not"] == [
        {"offer": "gb200", "site": "s", "reason": "needs liquid cooling; s is air"}
    ]
    assert d["warnings"] == [
        "offer gb200 fits no site and is never bought: needs liquid cooling; s is air"
    ]
    assert "counts = false" not in d["value_source"]["gb200"]
    text = format_plan(plan)
    assert "Warnings:\n  offer gb200 fits no site" in text and "counts = false" not in text
    json.dumps(d, allow_nan=False)


def test_cli_json_has_records_and_text_has_sentences(tmp_path, capsys):
    from perfmodel.cli import main

    toml = tmp_path / "ratio.toml"
    toml.write_text(
        '[scenario]\nname = "ratio"\nstart = "2024Q3"\nquarters = 2\n'
        '[[workloads]]\nname = "video-driving"\nweight = 1.0\n'
        '[sites.s]\npower_mw = [50.0, 50.0]\npue = 1.25\ncooling = "air"\nracks = 1000\n'
        '[offers.gpu]\nchip = "h100_sxm"\nchips_per_unit = 8\nunit_price_usd = 400e3\n'
        "unit_power_w = 10e3\nsupply_units = 1000\n"
        '[offers.ai]\nchip = "ai4"\nchips_per_unit = 1\nunit_price_usd = 2e3\n'
        "unit_power_w = 200.0\nsupply_units = 16\ncounts = false\n"
        '[offers.big]\nchip = "gb200"\nchips_per_unit = 72\nunit_price_usd = 3.3e6\n'
        'unit_power_w = 132e3\nsupply_units = 10\ncooling = "liquid"\n'
        '[budget.capex_usd]\n"2024" = 1e10\n'
        '[[ratios]]\nsite = "*"\nnumerator = ["ai"]\ndenominator = ["gpu"]\nmin_ratio = 1.0\n'
    )
    args = ["plan", "--scenario", str(toml), "--values", "standin", "--sensitivities"]
    assert main(args + ["--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    kinds = {b["kind"] for b in d["binding"]}
    assert "ratio" in kinds
    ratio = next(b for b in d["binding"] if b["kind"] == "ratio")
    assert ratio["dual"] is not None and ratio["dual"] > 0  # it caps the GPUs
    assert all(
        {"kind", "step", "unit", "dual", "resolved", "note"} <= set(r) for r in d["sensitivities"]
    )
    assert any(r["kind"] == "ratio" for r in d["sensitivities"])
    assert all("valid_from" in r and "valid_to" in r for r in d["sensitivities"])
    assert d["why_not"] == [
        {
            "offer": "big",
            "site": "s",
            "kind": "structural",
            "blocking": "cooling",
            "reason": "needs liquid cooling; s is air",
        }
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "ratio rule 0 (ai >= 1 x gpu chips, all sites): 2024Q3, 2024Q4 (shadow price" in out
    assert "offer big fits no site" in out and "chip less of ai required by ratio rule 0" in out
    _no_internal_names(out)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_min_cost_sign_on_generated_scenarios(seed):
    from perfmodel.fleet.check import h100e_by_offer
    from perfmodel.fleet.testing import generate_scenario

    sc = generate_scenario(seed, n_offers=4, n_sites=2, n_periods=3)
    best = solve(build_problem(sc, value_source="standin"), method="highs", exact=False)
    reach = float(h100e_by_offer(best.problem, best.buy_units).sum(axis=(0, 1))[-1])
    assert reach > 0
    pr = build_problem(sc, value_source="standin", objective="min-cost", target_h100e=0.5 * reach)
    tgt = [r for r in natural_sensitivities(pr, top=100) if r["kind"] == "target"]
    assert len(tgt) == 1
    pr2 = build_problem(
        sc, value_source="standin", objective="min-cost", target_h100e=0.5 * reach + 1000.0
    )
    r0, r2 = relaxed_solve(build_lp(pr), "highs"), relaxed_solve(build_lp(pr2), "highs")
    if r2.status != "optimal":
        assert tgt[0]["resolved"] is None
        return
    change = (r0.objective - r2.objective) * 1e6  # USD of capex
    assert change > 0 and tgt[0]["resolved"] > 0 and tgt[0]["dual_estimate"] > 0
    assert tgt[0]["resolved"] == pytest.approx(change, rel=1e-4)


def test_every_rule_family_binds_somewhere_and_reads_in_words():
    """power, budget, racks, supply, ratio, own share and target each bind in a tiny
    scenario and come out as a record (JSON) and a sentence (text), no raw row name."""
    air = {"pue": 1.25, "cooling": "air"}
    cases = {
        "power": _scenario(
            {"gpu": _gpu()}, sites={"s": air | {"power_mw": [1.0, 2.0], "racks": 1000}}
        ),
        "budget": _scenario({"gpu": _gpu()}) | {"budget": {"capex_usd": {"2024": 4.05e6}}},
        "racks": _scenario(
            {"gpu": _gpu(racks_per_unit=1.0)},
            sites={"s": air | {"power_mw": [50.0, 50.0], "racks": 10}},
        ),
        "supply": _scenario({"gpu": _gpu(supply_units=3)}),
    }
    seen = {}
    for want, d in cases.items():
        plan = solve(build_problem(parse_scenario(d), value_source="standin"), method="highs")
        seen[want] = plan
        assert want in {b["kind"] for b in plan_dict(plan)["binding"]}, want
    seen["ratio"] = solve(_ratio_problem(), method="highs")
    d = _scenario({"gpu": _gpu()})
    d["scenario"] |= {"objective": "min-cost", "target_h100e": 40.0, "target_period": "2024Q4"}
    seen["target"] = solve(build_problem(parse_scenario(d), value_source="standin"), method="highs")
    words = {
        "power": "power at site s:",
        "budget": "capex budget 2024:",
        "racks": "floor space at site s:",
        "supply": "supply of gpu:",
        "ratio": "ratio rule 0 (",
        "target": "target 40 H100e in 2024Q4",
    }
    for kind, plan in seen.items():
        d = plan_dict(plan)
        assert kind in {b["kind"] for b in d["binding"]}, kind
        text = format_plan(plan)
        assert words[kind] in text, (kind, text)
        _no_internal_names(text)
        json.dumps(d, allow_nan=False)


# ------------------------------------------------------------------ ranging (HiGHS)


def _rows_of(lp, rec):
    """LP rows a sensitivity record moves, rebuilt from the row names (test's own map)."""
    k, ps = rec["kind"], rec["periods"]
    names = {
        "power": [f"power_mw[{rec.get('site')},{p}]" for p in ps],
        "racks": [f"floor_racks[{rec.get('site')},{p}]" for p in ps],
        "own_share": [f"own_share[{rec.get('site')},{p}]" for p in ps],
        "supply": [f"supply_units[{rec.get('offer')},{p}]" for p in ps],
        "budget": [f"capex_musd[{rec.get('year')}]"],
        "ratio": [f"ratio[{rec.get('rule')},{rec.get('site')},{p}]" for p in ps],
        "target": [f"target_h100e[{p}]" for p in ps],
    }[k]
    at = {nm: i for i, nm in enumerate(lp.row_names)}
    # rhs change per natural unit of the step (budget rows are in M$; the target row is -H100e)
    per = {"budget": 1e-6, "target": -1.0}.get(k, 1.0)
    return [at[n] for n in names if n in at], per


def _delay_rows(pr, lp, rec):
    """Rows and per-row rhs change of one quarter of delay of a site's power ramp, from
    the problem's schedule (test's own map): its MW one quarter later."""
    at = {nm: i for i, nm in enumerate(lp.row_names)}
    s = pr.sites.index(rec["site"])
    sched = np.asarray(pr.power_avail_mw, np.float64)[s]
    names = [f"power_mw[{rec['site']},{p}]" for p in pr.periods]
    prev = np.concatenate([sched[:1], sched[:-1]])
    keep = [t for t, n in enumerate(names) if n in at and prev[t] != sched[t]]
    return [at[names[t]] for t in keep], (prev - sched)[keep]


def _resolve_change(lp, rows, amount_row_units, base, to_obj):
    b = np.asarray(lp.b_ub, np.float64).copy()
    b[rows] += amount_row_units
    r = relaxed_solve(dataclasses.replace(lp, b_ub=b), "highs")
    return None if r.status != "optimal" else (r.objective - base) * to_obj


def _check_lines_against_resolves(pr, recs):
    lp = build_lp(pr)
    base = relaxed_solve(lp, "highs").objective
    to_obj = -1e6 if pr.objective == "min-cost" else 1.0
    checked = 0
    for r in recs:
        assert {"valid_from", "valid_to", "step_within_range"} <= set(r)
        text = sensitivity_sentence(r)
        assert "valid for " in text
        if r["kind"] in ("price", "supply_delay", "supply"):  # more than right-hand
            continue  # sides (bounds, coefficients): tests/test_fleet_natural_steps.py
        if r["kind"] == "power_delay":
            rows, per = _delay_rows(pr, lp, r)
        else:
            rows, per = _rows_of(lp, r)
        assert len(rows)
        hi = np.inf if r["valid_to"] is None else r["valid_to"]
        lo = -np.inf if r["valid_from"] is None else r["valid_from"]
        assert lo <= 0 <= hi
        # inside the range the objective is linear with the dual's slope (exact re-solves)
        for amount in {min(r["step"], hi), min(r["step"], hi) / 2, max(-r["step"], lo) / 2}:
            if amount == 0 or not np.isfinite(amount):
                continue
            got = _resolve_change(lp, rows, amount * per, base, to_obj)
            tol = 1e-6 + 1e-9 * abs(base * to_obj)  # the LP solve's own accuracy
            assert got == pytest.approx(r["dual"] * amount, rel=1e-6, abs=tol), (text, amount)
            checked += 1
        if r["step_within_range"]:
            tol = 1e-6 + 1e-9 * abs(base * to_obj)  # the LP solve's own accuracy
            assert r["note"] is None and r["resolved"] == pytest.approx(
                r["dual_estimate"], rel=1e-6, abs=tol
            ), text
        elif r["resolved"] is not None and pr.objective == "max-h100e":
            # past the range the re-solve may differ, never above the dual (concavity)
            assert r["resolved"] <= r["dual_estimate"] + 1e-6 * (1 + abs(r["dual_estimate"]))
    return checked


@pytest.mark.parametrize("values", ["standin", pytest.param("auto", marks=pytest.mark.slow)])
def test_tesla_sensitivity_lines_hold_within_their_range(values):
    from perfmodel.fleet.problem import load_scenario

    pr = build_problem(load_scenario("tesla-2024"), value_source=values)
    recs = natural_sensitivities(pr, top=8)
    assert len(recs) >= 8  # the top 8, plus the largest of each other kind
    assert _check_lines_against_resolves(pr, recs) >= 8
    assert any(r["step_within_range"] for r in recs)


def test_min_cost_sensitivity_ranges_hold():
    from perfmodel.fleet.problem import load_scenario

    pr = build_problem(
        load_scenario("tesla-2024"),
        value_source="standin",
        objective="min-cost",
        target_h100e=60_000,
        target_period="2024Q4",
    )
    recs = natural_sensitivities(pr, top=12)
    assert any(r["kind"] == "target" for r in recs)
    assert _check_lines_against_resolves(pr, recs) >= 4


def test_binding_shadow_prices_hold_within_their_range_in_text_and_json():
    from perfmodel.fleet.explain import LPExplain
    from perfmodel.fleet.problem import load_scenario
    from perfmodel.fleet.report import binding_records

    pr = build_problem(load_scenario("tesla-2024"), value_source="standin")
    plan = solve(pr, method="highs")
    ex = LPExplain(pr)
    plan.extra["row_duals"] = ex.row_duals()
    recs = ex.with_ranges(binding_records(plan))
    plan.extra["binding"] = recs
    lp = build_lp(pr)
    base = relaxed_solve(lp, "highs").objective
    priced = [b for b in recs if b.get("dual")]
    assert {"power", "ratio"} <= {b["kind"] for b in priced}
    for b in priced:
        assert "valid_from" in b and "valid_to" in b
        hi = 1e3 if b["valid_to"] is None else b["valid_to"]
        if hi <= 0:
            continue
        rows, per = _rows_of(lp, b)
        got = _resolve_change(lp, rows, hi / 2 * per, base, 1.0)
        assert got == pytest.approx(b["dual"] * hi / 2, rel=1e-6, abs=1e-6), b
    text = format_plan(plan)
    line = next(x for x in text.splitlines() if x.strip().startswith("ratio rule 0"))
    assert "H100e-quarters per chip, valid for " in line
    d = plan_dict(plan)
    ratio = next(b for b in d["binding"] if b["kind"] == "ratio")
    assert isinstance(ratio["valid_from"], float) and ratio["valid_to"] > 0
    json.dumps(d, allow_nan=False)


def _explained_plan(pr):
    from perfmodel.fleet.binding import binding_records
    from perfmodel.fleet.explain import LPExplain

    plan = solve(pr, method="highs")
    ex = LPExplain(pr)
    plan.extra["row_duals"] = ex.row_duals()
    plan.extra["binding"] = ex.with_ranges(binding_records(plan))
    return plan


@pytest.mark.parametrize("case", ["tesla-2024", "adv-ties"])
def test_degenerate_prices_are_one_sided_and_match_resolves(case):
    """A row and a purchase bound both tight (supply offered at one site): the dual holds
    for no step, so the record carries the price each way with its own range; re-solves
    (HiGHS, the LP changed by hand) inside each range agree, and the text never prints a
    zero-width range ("+0..+0")."""
    from perfmodel.fleet.problem import load_scenario
    from perfmodel.fleet.testing import generate_adversarial

    sc = (
        load_scenario("tesla-2024")
        if case == "tesla-2024"
        else generate_adversarial(2004, "ties", 6, 2, 8)
    )
    pr = build_problem(sc, value_source="standin")
    plan = _explained_plan(pr)
    lp = build_lp(pr)
    base = relaxed_solve(lp, "highs").objective
    to_obj = -1e6 if pr.objective == "min-cost" else 1.0
    degen = [b for b in plan.extra["binding"] if b.get("degenerate")]
    assert degen, "no degenerate binding price in this plan"
    for b in degen:
        assert b["degenerate"] in ("bound", "row")
        assert b["valid_from"] == 0 or b["valid_to"] == 0  # why it is degenerate
        rows, per = _rows_of(lp, b)
        for key, sgn in (("up", 1.0), ("down", -1.0)):
            p, lim = b[f"price_{key}"], b[f"{key}_valid"]
            if p is None:
                continue
            lim = sgn * 10.0 if lim is None else lim
            assert sgn * lim > 0, b
            for amount in (lim / 2, lim / 10):
                got = _resolve_change(lp, rows, amount * per, base, to_obj)
                assert got == pytest.approx(p * amount, rel=1e-6, abs=1e-6), (b, key, amount)
        # concavity of the LP value in a right-hand side: less costs at least what more adds
        if b["price_up"] is not None and b["price_down"] is not None and to_obj > 0:
            assert b["price_down"] >= b["price_up"] - 1e-9
    text = format_plan(plan)
    assert "+0..+0" not in text and "shadow price degenerate" in text
    d = plan_dict(plan)
    assert any(x.get("degenerate") for x in d["binding"])
    json.dumps(d, allow_nan=False)


def test_every_binding_kind_binds_in_a_builtin_or_generated_plan_text_and_json():
    """The bar of issue 15: each kind of binding record (ratio and own share included)
    appears in the JSON and the text of at least one built-in or generated plan (the
    plans as ``perfmodel plan`` explains them, with HiGHS ranges)."""
    from perfmodel.fleet.binding import KINDS
    from perfmodel.fleet.problem import load_scenario
    from perfmodel.fleet.report import binding_sentence
    from perfmodel.fleet.testing import generate_adversarial

    tesla = load_scenario("tesla-2024")
    problems = [
        build_problem(tesla, value_source="standin"),
        build_problem(generate_adversarial(2026, "ratio-own", 8, 4, 6), value_source="standin"),
        build_problem(generate_adversarial(2007, "starved", 7, 4, 8), value_source="standin"),
        build_problem(
            tesla,
            value_source="standin",
            objective="min-cost",
            target_h100e=60_000,
            target_period="2024Q4",
        ),
    ]
    seen: dict[str, int] = {}
    for pr in problems:
        plan = _explained_plan(pr)
        d = plan_dict(plan)
        text = format_plan(plan)
        unit = "USD" if pr.objective == "min-cost" else "H100e-quarters"
        _no_internal_names(text)
        json.dumps(d, allow_nan=False)
        for b in d["binding"]:
            assert b["kind"] in KINDS, b["kind"]
            assert binding_sentence(b, unit) in text, b  # the same record, in words
            seen[b["kind"]] = seen.get(b["kind"], 0) + 1
    assert set(seen) == set(KINDS), sorted(set(KINDS) - set(seen))


# ------------------------------------------------------------------ why not


def test_why_not_names_the_blocking_constraint_per_offer_and_site():
    from perfmodel.fleet.explain import LPExplain, why_not_sentence

    # a dear chip next to a cheap one under a tight budget: the dear one is never
    # bought, and the budget is what blocks it; gb200 fits no site (air only)
    offers = {
        "gpu": _gpu(),
        "dear": _gpu(chip="h100_sxm", unit_price_usd=4e6),
        "gb200": _gpu(chip="gb200", chips_per_unit=72, unit_price_usd=3.3e6, cooling="liquid"),
    }
    d = _scenario(offers) | {"budget": {"capex_usd": {"2024": 4e6}}}
    pr = build_problem(parse_scenario(d), value_source="standin")
    plan = solve(pr, method="highs")
    assert plan.buy_units[1].sum() == 0 and plan.buy_units[0].sum() > 0
    recs = LPExplain(pr).why_not(plan.buy_units)
    by = {(r["offer"], r["site"]): r for r in recs}
    assert set(by) == {("dear", "s"), ("gb200", "s")}
    assert by["gb200", "s"]["kind"] == "structural" and by["gb200", "s"]["blocking"] == "cooling"
    assert why_not_sentence(by["gb200", "s"]) == "gb200 at s: needs liquid cooling; s is air"
    r = by["dear", "s"]
    assert r["kind"] == "reduced_cost" and r["blocking"] == "budget 2024"
    # hand check: a unit returns its H100e-quarters (the gpu's: the same chip) and its
    # price at the budget's shadow price (H100e-q per M$) costs more than that
    lp = build_lp(pr)
    sol = relaxed_solve(lp, "highs")
    y_budget = sol.y_ub[list(lp.row_names).index("capex_musd[2024]")]
    assert r["costs"]["budget 2024"] == pytest.approx(4.0 * y_budget, rel=1e-9)
    assert r["reduced_cost"] < 0 and r["returns"] < r["costs"]["budget 2024"]
    # the value is the curve's: 8 chips x 2 quarters at its first segment's slope
    from perfmodel.fleet.build import segment_slopes

    slope = np.asarray(segment_slopes(pr, np)[0])[1, 0, 0]
    assert r["value"] == pytest.approx(8 * 2 * slope, rel=1e-9) and r["returns"] == r["value"]
    # the same chip at the cheap offer: 10x the H100e per dollar, so one dear unit loses
    assert r["reduced_cost"] == pytest.approx(r["returns"] - sum(r["costs"].values()), abs=1e-2)
    line = why_not_sentence(r)
    assert line.startswith(
        "dear at s: does not pay, mainly because of budget 2024: one unit from 2024Q"
    )
    _no_internal_names(line)


@pytest.mark.slow  # a fresh process (the banner shows only on a process's first HiGHS)
def test_cli_text_has_ranges_and_why_not_and_no_banner(tmp_path):
    import subprocess
    import sys

    toml = tmp_path / "s.toml"
    toml.write_text(
        '[scenario]\nname = "s"\nstart = "2024Q3"\nquarters = 2\n'
        '[[workloads]]\nname = "video-driving"\nweight = 1.0\n'
        '[sites.s]\npower_mw = [1.0, 2.0]\npue = 1.25\ncooling = "air"\nracks = 1000\n'
        '[offers.gpu]\nchip = "h100_sxm"\nchips_per_unit = 8\nunit_price_usd = 400e3\n'
        "unit_power_w = 10e3\nsupply_units = 1000\n"
        '[offers.big]\nchip = "gb200"\nchips_per_unit = 72\nunit_price_usd = 3.3e6\n'
        'unit_power_w = 132e3\nsupply_units = 10\ncooling = "liquid"\n'
        '[budget.capex_usd]\n"2024" = 1e10\n'
    )
    cmd = [
        sys.executable,
        "-m",
        "perfmodel",
        "plan",
        "--scenario",
        str(toml),
        "--values",
        "standin",
    ]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "HiGHS" not in p.stdout.split("Integer plan:")[0]  # the banner goes to stderr
    assert "Running HiGHS" not in p.stdout
    assert "power at site s: 2024Q3, 2024Q4 (shadow price" in p.stdout
    assert "valid for " in p.stdout
    assert "big at s: needs liquid cooling; s is air" in p.stdout
    _no_internal_names(p.stdout)


@pytest.mark.parametrize("name", ["tesla-2024", "tesla-2025", 0, 1, 2])
def test_why_not_reduced_cost_never_positive(name):
    """At the LP optimum a purchase left at 0 cannot pay: returns - costs <= 0 for every
    priced why-not record (what the chips deliver is at most what the LP's duals credit)."""
    from perfmodel.fleet.explain import LPExplain, why_not_sentence
    from perfmodel.fleet.problem import load_scenario
    from perfmodel.fleet.testing import generate_scenario

    if isinstance(name, int):
        sc = generate_scenario(name, n_offers=4, n_sites=3, n_periods=4)
    else:
        sc = load_scenario(name)
    pr = build_problem(sc, value_source="standin")
    plan = solve(pr, method="highs")
    recs = LPExplain(pr).why_not(plan.buy_units)
    bought = {(pr.offers[k], pr.sites[s]) for k, s in zip(*np.nonzero(plan.buy_units.sum(axis=2)))}
    assert {(r["offer"], r["site"]) for r in recs} == {
        (o, s) for o in pr.offers for s in pr.sites
    } - bought
    for r in recs:
        line = why_not_sentence(r)
        _no_internal_names(line)
        if r["kind"] == "reduced_cost":
            scale = max(r["returns"], sum(r["costs"].values()), 1.0)
            assert r["reduced_cost"] <= 1e-6 * scale, line
            assert r["value"] >= 0 and all(v > 0 for v in r["costs"].values())
