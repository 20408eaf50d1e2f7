"""Evaluators of per-chip claims: training and serving speed-ups over a base chip, and
the parameters a fleet's DRAM holds at a precision."""

from __future__ import annotations

from typing import Any

from perfmodel import equivalence as eq
from perfmodel import workloads as wl
from perfmodel.claims.context import Context, _fig, _lohi, _range, _recorded
from perfmodel.claims.verdicts import Claim, ClaimResult, compare
from perfmodel.hardware import BYTES_PER_ELEMENT
from perfmodel.serving import serve
from perfmodel.serving.types import default_efficiency as serving_default_efficiency


def check_speedup(c: Claim, ctx: Context) -> ClaimResult:
    """Per-chip training speed-up of ``chip`` over the H100 at equal chip counts
    (model throughput ratio), vs the claimed speed-up."""
    p, cat, err = c.params, ctx.catalog, []
    w = p["workload"]
    counts = [float(x) for x in p.get("counts", [512])]
    chips = [p["chip"], *p.get("also", [])]
    nums: dict[str, Any] = {}
    main: list[float] = []  # the claimed chip's low/best/high speed-ups at every count
    for chip in chips:
        prec = eq._precision_of(w, None) or "bf16"
        nums[f"{chip}_spec_ratio[{prec}]"] = eq.spec_equivalence_range(chip, prec, 1.0, cat)
        for n in counts:
            r = _recorded(
                err,
                f"{chip} n={n:g}",
                lambda chip=chip, n=n: _range(
                    lambda pk: eq.workload_equivalence(chip, n, w, pick=pk, **ctx.kw) / n
                ),
            )
            nums[f"{chip}_per_chip_speedup[n={n:g}]"] = r
            if chip == p["chip"] and r is not None:
                main.extend(r.values())
    claimed, claimed_hi = float(p["claimed"]), float(p.get("claimed_high", p["claimed"]))
    if not main:
        sp = nums[f"{p['chip']}_spec_ratio[{eq._precision_of(w, None) or 'bf16'}]"]
        lo, hi = _lohi(sp)
        basis = "spec ratio (training model unavailable)"
    else:
        lo, hi = min(main), max(main)
        basis = f"model on {w}, n = {', '.join(f'{n:g}' for n in counts)}"
    v_lo, v_hi = compare(claimed, lo, hi), compare(claimed_hi, lo, hi)
    verdict = (
        "consistent"
        if "consistent" in (v_lo, v_hi) or (v_lo == "understated" and v_hi == "overstated")
        else v_lo
    )
    summary = (
        f"{p['chip']} per chip = {lo:.2f}-{hi:.2f}x H100 ({basis}) vs claimed "
        f"{claimed:g}x" + (f"-{claimed_hi:g}x" if claimed_hi != claimed else "")
    )
    return ClaimResult(
        c,
        nums,
        verdict,
        summary,
        [
            "speed-up = H100e(n chips) / n at the same chip count, best layout each",
            "MLPerf measures time-to-train incl. software maturity; the model has fixed efficiencies",
            "v4.1's 2x was B200 (DGX, 1000 W); v5.0's 2.6x is 'up to', GB200 NVL72",
        ],
        err,
    )


def check_fp4_capacity(c: Claim, ctx: Context) -> ClaimResult:
    """Parameters the DRAM of ``chips`` chips holds at ``precision``: weights only
    (the claim's reading), with the format's block scales, and with the serving
    model's usable fraction of DRAM (runtime, activations and KV cache excluded)."""
    p, cat = c.params, ctx.catalog
    chip, n = p["chip"], float(p["chips"])
    prec = p.get("precision", "fp4")
    b = BYTES_PER_ELEMENT[prec]
    scale = float(p.get("scale_bytes_per_param", 0.0))
    usable = float(serving_default_efficiency().mem_usable)
    dram = _fig(cat, chip, "dram_bytes")
    nums: dict[str, Any] = {
        "dram_bytes_per_chip": dram,
        "dram_bytes_total": {k: v * n for k, v in dram.items()},
        f"params_weights_only[{prec}]": {k: v * n / b for k, v in dram.items()},
        f"params_with_scales[{prec}]": {k: v * n / (b + scale) for k, v in dram.items()},
        "params_usable_with_scales": {k: v * n * usable / (b + scale) for k, v in dram.items()},
    }
    claimed = float(p["claimed_params"])
    lo = min(nums["params_usable_with_scales"].values())
    hi = max(nums[f"params_weights_only[{prec}]"].values())
    verdict = compare(claimed, lo, hi)
    raw = nums[f"params_weights_only[{prec}]"]["best"]
    summary = (
        f"{n:g} x {dram['best'] / 1e9:.0f} GB = {dram['best'] * n / 1e12:.1f} TB holds "
        f"{raw / 1e12:.1f}T parameters at {b:g} byte (weights only), "
        f"{nums['params_usable_with_scales']['best'] / 1e12:.1f}T with block scales and "
        f"{usable:.0%} usable; claimed {claimed / 1e12:g}T"
    )
    return ClaimResult(
        c,
        nums,
        verdict,
        summary,
        [
            "the claim counts HBM only, 4-bit weights, nothing else resident",
            f"NVFP4 adds {scale:g} byte per parameter of block scales",
            "usable fraction = the serving model's mem_usable (runtime, activations); "
            "a KV cache for real requests needs more",
        ],
    )


