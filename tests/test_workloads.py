"""Workload presets, parameter/FLOP counts by hand, op lists, validation."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import perfmodel  # noqa: F401  (x64)
from perfmodel import roofline as rf
from perfmodel import workloads as wl


def test_presets_exist_and_build():
    for name in ("gpt3-175b", "llama3-8b", "llama3-70b", "llama3-405b", "video-driving"):
        assert name in wl.WORKLOAD_NAMES
    for name in wl.WORKLOAD_NAMES:
        w = wl.get_workload(name)
        assert w.name == name
        assert float(wl.param_count(w)) > 1e8


@pytest.mark.parametrize(
    "name, params",
    [
        ("gpt3-175b", 175.0e9),
        ("llama3-8b", 8.03e9),
        ("llama3-70b", 70.55e9),
        ("llama3-405b", 405.85e9),
        ("megatron-1t", 1.009e12),
    ],
)
def test_parameter_counts_match_published(name, params):
    got = float(wl.param_count(wl.get_workload(name)))
    assert got == pytest.approx(params, rel=0.005)


def test_gpt3_flops_by_hand():
    w = wl.get_workload("gpt3-175b")
    d, L, s, V = 12288, 96, 2048, 50257
    n_mm = L * 12 * d * d + V * d  # QKV+proj 4d^2, FFN 8d^2 per layer; head
    fwd = 2 * n_mm + 4 * L * s * d * 0.5  # causal attention halves 4 L s d
    assert float(wl.forward_flops_per_token(w)) == pytest.approx(fwd, rel=1e-12)
    assert float(wl.model_flops_per_token(w)) == pytest.approx(3 * fwd, rel=1e-12)
    # ~6 N per token plus the attention term
    six_n = 6 * float(wl.param_count(w))
    assert 1.0 < float(wl.model_flops_per_token(w)) / six_n < 1.02
    tokens = 1536 * 2048
    assert float(wl.model_flops_per_step(w)) == pytest.approx(3 * fwd * tokens, rel=1e-12)


def test_video_preset_documented_sizes():
    w = wl.get_workload("video-driving")
    assert int(w.seq) == 8 * 4 * 300 and w.unit == "sample" and not w.causal
    assert float(wl.param_count(w)) == pytest.approx(0.3054e9, rel=0.01)
    per_sample = float(wl.forward_flops_per_token(w)) * 9600
    assert per_sample == pytest.approx(1.49e13, rel=0.02)
    assert "9,600" in wl.VIDEO_DRIVING_NOTES
    assert float(wl.units_per_step(w)) == 1024


def _kind_flops(ops, kinds):
    return sum(float(o.flops) for o in ops if rf.OP_KINDS[int(o.kind)] in kinds)


@given(
    tp=st.sampled_from([1, 2, 4, 8]),
    cp=st.sampled_from([1, 2, 4]),
    mb=st.integers(1, 4),
    gated=st.booleans(),
    causal=st.booleans(),
    kv=st.sampled_from([16, 8, 2]),
)
def test_sharded_op_flops_sum_to_the_model(tp, cp, mb, gated, causal, kv):
    """matmul + attention FLOPs of one rank, times tp * cp ranks, over all layers and
    the head, equal the forward FLOPs per token times the micro-batch's tokens."""
    w = wl.make_workload(
        layers=3,
        hidden=512,
        heads=16,
        kv_heads=kv,
        ffn=1536,
        vocab=1000,
        seq=256,
        gated_ffn=gated,
        causal=causal,
    )
    ops = wl.layer_ops(w, mb, tp, cp, 1.0)
    head = wl.head_ops(w, mb, tp, cp)
    per_rank = 3 * _kind_flops(ops, ("matmul", "attention")) + _kind_flops(head, ("matmul",))
    total = per_rank * tp * cp
    expect = float(wl.forward_flops_per_token(w)) * mb * 256
    assert total == pytest.approx(expect, rel=1e-9)


def test_attention_op_is_flash_causal():
    w = wl.get_workload("llama3-8b")
    att = wl.layer_ops(w, 1, 1, 1, 0.0)[wl.ATTENTION_OP_INDEX]
    assert rf.OP_KINDS[int(att.kind)] == "attention"
    assert float(att.flops) == pytest.approx(4 * 32 * 8192 * 8192 * 128 * 0.5)


