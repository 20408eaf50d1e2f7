"""``perfmodel chips``, ``perfmodel chip NAME`` and ``perfmodel systems``.

* ``chips``: one line per chip (peaks, memory, power, price, availability); ``--json``.
* ``chip NAME``: every field with unit, value or low/best/high, confidence and source.
* ``systems``: systems (chip, count, scale-up domain, links, power, price) and links.

They need no JAX (``roofline``, in :mod:`perfmodel.commands.roofline`, does) and import
nothing that imports it (an import-linter contract checks it). All accept ``--catalog
FILE`` (repeatable) to load user catalog files on top of the built-in one.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from perfmodel.commands._catalog_common import _catalog, _common, _table
from perfmodel.errors import InputError
from perfmodel.hardware import Catalog, ChipRecord


def _fmt_num(x: float | None, scale: float, digits: int = 4) -> str:
    if x is None:
        return "-"
    v = x / scale
    return f"{v:,.0f}" if abs(v) >= 10**digits else f"{v:.{digits}g}"


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
# registration
# --------------------------------------------------------------------------------------


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
