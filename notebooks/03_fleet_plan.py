# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 3. Fleet plan: the built-in scenario, its sensitivities and Pareto front
#
# The planner chooses how many units of each chip offer (HGX servers, NVL72 racks,
# Dojo trays, AI4 computers, ...) to buy per site and quarter, maximising H100e-quarters
# (or minimising capex for a target) under yearly budgets, each site's power ramp (MW
# at the meter, with its PUE), floor space, supply per quarter and policy limits.
#
# Data flow: scenario TOML (perfmodel/data/scenarios/, sources inline) -> `Scenario` ->
# `build_problem` -> `Problem` (a pytree) -> LP relaxation (HiGHS, or the JAX PDHG
# solver for vmapped batches) -> rounding + repair -> integer `Plan` -> `check_feasible`.
# The value of each offer is its H100e curve from the training model (perfmodel.equivalence,
# `capacity` mode), made concave piecewise-linear.
#
# CLI: `perfmodel plan --sensitivities --pareto --plot ramp.png`, `perfmodel plan --set
# offers.h100.unit_price_usd=350000`, `perfmodel compare A B`.
# Units: USD, MW, H100e, quarters.

# %%
import os
import time

import matplotlib

matplotlib.use("Agg")
import numpy as np

from perfmodel.fleet import (
    build_lp,
    build_problem,
    check_feasible,
    load_scenario,
    scenario_names,
    solve,
    solve_milp,
)
from perfmodel.fleet.check import capex_by_year_usd, h100e_by_offer, power_used_mw
from perfmodel.fleet.report import format_plan, plot_plan
from perfmodel.plots import output_dir, pareto_chart

SMALL = os.environ.get("PERFMODEL_NOTEBOOK_SMALL") == "1"
OUT = output_dir("03_fleet_plan")  # $PERFMODEL_OUT_DIR, never next to the notebook
t_start = time.perf_counter()
print("built-in scenarios:", ", ".join(scenario_names()))
sc = load_scenario("tesla-2024")
problem = build_problem(sc)
K, S, T = problem.shape
print(f"{sc.name}: {K} offers x {S} sites x {T} quarters, objective {problem.objective}")
print("offers:", ", ".join(f"{o} ({c})" for o, c in zip(problem.offers, problem.chip_keys)))
print(
    "sites:", ", ".join(problem.sites), "| quarters:", problem.periods[0], "..", problem.periods[-1]
)

# %% [markdown]
# ## The integer plan
# `solve` = relaxed LP (an upper bound) + rounding/repair + local search. On a problem
# this size the exact MILP (HiGHS) is cheap, so we also compare with it. The feasibility
# checker recomputes every constraint from the integer purchases, independently of the LP.

# %%
plan = solve(problem, method="highs")
violations = check_feasible(problem, plan)
assert violations == [], violations
assert plan.objective <= plan.relaxed_objective * (
    1 + 1e-9
)  # the LP relaxation bounds the integer plan
milp = solve_milp(problem, time_limit_s=20.0)
gap = (milp.objective - plan.objective) / abs(milp.objective)
print(format_plan(plan))
print(
    f"\nexact MILP {milp.objective:,.1f} ({milp.status}); integer plan within {100 * gap:.4f}% of it"
)
assert gap < 0.01

# %% [markdown]
# The same figures as arrays, recomputed from the purchases: budget and power limits hold.

# %%
spent = capex_by_year_usd(problem, plan.buy_units)
budget = np.asarray(problem.budget_usd)
used = power_used_mw(problem, plan.buy_units)
avail = np.asarray(problem.power_avail_mw)
for y, s, b in zip(problem.years, spent, budget):
    print(f"{y}: spend ${s / 1e9:5.2f}B of ${b / 1e9:5.2f}B")
