"""PDHG LP solver (perfmodel.fleet.pdhg) against HiGHS: accuracy, iterations, time.

    .venv/bin/python benchmarks/pdhg_bench.py            # full: 3 sizes + 1,000-variant batch
    .venv/bin/python benchmarks/pdhg_bench.py --quick    # small sizes, 100-variant batch
    .venv/bin/python benchmarks/pdhg_bench.py --mpax     # also mpax's r2HPDHG, if importable

Part 1: random feasible LPs of fleet structure (perfmodel.fleet.testing.random_fleet_lp:
buy[site, chip, quarter] >= 0; power rows in W ~1e8, budget rows in USD ~1e10, supply
rows in units, a ratio row per quarter, committed-delivery equalities). Per size: median
and worst relative objective error against HiGHS (scipy.optimize.linprog "highs"),
PDHG iterations, steady-state seconds per solve (compile excluded), HiGHS seconds per
solve, and the ratio HiGHS time / PDHG time.

Part 2: a batch of scenario variants of one LP (power rhs x U(0.8, 1.2), budget-row
prices x U(0.8, 1.2), objective x U(0.9, 1.1)), solved by one vmapped call
(``compact=False``), by the compacting batch driver (``compact=True``), and by HiGHS one
after another. Writes benchmarks/results/pdhg_bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize as so

import perfmodel  # noqa: F401  (x64)
from perfmodel.fleet.lp import stack_lps, to_scipy
from perfmodel.fleet.pdhg import solve_lp, solve_lp_batch
from perfmodel.fleet.testing import random_fleet_lp


def highs_solve(lp):
    r = so.linprog(**to_scipy(lp), method="highs")
    assert r.status == 0, r.message
    return -r.fun


def timed(f, repeat=1):
    ts = []
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = jax.block_until_ready(f())
        ts.append(time.perf_counter() - t0)
    return out, float(np.median(ts))


def accuracy_suite(sizes, n_lps, tol, use_mpax):
    rows = []
    for (S, C, T), count in zip(sizes, n_lps):
        errs, iters, t_pdhg, t_highs, statuses, compile_s = [], [], [], [], [], None
        mp_errs, mp_iters, mp_t = [], [], []
        for seed in range(count):
            lp = random_fleet_lp(seed, S, C, T, n_eq=2, capped_vars=seed % 2 == 1)
            ref, th = timed(lambda: highs_solve(lp), repeat=3)
            if compile_s is None:
                _, compile_s = timed(lambda: solve_lp(lp, tol=tol).x)
            sol, tp = timed(lambda: solve_lp(lp, tol=tol))
            errs.append(abs(float(sol.objective) - ref) / abs(ref))
            iters.append(int(sol.iterations))
            statuses.append(int(sol.status))
            t_pdhg.append(tp)
            t_highs.append(th)
            if use_mpax:
                e, it, t = mpax_solve(lp, ref, tol)
                mp_errs.append(e)
                mp_iters.append(it)
                mp_t.append(t)
        n = S * C * T
        lp = random_fleet_lp(0, S, C, T, n_eq=2)
        row = dict(
            sites=S,
            chips=C,
            quarters=T,
            n_vars=n,
            n_rows=int(lp.b_ub.shape[0] + lp.b_eq.shape[0]),
            n_lps=count,
            tol=tol,
            err_median=float(np.median(errs)),
            err_max=float(np.max(errs)),
            iters_median=float(np.median(iters)),
            iters_max=int(np.max(iters)),
            optimal=int(sum(s == 0 for s in statuses)),
            pdhg_s_median=float(np.median(t_pdhg)),
            highs_s_median=float(np.median(t_highs)),
            compile_plus_first_s=compile_s,
        )
        if use_mpax and mp_errs:
            row.update(
                mpax_err_median=float(np.median(mp_errs)),
                mpax_iters_median=float(np.median(mp_iters)),
                mpax_s_median=float(np.median(mp_t)),
            )
        rows.append(row)
        print(
            f"{S:>3}x{C}x{T:<3} {n:>5} {row['n_rows']:>5} {count:>4} {row['err_median']:>9.1e} "
            f"{row['err_max']:>9.1e} {row['iters_median']:>8.0f} {row['iters_max']:>8d} "
            f"{row['optimal']:>3}/{count:<3} {row['pdhg_s_median'] * 1e3:>9.1f} {row['highs_s_median'] * 1e3:>9.1f} "
            f"{row['highs_s_median'] / row['pdhg_s_median']:>7.3f}"
            + (
                f"   mpax: err {row['mpax_err_median']:.1e} it {row['mpax_iters_median']:.0f} "
                f"{row['mpax_s_median'] * 1e3:.1f} ms"
                if "mpax_err_median" in row
                else ""
            ),
            flush=True,
        )
    return rows


def mpax_solve(lp, ref, tol):
    from mpax import create_lp, r2HPDHG  # optional, not a dependency

    m = create_lp(
        -lp.c, lp.A_eq, lp.b_eq, -lp.A_ub, -lp.b_ub, lp.lo, lp.hi, use_sparse_matrix=False
    )
    solver = r2HPDHG(eps_abs=tol, eps_rel=tol, verbose=False)
    f = jax.jit(solver.optimize)
    res = jax.block_until_ready(f(m))
    res, t = timed(lambda: f(m))
    obj = float(lp.c @ res.primal_solution)
    return abs(obj - ref) / abs(ref), int(res.iteration_count), t


def variants(base, count, seed=1):
    rng = np.random.default_rng(seed)
    m_ub = base.b_ub.shape[0]
    power = np.array([r.startswith("power[") for r in base.row_names[:m_ub]])
    budget = np.array([r.startswith("budget[") for r in base.row_names[:m_ub]])
    A0, b0, c0 = np.asarray(base.A_ub), np.asarray(base.b_ub), np.asarray(base.c)
    out = []
    for _ in range(count):
        A = A0.copy()
        A[budget] *= rng.uniform(0.8, 1.2, (budget.sum(), 1))
        b = np.where(power, b0 * rng.uniform(0.8, 1.2, b0.shape), b0)
        c = c0 * rng.uniform(0.9, 1.1, c0.shape)
        out.append(base.replace(A_ub=jnp.asarray(A), b_ub=jnp.asarray(b), c=jnp.asarray(c)))
    return out


def batch_suite(count, size, tol, one_call):
    base = random_fleet_lp(0, *size, n_eq=1)
    lps = variants(base, count)
    stacked = stack_lps(lps)
    t0 = time.perf_counter()
    refs = np.array([highs_solve(lp) for lp in lps])
    t_highs = time.perf_counter() - t0
    res = dict(
        variants=count,
        n_vars=int(base.c.shape[0]),
        n_rows=int(base.b_ub.shape[0] + base.b_eq.shape[0]),
        tol=tol,
        highs_sequential_s=t_highs,
    )
    print(
        f"\nbatch of {count} variants, {res['n_vars']} variables x {res['n_rows']} rows, tol {tol:g}"
    )
    print(
        f"{'method':<34} {'first (s)':>10} {'steady (s)':>11} {'vs HiGHS':>9} {'err med':>9} {'err max':>9} "
        f"{'iters med/mean/max':>20}"
    )
    print(f"{'HiGHS, sequential (baseline)':<34} {'':>10} {t_highs:>11.2f} {1.0:>9.2f}")
    modes = [("PDHG compacting batch driver", True)] + (
        [("PDHG one jit(vmap) call", False)] if one_call else []
    )
    for name, compact in modes:
        _, t_first = timed(lambda: solve_lp_batch(stacked, tol=tol, compact=compact).x)
        sol, t = timed(lambda: solve_lp_batch(stacked, tol=tol, compact=compact))
        err = np.abs(np.asarray(sol.objective) - refs) / np.abs(refs)
        it = np.asarray(sol.iterations)
        key = "compact" if compact else "one_call"
        res[key] = dict(
            first_s=t_first,
            steady_s=t,
            speedup_vs_highs=t_highs / t,
            err_median=float(np.median(err)),
            err_max=float(err.max()),
            iters_median=float(np.median(it)),
            iters_mean=float(it.mean()),
            iters_max=int(it.max()),
            optimal=int((np.asarray(sol.status) == 0).sum()),
        )
        print(
            f"{name:<34} {t_first:>10.2f} {t:>11.2f} {t_highs / t:>9.2f} {np.median(err):>9.1e} {err.max():>9.1e} "
            f"{np.median(it):>6.0f}/{it.mean():>5.0f}/{it.max():>6d}"
        )
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, 100-variant batch")
    ap.add_argument("--mpax", action="store_true", help="also time mpax r2HPDHG (if installed)")
    ap.add_argument("--tol", type=float, default=1e-6)
    args = ap.parse_args()
    if args.quick:
        sizes, counts, batch, one_call = [(3, 6, 8), (6, 8, 8)], [8, 3], 100, True
    else:
        sizes, counts, batch, one_call = (
            [(3, 6, 8), (10, 8, 12), (30, 8, 12)],
            [20, 5, 2],
            1000,
            True,
        )
    print(
        f"PDHG (Halpern, reflected, restarted) vs HiGHS on fleet-like LPs; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, jax {jax.__version__}, backend {jax.default_backend()}"
    )
    print(
        f"{'SxCxT':<9} {'vars':>5} {'rows':>5} {'LPs':>4} {'err med':>9} {'err max':>9} {'it med':>8} {'it max':>8} "
        f"{'opt':>7} {'PDHG ms':>9} {'HiGHS ms':>9} {'HiGHS/PDHG':>7}"
    )
    rows = accuracy_suite(sizes, counts, args.tol, args.mpax)
    b = batch_suite(batch, (3, 6, 8), args.tol, one_call)
    os.makedirs(os.path.join(os.path.dirname(__file__), "results"), exist_ok=True)
    out = os.path.join(os.path.dirname(__file__), "results", "pdhg_bench.json")
    with open(out, "w") as f:
        json.dump(
            dict(
                quick=args.quick,
                accuracy=rows,
                batch=b,
                jax=jax.__version__,
                cpu_count=os.cpu_count(),
            ),
            f,
            indent=1,
        )
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
