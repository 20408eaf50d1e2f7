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

import math
from pathlib import Path
from typing import Any

import flax.struct
import jax.numpy as jnp

from perfmodel import roofline as rf
from perfmodel.hardware import BYTES_PER_ELEMENT, PRECISION_INDEX, PRECISIONS, read_toml

#: Precisions a training workload may state (int8 is for inference only).
TRAIN_PRECISIONS = ("bf16", "fp16", "fp8", "fp32", "tf32")
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
    name: str = flax.struct.field(pytree_node=False, default="custom")
    precision: str = flax.struct.field(pytree_node=False, default="bf16")
    gated_ffn: bool = flax.struct.field(pytree_node=False, default=False)
    causal: bool = flax.struct.field(pytree_node=False, default=True)
    unit: str = flax.struct.field(pytree_node=False, default="token")

    # ---- derived sizes (work on traced leaves) ----
    @property
    def head_dim(self):
        return self.hidden / self.heads

    @property
    def kv_dim(self):
        return self.kv_heads * self.hidden / self.heads

    def with_precision(self, precision: str | None) -> Workload:
        if precision is None or precision == self.precision:
            return self
        _check_precision(precision, allow_int8=True)
        return self.replace(precision=precision)

    def with_global_batch(self, global_batch: int | None) -> Workload:
        if global_batch is None:
            return self
        _check_pos_int("global_batch", global_batch)
        return self.replace(global_batch=_f(global_batch))

    def to_dict(self) -> dict[str, Any]:
        d = {k: float(getattr(self, k)) for k in NUMERIC_FIELDS}
        d.update(
            name=self.name,
            precision=self.precision,
            gated_ffn=self.gated_ffn,
            causal=self.causal,
            unit=self.unit,
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
)


# --------------------------------------------------------------------------------------
# Parameter and FLOP counts
# --------------------------------------------------------------------------------------


def layer_params(w: Workload):
    """Weights of one transformer layer (count): QKV + output projection + FFN + 2 norms.

    ``d (d + 2 d_kv) + d^2 + (3 if gated else 2) d f + 2 d``.
    """
    d = w.hidden
    n_ffn = 3.0 if w.gated_ffn else 2.0
    return d * (d + 2.0 * w.kv_dim) + d * d + n_ffn * d * w.ffn + 2.0 * d


def embedding_params(w: Workload):
    """Input embedding: ``V d`` table for an LLM, ``P d`` patch projection for video."""
    return jnp.where(w.patch_dim > 0, w.patch_dim * w.hidden, w.vocab * w.hidden)


def head_params(w: Workload):
    """Output head (untied from the input embedding): ``V d``."""
    return w.vocab * w.hidden


def param_count(w: Workload):
    """All parameters (count): layers + embedding + head + final norm."""
    return w.layers * layer_params(w) + embedding_params(w) + head_params(w) + w.hidden


def matmul_params(w: Workload):
    """Parameters that take part in a matmul per token (count): everything but norms,
    and the LLM embedding table (a look-up)."""
    d = w.hidden
    n_ffn = 3.0 if w.gated_ffn else 2.0
    per_layer = d * (d + 2.0 * w.kv_dim) + d * d + n_ffn * d * w.ffn
    return w.layers * per_layer + head_params(w) + w.patch_dim * d


def attention_flops_per_token(w: Workload):
    """Forward attention FLOP per token: ``4 L s d`` (QK^T and PV), halved when causal."""
    return 4.0 * w.layers * w.seq * w.hidden * (0.5 if w.causal else 1.0)


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
    """Precision of activations, attention and elementwise ops: FP8 training keeps
    them in BF16 (only GEMMs run in FP8, as in Transformer Engine); int8 inference keeps
    everything int8."""
    return "bf16" if precision == "fp8" else precision


def layer_ops(w: Workload, micro_batch, tp, cp, sp) -> list[rf.Op]:
    """Forward ops of one transformer layer for one micro-batch on one rank.

    The rank holds ``T = micro_batch * seq / cp`` tokens (context parallel splits the
    sequence) and a ``1/tp`` slice of every weight matrix (Megatron tensor parallel:
    QKV and FFN-up column-parallel, projections row-parallel). Norms, residual adds and
    the activation run on ``T/tp`` tokens with sequence parallel (``sp = 1``), else on
    all ``T`` tokens (replicated).

    Order: norm, QKV, attention, out-proj, residual, norm, FFN-up, activation,
    FFN-down, residual. Attention is flash-style: queries ``s/cp`` against all ``s``
    keys, causal halves the FLOPs.
    """
    pa = activation_dtype(w.precision)
    pm = w.precision
    d, f = w.hidden, w.ffn
    tok = micro_batch * w.seq / cp
    tok_el = jnp.where(sp > 0, tok / tp, tok)
    n_up = 2.0 if w.gated_ffn else 1.0
    act = (
        rf.elementwise(tok * f / tp, pa, inputs=2, outputs=1, flops_per_element=4.0)
        if w.gated_ffn
        else rf.elementwise(tok * f / tp, pa, inputs=1, outputs=1, flops_per_element=8.0)
    )
    return [
        rf.layernorm(tok_el, d, pa),
        rf.matmul(tok, (d + 2.0 * w.kv_dim) / tp, d, pm),
        rf.attention(micro_batch, w.heads / tp, w.seq / cp, w.seq, w.head_dim, pa, causal=w.causal),
        rf.matmul(tok, d, d / tp, pm),
        rf.elementwise(tok_el * d, pa),
        rf.layernorm(tok_el, d, pa),
        rf.matmul(tok, n_up * f / tp, d, pm),
        act,
        rf.matmul(tok, d, f / tp, pm),
        rf.elementwise(tok_el * d, pa),
    ]


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

