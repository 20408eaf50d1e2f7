"""Sweep throughput: fleet scenarios per second and chip-spec configurations per second.

Part 1 (fleet): the same sampled scenario variants solved
  * by the sweep engine on 1 device (one jitted call per chunk; the fleet model loops
    over the chunk's LPs with lax.map: batching = "map"),
  * by the sweep engine sharded over 8 host CPU devices (a subprocess with
    XLA_FLAGS=--xla_force_host_platform_device_count=8; same results checked),
  * by the sweep engine with the batched PDHG (batching = "vmap"; first chunk only),
  * by the sweep engine with the batched dual simplex (batching = "simplex", host-side,
    one call per chunk; what ``auto`` picks on CPU),
  * by a Python loop calling the same PDHG solver (jitted, one LP at a time),
  * by a Python loop over HiGHS (scipy.optimize.linprog) as an outside reference.
Part 2 (chips, roofline engine): configurations per second of the jitted, vmapped
roofline step model against a plain Python loop and a NumPy-vectorised implementation
of the same formulas (results checked equal).

    .venv/bin/python benchmarks/sweep_bench.py            # full
    .venv/bin/python benchmarks/sweep_bench.py --quick    # small

Writes benchmarks/results/sweep_bench.json. Compilation is timed apart from steady state.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import perfmodel  # noqa: F401  (x64)
from perfmodel.sweep import engine, models

ROOT = Path(__file__).resolve().parent


def fleet_spec(quick: bool) -> dict:
    scen = "generated:0:3:1:4" if quick else "generated:0:5:2:8"
    return {
        "sweep": {
            "model": "fleet",
            "samples": 32 if quick else 128,
            "chunk_size": 16 if quick else 64,
            "seed": 0,
        },
        "model": {"scenario": scen, "value_source": "standin", "batching": "map"},
        "params": {
            "price.o0_h100_sxm": {"dist": "uniform", "low": 3e5, "high": 5e5},
            "delay.o1_h200": {"dist": "uniform", "low": 0, "high": 2},
            "power.s0": {"dist": "triangular", "low": 0.7, "best": 1.0, "high": 1.3},
            "power_delay.s0": {"dist": "uniform", "low": 0, "high": 1.5},
            "budget.2024": {"dist": "uniform", "low": 2e8, "high": 6e8},
        },
    }


SUB = """
import json, sys, jax, numpy as np
import perfmodel
from perfmodel.sweep import engine
spec = engine.parse_spec(json.loads(sys.argv[1]), "bench")
r = engine.run_sweep(spec, sys.argv[2], overwrite=True, progress=False)
print(json.dumps({"devices": r.devices, "wall_s": r.wall_s, "compile_s": r.compile_s,
                  "rows_per_s": r.rows_per_s}))
