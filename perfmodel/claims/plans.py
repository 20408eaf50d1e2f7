"""Evaluators that run the fleet planner: does a scenario's plan reach the claimed H100e
milestones, and which constraints decide each one.

The planner sits above the claims in the layering, so the evaluator gets it from the
caller: ``Context.plan_fn(scenario, value_source) -> dict`` (``perfmodel claims`` passes
:func:`perfmodel.fleet.story.plan_story`). Without it the claim reads ``n/a``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from perfmodel.claims.context import Context
from perfmodel.claims.verdicts import TOL, Claim, ClaimResult, compare

__all__ = ["binding_at", "check_plan_milestones", "milestone_verdicts"]


#: Binding kinds named by their own fields rather than by the site, offer or year.
_KIND_NAMES = {
    "ratio": lambda b: (
        f"ratio rule {b.get('rule', 0)} ({'+'.join(b.get('numerator', []))} >= "
        f"{b.get('min_ratio', 0):g} x {'+'.join(b.get('denominator', []))})"
    ),
    "own_share": lambda b: f"own-hardware share at {b.get('site')}",
}
#: What any other binding record concerns, first given first: (field, joining word).
_SCOPES = (("site", " at "), ("offer", " of "), ("year", " "))


def _short_name(b: Mapping[str, Any]) -> str:
    k = b["kind"]
    if k in _KIND_NAMES:
        return _KIND_NAMES[k](b)
    return next((f"{k}{sep}{b[f]}" for f, sep in _SCOPES if b.get(f)), k)


def binding_at(binding: Sequence[Mapping[str, Any]], period: str) -> list[str]:
    """Short names of the constraints that bind in ``period`` (plan binding records:
    kind, periods and the site, offer or rule they concern)."""
    return [_short_name(b) for b in binding if period in b.get("periods", ())]


def milestone_verdicts(
    milestones: Sequence[tuple[str, str, float]],
    periods: Sequence[str],
    h100e: Sequence[float],
    binding: Sequence[Mapping[str, Any]],
    tol: float = TOL,
) -> tuple[str, list[dict]]:
    """Each ``(label, period, claimed H100e)`` against the plan's H100e in that period:
    ``consistent`` within ``tol``, ``overstated`` (the plan falls short of the claim) or
    ``understated`` (the plan exceeds it), with the constraints binding then. Overall:
    ``consistent`` if every milestone is, ``does not fit`` if the plan falls short of
    any, else ``understated``."""
    rows = []
    for label, period, claimed in milestones:
        if period not in periods:
            raise ValueError(f"milestone {label!r}: period {period!r} is not in the plan")
        got = float(h100e[list(periods).index(period)])
        rows.append(
            dict(
                label=label,
                period=period,
                claimed_h100e=float(claimed),
                planned_h100e=got,
                ratio=got / float(claimed),
                verdict=compare(float(claimed), got, got, tol),
                binding=binding_at(binding, period),
            )
        )
    v = [r["verdict"] for r in rows]
    overall = (
        "consistent"
        if all(x == "consistent" for x in v)
        else "does not fit"
        if "overstated" in v
        else "understated"
    )
    return overall, rows


def check_plan_milestones(c: Claim, ctx: Context) -> ClaimResult:
    """Plan ``params.scenario`` (``value_source``, default the training model) and set its
    H100e in each milestone's period against the claimed figure; ``also_offer`` (e.g.
    "h100") adds that offer's own H100e beside the total (a claim that counts H100s)."""
    p = c.params
    ms = [(str(a), str(b), float(x)) for a, b, x in p["milestones"]]
    scenario, source = str(p["scenario"]), str(p.get("value_source", "auto"))
    assumptions = [
        f"the built-in scenario {scenario!r} planned as it stands (objective, budget, supply "
        "and rules from the file; value curves: " + source + ")",
        f"consistent = the plan's H100e within {TOL:.0%} of the claimed figure in that quarter",
        "binding = the plan's binding constraints in that quarter (perfmodel.fleet.report."
        "binding_records)",
    ]
    if ctx.plan_fn is None:
        return ClaimResult(
            c, {}, "n/a", "no planner given (perfmodel claims passes it)", assumptions
        )
    st = ctx.plan_fn(scenario, source)
    overall, rows = milestone_verdicts(ms, st["periods"], st["h100e"], st["binding"])
    nums: dict[str, Any] = {f"h100e[{r['period']}]": r["planned_h100e"] for r in rows}
    nums["milestones"] = rows
    costed = [e for e in st.get("event_costs", []) if "h100e_lost" in e]  # re-planned
    for e in costed:
        nums[f"event_{e['event']}_h100e_quarters_lost"] = e["h100e_quarters_lost"]
    also = p.get("also_offer")  # e.g. "h100": the call's '85,000 H100' counts H100s alone
    by_offer = st.get("h100e_by_offer", {})
    if also and also in by_offer:
        for r in rows:
            t = list(st["periods"]).index(r["period"])
            r[f"planned_{also}_h100e"] = float(by_offer[also][t])
            nums[f"{also}_h100e[{r['period']}]"] = r[f"planned_{also}_h100e"]
    parts = []
    for r in rows:
        how = {
            "consistent": "within",
            "overstated": "short of",
            "understated": "above",
        }[r["verdict"]]
        alone = (
            f" ({also} alone {r[f'planned_{also}_h100e']:,.0f})"
            if f"planned_{also}_h100e" in r
            else ""
        )
        parts.append(
            f"{r['period']}: {r['planned_h100e']:,.0f} H100e{alone}, {how} "
            f"~{r['claimed_h100e']:,.0f} ({r['ratio']:.0%}); binding: "
            f"{', '.join(r['binding']) or 'none'}"
        )
    summary = f"scenario {scenario}: " + "; ".join(parts)
    lost = {e["period"]: e for e in costed if e["period"] in {r["period"] for r in rows}}
    for per, e in lost.items():
        t = list(st["periods"]).index(per)
        summary += (
            f"; the {e['chips']:,.0f}-{e['offer']} delay withholds {e['h100e_lost'][t]:,.0f} "
            f"H100e in {per}"
        )
    return ClaimResult(c, nums, overall, summary, assumptions)
