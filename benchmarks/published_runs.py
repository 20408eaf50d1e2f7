"""The training-step model against published training runs: fit and cross-validation.

    python benchmarks/published_runs.py            # evaluate the shipped fit + CV tables
    python benchmarks/published_runs.py --fit      # refit, cross-validate, write the fit file
    python benchmarks/published_runs.py --quick    # shipped fit only, no CV refits

Data: the 221 rows of NVIDIA's NeMo / Megatron-Bridge performance summaries shipped in
``perfmodel/data/published_training_runs.toml`` (each with its source). Compares
**tokens/s per GPU** (no FLOP convention needed). Prints, side by side, the error of
the fitted model on the rows it was fitted to and the cross-validated (out-of-fold)
error: leave one chip out, leave one model family out, and 5-fold; then the errors by
chip, precision, model kind (dense / MoE) and scale; the memory check (how many
published layouts fit, and with which recomputation); the excluded rows with reasons;
and the GB200/H100 per-GPU ratio on a 405B-class dense FP8 job at 512 GPUs. ``--fit``
writes ``perfmodel/data/training_fit.toml`` (parameters, date, data fingerprint, CV
error bands). Writes benchmarks/results/published_runs.json. Also prints the older
runs of ``perfmodel.training.PUBLISHED_RUNS`` (MLPerf, Llama 3 paper, Megatron-LM) as
runs the fit never saw.
"""

from __future__ import annotations

import argparse
import collections
import json
import time
from pathlib import Path

import numpy as np
import tomli_w

import perfmodel  # noqa: F401  (x64)
from perfmodel import training as tr
from perfmodel.hardware import load_catalog
from perfmodel.training import fit as F
from perfmodel.training import runs as R
from perfmodel.training.types import FIT_FILE, FIT_PARAMS, efficiency_from_params, fit_data


def _table(title: str, keyf, runs, cols: dict[str, np.ndarray]) -> list[dict]:
    print(f"\n{title}")
    hdr = f"  {'group':28s} {'rows':>4s} " + " ".join(f"{k:>22s}" for k in cols)
    print(hdr)
    out = []
    for g in sorted({keyf(r) for r in runs}):
        m = np.array([keyf(r) == g for r in runs])
        cells, rec = [], dict(group=g, rows=int(m.sum()))
        for k, e in cols.items():
            a = np.abs(e[m])
            cells.append(f"{a.mean():9.1f}% mean {a.max():6.1f}% max")
            rec[k] = dict(mean_abs_pct=float(a.mean()), max_abs_pct=float(a.max()))
        print(f"  {g:28s} {int(m.sum()):4d} " + " ".join(f"{c:>22s}" for c in cells))
        out.append(rec)
    return out


