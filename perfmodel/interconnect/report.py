"""Plain-text report of a :class:`~perfmodel.interconnect.topology.Topology`: its links
with their sources and a table of collective times (used by ``perfmodel net``)."""

from __future__ import annotations

from collections.abc import Sequence

from perfmodel.interconnect.collectives import best_algorithm, collective_time_s
from perfmodel.interconnect.topology import Topology


def _fmt_bw(x: float) -> str:
    return f"{x / 1e12:.2f} TB/s" if x >= 1e12 else f"{x / 1e9:.1f} GB/s"


def fmt_time(x: float, ms_digits: int = 2) -> str:
    """A duration in seconds as ``0``, ``us`` (under 1 ms), ``ms`` (``ms_digits``
    decimals, under 1 s) or ``s``."""
    if x == 0:
        return "0"
    if x < 1e-3:
        return f"{x * 1e6:.1f} us"
    return f"{x * 1e3:.{ms_digits}f} ms" if x < 1 else f"{x:.3f} s"


def describe(
    topology: Topology,
    sizes_bytes: Sequence[float] = (1e6, 1e9),
    groups: Sequence[int] | None = None,
    kinds: Sequence[str] = ("all_reduce", "all_to_all"),
    provenance: bool = True,
) -> str:
    """A plain-text report: the links with their sources, then a table of collective
    times (and the algorithm ``auto`` picks) for a few message sizes and group sizes."""
    t = topology
    net = t.network()
    dom = t.domain_size
    if groups is None:
        groups = sorted({min(dom, 8), dom, 8 * dom, 64 * dom} - {0})
    up_unit = "per edge" if t.mesh else "per chip"
    lines = [
        f"{t.chip} on {t.system}: scale-up domain of {dom} chips "
        f"({'2-D mesh' if t.mesh else 'switched'}), scale-out oversubscription "
        f"{t.oversubscription:g}:1"
        + (", in-switch reduction (NVLS) on" if t.switch_reduction else ""),
        f"  scale-up  {t.scaleup_link:16s} {_fmt_bw(t.scaleup_nominal_bytes_per_s)} {up_unit}/dir"
        f" x {t.scaleup_efficiency:.2f} = {_fmt_bw(t.scaleup_nominal_bytes_per_s * t.scaleup_efficiency)},"
        f" latency {fmt_time(t.scaleup_latency_s)}",
        f"  scale-out {t.scaleout_link:16s} {_fmt_bw(t.scaleout_nominal_bytes_per_s)} per chip/dir"
        f" x {t.scaleout_efficiency:.2f} = {_fmt_bw(t.scaleout_nominal_bytes_per_s * t.scaleout_efficiency)},"
        f" latency {fmt_time(t.scaleout_latency_s)}",
    ]
    if provenance:
        lines.append("  sources:")
        lines += [f"    {k}: {v}" for k, v in t.provenance.items()]
    if not kinds or not sizes_bytes:
        return "\n".join(lines)
    head = f"  {'collective':14s} {'bytes':>8s} " + " ".join(
        f"{'g=' + str(g):>20s}" for g in groups
    )
    lines += ["", head]
    for kind in kinds:
        for n in sizes_bytes:
            cells = []
            for g in groups:
                tt = float(collective_time_s(kind, n, g, net))
                alg = best_algorithm(kind, n, g, net)
                cells.append(f"{fmt_time(tt) + ' ' + alg[:4]:>20s}")
            lines.append(f"  {kind:14s} {n:8.0e} " + " ".join(cells))
    return "\n".join(lines)
