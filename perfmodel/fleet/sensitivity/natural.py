"""Sensitivities of the fleet plan in natural steps (1 MW at a site, one purchase unit of an
offer's supply, $100M of budget, ...): each step's dual estimate and valid range from
HiGHS's duals and ranging, and the optimum's change when the LP is re-solved with the
step, ranked by the latter; :func:`range_text` and :func:`sensitivity_sentence` put a
record in plain words."""

from __future__ import annotations

import numpy as np


def _row_groups(problem, lp) -> list[dict]:
    """Candidate relaxations of the fleet LP in natural steps, one per (kind, key, first
    period): ``rows`` (inequality-row indices), ``delta`` (rhs change per row for one
    step, row units; the target is tightened, so its delta is negative) and the labels."""
    names = tuple(lp.row_names)
    at = {nm: i for i, nm in enumerate(names)}
    P = problem.periods
    out = []

    def from_on(kind, key, fmt, step, unit, delta, label):
        for t, p in enumerate(P):
            rows = [at[fmt(q)] for q in P[t:] if fmt(q) in at]
            if rows:
                out.append(
                    dict(
                        kind=kind,
                        **key,
                        periods=list(P[t:]),
                        rows=rows,
                        delta=delta,
                        step=step,
                        unit=unit,
                        label=label(p),
                    )
                )

    for s in problem.sites:
        from_on(
            "power",
            {"site": s},
            lambda q, s=s: f"power_mw[{s},{q}]",
            1.0,
            "MW",
            1.0,
            lambda p, s=s: f"MW more at site {s} from {p} on",
        )
        from_on(
            "racks",
            {"site": s},
            lambda q, s=s: f"floor_racks[{s},{q}]",
            1.0,
            "racks",
            1.0,
            lambda p, s=s: f"rack more of floor space at site {s} from {p} on",
        )
        from_on(
            "own_share",
            {"site": s},
            lambda q, s=s: f"own_share[{s},{q}]",
            1.0,
            "MW",
            1.0,
            lambda p, s=s: f"MW less own hardware required at site {s} from {p} on",
        )
    for k, o in enumerate(problem.offers):
        cpu = float(np.asarray(problem.chips_per_unit)[k])
        for p in P:
            nm = f"supply_units[{o},{p}]"
            if nm in at:
                out.append(
                    dict(
                        kind="supply",
                        offer=o,
                        periods=[p],
                        rows=[at[nm]],
                        delta=1.0,
                        step=1.0,
                        unit="units",
                        label=f"unit ({cpu:,.0f} chips) more supply of {o} in {p}",
                    )
                )
    for y in problem.years:
        nm = f"capex_musd[{y}]"
        if nm in at:
            out.append(
                dict(
                    kind="budget",
                    year=y,
                    periods=[p for p in P if p.startswith(y)],
                    rows=[at[nm]],
                    delta=100.0,
                    step=100e6,
                    unit="USD",
                    label=f"$100M more capex budget in {y}",
                )
            )
    cpu_all = np.asarray(problem.chips_per_unit)
    for r in range(len(problem.ratio_from)):
        where = "all" if problem.ratio_site[r] < 0 else problem.sites[problem.ratio_site[r]]
        num = [problem.offers[k] for k in problem.ratio_num[r]]
        chips = float(max(cpu_all[list(problem.ratio_num[r])], default=1.0))
        from_on(
            "ratio",
            {"rule": r, "site": where, "offers": num},
            lambda q, r=r, w=where: f"ratio[{r},{w},{q}]",
            chips,
            "chips",
            chips,
            lambda p, r=r, w=where, num=num, c=chips: (
                f"{c:,.0f} {'chip' if c == 1 else 'chips'} less of {'+'.join(num)} required by ratio rule {r} "
                f"({'all sites' if w == 'all' else 'site ' + w}) from {p} on"
            ),
        )
    if problem.objective == "min-cost":
        tp = P[problem.target_period]
        nm = f"target_h100e[{tp}]"
        out.append(
            dict(
                kind="target",
                periods=[tp],
                rows=[at[nm]],
                delta=-1000.0,
                step=1000.0,
                unit="H100e",
                label=f"H100e more of target in {tp}",
            )
        )
    return out


_DIFFER_NOTE = (
    "the step goes past the range where the dual holds: another constraint starts to "
    "bind or a value-curve segment ends there, so the re-solve differs from the dual"
)
_DIFFER_DEGENERATE = (
    "the step is within the dual's range but the re-solve differs (a degenerate "
    "optimum with another basis); the re-solved figure is the exact one"
)


