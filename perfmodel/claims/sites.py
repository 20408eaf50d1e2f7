"""Evaluators of site claims: a cluster in its site power, FSD computers beside H100s,
and the cost of delayed H100 deliveries."""

from __future__ import annotations

from typing import Any

from perfmodel import equivalence as eq
from perfmodel.claims.context import Context, _fig, _range, _recorded
from perfmodel.claims.verdicts import Claim, ClaimResult, compare
from perfmodel.hardware import PICKS, Catalog


def _it_power(cat: Catalog, chip: str, n: float, pk: str) -> float:
    return n * _fig(cat, chip, "allin_power_w")[pk]


def check_cortex_power(c: Claim, ctx: Context) -> ClaimResult:
    """Does the cluster fit the site power (all-in IT power x PUE), and what H100e a
    bigger site holds under several hardware mixes."""
    p, cat, err = c.params, ctx.catalog, []
    site = float(p["power_w"])
    socs = float(p.get("tesla_computers", 0)) * float(p.get("socs_per_computer", 1))
    tchip = p.get("tesla_chip", "ai4")
    pue = {"low": eq.PUE_RANGE[0], "best": eq.DEFAULT_PUE, "high": eq.PUE_RANGE[1]}
    need = {
        pk: (_it_power(cat, "h100", float(p["h100"]), pk) + _it_power(cat, tchip, socs, pk))
        * pue[pk]
        for pk in PICKS
    }
    nums: dict[str, Any] = {
        "site_power_needed_w": need,
        "site_power_claimed_w": site,
        "h100_it_power_w": _it_power(cat, "h100", float(p["h100"]), "best"),
        f"{tchip}_it_power_w": _it_power(cat, tchip, socs, "best"),
    }
    verdict = (
        "fits"
        if need["high"] <= site
        else "does not fit"
        if need["low"] > site
        else "marginal"
        if need["best"] > site
        else "fits"
    )
    target = float(p.get("target_power_w", 0))
    w = p.get("workload", "video-driving")
    mixes = {}
    for label, parts in p.get("mixes", []) if target else []:
        row = {"spec_h100e": 0.0, "training_h100e": 0.0, "inference_h100e": 0.0, "chips": {}}
        for chip, share in parts:
            n = eq.chips_for_power(
                target * share, _fig(cat, chip, "allin_power_w")["best"], eq.DEFAULT_PUE
            )
            row["chips"][chip] = n
            kind = cat.record(chip).text.get("kind", "gpu")
            if kind == "inference":
                row["spec_h100e"] += n * float(eq.spec_equivalence(chip, "int8", catalog=cat))
                v = _recorded(
                    err, f"{label} {chip}", eq.inference_equivalence, chip, n, w, **ctx.ikw
                )
                row["inference_h100e"] = (
                    None
                    if v is None or row["inference_h100e"] is None
                    else row["inference_h100e"] + v
                )
            else:
                row["spec_h100e"] += n * float(eq.spec_equivalence(chip, "bf16", catalog=cat))
                v = _recorded(
                    err,
                    f"{label} {chip}",
                    eq.workload_equivalence,
                    chip,
                    n,
                    w,
                    mode="capacity",
                    **ctx.kw,
                )
                row["training_h100e"] = (
                    None
                    if v is None or row["training_h100e"] is None
                    else row["training_h100e"] + v
                )
        mixes[label] = row
    nums["mixes_at_target"] = mixes
    summary = (
        f"{p['h100']:,} H100 + {socs:,.0f} {tchip} SoCs need {need['best'] / 1e6:.0f} MW "
        f"(range {need['low'] / 1e6:.0f}-{need['high'] / 1e6:.0f}) at the meter vs "
        f"{site / 1e6:.0f} MW"
    )
    if mixes:
        best = max(mixes.items(), key=lambda kv: kv[1]["training_h100e"] or kv[1]["spec_h100e"])
        summary += f"; at {target / 1e6:.0f} MW the highest training H100e is '{best[0]}'"
    return ClaimResult(
        c,
        nums,
        verdict,
        summary,
        [
            "site power = sum(n x allin_power_w) x PUE; all-in power includes host, network, storage",
            f"PUE {eq.DEFAULT_PUE} (range {eq.PUE_RANGE[0]}-{eq.PUE_RANGE[1]}, estimate); "
            "low/high pair low/high per-chip power with low/high PUE",
            f"'Tesla AI computers' = {p.get('socs_per_computer', 1)} {tchip} SoCs each",
            "mixes split the target site power by share; H100e (capacity mode) of independent "
            "clusters add; AI4 "
            "counts only as inference (forward-only int8) H100e",
        ],
        err,
    )


