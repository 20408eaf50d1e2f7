"""Training-step model: bubble formula, monotonicity, memory, search, gradients,
published runs, CLI and inference."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import perfmodel  # noqa: F401  (x64)
from perfmodel import training as tr
from perfmodel import workloads as wl
from perfmodel.hardware import load_catalog

CAT = load_catalog()
H100 = CAT.chip("h100").replace(name="")
NET = tr.get_network("h100_sxm", CAT)
EFF = tr.default_efficiency()
W8B = wl.get_workload("llama3-8b").replace(name="")
N64 = 64

_step = tr._jit_step  # shares compilations with the library (names stripped)


def _lay(**kw):
    return tr.make_layout(**kw)


@pytest.fixture(scope="module")
def best8b():
    return tr.best_layout("llama3-8b", "h100", N64)


@pytest.fixture(scope="module")
def grid8b():
    return tr.layout_grid(W8B, N64, 8)


# ---------------------------------------------------------------------------- bubble


@given(
    p=st.sampled_from([2, 4, 8]),
    v=st.sampled_from([1, 2, 3]),
    mb=st.sampled_from([1, 2]),
    dp=st.sampled_from([1, 2, 4]),
)
def test_bubble_fraction_formula(p, v, mb, dp):
    w = wl.make_workload(
        layers=48,
        hidden=1024,
        heads=16,
        ffn=4096,
        vocab=32000,
        seq=1024,
        global_batch=64,
        gated_ffn=True,
    )
    lay = _lay(tp=1, pp=p, dp=dp, mb=mb, vpp=v, zero=1)
    r = _step(w, H100, NET, lay, float(p * dp), EFF)
    m = 64 / (dp * mb)
    busy = float(r.compute_s + r.recompute_s + r.tp_comm_s + r.cp_comm_s + r.pp_comm_s)
    frac = float(r.bubble_s) / (busy + float(r.bubble_s))
    assert frac == pytest.approx((p - 1) / (v * m + p - 1), rel=1e-9)
    total = busy + float(r.bubble_s + r.dp_comm_s + r.optimizer_s + r.overhead_s)
    assert float(r.step_time_s) == pytest.approx(total, rel=1e-9)


# ---------------------------------------------------------------------------- monotone


def _grid_times(grid, chip, net):
    k = len(grid["tp"])
    lay, ns = tr._pad_grid(grid, np.full(k, float(N64)))  # same shape as the search
    r = tr._eval_grid(W8B, chip, net, lay, ns, EFF)
    return np.asarray(r.step_time_s)[:k]


@given(
    f=st.floats(1.0, 4.0), hbm=st.floats(1.0, 4.0), up=st.floats(1.0, 4.0), out=st.floats(1.0, 4.0)
)
def test_step_time_non_increasing_in_flops_hbm_and_links(grid8b, f, hbm, up, out):
    base = _grid_times(grid8b, H100, NET)
    chip = H100.replace(
        peak_flops_per_s=H100.peak_flops_per_s * f, mem_bytes_per_s=H100.mem_bytes_per_s * hbm
    )
    net = NET.replace(
        scaleup_bytes_per_s=NET.scaleup_bytes_per_s * up,
        scaleout_bytes_per_s=NET.scaleout_bytes_per_s * out,
    )
    faster = _grid_times(grid8b, chip, net)
    assert np.all(faster <= base * (1 + 1e-12))
    if f > 1.5:  # compute-heavy layouts do get faster
        assert np.median(faster / base) < 0.95


# ---------------------------------------------------------------------------- memory


@given(
    tp=st.sampled_from([1, 2, 4]),
    pp=st.sampled_from([1, 2, 4]),
    zero=st.integers(0, 2),
    sp=st.sampled_from([0, 1]),
    rc=st.integers(0, 2),
)
def test_memory_non_increasing_in_tp_pp_zero(tp, pp, zero, sp, rc):
    w = wl.get_workload("gpt3-175b")

    def mem(**kw):
        base = dict(tp=tp, pp=pp, dp=8, mb=1, sp=sp, recompute=rc, zero=zero)
        base.update(kw)
        return float(tr.memory_per_device(w, _lay(**base))[-1])

    m0 = mem()
    assert mem(tp=2 * tp) <= m0 * (1 + 1e-12)
    assert mem(pp=2 * pp) <= m0 * (1 + 1e-12)
    assert mem(zero=zero + 1) <= m0 * (1 + 1e-12)
    assert mem(recompute=min(rc + 1, 2)) <= m0 * (1 + 1e-12)


def test_memory_by_hand_gpt3_tp4_pp8_zero1():
    """Per-device state by hand: 16 bytes/param split 2 (bf16 weights) + 4 (fp32 grads)
    + 12/dp (Adam master + moments, ZeRO-1)."""
    w = wl.get_workload("gpt3-175b")
    lay = _lay(tp=4, pp=8, dp=8, mb=1, sp=1, zero=1)
    weights, grads, opt, acts, total = (float(x) for x in tr.memory_per_device(w, lay))
    layer = 12 * 12288**2 + 2 * 12288
    per_dev = (12 * layer + 50257 * 12288) / 4
    assert weights == pytest.approx(2 * per_dev)
    assert grads == pytest.approx(4 * per_dev)
    assert opt == pytest.approx(12 * per_dev / 8)
    # activations: 8 micro-batches in flight x 12 layers x 32 bytes x s h / tp, + logits
    # (16-bit logits and their in-place 16-bit gradient: 4 bytes per logit)
    sbh = 2048 * 12288
    assert acts == pytest.approx(8 * 12 * 32 * sbh / 4 + 2048 * 50257 / 4 * 4, rel=1e-9)


def test_memory_by_hand_fsdp_keeps_two_gathered_layers():
    """ZeRO-3 (FSDP): no persistent 16-bit weights, two layers' bf16 weights gathered
    (12 layers per stage of 96 at pp=8); grads (4 B) and optimizer (12 B) sharded."""
    w = wl.get_workload("gpt3-175b")
    lay = _lay(tp=4, pp=8, dp=8, mb=1, sp=1, zero=3)
    weights, grads, opt, _, _ = (float(x) for x in tr.memory_per_device(w, lay))
    layer = 12 * 12288**2 + 2 * 12288
    per_dev = (12 * layer + 50257 * 12288) / 4
    assert weights == pytest.approx(2 * per_dev * 2 / 12)
    assert grads == pytest.approx(4 * per_dev / 8)
    assert opt == pytest.approx(12 * per_dev / 8)


@given(mb=st.sampled_from([1, 2, 4]), cap_gb=st.floats(20.0, 400.0))
def test_block_recompute_takes_the_fewest_layers_that_fit(mb, cap_gb):
    """``block`` recomputes k whole layers of the stage: the fewest for which the
    memory fits the capacity (k - 1 would not), between ``none`` (k = 0) and ``full``
    (k = all layers), and its recompute time is k/L of full's."""
    w = wl.get_workload("llama3-70b")
    cap = cap_gb * 1e9
    lay = dict(tp=1, pp=1, dp=64, mb=mb, zero=3)
    full = tr.memory_per_device(w, _lay(recompute="full", **lay))[-1]
    none = tr.memory_per_device(w, _lay(**lay))[-1]
    block = tr.memory_per_device(w, _lay(recompute="block", **lay), cap)[-1]
    f = float(tr.recomputed_share(w, _lay(recompute="block", **lay), cap))
    k = round(f * 80)
    assert abs(f * 80 - k) < 1e-9 and 0 <= k <= 80
    assert float(full) <= float(block) * (1 + 1e-12) and float(block) <= float(none) * (1 + 1e-12)
    if float(none) <= cap:
        assert k == 0
    elif float(full) > cap:
        assert k == 80
    else:
        assert float(block) <= cap
        # one layer fewer recomputed stores one more layer's activations: over the cap
        _, a_none, a_ckpt = tr.activation_bytes_per_layer(w, _lay(recompute="block", **lay))
        per_layer = float(a_none) - float(a_ckpt)
        assert float(block) + per_layer > cap or k == 0
    chip = load_catalog().chip("gb200")
    te = tr.default_efficiency()
    usable = float(chip.mem_bytes[1]) * float(te.mem_usable)
    r_full = tr.step_time(w, chip, tr.get_network("gb200"), _lay(recompute="full", **lay))
    r_blk = tr.step_time(w, chip, tr.get_network("gb200"), _lay(recompute="block", **lay))
    f_chip = float(tr.recomputed_share(w, _lay(recompute="block", **lay), usable))
    assert float(r_blk.recompute_s) == pytest.approx(f_chip * float(r_full.recompute_s), rel=1e-9)


