"""Layouts per second of the training-step model: one jit+vmap call vs plain Python.

    python benchmarks/training_speed.py [--quick]

Prints, for GPT-3 175B on 1,024 H100s (the search space the Calculon paper uses as its
example), the layouts evaluated by one jitted + vmapped call of
``perfmodel.training.step_time`` (compilation timed apart; steady state = median of
repeats with ``block_until_ready``), the same grid tiled to ~1.1 million layouts, and two
baselines run in the same process on the SAME formulas:

* ``python-eager``: ``step_time`` called layout by layout from a Python loop without jit
  (what a plain-Python analytical model pays per layout);
* ``python-loop-jit``: a Python loop over layouts calling the jitted single-layout
  ``step_time`` (vectorisation removed, compilation kept).

Reference point (not run): Calculon (Isaev et al., SC'23), the best open analytical
model, evaluates about 60 layouts/s per CPU core.

Writes benchmarks/results/training_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import timeit
from pathlib import Path

import jax
import numpy as np

import perfmodel  # noqa: F401  (x64)
from perfmodel import training as tr
from perfmodel import workloads as wl
from perfmodel.hardware import load_catalog

CALCULON_LAYOUTS_PER_S_PER_CORE = 60.0


def _median_time(fn, repeat: int) -> float:
    return statistics.median(timeit.repeat(fn, number=1, repeat=repeat))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats and baseline samples")
    args = ap.parse_args(argv)
    repeat = 3 if args.quick else 7
    n_eager = 3 if args.quick else 10
    n_loop = 50 if args.quick else 300

    # End-to-end search as a user runs it (fresh compile of this grid shape).
    t0, c0 = time.perf_counter(), time.process_time()
    best = tr.best_layout("gpt3-175b", "h100", 1024)
    e2e_s, e2e_cpu_s = time.perf_counter() - t0, time.process_time() - c0

    cat = load_catalog()
    chip = cat.chip("h100").replace(name="")
    net = tr.get_network("h100_sxm", cat)
    eff = tr.default_efficiency()
    w = wl.get_workload("gpt3-175b").replace(name="")
    cols = tr.layout_grid(w, 1024, tr._max_tp(net))
    k = len(cols["tp"])
    lay, ns = tr._pad_grid(cols, np.full(k, 1024.0))
    t0 = time.perf_counter()
    compiled = tr._eval_grid.lower(w, chip, net, lay, ns, eff).compile()
    compile_s = time.perf_counter() - t0
    run = lambda: jax.block_until_ready(compiled(w, chip, net, lay, ns, eff))  # noqa: E731
    run()
    grid_s = _median_time(run, repeat)
    rate_grid = k / grid_s

    # ~1.1 M layouts (Calculon's GPT-3 175B / 1,024-GPU space size): the grid tiled.
    reps = int(np.ceil(1.1e6 / k))
    big = {f: np.tile(c, reps) for f, c in cols.items()}
    kb = len(big["tp"])
    lay_b, ns_b = tr._pad_grid(big, np.full(kb, 1024.0))
    t0 = time.perf_counter()
    compiled_b = tr._eval_grid.lower(w, chip, net, lay_b, ns_b, eff).compile()
    compile_b_s = time.perf_counter() - t0
    run_b = lambda: jax.block_until_ready(compiled_b(w, chip, net, lay_b, ns_b, eff))  # noqa: E731
    run_b()
    big_s = _median_time(run_b, max(2, repeat // 2))
    rate_big = kb / big_s
    c0 = time.process_time()
    run_b()
    big_cpu_s = time.process_time() - c0

    # Baselines on the same formulas, same process.
    rows = [
        tr.Layout(**{f: jax.numpy.asarray(cols[f][i]) for f in tr.LAYOUT_FIELDS})
        for i in range(0, k, max(1, k // n_loop))
    ][:n_loop]
    n1024 = jax.numpy.asarray(1024.0)
    t0 = time.perf_counter()
    for r in rows[:n_eager]:
        jax.block_until_ready(tr.step_time(w, chip, net, r, n1024, eff).step_time_s)
    eager_rate = n_eager / (time.perf_counter() - t0)
    single = jax.jit(tr.step_time)
    jax.block_until_ready(single(w, chip, net, rows[0], n1024, eff))
    t0 = time.perf_counter()
    for r in rows:
        jax.block_until_ready(single(w, chip, net, r, n1024, eff).step_time_s)
    loop_rate = len(rows) / (time.perf_counter() - t0)

    cores = os.cpu_count() or 1
    table = [
        ("jit+vmap, GPT-3 175B / 1,024 H100 grid", k, rate_grid, grid_s),
        (f"jit+vmap, grid tiled to {kb:,}", kb, rate_big, big_s),
        ("python-loop-jit (per-layout jitted call)", len(rows), loop_rate, len(rows) / loop_rate),
        ("python-eager (per-layout, no jit)", n_eager, eager_rate, n_eager / eager_rate),
        (
            f"Calculon (cited, 60/s/core x {cores} cores)",
            None,
            CALCULON_LAYOUTS_PER_S_PER_CORE * cores,
            None,
        ),
    ]
    print(
        f"training-step model speed ({cores} CPU cores, load avg "
        f"{os.getloadavg()[0]:.1f}); baseline for ratios: python-eager"
    )
    print(f"{'evaluator':46s} {'layouts':>10s} {'layouts/s':>12s} {'x eager':>10s}")
    for name, n, rate, _ in table:
        print(
            f"{name:46s} {n if n is not None else '-':>10} {rate:12,.2f} {rate / eager_rate:10,.0f}"
        )
    print(f"compile: {compile_s:.2f} s ({k:,}-layout grid), {compile_b_s:.2f} s ({kb:,})")
    print(
        f"whole search as a user runs it (best_layout, incl. grid + compile): {e2e_s:.2f} s "
        f"wall, {e2e_cpu_s:.2f} s CPU -> {best.layout} MFU {best.mfu:.3f}"
    )
    print(
        f"CPU time of one {kb:,}-layout call: {big_cpu_s:.2f} s -> "
        f"{kb / big_cpu_s:,.0f} layouts per CPU-second (all threads counted)"
    )
    print(
        f"ratio jit+vmap / python-loop-jit: {rate_big / loop_rate:,.0f}x; "
        f"vs Calculon per core: {rate_big / CALCULON_LAYOUTS_PER_S_PER_CORE:,.0f}x"
    )
    result = dict(
        cores=cores,
        load_avg=os.getloadavg()[0],
        quick=args.quick,
        grid_layouts=k,
        grid_eval_s=grid_s,
        layouts_per_s=rate_grid,
        compile_s=compile_s,
        big_layouts=kb,
        big_eval_s=big_s,
        big_layouts_per_s=rate_big,
        big_compile_s=compile_b_s,
        python_eager_layouts_per_s=eager_rate,
        python_loop_jit_layouts_per_s=loop_rate,
        calculon_layouts_per_s_per_core=CALCULON_LAYOUTS_PER_S_PER_CORE,
        ratio_vs_eager=rate_big / eager_rate,
        ratio_vs_loop_jit=rate_big / loop_rate,
        end_to_end_search_s=e2e_s,
        end_to_end_search_cpu_s=e2e_cpu_s,
        big_eval_cpu_s=big_cpu_s,
        layouts_per_cpu_s=kb / big_cpu_s,
        best_layout=best.layout,
        best_mfu=best.mfu,
        best_tokens_per_s=best.tokens_per_s,
    )
    out = Path(__file__).parent / "results" / "training_speed.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
