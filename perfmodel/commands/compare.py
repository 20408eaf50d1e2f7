"""``perfmodel compare A B``: two fleet plans side by side, with the differences.

A and B are each a scenario (a built-in name or a TOML file: planned here, with the
``plan`` defaults, ``--set-a``/``--set-b`` overrides and the shared plan options) or a
plan JSON file written by ``perfmodel plan --json > FILE.json``. Shown: the totals
(H100e-quarters, capex, H100e at the end), H100e per quarter, spend per year, power used
per site and quarter, and the binding constraints of each with their shadow prices.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from perfmodel.commands._args import add_catalog_args
from perfmodel.commands._pick import add_pick_arg
from perfmodel.errors import InputError, read_text

#: Keys a plan JSON must have to be compared (``perfmodel plan --json``).
PLAN_KEYS = (
    "scenario",
    "objective",
    "periods",
    "h100e",
    "h100e_quarters",
    "capex_usd",
    "spend",
    "power",
    "binding",
)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "compare",
        help="compare two fleet plans (scenarios or plan JSON files) side by side",
        description="Compare two fleet plans: totals, H100e per quarter, spend, power and "
        "binding constraints side by side with the differences (B - A). A and B are "
        "scenarios (built-in names or TOML files, planned here) or plan JSON files from "
        "'perfmodel plan --json'.",
    )
    p.add_argument("a", metavar="A", help="scenario name, scenario TOML or plan JSON")
    p.add_argument("b", metavar="B", help="scenario name, scenario TOML or plan JSON")
    for side in ("a", "b"):
        p.add_argument(
            f"--set-{side}",
            action="append",
            default=[],
            metavar="PATH=VALUE",
            dest=f"set_{side}",
            help=f"override a value of scenario {side.upper()} (as plan --set; repeatable)",
        )
    p.add_argument(
        "--values",
        choices=("auto", "standin"),
        default="auto",
        help="value curves for scenarios: training model (auto) or the labelled stand-in",
    )
    p.add_argument("--objective", choices=("max-h100e", "min-cost"), default=None)
    p.add_argument("--target-h100e", type=float, default=None, help="H100e target for min-cost")
    p.add_argument("--target-period", default=None, help="quarter of the target, e.g. 2024Q4")
    add_pick_arg(p, default=None, note="the scenario's pick")
    p.add_argument("--heuristic", action="store_true", help="rounding heuristic only (no MILP)")
    add_catalog_args(p)
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    p.set_defaults(func=run)


def _is_plan_json(arg: str) -> bool:
    return Path(arg).suffix.lower() == ".json"


def load_plan_json(path: str) -> dict:
    """A plan JSON file (``perfmodel plan --json``), checked to have :data:`PLAN_KEYS`."""
    text = read_text(path, "plan JSON file")
    try:
        d = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    except RecursionError:
        raise InputError(f"{path}: not a plan JSON (nested too deeply)") from None
    if not isinstance(d, dict):
        raise InputError(f"{path}: a plan JSON must be an object, got {type(d).__name__}")
    missing = [k for k in PLAN_KEYS if k not in d]
    if missing:
        raise InputError(
            f"{path}: not a plan JSON (missing {', '.join(missing)}); write one with "
            "'perfmodel plan --json > FILE.json'"
        )
    periods, h = d["periods"], d["h100e"]
    if not (isinstance(periods, list) and isinstance(h, list) and len(periods) == len(h)):
        raise InputError(f"{path}: periods and h100e must be lists of the same length")
    for k in ("h100e_quarters", "capex_usd"):
        if not _finite(d[k]):
            raise InputError(f"{path}: {k} = {d[k]!r} must be a finite number")
    if not all(_finite(x) for x in h) or not all(isinstance(p, str) for p in periods):
        raise InputError(f"{path}: h100e must be finite numbers and periods quarter names")
    for key, names, nums in (
        ("spend", ("year",), ("capex_usd",)),
        ("power", ("site", "period"), ("used_mw",)),
    ):
        rows = d[key]
        if not isinstance(rows, list) or not all(
            isinstance(r, dict)
            and all(isinstance(r.get(f), str) for f in names)
            and all(_finite(r.get(f)) for f in nums)
            and all(r.get(f) is None or _finite(r[f]) for f in ("budget_usd", "available_mw"))
            for r in rows
        ):
            raise InputError(
                f"{path}: {key} must be a list of records with {', '.join(names)} (text) and "
                f"{', '.join(nums)} (finite numbers)"
            )
    if not isinstance(d["binding"], list) or not all(
        isinstance(b, dict)
        and isinstance(b.get("kind"), str)
        and isinstance(b.get("periods", []), list)
        and all(isinstance(p, str) for p in b.get("periods", []))
        and (b.get("dual") is None or _finite(b["dual"]))
        for b in d["binding"]
    ):
        raise InputError(
            f"{path}: binding must be a list of records with a kind, periods and a numeric dual"
        )
    for k in ("scenario", "objective"):
        if not isinstance(d[k], str):
            raise InputError(f"{path}: {k} = {d[k]!r} must be text")
    return d


def _no_constant(name: str):
    raise InputError(f"plan JSON holds {name}, which is not JSON (NaN/Infinity)")


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _plan_of(arg: str, sets: list[str], args: argparse.Namespace, side: str) -> dict:
    if _is_plan_json(arg):
        if sets:
            raise InputError(
                f"--set-{side}", sets[0], f"given for a scenario, not for the plan JSON {arg}"
            )
        return load_plan_json(arg)
    # the planner stack loads when the command runs, not for --help
    from perfmodel.commands.plan import PLAN_DEFAULTS, explained_plan, plan_json

    ns = argparse.Namespace(**(PLAN_DEFAULTS | {"scenario": arg, "overrides": list(sets)}))
    for k in ("values", "objective", "target_h100e", "target_period", "pick", "heuristic"):
        setattr(ns, k, getattr(args, k))
    ns.catalog, ns.allow_override = args.catalog, args.allow_override  # both scenarios
    plan = explained_plan(ns)[0]
    return plan_json(plan)


#: A binding record's identity for matching, by kind (any other kind: the kind alone).
_BINDING_KEYS = {
    "power": "power at site {site}",
    "racks": "racks at site {site}",
    "own_share": "own_share at site {site}",
    "budget": "budget {year}",
    "supply": "supply of {offer}",
    "ratio": "ratio rule {rule} at {site}",
}


def _binding_key(b: dict) -> str:
    """A binding record in words, without periods or prices: its identity for matching."""
    k = b.get("kind")
    fields = {f: b.get(f) for f in ("site", "year", "offer", "rule")}
    return _BINDING_KEYS[k].format(**fields) if k in _BINDING_KEYS else str(k)


def _name(d: dict, arg: str) -> str:
    return f"{d.get('scenario')} ({Path(arg).name})" if _is_plan_json(arg) else str(d["scenario"])


def compare_dicts(A: dict, B: dict) -> dict[str, Any]:
    """The comparison of two plan dicts (JSON-ready): totals, per quarter, per year,
    per site x quarter and binding constraints, each with ``a``, ``b`` and ``diff`` (B - A;
    None where one side lacks the period, year or site)."""

    def diff(a, b):
        return None if a is None or b is None else float(b) - float(a)

    def end(d):
        return float(d["h100e"][-1]) if d["h100e"] else 0.0

    totals = {
        k: dict(a=float(fa(A)), b=float(fa(B)), diff=float(fa(B)) - float(fa(A)))
        for k, fa in (
            ("h100e_quarters", lambda d: d["h100e_quarters"]),
            ("capex_usd", lambda d: d["capex_usd"]),
            ("h100e_at_end", end),
        )
    }
    ha = dict(zip(A["periods"], A["h100e"]))
    hb = dict(zip(B["periods"], B["h100e"]))
    periods = sorted(set(ha) | set(hb))
    h100e = [
        dict(period=p, a=ha.get(p), b=hb.get(p), diff=diff(ha.get(p), hb.get(p))) for p in periods
    ]
    sa = {r["year"]: r for r in A["spend"]}
    sb = {r["year"]: r for r in B["spend"]}
    spend = []
    for y in sorted(set(sa) | set(sb)):
        ca, cb = (sa.get(y) or {}).get("capex_usd"), (sb.get(y) or {}).get("capex_usd")
        spend.append(
            dict(
                year=y,
                a=ca,
                b=cb,
                diff=diff(ca, cb),
                budget_a=(sa.get(y) or {}).get("budget_usd"),
                budget_b=(sb.get(y) or {}).get("budget_usd"),
            )
        )
    pa = {(r["site"], r["period"]): r for r in A["power"]}
    pb = {(r["site"], r["period"]): r for r in B["power"]}
    power = []
    for site, p in sorted(set(pa) | set(pb)):
        ua = (pa.get((site, p)) or {}).get("used_mw")
        ub = (pb.get((site, p)) or {}).get("used_mw")
        power.append(
            dict(
                site=site,
                period=p,
                a=ua,
                b=ub,
                diff=diff(ua, ub),
                available_a=(pa.get((site, p)) or {}).get("available_mw"),
                available_b=(pb.get((site, p)) or {}).get("available_mw"),
            )
        )
    ba = {_binding_key(b): b for b in A["binding"]}
    bb = {_binding_key(b): b for b in B["binding"]}
    binding = []
    for key in list(dict.fromkeys(list(ba) + list(bb))):
        x, y = ba.get(key), bb.get(key)
        binding.append(
            dict(
                constraint=key,
                kind=(x or y or {}).get("kind"),
                in_a=x is not None,
                in_b=y is not None,
                periods_a=(x or {}).get("periods", []),
                periods_b=(y or {}).get("periods", []),
                dual_a=(x or {}).get("dual"),
                dual_b=(y or {}).get("dual"),
                unit=(x or y or {}).get("unit"),
            )
        )
    return dict(
        a=dict(scenario=A["scenario"], objective=A["objective"], overrides=_overrides(A)),
        b=dict(scenario=B["scenario"], objective=B["objective"], overrides=_overrides(B)),
        totals=totals,
        h100e=h100e,
        spend=spend,
        power=power,
        binding=binding,
    )


def _overrides(d: dict) -> list:
    inputs = d.get("inputs")
    return list(inputs.get("overrides") or []) if isinstance(inputs, dict) else []


def _n(v, fmt="{:,.0f}") -> str:
    return "-" if v is None else fmt.format(v)


def _signed(v, fmt="{:+,.0f}") -> str:
    if v is None:
        return "-"
    return "0" if abs(v) < 0.5 else fmt.format(v)


def _b(v) -> str:
    return "-" if v is None else f"${v / 1e9:,.2f}B"


def _db(v) -> str:
    return "-" if v is None else f"{'+' if v >= 0 else '-'}${abs(v) / 1e9:,.2f}B"


def format_compare(c: dict, name_a: str, name_b: str) -> str:
    """The comparison as text tables (B - A in the last column)."""
    L = [f"Compare A = {name_a} ({c['a']['objective']}) with B = {name_b} ({c['b']['objective']})"]
    for side in ("a", "b"):
        for r in c[side]["overrides"]:
            L.append(f"  {side.upper()}: --set {r.get('set', r.get('path'))}")
    t = c["totals"]
    L += ["", f"  {'':<22}{'A':>16}{'B':>16}{'B - A':>16}"]
    L.append(
        f"  {'H100e-quarters':<22}{_n(t['h100e_quarters']['a']):>16}"
        f"{_n(t['h100e_quarters']['b']):>16}{_signed(t['h100e_quarters']['diff']):>16}"
    )
    L.append(
        f"  {'capex':<22}{_b(t['capex_usd']['a']):>16}{_b(t['capex_usd']['b']):>16}"
        f"{_db(t['capex_usd']['diff']):>16}"
    )
    L.append(
        f"  {'H100e at the end':<22}{_n(t['h100e_at_end']['a']):>16}"
        f"{_n(t['h100e_at_end']['b']):>16}{_signed(t['h100e_at_end']['diff']):>16}"
    )
    L += ["", "H100e per quarter:", f"  {'period':<10}{'A':>12}{'B':>12}{'B - A':>12}"]
    for r in c["h100e"]:
        L.append(f"  {r['period']:<10}{_n(r['a']):>12}{_n(r['b']):>12}{_signed(r['diff']):>12}")
    L += ["", "Spend per year (capex; budget):", f"  {'year':<6}{'A':>18}{'B':>18}{'B - A':>12}"]
    for r in c["spend"]:
        a = f"{_b(r['a'])} of {_b(r['budget_a'])}" if r["a"] is not None else "-"
        b = f"{_b(r['b'])} of {_b(r['budget_b'])}" if r["b"] is not None else "-"
        L.append(f"  {r['year']:<6}{a:>18}{b:>18}{_db(r['diff']):>12}")
    L += ["", "Power used (MW, facility incl. PUE; A / B, difference where it changes):"]
    sites = list(dict.fromkeys(r["site"] for r in c["power"]))
    for site in sites:
        rows = [r for r in c["power"] if r["site"] == site]
        cells = []
        for r in rows:
            d = r["diff"]
            mark = "" if d is None or abs(d) < 0.5 else f" ({d:+,.0f})"
            cells.append(f"{r['period']} {_n(r['a'])}/{_n(r['b'])}{mark}")
        L.append(f"  {site}: " + ", ".join(cells))
    L += ["", "Binding constraints (shadow price per unit; A | B):"]
    if not c["binding"]:
        L.append("  none in either plan")
    for r in c["binding"]:
        where = "both" if r["in_a"] and r["in_b"] else ("A only" if r["in_a"] else "B only")

        def cell(periods, dual):
            if not periods and dual is None:
                return "-"
            ps = (
                ", ".join(periods)
                if len(periods) <= 3
                else f"{periods[0]}..{periods[-1]} ({len(periods)} quarters)"
            )
            return ps + (f" @ {dual:,.4g}" if isinstance(dual, (int, float)) and dual else "")

        L.append(
            f"  {r['constraint']:<28}{where:<8}{cell(r['periods_a'], r['dual_a'])} | "
            f"{cell(r['periods_b'], r['dual_b'])}"
        )
    return "\n".join(L)


def run(args: argparse.Namespace) -> int:
    A = _plan_of(args.a, args.set_a, args, "a")
    B = _plan_of(args.b, args.set_b, args, "b")
    c = compare_dicts(A, B)
    if args.json:
        print(json.dumps(c, indent=1, allow_nan=False))
    else:
        print(format_compare(c, _name(A, args.a), _name(B, args.b)))
    return 0
