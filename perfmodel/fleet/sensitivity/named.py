"""Sensitivities by row and variable name: the dual of a named row, the optimal value of a
named variable, and the ranked table and sentences of the largest duals (with display units
per row name)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from perfmodel.fleet.sensitivity.envelope import _bump_rhs, highs_optimum


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
