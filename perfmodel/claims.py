"""Public claims about H100-equivalents, evaluated with the model.

A claim (``perfmodel/data/claims.toml``, or a user file of the same form) has an id, a
date, a speaker, a quote, sources, a ``check`` (the name of an evaluator below) and
``params``. :func:`evaluate_claims` returns one :class:`ClaimResult` per claim with the
model's numbers, a verdict and the assumptions behind it; ``perfmodel claims`` prints
them as a table or JSON.

Verdicts compare the claimed figure with the model's low..high range, widened by a 10%
tolerance (``TOL``): ``consistent`` inside it, ``overstated`` above, ``understated``
below; claims that are not a single number get a descriptive verdict (``fits``,
``does not fit``, ``plausible``, ...).

Workload numbers need the training model (:mod:`perfmodel.training`); if it is missing
or fails, those numbers are reported as ``None`` with the reason, and the verdict rests
on the spec-sheet and price/power numbers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from perfmodel import equivalence as eq
from perfmodel import workloads as wl
from perfmodel.hardware import BYTES_PER_ELEMENT, PICKS, Catalog, load_catalog, read_toml
from perfmodel.serving import serve
from perfmodel.serving.types import default_efficiency as serving_default_efficiency

TOL = 0.10
VERDICTS = (
    "consistent",
    "overstated",
    "understated",
    "fits",
    "does not fit",
    "marginal",
    "plausible",
    "doubtful",
    "n/a",
)


@dataclasses.dataclass(frozen=True)
class Claim:
    id: str
    date: str
    speaker: str
    quote: str
    sources: tuple[str, ...]
    check: str
    params: Mapping[str, Any]


@dataclasses.dataclass
class ClaimResult:
    """One evaluated claim: model ``numbers`` (label -> value; None = not computed),
    ``verdict`` (one of :data:`VERDICTS`) with a one-line ``summary``, and ``assumptions``."""

    claim: Claim
    numbers: dict[str, Any]
    verdict: str
    summary: str
    assumptions: list[str]
    errors: list[str] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict:
        c = self.claim
        return {
            "id": c.id,
            "date": c.date,
            "speaker": c.speaker,
            "quote": c.quote,
            "sources": list(c.sources),
            "check": c.check,
            "params": dict(c.params),
            "numbers": self.numbers,
            "verdict": self.verdict,
            "summary": self.summary,
            "assumptions": self.assumptions,
            "errors": self.errors,
        }


# --------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------


def builtin_claims_path() -> Path:
    return Path(str(resources.files("perfmodel") / "data" / "claims.toml"))


def builtin_claims_paths() -> list[Path]:
    """The built-in claim files: ``claims.toml`` and the inference claims checked with
    the serving model (``serving_claims.toml``)."""
    data = Path(str(resources.files("perfmodel") / "data"))
    return [builtin_claims_path(), data / "serving_claims.toml"]


def parse_claims(data: Mapping[str, Any], path: str = "<memory>") -> list[Claim]:
    """Validate a parsed claims TOML mapping (``[[claims]]`` entries)."""
    raw = data.get("claims")
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"{path}: expected one or more [[claims]] entries")
    out = []
    for i, c in enumerate(raw):
        where = f"{path}: claims[{i}]"
        if not isinstance(c, Mapping):
            raise ValueError(f"{where}: must be a table")
        for k in ("id", "date", "quote", "sources", "check"):
            if k not in c:
                raise ValueError(f"{where}: field '{k}' is missing")
        src = c["sources"]
        if isinstance(src, str):
            src = [src]
        if not src or not all(isinstance(s, str) and s.strip() for s in src):
            raise ValueError(f"{where} ({c['id']}): 'sources' must list at least one source")
        if c["check"] not in EVALUATORS:
            raise ValueError(
                f"{where} ({c['id']}): check {c['check']!r} must be one of {sorted(EVALUATORS)}"
            )
        params = c.get("params", {})
        if not isinstance(params, Mapping):
            raise ValueError(f"{where} ({c['id']}): 'params' must be a table")
        out.append(
            Claim(
                str(c["id"]),
                str(c["date"]),
                str(c.get("speaker", "")),
                str(c["quote"]),
                tuple(src),
                str(c["check"]),
                dict(params),
            )
        )
    return out


def load_claims(*extra: str | Path, builtin: bool = True) -> list[Claim]:
    """The built-in claims, then those of each ``extra`` file (same id replaces)."""
    files = (builtin_claims_paths() if builtin else []) + [Path(p) for p in extra]
    by_id: dict[str, Claim] = {}
    for p in files:
        data = read_toml(p, "claims", missing=ValueError)
        for c in parse_claims(data, str(p)):
            by_id[c.id] = c
    return list(by_id.values())


# --------------------------------------------------------------------------------------
# Evaluation context and helpers
# --------------------------------------------------------------------------------------


@dataclasses.dataclass
class Context:
    """What evaluators use: the catalog and (for tests) stand-in model functions."""

    catalog: Catalog
    curve_fn: Callable | None = None
    inference_fn: Callable | None = None
    grid: tuple[int, ...] = eq.DEFAULT_GRID

    @property
    def kw(self) -> dict:
        return {"curve_fn": self.curve_fn, "grid": self.grid, "catalog": self.catalog}

    @property
    def ikw(self) -> dict:
        return {"curve_fn": self.inference_fn, "grid": self.grid, "catalog": self.catalog}


def _try(errors: list[str], label: str, fn: Callable, *a, **kw):
    try:
        return fn(*a, **kw)
    except Exception as e:  # noqa: BLE001 - recorded and reported with the claim
        errors.append(f"{label}: {type(e).__name__}: {e}")
        return None


def _range(fn: Callable) -> dict[str, float]:
    return {p: float(fn(p)) for p in ("low", "best", "high")}


def _lohi(r: Mapping[str, float]) -> tuple[float, float]:
    v = [x for x in r.values() if x is not None]
    return min(v), max(v)


def compare(claimed: float, low: float, high: float, tol: float = TOL) -> str:
    """``consistent`` if ``low (1 - tol) <= claimed <= high (1 + tol)``; else
    ``overstated`` (claimed above) or ``understated``."""
    if claimed > high * (1 + tol):
        return "overstated"
    if claimed < low * (1 - tol):
        return "understated"
    return "consistent"


def _fig(cat: Catalog, chip: str, field: str) -> dict:
    f = cat.record(chip).figure(field)
    if f is None:
        raise KeyError(f"chip {chip!r} has no figure {field!r}")
    return {"low": f.low, "best": f.best, "high": f.high}


def _opp(p: str) -> str:
    return {"low": "high", "best": "best", "high": "low"}[p]


# --------------------------------------------------------------------------------------
# Evaluators
# --------------------------------------------------------------------------------------


def check_budget_h100e(c: Claim, ctx: Context) -> ClaimResult:
    """Budget -> H100 count at the all-in H100 price; also what the budget buys of
    ``chip`` (e.g. Dojo tiles) in spec-sheet and workload H100e."""
    p, cat, err = c.params, ctx.catalog, []
    budget, claimed = float(p["budget_usd"]), float(p["claimed_h100e"])
    pure = eq.h100_count_for_budget(budget, catalog=cat)
    implied = budget / claimed
    price = _fig(cat, eq.REFERENCE_CHIP, "allin_price_usd")
    nums: dict[str, Any] = {
        "implied_usd_per_h100": implied,
        "catalog_h100_allin_usd": price,
        "h100_for_budget": {"low": pure.h100e_low, "best": pure.h100e, "high": pure.h100e_high},
    }
    verdict = compare(claimed, pure.h100e_low, pure.h100e_high)
    chip = p.get("chip")
    if chip:
        tiles = {pk: budget / _fig(cat, chip, "allin_price_usd")[_opp(pk)] for pk in PICKS}
        nums[f"{chip}_for_budget"] = tiles
        nums[f"{chip}_spec_h100e"] = {
            pk: tiles[pk] * float(eq.spec_equivalence(cat.chip(chip, pk), "bf16", catalog=cat))
            for pk in PICKS
        }
        for w in p.get("workloads", []):
            for mode in eq.MODES:
                nums[f"{chip}_h100e[{w}, {mode}]"] = _try(
                    err,
                    w,
                    lambda w=w, mode=mode: _range(
                        lambda pk: eq.budget_equivalence(
                            budget, chip, w, pick=pk, mode=mode, **ctx.kw
                        )
                    ),
                )
    summary = (
        f"${budget / 1e6:,.0f}M / ${implied:,.0f} per H100 = {claimed:,.0f} H100; catalog "
        f"all-in ${price['low']:,.0f}-{price['high']:,.0f} gives "
        f"{pure.h100e_low:,.0f}-{pure.h100e_high:,.0f} H100"
    )
    if chip:
        sp = nums[f"{chip}_spec_h100e"]
        summary += (
            f"; the same money buys {sp['low']:,.0f}-{sp['high']:,.0f} spec-sheet H100e of {chip}"
        )
    return ClaimResult(
        c,
        nums,
        verdict,
        summary,
        [
            "all-in price = GPU + server + network share (catalog allin_price_usd, estimate)",
            "pure-price equivalence is linear in the budget; ranges from the low/high price",
            f"{chip} counted at bf16 peak (spec) and with the training model: 'job' = one job "
            "over all chips at the preset global batch, 'capacity' = independent copies on the "
            "best slice size"
            if chip
            else "no alternative chip",
        ],
        err,
    )


def check_dojo_h100e(c: Claim, ctx: Context) -> ClaimResult:
    """Tiles / ExaPODs of Dojo that make ``claimed_h100e`` H100-equivalents, on the spec
    sheet (bf16 peak) and per workload (inverse of the workload equivalence)."""
    p, cat, err = c.params, ctx.catalog, []
    claimed, chip = float(p["claimed_h100e"]), p.get("chip", "dojo_tile")
    per_pod = float(p.get("tiles_per_exapod", 120))
    planned = float(p.get("planned_exapods", 0))
    spec = {
        pk: claimed / float(eq.spec_equivalence(cat.chip(chip, pk), "bf16", catalog=cat))
        for pk in PICKS
    }
    nums: dict[str, Any] = {
        "spec_tiles": spec,
        "spec_exapods": {k: v / per_pod for k, v in spec.items()},
    }
    worst = max(spec.values())
    for w in p.get("workloads", []):
        for mode in eq.MODES:
            t = _try(
                err,
                w,
                lambda w=w, mode=mode: _range(
                    lambda pk: eq.chips_for_h100e(chip, claimed, w, pick=pk, mode=mode, **ctx.kw)
                ),
            )
            if t is not None:  # low perf needs MORE tiles: report the count range sorted
                t = {"low": min(t.values()), "best": t["best"], "high": max(t.values())}
            nums[f"tiles[{w}, {mode}]"] = t
            nums[f"exapods[{w}, {mode}]"] = (
                None if t is None else {k: v / per_pod for k, v in t.items()}
            )
            if t is not None:
                worst = max(worst, t["best"])
    need_pods = worst / per_pod
    verdict = (
        "plausible"
        if planned and need_pods <= planned * (1 + TOL)
        else ("doubtful" if planned else "n/a")
    )
    summary = (
        f"{claimed:,.0f} H100e = {spec['best']:,.0f} tiles ({spec['best'] / per_pod:.1f} "
        f"ExaPODs) on bf16 peak"
    )
    for w in p.get("workloads", []):
        job, capacity = (nums.get(f"tiles[{w}, {m}]") for m in eq.MODES)
        if job and capacity:
            summary += (
                f"; {w}: {job['best']:,.0f} tiles as one job, {capacity['best']:,.0f} "
                "as fleet capacity"
            )
    if planned:
        summary += f"; Tesla planned {planned:g} ExaPODs ({planned * per_pod:,.0f} tiles)"
    return ClaimResult(
        c,
        nums,
        verdict,
        summary,
        [
            "Dojo tile = 25 D1, 9.05 PFLOP/s bf16; HBM/network = its share of the DIPs (catalog)",
            "workload: Dojo in its own mesh + Z-plane network vs H100 in DGX H100 + IB (training "
            "model); 'job' = one job over all chips, 'capacity' = independent copies",
            "verdict: plausible if the tiles needed fit the planned ExaPODs; Tesla never published "
            "a deployed tile count",
        ],
        err,
    )


def check_growth(c: Claim, ctx: Context) -> ClaimResult:
    """Growth rates of a series of H100e figures vs the claimed percentages, and the
    model's H100e for given fleets (independent clusters: sum of their H100e)."""
    p, err = c.params, []
    series = [float(x) for x in p["h100e"]]
    labels = list(p.get("labels", [str(i) for i in range(len(series))]))
    rates = {
        f"{labels[0]} -> {labels[i]}": 100 * (series[i] / series[0] - 1)
        for i in range(1, len(series))
    }
    rates.update(
        {
            f"{labels[i - 1]} -> {labels[i]}": 100 * (series[i] / series[i - 1] - 1)
            for i in range(2, len(series))
        }
    )
    nums: dict[str, Any] = {"growth_pct": rates}
    claimed = [float(x) for x in p.get("claimed_growth_pct", [])]
    computed = [100 * (s / series[0] - 1) for s in series[1:]]
    verdicts = [compare(cl, co, co) for cl, co in zip(claimed, computed)]
    for key in ("fleet_end_2023", "fleet_end_2024"):
        fleet = p.get(key)
        if not fleet:
            continue
        spec = sum(n * float(eq.spec_equivalence(k, "bf16", catalog=ctx.catalog)) for k, n in fleet)
        nums[f"{key}_spec_h100e"] = spec
        for w in p.get("workloads", []):
            nums[f"{key}_h100e[{w}, capacity]"] = _try(
                err,
                f"{key} {w}",
                lambda w=w, fleet=fleet: _range(
                    lambda pk: eq.fleet_equivalence(
                        [(k, n) for k, n in fleet], w, pick=pk, mode="capacity", **ctx.kw
                    )
                ),
            )
    target = series[-1]
    f24 = nums.get("fleet_end_2024_spec_h100e")
    if f24 is not None:
        nums["gap_to_target_h100"] = target - f24
    v = (
        "consistent"
        if all(x == "consistent" for x in verdicts)
        else (
            "understated"
            if "understated" in verdicts and "overstated" not in verdicts
            else "overstated"
            if "overstated" in verdicts
            else "consistent"
        )
    )
    summary = ", ".join(f"{k}: {x:+.0f}%" for k, x in rates.items())
    if claimed:
        summary += (
            " (claimed "
            + ", ".join(f"{x:+.0f}%" for x in claimed)
            + "; implied: "
            + ", ".join(f"{series[0] * (1 + x / 100):,.0f}" for x in claimed)
            + " H100e)"
        )
    if f24 is not None:
        summary += f"; candidate end-2024 fleet = {f24:,.0f} spec H100e"
    return ClaimResult(
        c,
        nums,
        v,
        summary,
        [
            "growth = h100e[t] / h100e[t0] - 1",
            "+130% matches 15k -> ~35k (35k H100 active per the Q1 call), +167% would be 15k -> 40k",
            "fleets are independent clusters (H100e add), each counted as capacity (independent "
            "jobs); A100 and Dojo tile counts are estimates "
            "(~14k A100 July 2023; 875 tiles = 8k spec H100e)",
        ],
        err,
    )


