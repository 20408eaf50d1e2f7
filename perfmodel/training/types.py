"""Training pytrees: the parallel layout, the efficiency assumptions and the step result."""

from __future__ import annotations

from typing import Any

import flax.struct
import jax.numpy as jnp

from perfmodel import roofline as rf

RECOMPUTE = ("none", "selective", "full")
LAYOUT_FIELDS = ("tp", "pp", "dp", "cp", "mb", "vpp", "sp", "recompute", "zero")


def _f(x):
    return jnp.asarray(x, dtype=jnp.result_type(float))


# --------------------------------------------------------------------------------------
# Pytrees
# --------------------------------------------------------------------------------------


@flax.struct.dataclass
class Layout:
    """A parallel layout (all float leaves, so layouts stack for ``vmap``).

    tp, pp, dp, cp: tensor, pipeline, data and context parallel sizes (N = tp pp dp cp).
    mb: micro-batch (samples). vpp: virtual pipeline stages per device (1 = plain 1F1B).
    sp: sequence parallel on (1) or off (0). recompute: 0 none, 1 selective, 2 full.
    zero: ZeRO stage 0-3 over DP (1 = distributed optimizer, 3 = FSDP).
    """

    tp: jnp.ndarray
    pp: jnp.ndarray
    dp: jnp.ndarray
    cp: jnp.ndarray
    mb: jnp.ndarray
    vpp: jnp.ndarray
    sp: jnp.ndarray
    recompute: jnp.ndarray
    zero: jnp.ndarray

    def to_dict(self) -> dict[str, Any]:
        d = {k: int(round(float(getattr(self, k)))) for k in LAYOUT_FIELDS}
        d["recompute"] = RECOMPUTE[d["recompute"]]
        d["sp"] = bool(d["sp"])
        return d


def make_layout(
    tp: int = 1,
    pp: int = 1,
    dp: int = 1,
    cp: int = 1,
    mb: int = 1,
    vpp: int = 1,
    sp: bool | int = False,
    recompute: str | int = "none",
    zero: int = 1,
) -> Layout:
    """Validate and build a :class:`Layout` (ValueError naming the field and range)."""
    vals = dict(tp=tp, pp=pp, dp=dp, cp=cp, mb=mb, vpp=vpp)
    for k, v in vals.items():
        if (
            isinstance(v, bool)
            or not isinstance(v, (int, float))
            or v != int(v)
            or not 1 <= v <= 10**7
        ):
            raise ValueError(f"layout field '{k}' = {v!r} must be an integer >= 1")
    if isinstance(recompute, str):
        if recompute not in RECOMPUTE:
            raise ValueError(f"layout field 'recompute' = {recompute!r} must be one of {RECOMPUTE}")
        recompute = RECOMPUTE.index(recompute)
    if recompute not in (0, 1, 2):
        raise ValueError(f"layout field 'recompute' = {recompute!r} must be 0, 1 or 2")
    if zero not in (0, 1, 2, 3):
        raise ValueError(f"layout field 'zero' = {zero!r} must be 0, 1, 2 or 3")
    if sp not in (0, 1, True, False):
        raise ValueError(f"layout field 'sp' = {sp!r} must be 0 or 1")
    if vpp > 1 and pp == 1:
        raise ValueError(f"layout field 'vpp' = {vpp} needs pp > 1")
    return Layout(
        **{k: _f(v) for k, v in vals.items()},
        sp=_f(int(sp)),
        recompute=_f(recompute),
        zero=_f(zero),
    )


@flax.struct.dataclass
class TrainEfficiency:
    """The ONE set of efficiency assumptions used for every prediction.

    Attributes:
      roofline: per-op-kind compute fractions of dense peak, memory fractions and a
        per-op overhead (s), see :class:`perfmodel.roofline.Efficiency`.
      fp8_matmul: FP8 GEMMs reach this fraction of the BF16 GEMM efficiency
        (cuBLAS/TE FP8 GEMMs run at ~70% of FP8 peak vs ~80% of BF16 peak on H100).
      tp_overlap, cp_overlap, pp_overlap: fraction of TP / CP / PP communication
        hidden under compute.
      dp_tail: fraction of each DP collective that stays exposed however long the
        overlap window (the last gradient bucket).
      mem_usable: fraction of DRAM usable for the model state (the rest: CUDA context,
        communication buffers, allocator fragmentation).
      grad_comm_bytes: bytes per gradient element in the DP reduction (fp32).
      step_overhead_s: fixed time per optimizer step (s).
    """

    roofline: rf.Efficiency
    fp8_matmul: jnp.ndarray
    tp_overlap: jnp.ndarray
    cp_overlap: jnp.ndarray
    pp_overlap: jnp.ndarray
    dp_tail: jnp.ndarray
    mem_usable: jnp.ndarray
    grad_comm_bytes: jnp.ndarray
    step_overhead_s: jnp.ndarray


def default_efficiency() -> TrainEfficiency:
    """The ONE documented set of assumptions used for every prediction (no per-case
    tuning; checked against the published runs in :data:`PUBLISHED_RUNS`):

    * matmul (and conv) 0.60 of dense peak: sustained GEMMs in real training, with the
      TP-sliced shapes and the clock drop of a 700 W H100 under full tensor load
      (~600 of 989 BF16 TFLOP/s); FP8 GEMMs reach the same fraction of FP8 peak
      (``fp8_matmul = 1.0``);
    * attention 0.50 (FlashAttention forward + backward on H100);
    * elementwise and norms 1.0 of compute (they are memory-bound anyway); 0.90 of SRAM
      and 0.85 of DRAM bandwidth; 3 us per op (launch and tail);
    * half of the TP communication hidden (``tp_overlap = 0.5``: Megatron/TE
      ``--tp-comm-overlap``), half of CP, no PP overlap, 10% DP tail;
    * 95% of DRAM usable; fp32 gradient reduction; no fixed per-step overhead.
    """
    return TrainEfficiency(
        roofline=rf.Efficiency(_f([0.60, 0.50, 1.0, 1.0, 0.60]), _f([0.90, 0.85]), _f(3e-6)),
        fp8_matmul=_f(1.0),
        tp_overlap=_f(0.5),
        cp_overlap=_f(0.5),
        pp_overlap=_f(0.0),
        dp_tail=_f(0.1),
        mem_usable=_f(0.95),
        grad_comm_bytes=_f(4.0),
        step_overhead_s=_f(0.0),
    )


@flax.struct.dataclass
class StepResult:
    """Everything :func:`step_time` computes for one layout (seconds, bytes, ratios)."""

    step_time_s: jnp.ndarray
    units_per_s: jnp.ndarray
    mfu: jnp.ndarray
    compute_s: jnp.ndarray
    recompute_s: jnp.ndarray
    bubble_s: jnp.ndarray
    tp_comm_s: jnp.ndarray
    cp_comm_s: jnp.ndarray
    pp_comm_s: jnp.ndarray
    dp_comm_s: jnp.ndarray
    optimizer_s: jnp.ndarray
    overhead_s: jnp.ndarray
    memory_bytes: jnp.ndarray
    weights_bytes: jnp.ndarray
    grads_bytes: jnp.ndarray
    optimizer_bytes: jnp.ndarray
    activations_bytes: jnp.ndarray
    capacity_bytes: jnp.ndarray
    fits: jnp.ndarray
    valid: jnp.ndarray
