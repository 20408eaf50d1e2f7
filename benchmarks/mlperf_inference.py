"""The serving model against published MLPerf Inference results: fit and cross-validation.

    python benchmarks/mlperf_inference.py              # fit, cross-validate, print, JSON
    python benchmarks/mlperf_inference.py --quick      # fewer solver steps (a smoke run)
    python benchmarks/mlperf_inference.py --write-fit  # also write perfmodel/data/serving_fit.toml

Data: ``perfmodel/data/mlperf_inference.toml`` (756 published datacenter closed-division
results, v4.0-v5.1, each with its source), of which the rows on catalog chips (H100 SXM,
H200 SXM, B200 SXM, MI300X, MI325X) with tokens/s are used; the others are counted by reason.
Compares the **system's total output tokens/s**. Prints the error of the fitted model on
the rows it was fitted to and the cross-validated (out-of-fold) error of four splits:
leave one accelerator out, leave one benchmark out, leave one round out, and 5-fold;
each by scenario, accelerator and benchmark; then the bars (CV mean |error| <= 12%
Offline, <= 15% Server / Interactive, for every split) and whether every predicted
operating point meets its own limits. Then the same fit and the four splits of the
previous model (``before``: tokens/s residuals only, every row at its best tensor-
parallel degree, every engine scheduling each iteration), measured in the same run on
the same rows, beside the current one (``after``: the published v5.1 logs' (decode batch
per GPU, mean TPOT) pairs as residuals beside tokens/s, and the v5.1 rows served with
their published engine settings: tensor parallel and vLLM scheduler steps, from
``perfmodel/data/mlperf_v51_logs.toml``), train and CV mean and max |error| by scenario.
Writes
``DIR/mlperf_inference.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import tomli_w

import perfmodel  # noqa: F401  (x64)
from perfmodel.errors import InputError
from perfmodel.serving import fit as F
from perfmodel.serving.data import load_log_pairs, load_mlperf_rows
from perfmodel.serving.types import FIT_FILE

BARS = {"Offline": 0.12, "Server": 0.15, "Interactive": 0.15}
GROUPINGS = {
    "scenario": lambda r: r.scenario,
    "accelerator": lambda r: r.family,
    "benchmark": lambda r: r.benchmark,
}


def _table(title: str, rows, cols: dict[str, np.ndarray]) -> dict:
    print(f"\n{title}")
    out: dict = {}
    for gname, keyf in GROUPINGS.items():
        print(f"  by {gname}:")
        print(f"    {'group':14s} {'rows':>4s} " + " ".join(f"{k:>24s}" for k in cols))
        out[gname] = []
        for g in sorted({keyf(r) for r in rows}):
            m = np.array([keyf(r) == g for r in rows])
            rec: dict = dict(group=g, rows=int(m.sum()))
            cells = []
            for k, e in cols.items():
                a = np.abs(e[m]) * 100
                cells.append(f"{a.mean():6.1f}% mean {np.median(e[m]) * 100:+6.1f}% med")
                rec[k] = dict(
                    mean_abs_pct=float(a.mean()),
                    max_abs_pct=float(a.max()),
                    median_signed_pct=float(np.median(e[m]) * 100),
                )
            print(f"    {g:14s} {int(m.sum()):4d} " + " ".join(f"{c:>24s}" for c in cells))
            out[gname].append(rec)
    return out


BEFORE_AFTER_SPLITS = tuple(F.FOLD_KINDS)


def _before_after(rows, before: dict[str, np.ndarray], after: dict[str, np.ndarray]) -> list:
    print("\nBefore -> after (mean / max |error| by scenario; same rows, same run):")
    print(
        f"  {'scenario':12s} {'split':12s} {'before mean':>11s} {'max':>7s}   {'after mean':>10s} {'max':>7s}"
    )
    out = []
    for sc in BARS:
        m = np.array([r.scenario == sc for r in rows])
        if not m.any():
            continue
        for k in before:
            b, a = np.abs(before[k][m]) * 100, np.abs(after[k][m]) * 100
            rec = dict(
                scenario=sc,
                split=k,
                before_mean_abs_pct=float(b.mean()),
                before_max_abs_pct=float(b.max()),
                after_mean_abs_pct=float(a.mean()),
                after_max_abs_pct=float(a.max()),
            )
            out.append(rec)
            print(
                f"  {sc:12s} {k:12s} {b.mean():10.1f}% {b.max():6.0f}%   "
                f"{a.mean():9.1f}% {a.max():6.0f}%"
            )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer solver steps per fit")
    ap.add_argument("--out", default="benchmarks/results", help="directory for the JSON")
    ap.add_argument("--write-fit", action="store_true", help=f"write {FIT_FILE.name}")
    args = ap.parse_args()
    nfev_full, nfev_cv = (12, 6) if args.quick else (60, 30)

    rows, skipped = load_mlperf_rows()
    print(f"MLPerf Inference rows used: {len(rows)}; left out:")
    for why, n in sorted(skipped.items(), key=lambda x: -x[1]):
        print(f"  {n:4d}  {why}")
    t0 = time.perf_counter()
    try:
        pairs = load_log_pairs(rows)
    except InputError as e:  # a bad record of the logs file: one line, exit 2
        print(f"mlperf_inference.py: {e}", file=sys.stderr)
        return 2
    print(f"published v5.1 log pairs (decode batch per GPU, mean TPOT): {len(pairs)}")
    prob = F.Problem(rows, pairs=pairs, published_layout=True, engine_steps=True)
    prob.predict(F.prior_vector())
    t_compile = time.perf_counter() - t0
    t0 = time.perf_counter()
    theta = F.fit(prob, max_nfev=nfev_full)
    t_fit = time.perf_counter() - t0
    params = F.params_dict(theta)
    print(f"\ncompile + first evaluation {t_compile:.1f} s; full fit {t_fit:.1f} s")
    print("fitted parameters:")
    for k, v in params.items():
        print(f"  {k:16s} {v:.6g}   (prior {F.ALL_PRIOR[k]:.6g})")
    pred = prob.predict(theta)
    err_train = F.errors(pred, prob.measured)
    details = prob.details(theta)
    all_meet = all(d["meets"] for d in details)

    cv_pred: dict[str, np.ndarray] = {}
    for kind in F.FOLD_KINDS:
        t0 = time.perf_counter()
        p, _ = F.cross_validate_problem(prob, kind, theta, max_nfev=nfev_cv)
        cv_pred[kind] = p
        print(f"CV {kind}: {time.perf_counter() - t0:.1f} s")

    pair_err = F.errors(prob.predict_pairs(theta)[:, 0], prob.pair_tpot[:, 0])
    print(
        f"mean TPOT at the logs' decode batch: mean |error| {np.mean(np.abs(pair_err)) * 100:.1f}%"
        f", max {np.max(np.abs(pair_err)) * 100:.0f}% ({len(pairs)} pairs)"
    )

    # the previous model on the same rows, in the same run: tokens/s residuals only,
    # the best tensor-parallel degree for every row, one scheduling step per iteration
    prob_b = F.Problem(rows)
    t0 = time.perf_counter()
    theta_b = F.fit(prob_b, max_nfev=nfev_full)
    cv_before = {"train": F.errors(prob_b.predict(theta_b), prob_b.measured)}
    for kind in BEFORE_AFTER_SPLITS:
        p, _ = F.cross_validate_problem(prob_b, kind, theta_b, nfev_cv)
        cv_before[kind] = F.errors(p, prob.measured)
    print(
        f"before (tokens/s only, no published settings): fit + CV {time.perf_counter() - t0:.1f} s"
    )
    cv_after = {"train": err_train} | {
        k: F.errors(cv_pred[k], prob.measured) for k in BEFORE_AFTER_SPLITS
    }
    before_after = _before_after(rows, cv_before, cv_after)
    cols = {"train": err_train} | {
        f"cv {k}": F.errors(p, prob.measured) for k, p in cv_pred.items()
    }
    tables = _table("Mean |error| (and median signed error) of system tokens/s", rows, cols)

    print("\nBars (CV mean |error| by scenario, every split):")
    bars: dict = {}
    ok_all = True
    for sc, bar in BARS.items():
        m = np.array([r.scenario == sc for r in rows])
        if not m.any():
            continue
        worst = max(
            (float(np.mean(np.abs(F.errors(p, prob.measured)[m]))), k) for k, p in cv_pred.items()
        )
        ok = worst[0] <= bar
        ok_all &= ok
        bars[sc] = dict(bar=bar, worst_cv_mean_abs_error=worst[0], worst_split=worst[1], ok=ok)
        print(
            f"  {sc:12s} worst split {worst[1]:12s} {worst[0] * 100:5.1f}%  "
            f"bar {bar * 100:.0f}%  {'OK' if ok else 'MISSED'}"
        )
    print(f"every predicted operating point meets its own limits: {all_meet}")

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = dict(
        params=params,
        provenance=F.provenance(rows, pairs),
        skipped=skipped,
        tables=tables,
        bars=bars,
        all_operating_points_meet_limits=all_meet,
        before_after=before_after,
        params_before=F.params_dict(theta_b),
        pairs=[
            dict(
                key=rows[pr.row].key,
                decoding_per_gpu=pr.decoding_per_gpu,
                tensor_parallel=pr.tp,
                scheduler_steps=pr.scheduler_steps,
                measured_mean_tpot_s=pr.mean_tpot_s,
                predicted_mean_tpot_s=float(prob.predict_pairs(theta)[j, 0]),
            )
            for j, pr in enumerate(pairs)
        ],
        rows=[
            dict(
                key=r.key,
                chip=r.chip,
                n_chips=r.n_chips,
                measured_tokens_per_s=r.tokens_per_s,
                predicted_tokens_per_s=float(pred[i]),
                **{f"cv_{k}_tokens_per_s": float(p[i]) for k, p in cv_pred.items()},
                **details[i],
                source=r.source,
            )
            for i, r in enumerate(rows)
        ],
        quick=args.quick,
    )
    path = out_dir / "mlperf_inference.json"
    path.write_text(json.dumps(doc, indent=1, allow_nan=False))
    print(f"\nwrote {path}")
    if args.write_fit:
        cv_section = {}
        for sc, b in bars.items():
            m = np.array([r.scenario == sc for r in rows])
            per = {
                k: float(np.mean(np.abs(F.errors(p, prob.measured)[m]))) for k, p in cv_pred.items()
            }
            cv_section[sc] = dict(
                mean_abs_error=b["worst_cv_mean_abs_error"],
                kind=b["worst_split"],
                train_mean_abs_error=float(np.mean(np.abs(err_train[m]))),
                rows=int(m.sum()),
                **{f"{k}_mean_abs_error": v for k, v in per.items()},
            )
        fit_doc = dict(
            params=params,
            provenance=F.provenance(rows, pairs) | dict(quick=args.quick),
            cv=cv_section,
        )
        header = (
            "# Fitted efficiencies of the serving model (perfmodel.serving), written by\n"
            "# benchmarks/mlperf_inference.py --write-fit. [params]: global efficiencies and\n"
            "# the software factors (vLLM-family engines vs TensorRT-LLM = 1, and the yearly\n"
            "# software gain over MLPerf rounds), fitted to tokens/s and to the published\n"
            "# v5.1 logs' mean TPOT at their decode batch; [provenance]: date, data files\n"
            "# and their sha256, rows and pairs used; [cv.<scenario>]: cross-validated\n"
            "# mean |error| of system tokens/s, worst split (`kind`) and each split. Every\n"
            "# serving figure is an estimate of this model; its error band is the [cv]\n"
            "# value of its scenario.\n"
        )
        FIT_FILE.write_text(header + tomli_w.dumps(fit_doc))
        print(f"wrote {FIT_FILE}")
    return 0 if ok_all else 1


if __name__ == "__main__":
    raise SystemExit(main())