def _it_power(cat: Catalog, chip: str, n: float, pk: str) -> float:
    return n * _fig(cat, chip, "allin_power_w")[pk]


def check_cortex_power(c: Claim, ctx: Context) -> ClaimResult:
    """Does the cluster fit the site power (all-in IT power x PUE), and what H100e a
    bigger site holds under several hardware mixes."""
    p, cat, err = c.params, ctx.catalog, []
    site = float(p["power_w"])
    socs = float(p.get("tesla_computers", 0)) * float(p.get("socs_per_computer", 1))
    tchip = p.get("tesla_chip", "ai4")
    pue = {"low": eq.PUE_RANGE[0], "best": eq.DEFAULT_PUE, "high": eq.PUE_RANGE[1]}
    need = {
        pk: (_it_power(cat, "h100", float(p["h100"]), pk) + _it_power(cat, tchip, socs, pk))
        * pue[pk]
        for pk in PICKS
    }
    nums: dict[str, Any] = {
        "site_power_needed_w": need,
        "site_power_claimed_w": site,
        "h100_it_power_w": _it_power(cat, "h100", float(p["h100"]), "best"),
        f"{tchip}_it_power_w": _it_power(cat, tchip, socs, "best"),
    }
    verdict = (
        "fits"
        if need["high"] <= site
        else "does not fit"
        if need["low"] > site
        else "marginal"
        if need["best"] > site
        else "fits"
    )
    target = float(p.get("target_power_w", 0))
    w = p.get("workload", "video-driving")
    mixes = {}
    for label, parts in p.get("mixes", []) if target else []:
        row = {"spec_h100e": 0.0, "training_h100e": 0.0, "inference_h100e": 0.0, "chips": {}}
        for chip, share in parts:
            n = eq.chips_for_power(
                target * share, _fig(cat, chip, "allin_power_w")["best"], eq.DEFAULT_PUE
            )
            row["chips"][chip] = n
            kind = cat.record(chip).text.get("kind", "gpu")
            if kind == "inference":
                row["spec_h100e"] += n * float(eq.spec_equivalence(chip, "int8", catalog=cat))
                v = _try(err, f"{label} {chip}", eq.inference_equivalence, chip, n, w, **ctx.ikw)
                row["inference_h100e"] = (
                    None
                    if v is None or row["inference_h100e"] is None
                    else row["inference_h100e"] + v
                )
            else:
                row["spec_h100e"] += n * float(eq.spec_equivalence(chip, "bf16", catalog=cat))
                v = _try(
                    err,
                    f"{label} {chip}",
                    eq.workload_equivalence,
                    chip,
                    n,
                    w,
                    mode="capacity",
                    **ctx.kw,
                )
                row["training_h100e"] = (
                    None
                    if v is None or row["training_h100e"] is None
                    else row["training_h100e"] + v
                )
        mixes[label] = row
    nums["mixes_at_target"] = mixes
    summary = (
        f"{p['h100']:,} H100 + {socs:,.0f} {tchip} SoCs need {need['best'] / 1e6:.0f} MW "
        f"(range {need['low'] / 1e6:.0f}-{need['high'] / 1e6:.0f}) at the meter vs "
        f"{site / 1e6:.0f} MW"
    )
    if mixes:
        best = max(mixes.items(), key=lambda kv: kv[1]["training_h100e"] or kv[1]["spec_h100e"])
        summary += f"; at {target / 1e6:.0f} MW the highest training H100e is '{best[0]}'"
    return ClaimResult(
        c,
        nums,
        verdict,
        summary,
        [
            "site power = sum(n x allin_power_w) x PUE; all-in power includes host, network, storage",
            f"PUE {eq.DEFAULT_PUE} (range {eq.PUE_RANGE[0]}-{eq.PUE_RANGE[1]}, estimate); "
            "low/high pair low/high per-chip power with low/high PUE",
            f"'Tesla AI computers' = {p.get('socs_per_computer', 1)} {tchip} SoCs each",
            "mixes split the target site power by share; H100e (capacity mode) of independent "
            "clusters add; AI4 "
            "counts only as inference (forward-only int8) H100e",
        ],
        err,
    )