def check_serving_speedup(c: Claim, ctx: Context) -> ClaimResult:
    """Per-chip serving throughput of ``chip`` over ``base_chip`` at the claim's
    latency limits and request lengths (each with its best layout under the fitted
    serving model), vs the claimed speed-up; with what drives the ratio."""
    p, err = c.params, []
    w = wl.workload_from_dict(dict(p["workload"]))

    def run(chip, n, prec, relax=1.0):
        return serve(
            w,
            chip,
            int(n),
            "server",
            precision=prec,
            ttft_ms=float(p["ttft_ms"]) * relax,
            tpot_ms=float(p["tpot_ms"]) * relax,
            input_tokens=float(p["input_tokens"]),
            output_tokens=float(p["output_tokens"]),
            catalog=ctx.catalog,
        )

    def per_chip(r: dict[str, Any]) -> float:
        return float(r["tokens_per_s_per_chip"])

    new = _recorded(err, p["chip"], run, p["chip"], p["chips"], p["precision"])
    same = _recorded(
        err,
        f"{p['chip']} at {p['base_precision']}",
        run,
        p["chip"],
        p["chips"],
        p["base_precision"],
    )
    base_err: list[str] = []
    base = _recorded(
        base_err, p["base_chip"], run, p["base_chip"], p["base_chips"], p["base_precision"]
    )
    relax, base_relaxed, new_relaxed = None, None, None
    if base is None:  # the base chip cannot meet the limits: where can it?
        for k in (1.25, 1.5, 2.0, 3.0, 5.0):
            relax = k
            base_relaxed = _recorded(
                [], "relaxed", run, p["base_chip"], p["base_chips"], p["base_precision"], k
            )
            if base_relaxed is not None:
                new_relaxed = _recorded(
                    [], "relaxed", run, p["chip"], p["chips"], p["precision"], k
                )
                break
    nums: dict[str, Any] = {}
    for label, r in (("new", new), ("base", base), ("new_at_base_precision", same)):
        nums[label] = (
            None
            if r is None
            else {k: r[k] for k in ("tokens_per_s_per_chip", "layout", "latencies_ms", "precision")}
        )
    claimed = float(p["claimed"])
    if new is None:
        return ClaimResult(c, nums, "n/a", "serving model failed: " + "; ".join(err), [], err)
    band = new["error_band"]["cv_mean_abs_error"] or 0.0
    if same is not None:
        nums["speedup_from_precision"] = per_chip(new) / per_chip(same)
    if base is None:
        nums["base_error"] = base_err[0] if base_err else None
        nums["base_limits_relaxed_by"] = relax
        ratio = (
            None
            if base_relaxed is None or new_relaxed is None
            else per_chip(new_relaxed) / per_chip(base_relaxed)
        )
        nums["per_chip_speedup_at_relaxed_limits"] = ratio
        verdict = "plausible"
        summary = (
            f"{p['base_chip']} x{p['base_chips']} cannot meet p99 TPOT {p['tpot_ms']:g} ms "
            f"(or TTFT {p['ttft_ms']:g} ms) on {w.name} in the model, {p['chip']} "
            f"x{p['chips']} serves "
            f"{per_chip(new):,.0f} tokens/s per chip there: the claimed {claimed:g}x is a "
            f"ratio to a base that barely runs"
            + (
                f"; with both limits x{relax:g} (where {p['base_chip']} runs): {ratio:.1f}x per chip"
                if ratio is not None
                else ""
            )
        )
    else:
        ratio = per_chip(new) / per_chip(base)
        nums["per_chip_speedup"] = ratio
        if same is not None:
            nums["speedup_at_equal_precision"] = per_chip(same) / per_chip(base)
        lo, hi = ratio * (1 - band) / (1 + band), ratio * (1 + band) / (1 - band)
        verdict = compare(claimed, lo, hi)
        summary = (
            f"{p['chip']} x{p['chips']} ({p['precision']}) vs {p['base_chip']} "
            f"x{p['base_chips']} ({p['base_precision']}): {ratio:.1f}x per chip (band "
            f"{lo:.1f}-{hi:.1f}x) vs claimed {claimed:g}x"
        )
    if "speedup_from_precision" in nums:
        summary += (
            f"; {p['precision']} alone gives {p['chip']} {nums['speedup_from_precision']:.1f}x "
            f"over its own {p['base_precision']}, the rest is the NVLink domain "
            f"(tp={new['layout']['tp']} in one domain) and memory"
        )
    return ClaimResult(
        c,
        nums,
        verdict,
        summary,
        [
            f"workload {w.name}: shape is an estimate (NVIDIA has not published it)",
            f"limits: p99 TTFT {p['ttft_ms']:g} ms, p99 TPOT {p['tpot_ms']:g} ms; "
            f"{p['input_tokens']:g} in / {p['output_tokens']:g} out tokens, Poisson arrivals",
            "each side at its best layout of the serving model (TP inside the scale-up "
            "domain, PP across it); fitted efficiencies, CV error band applied to both",
        ],
        err,
    )
