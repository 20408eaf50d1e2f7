"""The speed bars of issue 14, measured: commands as a user runs them, value curves, search.

    python benchmarks/speed_bars.py            # every bar (several minutes on 2 busy cores)
    python benchmarks/speed_bars.py --quick    # commands once warm, 4 x 4 value curves
    python benchmarks/speed_bars.py --commands-only --baseline /tmp/before   # before vs after

``--baseline DIR`` (another checkout of perfmodel, e.g. ``git worktree add /tmp/before
HEAD~1``) times every command in DIR and here alternately, in the same run, and prints
both with their ratio (wall and CPU seconds); ``--commands-only`` stops after the
commands, ``--only chips,train`` times only those.

Every command is timed as a subprocess (wall clock, what a user waits for): once to warm
the caches, then the median of ``--repeat`` runs ("warm": a repeated call, which the
result cache of :mod:`perfmodel.result_cache` answers for roofline, net, train, equiv
and claims), and the median of as many with ``PERFMODEL_RESULT_CACHE=0`` ("computed":
the model runs, its compile and curve caches warm). Baselines measured in the
same run: ``python -c pass`` and ``python -c "import jax"`` (the floor any JAX command
pays), and for the value curves the full best-layout search that
:func:`perfmodel.equivalence.model_curve` runs on the same counts.

* warm commands: ``chips``, ``roofline``, ``net`` <= 1 s; ``train`` (best layout),
  ``equiv --workload``, ``plan`` <= 2 s; ``claims`` <= 5 s;
* the first ``perfmodel plan`` on a fresh machine (an empty ``PERFMODEL_CACHE_DIR``: no
  compile cache, no curve cache; the shipped curves are part of the package) <= 6 s;
* value curves W workloads x C chips cold (no shipped and no cached curves; once with an
  empty compile cache, once with a warm one) <= 10 s for 50 x 10;
* layout search >= 1 M layouts/s, and GPT-3 175B on 1,024 H100 including compile
  <= 1.5 s in a warm process.

Writes ``benchmarks/results/speed_bars.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable

COMMANDS = {
    "chips": (["chips"], 1.0),
    "roofline": (
        [
            "roofline",
            "--chip",
            "h100",
            "--op",
            "matmul",
            "--m",
            "8192",
            "--n",
            "8192",
            "--k",
            "8192",
        ],
        1.0,
    ),
    "net": (["net", "h100", "--bytes", "1e9", "--group", "8,64,1024", "--kind", "all_reduce"], 1.0),
    "train": (["train", "--workload", "gpt3-175b", "--chip", "h100", "--chips", "1024"], 2.0),
    "equiv": (
        [
            "equiv",
            "--chip",
            "dojo_tile",
            "--count",
            "120",
            "--workload",
            "video-driving",
            "--mode",
            "capacity",
        ],
        2.0,
    ),
    "plan": (["plan"], 2.0),
    "claims": (["claims"], 5.0),
}

CURVES_SCRIPT = r"""
import json, sys, time
t0 = time.perf_counter()
from perfmodel.fleet import curves as cv
cv._shipped.cache_clear()
cv._shipped = lambda: {}   # measure the computation, not the shipped file
works, chips = json.loads(sys.argv[1]), json.loads(sys.argv[2])
t1 = time.perf_counter()
failed = 0
for w in works:
    for c in chips:
        try:
            cv.grid_curve(c, w, pick="best", mode="capacity")
        except ValueError:
            failed += 1
t2 = time.perf_counter()
print(json.dumps(dict(import_s=t1 - t0, curves_s=t2 - t1, failed=failed, **cv.SEARCH_STATS)))
"""

FULL_SCRIPT = r"""
import json, sys, time
from perfmodel.equivalence import DEFAULT_GRID, model_curve
from perfmodel import model_cache
from perfmodel.fleet import curves as cv
model_cache.get = lambda *a, **k: None  # compute the curves, not the on-disk cache's
w, c = sys.argv[1], sys.argv[2]
model_curve(c, w, mode="capacity")  # compile
cv._compute_curve(c, w, "best", "capacity", len(DEFAULT_GRID))
t0 = time.perf_counter(); model_curve("h200", w, mode="capacity"); t1 = time.perf_counter()
cv._compute_curve("h200", w, "best", "capacity", len(DEFAULT_GRID)); t2 = time.perf_counter()
print(json.dumps(dict(full_s=t1 - t0, pruned_s=t2 - t1)))
"""

SEARCH_SCRIPT = r"""
import json, os, time
from perfmodel import training as tr
t0, c0 = time.perf_counter(), time.process_time()
r = tr.best_layout("gpt3-175b", "h100", 1024)
t1, c1 = time.perf_counter(), time.process_time()
r2 = tr.best_layout("gpt3-175b", "h100", 1024)
t2, c2 = time.perf_counter(), time.process_time()
print(json.dumps(dict(first_s=t1 - t0, first_compile_s=r.compile_time_s,
    warm_s=t2 - t1, warm_cpu_s=c2 - c1, warm_compile_s=r2.compile_time_s,
    search_s=r2.search_time_s, layouts=r2.layouts_evaluated,
    layouts_per_s=r2.layouts_evaluated / r2.search_time_s)))