def check_inference_in_loop(c: Claim, ctx: Context) -> ClaimResult:
    """FSD computers beside H100s: their power and what they deliver in forward-only
    (inference) H100e, vs the H100s the same power would host."""
    p, cat, err = c.params, ctx.catalog, []
    h100 = float(p["h100"])
    chip = p.get("chip", "ai4")
    spc = float(p.get("socs_per_computer", 1))
    w = p.get("workload", "video-driving")
    h_it = _it_power(cat, "h100", h100, "best")
    nums: dict[str, Any] = {}
    for label, ratio in p["ratios"]:
        comps = h100 * float(ratio)
        socs = comps * spc
        it = {pk: _it_power(cat, chip, socs, pk) for pk in PICKS}
        row = {
            "computers": comps,
            "socs": socs,
            "it_power_w": it,
            "site_power_w": {pk: it[pk] * eq.DEFAULT_PUE for pk in PICKS},
            "share_of_h100_power": it["best"] / h_it,
            "int8_spec_h100e": eq.spec_equivalence_range(chip, "int8", socs, cat),
            "inference_h100e": _try(
                err,
                label,
                lambda socs=socs: _range(
                    lambda pk: eq.inference_equivalence(chip, socs, w, pick=pk, **ctx.ikw)
                ),
            ),
            "h100_same_power": it["best"] / _fig(cat, "h100", "allin_power_w")["best"],
            "capex_usd": {pk: socs * _fig(cat, chip, "allin_price_usd")[pk] for pk in PICKS},
        }
        nums[label] = row
    first = nums[p["ratios"][0][0]]
    inf = first["inference_h100e"]
    summary = (
        f"{first['computers']:,.0f} computers ({first['socs']:,.0f} SoCs) draw "
        f"{first['it_power_w']['best'] / 1e6:.1f} MW IT ({100 * first['share_of_h100_power']:.0f}% "
        f"of the H100s'), = {first['h100_same_power']:,.0f} H100 of power; "
        f"int8 spec {first['int8_spec_h100e']['best']:,.0f} H100e"
    )
    if inf:
        summary += f", forward-only {inf['best']:,.0f} H100e on {w}"
    verdict = "plausible"
    if inf and inf["high"] < first["h100_same_power"]:
        verdict = "doubtful"
    return ClaimResult(
        c,
        nums,
        verdict,
        summary,
        [
            f"{chip} all-in power and int8 rate are estimates (no Tesla spec sheet)",
            "inference H100e: H100s at int8 delivering the same forward-only throughput "
            f"on {w}; AI4s add no training (backward pass) capacity",
            "verdict plausible if the computers deliver at least the H100s their power would host; "
            "reusing car hardware also tests the exact in-car computer (not modelled)",
        ],
        err,
    )


