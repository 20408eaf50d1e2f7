"""``perfmodel plan``: the fleet planner on a scenario (default: the built-in tesla-2024)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from perfmodel.commands._args import add_catalog_args, user_catalog
from perfmodel.commands._pick import add_pick_arg
from perfmodel.commands._plot import chart_path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "plan",
        help="plan a fleet (chips x sites x quarters) under power, capex and supply limits",
        description="Integer fleet plan for a scenario: purchases per quarter/site/chip, H100e over time, "
        "spend vs budget, power used vs available, binding constraints. Built-in scenarios: "
        "tesla-2024 (default), tesla-2025.",
    )
    p.add_argument("--scenario", default="tesla-2024", help="built-in scenario name or a TOML file")
    add_catalog_args(p)
    p.add_argument(
        "--objective",
        choices=("max-h100e", "min-cost", "min-tco", "max-h100e-per-tco"),
        default=None,
        help="maximise H100e-quarters within the budget, or minimise capex (min-cost) or capex "
        "+ opex (min-tco) to reach --target-h100e or the workloads' demand, or maximise "
        "H100e-quarters per TCO dollar",
    )
    p.add_argument("--target-h100e", type=float, default=None, help="H100e target for min-cost")
    p.add_argument("--target-period", default=None, help="quarter of the target, e.g. 2024Q4")
    p.add_argument("--budget-scale", type=float, default=1.0, help="multiply every yearly budget")
    p.add_argument("--power-scale", type=float, default=1.0, help="multiply every site's power")
    p.add_argument("--price-scale", type=float, default=1.0, help="multiply every unit price")
    add_pick_arg(p, default=None, note="the scenario's pick")
    p.add_argument(
        "--method",
        choices=("pdhg", "highs"),
        default="highs",
        help="relaxed LP solver: highs (scipy, default: fastest for one scenario) or pdhg "
        "(the JAX solver, built for vmapped batches)",
    )
    p.add_argument(
        "--values",
        choices=("auto", "standin"),
        default="auto",
        help="value curves: training model (auto) or the labelled spec-ratio stand-in",
    )
    p.add_argument(
        "--value-mode",
        choices=("capacity", "job"),
        default=None,
        help="capacity: a site runs many jobs; job: one job spans the site",
    )
    p.add_argument(
        "--exact",
        action="store_true",
        help="prove optimality: MILP gap target 1e-6 and a 60 s time limit (default: 1e-4, 5 s)",
    )
    p.add_argument(
        "--heuristic",
        action="store_true",
        help="rounding heuristic only (no MILP); the gap is then to the LP relaxation",
    )
    p.add_argument(
        "--time-limit", type=float, default=None, metavar="S", help="MILP time limit, seconds"
    )
    p.add_argument(
        "--mip-gap", type=float, default=None, metavar="G", help="MILP relative gap target"
    )
    p.add_argument(
        "--sensitivities", action="store_true", help="print what more power/budget/supply is worth"
    )
    p.add_argument(
        "--spec-gradient",
        metavar="CHIP.FIELD",
        action="append",
        default=[],
        help="d(LP-optimal H100e-quarters)/d(a chip spec) through the value curves, per "
        "natural unit (TB/s, TFLOP/s, kW), e.g. gb200.dram_bytes_per_s or "
        "dojo.sram_bandwidth (CHIP: an offer or its catalog chip; repeatable)",
    )
    p.add_argument(
        "--check-gradient",
        action="store_true",
        help="with --spec-gradient: also re-plan at the spec x (1 +- 0.001) (curves "
        "recomputed) and print the finite differences and the relative error",
    )
    p.add_argument(
        "--pareto", action="store_true", help="sweep budgets: capex vs H100e-quarters front"
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        dest="overrides",
        help="what-if: override one scenario value before validation, e.g. "
        "offers.h100.unit_price_usd=350000 or 'sites.cortex.power_mw[2025Q1:]=600' "
        "(repeatable; recorded in --json)",
    )
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.add_argument(
        "--plot",
        metavar="FILE.png",
        default=None,
        help="write the ramp chart (H100e by chip with the target, spend vs budget per year, "
        "power per site) to FILE.png or .svg, or DIR/plan_SCENARIO.png; with --pareto also "
        "the capex vs H100e-quarters chart to FILE_pareto.png",
    )
    p.set_defaults(func=run)


#: The plan options and their defaults, for callers that plan without this parser
#: (``perfmodel compare``).
PLAN_DEFAULTS = dict(
    scenario="tesla-2024",
    objective=None,
    target_h100e=None,
    target_period=None,
    budget_scale=1.0,
    power_scale=1.0,
    price_scale=1.0,
    pick=None,
    method="highs",
    values="auto",
    value_mode=None,
    exact=False,
    heuristic=False,
    time_limit=None,
    mip_gap=None,
    sensitivities=False,
    overrides=[],
    catalog=None,
    allow_override=False,
)


def explained_plan(args: argparse.Namespace):
    """Validate the plan options, load the scenario with its ``--set`` overrides, solve
    and explain (shadow prices with their ranges, why-not lines, sensitivities if asked):
    ``(plan, scenario, override records, build_problem keywords, method)``."""
    # the planner stack loads when the command runs, not when its parser is built (--help)
    from perfmodel.fleet.explain import LPExplain
    from perfmodel.fleet.overrides import load_with_overrides
    from perfmodel.fleet.problem import build_problem
    from perfmodel.fleet.report import binding_records
    from perfmodel.fleet.rounding import default_method, solve
    from perfmodel.fleet.sensitivity import natural_sensitivities

    for nm in ("budget_scale", "power_scale", "price_scale"):
        v = getattr(args, nm)
        # beyond 1e6x every LP coefficient it scales leaves HiGHS's numerical range
        if not (math.isfinite(v) and 1e-6 <= v <= 1e6):
            raise ValueError(f"--{nm.replace('_', '-')} = {v!r} must be in [1e-06, 1e+06]")
    # the scenario's offers may name the user's chips; they travel with the Scenario
    cat = user_catalog(args.catalog, args.allow_override) if args.catalog else None
    sc, overrides = load_with_overrides(args.scenario, args.overrides, catalog=cat)
    kw = dict(
        objective=args.objective,
        target_h100e=args.target_h100e,
        target_period=args.target_period,
        budget_scale=args.budget_scale,
        power_scale=args.power_scale,
        price_scale=args.price_scale,
        pick=args.pick,
        value_source=args.values,
        value_mode=args.value_mode,
    )
    if args.exact and args.heuristic:
        raise ValueError("--exact and --heuristic exclude each other; give one")
    time_limit = args.time_limit if args.time_limit is not None else (60.0 if args.exact else 5.0)
    mip_gap = args.mip_gap if args.mip_gap is not None else (1e-6 if args.exact else 1e-4)
    if not (math.isfinite(time_limit) and 0 < time_limit <= 86400):
        raise ValueError(f"--time-limit = {time_limit!r} must be in (0, 86400] seconds")
    if not (math.isfinite(mip_gap) and 0 <= mip_gap < 1):
        raise ValueError(f"--mip-gap = {mip_gap!r} must be in [0, 1)")
    if getattr(args, "check_gradient", False) and not getattr(args, "spec_gradient", None):
        raise ValueError("--check-gradient needs --spec-gradient CHIP.FIELD")
    if getattr(args, "spec_gradient", None):  # every CHIP.FIELD checked before the plan
        # the planner stack loads when the command runs, not when its parser is built (--help)
        from perfmodel.fleet.sensitivity.spec import parse_spec

        for sp in args.spec_gradient:
            parse_spec(sp, sc)
    problem = build_problem(sc, **kw)
    method = args.method or default_method()
    plan = solve(
        problem,
        method=method,
        exact=not args.heuristic,
        time_limit_s=time_limit,
        mip_rel_gap=mip_gap,
    )
    ex = LPExplain(problem)
    plan.extra["row_duals"] = ex.row_duals()
    plan.extra["binding"] = ex.with_ranges(binding_records(plan))
    plan.extra["why_not"] = ex.why_not(plan.buy_units)
    # the planner stack loads when the command runs, not when its parser is built (--help)
    from perfmodel.fleet.story import event_costs, own_share_rows, uncounted_rows

    plan.extra["own_share"] = own_share_rows(plan, sc)
    plan.extra["uncounted"] = uncounted_rows(plan, sc)
    if sc.events:  # each delivery event's cost: the plan re-solved without it
        solve_kw = dict(
            method=method, exact=not args.heuristic, time_limit_s=time_limit, mip_rel_gap=mip_gap
        )
        plan.extra["event_costs"] = event_costs(sc, plan, solve_kw=solve_kw, **kw)
    if args.sensitivities:
        sens = natural_sensitivities(problem)
        if sens:
            plan.extra["sensitivities"] = sens
    if getattr(args, "spec_gradient", None):
        # the planner stack loads when the command runs, not when its parser is built (--help)
        from perfmodel.fleet.sensitivity.spec import spec_gradients

        plan.extra["spec_gradients"] = spec_gradients(
            sc, args.spec_gradient, problem=problem, check=args.check_gradient, **kw
        )
    plan.extra["overrides"] = overrides
    plan.extra["pick"] = problem.pick
    plan.extra["catalog_files"] = list(args.catalog or [])
    return plan, sc, overrides, kw, method


def plan_json(plan) -> dict:
    """The plan's JSON (:func:`perfmodel.fleet.report.plan_dict`) with its ``inputs``
    (:func:`perfmodel.fleet.explain.plan_inputs`): self-describing, checkable alone."""
    # the planner stack loads when the command runs, not when its parser is built (--help)
    from perfmodel.fleet.explain import plan_inputs
    from perfmodel.fleet.report import plan_dict

    d = plan_dict(plan)
    if plan.extra.get("spec_gradients"):
        d["spec_gradients"] = plan.extra["spec_gradients"]
    d["inputs"] = plan_inputs(plan, plan.extra.get("overrides"), pick=plan.extra.get("pick"))
    d["inputs"]["catalog_files"] = plan.extra.get("catalog_files", [])
    return d


def plot_paths(arg: str, scenario: str, pareto: bool) -> dict[str, Path]:
    """The files ``--plot arg`` writes, checked before any solve: the ramp chart (``arg``,
    ``.png`` or ``.svg``; in a directory ``plan_<scenario>.png``) and with ``--pareto`` the
    Pareto chart beside it (``<stem>_pareto<suffix>``)."""
    ramp = chart_path(arg, "plan", Path(scenario).stem, suffixes=(".png", ".svg"))
    out = {"ramp": ramp}
    if pareto:
        out["pareto"] = ramp.with_name(f"{ramp.stem}_pareto{ramp.suffix}")
    return out


def run(args: argparse.Namespace) -> int:
    # the planner stack loads when the command runs, not when its parser is built (--help)
    from perfmodel.fleet.report import format_plan, plot_plan

    plots = plot_paths(args.plot, args.scenario, args.pareto) if args.plot is not None else {}
    plan, sc, overrides, kw, method = explained_plan(args)
    sens = plan.extra.get("sensitivities")
    front = _pareto(sc, kw, method, plan) if args.pareto else None
    if plots:
        plot_plan(plan, plots["ramp"], pareto=front, pareto_path=plots.get("pareto"))
    if args.json:
        d = plan_json(plan)
        if front is not None:
            d["pareto"] = [p.__dict__ for p in front]
        if plots:
            d["plot"] = {k: str(v) for k, v in plots.items()}
        print(json.dumps(d, indent=1, default=float, allow_nan=False))
    else:
        if overrides:
            print("What-if overrides (--set): " + "; ".join(_override_text(r) for r in overrides))
        print(format_plan(plan, sensitivities=sens))
        if plan.extra.get("spec_gradients"):
            # the planner stack loads when the command runs, not when its parser is built (--help)
            from perfmodel.fleet.sensitivity.spec import spec_gradient_sentence

            print(
                "\nSpec gradients (d LP optimum / d chip spec, value curves at the best "
                "layouts and the LP's optimal plan held fixed):"
            )
            for r in plan.extra["spec_gradients"]:
                print(f"  {spec_gradient_sentence(r)}")
        if args.pareto:
            by_target = any(p.kind == "target" for p in front or [])
            print(
                "\nPareto front ("
                + ("target sweep, min-cost" if by_target else "budget sweep, max-h100e")
                + "):"
            )
            head = "target H100e" if by_target else "budget x"
            print(f"  {head:>12} {'capex $B':>10} {'H100e-quarters':>16} {'H100e @ target q':>17}")
            for p in front or []:
                par = f"{p.parameter:>12,.0f}" if by_target else f"{p.parameter:>12.2f}"
                if p.feasible:
                    print(
                        f"  {par} {p.capex_usd / 1e9:>10.2f} {p.h100e_quarters:>16,.0f} "
                        f"{p.h100e_target_period:>17,.0f}{'  (dominated)' if p.dominated else ''}"
                    )
                else:
                    print(f"  {par} infeasible: {p.note}")
        if plots:
            print(f"\nramp chart written to {plots['ramp']}")
        if "pareto" in plots:
            print(f"Pareto chart written to {plots['pareto']}")
    return 0


def _override_text(r: dict) -> str:
    return f"{r['path']} = {r['value']!r} (was {r['was']!r})"


def _pareto(sc, kw, method, plan):
    # the planner stack loads when the command runs, not when its parser is built (--help)
    from perfmodel.fleet.pareto import pareto_front

    kw = {k: v for k, v in kw.items() if k not in ("objective", "budget_scale", "target_h100e")}
    pr = plan.problem
    if pr.objective == "min-cost" and not pr.placement:
        # min-cost: the least capex for targets around this plan's (same target quarter)
        t0 = float(pr.target_h100e)
        targets = tuple(f * t0 for f in PARETO_TARGET_SCALES)
        return pareto_front(sc, budget_scales=(), targets=targets, method=method, **kw)
    return pareto_front(sc, budget_scales=PARETO_BUDGET_SCALES, method=method, **kw)


#: ``--pareto``: budget scales of the max-h100e sweep; target scales of the min-cost one.
PARETO_BUDGET_SCALES = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
PARETO_TARGET_SCALES = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5)