@given(k=st.integers(0, 80))
def test_stated_recompute_layers_trade_memory_for_time(k):
    """``recompute_layers = k`` (Megatron ``--recompute-num-layers``) recomputes exactly
    k of the stage's 80 layers: share k/80, activations linear in k from ``none``'s
    (k = 0 means the fewest that fit, here none with an unbounded cap) to ``full``'s."""
    w = wl.get_workload("llama3-70b")
    lay = dict(tp=8, pp=1, dp=8, mb=1, recompute="block")
    blk = _lay(recompute_layers=k, **lay)
    f = float(tr.recomputed_share(w, blk, 1e30))
    assert f == pytest.approx(k / 80, abs=1e-12)
    a = lambda la: float(tr.memory_per_device(w, la, 1e30)[3])  # noqa: E731
    a_full = a(_lay(**{**lay, "recompute": "full"}))
    a_k, a_none = a(blk), a(_lay(**{**lay, "recompute": "none"}))
    if k == 0:
        assert a_k == pytest.approx(a_none, rel=1e-12)
    else:
        # k layers keep only their checkpoint; one recomputed layer lives in its backward
        a_k1 = a(_lay(recompute_layers=80, **lay))
        assert a_k1 == pytest.approx(a_full, rel=1e-12)
        a_1 = a(_lay(recompute_layers=1, **lay))
        step = (a_1 - a_k1) / 79
        assert a_k == pytest.approx(a_1 - (k - 1) * step, rel=1e-9)


