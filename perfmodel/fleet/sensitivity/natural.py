"""Sensitivities of the fleet plan in natural steps (1 MW at a site, one purchase unit of an
offer's supply, $100M of budget, ...): each step's dual estimate and valid range from
HiGHS's duals and ranging, and the optimum's change when the LP is re-solved with the
step, ranked by the latter; :func:`range_text` and :func:`sensitivity_sentence` put a
record in plain words."""

from __future__ import annotations

import numpy as np

from perfmodel.fleet.build import build_lp
from perfmodel.fleet.highs import HighsLP, status_name


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

    site_rows = (  # step kind, LP row kind, unit, label
        ("power", "power_mw", "MW", "MW more at site {s} from {p} on"),
        ("racks", "floor_racks", "racks", "rack more of floor space at site {s} from {p} on"),
        ("own_share", "own_share", "MW", "MW less own hardware required at site {s} from {p} on"),
    )
    for s in problem.sites:
        for kind, row, unit, words in site_rows:
            from_on(
                kind,
                {"site": s},
                lambda q, s=s, row=row: f"{row}[{s},{q}]",
                1.0,
                unit,
                1.0,
                lambda p, s=s, words=words: words.format(s=s, p=p),
            )
    # one quarter of delay of a site's power ramp: its MW one quarter later (``delta`` per
    # row: the schedule's change; a fraction theta of the step blends the two schedules).
    # An offer's delivery delay also moves column bounds: see _data_steps.
    pw = np.asarray(problem.power_avail_mw, np.float64)
    for s, site in enumerate(problem.sites):
        rows, delta, pers = [], [], []
        for t, p in enumerate(P[1:], start=1):
            nm = f"power_mw[{site},{p}]"
            d = pw[s, t - 1] - pw[s, t]
            if nm in at and d != 0.0:
                rows.append(at[nm])
                delta.append(d)
                pers.append(p)
        if rows:
            out.append(
                dict(
                    kind="power_delay",
                    site=site,
                    periods=pers,
                    rows=rows,
                    delta=np.asarray(delta),
                    step=1.0,
                    unit="quarters",
                    label=f"quarter of delay of site {site}'s power ramp (its MW one quarter later)",
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


def _solve_tol(base, to_obj: float) -> float:
    """What two LP solves may differ by in the objective's natural unit: HiGHS's ~1e-9
    relative accuracy on the optimum (a min-cost optimum of $5B: ~$5), plus 1e-6."""
    return 1e-6 + 1e-9 * abs(base.objective * to_obj)


_DIFFER_DEGENERATE = (
    "the step is within the dual's range but the re-solve differs (a degenerate "
    "optimum with another basis); the re-solved figure is the exact one"
)


def _finite_or_none(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def range_text(lo: float | None, hi: float | None, unit: str) -> str:
    """The interval of a shadow price in plain words: ``"valid for -6..+3,498 chips"``,
    ``"valid for +0..+$2.10B"``; None is no limit that way, said in words
    (``"valid for +0 units and any increase"``), never as ``inf``."""

    pct = "%" if unit == "%" else ""

    def amount(v: float) -> str:
        a = abs(v)
        if unit == "USD":
            txt = f"${a / 1e9:,.2f}B" if a >= 1e9 else f"${a / 1e6:,.0f}M"
        else:
            txt = f"{a:,.0f}" if a >= 100 or a == 0 else f"{a:.3g}"
        return f"{'-' if v < 0 else '+'}{txt}{pct}"

    tail = {"USD": "", "%": " of the price"}.get(unit, f" {unit}")
    # an open side is said in words: the output never prints "inf"
    if lo is None:
        if hi is None:
            return "valid for any step"
        return f"valid for any decrease up to {amount(hi)}{tail}"
    if hi is None:
        return f"valid for {amount(lo)}{tail} and any increase"
    return f"valid for {amount(lo)}..{amount(hi)}{tail}"


#: The price step: 10% lower (percent of the offer's unit price).
PRICE_STEP_PCT = -10.0
_STEP_NOTES = {
    "price": (
        "a price is a coefficient of the capex rows, not a right-hand side: the optimum is "
        "smooth but not linear in it even where the basis holds, so the re-solve is the "
        "exact figure"
    ),
}


def _lp_plus(lp, d, s: float):
    """The LP whose data are ``lp + s * d`` (``d``: an LP of data differences; its
    bounds' differences are 0 where a bound is infinite)."""
    import dataclasses

    return dataclasses.replace(
        lp,
        c=np.asarray(lp.c) + s * np.asarray(d.c),
        A_ub=lp.A_ub + s * d.A_ub,
        b_ub=np.asarray(lp.b_ub) + s * np.asarray(d.b_ub),
        hi=np.asarray(lp.hi) + s * np.asarray(d.hi),
    )


def _lp_difference(lp2, lp):
    """``lp2 - lp`` field by field (c, A_ub, b_ub, hi: an infinite bound stays put)."""
    import dataclasses

    h2, h1 = np.asarray(lp2.hi, np.float64), np.asarray(lp.hi, np.float64)
    if np.any(np.isfinite(h2) != np.isfinite(h1)):
        raise ValueError("the step makes a column bound finite or infinite")
    return dataclasses.replace(
        lp2,
        c=np.asarray(lp2.c) - np.asarray(lp.c),
        A_ub=lp2.A_ub - lp.A_ub,
        b_ub=np.asarray(lp2.b_ub) - np.asarray(lp.b_ub),
        hi=np.where(np.isfinite(h1), h2 - np.where(np.isfinite(h1), h1, 0.0), 0.0),
    )


def _basis_holds(lp, basis) -> bool:
    """Whether ``basis`` is optimal for ``lp``: HiGHS's simplex started from it
    (presolve off) stops at once, with no iteration."""

    m = HighsLP(lp, presolve="off")
    m.h.setOptionValue("solver", "simplex")
    m.h.setBasis(basis)
    m.h.run()
    info = m.h.getInfo()
    ok = status_name(m.h.getModelStatus()) == "optimal"
    return ok and int(info.simplex_iteration_count) == 0


def _basis_interval(lp, d, basis, lo: float, hi: float, steps: int = 12):
    """``(s_lo, s_hi)``: how far ``s`` can move each way (within ``[lo, hi]``) with the
    optimal ``basis`` of ``lp`` staying optimal for ``lp + s d`` (bisection of HiGHS warm
    starts; ``steps`` halvings per side)."""
    out = []
    for end in (lo, hi):
        if _basis_holds(_lp_plus(lp, d, end), basis):
            out.append(end)
            continue
        good, bad = 0.0, end
        for _ in range(steps):
            mid = 0.5 * (good + bad)
            if _basis_holds(_lp_plus(lp, d, mid), basis):
                good = mid
            else:
                bad = mid
        out.append(good)
    return out[0], out[1]


def _data_steps(problem) -> list[dict]:
    """Steps that move LP data other than right-hand sides alone, each as the Problem at
    one step: 10% lower price of an offer (the capex rows' coefficients, and the
    objective's), one purchase unit more supply of an offer in a quarter and one quarter
    of delay of its deliveries (both move the supply rows and the purchase columns'
    bounds ``buy <= supply``, which bind together: a row alone would move nothing)."""
    import dataclasses

    price = np.asarray(problem.unit_price_usd, np.float64)
    sup = np.asarray(problem.supply_units, np.float64)
    allowed = np.asarray(problem.allowed, np.float64)
    P = problem.periods
    out = []
    cpu = np.asarray(problem.chips_per_unit, np.float64)
    for k, o in enumerate(problem.offers):
        if not allowed[k].any():
            continue
        for t, p in enumerate(P):  # one purchase unit more supply in a quarter
            if not (allowed[k, :, t].any() and np.isfinite(sup[k, t])):
                continue
            more = sup.copy()
            more[k, t] += 1.0
            out.append(
                dict(
                    kind="supply",
                    offer=o,
                    periods=[p],
                    step=1.0,
                    unit="units",
                    label=f"unit ({cpu[k]:,.0f} chips) more supply of {o} in {p}",
                    problem=dataclasses.replace(problem, supply_units=more),
                    per_step=1.0,
                    search=(-float(sup[k, t]), max(4.0 * float(sup[k, t]), 100.0)),
                    steps=16,
                )
            )
        if not (sup[k] > 0).any():
            continue
        if price[k] > 0:
            cut = price.copy()
            cut[k] *= 1.0 + PRICE_STEP_PCT / 100.0
            p0 = float(price[k])
            out.append(
                dict(
                    kind="price",
                    offer=o,
                    periods=list(P),
                    step=PRICE_STEP_PCT,
                    unit="%",
                    unit_price_usd=p0,
                    label=f"10% lower price of {o} (${_money(p0)} -> ${_money(0.9 * p0)} a unit)",
                    problem=dataclasses.replace(problem, unit_price_usd=cut),
                    per_step=PRICE_STEP_PCT,  # unit (percent) per step of the direction
                    search=(-9.9, 10.0),  # steps each way: -99%..+100% of the price
                )
            )
        if np.all(np.isfinite(sup[k])):
            late = sup.copy()
            late[k] = np.concatenate([[0.0], sup[k, :-1]])
            moved = [p for t, p in enumerate(P) if late[k, t] != sup[k, t]]
            if moved:
                out.append(
                    dict(
                        kind="supply_delay",
                        offer=o,
                        periods=moved,
                        step=1.0,
                        unit="quarters",
                        label=(
                            f"quarter of delay of {o}'s deliveries (its supply schedule one "
                            "quarter later)"
                        ),
                        problem=dataclasses.replace(problem, supply_units=late),
                        per_step=1.0,
                        search=(-1.0, 1.0),
                    )
                )
    return out


def _data_step_records(problem, lp, basis, base, to_obj, mincost, n: dict) -> list[dict]:
    """Records of :func:`_data_steps` (the ``n[kind]`` largest envelope figures of each
    kind, all where a kind is not in ``n``): the
    envelope figure (the Lagrangian's derivative along the step, exact as the LP's data
    are linear in it), the re-solve (the LP rebuilt at the step), and the range of the
    step over which the base optimum's ``basis`` holds (HiGHS warm starts)."""

    x, y = np.asarray(base.x, np.float64), np.asarray(base.y_ub, np.float64)
    c = np.asarray(lp.c, np.float64)
    r = c - csr_t_dot(lp.A_ub, y)  # reduced costs
    hi = np.asarray(lp.hi, np.float64)
    mu_hi = np.where(np.isfinite(hi), np.maximum(r, 0.0), 0.0)
    cands = []
    for st in _data_steps(problem):
        lp2 = build_lp(st["problem"])
        d = _lp_difference(lp2, lp)
        slope = float(
            np.asarray(d.c) @ x
            - y @ (d.A_ub @ x)
            + y @ np.asarray(d.b_ub, np.float64)
            + mu_hi @ np.asarray(d.hi, np.float64)
        )
        cands.append((st, lp2, d, slope))
    out = []
    for kind in dict.fromkeys(st["kind"] for st, *_ in cands):
        mine = sorted((cd for cd in cands if cd[0]["kind"] == kind), key=lambda cd: -abs(cd[3]))
        if kind == "supply":  # a relaxation: no gain where the dual is 0 (concavity)
            mine = [cd for cd in mine if abs(cd[3]) > 1e-9 * (1.0 + abs(base.objective))]
        for st, lp2, d, slope in mine[: n.get(kind, len(mine))]:
            est = slope * to_obj
            new = HighsLP(lp2).solve()
            res = (new.objective - base.objective) * to_obj if new.status == "optimal" else None
            s_lo, s_hi = _basis_interval(lp, d, basis, *st["search"], steps=st.get("steps", 12))
            within = s_hi >= 1.0 - 1e-9
            if res is None:
                note = "the LP with this step is infeasible"
            elif abs(res - est) > 1e-6 * max(abs(res), abs(est)) + _solve_tol(base, to_obj):
                note = _STEP_NOTES.get(kind, _DIFFER_DEGENERATE) if within else _DIFFER_NOTE
            else:
                note = None
            ends = sorted((s_lo * st["per_step"], s_hi * st["per_step"]))
            drop = ("problem", "per_step", "search", "steps")
            rec = {k: v for k, v in st.items() if k not in drop}
            rec.update(
                dual_estimate=est,
                dual=est / st["step"],
                resolved=res,
                objective_unit="USD of capex" if mincost else "H100e-quarters",
                valid_from=ends[0],
                valid_to=ends[1],
                step_within_range=bool(within),
                note=note,
            )
            out.append(rec)
    return out


def csr_t_dot(A, y) -> np.ndarray:
    """``A^T y`` for a dense or scipy-sparse ``A``."""
    return np.asarray(A.T @ np.asarray(y, np.float64), np.float64).reshape(-1)


def _money(v: float) -> str:
    return f"{v / 1e6:,.2f}M" if v >= 1e6 else f"{v / 1e3:,.1f}k" if v >= 1e3 else f"{v:,.0f}"


def natural_sensitivities(problem, top: int = 8, *, candidates: int = 24) -> list[dict]:
    """What one natural step of each resource or rule is worth, on the LP relaxation.

    Steps: 1 MW at a site from a quarter on; 1 rack of floor space from a quarter on;
    one purchase unit of an offer's supply in a quarter; $100M of budget in a year; one
    numerator unit of a ratio rule from a quarter on; 1 MW less own hardware required;
    1,000 H100e more of the min-cost target; one quarter of delay of an offer's
    deliveries (``supply_delay``: its supply schedule one quarter later, the last
    quarter's supply past the horizon) or of a site's power ramp (``power_delay``: its MW
    one quarter later; ranges in quarters, a fraction theta being the blend of the two
    schedules); 10% lower price of an offer (``price``: ``step`` -10, ``unit`` "%";
    ``dual_estimate`` from the Lagrangian's derivative in the price, ``valid_from``/
    ``valid_to`` the price change in % over which the optimal basis holds, found by
    warm-started HiGHS re-solves: HiGHS ranges right-hand sides and costs, not matrix
    coefficients). Each record has ``kind`` and its keys (site,
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
    the largest of each kind, and the min-cost target; the ``top`` largest |resolved|
    are returned, plus the largest of each kind not among them (so that every kind of
    step is shown once).
    """

    lp = build_lp(problem)
    model = HighsLP(lp)
    base = model.solve()
    if base.status != "optimal":
        return []
    basis = model.h.getBasis()  # the base optimum's (re-solves below move the model's)
    y = np.asarray(base.y_ub, np.float64)
    mincost = problem.objective == "min-cost"
    to_obj = -1e6 if mincost else 1.0  # LP objective (-M$ for min-cost) -> reported units
    groups = _row_groups(problem, lp)
    for g in groups:
        est_lp = float(np.sum(y[g["rows"]] * g["delta"]))  # LP objective units per step
        g["dual_estimate"] = est_lp * to_obj
        g["dual"] = g["dual_estimate"] / g["step"]
    tol = 1e-9 * max([abs(g["dual_estimate"]) for g in groups] + [1e-300])
    # a delay is not a relaxation: its loss can exceed the dual (concavity), even at a
    # zero dual, so every delay is a candidate
    cand = [g for g in groups if abs(g["dual_estimate"]) > tol or g["kind"] == "power_delay"]
    cand.sort(key=lambda g: -abs(g["dual_estimate"]))
    firsts = {}
    for g in cand:
        firsts.setdefault(g["kind"], id(g))
    cand = cand[:candidates] + [
        g
        for g in cand[candidates:]
        if g["kind"] in ("target", "power_delay") or firsts[g["kind"]] == id(g)
    ]
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
        elif abs(res - est) > 1e-6 * max(abs(res), abs(est)) + _solve_tol(base, to_obj):
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
    out += _data_step_records(problem, lp, basis, base, to_obj, mincost, n={"supply": candidates})
    key = lambda d: -abs(d["resolved"]) if d["resolved"] is not None else -np.inf  # noqa: E731
    out.sort(key=key)
    shown = out[:top]
    kinds = {d["kind"] for d in shown}
    for d in out[top:]:
        if d["kind"] not in kinds:
            shown.append(d)
            kinds.add(d["kind"])
    return shown


def sensitivity_sentence(rec: dict) -> str:
    """One line for a :func:`natural_sensitivities` record (natural units, both figures)."""
    lead = "" if rec["kind"] in ("budget", "ratio", "price") else f"{rec['step']:,.0f} "
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
    if rec["note"] and rec["kind"] == "price" and rec.get("step_within_range", False):
        line += "; they differ: the optimum is not linear in a price even where the basis holds, the re-solve is exact"
    elif rec["note"] and rec.get("step_within_range", False):
        line += "; they differ at a degenerate optimum: the re-solve is exact"
    elif rec["note"]:
        line += "; they differ: the step goes past that range, where another limit starts to bind"
    return line