assert np.all(spent <= budget * (1 + 1e-9))
assert np.all(used <= avail + 1e-6)
h = h100e_by_offer(problem, plan.buy_units).sum(axis=(0, 1))
print("H100e per quarter:", ", ".join(f"{p} {x:,.0f}" for p, x in zip(problem.periods, h)))

# %% [markdown]
# ## The seed story: own-hardware share, the diversion's cost, the public milestones
# Cortex's "about half Tesla AI hardware" (Musk, 2024-06-20) is an aim of the scenario
# from the 500 MW stage (2025Q4), reported every quarter; `own_share_enforced = true`
# makes it a rule. The 12k-H100 diversion is a delivery event: re-planning without it
# prices it. The public milestones are ~40k H100e in 2024Q1 and ~85k by 2024Q4.

# %%
import dataclasses

from perfmodel.claims.plans import milestone_verdicts
from perfmodel.fleet.report import binding_records
from perfmodel.fleet.story import event_costs, own_share_rows

for r in own_share_rows(plan, sc):
    shares = ", ".join("-" if x is None else f"{100 * x:.0f}%" for x in r["share"])
    aim = f" (aim {r['share_min']:.0%} from {r['from_period']})" if r["share_min"] > 0 else ""
    print(f"own share at {r['site']}: {shares}{aim}")
(ev,) = event_costs(sc, plan, solve_kw=dict(method="highs"))
print(
    f"the diversion cost {ev['h100e_quarters_lost']:,.0f} H100e-quarters "
    f"({ev['h100e_lost'][0]:,.0f} H100e in {ev['period']})"
)
assert ev["h100e_quarters_lost"] >= 0
ms = [("Q1 2024", "2024Q1", 40000), ("end 2024", "2024Q4", 85000)]
verdict, rows = milestone_verdicts(ms, problem.periods, list(h), binding_records(plan))
for m in rows:
    print(
        f"{m['period']}: {m['planned_h100e']:,.0f} vs ~{m['claimed_h100e']:,.0f} ({m['verdict']})"
    )
print("verdict:", verdict)
if not SMALL:  # the aim enforced: the plan stays feasible and the rule holds
    sc_half = dataclasses.replace(
        sc,
        sites=tuple(
            dataclasses.replace(x, own_share_enforced=True) if x.key == "cortex" else x
            for x in sc.sites
        ),
    )
    plan_half = solve(build_problem(sc_half), method="highs")
    assert check_feasible(plan_half.problem, plan_half) == []
    (r,) = [x for x in own_share_rows(plan_half, sc_half) if x["site"] == "cortex"]
    assert all(m is not False for m in r["met"])
    print(f"enforced: {plan_half.h100e_quarters:,.0f} H100e-quarters vs {plan.h100e_quarters:,.0f}")

# %% [markdown]
# ## Ramp chart
# H100e online per quarter by chip (one colour per chip in every chart), capex against
# the budget per year, and power used against the power each site has.

# %%
path = plot_plan(plan, OUT / "fleet_ramp.png")
print("wrote", path)

# %% [markdown]
# ## Sensitivities: what one more step of a binding resource is worth
# The LP duals give the marginal value of each constraint (envelope theorem). The fleet
# LP is degenerate (ties between sites, power rows the existing fleet already fills), so a
# dual is only a one-sided rate; `sensitivity_lines` re-solves the relaxation with each
# candidate constraint relaxed by a full step and reports that exact gain, with the dual's
# estimate in brackets.

# %%
from perfmodel.fleet.problem import relaxed_solve
from perfmodel.fleet.report import row_units
from perfmodel.fleet.sensitivity import sensitivity_lines

lp = build_lp(problem)
rel = relaxed_solve(lp, method="highs")  # HiGHS: exact vertex duals of the inequality rows
lines = sensitivity_lines(lp, rel, top=6, row_units=row_units(lp))
for line in lines:
    print(" ", line)
assert lines and "worth" in lines[0]

# %% [markdown]
# A direct check of one of them: scale every site's power by 10% and re-plan. More power
# can never lower the optimum (the old plan stays feasible).