def _finite_or_none(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def range_text(lo: float | None, hi: float | None, unit: str) -> str:
    """The interval of a shadow price in plain words: ``"valid for -6..+3,498 chips"``,
    ``"valid for +0..+$2.10B"`` (None: no limit that way)."""

    def amount(v, sign):
        if v is None:
            return f"{sign}inf"
        if unit == "USD":
            a = abs(v)
            txt = f"${a / 1e9:,.2f}B" if a >= 1e9 else f"${a / 1e6:,.0f}M"
            return f"{'-' if v < 0 else '+'}{txt}"
        a = abs(v)
        txt = f"{a:,.0f}" if a >= 100 or a == 0 else f"{a:.3g}"
        return f"{'-' if v < 0 else '+'}{txt}"

    tail = "" if unit == "USD" else f" {unit}"
    return f"valid for {amount(lo, '-')}..{amount(hi, '+')}{tail}"


def natural_sensitivities(problem, top: int = 8, *, candidates: int = 24) -> list[dict]:
    """What one natural step of each resource or rule is worth, on the LP relaxation.

    Steps: 1 MW at a site from a quarter on; 1 rack of floor space from a quarter on;
    one purchase unit of an offer's supply in a quarter; $100M of budget in a year; one
    numerator unit of a ratio rule from a quarter on; 1 MW less own hardware required;
    1,000 H100e more of the min-cost target. Each record has ``kind`` and its keys (site,
    offer, year, rule, periods), ``step`` and ``unit``, ``dual`` (objective units per
    step unit: the marginal value at zero step, from HiGHS's duals), ``dual_estimate``
    (``dual * step``), ``valid_from``/``valid_to`` (the range of the step, in ``unit``,
    over which the dual holds exactly: HiGHS ranging at the optimal basis; None = no
    limit that way), ``step_within_range``, ``resolved`` (the optimum's change when the
    LP is re-solved with the step; None if that LP is infeasible), ``objective_unit`` and
    ``note`` (why the two differ, or None). Within the range the re-solve equals
    ``dual * step``; past it, the re-solve is the exact figure. Objective: H100e-quarters for max-h100e; for min-cost the
    change of capex in USD (positive = the step costs more capex).

    Candidates are the ``candidates`` largest dual estimates (the re-solved gain of a
    relaxation is at most the dual estimate, the LP optimum being concave in the rhs),
    plus the min-cost target; the ``top`` largest |resolved| are returned.
    """
    from perfmodel.fleet.build import build_lp
    from perfmodel.fleet.highs import HighsLP

    lp = build_lp(problem)
    model = HighsLP(lp)
    base = model.solve()
    if base.status != "optimal":
        return []
    y = np.asarray(base.y_ub, np.float64)
    mincost = problem.objective == "min-cost"
    to_obj = -1e6 if mincost else 1.0  # LP objective (-M$ for min-cost) -> reported units
    groups = _row_groups(problem, lp)
    for g in groups:
        est_lp = float(np.sum(y[g["rows"]]) * g["delta"])  # LP objective units per step
        g["dual_estimate"] = est_lp * to_obj
        g["dual"] = g["dual_estimate"] / g["step"]
    tol = 1e-9 * max([abs(g["dual_estimate"]) for g in groups] + [1e-300])
    cand = [g for g in groups if abs(g["dual_estimate"]) > tol]
    cand.sort(key=lambda g: -abs(g["dual_estimate"]))
    cand = cand[:candidates] + [g for g in cand[candidates:] if g["kind"] == "target"]
    if mincost and not any(g["kind"] == "target" for g in cand):
        cand += [g for g in groups if g["kind"] == "target"]
    out = []
    for g in cand:
        rows = np.asarray(g["rows"], np.int64)
        rng = model.rhs_ranging(rows, g["delta"])  # the basis of ``base``: its price and range
        est = rng.slope * to_obj
        g["dual_estimate"], g["dual"] = est, est / g["step"]
        b0 = model.b_ub[rows].copy()
        model.set_b_ub(rows, b0 + g["delta"])
        new = model.solve()
        model.set_b_ub(rows, b0)
        res = (new.objective - base.objective) * to_obj if new.status == "optimal" else None
        within = rng.hi >= 1.0 - 1e-9  # does one whole step stay in the range?
        if res is None:
            note = "the LP with this step is infeasible"
        elif abs(res - est) > 1e-6 * max(abs(res), abs(est)) + 1e-6:
            note = _DIFFER_NOTE if not within else _DIFFER_DEGENERATE
        else:
            note = None
        rec = {k: v for k, v in g.items() if k not in ("rows", "delta")}
        rec.update(
            resolved=res,
            objective_unit="USD of capex" if mincost else "H100e-quarters",
            valid_from=_finite_or_none(rng.lo * g["step"]),
            valid_to=_finite_or_none(rng.hi * g["step"]),
            step_within_range=bool(within),
            note=note,
        )
        out.append(rec)
    out.sort(key=lambda d: -abs(d["resolved"]) if d["resolved"] is not None else -np.inf)
    return out[:top]


def sensitivity_sentence(rec: dict) -> str:
    """One line for a :func:`natural_sensitivities` record (natural units, both figures)."""
    lead = "" if rec["kind"] in ("budget", "ratio") else f"{rec['step']:,.0f} "
    head = f"{lead}{rec['label']}"
    h100e = rec["objective_unit"] == "H100e-quarters"

    def fig(v):
        if h100e:
            return f"{v:,.0f} H100e-quarters"
        return f"{'+' if v > 0 else '-'}${abs(v) / 1e6:,.2f}M"

    res, est = rec["resolved"], rec["dual_estimate"]
    rng = ""
    if "valid_from" in rec:
        rng = ", " + range_text(rec["valid_from"], rec["valid_to"], rec["unit"])
    if res is None:
        return f"{head}: the LP becomes infeasible (dual estimate {fig(est)}{rng})"
    if h100e:
        line = f"{head} is worth {fig(res)} re-solved (dual {fig(est)}{rng})"
    else:
        line = f"{head} changes capex by {fig(res)} re-solved (dual {fig(est)}{rng})"
    if rec["note"] and rec.get("step_within_range", False):
        line += "; they differ at a degenerate optimum: the re-solve is exact"
    elif rec["note"]:
        line += "; they differ: the step goes past that range, where another limit starts to bind"
    return line
