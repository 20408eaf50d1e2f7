"""Plots (matplotlib figures, no pyplot state): the roofline chart, the step-time and memory
breakdown of a training job, H100-equivalents against the chip count, and collective
times against the message size.

Only :mod:`matplotlib` is needed (:class:`~matplotlib.figure.Figure` objects: no pyplot
state, no backend switch, so importing this module in a notebook changes nothing); every figure is written to the file the caller names
(``--plot PATH``), never shown and never written anywhere else. Axes carry their unit;
counts have thousands separators. The functions take plain numbers (SI units): the
commands compute them.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
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
    answer as a point ``(n_chips, h100e)``. Returns the path written."""
    x = np.asarray(counts, dtype=float)
    fig = Figure(figsize=(8, 5.2), dpi=110)
    ax = fig.subplots()
    if "low" in h100e and "high" in h100e:
        ax.fill_between(
            x, h100e["low"], h100e["high"], color="C0", alpha=0.2, label="low..high range"
        )
    ax.plot(x, h100e["best"], color="C0", lw=2, label=f"{what} (best)")
    if spec_ratio is not None:
        ax.plot(x, x * spec_ratio, "--", color="C1", lw=1, label=f"spec sheet ({spec_ratio:.3g}x)")
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
    ax.set_xlabel(f"chips of {chip} (count)")
    ax.set_ylabel("H100-equivalents (H100e, count)")
    ax.set_title(f"H100-equivalents of {chip}: {what}", fontsize=11)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8, loc="upper left")
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
    fig = Figure(figsize=(8, 5.2), dpi=110)
    ax = fig.subplots()
    for i, (label, t) in enumerate(series.items()):
        ax.plot(x, np.asarray(t, dtype=float), color=f"C{i % 10}", lw=1.6, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_major_formatter(EngFormatter(unit="B"))
    ax.yaxis.set_major_formatter(EngFormatter(unit="s"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, p: ""))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, p: ""))
    ax.set_xlabel("message size per member (byte)")
    ax.set_ylabel("collective time (s)")
    ax.set_title(title, fontsize=11)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8, loc="upper left")
    return _save(fig, path, note)