def check_diversion(c: Claim, ctx: Context) -> ClaimResult:
    """H100s delayed by some months: the cost in H100e-months, money and cloud rent."""
    p, cat = c.params, ctx.catalog
    n = float(p["h100"])
    months = {pk: float(p["months"][pk]) for pk in PICKS}
    price = _fig(cat, "h100", "allin_price_usd")
    rent = p.get("cloud_usd_per_gpu_hour", {"low": 1.9, "best": 2.4, "high": 2.94})
    hm = {pk: n * months[pk] for pk in PICKS}
    nums: dict[str, Any] = {
        "h100e_months": hm,
        "value_usd": {pk: n * price[pk] for pk in PICKS},
        "gpu_price_usd": {pk: n * _fig(cat, "h100", "price_usd")[pk] for pk in PICKS},
        "cloud_rent_equivalent_usd": {pk: n * months[pk] * 730.0 * float(rent[pk]) for pk in PICKS},
    }
    fleet = float(p.get("fleet_h100e_q1_2024", 0))
    if fleet:
        nums["fleet_months_equivalent"] = {pk: hm[pk] / fleet for pk in PICKS}
    claimed = float(p.get("claimed_value_usd", 0))
    verdict = (
        compare(claimed, n * _fig(cat, "h100", "price_usd")["low"], n * price["high"])
        if claimed
        else "n/a"
    )
    summary = (
        f"{n:,.0f} H100 x {months['low']:g}-{months['high']:g} months = "
        f"{hm['low']:,.0f}-{hm['high']:,.0f} H100e-months (best {hm['best']:,.0f})"
    )
    if fleet:
        summary += f" = {hm['best'] / fleet:.1f} months of a {fleet:,.0f}-H100e fleet"
    summary += f"; worth ${n * price['best'] / 1e6:,.0f}M all-in"
    return ClaimResult(
        c,
        nums,
        verdict,
        summary,
        [
            "months of delay are an assumption (the report says 'by months'; X's later orders were "
            "re-assigned to Tesla): low/best/high = "
            + "/".join(f"{months[k]:g}" for k in ("low", "best", "high")),
            "an H100 is exactly 1 H100e on every workload (identity)",
            "value verdict compares '>$500M' with 12k x GPU price (low) .. all-in price (high)",
            "cloud rent at 730 h/month",
        ],
    )