def test_recompute_layers_errors():
    with pytest.raises(ValueError, match="'recompute_layers' = 3 needs recompute = block"):
        _lay(recompute_layers=3)
    with pytest.raises(ValueError, match="'recompute_layers' = -1 must be an integer >= 0"):
        _lay(recompute="block", recompute_layers=-1)
    with pytest.raises(ValueError, match=r"'recompute_layers' = 41 must be in \[0, 40\]"):
        tr.evaluate_layout(
            "llama3-70b",
            "h100",
            64,
            dict(tp=8, pp=2, dp=4, recompute="block", recompute_layers=41),
            require_fit=False,
        )


def test_printed_block_layout_round_trips(best8b):
    """The layout a search prints (with its recompute_layers) fed back as --layout gives
    the same step time."""
    w = wl.get_workload("llama3-70b")
    r = tr.best_layout("llama3-70b", "h100", 16, recompute=("block",))
    assert r.layout["recompute"] == "block" and "recompute_layers" in r.layout
    again = tr.evaluate_layout("llama3-70b", "h100", 16, dict(r.layout))
    assert again.step_time_s == pytest.approx(r.step_time_s, rel=1e-9)
    assert again.layout["recompute_layers"] == r.layout["recompute_layers"]
    assert 0 <= r.layout["recompute_layers"] <= int(w.layers) // r.layout["pp"] + 1


# ---------------------------------------------------------------------------- search


def test_best_layout_reports_search(best8b):
    assert best8b.fits and best8b.layouts_evaluated > 1000
    assert 0 < best8b.layouts_fitting <= best8b.layouts_evaluated
    assert best8b.search_time_s > 0
    lay = best8b.layout
    assert lay["tp"] * lay["pp"] * lay["dp"] * lay["cp"] == N64
    assert 0.1 < best8b.mfu < 0.8
    assert best8b.memory_per_device_bytes <= best8b.memory_capacity_bytes
    for k in ("compute_s", "bubble_s", "tp_comm_s", "pp_comm_s", "dp_comm_s"):
        assert k in best8b.breakdown


@given(
    tp=st.sampled_from([1, 2, 4, 8]),
    pp=st.sampled_from([1, 2, 4, 8]),
    cp=st.sampled_from([1, 2]),
    mb=st.sampled_from([1, 2, 4]),
    v=st.sampled_from([1, 2, 4]),
    sp=st.sampled_from([0, 1]),
    rc=st.integers(0, 2),
    zero=st.integers(0, 3),
)
def test_best_layout_no_slower_than_any_fitting_sample(best8b, tp, pp, cp, mb, v, sp, rc, zero):
    if tp * pp * cp > N64:
        return
    dp = N64 // (tp * pp * cp)
    if pp == 1:
        v = 1
    m = 512 // (dp * mb)
    if v > 1 and (32 % (pp * v) or m < pp):
        v = 1
    if dp == 1:
        zero = 0
    if tp == 1:
        sp = 0
    r = tr.evaluate_layout(
        "llama3-8b",
        "h100",
        N64,
        dict(
            tp=tp, pp=pp, dp=dp, cp=cp, mb=mb, vpp=v, sp=sp, recompute=tr.RECOMPUTE[rc], zero=zero
        ),
        require_fit=False,
    )
    if r.fits:
        assert r.tokens_per_s <= best8b.tokens_per_s * (1 + 1e-9)


