"""Throughput of the vectorised roofline: (op, chip) evaluations per second.

Times ``perfmodel.roofline.op_time_grid_s`` (times only) and ``op_time_grid`` (every
:class:`OpTiming` field), each one jit-compiled, vmapped call, on ~1e6
(op, chip) pairs -- random ops of every kind and precision against every catalog chip --
and compares it with the same hard-max formulas evaluated

* pair by pair in a plain Python loop (the baseline; timed on a subset and scaled), and
* with NumPy broadcasting over the whole grid (a vectorised CPU reference).

Compilation is timed apart from the steady state; steady-state times are the median of
``timeit.repeat`` with ``jax.block_until_ready``. Results agree to 1e-12 (checked).

Usage::

    python benchmarks/roofline_throughput.py          # ~1e6 pairs
    python benchmarks/roofline_throughput.py --quick  # ~1e5 pairs

Writes ``benchmarks/results/roofline_throughput.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
import timeit
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import perfmodel
from perfmodel import roofline as rl
from perfmodel.hardware import PRECISIONS, stack_chips


def random_ops(n: int, seed: int = 0) -> rl.Op:
    """``n`` random ops: log-uniform flops, intensity and working set; random kind and
    precision."""
    rng = np.random.default_rng(seed)
    flops = 10.0 ** rng.uniform(6, 15, n)
    intensity = 10.0 ** rng.uniform(-2, 4, n)
    nbytes = flops / intensity
    ws = nbytes * 10.0 ** rng.uniform(-3, 0, n)
    return rl.Op(
        jnp.asarray(flops),
        jnp.asarray(nbytes),
        jnp.asarray(ws),
        jnp.asarray(rng.integers(0, len(PRECISIONS), n)),
        jnp.asarray(rng.integers(0, len(rl.OP_KINDS), n)),
    )


def python_loop(ops: dict, chips: dict, eff: dict, n_ops: int) -> list[float]:
    """Hard roofline, one pair at a time, plain Python floats (the baseline)."""
    out = []
    for c in range(len(chips["peak"])):
        peak, cap, bw = chips["peak"][c], chips["cap"][c], chips["bw"][c]
        for j in range(n_ops):
            compute = ops["flops"][j] / (peak[ops["prec"][j]] * eff["compute"][ops["kind"][j]])
            lvl = 0 if ops["ws"][j] <= cap[0] else 1
            memory = ops["bytes"][j] / (bw[lvl] * eff["memory"][lvl])
            out.append(max(compute, memory) + eff["overhead"])
    return out


def numpy_grid(ops: dict, chips: dict, eff: dict) -> np.ndarray:
    """Hard roofline with NumPy broadcasting: (n_chips, n_ops)."""
    peak = chips["peak"][:, ops["prec"]] * eff["compute"][ops["kind"]][None, :]
    compute = ops["flops"][None, :] / peak
    in_sram = ops["ws"][None, :] <= chips["cap"][:, :1]
    bw = np.where(
        in_sram, chips["bw"][:, :1] * eff["memory"][0], chips["bw"][:, 1:] * eff["memory"][1]
    )
    return np.maximum(compute, ops["bytes"][None, :] / bw) + eff["overhead"]


def median_time(fn, repeat: int, number: int = 1) -> float:
    return statistics.median(timeit.repeat(fn, repeat=repeat, number=number)) / number


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="~1e5 pairs, fewer repeats")
    ap.add_argument("--pairs", type=float, default=None, help="target number of (op, chip) pairs")
    ap.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "roofline_throughput.json")
    )
    args = ap.parse_args(argv)

    cat = perfmodel.load_catalog()
    keys = list(cat.chips)
    chips = stack_chips([cat.chip(k) for k in keys])
    target = args.pairs or (1e5 if args.quick else 1e6)
    n_ops = int(np.ceil(target / len(keys)))
    pairs = n_ops * len(keys)
    ops = random_ops(n_ops)
    eff = rl.Efficiency.default()
    repeat = 3 if args.quick else 5

    # --- JAX: compile, then steady state ---
    t0 = time.perf_counter()
    compiled = rl.op_time_grid_s.lower(ops, chips, eff).compile()
    compile_s = time.perf_counter() - t0
    run = lambda: jax.block_until_ready(compiled(ops, chips, eff))  # noqa: E731
    grid = np.asarray(run())
    jax_s = median_time(run, repeat)
    t0 = time.perf_counter()
    compiled_full = rl.op_time_grid.lower(ops, chips, eff).compile()
    compile_full_s = time.perf_counter() - t0
    run_full = lambda: jax.block_until_ready(compiled_full(ops, chips, eff))  # noqa: E731
    full = run_full()
    assert np.array_equal(np.asarray(full.time_s), grid)
    jax_full_s = median_time(run_full, repeat)
    compiled_smooth = rl.op_time_grid_s.lower(ops, chips, eff, smooth=True).compile()
    run_smooth = lambda: jax.block_until_ready(compiled_smooth(ops, chips, eff))  # noqa: E731
    run_smooth()
    jax_smooth_s = median_time(run_smooth, repeat)

    # --- NumPy and Python baselines on the same data ---
    np_ops = {
        "flops": np.asarray(ops.flops),
        "bytes": np.asarray(ops.bytes),
        "ws": np.asarray(ops.working_set_bytes),
        "prec": np.asarray(ops.precision),
        "kind": np.asarray(ops.kind),
    }
    np_chips = {
        "peak": np.asarray(chips.peak_flops_per_s),
        "cap": np.asarray(chips.mem_bytes),
        "bw": np.asarray(chips.mem_bytes_per_s),
    }
    np_eff = {
        "compute": np.asarray(eff.compute),
        "memory": np.asarray(eff.memory),
        "overhead": float(eff.overhead_s),
    }
    ref = numpy_grid(np_ops, np_chips, np_eff)
    numpy_s = median_time(lambda: numpy_grid(np_ops, np_chips, np_eff), repeat)

    n_py = min(n_ops, 2_000 if args.quick else 10_000)  # subset per chip, then scaled
    py_ops = {k: v[:n_py].tolist() for k, v in np_ops.items()}
    py_chips = {k: v.tolist() for k, v in np_chips.items()}
    py_eff = {
        "compute": np_eff["compute"].tolist(),
        "memory": np_eff["memory"].tolist(),
        "overhead": np_eff["overhead"],
    }
    py_out = python_loop(py_ops, py_chips, py_eff, n_py)
    py_sub_s = median_time(lambda: python_loop(py_ops, py_chips, py_eff, n_py), max(1, repeat - 2))
    python_s = py_sub_s * n_ops / n_py

    err_np = float(np.max(np.abs(grid - ref) / ref))
    err_py = float(np.max(np.abs(grid[:, :n_py].ravel() - np.asarray(py_out)) / np.asarray(py_out)))
    assert err_np < 1e-12 and err_py < 1e-12, (err_np, err_py)

    rows = [
        ("python loop (baseline)", python_s),
        ("numpy broadcast (time only)", numpy_s),
        ("jax op_time_grid (all fields)", jax_full_s),
        ("jax op_time_grid_s (time)", jax_s),
        ("jax op_time_grid_s smooth", jax_smooth_s),
    ]
    print(
        f"roofline throughput: {n_ops:,} ops x {len(keys)} chips = {pairs:,} (op, chip) pairs; "
        f"{jax.devices()[0].platform} x{len(jax.devices())}, x64={jax.config.jax_enable_x64}"
    )
    print(
        f"  jax compile: {compile_s * 1e3:.0f} ms time-only, {compile_full_s * 1e3:.0f} ms all fields (once); python loop timed on {n_py:,} ops "
        f"per chip and scaled; max rel. difference vs jax: numpy {err_np:.1e}, python {err_py:.1e}"
    )
    print(f"{'method':<32}{'time (s)':>12}{'evals/s':>14}{'vs python':>12}")
    for name, s in rows:
        print(f"{name:<32}{s:>12.4g}{pairs / s:>14.4g}{python_s / s:>11.1f}x")
    result = {
        "benchmark": "roofline_throughput",
        "quick": bool(args.quick),
        "pairs": pairs,
        "n_ops": n_ops,
        "n_chips": len(keys),
        "compile_s": compile_s,
        "python_loop_s": python_s,
        "python_loop_subset_ops": n_py,
        "numpy_s": numpy_s,
        "jax_s": jax_s,
        "jax_evals_per_s": pairs / jax_s,
        "jax_full_s": jax_full_s,
        "jax_full_evals_per_s": pairs / jax_full_s,
        "jax_smooth_s": jax_smooth_s,
        "compile_full_s": compile_full_s,
        "numpy_evals_per_s": pairs / numpy_s,
        "python_evals_per_s": pairs / python_s,
        "speedup_vs_python": python_s / jax_s,
        "speedup_vs_numpy": numpy_s / jax_s,
        "max_rel_diff_numpy": err_np,
        "max_rel_diff_python": err_py,
        "platform": jax.devices()[0].platform,
        "machine": platform.processor() or platform.machine(),
        "jax": jax.__version__,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
