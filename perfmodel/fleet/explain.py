"""Why the plan is what it is: shadow prices with their ranges, "why not" lines for what
was never bought, and the inputs an independent check of the plan needs.

Everything here reads the LP relaxation, solved once by HiGHS (:class:`LPExplain`):

* **Ranges** (:meth:`LPExplain.price_range`): a binding rule's shadow price holds
  exactly while its right-hand side moves within an interval (HiGHS ranging at the
  optimal basis, :meth:`perfmodel.fleet.highs.HighsLP.rhs_ranging`), given in the rule's
  own unit ("valid for +0..+37 MW").
* **Why not** (:meth:`LPExplain.why_not`): for each offer x site with no purchase, either
  the placement rule that forbids it (cooling, the offer's sites, the horizon, supply) or
  the LP reduced cost of one unit, split by the constraints it draws on: what the unit
  returns (H100e-quarters, or for min-cost the capex its H100e save) against what each
  constraint it uses is worth at its shadow price; the largest is the blocking one.
* **Inputs** (:func:`plan_inputs`): supply after events, the existing fleet, prices and
  picks used, value-curve breakpoints, rack use, the values of ratio and own-share rules
  and the command-line overrides, so that the plan JSON can be checked on its own.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from perfmodel.fleet.build import build_lp, segment_slopes, var_index
from perfmodel.fleet.check import installed_units
from perfmodel.fleet.highs import HighsLP
from perfmodel.fleet.lp import split_row_name

__all__ = ["LPExplain", "why_not_sentence", "plan_inputs", "record_rows"]


def record_rows(problem, rec: dict) -> tuple[list[str], float, float]:
    """LP row names of a binding record (:func:`perfmodel.fleet.binding.binding_records`),
    the record's unit per row unit (1e6 USD per M$ for budget rows) and the sign that turns
    a rhs increase into the record's direction (-1 for the min-cost target: its row is
    ``-H100e <= -target``, so more target is a lower rhs)."""
    k, ps = rec["kind"], rec["periods"]
    if k == "power":
        return [f"power_mw[{rec['site']},{p}]" for p in ps], 1.0, 1.0
    if k == "budget":
        return [f"capex_musd[{rec['year']}]"], 1e6, 1.0
    if k == "supply":
        return [f"supply_units[{rec['offer']},{p}]" for p in ps], 1.0, 1.0
    if k == "racks":
        return [f"floor_racks[{rec['site']},{p}]" for p in ps], 1.0, 1.0
    if k == "ratio":
        return [f"ratio[{rec['rule']},{rec['site']},{p}]" for p in ps], 1.0, 1.0
    if k == "own_share":
        return [f"own_share[{rec['site']},{p}]" for p in ps], 1.0, 1.0
    if k == "target":
        return [f"target_h100e[{p}]" for p in ps], 1.0, -1.0
    raise ValueError(f"binding record kind = {k!r} unknown")


#: (kind, words) of an LP row without its period, per row kind: the words are a template
#: over the row's arguments (``{0}``, ...) and ``where`` (a ratio rule's site or all sites).
_ROW_LABELS = {
    "power_mw": ("power", "power at site {0}"),
    "capex_musd": ("budget", "budget {0}"),
    "supply_units": ("supply", "supply of {0}"),
    "floor_racks": ("racks", "floor space at site {0}"),
    "ratio": ("ratio", "ratio rule {0} ({where})"),
    "own_share": ("own_share", "own-hardware share at site {0}"),
    "target_h100e": ("target", "the H100e target in {0}"),
    "link": ("value", "value"),
}


def _row_label(problem, name: str) -> tuple[str, str]:
    """(kind, words) of an LP row, without its period: "power at site cortex"."""
    kind, a = split_row_name(name)
    if kind not in _ROW_LABELS:
        return kind, kind
    short, words = _ROW_LABELS[kind]
    where = ("all sites" if a[1] == "all" else f"site {a[1]}") if kind == "ratio" else ""
    return short, words.format(*a, where=where)


_STRUCTURAL = (
    ("needs liquid cooling", "cooling"),
    ("is not in the offer's sites", "sites"),
    ("past the horizon", "horizon"),
    ("no supply", "supply"),
)


class LPExplain:
    """The LP relaxation of ``problem`` solved once by HiGHS, for shadow prices, their
    ranges and reduced costs. ``ok`` is False when the relaxation is not optimal (then
    every method returns nothing)."""

    def __init__(self, problem):

        self.problem = problem
        self.lp = build_lp(problem)
        self.model = HighsLP(self.lp)
        self.base = self.model.solve()
        self.ok = self.base.status == "optimal"
        self.at = {nm: i for i, nm in enumerate(self.lp.row_names)}
        # LP objective units -> reported units: H100e-quarters, or USD where the LP
        # maximises -M$ (min-cost and the other cost objectives)
        self.to_obj = -1e6 if problem.objective.startswith("min-") else 1.0
        # segment slopes [K,S,J] (H100e per chip) and lengths (chips), in NumPy
        as_np = jax.tree_util.tree_map(lambda v: np.asarray(v, np.float64), problem)
        self._slopes = tuple(np.asarray(v) for v in segment_slopes(as_np, np))

    # ------------------------------------------------------------------ shadow prices
    def row_duals(self) -> dict[str, float]:
        """Nonzero duals by row name (LP objective units per row unit)."""
        if not self.ok:
            return {}
        return {nm: float(y) for nm, y in zip(self.lp.row_names, self.base.y_ub) if y != 0}

    def price_range(self, rec: dict) -> dict:
        """``valid_from``/``valid_to``: the change of the record's limit (in its ``unit``)
        over which its shadow price holds exactly (None = no limit that way), from HiGHS
        ranging; {} when the LP is not optimal or the rule has no rows."""
        if not self.ok:
            return {}
        names, per, sign = record_rows(self.problem, rec)
        rows = [self.at[n] for n in names if n in self.at]
        if not rows:
            return {}
        r = self.model.rhs_ranging(rows, 1.0)
        lo, hi = _to_record(r.lo, r.hi, per, sign)
        out: dict[str, Any] = dict(valid_from=_fin(lo), valid_to=_fin(hi))
        if r.lo == 0.0 or r.hi == 0.0:
            out.update(self._sides(rows, per, sign, r))
        return out

    #: The step (row units) that probes a degenerate side: inside the first linear piece
    #: of every row kind's value function in practice (1e-4 MW, unit, chip, M$ = $100).
    SIDE_STEP = 1e-4

    def _sides(self, rows, per: float, sign: float, r) -> dict[str, Any]:
        """A degenerate price (its range has a side of width 0, so the dual holds for no
        step that way): the price each way, re-solved just past the kink
        (:meth:`perfmodel.fleet.highs.HighsLP.rhs_side`), with the interval over which
        each holds, and what makes it degenerate (``"bound"``: a purchase bound of a
        column in the rule binds at the same point, e.g. supply offered at one site only;
        ``"row"``: another constraint does). ``price_up``/``price_down`` are in the
        record's units per unit (None: infeasible that way)."""
        price = lambda slope: float(sign * slope * self.to_obj / per)  # noqa: E731
        out: dict[str, Any] = dict(degenerate=self._degenerate_with(rows))
        for side, key in ((1.0, "up"), (-1.0, "down")):
            row_side = side * sign  # the rows' rhs moves this way (the target: reversed)
            width = r.hi if row_side > 0 else r.lo
            rs = r if width != 0.0 else self.model.rhs_side(rows, 1.0, row_side * self.SIDE_STEP)
            if rs is None:
                out[f"price_{key}"], out[f"{key}_valid"] = None, None
                continue
            lo, hi = _to_record(rs.lo, rs.hi, per, sign)
            p = price(rs.slope)
            out[f"price_{key}"] = 0.0 if abs(p) <= 1e-9 * max(1.0, abs(price(r.slope))) else p
            out[f"{key}_valid"] = _fin(hi) if side > 0 else _fin(lo)
        return out

    def _degenerate_with(self, rows) -> str:
        """ "bound" when a column with an entry in ``rows`` sits at a finite upper bound
        > 0 at the LP optimum, else "row"."""
        import scipy.sparse as sp

        A = sp.csr_array(self.lp.A_ub)[np.asarray(rows)]
        cols = np.unique(A.indices[A.data != 0])
        x = np.asarray(self.base.x, np.float64)[cols]
        hi = np.asarray(self.lp.hi, np.float64)[cols]
        at = np.isfinite(hi) & (hi > 0) & (x >= hi - 1e-9 * np.maximum(1.0, hi))
        return "bound" if at.any() else "row"

    def with_ranges(self, records: list[dict]) -> list[dict]:
        """Binding records with :meth:`price_range` added (for those with a shadow price)."""
        out = []
        for b in records:
            b = dict(b)
            if b.get("dual"):
                b.update(self.price_range(b))
            out.append(b)
        return out

    # ------------------------------------------------------------------ why not
    def _unit_value(self, k: int, s: int, t: int, x, y) -> float:
        """LP objective value of one more unit of offer k at site s from quarter t, from
        the value curve's marginal slope at the LP's installed level (the link rows' duals
        are not used: at an offer x site with nothing installed they are degenerate)."""

        pr = self.problem
        _, seg_ix = var_index(pr)
        slope, seglen = self._slopes
        cpu = float(np.asarray(pr.chips_per_unit)[k])
        w = np.asarray(pr.period_weight, np.float64)

        def marginal(tt):  # H100e per chip of the next chip at (k, s, tt)
            fill = x[seg_ix[k, s, tt]]
            open_ = np.flatnonzero(fill < seglen[k, s] * (1 - 1e-9) - 1e-12)
            return float(slope[k, s, open_[0]]) if len(open_) else 0.0

        T = len(pr.periods)
        if pr.objective == "min-cost":
            tp = pr.target_period
            name = f"target_h100e[{pr.periods[tp]}]"
            y_t = float(y[self.at[name]]) if name in self.at else 0.0
            return y_t * cpu * marginal(tp) if t <= tp else 0.0
        return float(sum(w[tt] * cpu * marginal(tt) for tt in range(t, T)))

    def why_not(self, buy_units) -> list[dict]:
        """One record per offer x site with no purchase in the plan ``buy_units`` [K,S,T].

        Structural: ``{"offer", "site", "kind": "structural", "blocking"`` (cooling, sites,
        horizon, supply) ``, "reason"}``. Otherwise, from the LP: ``"kind": "reduced_cost",
        "period"`` (the quarter where one unit comes closest to paying), ``"value"`` (what
        the unit's chips deliver, from the value curve's marginal slope; for min-cost the
        capex their H100e save at the target's shadow price), ``"gains"`` (rules it
        relieves, e.g. a ratio numerator), ``"returns"`` (value + gains), ``"costs"``
        ({constraint in words: what the unit uses of it at its shadow price}),
        ``"blocking"`` (the largest cost), ``"reduced_cost"`` (returns - costs, <= 0: what
        buying one unit would lose), ``"objective_unit"``; or ``"kind":
        "rounded"`` when the relaxation buys a fraction there that the integer plan does not.
        """
        pr = self.problem
        K, S, T = pr.shape
        buy = np.asarray(buy_units)
        bought = buy.sum(axis=2) > 0
        struct: dict[tuple[str, str], str] = {}
        for o, s, r in pr.unplaceable:
            struct.setdefault((o, s), r)
        out: list[dict] = []

        def note(offer, site, kind, **fields):
            out.append(dict(offer=offer, site=site, kind=kind, **fields))

        if self.ok:
            buy_ix, _ = var_index(pr)
            import scipy.sparse as sp

            A = sp.csc_array(self.lp.A_ub)
            y = np.asarray(self.base.y_ub, np.float64)
            x = np.asarray(self.base.x, np.float64)
            c = np.asarray(self.lp.c, np.float64)
            allowed = np.asarray(pr.allowed)
            sup = np.asarray(pr.supply_units)
        mincost = pr.objective == "min-cost"
        unit = "USD" if mincost else "H100e-quarters"
        for k, off in enumerate(pr.offers):
            for s, site in enumerate(pr.sites):
                if bought[k, s]:
                    continue
                reason = struct.get((off, site)) or struct.get((off, "*"))
                if reason is not None:
                    kind = next((b for key, b in _STRUCTURAL if key in reason), "rule")
                    note(off, site, "structural", blocking=kind, reason=reason)
                    continue
                if not self.ok or pr.objective not in ("max-h100e", "min-cost"):
                    continue  # reduced costs are split for these two objectives only
                # quarters it may be delivered here with supply left to buy (upper bound > 0)
                ts = [t for t in range(T) if allowed[k, s, t] > 0 and sup[k, t] > 0]
                if not ts:
                    note(
                        off,
                        site,
                        "structural",
                        blocking="supply",
                        reason="no supply in any quarter it can be delivered here",
                    )
                    continue
                cols = [int(buy_ix[k, s, t]) for t in ts]
                if x[cols].max() > 1e-6:
                    t = ts[int(np.argmax(x[cols]))]
                    note(
                        off,
                        site,
                        "rounded",
                        period=pr.periods[t],
                        lp_units=float(x[cols].max()),
                        reason=f"the LP relaxation buys {x[cols].max():.2g} units in "
                        f"{pr.periods[t]}; the integer plan buys none",
                    )
                    continue
                best = None
                for t, j in zip(ts, cols):
                    lo_, hi_ = A.indptr[j], A.indptr[j + 1]
                    idx, a = A.indices[lo_:hi_], A.data[lo_:hi_]
                    parts: dict[str, float] = {}
                    kinds: dict[str, str] = {}
                    for i, aij in zip(idx, a):
                        kd, words = _row_label(pr, self.lp.row_names[i])
                        if kd == "value":  # link rows: valued from the curve below
                            continue
                        parts[words] = parts.get(words, 0.0) - y[i] * aij
                        kinds[words] = kd
                    value = self._unit_value(k, s, t, x, y)  # LP objective units
                    rc = c[j] + value + sum(parts.values())
                    if best is None or rc > best[0]:
                        best = (rc, t, parts, kinds, c[j], value)
                assert best is not None
                rc, t, parts, kinds, cj, value = best
                conv = abs(self.to_obj)  # LP objective units -> reported units
                gains = {w: v * conv for w, v in parts.items() if v * conv > 1e-9}
                costs = {w: -v * conv for w, v in parts.items() if -v * conv > 1e-9}
                if mincost:  # the unit's own price (max-h100e: only the ~1e-9 tie-break)
                    costs["its price"] = -cj * conv
                    kinds["its price"] = "price"
                returns = value * conv + sum(gains.values())
                blocking = max(costs, key=lambda w: costs[w]) if costs else None
                note(
                    off,
                    site,
                    "reduced_cost",
                    period=pr.periods[t],
                    returns=float(returns),
                    value=float(value * conv),
                    gains={w: float(v) for w, v in gains.items()},
                    costs={w: float(v) for w, v in costs.items()},
                    blocking=blocking,
                    blocking_kind=kinds.get(blocking) if blocking else None,
                    reduced_cost=float(rc * conv),
                    objective_unit=unit,
                    counts=bool(np.asarray(pr.bp_h100e)[k, s].max() > 0),
                )
        return out


