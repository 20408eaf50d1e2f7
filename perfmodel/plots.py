"""Plots (matplotlib figures, no pyplot state): the roofline chart, the step-time and memory
breakdown of a training job, H100-equivalents against the chip count, collective
times against the message size, a fleet plan's ramp (H100e by chip with the target,
spend against budget per year, power per site) and its capex vs H100e-quarters Pareto
chart. A chip has one colour in every chart (:func:`chip_color`).

Only :mod:`matplotlib` is needed (:class:`~matplotlib.figure.Figure` objects: no pyplot
state, no backend switch, so importing this module in a notebook changes nothing); every figure is written to the file the caller names
(``--plot PATH``), never shown and never written anywhere else. Axes carry their unit;
counts have thousands separators. The functions take plain numbers (SI units): the
commands compute them.
"""

from __future__ import annotations

import os
import tempfile
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter, FuncFormatter
from numpy.typing import ArrayLike

from perfmodel.hardware import PRECISION_INDEX, PRECISIONS, ChipRecord


def roofline_chart(
    path: str | Path,
    record: ChipRecord,
    chip,
    point: Mapping | None = None,
    *,
    precision: str = "bf16",
    compute_eff: float = 1.0,
    memory_eff: tuple[float, float] = (1.0, 1.0),
    title: str | None = None,
) -> Path:
    """Draw a log-log roofline chart for one chip and save it to ``path`` (PNG, SVG, PDF).

    The chart shows attainable rate ``min(peak, intensity * bandwidth)`` (FLOP/s) against
    arithmetic intensity (FLOP/byte):

    * one horizontal compute ceiling per distinct dense peak (fp8, bf16, fp32, int8 ...),
      the op's ``precision`` drawn solid, the others dashed;
    * one memory roof per memory level the chip has (SRAM and DRAM), each a line of
      slope 1 ending at its ridge point ``peak / bandwidth``;
    * the op as a point at ``(intensity, attainable FLOP/s)`` when ``point`` is given
      (keys ``intensity_flops_per_byte``, ``attainable_flops_per_s``, ``label``).

    Ceilings and roofs are scaled by ``compute_eff`` and ``memory_eff`` (SRAM, DRAM) so
    the chart matches the efficiencies used for the point. The catalog source of the
    peak rate is written under the chart.

    Args:
      path: output file.
      record: the chip's catalog record (names, sources).
      chip: the chip's :class:`perfmodel.hardware.Chip` pytree.
      point: the op to mark, or ``None``.
      precision: precision of the op (selects the solid ceiling).
    Returns:
      the path written.
    """
    peaks = np.asarray(chip.peak_flops_per_s, dtype=float)
    bw = np.asarray(chip.mem_bytes_per_s, dtype=float) * np.asarray(memory_eff, dtype=float)
    cap = np.asarray(chip.mem_bytes, dtype=float)
    fallbacks = record.fallbacks()
    own = [p for p in PRECISIONS if p not in fallbacks]
    main_peak = peaks[PRECISION_INDEX[precision]] * compute_eff

    lo_i, hi_i = 1e-2, 1e5
    if point is not None:
        lo_i = min(lo_i, float(point["intensity_flops_per_byte"]) / 10)
        hi_i = max(hi_i, float(point["intensity_flops_per_byte"]) * 10)
    x = np.logspace(np.log10(lo_i), np.log10(hi_i), 400)

    fig = Figure(figsize=(8, 5.5), dpi=110)
    ax = fig.subplots()
    groups: dict[float, list[str]] = {}
    for p in own:
        groups.setdefault(float(peaks[PRECISION_INDEX[p]] * compute_eff), []).append(p)
    for rate, names in groups.items():
        main = precision in names
        color = "C3" if main else "0.45"
        ax.axhline(rate, ls="-" if main else "--", lw=1.6 if main else 0.9, color=color)
        unit = "OP/s" if names == ["int8"] else "FLOP/s"
        ax.annotate(
            f"{'/'.join(names)} peak {rate / 1e12:,.4g} T{unit}",
            (x[0], rate),
            ha="left",
            va="bottom",
            fontsize=8,
            color=color,
        )
    levels = [("SRAM", 0), ("DRAM", 1)]
    for (label, i), color in zip(levels, ("C2", "C0"), strict=True):
        if label == "SRAM" and cap[0] <= 0:
            continue
        roof = np.minimum(main_peak, x * bw[i])
        ax.plot(
            x,
            roof,
            color=color,
            lw=2,
            label=f"{label} roof {bw[i] / 1e12:,.3g} TB/s "
            f"({cap[i] / 1e9:,.3g} GB), ridge {main_peak / bw[i]:,.3g} FLOP/byte",
        )
    if point is not None:
        ax.plot(
            [point["intensity_flops_per_byte"]],
            [point["attainable_flops_per_s"]],
            "o",
            ms=9,
            color="k",
            zorder=5,
            label=str(point.get("label", "op")),
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP/byte)")
    ax.set_ylabel("attainable rate (FLOP/s)")
    eff_txt = (
        ""
        if compute_eff == 1.0 and tuple(memory_eff) == (1.0, 1.0)
        else f"\nat {compute_eff:.0%} of peak, {memory_eff[0]:.0%} of SRAM and "
        f"{memory_eff[1]:.0%} of DRAM bandwidth"
    )
    ax.set_title(
        title or f"Roofline: {record.display_name} ({record.key}), {precision}{eff_txt}",
        fontsize=11,
    )
    ymin = min(main_peak, float(np.min(x * bw[1]))) / 2
    if point is not None:
        ymin = min(ymin, float(point["attainable_flops_per_s"]) / 3)
    ax.set_ylim(ymin, float(peaks.max() * compute_eff) * 3)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(loc="lower right", fontsize=8)
    fig_src = record.figure(f"{'int8_ops' if precision == 'int8' else precision + '_flops'}_per_s")
    src = fig_src.source if fig_src is not None else "fallback precision, see `perfmodel chip`"
    bw_src = record.figure("dram_bytes_per_s")
    note = f"peak: {src[:110]}" + (f"\nDRAM bandwidth: {bw_src.source[:100]}" if bw_src else "")
    fig.text(0.01, 0.005, note, fontsize=6, color="0.3", va="bottom")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    out = Path(path)
    fig.savefig(out)
    return out