def test_sliding_window_attention_by_hand():
    """gpt-oss-120b: 18 of 36 layers attend to a 128-token window. Per token and layer
    QK^T + PV cost 2 h (d_qk + d_v) = 2 * 64 * 128 = 16,384 FLOP per key: full causal
    layers see s/2 = 2,048 keys on average, windowed ones 128 (no causal halving)."""
    w = wl.get_workload("gpt-oss-120b")
    assert float(w.window) == 128 and float(w.window_layers) == 18
    per_key = 2 * 64 * (64 + 64)
    assert float(wl.attention_flops_per_token(w)) == pytest.approx(
        per_key * (18 * 2048 + 18 * 128), rel=1e-12
    )
    # the layer op of one micro-batch (4 x 4096 tokens, tp 1): the average block's share
    ops = wl.layer_ops(w, 4, 1, 1, 0)
    att = ops[wl.ATTENTION_OP_INDEX]
    full = 4 * 64 * 4096 * 4096 * 64 * 4 / 2
    win = 4 * 64 * 4096 * 128 * 64 * 4
    assert float(att.flops) == pytest.approx(0.5 * full + 0.5 * win, rel=1e-12)
    # a window as long as the sequence is plain causal attention
    whole = wl.make_workload(
        layers=4, hidden=256, heads=4, seq=512, window=512, window_layers=2, global_batch=8
    )
    plain = wl.make_workload(layers=4, hidden=256, heads=4, seq=512, global_batch=8)
    assert float(wl.attention_flops_per_token(whole)) == pytest.approx(
        float(wl.attention_flops_per_token(plain))
    )
    with pytest.raises(ValueError, match="window_layers"):
        wl.make_workload(layers=4, hidden=256, heads=4, window=64, window_layers=5)
    with pytest.raises(ValueError, match="'window'"):
        wl.make_workload(layers=4, hidden=256, heads=4, window_layers=2)


def test_fp8_keeps_attention_and_norms_in_bf16():
    w = wl.get_workload("gpt3-175b-mlperf")
    ops = wl.layer_ops(w, 1, 4, 1, 1.0)
    precs = {rf.OP_KINDS[int(o.kind)]: int(o.precision) for o in ops}
    from perfmodel.hardware import PRECISION_INDEX

    assert precs["matmul"] == PRECISION_INDEX["fp8"]
    assert precs["attention"] == PRECISION_INDEX["bf16"]


def test_decode_ops_read_weights_and_kv_cache():
    w = wl.get_workload("llama3-70b").with_precision("bf16")
    b, ctx, tp = 4, 4096, 2
    ops = wl.decode_layer_ops(w, b, ctx, tp)
    att = ops[wl.ATTENTION_OP_INDEX]
    kv = b * ctx * 2 * 1024 / tp * 2  # kv_dim = 8 heads x 128
    q = 2 * b * 8192 / tp * 2
    assert float(att.bytes) == pytest.approx(kv + q)
    # matmul bytes are dominated by the weight slice
    qkv = ops[1]
    assert float(qkv.bytes) > 2 * 8192 * (8192 + 2048) / tp


def test_validation_messages():
    with pytest.raises(ValueError, match="heads"):
        wl.make_workload(layers=2, hidden=100, heads=3)
    with pytest.raises(ValueError, match="'layers' = 0"):
        wl.make_workload(layers=0, hidden=64, heads=4)
    with pytest.raises(ValueError, match="kv_heads"):
        wl.make_workload(layers=2, hidden=64, heads=4, kv_heads=3)
    with pytest.raises(ValueError, match="precision"):
        wl.make_workload(layers=2, hidden=64, heads=4, precision="fp2")
    with pytest.raises(KeyError, match="unknown workload"):
        wl.get_workload("gpt5")
    with pytest.raises(ValueError, match="unknown workload field"):
        wl.workload_from_dict({"layers": 2, "hidden": 64, "heads": 4, "widht": 3})


def test_workload_file_and_base_override(tmp_path):
    p = tmp_path / "mine.toml"
    p.write_text('[workload]\nbase = "llama3-8b"\nlayers = 16\nseq = 4096\n')
    w = wl.load_workload_file(p)
    assert int(w.layers) == 16 and int(w.seq) == 4096 and w.gated_ffn and int(w.kv_heads) == 8
    assert w.name == "mine"
    p2 = tmp_path / "bad.toml"
    p2.write_text("layers = [")
    with pytest.raises(ValueError, match="not valid TOML"):
        wl.load_workload_file(p2)
    with pytest.raises(FileNotFoundError):
        wl.load_workload_file(tmp_path / "missing.toml")


def test_to_dict_roundtrip():
    w = wl.get_workload("llama3-70b")
    d = w.to_dict()
    w2 = wl.workload_from_dict({k: (int(v) if isinstance(v, float) else v) for k, v in d.items()})
    for k in wl.NUMERIC_FIELDS:
        assert float(getattr(w2, k)) == float(getattr(w, k))
    assert math.isclose(float(wl.param_count(w2)), float(wl.param_count(w)))
    assert np.isfinite(float(wl.model_flops_per_step(w2)))