def _ratio_405b(theta) -> dict:
    """GB200 / H100 tokens/s per GPU on a 405B-class dense FP8 job at 512 GPUs, each
    with its best layout under the fitted model."""
    eff = efficiency_from_params(dict(zip(FIT_PARAMS, theta, strict=True)))
    cat = load_catalog()
    out = {}
    for chip in ("h100_sxm", "gb200"):
        r = tr.best_layout("llama3-405b", chip, 512, precision="fp8", catalog=cat, eff=eff)
        out[chip] = dict(tokens_per_s_per_gpu=r.tokens_per_s / 512, layout=r.layout)
    out["ratio"] = out["gb200"]["tokens_per_s_per_gpu"] / out["h100_sxm"]["tokens_per_s_per_gpu"]
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fit", action="store_true", help="refit and write the fit file")
    ap.add_argument("--quick", action="store_true", help="no cross-validation refits")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    all_runs = R.load_runs() + R.other_runs()
    runs = R.used_runs(all_runs)
    prob = F.Problem(runs)
    t_setup = time.perf_counter() - t0
    if args.fit:
        t1 = time.perf_counter()
        theta = F.fit(prob)
        t_fit = time.perf_counter() - t1
    else:
        p = fit_data()["params"]
        theta = np.array([p[k] for k in FIT_PARAMS])
        t_fit = 0.0
    err = F.errors_pct(prob, theta)
    prior_err = F.errors_pct(prob, F.prior_theta())
    cols = {"fitted (train)": err}
    cv = {}
    t_cv = 0.0
    if not args.quick:
        t1 = time.perf_counter()
        cv = F.cross_validate(prob, theta)
        t_cv = time.perf_counter() - t1
        cols.update(cv)

    print(
        f"published runs: {len(all_runs)} rows ({len(R.other_runs())} of them MLPerf / Llama 3 / "
        f"Megatron-LM), {len(runs)} used (see exclusions below)"
    )
    print("tokens/s per GPU; one global parameter set, nothing per chip, model or row\n")
    latest = R.latest_release(runs)
    print(
        f"  {'scheme':24s} {'mean |err|':>10s} {'median':>8s} {'max |err|':>10s} "
        f"{'<=20%':>6s} | newest release of each job ({int(latest.sum())} rows): "
        "mean, max"
    )
    summary = {"prior (unfitted)": F.summary(prior_err)}
    summary.update({k: F.summary(v) for k, v in cols.items()})
    summary_latest = {"prior (unfitted)": F.summary(prior_err[latest])}
    summary_latest.update({k: F.summary(v[latest]) for k, v in cols.items()})
    for k, s in summary.items():
        sl = summary_latest[k]
        print(
            f"  {k:24s} {s['mean_abs_pct']:9.1f}% {s['median_abs_pct']:7.1f}% "
            f"{s['max_abs_pct']:9.1f}% {100 * s['within_20_pct_share']:5.0f}% | "
            f"{sl['mean_abs_pct']:5.1f}% {sl['max_abs_pct']:6.1f}%"
        )
    spread = R.release_spread(runs)
    print(
        f"\nsoftware-release floor: {spread['rows']} rows of {spread['configs']} jobs were "
        "published in several releases. Predicting each from the same job's other "
        f"releases (hardware and job known exactly) misses by {spread['mean_abs_pct']:.1f}% "
        f"mean, {spread['max_abs_pct']:.0f}% max, >20% for "
        f"{100 * spread['over_20_pct_share']:.0f}% of rows. Widest spreads:"
    )
    for w in spread["widest"][:5]:
        print(
            f"  {w['ratio']:.2f}x  {' '.join(str(x) for x in w['config'])}  ({w['rows']} releases)"
        )

    tables = {}
    tables["chip"] = _table("by chip", lambda r: r.chip, runs, cols)
    tables["precision"] = _table("by precision / recipe", lambda r: r.recipe, runs, cols)
    tables["kind"] = _table("by model kind", lambda r: r.kind, runs, cols)
    tables["family"] = _table("by model family", lambda r: r.family, runs, cols)
    tables["scale"] = _table("by scale (GPUs)", lambda r: r.scale, runs, cols)

    rc = collections.Counter(r.recompute for r in runs)
    fit_n = sum(r.fits for r in runs)
    print(
        f"\nmemory: {fit_n}/{len(runs)} published layouts fit "
        f"(recompute assumed, least that fits: {dict(rc)})"
    )
    excl = collections.Counter(r.excluded for r in all_runs if r.excluded)
    print(f"excluded rows ({sum(excl.values())}):")
    for why, n in excl.most_common():
        print(f"  {n:4d}  {why}")
    params = dict(zip(FIT_PARAMS, (float(x) for x in theta), strict=True))
    print("\nparameters:", ", ".join(f"{k}={v:.4g}" for k, v in params.items()))

    ratio = None
    try:
        ratio = _ratio_405b(theta)
        print(
            f"GB200/H100 per GPU, llama3.1-405b FP8 on 512 GPUs (best layouts): "
            f"{ratio['ratio']:.2f}x ({ratio['gb200']['tokens_per_s_per_gpu']:.0f} vs "
            f"{ratio['h100_sxm']['tokens_per_s_per_gpu']:.0f} tokens/s per GPU)"
        )
    except KeyError as e:
        print(f"GB200/H100 ratio not computed: {e}")

    print(
        f"\n(setup {t_setup:.1f} s, fit {t_fit:.1f} s, cross-validation {t_cv:.1f} s; "
        f"{len(prob.groups)} compiled groups)"
    )
    if args.fit:
        rec = F.fit_record(prob, theta, cv or {"5_fold": err})
        FIT_FILE.write_text(
            "# Fitted by benchmarks/published_runs.py --fit; do not edit by hand.\n"
            + tomli_w.dumps(rec)
        )
        print(f"wrote {FIT_FILE}")
    rows = [
        dict(
            index=r.index,
            model=r.model,
            chip=r.chip,
            gpus=r.gpus,
            recipe=r.recipe,
            layout=r.layout,
            recompute=r.recompute,
            release=r.release,
            newest_release=bool(latest[i]),
            published=r.tokens_per_s_per_gpu,
            error_pct=float(e),
            **{f"cv_{k}": float(v[i]) for k, v in cv.items()},
            source=r.source,
        )
        for i, (r, e) in enumerate(zip(runs, err, strict=True))
    ]
    result = dict(
        summary=summary,
        summary_newest_release=summary_latest,
        release_spread=spread,
        tables=tables,
        params=params,
        gb200_h100_405b=ratio,
        excluded={k: v for k, v in excl.items()},
        rows=rows,
    )
    out = Path(args.out) / "published_runs.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, allow_nan=False))
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
