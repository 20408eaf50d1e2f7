"""Scenario field validators: one line per bad field, naming the field, the value and
the allowed range (:class:`perfmodel.errors.InputError`, a ``ValueError``).

Shared by the scenario schema (:mod:`perfmodel.fleet.schema`) and its demand and cost
tables (:mod:`perfmodel.fleet.demand`).
"""

from __future__ import annotations

import math
import re
from typing import Any

from perfmodel.errors import InputError

__all__ = [
    "PERIOD_RE",
    "num",
    "per_period",
    "period_idx",
    "check_keys",
    "integer",
    "boolean",
    "array",
    "string",
]

PERIOD_RE = re.compile(r"^(\d{4})Q([1-4])$")
_PERIOD_RE = PERIOD_RE


def num(
    where: str, v: Any, lo: float | None = None, hi: float | None = None, lo_open: bool = False
) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise InputError(f"{where} = {v!r} must be a number")
    x = float(v)
    if not math.isfinite(x):
        raise InputError(f"{where} = {v!r} must be finite")
    if lo is not None and (x < lo or (lo_open and x == lo)):
        raise InputError(
            f"{where} = {v!r} must be {'>' if lo_open else '>='} {lo:g}"
            + (f" and <= {hi:g}" if hi is not None else "")
        )
    if hi is not None and x > hi:
        raise InputError(
            f"{where} = {v!r} must be <= {hi:g}" + (f" and >= {lo:g}" if lo is not None else "")
        )
    return x


def per_period(where: str, v: Any, periods: tuple[str, ...], lo: float = 0.0) -> tuple[float, ...]:
    if isinstance(v, list):
        if len(v) != len(periods):
            raise InputError(
                f"{where} has {len(v)} values but the scenario has {len(periods)} periods "
                f"({periods[0]}..{periods[-1]}); give one per period or a scalar"
            )
        return tuple(num(f"{where}[{p}]", x, lo) for p, x in zip(periods, v))
    x = num(where, v, lo)
    return tuple(x for _ in periods)


def period_idx(where: str, v: Any, periods: tuple[str, ...], allow_before: bool = True) -> int:
    if not isinstance(v, str) or not _PERIOD_RE.match(v):
        raise InputError(f"{where} = {v!r} must be a quarter like '2024Q3'")
    if v in periods:
        return periods.index(v)
    if v < periods[0] and allow_before:
        return 0
    if v > periods[-1]:
        return len(periods)
    raise InputError(f"{where} = {v!r} must be within {periods[0]}..{periods[-1]}")


def check_keys(where: str, table: Any, allowed: set[str]) -> None:
    if not isinstance(table, dict):
        raise InputError(where, table, "a table (e.g. [" + where.split("[")[0] + "] or { ... })")
    for k in table:
        base = re.sub(r"_(low|high)$", "", k)
        if k not in allowed and base not in allowed:
            raise ValueError(f"{where}.{k}: unknown field (allowed: {', '.join(sorted(allowed))})")


def integer(where: str, v: Any, lo: int, hi: int) -> int:
    """An integer field: a TOML integer in [lo, hi] (2.5, "3" and true are rejected)."""
    if isinstance(v, bool) or not isinstance(v, int):
        raise InputError(where, v, f"an integer in [{lo}, {hi}]")
    if not lo <= v <= hi:
        raise InputError(where, v, f"an integer in [{lo}, {hi}]")
    return int(v)


def boolean(where: str, v: Any) -> bool:
    """A boolean field: a TOML boolean (``own = "false"`` is an error, not true)."""
    if not isinstance(v, bool):
        raise InputError(where, v, "a TOML boolean: true or false (no quotes)")
    return v


def array(where: str, v: Any) -> list:
    """An array of tables ([[where]]) or of values."""
    if not isinstance(v, list):
        raise InputError(where, v, f"an array (e.g. [[{where}]] tables or [...])")
    return v


def string(where: str, v: Any) -> str:
    if not isinstance(v, str):
        raise InputError(where, v, "a string")
    return v
