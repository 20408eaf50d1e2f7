"""The serving model in the rest of the product (issue 18, item 4): ``equiv --kind
inference`` on LLM workloads and the fleet planner's inference demand at a latency
target (``[[workloads]] scenario``), with the forward-only int8 model kept for vision /
in-the-loop workloads by explicit choice."""

import copy
import json

import numpy as np
import pytest
from fleet_parts import SITE_10MW, h100_offer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import perfmodel  # noqa: F401  (x64)
from perfmodel import equivalence as eq
from perfmodel.cli import main
from perfmodel.errors import InputError
from perfmodel.fleet import parse_scenario
from perfmodel.serving import serve

SCEN = ("offline", "server", "interactive")
FEW = settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


# ------------------------------------------------------------------ equiv, serving model
@FEW
@given(n=st.floats(1e-3, 1e9), sc=st.sampled_from(SCEN))
def test_serving_h100e_of_the_h100_is_its_count(n, sc):
    r = eq.serving_equivalence_range("h100", n, "llama2-70b", scenario=sc)
    assert r.h100e == n and r.h100e_low == n and r.h100e_high == n
    assert r.assumptions["model"] == "serving" and r.assumptions["scenario"] == sc


@pytest.mark.parametrize("chip", ["h100_sxm", "h200", "b200"])
def test_interactive_le_server_le_offline(chip):
    t = [serve("llama2-70b", chip, 8, s)["tokens_per_s_per_chip"] for s in SCEN]
    assert t[2] <= t[1] <= t[0]
    assert t[2] > 0


@FEW
@given(n=st.integers(1, 10**6), sc=st.sampled_from(SCEN))
def test_serving_h100e_is_linear_in_the_count_and_the_rate_ratio(n, sc):
    r = eq.serving_equivalence_range("b200", n, "llama2-70b", scenario=sc)
    mine = serve("llama2-70b", "b200", 8, sc)["tokens_per_s_per_chip"]
    ref = serve("llama2-70b", "h100_sxm", 8, sc)["tokens_per_s_per_chip"]
    assert r.h100e == pytest.approx(n * mine / ref, rel=1e-12)
    band = r.assumptions["error_band"]["cv_mean_abs_error"]
    assert r.h100e_low == pytest.approx(r.h100e * (1 - band), rel=1e-12)
    assert r.h100e_high == pytest.approx(r.h100e * (1 + band), rel=1e-12)


def test_serving_unit_grows_until_the_weights_fit():
    from perfmodel.equivalence.inference import serving_unit
    from perfmodel.hardware import load_catalog

    cat = load_catalog()
    assert serving_unit("h100_sxm", "llama2-70b", None, cat) == 8
    assert serving_unit("gb200", "llama2-70b", None, cat) == 72
    assert serving_unit("h100_sxm", "deepseek-r1", None, cat) == 16