def check_speedup(c: Claim, ctx: Context) -> ClaimResult:
    """Per-chip training speed-up of ``chip`` over the H100 at equal chip counts
    (model throughput ratio), vs the claimed speed-up."""
    p, cat, err = c.params, ctx.catalog, []
    w = p["workload"]
    counts = [float(x) for x in p.get("counts", [512])]
    chips = [p["chip"], *p.get("also", [])]
    nums: dict[str, Any] = {}
    main: list[float] = []  # the claimed chip's low/best/high speed-ups at every count
    for chip in chips:
        prec = eq._precision_of(w, None) or "bf16"
        nums[f"{chip}_spec_ratio[{prec}]"] = eq.spec_equivalence_range(chip, prec, 1.0, cat)
        for n in counts:
            r = _try(
                err,
                f"{chip} n={n:g}",
                lambda chip=chip, n=n: _range(
                    lambda pk: eq.workload_equivalence(chip, n, w, pick=pk, **ctx.kw) / n
                ),
            )
            nums[f"{chip}_per_chip_speedup[n={n:g}]"] = r
            if chip == p["chip"] and r is not None:
                main.extend(r.values())
    claimed, claimed_hi = float(p["claimed"]), float(p.get("claimed_high", p["claimed"]))
    if not main:
        sp = nums[f"{p['chip']}_spec_ratio[{eq._precision_of(w, None) or 'bf16'}]"]
        lo, hi = _lohi(sp)
        basis = "spec ratio (training model unavailable)"
    else:
        lo, hi = min(main), max(main)
        basis = f"model on {w}, n = {', '.join(f'{n:g}' for n in counts)}"
    v_lo, v_hi = compare(claimed, lo, hi), compare(claimed_hi, lo, hi)
    verdict = (
        "consistent"
        if "consistent" in (v_lo, v_hi) or (v_lo == "understated" and v_hi == "overstated")
        else v_lo
    )
    summary = (
        f"{p['chip']} per chip = {lo:.2f}-{hi:.2f}x H100 ({basis}) vs claimed "
        f"{claimed:g}x" + (f"-{claimed_hi:g}x" if claimed_hi != claimed else "")
    )
    return ClaimResult(
        c,
        nums,
        verdict,
        summary,
        [
            "speed-up = H100e(n chips) / n at the same chip count, best layout each",
            "MLPerf measures time-to-train incl. software maturity; the model has fixed efficiencies",
            "v4.1's 2x was B200 (DGX, 1000 W); v5.0's 2.6x is 'up to', GB200 NVL72",
        ],
        err,
    )


