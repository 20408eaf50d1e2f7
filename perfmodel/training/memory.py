"""Per-device memory of a training layout (weights, gradients, optimizer state, activations)."""

from __future__ import annotations

import jax.numpy as jnp

from perfmodel import workloads as wl
from perfmodel.training.types import Layout
from perfmodel.workloads import Workload

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
