"""Sensitivities of the fleet LP's optimum, by the envelope theorem (no unrolling).

For ``opt(theta) = max { c @ x : A_ub x <= b_ub, A_eq x == b_eq, lo <= x <= hi }`` with
optimal primal ``x*`` and duals ``y_ub >= 0``, ``y_eq`` (from :func:`perfmodel.fleet.pdhg.solve_lp`
or HiGHS), the Lagrangian::

    L(x, y; lp) = c @ x + y_ub @ (b_ub - A_ub x) + y_eq @ (b_eq - A_eq x)
                  + mu_hi @ (hi - x) + mu_lo @ (x - lo)

with bound multipliers from the reduced cost ``r = c - A_ub^T y_ub - A_eq^T y_eq``
(``mu_hi = max(r, 0)``, ``mu_lo = max(-r, 0)`` where the bound is finite) gives, at the
optimum and with the solution held fixed::

    d opt / d c     = x*                    d opt / d b_ub = y_ub     d opt / d b_eq = y_eq
    d opt / d A_ub  = -y_ub x*^T            d opt / d A_eq = -y_eq x*^T
    d opt / d hi    = mu_hi                 d opt / d lo   = -mu_lo

and for LP data that are a differentiable function of parameters, ``lp = lp_fn(theta)``
(prices, site power ramps, chip specs through the value curves), the chain rule
``d opt / d theta = d L(x*, y*; lp_fn(theta)) / d theta`` (:func:`envelope_grad`).

Degenerate problems: where the optimal dual is not unique, ``opt`` has a kink in ``b``;
``opt`` is concave in ``(b_ub, b_eq)`` and any optimal dual is a supergradient, so the
reported ``y`` lies between the right and left derivatives (``d+ <= y <= d-``) rather
than equal to both. Likewise ``opt`` is convex in ``c`` and ``x*`` is a subgradient.
Use one-sided differences (:func:`finite_difference`) to see both sides.
"""

from __future__ import annotations

from collections.abc import Callable

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "LPGradients",
    "objective_gradients",
    "lagrangian",
    "envelope_grad",
    "spec_gradient",
    "scale_sensitivity",
    "highs_optimum",
    "row_sensitivity",
    "var_sensitivity",
    "row_index",
    "var_index",
    "sensitivity_lines",
    "sensitivity_table",
    "finite_difference",
    "natural_sensitivities",
    "sensitivity_sentence",
    "range_text",
]


@flax.struct.dataclass
class LPGradients:
    """Gradient of the optimum with respect to every LP field (same shapes as the LP).

    Units: objective units per unit of the field (e.g. H100e-quarters per W for a power
    row of ``b_ub``; H100e-quarters per (H100e-quarters per unit) = units for ``c``).
    """

    c: jax.Array
    A_ub: jax.Array
    b_ub: jax.Array
    A_eq: jax.Array
    b_eq: jax.Array
    lo: jax.Array
    hi: jax.Array


def _bound_multipliers(lp, x, y_ub, y_eq):
    r = lp.c - y_ub @ lp.A_ub - y_eq @ lp.A_eq
    mu_hi = jnp.where(jnp.isfinite(lp.hi), jnp.maximum(r, 0.0), 0.0)
    mu_lo = jnp.where(jnp.isfinite(lp.lo), jnp.maximum(-r, 0.0), 0.0)
    return mu_hi, mu_lo


def objective_gradients(lp, sol) -> LPGradients:
    """d opt / d (every LP field) at the solution ``sol`` (envelope theorem; see module doc).

    Args:
      lp: the LP that ``sol`` solves (unbatched).
      sol: an :class:`perfmodel.fleet.pdhg.LPSolution` (or any object with x, y_ub, y_eq).

    Returns:
      :class:`LPGradients`; e.g. ``.b_ub[i]`` = objective units gained per row unit of
      extra right-hand side on inequality row i.
    """
    x, y_ub, y_eq = (jnp.asarray(v, jnp.float64) for v in (sol.x, sol.y_ub, sol.y_eq))
    mu_hi, mu_lo = _bound_multipliers(lp, x, y_ub, y_eq)
    return LPGradients(
        c=x,
        A_ub=-jnp.outer(y_ub, x),
        b_ub=y_ub,
        A_eq=-jnp.outer(y_eq, x),
        b_eq=y_eq,
        lo=-mu_lo,
        hi=mu_hi,
    )


