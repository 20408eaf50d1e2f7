"""The serving model: KV-cache bytes and memory by hand, roofline bounds of the decode
step, scenario ordering and limits, shipped data and fit, and the ``serve`` command."""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfmodel import workloads as wl
from perfmodel.cli import main
from perfmodel.errors import InputError
from perfmodel.hardware import load_catalog
from perfmodel.interconnect import network_for
from perfmodel.serving import data as sd
from perfmodel.serving import serve
from perfmodel.serving.scenarios import operating_point
from perfmodel.serving.step import (
    _roofline_eff,
    decode_step_s,
    kv_bytes_per_token,
    max_batch,
    memory_per_chip,
    weight_bytes,
)
from perfmodel.serving.types import (
    BOUNDS,
    FIT_FILE,
    NO_LIMIT_S,
    ServeEfficiency,
    efficiency_from_dict,
    load_fit,
    make_layout,
    prior_efficiency,
)

CAT = load_catalog()
H200 = CAT.chip("h200")
NET = network_for("h200", CAT)
L70 = wl.get_workload("llama2-70b").with_precision("fp8")
IDEAL = efficiency_from_dict(
    dict(
        matmul=1.0,
        attention=1.0,
        dram=1.0,
        gemm_half_rows=0.0,
        gemm_half_hidden=0.0,
        op_overhead_s=0.0,
        step_overhead_s=0.0,
        seq_overhead_s=0.0,
    )
)

_decode = jax.jit(decode_step_s)
_point = jax.jit(operating_point)


# ---------------------------------------------------------------- KV cache and memory


def test_kv_bytes_llama2_70b_by_hand():
    # 80 layers x (K and V) x 8 KV heads x 128 per head, 1 byte (FP8) / 2 bytes (BF16)
    assert float(kv_bytes_per_token(L70, 1.0)) == 2 * 80 * 8 * 128 == 163_840
    assert float(kv_bytes_per_token(L70, 2.0)) == 327_680


def test_kv_bytes_mla_deepseek_r1_by_hand():
    # MLA caches the 512-wide latent and the 64-wide RoPE key per layer, 61 layers
    w = wl.get_workload("deepseek-r1")
    assert w.attention == "mla"
    assert float(kv_bytes_per_token(w, 1.0)) == 61 * (512 + 64)


def test_memory_and_max_batch_by_hand():
    lay = make_layout(1)
    weights = float(wl.param_count(L70))  # FP8: 1 byte per parameter
    assert float(weight_bytes(L70)) == weights
    mem = float(memory_per_chip(L70, lay, 100.0, 1000.0, 1.0))
    assert mem == pytest.approx(weights + 100 * 1000 * 163_840, rel=1e-12)
    eff = prior_efficiency()
    cap = 150.76e9 * float(eff.mem_usable)  # H200: 143,771 MiB (nvidia-smi)
    b = float(max_batch(L70, H200, lay, 1000.0, 1.0, eff))
    assert b == pytest.approx((cap - weights) / (1000 * 163_840), rel=1e-12)
    # tp=2 halves the weights per chip and splits the 8 KV heads over 2 ranks
    b2 = float(max_batch(L70, H200, make_layout(2), 1000.0, 1.0, eff))
    assert b2 == pytest.approx((cap - weights / 2) / (1000 * 163_840 / 2), rel=1e-12)


def test_weights_do_not_fit():
    w = wl.get_workload("llama3.1-405b").with_precision("fp8")
    assert float(max_batch(w, H200, make_layout(1), 1000.0, 1.0, prior_efficiency())) < 0


# ---------------------------------------------------------------- decode step on the roofline


