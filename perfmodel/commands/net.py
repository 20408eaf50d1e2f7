"""``perfmodel net CHIP``: the network a chip's system gives it, and collective times.

Prints the scale-up and scale-out links (nominal rate, efficiency, latency and where
each number comes from), then the time of each collective for the given message sizes
and group sizes, with every algorithm and the one ``auto`` picks, and the NCCL-style
bus bandwidth. ``--json`` prints the same as JSON.
"""

from __future__ import annotations

import argparse
import json
import math

from perfmodel.choices import COLLECTIVE_KINDS
from perfmodel.commands._args import (
    add_plot_catalog_json_args,
    check_finite,
    number,
    user_catalog,
)
from perfmodel.commands._pick import add_pick_arg
from perfmodel.commands._plot import chart_path

# the model (JAX, NumPy) loads when the command runs, not for --help


def _floats(text: str) -> list[float]:
    try:
        vals = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, got {text!r}"
        ) from None
    if not vals:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}")
    return vals


#: Largest message (bytes per member) and group (members) ``net`` accepts.
MAX_BYTES = 1e18
MAX_GROUP = 2**24


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "net",
        help="network of a chip's system and collective times (alpha-beta model)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("chip", help="chip key or alias (h100, gb200, mi300x, dojo_tile, ...)")
    p.add_argument("--system", help="catalog system (default: the chip's default system)")
    p.add_argument(
        "--oversubscription",
        type=float,
        default=1.0,
        help="scale-out fat-tree taper, >= 1 (default 1 = non-blocking)",
    )
    add_pick_arg(p)
    p.add_argument(
        "--nominal",
        action="store_true",
        help="use nominal link rates (efficiency 1.0) instead of achievable ones",
    )
    p.add_argument(
        "--nvls",
        action="store_true",
        help="in-switch all-reduce (NVLink SHARP / NCCL NVLS) on NVLink4/5 systems",
    )
    p.add_argument(
        "--kind",
        action="append",
        choices=COLLECTIVE_KINDS,
        help="collective (repeatable; default all_reduce and all_to_all)",
    )
    p.add_argument(
        "--bytes",
        type=_floats,
        default=[1e6, 1e9],
        help="message sizes per member in bytes, comma-separated (default 1e6,1e9)",
    )
    p.add_argument(
        "--group",
        type=_floats,
        default=None,
        help="group sizes, comma-separated (default: 8, the domain, 8 and 64 domains)",
    )
    p.add_argument(
        "--members-per-domain",
        type=float,
        default=None,
        help="group members per scale-up domain (default min(group, domain))",
    )
    add_plot_catalog_json_args(
        p,
        "time of each collective and group size "
        "against the message size (1 kB..100 GB and the --bytes given)",
    )
    p.set_defaults(func=run)


def _fmt_t(x: float) -> str:
    from perfmodel.interconnect.report import fmt_time

    return fmt_time(x, ms_digits=3)


def _check(args) -> None:
    number(args.oversubscription, "--oversubscription", 1.0, 1e6)
    for x in args.bytes:
        number(x, "--bytes", 0.0, MAX_BYTES)
    for g in args.group or []:
        number(g, "--group", 1, MAX_GROUP, integer=True)
    if args.members_per_domain is not None:
        number(args.members_per_domain, "--members-per-domain", 1, MAX_GROUP, integer=True)


def _plot(path, topo, net, kinds, groups, sizes, m) -> str:
    """The ``--plot`` chart: each collective's ``auto`` time over message sizes."""
    import numpy as np

    from perfmodel import interconnect as ic
    from perfmodel.plots import collectives_chart  # here: matplotlib only for a chart

    pos = [x for x in sizes if x > 0]
    x = np.geomspace(min([1e3, *pos]), max([1e11, *pos]), 49)
    series = {
        f"{kind}, {g:,.0f} members": np.asarray(ic.collective_time_s(kind, x, g, net, m))
        for kind in kinds
        for g in groups
    }
    check_finite([float(t) for ts in series.values() for t in ts], "the --plot message sizes")
    title = f"Collectives on {topo.chip} in {topo.system} (domain {topo.domain_size:,})"
    note = "alpha-beta model (perfmodel.interconnect) with the catalog's link figures; estimate"
    return str(collectives_chart(path, x, series, title=title, note=note))


