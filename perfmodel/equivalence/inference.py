"""Inference equivalence: H100s with the same inference throughput, by one of two
models chosen by the workload (or the caller), never one standing in for the other:

* ``"serving"`` (causal LLMs: llama2-70b, llama3.1-8b, mixtral-8x7b, gpt-oss-120b, ...):
  output tokens/s of the fitted serving model in an MLPerf scenario (offline, server,
  interactive), :func:`serving_equivalence_range`;
* ``"forward"`` (vision / video, the AI4 / HW3 computers in the training loop):
  forward-only throughput at int8 from the training model, :func:`inference_equivalence`.
"""

from __future__ import annotations

from typing import Unpack

from perfmodel import workloads as wl
from perfmodel.choices import INFERENCE_MODELS as INFERENCE_MODELS
from perfmodel.equivalence.definitions import (
    DEFAULT_GRID,
    REFERENCE_CHIP,
    _catalog,
    _check_count,
)
from perfmodel.equivalence.model import CurveOptions, _training_inference_curve, curve_pair
from perfmodel.equivalence.result import EquivResult
from perfmodel.equivalence.spec import spec_equivalence_range
from perfmodel.equivalence.workload import _base_assumptions, _equiv_jit
from perfmodel.errors import InputError
from perfmodel.hardware import PICKS, Catalog
from perfmodel.interconnect import network_for
from perfmodel.serving import SCENARIOS, serve
from perfmodel.serving.api import default_precision
from perfmodel.serving.step import weight_bytes


def inference_equivalence(
    chip_key: str, n_chips: float, workload="video-driving", **opts: Unpack[CurveOptions]
) -> float:
    """H100s that deliver the same forward-only (inference) throughput on ``workload`` at
    ``precision`` as ``n_chips`` of ``chip_key``. This is how FSD computers (AI4, HW3) used
    in the training loop (simulation, closed-loop evaluation, auto-labelling) count: their
    work is forward passes, so they are compared on forward passes, not on training.
    ``opts``: :class:`~perfmodel.equivalence.model.CurveOptions`, here with the defaults
    ``precision="int8"`` and ``mode="capacity"`` (in-the-loop inference is many
    independent forward passes); ``curve_fn`` defaults to
    :func:`perfmodel.training.inference_throughput` per count."""
    n = _check_count("n_chips", n_chips)
    opts.setdefault("precision", "int8")
    opts.setdefault("mode", "capacity")
    if opts.get("curve_fn") is None:
        opts["curve_fn"] = _training_inference_curve
    x, h = curve_pair(chip_key, workload, **opts)
    return float(_equiv_jit(x, h, n))


def inference_equivalence_range(
    chip_key: str, n_chips: float, workload="video-driving", *, precision: str = "int8", **kw
) -> EquivResult:
    """:func:`inference_equivalence` at low/best/high, with the int8 spec-sheet ratio."""
    cat = _catalog(kw.pop("catalog", None))
    n = float(_check_count("n_chips", n_chips))
    v = {
        p: inference_equivalence(
            chip_key, n, workload, precision=precision, pick=p, catalog=cat, **kw
        )
        for p in PICKS
    }
    a = _base_assumptions(
        cat,
        chip_key,
        n,
        workload,
        precision,
        tuple(kw.get("grid", DEFAULT_GRID)),
        kw.get("mode", "capacity"),
    )
    a["model"] = "forward"
    a["measure"] = "forward-only (inference) throughput, H100 also at " + precision
    a["spec_h100e"] = spec_equivalence_range(chip_key, precision, n, cat)
    return EquivResult("inference", v["best"], min(v.values()), max(v.values()), a)


# ------------------------------------------------------------------ serving (LLM) model
#: Largest serving unit (chips) the equivalence doubles up to for a model to fit.
MAX_SERVING_UNIT = 4096
#: Fraction of a unit's DRAM the weights may fill before the unit is doubled (the rest
#: is KV cache and activations).
UNIT_WEIGHT_FRACTION = 0.6


def is_llm(workload) -> bool:
    """True for a causal LLM workload (token unit): one the serving model serves."""
    w = wl.get_workload(workload) if isinstance(workload, str) else workload
    return w.unit == "token" and bool(w.causal)


def default_inference_model(workload) -> str:
    """``"serving"`` for a causal LLM workload, ``"forward"`` otherwise (vision, video:
    the AI4/HW3 in-the-loop workloads the serving model does not cover)."""
    return "serving" if is_llm(workload) else "forward"


def serving_unit(chip_key: str, workload, precision: str | None, cat: Catalog) -> int:
    """Chips of one serving unit of ``chip_key``: its scale-up (NVLink) domain, at most
    72, doubled while the weights would fill more than ``UNIT_WEIGHT_FRACTION`` of the
    unit's DRAM (a 671B model does not fit one 8-GPU H100 node)."""
    key = cat.resolve(chip_key)
    rec = cat.record(key)
    w = wl.get_workload(workload) if isinstance(workload, str) else workload
    prec = precision or default_precision(rec)
    need = float(weight_bytes(w.with_precision(prec)))
    dram = float(cat.chip(key).mem_bytes[1])
    unit = max(1, min(int(float(network_for(key, cat).domain_size)), 72))
    while unit < MAX_SERVING_UNIT and need > UNIT_WEIGHT_FRACTION * unit * dram:
        unit *= 2
    return unit


