"""Host entry point: serve a workload on N chips in an MLPerf scenario (validated
inputs, the best layout, the throughput-latency curve, the fitted error band)."""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from perfmodel import workloads as wl
from perfmodel.errors import InputError
from perfmodel.hardware import BYTES_PER_ELEMENT, load_catalog
from perfmodel.interconnect import network_for
from perfmodel.programs import stored
from perfmodel.serving import data as sd
from perfmodel.serving.fit import (
    ENGINE_OF_VENDOR,
    ENGINES,
    efficiency_for_engine,
    engine_for_vendor,
)
from perfmodel.serving.scenarios import at_batch, operating_point
from perfmodel.serving.step import weight_bytes
from perfmodel.serving.types import FIT_FILE, NO_LIMIT_S, Layout, _f, load_fit

#: KV-cache precisions (bytes per element from the catalog's table).
KV_PRECISIONS = ("fp8", "bf16", "fp16")
#: Serving GEMM precisions.
SERVE_PRECISIONS = ("fp4", "fp8", "bf16", "fp16", "int8")
#: Points of the throughput-latency curve.
CURVE_POINTS = 24


@functools.cache
def _grid_fn():
    grid = jax.vmap(operating_point, in_axes=(None, None, None, 0, None, None))
    return stored(grid, name="perfmodel.serving.api.operating_point_grid")


@functools.cache
def _curve_fn():
    curve = jax.vmap(at_batch, in_axes=(None, None, None, None, None, None, 0))
    return stored(curve, name="perfmodel.serving.api.at_batch_curve")


def _fit_info() -> dict[str, Any]:
    if not FIT_FILE.exists():
        return {"params": {}, "cv": {}, "provenance": {}}
    return load_fit()


def _layouts(w: wl.Workload, n_chips: int, domain: int) -> list[tuple[int, int, int]]:
    out = []
    heads, layers = int(w.heads), int(w.layers)
    tp = 1
    while tp <= min(n_chips, max(domain, 1)):
        if heads % tp == 0:
            pp = 1
            while tp * pp <= n_chips and pp <= layers:
                out.append((tp, pp, 0))
                if float(w.experts) > 0 and tp > 1:
                    out.append((tp, pp, 1))
                pp *= 2
        tp *= 2
    return out


#: Catalog figures the serving model needs (weights and KV cache in DRAM, streamed at
#: its bandwidth); a GEMM rate is checked per precision.
REQUIRED_FIGURES = ("dram_bytes", "dram_bytes_per_s")


def _check_figures(rec) -> None:
    """One line naming the first figure serving needs that the chip's record lacks."""
    for f in REQUIRED_FIGURES:
        fig = rec.figure(f)
        if fig is None or not fig.best > 0:
            raise InputError(
                f"chip = '{rec.key}' has no {f} figure in the catalog ({rec.path}); "
                f"serving needs {', '.join(REQUIRED_FIGURES)} and a GEMM rate"
            )
    if not any(rec.supports(p) for p in SERVE_PRECISIONS):
        raise InputError(
            f"chip = '{rec.key}' has no GEMM rate for any of {', '.join(SERVE_PRECISIONS)} "
            f"in the catalog ({rec.path})"
        )


def default_precision(rec) -> str:
    """FP8 on a chip with its own FP8 rate, else the first of BF16, FP16, INT8 it has
    natively (no fallback: an A100 serves BF16, not FP8 at its BF16 rate)."""
    for p in ("fp8", "bf16", "fp16", "int8"):
        if rec.rate_precision(p) == p:
            return p
    return next(p for p in SERVE_PRECISIONS if rec.supports(p))


def _check_pos(field: str, v: Any, lo: float, hi: float) -> float:
    if (
        isinstance(v, bool)
        or not isinstance(v, (int, float))
        or not math.isfinite(v)
        or not lo <= v <= hi
    ):
        raise InputError(f"{field} = {v!r} must be a number in [{lo:g}, {hi:g}]")
    return float(v)


