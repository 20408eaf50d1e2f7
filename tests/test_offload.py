"""Activation offloading to host memory (``Layout.offload_layers``): memory by hand,
the exposed copy time, the host-link field, the recipes the published rows ran with,
and the command line."""

import json
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import perfmodel  # noqa: F401  (x64)
from perfmodel import training as tr
from perfmodel import workloads as wl
from perfmodel.hardware import load_catalog
from perfmodel.training import runs as R

CAT = load_catalog()
GB200 = CAT.chip("gb200").replace(name="")
NET = tr.get_network("gb200", CAT)
W70 = wl.get_workload("llama3-70b").replace(name="")
FSDP = dict(tp=1, pp=1, dp=64, mb=2, zero=3)


def _lay(**kw):
    return tr.make_layout(**{**FSDP, **kw})


@given(k=st.integers(0, 80))
@settings(max_examples=12, deadline=None)
def test_offloaded_layers_leave_device_memory(k):
    """k offloaded layers of 80 take k layers' stored activations off the device, and
    one layer's are in transit while any are offloaded (computed by hand from the
    per-layer figure)."""
    a = lambda lay: float(tr.memory_per_device(W70, lay)[3])  # noqa: E731
    per_layer = float(tr.activation_bytes_per_layer(W70, _lay())[0])
    expect = a(_lay()) - k * per_layer + (per_layer if k else 0.0)
    assert a(_lay(offload_layers=k)) == pytest.approx(expect, rel=1e-12)
    # weights, gradients and optimizer state do not move
    m0, mk = tr.memory_per_device(W70, _lay()), tr.memory_per_device(W70, _lay(offload_layers=k))
    assert [float(x) for x in m0[:3]] == [float(x) for x in mk[:3]]


def _step(lay, chip=GB200):
    return tr._jit_step(W70, chip, NET, lay, 64, tr.default_efficiency())


def test_offload_copies_hide_behind_compute_on_a_fast_link():
    """At NVLink-C2C rate a 70B layer's copy (3.8 GB at 225 GB/s, 17 ms) is shorter than
    the next layer's forward, so nothing is exposed. On a link so slow that each copy
    outlasts two forwards, each offloaded layer exposes (copy - forward) + (copy - 2
    forwards) per micro-batch, so two such links differ by exactly
    2 x micro-batches x layers x (copy_1 - copy_2)."""
    r0, r40 = _step(_lay()), _step(_lay(offload_layers=40))
    assert float(r40.offload_s) == 0.0
    assert float(r40.step_time_s) == pytest.approx(float(r0.step_time_s), rel=1e-12)
    nbytes = float(tr.activation_bytes_per_layer(W70, _lay())[0])
    base = float(GB200.host_bytes_per_s)
    slow = [GB200.replace_fields(host_bytes_per_s=base / f) for f in (50, 100)]
    r1, r2 = (_step(_lay(offload_layers=40), c) for c in slow)
    m = float(W70.global_batch) / (64 * 2)
    copy1, copy2 = (nbytes / float(c.host_bytes_per_s) for c in slow)
    assert float(r2.offload_s) - float(r1.offload_s) == pytest.approx(
        2 * m * 40 * (copy2 - copy1), rel=1e-9
    )
    assert float(r1.step_time_s) - float(r0.step_time_s) == pytest.approx(
        float(r1.offload_s), rel=1e-9
    )


@given(scale=st.floats(0.01, 100.0))
@settings(max_examples=10, deadline=None)
def test_offload_time_falls_with_host_bandwidth(scale):
    lay = _lay(offload_layers=40)
    base = float(GB200.host_bytes_per_s)
    lo = GB200.replace_fields(host_bytes_per_s=base * scale / 10)
    hi = GB200.replace_fields(host_bytes_per_s=base * scale)
    assert float(_step(lay, hi).offload_s) <= float(_step(lay, lo).offload_s)
    assert float(_step(lay, hi).offload_s) >= 0.0


