"""Demand and cost tables of a scenario: workloads with demand per quarter, and the
total-cost-of-ownership fields of sites, offers and the existing fleet.

Schema (validated here; each error is one line naming the field, the value and the
allowed range)::

    [[workloads]]  name (perfmodel.workloads preset), key (id, default: name; unique),
                   kind = "training" | "inference" (default training),
                   model (inference only) = "forward" (forward-only passes at int8 from
                   perfmodel.training.inference_throughput, samples/s for video) |
                   "serving" (perfmodel.serving.serve, tokens/s; causal LLMs only);
                   default: serving for token workloads, forward otherwise,
                   scenario (model "serving" only) = "offline" (default: maximum
                   throughput) | "server" | "interactive" (the best tokens/s meeting
                   the MLPerf p99 TTFT / TPOT limits of that scenario),
                   weight > 0 (value of one H100e of this workload in the objective),
                   demand [..] >= 0 (per quarter: training in H100e of that workload,
                   inference in its own throughput unit, tokens/s or samples/s)
    [sites.KEY]    energy_usd_per_mwh [..] >= 0 (facility energy price, per quarter),
                   utilisation in [0, 1] (average IT load / nameplate IT power)
    [offers.KEY]   lifetime_quarters (integer >= 1: a unit retires that many quarters
                   after delivery), opex_usd_per_unit_year >= 0 (support, maintenance),
                   serves = [workload keys] (default: every workload the models can value)
    [[existing]]   retire (quarter from which the units are out of service)

A scenario with any ``demand`` or any ``kind = "inference"`` workload is planned with
*placement*: the LP assigns installed chips to workloads (see :mod:`perfmodel.fleet.build`).
Without them the scenario means what it meant before (the weighted value curve).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from perfmodel.equivalence.inference import is_llm
from perfmodel.errors import InputError
from perfmodel.fleet.fields import array, check_keys, integer, num, per_period, period_idx
from perfmodel.serving.data import SCENARIOS, defined_scenarios

__all__ = [
    "WorkloadSpec",
    "SERVING_SCENARIOS",
    "WORKLOAD_KINDS",
    "INFERENCE_MODELS",
    "HOURS_PER_QUARTER",
    "parse_workloads",
    "legacy_workloads",
    "site_costs",
    "offer_costs",
    "retire_index",
]

WORKLOAD_KINDS = ("training", "inference")
INFERENCE_MODELS = ("forward", "serving")
#: Latency targets of a ``model = "serving"`` workload.
SERVING_SCENARIOS = SCENARIOS
#: Hours in one quarter (8,766 h per Julian year / 4).
HOURS_PER_QUARTER = 8766.0 / 4


@dataclasses.dataclass(frozen=True)
class WorkloadSpec:
    """One workload of a scenario: ``key`` (id), ``name`` (preset), ``kind``, ``model``
    (the model that values a chip on it: "training", "forward" or "serving"), ``weight``
    (as written, not normalised), ``demand`` (per period, in ``unit``; None = no demand),
    ``scenario`` (the serving model's latency target: "offline", "server" or
    "interactive"; None for training and forward workloads)."""

    key: str
    name: str
    kind: str
    model: str
    weight: float
    demand: tuple[float, ...] | None
    unit: str
    sources: tuple[str, ...] = ()
    scenario: str | None = None


def _check_defined(field: str, name: str, scenario: str) -> None:
    """One line naming ``field`` when the serving benchmark of ``name`` has no
    ``scenario`` limits (MLPerf defines no Interactive scenario for mixtral-8x7b)."""
    key = name.strip().lower().replace("_", "-")
    have = defined_scenarios(key)
    if scenario not in have:
        raise InputError(field, scenario, f"one {key} has limits for: {' | '.join(have)}")


def parse_workloads(raw: Any, periods: tuple[str, ...], known: tuple[str, ...]):
    """The ``[[workloads]]`` array as :class:`WorkloadSpec` records (validated)."""
    specs: list[WorkloadSpec] = []
    for i, w in enumerate(array("workloads", raw)):
        where = f"workloads[{i}]"
        check_keys(
            where,
            w,
            {"name", "key", "kind", "model", "scenario", "weight", "demand", "sources", "notes"},
        )
        name = w.get("name")
        if not isinstance(name, str) or name.strip().lower().replace("_", "-") not in known:
            raise InputError(f"{where}.name", name, f"a workload preset ({', '.join(known)})")
        key = w.get("key", name)
        if not isinstance(key, str) or not key:
            raise InputError(f"{where}.key", key, "a non-empty string")
        if key in {s.key for s in specs}:
            raise InputError(f"{where}.key", key, "a key no other workload has")
        kind = w.get("kind", "training")
        if kind not in WORKLOAD_KINDS:
            raise InputError(f"{where}.kind", kind, " or ".join(WORKLOAD_KINDS))
        scenario = None
        if kind == "training":
            for f in ("model", "scenario"):
                if f in w:
                    raise InputError(f"{where}.{f}", w[f], "absent for a training workload")
            model, unit = "training", "H100e"
        else:
            token = is_llm(name)
            model = w.get("model", "serving" if token else "forward")
            if model not in INFERENCE_MODELS:
                raise InputError(f"{where}.model", model, " or ".join(INFERENCE_MODELS))
            if model == "serving" and not token:
                raise InputError(
                    f"{where}.model", model, "'forward' (serving needs a causal LLM workload)"
                )
            unit = "tokens/s" if token else "samples/s"
            if model == "serving":
                scenario = w.get("scenario", "offline")
                if scenario not in SERVING_SCENARIOS:
                    raise InputError(f"{where}.scenario", scenario, " | ".join(SERVING_SCENARIOS))
                _check_defined(f"{where}.scenario", name, scenario)
            elif "scenario" in w:
                raise InputError(
                    f"{where}.scenario",
                    w["scenario"],
                    'absent for model = "forward" (no latency target)',
                )
        demand = None
        if "demand" in w:
            demand = per_period(f"{where}.demand", w["demand"], periods)
        weight = num(f"{where}.weight", w.get("weight", 1.0), 0, lo_open=True)
        src = w.get("sources", ())
        specs.append(
            WorkloadSpec(
                key,
                name,
                kind,
                model,
                weight,
                demand,
                unit,
                tuple(str(x) for x in src),
                scenario,
            )
        )
    if not specs:
        raise ValueError("workloads: need at least one workload")
    return tuple(specs)


def legacy_workloads(specs: tuple[WorkloadSpec, ...], placement: bool):
    """``(preset, normalised weight)`` pairs of the value curve: every workload without
    placement (as before), the training workloads with it (the installed fleet's H100e)."""
    use = [s for s in specs if s.kind == "training"] if placement else list(specs)
    tot = sum(s.weight for s in use)
    return tuple((s.name, s.weight / tot) for s in use)


def site_costs(where: str, s: dict, periods: tuple[str, ...]) -> tuple[tuple[float, ...], float]:
    """(energy_usd_per_mwh per period, utilisation) of one site table."""
    price = per_period(f"{where}.energy_usd_per_mwh", s.get("energy_usd_per_mwh", 0.0), periods)
    for p, x in zip(periods, price):
        if x > 1e5:
            raise InputError(f"{where}.energy_usd_per_mwh[{p}]", x, "<= 100000 USD/MWh")
    return price, num(f"{where}.utilisation", s.get("utilisation", 1.0), 0, 1)


def offer_costs(where: str, o: dict, workload_keys: tuple[str, ...]):
    """(lifetime_quarters (0 = never retires), opex_usd_per_unit_year, serves) of an offer."""
    life = integer(f"{where}.lifetime_quarters", o.get("lifetime_quarters", 0), 0, 400)
    if "lifetime_quarters" in o and life < 1:
        raise InputError(f"{where}.lifetime_quarters", life, "an integer in [1, 400]")
    opex = num(f"{where}.opex_usd_per_unit_year", o.get("opex_usd_per_unit_year", 0.0), 0, 1e10)
    serves = tuple(array(f"{where}.serves", o.get("serves", [])))
    for j, k in enumerate(serves):
        if k not in workload_keys:
            raise InputError(
                f"{where}.serves[{j}]", k, f"a workload key ({', '.join(workload_keys)})"
            )
    return life, opex, serves


def retire_index(where: str, e: dict, periods: tuple[str, ...]) -> int:
    """Period index from which existing units are retired (len(periods): never)."""
    if "retire" not in e:
        return len(periods)
    p = period_idx(f"{where}.retire", e["retire"], periods, allow_before=False)
    if p == 0:
        raise InputError(f"{where}.retire", e["retire"], f"a quarter after {periods[0]}")
    return p