"""


def table_of(path):
    t = engine.load_results(path)
    return {c: t.column(c).to_numpy() for c in t.column_names}


def max_rel_diff(a: dict, b: dict, cols) -> float:
    worst = 0.0
    for c in cols:
        x, y = np.asarray(a[c], float), np.asarray(b[c], float)
        ok = np.isfinite(x) & np.isfinite(y)
        d = np.abs(x[ok] - y[ok]) / np.maximum(np.abs(y[ok]), 1e-9 * (np.abs(y[ok]).max() + 1e-300))
        worst = max(worst, float(d.max()) if d.size else 0.0)
    return worst


def bench_fleet(quick: bool, tmp: Path) -> dict:
    from perfmodel.fleet import pdhg
    from perfmodel.fleet import problem as fp

    data = fleet_spec(quick)
    spec = engine.parse_spec(data, "bench")
    n = spec.samples
    # 1 device
    r1 = engine.run_sweep(
        spec, tmp / "one", overwrite=True, progress=False, devices=jax.local_devices()[:1]
    )
    one = table_of(tmp / "one")
    # 8 host devices (subprocess)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", CI="1")
    p = subprocess.run(
        [sys.executable, "-c", SUB, json.dumps(data), str(tmp / "eight")],
        capture_output=True,
        text=True,
        env=env,
        timeout=3600,
    )
    if p.returncode:
        raise SystemExit(p.stderr[-3000:])
    r8 = json.loads(p.stdout.strip().splitlines()[-1])
    eight = table_of(tmp / "eight")
    diff8 = max_rel_diff(eight, one, ["h100e", "h100e_quarters", "cost_usd"])
    # the same sweep with the batched (vmap) PDHG, first chunk only (it is slow on CPU)
    dv = json.loads(json.dumps(data))
    dv["model"]["batching"] = "vmap"
    rv = engine.run_sweep(
        engine.parse_spec(dv, "bench"),
        tmp / "vmap",
        overwrite=True,
        progress=False,
        devices=jax.local_devices()[:1],
        max_chunks=1,
    )
    vm = engine.load_results(tmp / "vmap", allow_partial=True)
    diffv = max_rel_diff(
        {c: vm.column(c).to_numpy() for c in vm.column_names},
        {c: one[c][: vm.num_rows] for c in one},
        ["h100e_quarters"],
    )
    # the batched dual simplex (host-side; auto on CPU)
    ds = json.loads(json.dumps(data))
    ds["model"]["batching"] = "simplex"
    spec_s = engine.parse_spec(ds, "bench")
    t0 = time.perf_counter()
    engine.run_sweep(
        spec_s,
        tmp / "simplex",
        overwrite=True,
        progress=False,
        devices=jax.local_devices()[:1],
    )
    simplex_first_s = time.perf_counter() - t0  # host-side: compiles happen inside the run
    rs = engine.run_sweep(
        spec_s,
        tmp / "simplex",
        overwrite=True,
        progress=False,
        devices=jax.local_devices()[:1],
    )
    diffs = max_rel_diff(table_of(tmp / "simplex"), one, ["h100e_quarters"])
    # Python loop over the same PDHG solver, one LP at a time (jitted single solve)
    variant = spec.model.extras["variant_problem"](spec.params)
    names = [q.name for q in spec.params]
    cfg = spec.model.config
    lps = []
    for i in range(n):
        prob = variant({k: np.float64(one[f"param.{k}"][i]) for k in names})
        lps.append(fp.build_lp(prob))
    m_loop = min(n, 8 if quick else 16)
    t0 = time.perf_counter()
    s0 = pdhg.solve_lp(lps[0], tol=cfg["tol"], iters=cfg["iters"])
    s0.x.block_until_ready()
    loop_compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    objs = []
    for lp in lps[:m_loop]:
        s = pdhg.solve_lp(lp, tol=cfg["tol"], iters=cfg["iters"])
        objs.append(float(s.objective))
    loop_s = time.perf_counter() - t0
    # HiGHS loop (outside reference)
    t0 = time.perf_counter()
    hobj = [fp.relaxed_solve(lp, "highs").objective for lp in lps[:m_loop]]
    highs_s = time.perf_counter() - t0
    gap = max(abs(a - b) / abs(b) for a, b in zip(objs, hobj))
    return {
        "samples": n,
        "chunk_size": spec.chunk_size,
        "scenario": cfg["scenario"],
        "lp_vars": int(np.shape(lps[0].c)[0]),
        "lp_rows": int(np.shape(lps[0].b_ub)[0]),
        "one_device": {"rows_per_s": r1.rows_per_s, "compile_s": r1.compile_s, "batching": "map"},
        "one_device_simplex": {
            "rows_per_s": rs.rows_per_s,
            "first_run_wall_s": simplex_first_s,
            "max_rel_diff_vs_map": diffs,
        },
        "one_device_vmap": {
            "rows_per_s": rv.rows_per_s,
            "compile_s": rv.compile_s,
            "timed_samples": rv.rows_computed,
            "max_rel_diff_vs_map": diffv,
        },
        "eight_devices": r8,
        "eight_vs_one_max_rel_diff": diff8,
        "python_loop_pdhg": {
            "rows_per_s": m_loop / loop_s,
            "timed_samples": m_loop,
            "compile_s": loop_compile_s,
        },
        "python_loop_highs": {"rows_per_s": m_loop / highs_s, "timed_samples": m_loop},
        "pdhg_vs_highs_max_rel_gap": gap,
    }


# ---------------------------------------------------------------- chips: roofline formulas


def _py_op_time(flops, nbytes, ws, prec_i, kind_i, chip, eff):
    peak = chip["peak"][prec_i] * eff["compute"][kind_i]
    compute_s = flops / peak
    lvl = 0 if ws <= chip["sram_bytes"] else 1
    memory_s = nbytes / (chip["bw"][lvl] * eff["memory"][lvl])
    return max(compute_s, memory_s) + eff["overhead_s"]


def _py_chip(rec, vals):
    from perfmodel.hardware import PRECISION_FALLBACK, PRECISION_KEYS, PRECISIONS

    def v(k, d=None):
        return float(vals.get(k, rec.value(k, "best", d)))

    peak = []
    for p in PRECISIONS:
        r = 0.0
        for q in PRECISION_FALLBACK[p]:
            if PRECISION_KEYS[q] in rec.figures:
                r = v(PRECISION_KEYS[q])
                break
        peak.append(r)
    dram_bw = v("dram_bytes_per_s")
    return {
        "peak": peak,
        "sram_bytes": v("sram_bytes", 0.0),
        "bw": [v("sram_bytes_per_s") if "sram_bytes_per_s" in rec.figures else dram_bw, dram_bw],
        "up": v("scaleup_bytes_per_s_per_dir", 0.0),
        "out": v("scaleout_bytes_per_s_per_dir", 0.0),
    }


def py_step(w, chip, n, ops, counts, opt, eff, comm_eff, dom, b):
    """Plain-Python version of perfmodel.sweep.models.train_step (same formulas)."""
    fwd = 0.0
    for i in range(len(counts)):
        fwd += counts[i] * _py_op_time(
            ops["flops"][i],
            ops["bytes"][i],
            ops["ws"][i],
            ops["prec"][i],
            ops["kind"][i],
            chip,
            eff,
        )
    compute = 3.0 * fwd + _py_op_time(
        opt["flops"], opt["bytes"], opt["ws"], opt["prec"], opt["kind"], chip, eff
    )
    D = min(dom, n)
    G = n / D
    up = max((chip["up"] if chip["up"] > 0 else chip["out"]) * comm_eff, 1.0)
    out = max((chip["out"] if chip["out"] > 0 else chip["up"]) * comm_eff, 1.0)
    comm = 3.0 * w.params * b * ((D - 1) / D / up + (G - 1) / G / (D * out))
    return max(compute, comm)


def np_step(w, chips, n, ops, counts, opt, eff, comm_eff, dom, b):
    """NumPy-vectorised version over samples (chips: dict of arrays, leading axis S)."""

    def op_t(flops, nbytes, ws, prec_i, kind_i):
        peak = chips["peak"][:, prec_i] * eff["compute"][kind_i]
        in_sram = ws <= chips["sram_bytes"]
        bw = np.where(
            in_sram, chips["bw"][:, 0] * eff["memory"][0], chips["bw"][:, 1] * eff["memory"][1]
        )
        return np.maximum(flops / peak, nbytes / bw) + eff["overhead_s"]

    fwd = sum(
        counts[i]
        * op_t(ops["flops"][i], ops["bytes"][i], ops["ws"][i], ops["prec"][i], ops["kind"][i])
        for i in range(len(counts))
    )
    compute = 3.0 * fwd + op_t(opt["flops"], opt["bytes"], opt["ws"], opt["prec"], opt["kind"])
    D = min(dom, n)
    G = n / D
    up = np.maximum(np.where(chips["up"] > 0, chips["up"], chips["out"]) * comm_eff, 1.0)
    out = np.maximum(np.where(chips["out"] > 0, chips["out"], chips["up"]) * comm_eff, 1.0)
    comm = 3.0 * w.params * b * ((D - 1) / D / up + (G - 1) / G / (D * out))
    return np.maximum(compute, comm)


def bench_chips(quick: bool, tmp: Path) -> dict:
    from perfmodel.hardware import BYTES_PER_ELEMENT, load_catalog
    from perfmodel.roofline import Efficiency

    keys = ["h100", "b200", "gb200", "mi300x", "dojo_tile"]
    n_samples = 4096 if quick else 65536
    data = {
        "sweep": {"model": "chips", "samples": n_samples, "chunk_size": n_samples, "seed": 0},
        "model": {"chips": keys, "workload": "llama3-70b", "n_chips": 1024, "engine": "roofline"},
    }
    spec = engine.parse_spec(data, "bench")
    r = engine.run_sweep(spec, tmp / "chips", overwrite=True, progress=False)
    # steady state: rerun the compiled chunk function a few times
    compiled, sharding, cols, _ = engine.compiled_chunk_fn(spec, jax.local_devices(), n_samples)
    idx = jax.device_put(np.arange(n_samples), sharding)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(idx))
        times.append(time.perf_counter() - t0)
    jax_s = float(np.median(times))
    res = table_of(tmp / "chips")
    cat = load_catalog()
    cfg = spec.model.config
    w = models.TRANSFORMERS[cfg["workload"]]
    n, dom = cfg["n_chips"], cfg["domain_size"]
    ck = cfg["chips"] if "h100_sxm" in cfg["chips"] else ["h100_sxm", *cfg["chips"]]
    eff0 = Efficiency.default()
    eff = {
        "compute": [float(x) for x in eff0.compute],
        "memory": [float(x) for x in eff0.memory],
        "overhead_s": float(eff0.overhead_s),
    }
    per_chip_ops = {}
    for k in ck:
        prec = cfg["precision"][k]
        stacked, counts, _, opt = models._step_ops(w, n, prec)
        per_chip_ops[k] = (
            {
                "flops": [float(x) for x in stacked.flops],
                "bytes": [float(x) for x in stacked.bytes],
                "ws": [float(x) for x in stacked.working_set_bytes],
                "prec": [int(x) for x in stacked.precision],
                "kind": [int(x) for x in stacked.kind],
            },
            list(counts),
            {
                "flops": float(opt.flops),
                "bytes": float(opt.bytes),
                "ws": float(opt.working_set_bytes),
                "prec": int(opt.precision),
                "kind": int(opt.kind),
            },
            BYTES_PER_ELEMENT[prec],
        )
    params = [c for c in res if c.startswith("param.")]
    m_py = min(n_samples, 2000 if quick else 5000)
    # python loop: step time of every chip for m_py samples
    t0 = time.perf_counter()
    py_steps = {k: [] for k in ck}
    for i in range(m_py):
        for k in ck:
            rec = cat.chips[k]
            vals = {c.split(".", 2)[2]: res[c][i] for c in params if c.startswith(f"param.{k}.")}
            ops, counts, opt, b = per_chip_ops[k]
            py_steps[k].append(
                py_step(w, _py_chip(rec, vals), n, ops, counts, opt, eff, 0.8, dom, b)
            )
    py_s = time.perf_counter() - t0
    # numpy vectorised over all samples
    t0 = time.perf_counter()
    np_steps = {}
    for k in ck:
        rec = cat.chips[k]
        base = _py_chip(rec, {})
        S = n_samples
        chips = {
            "peak": np.tile(np.asarray(base["peak"]), (S, 1)),
            "sram_bytes": np.full(S, base["sram_bytes"]),
            "bw": np.tile(np.asarray(base["bw"]), (S, 1)),
            "up": np.full(S, base["up"]),
            "out": np.full(S, base["out"]),
        }
        from perfmodel.hardware import PRECISION_FALLBACK, PRECISION_KEYS, PRECISIONS

        for c in params:
            if not c.startswith(f"param.{k}."):
                continue
            f = c.split(".", 2)[2]
            x = res[c]
            for pi, p in enumerate(PRECISIONS):
                for q in PRECISION_FALLBACK[p]:
                    if PRECISION_KEYS[q] in rec.figures:
                        if PRECISION_KEYS[q] == f:
                            chips["peak"][:, pi] = x
                        break
            if f == "sram_bytes":
                chips["sram_bytes"] = x
            elif f == "dram_bytes_per_s":
                chips["bw"][:, 1] = x
                if "sram_bytes_per_s" not in rec.figures:
                    chips["bw"][:, 0] = x
            elif f == "sram_bytes_per_s":
                chips["bw"][:, 0] = x
            elif f == "scaleup_bytes_per_s_per_dir":
                chips["up"] = x
            elif f == "scaleout_bytes_per_s_per_dir":
                chips["out"] = x
        ops, counts, opt, b = per_chip_ops[k]
        np_steps[k] = np_step(w, chips, n, ops, counts, opt, eff, 0.8, dom, b)
    np_s = time.perf_counter() - t0
    # jax: the same formulas only (no sampling, no other outputs), jit+vmap per chip
    fns, args = {}, {}
    for k in ck:
        rec = cat.chips[k]
        ops, counts, opt, b = per_chip_ops[k]
        prec = cfg["precision"][k]
        vals = {
            c.split(".", 2)[2]: jnp.asarray(res[c]) for c in params if c.startswith(f"param.{k}.")
        }
        fns[k] = jax.jit(
            jax.vmap(
                lambda v, rec=rec, prec=prec: models.train_step(
                    w, models.chip_from_values(rec, v), n, prec, eff0, 0.8, dom
                )["step_s"]
            )
        )
        args[k] = vals
    t0 = time.perf_counter()
    for k in ck:
        jax.block_until_ready(fns[k](args[k]))
    jf_compile = time.perf_counter() - t0
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        jax_steps = {k: jax.block_until_ready(fns[k](args[k])) for k in ck}
        times.append(time.perf_counter() - t0)
    jf_s = float(np.median(times))
    worst = max(
        float(np.max(np.abs(np.asarray(jax_steps[k]) - np_steps[k]) / np_steps[k])) for k in ck
    )
    for k in ck:
        j = res[f"step_time_s.{k}"] if f"step_time_s.{k}" in res else None
        if j is None:
            continue
        worst = max(
            worst,
            float(np.max(np.abs(np.asarray(py_steps[k]) - j[:m_py]) / j[:m_py])),
            float(np.max(np.abs(np_steps[k] - j) / j)),
        )
    configs = n_samples * len(ck)
    return {
        "samples": n_samples,
        "chips": ck,
        "configs": configs,
        "jax": {"configs_per_s": configs / jax_s, "compile_s": r.compile_s, "median_s": jax_s},
        "numpy": {"configs_per_s": configs / np_s},
        "jax_formulas": {
            "configs_per_s": configs / jf_s,
            "compile_s": jf_compile,
            "median_s": jf_s,
        },
        "python": {"configs_per_s": m_py * len(ck) / py_s, "timed_samples": m_py},
        "max_rel_diff_vs_jax": worst,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (a few minutes on 2 cores)")
    ap.add_argument("--skip-fleet", action="store_true", help="only the chips part")
    a = ap.parse_args(argv)
    out: dict = {
        "quick": a.quick,
        "machine": f"{os.cpu_count()} CPU cores, jax {jax.__version__}, {jax.default_backend()}",
    }
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if not a.skip_fleet and engine.fleet_available():
            f = bench_fleet(a.quick, tmp)
            out["fleet"] = f
            base = f["python_loop_pdhg"]["rows_per_s"]
            print(
                f"fleet: {f['samples']} scenario variants of {f['scenario']} "
                f"(LP {f['lp_vars']} vars x {f['lp_rows']} rows), chunk {f['chunk_size']}"
            )
            print(f"{'method':<36}{'scenarios/s':>14}{'vs loop':>10}{'compile s':>11}")
            rows = [
                ("python loop, same PDHG solver", base, None),
                (
                    "sweep, 1 device (jit, lax.map)",
                    f["one_device"]["rows_per_s"],
                    f["one_device"]["compile_s"],
                ),
                (
                    "sweep, 8 host devices (sharded)",
                    f["eight_devices"]["rows_per_s"],
                    f["eight_devices"]["compile_s"],
                ),
                (
                    "sweep, 1 device (jit+vmap PDHG)",
                    f["one_device_vmap"]["rows_per_s"],
                    f["one_device_vmap"]["compile_s"],
                ),
                (
                    "sweep, batched simplex (host)",
                    f["one_device_simplex"]["rows_per_s"],
                    f["one_device_simplex"]["first_run_wall_s"],
                ),
                ("python loop, HiGHS (reference)", f["python_loop_highs"]["rows_per_s"], None),
            ]
            for name, rate, comp in rows:
                print(
                    f"{name:<36}{rate:>14.3g}{rate / base:>9.2f}x"
                    + (f"{comp:>11.1f}" if comp else "")
                )
            print(
                "(simplex: 'compile s' is the whole first run, compiles included; the rate is a second run)"
            )
            print(
                f"simplex vs lax.map PDHG: h100e_quarters max relative difference "
                f"{f['one_device_simplex']['max_rel_diff_vs_map']:.2e}"
            )
            print(
                f"8 devices vs 1: max relative difference {f['eight_vs_one_max_rel_diff']:.2e}; "
                f"PDHG vs HiGHS objective: max relative gap {f['pdhg_vs_highs_max_rel_gap']:.2e}"
            )
            print()
        c = bench_chips(a.quick, tmp)
        out["chips"] = c
        base = c["python"]["configs_per_s"]
        print(
            f"chips (roofline step model): {c['samples']} samples x {len(c['chips'])} chips = {c['configs']} configs"
        )
        print(f"{'method':<36}{'configs/s':>14}{'vs python':>11}")
        for name, rate in (
            ("python loop (same formulas)", base),
            ("numpy vectorised", c["numpy"]["configs_per_s"]),
            ("jax jit+vmap, same formulas", c["jax_formulas"]["configs_per_s"]),
            ("sweep chunk (sample+all outputs)", c["jax"]["configs_per_s"]),
        ):
            print(f"{name:<36}{rate:>14.3g}{rate / base:>10.1f}x")
        print(
            f"max relative difference python/numpy vs jax: {c['max_rel_diff_vs_jax']:.1e}; "
            f"jax compile {c['jax']['compile_s']:.1f} s"
        )
    (ROOT / "results").mkdir(exist_ok=True)
    path = ROOT / "results" / "sweep_bench.json"
    path.write_text(json.dumps(out, indent=1, default=float))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
