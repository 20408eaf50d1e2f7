"""The claims table (perfmodel.claims): builds, every row sourced and judged, numbers
checkable by hand. The workload parts run on a small stand-in model for speed; the
real-model run is exercised by the CLI smoke test at the end (one claim)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from perfmodel import claims as cl
from perfmodel import equivalence as eq
from perfmodel.cli import main
from perfmodel.fleet.story import plan_story
from perfmodel.hardware import load_catalog


def toy_curve(workload, chip_key, counts, *, precision=None, chip=None):
    n = np.asarray(counts, float)
    peak = float(chip.peak(precision or "bf16"))
    bw = np.where(
        n <= 8, float(chip.scaleup_bytes_per_s), max(float(chip.scaleout_bytes_per_s), 1e6)
    )
    step = (
        max(4e12 / (0.5 * peak), 2e10 / float(chip.mem_bytes_per_s[1]))
        + 2 * (n - 1) / n * 2e9 / bw
        + 2e-3
    )
    return n / step


def toy_inference(workload, chip_key, counts, *, precision="int8", chip=None):
    return np.asarray(counts, float) * 0.5 * float(chip.peak(precision)) / 1e12


@pytest.fixture(scope="module")
def results():
    return {
        r.claim.id: r
        for r in cl.evaluate_claims(
            curve_fn=toy_curve,
            inference_fn=toy_inference,
            plan_fn=lambda scenario, _values: plan_story(scenario, "standin"),
        )
    }


def test_table_builds_with_sources_and_verdicts(results):
    assert len(results) >= 7
    rows = cl.claims_table(list(results.values()))
    for row in rows:
        assert row["source"].strip()
        assert row["verdict"] in cl.VERDICTS and row["verdict"] != "n/a"
        assert row["summary"] and row["date"]
        assert row["errors"] == 0
    for r in results.values():
        assert r.assumptions and all(
            s.startswith(("http", "Tesla", "CNBC")) or "http" in s for s in r.claim.sources
        )
    json.dumps([r.to_dict() for r in results.values()])  # JSON-able


def test_500m_is_10k_h100(results):
    r = results["dojo-500m-is-10k-h100"]
    assert r.numbers["implied_usd_per_h100"] == 50_000  # $500M / 10k
    h = r.numbers["h100_for_budget"]
    assert h["best"] == pytest.approx(5e8 / 50_000)
    assert h["low"] == pytest.approx(5e8 / 52_000) and h["high"] == pytest.approx(5e8 / 46_000)
    assert r.verdict == "consistent"
    cat = load_catalog()
    tiles = r.numbers["dojo_tile_for_budget"]["best"]
    assert tiles == pytest.approx(5e8 / cat.record("dojo_tile").value("allin_price_usd"))


def test_dojo_8k_tiles_on_spec_sheet(results):
    r = results["dojo1-8k-h100e-end-2024"]
    tiles = r.numbers["spec_tiles"]["best"]
    assert tiles == pytest.approx(8000 / (9.05e15 / 989.4e12))  # = 874.6 tiles
    assert r.numbers["spec_exapods"]["best"] == pytest.approx(tiles / 120)
    for mode in ("job", "capacity"):
        t = r.numbers[f"tiles[video-driving, {mode}]"]
        assert t["low"] <= t["best"] <= t["high"]


def test_growth_rates(results):
    g = results["tesla-training-capacity-growth-2024"].numbers["growth_pct"]
    assert g["end 2023 -> Q1 2024"] == pytest.approx(100 * (40 / 15 - 1))  # +166.7%
    assert g["end 2023 -> end 2024"] == pytest.approx(100 * (85 / 15 - 1))  # +466.7%
    spec23 = results["tesla-training-capacity-growth-2024"].numbers["fleet_end_2023_spec_h100e"]
    assert spec23 == pytest.approx(10000 + 14000 * 312 / 989.4)


def test_cortex_power_hand_value(results):
    r = results["cortex-130mw-to-500mw"]
    cat = load_catalog()
    h = cat.record("h100").value("allin_power_w")
    a = cat.record("ai4").value("allin_power_w")
    need = (50_000 * h + 40_000 * a) * eq.DEFAULT_PUE
    assert r.numbers["site_power_needed_w"]["best"] == pytest.approx(need)
    assert r.verdict in ("fits", "marginal", "does not fit")
    mix = r.numbers["mixes_at_target"]["all H100"]
    assert mix["chips"]["h100"] == pytest.approx(500e6 / (eq.DEFAULT_PUE * h))
    assert mix["training_h100e"] == pytest.approx(mix["chips"]["h100"], rel=1e-9)  # identity


def test_inference_in_loop_power(results):
    r = results["ai4-in-the-training-loop"].numbers["1:2 (brief)"]
    a = load_catalog().record("ai4").value("allin_power_w")
    assert r["socs"] == 50_000
    assert r["it_power_w"]["best"] == pytest.approx(50_000 * a)
    assert r["int8_spec_h100e"]["best"] == pytest.approx(
        50_000 * load_catalog().record("ai4").value("int8_ops_per_s") / 1978.9e12
    )


def test_diversion_h100e_months(results):
    r = results["12k-h100-diverted-to-x"]
    assert r.numbers["h100e_months"] == {"low": 12_000, "best": 36_000, "high": 72_000}
    assert r.numbers["cloud_rent_equivalent_usd"]["best"] == pytest.approx(12_000 * 3 * 730 * 2.40)
    assert r.verdict == "consistent"  # '>$500M' vs 12k x $25k..$52k


def test_speedup_row(results):
    r = results["gb200-2x-per-gpu-mlperf"]
    assert r.numbers["gb200_spec_ratio[fp8]"]["best"] == pytest.approx(5000 / 1978.9)
    assert r.numbers["gb200_per_chip_speedup[n=512]"]["best"] > 1


def test_user_claims_file_and_errors(tmp_path):
    f = tmp_path / "mine.toml"
    f.write_text("""
