"""Published training runs and the model's prediction of each."""

from __future__ import annotations

from typing import Any

from perfmodel import workloads as wl
from perfmodel.hardware import load_catalog
from perfmodel.training.search import best_layout
from perfmodel.training.step import _jit_step, get_network
from perfmodel.training.types import TrainEfficiency, _f, default_efficiency, make_layout
from perfmodel.workloads import Workload

# --------------------------------------------------------------------------------------
# Published runs (the `calibration` tables of ../shared/reference/hardware.toml)
# --------------------------------------------------------------------------------------


def published_flops_per_token(w: Workload, convention: str):
    """FLOP per token as a publication counted it, to turn its TFLOP/s into tokens/s.

    ``"6n_full_attn"``: ``3 (2 N_mm + 4 L s d)``, attention without the causal halving
    (MLPerf's GPT-3 model FLOPs, Megatron-LM's ``num_floating_point_operations``,
    PaLM-style MFU). ``"megatron_recompute"``: Narayanan et al. 2021's
    ``96 B s l h^2 (1 + s/(6h) + V/(16 l h))`` per ``B s`` tokens, i.e. the layers' forward
    counted 4 times (full recomputation) and the head 3 times.
    """
    d, L, s = w.hidden, w.layers, w.seq
    layers_fwd = 2.0 * (wl.matmul_params(w) - wl.head_params(w) - w.patch_dim * d) + 4.0 * L * s * d
    head_fwd = 2.0 * wl.head_params(w)
    if convention == "6n_full_attn":
        return 3.0 * (layers_fwd + head_fwd)
    if convention == "megatron_recompute":
        return 4.0 * layers_fwd + 3.0 * head_fwd
    raise ValueError(f"convention {convention!r} must be '6n_full_attn' or 'megatron_recompute'")


