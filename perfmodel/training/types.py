"""Training pytrees: the parallel layout, the efficiency assumptions and the step result."""

from __future__ import annotations

import dataclasses
import functools
import tomllib
from pathlib import Path
from typing import Any

import jax.numpy as jnp

from perfmodel import roofline as rf
from perfmodel.hardware import struct

RECOMPUTE = ("none", "selective", "full", "block")
LAYOUT_FIELDS = (
    "tp",
    "pp",
    "dp",
    "cp",
    "mb",
    "vpp",
    "sp",
    "recompute",
    "zero",
    "ep",
    "recompute_layers",
    "offload_layers",
)
#: Recipe flags of a :class:`Layout` (0 or 1): settings a run's recipe states, not
#: searched. One home for their names: ``make_layout`` and ``--layout`` read this.
RECIPE_FLAGS = ("bf16_states", "full_graph", "bf16_grads")


def _f(x):
    return jnp.asarray(x, dtype=jnp.result_type(float))


# --------------------------------------------------------------------------------------
# Pytrees
# --------------------------------------------------------------------------------------


@struct.dataclass
class Layout:
    """A parallel layout (all float leaves, so layouts stack for ``vmap``).

    tp, pp, dp, cp: tensor, pipeline, data and context parallel sizes (N = tp pp dp cp).
    mb: micro-batch (samples). vpp: virtual pipeline stages per device (1 = plain 1F1B).
    sp: sequence parallel on (1) or off (0). recompute: 0 none, 1 selective, 2 full,
    3 block (full recompute of the fewest whole layers that fit the chip's memory).
    zero: ZeRO stage 0-3 over DP (1 = distributed optimizer, 3 = FSDP).
    ep: expert parallel size (MoE): the routed experts are split over ``ep`` ranks of
    the ``dp x cp`` group (Megatron-Core's expert-model-parallel group; 1 for dense),
    each expert tensor-parallel over tp. An ``ep`` that divides ``tp x dp x cp`` but
    not ``dp x cp`` spans the TP ranks too, with expert tensor parallelism 1
    (Megatron-Core ``--expert-tensor-parallel-size 1``), see :func:`expert_tp`.
    recompute_layers: with ``block`` recompute, the whole layers of each pipeline stage
    that recompute their forward (Megatron-Core ``--recompute-num-layers k``); 0 = the
    fewest that fit the chip's memory (what the search assumes).
    offload_layers: the whole layers of each pipeline stage whose stored activations
    are offloaded to host memory during the forward and brought back for the backward
    (Megatron-Core ``cpu_offloading_num_layers`` with ``cpu_offloading_weights``
    off): they leave device memory, and the copies over the chip's host link
    (``Chip.host_bytes_per_s``) overlap the next layer's compute; 0 = none.
    bf16_states: 0 = Megatron-Core's optimizer layout (fp32 main gradients and fp32
    master weights + Adam moments: 16 byte/param beside the bf16 weights); 1 = bf16
    parameters, gradients and Adam moments (8 byte/param): PyTorch FSDP2 on a bf16
    model, NeMo AutoModel's default (see :func:`perfmodel.training.memory.memory_per_device`).
    Not a searched field: it is the framework's recipe, not a layout choice.
    full_graph: 1 = the whole iteration is one captured CUDA graph (Megatron-Bridge
    ``cuda_graph_impl="full_iteration"``, with its sync-free MoE dispatch): no host
    synchronisation or routing launches per MoE layer (``moe_layer_overhead_s``) and no
    per-expert launch gaps (:func:`perfmodel.training.step.moe_launch_s`); the per-kernel
    GPU overhead stays. A recipe flag like ``bf16_states``, not searched.
    bf16_grads: 1 = the main-gradient buffer and the data-parallel gradient reduction
    are bf16 (Megatron-Core ``DistributedDataParallelConfig.grad_reduce_in_fp32 =
    False``): 2 byte/param of gradients instead of 4, and half the bytes in the DP
    reduce-scatter / all-reduce; the fp32 master copy and Adam moments stay. NVIDIA's
    Megatron-Bridge performance recipes set it for every LLM, the NeMo 2.0 ones for
    FP8 (see :func:`perfmodel.training.runs.bf16_grads_of`). A recipe flag, not searched.
    """

    tp: jnp.ndarray
    pp: jnp.ndarray
    dp: jnp.ndarray
    cp: jnp.ndarray
    mb: jnp.ndarray
    vpp: jnp.ndarray
    sp: jnp.ndarray
    recompute: jnp.ndarray
    zero: jnp.ndarray
    ep: jnp.ndarray | float = 1.0
    recompute_layers: jnp.ndarray | float = 0.0
    offload_layers: jnp.ndarray | float = 0.0
    # static (part of the tree structure, not a leaf): searched layouts stack without it
    # (typed Any: callers build layouts from columns of arrays by field name; the value
    # is a Python 0.0 or 1.0, checked by make_layout)
    bf16_states: Any = struct.field(pytree_node=False, default=0.0)
    full_graph: Any = struct.field(pytree_node=False, default=0.0)
    bf16_grads: Any = struct.field(pytree_node=False, default=0.0)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {k: int(round(float(getattr(self, k)))) for k in LAYOUT_FIELDS}
        d["recompute"] = RECOMPUTE[d["recompute"]]
        d["sp"] = bool(d["sp"])
        if d["recompute"] not in ("full", "block"):
            del d["recompute_layers"]
        if not d["offload_layers"]:
            del d["offload_layers"]
        for k in RECIPE_FLAGS:
            if float(getattr(self, k)) > 0.5:
                d[k] = True
        return d