def test_offload_without_host_link_is_invalid_and_refused():
    none = GB200.replace_fields(host_bytes_per_s=0.0)
    assert not bool(_step(_lay(offload_layers=4), none).valid)
    assert bool(_step(_lay(), none).valid)
    with pytest.raises(ValueError, match="'offload_layers' = 81 must be in \\[0, 80\\]"):
        tr.evaluate_layout("llama3-70b", "gb200", 64, {**FSDP, "offload_layers": 81})
    with pytest.raises(ValueError, match="'offload_layers' = -1 must be an integer >= 0"):
        _lay(offload_layers=-1)
    with pytest.raises(ValueError, match="needs a host link; chip d1"):
        tr.evaluate_layout(
            "llama3-8b",
            "d1",
            8,
            dict(tp=1, pp=1, dp=8, offload_layers=2),
            require_fit=False,
        )


def test_host_link_figures_are_sourced():
    """Grace superchips list NVLink-C2C, HGX boards PCIe (Gen5 x16: 63 GB/s; A100 Gen4:
    31.5 GB/s), each with a source; a chip with no figure has no host link (0)."""
    for key, expect in (("gb200", 225e9), ("h100", 63e9), ("a100", 31.5e9)):
        assert float(CAT.chip(key).host_bytes_per_s) == expect
        fig = CAT.record(key).figure("host_bytes_per_s_per_dir")
        assert fig is not None and fig.source
    assert float(CAT.chip("d1").host_bytes_per_s) == 0.0


def test_recipe_rows_get_their_offload_and_fit_without_recompute():
    """The GB200 Llama-3 70B FSDP micro-batch-2 rows ran Megatron-Bridge's recipe with 40
    offloaded layers (training_recipes.toml); with it they fit with no recompute. Rows
    of other layouts get no offload."""
    rows = [r for r in R.used_runs() if r.model == "llama3-70b" and r.chip == "gb200"]
    off = [r for r in rows if r.layout.get("offload_layers")]
    assert off and all(r.layout["zero"] == 3 and r.layout["mb"] == 2 for r in off)
    assert all(r.layout["offload_layers"] == 40 and r.recompute == "none" and r.fits for r in off)
    assert all(not r.layout.get("offload_layers") for r in rows if r.layout["mb"] != 2)
    assert R.recipe_settings("llama3-70b", "h100", "fp8", True, 2) == {}


