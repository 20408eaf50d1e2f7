"""What-if overrides of a scenario from the command line: ``--set PATH=VALUE``.

An override edits the scenario's parsed TOML data *before* validation, so a value set on
the command line is checked exactly like the same value in the file
(:func:`perfmodel.fleet.schema.parse_scenario`)::

    offers.h100.unit_price_usd=350000          one field
    sites.cortex.power_mw[2025Q1:]=600          a per-period field from 2025Q1 on
    sites.cortex.power_mw[2024Q3:2025Q1]=90     2024Q3 to 2025Q1, both included
    offers.h200.supply_units[2025Q2]=2000       one quarter
    ratios[0].min_ratio=0.5                     an entry of an array of tables
    sites.cortex.own_share_min=0.5              a field the file leaves out

PATH is dotted table keys (``[i]`` indexes an array of tables); every table on the way
must exist, the last key may be new (the schema then decides whether it is allowed).
A ``[PERIOD:PERIOD]`` selector applies to a per-period field (a list with one value per
quarter, or a scalar, which is first broadcast to every quarter). VALUE is a TOML value
(``350000``, ``0.5``, ``true``, ``"air"``, ``[1, 2]``); a bare word such as ``liquid``
is read as a string. Where the file gives ``X_low``/``X_high`` for an overridden number
``X`` and the overrides do not set them, they are scaled by the same factor, so that
``X_low <= X <= X_high`` still holds; the record says so.

Bad paths and values raise :class:`~perfmodel.errors.InputError` naming the override.
"""

from __future__ import annotations

import copy
import math
import re
import tomllib
from pathlib import Path
from typing import Any

from perfmodel.errors import InputError
from perfmodel.fleet.schema import parse_scenario, period_list, scenario_path
from perfmodel.hardware import read_toml

__all__ = [
    "Override",
    "parse_override",
    "apply_overrides",
    "load_scenario_data",
    "load_with_overrides",
]

_KEY = r"[A-Za-z0-9_-]+"
_STEP_RE = re.compile(rf"^(?P<key>{_KEY})(?P<idx>(\[\d+\])*)$")
_SEL_RE = re.compile(r"^(?P<path>.+?)\[(?P<sel>[^\[\]]*)\]$")
_PERIOD_RE = re.compile(r"^\d{4}Q[1-4]$")
_BARE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
MAX_OVERRIDES = 100


class Override(tuple):
    """One parsed ``--set``: ``(text, steps, selector, value)``; ``steps`` is a tuple of
    table keys (str) and array indices (int), ``selector`` ``None`` or ``(first, last)``
    quarters (either may be None: open)."""

    __slots__ = ()

    def __new__(cls, text: str, steps: tuple, selector, value: Any):
        return super().__new__(cls, (text, steps, selector, value))

    @property
    def text(self) -> str:
        return self[0]

    @property
    def steps(self) -> tuple:
        return self[1]

    @property
    def selector(self):
        return self[2]

    @property
    def value(self) -> Any:
        return self[3]

    @property
    def path(self) -> str:
        out = ""
        for s in self.steps:
            out += f"[{s}]" if isinstance(s, int) else (f".{s}" if out else s)
        return out


def _show(text: str) -> str:
    """The override as messages quote it (at most 80 characters: one line stays short)."""
    r = repr(text)
    return r if len(r) <= 80 else r[:77] + "..."


def _plain(v) -> bool:
    if isinstance(v, (str, bool, int, float)):
        return True
    if isinstance(v, list):
        return all(_plain(x) for x in v)
    if isinstance(v, dict):
        return all(_plain(x) for x in v.values())
    return False  # TOML dates and times: no scenario field takes one


def _value(text: str, raw: str) -> Any:
    try:
        v = tomllib.loads(f"v = {raw}")["v"]
        if not _plain(v):
            raise InputError(
                f"--set {_show(text)}: value {_show(raw)} is a TOML date/time; give a number, "
                'true/false, "text" or [list]'
            )
        return v
    except (tomllib.TOMLDecodeError, RecursionError):  # RecursionError: [[[[... nested
        if _BARE_RE.match(raw) and raw.lower() not in ("nan", "inf", "true", "false"):
            return raw
        raise InputError(
            f"--set {_show(text)}: value {_show(raw)} is not a TOML value (a number, true/false, "
            '"text" or [list])'
        ) from None


def parse_override(text: str) -> Override:
    """Parse one ``PATH[SEL]=VALUE`` (see the module docstring)."""
    if not isinstance(text, str) or "=" not in text:
        raise InputError(
            f"--set {_show(text)} must look like PATH=VALUE, e.g. offers.h100.unit_price_usd=350000"
        )
    lhs, raw = text.split("=", 1)
    lhs, raw = lhs.strip(), raw.strip()
    if not lhs or not raw:
        raise InputError(
            f"--set {_show(text)} must look like PATH=VALUE, e.g. offers.h100.unit_price_usd=350000"
        )
    selector = None
    m = _SEL_RE.match(lhs)
    if m and not re.fullmatch(r"\d+", m.group("sel")):
        lhs, sel = m.group("path"), m.group("sel").strip()
        first, colon, last = sel.partition(":")
        first, last = first.strip() or None, last.strip() or None
        if not colon:
            last = first
        if first is None and last is None and not colon:
            raise InputError(f"--set {_show(text)}: empty period selector []")
        for q in (first, last):
            if q is not None and not _PERIOD_RE.match(q):
                raise InputError(
                    f"--set {_show(text)}: period {q!r} must be a quarter like 2025Q1 "
                    "(selector [2025Q1], [2025Q1:], [:2024Q4] or [2024Q3:2025Q1])"
                )
        if first is not None and last is not None and first > last:
            raise InputError(f"--set {_show(text)}: selector [{sel}] runs backwards")
        selector = (first, last)
    steps: list = []
    for part in lhs.split("."):
        sm = _STEP_RE.match(part.strip())
        if not sm:
            raise InputError(
                f"--set {_show(text)}: path part {part!r} must be a key (letters, digits, _ -) "
                "optionally followed by [index]"
            )
        steps.append(sm.group("key"))
        steps += [int(i) for i in re.findall(r"\[(\d+)\]", sm.group("idx"))]
    return Override(text, tuple(steps), selector, _value(text, raw))


