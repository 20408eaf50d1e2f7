"""What-ifs from the command line (``plan --set``), the self-describing plan JSON
(checked here from the JSON alone, without the Problem) and ``perfmodel compare``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from perfmodel.cli import main
from perfmodel.errors import InputError
from perfmodel.fleet.overrides import apply_overrides, load_with_overrides, parse_override

TINY = """
[scenario]
name = "tiny"
start = "2024Q3"
quarters = 3
[[workloads]]
name = "video-driving"
weight = 1.0
[sites.air]
power_mw = [3.0, 4.0, 6.0]
pue = 1.25
cooling = "air"
racks = 40
[sites.wet]
power_mw = 5.0
pue = 1.1
cooling = "liquid"
racks = 30
own_share_min = 0.2
own_share_from = "2024Q4"
[offers.gpu]
chip = "h100_sxm"
chips_per_unit = 8
unit_price_usd = 400e3
unit_price_usd_low = 350e3
unit_price_usd_high = 450e3
unit_power_w = 10e3
racks_per_unit = 0.25
supply_units = [60, 60, 60]
[offers.mine]
chip = "dojo_tile"
chips_per_unit = 6
unit_price_usd = 2.7e6
unit_power_w = 108e3
racks_per_unit = 0.5
cooling = "liquid"
own = true
sites = ["wet"]
supply_units = 3
[offers.ai]
chip = "ai4"
chips_per_unit = 1
unit_price_usd = 2.5e3
unit_power_w = 250.0
racks_per_unit = 0.01
counts = false
own = true
supply_units = 200
sites = ["wet"]
[[events]]
offer = "gpu"
units = 20
period = "2024Q3"
delay_quarters = 1
[[existing]]
offer = "gpu"
site = "air"
chips = 80
[budget]
capex_usd = { "2024" = 2.0e7, "2025" = 1.5e7 }
[[ratios]]
site = "wet"
numerator = ["ai"]
denominator = ["gpu"]
min_ratio = 0.5
from = "2024Q4"
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("compare")
    toml = d / "tiny.toml"
    toml.write_text(TINY)
    out = {"toml": str(toml), "dir": str(d)}
    for name, extra in (("a", []), ("b", ["--set", "budget.capex_usd.2024=1.0e7"])):
        path = d / f"plan_{name}.json"
        argv = ["plan", "--scenario", str(toml), "--values", "standin", "--json", *extra]
        import contextlib
        import io

        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            assert main(argv) == 0
        path.write_text(buf.getvalue())
        out[name] = str(path)
    (d / "bad.json").write_text('{"scenario": "x"}')
    (d / "broken.json").write_text("{not json")
    typed = json.loads((d / "plan_a.json").read_text())
    typed["power"][0]["used_mw"] = "80"
    (d / "typed.json").write_text(json.dumps(typed))
    (d / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    return out


def _load(path) -> dict:
    return json.loads(Path(path).read_text())


# ------------------------------------------------------------------ overrides


def test_override_paths_selectors_and_siblings():
    data = {
        "scenario": {"start": "2024Q1", "quarters": 4},
        "sites": {"c": {"power_mw": [0, 10, 20, 30]}, "l": {"power_mw": 80}},
        "offers": {"h": {"unit_price_usd": 400, "unit_price_usd_low": 300}},
        "ratios": [{"min_ratio": 0.4}],
    }
    new, recs = apply_overrides(
        data,
        [
            "offers.h.unit_price_usd=200",
            "sites.c.power_mw[2024Q3:]=600",
            "sites.l.power_mw[:2024Q2]=5",
            "sites.l.power_mw[2024Q4]=7.5",
            "ratios[0].min_ratio=0.5",
        ],
    )
    assert data["offers"]["h"]["unit_price_usd"] == 400  # the input is not changed
    assert new["offers"]["h"] == {"unit_price_usd": 200, "unit_price_usd_low": 150.0}
    assert recs[0]["also"] == {"offers.h.unit_price_usd_low": 150.0}
    assert new["sites"]["c"]["power_mw"] == [0, 10, 600, 600]
    assert new["sites"]["l"]["power_mw"] == [5, 5, 80, 7.5]
    assert new["ratios"][0]["min_ratio"] == 0.5
    assert recs[1] == {
        "set": "sites.c.power_mw[2024Q3:]=600",
        "path": "sites.c.power_mw",
        "value": [0, 10, 600, 600],
        "was": [0, 10, 20, 30],
    }
    assert parse_override("sites.c.cooling=liquid").value == "liquid"  # a bare word


@pytest.mark.parametrize(
    "text, words",
    [
        ("offers.h900.unit_price_usd=1", "offers.h900 does not exist (known: a100, ai4"),
        ("offers.h100.unit_price_usd=-5", "offers.h100.unit_price_usd = -5 must be > 0"),
        ("sites.cortex.power_mw[2027Q1:]=5", "period 2027Q1 must be within 2024Q1..2025Q4"),
        ("sites.cortex.power_mw[2025Q9]=5", "must be a quarter like 2025Q1"),
        ("sites.cortex.power_mw[2025Q2:2025Q1]=5", "runs backwards"),
        ("sites.cortex.pue=nan", "sites.cortex.pue = nan must be finite"),
        ("sites.cortex.cooling=water", "must be 'air' or 'liquid'"),
        ("offers.h100.foo=1", "offers.h100.foo: unknown field"),
        ("ratios[3].min_ratio=1", "ratios[3] does not exist (indices 0..0)"),
        ("offers.h100.unit_price_usd", "must look like PATH=VALUE"),
        ("offers.h100.unit_price_usd=1979-05-27", "is a TOML date/time"),
        ("offers..x=1", "path part '' must be a key"),
        ("offers.h100.unit_price_usd=[1,", "is not a TOML value"),
        ("offers.h100.unit_price_usd=" + "[" * 3000, "is not a TOML value"),
        ("x" * 5000, "must look like PATH=VALUE"),
    ],
)
def test_bad_override_is_one_line_naming_it(text, words):
    with pytest.raises(InputError) as e:
        load_with_overrides("tesla-2024", [text])
    msg = str(e.value)
    assert words in msg and "\n" not in msg
    assert msg.startswith(f"--set {text!r}"[:60]) and len(msg) < 400


def test_plan_set_changes_the_plan_and_is_recorded(files):
    a = _load(files["a"])
    b = _load(files["b"])
    assert a["inputs"]["overrides"] == []
    rec = b["inputs"]["overrides"]
    assert rec == [
        {
            "set": "budget.capex_usd.2024=1.0e7",
            "path": "budget.capex_usd.2024",
            "value": 1.0e7,
            "was": 2.0e7,
        }
    ]
    assert b["inputs"]["budget_usd"]["2024"] == 1.0e7
    spent = {s["year"]: s["capex_usd"] for s in b["spend"]}
    assert spent["2024"] <= 1.0e7 < {s["year"]: s["capex_usd"] for s in a["spend"]}["2024"]


def test_plan_set_error_exit_2_one_line(files, capsys):
    rc = main(["plan", "--scenario", files["toml"], "--set", "sites.air.pue=0.5"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "sites.air.pue" in err and "0.5" in err


# ------------------------------------------------------------------ self-describing JSON


def check_plan_json(d: dict) -> list[str]:
    """An independent check of a plan from its JSON alone (no Problem, no LP): every
    rule recomputed from the purchases and ``inputs``; the figures the plan reports
    recomputed the same way. Returns the violations."""
    inp = d["inputs"]
    P, S, K = d["periods"], d["sites"], d["offers"]
    T = len(P)
    off, sit = inp["offers"], inp["sites"]
    buy = {(o, s): np.zeros(T) for o in K for s in S}
    bad = []
    for p in d["purchases"]:
        t = P.index(p["period"])
        buy[p["offer"], p["site"]][t] += p["units"]
        if p["period"] not in off[p["offer"]]["allowed"][p["site"]]:
            bad.append(f"{p['offer']} delivered to {p['site']} in {p['period']}: not allowed")
        if p["units"] != int(p["units"]) or p["units"] < 0:
            bad.append(f"purchase {p} is not a whole number of units")
    units = {(o, s): np.cumsum(buy[o, s]) for o in K for s in S}
    for e in inp["existing"]:
        units[e["offer"], e["site"]] += e["units"]
    tol = lambda lim: 1e-6 + 1e-9 * abs(lim)  # noqa: E731
    for o in K:
        for t in range(T):
            n = sum(buy[o, s][t] for s in S)
            if n > off[o]["supply_units"][t] + tol(off[o]["supply_units"][t]):
                bad.append(f"supply of {o} in {P[t]}: {n} > {off[o]['supply_units'][t]}")
    power = {(r["site"], r["period"]): r for r in d["power"]}
    for s in S:
        for t in range(T):
            mw = sit[s]["pue"] * sum(units[o, s][t] * off[o]["unit_power_w"] for o in K) / 1e6
            if mw > sit[s]["power_mw"][t] + tol(sit[s]["power_mw"][t]):
                bad.append(f"power at {s} in {P[t]}: {mw} > {sit[s]['power_mw'][t]}")
            if abs(mw - power[s, P[t]]["used_mw"]) > 1e-6 * max(1.0, mw):
                bad.append(f"reported power at {s} in {P[t]} differs")
            racks = sum(units[o, s][t] * off[o]["racks_per_unit"] for o in K)
            if racks > sit[s]["racks"] + tol(sit[s]["racks"]):
                bad.append(f"racks at {s} in {P[t]}: {racks} > {sit[s]['racks']}")
            if abs(racks - sit[s]["racks_used"][t]) > 1e-6 * max(1.0, racks):
                bad.append(f"reported rack use at {s} in {P[t]} differs")
    for y in inp["years"]:
        cost = sum(
            buy[o, s][t] * off[o]["unit_price_usd"]
            for o in K
            for s in S
            for t in range(T)
            if P[t][:4] == y
        )
        if cost > inp["budget_usd"][y] + tol(inp["budget_usd"][y]):
            bad.append(f"capex {y}: {cost} > {inp['budget_usd'][y]}")
    for r in inp["ratios"]:
        ss = S if r["site"] == "all" else [r["site"]]
        f = P.index(r["from_period"]) if r["from_period"] else T
        for t in range(T):
            num = sum(units[o, s][t] * off[o]["chips_per_unit"] for o in r["numerator"] for s in ss)
            den = sum(
                units[o, s][t] * off[o]["chips_per_unit"] for o in r["denominator"] for s in ss
            )
            if abs(num - r["numerator_chips"][t]) > 1e-6 * max(1.0, num):
                bad.append(f"reported ratio rule {r['rule']} in {P[t]} differs")
            if t >= f and num < r["min_ratio"] * den - tol(den):
                bad.append(f"ratio rule {r['rule']} in {P[t]}: {num} < {r['min_ratio']} x {den}")
    for r in inp["own_share"]:
        s, f = r["site"], P.index(r["from_period"])
        for t in range(f, T):
            mw = [units[o, s][t] * off[o]["unit_power_w"] / 1e6 for o in K]
            own = sum(m for m, o in zip(mw, K) if off[o]["own"])
            if own < r["share_min"] * sum(mw) - tol(sum(mw)):
                bad.append(f"own share at {s} in {P[t]}: {own} < {r['share_min']} x {sum(mw)}")
    h = np.zeros(T)
    for o in K:
        for s in S:
            vc = off[o]["value_curve"][s]
            if vc["chips"][-1] > 0:
                h += np.interp(units[o, s] * off[o]["chips_per_unit"], vc["chips"], vc["h100e"])
    if not np.allclose(h, d["h100e"], rtol=1e-9, atol=1e-6):
        bad.append(f"H100e per quarter {h.tolist()} != reported {d['h100e']}")
    hq = float(h @ np.asarray(inp["period_weight"]))
    if abs(hq - d["h100e_quarters"]) > 1e-6 * max(1.0, hq):
        bad.append("H100e-quarters differ")
    if "target" in inp and h[P.index(inp["target"]["period"])] < inp["target"]["h100e"] - 1e-6:
        bad.append("target missed")
    return bad


def test_plan_json_checks_from_the_json_alone(files):
    for name in ("a", "b"):
        d = _load(files[name])
        assert d["feasible"] and check_plan_json(d) == [], name
        inp = d["inputs"]
        assert inp["pick"] == "best" and inp["offers"]["gpu"]["supply_units"] == [40.0, 80.0, 60.0]
        assert inp["existing"] == [{"offer": "gpu", "site": "air", "units": 10.0, "chips": 80.0}]
        assert {r["rule"] for r in inp["ratios"]} == {0} and inp["own_share"][0]["site"] == "wet"
    # the check can fail: one more unit than the supply, or a rule broken
    d = _load(files["a"])
    p = d["purchases"][0]
    p["units"] += d["inputs"]["offers"][p["offer"]]["supply_units"][d["periods"].index(p["period"])]
    assert any("supply of" in v for v in check_plan_json(d))
    d = _load(files["a"])
    d["inputs"]["ratios"][0]["min_ratio"] = 1e6
    assert any("ratio rule 0" in v for v in check_plan_json(d))


def test_tesla_plan_json_checks_from_the_json_alone(capsys):
    assert (
        main(
            ["plan", "--values", "standin", "--json", "--set", "offers.h100.unit_price_usd=350000"]
        )
        == 0
    )
    d = json.loads(capsys.readouterr().out)
    assert check_plan_json(d) == []
    assert d["inputs"]["offers"]["h100"]["unit_price_usd"] == 350000
    assert d["inputs"]["offers"]["h100"]["supply_units"][:3] == [2000.0, 2500.0, 4000.0]  # event


# ------------------------------------------------------------------ compare


def test_compare_two_plan_jsons(files, capsys):
    assert main(["compare", files["a"], files["b"], "--json"]) == 0
    c = json.loads(capsys.readouterr().out)
    A, B = (_load(files[k]) for k in ("a", "b"))
    t = c["totals"]
    assert t["capex_usd"]["a"] == A["capex_usd"] and t["capex_usd"]["b"] == B["capex_usd"]
    assert t["h100e_quarters"]["diff"] == pytest.approx(B["h100e_quarters"] - A["h100e_quarters"])
    assert [r["diff"] for r in c["h100e"]] == pytest.approx(
        list(np.subtract(B["h100e"], A["h100e"]))
    )
    assert {r["year"] for r in c["spend"]} == {"2024", "2025"}
    assert len(c["power"]) == len(A["power"])
    # every binding rule of either side once, matched by rule and key
    ident = lambda b: (b["kind"], b.get("site"), b.get("offer"), b.get("year"), b.get("rule"))  # noqa: E731
    ia, ib = {ident(b) for b in A["binding"]}, {ident(b) for b in B["binding"]}
    assert len(c["binding"]) == len(ia | ib)
    assert sum(r["in_a"] for r in c["binding"]) == len(ia)
    assert sum(r["in_b"] for r in c["binding"]) == len(ib)
    assert c["b"]["overrides"][0]["path"] == "budget.capex_usd.2024"
    assert main(["compare", files["a"], files["b"]]) == 0
    out = capsys.readouterr().out
    assert "H100e-quarters" in out and "B - A" in out and "Binding constraints" in out
    assert "budget 2024" in out  # the tighter budget binds in B


def test_compare_scenario_with_set_against_itself(files, capsys):
    argv = ["compare", files["toml"], files["toml"], "--values", "standin", "--json"]
    assert main(argv + ["--set-b", "sites.air.power_mw=8"]) == 0
    c = json.loads(capsys.readouterr().out)
    assert c["a"]["overrides"] == [] and c["b"]["overrides"][0]["value"] == 8
    assert c["totals"]["h100e_quarters"]["diff"] >= -1e-6  # more power never hurts
    assert main(argv) == 0
    same = json.loads(capsys.readouterr().out)
    assert all(abs(r["diff"]) < 1e-9 for r in same["h100e"])


@pytest.mark.parametrize(
    "which, words",
    [
        ("bad", "not a plan JSON (missing"),
        ("broken", "not valid JSON"),
        ("missing", "no such plan JSON file"),
        ("dir", "directory"),
        ("typed", "power must be a list of records with site, period (text) and used_mw"),
        ("deep", "not a plan JSON"),
    ],
)
def test_compare_bad_input_is_one_line(files, capsys, which, words):
    path = {
        "bad": files["dir"] + "/bad.json",
        "broken": files["dir"] + "/broken.json",
        "missing": files["dir"] + "/nope.json",
        "dir": files["dir"] + "/sub.json",
        "typed": files["dir"] + "/typed.json",
        "deep": files["dir"] + "/deep.json",
    }[which]
    if which == "dir":
        import os

        os.makedirs(path, exist_ok=True)
    rc = main(["compare", files["a"], path])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and words in err, err


_ARGS = st.sampled_from(["a", "b", "toml", "toml", "a", "bad", "broken", "missing", "tesla-2099"])
_SETS = st.sampled_from(
    [
        "budget.capex_usd.2024=1e7",
        "sites.air.power_mw[2024Q4:]=9",
        "offers.gpu.unit_price_usd=380000",
        "offers.gpu.unit_price_usd=-1",
        "sites.air.pue=7",
        "sites.nowhere.pue=1.2",
        "offers.gpu.supply_units[2026Q1]=5",
        "garbage",
        "ratios[0].min_ratio=2",
    ]
)


@example(a="a", b="toml", set_a=[], set_b=["sites.air.power_mw[2024Q4:]=9"], as_json=True)
@example(a="toml", b="b", set_a=["offers.gpu.unit_price_usd=380000"], set_b=[], as_json=False)
@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    a=_ARGS,
    b=_ARGS,
    set_a=st.one_of(st.just([]), st.lists(_SETS, max_size=2)),
    set_b=st.one_of(st.just([]), st.lists(_SETS, max_size=2)),
    as_json=st.booleans(),
)
def test_compare_and_set_fuzz(files, capsys, a, b, set_a, set_b, as_json):
    path = {
        "a": files["a"],
        "b": files["b"],
        "toml": files["toml"],
        "bad": files["dir"] + "/bad.json",
        "broken": files["dir"] + "/broken.json",
        "missing": files["dir"] + "/missing.toml",
    }
    argv = ["compare", path.get(a, a), path.get(b, b), "--values", "standin", "--heuristic"]
    for s in set_a:
        argv += ["--set-a", s]
    for s in set_b:
        argv += ["--set-b", s]
    if as_json:
        argv.append("--json")
    rc = main(argv)
    out, err = capsys.readouterr()
    if rc == 0:
        assert out.strip() and "nan" not in out.lower().replace("nanos", "")
        if as_json:
            json.loads(out)
    else:
        assert rc == 2, (argv, err)
        assert len(err.strip().splitlines()) == 1 and not out.strip(), (argv, err)


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sets=st.lists(_SETS, min_size=1, max_size=3), as_json=st.booleans())
def test_plan_set_fuzz(files, capsys, sets, as_json):
    argv = ["plan", "--scenario", files["toml"], "--values", "standin", "--heuristic"]
    for s in sets:
        argv += ["--set", s]
    if as_json:
        argv.append("--json")
    rc = main(argv)
    out, err = capsys.readouterr()
    if rc == 0:
        if as_json:
            d = json.loads(out)
            assert [r["set"] for r in d["inputs"]["overrides"]] == sets
            assert check_plan_json(d) == []
        else:
            assert out.startswith("What-if overrides (--set): ")
    else:
        assert rc == 2, (argv, err)
        assert len(err.strip().splitlines()) == 1 and not out.strip(), (argv, err)
