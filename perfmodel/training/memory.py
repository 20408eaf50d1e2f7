"""Per-device memory of a training layout (weights, gradients, optimizer state, activations)."""

from __future__ import annotations

import jax.numpy as jnp

from perfmodel import workloads as wl
from perfmodel.training.types import Layout, expert_dp, expert_tp
from perfmodel.workloads import Workload

# --------------------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------------------


def _weight_bytes(precision: str) -> float:
    return 4.0 if precision in ("fp32", "tf32") else 2.0


def activation_bytes_per_layer(w: Workload, lay: Layout):
    """Stored activations of the average block for one micro-batch on one rank (byte).

    Per token x hidden (flash attention, no dropout; ``r = ffn/hidden``; ``g`` = 2 if
    gated; ``e`` = 1 byte for FP8/FP4 matmul inputs, else 2): norm inputs 2+2, QKV input e,
    Q 2, K and V 2 kv/heads each, O 2, FFN-up input e, FFN-up output 2 g r, FFN-down
    input e r. An MoE block stores, per routed copy (``k`` = top-k), the dispatched
    input e, the expert up output 2 g r_e and the down input e r_e (``r_e`` =
    moe_ffn/hidden), plus the router input 2; a Mamba-2 block its in-projection input
    e and output ``2 (2 r_m)`` and the out-projection input e r_m (``r_m`` =
    inner/hidden). Each part is weighted by its share of the blocks. With sequence
    parallel everything is divided by tp; without, the norm inputs and the
    QKV/FFN-up inputs are replicated. ``selective`` recomputes norms, the FFN
    activations and the attention core, dropping the QKV/FFN-up/FFN-down inputs;
    ``full`` keeps only the block input (2, divided by tp with SP).
    """
    fa, fm, fd, fe = wl._fractions(w)
    e = 1.0 if w.precision in ("fp8", "fp4") else 2.0
    r = w.ffn / w.hidden
    re_ = w.moe_ffn / w.hidden
    rs = w.shared_ffn / w.hidden
    rm = w.mamba_inner / w.hidden
    g = 2.0 if w.gated_ffn else 1.0
    kvr = w.kv_dim / w.hidden
    qr = w.heads * w.head_dim / w.hidden
    sbh = lay.mb * w.seq / lay.cp * w.hidden
    t = lay.tp
    sp = lay.sp > 0
    k = w.top_k
    rl = jnp.where(w.moe_latent > 0, w.moe_latent / w.hidden, 1.0)  # routed copy width
    lat = jnp.where(w.moe_latent > 0, w.moe_latent / w.hidden, 0.0)  # latent projections
    replicated = 2.0 * fa + 2.0 * (fd + fe) + e * (fa + fd + fe + fm)  # norms, GEMM inputs
    attn = fa * (2.0 * qr + 4.0 * kvr + 2.0 * qr)
    dense = fd * (2.0 * g * r + e * r)
    moe = fe * (k * (e * rl + 2.0 * g * re_ + e * re_) + 2.0 * g * rs + e * rs + 2.0 + e * lat)
    mamba = fm * (4.0 * rm + e * rm)
    sharded = attn + dense + moe + mamba
    none = jnp.where(sp, (replicated + sharded) / t, replicated + sharded / t)
    sel_rep = 2.0 * fa + 2.0 * (fd + fe)
    sel_sh = sharded - e * (fd * r + fe * (k * (rl + re_) + rs + lat) + fm * rm)
    selective = jnp.where(sp, (sel_rep + sel_sh) / t, sel_rep + sel_sh / t)
    full = jnp.where(sp, 2.0 / t, 2.0)
    per = jnp.where(lay.recompute == 0, none, jnp.where(lay.recompute == 1, selective, full))
    return sbh * per, sbh * none, sbh * full


def stage_params_per_device(w: Workload, lay: Layout, last_stage: bool = True):
    """Parameters one device holds (count), ``(dense, experts)``: the layers of its
    pipeline stage sliced over tp (routed experts also over ep), plus the embedding
    (first stage) or head (last stage; both when pp = 1)."""
    t, p = lay.tp, lay.pp
    ends = jnp.where(
        p > 1,
        jnp.maximum(wl.embedding_params(w), wl.head_params(w)),
        wl.embedding_params(w) + wl.head_params(w),
    )
    fe = wl._fractions(w)[3]
    dense = (w.layers / p * wl.dense_layer_params(w) + ends) / t
    experts = w.layers / p * fe * wl.expert_params(w) / (expert_tp(lay) * lay.ep)
    return dense, experts