def lagrangian(lp, x, y_ub, y_eq, mu_hi=None, mu_lo=None):
    """L(x, y; lp) of the module docstring (objective units); differentiable in ``lp``.

    Bound terms use ``0 * inf = 0`` so infinite bounds contribute nothing.
    """
    if mu_hi is None or mu_lo is None:
        mu_hi, mu_lo = _bound_multipliers(lp, x, y_ub, y_eq)
    fin = lambda v: jnp.where(jnp.isfinite(v), v, 0.0)
    return (
        lp.c @ x
        + y_ub @ (lp.b_ub - lp.A_ub @ x)
        + y_eq @ (lp.b_eq - lp.A_eq @ x)
        + mu_hi @ (fin(lp.hi) - jnp.where(jnp.isfinite(lp.hi), x, 0.0))
        + mu_lo @ (jnp.where(jnp.isfinite(lp.lo), x, 0.0) - fin(lp.lo))
    )


def envelope_grad(lp_fn: Callable, params, sol):
    """d opt / d params for an LP built by a differentiable ``lp_fn(params) -> LP``.

    Holds the optimal ``x*, y*`` (and bound multipliers) fixed and differentiates the
    Lagrangian through ``lp_fn`` (envelope theorem)::

        d opt / d theta = d/d theta [ c(theta) @ x* + y* @ (b(theta) - A(theta) x*) + ... ]

    Args:
      lp_fn: params -> LP, written with jax.numpy (prices, MW ramps, chip specs, ...).
      params: a pytree of float arrays (the point of differentiation).
      sol: the solution of ``lp_fn(params)``.

    Returns:
      a pytree like ``params``: objective units per parameter unit.
    """
    lp0 = lp_fn(params)
    x, y_ub, y_eq = (jnp.asarray(v, jnp.float64) for v in (sol.x, sol.y_ub, sol.y_eq))
    mu_hi, mu_lo = _bound_multipliers(lp0, x, y_ub, y_eq)
    return jax.grad(lambda p: lagrangian(lp_fn(p), x, y_ub, y_eq, mu_hi, mu_lo))(params)


def spec_gradient(x, dc_dspec):
    """Chain rule from objective coefficients to a chip spec: ``d opt / d s = x* @ (dc/ds)``.

    Args:
      x: optimal plan [n] (``d opt / d c``).
      dc_dspec: Jacobian of ``c`` with respect to the spec, shape [n] (one scalar spec)
        or [n, k] (k specs), e.g. ``jax.jacfwd(value_coefficients)(hbm_bytes_per_s)``.

    Returns:
      scalar or [k]: objective units per spec unit (e.g. H100e-quarters per byte/s).
    """
    return jnp.tensordot(jnp.asarray(x, jnp.float64), jnp.asarray(dc_dspec, jnp.float64), axes=1)


