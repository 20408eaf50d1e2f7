"""Helpers the catalog commands (:mod:`perfmodel.commands.catalog`) and ``roofline``
(:mod:`perfmodel.commands.roofline`) share: the catalog from ``--catalog``, their common
options, SI-prefixed numbers and plain-text tables."""

from __future__ import annotations

import argparse
import math

from perfmodel.commands._args import add_catalog_args, user_catalog
from perfmodel.commands._pick import add_pick_arg
from perfmodel.hardware import Catalog


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


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(
        str(c).rjust(w) if i else str(c).ljust(w)  # noqa: E731
        for i, (c, w) in enumerate(zip(r, widths, strict=True))
    )
    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, rows)])


def _common(p: argparse.ArgumentParser) -> None:
    add_catalog_args(p)
    add_pick_arg(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