@settings(max_examples=8)
@given(batch=st.floats(1.0, 512.0), context=st.floats(16.0, 4096.0))
def test_decode_step_between_roofline_bounds(batch, context):
    t = float(_decode(L70, H200, NET, make_layout(1), batch, context, 1.0, IDEAL))
    # every weight but the embedding table (a look-up) is read once per step, FP8
    weights_and_kv = float(wl.active_param_count(L70)) + batch * context * 163_840
    t_mem = weights_and_kv / float(H200.mem_bytes_per_s[1])
    t_flop = 2.0 * float(wl.active_param_count(L70)) * batch / float(H200.peak("fp8"))
    # at 100% efficiency and no overheads the step is at least each roof (head,
    # activations and norms add a little, never a factor of two)
    assert t >= max(t_mem, t_flop) * (1 - 1e-9)
    assert t <= 2.0 * (t_mem + t_flop)


@settings(max_examples=6)
@given(b=st.floats(1.0, 256.0), k=st.floats(1.1, 4.0))
def test_decode_step_grows_with_batch_and_context(b, k):
    lay = make_layout(1)
    eff = prior_efficiency()
    t = float(_decode(L70, H200, NET, lay, b, 500.0, 1.0, eff))
    assert float(_decode(L70, H200, NET, lay, b * k, 500.0, 1.0, eff)) > t
    assert float(_decode(L70, H200, NET, lay, b, 500.0 * k, 1.0, eff)) > t


def test_gemm_efficiency_ramps_with_rows_and_model_width_by_hand():
    # matmul x M / (M + half_rows) x hidden / (hidden + half_hidden): llama2-70b is
    # 8,192 wide, GPT-J 4,096; at M = 64 rows, half_rows = 64 and half_hidden = 4,096
    eff = efficiency_from_dict(dict(matmul=0.8, gemm_half_rows=64.0, gemm_half_hidden=4096.0))
    wide = float(_roofline_eff(L70, eff, 64.0).compute[0])
    narrow = float(
        _roofline_eff(wl.get_workload("gptj").with_precision("fp8"), eff, 64.0).compute[0]
    )
    assert wide == pytest.approx(0.8 * 0.5 * 8192 / 12288)
    assert narrow == pytest.approx(0.8 * 0.5 * 0.5)


def test_tensor_parallel_speeds_up_a_memory_bound_step():
    eff = prior_efficiency()
    t1 = float(_decode(L70, H200, NET, make_layout(1), 8.0, 500.0, 1.0, eff))
    t8 = float(_decode(L70, H200, NET, make_layout(8), 8.0, 500.0, 1.0, eff))
    # 8x the bandwidth, but 160 all-reduces on the step's critical path
    assert t1 / 8 < t8 < t1 / 2


# ---------------------------------------------------------------- scenarios


def _req(scenario: str):
    return sd.make_requests("llama2-70b", **sd.limits("llama2-70b", scenario))


def test_offline_fills_memory_and_limits_order_throughput():
    eff = prior_efficiency()
    lay = make_layout(1)
    off = _point(L70, H200, NET, lay, _req("offline"), eff)
    srv = _point(L70, H200, NET, lay, _req("server"), eff)
    inter = _point(L70, H200, NET, lay, _req("interactive"), eff)
    assert float(off.batch) == pytest.approx(float(off.max_batch))
    assert bool(off.meets) and bool(srv.meets) and bool(inter.meets)
    assert float(off.tokens_per_s) >= float(srv.tokens_per_s) >= float(inter.tokens_per_s)
    for res, sc in ((srv, "server"), (inter, "interactive")):
        lim = sd.limits("llama2-70b", sc)
        assert float(res.tpot_p99_s) <= lim["tpot_limit_s"]
        assert float(res.ttft_p99_s) <= lim["ttft_limit_s"]
    # the interactive point sits on its TPOT limit (the binding constraint)
    assert float(inter.tpot_p99_s) == pytest.approx(0.040, rel=1e-3)


def test_an_unmeetable_limit_is_flagged():
    req = dataclasses.replace(_req("server"), tpot_limit_s=jnp.asarray(1e-4))
    res = _point(L70, H200, NET, make_layout(1), req, prior_efficiency())
    assert not bool(res.meets)


# ---------------------------------------------------------------- shipped data and fit