def check_fleet_h100e(c: Claim, ctx: Context) -> ClaimResult:
    """Generic: a fleet (list of [chip, count]) vs a claimed H100e, spec and per workload."""
    p, err = c.params, []
    fleet = [(k, float(n)) for k, n in p["fleet"]]
    claimed = float(p["claimed_h100e"])
    prec = p.get("precision", "bf16")
    spec = sum(n * float(eq.spec_equivalence(k, prec, catalog=ctx.catalog)) for k, n in fleet)
    nums: dict[str, Any] = {"spec_h100e": spec}
    lo, hi = spec, spec
    for w in p.get("workloads", []):
        r = _try(
            err,
            w,
            lambda w=w: _range(
                lambda pk: eq.fleet_equivalence(
                    fleet, w, pick=pk, mode=p.get("mode", "capacity"), **ctx.kw
                )
            ),
        )
        nums[f"h100e[{w}]"] = r
        if r:
            lo, hi = min(lo, r["low"]), max(hi, r["high"])
    verdict = compare(claimed, lo, hi)
    return ClaimResult(
        c,
        nums,
        verdict,
        f"model {lo:,.0f}-{hi:,.0f} H100e (spec {spec:,.0f}) vs claimed {claimed:,.0f}",
        ["independent clusters: H100e add", f"spec at {prec}"],
        err,
    )


