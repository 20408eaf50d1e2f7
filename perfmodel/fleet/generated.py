"""Generated scenarios (seeded, plausible or adversarial) for tests and benchmarks: the
scenario files alone (:class:`perfmodel.fleet.schema.Scenario`), below the problem
layer. :mod:`perfmodel.fleet.testing` builds them into Problems.

:func:`generate_scenario` draws offers around H100/H200/GB200/Dojo/AI4-like prices and
powers, sites with ramping power and budgets that bind; :func:`generate_adversarial`
makes one of them hard in one way (:data:`ADVERSARIAL`: near-infeasible power, a
supply-starved offer, ties, a huge capex spread, binding ratio and own-share rules, many
quarters); :func:`generate_placement_scenario` adds training and inference workloads
with a demand per quarter, lifetimes, energy prices and an existing fleet that retires.
"""

from __future__ import annotations

import numpy as np

from perfmodel.fleet.schema import Scenario, parse_scenario, period_list
from perfmodel.fleet.values import STANDIN_H100_RATE

__all__ = [
    "ADVERSARIAL",
    "generate_adversarial",
    "generate_scenario",
    "generate_placement_scenario",
]

_PROTO = (  # chip, chips/unit, price USD/unit, power W/unit, racks/unit, cooling, own
    ("h100_sxm", 8, 400e3, 11.2e3, 0.25, "air", False),
    ("h200", 8, 440e3, 11.2e3, 0.25, "air", False),
    ("gb200", 72, 3.3e6, 140e3, 1.0, "liquid", False),
    ("dojo_tile", 6, 2.76e6, 108e3, 0.5, "liquid", True),
    ("a100_80gb", 8, 224e3, 7.2e3, 0.25, "air", False),
    ("b200", 8, 500e3, 14.3e3, 0.25, "air", False),
    ("mi300x", 8, 300e3, 10e3, 0.25, "air", False),
    ("ai4", 2, 2.5e3, 250.0, 0.01, "air", True),
)
_PRESETS = ("gpt3-175b", "llama3-405b", "video-driving", "llama2-70b", "mixtral-8x7b")


def _offer(chip: str, cpu, price, power_w, rpu, cooling: str) -> dict:
    """The first fields of a generated ``[offers.KEY]`` table (a :data:`_PROTO` row's,
    with its drawn price and power)."""
    return {
        "chip": chip,
        "chips_per_unit": cpu,
        "unit_price_usd": float(price),
        "unit_power_w": float(power_w),
        "racks_per_unit": rpu,
        "cooling": cooling,
    }


