"""Pytrees of the serving model: efficiencies, parallel layout, request and scenario.

All numeric fields are float leaves (SI units: s, byte, token counts), so a stack of
layouts, scenarios or chips can be ``vmap``-ed; names stay outside the pytrees.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jax.numpy as jnp

from perfmodel.hardware import read_toml, struct


def _f(x):
    return jnp.asarray(x, dtype=jnp.result_type(float))


#: "No limit" for a latency field (s): large and finite, so arithmetic stays finite.
NO_LIMIT_S = 1e9


@struct.dataclass
class ServeEfficiency:
    """Achieved fractions of peak and fixed costs of an LLM serving engine.

    Attributes:
      matmul: fraction of the chip's dense peak at the GEMM precision reached by the
        weight GEMMs (prefill and decode), in (0, 1].
      attention: fraction of the bf16 dense peak reached by attention (prefill), (0, 1].
      dram: fraction of the DRAM bandwidth reached by weight and KV-cache reads, (0, 1].
      fp4_matmul: factor on ``matmul`` for FP4 GEMMs (FP4 kernels reach a smaller share
        of their doubled peak), (0, 1.5].
      moe_gemm: factor on ``matmul`` for the routed experts' grouped GEMMs, (0, 1.5].
      gemm_half_rows: GEMM rows (tokens) at which a GEMM reaches half of ``matmul``
        (tile and wave quantisation of skinny decode GEMMs: efficiency
        ``matmul x M / (M + gemm_half_rows)``), >= 0.
      gemm_half_hidden: model width (hidden size) at which the GEMMs reach half of
        ``matmul`` (narrow models' GEMMs have short K loops and few output tiles, so
        tile prologue/epilogue, wave quantisation and the per-token non-GEMM work
        fused into them weigh more: efficiency ``x hidden / (hidden +
        gemm_half_hidden)``; ``matmul`` is then the limit of a very wide model), >= 0.
      seq_overhead_s: engine time per sequence in flight per iteration (scheduling,
        sampling, KV-block bookkeeping), s.
      op_overhead_s: fixed time per kernel (launch, tail), s.
      step_overhead_s: fixed time per engine iteration (scheduling, sampling, host
        round trip), s.
      tpot_p99: p99 over requests of the time per output token, as a multiple of the
        mean step time (burstiness of Poisson arrivals and prefill chunks), >= 1.
      mem_usable: fraction of DRAM that holds weights and KV cache (the rest: runtime,
        activations, fragmentation), (0, 1].
    """

    matmul: jnp.ndarray
    attention: jnp.ndarray
    dram: jnp.ndarray
    fp4_matmul: jnp.ndarray
    moe_gemm: jnp.ndarray
    gemm_half_rows: jnp.ndarray
    gemm_half_hidden: jnp.ndarray
    seq_overhead_s: jnp.ndarray
    op_overhead_s: jnp.ndarray
    step_overhead_s: jnp.ndarray
    tpot_p99: jnp.ndarray
    mem_usable: jnp.ndarray


#: The fitted parameters (in this order in a parameter vector).
FIT_PARAMS: tuple[str, ...] = (
    "matmul",
    "attention",
    "dram",
    "fp4_matmul",
    "moe_gemm",
    "gemm_half_rows",
    "gemm_half_hidden",
    "seq_overhead_s",
    "op_overhead_s",
    "step_overhead_s",
    "tpot_p99",
)

#: Priors (documented guesses before any fit): cuBLAS-class GEMMs at ~70% of peak,
#: FlashAttention ~50%, STREAM-class 85% of HBM, FP4 GEMMs at 80% of the FP8 share,
#: grouped expert GEMMs at 80% of dense ones, half efficiency at 32 GEMM rows, 1 us
#: per sequence per iteration,
#: 3 us per kernel, 2 ms per engine iteration, p99 TPOT 1.3x the mean, 90% of DRAM.
PRIOR: dict[str, float] = {
    "matmul": 0.70,
    "attention": 0.50,
    "dram": 0.85,
    "fp4_matmul": 0.80,
    "moe_gemm": 0.80,
    "gemm_half_rows": 32.0,
    "gemm_half_hidden": 1024.0,
    "seq_overhead_s": 1e-6,
    "op_overhead_s": 3e-6,
    "step_overhead_s": 2e-3,
    "tpot_p99": 1.3,
    "mem_usable": 0.90,
}

#: Bounds of each fitted parameter (natural units).
BOUNDS: dict[str, tuple[float, float]] = {
    "matmul": (0.2, 1.0),
    # FlashAttention-2 forward reaches 35-73% of the dense peak from short to long
    # sequences (Dao 2023, arXiv:2307.08691, fig. 4-5): below 0.3 the fit would use
    # attention to absorb a prefill cost the model lacks
    "attention": (0.3, 1.0),
    "dram": (0.3, 1.0),
    "fp4_matmul": (0.3, 1.5),
    "moe_gemm": (0.2, 1.5),
    "gemm_half_rows": (0.0, 2048.0),
    "gemm_half_hidden": (0.0, 8192.0),
    "seq_overhead_s": (0.0, 20e-6),
    "op_overhead_s": (0.0, 20e-6),
    "step_overhead_s": (0.0, 20e-3),
    "tpot_p99": (1.0, 3.0),
}


def efficiency_from_dict(d: dict[str, Any]) -> ServeEfficiency:
    """A :class:`ServeEfficiency` from a mapping; missing keys take :data:`PRIOR`."""
    unknown = set(d) - set(PRIOR)
    if unknown:
        raise ValueError(f"unknown serving efficiency field(s) {sorted(unknown)}")
    vals = {**PRIOR, **{k: float(v) for k, v in d.items()}}
    for k, (lo, hi) in {**BOUNDS, "mem_usable": (0.05, 1.0)}.items():
        if not lo <= vals[k] <= hi:
            raise ValueError(
                f"serving efficiency field '{k}' = {vals[k]!r} must be in [{lo}, {hi}]"
            )
    return ServeEfficiency(**{k: _f(v) for k, v in vals.items()})


def efficiency_from_params(theta, base: ServeEfficiency | None = None) -> ServeEfficiency:
    """Replace the :data:`FIT_PARAMS` of ``base`` (default: the prior) by ``theta``
    (traceable: no checks)."""
    base = prior_efficiency() if base is None else base
    return dataclasses.replace(base, **{k: theta[i] for i, k in enumerate(FIT_PARAMS)})


def efficiency_params(eff: ServeEfficiency) -> list[float]:
    return [float(getattr(eff, k)) for k in FIT_PARAMS]


def prior_efficiency() -> ServeEfficiency:
    return efficiency_from_dict({})


#: The fitted parameters with their date and data provenance.
FIT_FILE = Path(__file__).resolve().parent.parent / "data" / "serving_fit.toml"


def load_fit(path: str | Path = FIT_FILE) -> dict[str, Any]:
    """The fit file as a dict (``[params]``, ``[provenance]``, ``[cv]``)."""
    return read_toml(Path(path), "serving fit")


def default_efficiency() -> ServeEfficiency:
    """The fitted global efficiencies of :data:`FIT_FILE` (the prior when it does not
    exist), without a vendor's software factor (see
    :func:`perfmodel.serving.fit.efficiency_for_vendor`)."""
    if not FIT_FILE.exists():
        return prior_efficiency()
    params = load_fit()["params"]
    return efficiency_from_dict({k: v for k, v in params.items() if k in PRIOR})


@struct.dataclass
class Layout:
    """How one model replica is split over chips.

    Attributes:
      tp: tensor-parallel degree (attention heads, dense FFN, and the experts when
        ``ep = 0``), a power of two inside the scale-up domain.
      pp: pipeline stages (layers split into ``pp`` equal stages, ``pp`` micro-batches
        in flight).
      ep: 1.0 = MoE experts expert-parallel over the ``tp`` chips (tokens dispatched
        with an all-to-all), 0.0 = experts tensor-parallel like the dense FFN.
    """

    tp: jnp.ndarray
    pp: jnp.ndarray
    ep: jnp.ndarray

    @property
    def chips(self):
        return self.tp * self.pp


def make_layout(tp: int = 1, pp: int = 1, ep: bool = False) -> Layout:
    return Layout(_f(tp), _f(pp), _f(float(ep)))


@struct.dataclass
class Requests:
    """Request lengths (tokens) and the scenario's latency limits (s).

    Attributes:
      input_mean, input_p99: prompt length, mean and the one the p99 TTFT is met for.
      output_mean, output_p99: generated tokens, mean and p99 (whole-query limits).
      ttft_limit_s, tpot_limit_s, latency_limit_s: p99 limits on time to first token,
        time per output token and whole-query latency (:data:`NO_LIMIT_S` = none:
        Offline, or a benchmark without that limit).
      kv_bytes: bytes per KV-cache element (1 = FP8 KV cache, 2 = BF16).
      beams: beam-search width (GPT-J: 4): each request decodes ``beams`` sequences
        and holds their KV caches; its output tokens count once.
      shared_prompt_read: 1.0 = a decode step reads the beams' shared prompt KV once
        (what the cache holds), 0.0 = once per beam (the earlier model, kept for the
        before/after check of the fit).
      scheduler_steps: decode iterations the engine runs per scheduling decision
        (vLLM V0 ``num_scheduler_steps``; 1 = every iteration, as TensorRT-LLM's
        in-flight batching): a new request waits up to that many iterations before
        its prefill is scheduled (the p99 TTFT's first term).
    """

    input_mean: jnp.ndarray
    input_p99: jnp.ndarray
    output_mean: jnp.ndarray
    output_p99: jnp.ndarray
    ttft_limit_s: jnp.ndarray
    tpot_limit_s: jnp.ndarray
    latency_limit_s: jnp.ndarray
    kv_bytes: jnp.ndarray
    beams: jnp.ndarray | float = 1.0
    shared_prompt_read: jnp.ndarray | float = 1.0
    scheduler_steps: jnp.ndarray | float = 1.0
