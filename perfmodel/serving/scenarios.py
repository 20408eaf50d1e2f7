"""MLPerf scenarios on the serving step model: Offline, Server and Interactive.

A replica serves ``B`` sequences at once with continuous batching: every iteration
decodes one token for each of them and prefills the prompts that arrived meanwhile.
With a mean output of ``O`` tokens and ``t_pf`` of replica time per prompt
(:func:`perfmodel.serving.step.prefill_busy_per_request_s`), the iteration time and
the throughput are (steady state, Little's law)::

    tau(B)  = t_step(B) + B t_pf / O            (mean time per output token)
    rate(B) = B / tau(B)                         output tokens/s of the replica
    rho(B)  = rate(B) t_pf / O                   share of time spent in prefill

Offline: the largest ``B`` the memory holds (KV cache of ``input + output/2`` tokens
per request, :func:`perfmodel.serving.step.max_batch`; with beam search the prompt is
shared by the beams). Server / Interactive: Poisson
arrivals; the largest ``B`` (bisection) whose p99 latencies meet the limits::

    TPOT_p99 = tpot_p99 x tau(B)
    (with beam search each step reads the KV cache a request holds: the shared prompt
    once, each beam's own tokens; the attention FLOPs cover every beam's whole context)
    TTFT_p99 = k tau(B) + prefill(one p99-length prompt) + W_p99,
    (k: the engine's scheduler steps, iterations per scheduling decision: a new
    request waits up to k iterations before its prefill is scheduled; 1 for
    TensorRT-LLM's in-flight batching, 8-10 in the v5.1 vLLM V0 runs on AMD chips)
    W_p99    = t_pf / (1 - rho) x ln(max(100 rho, 1))     (M/G/1 heavy-traffic tail)
    latency_p99 = TTFT_p99 + output_p99 x TPOT_p99        (whole-query limit, GPT-J)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from perfmodel.hardware import Chip, struct
from perfmodel.interconnect import Network
from perfmodel.serving.step import (
    decode_step_s,
    max_batch,
    memory_per_chip,
    prefill_busy_per_request_s,
    prefill_s,
)
from perfmodel.serving.types import Layout, Requests, ServeEfficiency, _f
from perfmodel.workloads import Workload

#: Most sequences one replica keeps in flight (engines cap their batch; MLPerf
#: TensorRT-LLM and vLLM configurations use a few thousand at most).
MAX_SEQS = 4096.0
#: Bisection steps of the Server batch search (resolution: a factor MAX_SEQS ** 2**-steps).
BISECTION_STEPS = 30


@struct.dataclass
class ServeResult:
    """One replica at its operating point (per replica unless stated).

    Attributes:
      tokens_per_s: output tokens/s of the replica.
      batch: sequences in flight; max_batch: the memory (or engine) limit.
      tpot_mean_s, tpot_p99_s, ttft_p99_s, latency_p99_s: latencies (s).
      prefill_p99_s: prefill of one p99-length prompt alone (s).
      step_s: one decode iteration (s); prefill_per_request_s: replica time per prompt.
      memory_per_chip_bytes: weights + KV cache per chip (byte).
      fits: the weights and at least one sequence fit; meets: the limits are met.
    """

    tokens_per_s: jnp.ndarray
    batch: jnp.ndarray
    max_batch: jnp.ndarray
    tpot_mean_s: jnp.ndarray
    tpot_p99_s: jnp.ndarray
    ttft_p99_s: jnp.ndarray
    latency_p99_s: jnp.ndarray
    prefill_p99_s: jnp.ndarray
    step_s: jnp.ndarray
    prefill_per_request_s: jnp.ndarray
    memory_per_chip_bytes: jnp.ndarray
    fits: jnp.ndarray
    meets: jnp.ndarray


def context_tokens(req: Requests):
    """Mean KV-cache length of a sequence in flight: ``input + output / 2`` (tokens)."""
    return req.input_mean + 0.5 * req.output_mean


def cached_tokens(req: Requests):
    """Mean KV-cache tokens one request holds, per beam: the prompt is shared by the
    beams (paged KV, copy on write), the generated tokens are not:
    ``(input + beams x output / 2) / beams``."""
    return (req.input_mean + req.beams * 0.5 * req.output_mean) / req.beams


@struct.dataclass
class _Fixed:
    """The parts of an operating point that do not depend on the batch."""

    prefill_per_request_s: jnp.ndarray
    prefill_p99_s: jnp.ndarray
    max_batch: jnp.ndarray


def _fixed(w, chip, net, lay, req, eff) -> _Fixed:
    t_pf = prefill_busy_per_request_s(w, chip, net, lay, req.input_mean, eff)
    pf99 = prefill_s(w, chip, net, lay, 1.0, req.input_p99, eff)
    seqs = max_batch(w, chip, lay, cached_tokens(req), req.kv_bytes, eff)
    return _Fixed(t_pf, pf99, jnp.minimum(seqs, MAX_SEQS * req.beams) / req.beams)


def _at(w, chip, net, lay, req, eff, fx: _Fixed, batch) -> ServeResult:
    ctx = context_tokens(req)
    b = jnp.maximum(_f(batch), 1e-3)
    # beams attend to their whole context, but the shared prompt is read once per step
    read = req.shared_prompt_read * cached_tokens(req) + (1.0 - req.shared_prompt_read) * ctx
    t_step = decode_step_s(w, chip, net, lay, b * req.beams, ctx, req.kv_bytes, eff, read)
    t_pf = fx.prefill_per_request_s
    tau = t_step + b * t_pf / req.output_mean
    rate = b / tau
    rho = jnp.clip(rate * t_pf / req.output_mean, 0.0, 1.0 - 1e-9)
    tpot99 = eff.tpot_p99 * tau
    wait99 = t_pf / (1.0 - rho) * jnp.log(jnp.maximum(100.0 * rho, 1.0))
    ttft99 = req.scheduler_steps * tau + fx.prefill_p99_s + wait99
    lat99 = ttft99 + req.output_p99 * tpot99
    fits = fx.max_batch >= 1.0
    meets = (tpot99 <= req.tpot_limit_s) & (ttft99 <= req.ttft_limit_s)
    meets = meets & (lat99 <= req.latency_limit_s) & fits
    return ServeResult(
        tokens_per_s=rate,
        batch=b,
        max_batch=fx.max_batch,
        tpot_mean_s=tau,
        tpot_p99_s=tpot99,
        ttft_p99_s=ttft99,
        latency_p99_s=lat99,
        prefill_p99_s=fx.prefill_p99_s,
        step_s=t_step,
        prefill_per_request_s=t_pf,
        memory_per_chip_bytes=memory_per_chip(
            w, lay, b * req.beams, cached_tokens(req), req.kv_bytes
        ),
        fits=fits,
        meets=meets,
    )


def at_batch(
    w: Workload,
    chip: Chip,
    net: Network,
    lay: Layout,
    req: Requests,
    eff: ServeEfficiency,
    batch,
) -> ServeResult:
    """Throughput and p99 latencies of one replica holding ``batch`` requests (each of
    ``req.beams`` sequences). Pure; vmap at the call site (e.g. over a batch grid for
    the throughput-latency curve)."""
    return _at(w, chip, net, lay, req, eff, _fixed(w, chip, net, lay, req, eff), batch)


def operating_point(
    w: Workload,
    chip: Chip,
    net: Network,
    lay: Layout,
    req: Requests,
    eff: ServeEfficiency,
) -> ServeResult:
    """The best operating point of one replica: the largest batch in ``[1, max_batch]``
    that meets the limits (all limits at :data:`NO_LIMIT_S`: Offline, ``max_batch``).

    Latencies grow with the batch, so the feasible batches are an interval from 1;
    its upper end is found by bisection on ``log B`` (``BISECTION_STEPS`` steps). When
    even one request misses a limit, the result at ``B = 1`` has ``meets = False``.
    Pure and jit/vmap-able; values are unchecked when traced.
    """
    fx = _fixed(w, chip, net, lay, req, eff)
    bmax = jnp.maximum(fx.max_batch, 1.0)

    def ok(b):
        return _at(w, chip, net, lay, req, eff, fx, b).meets

    def body(_, lohi):
        lo, hi = lohi
        mid = jnp.sqrt(lo * hi)
        good = ok(mid)
        return jnp.where(good, mid, lo), jnp.where(good, hi, mid)

    lo, _ = jax.lax.fori_loop(0, BISECTION_STEPS, body, (_f(1.0), bmax))
    best = jnp.where(ok(bmax), bmax, lo)
    return _at(w, chip, net, lay, req, eff, fx, best)
