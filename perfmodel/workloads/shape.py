"""The :class:`Workload` pytree and its parameter and FLOP counts (see :mod:`perfmodel.workloads`)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax.numpy as jnp

from perfmodel.choices import TRAIN_PRECISIONS as TRAIN_PRECISIONS
from perfmodel.hardware import PRECISIONS, struct

WORK_UNITS = ("token", "sample")


def _f(x):
    return jnp.asarray(x, dtype=jnp.result_type(float))


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


@struct.dataclass
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
    name: str = struct.field(pytree_node=False, default="custom")
    precision: str = struct.field(pytree_node=False, default="bf16")
    gated_ffn: bool = struct.field(pytree_node=False, default=False)
    causal: bool = struct.field(pytree_node=False, default=True)
    unit: str = struct.field(pytree_node=False, default="token")
    attention: str = struct.field(pytree_node=False, default="gqa")
    family: str = struct.field(pytree_node=False, default="custom")

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
