"""Training-step model: step time, memory and MFU of a workload on N chips, and the
search for the best parallel layout.

The core, :func:`step_time`, is a pure function of pytrees (workload, chip, network,
layout, efficiency assumptions); ``jit``, ``vmap`` and ``grad`` apply to it. The search
(:func:`best_layout`) builds every layout as arrays and evaluates them in ONE
``jit(vmap(step_time))`` call.

Model (per optimizer step; ``t, p, d, c`` tensor/pipeline/data/context parallel sizes,
``b`` micro-batch in samples, ``v`` virtual pipeline stages, ``m = B / (d b)``
micro-batches per pipeline, ``L`` layers):

* compute per layer and micro-batch on one rank: the roofline time
  (:func:`perfmodel.roofline.op_time`) of the layer's forward ops
  (:func:`perfmodel.workloads.layer_ops`); backward = 2 x forward; recomputation adds
  the full forward (``full``) or the attention core + norms + FFN activation
  (``selective``);
* TP: 2 all-reduces of the ``b s/c x d`` activations per layer forward and 2 backward
  (+2 with full recompute); with sequence parallel each is a reduce-scatter +
  all-gather. A fraction ``tp_overlap`` is hidden under compute.
* CP: all-gather of K,V per layer forward (+ all-gather and reduce-scatter backward),
  a fraction ``cp_overlap`` hidden (ring attention overlaps it with the blocks).
* PP: ``2 v`` point-to-point sends of the ``b s/(c t) x d`` activations per
  micro-batch and stage, a fraction ``pp_overlap`` hidden. The output head (and the
  video patch stem) run on the last stage (Megatron's default placement), which is
  therefore the slowest stage.
* micro-batch time ``t_mb`` = ``L/p`` x (compute + exposed TP/CP) + head + exposed PP;
  pipeline time = ``(m + (p-1)/v) t_mb``, so bubble fraction = ``(p-1)/(v m + p-1)``.
* DP (group ``d``, ``min(d, domain/(t c))`` members per scale-up domain, hierarchical):
  ZeRO-0 all-reduce of the gradients, ZeRO-1/2 reduce-scatter of gradients + all-gather
  of the updated weights, ZeRO-3 (FSDP) all-gather of weights forward and backward and
  reduce-scatter of gradients every micro-batch. The gradient reduction is hidden
  under the last micro-batch's backward, the weight all-gather under the next step's
  first forward, except at least ``dp_tail`` of each (the last bucket).
* optimizer: Adam update, memory-bound: 32 byte/parameter of the locally owned shard.
* MFU = model FLOP per step (:func:`perfmodel.workloads.model_flops_per_step`, no
  recompute) / (step time x N x dense peak at the workload precision).

Memory per device (bytes): weights 2/param (4 for fp32/tf32), fp32 gradients 4/param,
Adam fp32 master + 2 moments 12/param, sharded over DP by ZeRO stage 1 (optimizer),
2 (+gradients), 3 (+weights); activations per layer and micro-batch counted tensor by
tensor for flash attention without dropout (norm inputs, matmul inputs - 1 byte each
in FP8 -, Q, K, V, O, FFN intermediates: 32 byte per token x hidden for GPT-3 in BF16,
i.e. Korthikanti et al. 2022's 34 less the dropout masks), divided by ``t`` with
sequence parallel (only the TP-sharded part without); ``min(m, p)`` micro-batches in
flight on the first stage (x ``1 + (p-1)/(p v)`` interleaved); fp32 logits and their
gradient. A layout fits if that is at most ``mem_usable`` x DRAM.

Networks come from :mod:`perfmodel.interconnect` (``network_for``,
``collective_time_s``; ``algorithm="auto"``, or ``"smooth"`` with ``smooth=True``).

Search (:func:`best_layout`, :func:`layout_grid`): tp (powers of two dividing the
heads, within the scale-up domain), cp, pp (divisors), dp (the rest, dividing the global
batch), micro-batch, vpp, sp, recompute, ZeRO stage; ~10^4-10^5 layouts per job, all
evaluated in one compiled call; layouts that do not fit are never reported as best.

Efficiency assumptions: ONE set, :func:`default_efficiency` (matmul 0.60 and
attention 0.50 of dense peak, FP8 GEMMs the same fraction of FP8 peak, half of TP
communication hidden, 95% of DRAM usable), checked against :data:`PUBLISHED_RUNS`
(``benchmarks/published_runs.py``).

Inference (:func:`inference_throughput`): forward passes (samples/s or prefill
tokens/s) or LLM decode (tokens/s; each step reads the weights and the KV cache), on
data-parallel replicas of the best fitting tensor-parallel size and batch.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import time
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from perfmodel import roofline as rf
from perfmodel import workloads as wl
from perfmodel.hardware import PRECISION_INDEX, Chip, load_catalog
from perfmodel.workloads import Workload

RECOMPUTE = ("none", "selective", "full")
LAYOUT_FIELDS = ("tp", "pp", "dp", "cp", "mb", "vpp", "sp", "recompute", "zero")


def _f(x):
    return jnp.asarray(x, dtype=jnp.result_type(float))


# --------------------------------------------------------------------------------------
# Pytrees
# --------------------------------------------------------------------------------------


@flax.struct.dataclass
class Layout:
    """A parallel layout (all float leaves, so layouts stack for ``vmap``).

    tp, pp, dp, cp: tensor, pipeline, data and context parallel sizes (N = tp pp dp cp).
    mb: micro-batch (samples). vpp: virtual pipeline stages per device (1 = plain 1F1B).
    sp: sequence parallel on (1) or off (0). recompute: 0 none, 1 selective, 2 full.
    zero: ZeRO stage 0-3 over DP (1 = distributed optimizer, 3 = FSDP).
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

    def to_dict(self) -> dict[str, Any]:
        d = {k: int(round(float(getattr(self, k)))) for k in LAYOUT_FIELDS}
        d["recompute"] = RECOMPUTE[d["recompute"]]
        d["sp"] = bool(d["sp"])
        return d


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
) -> Layout:
    """Validate and build a :class:`Layout` (ValueError naming the field and range)."""
    vals = dict(tp=tp, pp=pp, dp=dp, cp=cp, mb=mb, vpp=vpp)
    for k, v in vals.items():
        if (
            isinstance(v, bool)
            or not isinstance(v, (int, float))
            or v != int(v)
            or not 1 <= v <= 10**7
        ):
            raise ValueError(f"layout field '{k}' = {v!r} must be an integer >= 1")
    if isinstance(recompute, str):
        if recompute not in RECOMPUTE:
            raise ValueError(f"layout field 'recompute' = {recompute!r} must be one of {RECOMPUTE}")
        recompute = RECOMPUTE.index(recompute)
    if recompute not in (0, 1, 2):
        raise ValueError(f"layout field 'recompute' = {recompute!r} must be 0, 1 or 2")
    if zero not in (0, 1, 2, 3):
        raise ValueError(f"layout field 'zero' = {zero!r} must be 0, 1, 2 or 3")
    if sp not in (0, 1, True, False):
        raise ValueError(f"layout field 'sp' = {sp!r} must be 0 or 1")
    if vpp > 1 and pp == 1:
        raise ValueError(f"layout field 'vpp' = {vpp} needs pp > 1")
    return Layout(
        **{k: _f(v) for k, v in vals.items()},
        sp=_f(int(sp)),
        recompute=_f(recompute),
        zero=_f(zero),
    )