def test_throughput_curve_matches_best_layout(best8b):
    curve = tr.throughput_curve("llama3-8b", "h100", [N64])
    assert curve.shape == (1,)
    assert curve[0] == pytest.approx(best8b.tokens_per_s, rel=1e-9)


def test_nothing_fits_is_a_clear_error():
    with pytest.raises(ValueError, match="no layout .* fits .* GB per device"):
        tr.best_layout("llama3-8b", "h100", 1, global_batch=8, recompute=("none",), zero=(0,))


def test_bad_layouts_raise():
    with pytest.raises(ValueError, match="must equal the number of chips"):
        tr.evaluate_layout("llama3-8b", "h100", 64, dict(tp=8, pp=2, dp=2))
    with pytest.raises(ValueError, match="does not fit: needs .* GB"):
        tr.evaluate_layout("llama3-8b", "h100", 1, dict(tp=1, pp=1, dp=1, mb=16, zero=0))
    with pytest.raises(ValueError, match="recompute"):
        tr.make_layout(recompute="some")
    with pytest.raises(ValueError, match="n_chips"):
        tr.best_layout("llama3-8b", "h100", 0)
    with pytest.raises(ValueError, match="int8"):
        tr.best_layout("llama3-8b", "h100", 8, precision="int8")


# ---------------------------------------------------------------------------- gradients


@pytest.mark.slow
def test_gradient_of_step_time_matches_finite_differences():
    w = wl.get_workload("gpt3-175b").replace(name="")
    lay = _lay(tp=8, pp=4, dp=4, mb=1, vpp=2, sp=1, zero=1)
    n = 128.0

    def t_of(peak, hbm, up, out):
        chip = H100.replace(peak_flops_per_s=peak, mem_bytes_per_s=hbm)
        net = NET.replace(scaleup_bytes_per_s=up, scaleout_bytes_per_s=out)
        return tr.step_time(w, chip, net, lay, n, EFF, smooth=True).step_time_s

    args = (
        H100.peak_flops_per_s,
        H100.mem_bytes_per_s,
        NET.scaleup_bytes_per_s,
        NET.scaleout_bytes_per_s,
    )
    vg = jax.jit(jax.value_and_grad(t_of, argnums=(0, 1, 2, 3)))
    f = lambda *a: vg(*a)[0]  # noqa: E731  (one compilation for values and gradients)
    grads = vg(*args)[1]
    bf16 = 1
    checks = [(0, bf16), (1, 1), (2, None), (3, None)]
    for arg, idx in checks:
        x = args[arg]
        h = (x[idx] if idx is not None else x) * 1e-5
        e = jnp.zeros_like(x).at[idx].set(1.0) if idx is not None else 1.0
        xs_p = list(args)
        xs_m = list(args)
        xs_p[arg] = x + h * e
        xs_m[arg] = x - h * e
        fd = (float(f(*xs_p)) - float(f(*xs_m))) / (2 * float(h))
        g = grads[arg][idx] if idx is not None else grads[arg]
        assert float(g) == pytest.approx(fd, rel=1e-4, abs=1e-30)
        assert float(g) <= 0.0  # more of anything never slows a step
    assert float(grads[0][bf16]) < 0  # compute matters


# ---------------------------------------------------------------------------- published


@pytest.mark.parametrize("case", tr.PUBLISHED_RUNS, ids=lambda c: c["key"])
def test_published_runs_within_20_percent(case):
    r = tr.published_run_prediction(case, catalog=CAT, search=False)
    # in the fit since issue 13 (with 168 NeMo rows); the 8k-16k-GPU Llama 3 runs are the
    # worst at +18% (the fit has no at-scale straggler or network-contention term)
    assert abs(r["error_pct"]) <= 20.0, r


# ---------------------------------------------------------------------------- inference


def test_video_inference_on_ai4_fits_and_scales():
    rate1, info = tr.inference_throughput("video-driving", "ai4", 1, details=True)
    assert info["tp"] == 1 and info["memory_per_chip_bytes"] < info["memory_capacity_bytes"]
    assert 0.5 < rate1 < 100  # samples/s of one AI4 SoC for a 1.5e13-op sample
    rate4 = tr.inference_throughput("video-driving", "ai4", 4)
    assert rate4 == pytest.approx(4 * rate1, rel=1e-9)