def generate_placement_scenario(
    seed: int,
    n_offers: int = 4,
    n_sites: int = 2,
    n_periods: int = 4,
    n_workloads: int = 2,
    *,
    objective: str = "max-h100e",
    chips_per_site: float = 3300.0,
) -> Scenario:
    """A random scenario with demand (see the module docstring). ``chips_per_site``
    sizes each site's power (about that many H100-class chips at the end)."""
    if not (1 <= n_offers <= 8 and 1 <= n_sites <= 500 and 1 <= n_periods <= 40):
        raise ValueError(
            f"generate_placement_scenario: n_offers={n_offers} in [1, 8], n_sites={n_sites} "
            f"in [1, 500], n_periods={n_periods} in [1, 40] required"
        )
    if not 1 <= n_workloads <= 200:
        raise ValueError(f"n_workloads = {n_workloads} must be in [1, 200]")
    rng = np.random.default_rng(seed)
    periods = period_list("2024Q1", n_periods)
    years = tuple(dict.fromkeys(p[:4] for p in periods))
    site_mw = chips_per_site * 1.4e3 * 1.3 / 1e6
    total_h100e = 1.2 * chips_per_site * n_sites
    workloads = []
    for w in range(n_workloads):
        kind = "inference" if w % 2 == 1 else "training"
        share = rng.uniform(0.5, 1.5) / n_workloads
        ramp = [
            share * total_h100e * (0.3 + 0.7 * t / max(1, n_periods - 1)) for t in range(n_periods)
        ]
        spec = {
            "name": _PRESETS[w % len(_PRESETS)],
            "key": f"w{w}",
            "kind": kind,
            "weight": float(rng.uniform(0.5, 1.5)),
            # inference demand in units/s: the stand-in H100 serves STANDIN_H100_RATE
            "demand": [
                float(np.round(x * (STANDIN_H100_RATE if kind == "inference" else 1))) for x in ramp
            ],
        }
        if kind == "inference":
            spec["model"] = "forward"
        workloads.append(spec)
    offers = {}
    for i in range(n_offers):
        chip, cpu, price, pw, rpu, cool, own = _PROTO[i % len(_PROTO)]
        f = rng.uniform(0.9, 1.1)
        units = chips_per_site * n_sites / cpu / n_periods * rng.uniform(0.3, 0.8)
        offers[f"o{i}_{chip}"] = _offer(
            chip, cpu, price * f, pw * rng.uniform(0.95, 1.05), rpu, cool
        ) | {
            "supply_units": [float(np.round(units * rng.uniform(0.6, 1.4))) for _ in periods],
            "own": own,
            "lifetime_quarters": int(rng.integers(max(1, n_periods // 2), 24)),
            "opex_usd_per_unit_year": float(price * 0.03),
        }
        if chip == "ai4":
            offers[f"o{i}_{chip}"]["counts"] = False
            offers[f"o{i}_{chip}"]["serves"] = [
                w["key"] for w in workloads if w["kind"] == "inference"
            ] or [workloads[0]["key"]]
    sites = {}
    for s in range(n_sites):
        growth = rng.uniform(0.0, 0.3)
        p0 = site_mw * rng.uniform(0.3, 0.6)
        sites[f"s{s}"] = {
            "power_mw": [float(min(site_mw, p0 * (1 + growth) ** t)) for t in range(n_periods)],
            "pue": float(rng.uniform(1.1, 1.4)),
            "cooling": "liquid" if rng.uniform() < 0.6 else "air",
            "racks": float(chips_per_site / 8 * rng.uniform(0.4, 0.8)),
            "energy_usd_per_mwh": float(rng.uniform(40, 190)),
            "utilisation": float(rng.uniform(0.6, 0.9)),
        }
    okeys = list(offers)
    per_year = 1.2 * chips_per_site * n_sites * 45e3 / max(1, len(years))
    data = {
        "scenario": {
            "name": f"gen-placement-{seed}",
            "start": "2024Q1",
            "quarters": n_periods,
            "objective": objective,
        },
        "workloads": workloads,
        "sites": sites,
        "offers": offers,
        "budget": {"capex_usd": {y: float(per_year * rng.uniform(0.8, 1.2)) for y in years}},
        "existing": [
            {
                "offer": okeys[0],
                "site": "s0",
                "chips": float(8 * int(rng.integers(1, int(max(2, chips_per_site * 0.02))))),
                "retire": periods[-1] if n_periods > 1 else "2099Q1",
            }
        ],
    }
    return parse_scenario(data, f"<generated placement seed={seed}>")


# --------------------------------------------------------------------------------------


def generate_scenario(
    seed: int,
    n_offers: int = 5,
    n_sites: int = 2,
    n_periods: int = 4,
    *,
    ratio: bool = True,
    policy: bool = True,
) -> Scenario:
    """A random but plausible scenario (seeded): offers drawn around H100/H200/GB200/
    Dojo/AI4-like prices and powers, sites with ramping power, budgets that bind.

    Values come from the stand-in curve when built with ``value_source="standin"``.
    """
    data = _scenario_data(seed, n_offers, n_sites, n_periods, ratio=ratio, policy=policy)
    return parse_scenario(data, f"<generated seed={seed}>")


def _scenario_data(
    seed: int, n_offers: int, n_sites: int, n_periods: int, *, ratio: bool, policy: bool
) -> dict:
    """The scenario file (a dict) of :func:`generate_scenario`."""
    if not (1 <= n_offers <= 12 and 1 <= n_sites <= 200 and 1 <= n_periods <= 40):
        raise ValueError(
            f"generate_scenario: n_offers={n_offers} in [1,12], n_sites={n_sites} in [1,200], "
            f"n_periods={n_periods} in [1,40] required"
        )
    rng = np.random.default_rng(seed)
    periods = period_list("2024Q1", n_periods)
    years = tuple(dict.fromkeys(p[:4] for p in periods))
    proto = [  # chip, chips/unit, price USD/unit, power W/unit, racks/unit, cooling, own
        ("h100_sxm", 8, 400e3, 11e3, 0.25, "air", False),
        ("h200", 8, 450e3, 11.5e3, 0.25, "air", False),
        ("gb200", 72, 3.3e6, 132e3, 1.0, "liquid", False),
        ("dojo_tile", 6, 2.7e6, 110e3, 1.0, "liquid", True),
        ("a100_80gb", 8, 150e3, 6.5e3, 0.25, "air", False),
        ("b200", 8, 500e3, 14.3e3, 0.25, "air", False),
        ("mi300x", 8, 300e3, 10e3, 0.25, "air", False),
        ("ai4", 1, 1.5e3, 300.0, 0.01, "air", True),
    ]
    offers = {}
    for i in range(n_offers):
        chip, cpu, price, pw, rpu, cool, own = proto[i % len(proto)]
        f = rng.uniform(0.85, 1.15)
        sup = rng.uniform(20, 400) * (8 / cpu) ** 0.5 * (10.0 if chip == "ai4" else 1.0)
        offers[f"o{i}_{chip}"] = _offer(
            chip, cpu, price * f, pw * rng.uniform(0.9, 1.1), rpu, cool
        ) | {
            "earliest": periods[
                0 if chip == "ai4" else int(rng.integers(0, max(1, n_periods // 2)))
            ],
            "supply_units": [float(np.round(sup * rng.uniform(0.5, 1.5))) for _ in periods],
            "own": own,
            "counts": chip != "ai4",
        }
    sites = {}
    for s in range(n_sites):
        p0 = rng.uniform(5, 60)
        growth = rng.uniform(0, 0.4)
        sites[f"s{s}"] = {
            "power_mw": [float(p0 * (1 + growth) ** t) for t in range(n_periods)],
            "pue": float(rng.uniform(1.1, 1.5)),
            "cooling": "liquid" if rng.uniform() < 0.5 else "air",
            "racks": float(rng.uniform(100, 2000)),
        }
        if (
            policy
            and s == 0
            and sites["s0"]["cooling"] == "liquid"
            and any(o["chip"] == "dojo_tile" for o in offers.values())
            and rng.uniform() < 0.5
        ):
            sites[f"s{s}"]["own_share_min"] = 0.2
            sites[f"s{s}"]["own_share_from"] = periods[-1]
    okeys = list(offers)
    per_year = rng.uniform(0.2, 1.0) * 5e8 * n_sites
    data = {
        "scenario": {"name": f"gen-{seed}", "start": "2024Q1", "quarters": n_periods},
        "workloads": [{"name": "gpt3-175b", "weight": 1.0}],
        "sites": sites,
        "offers": offers,
        "budget": {"capex_usd": {y: float(per_year * rng.uniform(0.7, 1.3)) for y in years}},
        "existing": [
            {"offer": okeys[0], "site": "s0", "chips": float(8 * int(rng.integers(0, 200)))}
        ],
    }
    ai4 = [k for k in okeys if "ai4" in k]
    if ratio and ai4:
        gpus = [k for k in okeys if offers[k]["chip"] in ("h100_sxm", "h200", "b200")]
        if gpus:
            data["ratios"] = [
                {
                    "site": "*",
                    "numerator": ai4,
                    "denominator": gpus,
                    "min_ratio": 0.2,
                    "from": periods[0],
                }
            ]
    return data


#: The adversarial families of :func:`generate_adversarial`: what each one stresses.
ADVERSARIAL = {
    "tight-power": "power for only a few purchase units beyond the existing fleet at "
    "every site (near-infeasible: integer rounding decides nearly everything)",
    "starved": "the most attractive offer (price cut 40%) has one unit of supply, in one "
    "quarter (a supply row binding at a single unit)",
    "ties": "two identical offers and two identical sites (degenerate ties of equal "
    "value and cost)",
    "capex-spread": "unit prices spread over ~5 decades (~$150 to ~$10M) with a yearly "
    "budget of a few of the dearest units",
    "ratio-own": "a 1:1 AI-computer ratio rule over the GPU chips and an enforced 50% "
    "own-hardware share at site 0 (ratio and own-share rows bind)",
    "long": "24-40 quarters",
}


def _rename_offer(data: dict, old: str, new: str) -> None:
    """Rename offer ``old`` to ``new`` in a scenario dict (offers, existing, ratios)."""
    data["offers"] = {(new if k == old else k): v for k, v in data["offers"].items()}
    for e in data.get("existing", []):
        if e["offer"] == old:
            e["offer"] = new
    for r in data.get("ratios", []):
        for side in ("numerator", "denominator"):
            r[side] = [new if k == old else k for k in r[side]]


def generate_adversarial(
    seed: int, kind: str, n_offers: int = 8, n_sites: int = 3, n_periods: int = 8
) -> Scenario:
    """A :func:`generate_scenario` scenario made hard in one way, ``kind`` one of
    :data:`ADVERSARIAL` (seeded; ``"long"`` draws its own 24-40 quarters, ``"ties"``
    needs 2+ offers and sites, ``"ratio-own"`` all 8 offers). Each is feasible: the
    existing fleet fits and the rules can be met by buying."""
    if kind not in ADVERSARIAL:
        raise ValueError(f"kind = {kind!r}; allowed: {', '.join(map(repr, ADVERSARIAL))}")
    need = {"ties": (2, 2), "ratio-own": (8, 1)}.get(kind, (1, 1))
    if n_offers < need[0] or n_sites < need[1]:
        raise ValueError(
            f"generate_adversarial({kind!r}): n_offers={n_offers} >= {need[0]} and "
            f"n_sites={n_sites} >= {need[1]} required"
        )
    rng = np.random.default_rng([seed, 104729])
    if kind == "long":
        n_periods = int(rng.integers(24, 41))
    data = _scenario_data(
        seed, n_offers, n_sites, n_periods, ratio=True, policy=kind != "ratio-own"
    )
    data["scenario"]["name"] = f"gen-{kind}-{seed}"
    offers, sites = data["offers"], data["sites"]
    okeys = list(offers)
    periods = period_list("2024Q1", n_periods)
    T = n_periods
    if kind == "tight-power":
        ex = data["existing"][0]
        o0 = offers[ex["offer"]]
        ai4 = [o for o in offers.values() if o["chip"] == "ai4"]
        for name, st in sites.items():
            unit_mw = o0["unit_power_w"] * st["pue"] / 1e6
            base = ex["chips"] / o0["chips_per_unit"] * unit_mw if name == ex["site"] else 0.0
            room = unit_mw * rng.uniform(2.0, 12.0)
            if ai4 and name == ex["site"]:  # room for the ratio rule's AI computers
                room += 0.25 * ex["chips"] * ai4[0]["unit_power_w"] * st["pue"] / 1e6
            st["power_mw"] = [float(1.001 * base + room * (1 + 0.15 * t)) for t in range(T)]
    elif kind == "starved":
        cand = [k for k in okeys if offers[k]["chip"] != "ai4"]
        k = cand[int(rng.integers(len(cand)))]
        o = offers[k]
        o["unit_price_usd"] *= 0.6
        first = periods.index(o["earliest"])
        t1 = int(rng.integers(first, T))
        o["supply_units"] = [1.0 if t == t1 else 0.0 for t in range(T)]
    elif kind == "ties":
        a, b = okeys[0], okeys[1]
        twin = f"{a}_twin"
        offers[b] = dict(offers[a])
        _rename_offer(data, b, twin)
        sites["s1"] = {k: v for k, v in sites["s0"].items() if not k.startswith("own_share")}
    elif kind == "capex-spread":
        for o in offers.values():
            o["unit_price_usd"] = float(o["unit_price_usd"] * 10 ** rng.uniform(-1.0, 0.5))
        dear = max(o["unit_price_usd"] for o in offers.values())
        for y in data["budget"]["capex_usd"]:
            data["budget"]["capex_usd"][y] = float(dear * rng.uniform(1.5, 4.0))
    elif kind == "ratio-own":
        sites["s0"] |= {
            "cooling": "liquid",
            "own_share_min": 0.5,
            "own_share_from": periods[min(2, T - 1)],
            "own_share_enforced": True,
        }
        for o in offers.values():
            if o["chip"] == "dojo_tile":
                o["earliest"] = periods[0]
            if o["chip"] == "ai4":
                o["supply_units"] = [max(v, 2000.0) for v in o["supply_units"]]
        data["existing"][0]["chips"] = float(8 * int(rng.integers(0, 20)))
        for r in data.get("ratios", []):
            r["min_ratio"] = 1.0
            r["from"] = periods[min(1, T - 1)]
    return parse_scenario(data, f"<generated {kind} seed={seed}>")
