"""Evaluators of fleet-size claims: what a budget buys in H100e, Dojo tiles for a
claimed H100e, a fleet's H100e, and growth of a series of H100e figures."""

from __future__ import annotations

from typing import Any

from perfmodel import equivalence as eq
from perfmodel.claims.context import Context, _fig, _opp, _range, _recorded
from perfmodel.claims.verdicts import TOL, Claim, ClaimResult, compare
from perfmodel.hardware import PICKS


def check_budget_h100e(c: Claim, ctx: Context) -> ClaimResult:
    """Budget -> H100 count at the all-in H100 price; also what the budget buys of
    ``chip`` (e.g. Dojo tiles) in spec-sheet and workload H100e."""
    p, cat, err = c.params, ctx.catalog, []
    budget, claimed = float(p["budget_usd"]), float(p["claimed_h100e"])
    pure = eq.h100_count_for_budget(budget, catalog=cat)
    implied = budget / claimed
    price = _fig(cat, eq.REFERENCE_CHIP, "allin_price_usd")
    nums: dict[str, Any] = {
        "implied_usd_per_h100": implied,
        "catalog_h100_allin_usd": price,
        "h100_for_budget": {"low": pure.h100e_low, "best": pure.h100e, "high": pure.h100e_high},
    }
    verdict = compare(claimed, pure.h100e_low, pure.h100e_high)
    chip = p.get("chip")
    if chip:
        tiles = {pk: budget / _fig(cat, chip, "allin_price_usd")[_opp(pk)] for pk in PICKS}
        nums[f"{chip}_for_budget"] = tiles
        nums[f"{chip}_spec_h100e"] = {
            pk: tiles[pk] * float(eq.spec_equivalence(cat.chip(chip, pk), "bf16", catalog=cat))
            for pk in PICKS
        }
        for w in p.get("workloads", []):
            for mode in eq.MODES:
                nums[f"{chip}_h100e[{w}, {mode}]"] = _recorded(
                    err,
                    w,
                    lambda w=w, mode=mode: _range(
                        lambda pk: eq.budget_equivalence(
                            budget, chip, w, pick=pk, mode=mode, **ctx.kw
                        )
                    ),
                )
    summary = (
        f"${budget / 1e6:,.0f}M / ${implied:,.0f} per H100 = {claimed:,.0f} H100; catalog "
        f"all-in ${price['low']:,.0f}-{price['high']:,.0f} gives "
        f"{pure.h100e_low:,.0f}-{pure.h100e_high:,.0f} H100"
    )
    if chip:
        sp = nums[f"{chip}_spec_h100e"]
        summary += (
            f"; the same money buys {sp['low']:,.0f}-{sp['high']:,.0f} spec-sheet H100e of {chip}"
        )
    return ClaimResult(
        c,
        nums,
        verdict,
        summary,
        [
            "all-in price = GPU + server + network share (catalog allin_price_usd, estimate)",
            "pure-price equivalence is linear in the budget; ranges from the low/high price",
            f"{chip} counted at bf16 peak (spec) and with the training model: 'job' = one job "
            "over all chips at the preset global batch, 'capacity' = independent copies on the "
            "best slice size"
            if chip
            else "no alternative chip",
        ],
        err,
    )


def check_dojo_h100e(c: Claim, ctx: Context) -> ClaimResult:
    """Tiles / ExaPODs of Dojo that make ``claimed_h100e`` H100-equivalents, on the spec
    sheet (bf16 peak) and per workload (inverse of the workload equivalence)."""
    p, cat, err = c.params, ctx.catalog, []
    claimed, chip = float(p["claimed_h100e"]), p.get("chip", "dojo_tile")
    per_pod = float(p.get("tiles_per_exapod", 120))
    planned = float(p.get("planned_exapods", 0))
    spec = {
        pk: claimed / float(eq.spec_equivalence(cat.chip(chip, pk), "bf16", catalog=cat))
        for pk in PICKS
    }
    nums: dict[str, Any] = {
        "spec_tiles": spec,
        "spec_exapods": {k: v / per_pod for k, v in spec.items()},
    }
    worst = max(spec.values())
    for w in p.get("workloads", []):
        for mode in eq.MODES:
            t = _recorded(
                err,
                w,
                lambda w=w, mode=mode: _range(
                    lambda pk: eq.chips_for_h100e(chip, claimed, w, pick=pk, mode=mode, **ctx.kw)
                ),
            )
            if t is not None:  # low perf needs MORE tiles: report the count range sorted
                t = {"low": min(t.values()), "best": t["best"], "high": max(t.values())}
            nums[f"tiles[{w}, {mode}]"] = t
            nums[f"exapods[{w}, {mode}]"] = (
                None if t is None else {k: v / per_pod for k, v in t.items()}
            )
            if t is not None:
                worst = max(worst, t["best"])
    need_pods = worst / per_pod
    verdict = (
        "plausible"
        if planned and need_pods <= planned * (1 + TOL)
        else ("doubtful" if planned else "n/a")
    )
    summary = (
        f"{claimed:,.0f} H100e = {spec['best']:,.0f} tiles ({spec['best'] / per_pod:.1f} "
        f"ExaPODs) on bf16 peak"
    )
    for w in p.get("workloads", []):
        job, capacity = (nums.get(f"tiles[{w}, {m}]") for m in eq.MODES)
        if job and capacity:
            summary += (
                f"; {w}: {job['best']:,.0f} tiles as one job, {capacity['best']:,.0f} "
                "as fleet capacity"
            )
    if planned:
        summary += f"; Tesla planned {planned:g} ExaPODs ({planned * per_pod:,.0f} tiles)"
    return ClaimResult(
        c,
        nums,
        verdict,
        summary,
        [
            "Dojo tile = 25 D1, 9.05 PFLOP/s bf16; HBM/network = its share of the DIPs (catalog)",
            "workload: Dojo in its own mesh + Z-plane network vs H100 in DGX H100 + IB (training "
            "model); 'job' = one job over all chips, 'capacity' = independent copies",
            "verdict: plausible if the tiles needed fit the planned ExaPODs; Tesla never published "
            "a deployed tile count",
        ],
        err,
    )