def test_decode_is_memory_bound():
    w = wl.get_workload("llama3-8b")
    base = tr.inference_throughput(w, "h100", 1, precision="bf16", mode="decode", context=2048)
    fast_hbm = H100.replace(mem_bytes_per_s=H100.mem_bytes_per_s * 2)
    fast_flops = H100.replace(peak_flops_per_s=H100.peak_flops_per_s * 2)
    r_hbm = tr.inference_throughput(
        w, "h100", 1, precision="bf16", mode="decode", context=2048, chip=fast_hbm
    )
    r_flops = tr.inference_throughput(
        w, "h100", 1, precision="bf16", mode="decode", context=2048, chip=fast_flops
    )
    assert r_hbm > 1.5 * base
    assert r_flops < 1.2 * base
    with pytest.raises(ValueError, match="decode"):
        tr.inference_throughput("video-driving", "ai4", 1, mode="decode")


# ---------------------------------------------------------------------------- CLI


def test_cli_train_json_and_errors(capsys, best8b):
    from perfmodel.cli import main

    assert (
        main(["train", "--workload", "llama3-8b", "--chip", "h100", "--chips", "64", "--json"]) == 0
    )
    d = json.loads(capsys.readouterr().out)
    for k in (
        "step_time_s",
        "tokens_per_s",
        "mfu",
        "memory_per_device_bytes",
        "layout",
        "breakdown",
        "layouts_evaluated",
        "search_time_s",
    ):
        assert k in d
    assert d["tokens_per_s"] == pytest.approx(best8b.tokens_per_s, rel=1e-9)

    assert (
        main(
            [
                "train",
                "--workload",
                "llama3-8b",
                "--chip",
                "h100",
                "--chips",
                "64",
                "--layout",
                "tp=8,pp=2,mb=1,sp=1,recompute=selective",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "tp=8 pp=2 dp=4" in out and "MFU" in out and "bubble" in out

    assert (
        main(
            [
                "train",
                "--workload",
                "llama3-8b",
                "--chip",
                "h100",
                "--chips",
                "64",
                "--layout",
                "tp=8,pp=2,dp=2",
            ]
        )
        == 2
    )
    assert "must equal the number of chips 64" in capsys.readouterr().err
    assert (
        main(
            [
                "train",
                "--workload",
                "llama3-8b",
                "--chip",
                "h100",
                "--chips",
                "64",
                "--layout",
                "tp=8,pp=2,foo=1",
            ]
        )
        == 2
    )
    assert "unknown" in capsys.readouterr().err


def test_cli_custom_workload_flags_file_and_inference(capsys, tmp_path):
    from perfmodel.cli import main

    assert (
        main(
            [
                "train",
                "--chip",
                "h100",
                "--chips",
                "16",
                "--layers",
                "8",
                "--hidden",
                "1024",
                "--heads",
                "16",
                "--ffn",
                "4096",
                "--seq",
                "2048",
                "--vocab",
                "32000",
                "--layout",
                "tp=2,pp=2,mb=1",
                "--json",
            ]
        )
        == 0
    )
    d = json.loads(capsys.readouterr().out)
    assert d["layout"]["dp"] == 4 and d["workload"] == "custom" and d["fits"]
    f = tmp_path / "w.toml"
    f.write_text("layers = 8\nhidden = 1024\nheads = 16\nseq = 2048\nvocab = 32000\n")
    assert (
        main(
            [
                "train",
                "--workload-file",
                str(f),
                "--chip",
                "h100",
                "--chips",
                "16",
                "--layout",
                "tp=2,pp=2,mb=1",
                "--json",
            ]
        )
        == 0
    )
    d2 = json.loads(capsys.readouterr().out)
    assert d2["workload"] == "w"
    assert d2["step_time_s"] == pytest.approx(d["step_time_s"], rel=1e-12)  # ffn = 4 x hidden
    assert (
        main(
            [
                "train",
                "--workload",
                "video-driving",
                "--chip",
                "ai4",
                "--chips",
                "2",
                "--inference",
                "forward",
            ]
        )
        == 0
    )
    assert "samples/s" in capsys.readouterr().out
    assert main(["train", "--chip", "h100", "--chips", "16", "--layers", "8"]) == 2
    assert "missing required field" in capsys.readouterr().err
