"""Training workloads: dense decoder transformers and a multi-camera video model.

A :class:`Workload` is a pytree. Its sizes (layers, hidden, heads, ...) are float
leaves, so a workload can be traced, stacked and differentiated like a chip; its name,
precision and structural flags (gated FFN, causal attention, work unit) are static.

FLOP counts (per token, forward, dense; ``d`` hidden, ``L`` layers, ``f`` FFN width,
``d_kv = kv_heads * d / heads``, ``V`` output width, ``s`` sequence, ``P`` patch dim)::

    matmul params    N_mm = L (d (d + 2 d_kv) + d d + (3 if gated else 2) d f) + V d (+ P d)
    forward          F    = 2 N_mm + 4 L s d * (1/2 if causal)        (attention QK^T and PV)
    model FLOPs      3 F   (backward = 2x forward)                    -> MFU numerator
    hardware FLOPs   3 F + F_recompute  (full: +F; selective: + the attention term only)

The per-op lists that the training model times with :mod:`perfmodel.roofline` are built
by :func:`layer_ops` and :func:`head_ops` (one micro-batch on one tensor-parallel rank).

Presets (:data:`WORKLOAD_NAMES`): GPT-3 175B (original, MLPerf and Megatron variants),
Megatron 1T, Llama 3 8B/70B/405B, and ``video-driving`` (see :data:`VIDEO_DRIVING_NOTES`).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import flax.struct
import jax.numpy as jnp

from perfmodel import roofline as rf
from perfmodel.hardware import BYTES_PER_ELEMENT, PRECISION_INDEX, PRECISIONS, read_toml

#: Precisions a training workload may state (int8 is for inference only).
TRAIN_PRECISIONS = ("bf16", "fp16", "fp8", "fp32", "tf32", "fp4")
WORK_UNITS = ("token", "sample")


def _f(x):
    return jnp.asarray(x, dtype=jnp.result_type(float))


@flax.struct.dataclass
class Workload:
    """A transformer training workload (sizes are float leaves; flags are static).

    Attributes:
      layers, hidden, heads, kv_heads, ffn: transformer shape (counts).
      vocab: output width of the head (vocabulary for an LLM; per-token output
        channels for the video model).
      seq: tokens per sample (sequence length; cameras x frames x patches for video).
      global_batch: samples (sequences) per optimizer step.
      patch_dim: input features per token fed through a linear patch embedding
        (0 for an LLM, whose embedding is a table look-up without FLOPs).
      name: preset name (static).
      precision: matmul precision, one of :data:`perfmodel.hardware.PRECISIONS` (static).
      gated_ffn: SwiGLU-style FFN with three matrices (Llama) instead of two (static).
      causal: causal attention mask (LLM) or full attention (video) (static).
      unit: work unit counted by throughput, ``"token"`` or ``"sample"`` (static).
    """

    layers: jnp.ndarray
    hidden: jnp.ndarray
    heads: jnp.ndarray
    kv_heads: jnp.ndarray
    ffn: jnp.ndarray
    vocab: jnp.ndarray
    seq: jnp.ndarray
    global_batch: jnp.ndarray
    patch_dim: jnp.ndarray
    # ---- mixture of experts, attention variants and hybrid blocks (0 = not used) ----
    experts: jnp.ndarray | float = 0.0
    top_k: jnp.ndarray | float = 0.0
    moe_ffn: jnp.ndarray | float = 0.0
    shared_ffn: jnp.ndarray | float = 0.0
    moe_layers: jnp.ndarray | float = 0.0
    dense_layers: jnp.ndarray | float = -1.0
    attention_layers: jnp.ndarray | float = -1.0
    mamba_layers: jnp.ndarray | float = 0.0
    mamba_inner: jnp.ndarray | float = 0.0
    mamba_state: jnp.ndarray | float = 0.0
    head_size: jnp.ndarray | float = 0.0
    q_lora_rank: jnp.ndarray | float = 0.0
    kv_lora_rank: jnp.ndarray | float = 0.0
    rope_head_dim: jnp.ndarray | float = 0.0
    v_head_dim: jnp.ndarray | float = 0.0
    window: jnp.ndarray | float = 0.0
    window_layers: jnp.ndarray | float = 0.0
    moe_latent: jnp.ndarray | float = 0.0
    name: str = flax.struct.field(pytree_node=False, default="custom")
    precision: str = flax.struct.field(pytree_node=False, default="bf16")
    gated_ffn: bool = flax.struct.field(pytree_node=False, default=False)
    causal: bool = flax.struct.field(pytree_node=False, default=True)
    unit: str = flax.struct.field(pytree_node=False, default="token")
    attention: str = flax.struct.field(pytree_node=False, default="gqa")
    family: str = flax.struct.field(pytree_node=False, default="custom")

    # ---- derived sizes (work on traced leaves) ----
    @property
    def head_dim(self):
        return jnp.where(self.head_size > 0, self.head_size, self.hidden / self.heads)

    @property
    def kv_dim(self):
        return self.kv_heads * self.head_dim

    @property
    def q_dim(self):
        """Width of the query projection output (heads x query head size)."""
        return self.heads * (self.head_dim + self.rope_head_dim)

    @property
    def moe_width(self):
        """Width of the tokens the routed experts see (and the all-to-all moves):
        ``moe_latent`` for a latent MoE (Nemotron 3 LatentMoE), else ``hidden``."""
        return jnp.where(self.moe_latent > 0, self.moe_latent, self.hidden)

    @property
    def is_moe(self) -> bool:
        return bool(float(self.experts) > 0)

    def with_precision(self, precision: str | None) -> Workload:
        if precision is None or precision == self.precision:
            return self
        _check_precision(precision, allow_int8=True)
        return dataclasses.replace(self, precision=precision)

    def with_global_batch(self, global_batch: int | None) -> Workload:
        if global_batch is None:
            return self
        _check_pos_int("global_batch", global_batch)
        return dataclasses.replace(self, global_batch=_f(global_batch))

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {k: float(getattr(self, k)) for k in NUMERIC_FIELDS}
        d.update(
            name=self.name,
            precision=self.precision,
            gated_ffn=self.gated_ffn,
            causal=self.causal,
            unit=self.unit,
            attention=self.attention,
            family=self.family,
        )
        return d


NUMERIC_FIELDS = (
    "layers",
    "hidden",
    "heads",
    "kv_heads",
    "ffn",
    "vocab",
    "seq",
    "global_batch",
    "patch_dim",
    "experts",
    "top_k",
    "moe_ffn",
    "shared_ffn",
    "moe_layers",
    "dense_layers",
    "attention_layers",
    "mamba_layers",
    "mamba_inner",
    "mamba_state",
    "head_size",
    "q_lora_rank",
    "kv_lora_rank",
    "rope_head_dim",
    "v_head_dim",
    "window",
    "window_layers",
    "moe_latent",
)


# --------------------------------------------------------------------------------------
# Parameter and FLOP counts
# --------------------------------------------------------------------------------------


def _n_ffn(w: Workload) -> float:
    return 3.0 if w.gated_ffn else 2.0


def _fractions(w: Workload):
    """Share of the ``layers`` blocks with attention, Mamba, a dense FFN and an MoE FFN
    (a transformer block has attention + FFN; a hybrid block has one of them)."""
    fa = jnp.where(w.attention_layers >= 0, w.attention_layers, w.layers) / w.layers
    fd = jnp.where(w.dense_layers >= 0, w.dense_layers, w.layers - w.moe_layers) / w.layers
    return fa, w.mamba_layers / w.layers, fd, w.moe_layers / w.layers


def attention_params(w: Workload):
    """Weights of one attention block (count). GQA: ``d q + 2 d kv + q d``; MLA
    (DeepSeek-V2/V3): low-rank query (``q_lora_rank``) and joint key/value
    (``kv_lora_rank``) projections plus the decoupled RoPE key (``rope_head_dim``)."""
    d, h = w.hidden, w.heads
    if w.attention == "mla":
        qr, kvr = w.q_lora_rank, w.kv_lora_rank
        q = jnp.where(qr > 0, d * qr + qr * w.q_dim, d * w.q_dim)
        kv = d * (kvr + w.rope_head_dim) + kvr * h * (w.head_dim + w.v_head_dim)
        return q + kv + h * w.v_head_dim * d
    return d * (h * w.head_dim + 2.0 * w.kv_dim) + h * w.head_dim * d


def mamba_params(w: Workload):
    """Weights of one Mamba-2 mixer (count): in-projection to ``x, z`` (2 inner), ``B, C``
    (2 state) and the per-head ``dt``, and the out-projection (heads ~ inner/64)."""
    d, di = w.hidden, w.mamba_inner
    return d * (2.0 * di + 2.0 * w.mamba_state + di / 64.0) + di * d


def expert_params(w: Workload):
    """Routed-expert weights of one MoE block (count): ``E n_ffn d_e f_e`` + router
    ``d E`` (``d_e`` = :attr:`Workload.moe_width`)."""
    return w.experts * _n_ffn(w) * w.moe_width * w.moe_ffn + w.hidden * w.experts


def latent_params(w: Workload):
    """The latent projections of one latent-MoE block (count): ``hidden -> moe_latent``
    before the routed experts and back after them, ``2 d l`` (0 without a latent)."""
    return 2.0 * w.hidden * w.moe_latent


def layer_params(w: Workload):
    """Weights of the average block (count): attention, Mamba, dense FFN, shared and
    routed experts weighted by their share of the blocks, + 2 norms. For a dense
    transformer: ``d (d + 2 d_kv) + d^2 + (3 if gated else 2) d f + 2 d``."""
    fa, fm, fd, fe = _fractions(w)
    d = w.hidden
    return (
        fa * attention_params(w)
        + fm * mamba_params(w)
        + fd * _n_ffn(w) * d * w.ffn
        + fe * (_n_ffn(w) * d * w.shared_ffn + expert_params(w) + latent_params(w))
        + 2.0 * d
    )


def dense_layer_params(w: Workload):
    """Weights of the average block that are not routed experts (count)."""
    fe = _fractions(w)[3]
    return layer_params(w) - fe * expert_params(w)


def active_layer_params(w: Workload):
    """Weights of the average block that one token multiplies (count): routed experts
    count ``top_k`` of ``experts`` (norms excluded)."""
    fa, fm, fd, fe = _fractions(w)
    d = w.hidden
    routed = w.top_k * _n_ffn(w) * w.moe_width * w.moe_ffn + d * w.experts
    return (
        fa * attention_params(w)
        + fm * mamba_params(w)
        + fd * _n_ffn(w) * d * w.ffn
        + fe * (_n_ffn(w) * d * w.shared_ffn + routed + latent_params(w))
    )


def embedding_params(w: Workload):
    """Input embedding: ``V d`` table for an LLM, ``P d`` patch projection for video."""
    return jnp.where(w.patch_dim > 0, w.patch_dim * w.hidden, w.vocab * w.hidden)


def head_params(w: Workload):
    """Output head (untied from the input embedding): ``V d``."""
    return w.vocab * w.hidden


def param_count(w: Workload):
    """All parameters (count): layers + embedding + head + final norm."""
    return w.layers * layer_params(w) + embedding_params(w) + head_params(w) + w.hidden


def active_param_count(w: Workload):
    """Parameters one token uses (count), embedding table excluded."""
    return w.layers * active_layer_params(w) + head_params(w) + w.patch_dim * w.hidden


def matmul_params(w: Workload):
    """Parameters that take part in a matmul per token (count): everything but norms,
    and the LLM embedding table (a look-up); MoE counts the active experts."""
    return w.layers * active_layer_params(w) + head_params(w) + w.patch_dim * w.hidden


def window_keys(w: Workload):
    """``(keys, flop_keys)`` of one query in a sliding-window layer: it attends to
    ``min(window, seq)`` keys (at least 1), with no causal halving past the first
    window; a window as long as the sequence is full attention and keeps the halving
    (``flop_keys`` = half the keys when causal)."""
    kv_w = jnp.minimum(jnp.maximum(w.window, 1.0), w.seq)
    return kv_w, jnp.where(kv_w >= w.seq, kv_w * (0.5 if w.causal else 1.0), kv_w)


def attention_flops_per_token(w: Workload):
    """Forward attention FLOP per token: ``2 L_a s h (d_qk + d_v)`` (QK^T and PV; ``4 L s d``
    for plain multi-head attention), halved when causal; in the ``window_layers``
    sliding-window layers a token attends to ``min(window, s)`` keys (not halved)."""
    fa = _fractions(w)[0]
    dv = jnp.where(w.v_head_dim > 0, w.v_head_dim, w.head_dim)
    per_key = 2.0 * w.heads * (w.head_dim + w.rope_head_dim + dv)
    n_attn = fa * w.layers
    n_win = jnp.minimum(w.window_layers, n_attn)
    win = window_keys(w)[1]
    full = w.seq * (0.5 if w.causal else 1.0)
    return per_key * ((n_attn - n_win) * full + n_win * win)


def forward_flops_per_token(w: Workload):
    """Forward FLOP per token: ``2 N_mm + attention`` (norms/elementwise excluded)."""
    return 2.0 * matmul_params(w) + attention_flops_per_token(w)


def model_flops_per_token(w: Workload):
    """Model FLOP per token for MFU: forward + backward (2x forward) = ``3 F``."""
    return 3.0 * forward_flops_per_token(w)


def model_flops_per_step(w: Workload):
    """Model FLOP of one optimizer step: ``3 F * global_batch * seq``."""
    return model_flops_per_token(w) * w.global_batch * w.seq


def units_per_step(w: Workload):
    """Work units (tokens or samples) per optimizer step."""
    return w.global_batch * w.seq if w.unit == "token" else w.global_batch


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


# --------------------------------------------------------------------------------------
# Presets
# --------------------------------------------------------------------------------------

VIDEO_DRIVING_NOTES = """\
video-driving: an end-to-end driving model of the kind trained on fleet video (our
assumptions; Tesla has not published its architecture):
  * 8 cameras (the HW3/HW4 camera count), 4 frames of temporal context per sample;
  * each frame down-sampled to 640 x 480 and cut into 32 x 32 patches -> 20 x 15 = 300
    patches per camera-frame; tokens per sample = 8 x 4 x 300 = 9,600;
  * a linear patch embedding (3 x 32 x 32 = 3,072 inputs -> 1,024) into a ViT-L-sized
    backbone: 24 layers, hidden 1,024, 16 heads, FFN 4,096, full (non-causal)
    space-time attention over all 9,600 tokens; a 256-wide per-token output head
    (occupancy / trajectory decoders folded into it);
  * ~306 M parameters; forward ~1.5e13 FLOP per sample, of which ~60% is attention;
  * global batch 1,024 samples; BF16 training, int8 in-car inference.
