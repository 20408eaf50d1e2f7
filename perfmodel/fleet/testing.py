"""Generated Problems and LPs for tests and benchmarks (above the problem layer; the
scenario generators themselves are :mod:`perfmodel.fleet.generated`, re-exported here).

:func:`generate_problem` builds :func:`generate_scenario` with the stand-in value curve.
:func:`generate_placement_problem` builds :func:`generate_placement_scenario` (workloads
with demand, lifetimes, energy prices, an existing fleet that retires) with the
labelled stand-in rates, then (``spread > 0``) multiplies each offer x workload rate by a
seeded factor in ``[1 - spread, 1 + spread]`` and drops a few pairs (rate 0, a why-not
reason), so that the workloads differ the way the models make them differ. The
benchmark's planner-scale rows (``benchmarks/placement_bench.py``) come from here.

:func:`random_fleet_lp` is a raw LP of the planner's structure (no scenario), for the
solver tests and benchmarks (``benchmarks/pdhg_bench.py``).
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from perfmodel.fleet.generated import ADVERSARIAL as ADVERSARIAL
from perfmodel.fleet.generated import generate_adversarial as generate_adversarial
from perfmodel.fleet.generated import generate_placement_scenario
from perfmodel.fleet.generated import generate_scenario as generate_scenario
from perfmodel.fleet.lp import LP
from perfmodel.fleet.problem import Problem, build_problem

__all__ = [
    "ADVERSARIAL",
    "generate_adversarial",
    "generate_scenario",
    "generate_problem",
    "generate_placement_scenario",
    "generate_placement_problem",
    "random_fleet_lp",
]


def generate_placement_problem(
    seed: int,
    n_offers: int = 4,
    n_sites: int = 2,
    n_periods: int = 4,
    n_workloads: int = 2,
    *,
    spread: float = 0.3,
    drop: float = 0.1,
    **kw,
) -> Problem:
    """:func:`generate_placement_scenario` built with the stand-in rates, perturbed by
    seeded factors in ``[1 - spread, 1 + spread]`` with a share ``drop`` of the offer x
    workload pairs made ineligible (rate 0)."""
    sc = generate_placement_scenario(seed, n_offers, n_sites, n_periods, n_workloads, **kw)
    pr = build_problem(sc, value_source="standin")
    if spread <= 0 and drop <= 0:
        return pr
    rng = np.random.default_rng(seed + 7919)
    rate = np.asarray(pr.rate, np.float64)
    f = rng.uniform(1 - spread, 1 + spread, rate.shape)
    gone = (rng.uniform(size=rate.shape) < drop) & (rate > 0)
    gone[:, 0] = False  # every offer serves at least the first workload it can
    reasons = list(pr.ineligible) + [
        (pr.offers[k], pr.workload_keys[w], "generated: not eligible")
        for k, w in zip(*np.nonzero(gone))
    ]
    return dataclasses.replace(
        pr, rate=jnp.asarray(np.where(gone, 0.0, rate * f)), ineligible=tuple(reasons)
    )


# --------------------------------------------------------------------------------------


def generate_problem(
    seed: int, n_offers: int = 5, n_sites: int = 2, n_periods: int = 4, **kw
) -> Problem:
    """:func:`generate_scenario` built into a :class:`Problem` with the stand-in value curve."""
    return build_problem(
        generate_scenario(seed, n_offers, n_sites, n_periods, **kw), value_source="standin"
    )


# --------------------------------------------------------------------------- raw LPs


def random_fleet_lp(
    seed: int,
    n_sites: int = 3,
    n_chips: int = 6,
    n_periods: int = 8,
    n_eq: int = 1,
    capped_vars: bool = False,
):
    """A random feasible LP with the fleet planner's structure (for tests and benchmarks).

    Variables ``buy[site, chip, period]`` >= 0 (purchase units). Maximise H100e-quarters
    ``sum v_c (T - t) buy``. Rows, with deliberately wide scales:

    - power[site, period] (W, ~1e8): cumulative units x W per unit (1e3..1.4e5 W);
    - budget[year] (USD, ~1e9..1e10): units x price (3e4..3e6 USD);
    - supply[chip, period] (units, 0..5e3), zero before a chip's first delivery quarter;
    - ratio[period]: chip 0 units <= 2 x all other units (a training-loop ratio);
    - ``n_eq`` committed deliveries: ``sum_site buy[:, c, t] == d`` (equalities).

    ``capped_vars`` gives every variable a finite upper bound. x = the committed
    deliveries at site 0 is feasible by construction, so the LP is feasible and bounded.
    Returns a :class:`perfmodel.fleet.lp.LP` with var/row names.
    """
    rng = np.random.default_rng(seed)
    S, C, T = n_sites, n_chips, n_periods
    n = S * C * T
    idx = np.arange(n).reshape(S, C, T)
    value = rng.uniform(0.3, 3.0, C) * rng.choice([1, 8, 72], C)  # H100e per purchase unit
    power_w = rng.uniform(1e3, 1.4e5, C)
    price_usd = value * rng.uniform(2.0e4, 4.0e4, C)
    first_t = rng.integers(0, max(T // 2, 1), C)
    first_t[0] = 0
    c = np.zeros(n)
    for s in range(S):
        for k in range(C):
            c[idx[s, k]] = value[k] * (T - np.arange(T)) * rng.uniform(0.9, 1.1)
    rows, b, names = [], [], []
    site_mw = rng.uniform(50, 500, S)
    for s in range(S):
        for t in range(T):
            r = np.zeros(n)
            for k in range(C):
                r[idx[s, k, : t + 1]] = power_w[k]
            rows.append(r)
            b.append(site_mw[s] * 1e6 * (1 + 0.1 * t))
            names.append(f"power[site{s},q{t}]")
    for yr in range((T + 3) // 4):
        r = np.zeros(n)
        for k in range(C):
            r[idx[:, k, 4 * yr : 4 * yr + 4].ravel()] = price_usd[k]
        rows.append(r)
        b.append(rng.uniform(1e9, 1e10))
        names.append(f"budget[y{yr}]")
    cap = rng.uniform(100, 5000, (C, T)) * (np.arange(T)[None, :] >= first_t[:, None])
    for k in range(C):
        for t in range(T):
            r = np.zeros(n)
            r[idx[:, k, t]] = 1.0
            rows.append(r)
            b.append(cap[k, t])
            names.append(f"supply[chip{k},q{t}]")
    for t in range(T):
        r = np.zeros(n)
        r[idx[:, 0, : t + 1].ravel()] = 1.0
        for k in range(1, C):
            r[idx[:, k, : t + 1].ravel()] = -2.0
        rows.append(r)
        b.append(0.0)
        names.append(f"ratio[q{t}]")
    A_ub, b_ub = np.array(rows), np.array(b)
    # committed deliveries: a small fraction of supply, of chips other than 0 (ratio-safe)
    A_eq, b_eq, eq_names = np.zeros((n_eq, n)), np.zeros(n_eq), []
    x_feas = np.zeros(n)
    for e in range(n_eq):
        k = 1 + (e % max(C - 1, 1)) if C > 1 else 0
        t = int(first_t[k]) + e // max(C - 1, 1)
        t = min(t, T - 1)
        A_eq[e, idx[:, k, t]] = 1.0
        d = 0.05 * cap[k, t]
        b_eq[e] = d
        x_feas[idx[0, k, t]] += d
        eq_names.append(f"commit[chip{k},{e}]")  # same names for every seed (stackable)
    # make the committed plan fit: raise any violated rhs
    slack = A_ub @ x_feas - b_ub
    b_ub = np.where(slack > 0, b_ub + slack * 1.5, b_ub)
    hi = np.full(n, np.inf)
    if capped_vars:
        hi = np.maximum(rng.uniform(50, 3000, n), x_feas * 1.5)
    var_names = tuple(
        f"buy[site{s},chip{k},q{t}]" for s in range(S) for k in range(C) for t in range(T)
    )
    return LP(
        c=jnp.asarray(c),
        A_ub=jnp.asarray(A_ub),
        b_ub=jnp.asarray(b_ub),
        A_eq=jnp.asarray(A_eq),
        b_eq=jnp.asarray(b_eq),
        lo=jnp.zeros(n),
        hi=jnp.asarray(hi),
        var_names=var_names,
        row_names=tuple(names) + tuple(eq_names),
        integer=(True,) * n,
    )