def run(args) -> int:
    from perfmodel import interconnect as ic

    _check(args)
    plot = (
        chart_path(args.plot, "net", args.chip, *([args.system] if args.system else []))
        if args.plot is not None
        else None
    )
    cat = user_catalog(args.catalog, args.allow_override)
    eff = 1.0 if args.nominal else None
    topo = ic.topology_for(
        args.chip,
        cat,
        system=args.system,
        oversubscription=args.oversubscription,
        pick=args.pick,
        scaleup_efficiency=eff,
        scaleout_efficiency=eff,
        switch_reduction=args.nvls,
    )
    net = topo.network()
    dom = topo.domain_size
    groups = args.group or sorted({min(dom, 8), dom, 8 * dom, 64 * dom})
    kinds = args.kind or ["all_reduce", "all_to_all"]
    rows = []
    for kind in kinds:
        for n in args.bytes:
            for g in groups:
                m = args.members_per_domain
                times = {
                    k: float(v)
                    for k, v in ic.algorithm_times_s(kind, n, g, net, m).items()
                    if math.isfinite(float(v))
                }
                auto = float(ic.collective_time_s(kind, n, g, net, m))
                rows.append(
                    dict(
                        kind=kind,
                        nbytes=n,
                        group_size=g,
                        members_per_domain=m,
                        time_s=auto,
                        algorithm=ic.best_algorithm(kind, n, g, net, m),
                        busbw_bytes_per_s=float(ic.bus_bandwidth_bytes_per_s(kind, n, g, auto))
                        if auto > 0
                        else None,
                        algorithms_s=times,
                    )
                )
    inputs = f"--bytes {args.bytes} --group {groups}"
    check_finite(rows, inputs)
    plotted = (
        _plot(plot, topo, net, kinds, groups, args.bytes, args.members_per_domain)
        if plot is not None
        else None
    )
    if args.json:
        print(
            json.dumps(
                dict(
                    chip=topo.chip,
                    system=topo.system,
                    domain_size=dom,
                    mesh=topo.mesh,
                    oversubscription=topo.oversubscription,
                    scaleup=dict(
                        link=topo.scaleup_link,
                        nominal_bytes_per_s=topo.scaleup_nominal_bytes_per_s,
                        efficiency=topo.scaleup_efficiency,
                        latency_s=topo.scaleup_latency_s,
                        per="edge" if topo.mesh else "chip",
                    ),
                    scaleout=dict(
                        link=topo.scaleout_link,
                        nominal_bytes_per_s=topo.scaleout_nominal_bytes_per_s,
                        efficiency=topo.scaleout_efficiency,
                        latency_s=topo.scaleout_latency_s,
                    ),
                    provenance=dict(topo.provenance),
                    results=rows,
                    **({"plot": plotted} if plotted else {}),
                ),
                indent=2,
            )
        )
        return 0
    print(ic.describe(topo, sizes_bytes=(), groups=groups, kinds=()).rstrip())
    algs = sorted(
        {a for r in rows for a in r["algorithms_s"]}, key=lambda a: ic.ALGORITHMS.index(a)
    )
    print()
    print(
        f"  {'collective':14s} {'bytes':>7s} {'group':>6s} {'time':>11s} {'auto picks':>12s} "
        f"{'busbw':>10s}  " + " ".join(f"{a:>11s}" for a in algs)
    )
    for r in rows:
        bus = r["busbw_bytes_per_s"]
        print(
            f"  {r['kind']:14s} {r['nbytes']:7.0e} {r['group_size']:6.0f} "
            f"{_fmt_t(r['time_s']):>11s} {r['algorithm']:>12s} "
            f"{(f'{bus / 1e9:.1f} GB/s' if bus else '-'):>10s}  "
            + " ".join(
                f"{_fmt_t(r['algorithms_s'][a]) if a in r['algorithms_s'] else '-':>11s}"
                for a in algs
            )
        )
    if plotted:
        print(f"\nplot: {plotted}")
    return 0