def check_fp4_capacity(c: Claim, ctx: Context) -> ClaimResult:
    """Parameters the DRAM of ``chips`` chips holds at ``precision``: weights only
    (the claim's reading), with the format's block scales, and with the serving
    model's usable fraction of DRAM (runtime, activations and KV cache excluded)."""
    p, cat = c.params, ctx.catalog
    chip, n = p["chip"], float(p["chips"])
    prec = p.get("precision", "fp4")
    b = BYTES_PER_ELEMENT[prec]
    scale = float(p.get("scale_bytes_per_param", 0.0))
    usable = float(serving_default_efficiency().mem_usable)
    dram = _fig(cat, chip, "dram_bytes")
    nums: dict[str, Any] = {
        "dram_bytes_per_chip": dram,
        "dram_bytes_total": {k: v * n for k, v in dram.items()},
        f"params_weights_only[{prec}]": {k: v * n / b for k, v in dram.items()},
        f"params_with_scales[{prec}]": {k: v * n / (b + scale) for k, v in dram.items()},
        "params_usable_with_scales": {k: v * n * usable / (b + scale) for k, v in dram.items()},
    }
    claimed = float(p["claimed_params"])
    lo = min(nums["params_usable_with_scales"].values())
    hi = max(nums[f"params_weights_only[{prec}]"].values())
    verdict = compare(claimed, lo, hi)
    raw = nums[f"params_weights_only[{prec}]"]["best"]
    summary = (
        f"{n:g} x {dram['best'] / 1e9:.0f} GB = {dram['best'] * n / 1e12:.1f} TB holds "
        f"{raw / 1e12:.1f}T parameters at {b:g} byte (weights only), "
        f"{nums['params_usable_with_scales']['best'] / 1e12:.1f}T with block scales and "
        f"{usable:.0%} usable; claimed {claimed / 1e12:g}T"
    )
    return ClaimResult(
        c,
        nums,
        verdict,
        summary,
        [
            "the claim counts HBM only, 4-bit weights, nothing else resident",
            f"NVFP4 adds {scale:g} byte per parameter of block scales",
            "usable fraction = the serving model's mem_usable (runtime, activations); "
            "a KV cache for real requests needs more",
        ],
    )


