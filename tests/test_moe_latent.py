"""Latent MoE (Nemotron 3 LatentMoE), the per-expert GEMM launches and the MoE FP8
quantisation count."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfmodel import training as tr
from perfmodel import workloads as wl
from perfmodel.cli import main
from perfmodel.hardware import load_catalog
from perfmodel.training import step
from perfmodel.training.types import prior_efficiency

CAT = load_catalog()
D = 1024


def _moe(**kw: int) -> wl.Workload:
    base: dict[str, int] = dict(
        layers=4,
        hidden=D,
        heads=8,
        ffn=0,
        vocab=1000,
        seq=256,
        global_batch=8,
        experts=16,
        top_k=4,
        moe_layers=4,
        moe_ffn=512,
    )
    base.update(kw)
    return wl.make_workload(**base)  # pyright: ignore[reportArgumentType]


def test_nemotron3_super_parameters_by_hand():
    # config.json: 512 experts of 2688 on a 1024 latent, squared ReLU (2 matrices),
    # router 4096 x 512; shared expert 5376 wide; latent projections 2 x 4096 x 1024
    w = wl.get_workload("nemotron-3-super")
    assert float(w.moe_width) == 1024.0
    assert float(wl.expert_params(w)) == 512 * 2 * 1024 * 2688 + 4096 * 512
    assert float(wl.latent_params(w)) == 2 * 4096 * 1024
    # 120B total / 12B active (the model card's figures)
    assert float(wl.param_count(w)) / 1e9 == pytest.approx(120.7, rel=0.01)
    assert float(wl.active_param_count(w)) / 1e9 == pytest.approx(12.2, rel=0.02)


@settings(max_examples=12)
@given(j=st.integers(0, 3), f=st.integers(1, 16))
def test_latent_is_the_flop_equivalent_of_a_narrower_expert(j, f):
    # an expert of width F on a latent l has the weights and FLOPs of one of width
    # F l / d on the hidden width, plus the two projections (2 d l = one 2-matrix
    # shared FFN of width l)
    lat, ffn = D >> j, 64 * f << j
    a = _moe(moe_latent=lat, moe_ffn=ffn)
    b = _moe(moe_ffn=ffn * lat // D, shared_ffn=lat)
    for fn in (wl.param_count, wl.active_param_count, wl.model_flops_per_token):
        assert float(fn(a)) == pytest.approx(float(fn(b)), rel=1e-12)


def test_no_latent_adds_no_op():
    w = _moe()
    ops = wl.layer_ops(w, 1.0, 1.0, 1.0, 0.0, 4.0, 1.0)
    assert all(float(o.flops) == 0.0 and float(o.bytes) == 0.0 for o in ops[-2:])


def test_all_to_all_moves_latent_wide_tokens():
    # the dispatch / combine carry moe_latent-wide copies: a narrower latent moves less
    lay = tr.make_layout(dp=16, ep=16, mb=1)
    net = tr.get_network("h100_sxm", CAT)
    chip = CAT.chip("h100_sxm")
    eps = [
        float(tr.step_time(_moe(moe_latent=lat, moe_ffn=512), chip, net, lay, 16.0).ep_comm_s)
        for lat in (D, D // 2, D // 4)
    ]
    assert eps[0] > eps[1] > eps[2] > 0.0


@pytest.mark.parametrize(
    ("value", "needle"),
    [(-1, "[0, 1000000]"), (2048, "hidden = 1024"), (1.5, "integer")],
)
def test_bad_moe_latent_names_the_field(tmp_path, capsys, value, needle):
    p = tmp_path / "w.toml"
    p.write_text(
        "layers = 4\nhidden = 1024\nheads = 8\nffn = 0\nexperts = 16\ntop_k = 4\n"
        f"moe_layers = 4\nmoe_ffn = 512\nmoe_latent = {value}\n"
    )
    rc = main(["train", "--workload-file", str(p), "--chip", "h100", "--chips", "8"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "moe_latent" in err[0] and needle in err[0]


def test_moe_latent_on_a_dense_model(capsys, tmp_path):
    p = tmp_path / "w.toml"
    p.write_text("layers = 4\nhidden = 1024\nheads = 8\nmoe_latent = 256\n")
    rc = main(["train", "--workload-file", str(p), "--chip", "h100", "--chips", "8"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "moe_latent" in err[0]


def test_gemm_input_elements_by_hand():
    # 256 tokens, d 1024, attention (q + o inputs: 1024 + 1024) and an MoE FFN: the
    # shared input d, the routed input once per token d, top_k + 1 = 5 down inputs of
    # 512; a 256 latent routes 256-wide tokens and adds its projections' inputs d + 256
    assert float(wl.gemm_input_elements(_moe(), 1.0, 1.0, 1.0)) == 256 * (2048 + 2048 + 5 * 512)
    lat = _moe(moe_latent=256)
    assert float(wl.gemm_input_elements(lat, 1.0, 1.0, 1.0)) == 256 * (
        2048 + 1024 + 256 + 5 * 512 + 1024 + 256
    )


def test_moe_launch_by_hand():
    te = prior_efficiency()
    oh = float(te.roofline.overhead_s)
    # 16 experts over ep 4: 4 local experts, 3 further launches for up and for down
    assert float(step.moe_launch_s(_moe(), 4.0, te)) == pytest.approx(6 * oh, rel=1e-12)
    # half the blocks MoE: half of it
    half = _moe(moe_layers=2, ffn=2048)
    assert float(step.moe_launch_s(half, 4.0, te)) == pytest.approx(3 * oh, rel=1e-12)


@settings(max_examples=8)
@given(k=st.integers(0, 4))
def test_moe_launch_falls_with_ep_and_is_zero_for_one_local_expert(k):
    te = prior_efficiency()
    w = _moe()
    ep = float(2**k)
    t = float(step.moe_launch_s(w, ep, te))
    assert t >= float(step.moe_launch_s(w, 2.0 * ep, te)) if ep < 16 else t == 0.0
    dense = wl.make_workload(layers=4, hidden=D, heads=8)
    assert float(step.moe_launch_s(dense, ep, te)) == 0.0