def state_bytes(lay: Layout):
    """Bytes per parameter of (gradients, optimizer state) beside the 16-bit weights.

    Megatron-Core (``bf16_states = 0``): fp32 main gradients (4; bf16, 2, with
    ``bf16_grads``: ``grad_reduce_in_fp32 = False``) and the distributed optimizer's
    fp32 master copy + Adam's two fp32 moments (12). bf16 states
    (``bf16_states = 1``): bf16 gradients (2) and two bf16 moments (4), with no
    separate master copy; under FSDP (ZeRO-3) the bf16 shard is itself the
    parameter (+2). That is PyTorch FSDP2 on a bf16 model, NeMo AutoModel's default:
    ``NeMoAutoModelForCausalLM.from_config`` builds the model in ``torch.bfloat16``
    when ``torch_dtype`` is ``"auto"``, and its FSDP2 ``MixedPrecisionPolicy``
    computes in bf16 with fp32 gradient reduction; its config notes that fp32
    optimizer state needs ``model.torch_dtype: float32`` (NVIDIA-NeMo/Automodel
    ``nemo_automodel/_transformers/auto_model.py`` and
    ``components/distributed/config.py`` at 36044ad3d139363fb6c73c24af2e7c6b65ec52f6).
    """
    lp = lay.bf16_states > 0.5
    grad_b = jnp.where(lp | (lay.bf16_grads > 0.5), 2.0, 4.0)
    opt_b = jnp.where(lp, 4.0 + jnp.where(lay.zero == 3, 2.0, 0.0), 12.0)
    return grad_b, opt_b


def _memory(w: Workload, lay: Layout, capacity_bytes=None):
    # see memory_per_device
    t, p, d = lay.tp, lay.pp, lay.dp
    m = w.global_batch / (d * lay.mb)
    dense, experts = stage_params_per_device(w, lay)
    g_dense = d * lay.cp
    g_exp = expert_dp(lay)

    def sharded(bytes_per, stage):
        return bytes_per * (
            dense / jnp.where(lay.zero >= stage, g_dense, 1.0)
            + experts / jnp.where(lay.zero >= stage, g_exp, 1.0)
        )

    wb = _weight_bytes(w.precision)
    # FSDP keeps no persistent 16-bit copy: the fp32 shard in the optimizer is the
    # master, and each layer's 16-bit weights are gathered for its use (current layer
    # and the prefetched next one)
    gathered = jnp.minimum(2.0 / jnp.maximum(w.layers / p, 1.0), 1.0) * (dense + experts)
    weights = jnp.where(lay.zero == 3, wb * gathered, sharded(wb, 3))
    grad_b, opt_b = state_bytes(lay)
    grads = sharded(grad_b, 2)
    opt = sharded(opt_b, 1)
    act_layer, act_none_layer, act_ckpt_layer = activation_bytes_per_layer(w, lay)
    inflight = jnp.where(
        p > 1, jnp.minimum(m, p) * jnp.where(lay.vpp > 1, 1.0 + (p - 1.0) / (p * lay.vpp), 1.0), 1.0
    )
    lps = w.layers / p
    tok = lay.mb * w.seq / lay.cp
    # 16-bit logits and their gradient, written in place by the fused cross-entropy
    # (Megatron-Core cross_entropy_loss_fusion: the fp32 softmax stays in the kernel)
    logits = tok * w.vocab / t * 2.0 * 2.0
    # offloaded layers keep their activations in host memory; one layer's activations
    # are in transit (being copied out, or back for its backward) at a time
    f_off = offloaded_share(w, lay)
    in_transit = jnp.where(f_off > 0, offloaded_layer_bytes(lay, act_layer, act_none_layer), 0.0)
    on_device = lps * (1.0 - f_off)
    static = weights + grads + opt + logits + in_transit
    f = recompute_fraction(
        lay, on_device, inflight, act_none_layer, act_ckpt_layer, static, capacity_bytes
    )
    stored = jnp.where(
        lay.recompute == 3, (1.0 - f) * act_none_layer + f * act_ckpt_layer, act_layer
    )
    acts = on_device * stored * inflight + in_transit
    # one recomputed layer's full activations live during its backward
    rec_on = (lay.recompute == 2) | ((lay.recompute == 3) & (f > 0))
    acts = acts + jnp.where(rec_on, act_none_layer, 0.0) + logits
    # the recomputed share of all the stage's layers (offloaded layers are not recomputed)
    return (weights, grads, opt, acts, weights + grads + opt + acts), f * (1.0 - f_off)