#: Environment variable naming the directory the notebooks write their files to.
OUT_DIR_ENV = "PERFMODEL_OUT_DIR"


def output_dir(name: str = "", env: str = OUT_DIR_ENV) -> Path:
    """The directory a notebook writes its charts and files to, created if needed:
    ``$PERFMODEL_OUT_DIR`` (the user's choice), else ``<tmp>/perfmodel-out``; with
    ``name``, that sub-directory of it. Never the directory of the sources.

    Example::

        >>> os.environ["PERFMODEL_DOCTEST_OUT"] = tempfile.mkdtemp()
        >>> out = output_dir("nb", env="PERFMODEL_DOCTEST_OUT")
        >>> out.parent == Path(os.environ["PERFMODEL_DOCTEST_OUT"]) and out.is_dir()
        True
    """
    root = os.environ.get(env, "").strip()
    base = Path(root).expanduser() if root else Path(tempfile.gettempdir()) / "perfmodel-out"
    out = base / name if name else base
    out.mkdir(parents=True, exist_ok=True)
    return out


def tick_label(v: float, _pos: Any = None) -> str:
    """An axis tick with thousands separators: ``1,000``, ``262,144``, ``2.5``, ``0.01``.

    Example::

        >>> tick_label(262144.0), tick_label(2.5), tick_label(0.01), tick_label(0.0)
        ('262,144', '2.5', '0.01', '0')
    """
    a = abs(v)
    if a == 0:
        return "0"
    if a >= 1000:
        return f"{v:,.0f}"
    return f"{v:.4g}" if a >= 1e-3 else f"{v:.2g}"


def _count_axes(ax, x: bool = True, y: bool = True) -> None:
    fmt = FuncFormatter(tick_label)
    for on, axis in ((x, ax.xaxis), (y, ax.yaxis)):
        if on:
            axis.set_major_formatter(fmt)
            axis.set_minor_formatter(FuncFormatter(lambda v, p: ""))