# %%
plan_more_power = solve(build_problem(sc, power_scale=1.1), method="highs")
print(
    f"power x1.1: {plan_more_power.h100e_quarters:,.0f} H100e-quarters "
    f"(+{plan_more_power.h100e_quarters - plan.h100e_quarters:,.0f}), "
    f"capex ${plan_more_power.capex_usd / 1e9:.2f}B"
)
assert plan_more_power.relaxed_objective >= plan.relaxed_objective - 1e-6

# %% [markdown]
# ## How far each price holds, and why the rest is not bought
# `natural_sensitivities` steps each resource in its own unit and gives three figures:
# the dual's estimate, the re-solved change and the range of the step over which the
# dual holds exactly (HiGHS ranging at the optimal basis). Inside the range a re-solve
# equals the dual times the step; past it, another constraint starts to bind. The steps
# include one quarter of delay (an offer's deliveries or a site's power ramp: a delay is
# no relaxation, so its loss can exceed the dual) and 10% of a price (a coefficient, not
# a right-hand side: the range is where the optimal basis holds, and even there the
# optimum is not linear in the price, so the re-solve is the exact figure).
# `LPExplain` adds the range to each binding constraint's shadow price and a "why not"
# record for each offer x site never bought: the placement rule, or the LP reduced cost
# of one unit split by the constraints it draws on.

# %%
from perfmodel.fleet.explain import LPExplain, why_not_sentence
from perfmodel.fleet.report import binding_records, binding_sentence
from perfmodel.fleet.sensitivity import natural_sensitivities, sensitivity_sentence

recs = natural_sensitivities(problem, top=5)
for r in recs:
    print(" ", sensitivity_sentence(r))
    if r["step_within_range"] and r["kind"] != "price":
        assert abs(r["resolved"] - r["dual_estimate"]) <= 1e-6 * (1 + abs(r["resolved"]))
explain = LPExplain(problem)
plan.extra["row_duals"] = explain.row_duals()
for b in explain.with_ranges(binding_records(plan)):
    print(" ", binding_sentence(b))
for w in explain.why_not(plan.buy_units):
    print(" ", why_not_sentence(w))

# %% [markdown]
# ## The plan's gradient in a chip spec
# `plan_spec_gradient` gives d(LP-optimal H100e-quarters) / d(a chip spec) through the
# value curves: `jax.jvp` of the training model's step time at the best layout of each
# chip count that sets the curve, with that layout, the curve's running maxima, the
# hull's vertices and the LP's optimal plan held fixed (envelope theorem at each level).
# Per TB/s of the GB200's HBM bandwidth here; `perfmodel plan --spec-gradient
# gb200.hbm_bandwidth --check-gradient` also re-plans at the spec x (1 +- 0.001), the
# curves recomputed, and prints the finite differences (benchmarks/spec_gradient.py:
# within 0.01% on tesla-2024).

# %%
from perfmodel.fleet.sensitivity.spec import plan_spec_gradient, spec_gradient_sentence

g = plan_spec_gradient(sc, "gb200.hbm_bandwidth", problem=problem)
print(" ", spec_gradient_sentence(g))
print("  set by", g["set_by"][0]["chips"], "chips:", g["set_by"][0]["layout"])
assert g["gradient"] > 0 and g["unit"] == "TB/s"

# %% [markdown]
# ## What-if from the command line, and two plans side by side
# `perfmodel plan --set PATH=VALUE` edits the scenario's data before validation (here:
# H100 at $350k and 600 MW at Cortex from 2025Q1); `perfmodel compare A B` sets two
# plans side by side. Both are plain functions too.

# %%
from perfmodel.commands.compare import compare_dicts, format_compare
from perfmodel.fleet.overrides import load_with_overrides
from perfmodel.fleet.report import plan_dict

