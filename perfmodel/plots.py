"""Plots (matplotlib, Agg backend): the classic log-log roofline chart.

Only :mod:`matplotlib` is needed; the figure is written to a file, never shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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

    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
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
    plt.close(fig)
    return out