#: Published training runs, with the layouts they used (or our stated assumption where
#: the publication does not give one: ``assumed``). ``tflops_per_gpu`` is the published
#: figure in the publication's own FLOP convention.
PUBLISHED_RUNS: tuple[dict[str, Any], ...] = (
    dict(
        key="mlperf-gpt3-256",
        workload="gpt3-175b-mlperf",
        chip="h100_sxm",
        n=256,
        tflops_per_gpu=960.0,
        convention="6n_full_attn",
        layout=dict(tp=4, pp=8, dp=8, mb=2, vpp=6, sp=1, recompute="none", zero=1),
        assumed="sp on, no recompute, distributed optimizer (ZeRO-1)",
        source="MLPerf Training v4.1, NVIDIA eos_n32 gpt3 (steady state)",
    ),
    dict(
        key="mlperf-gpt3-512",
        workload="gpt3-175b-mlperf",
        chip="h100_sxm",
        n=512,
        tflops_per_gpu=929.0,
        convention="6n_full_attn",
        layout=dict(tp=4, pp=8, dp=16, mb=2, vpp=6, sp=1, recompute="none", zero=1),
        assumed="same TP4 PP8 VPP6 MBS2 as the 256-GPU run (layout not in the table)",
        source="MLPerf Training v4.1, NVIDIA eos_n64 gpt3 (steady state)",
    ),
    dict(
        key="llama3-405b-8k",
        workload="llama3-405b",
        chip="h100_sxm",
        n=8192,
        tflops_per_gpu=430.0,
        convention="6n_full_attn",
        layout=dict(tp=8, pp=16, dp=64, mb=1, vpp=8, sp=1, recompute="selective", zero=1),
        assumed="MBS 1, VPP 8 (~1 layer per virtual stage), SP on, ZeRO-1, selective "
        "recompute (126 layers x 0.54 GB of activations cannot fit without it)",
        source="Llama 3 paper arXiv:2407.21783 Table 4",
    ),
    dict(
        key="llama3-405b-16k",
        workload="llama3-405b",
        chip="h100_sxm",
        n=16384,
        tflops_per_gpu=400.0,
        convention="6n_full_attn",
        layout=dict(tp=8, pp=16, dp=128, mb=1, vpp=8, sp=1, recompute="selective", zero=1),
        assumed="MBS 1, VPP 8, SP on, ZeRO-1, selective recompute",
        source="Llama 3 paper arXiv:2407.21783 Table 4",
    ),
    dict(
        key="megatron-gpt3-96",
        workload="gpt3-175b-megatron",
        chip="h100_sxm",
        n=96,
        tflops_per_gpu=0.47 * 989.4,
        convention="6n_full_attn",
        layout=dict(tp=8, pp=12, dp=1, mb=1, vpp=4, sp=1, recompute="none", zero=1),
        assumed="README gives no layout: TP8 (Megatron's GPT-3 175B example script), PP12 "
        "(one pipeline on 96 GPUs), VPP4 (2 layers per virtual stage), MBS1, SP, ZeRO-1",
        source="Megatron-LM README, strong scaling (47% MFU)",
    ),
    dict(
        key="megatron-gpt3-4608",
        workload="gpt3-175b-megatron",
        chip="h100_sxm",
        n=4608,
        tflops_per_gpu=0.42 * 989.4,
        convention="6n_full_attn",
        layout=dict(tp=8, pp=12, dp=48, mb=1, vpp=4, sp=1, recompute="none", zero=1),
        assumed="as at 96 GPUs with DP48 (24 micro-batches per pipeline)",
        source="Megatron-LM README, strong scaling (42% MFU)",
    ),
    dict(
        key="megatron-1t-3072",
        workload="megatron-1t",
        chip="a100_80gb",
        n=3072,
        tflops_per_gpu=163.0,
        convention="megatron_recompute",
        layout=dict(tp=8, pp=64, dp=6, mb=1, vpp=2, sp=0, recompute="full", zero=0),
        assumed="MBS 1, interleaved VPP 2 (1 layer per virtual stage), full recompute, no SP/ZeRO (2021)",
        features=dict(recompute=("none", "full"), sp=(0,), zero=(0,), max_cp=1),
        source="Narayanan et al. SC'21 arXiv:2104.04473 Table 1 (163 TFLOP/s, 52%)",
    ),
)


def published_run_prediction(
    case: dict[str, Any], *, eff: TrainEfficiency | None = None, catalog=None, search: bool = True
) -> dict[str, Any]:
    """Predict one :data:`PUBLISHED_RUNS` case with its published layout (and, if
    ``search``, with the model's own best layout). Per-GPU figures are in the
    publication's FLOP convention. The published layout is timed even if the memory
    model says it does not fit (``fits`` reports that)."""
    cat = catalog or load_catalog()
    w = wl.get_workload(case["workload"])
    chip = cat.chip(case["chip"])
    net = get_network(case["chip"], cat)
    lay = make_layout(**case["layout"])
    r = _jit_step(w, chip, net, lay, _f(case["n"]), eff or default_efficiency())
    conv = float(published_flops_per_token(w, case["convention"]))
    n = case["n"]
    pred_tflops = float(r.units_per_s) / n * conv / 1e12
    out = dict(
        key=case["key"],
        n=n,
        published_tflops=case["tflops_per_gpu"],
        predicted_tflops=pred_tflops,
        error_pct=100.0 * (pred_tflops / case["tflops_per_gpu"] - 1.0),
        mfu=float(r.mfu),
        fits=bool(r.fits),
        memory_gb=float(r.memory_bytes) / 1e9,
        step_time_s=float(r.step_time_s),
    )
    if search:
        best = best_layout(w, case["chip"], n, catalog=cat, eff=eff, **case.get("features", {}))
        out["best_tflops"] = best.tokens_per_s / n * conv / 1e12
        out["best_error_pct"] = 100.0 * (out["best_tflops"] / case["tflops_per_gpu"] - 1.0)
        out["best_layout"] = best.layout
    return out