sets = ["offers.h100.unit_price_usd=350000", "sites.cortex.power_mw[2025Q1:]=600"]
sc_b, overrides = load_with_overrides("tesla-2024", sets)
plan_b = solve(build_problem(sc_b), method="highs")
assert check_feasible(plan_b.problem, plan_b) == []
for r in overrides:
    print(f"--set {r['set']}: {r['path']} was {r['was']}, now {r['value']}")
plan_b.extra["row_duals"] = LPExplain(plan_b.problem).row_duals()
cmp = compare_dicts(plan_dict(plan), plan_dict(plan_b))
print(format_compare(cmp, "tesla-2024", "tesla-2024 with --set"))
# more power and cheaper H100s never lower the LP bound; whether they add H100e depends
# on what binds (on tesla-2024 the AI4 ratio rule caps the GPUs: see "ratio rule 0")
assert plan_b.relaxed_objective >= plan.relaxed_objective - 1e-6

# %% [markdown]
# ## Pareto front: capex against delivered compute
# Sweep the yearly budgets (x0.25 .. x2). Each point is an integer plan that passed the
# checker; beyond about x1 the budget stops binding (power and supply do) and the front
# is flat.

# %%
from perfmodel.fleet.pareto import pareto_front

scales = (0.25, 0.5, 1.0, 1.5) if SMALL else (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
front = pareto_front(sc, budget_scales=scales, method="highs")
print(f"{'budget x':>8} {'capex $B':>9} {'H100e-quarters':>15} {'H100e @ target':>15}")
for p in front:
    print(
        f"{p.parameter:8.2f} {p.capex_usd / 1e9:9.2f} {p.h100e_quarters:15,.0f} "
        f"{p.h100e_target_period:15,.0f}{'  dominated' if p.dominated else ''}"
    )
ok = sorted([p for p in front if p.feasible], key=lambda p: p.parameter)
hq = [p.h100e_quarters for p in ok]
assert all(b >= a * (1 - 1e-3) for a, b in zip(hq, hq[1:])), "more budget never buys less compute"

# the chart `perfmodel plan --pareto --plot` draws: the front joined, dominated plans
# crossed, the plan above starred; capex in billion USD, thousands separators
pareto_chart(
    OUT / "fleet_pareto.png",
    [p.__dict__ for p in front],
    chosen=(plan.capex_usd, plan.h100e_quarters),
    title=f"{sc.name}: Pareto front over budget scale",
    note="Source: perfmodel fleet planner, scenario data/scenarios/tesla-2024.toml "
    "(budgets, power, prices sourced there or marked ESTIMATE)",
)
print(f"wrote {OUT / 'fleet_pareto.png'}; notebook ran in {time.perf_counter() - t_start:.0f} s")

# %% [markdown]
# ## The min-cost front: the least capex for each H100e target
# The same sweep for the other objective (`perfmodel plan --objective min-cost
# --pareto`): targets around the max-h100e plan's delivered H100e at the target quarter,
# each the cheapest integer plan that meets it. A higher target never costs less.

# %%
t0 = next(p for p in front if p.parameter == 1.0).h100e_target_period
t_scales = (0.5, 1.0) if SMALL else (0.25, 0.5, 0.75, 1.0)
cost_front = pareto_front(
    sc, budget_scales=(), targets=tuple(f * t0 for f in t_scales), method="highs"
)
print(f"{'target H100e':>13} {'capex $B':>9} {'H100e @ target':>15}")
for p in sorted(cost_front, key=lambda p: p.parameter):
    cap = f"{p.capex_usd / 1e9:9.2f}" if p.feasible else "infeasible".rjust(9)
    print(f"{p.parameter:13,.0f} {cap} {p.h100e_target_period:15,.0f}")
okc = sorted([p for p in cost_front if p.feasible], key=lambda p: p.parameter)
caps = [p.capex_usd for p in okc]
assert all(b >= a * (1 - 1e-3) for a, b in zip(caps, caps[1:])), "a higher target never costs less"
