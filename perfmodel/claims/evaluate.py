"""Evaluating claims with the model, and the rows ``perfmodel claims`` prints."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from perfmodel import equivalence as eq
from perfmodel.claims.checks import EVALUATORS
from perfmodel.claims.context import Context
from perfmodel.claims.files import load_claims
from perfmodel.claims.verdicts import Claim, ClaimResult
from perfmodel.hardware import Catalog, load_catalog


def evaluate_claims(
    claims: list[Claim] | None = None,
    *,
    catalog: Catalog | None = None,
    curve_fn: Callable | None = None,
    inference_fn: Callable | None = None,
    grid=eq.DEFAULT_GRID,
    only: list[str] | None = None,
    plan_fn: Callable | None = None,
) -> list[ClaimResult]:
    """Evaluate claims (default: the built-in ones) and return one result per claim.

    ``curve_fn``/``inference_fn`` replace the training model (tests use stand-ins);
    ``only`` restricts to the given claim ids; ``plan_fn`` plans a scenario for the claims
    about a plan (:mod:`perfmodel.claims.plans`)."""
    ctx = Context(
        load_catalog() if catalog is None else catalog,
        curve_fn,
        inference_fn,
        tuple(grid),
        plan_fn=plan_fn,
    )
    claims = load_claims() if claims is None else claims
    if only:
        unknown = set(only) - {c.id for c in claims}
        if unknown:
            raise ValueError(
                f"unknown claim id(s) {sorted(unknown)}; known: {', '.join(c.id for c in claims)}"
            )
        claims = [c for c in claims if c.id in only]
    out = []
    for c in claims:
        try:
            r = EVALUATORS[c.check](c, ctx)
        except (KeyError, TypeError) as e:
            raise ValueError(f"claim {c.id!r}: bad params for check {c.check!r}: {e}") from None
        out.append(r)
    return out


def claims_table(results: list[ClaimResult]) -> list[dict[str, Any]]:
    """Rows (id, date, verdict, summary, sources) for printing."""
    return [
        {
            "id": r.claim.id,
            "date": r.claim.date,
            "verdict": r.verdict,
            "summary": r.summary,
            "source": r.claim.sources[0],
            "errors": len(r.errors),
        }
        for r in results
    ]