"""

#: The preset shapes, each with its public source (``[sources]`` of the file).
PRESETS_FILE = Path(__file__).resolve().parent / "data" / "workloads.toml"


def _load_presets() -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], dict[str, str]]:
    data = read_toml(PRESETS_FILE, "workload presets")
    sources = {str(k): str(v) for k, v in data.get("sources", {}).items()}
    specs, meta = {}, {}
    for name, d in data["workloads"].items():
        d = dict(d)
        meta[name] = {k: d.get(k) for k in ("kind", "source", "note")}
        specs[name] = _from_schema(d)
    return specs, meta, sources


def _check_pos_int(field: str, v: Any, lo: int = 1, hi: int = 10**9) -> int:
    if (
        isinstance(v, bool)
        or not isinstance(v, (int, float))
        or not math.isfinite(v)
        or v != int(v)
        or not lo <= v <= hi
    ):
        raise ValueError(f"workload field '{field}' = {v!r} must be an integer in [{lo}, {hi}]")
    return int(v)


def _check_precision(p: Any, allow_int8: bool = False) -> str:
    allowed = TRAIN_PRECISIONS + (("int8",) if allow_int8 else ())
    if p not in allowed or p not in PRECISIONS:
        raise ValueError(f"workload field 'precision' = {p!r} must be one of {allowed}")
    return p


#: Numeric MoE / attention / hybrid fields of :func:`make_workload` and their ranges.
EXTRA_FIELDS: dict[str, tuple[int, int]] = {
    "experts": (0, 4096),
    "top_k": (0, 64),
    "moe_ffn": (0, 10**6),
    "shared_ffn": (0, 10**6),
    "moe_layers": (0, 10**4),
    "dense_layers": (-1, 10**4),
    "attention_layers": (-1, 10**4),
    "mamba_layers": (0, 10**4),
    "mamba_inner": (0, 10**6),
    "mamba_state": (0, 10**6),
    "head_size": (0, 4096),
    "q_lora_rank": (0, 10**5),
    "kv_lora_rank": (0, 10**5),
    "rope_head_dim": (0, 4096),
    "v_head_dim": (0, 4096),
    "window": (0, 10**8),
    "window_layers": (0, 10**4),
    "moe_latent": (0, 10**6),
}
ATTENTION_KINDS = ("gqa", "mla")


def make_workload(
    *,
    name: str = "custom",
    layers: int,
    hidden: int,
    heads: int,
    kv_heads: int | None = None,
    ffn: int | None = None,
    vocab: int = 50257,
    seq: int = 2048,
    global_batch: int = 1024,
    patch_dim: int = 0,
    precision: str = "bf16",
    gated_ffn: bool = False,
    causal: bool = True,
    unit: str = "token",
    attention: str = "gqa",
    family: str = "custom",
    **extra: Any,
) -> Workload:
    """Validate sizes and build a :class:`Workload` (raises ``ValueError`` naming the
    field, the value and the allowed range). ``kv_heads`` defaults to ``heads``;
    ``ffn`` to ``4 * hidden``. ``extra``: the MoE, attention-variant and hybrid fields
    of :data:`EXTRA_FIELDS` (all 0 for a dense transformer)."""
    kv_heads = heads if kv_heads is None else kv_heads
    ffn = 4 * hidden if ffn is None else ffn
    vals = dict(
        layers=layers,
        hidden=hidden,
        heads=heads,
        kv_heads=kv_heads,
        ffn=ffn,
        vocab=vocab,
        seq=seq,
        global_batch=global_batch,
    )
    for k, v in vals.items():
        lo = 0 if k == "ffn" else 1
        _check_pos_int(k, v, lo, 10**8)
    _check_pos_int("patch_dim", patch_dim, 0, 10**7)
    unknown = set(extra) - set(EXTRA_FIELDS)
    if unknown:
        raise ValueError(
            f"unknown workload field(s) {sorted(unknown)}; allowed: {sorted(EXTRA_FIELDS)}"
        )
    ex = {k: EXTRA_FIELDS[k][0] if EXTRA_FIELDS[k][0] < 0 else 0 for k in EXTRA_FIELDS}
    for k, v in extra.items():
        ex[k] = _check_pos_int(k, v, *EXTRA_FIELDS[k])
    if attention not in ATTENTION_KINDS:
        raise ValueError(
            f"workload field 'attention' = {attention!r} must be one of {ATTENTION_KINDS}"
        )
    if ex["head_size"] == 0 and hidden % heads:
        raise ValueError(f"workload field 'heads' = {heads} must divide hidden = {hidden}")
    if heads % kv_heads:
        raise ValueError(f"workload field 'kv_heads' = {kv_heads} must divide heads = {heads}")
    if ex["experts"] > 0:
        if not 1 <= ex["top_k"] <= ex["experts"]:
            raise ValueError(
                f"workload field 'top_k' = {ex['top_k']} must be in [1, experts = {ex['experts']}]"
            )
        if ex["moe_ffn"] < 1:
            raise ValueError("workload field 'moe_ffn' = 0 must be >= 1 for an MoE model")
        if not 1 <= ex["moe_layers"] <= layers:
            raise ValueError(
                f"workload field 'moe_layers' = {ex['moe_layers']} must be in [1, layers = {layers}]"
            )
        if ex["moe_latent"] > hidden:
            raise ValueError(
                f"workload field 'moe_latent' = {ex['moe_latent']} must be in [0, hidden = "
                f"{hidden}] (0 = experts on the full hidden width)"
            )
    elif ex["moe_layers"] or ex["top_k"] or ex["moe_latent"]:
        raise ValueError("workload fields 'moe_layers'/'top_k'/'moe_latent' need 'experts' >= 1")
    n_attn = layers if ex["attention_layers"] < 0 else ex["attention_layers"]
    if ex["window_layers"] > n_attn:
        raise ValueError(
            f"workload field 'window_layers' = {ex['window_layers']} must be in "
            f"[0, attention layers = {n_attn}]"
        )
    if ex["window_layers"] and ex["window"] < 1:
        raise ValueError("workload field 'window' = 0 must be >= 1 with window_layers > 0")
    _check_precision(precision, allow_int8=True)
    if unit not in WORK_UNITS:
        raise ValueError(f"workload field 'unit' = {unit!r} must be one of {WORK_UNITS}")
    for k, v in (("gated_ffn", gated_ffn), ("causal", causal)):
        if not isinstance(v, bool):
            raise ValueError(f"workload field '{k}' = {v!r} must be true or false")
    return Workload(
        **{k: _f(v) for k, v in vals.items()},
        patch_dim=_f(patch_dim),
        **{k: _f(v) for k, v in ex.items()},
        name=name,
        precision=precision,
        gated_ffn=gated_ffn,
        causal=causal,
        unit=unit,
        attention=attention,
        family=family,
    )


#: Preset-file keys that describe a preset but are not model fields.
_DESCRIPTIVE = (
    "kind",
    "source",
    "note",
    "tied_embeddings",
    "mtp_layers",
)


def _from_schema(d: dict[str, Any]) -> dict[str, Any]:
    """Translate the preset-file schema (``perfmodel/data/workloads.toml``) into
    :func:`make_workload` arguments: ``head_dim`` -> ``head_size``, ``shared_experts``
    x ``moe_ffn`` -> ``shared_ffn``, Mamba heads x head size -> ``mamba_inner``, groups x
    state -> ``mamba_state``."""
    d = {k: v for k, v in d.items() if k not in _DESCRIPTIVE}
    if "head_dim" in d:
        d["head_size"] = d.pop("head_dim")
    se = d.pop("shared_experts", 0)
    if se and "shared_ffn" not in d:
        d["shared_ffn"] = se * d.get("moe_ffn", 0)
    mh, mhd = d.pop("mamba_heads", 0), d.pop("mamba_head_dim", 0)
    if mh:
        d["mamba_inner"] = mh * mhd
    mg = d.pop("mamba_groups", 0)
    if mg and "mamba_state" in d:
        d["mamba_state"] = mg * d["mamba_state"]
    return d


_P, PRESET_META, PRESET_SOURCES = _load_presets()
WORKLOAD_NAMES: tuple[str, ...] = tuple(_P)


def get_workload(name: str) -> Workload:
    """A preset workload by name (see :data:`WORKLOAD_NAMES`).

    Example: ``get_workload("gpt3-175b")`` has 174.6e9 parameters."""
    key = name.strip().lower().replace("_", "-")
    if key not in _P:
        raise KeyError(f"unknown workload '{name}'; known: {', '.join(WORKLOAD_NAMES)}")
    return make_workload(name=key, **_P[key])


def workload_from_dict(d: dict[str, Any], name: str = "custom") -> Workload:
    """Build a workload from a mapping (e.g. a TOML table); ``base = "preset"`` starts
    from a preset and overrides its fields."""
    known = set(NUMERIC_FIELDS) | {
        "name",
        "precision",
        "gated_ffn",
        "causal",
        "unit",
        "base",
        "attention",
        "family",
    }
    unknown = set(d) - known
    if unknown:
        raise ValueError(f"unknown workload field(s) {sorted(unknown)}; allowed: {sorted(known)}")
    spec: dict[str, Any] = {}
    if "base" in d:
        base = str(d["base"]).strip().lower()
        if base not in _P:
            raise KeyError(f"unknown base workload '{base}'; known: {', '.join(WORKLOAD_NAMES)}")
        spec.update(_P[base])
    spec.update({k: v for k, v in d.items() if k != "base"})
    spec.setdefault("name", name)
    missing = [k for k in ("layers", "hidden", "heads") if k not in spec]
    if missing:
        raise ValueError(f"workload is missing required field(s) {missing}")
    return make_workload(**spec)


def load_workload_file(path: str | Path) -> Workload:
    """A workload from a TOML file: top-level keys, or a ``[workload]`` table."""
    p = Path(path)
    data = read_toml(p, "workload")
    data = data.get("workload", data)
    return workload_from_dict(dict(data), name=p.stem)


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
