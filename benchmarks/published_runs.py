"""The training-step model against published training runs.

    python benchmarks/published_runs.py [--quick]

For each run in ``perfmodel.training.PUBLISHED_RUNS`` (the ``calibration`` tables of
../shared/reference/hardware.toml) prints the published per-GPU throughput (TFLOP/s in
the publication's own FLOP convention), the prediction with the published layout, the
prediction with the model's own best layout (searched over the features the run's
software had), and the errors. One set of efficiency assumptions
(``perfmodel.training.default_efficiency``) for every row; no per-case tuning.
``--quick`` skips the best-layout searches. Writes benchmarks/results/published_runs.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import perfmodel  # noqa: F401  (x64)
from perfmodel import training as tr
from perfmodel.hardware import load_catalog


def _fmt_layout(d: dict) -> str:
    s = f"TP{d['tp']} PP{d['pp']} DP{d['dp']}"
    if d["cp"] > 1:
        s += f" CP{d['cp']}"
    s += f" mb{d['mb']}"
    if d["vpp"] > 1:
        s += f" v{d['vpp']}"
    if d["sp"]:
        s += " SP"
    if d["recompute"] != "none":
        s += f" rc={d['recompute'][:3]}"
    return s + f" Z{d['zero']}"


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="published layouts only (no search)")
    args = ap.parse_args(argv)
    cat = load_catalog()
    rows = []
    t0 = time.perf_counter()
    for case in tr.PUBLISHED_RUNS:
        r = tr.published_run_prediction(case, catalog=cat, search=not args.quick)
        r["assumed"] = case["assumed"]
        r["source"] = case["source"]
        r["published_layout"] = tr.make_layout(**case["layout"]).to_dict()
        rows.append(r)
    elapsed = time.perf_counter() - t0
    hdr = (
        f"{'run':20s} {'GPUs':>6s} {'published':>9s} {'pred(pub)':>9s} {'err':>7s} "
        f"{'fits':>4s} {'pred(best)':>10s} {'err':>7s}  best layout"
    )
    print("TFLOP/s per GPU in each publication's FLOP convention; one efficiency set for all")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        best = (
            f"{r['best_tflops']:10.1f} {r['best_error_pct']:+6.1f}%  {_fmt_layout(r['best_layout'])}"
            if "best_tflops" in r
            else f"{'-':>10s} {'-':>7s}"
        )
        print(
            f"{r['key']:20s} {r['n']:6d} {r['published_tflops']:9.1f} {r['predicted_tflops']:9.1f} "
            f"{r['error_pct']:+6.1f}% {'yes' if r['fits'] else 'NO':>4s} {best}"
        )
    worst = max(abs(r["error_pct"]) for r in rows)
    print(
        f"max |error| with published layouts: {worst:.1f}% "
        f"({sum(abs(r['error_pct']) <= 10 for r in rows)}/{len(rows)} within 10%)"
    )
    if not args.quick:
        wb = max(abs(r["best_error_pct"]) for r in rows)
        print(
            f"max |error| with the model's best layouts: {wb:.1f}% "
            f"({sum(abs(r['best_error_pct']) <= 10 for r in rows)}/{len(rows)} within 10%)"
        )
    print("published layouts (assumptions where the source gives none):")
    for r in rows:
        print(f"  {r['key']:20s} {_fmt_layout(r['published_layout']):40s} {r['assumed']}")
    print(f"({elapsed:.1f} s)")
    out = Path(__file__).parent / "results" / "published_runs.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(quick=args.quick, rows=rows), indent=2))
    print(f"wrote {out}")
    return rows


if __name__ == "__main__":
    main()
