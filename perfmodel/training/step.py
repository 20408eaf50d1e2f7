"""The training-step time model (see :mod:`perfmodel.training` for the formulas)."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from perfmodel import roofline as rf
from perfmodel import workloads as wl
from perfmodel.hardware import PRECISION_INDEX, Chip
from perfmodel.interconnect import collective_time_s, network_for
from perfmodel.training.memory import (
    _memory,
    _weight_bytes,
    activation_bytes_per_layer,
    offloaded_layer_bytes,
    offloaded_share,
    stage_params_per_device,
)
from perfmodel.training.types import (
    Layout,
    StepResult,
    TrainEfficiency,
    _f,
    default_efficiency,
    expert_dp,
    expert_tp,
)
from perfmodel.workloads import Workload

# --------------------------------------------------------------------------------------
# Network access (perfmodel.interconnect)
# --------------------------------------------------------------------------------------


def get_network(chip_key: str, catalog=None):
    """The :class:`perfmodel.interconnect.Network` a chip of ``chip_key`` sees (its
    default system: NVLink domain + NIC, NVL72, Dojo tile mesh + Z-plane, ...)."""
    return network_for(chip_key, catalog)


def _collective(kind, nbytes, group, net, members_per_domain, smooth=False):
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
# Step time
# --------------------------------------------------------------------------------------


def _ops_time(ops, chip: Chip, eff: rf.Efficiency, smooth: bool):
    # an op a block does not have (zero FLOPs and bytes) costs nothing, not its overhead
    # (sizes are floored at 1 so that smooth gradients stay finite)
    out = []
    for o in ops:
        present = (o.flops > 0) | (o.bytes > 0)
        o1 = dataclasses.replace(
            o,
            flops=jnp.maximum(o.flops, 1.0),
            bytes=jnp.maximum(o.bytes, 1.0),
            working_set_bytes=jnp.maximum(o.working_set_bytes, 1.0),
        )
        out.append(rf.op_time(o1, chip, eff, smooth=smooth).time_s * present)
    return out


def _chip_efficiency(w: Workload, te: TrainEfficiency) -> rf.Efficiency:
    eff = te.roofline
    scale = {"fp8": te.fp8_matmul, "fp4": te.fp4_matmul}.get(w.precision)
    if scale is not None:
        eff = dataclasses.replace(
            eff, compute=eff.compute.at[rf.OP_KIND_INDEX["matmul"]].multiply(scale)
        )
    return eff


def power_throttle(chip: Chip, te: TrainEfficiency):
    """Clock factor under sustained full tensor load: ``min(1, TDP / (bf16 peak x
    tensor_j_per_flop))`` (1 where ``tensor_j_per_flop`` is 0)."""
    draw = chip.peak_flops_per_s[PRECISION_INDEX["bf16"]] * te.tensor_j_per_flop
    return jnp.where(draw > 0, jnp.minimum(1.0, chip.tdp_w / jnp.maximum(draw, 1e-30)), 1.0)


#: Indices into :func:`perfmodel.workloads.layer_ops` recomputed by ``selective``:
#: norms, attention core, the FFN and expert activations.
SELECTIVE_OPS = (0, wl.ATTENTION_OP_INDEX, 5, 7, 14)
#: The routed experts' grouped GEMMs (their efficiency is ``moe_gemm`` x matmul).
ROUTED_GEMM_OPS = (13, 15)


def cp_merge_op(w: Workload, micro_batch, tp, cp) -> rf.Op:
    """Context parallel (ring attention): each of the ``cp - 1`` further ring steps
    runs its own attention kernel and merges its partial output into the running one
    (online softmax in fp32: read both partials, write one) over the rank's
    ``s/cp`` queries and ``heads/tp`` heads; its launch costs one op overhead."""
    fa = wl._fractions(w)[0]
    n = (cp - 1.0) * micro_batch * w.seq / cp * w.heads / tp * w.head_dim * fa
    return rf.elementwise(n, "fp32", inputs=2, outputs=1)


def moe_launch_s(w: Workload, ep, te: TrainEfficiency):
    """Kernel launches of the routed experts' grouped GEMM beyond the one the roofline
    counts, per forward of the average block (s): Transformer Engine's grouped linear
    runs one cuBLAS GEMM per local expert (``nvte_multi_stream_cublas_gemm``, spread
    over 4 streams), so each of the ``E/ep`` local experts after the first pays one
    per-kernel overhead, for the up and for the down projection."""
    local = jnp.maximum(w.experts / ep, 1.0)
    return wl._fractions(w)[3] * 2.0 * (local - 1.0) * te.roofline.overhead_s


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
    thr = power_throttle(chip, te)
    tensor = jnp.zeros(reff.compute.shape).at[rf.OP_KIND_INDEX["matmul"]].set(1.0)
    tensor = (
        tensor.at[rf.OP_KIND_INDEX["attention"]].set(1.0).at[rf.OP_KIND_INDEX["conv2d"]].set(1.0)
    )
    reff = dataclasses.replace(reff, compute=reff.compute * (1.0 + tensor * (thr - 1.0)))
    t, p, d, c, b, v = lay.tp, lay.pp, lay.dp, lay.cp, lay.mb, lay.vpp
    n = t * p * d * c
    n_chips = n if n_chips is None else _f(n_chips)
    m = w.global_batch / (d * b)
    act_b = 4.0 if w.precision in ("fp32", "tf32") else 2.0  # activations exchanged in 16 bit

    # ---- compute per layer (one micro-batch, one rank) ----
    etp = expert_tp(lay)
    ops = wl.layer_ops(w, b, t, c, lay.sp, lay.ep, etp)
    tok_e = wl.tokens_per_expert(w, b, t, c, lay.ep, etp)
    pad = tok_e / (tok_e + te.moe_pad_tokens)
    moe_eff = dataclasses.replace(
        reff, compute=reff.compute.at[rf.OP_KIND_INDEX["matmul"]].multiply(te.moe_gemm * pad)
    )
    times = [
        _ops_time([o], chip, moe_eff if i in ROUTED_GEMM_OPS else reff, smooth)[0]
        for i, o in enumerate(ops)
    ]
    if w.precision in ("fp8", "fp4"):
        # amax + cast (+ transposed copy) of every GEMM input: memory passes, bf16 in,
        # 8 bit out, counted per forward; the backward's share is in quant_passes
        q = rf.elementwise(wl.gemm_input_elements(w, b, t, c, lay.sp), "bf16", inputs=1, outputs=1)
        quant = te.quant_passes * _ops_time([q], chip, reff, smooth)[0]
    else:
        quant = 0.0
    # the merge op is empty at cp = 1 (so it costs nothing), plus one launch per ring step
    cp_extra = _ops_time([cp_merge_op(w, b, t, c)], chip, reff, smooth)[0]
    cp_extra = cp_extra + (c - 1.0) * te.roofline.overhead_s
    # host-side MoE costs; a fully captured CUDA graph has neither (see Layout.full_graph)
    moe_fixed = (1.0 - float(lay.full_graph)) * (
        wl._fractions(w)[3] * te.moe_layer_overhead_s + moe_launch_s(w, lay.ep, te)
    )
    layer_fwd = sum(times) + quant + cp_extra + moe_fixed
    sel = sum(times[i] for i in SELECTIVE_OPS)
    # share of layers recomputed in full (full: all; block: the fewest that fit)
    cap = chip.mem_bytes[1] * te.mem_usable
    (weights, grads, opt, acts, total), f_rec = _memory(w, lay, cap)
    rec = f_rec * layer_fwd + jnp.where(lay.recompute == 1, sel, 0.0)
    # ---- activation offload: each offloaded layer's stored activations go to host
    # memory over the host link while the next layer's forward runs, and come back
    # while the backward of the layer after it runs (twice the forward); only the
    # part of each copy longer than that window is exposed ----
    off_bytes = offloaded_layer_bytes(lay, *activation_bytes_per_layer(w, lay)[:2])
    host_s = off_bytes / jnp.maximum(chip.host_bytes_per_s, 1.0)
    off_layer = (
        _max(host_s, layer_fwd, smooth) - layer_fwd + _max(host_s, 2.0 * layer_fwd, smooth)
    ) - 2.0 * layer_fwd
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
    n_tp = 4.0 + 2.0 * f_rec
    tp_layer = (1.0 - te.tp_overlap) * n_tp * one_tp

    # ---- CP ----
    kv_bytes = b * w.seq * 2.0 * w.kv_dim / jnp.minimum(t, w.kv_heads) * act_b
    mpd_cp = jnp.clip(jnp.floor(domain / t), 1.0, c)
    ag_kv = coll("all_gather", kv_bytes, c, members_per_domain=mpd_cp)
    rs_kv = coll("reduce_scatter", kv_bytes, c, members_per_domain=mpd_cp)
    cp_layer = (1.0 - te.cp_overlap) * (2.0 * ag_kv + rs_kv + f_rec * ag_kv)

    # ---- EP: all-to-all dispatch and combine of the routed copies (moe_width wide) ----
    fe = wl._fractions(w)[3]
    a2a_bytes = jnp.where(lay.sp > 0, tok / t, tok) * w.top_k * w.moe_width * act_b
    # the EP group's ranks are strided by tp, or (etp = 1) contiguous over tp x dp
    mpd_ep = jnp.clip(jnp.where(etp < t, domain, jnp.floor(domain / t)), 1.0, lay.ep)
    a2a = coll("all_to_all", a2a_bytes, lay.ep, members_per_domain=mpd_ep)
    n_a2a = 4.0 + 2.0 * f_rec
    ep_layer = (1.0 - te.ep_overlap) * fe * n_a2a * a2a

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
    off_mb = offloaded_share(w, lay) * lps * off_layer
    comm_mb = lps * (tp_layer + cp_layer + ep_layer)
    t_mb = compute_mb + rec_mb + off_mb + comm_mb + pp_mb
    n_slots = m + (p - 1.0) / v
    pipeline = n_slots * t_mb
    bubble = (p - 1.0) / v * t_mb

    # ---- DP ----
    dense_p, expert_p = stage_params_per_device(w, lay)
    wb = _weight_bytes(w.precision)
    mpd_dp = jnp.clip(jnp.floor(domain / (t * c)), 1.0, d)
    g_dp, g_ep = d * c, expert_dp(lay)

    def dp_coll(kind, per_param):
        return coll(kind, dense_p * per_param, g_dp, members_per_domain=mpd_dp) + coll(
            kind, expert_p * per_param, g_ep, members_per_domain=jnp.minimum(mpd_dp, g_ep)
        )

    # gradients reduced in fp32 (grad_comm_bytes) unless the recipe reduces in bf16
    grad_b = 2.0 if float(lay.bf16_grads) > 0.5 else te.grad_comm_bytes
    ar_g = dp_coll("all_reduce", grad_b)
    rs_g = dp_coll("reduce_scatter", grad_b)
    ag_w = dp_coll("all_gather", wb)
    bwd_win = lps * 2.0 * layer_fwd
    fwd_win = lps * layer_fwd
    tail = te.dp_tail
    exp0 = _max(ar_g - bwd_win, tail * ar_g, smooth)
    exp12 = _max(rs_g - bwd_win, tail * rs_g, smooth) + _max(ag_w - fwd_win, tail * ag_w, smooth)
    per_mb3 = 2.0 * ag_w + rs_g
    exp3 = m * _max(per_mb3 - (compute_mb + rec_mb), tail * per_mb3, smooth)
    dp_exposed = jnp.where(lay.zero == 0, exp0, jnp.where(lay.zero == 3, exp3, exp12))
    dp_exposed = jnp.where(d * c > 1, dp_exposed, 0.0)

    # ---- optimizer ----
    owned = dense_p / jnp.where(lay.zero >= 1, g_dp, 1.0) + expert_p / jnp.where(
        lay.zero >= 1, g_ep, 1.0
    )
    # Adam reads and writes master, both moments and reads the gradient: 32 byte/param
    # in fp32, 16 with bf16 states
    opt_traffic = jnp.where(lay.bf16_states > 0.5, 16.0, 32.0)
    opt_s = owned * opt_traffic / (chip.mem_bytes_per_s[1] * te.roofline.memory[1])

    step = pipeline + dp_exposed + opt_s + te.step_overhead_s
    units = wl.units_per_step(w)
    peak = chip.peak_flops_per_s[PRECISION_INDEX[w.precision]]
    mfu = wl.model_flops_per_step(w) / (step * n_chips * peak)

    valid = (
        (jnp.abs(n - n_chips) < 0.5)
        & (jnp.abs(m - jnp.round(m)) < 1e-9)
        & (m >= 1)
        & (jnp.abs(w.heads / t - jnp.round(w.heads / t)) < 1e-9)
        & (jnp.abs(t * d * c / lay.ep - jnp.round(t * d * c / lay.ep)) < 1e-9)
        & (v >= 1)
        & ((v == 1) | (p > 1))
        & ((lay.offload_layers < 0.5) | (chip.host_bytes_per_s > 0))
    )
    return StepResult(
        step_time_s=step,
        units_per_s=units / step,
        mfu=mfu,
        compute_s=m * compute_mb,
        recompute_s=m * rec_mb,
        offload_s=m * off_mb,
        bubble_s=bubble,
        tp_comm_s=m * lps * tp_layer,
        cp_comm_s=m * lps * cp_layer,
        ep_comm_s=m * lps * ep_layer,
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
        recompute_share=jnp.broadcast_to(f_rec, step.shape),
        valid=valid,
    )


_jit_step_impl = jax.jit(step_time, static_argnames=("smooth",))


def _jit_step(w, chip, net, lay, n, eff, smooth=False):
    # the preset name is static in the pytree: strip it so presets share compilations
    return _jit_step_impl(
        dataclasses.replace(w, name=""),
        dataclasses.replace(chip, name=""),
        net,
        lay,
        n,
        eff,
        smooth=smooth,
    )
