"""d(optimal H100e-quarters) / d(a chip spec), through the value curves.

The plan's LP values chip kind k at site s by the concave piecewise-linear curve through
``bp_h100e[k, s, :]`` (:func:`perfmodel.fleet.problem.build_problem`): at the breakpoint
counts ``xs`` (fractions of the site's feasible range, which no chip spec moves)

    V(xs) = hull( sum_w weight_w * curve_throughput(make_curve(raw_w), xs) / t_ref_w )

where ``raw_w[i]`` is the training model's best-layout throughput at the i-th grid count
(:func:`perfmodel.fleet.curves.best_rates`), ``make_curve`` the monotone (``capacity``:
per-chip running maximum) curve, ``hull`` the least concave majorant
(:func:`~perfmodel.fleet.curves.concave_interpolant`) and ``t_ref_w`` one H100's best rate
(the H100e unit, held fixed: the reference H100 keeps its catalog spec). The LP's
objective coefficients are the hull's slopes, linear in ``bp_h100e``.

The derivative of the LP optimum with respect to a chip spec ``s`` is taken with
everything discrete held fixed (envelope theorem at each level):

1. the best layout at each grid count (:func:`jax.jvp` of
   :func:`perfmodel.training.step_time` at that layout; a maximum over layouts has the
   derivative of its maximiser);
2. the running maxima of ``make_curve`` and the hull's vertices (both maxima too);
3. the LP's optimal primal and dual (:func:`~perfmodel.fleet.sensitivity.envelope.envelope_grad`
   of the Lagrangian through :func:`~perfmodel.fleet.build.build_lp`): for ``max-h100e``
   ``d opt = x*^T dc``, for ``min-cost`` the target row's coefficients move too.

Each level is a maximum, so where it is tied (two layouts equally fast, two counts with the
same per-chip rate, a breakpoint on the hull's chord, several optimal plans) the optimum
has a kink and the figure is one subgradient: :func:`plan_spec_gradient` reports the
one-sided derivatives it can bound (ties of layouts, the LP's optimal face) and says so.

:func:`spec_gradient_fd` checks the figure against finite differences of full re-plans:
the chip's curves are recomputed with the perturbed spec (the whole layout search, the
monotone curve, the hull; never the shipped ``curves.npz``), the LP rebuilt and re-solved.

Scope: training value curves (the segment model). Placement scenarios (workloads with a
demand or inference workloads) value chips by per-chip rates instead and are refused.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from perfmodel import workloads as wl
from perfmodel.equivalence import DEFAULT_GRID
from perfmodel.errors import InputError
from perfmodel.fleet.build import build_lp
from perfmodel.fleet.curves import (
    concave_interpolant,
    reference_rate,
)
from perfmodel.fleet.highs import HighsLP
from perfmodel.fleet.lp import csr
from perfmodel.fleet.problem import build_problem
from perfmodel.fleet.sensitivity.envelope import envelope_grad
from perfmodel.fleet.sensitivity.spec_curve import (
    SpecTarget,
    _best_layouts,
    _curve_values_and_tangent,
    _grid_k,
    _hull_vertices,
    _layout_tangents,
    _model_inputs,
    _raw_rates,
    _spec_value,
    _with_spec,
)
from perfmodel.hardware import load_catalog
from perfmodel.hardware.precision import PRECISION_INDEX, PRECISION_KEYS
from perfmodel.training import (
    LAYOUT_FIELDS,
)

__all__ = [
    "SPEC_FIELDS",
    "SPEC_ALIASES",
    "parse_spec",
    "plan_spec_gradient",
    "spec_gradient_fd",
    "spec_gradient_sentence",
    "spec_gradients",
]

#: Differentiable chip fields (catalog names): (Chip pytree leaf, index or None,
#: natural unit, SI units per natural unit).
SPEC_FIELDS: dict[str, tuple[str, int | None, str, float]] = {
    "sram_bytes_per_s": ("mem_bytes_per_s", 0, "TB/s", 1e12),
    "dram_bytes_per_s": ("mem_bytes_per_s", 1, "TB/s", 1e12),
    "bf16_flops_per_s": ("peak_flops_per_s", None, "TFLOP/s", 1e12),
    "fp16_flops_per_s": ("peak_flops_per_s", None, "TFLOP/s", 1e12),
    "fp8_flops_per_s": ("peak_flops_per_s", None, "TFLOP/s", 1e12),
    "fp4_flops_per_s": ("peak_flops_per_s", None, "TFLOP/s", 1e12),
    "tf32_flops_per_s": ("peak_flops_per_s", None, "TFLOP/s", 1e12),
    "fp32_flops_per_s": ("peak_flops_per_s", None, "TFLOP/s", 1e12),
    "tdp_w": ("tdp_w", None, "kW", 1e3),
}
#: Short names accepted for the fields (``peak_flops``: the workloads' precision).
SPEC_ALIASES: dict[str, str] = {
    "hbm_bandwidth": "dram_bytes_per_s",
    "dram_bandwidth": "dram_bytes_per_s",
    "memory_bandwidth": "dram_bytes_per_s",
    "sram_bandwidth": "sram_bytes_per_s",
    "tdp": "tdp_w",
}
#: Chip fields that exist but have no derivative the plan can use, and why.
_NOT_DIFFERENTIABLE = {
    "sram_bytes": "a capacity: it decides which layouts fit (a step, no derivative)",
    "dram_bytes": "a capacity: it decides which layouts fit (a step, no derivative)",
    "scaleup_bytes_per_s_per_dir": "the training model reads links from the chip's system "
    "(catalog [links]), not this field",
    "scaleout_bytes_per_s_per_dir": "the training model reads links from the chip's system "
    "(catalog [links]), not this field",
    "host_bytes_per_s_per_dir": "the layout search does not offload activations to host "
    "memory, so the value curves do not read it",
    "allin_power_w": "the plan uses the offer's unit_power_w",
    "price_usd": "the plan uses the offer's unit_price_usd (see --sensitivities: 10% of a price)",
    "allin_price_usd": "the plan uses the offer's unit_price_usd (see --sensitivities)",
    "unit_count": "an integer count",
    "int8_ops_per_s": "an inference rate; the training value curves do not read it",
}


def _catalog_of(scenario):
    """The catalog the scenario's offers name chips of (a user catalog when the scenario
    carries one: ``Scenario.chip_specs``; else the built-in one)."""

    fn = getattr(scenario, "chip_specs", None)
    specs: Any = fn() if callable(fn) else ()
    got = [sp for sp, o in zip(specs, scenario.offers) if o.counts]
    if got:
        return got[0].catalog
    return load_catalog()


def _allowed_fields() -> str:
    return ", ".join(list(SPEC_FIELDS) + list(SPEC_ALIASES) + ["peak_flops"])


def parse_spec(text: str, scenario) -> SpecTarget:
    """``CHIP.FIELD`` (``offers.`` prefix allowed) for ``scenario``: CHIP an offer key or a
    catalog chip (key or alias) of a counted offer; FIELD a catalog field of
    :data:`SPEC_FIELDS`, an alias of :data:`SPEC_ALIASES` or ``peak_flops`` (the
    workloads' precision). Raises :class:`~perfmodel.errors.InputError` naming the value
    and the allowed ones."""

    raw = str(text).strip()
    body = raw[len("offers.") :] if raw.startswith("offers.") else raw
    chip_part, dot, field = body.rpartition(".")
    counted = [o for o in scenario.offers if o.counts]
    cat = _catalog_of(scenario)
    chips = sorted({cat.resolve(o.chip) for o in counted})
    if not dot or not chip_part:
        raise InputError(
            "--spec-gradient",
            raw,
            f"CHIP.FIELD with CHIP one of {', '.join(chips)} (or an offer key) "
            f"and FIELD one of {_allowed_fields()}",
        )
    keys = [o.key for o in scenario.offers]
    if chip_part in keys:
        chip = cat.resolve(scenario.offers[keys.index(chip_part)].chip)
    else:
        try:
            chip = cat.resolve(chip_part)
        except ValueError:
            chip = ""
    if chip not in chips:
        raise InputError(
            "--spec-gradient chip",
            chip_part,
            f"a chip of a counted offer of scenario {scenario.name}: {', '.join(chips)} "
            f"(offer keys: {', '.join(o.key for o in counted)})",
        )
    field = SPEC_ALIASES.get(field, field)
    if field == "peak_flops":
        precs = {wl.get_workload(w).precision for w, _ in scenario.workloads}
        if len(precs) != 1:
            raise InputError(
                "--spec-gradient field",
                "peak_flops",
                f"a precision's field (the workloads train at {', '.join(sorted(precs))}): "
                f"{', '.join(PRECISION_KEYS[p] for p in sorted(precs))}",
            )
        field = PRECISION_KEYS[precs.pop()]
    if field not in SPEC_FIELDS:
        why = _NOT_DIFFERENTIABLE.get(field)
        head = f"--spec-gradient field ({why})" if why else "--spec-gradient field"
        raise InputError(head, field, f"one of {_allowed_fields()}")
    leaf, index, unit, unit_si = SPEC_FIELDS[field]
    if leaf == "peak_flops_per_s":
        prec = next(p for p, k in PRECISION_KEYS.items() if k == field)
        index = PRECISION_INDEX[prec]
    ks = tuple(k for k, o in enumerate(scenario.offers) if o.counts and cat.resolve(o.chip) == chip)
    return SpecTarget(raw, chip, field, leaf, index, unit, unit_si, ks)


# --------------------------------------------------------------------------------------
# The plan's breakpoint values and their tangent
# --------------------------------------------------------------------------------------


def _breakpoints(problem, scenario, t: SpecTarget, pick: str, mode: str, chip=None):
    """``(bp_h100e [K,S,J+1], d bp_h100e / d spec, details)`` for the offers of ``t``,
    recomputing the chip's curves with ``chip`` (default: the catalog spec at ``pick``).
    ``details``: the best layouts, tangents and kink flags."""

    bp_x = np.asarray(problem.bp_chips, np.float64)
    bp = np.asarray(problem.bp_h100e, np.float64).copy()
    dbp = np.zeros_like(bp)
    kinks: list[str] = []
    sets: list[dict] = []
    det: dict[str, list] = dict(kinks=kinks, set_by=sets)
    cells = [(k, s) for k in t.offers for s in range(bp.shape[1]) if bp_x[k, s, -1] > 0]
    if not cells:
        return bp, dbp, det
    kmax = _grid_k(float(max(bp_x[k, s, -1] for k, s in cells)))
    cat = _catalog_of(scenario)
    per_cell_v = {c: np.zeros(bp.shape[2]) for c in cells}
    per_cell_d = {c: np.zeros(bp.shape[2]) for c in cells}
    for name, weight in scenario.workloads:
        w, chip0, net, eff = _model_inputs(t.chip, name, pick, cat)
        ch = chip0 if chip is None else chip
        raw = _raw_rates(w, ch, net, eff, kmax, mode, name)
        lays = _best_layouts(w, ch, net, eff, raw, name, mode)
        tans = _layout_tangents(w, ch, net, eff, t, lays)
        draw = np.zeros(len(raw))
        for i, rate, tan, rows in tans:
            raw[i], draw[i] = rate, tan[0]
            if np.ptp(tan) > 1e-9 * max(abs(float(tan.max())), 1e-300):
                kinks.append(
                    f"{len(tan)} layouts tie at {int(DEFAULT_GRID[i])} chips on {name} "
                    f"with different derivatives ({float(tan.min()):.4g}..{float(tan.max()):.4g})"
                )
        # the grid count that sets the per-chip (capacity) or absolute running maximum
        per = raw / np.asarray(DEFAULT_GRID[: len(raw)]) if mode == "capacity" else raw
        top = int(np.argmax(per))
        ties = np.flatnonzero(per >= per[top] * (1 - 1e-9))
        if len(ties) > 1 and np.ptp(draw[ties] / (per[ties] / per[top])) > 0:
            kinks.append(
                f"grid counts {', '.join(str(int(DEFAULT_GRID[i])) for i in ties)} "
                f"reach the same {'per-chip ' if mode == 'capacity' else ''}rate on {name}"
            )

        row = next(r for i, _, _, r in tans if i == top)[0]
        sets.append(
            dict(
                workload=name,
                chips=int(DEFAULT_GRID[top]),
                layout={f: int(v) for f, v in zip(LAYOUT_FIELDS, row)},
                units_per_s=float(raw[top]),
                d_log_rate_d_log_spec=float(draw[top] / raw[top] * _spec_value(ch, t)),
            )
        )
        ref = _reference_rate(name, cat)
        for c in cells:
            v, dv = _curve_values_and_tangent(raw, draw, bp_x[c], mode)
            per_cell_v[c] += weight * v / ref
            per_cell_d[c] += weight * dv / ref
    for c in cells:
        xs = bp_x[c]
        ys = np.maximum(per_cell_v[c], 0.0)
        hull, on_chord = _hull_vertices(xs, ys)
        dys = per_cell_d[c]
        slack = np.abs(np.interp(xs, xs[hull], dys[hull]) - dys)
        if on_chord.any() and np.max(slack[on_chord]) > 1e-9 * max(np.max(np.abs(dys)), 1e-300):
            kinks.append(
                f"a breakpoint of {problem.offers[c[0]]} at {problem.sites[c[1]]} lies on "
                "its value curve's concave hull"
            )
        bp[c] = concave_interpolant(xs, ys)
        dbp[c] = np.interp(xs, xs[hull], per_cell_d[c][hull])
    return bp, dbp, det


def _reference_rate(name: str, cat) -> float:
    """One H100's best rate on ``name`` (the H100e unit) as the value curves take it."""
    import inspect

    if "catalog" in inspect.signature(reference_rate).parameters:
        return reference_rate(name, catalog=cat)
    return reference_rate(name)


def _lp_solve(problem):

    lp = build_lp(problem)
    r = HighsLP(lp).solve()
    if r.status != "optimal":
        raise InputError(f"spec gradient: the plan's LP is {r.status}")
    return lp, r


def _h100e_quarters(problem, x) -> float:
    """H100e-quarters of the LP point ``x`` (the objective without the cost tie-break)."""

    lp = build_lp(dataclasses.replace(problem, cost_tiebreak=problem.cost_tiebreak * 0.0))
    return float(np.asarray(lp.c) @ np.asarray(x))


def _face_range(lp, sol, dc: np.ndarray) -> tuple[float, float]:
    """``(min, max)`` of ``dc @ x`` over the LP's optimal face (the one-sided derivatives
    of a maximum of linear functions of c; equal when the optimal plan is unique in the
    direction dc)."""
    import scipy.sparse as sp
    from scipy.optimize import linprog

    c = np.asarray(lp.c, np.float64)
    opt = float(c @ sol.x)
    A = sp.vstack([csr(lp.A_ub), sp.csr_array(-c.reshape(1, -1))]).tocsr()
    b = np.concatenate([np.asarray(lp.b_ub, np.float64), [-opt + 1e-9 * max(1.0, abs(opt))]])
    bounds = [
        (float(a) if np.isfinite(a) else None, float(z) if np.isfinite(z) else None)
        for a, z in zip(np.asarray(lp.lo), np.asarray(lp.hi))
    ]
    out = []
    for sign in (1.0, -1.0):
        r = linprog(sign * dc, A_ub=A, b_ub=b, bounds=bounds, method="highs")
        out.append(sign * r.fun if r.status == 0 else float(dc @ sol.x))
    return out[0], out[1]


def plan_spec_gradient(scenario, spec: str, *, problem=None, **build_kw) -> dict:
    """d(LP-optimal H100e-quarters) / d(chip spec) of ``scenario``'s plan (module doc).

    Args:
      scenario: a validated :class:`~perfmodel.fleet.schema.Scenario`.
      spec: ``CHIP.FIELD`` (:func:`parse_spec`), e.g. ``"gb200.dram_bytes_per_s"``,
        ``"dojo.sram_bandwidth"``.
      problem: the :class:`~perfmodel.fleet.problem.Problem` built from ``scenario``
        with ``build_kw`` (built here when None).
      **build_kw: :func:`~perfmodel.fleet.problem.build_problem` options (pick,
        value_mode, objective, ...).

    Returns:
      a record: ``chip``, ``field``, ``offers``, ``value`` (the spec, SI) and
      ``value_natural`` in ``unit`` (TB/s, TFLOP/s, kW), ``gradient`` (objective units per
      ``unit``), ``gradient_si`` (per SI unit), ``elasticity`` (% of the optimum per % of
      the spec), ``objective`` (the LP optimum) and ``objective_unit``, ``one_sided``
      (``[d-, d+]`` per ``unit`` over the LP's optimal face: differ when several plans
      are optimal), ``subgradient`` (True where any level is tied: the figure is one
      subgradient), ``kinks`` (what is tied), ``set_by`` (per workload: the grid count
      and layout that set the chip's per-chip rate, and ``d log rate / d log spec``),
      ``warnings`` (e.g. recomputed curves that differ from the plan's).
    """
    import jax
    import jax.numpy as jnp

    t = parse_spec(spec, scenario)
    if build_kw.get("value_source", "auto") == "standin":
        raise InputError(
            "--spec-gradient", spec, "used with the training model's values (not --values standin)"
        )
    problem = build_problem(scenario, **build_kw) if problem is None else problem
    if problem.placement:
        raise InputError(
            "--spec-gradient",
            spec,
            "used on a scenario without placement (workloads with a demand or inference "
            "workloads value chips by per-chip rates, not yet differentiated)",
        )
    pick = build_kw.get("pick") or scenario.pick
    mode = build_kw.get("value_mode") or scenario.value_mode
    bp, dbp, det = _breakpoints(problem, scenario, t, pick, mode)
    shipped = np.asarray(problem.bp_h100e)
    warnings = []
    if not np.allclose(bp, shipped, rtol=1e-7, atol=1e-7):
        warnings.append(
            "the recomputed value curves differ from those the plan used (a stale cache?): "
            "the gradient is of the recomputed ones"
        )
    lp, sol = _lp_solve(problem)
    base = jax.tree_util.tree_map(
        jnp.asarray, dataclasses.replace(problem, bp_h100e=jnp.asarray(bp))
    )
    d = jnp.asarray(dbp)

    def lp_fn(eps):
        return build_lp(dataclasses.replace(base, bp_h100e=base.bp_h100e + eps * d), jnp)

    g_si = float(envelope_grad(lp_fn, jnp.asarray(0.0), sol))
    mincost = problem.objective != "max-h100e"
    to_obj = -1e6 if mincost else 1.0
    # c is linear in bp_h100e plus the cost tie-break: dc = c(dbp) without the tie-break
    dc = np.asarray(
        build_lp(
            dataclasses.replace(problem, bp_h100e=jnp.asarray(dbp), cost_tiebreak=jnp.asarray(0.0))
        ).c
    )
    lo, hi = (g_si, g_si) if mincost else _face_range(lp, sol, dc)
    g_si *= to_obj
    lo, hi = sorted((lo * to_obj, hi * to_obj))
    chip = _model_inputs(t.chip, scenario.workloads[0][0], pick, _catalog_of(scenario))[1]
    v = _spec_value(chip, t)
    obj = float(sol.objective) * to_obj if mincost else _h100e_quarters(problem, sol.x)
    face_tie = hi - lo > 1e-7 * max(abs(hi), abs(lo), 1e-12)
    kinks = list(det["kinks"])
    if face_tie:
        kinks.append("several plans are optimal (the LP is degenerate in its objective)")
    return dict(
        spec=t.text,
        chip=t.chip,
        field=t.field,
        offers=[problem.offers[k] for k in t.offers],
        value=v,
        value_natural=v / t.unit_si,
        unit=t.unit,
        gradient=g_si * t.unit_si,
        gradient_si=g_si,
        elasticity=g_si * v / obj if obj else 0.0,
        objective=obj,
        objective_unit="USD of capex" if mincost else "H100e-quarters",
        one_sided=[lo * t.unit_si, hi * t.unit_si],
        subgradient=bool(kinks),
        kinks=kinks,
        set_by=det["set_by"],
        warnings=warnings,
        pick=pick,
        value_mode=mode,
    )


def spec_gradient_fd(
    scenario, spec: str, rel_step: float = 1e-3, *, problem=None, **build_kw
) -> dict:
    """One-sided finite differences of full re-plans in the chip spec.

    The spec is moved by ``+-rel_step`` of its value; the chip's value curves are
    recomputed (layout search, monotone curve, hull: never the shipped curves), the LP
    rebuilt and re-solved by HiGHS. Returns ``d_plus``, ``d_minus`` and ``central`` (per
    natural unit), the three optima, and ``step`` (natural units).
    """

    if not (math.isfinite(rel_step) and 0 < rel_step < 0.5):
        raise InputError("rel_step", rel_step, "in (0, 0.5)")
    t = parse_spec(spec, scenario)
    problem = build_problem(scenario, **build_kw) if problem is None else problem
    pick = build_kw.get("pick") or scenario.pick
    mode = build_kw.get("value_mode") or scenario.value_mode
    chip = _model_inputs(t.chip, scenario.workloads[0][0], pick, _catalog_of(scenario))[1]
    v = _spec_value(chip, t)
    mincost = problem.objective != "max-h100e"
    opts = []
    for f in (0.0, rel_step, -rel_step):
        ch = _with_spec(chip, t, v * (1 + f))
        bp, _, _ = _breakpoints(problem, scenario, t, pick, mode, chip=ch)
        import jax.numpy as jnp

        p = dataclasses.replace(problem, bp_h100e=jnp.asarray(bp))
        _, r = _lp_solve(p)
        opts.append(-1e6 * r.objective if mincost else _h100e_quarters(p, r.x))
    h = v * rel_step / t.unit_si
    f0, fp, fm = opts
    return dict(
        spec=t.text,
        step=h,
        unit=t.unit,
        objective=f0,
        objective_plus=fp,
        objective_minus=fm,
        d_plus=(fp - f0) / h,
        d_minus=(f0 - fm) / h,
        central=(fp - fm) / (2 * h),
    )


def spec_gradient_sentence(rec: dict, fd: dict | None = None) -> str:
    """One line for a :func:`plan_spec_gradient` record (and its check: ``fd``, default
    the record's ``check`` when :func:`spec_gradients` ran it)."""
    fd = fd if fd is not None else rec.get("check")
    obj = "H100e-quarters" if rec["objective_unit"] == "H100e-quarters" else "USD of capex"
    offers = "+".join(rec["offers"])
    g = rec["gradient"]
    sign = "-" if g < 0 else ""
    fig = f"{g:,.4g} {obj}" if obj != "USD of capex" else f"{sign}${abs(g) / 1e6:,.4g}M of capex"
    line = (
        f"{rec['chip']} {rec['field']} (offers {offers}, {rec['value_natural']:,.4g} "
        f"{rec['unit']}): {fig} per {rec['unit']} "
        f"(elasticity {rec['elasticity']:.4g}: +1% of the spec, {rec['elasticity']:+.4g}% "
        f"of the optimum)"
    )
    lo, hi = rec["one_sided"]
    if rec["subgradient"]:
        line += "; a subgradient"
        if hi - lo > 1e-7 * max(abs(hi), abs(lo), 1e-12):
            line += f", one-sided {lo:,.4g}..{hi:,.4g}"
        line += " (" + "; ".join(rec["kinks"]) + ")"
    for w in rec.get("warnings", []):
        line += f"; warning: {w}"
    if fd is not None:
        err = relative_error(rec, fd)
        line += (
            f"; re-plans at +-{fd['step']:.3g} {rec['unit']}: d+ {fd['d_plus']:,.4g}, "
            f"d- {fd['d_minus']:,.4g} (central differs by {100 * err:.2f}%)"
        )
    return line


def relative_error(rec: dict, fd: dict) -> float:
    """``|gradient - central difference| / |central difference|``; 0 when both are below
    an elasticity of 1e-9 (a spec the plan does not feel: e.g. the peak FLOP/s of a chip
    its TDP throttles)."""
    g, c = rec["gradient"], fd["central"]
    floor = 1e-9 * abs(rec["objective"]) / max(abs(rec["value_natural"]), 1e-300)
    if abs(g) <= floor and abs(c) <= floor:
        return 0.0
    return abs(g - c) / max(abs(c), floor)


def spec_gradients(
    scenario, specs, *, problem=None, check: bool = False, rel_step: float = 1e-3, **build_kw
) -> list[dict]:
    """:func:`plan_spec_gradient` of each of ``specs``; with ``check``, each record also
    carries ``check`` (:func:`spec_gradient_fd`) and ``relative_error`` (|gradient -
    central difference| / |central difference|)."""

    for sp in specs:  # every name checked before any work
        parse_spec(sp, scenario)
    problem = build_problem(scenario, **build_kw) if problem is None else problem
    out = []
    for sp in specs:
        rec = plan_spec_gradient(scenario, sp, problem=problem, **build_kw)
        if check:
            fd = spec_gradient_fd(scenario, sp, rel_step, problem=problem, **build_kw)
            rec["check"] = fd
            rec["relative_error"] = relative_error(rec, fd)
        out.append(rec)
    return out