@flax.struct.dataclass
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


def default_efficiency() -> TrainEfficiency:
    """The ONE documented set of assumptions used for every prediction (no per-case
    tuning; checked against the published runs in :data:`PUBLISHED_RUNS`):

    * matmul (and conv) 0.60 of dense peak: sustained GEMMs in real training, with the
      TP-sliced shapes and the clock drop of a 700 W H100 under full tensor load
      (~600 of 989 BF16 TFLOP/s); FP8 GEMMs reach the same fraction of FP8 peak
      (``fp8_matmul = 1.0``);
    * attention 0.50 (FlashAttention forward + backward on H100);
    * elementwise and norms 1.0 of compute (they are memory-bound anyway); 0.90 of SRAM
      and 0.85 of DRAM bandwidth; 3 us per op (launch and tail);
    * half of the TP communication hidden (``tp_overlap = 0.5``: Megatron/TE
      ``--tp-comm-overlap``), half of CP, no PP overlap, 10% DP tail;
    * 95% of DRAM usable; fp32 gradient reduction; no fixed per-step overhead.
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
    )


@flax.struct.dataclass
class StepResult:
    """Everything :func:`step_time` computes for one layout (seconds, bytes, ratios)."""

    step_time_s: jnp.ndarray
    units_per_s: jnp.ndarray
    mfu: jnp.ndarray
    compute_s: jnp.ndarray
    recompute_s: jnp.ndarray
    bubble_s: jnp.ndarray
    tp_comm_s: jnp.ndarray
    cp_comm_s: jnp.ndarray
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
    valid: jnp.ndarray


# --------------------------------------------------------------------------------------
# Network access (perfmodel.interconnect)
# --------------------------------------------------------------------------------------


def get_network(chip_key: str, catalog=None):
    """The :class:`perfmodel.interconnect.Network` a chip of ``chip_key`` sees (its
    default system: NVLink domain + NIC, NVL72, Dojo tile mesh + Z-plane, ...)."""
    from perfmodel.interconnect import network_for

    return network_for(chip_key, catalog)


def _collective(kind, nbytes, group, net, members_per_domain, smooth=False):
    from perfmodel.interconnect import collective_time_s

    t = collective_time_s(
        kind,
        nbytes,
        group,
        net,
        members_per_domain=members_per_domain,
        algorithm="smooth" if smooth else "auto",
    )
    return jnp.where(group > 1, t, 0.0)


# --------------------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------------------


def _weight_bytes(precision: str) -> float:
    return 4.0 if precision in ("fp32", "tf32") else 2.0


def activation_bytes_per_layer(w: Workload, lay: Layout):
    """Stored activations of one layer for one micro-batch on one rank (byte).

    Per token x hidden (flash attention, no dropout; ``r = ffn/hidden``; ``g`` = 2 if
    gated; ``e`` = 1 byte for FP8 matmul inputs, else 2): norm inputs 2+2, QKV input e,
    Q 2, K and V 2 kv/heads each, O 2, FFN-up input e, FFN-up output 2 g r, FFN-down
    input e r. With sequence parallel everything is divided by tp; without, the norm
    inputs and the QKV/FFN-up inputs are replicated. ``selective`` recomputes norms, the
    FFN activation and the attention core, dropping the QKV/FFN-up/FFN-down inputs;
    ``full`` keeps only the layer input (2, divided by tp with SP).
    """
    e = 1.0 if w.precision == "fp8" else 2.0
    r = w.ffn / w.hidden
    g = 2.0 if w.gated_ffn else 1.0
    kvr = w.kv_heads / w.heads
    sbh = lay.mb * w.seq / lay.cp * w.hidden
    t = lay.tp
    sp = lay.sp > 0
    replicated = 4.0 + 2.0 * e  # norm inputs, QKV and FFN-up inputs
    sharded = 2.0 + 4.0 * kvr + 2.0 + 2.0 * g * r + e * r
    none = jnp.where(sp, (replicated + sharded) / t, replicated + sharded / t)
    sel_rep = 4.0
    sel_sh = sharded - e * r
    selective = jnp.where(sp, (sel_rep + sel_sh) / t, sel_rep + sel_sh / t)
    full = jnp.where(sp, 2.0 / t, 2.0)
    per = jnp.where(lay.recompute == 0, none, jnp.where(lay.recompute == 1, selective, full))
    return sbh * per, sbh * none


def memory_per_device(w: Workload, lay: Layout):
    """Per-device memory (byte): ``(weights, grads, optimizer, activations, total)``."""
    t, p, d = lay.tp, lay.pp, lay.dp
    m = w.global_batch / (d * lay.mb)
    stage_params = w.layers / p * wl.layer_params(w) + jnp.where(
        p > 1,
        jnp.maximum(wl.embedding_params(w), wl.head_params(w)),
        wl.embedding_params(w) + wl.head_params(w),
    )
    per_dev = stage_params / t
    weights = per_dev * _weight_bytes(w.precision) / jnp.where(lay.zero >= 3, d, 1.0)
    grads = per_dev * 4.0 / jnp.where(lay.zero >= 2, d, 1.0)
    opt = per_dev * 12.0 / jnp.where(lay.zero >= 1, d, 1.0)
    act_layer, act_full_layer = activation_bytes_per_layer(w, lay)
    inflight = jnp.where(
        p > 1, jnp.minimum(m, p) * jnp.where(lay.vpp > 1, 1.0 + (p - 1.0) / (p * lay.vpp), 1.0), 1.0
    )
    acts = w.layers / p * act_layer * inflight
    acts = acts + jnp.where(lay.recompute == 2, act_full_layer, 0.0)
    tok = lay.mb * w.seq / lay.cp
    logits = tok * w.vocab / t * 4.0 * 2.0
    acts = acts + logits
    return weights, grads, opt, acts, weights + grads + opt + acts


# --------------------------------------------------------------------------------------
# Step time
# --------------------------------------------------------------------------------------


def _ops_time(ops, chip: Chip, eff: rf.Efficiency, smooth: bool):
    return [rf.op_time(o, chip, eff, smooth=smooth).time_s for o in ops]


def _chip_efficiency(w: Workload, te: TrainEfficiency) -> rf.Efficiency:
    eff = te.roofline
    if w.precision == "fp8":
        eff = eff.replace(
            compute=eff.compute.at[rf.OP_KIND_INDEX["matmul"]].multiply(te.fp8_matmul)
        )
    return eff


def _max(a, b, smooth):
    return rf.smooth_max(a, b) if smooth else jnp.maximum(a, b)


def step_time(
    w: Workload,
    chip: Chip,
    net,
    lay: Layout,
    n_chips=None,
    eff: TrainEfficiency | None = None,
    *,
    smooth: bool = False,
) -> StepResult:
    """Time, memory and MFU of one optimizer step of ``w`` on ``chip``s with layout ``lay``.

    Pure and differentiable in every leaf of ``w``, ``chip``, ``net`` and ``eff`` (use
    ``smooth=True`` for gradients through the roofline max). ``n_chips`` defaults to
    ``tp pp dp cp``; a layout whose product differs, whose micro-batches do not divide
    the global batch, or whose tp does not divide the heads is marked ``valid = False``.

    Returns:
      :class:`StepResult`: step time (s), work units/s (tokens or samples), MFU,
      breakdown (s), memory (byte) and ``fits``/``valid`` flags (bool).
    """
    te = default_efficiency() if eff is None else eff
    reff = _chip_efficiency(w, te)
    t, p, d, c, b, v = lay.tp, lay.pp, lay.dp, lay.cp, lay.mb, lay.vpp
    n = t * p * d * c
    n_chips = n if n_chips is None else _f(n_chips)
    m = w.global_batch / (d * b)
    act_b = 4.0 if w.precision in ("fp32", "tf32") else 2.0  # activations exchanged in 16 bit

    # ---- compute per layer (one micro-batch, one rank) ----
    ops = wl.layer_ops(w, b, t, c, lay.sp)
    times = _ops_time(ops, chip, reff, smooth)
    layer_fwd = sum(times)
    # selective: attention core + norms + FFN activation (indices 0, 2, 5, 7)
    sel = times[0] + times[wl.ATTENTION_OP_INDEX] + times[5] + times[7]
    rec = jnp.where(lay.recompute == 2, layer_fwd, jnp.where(lay.recompute == 1, sel, 0.0))
    stem, stem_on = wl.stem_op(w, b, c)
    head_fwd = (
        sum(_ops_time(wl.head_ops(w, b, t, c), chip, reff, smooth))
        + stem_on * rf.op_time(stem, chip, reff, smooth=smooth).time_s
    )

    # ---- TP ----
    domain = net.domain_size
    tok = b * w.seq / c
    act_bytes = tok * w.hidden * act_b
    mpd_tp = jnp.minimum(t, domain)
    coll = functools.partial(_collective, net=net, smooth=smooth)
    ar = coll("all_reduce", act_bytes, t, members_per_domain=mpd_tp)
    rs_ag = coll("reduce_scatter", act_bytes, t, members_per_domain=mpd_tp) + coll(
        "all_gather", act_bytes, t, members_per_domain=mpd_tp
    )
    one_tp = jnp.where(lay.sp > 0, rs_ag, ar)
    n_tp = 4.0 + jnp.where(lay.recompute == 2, 2.0, 0.0)
    tp_layer = (1.0 - te.tp_overlap) * n_tp * one_tp

    # ---- CP ----
    kv_bytes = b * w.seq * 2.0 * w.kv_dim / jnp.minimum(t, w.kv_heads) * act_b
    mpd_cp = jnp.clip(jnp.floor(domain / t), 1.0, c)
    ag_kv = coll("all_gather", kv_bytes, c, members_per_domain=mpd_cp)
    rs_kv = coll("reduce_scatter", kv_bytes, c, members_per_domain=mpd_cp)
    cp_layer = (1.0 - te.cp_overlap) * (
        2.0 * ag_kv + rs_kv + jnp.where(lay.recompute == 2, ag_kv, 0.0)
    )

    # ---- PP ----
    p2p_bytes = act_bytes / t
    cross = t * c * d >= domain
    p2p = coll(
        "send_recv",
        p2p_bytes,
        _f(2.0),
        members_per_domain=jnp.where(cross | (domain < 2), 1.0, 2.0),
    )
    pp_mb = jnp.where(p > 1, (1.0 - te.pp_overlap) * 2.0 * v * p2p, 0.0)

    lps = w.layers / p
    # The head (and patch stem) sit on the last pipeline stage (Megatron's default), so
    # the slowest stage runs L/p layers plus the head.
    compute_mb = lps * 3.0 * layer_fwd + 3.0 * head_fwd
    rec_mb = lps * rec
    comm_mb = lps * (tp_layer + cp_layer)
    t_mb = compute_mb + rec_mb + comm_mb + pp_mb
    n_slots = m + (p - 1.0) / v
    pipeline = n_slots * t_mb
    bubble = (p - 1.0) / v * t_mb

    # ---- DP ----
    stage_params = (
        w.layers / p * wl.layer_params(w) + (wl.embedding_params(w) + wl.head_params(w)) / p
    )
    per_dev = stage_params / t
    g_bytes = per_dev * te.grad_comm_bytes
    w_bytes = per_dev * _weight_bytes(w.precision)
    mpd_dp = jnp.clip(jnp.floor(domain / (t * c)), 1.0, d)
    ar_g = coll("all_reduce", g_bytes, d, members_per_domain=mpd_dp)
    rs_g = coll("reduce_scatter", g_bytes, d, members_per_domain=mpd_dp)
    ag_w = coll("all_gather", w_bytes, d, members_per_domain=mpd_dp)
    bwd_win = lps * 2.0 * layer_fwd
    fwd_win = lps * layer_fwd
    tail = te.dp_tail
    exp0 = _max(ar_g - bwd_win, tail * ar_g, smooth)
    exp12 = _max(rs_g - bwd_win, tail * rs_g, smooth) + _max(ag_w - fwd_win, tail * ag_w, smooth)
    per_mb3 = 2.0 * ag_w + rs_g
    exp3 = m * _max(per_mb3 - (compute_mb + rec_mb), tail * per_mb3, smooth)
    dp_exposed = jnp.where(lay.zero == 0, exp0, jnp.where(lay.zero == 3, exp3, exp12))
    dp_exposed = jnp.where(d > 1, dp_exposed, 0.0)

    # ---- optimizer ----
    owned = per_dev / jnp.where(lay.zero >= 1, d, 1.0)
    opt_s = owned * 32.0 / (chip.mem_bytes_per_s[1] * te.roofline.memory[1])

    step = pipeline + dp_exposed + opt_s + te.step_overhead_s
    units = wl.units_per_step(w)
    peak = chip.peak_flops_per_s[PRECISION_INDEX[w.precision]]
    mfu = wl.model_flops_per_step(w) / (step * n_chips * peak)

    weights, grads, opt, acts, total = memory_per_device(w, lay)
    cap = chip.mem_bytes[1] * te.mem_usable
    valid = (
        (jnp.abs(n - n_chips) < 0.5)
        & (jnp.abs(m - jnp.round(m)) < 1e-9)
        & (m >= 1)
        & (jnp.abs(w.heads / t - jnp.round(w.heads / t)) < 1e-9)
        & (v >= 1)
        & ((v == 1) | (p > 1))
    )
    return StepResult(
        step_time_s=step,
        units_per_s=units / step,
        mfu=mfu,
        compute_s=m * compute_mb,
        recompute_s=m * rec_mb,
        bubble_s=bubble,
        tp_comm_s=m * lps * tp_layer,
        cp_comm_s=m * lps * cp_layer,
        pp_comm_s=m * pp_mb,
        dp_comm_s=dp_exposed,
        optimizer_s=opt_s,
        overhead_s=jnp.broadcast_to(te.step_overhead_s, step.shape),
        memory_bytes=total,
        weights_bytes=weights,
        grads_bytes=grads,
        optimizer_bytes=opt,
        activations_bytes=acts,
        capacity_bytes=jnp.broadcast_to(cap, step.shape),
        fits=total <= cap,
        valid=valid,
    )


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


_jit_step_impl = jax.jit(step_time, static_argnames=("smooth",))


def _jit_step(w, chip, net, lay, n, eff, smooth=False):
    # the preset name is static in the pytree: strip it so presets share compilations
    return _jit_step_impl(
        w.replace(name=""), chip.replace(name=""), net, lay, n, eff, smooth=smooth
    )


# --------------------------------------------------------------------------------------
# Layout search: the whole grid in one jit + vmap call
# --------------------------------------------------------------------------------------

TP_CHOICES = (1, 2, 4, 8, 16, 32, 64)
CP_CHOICES = (1, 2, 4, 8, 16)
MB_CHOICES = (1, 2, 4, 8, 16)
VPP_CHOICES = (1, 2, 3, 4, 6, 8, 12, 16)
RECOMPUTE_CHOICES = (0, 1, 2)
ZERO_CHOICES = (0, 1, 2, 3)


def _divisors(n: int) -> list[int]:
    small = [i for i in range(1, int(math.isqrt(n)) + 1) if n % i == 0]
    return sorted(set(small + [n // i for i in small]))


def layout_grid(
    w: Workload,
    n_chips: int,
    max_tp: int = 64,
    *,
    recompute: tuple[str, ...] = RECOMPUTE,
    sp: tuple[int, ...] = (0, 1),
    zero: tuple[int, ...] = ZERO_CHOICES,
    max_cp: int = 16,
) -> dict[str, np.ndarray]:
    """Every layout of ``w`` on ``n_chips`` chips as numpy columns (one row a layout).

    tp in {1..64} (powers of two dividing the heads and N, at most ``max_tp``: the
    search keeps TP inside the scale-up domain, as practical frameworks do), cp in {1..16} (dividing the
    sequence), pp any divisor of N/(tp cp) up to the layer count, dp the rest (dividing
    the global batch), micro-batch in {1..16} (dividing B/dp), vpp in {1,2,3,4,6,8,12,16}
    (vpp > 1 only with pp > 1, L divisible by pp vpp and at least pp micro-batches),
    sp on/off (tp > 1), recompute none/selective/full, ZeRO 0-3 (> 0 only with dp > 1).
    ``recompute``, ``sp``, ``zero`` and ``max_cp`` restrict the features searched (e.g.
    to what a 2021 software stack had).
    """
    for r in recompute:
        if r not in RECOMPUTE:
            raise ValueError(f"recompute mode {r!r} must be one of {RECOMPUTE}")
    rc_codes = tuple(RECOMPUTE.index(r) for r in recompute)
    n = int(n_chips)
    heads, layers = int(w.heads), int(w.layers)
    gbs, seq = int(w.global_batch), int(w.seq)
    rows = []
    for tp in TP_CHOICES:
        if n % tp or heads % tp or tp > max_tp:
            continue
        for cp in CP_CHOICES:
            if cp > max_cp or (n // tp) % cp or seq % cp or (cp > 1 and seq // cp < 512):
                continue
            rest = n // (tp * cp)
            for pp in _divisors(rest):
                if pp > layers:
                    break
                dp = rest // pp
                if gbs % dp:
                    continue
                for mb in MB_CHOICES:
                    if (gbs // dp) % mb:
                        continue
                    m = gbs // (dp * mb)
                    for v in VPP_CHOICES:
                        if v > 1 and (pp == 1 or layers % (pp * v) or m < pp):
                            continue
                        rows.append((tp, pp, dp, cp, mb, v))
    base = np.asarray(rows, dtype=np.float64).reshape(-1, 6)
    ext = []
    for sp, rc, z in itertools.product(sp, rc_codes, zero):
        keep = np.ones(len(base), bool)
        if sp:
            keep &= base[:, 0] > 1
        if z:
            keep &= base[:, 2] > 1
        b = base[keep]
        ext.append(np.column_stack([b, np.full((len(b), 3), (sp, rc, z), np.float64)]))
    g = np.concatenate(ext) if ext else np.zeros((0, 9))
    return {k: g[:, i] for i, k in enumerate(LAYOUT_FIELDS)}


def _max_tp(net) -> int:
    return max(1, int(np.floor(float(np.max(np.asarray(net.domain_size))))))


def _bucket(k: int) -> int:
    """Padded grid size: a power of two >= 1024 (few distinct compiled shapes)."""
    return max(1024, 1 << max(0, (k - 1)).bit_length())


#: Layouts per vmapped chunk: large grids are evaluated as a ``lax.map`` over chunks of
#: this many rows, so the intermediates stay cache-sized (2-5x faster than one huge vmap
#: on CPU).
GRID_CHUNK = 16384


@jax.jit
def _eval_grid(w, chip, net, lays, ns, eff):
    """``step_time`` of every layout row (vmapped; one compiled call per shape)."""
    per = jax.vmap(step_time, in_axes=(None, None, None, 0, 0, None))
    k = ns.shape[0]
    if k <= GRID_CHUNK or k % GRID_CHUNK:
        return per(w, chip, net, lays, ns, eff)
    split = lambda x: x.reshape((k // GRID_CHUNK, GRID_CHUNK) + x.shape[1:])  # noqa: E731
    out = jax.lax.map(
        lambda a: per(w, chip, net, a[0], a[1], eff),
        (jax.tree_util.tree_map(split, lays), split(ns)),
    )
    return jax.tree_util.tree_map(lambda x: x.reshape((k,) + x.shape[2:]), out)


def _masked(r: StepResult):
    ok = np.asarray(r.fits) & np.asarray(r.valid)
    return np.where(ok, np.asarray(r.units_per_s), 0.0), np.asarray(r.memory_bytes), ok


def _pad_grid(cols: dict[str, np.ndarray], ns: np.ndarray):
    k = len(ns)
    size = _bucket(k)
    pad = size - k
    lay = Layout(**{f: jnp.asarray(np.concatenate([c, np.ones(pad)])) for f, c in cols.items()})
    n = jnp.asarray(np.concatenate([ns, np.zeros(pad)]))  # n = 0 never matches: invalid
    return lay, n


def evaluate_grid(
    w: Workload,
    chip: Chip,
    net,
    cols: dict[str, np.ndarray],
    ns: np.ndarray,
    eff: TrainEfficiency | None = None,
):
    """Throughput (units/s, 0 where the layout does not fit or is invalid), memory
    (byte) and the fit flag of every layout row, in one compiled call (numpy out)."""
    w, chip = w.replace(name=""), chip.replace(name="")
    lay, n = _pad_grid(cols, np.asarray(ns, np.float64))
    out = _eval_grid(w, chip, net, lay, n, eff or default_efficiency())
    k = len(ns)
    return tuple(o[:k] for o in _masked(out))


@dataclasses.dataclass
class TrainResult:
    """The result of :func:`best_layout` or :func:`evaluate_layout` (SI units)."""

    workload: str
    chip: str
    n_chips: int
    precision: str
    unit: str
    step_time_s: float
    tokens_per_s: float
    samples_per_s: float
    mfu: float
    memory_per_device_bytes: float
    memory_capacity_bytes: float
    fits: bool
    layout: dict[str, Any]
    breakdown: dict[str, float]
    memory: dict[str, float]
    layouts_evaluated: int = 1
    layouts_fitting: int = 1
    search_time_s: float = 0.0
    compile_time_s: float = 0.0

    @property
    def units_per_s(self) -> float:
        return self.tokens_per_s if self.unit == "token" else self.samples_per_s

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _result(
    w: Workload,
    chip_key: str,
    chip: Chip,
    net,
    lay: Layout,
    n: int,
    eff: TrainEfficiency,
    step: StepResult | None = None,
    **extra,
) -> TrainResult:
    r = _jit_step(w, chip, net, lay, _f(n), eff) if step is None else step
    g = {k: float(getattr(r, k)) for k in r.__dataclass_fields__}
    units = g["units_per_s"]
    seq = float(w.seq)
    tokens = units if w.unit == "token" else units * seq
    samples = units / seq if w.unit == "token" else units
    bd = {
        k: g[k]
        for k in (
            "compute_s",
            "recompute_s",
            "bubble_s",
            "tp_comm_s",
            "cp_comm_s",
            "pp_comm_s",
            "dp_comm_s",
            "optimizer_s",
            "overhead_s",
        )
    }
    mem = {
        k: g[k] for k in ("weights_bytes", "grads_bytes", "optimizer_bytes", "activations_bytes")
    }
    return TrainResult(
        workload=w.name,
        chip=chip_key,
        n_chips=int(n),
        precision=w.precision,
        unit=w.unit,
        step_time_s=g["step_time_s"],
        tokens_per_s=tokens,
        samples_per_s=samples,
        mfu=g["mfu"],
        memory_per_device_bytes=g["memory_bytes"],
        memory_capacity_bytes=g["capacity_bytes"],
        fits=bool(g["fits"]),
        layout=lay.to_dict(),
        breakdown=bd,
        memory=mem,
        **extra,
    )


def _prepare(workload, chip_key, n_chips, precision, catalog, chip=None, global_batch=None):
    if isinstance(workload, str):
        workload = wl.get_workload(workload)
    if not isinstance(workload, Workload):
        raise ValueError(
            f"workload must be a preset name or a Workload, got {type(workload).__name__}"
        )
    w = workload.with_precision(precision).with_global_batch(global_batch)
    if w.precision == "int8":
        raise ValueError(
            f"precision 'int8' is for inference; training precisions: {wl.TRAIN_PRECISIONS}"
        )
    if (
        isinstance(n_chips, bool)
        or not isinstance(n_chips, (int, np.integer))
        or not 1 <= n_chips <= 10**7
    ):
        raise ValueError(f"n_chips = {n_chips!r} must be an integer in [1, 10000000]")
    cat = catalog or load_catalog()
    key = cat.resolve(chip_key)
    c = cat.chip(key) if chip is None else chip
    return w, key, c, get_network(key, cat)


def best_layout(
    workload,
    chip_key: str,
    n_chips: int,
    *,
    precision: str | None = None,
    catalog=None,
    chip: Chip | None = None,
    global_batch: int | None = None,
    eff: TrainEfficiency | None = None,
    **features,
) -> TrainResult:
    """The fastest layout of ``workload`` on ``n_chips`` chips that fits in memory.

    Builds the whole :func:`layout_grid` and evaluates it in one ``jit(vmap)`` call.

    Args:
      workload: a preset name or a :class:`perfmodel.workloads.Workload`.
      chip_key: catalog chip key or alias (the network comes from the catalog).
      n_chips: chips in the job.
      precision: override the workload precision (bf16, fp16, fp8, ...).
      chip: override the catalog Chip pytree (e.g. a ``pick='low'`` spec).
      global_batch: override the workload's global batch (samples).
      eff: efficiency assumptions (default :func:`default_efficiency`).
      **features: restrictions of the grid passed to :func:`layout_grid`
        (``recompute``, ``sp``, ``zero``, ``max_cp``).

    Returns:
      :class:`TrainResult` with ``layouts_evaluated``, ``layouts_fitting`` and
      ``search_time_s`` (wall time of the evaluation, compilation excluded; the
      compilation is in ``compile_time_s``, 0 when cached).

    Raises:
      ValueError: bad arguments, or no layout fits (with the smallest memory need).
    """
    w, key, c, net = _prepare(workload, chip_key, n_chips, precision, catalog, chip, global_batch)
    eff = eff or default_efficiency()
    cols = layout_grid(w, n_chips, _max_tp(net), **features)
    k = len(cols["tp"])
    if k == 0:
        raise ValueError(
            f"no parallel layout of '{w.name}' divides {n_chips} chips "
            f"(global batch {int(w.global_batch)}, heads {int(w.heads)})"
        )
    lay, ns = _pad_grid(cols, np.full(k, float(n_chips)))
    wa, ca = w.replace(name=""), c.replace(name="")
    t0 = time.perf_counter()
    compiled = _eval_grid.lower(wa, ca, net, lay, ns, eff).compile()
    t1 = time.perf_counter()
    out = jax.block_until_ready(compiled(wa, ca, net, lay, ns, eff))
    t2 = time.perf_counter()
    units, mem, ok = (o[:k] for o in _masked(out))
    if not ok.any():
        i = int(np.argmin(mem))
        raise ValueError(
            f"no layout of '{w.name}' fits on {n_chips} x {key}: the smallest needs "
            f"{mem[i] / 1e9:.1f} GB per device, {float(c.mem_bytes[1] * eff.mem_usable) / 1e9:.1f} GB usable"
        )
    i = int(np.argmax(units))
    best = Layout(**{f: _f(cols[f][i]) for f in LAYOUT_FIELDS})
    row = jax.tree_util.tree_map(lambda x: x[i], out)
    return _result(
        w,
        key,
        c,
        net,
        best,
        n_chips,
        eff,
        step=row,
        layouts_evaluated=k,
        layouts_fitting=int(ok.sum()),
        search_time_s=t2 - t1,
        compile_time_s=t1 - t0,
    )


def evaluate_layout(
    workload,
    chip_key: str,
    n_chips: int,
    layout: Layout | dict,
    *,
    precision: str | None = None,
    catalog=None,
    chip: Chip | None = None,
    global_batch: int | None = None,
    eff: TrainEfficiency | None = None,
    require_fit: bool = True,
) -> TrainResult:
    """Step time of one given layout; ValueError if tp pp dp cp != n_chips, if the
    micro-batches do not divide the global batch, or (``require_fit``) if it does not
    fit in memory (the message gives memory needed vs available)."""
    w, key, c, net = _prepare(workload, chip_key, n_chips, precision, catalog, chip, global_batch)
    eff = eff or default_efficiency()
    lay = make_layout(**layout) if isinstance(layout, dict) else layout
    ld = lay.to_dict()
    prod = ld["tp"] * ld["pp"] * ld["dp"] * ld["cp"]
    if prod != n_chips:
        raise ValueError(
            f"layout tp*pp*dp*cp = {ld['tp']}*{ld['pp']}*{ld['dp']}*{ld['cp']} = {prod} "
            f"must equal the number of chips {n_chips}"
        )
    gbs = int(w.global_batch)
    if gbs % (ld["dp"] * ld["mb"]):
        raise ValueError(f"global batch {gbs} must be divisible by dp*mb = {ld['dp']}*{ld['mb']}")
    if int(w.heads) % ld["tp"]:
        raise ValueError(f"tp = {ld['tp']} must divide the number of heads {int(w.heads)}")
    res = _result(w, key, c, net, lay, n_chips, eff)
    if require_fit and not res.fits:
        raise ValueError(
            f"layout {ld} does not fit: needs {res.memory_per_device_bytes / 1e9:.1f} GB per "
            f"device, {res.memory_capacity_bytes / 1e9:.1f} GB usable on {key} "
            f"(weights {res.memory['weights_bytes'] / 1e9:.1f}, grads {res.memory['grads_bytes'] / 1e9:.1f}, "
            f"optimizer {res.memory['optimizer_bytes'] / 1e9:.1f}, activations "
            f"{res.memory['activations_bytes'] / 1e9:.1f} GB)"
        )
    return res


def throughput_curve(
    workload,
    chip_key: str,
    counts,
    *,
    precision: str | None = None,
    chip: Chip | None = None,
    catalog=None,
    eff: TrainEfficiency | None = None,
) -> np.ndarray:
    """Best-layout throughput (work units/s: tokens/s, or samples/s for the video model)
    at each chip count in ``counts``; 0 where no layout fits. All counts' grids are
    concatenated and evaluated in one compiled call."""
    counts = [int(x) for x in np.atleast_1d(np.asarray(counts))]
    if not counts:
        return np.zeros(0)
    for x in counts:
        if not 1 <= x <= 10**7:
            raise ValueError(f"chip count {x} must be in [1, 10000000]")
    w, key, c, net = _prepare(workload, chip_key, counts[0], precision, catalog, chip)
    grids = [layout_grid(w, x, _max_tp(net)) for x in counts]
    sizes = [len(g["tp"]) for g in grids]
    if sum(sizes) == 0:
        return np.zeros(len(counts))
    cols = {f: np.concatenate([g[f] for g in grids]) for f in LAYOUT_FIELDS}
    ns = np.concatenate([np.full(s, float(x)) for s, x in zip(sizes, counts)])
    units, _, _ = evaluate_grid(w, c, net, cols, ns, eff)
    out = np.zeros(len(counts))
    start = 0
    for j, s in enumerate(sizes):
        if s:
            out[j] = units[start : start + s].max()
        start += s
    return out


# --------------------------------------------------------------------------------------
# Inference (forward only)
# --------------------------------------------------------------------------------------

INFERENCE_MODES = ("forward", "decode")
_INF_BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def _inference_one(
    w: Workload, chip: Chip, net, tp, batch, context, eff: TrainEfficiency, decode: bool
):
    """Per-replica time (s), work units produced and memory (byte) of one forward pass
    of ``batch`` samples on ``tp`` chips (or one decode step at ``context``)."""
    reff = _chip_efficiency(w, eff)
    nb = _bytes(w.precision)
    if decode:
        ops = wl.decode_layer_ops(w, batch, context, tp)
        tok = batch
        units = batch
        head = wl.head_ops(w, batch / w.seq, tp, 1.0)
    else:
        ops = wl.layer_ops(w, batch, tp, 1.0, 0.0)
        tok = batch * w.seq
        units = batch * w.seq if w.unit == "token" else batch
        head = wl.head_ops(w, batch, tp, 1.0)
    layer = sum(_ops_time(ops, chip, reff, False))
    stem, stem_on = wl.stem_op(w, batch if not decode else batch / w.seq, 1.0)
    head_t = sum(_ops_time(head, chip, reff, False)) + stem_on * rf.op_time(stem, chip, reff).time_s
    act_b = _bytes(wl.activation_dtype(w.precision))
    ar = _collective(
        "all_reduce", tok * w.hidden * act_b, tp, net, jnp.minimum(tp, net.domain_size)
    )
    time_s = w.layers * (layer + (1.0 - eff.tp_overlap) * 2.0 * ar) + head_t
    weights = wl.param_count(w) * nb / tp
    ctx = context if decode else w.seq
    kv = w.layers * batch * ctx * 2.0 * w.kv_dim / jnp.minimum(tp, w.kv_heads) * act_b
    work = tok * (2.0 * w.hidden + 2.0 * w.ffn / tp + w.vocab / tp * 2.0) * act_b
    mem = weights + jnp.where(w.causal, kv, 0.0) + work
    return time_s, units, mem


def _bytes(precision: str) -> float:
    from perfmodel.hardware import BYTES_PER_ELEMENT

    return BYTES_PER_ELEMENT[precision]


@functools.partial(jax.jit, static_argnames=("decode",))
def _inference_grid(w, chip, net, tps, batches, context, eff, decode):
    f = jax.vmap(_inference_one, in_axes=(None, None, None, 0, 0, None, None, None))
    return f(w, chip, net, tps, batches, context, eff, decode)


def inference_throughput(
    workload,
    chip_key: str,
    n_chips: int,
    *,
    precision: str = "int8",
    chip: Chip | None = None,
    mode: str = "forward",
    context: int | None = None,
    catalog=None,
    eff: TrainEfficiency | None = None,
    details: bool = False,
):
    """Forward-only throughput (work units/s) of ``workload`` on ``n_chips`` chips.

    The chips run ``n_chips // tp`` data-parallel replicas of a tensor-parallel group
    (a power of two within the scale-up domain); per replica the weights, the KV cache
    and the working activations of the batch (1..256 samples or sequences) must fit in
    ``mem_usable`` of DRAM. The (tp, batch) pair with the highest total throughput is
    used (one jit+vmap call over the pairs).

    Args:
      mode: ``"forward"`` -- one forward pass per sample (the video model's samples/s
        for closed-loop evaluation; an LLM's prefill tokens/s); ``"decode"`` -- LLM
        generation, tokens/s, each step reading all weights and the KV cache of
        ``context`` tokens (default: the workload's ``seq``) per sequence.
      precision: weights and matmuls at this precision (int8 by default: the in-car
        computers; ``bf16``/``fp8`` for GPU serving).
      details: also return a dict (tp, batch, replicas, memory per chip, time per pass).

    Raises:
      ValueError: bad arguments, or the model does not fit on up to a whole domain.
    """
    if mode not in INFERENCE_MODES:
        raise ValueError(f"mode {mode!r} must be one of {INFERENCE_MODES}")
    if isinstance(workload, str):
        workload = wl.get_workload(workload)
    w = workload.with_precision(precision)
    if (
        isinstance(n_chips, bool)
        or not isinstance(n_chips, (int, np.integer))
        or not 1 <= n_chips <= 10**7
    ):
        raise ValueError(f"n_chips = {n_chips!r} must be an integer in [1, 10000000]")
    decode = mode == "decode"
    if decode and w.unit != "token":
        raise ValueError(f"mode 'decode' needs a token (LLM) workload; '{w.name}' counts samples")
    ctx = float(w.seq) if context is None else float(context)
    if ctx < 1:
        raise ValueError(f"context = {context!r} must be >= 1 token")
    cat = catalog or load_catalog()
    key = cat.resolve(chip_key)
    c = cat.chip(key) if chip is None else chip
    net = get_network(key, cat)
    eff = eff or default_efficiency()
    max_tp = min(_max_tp(net), int(n_chips))
    tps = [t for t in TP_CHOICES if t <= max_tp and int(w.heads) % t == 0] or [1]
    grid = np.array([(t, b) for t in tps for b in _INF_BATCHES], dtype=np.float64)
    time_s, units, mem = (
        np.asarray(x)
        for x in _inference_grid(
            w, c, net, jnp.asarray(grid[:, 0]), jnp.asarray(grid[:, 1]), _f(ctx), eff, decode
        )
    )
    cap = float(c.mem_bytes[1] * eff.mem_usable)
    replicas = np.floor(n_chips / grid[:, 0])
    rate = np.where(mem <= cap, replicas * units / time_s, 0.0)
    if not (rate > 0).any():
        i = int(np.argmin(mem))
        raise ValueError(
            f"'{w.name}' at {w.precision} does not fit for inference on up to "
            f"{int(grid[i, 0])} x {key}: needs {mem[i] / 1e9:.1f} GB per chip, "
            f"{cap / 1e9:.1f} GB usable"
        )
    i = int(np.argmax(rate))
    if not details:
        return float(rate[i])
    return float(rate[i]), dict(
        tp=int(grid[i, 0]),
        batch=int(grid[i, 1]),
        replicas=int(replicas[i]),
        memory_per_chip_bytes=float(mem[i]),
        memory_capacity_bytes=cap,
        time_per_pass_s=float(time_s[i]),
        precision=w.precision,
        mode=mode,
        unit=w.unit,
    )
