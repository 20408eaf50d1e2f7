"""Layouts per second of the training-step model: one jit+vmap call vs per-layout calls.

    python benchmarks/training_speed.py [--quick] [--calculon PATH]

Prints, for GPT-3 175B on 1,024 H100s (the search space the Calculon paper uses as its
example), the layouts evaluated by one jitted + vmapped call of
``perfmodel.training.step_time`` (steady state = median of repeats with
``block_until_ready``), the same grid tiled to ~1.1 million layouts, and two baselines
run in the same process on the SAME formulas (there is no NumPy or pure-Python copy of
the model, so both baselines still run JAX):

* ``eager JAX``: ``step_time`` called layout by layout from a Python loop without jit
  (each ``jnp`` operation dispatched on its own -- not a plain-Python model);
* ``per-layout jit``: a Python loop over layouts calling the jitted single-layout
  ``step_time`` (vectorisation removed, compilation kept).

Compile and steady state are reported apart, and the one-time cost is measured in fresh
processes both ways, as the first search minus the second: with the persistent compile
cache and the stored programs off (``PERFMODEL_JAX_CACHE=0 PERFMODEL_PROGRAM_CACHE=0``:
tracing + lowering + XLA compile) and with both warm (loading), so a cache hit is never
shown as a compile. The search itself runs ``training.search._search_grid`` (throughput,
memory and fit of every layout, the whole step of the fastest); the whole-breakdown
evaluator (``_eval_grid``, every field of every layout) is timed beside it.

Calculon (Isaev et al., SC'23): measured in process in this project at 270-350 layouts/s
per CPU core (issue 14). With ``--calculon PATH`` (a Calculon checkout) it is timed in
the same run: its ``Llm`` model compiled and run on GPT-3 175B and the H100 NVL8 system
of its own examples, one layout per evaluation.

Writes benchmarks/results/training_speed.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
import timeit
from pathlib import Path

import jax
import numpy as np

import perfmodel  # noqa: F401  (x64)
from perfmodel import training as tr
from perfmodel import workloads as wl
from perfmodel.hardware import load_catalog
from perfmodel.training.search import _search_grid

#: Calculon layouts/s per CPU core, measured in process in this project (issue 14).
CALCULON_LAYOUTS_PER_S_PER_CORE = (270.0, 350.0)

_E2E = r"""
import json, time
t0 = time.perf_counter()
from perfmodel import training as tr
t1 = time.perf_counter()
r = tr.best_layout("gpt3-175b", "h100", 1024)
t2 = time.perf_counter()
r2 = tr.best_layout("gpt3-175b", "h100", 1024)
t3 = time.perf_counter()
# the first call's XLA compile runs inside its first evaluation: the one-time cost is
# the first search minus the second (same grid, same program, now compiled)
print(json.dumps(dict(import_s=t1 - t0, search_s=t2 - t1, compile_s=(t2 - t1) - (t3 - t2),
                      eval_s=r2.search_time_s, layouts=r.layouts_evaluated)))