def scale_sensitivity(lp, sol, *, field: str = "A_ub", rows=None, cols=None) -> float:
    """d opt / d s when the selected coefficients of ``field`` are multiplied by ``(1 + s)``.

    ``= sum_selected  (d opt / d a_ij) * a_ij`` at s = 0, in objective units per 100%
    change: e.g. with ``rows`` = the budget rows and ``cols`` = one chip's variables it
    answers "what is a 10% lower price of chip k worth" (``-0.1 * result``); with
    ``field="c"`` and ``cols`` = one chip's variables, "what is 10% more throughput per
    chip worth" (``0.1 * result``).

    Args:
      lp, sol: the LP and its solution.
      field: one of "A_ub", "A_eq", "c", "b_ub", "b_eq".
      rows: row names (or a predicate on the name) selecting rows of A_ub/A_eq/b_*.
      cols: variable names (or a predicate on the name) selecting columns of A_*/c.
    """
    g = objective_gradients(lp, sol)
    if field not in ("A_ub", "A_eq", "c", "b_ub", "b_eq"):
        raise ValueError(f"field = {field!r}; allowed: 'A_ub', 'A_eq', 'c', 'b_ub', 'b_eq'")
    m_ub = int(np.shape(lp.b_ub)[-1])
    row_names = tuple(lp.row_names)
    block = row_names[:m_ub] if field in ("A_ub", "b_ub") else row_names[m_ub:]

    def mask(names, sel, size):
        if sel is None:
            return np.ones(size, bool)
        pred = sel if callable(sel) else (lambda nm, s=frozenset(sel): nm in s)
        if len(names) != size:
            raise ValueError(
                f"the LP has {len(names)} names for {size} entries; cannot select by name"
            )
        return np.array([bool(pred(nm)) for nm in names])

    n = int(np.shape(lp.c)[-1])
    if field == "c":
        cm = mask(tuple(lp.var_names), cols, n)
        return float(jnp.sum(jnp.where(cm, g.c * lp.c, 0.0)))
    if field in ("b_ub", "b_eq"):
        size = int(np.shape(getattr(lp, field))[-1])
        rm = mask(block, rows, size)
        return float(jnp.sum(jnp.where(rm, getattr(g, field) * getattr(lp, field), 0.0)))
    size = int(np.shape(getattr(lp, field))[0])
    rm = mask(block, rows, size)
    cm = mask(tuple(lp.var_names), cols, n)
    sel = rm[:, None] & cm[None, :]
    return float(jnp.sum(jnp.where(sel, getattr(g, field) * getattr(lp, field), 0.0)))


# --------------------------------------------------------------------------- named access


def row_index(lp, name: str) -> tuple[str, int]:
    """('ub' | 'eq', index) of the row called ``name`` (row_names: A_ub rows, then A_eq rows)."""
    names = tuple(lp.row_names)
    m_ub = int(np.shape(lp.b_ub)[-1])
    if name not in names:
        close = [r for r in names if name.split("[")[0] in r][:5]
        raise KeyError(
            f"row {name!r} not in the LP's {len(names)} rows"
            + (f"; similar: {close}" if close else "")
        )
    i = names.index(name)
    return ("ub", i) if i < m_ub else ("eq", i - m_ub)


def var_index(lp, name: str) -> int:
    """Index of the variable called ``name``."""
    names = tuple(lp.var_names)
    if name not in names:
        raise KeyError(f"variable {name!r} not in the LP's {len(names)} variables")
    return names.index(name)


def row_sensitivity(lp, sol, name: str) -> float:
    """d opt / d rhs of the named row (objective units per row unit)."""
    kind, i = row_index(lp, name)
    return float((sol.y_ub if kind == "ub" else sol.y_eq)[i])


def var_sensitivity(lp, sol, name: str) -> float:
    """d opt / d c of the named variable (= its optimal value x*)."""
    return float(sol.x[var_index(lp, name)])


def _dual_vector(sol):
    return np.concatenate([np.asarray(sol.y_ub, np.float64), np.asarray(sol.y_eq, np.float64)])


def _unit_for(row: str, row_units: dict | None):
    """Exact key first, then the longest key that is a prefix of the row name."""
    if not row_units:
        return None
    if row in row_units:
        return row_units[row]
    best = None
    for k in row_units:
        if row.startswith(k) and (best is None or len(k) > len(best)):
            best = k
    return row_units[best] if best is not None else None


def _fmt(v: float) -> str:
    a = abs(v)
    if a == 0:
        return "0"
    if a >= 100:
        return f"{v:,.0f}"
    if a >= 1:
        return f"{v:,.2f}"
    return f"{v:.3g}"