def check_inference_in_loop(c: Claim, ctx: Context) -> ClaimResult:
    """FSD computers beside H100s: their power and what they deliver in forward-only
    (inference) H100e, vs the H100s the same power would host."""
    p, cat, err = c.params, ctx.catalog, []
    h100 = float(p["h100"])
    chip = p.get("chip", "ai4")
    spc = float(p.get("socs_per_computer", 1))
    w = p.get("workload", "video-driving")
    h_it = _it_power(cat, "h100", h100, "best")
    nums: dict[str, Any] = {}
    for label, ratio in p["ratios"]:
        comps = h100 * float(ratio)
        socs = comps * spc
        it = {pk: _it_power(cat, chip, socs, pk) for pk in PICKS}
        row = {
            "computers": comps,
            "socs": socs,
            "it_power_w": it,
            "site_power_w": {pk: it[pk] * eq.DEFAULT_PUE for pk in PICKS},
            "share_of_h100_power": it["best"] / h_it,
            "int8_spec_h100e": eq.spec_equivalence_range(chip, "int8", socs, cat),
            "inference_h100e": _recorded(
                err,
                label,
                lambda socs=socs: _range(
                    lambda pk: eq.inference_equivalence(chip, socs, w, pick=pk, **ctx.ikw)
                ),
            ),
            "h100_same_power": it["best"] / _fig(cat, "h100", "allin_power_w")["best"],
            "capex_usd": {pk: socs * _fig(cat, chip, "allin_price_usd")[pk] for pk in PICKS},
        }
        nums[label] = row
    first = nums[p["ratios"][0][0]]
    inf = first["inference_h100e"]
    summary = (
        f"{first['computers']:,.0f} computers ({first['socs']:,.0f} SoCs) draw "
        f"{first['it_power_w']['best'] / 1e6:.1f} MW IT ({100 * first['share_of_h100_power']:.0f}% "
        f"of the H100s'), = {first['h100_same_power']:,.0f} H100 of power; "
        f"int8 spec {first['int8_spec_h100e']['best']:,.0f} H100e"
    )
    if inf:
        summary += f", forward-only {inf['best']:,.0f} H100e on {w}"
    verdict = "plausible"
    if inf and inf["high"] < first["h100_same_power"]:
        verdict = "doubtful"
    return ClaimResult(
        c,
        nums,
        verdict,
        summary,
        [
            f"{chip} all-in power and int8 rate are estimates (no Tesla spec sheet)",
            "inference H100e: H100s at int8 delivering the same forward-only throughput "
            f"on {w}; AI4s add no training (backward pass) capacity",
            "verdict plausible if the computers deliver at least the H100s their power would host; "
            "reusing car hardware also tests the exact in-car computer (not modelled)",
        ],
        err,
    )


def check_diversion(c: Claim, ctx: Context) -> ClaimResult:
    """H100s delayed by some months: the cost in H100e-months, money and cloud rent."""
    p, cat = c.params, ctx.catalog
    n = float(p["h100"])
    months = {pk: float(p["months"][pk]) for pk in PICKS}
    price = _fig(cat, "h100", "allin_price_usd")
    rent = p.get("cloud_usd_per_gpu_hour", {"low": 1.9, "best": 2.4, "high": 2.94})
    hm = {pk: n * months[pk] for pk in PICKS}
    nums: dict[str, Any] = {
        "h100e_months": hm,
        "value_usd": {pk: n * price[pk] for pk in PICKS},
        "gpu_price_usd": {pk: n * _fig(cat, "h100", "price_usd")[pk] for pk in PICKS},
        "cloud_rent_equivalent_usd": {pk: n * months[pk] * 730.0 * float(rent[pk]) for pk in PICKS},
    }
    fleet = float(p.get("fleet_h100e_q1_2024", 0))
    if fleet:
        nums["fleet_months_equivalent"] = {pk: hm[pk] / fleet for pk in PICKS}
    claimed = float(p.get("claimed_value_usd", 0))
    verdict = (
        compare(claimed, n * _fig(cat, "h100", "price_usd")["low"], n * price["high"])
        if claimed
        else "n/a"
    )
    summary = (
        f"{n:,.0f} H100 x {months['low']:g}-{months['high']:g} months = "
        f"{hm['low']:,.0f}-{hm['high']:,.0f} H100e-months (best {hm['best']:,.0f})"
    )
    if fleet:
        summary += f" = {hm['best'] / fleet:.1f} months of a {fleet:,.0f}-H100e fleet"
    summary += f"; worth ${n * price['best'] / 1e6:,.0f}M all-in"
    return ClaimResult(
        c,
        nums,
        verdict,
        summary,
        [
            "months of delay are an assumption (the report says 'by months'; X's later orders were "
            "re-assigned to Tesla): low/best/high = "
            + "/".join(f"{months[k]:g}" for k in ("low", "best", "high")),
            "an H100 is exactly 1 H100e on every workload (identity)",
            "value verdict compares '>$500M' with 12k x GPU price (low) .. all-in price (high)",
            "cloud rent at 730 h/month",
        ],
    )
