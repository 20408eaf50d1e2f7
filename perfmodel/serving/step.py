"""Prefill and decode time of one model replica, KV-cache bytes and memory-limited batch.

One replica runs on ``tp x pp`` chips (:class:`perfmodel.serving.types.Layout`). Every
op of a layer is timed on the roofline (:func:`perfmodel.roofline.op_time`, streamed
from DRAM: a step touches far more weights and KV than any cache holds), and the
tensor-parallel all-reduces and expert-parallel all-to-alls on the interconnect model
(:func:`perfmodel.interconnect.collective_time_s`).

Decode step (``B`` sequences in flight, mean context ``c`` tokens, pipeline ``pp``
with ``pp`` micro-batches of ``B/pp``)::

    t_step = L t_layer(B/pp, c) + pp t_head(B/pp) + (pp - 1) t_p2p
             + step_overhead + B seq_overhead          (the engine's own time)
    t_layer = sum of roofline op times (weight GEMMs with B/pp rows; attention reading
              B/pp x c tokens of KV cache) + tp all-reduces (attention and FFN outputs)
              + with ep: an all-reduce and the dispatch + combine all-to-alls

KV cache per token (all layers; ``b_kv`` bytes per element, 1 for FP8)::

    GQA  2 L_a kv_heads head_dim b_kv        (split over min(tp, kv_heads) ranks)
    MLA  L_a (kv_lora_rank + rope_head_dim) b_kv   (the compressed latent, replicated)

e.g. Llama 2 70B (80 layers, 8 KV heads of 128) at FP8: 2 x 80 x 8 x 128 = 163,840 byte.
Prefill of ``n`` requests of ``s`` tokens: the forward layer ops of
:func:`perfmodel.workloads.layer_ops` at sequence ``s``, and the head on the last
token of each request only.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from perfmodel import roofline as rf
from perfmodel import workloads as wl
from perfmodel.hardware import BYTES_PER_ELEMENT, PRECISION_INDEX, Chip
from perfmodel.interconnect import Network, collective_time_s, point_to_point_time_s
from perfmodel.serving.types import Layout, ServeEfficiency, _f
from perfmodel.workloads import Workload

#: Tokens of prompt processed per prefill chunk (engines batch prompts up to a token
#: budget; TensorRT-LLM and vLLM default budgets are a few thousand tokens).
PREFILL_CHUNK_TOKENS = 8192.0
#: Bytes of an activation exchanged between ranks (bf16).
ACT_BYTES = 2.0


def _attention_share(w: Workload):
    return jnp.where(w.attention_layers >= 0, w.attention_layers, w.layers) / w.layers


def _moe_share(w: Workload):
    return w.moe_layers / w.layers


def kv_elements_per_token(w: Workload):
    """KV-cache elements per token over all layers (count): ``2 L_a d_kv`` (GQA) or
    ``L_a (kv_lora_rank + rope_head_dim)`` (MLA)."""
    la = _attention_share(w) * w.layers
    if w.attention == "mla":
        return la * (w.kv_lora_rank + w.rope_head_dim)
    return la * 2.0 * w.kv_dim


def kv_bytes_per_token(w: Workload, kv_bytes):
    """KV-cache bytes per token over all layers (byte); ``kv_bytes`` per element."""
    return kv_elements_per_token(w) * kv_bytes


def kv_split(w: Workload, tp):
    """Ranks the KV cache of one layer is split over: ``min(tp, kv_heads)`` for GQA (a
    rank holds whole KV heads; beyond ``kv_heads`` they are replicated), 1 for MLA (the
    latent is shared by all heads)."""
    if w.attention == "mla":
        return jnp.ones_like(_f(tp))
    return jnp.minimum(tp, w.kv_heads)


def weight_bytes(w: Workload):
    """All weights at the workload precision (byte)."""
    return wl.param_count(w) * BYTES_PER_ELEMENT[w.precision]


def memory_per_chip(w: Workload, lay: Layout, batch, context, kv_bytes):
    """Weights + KV cache of ``batch`` sequences of ``context`` tokens on one chip (byte).

    Example: Llama 2 70B at FP8 on one chip with 100 sequences of 1000 tokens and an
    FP8 KV cache holds 68.98e9 + 100 x 1000 x 163,840 = 85.36e9 byte."""
    kv = batch * context * kv_bytes_per_token(w, kv_bytes) / (kv_split(w, lay.tp) * lay.pp)
    return weight_bytes(w) / (lay.tp * lay.pp) + kv


def max_batch(w: Workload, chip: Chip, lay: Layout, context, kv_bytes, eff: ServeEfficiency):
    """Sequences of ``context`` tokens whose KV cache fits beside the weights (count,
    real-valued; <= 0 when the weights alone do not fit)."""
    cap = chip.mem_bytes[1] * eff.mem_usable
    per_seq = context * kv_bytes_per_token(w, kv_bytes) / (kv_split(w, lay.tp) * lay.pp)
    return (cap - weight_bytes(w) / (lay.tp * lay.pp)) / per_seq


#: Indices into :func:`perfmodel.workloads.layer_ops` of the routed experts' grouped
#: GEMMs (timed at ``moe_gemm`` x the GEMM efficiency).
ROUTED_GEMM_OPS = (13, 15)


def _roofline_eff(w: Workload, eff: ServeEfficiency, rows, moe: bool = False) -> rf.Efficiency:
    mm = eff.matmul * (eff.fp4_matmul if w.precision == "fp4" else 1.0)
    mm = mm * eff.moe_gemm if moe else mm
    mm = mm * rows / (rows + eff.gemm_half_rows)
    mm = mm * w.hidden / (w.hidden + eff.gemm_half_hidden)
    compute = jnp.stack([mm, eff.attention, _f(1.0), _f(1.0), mm])
    return rf.Efficiency(compute, jnp.stack([eff.dram, eff.dram]), eff.op_overhead_s)


def _block_time_s(ops: list[rf.Op], chip: Chip, w: Workload, eff: ServeEfficiency, rows):
    """Time of a block's ops with ``rows`` tokens per GEMM; the routed expert GEMMs at
    the grouped-GEMM efficiency (with their ``rows x top_k / experts`` tokens each)."""
    dense = [o for i, o in enumerate(ops) if i not in ROUTED_GEMM_OPS]
    routed = [ops[i] for i in ROUTED_GEMM_OPS]
    rows_e = jnp.maximum(rows * w.top_k / jnp.maximum(w.experts, 1.0), 1.0)
    return _ops_time_s(dense, chip, _roofline_eff(w, eff, rows)) + _ops_time_s(
        routed, chip, _roofline_eff(w, eff, rows_e, moe=True)
    )


def _ops_time_s(ops: list[rf.Op], chip: Chip, reff: rf.Efficiency):
    """Sum of the op times, every op streamed from DRAM; an op a block does not have
    (no FLOPs and no bytes) costs nothing."""
    total = _f(0.0)
    dram_only = chip.mem_bytes[0] * 2.0 + 1.0
    for o in ops:
        present = (o.flops > 0) | (o.bytes > 0)
        o1 = dataclasses.replace(
            o,
            flops=jnp.maximum(o.flops, 1.0),
            bytes=jnp.maximum(o.bytes, 1.0),
            working_set_bytes=jnp.maximum(o.working_set_bytes, dram_only),
        )
        total = total + rf.op_time(o1, chip, reff).time_s * present
    return total


def _collective(kind: str, nbytes, group, net: Network):
    t = collective_time_s(
        kind, nbytes, jnp.maximum(group, 1.0), net, jnp.minimum(group, net.domain_size)
    )
    return jnp.where(group > 1, t, 0.0)


def _stage_p2p_s(nbytes, lay: Layout, net: Network):
    """One activation hand-off between pipeline stages (s): over the scale-up link when
    the replica fits in one domain, else over the scale-out link."""
    inside = point_to_point_time_s(nbytes, net, True)
    across = point_to_point_time_s(nbytes, net, False)
    return jnp.where(lay.tp * lay.pp <= net.domain_size, inside, across)


def _decode_attention(w: Workload, batch, context, tp, kv_bytes, read_context=None) -> rf.Op:
    """One layer's decode attention on one rank: ``batch`` queries against ``context``
    cached tokens each; reads the rank's KV slice (MLA: absorbed form on the latent) of
    ``read_context`` distinct tokens per sequence (default ``context``; less where
    sequences share a cached prefix, e.g. beams sharing their prompt, which the kernel
    reads once for all of them)."""
    read_context = context if read_context is None else read_context
    fa = _attention_share(w)
    h = w.heads / tp
    if w.attention == "mla":
        per_tok_flops = 2.0 * h * (2.0 * w.kv_lora_rank + w.rope_head_dim)
        kv_el = w.kv_lora_rank + w.rope_head_dim
    else:
        dv = jnp.where(w.v_head_dim > 0, w.v_head_dim, w.head_dim)
        per_tok_flops = 2.0 * h * (w.head_dim + w.rope_head_dim + dv)
        kv_el = 2.0 * w.kv_dim / kv_split(w, tp)
    flops = fa * batch * context * per_tok_flops
    nbytes = fa * (batch * read_context * kv_el * kv_bytes + 2.0 * batch * w.q_dim / tp * ACT_BYTES)
    return rf.Op(
        _f(flops),
        _f(nbytes),
        _f(nbytes),
        jnp.asarray(PRECISION_INDEX["bf16"]),
        jnp.asarray(rf.OP_KIND_INDEX["attention"]),
    )


def _layer_ops(w: Workload, tokens_per_seq, n_seq, lay: Layout) -> list[rf.Op]:
    """Forward ops of the average block for ``n_seq`` sequences of ``tokens_per_seq``
    new tokens on one rank: attention and dense FFN tensor-parallel over ``tp``; MoE
    experts tensor-parallel (``ep = 0``) or expert-parallel over the ``tp`` ranks, each
    rank then routing ``1/tp`` of the tokens (``ep = 1``). Expert weights that no token
    is routed to are not read (decode at small batch touches few experts)."""
    ws = dataclasses.replace(w, seq=_f(tokens_per_seq))
    tp_ops = wl.layer_ops(ws, n_seq, lay.tp, 1.0, 0.0, 1.0)
    use_ep = (lay.ep > 0) & (w.experts > 0)
    ep_ops = wl.layer_ops(ws, n_seq / lay.tp, 1.0, 1.0, 0.0, lay.tp)
    moe = [
        dataclasses.replace(
            t,
            flops=jnp.where(use_ep, e.flops, t.flops),
            bytes=jnp.where(use_ep, e.bytes, t.bytes),
            working_set_bytes=jnp.where(use_ep, e.working_set_bytes, t.working_set_bytes),
        )
        for t, e in zip(tp_ops[10:17], ep_ops[10:17], strict=True)
    ]
    # only the experts some token is routed to are read: with T tokens choosing top_k
    # of E experts each, a given expert is idle with probability (1 - 1/E)^(T top_k)
    e_ = jnp.maximum(w.experts, 1.0)
    idle = (1.0 - 1.0 / e_) ** (n_seq * tokens_per_seq * w.top_k)
    n_up = 2.0 if w.gated_ffn else 1.0
    b_w = BYTES_PER_ELEMENT[w.precision]
    share = _moe_share(w) * (w.experts > 0)
    for j, width in ((3, n_up * w.moe_ffn), (5, w.moe_ffn)):
        unread = idle * share * w.experts * width * w.moe_width * b_w / lay.tp
        moe[j] = dataclasses.replace(moe[j], bytes=jnp.maximum(moe[j].bytes - unread, 0.0))
    return tp_ops[:10] + moe + tp_ops[17:]


def _layer_comm_s(w: Workload, tokens, lay: Layout, net: Network):
    """Communication of one block on the critical path for ``tokens`` tokens (s)."""
    act = tokens * w.hidden * ACT_BYTES
    ar = _collective("all_reduce", act, lay.tp, net)
    fe = _moe_share(w)
    # experts tensor-parallel: attention + FFN outputs reduced (2 all-reduces);
    # expert-parallel: the attention output is reduced, the MoE block dispatches the
    # routed copies of each rank's 1/tp tokens and combines them (2 all-to-alls)
    a2a = _collective("all_to_all", act * w.moe_width / w.hidden / lay.tp * w.top_k, lay.tp, net)
    ep_cost = ar + (1.0 - fe) * ar + fe * 2.0 * a2a
    return jnp.where(lay.ep > 0, ep_cost, 2.0 * ar)


def decode_step_s(
    w: Workload,
    chip: Chip,
    net: Network,
    lay: Layout,
    batch,
    context,
    kv_bytes,
    eff: ServeEfficiency,
    read_context=None,
):
    """Time of one decode iteration (one new token for each of ``batch`` sequences of
    mean ``context`` tokens, of which ``read_context`` distinct cached tokens per
    sequence are read: default ``context``) of one replica (s). Pure; vmap at the call
    site."""
    m = batch / lay.pp
    reff = _roofline_eff(w, eff, m)
    ops = _layer_ops(w, 1.0, m, lay)
    attn = _decode_attention(w, m, context, lay.tp, kv_bytes, read_context)
    ops[wl.ATTENTION_OP_INDEX] = attn
    layer = _block_time_s(ops, chip, w, eff, m) + _layer_comm_s(w, m, lay, net)
    head = _ops_time_s(wl.head_ops(dataclasses.replace(w, seq=_f(1.0)), m, lay.tp, 1.0), chip, reff)
    p2p = _stage_p2p_s(m * w.hidden * ACT_BYTES, lay, net)
    engine = eff.step_overhead_s + batch * eff.seq_overhead_s
    return w.layers * layer + lay.pp * head + (lay.pp - 1.0) * p2p + engine


def prefill_s(
    w: Workload,
    chip: Chip,
    net: Network,
    lay: Layout,
    n_seq,
    length,
    eff: ServeEfficiency,
):
    """Time for one replica to prefill ``n_seq`` prompts of ``length`` tokens together
    (s): all layers on every stage in turn, i.e. the latency of that batch. The
    replica's busy time per prompt, with ``pp`` batches in flight, is this / ``pp``."""
    reff = _roofline_eff(w, eff, n_seq * length)
    layer = _block_time_s(_layer_ops(w, length, n_seq, lay), chip, w, eff, n_seq * length)
    layer = layer + _layer_comm_s(w, n_seq * length, lay, net)
    head = _ops_time_s(
        wl.head_ops(dataclasses.replace(w, seq=_f(1.0)), n_seq, lay.tp, 1.0), chip, reff
    )
    p2p = _stage_p2p_s(n_seq * length * w.hidden * ACT_BYTES, lay, net)
    return w.layers * layer + head + (lay.pp - 1.0) * p2p


def prefill_busy_per_request_s(
    w: Workload, chip: Chip, net: Network, lay: Layout, length, eff: ServeEfficiency
):
    """Replica busy time per prompt of ``length`` tokens when prompts are batched into
    chunks of :data:`PREFILL_CHUNK_TOKENS` tokens (s)."""
    n = jnp.maximum(PREFILL_CHUNK_TOKENS / length, 1.0)
    return prefill_s(w, chip, net, lay, n, length, eff) / (n * lay.pp)