def sensitivity_table(
    lp, sol, *, row_units: dict | None = None, top: int = 10, tol: float = 1e-9
) -> list[dict]:
    """The ``top`` rows whose natural step is worth most, as dicts.

    Each dict: row, kind ('ub'|'eq'), index (within its block), dual (objective units per row unit), unit,
    step (in display units), worth (objective units for one step: ``dual * step *
    per_unit_scale``), description. Rows with ``|worth| <= tol * max|worth|`` are dropped.
    See :func:`sensitivity_lines` for ``row_units``.
    """
    names = tuple(lp.row_names)
    y = _dual_vector(sol)
    m_ub = int(np.shape(lp.b_ub)[-1])
    if len(names) != y.size:
        names = tuple(f"ub[{i}]" for i in range(m_ub)) + tuple(
            f"eq[{i}]" for i in range(y.size - m_ub)
        )
    out = []
    for i, (row, yi) in enumerate(zip(names, y)):
        spec = _unit_for(row, row_units)
        if spec is None:
            unit, step, scale, desc = "row units", 1.0, 1.0, row
        else:
            if len(spec) not in (3, 4):
                raise ValueError(
                    f"row_units[{row!r}] = {spec!r}; need (unit_label, step, "
                    "per_unit_scale) or (unit_label, step, per_unit_scale, description)"
                )
            unit, step, scale = spec[0], float(spec[1]), float(spec[2])
            desc = spec[3] if len(spec) == 4 else row
        out.append(
            dict(
                row=row,
                kind="ub" if i < m_ub else "eq",
                index=i if i < m_ub else i - m_ub,
                dual=float(yi),
                unit=unit,
                step=step,
                worth=float(yi) * step * scale,
                description=desc,
                per_unit_scale=scale,
            )
        )
    if not out:
        return []
    biggest = max(abs(d["worth"]) for d in out)
    out = [d for d in out if abs(d["worth"]) > tol * max(biggest, 1e-300)]
    out.sort(key=lambda d: -abs(d["worth"]))
    return out[:top]


def sensitivity_lines(
    lp,
    sol,
    top: int = 10,
    *,
    row_units: dict | None = None,
    objective_unit: str = "H100e-quarters",
    resolve: Callable | str | None = "highs",
) -> list[str]:
    """Human sentences for the most valuable constraint relaxations.

    Example line: ``"100 MW more at site cortex in 2025Q2 is worth 1,234 H100e-quarters"``.

    With ``resolve=None`` the worth is the dual's linear estimate ``y * step * scale``. The
    fleet LPs are degenerate (a power row the existing fleet already fills, ties between
    sites): there the optimal dual is not unique and only brackets the true one-sided
    rate, ``d+ <= y <= d-`` (measured on tesla-2024: y = 21,949 vs d+ = 13,690 H100e-q
    per MW). With ``resolve`` (default ``"highs"``) each candidate row is re-solved with its rhs raised by the
    full step, the line states that exact gain, ranks by it, and quotes the dual's
    estimate in brackets: ``"... is worth 1,100 H100e-quarters (dual estimate 1,234)"``.

    Args:
      lp, sol: the LP and its solution.
      top: how many lines (largest |worth| first).
      row_units: ``{row_name_or_prefix: (unit_label, step, per_unit_scale[, description])}``;
        ``per_unit_scale`` converts one display unit into row units (e.g. a power row in W
        shown in MW: ``("MW", 100, 1e6, "at site cortex in 2025Q2")``). A key matches a row
        exactly or as the longest prefix (``"power[cortex"``). Rows without an entry are
        shown per 1 row unit under their own name.
      objective_unit: label of the objective.
      resolve: ``"highs"`` (default: re-solve with HiGHS); a ``callable(lp) -> optimum``;
        or ``None`` (dual estimates only, no re-solve). Re-solves the ``3 * top`` rows
        with the largest dual estimates (tesla-2024, top 6: 1.8 s).

    Returns:
      list of str. Negative worth (an equality or a ratio that costs) reads "costs".
    """
    if isinstance(resolve, str):
        if resolve != "highs":
            raise ValueError(f"resolve = {resolve!r}; allowed: None, 'highs' or a callable")
        resolve = lambda p: highs_optimum(p, infeasible_value=-np.inf)  # noqa: E731
    rows = sensitivity_table(lp, sol, row_units=row_units, top=3 * top if resolve else top)
    if resolve is not None and rows:
        base = float(resolve(lp))
        for d in rows:
            bumped = _bump_rhs(lp, d["kind"], d["index"], d["step"] * d["per_unit_scale"])
            d["resolved"] = float(resolve(bumped)) - base
        rows.sort(key=lambda d: -abs(d["resolved"]) if np.isfinite(d["resolved"]) else np.inf)
        rows = rows[:top]
    lines = []
    for d in rows:
        step_txt = f"{d['step']:,.0f}" if float(d["step"]).is_integer() else _fmt(d["step"])
        worth = d.get("resolved", d["worth"])
        verb = "is worth" if worth >= 0 else "costs"
        more = "" if d["description"].startswith("less ") else " more"
        line = f"{step_txt} {d['unit']}{more} {_where(d['description'])} {verb} {_fmt(abs(worth))} {objective_unit}"
        if "resolved" in d:
            if not np.isfinite(worth):
                line = f"{step_txt} {d['unit']}{more} {_where(d['description'])} makes the LP infeasible"
            line += f" (dual estimate {_fmt(d['worth'])})"
        lines.append(line)
    return lines