def test_cli_offload_layout_prints_offload_time():
    cmd = [
        sys.executable,
        "-m",
        "perfmodel",
        "train",
        "--workload",
        "llama3-70b",
        "--chip",
        "gb200",
        "--chips",
        "64",
        "--precision",
        "fp8",
        "--global-batch",
        "256",
    ]
    ok = subprocess.run(
        [*cmd, "--layout", "tp=1,pp=1,mb=2,zero=3,offload=40", "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "PERFMODEL_RESULT_CACHE": "0"},
    )
    assert ok.returncode == 0, ok.stderr
    d = json.loads(ok.stdout)
    assert d["layout"]["offload_layers"] == 40 and d["fits"]
    bad = subprocess.run(
        [*cmd, "--layout", "tp=1,pp=1,mb=2,zero=3,offload=99"], capture_output=True, text=True
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "offload_layers" in bad.stderr
    neg = subprocess.run(
        [*cmd, "--layout", "tp=1,pp=1,mb=2,zero=3,offload=-1"], capture_output=True, text=True
    )
    assert neg.returncode == 2 and "offload_layers = -1 must be an integer in [0," in neg.stderr


# ---------------------------------------------------------------- full-iteration graphs


def test_full_graph_removes_exactly_the_host_moe_costs():
    """``full_graph`` (one captured CUDA graph per iteration) drops the per-MoE-layer host
    time and the per-expert launch gaps, nothing else: the compute time falls by
    micro-batches x layers per stage x 3 passes x (MoE share x moe_layer_overhead_s +
    moe_launch_s); a dense model does not move."""
    te = tr.default_efficiency()
    w = wl.get_workload("deepseek-v3").replace(name="").with_precision("fp8")
    net = tr.get_network("gb200", CAT)
    lay = dict(tp=1, pp=4, dp=64, ep=64, vpp=4, mb=1)
    r0 = tr._jit_step(w, GB200, net, tr.make_layout(**lay), 256, te)
    r1 = tr._jit_step(w, GB200, net, tr.make_layout(full_graph=1, **lay), 256, te)
    m = float(w.global_batch) / 64
    lps = float(w.layers) / 4
    fe = float(wl._fractions(w)[3])
    from perfmodel.training.step import moe_launch_s

    host = fe * float(te.moe_layer_overhead_s) + float(moe_launch_s(w, 64.0, te))
    assert float(r0.compute_s) - float(r1.compute_s) == pytest.approx(m * lps * 3 * host, rel=1e-9)
    assert float(r1.ep_comm_s) == pytest.approx(float(r0.ep_comm_s), rel=1e-12)
    d0 = _step(_lay())
    d1 = _step(tr.make_layout(full_graph=1, **FSDP))
    assert float(d1.step_time_s) == float(d0.step_time_s)
    with pytest.raises(ValueError, match="'full_graph' = 2 must be 0 or 1"):
        tr.make_layout(full_graph=2)


def test_full_graph_rows_are_the_26_06_mxfp8_moe_recipes():
    """Only the GB200 MXFP8 DeepSeek-V3, Qwen3-30B-A3B and gpt-oss-120b rows from the
    26.06 container on carry full_graph (Megatron-Bridge 0.5 recipes); their 26.04
    rows, other chips and other recipes do not."""
    flagged = [r for r in R.used_runs() if r.layout.get("full_graph")]
    assert {r.model for r in flagged} == {"deepseek-v3", "qwen3-30b-a3b", "gpt-oss-120b"}
    assert all(r.chip == "gb200" and r.recipe == "mxfp8" for r in flagged)
    assert all(R._release_key(r.release) >= (26, 6, 0) for r in flagged)
    older = [
        r
        for r in R.used_runs()
        if r.model == "deepseek-v3" and r.chip == "gb200" and r.release in ("26.04", "26.04.01")
    ]
    assert older and not any(r.layout.get("full_graph") for r in older)


def test_recipe_file_entries_are_checked():
    """Every shipped recipe passes the check; a bad entry is named with its key."""
    assert R._recipes()
    src = {"s": "a source"}
    good = dict(model="m", gpu="g", full_graph=1, source="s", confidence="derived")
    assert R.check_recipe(good, src) == good
    for bad, match in (
        ({**good, "typo": 1}, "key 'typo' is unknown"),
        ({**good, "source": "nowhere"}, "source 'nowhere' is not in"),
        ({k: v for k, v in good.items() if k != "full_graph"}, "sets none of"),
        ({**good, "confidence": "vendor"}, "must be 'derived'"),
        ({k: v for k, v in good.items() if k != "gpu"}, "key 'gpu' is missing"),
    ):
        with pytest.raises(ValueError, match=match):
            R.check_recipe(bad, src)


def test_block_recompute_offloads_full_layers():
    """Under block recompute the offloaded layers are not the recomputed ones: the layer
    in transit holds its full activations (none's), not the block checkpoint."""
    lay0 = _lay(recompute="block", recompute_layers=10)
    lay = _lay(recompute="block", recompute_layers=10, offload_layers=20)
    per = tr.activation_bytes_per_layer(W70, lay0)
    assert float(per[1]) > float(per[0])  # full set > block's stored checkpoint
    # 20 of 80 offloaded: the 10 recomputed layers are among the 60 left on the device
    a0, a = (float(tr.memory_per_device(W70, x, 1e30)[3]) for x in (lay0, lay))
    assert a == pytest.approx(a0 - 20 * float(per[1]) + float(per[1]), rel=1e-12)