def serving_equivalence_range(
    chip_key: str,
    n_chips: float,
    workload: str = "llama2-70b",
    *,
    scenario: str = "offline",
    precision: str | None = None,
    catalog: Catalog | None = None,
) -> EquivResult:
    """H100s that deliver the same output tokens/s as ``n_chips`` of ``chip_key`` serving
    ``workload`` in the MLPerf ``scenario`` (offline: no limit; server / interactive:
    the best throughput meeting the p99 TTFT and TPOT limits), from the fitted serving
    model (:func:`perfmodel.serving.serve`).

    Each chip serves on one unit (:func:`serving_unit`: its scale-up domain, 8 for an
    HGX H100) at its best layout; the fleet is independent replicas of that unit
    (capacity), so ``h100e = n_chips * rate_X / rate_H100`` with per-chip tokens/s
    ``rate``. ``chip_key`` runs at ``precision`` (default: its serving default, FP8
    where it has a native FP8 rate), the H100 at its own default (FP8). Exactly
    ``n_chips`` for the H100 itself (at the reference's precision). low / high: best times (1 -/+ the scenario's
    cross-validated mean |error|), since the serving model has no catalog picks (the
    H100 itself: exact).

    Raises:
      perfmodel.errors.InputError: one line naming the field (an unknown scenario, a
        workload that is not a causal LLM, a precision the chip lacks, limits no layout
        meets).
    """
    if scenario not in SCENARIOS:
        raise InputError("--scenario", scenario, "one of " + ", ".join(SCENARIOS))
    if not is_llm(workload):
        raise InputError(
            "--model",
            "serving",
            f"'forward' for workload {_workload_label(workload)!r} (the serving model "
            "serves causal LLMs only)",
        )
    cat = _catalog(catalog)
    n = float(_check_count("n_chips", n_chips))
    key = cat.resolve(chip_key)
    ref_key = cat.resolve(REFERENCE_CHIP)
    u_x = serving_unit(key, workload, precision, cat)
    u_h = serving_unit(ref_key, workload, None, cat)
    mine = serve(workload, key, u_x, scenario, precision=precision, catalog=cat)
    ref = mine if (key == ref_key and precision is None) else None
    if ref is None:
        ref = serve(workload, ref_key, u_h, scenario, catalog=cat)
    # the H100 as the reference runs it: exactly its count (no float round-off)
    same = key == ref_key and mine["precision"] == ref["precision"]
    ratio = 1.0 if same else mine["tokens_per_s_per_chip"] / ref["tokens_per_s_per_chip"]
    best = n * ratio
    band = mine["error_band"]["cv_mean_abs_error"]
    if same or band is None:
        lo, hi = best, best
    else:
        lo, hi = best * max(0.0, 1.0 - band), best * (1.0 + band)
    rec = cat.record(key)

    def _lat(r: dict) -> dict:
        return {
            "tokens_per_s_per_chip": r["tokens_per_s_per_chip"],
            "chips": r["n_chips"],
            "layout": r["layout"],
            "precision": r["precision"],
            "ttft_p99_ms": r["latencies_ms"]["ttft_p99"],
            "tpot_p99_ms": r["latencies_ms"]["tpot_p99"],
            "engine": r["software"]["engine"],
        }

    a = {
        "model": "serving",
        "scenario": scenario,
        "mode": "capacity (independent replicas of one serving unit)",
        "chip": rec.key,
        "chip_name": rec.display_name,
        "n_chips": n,
        "workload": mine["workload"],
        "precision": mine["precision"],
        "measure": f"output tokens/s in the MLPerf {scenario.capitalize()} scenario "
        "(perfmodel.serving, fitted on MLPerf Inference; an estimate)",
        "limits_ms": mine["limits_ms"],
        "serving": _lat(mine),
        "reference_serving": _lat(ref),
        "reference": f"{ref_key} (best figures) at its serving default precision "
        f"({ref['precision']}) on {u_h} chips",
        "scale": f"per-chip tokens/s of one unit ({u_x} x {key}, {u_h} x {ref_key}) "
        f"times {int(n) if n.is_integer() else n} chips",
        "range": "low/high = best x (1 -/+ the scenario's cross-validated mean |error| "
        f"{'n/a' if band is None else f'{band:.1%}'}); the H100 itself is exact",
        "error_band": mine["error_band"],
    }
    return EquivResult("inference", best, lo, hi, a)


def _workload_label(workload) -> str:
    return workload if isinstance(workload, str) else str(getattr(workload, "name", workload))