def _where(desc: str) -> str:
    low = desc.lower()
    if low.startswith(("at ", "in ", "for ", "of ", "on ", "less ")):
        return desc
    return f"on {desc}"


def _bump_rhs(lp, kind: str, i: int, delta: float):
    if kind == "ub":
        return lp.replace(b_ub=jnp.asarray(lp.b_ub).at[i].add(delta))
    return lp.replace(b_eq=jnp.asarray(lp.b_eq).at[i].add(delta))


def finite_difference(
    lp, kind: str, i: int, h: float, solve: Callable | None = None
) -> tuple[float, float]:
    """One-sided differences ``(d+, d-)`` of the optimum in the rhs of row i (HiGHS re-solves).

    ``d+ = (opt(b + h e_i) - opt(b)) / h``, ``d- = (opt(b) - opt(b - h e_i)) / h``. For a
    concave ``opt`` (LP maximum in b) every optimal dual lies in ``[d+, d-]`` (up to the
    curvature over h); the two agree where the dual is unique. A side where the bumped
    LP is infeasible (e.g. a power row the existing fleet already fills) has an infinite
    derivative: ``d- = +inf`` when ``b - h`` is infeasible.

    Args:
      lp: the LP; kind: 'ub' or 'eq'; i: row index within its block; h: step (row units).
      solve: ``callable(lp) -> optimum``; default HiGHS (:func:`highs_optimum`).
    """
    if h <= 0:
        raise ValueError(f"finite_difference: h = {h}; must be > 0")
    solve = solve or (lambda p: highs_optimum(p, infeasible_value=-np.inf))
    f0 = solve(lp)
    fp = solve(_bump_rhs(lp, kind, i, h))
    fm = solve(_bump_rhs(lp, kind, i, -h))
    return (fp - f0) / h, (f0 - fm) / h


def highs_optimum(lp, infeasible_value: float | None = None) -> float:
    """max c @ x of the LP by HiGHS (:class:`perfmodel.fleet.highs.HighsLP`).

    Raises ValueError if not optimal, except that an infeasible LP returns
    ``infeasible_value`` when one is given (e.g. ``-inf``, the max over an empty set)."""
    from perfmodel.fleet.highs import HighsLP

    r = HighsLP(lp).solve()
    if r.status == "infeasible" and infeasible_value is not None:
        return float(infeasible_value)
    if r.status != "optimal":
        raise ValueError(f"HiGHS: status {r.status}")
    return r.objective


# --------------------------------------------------------------------------- natural steps


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