"""


def _fresh_process(cache: bool) -> dict:
    """The whole GPT-3 175B / 1,024 H100 search in a new process, with the persistent
    compile cache off (a true compile) or on and warmed by a first run (a cache hit)."""
    env = dict(os.environ)
    if not cache:  # no compiled program and no stored (traced) one: trace + lower + XLA
        env["PERFMODEL_JAX_CACHE"] = "0"
        env["PERFMODEL_PROGRAM_CACHE"] = "0"
    cmd = [sys.executable, "-c", _E2E]
    if cache:
        subprocess.run(cmd, env=env, capture_output=True, check=True)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return dict(json.loads(p.stdout), process_s=time.perf_counter() - t0)


def _calculon(path: str, n: int) -> dict:
    """Calculon's layouts/s in this process: ``Llm.compile`` + ``run`` of one execution
    of GPT-3 175B on its H100 NVL8 system, ``n`` times."""
    import logging

    root = Path(path).resolve()
    sys.path.insert(0, str(root))
    import calculon  # type: ignore[import-not-found]
    from calculon.llm import Llm  # type: ignore[import-not-found]

    def find(name):
        hits = sorted(root.rglob(name))
        if not hits:
            raise SystemExit(f"--calculon {path}: no {name} under it")
        return calculon.io.read_json_file(str(hits[0]))

    app = Llm.Application(find("gpt3-175B.json"))
    syst = calculon.System(find("h100_80g_nvl8.json"))
    exe_json = find("3072_t4_p64_d12_mbs4_full.json")
    log = logging.getLogger("calculon")
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        model = Llm(app, log)
        model.compile(syst, Llm.Execution.from_json(exe_json))
        model.run(syst)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return dict(
        layouts=n, wall_s=wall, cpu_s=cpu, layouts_per_s=n / wall, layouts_per_cpu_s=n / cpu
    )


def _median_time(fn, repeat: int) -> float:
    return statistics.median(timeit.repeat(fn, number=1, repeat=repeat))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats and baseline samples")
    ap.add_argument("--calculon", metavar="PATH", help="a Calculon checkout: time it in this run")
    args = ap.parse_args(argv)
    repeat = 3 if args.quick else 7
    n_eager = 3 if args.quick else 10
    n_loop = 50 if args.quick else 300

    # The whole search as a user runs it, in fresh processes: a true compile (cache
    # off) and a persistent-cache hit; then in this process, a second (warm) search.
    cold = _fresh_process(cache=False)
    hit = _fresh_process(cache=True)
    tr.best_layout("gpt3-175b", "h100", 1024)
    t0, c0 = time.perf_counter(), time.process_time()
    best = tr.best_layout("gpt3-175b", "h100", 1024)
    e2e_s, e2e_cpu_s = time.perf_counter() - t0, time.process_time() - c0

    cat = load_catalog()
    chip = dataclasses.replace(cat.chip("h100"), name="")
    net = tr.get_network("h100_sxm", cat)
    eff = tr.default_efficiency()
    w = dataclasses.replace(wl.get_workload("gpt3-175b"), name="")
    cols = tr.layout_grid(w, 1024, tr._max_tp(net))
    k = len(cols["tp"])
    lay, ns = tr._pad_grid(cols, np.full(k, 1024.0))
    t0 = time.perf_counter()
    compiled = tr._eval_grid.jitted.lower(w, chip, net, lay, ns, eff).compile()
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
    compiled_b = tr._eval_grid.jitted.lower(w, chip, net, lay_b, ns_b, eff).compile()
    compile_b_s = time.perf_counter() - t0
    run_b = lambda: jax.block_until_ready(compiled_b(w, chip, net, lay_b, ns_b, eff))  # noqa: E731
    run_b()
    big_s = _median_time(run_b, max(2, repeat // 2))
    rate_big = kb / big_s
    c0 = time.process_time()
    run_b()
    big_cpu_s = time.process_time() - c0

    # What best_layout runs: the program that computes throughput, memory and fit for
    # every layout and the whole step only for the fastest (training.search._search_grid)
    search = _search_grid.jitted.lower(w, chip, net, lay, ns, eff).compile()
    run_s = lambda: jax.block_until_ready(search(w, chip, net, lay, ns, eff))  # noqa: E731
    run_s()
    rate_search = k / _median_time(run_s, repeat)
    search_b = _search_grid.jitted.lower(w, chip, net, lay_b, ns_b, eff).compile()
    run_sb = lambda: jax.block_until_ready(search_b(w, chip, net, lay_b, ns_b, eff))  # noqa: E731
    run_sb()
    rate_search_big = kb / _median_time(run_sb, max(2, repeat // 2))
    c0 = time.process_time()
    run_sb()
    search_big_cpu_s = time.process_time() - c0

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

    calc = _calculon(args.calculon, 20 if args.quick else 100) if args.calculon else None
    cores = os.cpu_count() or 1
    lo, hi = CALCULON_LAYOUTS_PER_S_PER_CORE
    table = [
        ("search program, GPT-3 175B / 1,024 H100 grid", k, rate_search),
        (f"search program, grid tiled to {kb:,}", kb, rate_search_big),
        ("jit+vmap whole breakdown, the grid", k, rate_grid),
        (f"jit+vmap whole breakdown, tiled to {kb:,}", kb, rate_big),
        ("per-layout jit (loop of jitted calls)", len(rows), loop_rate),
        ("eager JAX (per-layout, no jit)", n_eager, eager_rate),
    ]
    if calc:
        table.append(
            ("Calculon, timed in this run (1 process)", calc["layouts"], calc["layouts_per_s"])
        )
    print(
        f"training-step model speed ({cores} CPU cores, load avg "
        f"{os.getloadavg()[0]:.1f}); baseline for ratios: per-layout jit (same formulas)"
    )
    print(f"{'evaluator':46s} {'layouts':>10s} {'layouts/s':>12s} {'x per-layout jit':>17s}")
    for name, n, rate in table:
        print(f"{name:46s} {n:>10,} {rate:12,.2f} {rate / loop_rate:17,.1f}")
    print(
        f"{'Calculon, measured earlier: 270-350/s per core':46s} {'-':>10} "
        f"{lo:6,.0f}-{hi:,.0f} {lo / loop_rate:8,.1f}-{hi / loop_rate:,.1f}"
    )
    print(
        "one-time cost in a fresh process (GPT-3 175B / 1,024 H100 search; first search "
        f"minus the second): caches off {cold['compile_s']:.2f} s (tracing + lowering + XLA), "
        f"caches warm {hit['compile_s']:.2f} s (loading the stored program and its compiled "
        f"code); steady-state evaluation {hit['eval_s']:.3f} s"
    )
    print(
        f"whole search in a fresh process: {cold['process_s']:.2f} s (cache off), "
        f"{hit['process_s']:.2f} s (cache hit), of which importing perfmodel "
        f"{hit['import_s']:.2f} s; warm process: {e2e_s:.2f} s wall, {e2e_cpu_s:.2f} s CPU "
        f"-> {best.layout} MFU {best.mfu:.3f}"
    )
    print(
        f"CPU time of one {kb:,}-layout call (all threads counted): search program "
        f"{search_big_cpu_s:.2f} s -> {kb / search_big_cpu_s:,.0f} layouts per CPU-second; "
        f"whole breakdown {big_cpu_s:.2f} s -> {kb / big_cpu_s:,.0f}"
    )
    per_core = f"{rate_search_big / hi:,.0f}-{rate_search_big / lo:,.0f}x"
    if calc:
        per_core += (
            f" (this run: {kb / search_big_cpu_s / calc['layouts_per_cpu_s']:,.0f}x per CPU-second)"
        )
    print(
        f"ratio search program / per-layout jit: {rate_search_big / loop_rate:,.0f}x (whole "
        f"breakdown {rate_big / loop_rate:,.0f}x); vs Calculon per core: {per_core}"
    )
    result = dict(
        cores=cores,
        load_avg=os.getloadavg()[0],
        quick=args.quick,
        grid_layouts=k,
        grid_eval_s=grid_s,
        layouts_per_s=rate_grid,
        fresh_process_cache_off=cold,
        fresh_process_cache_hit=hit,
        in_process_lower_compile_s=compile_s,
        big_layouts=kb,
        big_eval_s=big_s,
        big_layouts_per_s=rate_big,
        big_in_process_lower_compile_s=compile_b_s,
        eager_jax_layouts_per_s=eager_rate,
        per_layout_jit_layouts_per_s=loop_rate,
        calculon_measured=calc,
        calculon_layouts_per_s_per_core=CALCULON_LAYOUTS_PER_S_PER_CORE,
        ratio_vs_eager_jax=rate_search_big / eager_rate,
        ratio_vs_per_layout_jit=rate_search_big / loop_rate,
        ratio_whole_breakdown_vs_per_layout_jit=rate_big / loop_rate,
        warm_process_search_s=e2e_s,
        warm_process_search_cpu_s=e2e_cpu_s,
        big_eval_cpu_s=big_cpu_s,
        layouts_per_cpu_s_whole_breakdown=kb / big_cpu_s,
        search_program_layouts_per_s=rate_search,
        search_program_big_layouts_per_s=rate_search_big,
        search_program_big_cpu_s=search_big_cpu_s,
        layouts_per_cpu_s=kb / search_big_cpu_s,
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
