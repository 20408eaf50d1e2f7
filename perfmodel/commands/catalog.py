"""``perfmodel chips``, ``perfmodel chip NAME`` and ``perfmodel roofline``.

* ``chips``: one line per chip (peaks, memory, power, price, availability); ``--json``.
* ``chip NAME``: every field with unit, value or low/best/high, confidence and source.
* ``systems``: systems (chip, count, scale-up domain, links, power, price) and links.
* ``roofline --chip NAME|all --op matmul ...``: time, bound, arithmetic intensity,
  attainable FLOP/s and ridge point; ``--plot FILE.png`` draws the roofline chart;
  ``--chip all`` times the op on every chip in one vmapped call.

All accept ``--catalog FILE`` (repeatable) to load user catalog files on top of the
built-in one.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

import numpy as np

from perfmodel import roofline as rl
from perfmodel.commands._args import add_catalog_args, check_finite, plot_file, user_catalog
from perfmodel.commands._pick import add_pick_arg
from perfmodel.errors import InputError
from perfmodel.hardware import (
    PRECISION_KEYS,
    PRECISIONS,
    Catalog,
    ChipRecord,
    stack_chips,
)

OPS = ("matmul", "bmm", "attention", "elementwise", "layernorm", "conv2d")


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def _catalog(args) -> Catalog:
    return user_catalog(args.catalog, args.allow_override)


def _si(x: float, unit: str, digits: int = 4) -> str:
    """Format ``x`` with an SI prefix: 989.4e12, 'FLOP/s' -> '989.4 TFLOP/s'."""
    if x is None or not math.isfinite(x):
        return str(x)
    if x == 0:
        return f"0 {unit}"
    for p, f in (("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= f:
            return f"{x / f:.{digits}g} {p}{unit}"
    if abs(x) >= 1:
        return f"{x:.{digits}g} {unit}"
    for p, f in (("m", 1e-3), ("u", 1e-6), ("n", 1e-9)):
        if abs(x) >= f:
            return f"{x / f:.{digits}g} {p}{unit}"
    return f"{x:.{digits}g} {unit}"


def _fmt_num(x: float | None, scale: float, digits: int = 4) -> str:
    if x is None:
        return "-"
    v = x / scale
    return f"{v:,.0f}" if abs(v) >= 10**digits else f"{v:.{digits}g}"


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(
        str(c).rjust(w) if i else str(c).ljust(w)  # noqa: E731
        for i, (c, w) in enumerate(zip(r, widths, strict=True))
    )
    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, rows)])


def _figure_json(fig) -> dict[str, Any]:
    d = {"unit": fig.unit, "best": fig.best, "confidence": fig.confidence, "source": fig.source}
    if fig.low != fig.best or fig.high != fig.best:
        d["low"], d["high"] = fig.low, fig.high
    if fig.formula:
        d["formula"] = fig.formula
    return d


def _value(rec: ChipRecord, key: str, pick: str = "best") -> float | None:
    fig = rec.figure(key)
    return None if fig is None else fig.pick(pick)


# --------------------------------------------------------------------------------------
# chips
# --------------------------------------------------------------------------------------


#: The figures of the ``chips`` table (SI units; keys with unit suffixes).
CHIPS_FIGURES = (
    "bf16_flops_per_s",
    "fp8_flops_per_s",
    "int8_ops_per_s",
    "dram_bytes",
    "dram_bytes_per_s",
    "sram_bytes",
    "tdp_w",
    "allin_power_w",
    "allin_price_usd",
)


def chips_rows(cat: Catalog, pick: str = "best") -> list[dict[str, Any]]:
    """One summary dict per chip (SI units, keys with unit suffixes)."""
    out = []
    for key, rec in cat.chips.items():
        v = lambda k: _value(rec, k, pick)  # noqa: E731
        figs = {k: rec.figure(k) for k in CHIPS_FIGURES}
        out.append(
            {
                "key": key,
                "name": rec.display_name,
                "vendor": rec.text.get("vendor", ""),
                "kind": rec.text.get("kind", "gpu"),
                "bf16_flops_per_s": v("bf16_flops_per_s"),
                "fp8_flops_per_s": v("fp8_flops_per_s"),
                "int8_ops_per_s": v("int8_ops_per_s"),
                "dram_bytes": v("dram_bytes"),
                "dram_bytes_per_s": v("dram_bytes_per_s"),
                "sram_bytes": v("sram_bytes"),
                "tdp_w": v("tdp_w"),
                "allin_power_w": v("allin_power_w"),
                "allin_price_usd": v("allin_price_usd"),
                "available": rec.text.get("available", ""),
                "fallbacks": rec.fallbacks(),
                # each figure above with its unit, range, confidence and source: an
                # estimate never looks like a vendor figure
                "figures": {k: _figure_json(f) for k, f in figs.items() if f is not None},
            }
        )
    return out


def cmd_chips(args) -> int:
    cat = _catalog(args)
    rows = chips_rows(cat, args.pick)
    if args.json:
        json.dump({"pick": args.pick, "chips": rows}, sys.stdout, indent=2)
        print()
        return 0
    header = [
        "chip",
        "vendor",
        "kind",
        "bf16 TFLOP/s",
        "fp8 TFLOP/s",
        "int8 TOP/s",
        "DRAM GB",
        "DRAM TB/s",
        "SRAM MB",
        "TDP W",
        "all-in W",
        "all-in $",
        "avail.",
    ]
    table = [
        [
            r["key"],
            r["vendor"],
            r["kind"],
            _fmt_num(r["bf16_flops_per_s"], 1e12),
            _fmt_num(r["fp8_flops_per_s"], 1e12),
            _fmt_num(r["int8_ops_per_s"], 1e12),
            _fmt_num(r["dram_bytes"], 1e9),
            _fmt_num(r["dram_bytes_per_s"], 1e12, 3),
            _fmt_num(r["sram_bytes"], 1e6),
            _fmt_num(r["tdp_w"], 1, 5),
            _fmt_num(r["allin_power_w"], 1, 5),
            "-" if r["allin_price_usd"] is None else f"{r['allin_price_usd']:,.0f}",
            r["available"],
        ]
        for r in rows
    ]
    print(_table(table, header))
    print(
        f"\nDense peaks ('-' = not published; such precisions run at a fallback rate, see "
        f"`perfmodel chip NAME`). Values: {args.pick} pick of estimates. All-in = per chip "
        "incl. host/network/storage share, excl. PUE."
    )
    return 0


# --------------------------------------------------------------------------------------
# chip NAME
# --------------------------------------------------------------------------------------


def chip_json(rec: ChipRecord) -> dict[str, Any]:
    return {
        "key": rec.key,
        "file": rec.path,
        **{k: v for k, v in rec.text.items()},
        "fallbacks": rec.fallbacks(),
        "figures": {k: _figure_json(f) for k, f in rec.figures.items()},
    }


def cmd_chip(args) -> int:
    cat = _catalog(args)
    n = args.name.strip().lower().replace("-", "_")
    if n in cat.systems and n not in cat.chips and n not in cat.aliases:
        s = cat.systems[n]
        raise InputError(
            f"'{args.name}' is a system ({s.text.get('name', n)}) of "
            f"{s.value('chips_count'):g} x chip '{s.chip}'; see `perfmodel systems` "
            f"or `perfmodel chip {s.chip}`"
        )
    rec = cat.record(args.name)
    if args.json:
        json.dump(chip_json(rec), sys.stdout, indent=2)
        print()
        return 0
    print(f"{rec.key}: {rec.display_name}")
    for k, v in rec.text.items():
        if k != "name":
            print(f"  {k}: {v}")
    print(f"  file: {rec.path}")
    fb = rec.fallbacks()
    if fb:
        print(
            "  precision fallbacks: "
            + ", ".join(f"{p} runs at the {q} rate" for p, q in fb.items())
        )
    refs: dict[str, int] = {}
    rows = []
    for k, f in rec.figures.items():
        if f.low != f.best or f.high != f.best:
            val = f"{f.best:.6g} (low {f.low:.4g}, high {f.high:.4g})"
        else:
            val = f"{f.best:.6g}"
        ref = refs.setdefault(f.source, len(refs) + 1)
        rows.append([k, f.unit, val, f.confidence, f"[{ref}]"])
    print()
    print(_table(rows, ["field", "unit", "value", "confidence", "source"]))
    formulas = [(k, f.formula) for k, f in rec.figures.items() if f.formula]
    if formulas:
        print("\nformulas:")
        for k, formula in formulas:
            print(f"  {k}: {formula}")
    print("\nsources:")
    for src, i in refs.items():
        print(f"  [{i}] {src}")
    return 0


# --------------------------------------------------------------------------------------
# systems and links
# --------------------------------------------------------------------------------------


def systems_json(cat: Catalog) -> dict[str, Any]:
    return {
        "systems": {
            k: {
                **dict(s.text),
                "file": s.path,
                "figures": {fk: _figure_json(f) for fk, f in s.figures.items()},
            }
            for k, s in cat.systems.items()
        },
        "links": {
            k: {
                **dict(lk.text),
                "file": lk.path,
                "figures": {fk: _figure_json(f) for fk, f in lk.figures.items()},
            }
            for k, lk in cat.links.items()
        },
    }


def cmd_systems(args) -> int:
    cat = _catalog(args)
    if args.json:
        json.dump(systems_json(cat), sys.stdout, indent=2)
        print()
        return 0
    p = args.pick
    rows = []
    for k, s in cat.systems.items():
        v = lambda key: s.value(key, p, default=-1.0)  # noqa: E731
        rng = lambda key, scale, fmt: (
            "-"
            if s.figures.get(key) is None
            # noqa: E731
            else fmt.format(v(key) / scale) + (" (est.)" if s.figures[key].is_estimate else "")
        )
        rows.append(
            [
                k,
                s.chip,
                f"{v('chips_count'):g}",
                "-" if v("domain_chips_count") < 0 else f"{v('domain_chips_count'):g}",
                s.text.get("link_scaleup", "-"),
                s.text.get("link_scaleout", "-"),
                rng("power_w", 1e3, "{:,.4g}"),
                rng("price_usd", 1e6, "{:,.3g}"),
            ]
        )
    print(
        _table(
            rows,
            ["system", "chip", "chips", "domain", "scale-up", "scale-out", "power kW", "price $M"],
        )
    )
    rows = []
    for k, lk in cat.links.items():
        lat = lk.figures.get("latency_s")
        rows.append(
            [
                k,
                lk.text.get("kind", ""),
                lk.text.get("topology", ""),
                f"{lk.value('bytes_per_s_per_dir', p) / 1e9:,.4g}",
                "-"
                if lat is None
                else f"{lat.pick(p) * 1e6:.3g} ({lat.low * 1e6:.3g}-{lat.high * 1e6:.3g})",
            ]
        )
    print()
    print(_table(rows, ["link", "kind", "topology", "GB/s per chip per dir", "latency us (range)"]))
    print(f"\nValues: {p} pick; power excludes PUE; `--json` gives every figure with its source.")
    return 0


# --------------------------------------------------------------------------------------
# roofline
# --------------------------------------------------------------------------------------


#: Largest size a roofline flag accepts (the op's FLOPs and bytes must also stay finite).
MAX_SIZE = 1e15


def _pos(args, name: str, default):
    v = getattr(args, name.replace("-", "_"))
    v = default if v is None else v
    if not (isinstance(v, (int, float)) and math.isfinite(v) and 0 < v <= MAX_SIZE):
        raise InputError(f"--{name}", v, f"a positive number <= {MAX_SIZE:g}")
    return v


def precision_arg(args) -> str:
    """``--precision`` (``--dtype`` is its deprecated alias), checked."""
    prec, old = getattr(args, "precision", None), getattr(args, "dtype", None)
    if old is not None:
        if prec is not None and prec != old:
            raise InputError(f"--precision {prec!r} and --dtype {old!r} disagree; give one")
        prec = old
    prec = prec or "bf16"
    if prec not in PRECISIONS:
        flag = "--precision" if old is None else "--dtype"
        raise InputError(f"{flag} {prec!r} must be one of {', '.join(PRECISIONS)}")
    return prec


def build_op(args) -> tuple[rl.Op, str]:
    """The :class:`perfmodel.roofline.Op` described by the CLI flags, and a label."""
    dt = precision_arg(args)
    op = args.op
    if op == "matmul":
        m, n, k = (_pos(args, x, 8192) for x in ("m", "n", "k"))
        return rl.matmul(m, n, k, dt), f"matmul m={m:g} n={n:g} k={k:g} {dt}"
    if op == "bmm":
        b = _pos(args, "batch", 8)
        m, n, k = (_pos(args, x, 4096) for x in ("m", "n", "k"))
        return rl.batched_matmul(b, m, n, k, dt), f"bmm batch={b:g} m={m:g} n={n:g} k={k:g} {dt}"
    if op == "attention":
        b, h = _pos(args, "batch", 1), _pos(args, "heads", 32)
        s, d = _pos(args, "seq", 4096), _pos(args, "head-dim", 128)
        return (
            rl.attention(b, h, s, s, d, dt, causal=args.causal),
            f"attention batch={b:g} heads={h:g} seq={s:g} head_dim={d:g} {dt}"
            + (" causal" if args.causal else ""),
        )
    if op == "elementwise":
        e = _pos(args, "elements", 2**28)
        return rl.elementwise(e, dt), f"elementwise add elements={e:g} {dt}"
    if op == "layernorm":
        r, c = _pos(args, "m", 8192), _pos(args, "n", 8192)
        return rl.layernorm(r, c, dt), f"layernorm rows={r:g} cols={c:g} {dt}"
    if op == "conv2d":
        b, hw = _pos(args, "batch", 32), _pos(args, "hw", 56)
        ci, co, ks = _pos(args, "c-in", 256), _pos(args, "c-out", 256), _pos(args, "kernel", 3)
        return (
            rl.conv2d(b, hw, hw, ci, co, ks, ks, 1, dt),
            f"conv2d batch={b:g} {hw:g}x{hw:g} c_in={ci:g} c_out={co:g} k={ks:g} {dt}",
        )
    raise InputError("--op", op, f"one of {', '.join(OPS)}")


def _timing_dict(t, i: int | None = None) -> dict[str, Any]:
    g = (lambda x: float(np.asarray(x))) if i is None else (lambda x: float(np.asarray(x)[i]))
    return {
        "time_s": g(t.time_s),
        "compute_s": g(t.compute_s),
        "memory_s": g(t.memory_s),
        "overhead_s": g(t.overhead_s),
        "bound": rl.BOUNDS[int(g(t.bound))],
        "intensity_flops_per_byte": g(t.intensity_flops_per_byte),
        "attainable_flops_per_s": g(t.attainable_flops_per_s),
    }


def cmd_roofline(args) -> int:
    deprecated = args.dtype is not None
    rc = _roofline(args)
    if deprecated:  # after the result (an error stays one line)
        print("perfmodel roofline: note: --dtype is deprecated; use --precision", file=sys.stderr)
    return rc


def _roofline(args) -> int:
    cat = _catalog(args)
    dtype = precision_arg(args)
    args.precision, args.dtype = dtype, None
    op, label = build_op(args)
    check_finite(
        {"flops": float(op.flops), "bytes": float(op.bytes), "ws": float(op.working_set_bytes)},
        label,
    )
    eff = rl.Efficiency.ideal() if args.ideal else rl.Efficiency.default()
    eff_note = (
        "ideal (100% of peaks, no overhead)"
        if args.ideal
        else "default efficiencies (matmul/conv 80%, attention 70% of peak; "
        "SRAM 90%, DRAM 85% of bandwidth; 3 us per op)"
    )
    p_idx = PRECISIONS.index(dtype)
    kind = int(op.kind)
    ceff = float(np.asarray(eff.compute)[kind])
    meff = np.asarray(eff.memory)
    summary = {
        "op": label,
        "flops": float(op.flops),
        "bytes": float(op.bytes),
        "working_set_bytes": float(op.working_set_bytes),
        "precision": dtype,
        "efficiency": eff_note,
        "pick": args.pick,
    }

    if args.chip.lower() == "all":
        if args.plot:
            raise InputError("--plot needs one chip, not --chip all")
        keys = [k for k, rec in cat.chips.items() if rec.supports(dtype)]
        skipped = [k for k in cat.chips if k not in keys]  # no rate at this precision
        if not keys:
            raise InputError(f"--precision {dtype!r} is supported by no catalog chip")
        summary["unsupported_chips"] = skipped
        chips = stack_chips([cat.chip(k, args.pick) for k in keys])
        t = rl.op_time_grid(rl.stack_ops([op]), chips, eff)
        rows = []
        for i, key in enumerate(keys):
            d = _timing_dict(jax_index(t, i))
            peak = float(np.asarray(chips.peak_flops_per_s)[i, p_idx])
            lvl = 1 if float(op.working_set_bytes) > float(np.asarray(chips.mem_bytes)[i, 0]) else 0
            bw = float(np.asarray(chips.mem_bytes_per_s)[i, lvl])
            d.update(
                chip=key,
                peak_flops_per_s=peak,
                memory_level=("sram", "dram")[lvl],
                ridge_flops_per_byte=peak * ceff / (bw * meff[lvl]),
                fraction_of_peak=d["attainable_flops_per_s"] / peak,
                fallback=cat.chips[key].fallbacks().get(dtype, ""),
            )
            rows.append(d)
        check_finite(rows, label)
        if args.json:
            json.dump({**summary, "chips": rows}, sys.stdout, indent=2)
            print()
            return 0
        print(
            f"{label}: {_si(summary['flops'], 'FLOP')}, {_si(summary['bytes'], 'B')} moved, "
            f"working set {_si(summary['working_set_bytes'], 'B')}, "
            f"intensity {rows[0]['intensity_flops_per_byte']:.4g} FLOP/byte"
        )
        print(f"efficiency: {eff_note}; pick: {args.pick}")
        if skipped:
            print(f"not shown (no {dtype} rate): {', '.join(skipped)}")
        print()
        table = [
            [
                r["chip"],
                _si(r["time_s"], "s"),
                r["bound"],
                r["memory_level"],
                f"{r['attainable_flops_per_s'] / 1e12:.4g}",
                f"{100 * r['fraction_of_peak']:.1f}%",
                f"{r['ridge_flops_per_byte']:.4g}",
                (f"{dtype} as {r['fallback']}" if r["fallback"] else ""),
            ]
            for r in rows
        ]
        print(
            _table(
                table,
                [
                    "chip",
                    "time",
                    "bound",
                    "fed from",
                    "attainable TFLOP/s",
                    "of peak",
                    "ridge FLOP/B (that level)",
                    "note",
                ],
            )
        )
        return 0

    rec = cat.record(args.chip)
    if not rec.supports(dtype):
        raise InputError(
            f"--precision {dtype!r} is not supported by chip '{rec.key}' "
            f"(supported: {', '.join(rec.supported_precisions())})"
        )
    chip = rec.to_chip(args.pick)
    t = rl.op_time(op, chip, eff)
    d = _timing_dict(t)
    peak = float(np.asarray(chip.peak_flops_per_s)[p_idx])
    bws = np.asarray(chip.mem_bytes_per_s)
    ridge = {lvl: peak * ceff / (float(bws[i]) * meff[i]) for i, lvl in enumerate(("sram", "dram"))}
    level = (
        "sram" if float(op.working_set_bytes) <= float(np.asarray(chip.mem_bytes)[0]) else "dram"
    )
    peak_fig = rec.figure(PRECISION_KEYS[rec.fallbacks().get(dtype, dtype)]) or rec.figure(
        "dram_bytes"
    )
    assert peak_fig is not None  # every catalog chip has dram_bytes
    d.update(
        chip=rec.key,
        peak_flops_per_s=peak,
        memory_level=level,
        ridge_flops_per_byte=ridge,
        fraction_of_peak=d["attainable_flops_per_s"] / peak,
        fallback=rec.fallbacks().get(dtype, ""),
        peak_source=peak_fig.source,
    )
    check_finite(d, label)
    if args.plot:
        from perfmodel.plots import roofline_chart

        plot = plot_file(args.plot, f"roofline_{rec.key}.png")
        roofline_chart(
            plot,
            rec,
            chip,
            {
                "intensity_flops_per_byte": d["intensity_flops_per_byte"],
                "attainable_flops_per_s": d["attainable_flops_per_s"],
                "label": label,
            },
            precision=dtype,
            compute_eff=ceff,
            memory_eff=tuple(meff),
        )
        d["plot"] = str(plot)
    if args.json:
        json.dump({**summary, **d}, sys.stdout, indent=2)
        print()
        return 0
    print(f"{label} on {rec.key} ({rec.display_name}), pick {args.pick}")
    print(f"  efficiency:   {eff_note}")
    print(
        f"  work:         {_si(summary['flops'], 'FLOP')}, {_si(summary['bytes'], 'B')} moved, "
        f"working set {_si(summary['working_set_bytes'], 'B')} -> fed from {level.upper()}"
    )
    print(f"  intensity:    {d['intensity_flops_per_byte']:.4g} FLOP/byte")
    fb = f" ({dtype} runs at the {d['fallback']} rate)" if d["fallback"] else ""
    print(f"  peak:         {_si(peak, 'FLOP/s')} {dtype} dense{fb}")
    print(
        f"  ridge point:  {ridge['dram']:.4g} FLOP/byte (DRAM), {ridge['sram']:.4g} FLOP/byte "
        "(SRAM), at the efficiencies above"
    )
    print(
        f"  time:         {_si(d['time_s'], 's')} = max(compute {_si(d['compute_s'], 's')}, "
        f"memory {_si(d['memory_s'], 's')}) + overhead {_si(d['overhead_s'], 's')}"
    )
    print(f"  bound:        {d['bound']}")
    print(
        f"  attainable:   {_si(d['attainable_flops_per_s'], 'FLOP/s')} "
        f"({100 * d['fraction_of_peak']:.1f}% of peak)"
    )
    src = d["peak_source"]
    print(f"  peak source:  {src if len(src) <= 160 else src[:157] + '...'}")
    if args.plot:
        print(f"  plot:         {d['plot']}")
    return 0


def jax_index(tree, i: int):
    """Row ``i`` of every leaf (chip axis of an :func:`op_time_grid` result), op 0."""
    import jax

    return jax.tree_util.tree_map(lambda x: np.asarray(x)[i, 0], tree)


# --------------------------------------------------------------------------------------
# registration
# --------------------------------------------------------------------------------------


def _common(p: argparse.ArgumentParser) -> None:
    add_catalog_args(p)
    add_pick_arg(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def register(sub) -> None:
    p = sub.add_parser("chips", help="table of catalog chips (peaks, memory, power, price)")
    _common(p)
    p.set_defaults(func=cmd_chips)

    p = sub.add_parser("chip", help="every field of one chip with unit, range, confidence, source")
    p.add_argument("name", help="chip key or alias (e.g. h100, d1, dojo, ai4)")
    _common(p)
    p.set_defaults(func=cmd_chip)

    p = sub.add_parser("systems", help="catalog systems (DGX, NVL72, Dojo tray/ExaPOD) and links")
    _common(p)
    p.set_defaults(func=cmd_systems)

    p = sub.add_parser("roofline", help="roofline time/bound of one op on a chip (or all chips)")
    p.add_argument("--chip", required=True, help="chip key or alias, or 'all'")
    p.add_argument("--op", choices=OPS, default="matmul")
    p.add_argument(
        "--precision", default=None, help=f"precision: {', '.join(PRECISIONS)} (default bf16)"
    )
    p.add_argument("--dtype", default=None, help="deprecated alias of --precision")
    for name, typ, h in (
        ("m", float, "rows (matmul, bmm, layernorm); default 8192 (bmm 4096)"),
        ("n", float, "cols (matmul, bmm, layernorm)"),
        ("k", float, "inner dimension (matmul, bmm)"),
        ("batch", float, "batch (bmm 8, attention 1, conv2d 32)"),
        ("seq", float, "sequence length (attention, default 4096)"),
        ("heads", float, "attention heads (default 32)"),
        ("head-dim", float, "attention head dim (default 128)"),
        ("elements", float, "elements (elementwise, default 2**28)"),
        ("hw", float, "conv2d spatial size (default 56)"),
        ("c-in", float, "conv2d input channels (default 256)"),
        ("c-out", float, "conv2d output channels (default 256)"),
        ("kernel", float, "conv2d kernel size (default 3)"),
    ):
        p.add_argument(f"--{name}", type=typ, default=None, help=h)
    p.add_argument("--causal", action="store_true", help="causal attention (half the FLOPs)")
    p.add_argument("--ideal", action="store_true", help="100%% efficiency, no overhead")
    p.add_argument("--plot", metavar="FILE.png", help="draw the roofline chart to FILE")
    _common(p)
    p.set_defaults(func=cmd_roofline)