def _equiv(capsys, *args):
    rc = main(["equiv", "--kind", "inference", "--count", "8", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.parametrize("sc", SCEN)
def test_cli_serving_text_and_json(capsys, sc):
    rc, out, _ = _equiv(capsys, "--chip", "b200", "--workload", "llama2-70b", "--scenario", sc)
    assert rc == 0
    head = out.splitlines()[0]
    assert f"serving model, {sc} scenario" in head and "cross-validated tokens/s error" in head
    rc, out, _ = _equiv(
        capsys, "--chip", "b200", "--workload", "llama2-70b", "--scenario", sc, "--json"
    )
    d = json.loads(out)
    assert rc == 0 and d["model"] == "serving" and d["scenario"] == sc
    assert set(d["cv_error_pct"]) == {"b200", "h100_sxm"}
    assert d["h100e_low"] <= d["h100e"] <= d["h100e_high"]


def test_cli_default_scenario_is_offline_and_llms_default_to_serving(capsys):
    rc, out, _ = _equiv(capsys, "--chip", "h100", "--workload", "llama3.1-8b", "--json")
    d = json.loads(out)
    assert rc == 0 and (d["model"], d["scenario"], d["h100e"]) == ("serving", "offline", 8.0)


def test_cli_forward_model_is_explicit_and_labelled(capsys):
    rc, out, _ = _equiv(
        capsys, "--chip", "b200", "--workload", "llama2-70b", "--model", "forward", "--json"
    )
    d = json.loads(out)
    assert rc == 0 and d["model"] == "forward" and d["scenario"] is None
    old = eq.inference_equivalence_range("b200", 8, "llama2-70b", precision="int8")
    assert d["h100e"] == pytest.approx(old.h100e, rel=1e-12)
    rc, out, _ = _equiv(capsys, "--chip", "b200", "--workload", "llama2-70b", "--model", "forward")
    assert "forward-only int8 model" in out.splitlines()[0]


def test_cli_vision_workloads_default_to_forward(capsys):
    rc, out, _ = _equiv(capsys, "--chip", "ai4", "--json")
    d = json.loads(out)
    assert rc == 0 and d["model"] == "forward" and d["assumptions"]["workload"] == "video-driving"


@FEW
@given(bad=st.text(st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=12))
def test_cli_unknown_scenario_exits_2_naming_the_field(capsys, bad):
    if bad in SCEN:
        return
    rc, out, err = _equiv(capsys, "--chip", "b200", "--workload", "llama2-70b", "--scenario", bad)
    assert rc == 2 and out == ""
    line = err.strip()
    assert "\n" not in line and "--scenario" in line and repr(bad) in line
    assert "offline, server, interactive" in line


@pytest.mark.parametrize(
    "args,field",
    [
        (["--workload", "video-driving", "--model", "serving"], "--model"),
        (["--workload", "video-driving", "--scenario", "server"], "--scenario"),
        (["--workload", "llama2-70b", "--mode", "job"], "--mode"),
        (["--workload", "mixtral-8x7b", "--scenario", "interactive"], "scenario"),
    ],
)
def test_cli_bad_combinations_exit_2_in_one_line(capsys, args, field):
    rc, out, err = _equiv(capsys, "--chip", "b200", *args)
    assert rc == 2 and out == "" and field in err and err.count("\n") == 1
    assert "Traceback" not in err


def test_cli_scenario_needs_kind_inference(capsys):
    rc = main(["equiv", "--chip", "b200", "--count", "8", "--scenario", "server"])
    err = capsys.readouterr().err
    assert rc == 2 and "--scenario" in err and "--kind inference" in err


def test_serving_equivalence_rejects_a_vision_workload():
    with pytest.raises(InputError, match="--model"):
        eq.serving_equivalence_range("b200", 8, "video-driving")


# ------------------------------------------------------------------ fleet planner
def _scenario(**wl):
    w = {"name": "llama2-70b", "key": "chat", "kind": "inference", "demand": [1e5, 1e5]}
    w.update(wl)
    return {
        "scenario": {"name": "s", "start": "2024Q1", "quarters": 2, "objective": "max-h100e"},
        "workloads": [{"name": "llama3-70b", "key": "train"}, w],
        "sites": {"a": dict(SITE_10MW)},
        "offers": {"gpu": h100_offer(supply_units=100)},
        "budget": {"capex_usd": {"2024": 5e7}},
    }


@pytest.mark.parametrize("sc", SCEN)
def test_fleet_scenario_field_parses(sc):
    s = parse_scenario(_scenario(scenario=sc))
    assert s.workload_specs[1].scenario == sc and s.workload_specs[0].scenario is None


def test_fleet_scenario_defaults_to_offline_for_serving_only():
    s = parse_scenario(_scenario())
    assert s.workload_specs[1].scenario == "offline"
    s = parse_scenario(_scenario(name="video-driving", model="forward"))
    assert s.workload_specs[1].scenario is None


@FEW
@given(bad=st.one_of(st.text(max_size=10), st.integers(), st.floats(allow_nan=False)))
def test_fleet_unknown_scenario_is_one_line_naming_field_value_and_allowed(bad):
    if bad in SCEN:
        return
    with pytest.raises(InputError) as e:
        parse_scenario(_scenario(scenario=bad))
    msg = str(e.value)
    assert "\n" not in msg and "workloads[1].scenario" in msg
    assert "offline | server | interactive" in msg


@pytest.mark.parametrize(
    "over,match",
    [
        (dict(name="video-driving", model="forward", scenario="server"), "absent"),
        (dict(name="mixtral-8x7b", scenario="interactive"), "offline | server"),
    ],
)
def test_fleet_scenario_where_it_does_not_apply(over, match):
    with pytest.raises(InputError, match=match) as e:
        parse_scenario(_scenario(**over))
    assert "workloads[1].scenario" in str(e.value)


def test_fleet_scenario_on_training_is_rejected():
    d = _scenario()
    d["workloads"][0]["scenario"] = "server"
    with pytest.raises(InputError, match=r"workloads\[0\]\.scenario"):
        parse_scenario(d)


def test_fleet_plan_cli_bad_scenario_exits_2(tmp_path, capsys):
    import tomli_w

    p = tmp_path / "s.toml"
    p.write_bytes(tomli_w.dumps(_scenario(scenario="batch")).encode())
    rc = main(["plan", "--scenario", str(p)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "workloads[1].scenario = 'batch'" in err


def test_fleet_rates_at_the_latency_target_and_cache_key(fresh_caches):
    from perfmodel.fleet import values

    r = {
        sc: values.chip_rate("h100_sxm", "llama2-70b", "serving", "best", "equivalence", 8, sc)
        for sc in SCEN
    }
    for sc in SCEN:
        assert r[sc] == pytest.approx(
            serve("llama2-70b", "h100_sxm", 8, sc)["tokens_per_s_per_chip"], rel=1e-12
        )
    assert r["interactive"] < r["server"] <= r["offline"]
    keys = json.loads((fresh_caches / "fleet_rates.json").read_text())
    assert len(keys) == 3
    assert sum(k.endswith("|server") for k in keys) == 1
    assert sum(k.endswith("|interactive") for k in keys) == 1
    # the planner's H100e weight of one token/s follows the scenario's H100 rate
    specs = {sc: parse_scenario(_scenario(scenario=sc)).workload_specs[1:] for sc in SCEN}
    for sc, sp in specs.items():
        _, per_unit, _ = values.workload_rates((), tuple(sp), pick="best", source="equivalence")
        assert float(per_unit[0]) == pytest.approx(1.0 / r[sc], rel=1e-12)


def test_fleet_problem_with_an_interactive_demand_builds():
    from perfmodel.fleet.problem import build_problem

    pr = build_problem(parse_scenario(copy.deepcopy(_scenario(scenario="interactive"))))
    w = pr.workload_keys.index("chat")
    rate = float(np.asarray(pr.rate)[0, w])
    assert rate == pytest.approx(
        serve("llama2-70b", "h100_sxm", 8, "interactive")["tokens_per_s_per_chip"], rel=1e-9
    )