def test_mlperf_rows_and_datasets():
    rows, skipped = sd.load_mlperf_rows()
    assert len(rows) + sum(skipped.values()) == 756
    assert {r.chip for r in rows} == {"h100_sxm", "h200", "b200", "mi300x", "mi325x"}
    assert {r.benchmark for r in rows} == set(sd.benchmark_names())
    assert all(r.tokens_per_s > 0 and r.n_chips >= 1 for r in rows)
    assert sd.base_benchmark("llama2-70b-interactive-99.9") == "llama2-70b"
    assert sd.base_benchmark("gptj-99") == "gptj"
    srcs = sd._datasets()["sources"]
    for name in sd.benchmark_names():
        d = sd.dataset(name)
        for k, v in d.items():
            if k.endswith("_source"):
                assert v in srcs, (name, k)
        assert d["output_mean"] > 0 and d["input_p99"] >= d["input_mean"]
    assert sd.dataset("gptj")["beams"] == 4


def test_unknown_scenario_names_the_field():
    with pytest.raises(InputError, match="scenario = 'batch'"):
        sd.limits("llama2-70b", "batch")


def test_fit_file_params_in_bounds_with_provenance():
    fit = load_fit()
    from perfmodel.serving.fit import ALL_BOUNDS

    assert set(ALL_BOUNDS) >= set(BOUNDS)
    for k, (lo, hi) in ALL_BOUNDS.items():
        assert lo <= fit["params"][k] <= hi, k
    prov = fit["provenance"]
    import hashlib

    assert prov["data_sha256"] == hashlib.sha256(sd.MLPERF_FILE.read_bytes()).hexdigest()
    assert prov["rows_used"] == len(sd.load_mlperf_rows()[0])
    for sc in ("Offline", "Server", "Interactive"):
        assert 0 < fit["cv"][sc]["mean_abs_error"] < 1
    assert FIT_FILE.name == "serving_fit.toml"
    assert isinstance(prior_efficiency(), ServeEfficiency)


# ---------------------------------------------------------------- the serve entry point


@pytest.mark.slow
def test_serve_meets_its_limits_and_reports_the_band():
    res = serve("llama2-70b", "h200", 8, "server", curve=True)
    assert res["estimate"] and res["tokens_per_s"] > 0
    assert res["latencies_ms"]["tpot_p99"] <= res["limits_ms"]["tpot"]
    assert res["latencies_ms"]["ttft_p99"] <= res["limits_ms"]["ttft"]
    assert res["memory_per_chip_bytes"] <= res["memory_usable_per_chip_bytes"] * (1 + 1e-9)
    assert res["error_band"]["cv_mean_abs_error"] is not None
    rates = [p["tokens_per_s"] for p in res["curve"]]
    assert rates == sorted(rates)  # more requests in flight, more tokens/s
    assert json.loads(json.dumps(res, allow_nan=False)) == res


@pytest.mark.slow
def test_serve_input_errors():
    with pytest.raises(InputError, match="chips = 1"):
        serve("llama3.1-405b", "h200", 1, "offline")
    with pytest.raises(InputError, match="ttft_ms = 1 is below one prefill"):
        serve("llama2-70b", "h200", 8, "server", ttft_ms=1.0)
    with pytest.raises(InputError, match="precision = 'fp4' is not supported"):
        serve("llama2-70b", "h200", 8, "server", precision="fp4")


@pytest.mark.slow
def test_cli_serve_json_and_one_line_errors(capsys):
    assert (
        main(["serve", "--chip", "h200", "--chips", "8", "--scenario", "interactive", "--json"])
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["scenario"] == "interactive" and out["meets_limits"]
    assert main(["serve", "--chip", "h200", "--chips", "8", "--scenario", "batch"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "scenario = 'batch'" in err[0] and "offline" in err[0]
    assert main(["serve", "--workload", "llama3.1-405b", "--chip", "h200", "--chips", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "chips = 1" in err[0] and "allowed: chips >=" in err[0]
    assert main(["serve", "--chip", "h200", "--chips", "8", "--ttft-ms", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ttft_ms = 1" in err[0]


def test_no_limit_constant_is_finite():
    assert np.isfinite(NO_LIMIT_S)
