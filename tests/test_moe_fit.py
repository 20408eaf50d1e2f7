"""MoE workloads, expert parallelism, FP4 and the published-run fit."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from perfmodel import training as tr
from perfmodel import workloads as wl
from perfmodel.cli import main
from perfmodel.hardware import load_catalog
from perfmodel.training import fit as F
from perfmodel.training import runs as R

CAT = load_catalog()


def test_deepseek_v3_parameter_counts():
    # DeepSeek-V3 technical report (arXiv:2412.19437): 671B total, 37B activated per
    # token (both counts include the MTP module's 14B-ish only in the 685B figure).
    w = wl.get_workload("deepseek-v3")
    total = float(wl.param_count(w)) / 1e9
    active = float(wl.active_param_count(w)) / 1e9
    assert total == pytest.approx(671, rel=0.03)
    assert active == pytest.approx(37, rel=0.10)


def test_qwen3_30b_a3b_parameter_counts():
    # Qwen3 technical report: 30.5B total, 3.3B activated.
    w = wl.get_workload("qwen3-30b-a3b")
    assert float(wl.param_count(w)) / 1e9 == pytest.approx(30.5, rel=0.03)
    assert float(wl.active_param_count(w)) / 1e9 == pytest.approx(3.3, rel=0.10)


def test_dense_model_active_equals_total_hand_count():
    # GPT-3 175B by hand: 96 layers x 12 d^2 (+ 2d norms... excluded from active) + V d
    w = wl.get_workload("gpt3-175b")
    d, L, V = 12288.0, 96.0, float(w.vocab)
    assert float(wl.active_param_count(w)) == pytest.approx(L * 12 * d * d + V * d, rel=1e-12)
    assert float(wl.param_count(w)) == pytest.approx(
        L * (12 * d * d + 2 * d) + 2 * V * d + d, rel=1e-12
    )


def test_moe_flags_on_a_dense_preset_name_the_field(capsys):
    rc = main(
        ["train", "--workload", "llama3-8b", "--chip", "h100", "--chips", "8", "--experts", "8"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "top_k" in err[0]


def test_ep_that_does_not_divide_the_experts(capsys):
    rc = main(
        [
            "train",
            "--workload",
            "qwen3-30b-a3b",
            "--chip",
            "h100",
            "--chips",
            "16",
            "--layout",
            "tp=1,pp=1,ep=3",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "'ep'" in err[0]


def test_ep_on_a_dense_workload(capsys):
    rc = main(
        ["train", "--workload", "llama3-8b", "--chip", "h100", "--chips", "8", "--layout", "ep=2"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "'ep'" in err[0]


def test_fp4_on_a_chip_without_it(capsys):
    rc = main(
        ["train", "--workload", "llama3-8b", "--chip", "h100", "--chips", "8", "--precision", "fp4"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "fp4" in err[0]


def test_qwen3_moe_ep8_layout_runs_and_all_to_all_costs_time():
    r8 = tr.evaluate_layout("qwen3-30b-a3b", "h100", 16, dict(tp=1, pp=1, dp=16, ep=8, mb=1))
    r1 = tr.evaluate_layout(
        "qwen3-30b-a3b", "h100", 16, dict(tp=1, pp=1, dp=16, ep=1, mb=1), require_fit=False
    )
    assert r8.tokens_per_s > 0 and r8.layout["ep"] == 8
    # experts split 8 ways hold 1/8 of the expert weights
    assert r8.memory["weights_bytes"] < r1.memory["weights_bytes"]


def test_expert_memory_splits_over_ep_exactly():
    w = wl.get_workload("qwen3-30b-a3b")
    lay1 = tr.make_layout(dp=8, ep=1)
    lay8 = tr.make_layout(dp=8, ep=8)
    d1, e1 = (float(x) for x in tr.memory.stage_params_per_device(w, lay1))
    d8, e8 = (float(x) for x in tr.memory.stage_params_per_device(w, lay8))
    assert d1 == pytest.approx(d8) and e1 == pytest.approx(8 * e8)


def test_every_used_published_layout_fits_in_memory():
    used = R.used_runs()
    assert len(used) >= 150
    misses = [r.index for r in used if not r.fits]
    assert misses == [], misses


def _memory_without_and_with(flag: str, zero: int):
    """Per-device memory of Llama 3 8B on dp 8 at ``zero``, without and with the recipe
    ``flag`` set."""
    w = wl.get_workload("llama3-8b")
    base = dict(dp=8, zero=zero)
    m0 = tr.memory.memory_per_device(w, tr.make_layout(**base))
    return m0, tr.memory.memory_per_device(w, tr.make_layout(**base, **{flag: 1}))


@pytest.mark.parametrize("zero", [1, 3])
def test_bf16_states_memory_by_hand(zero):
    # Megatron-Core: 4 B fp32 main grad + 12 B (fp32 master + 2 fp32 moments) per param;
    # bf16 states: 2 B grad + 4 B (2 bf16 moments), + 2 B for the bf16 shard under FSDP
    m0, m1 = _memory_without_and_with("bf16_states", zero)
    assert float(m1[1]) == pytest.approx(float(m0[1]) * 2 / 4)
    assert float(m1[2]) == pytest.approx(float(m0[2]) * (6 if zero == 3 else 4) / 12)
    assert float(m1[0]) == pytest.approx(float(m0[0]))  # the 16-bit weights are the same


@pytest.mark.parametrize("zero", [1, 3])
def test_bf16_grads_memory_by_hand(zero):
    # grad_reduce_in_fp32 = False: the main gradient is 2 B/param instead of 4; the
    # fp32 master and both fp32 moments (12 B) and the 16-bit weights do not move
    m0, m1 = _memory_without_and_with("bf16_grads", zero)
    assert float(m1[1]) == pytest.approx(float(m0[1]) / 2, rel=1e-12)
    assert float(m1[0]) == float(m0[0]) and float(m1[2]) == float(m0[2])
    assert float(m1[3]) == float(m0[3])  # activations
    assert tr.memory.state_bytes(tr.make_layout(bf16_grads=1)) == (2.0, 12.0)
    assert tr.memory.state_bytes(tr.make_layout()) == (4.0, 12.0)


@pytest.mark.parametrize("zero", [0, 1, 3])
def test_bf16_grads_reduce_two_bytes_per_gradient(zero):
    """The DP gradient reduction of a bf16_grads layout is exactly the fp32 layout's
    with 2 bytes per gradient element instead of ``grad_comm_bytes`` (4); nothing else
    in the step moves but the gradient memory."""
    chip = load_catalog().chip("h100").replace(name="")
    net = tr.get_network("h100", load_catalog())
    w = wl.get_workload("llama3-8b").replace(name="")
    te = tr.default_efficiency()
    assert float(te.grad_comm_bytes) == 4.0
    lay = dict(tp=2, pp=1, dp=32, mb=1, zero=zero)
    r0 = tr._jit_step(w, chip, net, tr.make_layout(**lay), 64, te)
    r1 = tr._jit_step(w, chip, net, tr.make_layout(bf16_grads=1, **lay), 64, te)
    r2 = tr._jit_step(w, chip, net, tr.make_layout(**lay), 64, te.replace(grad_comm_bytes=2.0))
    assert float(r1.dp_comm_s) == pytest.approx(float(r2.dp_comm_s), rel=1e-12)
    assert float(r1.step_time_s) == pytest.approx(float(r2.step_time_s), rel=1e-12)
    assert float(r1.dp_comm_s) <= float(r0.dp_comm_s)
    assert float(r1.compute_s) == float(r0.compute_s)
    assert float(r1.grads_bytes) == pytest.approx(float(r0.grads_bytes) / 2, rel=1e-12)


def test_bf16_grads_bad_values_name_the_field(capsys):
    with pytest.raises(ValueError, match="'bf16_grads' = 2 must be 0 or 1"):
        tr.make_layout(bf16_grads=2)
    from perfmodel.commands.train import parse_layout

    assert parse_layout("tp=2,bf16_grads=1", 8) == dict(tp=2, bf16_grads=1, dp=4)
    assert parse_layout("bf16_grads=off", 8) == dict(bf16_grads=0, dp=8)
    cmd = ["train", "--workload", "llama3-8b", "--chip", "h100", "--chips", "8"]
    rc = main([*cmd, "--layout", "tp=1,bf16_grads=2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "bf16_grads" in err[0]
    assert tr.make_layout(bf16_grads=1).to_dict()["bf16_grads"] is True
    assert "bf16_grads" not in tr.make_layout().to_dict()


def test_automodel_rows_keep_bf16_states():
    runs = R.used_runs()
    auto = [r for r in runs if r.layout.get("bf16_states")]
    assert auto and all(r.index < 10_000 for r in auto)
    assert R.bf16_states_of("NeMo AutoModel (PyTorch backend)")
    assert not R.bf16_states_of("Megatron-Bridge (NeMo container)")


def test_exclusions_have_reasons():
    for r in R.load_runs():
        assert (r.excluded == "") or len(r.excluded) > 5


@pytest.mark.slow
def test_fit_jacobian_matches_finite_differences():
    runs = [r for r in R.used_runs() if r.model == "llama3-8b"][:3]
    prob = F.Problem(runs)
    th = F.prior_theta()
    jac = F._log_jac(prob, th)
    for j in (
        F.FIT_PARAMS.index(k) for k in ("matmul", "attention", "tp_overlap", "moe_pad_tokens")
    ):
        h = 1e-5
        tp, tm = th.copy(), th.copy()
        tp[j] += h
        tm[j] -= h
        fd = (np.log(F._predict(prob, tp)) - np.log(F._predict(prob, tm))) / (2 * h)
        np.testing.assert_allclose(jac[:, j], fd, rtol=1e-4, atol=1e-8)


def test_prediction_band_is_a_cross_validated_number():
    b = F.prediction_band("gb200", "fp8", "dense")
    assert b is not None and 0 < b < 50


def _toy_run(i, model, release, tps, gpus=8):
    lay = dict(tp=1, pp=1, cp=1, ep=1, vpp=1, mb=1, dp=gpus, global_batch=64, seq=4096)
    return R.Run(
        index=i,
        model=model,
        family="x",
        kind="dense",
        chip="h100_sxm",
        gpus=gpus,
        precision="bf16",
        recipe="bf16",
        layout=lay,
        tokens_per_s_per_gpu=tps,
        source="",
        release=release,
    )


def test_release_spread_by_hand():
    # one job in two releases (100 and 400 tokens/s): each predicted by the other
    # misses by 300% (400 from 100) and 75% (100 from 400); a job in one release
    # does not count
    runs = [_toy_run(0, "a", "25.09", 100.0), _toy_run(1, "a", "26.02.01", 400.0)]
    runs.append(_toy_run(2, "b", "25.09", 50.0))
    s = R.release_spread(runs)
    assert s["rows"] == 2 and s["configs"] == 1
    assert s["mean_abs_pct"] == pytest.approx((300.0 + 75.0) / 2)
    assert s["max_abs_pct"] == pytest.approx(300.0)
    assert s["widest"][0]["ratio"] == pytest.approx(4.0)
    np.testing.assert_array_equal(R.latest_release(runs), [False, True, True])
    np.testing.assert_allclose(F.config_weights(runs), [0.5, 0.5, 1.0])


def test_summary_by_hand():
    s = F.summary(np.array([-10.0, 5.0, 30.0, np.nan]))
    assert s["n"] == 3 and s["mean_abs_pct"] == pytest.approx(15.0)
    assert s["median_abs_pct"] == pytest.approx(10.0) and s["max_abs_pct"] == 30.0
    assert s["within_20_pct_share"] == pytest.approx(2 / 3)


def test_moe_pad_and_layer_overhead_slow_small_micro_batches():
    # per token, a micro-batch of 1 pays the per-expert padding and the per-layer
    # routing overhead over 4x fewer tokens than a micro-batch of 4
    w = wl.get_workload("qwen3-30b-a3b")
    chip = load_catalog().chip("h100_sxm")
    net = tr.get_network("h100_sxm")
    te = tr.default_efficiency()
    per_tok = []
    for mb in (1, 4):
        lay = tr.make_layout(dp=8, ep=8, mb=mb)
        r = tr.step_time(w, chip, net, lay, 8, te)
        per_tok.append(float(r.compute_s) / float(w.global_batch * w.seq))
    assert per_tok[0] > per_tok[1]
    none = dataclasses.replace(te, moe_pad_tokens=0.0, moe_layer_overhead_s=0.0)
    lay = tr.make_layout(dp=8, ep=8, mb=1)
    assert float(tr.step_time(w, chip, net, lay, 8, none).compute_s) < float(
        tr.step_time(w, chip, net, lay, 8, te).compute_s
    )


def test_prediction_band_falls_back_to_the_same_kind_first():
    from perfmodel.training.types import fit_data

    b = fit_data()["cv_mean_abs_pct"]["gb200"]
    dense = [v["dense"] for p, v in b.items() if "dense" in v and p != "bf16"]
    assert "dense" not in b.get("bf16", {})  # no GB200 BF16 dense row in the data
    assert F.prediction_band("gb200", "bf16", "dense") == pytest.approx(np.mean(dense))


def test_prediction_band_of_an_unseen_chip_is_at_least_leave_one_chip_out():
    from perfmodel.training.types import fit_data

    d = fit_data()
    assert "gb300" not in d["cv_mean_abs_pct"]  # no published GB300 run in the fit
    loco = d["meta"]["cv"]["leave_one_chip_out"]["mean_abs_pct"]
    for kind in ("dense", "moe"):
        band = F.prediction_band("gb300", "fp8", kind)
        assert band is not None and band >= loco - 1e-9
    # a chip in the data keeps its own figure
    assert F.prediction_band("gb200", "fp8", "dense") == pytest.approx(
        d["cv_mean_abs_pct"]["gb200"]["fp8"]["dense"]
    )


def test_ep_across_tp_means_expert_tensor_parallel_1():
    # tp=2, dp=32, ep=64: ep divides tp*dp*cp but not dp*cp -> each expert whole on its
    # rank (etp = 1); the routed FLOPs per rank equal those of etp = tp, the expert
    # weights per rank are 1/ep of all (not 1/(tp*ep)), by hand
    w = wl.get_workload("nemotron-3-super")
    lay = tr.make_layout(tp=2, dp=32, ep=64, sp=True)
    assert float(tr.types.expert_tp(lay)) == 1.0
    assert float(tr.types.expert_tp(tr.make_layout(tp=2, dp=32, ep=32, sp=True))) == 2.0
    fe = float(wl._fractions(w)[3])
    _, experts = tr.memory.stage_params_per_device(w, lay)
    assert float(experts) == pytest.approx(float(w.layers) * fe * float(wl.expert_params(w)) / 64)
    ops1 = wl.layer_ops(w, 1.0, 2.0, 1.0, 1.0, 64.0, 1.0)
    ops2 = wl.layer_ops(w, 1.0, 2.0, 1.0, 1.0, 64.0, 2.0)
    for i in (13, 15):
        assert float(ops1[i].flops) == pytest.approx(float(ops2[i].flops))
    with pytest.raises(ValueError, match="tp x dp x cp"):
        tr.make_layout(tp=2, dp=32, ep=128)


def test_cp_merge_bytes_by_hand():
    # llama3-8b (32 heads x 128, all attention layers), mb 1, seq 8192, tp 1, cp 2: one
    # further ring step merges 4096 queries x 4096 values in fp32: 2 reads + 1 write
    w = wl.get_workload("llama3-8b")
    w = dataclasses.replace(w, seq=8192.0)
    op = tr.step.cp_merge_op(w, 1.0, 1.0, 2.0)
    assert float(op.bytes) == pytest.approx(1 * 4096 * 32 * 128 * 3 * 4.0)
    assert float(tr.step.cp_merge_op(w, 1.0, 1.0, 1.0).bytes) == 0.0


def test_search_grid_offers_ep_across_tp():
    # tp 2 x dp 32: ep 64 only as expert tensor parallelism 1 (it does not divide dp);
    # a dense model gets ep 1 only
    from perfmodel.training import search as S

    g = np.array([[2, 1, 32, 1, 1, 1, 1, 0, 1]], float)
    eps = sorted(S._with_ep(g, 128, 128)[:, -1])
    assert 64.0 in eps and 128.0 not in eps and 32.0 in eps
    assert sorted(S._with_ep(g, 0, 128)[:, -1]) == [1.0]