def offloaded_layer_bytes(lay: Layout, act_layer, act_none_layer):
    """Stored activations of one offloaded layer and micro-batch (byte), what goes to
    host memory and comes back: the layer's stored set under its recompute mode, its
    full set under ``block`` (offloaded layers are not the recomputed ones); arguments
    as :func:`activation_bytes_per_layer` returns them."""
    return jnp.where(lay.recompute == 3, act_none_layer, act_layer)


def offloaded_share(w: Workload, lay: Layout):
    """Share of each pipeline stage's layers whose activations are offloaded to host
    memory (0..1): ``offload_layers`` over the stage's layers, clipped."""
    return jnp.clip(lay.offload_layers / jnp.maximum(w.layers / lay.pp, 1.0), 0.0, 1.0)


def memory_per_device(w: Workload, lay: Layout, capacity_bytes=None):
    """Per-device memory (byte): ``(weights, grads, optimizer, activations, total)``.

    As Megatron-Core lays it out: bf16 weights, fp32 main gradients (4 byte/param) and
    Adam's fp32 master copy + 2 moments (12 byte/param); with ``lay.bf16_states`` bf16
    gradients and moments (:func:`state_bytes`). The distributed optimizer
    (ZeRO-1) shards the optimizer state over the ``dp x cp`` group (routed experts over
    their expert-data-parallel group ``dp x cp / ep``); ZeRO-2 also the gradients,
    ZeRO-3 (FSDP) shards the gradients too and keeps no persistent 16-bit weights:
    the fp32 master shard is the parameter, and two layers' 16-bit weights are
    gathered at a time (the current one and the prefetched next). FP8/FP4 recipes
    keep the bf16 weights (the low-precision copies are transient). Logits: 16-bit
    logits plus their in-place gradient (the fused cross-entropy). ``block``
    recompute stores the activations of the layers it does not recompute, as many as
    ``capacity_bytes`` allows (see :func:`recompute_fraction`). Offloaded layers
    (``lay.offload_layers``) keep no activations on the device; one layer's are in
    transit at a time."""
    return _memory(w, lay, capacity_bytes)[0]


def recomputed_share(w: Workload, lay: Layout, capacity_bytes=None):
    """Share of the layers whose forward is recomputed in the backward (0..1): 1 for
    ``full``, the fewest whole layers that fit ``capacity_bytes`` for ``block``."""
    return _memory(w, lay, capacity_bytes)[1]


def recompute_fraction(lay, lps, inflight, act_none, act_ckpt, static, capacity_bytes):
    """Share of each stage's layers that recompute their forward (0..1, whole layers).

    ``full`` recomputes every layer (1). ``block`` (Megatron-Core ``--recompute-method
    block --recompute-num-layers k``) recomputes the fewest whole layers ``k`` of the
    stage that make the activations fit ``capacity_bytes`` (1 when no capacity is
    given, or when even all layers do not fit); ``none``/``selective`` 0. Each layer
    keeps either all its activations or only its input checkpoint, and one recomputed
    layer's activations live during its backward."""
    if capacity_bytes is None:
        need = jnp.ones_like(lps * act_none)
    else:
        over = static + act_none + lps * inflight * act_none - capacity_bytes
        saved = jnp.maximum(lps * inflight * (act_none - act_ckpt), 1e-30)
        k = jnp.ceil(jnp.clip(over / saved, 0.0, 1.0) * lps - 1e-9)
        need = jnp.clip(k / jnp.maximum(lps, 1.0), 0.0, 1.0)
    # a stated layer count (``recompute_layers`` > 0) replaces the fewest that fit
    given = jnp.clip(lay.recompute_layers / jnp.maximum(lps, 1.0), 0.0, 1.0)
    need = jnp.where(lay.recompute_layers > 0, given, need)
    return jnp.where(lay.recompute == 2, 1.0, jnp.where(lay.recompute == 3, need, 0.0))
