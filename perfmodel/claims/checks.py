"""The registry of evaluators: the ``check`` name of a claim -> its evaluator."""

from __future__ import annotations

from collections.abc import Callable

from perfmodel.claims.chips import check_fp4_capacity, check_serving_speedup, check_speedup
from perfmodel.claims.context import Context
from perfmodel.claims.fleets import (
    check_budget_h100e,
    check_dojo_h100e,
    check_fleet_h100e,
    check_growth,
)
from perfmodel.claims.plans import check_plan_milestones
from perfmodel.claims.sites import check_cortex_power, check_diversion, check_inference_in_loop
from perfmodel.claims.verdicts import Claim, ClaimResult

EVALUATORS: dict[str, Callable[[Claim, Context], ClaimResult]] = {
    "budget_h100e": check_budget_h100e,
    "dojo_h100e": check_dojo_h100e,
    "growth": check_growth,
    "cortex_power": check_cortex_power,
    "inference_in_loop": check_inference_in_loop,
    "diversion": check_diversion,
    "speedup": check_speedup,
    "fleet_h100e": check_fleet_h100e,
    "fp4_capacity": check_fp4_capacity,
    "serving_speedup": check_serving_speedup,
    "plan_milestones": check_plan_milestones,
}