def _figure(figsize: tuple[float, float] = (8, 5.2)):
    """A figure with one axes (the H100e, collectives and Pareto charts)."""
    fig = Figure(figsize=figsize, dpi=110)
    return fig, fig.subplots()


def _labels(ax, xlabel: str, ylabel: str) -> None:
    """Axis labels, a light grid on both tick levels and the legend at the upper left."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8, loc="upper left")


def _save(fig, path: str | Path, note: str = "") -> Path:
    if note:
        fig.text(0.01, 0.005, note, fontsize=6.5, color="0.3", va="bottom")
    fig.tight_layout(rect=(0, 0.05 if note else 0, 1, 1))
    out = Path(path)
    fig.savefig(out)
    return out


def train_chart(path: str | Path, result: Mapping[str, Any], note: str = "") -> Path:
    """The step-time breakdown (s per term, with its share) and the memory per device
    (weights, gradients, optimizer, activations against the usable capacity, GB) of one
    training job, from ``perfmodel train --json``'s dict (``breakdown`` in s, ``memory``
    in byte). Returns the path written."""
    br = {k: float(v) for k, v in result["breakdown"].items() if float(v) > 0 or k == "compute_s"}
    total = float(result["step_time_s"])
    fig = Figure(figsize=(10, 4.6), dpi=110)
    a1, a2 = fig.subplots(1, 2, width_ratios=(3, 2))
    labels = [k.removesuffix("_s").replace("_", " ") for k in br]
    vals = np.asarray(list(br.values()))
    scale, unit = (1e3, "ms") if total < 1 else (1.0, "s")
    a1.barh(labels[::-1], vals[::-1] * scale, color="C0")
    for i, v in enumerate(vals[::-1]):
        a1.annotate(
            f" {v * scale:,.4g} {unit} ({100 * v / total:.1f}%)",
            (v * scale, i),
            va="center",
            fontsize=8,
        )
    a1.set_xlabel(f"time per step ({unit}); step = {total * scale:,.4g} {unit}")
    a1.set_xlim(0, max(vals.max(), 1e-30) * scale * 1.45)
    _count_axes(a1, y=False)
    a1.set_title("step-time breakdown", fontsize=10)
    mem = result["memory"]
    parts = [
        (k.removesuffix("_bytes"), float(mem[k]) / 1e9)
        for k in ("weights_bytes", "grads_bytes", "optimizer_bytes", "activations_bytes")
        if k in mem
    ]
    bottom = 0.0
    for i, (k, v) in enumerate(parts):
        a2.bar(["per device"], [v], bottom=bottom, color=f"C{i + 1}", label=f"{k} {v:,.1f} GB")
        bottom += v
    cap = float(result["memory_capacity_bytes"]) / 1e9
    a2.axhline(cap, color="k", ls="--", lw=1, label=f"usable {cap:,.1f} GB")
    a2.set_ylabel("memory per device (GB)")
    a2.set_ylim(0, max(bottom, cap) * 1.25)
    _count_axes(a2, x=False)
    a2.legend(fontsize=8, loc="upper right")
    a2.set_title("memory per device", fontsize=10)
    lay = " ".join(
        f"{k}={('on' if v else 'off') if isinstance(v, bool) else v}"
        for k, v in result.get("layout", {}).items()
    )
    fig.suptitle(
        f"{result['workload']} on {int(result['n_chips']):,} x {result['chip']} "
        f"({result['precision']}): {float(result['mfu']):.1%} MFU\n{lay}",
        fontsize=10,
    )
    return _save(fig, path, note)


def equiv_chart(
    path: str | Path,
    counts: ArrayLike,
    h100e: Mapping[str, ArrayLike],
    *,
    chip: str,
    what: str,
    point: tuple[float, float] | None = None,
    spec_ratio: float | None = None,
    note: str = "",
) -> Path:
    """H100-equivalents against the number of chips of ``chip`` (log-log): the ``best``
    curve with the ``low``..``high`` band (``h100e[pick]``, one value per count), the
    spec-sheet line ``n * spec_ratio``, the 1:1 line (an H100 is one H100e) and the
    answer as a point ``(n_chips, h100e)``; the curve in the chip's colour
    (:func:`chip_color` of the catalog key ``chip``). Returns the path written."""
    x = np.asarray(counts, dtype=float)
    fig, ax = _figure()
    color = chip_color(chip)
    if "low" in h100e and "high" in h100e:
        ax.fill_between(
            x, h100e["low"], h100e["high"], color=color, alpha=0.2, label="low..high range"
        )
    ax.plot(x, h100e["best"], color=color, lw=2, label=f"{what} (best)")
    if spec_ratio is not None:
        ax.plot(
            x, x * spec_ratio, "--", color="0.25", lw=1, label=f"spec sheet ({spec_ratio:.3g}x)"
        )
    ax.plot(x, x, ":", color="0.5", lw=1, label="1:1 (H100)")
    if point is not None:
        ax.plot([point[0]], [point[1]], "o", ms=9, color="k", zorder=5)
        ax.annotate(
            f"  {point[0]:,.4g} chips -> {point[1]:,.4g} H100e",
            point,
            fontsize=8,
            va="center",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    _count_axes(ax)
    _labels(ax, f"chips of {chip} (count)", "H100-equivalents (H100e, count)")
    ax.set_title(f"H100-equivalents of {chip}: {what}", fontsize=11)
    return _save(fig, path, note)


def collectives_chart(
    path: str | Path,
    sizes_bytes: ArrayLike,
    series: Mapping[str, ArrayLike],
    *,
    title: str,
    note: str = "",
) -> Path:
    """Collective times (s) against the message size per member (byte), log-log, one
    line per ``series`` label (e.g. ``"all_reduce, 64 chips"``). Returns the path."""
    x = np.asarray(sizes_bytes, dtype=float)
    fig, ax = _figure()
    for i, (label, t) in enumerate(series.items()):
        ax.plot(x, np.asarray(t, dtype=float), color=f"C{i % 10}", lw=1.6, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_major_formatter(EngFormatter(unit="B"))
    ax.yaxis.set_major_formatter(EngFormatter(unit="s"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, p: ""))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, p: ""))
    _labels(ax, "message size per member (byte)", "collective time (s)")
    ax.set_title(title, fontsize=11)
    return _save(fig, path, note)


#: One colour per catalog chip key, the same in every chart (plan ramps, Pareto charts,
#: H100e curves): a chip keeps its colour whichever offers or scenario it appears in.
CHIP_COLORS: dict[str, str] = {
    "a100_80gb": "#7f7f7f",
    "h100_sxm": "#1f77b4",
    "h200": "#17becf",
    "b200": "#2ca02c",
    "gb200": "#98df8a",
    "b300": "#bcbd22",
    "gb300": "#dbdb8d",
    "mi300x": "#d62728",
    "d1": "#ff9896",
    "dojo_tile": "#ff7f0e",
    "dojo_dip": "#ffbb78",
    "hw3": "#c5b0d5",
    "ai4": "#9467bd",
    "host_cpu": "#c7c7c7",
}
_OTHER_COLORS = ("#8c564b", "#e377c2", "#c49c94", "#f7b6d2", "#9edae5", "#393b79", "#637939")


def chip_color(key: str) -> str:
    """The colour of chip ``key`` in every chart: :data:`CHIP_COLORS` for catalog chips,
    else one picked by a checksum of the key (a user's chip keeps its colour across runs
    and charts).

    Example::

        >>> chip_color("h100_sxm"), chip_color("my_chip") == chip_color("my_chip")
        ('#1f77b4', True)
    """
    if key in CHIP_COLORS:
        return CHIP_COLORS[key]
    return _OTHER_COLORS[zlib.crc32(key.encode()) % len(_OTHER_COLORS)]


def _billions(v: float, _pos: Any = None) -> str:
    return tick_label(v / 1e9)


def plan_chart(
    path: str | Path,
    plan: Mapping[str, Any],
    offer_chip: Mapping[str, str],
    *,
    note: str = "",
) -> Path:
    """:func:`plan_figure` written to ``path`` with ``note`` under it; returns the path."""
    return _save(plan_figure(plan, offer_chip), path, note)


def plan_figure(plan: Mapping[str, Any], offer_chip: Mapping[str, str]) -> Figure:
    """The ramp chart of a fleet plan, from :func:`perfmodel.fleet.report.plan_dict`'s
    dict: H100e per quarter stacked by offer (coloured by chip, :func:`chip_color`; a
    second offer of the same chip hatched) with the min-cost target as a line; capex
    against the budget per year (billion USD); facility power used against available per
    site (MW). ``offer_chip`` maps each offer to its catalog chip key."""
    periods = list(plan["periods"])
    x = np.arange(len(periods))
    fig = Figure(figsize=(15, 4.8), dpi=110)
    a1, a2, a3 = fig.subplots(1, 3, width_ratios=(5, 2.2, 4))
    bottom = np.zeros(len(x))
    seen: dict[str, int] = {}
    for o in plan["offers"]:
        v = np.asarray(plan["h100e_by_offer"][o], dtype=float)
        if v.max() <= 0:
            continue
        chip = offer_chip.get(o, o)
        n = seen[chip] = seen.get(chip, -1) + 1
        a1.bar(
            x,
            v,
            bottom=bottom,
            color=chip_color(chip),
            hatch=("", "//", "..", "xx")[n % 4],
            edgecolor="white" if n == 0 else "0.25",
            lw=0.5,
            label=o if o == chip else f"{o} ({chip})",
        )
        bottom += v
    if plan.get("target_h100e") is not None:
        tgt, tq = float(plan["target_h100e"]), periods.index(plan["target_period"])
        a1.axhline(
            tgt, color="k", ls="--", lw=1.2, label=f"target {tgt:,.0f} H100e by {periods[tq]}"
        )
        a1.plot([tq], [tgt], "v", color="k", ms=8)
    top = max(float(bottom.max(initial=0)), float(plan.get("target_h100e") or 0), 1.0)
    a1.set_ylim(0, 1.35 * top)  # room for the legend above the bars
    a1.set_xticks(x, periods, rotation=45)
    a1.set_xlabel("quarter")
    a1.set_ylabel("H100-equivalents (H100e, count)")
    a1.set_title(f"{plan['scenario']}: H100e by chip ({plan['objective']})", fontsize=10)
    a1.legend(fontsize=7, loc="upper left")
    _count_axes(a1, x=False)

    years = [sp["year"] for sp in plan["spend"]]
    xy = np.arange(len(years))
    spent = np.array([float(sp["capex_usd"]) for sp in plan["spend"]])
    budget = np.array([float(sp["budget_usd"]) for sp in plan["spend"]])
    a2.bar(xy - 0.2, budget, 0.4, color="0.8", edgecolor="0.4", label="budget")
    a2.bar(xy + 0.2, spent, 0.4, color="#1f77b4", label="capex spent")
    for i in range(len(years)):
        share = f"{spent[i] / budget[i]:.0%}" if budget[i] > 0 else "no budget"
        a2.annotate(share, (xy[i] + 0.2, spent[i]), ha="center", va="bottom", fontsize=7)
    a2.set_ylim(0, 1.3 * max(float(budget.max(initial=0)), float(spent.max(initial=0)), 1.0))
    a2.set_xticks(xy, years)
    a2.set_xlabel("year")
    a2.set_ylabel("capex (billion USD)")
    a2.yaxis.set_major_formatter(FuncFormatter(_billions))
    a2.set_title("Spend vs budget per year", fontsize=10)
    a2.legend(fontsize=7, loc="upper left", ncol=2)

    for s, site in enumerate(plan["sites"]):
        rows = [p for p in plan["power"] if p["site"] == site]
        c = f"C{s % 10}"
        a3.plot(x, [p["used_mw"] for p in rows], marker="o", color=c, label=f"{site} used")
        a3.plot(x, [p["available_mw"] for p in rows], ls="--", color=c, label=f"{site} available")
    mw = [max(p["used_mw"], p["available_mw"]) for p in plan["power"]]
    a3.set_ylim(0, 1.1 * max(mw, default=1.0) * (1 + 0.07 * len(plan["sites"])))
    a3.set_xticks(x, periods, rotation=45)
    a3.set_xlabel("quarter")
    a3.set_ylabel("facility power (MW, incl. PUE)")
    a3.set_title("Power used vs available per site", fontsize=10)
    a3.legend(fontsize=7, loc="upper left")
    _count_axes(a3, x=False)
    return fig


def pareto_chart(
    path: str | Path,
    points: Sequence[Mapping[str, Any]],
    *,
    chosen: tuple[float, float] | None = None,
    title: str = "",
    note: str = "",
) -> Path:
    """:func:`pareto_figure` written to ``path``, ``note`` and the infeasible points of
    the sweep under it; returns the path."""
    bad = [p for p in points if not p["feasible"]]
    if bad:
        note = (
            (note + "\n" if note else "")
            + "infeasible: "
            + "; ".join(f"{p['kind']} {p['parameter']:g}" for p in bad)
        )
    return _save(pareto_figure(points, chosen=chosen, title=title), path, note)


def pareto_figure(
    points: Sequence[Mapping[str, Any]],
    *,
    chosen: tuple[float, float] | None = None,
    title: str = "",
) -> Figure:
    """Capex (billion USD) against H100e-quarters of the plans of a sweep, from
    :func:`perfmodel.fleet.pareto.pareto_front`'s points as dicts (``capex_usd``,
    ``h100e_quarters``, ``feasible``, ``dominated``, ``kind``, ``parameter``): the front
    (non-dominated plans, joined in capex order), dominated plans as grey crosses, and
    ``chosen`` = ``(capex_usd, h100e_quarters)`` of the reported plan as a star. The
    lines carry ``gid`` "front", "dominated" and "chosen"."""
    ok = sorted((p for p in points if p["feasible"]), key=lambda p: float(p["capex_usd"]))
    front = [p for p in ok if not p["dominated"]]
    dom = [p for p in ok if p["dominated"]]
    fig, ax = _figure()
    ax.plot(
        [float(p["capex_usd"]) for p in front],
        [float(p["h100e_quarters"]) for p in front],
        "o-",
        color="#1f77b4",
        label="Pareto front (non-dominated plans)",
        gid="front",
    )
    labels: dict[tuple[float, float], list[str]] = {}  # coincident plans share a label
    for p in front:
        at = (float(p["capex_usd"]), float(p["h100e_quarters"]))
        what = f"x{p['parameter']:g}" if p["kind"] == "budget" else f"{p['parameter']:,.0f} H100e"
        labels.setdefault(at, []).append(what)
    for at, whats in labels.items():
        ax.annotate(
            "  budget " + ", ".join(whats) if whats[0].startswith("x") else "  " + ", ".join(whats),
            at,
            fontsize=7,
            va="top",
        )
    if dom:
        ax.plot(
            [float(p["capex_usd"]) for p in dom],
            [float(p["h100e_quarters"]) for p in dom],
            "x",
            color="0.5",
            ms=8,
            ls="none",
            label="dominated (less for as much capex)",
            gid="dominated",
        )
    if chosen is not None:
        ax.plot(
            [chosen[0]],
            [chosen[1]],
            "*",
            color="#d62728",
            ms=16,
            ls="none",
            zorder=5,
            label=f"this plan: ${chosen[0] / 1e9:,.2f}B, {chosen[1]:,.0f} H100e-quarters",
            gid="chosen",
        )
    ax.margins(x=0.2, y=0.08)
    ax.set_xlabel("capex (billion USD)")
    ax.set_ylabel("delivered compute (H100e-quarters)")
    ax.xaxis.set_major_formatter(FuncFormatter(_billions))
    _count_axes(ax, x=False)
    ax.set_title(title or "Capex vs H100e-quarters", fontsize=11)
    ax.grid(True, alpha=0.25)
    ax.legend(fontsize=8, loc="lower right")
    return fig
