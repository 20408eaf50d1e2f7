"""The built-in hardware catalog (chips, systems, links), its validation, overrides,
and the ``chips`` / ``chip`` / ``roofline`` CLI commands."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import perfmodel
from perfmodel import cli
from perfmodel.hardware import (
    CHIP_KINDS,
    CONFIDENCES,
    PRECISION_INDEX,
    PRECISIONS,
    CatalogError,
    load_catalog,
    load_catalog_file,
    stack_chips,
    unit_of,
    validate_chip,
)

CAT = load_catalog()

ISSUE_CHIPS = (
    "a100_80gb",
    "h100_sxm",
    "h200",
    "b200",
    "gb200",
    "mi300x",
    "d1",
    "dojo_tile",
    "dojo_dip",
    "hw3",
    "ai4",
    "host_cpu",
)
ISSUE_SYSTEMS = (
    "dgx_h100",
    "hgx_h200",
    "dgx_b200",
    "gb200_nvl72",
    "mi300x_platform",
    "dojo_system_tray",
    "dojo_cabinet",
    "dojo_exapod",
    "hw3_computer",
    "ai4_computer",
)
ISSUE_LINKS = (
    "nvlink4",
    "nvlink5",
    "ib_ndr",
    "ib_xdr",
    "roce_400g",
    "dojo_tile_edge",
    "dojo_zplane",
    "infinity_fabric",
)


# --------------------------------------------------------------------------------------
# Every entry loads and is sourced
# --------------------------------------------------------------------------------------


def test_issue_entries_present():
    assert set(ISSUE_CHIPS) <= set(CAT.chips)
    assert set(ISSUE_SYSTEMS) <= set(CAT.systems)
    assert set(ISSUE_LINKS) <= set(CAT.links)


@pytest.mark.parametrize("pick", ["best", "low", "high"])
def test_every_chip_builds_and_validates(pick):
    chips = [CAT.chip(k, pick) for k in CAT.chips]
    for c in chips:
        validate_chip(c)
        assert float(np.max(c.peak_flops_per_s)) > 0
        assert float(c.mem_bytes_per_s[1]) > 0 and float(c.mem_bytes[1]) > 0
    stacked = stack_chips(chips)
    assert stacked.peak_flops_per_s.shape == (len(chips), len(PRECISIONS))
    validate_chip(stacked)


def _all_records():
    for kind, table in (("chip", CAT.chips), ("system", CAT.systems), ("link", CAT.links)):
        for key, rec in table.items():
            yield kind, key, rec


def test_every_figure_has_unit_source_confidence_and_ranges():
    n = 0
    for kind, key, rec in _all_records():
        for fk, fig in rec.figures.items():
            n += 1
            where = f"{kind} {key}.{fk}"
            assert fig.unit == unit_of(fk) and fig.unit, where
            assert fig.source.strip(), where
            assert fig.confidence in CONFIDENCES, where
            assert math.isfinite(fig.best) and fig.low <= fig.best <= fig.high, where
            if fig.confidence == "estimate":
                assert fig.low < fig.high, f"{where}: an estimate needs a real range"
            if fig.confidence == "derived":
                assert fig.formula, where
    assert n > 250


def test_source_keys_resolved_to_text():
    """Short source keys (e.g. 'nvidia-h100') must resolve to the [sources] text; a typo
    would leave the bare key as 'free text'."""
    for _, key, rec in _all_records():
        for fk, fig in rec.figures.items():
            assert " " in fig.source or "/" in fig.source, f"{key}.{fk}: unresolved {fig.source!r}"


def test_chip_text_fields():
    for key, rec in CAT.chips.items():
        assert rec.text.get("kind") in CHIP_KINDS, key
        for t in ("name", "vendor", "available", "purchase_unit"):
            assert rec.text.get(t), f"{key}: missing {t}"
        for f in ("tdp_w", "allin_power_w", "price_usd", "allin_price_usd", "unit_count"):
            assert rec.figure(f) is not None, f"{key}: missing {f}"
        # all-in power and price cover at least the chip itself
        assert rec.value("allin_power_w") >= rec.value("tdp_w"), key
        assert rec.value("allin_price_usd") >= rec.value("price_usd"), key


def test_aliases():
    for alias, target in {
        "h100": "h100_sxm",
        "a100": "a100_80gb",
        "b200_hgx": "b200",
        "gb200_nvl72_gpu": "gb200",
        "hw4": "ai4",
        "tesla_ai4": "ai4",
        "dojo": "dojo_tile",
        "d1_chip": "d1",
        "H100-SXM5": "h100_sxm",
    }.items():
        assert CAT.resolve(alias) == target


# --------------------------------------------------------------------------------------
# Hand-checked values and internal consistency
# --------------------------------------------------------------------------------------


def _peak(key, p, pick="best"):
    return float(CAT.chip(key, pick).peak_flops_per_s[PRECISION_INDEX[p]])


def test_vendor_values():
    assert _peak("h100", "bf16") == 989.4e12
    assert _peak("a100", "bf16") == 312e12
    assert _peak("b200", "fp8") == 4500e12 and _peak("gb200", "fp8") == 5000e12
    assert _peak("mi300x", "bf16") == 1307.4e12
    assert float(CAT.chip("h200").mem_bytes_per_s[1]) == 4.8e12
    assert float(CAT.chip("d1").mem_bytes[0]) == 440e6
    assert float(CAT.chip("dojo_tile").mem_bytes[0]) == 11e9
    assert CAT.record("b200").value("tdp_w") == 1000 and CAT.record("gb200").value("tdp_w") == 1200
    assert CAT.record("dojo_tile").value("tdp_w") == 15000


def test_fallback_precisions():
    # A100 has no fp8: it runs fp8 at its bf16 rate; inference NPUs run fp8 as int8.
    assert _peak("a100", "fp8") == _peak("a100", "bf16")
    assert CAT.record("a100").fallbacks()["fp8"] == "bf16"
    assert _peak("hw3", "fp8") == _peak("hw3", "int8") == 73.7e12
    assert "int8" not in CAT.record("h100").fallbacks()


@pytest.mark.parametrize("pick", ["best", "low", "high"])
def test_dojo_tile_is_25_d1(pick):
    d1, tile = CAT.record("d1"), CAT.record("dojo_tile")
    for k in (
        "bf16_flops_per_s",
        "fp32_flops_per_s",
        "sram_bytes",
        "sram_bytes_per_s",
        "dram_bytes",
        "dram_bytes_per_s",
        "allin_power_w",
        "price_usd",
        "allin_price_usd",
    ):
        assert tile.value(k, pick) == pytest.approx(25 * d1.value(k, pick), rel=0.02), k
    assert CAT.record("d1").value("unit_count") == 25


def test_dojo_hbm_share_matches_exapod():
    tile, pod = CAT.record("dojo_tile"), CAT.system("dojo_exapod")
    n = pod.value("chips_count")
    assert n == 120
    assert tile.value("dram_bytes") * n == pytest.approx(pod.value("dram_bytes"), rel=0.02)
    assert tile.value("sram_bytes") * n == pytest.approx(pod.value("sram_bytes"), rel=0.02)
    assert tile.value("bf16_flops_per_s") * n == pytest.approx(
        pod.value("bf16_flops_per_s"), rel=0.01
    )
    # DIP HBM: ~406 DIPs x 0.8 TB/s over 120 tiles, max 5 DIPs (one edge) per tile
    dip = CAT.record("dojo_dip")
    assert tile.value("dram_bytes_per_s", "high") == 5 * dip.value("dram_bytes_per_s")
    assert tile.value("dram_bytes", "high") == 5 * dip.value("dram_bytes")


def test_systems_consistent_with_chips_and_links():
    for key, s in CAT.systems.items():
        rec = CAT.record(s.chip)
        assert s.value("chips_count") >= 1
        for f in ("power_w", "price_usd"):
            assert s.figures.get(f) is not None, f"{key}: {f}"
        # a system draws at least its chips' TDP and costs at least their price
        n = s.value("chips_count")
        assert s.value("power_w", "high") >= n * rec.value("tdp_w", "low"), key
        assert s.value("price_usd", "high") >= n * rec.value("price_usd", "low"), key
        if "link_scaleup" in s.text:
            link = CAT.link(s.text["link_scaleup"])
            edges = link.value("edges_count", default=1.0)
            assert rec.value("scaleup_bytes_per_s_per_dir") == pytest.approx(
                edges * link.value("bytes_per_s_per_dir")
            ), key
            assert s.value("domain_chips_count") <= s.value("chips_count") or "dojo" in key
        if "link_scaleout" in s.text and rec.text["kind"] == "gpu":
            assert rec.value("scaleout_bytes_per_s_per_dir") == CAT.link(
                s.text["link_scaleout"]
            ).value("bytes_per_s_per_dir"), key


def test_links_have_bandwidth_and_latency():
    for key, link in CAT.links.items():
        assert link.value("bytes_per_s_per_dir") > 0, key
        lat = link.figures["latency_s"]
        assert 1e-8 <= lat.low <= lat.best <= lat.high <= 1e-3, (
            key
        )  # up to 1 ms: TCP/IP over Ethernet (FSD computers)


def test_nvl72_rack():
    s = CAT.system("gb200_nvl72")
    assert s.value("chips_count") == 72 and s.value("domain_chips_count") == 72
    assert (s.value("power_w", "low"), s.value("power_w", "high")) == (120e3, 132e3)
    assert 2e6 <= s.value("price_usd") <= 3e6 and s.value("price_usd", "low") == 2e6


# --------------------------------------------------------------------------------------
# Bad files fail with a clear message
# --------------------------------------------------------------------------------------

GOOD_CHIP = """
[sources]
s1 = "test source text"
[chips.toy]
name = "Toy"
kind = "gpu"
bf16_flops_per_s = { value = 1e15, source = "s1", confidence = "vendor" }
dram_bytes = { value = 80e9, source = "s1", confidence = "vendor" }
dram_bytes_per_s = { value = 3e12, source = "s1", confidence = "vendor" }
tdp_w = { value = 700, source = "s1", confidence = "vendor" }
"""


def _write(tmp_path: Path, text: str, name: str = "user.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_good_user_file_adds_chip(tmp_path):
    p = _write(tmp_path, GOOD_CHIP)
    cat = load_catalog(p)
    assert float(cat.chip("toy").peak_flops_per_s[PRECISION_INDEX["bf16"]]) == 1e15
    assert "toy" not in load_catalog().chips  # the built-in catalog is untouched


@pytest.mark.parametrize(
    "edit, match",
    [
        ("colour_w = 3", "unknown key"),
        ('bf16_tflops = { value = 1.0, source = "s1", confidence = "vendor" }', "no unit suffix"),
        (
            'fancy_flops_per_s = { value = 1.0, source = "s1", confidence = "vendor" }',
            "unknown key",
        ),
        ("price_usd = 25000", "bare number"),
        (
            'price_usd = { value = -5, source = "s1", confidence = "vendor" }',
            "outside the allowed range",
        ),
        ('price_usd = { value = nan, source = "s1", confidence = "vendor" }', "not finite"),
        ('price_usd = { value = inf, source = "s1", confidence = "vendor" }', "not finite"),
        (
            'price_usd = { best = 10, low = 20, high = 30, source = "s1", confidence = "estimate" }',
            "low <= best <= high",
        ),
        (
            'price_usd = { best = 10, low = 5, high = 8, source = "s1", confidence = "estimate" }',
            "low <= best <= high",
        ),
        (
            'price_usd = { value = 10, source = "s1", confidence = "estimate" }',
            "low', 'best' and 'high",
        ),
        ('price_usd = { value = 10, source = "s1", confidence = "derived" }', "formula"),
        ('price_usd = { value = 10, source = "s1", confidence = "guess" }', "confidence"),
        ('price_usd = { value = 10, confidence = "vendor" }', "missing 'source'"),
        (
            'price_usd = { value = 10, source = "s1", confidence = "vendor", units = "x" }',
            "unknown key",
        ),
    ],
)
def test_bad_chip_field(tmp_path, edit, match):
    p = _write(tmp_path, GOOD_CHIP + edit + "\n")
    with pytest.raises(CatalogError, match=match) as e:
        load_catalog_file(p)
    msg = str(e.value)
    assert str(p) in msg and "[chips.toy]" in msg  # names the file and the entry


def test_missing_unit_in_system_and_link(tmp_path):
    p = _write(
        tmp_path,
        GOOD_CHIP
        + """
