"""Forward-only inference throughput (samples/s, prefill or decode tokens/s)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from perfmodel import roofline as rf
from perfmodel import workloads as wl
from perfmodel.choices import INFERENCE_MODES as INFERENCE_MODES
from perfmodel.hardware import BYTES_PER_ELEMENT, Chip, load_catalog
from perfmodel.training.search import TP_CHOICES, _max_tp
from perfmodel.training.step import _chip_efficiency, _collective, _ops_time, get_network
from perfmodel.training.types import TrainEfficiency, _f, default_efficiency
from perfmodel.workloads import Workload

# --------------------------------------------------------------------------------------
# Inference (forward only)
# --------------------------------------------------------------------------------------

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
