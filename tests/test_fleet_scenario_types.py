"""Strict scenario types (issue 16 item 3): TOML booleans, integers, tables and known
workloads; delivery events validated cumulatively, so supply is never created."""

import copy
import tomllib

import numpy as np
import pytest

import perfmodel  # noqa: F401  (x64)
from perfmodel.errors import InputError
from perfmodel.fleet.check import check_feasible
from perfmodel.fleet.problem import build_problem, parse_scenario, scenario_dir
from perfmodel.fleet.rounding import solve


@pytest.fixture
def raw():
    return tomllib.loads((scenario_dir() / "tesla-2024.toml").read_text())


def _set(d, path, value):
    t = d
    for k in path[:-1]:
        t = t[k]
    t[path[-1]] = value


@pytest.mark.parametrize(
    "path, value, message",
    [
        (("offers", "h100", "own"), "false", r"offers\.h100\.own = 'false' must be a TOML boolean"),
        (("offers", "h100", "counts"), "false", r"offers\.h100\.counts = 'false' must be a TOML"),
        (("offers", "h100", "own"), 0, r"offers\.h100\.own = 0 must be a TOML boolean"),
        (("offers", "h100", "lead_quarters"), 2.5, r"lead_quarters = 2\.5 must be an integer"),
        (
            ("scenario", "quarters"),
            2.5,
            r"scenario\.quarters = 2\.5 must be an integer in \[1, 40\]",
        ),
        (("scenario", "quarters"), True, r"scenario\.quarters = True must be an integer"),
        (("scenario", "start"), 2024, r"scenario\.start = 2024 must be a quarter string"),
        (("sites", "legacy"), 5, r"sites\.legacy = 5 must be a table"),
        (("offers", "h100"), "x", r"offers\.h100 = 'x' must be a table"),
        (("budget", "capex_usd"), 5e9, r"budget\.capex_usd = 5000000000\.0 must be a table"),
        (("events",), {"offer": "h100"}, r"events = .* must be an array"),
        (("offers", "h100", "sites"), "cortex", r"offers\.h100\.sites = 'cortex' must be an array"),
        (
            ("offers", "h100", "chips_per_unit"),
            1e300,
            r"chips_per_unit = 1e\+300 must be <= 1e\+06",
        ),
        # robustness campaign: 1e300 existing chips overflowed the value curve (a numpy
        # RuntimeWarning on stderr) and printed a 300-digit power figure
        (("existing", 0, "chips"), 1e300, r"existing\[0\]\.chips = 1e\+300 must be <= 1e\+09"),
        # robustness campaign: huge racks per unit / ratios emptied the LP (HiGHS
        # kModelEmpty) instead of naming the field
        (
            ("offers", "h100", "racks_per_unit"),
            1e15,
            r"racks_per_unit = 1000000000000000\.0 must be <= 1e\+06",
        ),
        (("ratios", 0, "min_ratio"), 1e300, r"ratios\[0\]\.min_ratio = 1e\+300 must be <= 1e\+06"),
    ],
)
def test_wrong_types_are_one_line_errors(raw, path, value, message):
    d = copy.deepcopy(raw)
    _set(d, path, value)
    with pytest.raises(InputError, match=message) as e:
        parse_scenario(d)
    assert "\n" not in str(e.value)


def test_delay_quarters_must_be_an_integer(raw):
    d = copy.deepcopy(raw)
    d["events"][0]["delay_quarters"] = 1.5
    with pytest.raises(InputError, match=r"events\[0\]\.delay_quarters = 1\.5 must be an integer"):
        parse_scenario(d)


def test_unknown_workload_is_an_error_not_a_stand_in(raw):
    d = copy.deepcopy(raw)
    d["workloads"] = [{"name": "gpt-17", "weight": 1.0}]
    with pytest.raises(
        InputError, match=r"workloads\[0\]\.name = 'gpt-17' must be a workload preset \(.*gpt3-175b"
    ):
        parse_scenario(d)
    d["workloads"] = [{"name": "GPT3_175B", "weight": 1.0}]  # the preset's spelling rules
    assert parse_scenario(d).workloads[0][0] == "GPT3_175B"


def _two_events(raw, units, second_period="2024Q1"):
    d = copy.deepcopy(raw)
    d["offers"]["h100"]["supply_units"] = 100
    d["events"] = [
        {"offer": "h100", "units": units, "period": "2024Q1", "delay_quarters": 1},
        {"offer": "h100", "units": units, "period": second_period, "delay_quarters": 1},
    ]
    return d


def test_events_are_validated_cumulatively(raw):
    # two events each moving 60 of the quarter's 100 units: 120 > 100 must be rejected
    with pytest.raises(
        InputError,
        match=r"events\[1\]\.units = 60\.0 must be <= 40, the supply of offers\.h100 left in 2024Q1",
    ):
        parse_scenario(_two_events(raw, 60))
    # 50 + 50 of 100 is fine; moving 100 on from 2024Q2 uses the 100 delayed into it
    sc = parse_scenario(_two_events(raw, 50))
    assert len(sc.events) == 2
    d = _two_events(raw, 100, "2024Q2")
    d["events"][0]["units"] = 100
    sc = parse_scenario(d)
    pr = build_problem(sc, value_source="standin")
    sup = np.asarray(pr.supply_units)[
        sc.offers.index(next(o for o in sc.offers if o.key == "h100"))
    ]
    np.testing.assert_allclose(sup[:3], [0.0, 100.0, 200.0])  # Q1 -> Q2 (+100), Q2 -> Q3 (+100)
    assert sup.sum() <= 100 * len(sc.periods) + 1e-9  # supply moved, never created


def test_events_never_let_a_plan_buy_more_than_exists(raw):
    d = _two_events(raw, 50)
    sc = parse_scenario(d)
    pr = build_problem(sc, value_source="standin")
    plan = solve(pr)
    assert check_feasible(pr, plan) == []
    k = sc.offers.index(next(o for o in sc.offers if o.key == "h100"))
    assert plan.buy_units[k].sum() <= 100 * len(sc.periods)


def test_cli_type_errors_exit_2_with_one_line(tmp_path, capsys):
    from perfmodel.cli import main

    text = (scenario_dir() / "tesla-2024.toml").read_text()
    for old, new, word in (
        ('\nstart = "2024Q1"', "\nstart = 2024", "scenario.start"),
        ("\nown = true", '\nown = "true"', ".own"),
    ):
        assert old in text, old
        p = tmp_path / "s.toml"
        p.write_text(text.replace(old, new, 1))
        assert main(["plan", "--scenario", str(p), "--values", "standin"]) == 2
        err = capsys.readouterr().err
        assert word in err and err.count("\n") == 1 and "Traceback" not in err
