"""The fp4 precision (NVFP4 / MXFP4 class), the single precision-fallback helper, and the
Blackwell Ultra chips (b300, gb300) and systems (hgx_b300, gb300_nvl72)."""

from __future__ import annotations

import numpy as np
import pytest

from perfmodel.hardware import (
    BYTES_PER_ELEMENT,
    CONFIDENCES,
    PRECISION_FALLBACK,
    PRECISION_INDEX,
    PRECISION_KEYS,
    PRECISIONS,
    load_catalog,
    parse_catalog,
    rate_precision,
    stack_chips,
)

CAT = load_catalog()
FP4_CHIPS = ("b200", "gb200", "b300", "gb300")


def _peak(key: str, p: str, pick: str = "best") -> float:
    return float(CAT.chip(key, pick).peak_flops_per_s[PRECISION_INDEX[p]])


def test_fp4_is_appended_and_half_a_byte():
    # Appended at the end: the indices of the older precisions are unchanged.
    assert PRECISIONS[:6] == ("fp8", "bf16", "fp16", "tf32", "fp32", "int8")
    assert PRECISIONS[-1] == "fp4" and PRECISION_INDEX["fp4"] == 6
    assert BYTES_PER_ELEMENT["fp4"] == 0.5
    assert PRECISION_KEYS["fp4"] == "fp4_flops_per_s"
    # fp4 has no fallback, and no other precision falls back to fp4.
    assert PRECISION_FALLBACK["fp4"] == ("fp4",)
    assert all("fp4" not in v for p, v in PRECISION_FALLBACK.items() if p != "fp4")


def test_rate_precision_helper():
    assert rate_precision("fp8", {"bf16_flops_per_s"}) == "bf16"
    assert rate_precision("fp8", {"fp8_flops_per_s", "bf16_flops_per_s"}) == "fp8"
    assert rate_precision("int8", {"fp32_flops_per_s"}) == "fp32"
    every_other = {PRECISION_KEYS[p] for p in PRECISIONS if p != "fp4"}
    assert rate_precision("fp4", every_other) is None
    assert rate_precision("fp4", {"fp4_flops_per_s"}) == "fp4"
    with pytest.raises(ValueError, match="unknown precision 'fp5'"):
        rate_precision("fp5", every_other)


@pytest.mark.parametrize("key", FP4_CHIPS)
def test_fp4_present_on_blackwell(key):
    rec = CAT.record(key)
    assert rec.supports("fp4") and "fp4" in rec.supported_precisions()
    assert rec.rate_precision("fp4") == "fp4" and "fp4" not in rec.fallbacks()
    fig = rec.figure("fp4_flops_per_s")
    assert fig is not None and fig.unit == "FLOP/s" and fig.confidence in CONFIDENCES
    assert fig.source.strip()
    chip = rec.to_chip()
    assert chip.supports("fp4")
    assert float(chip.peak("fp4", strict=True)) == rec.peak("fp4") == _peak(key, "fp4")
    # Dense FP4 is above the dense FP8 rate on every Blackwell part.
    assert _peak(key, "fp4") > _peak(key, "fp8")


@pytest.mark.parametrize("key", sorted(set(CAT.chips) - set(FP4_CHIPS)))
def test_fp4_absent_elsewhere_and_never_a_fallback_rate(key):
    rec = CAT.record(key)
    assert rec.figure("fp4_flops_per_s") is None
    assert not rec.supports("fp4") and rec.rate_precision("fp4") is None
    assert "fp4" not in rec.fallbacks()
    assert all("fp4" not in s for s in rec.supported_precisions())
    for pick in ("best", "low", "high"):
        assert _peak(key, "fp4", pick) == 0.0
    assert not CAT.chip(key).supports("fp4")


def test_unsupported_precision_error_is_clear():
    msg = (
        "precision 'fp4' is not supported by chip 'h100_sxm' "
        "(supported: fp8, bf16, fp16, tf32, fp32, int8)"
    )
    with pytest.raises(ValueError) as e:
        CAT.record("h100").peak("fp4")
    assert str(e.value) == msg
    with pytest.raises(ValueError) as e:
        CAT.chip("h100").peak("fp4", strict=True)
    assert str(e.value) == msg
    # Non-strict Chip.peak keeps returning 0.0 (traceable; callers test > 0).
    assert float(CAT.chip("h100").peak("fp4")) == 0.0
    # A chip that runs a precision only through a fallback says so in the list.
    with pytest.raises(ValueError, match=r"'a100_80gb' \(supported: fp8 \(at its bf16 rate\)"):
        CAT.record("a100").peak("fp4")
    with pytest.raises(ValueError, match="unknown precision 'fp5'"):
        CAT.chip("h100").peak("fp5")


def test_existing_fallback_unchanged():
    assert CAT.record("a100").peak("fp8") == 312e12 == _peak("a100", "fp8")
    assert CAT.record("a100").fallbacks() == {"fp8": "bf16"}
    assert CAT.record("hw3").peak("fp8") == 73.7e12


def test_user_fp4_figure_and_override():
    # A user chip (or an override) with an fp4 figure supports it; the override wins.
    toml = {
        "chips": {
            "toy": {
                "bf16_flops_per_s": {"value": 1e15, "source": "t", "confidence": "vendor"},
                "dram_bytes": {"value": 1e9, "source": "t", "confidence": "vendor"},
                "dram_bytes_per_s": {"value": 1e12, "source": "t", "confidence": "vendor"},
                "tdp_w": {"value": 100, "source": "t", "confidence": "vendor"},
            }
        }
    }
    rec = parse_catalog(toml).record("toy")
    assert not rec.supports("fp4") and float(rec.to_chip().peak("fp4")) == 0.0
    assert float(rec.to_chip(fp4_flops_per_s=4e15).peak("fp4", strict=True)) == 4e15
    h100 = CAT.record("h100").to_chip(fp4_flops_per_s=3e15)
    assert float(h100.peak("fp4", strict=True)) == 3e15


