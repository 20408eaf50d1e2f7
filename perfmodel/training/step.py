"""The training-step time model (see :mod:`perfmodel.training` for the formulas)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from perfmodel import roofline as rf
from perfmodel import workloads as wl
from perfmodel.hardware import PRECISION_INDEX, Chip
from perfmodel.training.memory import _weight_bytes, memory_per_device
from perfmodel.training.types import (
    Layout,
    StepResult,
    TrainEfficiency,
    _f,
    default_efficiency,
)
from perfmodel.workloads import Workload

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


_jit_step_impl = jax.jit(step_time, static_argnames=("smooth",))


def _jit_step(w, chip, net, lay, n, eff, smooth=False):
    # the preset name is static in the pytree: strip it so presets share compilations
    return _jit_step_impl(
        w.replace(name=""), chip.replace(name=""), net, lay, n, eff, smooth=smooth
    )
