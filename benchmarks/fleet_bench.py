"""Fleet planner benchmark: integer-plan feasibility and gap to the HiGHS MILP over a
generated suite, and one batched solve of 1,000 scenario variants vs sequential HiGHS.

    .venv/bin/python benchmarks/fleet_bench.py [--quick] [--method pdhg|highs] [--batch N] [--pdhg K]

Prints three tables and writes benchmarks/results/fleet_bench.json:

1. Suite (generated problems, 5-8 chip kinds x 1-30 sites x 4-12 quarters, adversarial
   ones of :data:`perfmodel.fleet.testing.ADVERSARIAL` (near-infeasible power, a
   supply-starved offer, ties, a huge capex spread, binding ratio and own-share rules,
   24-40 quarters), plus the built-in scenarios; each as max-h100e and as min-cost to half
   its reach): % of integer
   plans passing the independent checker (bar: 100%), gap to the HiGHS MILP optimum
   (bars: max-h100e median <= 0.1%, worst <= 1%; min-cost worst <= 1%) and the proven
   gap each plan reports itself.
2. Batch: N variants of tesla-2024 (unit prices x lognormal(0, 0.15), the diverted-H100
   delay 1-3 quarters, each site's power ramp x U(0.7, 1.3)) built with jit(vmap(build_lp))
   and solved by one :func:`perfmodel.fleet.simplex.solve_lp_batch_simplex` call (a
   vmapped dual simplex warm-started from the base scenario's optimal basis), vs the
   baseline a user would otherwise run: build each (sparse) LP and call HiGHS
   (:func:`perfmodel.fleet.problem.relaxed_solve`, highspy) one by one. Ratio printed warm and including compilation. For reference also: HiGHS via
   highspy without scipy's layer, cold and warm-started from the same basis, and the
   vmapped PDHG on the first K variants (it needs thousands of iterations per LP).
3. Consistency: the same LP solved with constant data, traced data under jit, as one
   member of a vmapped PDHG batch and of the simplex batch: objectives must agree within
   0.1% (and with HiGHS).
4. Scale (``--scale``): generated 8-offer problems from 10 sites x 12 quarters up to
   100 x 20, each size in fresh processes so that peak memory is its own: the sparse
   LP build (typed row blocks -> CSR) against the dense build of the same LP plus its CSR
   conversion (the storage the planner used before; skipped past ``--dense-max-gb``),
   then the heuristic-only plan (round/repair, gap to the LP bound) against the default
   plan (HiGHS MILP from the heuristic's plan, proven gap). Growth exponents of the
   build and plan times in the number of columns are fitted and printed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import perfmodel  # noqa: E402,F401
from perfmodel.fleet import default_batch_method, solve_relaxed_batch  # noqa: E402
from perfmodel.fleet.check import capex_by_year_usd, check_feasible, h100e_by_offer  # noqa: E402
from perfmodel.fleet.milp import solve_milp  # noqa: E402
from perfmodel.fleet.problem import (  # noqa: E402
    build_lp,
    build_problem,
    load_scenario,
    relaxed_solve,
)
from perfmodel.fleet.rounding import solve  # noqa: E402
from perfmodel.fleet.testing import (  # noqa: E402
    generate_adversarial,
    generate_problem,
    generate_scenario,
)

FULL_SUITE = [  # (offers, sites, quarters)
    (5, 1, 4),
    (6, 1, 8),
    (8, 1, 12),
    (5, 2, 4),
    (6, 2, 8),
    (7, 2, 12),
    (8, 3, 4),
    (5, 3, 8),
    (6, 4, 6),
    (7, 5, 4),
    (8, 5, 8),
    (5, 8, 6),
    (6, 10, 4),
    (7, 10, 6),
    (8, 12, 4),
    (5, 15, 4),
    (6, 20, 4),
    (5, 30, 4),
    (8, 2, 10),
    (7, 4, 10),
    (6, 6, 12),
    (5, 1, 12),
    (8, 8, 6),
    (7, 25, 4),
]
QUICK_SUITE = [(5, 1, 4), (6, 2, 6), (8, 3, 4), (5, 10, 4), (7, 2, 8), (5, 30, 4)]
# adversarial families (perfmodel.fleet.testing.ADVERSARIAL), two shapes each; "long"
# draws its own 24-40 quarters
ADVERSARIAL_SUITE = [  # (kind, offers, sites, quarters)
    ("tight-power", 6, 3, 8),
    ("tight-power", 8, 5, 6),
    ("starved", 7, 4, 8),
    ("starved", 5, 2, 12),
    ("ties", 6, 2, 8),
    ("ties", 8, 6, 6),
    ("capex-spread", 8, 3, 8),
    ("capex-spread", 8, 10, 4),
    ("ratio-own", 8, 2, 8),
    ("ratio-own", 8, 4, 6),
    ("long", 6, 2, 8),
    ("long", 8, 3, 8),
]
QUICK_ADVERSARIAL = [("tight-power", 6, 3, 8), ("ties", 6, 2, 8), ("ratio-own", 8, 2, 8)]


def _suite_row(name: str, pr, method: str, milp_time_s: float) -> dict:
    """One suite problem: the default integer plan, the checker, a 1e-5 HiGHS MILP; the
    gap of the plan to the MILP's objective (min-cost: to the MILP plan's capex) and the
    proven gap the plan reports itself (``plan.extra["gap"]``, what ``perfmodel plan``
    prints without ``--exact``)."""
    t0 = time.perf_counter()
    plan = solve(pr, method=method)
    t_plan = time.perf_counter() - t0
    viol = check_feasible(pr, plan)
    m = solve_milp(pr, time_limit_s=milp_time_s, mip_rel_gap=1e-5)
    gap = (m.objective - plan.objective) / abs(m.objective)  # both maximised (min-cost: -M$)
    if pr.objective == "min-cost" and m.buy_units is not None:
        # in capex: the LP objective also carries a 1e-9 H100e tie-break, which alone is
        # the objective when the existing fleet meets the target (capex 0: 0/0 -> 0)
        milp_capex = float(capex_by_year_usd(pr, m.buy_units).sum())
        gap = (plan.capex_usd - milp_capex) / max(milp_capex, 1.0)
    bound_gap = (m.bound - plan.objective) / abs(m.bound) if np.isfinite(m.bound) else float("nan")
    row = dict(
        case=name,
        objective=pr.objective,
        shape=list(pr.shape),
        vars=int(np.prod(pr.shape)) * (1 + pr.n_segments),
        feasible=not viol,
        fallback=bool(plan.extra.get("fallback")),
        plan_s=t_plan,
        milp_status=m.status,
        milp_s=m.seconds,
        gap=gap,
        gap_to_bound=bound_gap,
        gap_to_relaxed=plan.gap_to_relaxed,
        proven_gap=float(plan.extra.get("gap", float("nan"))),
    )
    print(
        f"  {name:<44} {str(pr.shape):<14} plan {t_plan:6.2f} s  MILP {m.seconds:6.2f} s "
        f"({m.status:<10}) gap {100 * gap:8.4f}% (proven {100 * row['proven_gap']:.4f}%)  "
        f"feasible {not viol}",
        flush=True,
    )
    return row


def _min_cost_target(sc, build_kw: dict) -> float:
    """Half the H100e the budget reaches in the target quarter (the scenario's, else the
    last; from the heuristic max-h100e plan): a target every scenario can meet with room
    to choose."""
    best = solve(build_problem(sc, **build_kw), method="highs", exact=False)
    h = h100e_by_offer(best.problem, best.buy_units).sum(axis=(0, 1))
    return 0.5 * float(h[best.problem.target_period])


def run_suite(sizes, adversarial, method: str, milp_time_s: float, seeds_per_size: int = 1):
    """max-h100e plans of the generated problems (``sizes``: plausible ones;
    ``adversarial``: (kind, offers, sites, quarters) of
    :func:`perfmodel.fleet.testing.generate_adversarial`) and the built-in scenarios,
    then min-cost plans of the same scenarios (target: half the target quarter's reach)."""
    cases: list[tuple[str, Callable[[], Any]]] = [
        (
            f"gen seed={1000 + i * 17 + r} {k}x{s}x{t}",
            lambda k=k, s=s, t=t, sd=1000 + i * 17 + r: generate_scenario(sd, k, s, t),
        )
        for i, (k, s, t) in enumerate(sizes)
        for r in range(seeds_per_size)
    ]
    cases += [
        (
            f"adv {kind} seed={2000 + i * 17 + r} {k}x{s}x{t if kind != 'long' else 'L'}",
            lambda kind=kind, k=k, s=s, t=t, sd=2000 + i * 17 + r: generate_adversarial(
                sd, kind, k, s, t
            ),
        )
        for i, (kind, k, s, t) in enumerate(adversarial)
        for r in range(seeds_per_size)
    ]
    for nm in ("tesla-2024", "tesla-2025"):
        cases.append((f"{nm} (stand-in values)", lambda nm=nm: load_scenario(nm)))
    kw: dict[str, Any] = dict(value_source="standin")
    scenarios = [(name, make()) for name, make in cases]
    rows = [
        _suite_row(name, build_problem(sc, **kw), method, milp_time_s) for name, sc in scenarios
    ]
    for name, sc in scenarios:
        tgt = _min_cost_target(sc, kw)
        pr = build_problem(sc, objective="min-cost", target_h100e=tgt, **kw)
        rows.append(_suite_row(f"{name} min-cost {tgt:,.0f}", pr, method, milp_time_s))
    return rows


def variants(base, n: int, seed: int = 0):
    """n perturbed copies of a Problem (prices, diverted-supply delay, power ramps)."""
    rng = np.random.default_rng(seed)
    K, S, T = base.shape
    price = np.asarray(base.unit_price_usd)
    power = np.asarray(base.power_avail_mw)
    sup0 = np.asarray(base.supply_units)
    k_h100 = base.offers.index("h100") if "h100" in base.offers else 0
    out = []
    for _ in range(n):
        sup = sup0.copy()
        delay = int(
            rng.integers(1, 4)
        )  # the 12k-H100 diversion arrives 1-3 quarters late (base: 2)
        if T > 2:
            moved = min(1500.0, sup[k_h100, 2])
            sup[k_h100, 2] -= moved
            if 0 + delay < T:
                sup[k_h100, delay] += moved
        ramp = rng.uniform(0.7, 1.3, size=(S, 1)) ** (np.arange(T)[None, :] / max(T - 1, 1))
        out.append(
            base.replace(
                unit_price_usd=jnp.asarray(price * rng.lognormal(0, 0.15, K)),
                power_avail_mw=jnp.asarray(power * ramp),
                supply_units=jnp.asarray(sup),
            )
        )
    return out


def _highspy_loop(lps, basis=None):
    """Sequential HiGHS simplex through highspy (no presolve), optionally warm-started
    from ``basis`` (a perfmodel.fleet.simplex.Basis): seconds and objectives."""
    import highspy

    from perfmodel.fleet.simplex.basis import AT_HI, BASIC, FIXED, FREE, _highs_model

    hb = None
    if basis is not None:
        st = np.asarray(basis.stat)
        n = np.shape(lps[0].c)[0]
        K = highspy.HighsBasisStatus
        hb = highspy.HighsBasis()
        code = {BASIC: K.kBasic, AT_HI: K.kUpper, FREE: K.kZero, FIXED: K.kLower}
        hb.col_status = [code.get(int(v), K.kLower) for v in st[:n]]
        hb.row_status = [
            K.kBasic if int(v) == BASIC else K.kUpper for v in st[n:]
        ]  # slack at 0 = row at b
        hb.valid = True
    objs, t = [], 0.0
    for lp in lps:
        h = _highs_model(lp)
        h.setOptionValue("solver", "simplex")
        if hb is not None:
            h.setBasis(hb)
        t0 = time.perf_counter()
        h.run()
        t += time.perf_counter() - t0
        objs.append(h.getInfo().objective_function_value)  # HighsLP maximises
    return t, np.array(objs)


def run_batch(n: int, pdhg_n: int, pdhg_opts: dict):
    from perfmodel.fleet.pdhg import solve_lp, solve_lp_batch
    from perfmodel.fleet.simplex import lp_basis, solve_lp_batch_simplex

    base = build_problem(load_scenario("tesla-2024"))  # training-model value curves
    probs = variants(base, n)
    stacked = jax.tree_util.tree_map(lambda *x: jnp.stack(x), *probs)
    build_batch = jax.jit(jax.vmap(lambda p: build_lp(p, xp=jnp)))

    def family():
        t0 = time.perf_counter()
        basis, _ = lp_basis(build_lp(base))  # the base scenario's optimal basis (HiGHS)
        lps = build_batch(stacked)
        jax.block_until_ready(lps.A_ub)
        t1 = time.perf_counter()
        sol = solve_lp_batch_simplex(lps, basis)
        obj = np.asarray(jax.block_until_ready(sol.objective))
        return sol, obj, t1 - t0, time.perf_counter() - t1, basis

    sol, obj, tb_first, ts_first, basis = family()
    sol, obj, tb, ts, basis = family()
    status = np.asarray(sol.status)
    pivots = np.asarray(sol.iterations)

    # the baseline a user would run: build each LP and call HiGHS (relaxed_solve), one by one
    t0 = time.perf_counter()
    lps_np = [build_lp(p) for p in probs]
    t_build_np = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = np.array([relaxed_solve(lp, "highs").objective for lp in lps_np])
    t_seq = time.perf_counter() - t0
    rel = np.abs(obj - ref) / np.abs(ref)
    # HiGHS without scipy's layer, cold and warm-started from the same basis (for reference)
    t_hs_cold, _ = _highspy_loop(lps_np)
    t_hs_warm, obj_warm = _highspy_loop(lps_np, basis)
    assert np.allclose(obj_warm, ref, rtol=1e-7)
    # the library's CPU default (solve_relaxed_batch, method "auto"): HiGHS one by one from
    # the base basis, including its own build of the LPs (jit(vmap(build_lp)) of the stack)
    default = default_batch_method()
    solve_relaxed_batch(stacked, base=base)  # compile the batched build once
    t0 = time.perf_counter()
    dsol = solve_relaxed_batch(stacked, base=base)
    t_default = time.perf_counter() - t0
    rel_default = np.abs(np.asarray(dsol.objective) - ref) / np.abs(ref)

    t_first, t_warm, t_user = tb_first + ts_first, tb + ts, t_build_np + t_seq
    cache = jax.config.jax_compilation_cache_dir
    cache_note = (
        f"compiled programs cached on disk in {cache} (PERFMODEL_JAX_CACHE=0 for a cold first call)"
        if cache
        else "no on-disk compilation cache: the first call compiles everything"
    )
    print(f"  {cache_note}")
    m, nv = np.shape(lps_np[0].A_ub)
    print(f"  {n} variants of tesla-2024, LP {m} rows x {nv} vars")
    print(f"  {'method':<64}{'seconds':>9}{'per LP, ms':>12}")
    rows = [
        ("sequential HiGHS: build_lp + HiGHS (highspy), one by one (baseline)", t_user),
        ("  of which build_lp (NumPy)", t_build_np),
        ("one batched dual simplex call, first (incl. compile), + build", t_first),
        ("one batched dual simplex call, warm, + build", t_warm),
        ("  of which build (jit(vmap(build_lp))) + base basis", tb),
        ("  of which solve_lp_batch_simplex", ts),
        ("reference: HiGHS via highspy, no presolve, cold, solve only", t_hs_cold),
        ("reference: HiGHS via highspy, warm-started from the same basis, solve only", t_hs_warm),
        (f"library default on this backend ({default!r}), incl. build", t_default),
    ]
    for name, t in rows:
        print(f"  {name:<64}{t:>9.2f}{1e3 * t / n:>12.2f}")
    print(
        f"  ratio baseline / batched simplex: warm {t_user / t_warm:.2f}x, first call {t_user / t_first:.2f}x "
        f"(bar: > 1x)"
    )
    print(
        f"  library default {default!r}: baseline / default {t_user / t_default:.2f}x, "
        f"batched simplex / default {t_warm / t_default:.2f}x, "
        f"|default - HiGHS| / HiGHS max {rel_default.max():.1e}"
    )
    print(
        f"  simplex optimal: {int((status == 0).sum())}/{n}; pivots median {np.median(pivots):.0f}, "
        f"max {pivots.max()}; |simplex - HiGHS| / HiGHS: median {np.median(rel):.1e}, max {rel.max():.1e}"
    )
    out = dict(
        n=n,
        rows=m,
        vars=nv,
        compile_cache=cache or None,
        baseline_s=t_user,
        baseline_build_s=t_build_np,
        highs_linprog_s=t_seq,
        simplex_first_s=t_first,
        simplex_warm_s=t_warm,
        simplex_build_s=tb,
        simplex_solve_s=ts,
        highspy_cold_s=t_hs_cold,
        highspy_warm_s=t_hs_warm,
        default_method=default,
        default_s=t_default,
        ratio_default=t_user / t_default,
        default_rel_diff_max=float(rel_default.max()),
        ratio_warm=t_user / t_warm,
        ratio_first=t_user / t_first,
        simplex_optimal=int((status == 0).sum()),
        pivots_median=float(np.median(pivots)),
        pivots_max=int(pivots.max()),
        rel_diff_median=float(np.median(rel)),
        rel_diff_max=float(rel.max()),
    )

    if pdhg_n:
        # the vmapped PDHG (the differentiable solver) on the first pdhg_n variants, for contrast
        sub = jax.tree_util.tree_map(lambda a: a[:pdhg_n], build_batch(stacked))
        solve_lp_batch(sub, **pdhg_opts)
        t0 = time.perf_counter()
        psol = solve_lp_batch(sub, **pdhg_opts)
        pobj = np.asarray(jax.block_until_ready(psol.objective))
        t_p = time.perf_counter() - t0
        prel = np.abs(pobj - ref[:pdhg_n]) / np.abs(ref[:pdhg_n])
        print(
            f"  vmapped PDHG (tol {pdhg_opts.get('tol')}) on {pdhg_n} of them: {t_p:.2f} s = "
            f"{1e3 * t_p / pdhg_n:.0f} ms per LP; max rel. diff to HiGHS {prel.max():.1e}"
        )
        out.update(pdhg_n=pdhg_n, pdhg_s=t_p, pdhg_rel_diff_max=float(prel.max()))

    # consistency: constant vs traced vs jitted vs batched (PDHG) and the batched simplex
    i = 0
    lp_c = build_lp(probs[i])
    s_const = float(solve_lp(lp_c, **pdhg_opts).objective)
    s_traced = float(
        jax.jit(lambda p: solve_lp(build_lp(p, xp=jnp), **pdhg_opts).objective)(probs[i])
    )
    s_batch = float(
        solve_lp_batch(
            jax.tree_util.tree_map(lambda a: a[:2], build_batch(stacked)),
            compact=False,
            **pdhg_opts,
        ).objective[i]
    )
    vals = np.array([s_const, s_traced, s_batch, float(obj[i]), float(ref[i])])
    spread = float((vals.max() - vals.min()) / abs(ref[i]))
    print("\n3. Consistency (variant 0): objective")
    for nm, v in zip(
        (
            "PDHG, constant data",
            "PDHG, traced data under jit",
            "PDHG, member of a vmapped batch",
            "batched dual simplex member",
            "HiGHS",
        ),
        vals,
    ):
        print(f"  {nm:<32}{v:>18,.3f}")
    print(f"  max spread {100 * spread:.5f}% (bar: <= 0.1%)")
    out["consistency"] = dict(
        constant=s_const,
        traced=s_traced,
        batched=s_batch,
        simplex=float(obj[i]),
        highs=float(ref[i]),
        spread=spread,
    )
    return out


SCALE_SIZES = [(8, 10, 12), (8, 20, 12), (8, 50, 12), (8, 50, 20), (8, 100, 20)]
QUICK_SCALE = [(8, 10, 12), (8, 50, 20)]


def _rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB


def scale_case(k: int, s: int, t: int, mode: str, time_limit_s: float) -> dict:
    """One scale measurement in this (fresh) process; ``mode``: "dense", "sparse" or
    "plan"."""
    import scipy.sparse as sp

    from perfmodel.fleet.highs import HighsLP

    pr = generate_problem(0, k, s, t)
    rss0 = _rss_gb()
    out: dict = dict(shape=[k, s, t], mode=mode, rss_start_gb=rss0)
    if mode in ("dense", "sparse"):
        t0 = time.perf_counter()
        lp = build_lp(pr, dense=(mode == "dense"))
        out["build_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        A = lp.A_ub if sp.issparse(lp.A_ub) else sp.csr_array(lp.A_ub)  # what HiGHS takes
        out["to_csr_s"] = time.perf_counter() - t0
        A_ub = lp.A_ub
        out["matrix_bytes"] = int(
            A_ub.data.nbytes + A_ub.indices.nbytes + A_ub.indptr.nbytes
            if sp.issparse(A_ub)
            else np.asarray(A_ub).nbytes
        )
        out.update(rows=int(A.shape[0]), cols=int(A.shape[1]), nnz=int(A.nnz))
        del A
        t0 = time.perf_counter()
        r = HighsLP(lp).solve()
        out["lp_solve_s"] = time.perf_counter() - t0
        out["lp_objective"] = r.objective
    else:
        t0 = time.perf_counter()
        h = solve(pr, exact=False)
        out["heuristic_s"] = time.perf_counter() - t0
        out["heuristic_gap"] = h.extra["gap"]  # to the LP relaxation bound
        out["heuristic_objective"] = h.objective
        out["heuristic_feasible"] = not check_feasible(pr, h)
        t0 = time.perf_counter()
        p = solve(pr, time_limit_s=time_limit_s)
        out["plan_s"] = time.perf_counter() - t0
        out["plan_gap"] = p.extra["gap"]  # proven, to the MILP bound
        out["plan_objective"] = p.objective
        out["plan_feasible"] = not check_feasible(pr, p)
        out["milp_status"] = p.extra["exact"]["status"]
        out["milp_s"] = p.extra["exact"]["seconds"]
        out["plan_build_s"] = p.extra["build_seconds"]
    out["rss_peak_gb"] = _rss_gb()
    return out


def _child(k, s, t, mode, time_limit_s) -> dict:
    cmd = [sys.executable, __file__, "--scale-case", f"{k},{s},{t},{mode},{time_limit_s}"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        return dict(shape=[k, s, t], mode=mode, error=r.stderr.strip().splitlines()[-1])
    return json.loads(r.stdout.strip().splitlines()[-1])


def run_scale(sizes, dense_max_gb: float, time_limit_s: float) -> dict:
    rows = []
    hdr = (
        f"  {'K x S x T':<12}{'rows':>8}{'cols':>9}{'nnz':>9} | {'dense build':>11}{'+csr':>7}"
        f"{'GiB':>7}{'peak':>6} | {'sparse build':>12}{'MiB':>6}{'peak':>6}{'ratio':>7} | "
        f"{'heuristic':>9}{'gap LP':>8} | {'MILP plan':>9}{'proven':>8}{'peak':>6}"
    )
    print(hdr)
    for k, s, t in sizes:
        sp_ = _child(k, s, t, "sparse", time_limit_s)
        if "error" in sp_:
            print(f"  {k}x{s}x{t}: sparse failed: {sp_['error']}")
            rows.append(dict(sparse=sp_))
            continue
        dense_gb = 8.0 * sp_["rows"] * sp_["cols"] / 2**30
        de = (
            _child(k, s, t, "dense", time_limit_s)
            if dense_gb <= dense_max_gb
            else dict(skipped=f"dense matrix {dense_gb:.1f} GiB > --dense-max-gb {dense_max_gb:g}")
        )
        pl = _child(k, s, t, "plan", time_limit_s)
        rows.append(dict(shape=[k, s, t], sparse=sp_, dense=de, plan=pl, dense_gib=dense_gb))
        if "build_s" in de:
            dcol = (
                f"{de['build_s']:>10.2f}s{de['to_csr_s']:>6.2f}s{dense_gb:>7.2f}"
                f"{de['rss_peak_gb']:>6.2f}"
            )
            ratio = f"{(de['build_s'] + de['to_csr_s']) / sp_['build_s']:>6.0f}x"
        else:
            dcol, ratio = f"{'skipped':>11}{'':>7}{dense_gb:>7.2f}{'':>6}", f"{'':>7}"
        pcol = (
            f"{pl['heuristic_s']:>8.2f}s{100 * pl['heuristic_gap']:>7.4f}% | "
            f"{pl['plan_s']:>8.2f}s{100 * pl['plan_gap']:>7.4f}%{pl['rss_peak_gb']:>6.2f}"
            if "plan_s" in pl
            else f"plan failed: {pl.get('error')}"
        )
        print(
            f"  {f'{k}x{s}x{t}':<12}{sp_['rows']:>8,}{sp_['cols']:>9,}{sp_['nnz']:>9,} | {dcol} | "
            f"{sp_['build_s']:>11.3f}s{sp_['matrix_bytes'] / 2**20:>6.1f}{sp_['rss_peak_gb']:>6.2f}"
            f"{ratio} | {pcol}",
            flush=True,
        )
    ok = [r for r in rows if "plan" in r and "plan_s" in r["plan"]]
    fit = {}
    if len(ok) >= 2:
        cols = np.log([r["sparse"]["cols"] for r in ok])
        for key, get in (
            ("sparse_build", lambda r: r["sparse"]["build_s"]),
            ("heuristic", lambda r: r["plan"]["heuristic_s"]),
            ("milp_plan", lambda r: r["plan"]["plan_s"]),
        ):
            fit[key] = float(np.polyfit(cols, np.log([get(r) for r in ok]), 1)[0])
        print(
            "  growth in columns (fitted exponent): "
            + ", ".join(f"{k} {v:.2f}" for k, v in fit.items())
        )
    print(
        "  dense/sparse build: same LP, dense NumPy build + CSR conversion vs typed row blocks "
        "-> CSR; peak = the process's peak RSS (GiB), imports included"
    )
    return dict(cases=rows, growth_exponents=fit, time_limit_s=time_limit_s)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--quick",
        action="store_true",
        help=f"suite of {len(QUICK_SUITE)} generated + {len(QUICK_ADVERSARIAL)} adversarial "
        "problems + tesla-2024/2025, 20-variant "
        f"batch (PDHG on 4), {len(QUICK_SCALE)} scale sizes with --scale",
    )
    ap.add_argument("--scale", action="store_true", help="also run the scale table (4.)")
    ap.add_argument("--scale-only", action="store_true", help="the scale table alone")
    ap.add_argument(
        "--dense-max-gb",
        type=float,
        default=4.0,
        help="skip the dense baseline build past this many GiB (default 4)",
    )
    ap.add_argument(
        "--plan-time-limit", type=float, default=5.0, help="MILP time limit of the scale plans, s"
    )
    ap.add_argument("--scale-case", default=None, help=argparse.SUPPRESS)
    ap.add_argument(
        "--method",
        choices=("pdhg", "highs"),
        default="highs",
        help="relaxed solver inside the integer planner (default highs)",
    )
    ap.add_argument(
        "--batch", type=int, default=None, help="number of variants (default 1000, quick 20)"
    )
    ap.add_argument(
        "--pdhg",
        type=int,
        default=None,
        help="also time the vmapped PDHG on this many variants (default 20, quick 4; 0 = skip)",
    )
    ap.add_argument(
        "--milp-time", type=float, default=60.0, help="HiGHS MILP time limit per problem, s"
    )
    ap.add_argument("--skip-batch", action="store_true", help="suite only")
    ap.add_argument("--skip-suite", action="store_true", help="batch only")
    args = ap.parse_args(argv)
    if args.scale_case:
        k, s, t, mode, tl = args.scale_case.split(",")
        print(json.dumps(scale_case(int(k), int(s), int(t), mode, float(tl)), default=float))
        return
    n = args.batch or (20 if args.quick else 1000)
    pdhg_n = args.pdhg if args.pdhg is not None else (4 if args.quick else 20)

    suite = QUICK_SUITE if args.quick else FULL_SUITE
    adv = QUICK_ADVERSARIAL if args.quick else ADVERSARIAL_SUITE
    print(
        f"runs: suite {len(suite)} generated + {len(adv)} adversarial problems + tesla-2024/2025"
        f"{' (skipped)' if args.skip_suite or args.scale_only else ''}; batch {n} variants, "
        f"PDHG on {min(pdhg_n, n)}{' (skipped)' if args.skip_batch or args.scale_only else ''}; "
        f"scale {len(QUICK_SCALE if args.quick else SCALE_SIZES)} sizes"
        f"{'' if args.scale or args.scale_only else ' (skipped; --scale)'}"
    )
    res = Path(__file__).resolve().parent / "results"
    res.mkdir(exist_ok=True)
    path = res / "fleet_bench.json"
    try:
        out = json.loads(path.read_text())  # keep the other part when one part is skipped
    except (OSError, ValueError):
        out = {}
    out["machine"] = f"{os.cpu_count()} CPU cores, jax {jax.__version__} ({jax.default_backend()})"
    if args.scale_only:
        args.skip_suite = args.skip_batch = args.scale = True
    if not args.skip_suite:
        print(
            f"1. Suite: integer plans (relaxed {args.method} + round/repair + MILP, the default) vs HiGHS MILP "
            f"(mip_rel_gap 1e-5, limit {args.milp_time:g} s)"
        )
        rows = run_suite(
            suite,
            QUICK_ADVERSARIAL if args.quick else ADVERSARIAL_SUITE,
            args.method,
            args.milp_time,
        )
        mx = [r for r in rows if r["objective"] == "max-h100e"]
        mc = [r for r in rows if r["objective"] == "min-cost"]
        gaps = np.array([r["gap"] for r in mx])
        mc_gaps = np.array([r["gap"] for r in mc])
        mc_proven = np.array([r["proven_gap"] for r in mc])
        feas = np.mean([r["feasible"] for r in rows])
        fb = sum(r["fallback"] for r in rows)
        n_gen = sum(r["case"].startswith(("gen ", "adv ")) for r in mx)
        n_adv = sum(r["case"].startswith("adv ") for r in mx)
        ok = lambda c: "PASS" if c else "FAIL"  # noqa: E731
        print(
            f"\n  scenarios: {n_gen} generated ({n_adv} adversarial) + {len(mx) - n_gen} "
            f"built-in, each max-h100e and min-cost (bar: 30+ generated incl. adversarial) "
            f"{ok(n_gen >= 30 and n_adv > 0)}"
        )
        print(
            f"  plans passing the checker: {100 * feas:.1f}% of {len(rows)} (bar: 100%) "
            f"{ok(feas == 1.0)} (MILP fallbacks used: {fb})"
        )
        print(
            f"  max-h100e gap to HiGHS MILP: median {100 * np.median(gaps):.4f}%, worst "
            f"{100 * gaps.max():.4f}% (bars: <= 0.1%, <= 1%) "
            f"{ok(np.median(gaps) <= 1e-3 and gaps.max() <= 1e-2)}; MILP proven optimal on "
            f"{sum(r['milp_status'] == 'optimal' for r in mx)}/{len(mx)}"
        )
        adv = sorted({r["case"].split()[1] for r in rows if r["case"].startswith("adv ")})
        for fam in adv:
            fr = [r for r in rows if r["case"].startswith(f"adv {fam} ")]
            g = [r["gap"] for r in fr]
            print(
                f"    adversarial {fam:<13} {len(fr)} plans, checker "
                f"{sum(r['feasible'] for r in fr)}/{len(fr)}, worst gap {100 * max(g):.4f}%"
            )
        print(
            f"  min-cost gap to HiGHS MILP: worst {100 * mc_gaps.max():.4f}% (bar: <= 1%) "
            f"{ok(mc_gaps.max() <= 0.01)}; the plan's own proven gap (printed "
            f"by `perfmodel plan` without --exact): worst {100 * np.nanmax(mc_proven):.4f}%; MILP "
            f"proven optimal on {sum(r['milp_status'] == 'optimal' for r in mc)}/{len(mc)}"
        )
        print(
            f"  planner time: median {np.median([r['plan_s'] for r in rows]):.2f} s; MILP median "
            f"{np.median([r['milp_s'] for r in rows]):.2f} s"
        )
        out["suite"] = dict(
            quick=args.quick,
            method=args.method,
            cases=rows,
            feasible_pct=100 * feas,
            gap_median=float(np.median(gaps)),
            gap_worst=float(gaps.max()),
            generated=n_gen,
            adversarial=n_adv,
            min_cost_gap_worst=float(mc_gaps.max()),
            min_cost_proven_gap_worst=float(np.nanmax(mc_proven)),
            fallbacks=fb,
        )
    if not args.skip_batch:
        print(
            f"\n2. Batch: {n} scenario variants in one batched (vmapped) dual simplex call vs {n} sequential "
            "HiGHS solves"
        )
        out["batch"] = run_batch(n, min(pdhg_n, n), dict(tol=1e-7))
    if args.scale:
        print(
            "\n4. Scale: sparse vs dense LP build, heuristic vs MILP plan (generated problems, "
            f"MILP limit {args.plan_time_limit:g} s, gap target 1e-4)"
        )
        out["scale"] = run_scale(
            QUICK_SCALE if args.quick else SCALE_SIZES, args.dense_max_gb, args.plan_time_limit
        )
    path.write_text(json.dumps(out, indent=1, default=float))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