"""


def _cpu_children_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _run(args: list[str], env: dict | None = None, cwd: Path = ROOT) -> tuple[float, str]:
    return _run_cpu(args, env, cwd)[:2]


def _run_cpu(
    args: list[str], env: dict | None = None, cwd: Path = ROOT
) -> tuple[float, str, float]:
    """Wall seconds, stdout and CPU seconds (user + system) of one subprocess."""
    c0, t0 = _cpu_children_s(), time.perf_counter()
    p = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    dt, cpu = time.perf_counter() - t0, _cpu_children_s() - c0
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])}... failed ({p.returncode}): {p.stderr[-500:]}")
    return dt, p.stdout, cpu


#: The runs of each command: as a user repeats it (the result cache of
#: perfmodel.result_cache answers), and computed with every other cache warm.
MODES = {"warm": None, "computed": {"PERFMODEL_RESULT_CACHE": "0"}}


def _paired(cmd: list[str], trees: dict[str, Path], repeat: int) -> dict[str, dict]:
    """``cmd`` in each tree: one warming run, then ``repeat`` runs alternating between
    the trees (so both see the same load), each as a repeated call (``warm``: the result
    cache answers where the tree has one) and with the result cache off (``computed``:
    the compile and curve caches warm); median wall and CPU seconds per tree and mode."""
    first = {name: _run_cpu(cmd, cwd=d)[0] for name, d in trees.items()}
    runs: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for _ in range(repeat):
        for mode, extra in MODES.items():
            env = None if extra is None else {**os.environ, **extra}
            for name, d in trees.items():
                wall, _, cpu = _run_cpu(cmd, env, cwd=d)
                runs.setdefault((name, mode), []).append((wall, cpu))
    out: dict[str, dict] = {name: dict(first_s=first[name]) for name in trees}
    for (name, mode), r in runs.items():
        out[name][f"{mode}_s"] = statistics.median(w for w, _ in r)
        out[name][f"{mode}_cpu_s"] = statistics.median(c for _, c in r)
    return out


def _env(cache_dir: str | None) -> dict:
    env = dict(os.environ)
    if cache_dir is not None:
        env["PERFMODEL_CACHE_DIR"] = cache_dir
    return env


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one warm run, 4 x 4 value curves")
    ap.add_argument("--repeat", type=int, default=3, help="warm runs per command (median)")
    ap.add_argument("--workloads", type=int, default=50, help="value curves: workloads")
    ap.add_argument("--chips", type=int, default=10, help="value curves: chips")
    ap.add_argument(
        "--baseline",
        type=Path,
        help="another perfmodel checkout: time every command there too (alternately) and "
        "its value curves",
    )
    ap.add_argument("--commands-only", action="store_true", help="only the command bars")
    ap.add_argument(
        "--only",
        default=",".join(COMMANDS),
        help=f"commands to time, comma-separated (default: all of {', '.join(COMMANDS)})",
    )
    a = ap.parse_args(argv)
    repeat = 1 if a.quick else max(1, a.repeat)
    n_w, n_c = (4, 4) if a.quick else (a.workloads, a.chips)
    rows, res = (
        [],
        {"quick": a.quick, "cores": os.cpu_count(), "load_avg_start": os.getloadavg()[0]},
    )

    def bar(name, value, limit, unit="s", higher=False, note=""):
        ok = value >= limit if higher else value <= limit
        rows.append((name, value, limit, unit, ok, note))
        res.setdefault("bars", {})[name] = dict(
            value=value, limit=limit, unit=unit, ok=ok, note=note
        )

    base_pass = statistics.median(_run([PY, "-c", "pass"])[0] for _ in range(3))
    base_jax = statistics.median(_run([PY, "-c", "import jax"])[0] for _ in range(3))
    res["baseline_python_s"], res["baseline_import_jax_s"] = base_pass, base_jax

    # 1. commands, warm (the user's cache directory, warmed by one run first)
    trees = {"here": ROOT} if a.baseline is None else {"baseline": a.baseline, "here": ROOT}
    only = [c.strip() for c in a.only.split(",") if c.strip()]
    unknown = sorted(set(only) - set(COMMANDS))
    if unknown:
        ap.error(f"--only: unknown command(s) {', '.join(unknown)}; known: {', '.join(COMMANDS)}")
    for name, (args, limit) in COMMANDS.items():
        if name not in only:
            continue
        cmd = [PY, "-m", "perfmodel", *args]
        t = _paired(cmd, trees, repeat)
        res.setdefault("commands", {})[name] = dict(**t["here"], args=args)
        h = t["here"]
        warm = h["warm_s"]
        note = f"first run {h['first_s']:.2f} s; computed {h['computed_s']:.2f} s"
        if a.baseline is not None:
            b = t["baseline"]
            res.setdefault("baseline_commands", {})[name] = b
            note += (
                f"; baseline {b['warm_s']:.2f} s ({b['warm_s'] / warm:.1f}x; computed "
                f"{b['computed_s']:.2f} s), CPU {b['warm_cpu_s']:.2f} -> {h['warm_cpu_s']:.2f} s"
            )
        bar(f"perfmodel {name} (warm)", warm, limit, note=note)

    if a.commands_only:
        return _report(res, rows, base_pass, base_jax, None)

    # 2. the first plan on a fresh machine: empty cache directory
    with tempfile.TemporaryDirectory() as d:
        fresh, _ = _run([PY, "-m", "perfmodel", "plan"], _env(d))
    bar("first perfmodel plan, empty cache dir", fresh, 6.0)

    # 3. value curves, cold: no shipped, no cached curves
    from perfmodel.fleet.curves import builtin_keys

    chips_all, _ = builtin_keys()
    from perfmodel import workloads as wl

    presets = sorted(wl._load_presets()[0])
    trainable = [c for c in chips_all if c not in ("host_cpu", "dojo_dip")]
    works, chips = presets[:n_w], trainable[:n_c]
    label = f"value curves {len(works)} workloads x {len(chips)} chips cold"
    curve_cmd = [PY, "-c", CURVES_SCRIPT, json.dumps(works), json.dumps(chips)]
    curves: dict[str, tuple] = {}
    for name, tree in trees.items():  # the baseline first, then this checkout
        with tempfile.TemporaryDirectory() as d:
            cold_t, out = _run(curve_cmd, _env(d), cwd=tree)
            cold = json.loads(out)
            Path(d, "curves.json").unlink(missing_ok=True)  # perfmodel.model_cache
            warmc_t, out = _run(curve_cmd, _env(d), cwd=tree)
            curves[name] = (cold_t, cold, warmc_t, json.loads(out))
    cold_t, cold, warmc_t, warmc = curves["here"]
    res["curves_cold"], res["curves_cold_warm_compile"] = cold, warmc
    vs = ["", ""]
    if "baseline" in curves:
        b_cold_t, b_cold, b_warm_t, b_warm = curves["baseline"]
        res["baseline_curves_cold"], res["baseline_curves_cold_warm_compile"] = b_cold, b_warm
        vs = [
            f"; baseline {b_cold_t:.1f} s ({b_cold_t / cold_t:.1f}x)",
            f"; baseline {b_warm_t:.1f} s ({b_warm_t / warmc_t:.1f}x), "
            f"{b_warm['layouts']:,} evaluated",
        ]
    scale = 500.0 / (len(works) * len(chips))
    bar(
        f"{label}, empty compile cache",
        cold_t,
        10.0 / scale,
        note=f"process wall; curves {cold['curves_s']:.1f} s{vs[0]}",
    )
    bar(
        f"{label}, warm compile cache",
        warmc_t,
        10.0 / scale,
        note=f"curves {warmc['curves_s']:.1f} s, {warmc['layouts']:,} of "
        f"{warmc['layouts_in_grid']:,} layouts evaluated{vs[1]}",
    )
    _, out = _run([PY, "-c", FULL_SCRIPT, "gpt3-175b", "h100_sxm"])
    full = json.loads(out)
    res["curve_full_vs_pruned"] = full

    # 4. layout search in a warm process
    _, out = _run([PY, "-c", SEARCH_SCRIPT])
    s = json.loads(out)
    res["search"] = s
    bar(
        "layout search rate (GPT-3 175B / 1,024 H100 grid)",
        s["layouts_per_s"] / 1e6,
        1.0,
        "M/s",
        higher=True,
    )
    bar(
        "GPT-3 175B / 1,024 H100 search incl. compile, warm process",
        s["warm_s"],
        1.5,
        note=f"first in process {s['first_s']:.2f} s (compile {s['first_compile_s']:.2f} s)",
    )

    return _report(res, rows, base_pass, base_jax, full)


def _report(res: dict, rows: list, base_pass: float, base_jax: float, full: dict | None) -> dict:
    res["load_avg_end"] = os.getloadavg()[0]
    print(
        f"issue-14 speed bars ({res['cores']} CPU cores, load avg {res['load_avg_start']:.1f} -> {res['load_avg_end']:.1f})"
    )
    print(
        f"baselines in this run: python -c pass {base_pass:.2f} s; python -c 'import jax' {base_jax:.2f} s"
    )
    print(f"{'bar':66s} {'measured':>10s} {'limit':>8s}  ok")
    for name, v, lim, unit, ok, note in rows:
        print(
            f"{name:66s} {v:8.2f} {unit:1s} {lim:6.2f} {unit:1s}  {'yes' if ok else 'NO '}  {note}"
        )
    if full is not None:
        print(
            f"one value curve (gpt3-175b on H200, whole grid): full search {full['full_s']:.2f} s, "
            f"pruned {full['pruned_s']:.2f} s ({full['full_s'] / full['pruned_s']:.1f}x)"
        )
    out_p = ROOT / "benchmarks" / "results" / "speed_bars.json"
    out_p.parent.mkdir(parents=True, exist_ok=True)
    out_p.write_text(json.dumps(res, indent=2))
    print(f"wrote {out_p}")
    return res


if __name__ == "__main__":
    main()
