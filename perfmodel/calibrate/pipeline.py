"""Calibrate the roofline's efficiency factors against kernels measured on this device.

Pipeline (``perfmodel calibrate`` and ``benchmarks/calibrate.py`` run the same code)::

    kernels (checked, timed)   ──►  measured seconds per op   (KernelResult)
    host spec (CPU only)       ──►  user catalog TOML entry  (host_measured)
    roofline.op_time(op, chip, Efficiency.default())  ──►  error before
    fit Efficiency on the training split (optax Adam, log-time error)
    roofline.op_time(op, chip, fitted)                ──►  error after (held-apart split)
    calibration TOML  ──►  load_efficiency(path) / Efficiency.from_file(path)

The fit itself (loss, held-apart split, measured time) is described in
:mod:`perfmodel.calibrate.fit`.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any

import jax
import numpy as np

from perfmodel import kernels
from perfmodel.calibrate.files import (
    CACHE_DIR,
    load_host_chip,
    save_efficiency,
    write_host_catalog,
)
from perfmodel.calibrate.fit import (
    abs_pct_error,
    fit_efficiency,
    make_dataset,
    predict_s,
    split_mask,
)
from perfmodel.calibrate.host import chip_for_device, detect_device, host_spec_from_results
from perfmodel.errors import InputError, check_safe_name
from perfmodel.kernels import collectives
from perfmodel.kernels.harness import KernelCheckError, RandomPool, run_case
from perfmodel.roofline import (
    Efficiency,
    efficiency_to_dict,
)

# --------------------------------------------------------------------------------------
# The whole run
# --------------------------------------------------------------------------------------

RUN_SETTINGS = {  # harness settings per size
    "tiny": {"repeats": 7, "warmup": 1, "min_sample_s": 20e-3},
    "small": {"repeats": 7, "warmup": 2, "min_sample_s": 2e-3},
    "full": {"repeats": 11, "warmup": 3, "min_sample_s": 5e-3},
}


def _summary(err: np.ndarray) -> dict[str, float]:
    if err.size == 0:
        return {"n": 0, "median_pct": float("nan"), "worst_pct": float("nan")}
    return {
        "n": int(err.size),
        "median_pct": float(np.median(err)),
        "worst_pct": float(np.max(err)),
    }


def error_table(meta, test: np.ndarray, before: np.ndarray, after: np.ndarray) -> tuple[str, dict]:
    """Per-family and overall median / worst absolute % error on the held-apart split."""
    fams = sorted({m["family"] for m in meta})
    rows, out = [], {}
    hdr = (
        f"{'family':<16} {'n':>3}  {'median before':>13} {'worst before':>12}  "
        f"{'median after':>12} {'worst after':>11}"
    )
    for fam in fams + ["ALL"]:
        sel = test & np.array([fam == "ALL" or m["family"] == fam for m in meta])
        b, a = _summary(before[sel]), _summary(after[sel])
        out[fam] = {
            "n": b["n"],
            "before_median_pct": b["median_pct"],
            "before_worst_pct": b["worst_pct"],
            "after_median_pct": a["median_pct"],
            "after_worst_pct": a["worst_pct"],
        }
        if b["n"]:
            rows.append(
                f"{fam:<16} {b['n']:>3}  {b['median_pct']:>12.1f}% {b['worst_pct']:>11.1f}%  "
                f"{a['median_pct']:>11.1f}% {a['worst_pct']:>10.1f}%"
            )
    sep = "-" * len(hdr)
    return "\n".join([hdr, sep, *rows[:-1], sep, rows[-1]]), out


def _fmt_s(t: float) -> str:
    if t < 1e-3:
        return f"{t * 1e6:8.1f}us"
    if t < 1:
        return f"{t * 1e3:8.2f}ms"
    return f"{t:8.3f}s "


def run(args, out=print) -> dict[str, Any]:
    """Measure, compare and calibrate (see the module docstring); print tables with
    ``out``; return everything as a JSON-able dict."""
    import time

    t_start = time.perf_counter()
    for name, lo, hi in (("collectives", 0, 4096), ("steps", 1, 10**7), ("seed", 0, 2**31 - 1)):
        v = getattr(args, name)
        if not lo <= v <= hi:
            raise InputError(f"--{name}", v, f"an integer in [{lo}, {hi}]")
    families = tuple(f.strip() for f in args.families.split(",") if f.strip())
    info = detect_device(args.device)
    backend = info.platform
    if args.pallas and backend == "cpu":
        raise ValueError("--pallas needs a GPU or TPU (Pallas is not run on CPU by default)")
    precisions = ("fp32", "bf16")
    dev = jax.devices(backend)[0]
    settings = RUN_SETTINGS[args.size]
    out(
        f"perfmodel calibrate: {info.description} [{info.platform}] on {info.hostname}, "
        f"size={args.size}, measured time = {args.stat}"
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if backend == "cpu" and load > 0.5 * (os.cpu_count() or 1):
        out(
            f"warning: load average {load:.1f} on {os.cpu_count()} cores: other jobs share this "
            "CPU, timings will be noisy"
        )
    # the chip to compare with: --chip, else the detected GPU's catalog entry, else (CPU)
    # the host measured below
    from perfmodel.hardware import load_catalog

    chip_key, chip, host_path = None, None, None
    if args.chip:
        cat = load_catalog(*([args.catalog] if args.catalog else []))
        chip_key = check_safe_name(cat.resolve(args.chip), "--chip (its catalog key)")
        chip = cat.chip(chip_key)
    elif backend != "cpu":
        chip_key = chip_for_device(info)
        chip = load_catalog().chip(chip_key)
    if (
        backend == "cpu"
        and chip is None
        and not args.reuse_host
        and not {"matmul", "stream"} <= set(families)
    ):
        raise ValueError(
            f"--families {args.families}: measuring the host needs 'matmul' and "
            "'stream' (or pass --chip KEY or --reuse-host)"
        )
    if backend == "cpu" and args.reuse_host and not Path(args.host_catalog).expanduser().exists():
        raise FileNotFoundError(
            f"--reuse-host: {Path(args.host_catalog).expanduser()} does not "
            "exist; run once without --reuse-host to measure the host"
        )
    # rotate inputs over twice the on-chip cache (last-level cache; GPU L2 from the catalog)
    cache = (
        info.cache_bytes if backend == "cpu" or chip is None else float(chip.mem_bytes[0]) or 50e6
    )

    results, failed = [], []
    with jax.default_device(dev):
        cases = kernels.all_cases(
            args.size, backend, families, precisions, cache_bytes=cache, pallas=args.pallas
        )
        pool = RandomPool(args.seed, 1 << 23 if args.size != "tiny" else 1 << 22)
        for c in cases:
            try:
                r = run_case(
                    c,
                    seed=args.seed,
                    pool=pool,
                    min_footprint_bytes=2 * cache,
                    max_buffers=256,
                    **settings,
                )
            except KernelCheckError as e:  # wrong result: reported, never timed or fitted
                failed.append({"name": c.name, "error": str(e)})
                out(f"FAILED correctness check, not timed: {e}")
                continue
            results.append(r)
    t_kernels = time.perf_counter() - t_start
    out(
        f"{len(results)} kernels checked against NumPy and timed in {t_kernels:.1f} s "
        f"(compile {sum(r.timing.compile_s for r in results):.1f} s kept apart)"
    )

    if backend == "cpu" and chip is None and args.reuse_host:
        host_path = Path(args.host_catalog).expanduser()
        chip = load_host_chip(host_path, args.host_key)
        chip_key = args.host_key
        out(f"host spec <- {host_path} [chips.{chip_key}] (reused, not re-measured)")
    elif backend == "cpu":
        spec = host_spec_from_results(results, info, args.stat)
        host_path = write_host_catalog(spec, args.host_catalog, info, args.host_key)
        fig = spec["figures"]
        out(
            f"host spec -> {host_path} [chips.{args.host_key}]: fp32 "
            f"{fig.get('fp32_flops_per_s', 0) / 1e9:.1f} GFLOP/s, bf16 "
            f"{fig.get('bf16_flops_per_s', 0) / 1e9:.1f} GFLOP/s, DRAM "
            f"{fig['dram_bytes_per_s'] / 1e9:.1f} GB/s, cache {fig.get('sram_bytes_per_s', 0) / 1e9:.1f} GB/s "
            f"({fig['sram_bytes'] / 2**20:.0f} MiB)"
        )
        if chip is None:
            chip = load_host_chip(host_path, args.host_key)
            chip_key = args.host_key

    data, meta = make_dataset(results, args.stat)
    test = split_mask(meta)
    train = ~test
    default = Efficiency.default()
    assert chip is not None  # --chip, the GPU's catalog entry, or the host measured above
    fitted, loss = fit_efficiency(data, chip, train, default, steps=args.steps)
    pred_before = np.asarray(predict_s(data.ops, chip, default))
    pred_after = np.asarray(predict_s(data.ops, chip, fitted))
    meas = np.asarray(data.measured_s)
    e_before, e_after = abs_pct_error(pred_before, meas), abs_pct_error(pred_after, meas)

    if args.verbose:
        out("")
        out(
            f"{'kernel':<40} {'split':<5} {'measured':>10} {'IQR/med':>7} {'before':>10} {'ratio':>6} "
            f"{'after':>10} {'ratio':>6}"
        )
        for i, m in enumerate(meta):
            r = results[i]
            out(
                f"{m['name']:<40} {'test' if test[i] else 'train':<5} {_fmt_s(meas[i])} "
                f"{r.timing.iqr_rel:>7.2f} {_fmt_s(pred_before[i])} {pred_before[i] / meas[i]:>6.2f} "
                f"{_fmt_s(pred_after[i])} {pred_after[i] / meas[i]:>6.2f}"
            )
    table, by_family = error_table(meta, test, e_before, e_after)
    out("")
    out(
        f"roofline vs measured on {chip_key}, held-apart split ({int(test.sum())} of {len(meta)} "
        "kernels), |model/measured - 1|:"
    )
    out(table)
    allrow = by_family["ALL"]
    ratio = allrow["after_median_pct"] / max(allrow["before_median_pct"], 1e-12)
    out(
        f"median error after / before = {ratio:.2f}   (target: median after <= 15%: "
        f"{'met' if allrow['after_median_pct'] <= 15 else 'NOT met'})"
    )
    effd = efficiency_to_dict(fitted)
    out(
        "fitted: compute "
        + ", ".join(f"{k} {v:.3f}" for k, v in effd["compute"].items())
        + "; memory "
        + ", ".join(f"{k} {v:.3f}" for k, v in effd["memory"].items())
        + f"; overhead {effd['overhead_s'] * 1e6:.1f} us"
    )

    created = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    cal_path = (
        Path(args.out).expanduser()
        if args.out
        else CACHE_DIR / f"calibration_{check_safe_name(chip_key, 'catalog chip key')}.toml"
    )
    meta_out = {
        "chip": chip_key,
        "stat": args.stat,
        "device": info.description,
        "platform": info.platform,
        "hostname": info.hostname,
        "created_utc": created,
        "size": args.size,
        "n_train": int(train.sum()),
        "n_test": int(test.sum()),
        "host_catalog": str(host_path) if host_path else "",
        "tool": "perfmodel.calibrate",
        "jax_version": jax.__version__,
    }
    errs = {
        "split": "held-apart",
        "before_median_pct": allrow["before_median_pct"],
        "before_worst_pct": allrow["before_worst_pct"],
        "after_median_pct": allrow["after_median_pct"],
        "after_worst_pct": allrow["after_worst_pct"],
    }
    save_efficiency(fitted, cal_path, meta_out, errs)
    out(f"calibration -> {cal_path}  (load: perfmodel.calibrate.load_efficiency(path))")

    coll = []
    if args.collectives:
        try:
            if backend == "cpu":
                coll = collectives.run_in_subprocess(args.collectives, args.size)
            elif info.n_devices >= 2:
                with jax.default_device(dev):
                    coll = collectives.run_collectives(args.size)
            else:
                out("collectives: skipped (one device)")
        except (RuntimeError, ValueError) as e:  # reported, not fatal: the fit is done
            out(f"collectives: FAILED: {e}")
        if coll:
            out("")
            out(
                f"collectives over {coll[0]['devices']} {coll[0]['platform']} devices "
                "(simulated on CPU: one shared memory; not fitted):"
            )
            out(collectives.format_table(coll))
    wall = time.perf_counter() - t_start
    if failed:
        out(
            f"{len(failed)} kernel(s) FAILED their correctness check: "
            + ", ".join(f["name"] for f in failed)
        )
    out(f"total {wall:.1f} s")
    result = {
        "device": dataclasses.asdict(info),
        "chip": chip_key,
        "size": args.size,
        "kernels": [r.as_dict() for r in results],
        "split_test": [bool(x) for x in test],
        "pred_before_s": pred_before.tolist(),
        "pred_after_s": pred_after.tolist(),
        "errors_by_family": by_family,
        "error_ratio_after_before": ratio,
        "efficiency_default": efficiency_to_dict(default),
        "efficiency_fitted": effd,
        "fit_loss": loss,
        "calibration_file": str(cal_path),
        "host_catalog": str(host_path) if host_path else None,
        "collectives": coll,
        "wall_s": wall,
        "created_utc": created,
        "failed": failed,
    }
    if args.json_out:
        p = Path(args.json_out).expanduser()
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(result, indent=1))
        out(f"results -> {p}")
    return result
