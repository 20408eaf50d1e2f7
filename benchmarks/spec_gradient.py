"""d(LP-optimal H100e-quarters)/d(chip spec) on tesla-2024 against finite differences
of full re-plans (curves recomputed at spec x (1 +- 1e-3), LP rebuilt and re-solved).

    .venv/bin/python benchmarks/spec_gradient.py [--scenario tesla-2024] [SPEC ...]

Prints per spec: the gradient (per natural unit), the one-sided differences d+ and d-,
the central difference, the relative error (bar: <= 2%) and the seconds of each.
Writes benchmarks/results/spec_gradient.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time

DEFAULT_SPECS = (
    "gb200.hbm_bandwidth",
    "dojo.sram_bandwidth",
    "gb200.tdp",
    "h100.hbm_bandwidth",
    "dojo.peak_flops",
)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--scenario", default="tesla-2024")
    ap.add_argument("--rel-step", type=float, default=1e-3)
    ap.add_argument("specs", nargs="*", default=list(DEFAULT_SPECS))
    a = ap.parse_args(argv)

    from perfmodel.fleet.problem import build_problem, load_scenario
    from perfmodel.fleet.sensitivity.spec import (
        plan_spec_gradient,
        relative_error,
        spec_gradient_fd,
    )

    sc = load_scenario(a.scenario)
    problem = build_problem(sc)
    print(f"scenario {a.scenario}: d(LP-optimal H100e-quarters) / d(spec), per natural unit")
    head = f"{'spec':<24} {'value':>14} {'gradient':>12} {'d+':>12} {'d-':>12} {'central':>12} {'rel err':>9} {'grad s':>7} {'FD s':>6}"
    print(head)
    worst = 0.0
    rows = []
    for sp in a.specs:
        t0 = time.perf_counter()
        rec = plan_spec_gradient(sc, sp, problem=problem)
        t1 = time.perf_counter()
        fd = spec_gradient_fd(sc, sp, a.rel_step, problem=problem)
        t2 = time.perf_counter()
        err = relative_error(rec, fd)
        worst = max(worst, err)
        rows.append(dict(record=rec, check=fd, relative_error=err, grad_s=t1 - t0, fd_s=t2 - t1))
        val = f"{rec['value_natural']:,.4g} {rec['unit']}"
        print(
            f"{sp:<24} {val:>14} {rec['gradient']:>12.5g} {fd['d_plus']:>12.5g} "
            f"{fd['d_minus']:>12.5g} {fd['central']:>12.5g} {100 * err:>8.4f}% "
            f"{t1 - t0:>7.1f} {t2 - t1:>6.1f}" + ("  subgradient" if rec["subgradient"] else "")
        )
    out = os.path.join(os.path.dirname(__file__), "results")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "spec_gradient.json"), "w") as f:
        json.dump(dict(scenario=a.scenario, rel_step=a.rel_step, rows=rows), f, indent=1)
    print(
        f"worst relative error {100 * worst:.4f}% (bar 2%): {'PASS' if worst <= 0.02 else 'FAIL'}"
    )
    return 0 if worst <= 0.02 else 1


if __name__ == "__main__":
    raise SystemExit(main())