def check_growth(c: Claim, ctx: Context) -> ClaimResult:
    """Growth rates of a series of H100e figures vs the claimed percentages, and the
    model's H100e for given fleets (independent clusters: sum of their H100e)."""
    p, err = c.params, []
    series = [float(x) for x in p["h100e"]]
    labels = list(p.get("labels", [str(i) for i in range(len(series))]))
    rates = {
        f"{labels[0]} -> {labels[i]}": 100 * (series[i] / series[0] - 1)
        for i in range(1, len(series))
    }
    rates.update(
        {
            f"{labels[i - 1]} -> {labels[i]}": 100 * (series[i] / series[i - 1] - 1)
            for i in range(2, len(series))
        }
    )
    nums: dict[str, Any] = {"growth_pct": rates}
    claimed = [float(x) for x in p.get("claimed_growth_pct", [])]
    computed = [100 * (s / series[0] - 1) for s in series[1:]]
    verdicts = [compare(cl, co, co) for cl, co in zip(claimed, computed)]
    for key in ("fleet_end_2023", "fleet_end_2024"):
        fleet = p.get(key)
        if not fleet:
            continue
        spec = sum(n * float(eq.spec_equivalence(k, "bf16", catalog=ctx.catalog)) for k, n in fleet)
        nums[f"{key}_spec_h100e"] = spec
        for w in p.get("workloads", []):
            nums[f"{key}_h100e[{w}, capacity]"] = _recorded(
                err,
                f"{key} {w}",
                lambda w=w, fleet=fleet: _range(
                    lambda pk: eq.fleet_equivalence(
                        [(k, n) for k, n in fleet], w, pick=pk, mode="capacity", **ctx.kw
                    )
                ),
            )
    target = series[-1]
    f24 = nums.get("fleet_end_2024_spec_h100e")
    if f24 is not None:
        nums["gap_to_target_h100"] = target - f24
    v = (
        "consistent"
        if all(x == "consistent" for x in verdicts)
        else (
            "understated"
            if "understated" in verdicts and "overstated" not in verdicts
            else "overstated"
            if "overstated" in verdicts
            else "consistent"
        )
    )
    summary = ", ".join(f"{k}: {x:+.0f}%" for k, x in rates.items())
    if claimed:
        summary += (
            " (claimed "
            + ", ".join(f"{x:+.0f}%" for x in claimed)
            + "; implied: "
            + ", ".join(f"{series[0] * (1 + x / 100):,.0f}" for x in claimed)
            + " H100e)"
        )
    if f24 is not None:
        summary += f"; candidate end-2024 fleet = {f24:,.0f} spec H100e"
    return ClaimResult(
        c,
        nums,
        v,
        summary,
        [
            "growth = h100e[t] / h100e[t0] - 1",
            "+130% matches 15k -> ~35k (35k H100 active per the Q1 call), +167% would be 15k -> 40k",
            "fleets are independent clusters (H100e add), each counted as capacity (independent "
            "jobs); A100 and Dojo tile counts are estimates "
            "(~14k A100 July 2023; 875 tiles = 8k spec H100e)",
        ],
        err,
    )


def check_fleet_h100e(c: Claim, ctx: Context) -> ClaimResult:
    """Generic: a fleet (list of [chip, count]) vs a claimed H100e, spec and per workload."""
    p, err = c.params, []
    fleet = [(k, float(n)) for k, n in p["fleet"]]
    claimed = float(p["claimed_h100e"])
    prec = p.get("precision", "bf16")
    spec = sum(n * float(eq.spec_equivalence(k, prec, catalog=ctx.catalog)) for k, n in fleet)
    nums: dict[str, Any] = {"spec_h100e": spec}
    lo, hi = spec, spec
    for w in p.get("workloads", []):
        r = _recorded(
            err,
            w,
            lambda w=w: _range(
                lambda pk: eq.fleet_equivalence(
                    fleet, w, pick=pk, mode=p.get("mode", "capacity"), **ctx.kw
                )
            ),
        )
        nums[f"h100e[{w}]"] = r
        if r:
            lo, hi = min(lo, r["low"]), max(hi, r["high"])
    verdict = compare(claimed, lo, hi)
    return ClaimResult(
        c,
        nums,
        verdict,
        f"model {lo:,.0f}-{hi:,.0f} H100e (spec {spec:,.0f}) vs claimed {claimed:,.0f}",
        ["independent clusters: H100e add", f"spec at {prec}"],
        err,
    )
