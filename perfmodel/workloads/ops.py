"""Per-op lists of one micro-batch on one tensor-parallel rank, for the roofline: the
layer, head and stem ops of training and the decode ops of one generated token (see
:mod:`perfmodel.workloads`)."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax.numpy as jnp

from perfmodel import roofline as rf
from perfmodel.hardware import BYTES_PER_ELEMENT, PRECISION_INDEX
from perfmodel.workloads.shape import (
    Workload,
    _f,
    _fractions,
    window_keys,
)

# --------------------------------------------------------------------------------------
# Op lists (for the roofline)
# --------------------------------------------------------------------------------------


def activation_dtype(precision: str) -> str:
    """Precision of activations, attention and elementwise ops: FP8 and FP4 training keep
    them in BF16 (only GEMMs run in FP8/FP4, as in Transformer Engine); int8 inference
    keeps everything int8."""
    return "bf16" if precision in ("fp8", "fp4") else precision


def tokens_per_expert(w: Workload, micro_batch, tp, cp, ep, etp) -> jnp.ndarray:
    """Tokens each local expert's grouped GEMM sees for one micro-batch (at least 1):
    the ``ep`` ranks of the expert-parallel group each route ``top_k`` copies of their
    tokens over ``experts``. With expert tensor parallelism ``etp < tp`` the group spans
    the TP ranks, each routing its own ``tok * etp / tp`` share to whole experts."""
    tok = micro_batch * w.seq / cp
    return jnp.maximum(tok * etp / tp * w.top_k * ep / jnp.maximum(w.experts, 1.0), 1.0)


def layer_ops(w: Workload, micro_batch, tp, cp, sp, ep: Any = 1.0, etp: Any = None) -> list[rf.Op]:
    """Forward ops of the average block for one micro-batch on one rank.

    The rank holds ``T = micro_batch * seq / cp`` tokens (context parallel splits the
    sequence) and a ``1/tp`` slice of every weight matrix (Megatron tensor parallel:
    QKV and FFN-up column-parallel, projections row-parallel). Norms, residual adds and
    the activation run on ``T/tp`` tokens with sequence parallel (``sp = 1``), else on
    all ``T`` tokens (replicated).

    Order: norm, QKV, attention, out-proj, residual, norm, FFN-up, activation,
    FFN-down, residual (indices 0-9, each weighted by the share of blocks that have
    it), then the MoE ops: router, dispatch permutation, shared + routed expert
    FFN-up, activation, FFN-down, un-permutation (10-16), then the Mamba-2 mixer:
    in-projection, chunked scan, out-projection (17-19). Attention is flash-style:
    queries ``s/cp`` against all ``s`` keys, causal halves the FLOPs. Routed experts
    are a grouped GEMM: ``E/ep`` local experts (tensor-parallel over ``tp``), each
    multiplying ``T k ep / E`` tokens (the balanced, dropless routing the published
    MoE benchmarks force).
    """
    pa = activation_dtype(w.precision)
    pm = w.precision
    fa, fm, fd, fe = _fractions(w)
    d, f = w.hidden, w.ffn
    tok = micro_batch * w.seq / cp
    tok_el = jnp.where(sp > 0, tok / tp, tok)
    n_up = 2.0 if w.gated_ffn else 1.0

    def act_op(n):
        if w.gated_ffn:
            return rf.elementwise(n, pa, inputs=2, outputs=1, flops_per_element=4.0)
        return rf.elementwise(n, pa, inputs=1, outputs=1, flops_per_element=8.0)

    qkv_out = jnp.where(
        w.attention == "mla",
        w.q_dim + w.kv_lora_rank + w.rope_head_dim,
        w.heads * w.head_dim + 2.0 * w.kv_dim,
    )
    o_in = jnp.where(w.v_head_dim > 0, w.heads * w.v_head_dim, w.heads * w.head_dim)
    ta, td, te_, tm = tok * fa, tok * fd, tok * fe, tok * fm
    head_qk = w.head_dim + w.rope_head_dim
    # routed experts: grouped GEMM over the local experts
    local = jnp.maximum(w.experts / ep, 1.0)
    etp = tp if etp is None else etp
    tok_e = tokens_per_expert(w, micro_batch, tp, cp, ep, etp)
    fe_ = fe * jnp.where(w.experts > 0, 1.0, 0.0)
    de = w.moe_width
    routed_up = rf.batched_matmul(local * fe_, tok_e, n_up * w.moe_ffn / etp, de, pm)
    routed_dn = rf.batched_matmul(local * fe_, tok_e, de, w.moe_ffn / etp, pm)
    # latent MoE: hidden -> latent before dispatch, latent -> hidden after combine
    tl = te_ * (w.moe_latent > 0)
    shared_n = jnp.maximum(w.shared_ffn, 0.0)
    di = w.mamba_inner
    return [
        rf.layernorm(tok_el * fa, d, pa),
        rf.matmul(ta, qkv_out / tp, d, pm),
        _attention_op(w, micro_batch, tp, cp, fa, head_qk, pa),
        rf.matmul(ta, d, o_in / tp, pm),
        rf.elementwise(tok_el * d, pa),
        rf.layernorm(tok_el * (fd + fe), d, pa),
        rf.matmul(td, n_up * f / tp, d, pm),
        act_op(td * f / tp),
        rf.matmul(td, d, f / tp, pm),
        rf.elementwise(tok_el * d, pa),
        # MoE
        rf.matmul(te_, w.experts, d, pa),
        rf.elementwise(te_ * w.top_k * de / tp, pa, inputs=1, outputs=1),
        rf.matmul(te_, n_up * shared_n / tp, d, pm),
        routed_up,
        act_op((te_ * w.top_k * w.moe_ffn + te_ * shared_n) / tp),
        routed_dn,
        rf.elementwise(te_ * w.top_k * de / tp, pa, inputs=2, outputs=1),
        # Mamba-2
        rf.matmul(tm, (2.0 * di + 2.0 * w.mamba_state + di / 64.0) / tp, d, pm),
        rf.attention(micro_batch, di / 64.0 / tp * fm, w.seq / cp, 256.0, 64.0, pa, causal=True),
        rf.matmul(tm, d, di / tp, pm),
        # latent MoE projections
        rf.matmul(tl, w.moe_latent / tp, d, pm),
        rf.matmul(tl, d, w.moe_latent / tp, pm),
    ]


def _attention_op(w: Workload, micro_batch, tp, cp, fa, head_qk, pa) -> rf.Op:
    """The attention core of the average block: full (causal) attention over the whole
    sequence in ``1 - share`` of the attention layers, and in the ``window_layers``
    sliding-window layers each query against at most ``window`` keys (no causal
    halving: a query past the first window sees a full window)."""
    n_attn = jnp.maximum(fa * w.layers, 1.0)
    share = jnp.clip(w.window_layers / n_attn, 0.0, 1.0)
    heads = w.heads / tp * fa
    full = rf.attention(
        micro_batch, heads * (1.0 - share), w.seq / cp, w.seq, head_qk, pa, causal=w.causal
    )
    kv_w, flop_keys = window_keys(w)
    win = rf.attention(micro_batch, heads * share, w.seq / cp, kv_w, head_qk, pa, causal=False)
    win_flops = win.flops * flop_keys / kv_w
    return dataclasses.replace(
        full,
        flops=full.flops + win_flops,
        bytes=full.bytes + win.bytes,
        working_set_bytes=full.working_set_bytes + win.working_set_bytes,
    )


def gemm_input_elements(w: Workload, micro_batch, tp, cp, sp: Any = 0.0) -> jnp.ndarray:
    """Activation elements entering the block's GEMMs on one rank for one micro-batch
    (what FP8/FP4 recipes quantize: amax + cast, and the transposed copy for the
    backward GEMMs). The hidden-sized inputs of the column-parallel GEMMs (QKV, FFN up,
    Mamba in) are replicated over TP; with sequence parallelism each rank quantizes
    its own sequence shard before the all-gather (Transformer Engine gathers them in
    FP8), so that share is divided by ``tp``. An MoE block's routed input is quantized
    once per token, before its ``top_k`` copies are permuted and dispatched (the fused
    permute + quantize of the FP8/MXFP8 MoE path), not once per copy; the expert
    down-projection inputs are per copy."""
    fa, fm, fd, fe = _fractions(w)
    tok = micro_batch * w.seq / cp
    o_in = jnp.where(w.v_head_dim > 0, w.heads * w.v_head_dim, w.heads * w.head_dim)
    h = jnp.where(sp > 0, w.hidden / tp, w.hidden)
    # MoE: the shared expert's input, the routed input once per token, the top_k + 1
    # down-projection inputs, and a latent MoE's two projection inputs
    routed_in = jnp.where(w.moe_latent > 0, w.moe_latent, h)
    latent_in = jnp.where(w.moe_latent > 0, h + w.moe_latent / tp, 0.0)
    per_tok = (
        fa * (h + o_in / tp)
        + fd * (h + w.ffn / tp)
        + fe * (h + routed_in + (w.top_k + 1.0) * w.moe_ffn / tp + latent_in)
        + fm * (h + w.mamba_inner / tp)
    )
    return tok * per_tok


ATTENTION_OP_INDEX = 2


def head_ops(w: Workload, micro_batch, tp, cp) -> list[rf.Op]:
    """Forward ops outside the layers for one micro-batch on one rank: the final norm,
    the output head (vocab-parallel over ``tp``) and the softmax cross-entropy (or
    regression loss) over its outputs. The video patch embedding is :func:`stem_op`."""
    pa = activation_dtype(w.precision)
    tok = micro_batch * w.seq / cp
    return [
        rf.layernorm(tok, w.hidden, pa),
        rf.matmul(tok, w.vocab / tp, w.hidden, w.precision),
        rf.elementwise(tok * w.vocab / tp, "fp32", inputs=1, outputs=1, flops_per_element=5.0),
    ]


def stem_op(w: Workload, micro_batch, cp) -> tuple[rf.Op, jnp.ndarray]:
    """The video model's linear patch embedding for one micro-batch (replicated over
    tp), and a 0/1 weight: 0 for an LLM (``patch_dim = 0``), whose embedding is a
    look-up. The op is never empty (so its smooth time has finite gradients); multiply
    its time by the weight."""
    tok = micro_batch * w.seq / cp
    op = rf.matmul(tok, w.hidden, jnp.maximum(w.patch_dim, 1.0), w.precision)
    return op, (w.patch_dim > 0).astype(op.flops.dtype)


def decode_layer_ops(w: Workload, batch, context, tp) -> list[rf.Op]:
    """Forward ops of one layer generating ONE token for each of ``batch`` sequences
    that already hold ``context`` tokens of KV cache, on one of ``tp`` ranks.

    The matmuls have ``batch`` rows, so they read the whole weight slice for few FLOPs
    (memory-bound); attention reads the KV cache: ``batch * context * 2 d_kv / tp``
    elements, ``4 batch heads context head_dim / tp`` FLOP.
    """
    pa = activation_dtype(w.precision)
    pm = w.precision
    d, f = w.hidden, w.ffn
    n_up = 2.0 if w.gated_ffn else 1.0
    b_el = BYTES_PER_ELEMENT[pa]
    kv_elems = batch * context * 2.0 * w.kv_dim / tp
    q_elems = 2.0 * batch * d / tp
    attn_bytes = (kv_elems + q_elems) * b_el
    attn = rf.Op(
        _f(4.0 * batch * w.heads / tp * context * w.head_dim),
        _f(attn_bytes),
        _f(attn_bytes),
        jnp.asarray(PRECISION_INDEX[pa]),
        jnp.asarray(rf.OP_KIND_INDEX["attention"]),
    )
    return [
        rf.layernorm(batch, d, pa),
        rf.matmul(batch, (d + 2.0 * w.kv_dim) / tp, d, pm),
        attn,
        rf.matmul(batch, d, d / tp, pm),
        rf.elementwise(batch * d, pa),
        rf.layernorm(batch, d, pa),
        rf.matmul(batch, n_up * f / tp, d, pm),
        rf.elementwise(batch * f / tp, pa, inputs=2 if w.gated_ffn else 1, outputs=1),
        rf.matmul(batch, d, f / tp, pm),
        rf.elementwise(batch * d, pa),
    ]