def _fin(v) -> float | None:
    return float(v) if np.isfinite(v) else None


def _to_record(lo: float, hi: float, per: float, sign: float) -> tuple[float, float]:
    """A theta interval of the LP rows (row units) in the record's units and direction."""
    return (lo * per, hi * per) if sign > 0 else (-hi * per, -lo * per)


def _money(v: float) -> str:
    a = abs(v)
    return f"${a / 1e9:,.2f}B" if a >= 1e9 else (f"${a / 1e6:,.2f}M" if a >= 1e6 else f"${a:,.0f}")


def why_not_sentence(rec: dict) -> str:
    """One line for a :meth:`LPExplain.why_not` record."""
    head = f"{rec['offer']} at {rec['site']}"
    if rec["kind"] in ("structural", "rounded"):
        return f"{head}: {rec['reason']}"
    usd = rec["objective_unit"] == "USD"
    fig = _money if usd else (lambda v: f"{v:,.0f} H100e-quarters")
    num = _money if usd else (lambda v: f"{v:,.0f}")
    costs = sorted(rec["costs"].items(), key=lambda kv: -kv[1])
    used = ", ".join(f"{w} worth {num(v)}" for w, v in costs[:3]) or "nothing"
    if usd:
        ret = f"saves {fig(rec['returns'])} of capex elsewhere (its H100e toward the target)"
    elif not rec["counts"] and rec["returns"] <= 0:
        ret = "counts no H100e and no rule needs more of it"
    else:
        ret = f"returns {fig(rec['returns'])}"
    rc = rec["reduced_cost"]
    scale = max(rec["returns"], sum(rec["costs"].values()), 1.0)
    if abs(rc) <= 1e-6 * scale:
        return (
            f"{head}: a tie: one unit from {rec['period']} {ret} and uses as much "
            f"({used}, at their shadow prices); the LP is indifferent and the plan buys elsewhere"
        )
    return (
        f"{head}: does not pay, mainly because of {rec['blocking']}: one unit from "
        f"{rec['period']} {ret} but uses "
        f"{used} (at their shadow prices): net {'+' if rc > 0 else '-'}{fig(abs(rc))} per unit"
    )


