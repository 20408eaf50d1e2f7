"""Planner scale with placement of work: integer plans for 8 offers x S sites x T quarters
x 50 workloads (issue 14's bar: 8 x 50 x 12 x 50, about 150k accelerators, proven gap
<= 0.1% in <= 10 s warm and <= 2 GB; 8 x 100 x 20 x 50 in <= 60 s).

    .venv/bin/python benchmarks/placement_bench.py [--quick] [--gap 1e-3] [--baseline-limit 60]

Each size runs in a fresh process (its own peak memory). Per row: the problem build
(scenario -> Problem, stand-in rates perturbed per offer x workload,
:func:`perfmodel.fleet.testing.generate_placement_problem`), the sparse LP build, the
integer plan (:func:`perfmodel.fleet.solve`: LP relaxation, fix-and-re-solve rounding,
HiGHS MILP when the rounded plan is not yet within the gap target of the LP bound), its
proven gap, the independent checker, peak RSS; and the baseline measured in the same
run: HiGHS MILP on the same LP from no start (cold), with ``--baseline-limit`` seconds,
its time and gap. Prints the table, the ratio plan/baseline time and the growth exponent
of the plan time in the number of columns; writes benchmarks/results/placement_bench.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SIZES = ((8, 10, 12, 50), (8, 25, 12, 50), (8, 50, 12, 50), (8, 100, 20, 50))
QUICK = SIZES[:2]


def _one(k: int, s: int, t: int, w: int, gap: float, base_limit: float) -> dict:
    sys.path.insert(0, str(ROOT))
    import perfmodel  # noqa: F401  (x64)
    from perfmodel.fleet import build_lp, check_feasible, solve
    from perfmodel.fleet.check import installed_units
    from perfmodel.fleet.highs import HighsLP
    from perfmodel.fleet.lp import csr
    from perfmodel.fleet.milp import solve_milp
    from perfmodel.fleet.testing import generate_placement_problem

    t0 = time.perf_counter()
    pr = generate_placement_problem(0, k, s, t, w)
    problem_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    lp = build_lp(pr)
    lp_s = time.perf_counter() - t0
    A = csr(lp.A_ub)
    solve(generate_placement_problem(1, 2, 2, 2, 2), mip_rel_gap=gap)  # warm the path
    t0 = time.perf_counter()
    plan = solve(pr, time_limit_s=120, mip_rel_gap=gap)
    plan_s = time.perf_counter() - t0
    ok = not check_feasible(pr, plan)
    chips = float(
        (
            installed_units(pr, plan.buy_units)[:, :, -1] * np.asarray(pr.chips_per_unit)[:, None]
        ).sum()
    )
    t0 = time.perf_counter()
    m = solve_milp(pr, time_limit_s=base_limit, mip_rel_gap=gap, model=HighsLP(lp))
    base_s = time.perf_counter() - t0
    base_gap = m.mip_gap if m.x is not None else float("inf")
    return dict(
        offers=k,
        sites=s,
        quarters=t,
        workloads=w,
        rows=int(len(np.asarray(lp.b_ub))),
        columns=int(len(np.asarray(lp.c))),
        nonzeros=int(A.nnz),
        accelerators_end=chips,
        problem_build_s=problem_s,
        lp_build_s=lp_s,
        plan_s=plan_s,
        proven_gap=float(plan.extra["gap"]),
        milp_status=plan.extra["exact"]["status"],
        checker_ok=ok,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        baseline_cold_milp_s=base_s,
        baseline_status=m.status,
        baseline_gap=None if not np.isfinite(base_gap) else float(base_gap),
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="the two smallest sizes only")
    ap.add_argument("--gap", type=float, default=1e-3, help="MILP relative gap target")
    ap.add_argument("--baseline-limit", type=float, default=60.0, help="cold MILP time limit, s")
    ap.add_argument("--one", nargs=4, type=int, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.one:
        k, s, t, w = a.one
        print(json.dumps(_one(k, s, t, w, a.gap, a.baseline_limit)))
        return 0
    rows = []
    for size in QUICK if a.quick else SIZES:
        cmd = [sys.executable, __file__, "--gap", str(a.gap), "--baseline-limit"]
        cmd += [str(a.baseline_limit), "--one", *map(str, size)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        r = rows[-1]
        print(
            f"{r['offers']}x{r['sites']}x{r['quarters']}x{r['workloads']}: {r['columns']:,} cols, "
            f"{r['accelerators_end']:,.0f} accelerators; plan {r['plan_s']:.2f} s gap "
            f"{100 * r['proven_gap']:.3f}%",
            file=sys.stderr,
        )
    head = (
        f"{'size (K x S x T x W)':<22}{'rows':>8}{'cols':>8}{'nnz':>9}{'accel.':>9}"
        f"{'problem s':>10}{'LP s':>7}{'plan s':>8}{'gap %':>8}{'check':>7}{'peak MB':>9}"
        f"{'cold MILP s':>12}{'cold gap %':>11}{'speedup':>9}"
    )
    print(head)
    for r in rows:
        bg = r["baseline_gap"]
        label = f"{r['offers']} x {r['sites']} x {r['quarters']} x {r['workloads']}"
        print(
            f"{label:<22}"
            f"{r['rows']:>8,}{r['columns']:>8,}{r['nonzeros']:>9,}{r['accelerators_end']:>9,.0f}"
            f"{r['problem_build_s']:>10.2f}{r['lp_build_s']:>7.2f}{r['plan_s']:>8.2f}"
            f"{100 * r['proven_gap']:>8.3f}{'ok' if r['checker_ok'] else 'FAIL':>7}"
            f"{r['peak_rss_mb']:>9,.0f}{r['baseline_cold_milp_s']:>12.2f}"
            f"{('-' if bg is None else f'{100 * bg:.3f}'):>11}"
            f"{r['baseline_cold_milp_s'] / r['plan_s']:>8.1f}x"
        )
    if len(rows) >= 2:
        cols = np.log([r["columns"] for r in rows])
        secs = np.log([max(r["plan_s"], 1e-3) for r in rows])
        slope = float(np.polyfit(cols, secs, 1)[0])
        print(f"growth: plan time ~ columns^{slope:.2f}")
    else:
        slope = None
    out = ROOT / "benchmarks" / "results" / "placement_bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(rows=rows, growth_exponent=slope, gap_target=a.gap), indent=1))
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