[systems.rack]
chip = "toy"
chips_count = { value = 8, source = "s1", confidence = "vendor" }
power_kw = { value = 8, source = "s1", confidence = "vendor" }
""",
    )
    with pytest.raises(CatalogError, match=r"\[systems.rack\] field 'power_kw': key has no unit"):
        load_catalog_file(p)
    p = _write(
        tmp_path,
        GOOD_CHIP
        + """
[links.fast]
gbps = { value = 8, source = "s1", confidence = "vendor" }
""",
    )
    with pytest.raises(CatalogError, match=r"\[links.fast\] field 'gbps': key has no unit"):
        load_catalog_file(p)


def test_missing_required_field(tmp_path):
    p = _write(
        tmp_path,
        GOOD_CHIP.replace('tdp_w = { value = 700, source = "s1", confidence = "vendor" }', ""),
    )
    with pytest.raises(CatalogError, match="'tdp_w': required field is missing"):
        load_catalog_file(p)


def test_bad_kind(tmp_path):
    p = _write(tmp_path, GOOD_CHIP.replace('kind = "gpu"', 'kind = "fpga"'))
    with pytest.raises(CatalogError, match="kind"):
        load_catalog_file(p)


def test_unknown_top_level_table(tmp_path):
    p = _write(tmp_path, GOOD_CHIP + "\n[gpus.x]\nname = 'y'\n")
    with pytest.raises(CatalogError, match=r"unknown top-level table\(s\) \['gpus'\]"):
        load_catalog_file(p)


def test_unknown_chip_in_system(tmp_path):
    p = _write(
        tmp_path,
        GOOD_CHIP
        + """
