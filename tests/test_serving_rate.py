"""The serving software factors (engine family, yearly gain), the beams' shared prompt
read, the catalog chips serving covers, and the planner's entry point
(:func:`perfmodel.serving.rate.inference_rate`)."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest

from perfmodel import workloads as wl
from perfmodel.errors import InputError
from perfmodel.hardware import load_catalog
from perfmodel.interconnect import network_for
from perfmodel.serving import data as sd
from perfmodel.serving import fit as F
from perfmodel.serving.api import _check_figures, default_precision, serve
from perfmodel.serving.rate import inference_h100e, inference_rate
from perfmodel.serving.step import decode_step_s
from perfmodel.serving.types import default_efficiency, make_layout


def test_software_factor_by_hand():
    th = jnp.array([0.6, 0.2])  # software_vllm, software_gain_per_year
    vllm = jnp.array([0.0, 1.0])
    trt = jnp.array([1.0, 0.0])
    assert float(F.software_factor(th, vllm, 1.5)) == pytest.approx(0.6 * math.exp(-0.3))
    assert float(F.software_factor(th, trt, 0.0)) == pytest.approx(1.0)
    assert F.SOFTWARE_PARAMS == ("software_vllm", "software_gain_per_year")


def test_rounds_and_engine_families_of_the_rows():
    assert sd.newest_round() == "v5.1"
    assert sd.round_years("v4.0") == 0.0 and sd.round_years("v5.1") == pytest.approx(1.5)
    assert sd.engine_family("MangoBoost LLMBoost (vLLM)") == "vllm"
    with pytest.raises(KeyError):
        sd.engine_family("")
    rows, _ = sd.load_mlperf_rows()
    # vLLM runs on both vendors: the engine factor is learned from NVIDIA rows too
    vllm_chips = {r.chip for r in rows if r.engine == "vllm"}
    assert {"mi300x", "h100_sxm"} <= vllm_chips
    assert all(r.years == sd.round_years(r.round) for r in rows)
    assert F.engine_for_vendor("AMD") == "vllm" and F.engine_for_vendor("Tesla") == "tensorrt-llm"


def test_beams_read_their_shared_prompt_once():
    w = wl.get_workload("gptj").with_precision("fp8")
    cat = load_catalog()
    chip, net = cat.chip("h100_sxm"), network_for("h100_sxm", cat)
    lay, eff = make_layout(1), default_efficiency()
    full = decode_step_s(w, chip, net, lay, 256.0, 1000.0, 1.0, eff)
    same = decode_step_s(w, chip, net, lay, 256.0, 1000.0, 1.0, eff, 1000.0)
    shared = decode_step_s(w, chip, net, lay, 256.0, 1000.0, 1.0, eff, 284.0)
    assert float(same) == pytest.approx(float(full))
    # GPT-J (MHA, 229 KB of FP8 KV per token) at 256 sequences: the KV read dominates
    assert float(shared) < 0.6 * float(full)


def test_default_precision_is_native():
    cat = load_catalog()
    assert default_precision(cat.record("a100_80gb")) == "bf16"  # no FP8 of its own
    assert default_precision(cat.record("h100_sxm")) == "fp8"
    for key in cat.chips:  # every catalog chip has the figures, or one line says which
        try:
            _check_figures(cat.record(key))
        except InputError as e:
            msg = str(e)
            assert "\n" not in msg and key in msg and ("figure" in msg or "rate" in msg)


@pytest.mark.slow
def test_inference_rate_meets_its_limits_and_h100e():
    r = inference_rate("h200", "llama2-70b", chips=8, scenario="interactive")
    assert r.estimate and r.engine == "tensorrt-llm" and r.error_band is not None
    assert r.ttft_limit_s is not None and r.tpot_limit_s is not None
    assert r.ttft_p99_s <= r.ttft_limit_s and r.tpot_p99_s <= r.tpot_limit_s
    assert r.tokens_per_s == pytest.approx(8 * r.tokens_per_s_per_chip)
    # within a factor 1.5 of the published MLPerf v5.1 H200 Interactive results
    rows, _ = sd.load_mlperf_rows()
    pub = [
        x.tokens_per_s / x.n_chips
        for x in rows
        if x.chip == "h200" and x.benchmark == "llama2-70b" and x.scenario == "Interactive"
    ]
    assert 1 / 1.5 < r.tokens_per_s_per_chip / float(np.median(pub)) < 1.5
    assert inference_h100e("h100_sxm", "llama2-70b") == pytest.approx(1.0)
    # a tighter TPOT target costs throughput
    tight = inference_rate("h200", "llama2-70b", chips=8, scenario="interactive", tpot_ms=25.0)
    assert tight.tokens_per_s < r.tokens_per_s and tight.tpot_p99_s <= 0.025


@pytest.mark.slow
@pytest.mark.parametrize("key", ["a100_80gb", "mi300x", "gb200", "b300", "gb300"])
def test_catalog_gpus_serve_llama3_8b(key):
    r = serve("llama3.1-8b", key, 8, "server")
    assert r["meets_limits"] and r["tokens_per_s"] > 0
    assert r["software"]["engine"] == ("vllm" if key == "mi300x" else "tensorrt-llm")


def test_a_missing_figure_is_named_in_one_line():
    import dataclasses

    rec = load_catalog().record("h200")
    figs = {k: v for k, v in rec.figures.items() if k != "dram_bytes_per_s"}
    with pytest.raises(InputError, match="chip = 'h200' has no dram_bytes_per_s figure") as e:
        _check_figures(dataclasses.replace(rec, figures=figs))
    assert "\n" not in str(e.value)
    _check_figures(rec)  # the full record passes