def test_stacked_chips_support_and_shape():
    s = stack_chips([CAT.chip("gb300"), CAT.chip("h100")])
    assert s.peak_flops_per_s.shape == (2, len(PRECISIONS))
    np.testing.assert_array_equal(np.asarray(s.peak("fp4")), [15000e12, 0.0])
    assert s.supports("bf16") and not s.supports("fp4")


# --------------------------------------------------------------------------------------
# Blackwell Ultra figures, hand-checked against the NVIDIA spec sheets
# --------------------------------------------------------------------------------------


def test_gb300_dense_from_nvl72_sheet():
    # NVIDIA GB300 NVL72 page: per 72 GPUs, FP4 1,440 PFLOPS sparse | 1,080 dense;
    # FP8/FP6 720, BF16 360, TF32 180 PFLOPS with sparsity (dense = half).
    assert _peak("gb300", "fp4") == 1080e15 / 72 == 15e15
    assert _peak("gb300", "fp8") == 720e15 / 72 / 2 == 5e15
    assert _peak("gb300", "bf16") == 360e15 / 72 / 2 == 2.5e15
    assert _peak("gb300", "tf32") == 180e15 / 72 / 2 == 1.25e15
    # FP4 sparsity on Blackwell Ultra is not 2x: dense = 3/4 of the sparse figure.
    assert _peak("gb300", "fp4") == pytest.approx(0.75 * 1440e15 / 72, rel=1e-15)
    # GB200 (non-Ultra): NVL72 FP4 1,440 PFLOPS with sparsity -> dense = sparse / 2.
    assert _peak("gb200", "fp4") == 1440e15 / 72 / 2 == 10e15
    assert _peak("b200", "fp4") == 144e15 / 8 / 2 == 9e15
    # The rack figure is consistent with the per-GPU one.
    nvl = CAT.system("gb300_nvl72")
    assert nvl.value("fp4_flops_per_s") == 72 * _peak("gb300", "fp4")


def test_b300_figures():
    rec = CAT.record("b300")
    # HGX B300 sheet (per 8 GPUs, with sparsity): FP8 72, BF16 36, TF32 18 PFLOPS.
    assert _peak("b300", "fp8") == 72e15 / 8 / 2 == 4.5e15
    assert _peak("b300", "bf16") == 36e15 / 8 / 2 == 2.25e15
    assert _peak("b300", "tf32") == 18e15 / 8 / 2
    lo, best, hi = (_peak("b300", "fp4", p) for p in ("low", "best", "high"))
    assert (lo, best, hi) == (13.125e15, 14e15, 15e15)
    # INT8 was cut on Blackwell Ultra: it must not fall back to the fp8 rate.
    assert rec.rate_precision("int8") == "int8" and _peak("b300", "int8") < 0.05 * _peak(
        "b300", "fp8"
    )
    assert rec.value("dram_bytes") == 288e9 and rec.value("dram_bytes_per_s") == 8e12
    assert rec.value("scaleup_bytes_per_s_per_dir") == 900e9
    assert rec.value("scaleout_bytes_per_s_per_dir") == 100e9
    assert rec.value("tdp_w") == 1100 and CAT.record("gb300").value("tdp_w") == 1400


@pytest.mark.parametrize("key", ["b300", "gb300"])
def test_new_chips_load_with_sources(key):
    rec = CAT.record(key)
    same = set(CAT.record("b200" if key == "b300" else "gb200").figures)
    assert same <= set(rec.figures), same - set(rec.figures)
    for k, fig in rec.figures.items():
        assert fig.source.strip() and fig.confidence in CONFIDENCES, k
        assert fig.low <= fig.best <= fig.high, k
    # Named sources resolve to text with a URL.
    assert "https://" in rec.figures["fp4_flops_per_s"].source
    assert "https://" in rec.figures["tdp_w"].source
    assert rec.value("dram_bytes") == 288e9
    chip = CAT.chip(key)
    assert float(chip.mem_bytes[1]) == 288e9 and float(chip.mem_bytes_per_s[1]) == 8e12
    assert float(chip.scaleup_bytes_per_s) == 900e9


def test_new_aliases_and_systems():
    assert CAT.resolve("GB300") == "gb300" and CAT.resolve("gb300-nvl72-gpu") == "gb300"
    assert CAT.resolve("b300") == "b300" and CAT.resolve("hgx_b300_gpu") == "b300"
    nvl, hgx = CAT.system("gb300_nvl72"), CAT.system("hgx_b300")
    assert nvl.chip == "gb300" and nvl.chips_per_system == 72
    assert nvl.value("domain_chips_count") == 72 and nvl.value("grace_cpus_count") == 36
    assert hgx.chip == "b300" and hgx.chips_per_system == 8
    assert hgx.value("domain_chips_count") == 8
    for s in (nvl, hgx):
        assert s.text["link_scaleup"] == "nvlink5" and s.text["link_scaleout"] == "ib_xdr"
        assert CAT.link(s.text["link_scaleout"]).value("bytes_per_s_per_dir") == 100e9
        for k, fig in s.figures.items():
            assert fig.source.strip() and fig.confidence in CONFIDENCES, k
    # The systems mirror the GB200 NVL72 / DGX B200 entries' fields.
    assert set(CAT.system("gb200_nvl72").figures) <= set(nvl.figures)
    assert {"chips_count", "domain_chips_count", "power_w", "price_usd"} <= set(hgx.figures)