def serve(
    workload: str | wl.Workload,
    chip_key: str,
    n_chips: int,
    scenario: str = "server",
    *,
    precision: str | None = None,
    kv_precision: str | None = None,
    ttft_ms: float | None = None,
    tpot_ms: float | None = None,
    input_tokens: float | None = None,
    output_tokens: float | None = None,
    engine: str | None = None,
    curve: bool = False,
    catalog=None,
) -> dict[str, Any]:
    """Best throughput of ``workload`` on ``n_chips`` chips in ``scenario`` (an
    estimate of the fitted serving model; see the returned ``error_band``).

    Lengths and limits default to the MLPerf benchmark of the same name (the
    llama2-70b ones for any other workload). The software is the newest round's of
    ``engine`` (default: the engine family the chip vendor's published results ran,
    :func:`perfmodel.serving.fit.engine_for_vendor`). Every layout (tensor parallel in the
    scale-up domain, pipeline stages, experts tensor- or expert-parallel) is evaluated
    in one jit+vmap call; the best one meeting the limits is returned.

    Raises:
      ValueError: one line naming the field, the value and the allowed range: an
        unknown scenario or precision, a model that does not fit, a TTFT limit below
        one prefill, a TPOT limit below one decode step.
    """
    if scenario not in sd.SCENARIOS:
        raise InputError(f"scenario = {scenario!r} must be one of {', '.join(sd.SCENARIOS)}")
    if (
        isinstance(n_chips, bool)
        or not isinstance(n_chips, (int, np.integer))
        or not 1 <= n_chips <= 10**6
    ):
        raise InputError(f"chips = {n_chips!r} must be an integer in [1, 1000000]")
    w0 = wl.get_workload(workload) if isinstance(workload, str) else workload
    if w0.unit != "token" or not w0.causal:
        raise InputError(f"workload = '{w0.name}' must be a causal LLM (token unit) to serve")
    cat = catalog or load_catalog()
    key = cat.resolve(chip_key)
    _check_figures(cat.record(key))
    chip = cat.chip(key)
    rec = cat.record(key)
    prec = precision or default_precision(rec)
    if prec not in SERVE_PRECISIONS:
        raise InputError(f"precision = {prec!r} must be one of {', '.join(SERVE_PRECISIONS)}")
    if not chip.supports(prec):
        raise InputError(
            f"precision = {prec!r} is not supported by chip '{key}'; allowed: "
            f"{', '.join(p for p in SERVE_PRECISIONS if chip.supports(p))}"
        )
    kvp = kv_precision or ("fp8" if rec.rate_precision("fp8") == "fp8" else "bf16")
    if kvp not in KV_PRECISIONS or not chip.supports(kvp):
        raise InputError(
            f"kv_precision = {kvp!r} must be one of "
            f"{', '.join(p for p in KV_PRECISIONS if chip.supports(p))} on '{key}'"
        )
    w = w0.with_precision(prec)
    bench = w0.name if w0.name in sd.benchmark_names() else "llama2-70b"
    lim_bench = w0.name if w0.name in sd.benchmark_names() else "default"
    lim = sd.limits(lim_bench, scenario)
    if ttft_ms is not None:
        lim["ttft_limit_s"] = _check_pos("ttft_ms", ttft_ms, 1e-3, 1e9) / 1e3
    if tpot_ms is not None:
        lim["tpot_limit_s"] = _check_pos("tpot_ms", tpot_ms, 1e-3, 1e9) / 1e3
    if input_tokens is not None:
        _check_pos("input_tokens", input_tokens, 1, 1e7)
    if output_tokens is not None:
        _check_pos("output_tokens", output_tokens, 1, 1e7)
    req = sd.make_requests(
        bench,
        **lim,
        kv_bytes=BYTES_PER_ELEMENT[kvp],
        input_mean=input_tokens,
        output_mean=output_tokens,
    )
    net = network_for(key, cat)
    info = _fit_info()
    vendor = cat.record(key).text.get("vendor", "")
    eng = engine_for_vendor(vendor) if engine is None else engine
    if eng not in ENGINES:
        raise InputError(f"engine = {eng!r} must be one of {', '.join(ENGINES)}")
    params = dict(info.get("params", {}))
    eff = efficiency_for_engine(params, eng)
    cands = _layouts(w, n_chips, int(float(net.domain_size)))
    arr = np.array(cands, dtype=float)
    # pad the candidates to a power of two (repeating the first): few distinct shapes
    n_c = len(cands)
    padded = np.concatenate([arr, np.repeat(arr[:1], (1 << (n_c - 1).bit_length()) - n_c, 0)])
    lays = Layout(jnp.asarray(padded[:, 0]), jnp.asarray(padded[:, 1]), jnp.asarray(padded[:, 2]))
    # names are static pytree fields: blank them so every chip and preset of the same
    # structure reuses one compiled program
    w_anon = dataclasses.replace(w, name="", family="")
    chip_anon = dataclasses.replace(chip, name="")
    res = jax.tree_util.tree_map(
        lambda a: a[:n_c], _grid_fn()(w_anon, chip_anon, net, lays, req, eff)
    )
    rate = np.asarray(res.tokens_per_s)
    fits = np.asarray(res.fits)
    meets = np.asarray(res.meets)
    groups = arr[:, 0] * arr[:, 1]
    total = np.floor(n_chips / groups) * rate
    if not fits.any():
        cap = float(chip.mem_bytes[1] * eff.mem_usable)
        need = float(weight_bytes(w))
        k = max(2, math.ceil(need / cap))
        raise InputError(
            f"chips = {n_chips}: '{w.name}' at {prec} ({need / 1e9:.1f} GB of weights) does "
            f"not fit on {n_chips} x {key} ({cap / 1e9:.1f} GB usable each); allowed: "
            f"chips >= {k} (the weights alone; the KV cache needs more)"
        )
    if not meets.any():
        pf = float(np.min(np.where(fits, np.asarray(res.prefill_p99_s), np.inf)))
        if pf + 0.0 >= req.ttft_limit_s.item() * 0.999:
            raise InputError(
                f"ttft_ms = {req.ttft_limit_s.item() * 1e3:g} is below one prefill of a "
                f"{req.input_p99.item():.0f}-token prompt ({pf * 1e3:.1f} ms at best on "
                f"{key}); allowed: ttft_ms > {pf * 1e3:.1f}"
            )
        t1 = float(np.min(np.where(fits, np.asarray(res.tpot_p99_s), np.inf)))
        raise InputError(
            f"scenario limits cannot be met: tpot_ms = {req.tpot_limit_s.item() * 1e3:g}, "
            f"ttft_ms = {req.ttft_limit_s.item() * 1e3:g}; one request alone needs "
            f"tpot_ms >= {t1 * 1e3:.1f} and ttft_ms >= {pf * 1e3:.1f}"
        )
    score = np.where(meets, total, -1.0)
    i = int(np.argmax(score))
    pick = {f: float(np.asarray(getattr(res, f))[i]) for f in res.__dataclass_fields__}
    tp, pp, ep = (int(x) for x in cands[i])
    replicas = n_chips // (tp * pp)
    cv = info.get("cv", {}).get(scenario.capitalize(), {})
    out: dict[str, Any] = dict(
        workload=w.name,
        chip=key,
        n_chips=n_chips,
        scenario=scenario,
        estimate=True,
        precision=prec,
        kv_precision=kvp,
        tokens_per_s=float(total[i]),
        tokens_per_s_per_chip=float(total[i]) / n_chips,
        layout=dict(
            tp=tp, pp=pp, ep=bool(ep), replicas=replicas, idle_chips=n_chips - replicas * tp * pp
        ),
        batch_per_replica=pick["batch"],
        max_batch_per_replica=pick["max_batch"],
        latencies_ms=dict(
            ttft_p99=pick["ttft_p99_s"] * 1e3,
            tpot_p99=pick["tpot_p99_s"] * 1e3,
            tpot_mean=pick["tpot_mean_s"] * 1e3,
            latency_p99=pick["latency_p99_s"] * 1e3,
            prefill_p99=pick["prefill_p99_s"] * 1e3,
        ),
        limits_ms={
            k.replace("_limit_s", ""): (None if v >= NO_LIMIT_S else v * 1e3)
            for k, v in lim.items()
        },
        meets_limits=True,
        memory_per_chip_bytes=pick["memory_per_chip_bytes"],
        memory_usable_per_chip_bytes=float(chip.mem_bytes[1] * eff.mem_usable),
        lengths=dict(
            dataset=bench,
            input_mean=float(req.input_mean),
            input_p99=float(req.input_p99),
            output_mean=float(req.output_mean),
            beams=float(req.beams),
            source="perfmodel/data/serving_datasets.toml",
        ),
        software=dict(
            engine=eng,
            factor=float(params.get(f"software_{eng.replace('-', '_')}", 1.0)),
            as_of_round=sd.newest_round(),
            source="perfmodel/data/serving_fit.toml",
            **(
                {}
                if engine is not None or vendor.strip().lower() in ENGINE_OF_VENDOR
                else dict(
                    note=f"no published serving results for vendor '{vendor}': the "
                    "reference engine's (TensorRT-LLM class) efficiency is assumed"
                )
            ),
        ),
        error_band=dict(
            cv_mean_abs_error=cv.get("mean_abs_error"),
            cv_kind=cv.get("kind"),
            source="perfmodel/data/serving_fit.toml",
        ),
        layouts_tried=len(cands),
    )
    if curve:
        lay = Layout(_f(tp), _f(pp), _f(ep))
        bmax = max(pick["max_batch"], 1.0)
        bs = np.unique(np.geomspace(1.0, bmax, CURVE_POINTS))
        cr = _curve_fn()(w_anon, chip_anon, net, lay, req, eff, jnp.asarray(bs))
        out["curve"] = [
            dict(
                batch=float(b),
                tokens_per_s=float(r) * replicas,
                tpot_p99_ms=float(tp99) * 1e3,
                ttft_p99_ms=float(tt99) * 1e3,
                meets=bool(m),
            )
            for b, r, tp99, tt99, m in zip(
                bs,
                np.asarray(cr.tokens_per_s),
                np.asarray(cr.tpot_p99_s),
                np.asarray(cr.ttft_p99_s),
                np.asarray(cr.meets),
                strict=True,
            )
        ]
    return out