[systems.rack]
chip = "toy_v2"
chips_count = { value = 8, source = "s1", confidence = "vendor" }
""",
    )
    with pytest.raises(CatalogError, match=r"\[systems.rack\] field 'chip': unknown chip 'toy_v2'"):
        load_catalog(p)


def test_unknown_link_in_system(tmp_path):
    p = _write(
        tmp_path,
        GOOD_CHIP
        + """
[systems.rack]
chip = "toy"
link_scaleup = "nvlink9"
chips_count = { value = 8, source = "s1", confidence = "vendor" }
""",
    )
    with pytest.raises(CatalogError, match="unknown link 'nvlink9'"):
        load_catalog(p)


def test_alias_to_unknown_chip(tmp_path):
    p = _write(tmp_path, GOOD_CHIP + '\n[aliases]\nfoo = "bar"\n')
    with pytest.raises(CatalogError, match="unknown chip 'bar'"):
        load_catalog(p)


def test_invalid_toml_and_missing_file(tmp_path):
    with pytest.raises(CatalogError, match="not valid TOML"):
        load_catalog_file(_write(tmp_path, "[chips.x\n"))
    with pytest.raises(CatalogError, match="not found"):
        load_catalog_file(tmp_path / "nope.toml")


def test_unknown_chip_name_lists_known():
    with pytest.raises(CatalogError, match="unknown chip 'h900'; known chips: .*h100_sxm"):
        CAT.chip("h900")


# --------------------------------------------------------------------------------------
# Overrides
# --------------------------------------------------------------------------------------


def test_user_file_overrides_price(tmp_path):
    """A user file replaces a built-in chip (here: the H100 with another all-in price)."""
    import tomllib

    from perfmodel.hardware import builtin_catalog_paths

    chips_file = next(p for p in builtin_catalog_paths() if p.name == "catalog_chips.toml")
    data = tomllib.loads(chips_file.read_text())
    text = GOOD_CHIP.replace("[chips.toy]", "[chips.h100_sxm]")
    text = text.replace(
        'tdp_w = { value = 700, source = "s1", confidence = "vendor" }',
        'tdp_w = { value = 700, source = "s1", confidence = "vendor" }\n'
        "allin_price_usd = { best = 40000, low = 35000, high = 45000, "
        'source = "my quote", confidence = "estimate" }',
    )
    cat = load_catalog(_write(tmp_path, text))
    assert float(cat.chip("h100").allin_price_usd) == 40000
    assert float(cat.chip("h100", "high").allin_price_usd) == 45000
    assert cat.record("h100").figure("allin_price_usd").source == "my quote"
    assert float(load_catalog().chip("h100").allin_price_usd) == 50000
    assert "h100_sxm" in data["chips"]


def test_python_override():
    c = perfmodel.chip("h100", allin_price_usd=42000.0)
    assert float(c.allin_price_usd) == 42000.0
    assert float(c.peak_flops_per_s[PRECISION_INDEX["bf16"]]) == 989.4e12
    assert float(perfmodel.chip("h100", "low").allin_price_usd) == 46000
    with pytest.raises(CatalogError, match="not a chip field"):
        perfmodel.chip("h100", allin_price=1.0)
    with pytest.raises(CatalogError, match="allin_price_usd = -1"):
        perfmodel.chip("h100", allin_price_usd=-1.0)
    with pytest.raises(CatalogError, match="pick"):
        perfmodel.chip("h100", "median")


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("tdp_w", float("nan"), "'tdp_w' = nan is not finite"),
        ("price_usd", -3.0, "'price_usd' = -3 is outside the allowed range"),
        ("mem_bytes_per_s", [1e12, float("inf")], "'mem_bytes_per_s' = inf is not finite"),
        ("mem_bytes_per_s", [1e12, 0.0], "outside the allowed range"),
        ("peak_flops_per_s", [0.0] * len(PRECISIONS), "no positive peak"),
        ("mem_bytes", [1.0, 2.0, 3.0], "shape"),
    ],
)
def test_validate_python_built_chip(field, value, match):
    with pytest.raises(CatalogError, match=match):
        perfmodel.chip("h100").replace_fields(**{field: value})
    bad = perfmodel.chip("h100").replace(**{field: np.asarray(value, float)})
    with pytest.raises(CatalogError, match=match):
        validate_chip(bad)


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------


def _run(capsys, *argv):
    rc = cli.main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_cli_chips_json(capsys):
    rc, out, _ = _run(capsys, "chips", "--json")
    assert rc == 0
    rows = {r["key"]: r for r in json.loads(out)["chips"]}
    assert set(ISSUE_CHIPS) <= set(rows)
    assert rows["h100_sxm"]["bf16_flops_per_s"] == 989.4e12
    assert rows["a100_80gb"]["fp8_flops_per_s"] is None
    assert rows["a100_80gb"]["fallbacks"]["fp8"] == "bf16"


@pytest.mark.parametrize("pick", ["best", "low", "high"])
def test_cli_chips_json_figures_carry_unit_confidence_and_source(capsys, pick):
    """Every number of a ``chips --json`` row has its unit, confidence and source, the
    same as ``chip NAME --json`` gives: an estimate never looks like a vendor figure."""
    rc, out, _ = _run(capsys, "chips", "--json", "--pick", pick)
    assert rc == 0
    rows = json.loads(out)["chips"]
    cat = load_catalog()
    estimates = 0
    for row in rows:
        rec = cat.chips[row["key"]]
        for key, fig in row["figures"].items():
            assert row[key] == rec.figures[key].pick(pick), (row["key"], key)
            assert (
                fig["unit"] == unit_of(key) and fig["source"] and fig["confidence"] in CONFIDENCES
            )
            if fig["confidence"] == "estimate":
                estimates += 1
                assert fig["low"] <= fig["best"] <= fig["high"], (row["key"], key)
        numeric = [k for k, v in row.items() if isinstance(v, float)]
        assert set(numeric) <= set(row["figures"]), row["key"]
    assert estimates > 10  # all-in prices and powers are estimates with ranges
    rc, out, _ = _run(capsys, "chip", "dojo", "--json")
    one = json.loads(out)["figures"]
    (dojo,) = [r for r in rows if r["key"] == "dojo_tile"]
    for key, fig in dojo["figures"].items():
        assert {k: one[key][k] for k in fig} == fig, key


def test_cli_chips_table(capsys):
    rc, out, _ = _run(capsys, "chips")
    assert rc == 0
    assert "dojo_tile" in out and "989.4" in out and "all-in $" in out


def test_cli_chip(capsys):
    rc, out, _ = _run(capsys, "chip", "dojo", "--json")
    assert rc == 0
    d = json.loads(out)
    assert d["key"] == "dojo_tile" and d["kind"] == "wafer_tile"
    assert d["figures"]["dram_bytes"]["confidence"] == "derived"
    assert d["figures"]["allin_price_usd"]["low"] < d["figures"]["allin_price_usd"]["high"]
    rc, out, _ = _run(capsys, "chip", "h100")
    assert rc == 0 and "nvidia.com" in out and "estimate" in out and "byte/s" in out


def test_cli_unknown_chip(capsys):
    rc, _, err = _run(capsys, "chip", "h900")
    assert rc == 2
    assert err.count("\n") == 1 and "unknown chip 'h900'" in err and "h100_sxm" in err
    rc, _, err = _run(capsys, "roofline", "--chip", "h900")
    assert rc == 2 and "known chips" in err


def test_cli_user_catalog(capsys, tmp_path):
    p = _write(tmp_path, GOOD_CHIP)
    rc, out, _ = _run(capsys, "chip", "toy", "--catalog", str(p), "--json")
    assert rc == 0 and json.loads(out)["figures"]["bf16_flops_per_s"]["best"] == 1e15


def test_cli_roofline_hand_value(capsys):
    rc, out, _ = _run(
        capsys,
        "roofline",
        "--chip",
        "h100",
        "--op",
        "matmul",
        "--m",
        "8192",
        "--n",
        "8192",
        "--k",
        "8192",
        "--dtype",
        "bf16",
        "--ideal",
        "--json",
    )
    assert rc == 0
    d = json.loads(out)
    assert d["time_s"] == pytest.approx(2 * 8192**3 / 989.4e12, rel=1e-12)
    assert d["bound"] == "compute"
    assert d["ridge_flops_per_byte"]["dram"] == pytest.approx(989.4e12 / 3.35e12)


def test_cli_roofline_all_and_plot(capsys, tmp_path):
    rc, out, _ = _run(
        capsys,
        "roofline",
        "--chip",
        "all",
        "--op",
        "elementwise",
        "--dtype",
        "fp32",
        "--elements",
        "1e9",
        "--ideal",
        "--json",
    )
    assert rc == 0
    rows = {r["chip"]: r for r in json.loads(out)["chips"]}
    assert set(rows) == set(CAT.chips)
    assert rows["h100_sxm"]["bound"] == "dram"
    assert rows["h100_sxm"]["time_s"] == pytest.approx(12e9 / 3.35e12, rel=1e-12)
    rc, out, _ = _run(capsys, "roofline", "--chip", "all", "--op", "attention")
    assert rc == 0 and "dojo_tile" in out
    png = tmp_path / "roof.png"
    rc, out, _ = _run(
        capsys,
        "roofline",
        "--chip",
        "d1",
        "--op",
        "matmul",
        "--m",
        "4096",
        "--n",
        "4096",
        "--k",
        "4096",
        "--plot",
        str(png),
    )
    assert rc == 0 and "fed from SRAM" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--m", "-5"], "--m = -5.0 must be a positive number"),
        (["--dtype", "fp5"], "--dtype 'fp5' must be one of"),
        (["--chip", "all", "--plot", "x.png"], "--plot needs one chip"),
    ],
)
def test_cli_roofline_bad_input(capsys, argv, match):
    args = ["roofline", "--chip", "h100", *argv]
    rc, _, err = _run(capsys, *args)
    assert rc == 2 and match in err


def test_cli_systems(capsys):
    rc, out, _ = _run(capsys, "systems", "--json")
    assert rc == 0
    d = json.loads(out)
    assert set(ISSUE_SYSTEMS) <= set(d["systems"]) and set(ISSUE_LINKS) <= set(d["links"])
    assert d["systems"]["gb200_nvl72"]["figures"]["power_w"]["high"] == 132e3
    assert d["links"]["nvlink4"]["figures"]["bytes_per_s_per_dir"]["best"] == 450e9
    rc, out, _ = _run(capsys, "systems")
    assert rc == 0 and "dojo_exapod" in out and "dojo_zplane" in out
    rc, _, err = _run(capsys, "chip", "dgx_h100")
    assert rc == 2 and "is a system" in err and "h100_sxm" in err


_vals = st.one_of(
    st.floats(0.0, 1e9),
    st.floats(0.0, 1e9),
    st.floats(0.0, 1e9),
    st.sampled_from([-1.0, float("nan"), float("inf"), -float("inf"), 2e10]),
)


@given(_vals, _vals, _vals)
def test_parse_figure_accepts_exactly_ordered_finite_in_range(low, best, high):
    """A figure is accepted iff low <= best <= high, all finite and inside the field's
    range; otherwise a CatalogError names the entry and the field."""
    from perfmodel.hardware import CHIP_FIELDS, parse_figure

    lo, hi = CHIP_FIELDS["price_usd"]
    raw = {"best": best, "low": low, "high": high, "source": "s", "confidence": "estimate"}
    ok = all(math.isfinite(v) and lo <= v <= hi for v in (low, best, high)) and low <= best <= high
    if ok:
        fig = parse_figure(
            raw, "price_usd", path="f.toml", entry="chips.x", sources={}, allowed=(lo, hi)
        )
        assert (fig.low, fig.best, fig.high) == (low, best, high) and fig.unit == "USD"
    else:
        with pytest.raises(CatalogError, match=r"f.toml: \[chips.x\] field 'price_usd'"):
            parse_figure(
                raw, "price_usd", path="f.toml", entry="chips.x", sources={}, allowed=(lo, hi)
            )