def expert_tp(lay: Layout):
    """Expert tensor-parallel size: ``tp`` when ``ep`` divides ``dp x cp`` (experts
    sliced like the dense layers), else 1 (the expert-parallel group spans the TP
    ranks and each expert is whole on its rank)."""
    return jnp.where(jnp.abs(jnp.mod(lay.dp * lay.cp, lay.ep)) < 1e-9, lay.tp, 1.0)


def expert_dp(lay: Layout):
    """Expert-data-parallel group size (at least 1): the ranks holding the same experts,
    ``tp dp cp / (etp ep)`` (``dp cp / ep`` when the experts are sliced over tp)."""
    return jnp.maximum(lay.tp * lay.dp * lay.cp / (expert_tp(lay) * lay.ep), 1.0)


def _check_layout_int(name: str, v: Any, lo: int, hi: int) -> None:
    """ValueError naming the layout field unless ``v`` is an integer in ``[lo, hi]``."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != int(v) or not lo <= v <= hi:
        raise ValueError(f"layout field '{name}' = {v!r} must be an integer >= {lo}")


def make_layout(
    tp: int = 1,
    pp: int = 1,
    dp: int = 1,
    cp: int = 1,
    mb: int = 1,
    vpp: int = 1,
    sp: bool | int = False,
    recompute: str | int = "none",
    zero: int = 1,
    ep: int = 1,
    recompute_layers: int = 0,
    bf16_states: bool | int = False,
    offload_layers: int = 0,
    full_graph: bool | int = False,
    bf16_grads: bool | int = False,
) -> Layout:
    """Validate and build a :class:`Layout` (ValueError naming the field and range)."""
    vals = dict(tp=tp, pp=pp, dp=dp, cp=cp, mb=mb, vpp=vpp, ep=ep)
    for k, v in vals.items():
        _check_layout_int(k, v, 1, 10**7)
    _check_layout_int("recompute_layers", recompute_layers, 0, 10**5)
    _check_layout_int("offload_layers", offload_layers, 0, 10**5)
    if isinstance(recompute, str):
        if recompute not in RECOMPUTE:
            raise ValueError(f"layout field 'recompute' = {recompute!r} must be one of {RECOMPUTE}")
        recompute = RECOMPUTE.index(recompute)
    if recompute not in (0, 1, 2, 3):
        raise ValueError(f"layout field 'recompute' = {recompute!r} must be 0, 1, 2 or 3")
    if zero not in (0, 1, 2, 3):
        raise ValueError(f"layout field 'zero' = {zero!r} must be 0, 1, 2 or 3")
    if sp not in (0, 1, True, False):
        raise ValueError(f"layout field 'sp' = {sp!r} must be 0 or 1")
    flags = dict(bf16_states=bf16_states, full_graph=full_graph, bf16_grads=bf16_grads)
    assert tuple(flags) == RECIPE_FLAGS
    for k, v in flags.items():
        if v not in (0, 1, True, False):
            raise ValueError(f"layout field '{k}' = {v!r} must be 0 or 1")
    if (tp * dp * cp) % ep:
        raise ValueError(
            f"layout field 'ep' = {ep} must divide dp x cp = {dp * cp} (experts split over "
            f"the data-parallel ranks) or tp x dp x cp = {tp * dp * cp} (expert tensor "
            "parallelism 1)"
        )
    if vpp > 1 and pp == 1:
        raise ValueError(f"layout field 'vpp' = {vpp} needs pp > 1")
    if recompute_layers and recompute != 3:
        raise ValueError(
            f"layout field 'recompute_layers' = {recompute_layers} needs recompute = block "
            "(full recomputes every layer; none and selective none)"
        )
    return Layout(
        **{k: _f(v) for k, v in vals.items()},
        recompute_layers=_f(recompute_layers),
        offload_layers=_f(offload_layers),
        bf16_states=float(int(bf16_states)),
        full_graph=float(int(full_graph)),
        bf16_grads=float(int(bf16_grads)),
        sp=_f(int(sp)),
        recompute=_f(recompute),
        zero=_f(zero),
    )


@struct.dataclass
class TrainEfficiency:
    """The ONE set of efficiency assumptions used for every prediction.

    Attributes:
      roofline: per-op-kind compute fractions of dense peak, memory fractions and a
        per-op overhead (s), see :class:`perfmodel.roofline.Efficiency`.
      fp8_matmul: FP8 GEMMs reach this fraction of the BF16 GEMM efficiency
        (cuBLAS/TE FP8 GEMMs run at ~70% of FP8 peak vs ~80% of BF16 peak on H100).
      tp_overlap, cp_overlap, pp_overlap: fraction of TP / CP / PP communication
        hidden under compute.
      dp_tail: fraction of each DP collective that stays exposed however long the
        overlap window (the last gradient bucket).
      mem_usable: fraction of DRAM usable for the model state (the rest: CUDA context,
        communication buffers, allocator fragmentation).
      grad_comm_bytes: bytes per gradient element in the DP reduction (fp32).
      step_overhead_s: fixed time per optimizer step (s).
      fp4_matmul: FP4 (NVFP4/MXFP4) GEMMs reach this fraction of the BF16 GEMM
        efficiency, of the FP4 peak.
      ep_overlap: fraction of the MoE all-to-all (dispatch and combine) hidden.
      moe_gemm: the routed experts' grouped GEMMs reach this fraction of the dense
        GEMM efficiency.
      moe_pad_tokens: tokens of padding each local expert's GEMM effectively pays
        (tile quantisation of the M dimension and group imbalance of a grouped GEMM): a
        routed GEMM over ``n`` tokens per expert runs at ``n / (n + moe_pad_tokens)``
        of its efficiency, so small micro-batches and few tokens per expert cost more.
      moe_layer_overhead_s: fixed time of one MoE layer's forward per micro-batch (the
        backward counts twice) beyond its ops: the host synchronisation that sizes the
        token all-to-all (Megatron's alltoall dispatcher copies the per-expert counts
        to the host every layer) and the launches of the routing kernels (top-k,
        permutation, histogram), s.
      quant_passes: memory passes over each GEMM input per step that FP8/FP4 recipes add
        (amax, cast, transposed copy for the backward GEMMs), in units of one
        read-bf16-write-8-bit pass.
      tensor_j_per_flop: energy of one BF16 tensor FLOP (J; an FP8 FLOP costs half, so
        a chip's power at full tensor rate is ``bf16 peak x this`` at any precision).
        Where that exceeds the chip's TDP the clock drops and every tensor-core op
        (GEMM, attention) slows by ``TDP / (bf16 peak x this)``: the sustained-power
        limit under full tensor load. 0 = no limit.
    """

    roofline: rf.Efficiency
    fp8_matmul: jnp.ndarray
    tp_overlap: jnp.ndarray
    cp_overlap: jnp.ndarray
    pp_overlap: jnp.ndarray
    dp_tail: jnp.ndarray
    mem_usable: jnp.ndarray
    grad_comm_bytes: jnp.ndarray
    step_overhead_s: jnp.ndarray
    fp4_matmul: jnp.ndarray | float = 1.0
    ep_overlap: jnp.ndarray | float = 0.0
    moe_gemm: jnp.ndarray | float = 1.0
    quant_passes: jnp.ndarray | float = 0.0
    tensor_j_per_flop: jnp.ndarray | float = 0.0
    moe_pad_tokens: jnp.ndarray | float = 0.0
    moe_layer_overhead_s: jnp.ndarray | float = 0.0


#: The fitted efficiency parameters (``benchmarks/published_runs.py --fit`` writes it).
FIT_FILE = Path(__file__).resolve().parent.parent / "data" / "training_fit.toml"


def default_efficiency() -> TrainEfficiency:
    """The ONE set of efficiency parameters used for every prediction: the least-squares
    fit to the published runs stored in :data:`FIT_FILE` (with its date and the data it
    came from). A missing or malformed file is an error, never a silent fallback."""
    return _load_fit(str(FIT_FILE))


@functools.lru_cache(maxsize=4)
def fit_data(path: str | None = None) -> dict:
    """The fit file as a mapping (parameters, meta, cross-validated error bands)."""
    p = Path(path) if path else FIT_FILE
    if not p.is_file():
        raise FileNotFoundError(
            f"fitted training parameters {p} are missing; run benchmarks/published_runs.py --fit"
        )
    with p.open("rb") as fh:
        return tomllib.load(fh)


@functools.lru_cache(maxsize=4)
def _load_fit(path: str) -> TrainEfficiency:
    return efficiency_from_params(fit_data(path)["params"])


#: Fitted parameters and where each lives in :class:`TrainEfficiency`.
FIT_PARAMS = (
    "matmul",
    "attention",
    "op_overhead_s",
    "fp8_matmul",
    "fp4_matmul",
    "moe_gemm",
    "moe_pad_tokens",
    "moe_layer_overhead_s",
    "quant_passes",
    "tp_overlap",
    "cp_overlap",
    "ep_overlap",
    "pp_overlap",
    "dp_tail",
    "dram",
    "tensor_j_per_flop",
)


def efficiency_params(te: TrainEfficiency) -> dict[str, float]:
    """The fitted parameters of ``te`` as a flat mapping (see :data:`FIT_PARAMS`)."""
    r = te.roofline
    return dict(
        matmul=float(r.compute[0]),
        attention=float(r.compute[1]),
        op_overhead_s=float(r.overhead_s),
        fp8_matmul=float(te.fp8_matmul),
        fp4_matmul=float(te.fp4_matmul),
        moe_gemm=float(te.moe_gemm),
        moe_pad_tokens=float(te.moe_pad_tokens),
        moe_layer_overhead_s=float(te.moe_layer_overhead_s),
        quant_passes=float(te.quant_passes),
        tp_overlap=float(te.tp_overlap),
        cp_overlap=float(te.cp_overlap),
        ep_overlap=float(te.ep_overlap),
        pp_overlap=float(te.pp_overlap),
        dp_tail=float(te.dp_tail),
        dram=float(r.memory[1]),
        tensor_j_per_flop=float(te.tensor_j_per_flop),
    )


def efficiency_from_params(p) -> TrainEfficiency:
    """Build a :class:`TrainEfficiency` from the fitted parameters (a mapping or a dict
    of traced scalars; jit/grad-friendly)."""
    base = prior_efficiency()
    g = lambda k: jnp.asarray(p[k], dtype=jnp.result_type(float))  # noqa: E731
    r = base.roofline
    comp = r.compute.at[0].set(g("matmul")).at[4].set(g("matmul")).at[1].set(g("attention"))
    mem = r.memory.at[1].set(g("dram"))
    return dataclasses.replace(
        base,
        roofline=rf.Efficiency(comp, mem, g("op_overhead_s")),
        fp8_matmul=g("fp8_matmul"),
        fp4_matmul=g("fp4_matmul"),
        moe_gemm=g("moe_gemm"),
        moe_pad_tokens=g("moe_pad_tokens"),
        moe_layer_overhead_s=g("moe_layer_overhead_s"),
        quant_passes=g("quant_passes"),
        tp_overlap=g("tp_overlap"),
        cp_overlap=g("cp_overlap"),
        ep_overlap=g("ep_overlap"),
        pp_overlap=g("pp_overlap"),
        dp_tail=g("dp_tail"),
        tensor_j_per_flop=g("tensor_j_per_flop")
        if "tensor_j_per_flop" in p
        else base.tensor_j_per_flop,
    )


def prior_efficiency() -> TrainEfficiency:
    """The documented starting point of the fit (the assumptions used before the
    published-run fit existed):

    * matmul (and conv) 0.60 of dense peak: sustained GEMMs in real training, with the
      TP-sliced shapes and the clock drop of a 700 W H100 under full tensor load
      (~600 of 989 BF16 TFLOP/s); FP8 GEMMs reach the same fraction of FP8 peak
      (``fp8_matmul = 1.0``);
    * attention 0.50 (FlashAttention forward + backward on H100);
    * elementwise and norms 1.0 of compute (they are memory-bound anyway); 0.90 of SRAM
      and 0.85 of DRAM bandwidth; 3 us per op (launch and tail);
    * half of the TP communication hidden (``tp_overlap = 0.5``: Megatron/TE
      ``--tp-comm-overlap``), half of CP, no PP overlap, 10% DP tail;
    * 95% of DRAM usable; fp32 gradient reduction; no fixed per-step overhead;
    * routed-expert GEMMs pad each expert's tokens by one 128-row tile; 100 us of
      host synchronisation and routing launches per MoE layer forward.
    """
    return TrainEfficiency(
        roofline=rf.Efficiency(_f([0.60, 0.50, 1.0, 1.0, 0.60]), _f([0.90, 0.85]), _f(3e-6)),
        fp8_matmul=_f(1.0),
        tp_overlap=_f(0.5),
        cp_overlap=_f(0.5),
        pp_overlap=_f(0.0),
        dp_tail=_f(0.1),
        mem_usable=_f(0.95),
        grad_comm_bytes=_f(4.0),
        step_overhead_s=_f(0.0),
        fp4_matmul=_f(1.0),
        ep_overlap=_f(0.0),
        moe_gemm=_f(1.0),
        quant_passes=_f(0.0),
        tensor_j_per_flop=_f(0.5e-12),
        moe_pad_tokens=_f(128.0),
        moe_layer_overhead_s=_f(100e-6),
    )


@struct.dataclass
class StepResult:
    """Everything :func:`step_time` computes for one layout (seconds, bytes, ratios)."""

    step_time_s: jnp.ndarray
    units_per_s: jnp.ndarray
    mfu: jnp.ndarray
    compute_s: jnp.ndarray
    recompute_s: jnp.ndarray
    offload_s: jnp.ndarray
    bubble_s: jnp.ndarray
    tp_comm_s: jnp.ndarray
    cp_comm_s: jnp.ndarray
    ep_comm_s: jnp.ndarray
    pp_comm_s: jnp.ndarray
    dp_comm_s: jnp.ndarray
    optimizer_s: jnp.ndarray
    overhead_s: jnp.ndarray
    memory_bytes: jnp.ndarray
    weights_bytes: jnp.ndarray
    grads_bytes: jnp.ndarray
    optimizer_bytes: jnp.ndarray
    activations_bytes: jnp.ndarray
    capacity_bytes: jnp.ndarray
    fits: jnp.ndarray
    recompute_share: jnp.ndarray
    valid: jnp.ndarray
