"""``perfmodel sweep``: sample uncertain inputs, evaluate in sharded jit+vmap chunks,
stream resumable Parquet results, print P10/P50/P90 and how often each decision wins."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from perfmodel.choices import builtin_spec_paths
from perfmodel.commands._args import (
    add_catalog_args,
    check_finite,
    check_readable,
    plot_file,
    user_catalog,
)
from perfmodel.errors import InputError

# the sweep engine (JAX, pyarrow) loads when the command runs, not for --help


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="batch what-if runs over uncertain inputs (resumable, sharded)",
        description="Sample the uncertain inputs of a model (the fleet planner by default; "
        'chip specs with model = "chips"), evaluate them in jit+vmap chunks sharded '
        "across local devices, and stream the results to PATH/chunk-*.parquet. "
        "Rerunning the same command resumes an interrupted sweep.",
    )
    builtin = ", ".join(builtin_spec_paths()) or "none"
    p.add_argument(
        "spec",
        nargs="?",
        default=None,
        help="sweep spec TOML, or a built-in spec name (" + builtin + "); default: the "
        "built-in fleet scenario's own uncertain inputs (price ranges, catalog "
        "low/best/high chip figures)",
    )
    p.add_argument(
        "--samples", type=int, default=None, help="number of samples (overrides the spec)"
    )
    p.add_argument("--seed", type=int, default=None, help="random seed (overrides the spec)")
    p.add_argument("--out", required=True, metavar="PATH", help="output directory")
    p.add_argument(
        "--chunk-size",
        type=int,
        default=None,
        metavar="K",
        help="samples per chunk / Parquet file (overrides the spec)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="delete the sweep already in PATH and start over (default: resume it if it "
        "matches, refuse if it differs)",
    )
    add_catalog_args(p)
    p.add_argument("--max-chunks", type=int, default=None, help=argparse.SUPPRESS)
    d = p.add_argument_group(
        "several processes (jax.distributed)",
        "Start the same command once per host (or per GPU) with a shared --out: each "
        "process computes its share of the chunks on its local devices; the rows are "
        "those of a one-process run.",
    )
    d.add_argument(
        "--distributed",
        action="store_true",
        help="join a multi-process run with jax.distributed.initialize(): with no further "
        "flag JAX detects the cluster (SLURM, Open MPI, TPU pods)",
    )
    d.add_argument(
        "--coordinator",
        metavar="HOST:PORT",
        default=None,
        help="address of process 0's coordination service (with --distributed)",
    )
    d.add_argument(
        "--num-processes", type=int, default=None, metavar="N", help="number of processes"
    )
    d.add_argument(
        "--process-id", type=int, default=None, metavar="I", help="this process, in [0, N)"
    )
    p.add_argument(
        "--json", action="store_true", help="print the summary as JSON (no progress bar)"
    )
    p.add_argument(
        "--plot",
        metavar="FILE.png",
        default=None,
        help="write histograms (and a fan chart over periods) to FILE.png",
    )
    p.set_defaults(func=run)


def _fmt(x: float | None) -> str:
    if x is None or not math.isfinite(x):  # no statistic (no finite sample)
        return "-"
    a = abs(x)
    if a != 0 and (a >= 1e6 or a < 1e-3):
        return f"{x:.3e}"
    return f"{x:,.4g}" if a < 1e3 else f"{x:,.0f}"


def format_summary(s: dict, run=None) -> str:
    """Human-readable summary table."""
    lines = []
    head = f"sweep {s['path']}: model {s['model']}, {s['rows']:,} of {s['samples']:,} samples, seed {s['seed']}"
    if run is not None:
        rate = run.rows_per_s
        lines.append(head)
        lines.append(
            f"  computed {run.chunks_computed} chunk(s), resumed {run.chunks_skipped}; "
            f"{run.devices} device(s); compile {run.compile_s:.1f} s; "
            + (f"{rate:,.3g} samples/s" if rate is not None else "nothing to compute")
        )
    else:
        lines.append(head)

    def table(title, rows):
        if not rows:
            return
        w = max(len(k) for k in rows)
        lines.append("")
        lines.append(f"{title:<{w}}  {'P10':>12} {'P50':>12} {'P90':>12} {'mean':>12}")
        for k, v in rows.items():
            lines.append(
                f"{k:<{w}}  {_fmt(v['p10']):>12} {_fmt(v['p50']):>12} "
                f"{_fmt(v['p90']):>12} {_fmt(v['mean']):>12}"
                + (f"  ({v['nonfinite']} non-finite)" if v.get("nonfinite") else "")
            )

    table("metric", s["metrics"])
    if s["decisions"]:
        w = max(len(k) for k in s["decisions"])
        lines.append("")
        lines.append(f"{'decision':<{w}}  {'chosen in':>10} {'mean amount':>12}")
        for k, v in sorted(s["decisions"].items(), key=lambda kv: -kv[1]["share"]):
            share = "-" if v["share"] is None else f"{v['share']:.1%}"
            lines.append(f"{k:<{w}}  {share:>10} {_fmt(v['mean']):>12}")
    if s["portfolios"]:
        lines.append("")
        lines.append("most frequent optimal choices:")
        for pf in s["portfolios"]:
            lines.append(f"  {pf['share']:6.1%}  {', '.join(pf['chosen']) or '(nothing chosen)'}")
    varied = {k: v for k, v in s["inputs"].items() if v["p10"] != v["p90"]}
    if varied:
        lines.append("")
        lines.append(
            f"{len(varied)} uncertain input(s) varied; {len(s['outputs'])} further output "
            "column(s) in the Parquet files (see --json)"
        )
    return "\n".join(lines)


def _cluster(args: argparse.Namespace):
    """The :class:`~perfmodel.sweep.Cluster` of ``--distributed`` (checked), or ``None``."""
    # the sweep engine (JAX, pyarrow) loads when the command runs, not for --help
    from perfmodel.sweep import distributed

    flags = (args.coordinator, args.num_processes, args.process_id)
    if not args.distributed:
        if any(f is not None for f in flags):
            raise InputError("--coordinator, --num-processes and --process-id need --distributed")
        return None
    return distributed.check_cluster(distributed.Cluster(*flags))


def run(args: argparse.Namespace) -> int:
    # the sweep engine (JAX, pyarrow) loads when the command runs, not for --help
    from perfmodel.sweep import distributed, engine

    if args.spec is not None and Path(args.spec).expanduser().exists():
        check_readable(args.spec, "sweep spec")
    out = engine.check_out_dir(args.out)
    plot = plot_file(args.plot, "sweep.png") if args.plot else None
    cluster = _cluster(args)
    if cluster is not None:  # before the spec: building a model runs JAX code
        distributed.initialize(cluster)
    # the user's chips (fleet offers, or chips swept by the chips model) with the
    # built-in ones; a sweep resumes only with the same figures (the model's config)
    cat = user_catalog(args.catalog, args.allow_override) if args.catalog else None
    spec = engine.load_spec(args.spec, catalog=cat)
    try:
        res = engine.run_sweep(
            spec,
            args.out,
            samples=args.samples,
            seed=args.seed,
            chunk_size=args.chunk_size,
            overwrite=args.overwrite,
            progress=False if args.json else None,
            max_chunks=args.max_chunks,
            distributed=cluster if cluster is not None else False,
        )
    except KeyboardInterrupt:
        print(
            f"perfmodel sweep: interrupted; finished chunks are kept in {args.out}; "
            "rerun the same command to resume",
            file=sys.stderr,
        )
        return 130
    if res.chunks_recomputed_bad:
        names = ", ".join(engine.chunk_path(out, c).name for c in res.chunks_recomputed_bad)
        print(
            f"perfmodel sweep: {len(res.chunks_recomputed_bad)} chunk(s) failed their "
            f"checksum (corrupted or truncated) and were recomputed: {names}",
            file=sys.stderr,
        )
    if not res.complete:
        msg = (
            f"perfmodel sweep: stopped after {res.chunks_computed} chunk(s); "
            f"rerun the same command to finish {args.out}"
        )
        if args.json:
            print(json.dumps({"complete": False, "run": res.to_dict()}, allow_nan=False))
        else:
            print(msg)
        return 0
    if res.process_index != 0:  # process 0 prints the summary (and writes the plot)
        if args.json:
            print(json.dumps({"complete": True, "run": res.to_dict()}, allow_nan=False))
        else:
            print(
                f"perfmodel sweep: process {res.process_index} of {res.process_count}: "
                f"computed {res.chunks_computed} chunk(s), resumed {res.chunks_skipped}; "
                "process 0 prints the summary"
            )
        return 0
    s = engine.summarize(out)
    if plot is not None:
        engine.plot_summary(out, plot)
    s["run"] = res.to_dict()
    if plot is not None:
        s["plot"] = str(plot)
    check_finite(s, f"the sweep in {out}")
    if args.json:
        print(json.dumps(s, indent=1, default=float, allow_nan=False))
    else:
        print(format_summary(s, res))
        if plot is not None:
            print(f"\nplot written to {plot}")
    return 0
