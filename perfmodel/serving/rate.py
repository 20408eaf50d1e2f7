"""A chip's inference throughput at a latency target: the small, stable entry point the
fleet planner and the equivalence tables call (:func:`inference_rate`,
:func:`inference_h100e`).

Both wrap :func:`perfmodel.serving.serve` (the best layout on ``chips`` chips, the
fitted efficiencies, the newest software of the chip vendor's engine) and return a
frozen record, cached per argument set (a planner asks the same chip many times).
Every number is an estimate of the serving model; ``error_band`` is its
cross-validated mean |error| for the scenario (``perfmodel/data/serving_fit.toml``).
"""

from __future__ import annotations

import dataclasses
import functools

from perfmodel.serving.api import serve

#: The reference chip of an inference H100-equivalent.
H100_KEY = "h100_sxm"


@dataclasses.dataclass(frozen=True)
class InferenceRate:
    """Output tokens/s of ``chips`` chips serving ``workload`` under ``scenario``
    limits (an estimate).

    Attributes:
      tokens_per_s: output tokens/s of the ``chips`` chips (all replicas).
      tokens_per_s_per_chip: ``tokens_per_s / chips``.
      ttft_p99_s, tpot_p99_s: the p99 latencies at that throughput (s), each within
        its limit.
      ttft_limit_s, tpot_limit_s: the limits met (s; ``None`` = no limit, Offline).
      layout: ``"tp4 pp1 ep x2"``-style: the replica layout and replica count.
      precision, engine: GEMM precision and engine family assumed.
      error_band: cross-validated mean |error| of the scenario (fraction), or None.
    """

    chip: str
    workload: str
    scenario: str
    chips: int
    tokens_per_s: float
    tokens_per_s_per_chip: float
    ttft_p99_s: float
    tpot_p99_s: float
    ttft_limit_s: float | None
    tpot_limit_s: float | None
    layout: str
    precision: str
    engine: str
    error_band: float | None
    estimate: bool = True
    source: str = "perfmodel.serving (fit: perfmodel/data/serving_fit.toml)"


@functools.lru_cache(maxsize=512)
def inference_rate(
    chip: str,
    workload: str = "llama2-70b",
    *,
    chips: int = 8,
    scenario: str = "server",
    ttft_ms: float | None = None,
    tpot_ms: float | None = None,
    input_tokens: float | None = None,
    output_tokens: float | None = None,
    precision: str | None = None,
) -> InferenceRate:
    """Best output tokens/s of ``chips`` x ``chip`` serving ``workload`` while meeting
    the p99 TTFT / TPOT limits (``ttft_ms`` / ``tpot_ms``; default the ``scenario``'s
    MLPerf limits; ``scenario="offline"``: no limit).

    Example: ``inference_rate("h200", "llama2-70b", chips=8, scenario="interactive")``
    -> ``.tokens_per_s_per_chip`` ~2.4e3 at ``tp2 x4`` (published MLPerf H200 Interactive
    results: 2.4e3 per chip in v5.0, 2.55e3 in v5.1, medians).

    Raises:
      perfmodel.errors.InputError: one line naming the field (unknown chip or
        workload, a chip without the figures serving needs, limits no layout meets).
    """
    r = serve(
        workload,
        chip,
        chips,
        scenario,
        precision=precision,
        ttft_ms=ttft_ms,
        tpot_ms=tpot_ms,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
    )
    lay = r["layout"]
    lim = r["limits_ms"]
    return InferenceRate(
        chip=r["chip"],
        workload=r["workload"],
        scenario=scenario,
        chips=chips,
        tokens_per_s=r["tokens_per_s"],
        tokens_per_s_per_chip=r["tokens_per_s_per_chip"],
        ttft_p99_s=r["latencies_ms"]["ttft_p99"] / 1e3,
        tpot_p99_s=r["latencies_ms"]["tpot_p99"] / 1e3,
        ttft_limit_s=None if lim.get("ttft") is None else lim["ttft"] / 1e3,
        tpot_limit_s=None if lim.get("tpot") is None else lim["tpot"] / 1e3,
        layout=f"tp{lay['tp']} pp{lay['pp']}{' ep' if lay['ep'] else ''} x{lay['replicas']}",
        precision=r["precision"],
        engine=r["software"]["engine"],
        error_band=r["error_band"]["cv_mean_abs_error"],
    )


def inference_h100e(
    chip: str,
    workload: str = "llama2-70b",
    *,
    chips: int = 8,
    scenario: str = "server",
    ttft_ms: float | None = None,
    tpot_ms: float | None = None,
) -> float:
    """Inference H100-equivalents of one ``chip``: its per-chip tokens/s over an H100
    SXM's, both on ``chips`` chips at the same workload and limits (an estimate; the
    ratio's error is at most about the sum of the two error bands)."""
    kw = dict(chips=chips, scenario=scenario, ttft_ms=ttft_ms, tpot_ms=tpot_ms)
    mine = inference_rate(chip, workload, **kw)
    ref = inference_rate(H100_KEY, workload, **kw)
    return mine.tokens_per_s_per_chip / ref.tokens_per_s_per_chip