def _known(node) -> str:
    if isinstance(node, dict):
        return ", ".join(sorted(node)) or "none"
    return f"0..{len(node) - 1}" if node else "none"


def _periods(data: dict, text: str) -> tuple[str, ...]:
    sc = data.get("scenario", {})
    try:
        q = sc.get("quarters", 8) if isinstance(sc, dict) else 8
        return period_list(sc.get("start", "2024Q1"), int(q))
    except (TypeError, ValueError, AttributeError):
        raise InputError(
            f"--set {_show(text)}: a period selector needs a valid scenario.start and quarters"
        ) from None


def _apply_one(data: dict, ov: Override, explicit: set[str]) -> dict:
    node: Any = data
    where = ""
    steps = ov.steps
    for i, s in enumerate(steps[:-1]):
        here = f"{where}[{s}]" if isinstance(s, int) else (f"{where}.{s}" if where else s)
        if isinstance(s, int):
            if not isinstance(node, list) or not 0 <= s < len(node):
                raise InputError(
                    f"--set {_show(ov.text)}: {here} does not exist"
                    + (f" (indices {_known(node)})" if isinstance(node, list) else "")
                )
            node = node[s]
        else:
            if not isinstance(node, dict) or s not in node:
                raise InputError(
                    f"--set {_show(ov.text)}: {here} does not exist"
                    + (f" (known: {_known(node)})" if isinstance(node, dict) else "")
                )
            node = node[s]
        where = here
    last = steps[-1]
    if isinstance(last, int) or not isinstance(node, dict):
        raise InputError(f"--set {_show(ov.text)}: {ov.path} must name a field of a table")
    old = node.get(last)
    new = ov.value
    if ov.selector is not None:
        periods = _periods(data, ov.text)
        first, end = ov.selector
        for q in (first, end):
            if q is not None and q not in periods:
                raise InputError(
                    f"--set {_show(ov.text)}: period {q} must be within {periods[0]}..{periods[-1]}"
                )
        if old is None:
            raise InputError(
                f"--set {_show(ov.text)}: {ov.path} is not in the scenario; a period selector "
                "needs the field's values to start from"
            )
        vals = list(old) if isinstance(old, list) else [old] * len(periods)
        if len(vals) != len(periods):
            raise InputError(
                f"--set {_show(ov.text)}: {ov.path} has {len(vals)} values for {len(periods)} periods"
            )
        a = periods.index(first) if first else 0
        b = periods.index(end) if end else len(periods) - 1
        vals[a : b + 1] = [new] * (b - a + 1)
        new = vals
    node[last] = new
    rec: dict = dict(set=ov.text, path=ov.path, value=new, was=old)
    # keep X_low <= X <= X_high: scale the file's siblings with X unless they are set too
    also = {}
    if _is_num(old) and _is_num(new) and old != 0 and ov.selector is None:
        for suf in ("_low", "_high"):
            sib = f"{last}{suf}"
            sib_path = ov.path + suf
            if _is_num(node.get(sib)) and sib_path not in explicit:
                node[sib] = float(node[sib]) * (float(new) / float(old))  # type: ignore[arg-type]
                also[sib_path] = node[sib]
    if also:
        rec["also"] = also
    return rec


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def apply_overrides(data: dict, sets) -> tuple[dict, list[dict]]:
    """A copy of the scenario data with ``sets`` (strings or :class:`Override`) applied
    in order, and one record per override: ``set`` (the text), ``path``, ``value`` (as
    stored), ``was`` (the file's value, None if absent) and ``also`` (siblings scaled)."""
    sets = list(sets or ())
    if len(sets) > MAX_OVERRIDES:
        raise InputError("--set", f"{len(sets)} overrides", f"at most {MAX_OVERRIDES}")
    ovs = [s if isinstance(s, Override) else parse_override(s) for s in sets]
    explicit = {o.path for o in ovs}
    out = copy.deepcopy(data)
    return out, [_apply_one(out, o, explicit) for o in ovs]


def load_scenario_data(name_or_path: str | Path) -> tuple[dict, str]:
    """The raw TOML data of a built-in scenario (by name) or a scenario file, and its
    path (as :func:`perfmodel.fleet.schema.load_scenario` finds it)."""
    p = scenario_path(name_or_path, InputError)
    return read_toml(p, "scenario", missing=InputError), str(p)


def load_with_overrides(name_or_path: str | Path, sets=(), *, catalog=None):
    """Load a scenario (built-in name or TOML path), apply ``--set`` overrides to its
    data and validate the result against ``catalog`` (None: the built-in one):
    ``(Scenario, records)``. A value the schema rejects is reported with the override
    that set it."""
    data, path = load_scenario_data(name_or_path)
    new, recs = apply_overrides(data, sets)
    try:
        sc = parse_scenario(new, path, catalog=catalog)
    except ValueError as e:  # InputError included: name the override that caused it
        msg = str(e)
        hit = [r["set"] for r in recs if r["path"].split("[")[0] in msg or r["path"] in msg]
        if hit:
            raise InputError(f"--set {_show(hit[-1])}: {msg}") from None
        if recs:
            raise InputError(f"with --set {', '.join(r['set'] for r in recs)}: {msg}") from None
        raise
    return sc, recs