def _f(v) -> float:
    return float(v)


def plan_inputs(
    plan, overrides: list[dict] | None = None, pick: str | None = None
) -> dict[str, Any]:
    """The data an independent check of ``plan`` needs, keyed by names (JSON-ready):
    per offer the chips, power, racks per unit, the price used (after ``--pick`` and
    ``--price-scale``), supply per quarter after the delivery events, the allowed sites
    per quarter, own/counts and the value-curve breakpoints per site; per site the power
    available per quarter, PUE and floor space, the rack use per quarter; the existing
    fleet; the budget per year; each ratio and own-share rule with its value per quarter;
    the min-cost target; the ``--set`` overrides; the catalog pick (``pick``, default the
    Problem's); and per offer where its chip's figures come from (``chip_catalog``: the
    file, or ``built-in``) with the digest of its catalog records (``chip_digest``)."""

    pr = plan.problem
    K, S, T = pr.shape
    P = list(pr.periods)
    cpu = np.asarray(pr.chips_per_unit, np.float64)
    umw = np.asarray(pr.unit_power_w, np.float64) / 1e6
    rpu = np.asarray(pr.racks_per_unit, np.float64)
    allowed = np.asarray(pr.allowed) > 0
    sup = np.asarray(pr.supply_units, np.float64)
    ex = np.asarray(pr.existing_units, np.float64)
    inst = installed_units(pr, plan.buy_units)  # [K,S,T]
    chips = inst * cpu[:, None, None]
    bpx, bpy = np.asarray(pr.bp_chips), np.asarray(pr.bp_h100e)
    own = np.array(pr.own, dtype=bool).reshape(K)
    offers = {
        o: dict(
            chip=pr.chip_keys[k],
            chips_per_unit=_f(cpu[k]),
            unit_price_usd=_f(np.asarray(pr.unit_price_usd)[k]),
            unit_power_w=_f(np.asarray(pr.unit_power_w)[k]),
            racks_per_unit=_f(rpu[k]),
            own=bool(own[k]),
            supply_units=[_f(v) for v in sup[k]],
            allowed={pr.sites[s]: [P[t] for t in range(T) if allowed[k, s, t]] for s in range(S)},
            value_curve={
                pr.sites[s]: dict(
                    chips=[_f(v) for v in bpx[k, s]], h100e=[_f(v) for v in bpy[k, s]]
                )
                for s in range(S)
            },
        )
        for k, o in enumerate(pr.offers)
    }
    for k, c in enumerate(pr.chip_specs):
        rec: dict[str, Any] = offers[pr.offers[k]]
        rec.update(chip_catalog="built-in" if c.builtin else c.source, chip_digest=c.digest)
    racks_used = np.einsum("k,kst->st", rpu, inst)
    sites = {
        site: dict(
            power_mw=[_f(v) for v in np.asarray(pr.power_avail_mw)[s]],
            pue=_f(np.asarray(pr.pue)[s]),
            racks=_f(np.asarray(pr.racks)[s]),
            racks_used=[_f(v) for v in racks_used[s]],
        )
        for s, site in enumerate(pr.sites)
    }
    existing = [
        dict(offer=pr.offers[k], site=pr.sites[s], units=_f(ex[k, s]), chips=_f(ex[k, s] * cpu[k]))
        for k in range(K)
        for s in range(S)
        if ex[k, s] > 0
    ]
    ratios = []
    for r in range(len(pr.ratio_from)):
        ss = list(range(S)) if pr.ratio_site[r] < 0 else [pr.ratio_site[r]]
        num = chips[list(pr.ratio_num[r])][:, ss].sum(axis=(0, 1))
        den = chips[list(pr.ratio_den[r])][:, ss].sum(axis=(0, 1))
        ratios.append(
            dict(
                rule=r,
                site="all" if pr.ratio_site[r] < 0 else pr.sites[pr.ratio_site[r]],
                numerator=[pr.offers[k] for k in pr.ratio_num[r]],
                denominator=[pr.offers[k] for k in pr.ratio_den[r]],
                min_ratio=_f(np.asarray(pr.ratio_min)[r]),
                from_period=P[pr.ratio_from[r]] if pr.ratio_from[r] < T else None,
                numerator_chips=[_f(v) for v in num],
                denominator_chips=[_f(v) for v in den],
                ratio=[_f(n / d) if d > 0 else None for n, d in zip(num, den)],
            )
        )
    share = np.asarray(pr.own_share_min, np.float64)
    own_share = []
    for s, site in enumerate(pr.sites):
        if pr.policy_from[s] >= T:
            continue
        mw = umw[:, None] * inst[:, s, :]
        o_mw, tot = mw[own].sum(axis=0), mw.sum(axis=0)
        own_share.append(
            dict(
                site=site,
                share_min=_f(share[s]),
                from_period=P[pr.policy_from[s]],
                own_it_mw=[_f(v) for v in o_mw],
                total_it_mw=[_f(v) for v in tot],
                share=[_f(a / b) if b > 0 else None for a, b in zip(o_mw, tot)],
            )
        )
    d: dict[str, Any] = dict(
        pick=pick if pick is not None else pr.pick,
        value_source=dict(zip(pr.offers, pr.value_source)),
        years=list(pr.years),
        budget_usd={y: _f(v) for y, v in zip(pr.years, np.asarray(pr.budget_usd))},
        period_weight=[_f(v) for v in np.asarray(pr.period_weight)],
        offers=offers,
        sites=sites,
        existing=existing,
        ratios=ratios,
        own_share=own_share,
        overrides=list(overrides or []),
    )
    if pr.objective == "min-cost":
        d["target"] = dict(h100e=_f(np.asarray(pr.target_h100e)), period=P[pr.target_period])
    return d