_P: dict[str, dict[str, Any]] = {
    # GPT-3 175B as in Brown et al. 2020 (96 x 12288, 96 heads, 2048 tokens, 3.2M-token batch).
    "gpt3-175b": dict(
        layers=96,
        hidden=12288,
        heads=96,
        kv_heads=96,
        ffn=49152,
        vocab=50257,
        seq=2048,
        global_batch=1536,
        precision="bf16",
    ),
    # MLPerf Training GPT-3 175B benchmark: seq 2048, GBS 2048, FP8 (NVIDIA NeMo submissions).
    "gpt3-175b-mlperf": dict(
        layers=96,
        hidden=12288,
        heads=96,
        kv_heads=96,
        ffn=49152,
        vocab=50257,
        seq=2048,
        global_batch=2048,
        precision="fp8",
    ),
    # Megatron-Core strong-scaling GPT-3 175B: seq 4096, vocab 131072, GBS 1152, BF16.
    "gpt3-175b-megatron": dict(
        layers=96,
        hidden=12288,
        heads=96,
        kv_heads=96,
        ffn=49152,
        vocab=131072,
        seq=4096,
        global_batch=1152,
        precision="bf16",
    ),
    # Megatron-LM 1T (Narayanan et al. 2021, Table 1): 128 x 25600, 160 heads, seq 2048, GBS 3072.
    "megatron-1t": dict(
        layers=128,
        hidden=25600,
        heads=160,
        kv_heads=160,
        ffn=102400,
        vocab=51200,
        seq=2048,
        global_batch=3072,
        precision="bf16",
    ),
    # Llama 3 (Dubey et al. 2024, Table 3): GQA with 8 KV heads, SwiGLU, vocab 128256.
    "llama3-8b": dict(
        layers=32,
        hidden=4096,
        heads=32,
        kv_heads=8,
        ffn=14336,
        vocab=128256,
        seq=8192,
        global_batch=512,
        precision="bf16",
        gated_ffn=True,
    ),
    "llama3-70b": dict(
        layers=80,
        hidden=8192,
        heads=64,
        kv_heads=8,
        ffn=28672,
        vocab=128256,
        seq=8192,
        global_batch=2048,
        precision="bf16",
        gated_ffn=True,
    ),
    # 405B: seq 8192, 16M tokens per batch = 2048 sequences.
    "llama3-405b": dict(
        layers=126,
        hidden=16384,
        heads=128,
        kv_heads=8,
        ffn=53248,
        vocab=128256,
        seq=8192,
        global_batch=2048,
        precision="bf16",
        gated_ffn=True,
    ),
    "video-driving": dict(
        layers=24,
        hidden=1024,
        heads=16,
        kv_heads=16,
        ffn=4096,
        vocab=256,
        seq=8 * 4 * 300,
        global_batch=1024,
        patch_dim=3 * 32 * 32,
        precision="bf16",
        causal=False,
        unit="sample",
    ),
}

WORKLOAD_NAMES: tuple[str, ...] = tuple(_P)


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
) -> Workload:
    """Validate sizes and build a :class:`Workload` (raises ``ValueError`` naming the
    field, the value and the allowed range). ``kv_heads`` defaults to ``heads``;
    ``ffn`` to ``4 * hidden``."""
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
        _check_pos_int(k, v, 1, 10**8)
    _check_pos_int("patch_dim", patch_dim, 0, 10**7)
    if hidden % heads:
        raise ValueError(f"workload field 'heads' = {heads} must divide hidden = {hidden}")
    if heads % kv_heads:
        raise ValueError(f"workload field 'kv_heads' = {kv_heads} must divide heads = {heads}")
    _check_precision(precision, allow_int8=True)
    if unit not in WORK_UNITS:
        raise ValueError(f"workload field 'unit' = {unit!r} must be one of {WORK_UNITS}")
    for k, v in (("gated_ffn", gated_ffn), ("causal", causal)):
        if not isinstance(v, bool):
            raise ValueError(f"workload field '{k}' = {v!r} must be true or false")
    return Workload(
        **{k: _f(v) for k, v in vals.items()},
        patch_dim=_f(patch_dim),
        name=name,
        precision=precision,
        gated_ffn=gated_ffn,
        causal=causal,
        unit=unit,
    )


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
    known = set(NUMERIC_FIELDS) | {"name", "precision", "gated_ffn", "causal", "unit", "base"}
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
