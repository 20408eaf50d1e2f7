"""The natural steps one quarter of delay (an offer's deliveries, a site's power ramp),
one purchase unit of supply (row and bounds) and 10% of a price (perfmodel.fleet.sensitivity.natural) against independent re-solves of
the problem changed by hand, on generated scenarios (hypothesis)."""

import dataclasses
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import perfmodel  # noqa: F401  (x64)
from perfmodel.fleet.build import build_lp
from perfmodel.fleet.highs import HighsLP
from perfmodel.fleet.sensitivity import natural_sensitivities, sensitivity_sentence
from perfmodel.fleet.testing import generate_problem

KINDS = ("supply_delay", "power_delay", "price", "supply")


def _opt(problem) -> float | None:
    r = HighsLP(build_lp(problem)).solve()
    return r.objective if r.status == "optimal" else None


def _by_hand(pr, rec):
    """The problem after the record's step, built from the record's keys alone."""
    if rec["kind"] == "supply":
        k, t = pr.offers.index(rec["offer"]), pr.periods.index(rec["periods"][0])
        sup = np.asarray(pr.supply_units, np.float64).copy()
        sup[k, t] += rec["step"]
        return dataclasses.replace(pr, supply_units=sup)
    if rec["kind"] == "supply_delay":
        k = pr.offers.index(rec["offer"])
        sup = np.asarray(pr.supply_units, np.float64).copy()
        sup[k] = np.concatenate([[0.0], sup[k, :-1]])
        return dataclasses.replace(pr, supply_units=sup)
    if rec["kind"] == "power_delay":
        s = pr.sites.index(rec["site"])
        pw = np.asarray(pr.power_avail_mw, np.float64).copy()
        pw[s, 1:] = pw[s, :-1].copy()
        return dataclasses.replace(pr, power_avail_mw=pw)
    k = pr.offers.index(rec["offer"])
    price = np.asarray(pr.unit_price_usd, np.float64).copy()
    price[k] *= 1.0 + rec["step"] / 100.0
    return dataclasses.replace(pr, unit_price_usd=price)


def _price_at(pr, offer, pct):
    k = pr.offers.index(offer)
    price = np.asarray(pr.unit_price_usd, np.float64).copy()
    price[k] *= 1.0 + pct / 100.0
    return dataclasses.replace(pr, unit_price_usd=price)


@given(
    seed=st.integers(0, 10_000),
    k=st.integers(3, 5),
    s=st.integers(1, 2),
    t=st.integers(3, 5),
)
@settings(max_examples=6)
def test_delay_and_price_steps_match_independent_resolves(seed, k, s, t):
    pr = generate_problem(seed, k, s, t)
    base = _opt(pr)
    if base is None:
        return
    recs = [r for r in natural_sensitivities(pr, top=1000, candidates=1000) if r["kind"] in KINDS]
    for r in recs:
        text = sensitivity_sentence(r)
        assert "valid for " in text and "[" not in text, text  # no internal row names
        json.dumps(r | {"label": None}, allow_nan=False)
        lo = -np.inf if r["valid_from"] is None else r["valid_from"]  # None: no limit
        hi = np.inf if r["valid_to"] is None else r["valid_to"]
        assert lo <= 0 <= hi
        new = _opt(_by_hand(pr, r))
        if new is None:
            assert r["resolved"] is None
            continue
        assert r["resolved"] == pytest.approx(new - base, rel=1e-6, abs=1e-6 * (1 + abs(base)))
        if r["kind"] == "price":
            # the envelope figure is the derivative: central differences of re-solves
            # at +-0.01% of the price, where the basis holds both ways
            h = 1e-2
            if lo < -h and hi > h:
                fp = _opt(_price_at(pr, r["offer"], h))
                fm = _opt(_price_at(pr, r["offer"], -h))
                assert fp is not None and fm is not None
                deriv = (fp - fm) / (2 * h)  # per % of the price
                assert r["dual"] == pytest.approx(deriv, rel=1e-4, abs=1e-6 * (1 + abs(base)))
        else:
            # a delay or more supply moves right-hand sides (and bounds): the optimum is
            # concave along it, linear where the basis holds
            assert r["resolved"] <= r["dual_estimate"] + 1e-6 * (1 + abs(r["dual_estimate"]))
            if r["step_within_range"]:
                assert r["resolved"] == pytest.approx(r["dual_estimate"], rel=1e-6, abs=1e-6)
            half = 0.5 * min(hi, 1.0)
            if half > 1e-6:
                blend = _blend(pr, r, half)
                got = _opt(blend)
                assert got is not None
                assert got - base == pytest.approx(r["dual"] * half, rel=1e-6, abs=1e-6)


def _blend(pr, rec, theta):
    """The problem at a fraction ``theta`` of the delay: (1 - theta) now + theta delayed."""
    late = _by_hand(pr, rec)
    f = "power_avail_mw" if rec["kind"] == "power_delay" else "supply_units"
    a, b = np.asarray(getattr(pr, f)), np.asarray(getattr(late, f))
    return dataclasses.replace(pr, **{f: (1 - theta) * a + theta * b})


def test_every_new_kind_appears_in_a_generated_plan():
    seen = set()
    for seed in range(6):
        pr = generate_problem(seed, 4, 2, 4)
        seen |= {r["kind"] for r in natural_sensitivities(pr, top=8)}
    assert set(KINDS) <= seen, seen


def test_price_sentence_is_plain_words():
    pr = generate_problem(3, 4, 2, 4)
    recs = [r for r in natural_sensitivities(pr, top=1000, candidates=1000) if r["kind"] == "price"]
    assert recs
    line = sensitivity_sentence(recs[0])
    assert line.startswith("10% lower price of ") and "% of the price" in line
    assert "re-solved (dual " in line