def check_serving_speedup(c: Claim, ctx: Context) -> ClaimResult:
    """Per-chip serving throughput of ``chip`` over ``base_chip`` at the claim's
    latency limits and request lengths (each with its best layout under the fitted
    serving model), vs the claimed speed-up; with what drives the ratio."""
    p, err = c.params, []
    w = wl.workload_from_dict(dict(p["workload"]))

    def run(chip, n, prec, relax=1.0):
        return serve(
            w,
            chip,
            int(n),
            "server",
            precision=prec,
            ttft_ms=float(p["ttft_ms"]) * relax,
            tpot_ms=float(p["tpot_ms"]) * relax,
            input_tokens=float(p["input_tokens"]),
            output_tokens=float(p["output_tokens"]),
            catalog=ctx.catalog,
        )

    def per_chip(r: dict[str, Any]) -> float:
        return float(r["tokens_per_s_per_chip"])

    new = _try(err, p["chip"], run, p["chip"], p["chips"], p["precision"])
    same = _try(
        err,
        f"{p['chip']} at {p['base_precision']}",
        run,
        p["chip"],
        p["chips"],
        p["base_precision"],
    )
    base_err: list[str] = []
    base = _try(base_err, p["base_chip"], run, p["base_chip"], p["base_chips"], p["base_precision"])
    relax, base_relaxed, new_relaxed = None, None, None
    if base is None:  # the base chip cannot meet the limits: where can it?
        for k in (1.25, 1.5, 2.0, 3.0, 5.0):
            relax = k
            base_relaxed = _try(
                [], "relaxed", run, p["base_chip"], p["base_chips"], p["base_precision"], k
            )
            if base_relaxed is not None:
                new_relaxed = _try([], "relaxed", run, p["chip"], p["chips"], p["precision"], k)
                break
    nums: dict[str, Any] = {}
    for label, r in (("new", new), ("base", base), ("new_at_base_precision", same)):
        nums[label] = (
            None
            if r is None
            else {k: r[k] for k in ("tokens_per_s_per_chip", "layout", "latencies_ms", "precision")}
        )
    claimed = float(p["claimed"])
    if new is None:
        return ClaimResult(c, nums, "n/a", "serving model failed: " + "; ".join(err), [], err)
    band = new["error_band"]["cv_mean_abs_error"] or 0.0
    if same is not None:
        nums["speedup_from_precision"] = per_chip(new) / per_chip(same)
    if base is None:
        nums["base_error"] = base_err[0] if base_err else None
        nums["base_limits_relaxed_by"] = relax
        ratio = (
            None
            if base_relaxed is None or new_relaxed is None
            else per_chip(new_relaxed) / per_chip(base_relaxed)
        )
        nums["per_chip_speedup_at_relaxed_limits"] = ratio
        verdict = "plausible"
        summary = (
            f"{p['base_chip']} x{p['base_chips']} cannot meet p99 TPOT {p['tpot_ms']:g} ms "
            f"(or TTFT {p['ttft_ms']:g} ms) on {w.name} in the model, {p['chip']} "
            f"x{p['chips']} serves "
            f"{per_chip(new):,.0f} tokens/s per chip there: the claimed {claimed:g}x is a "
            f"ratio to a base that barely runs"
            + (
                f"; with both limits x{relax:g} (where {p['base_chip']} runs): {ratio:.1f}x per chip"
                if ratio is not None
                else ""
            )
        )
    else:
        ratio = per_chip(new) / per_chip(base)
        nums["per_chip_speedup"] = ratio
        if same is not None:
            nums["speedup_at_equal_precision"] = per_chip(same) / per_chip(base)
        lo, hi = ratio * (1 - band) / (1 + band), ratio * (1 + band) / (1 - band)
        verdict = compare(claimed, lo, hi)
        summary = (
            f"{p['chip']} x{p['chips']} ({p['precision']}) vs {p['base_chip']} "
            f"x{p['base_chips']} ({p['base_precision']}): {ratio:.1f}x per chip (band "
            f"{lo:.1f}-{hi:.1f}x) vs claimed {claimed:g}x"
        )
    if "speedup_from_precision" in nums:
        summary += (
            f"; {p['precision']} alone gives {p['chip']} {nums['speedup_from_precision']:.1f}x "
            f"over its own {p['base_precision']}, the rest is the NVLink domain "
            f"(tp={new['layout']['tp']} in one domain) and memory"
        )
    return ClaimResult(
        c,
        nums,
        verdict,
        summary,
        [
            f"workload {w.name}: shape is an estimate (NVIDIA has not published it)",
            f"limits: p99 TTFT {p['ttft_ms']:g} ms, p99 TPOT {p['tpot_ms']:g} ms; "
            f"{p['input_tokens']:g} in / {p['output_tokens']:g} out tokens, Poisson arrivals",
            "each side at its best layout of the serving model (TP inside the scale-up "
            "domain, PP across it); fitted efficiencies, CV error band applied to both",
        ],
        err,
    )


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
}


def evaluate_claims(
    claims: list[Claim] | None = None,
    *,
    catalog: Catalog | None = None,
    curve_fn: Callable | None = None,
    inference_fn: Callable | None = None,
    grid=eq.DEFAULT_GRID,
    only: list[str] | None = None,
) -> list[ClaimResult]:
    """Evaluate claims (default: the built-in ones) and return one result per claim.

    ``curve_fn``/``inference_fn`` replace the training model (tests use stand-ins);
    ``only`` restricts to the given claim ids."""
    ctx = Context(
        load_catalog() if catalog is None else catalog, curve_fn, inference_fn, tuple(grid)
    )
    claims = load_claims() if claims is None else claims
    if only:
        unknown = set(only) - {c.id for c in claims}
        if unknown:
            raise ValueError(
                f"unknown claim id(s) {sorted(unknown)}; known: {', '.join(c.id for c in claims)}"
            )
        claims = [c for c in claims if c.id in only]
    out = []
    for c in claims:
        try:
            r = EVALUATORS[c.check](c, ctx)
        except (KeyError, TypeError) as e:
            raise ValueError(f"claim {c.id!r}: bad params for check {c.check!r}: {e}") from None
        out.append(r)
    return out


def claims_table(results: list[ClaimResult]) -> list[dict[str, Any]]:
    """Rows (id, date, verdict, summary, sources) for printing."""
    return [
        {
            "id": r.claim.id,
            "date": r.claim.date,
            "verdict": r.verdict,
            "summary": r.summary,
            "source": r.claim.sources[0],
            "errors": len(r.errors),
        }
        for r in results
    ]