[[claims]]
id = "my-fleet"
date = "2025-01-01"
quote = "our 1,000 B200 are worth 2,300 H100"
sources = ["https://example.com/post"]
check = "fleet_h100e"
[claims.params]
fleet = [["b200", 1000]]
claimed_h100e = 2300
""")
    claims = cl.load_claims(f, builtin=False)
    (r,) = cl.evaluate_claims(claims, curve_fn=toy_curve)
    assert r.numbers["spec_h100e"] == pytest.approx(1000 * 2250 / 989.4)
    assert r.verdict == "consistent"
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[claims]]\nid = "x"\ndate = "d"\nquote = "q"\nsources = []\ncheck = "growth"\n'
    )
    with pytest.raises(ValueError, match="sources"):
        cl.load_claims(bad, builtin=False)
    bad.write_text(
        '[[claims]]\nid = "x"\ndate = "d"\nquote = "q"\nsources = ["s"]\ncheck = "nope"\n'
    )
    with pytest.raises(ValueError, match="check"):
        cl.load_claims(bad, builtin=False)


def test_cli_claims_and_equiv_json(capsys, tmp_path):
    assert main(["claims", "--json", "--only", "12k-h100-diverted-to-x"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["verdict"] == "consistent" and row["sources"]
    assert main(["equiv", "--kind", "price", "--budget-usd", "5e8", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["h100e"] == 10_000 and {"h100e_low", "h100e_high", "assumptions"} <= set(d)
    assert main(["equiv", "--chip", "dojo_tile", "--count", "120", "--kind", "spec"]) == 0
    assert "1,098" in capsys.readouterr().out
    assert main(["equiv", "--chip", "nope", "--count", "3"]) == 2
    assert "unknown chip" in capsys.readouterr().err
    assert main(["equiv", "--kind", "power", "--workload", "video-driving"]) == 2
    assert "--power-mw" in capsys.readouterr().err
