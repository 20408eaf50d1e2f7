"""``perfmodel equiv`` (H100-equivalents) and ``perfmodel claims`` (public claims checked)."""

from __future__ import annotations

import argparse
import json
import textwrap

from perfmodel.choices import INFERENCE_MODELS, SERVING_SCENARIOS
from perfmodel.commands._args import (
    add_catalog_args,
    add_plot_catalog_json_args,
    check_finite,
    check_readable,
    number,
    user_catalog,
)
from perfmodel.commands._plot import chart_path
from perfmodel.errors import InputError

KINDS = ("spec", "workload", "budget", "power", "price", "inference")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "equiv",
        help="H100-equivalents of chips, a budget or a power envelope",
        description="H100-equivalents (H100e) with low/best/high ranges and the assumptions "
        "behind them. Kinds: spec (dense peak ratio), workload (H100s with the same "
        "throughput at scale), budget (what --budget-usd buys, all-in), power (what "
        "--power-mw hosts, with PUE), price (H100s at the all-in H100 price), "
        "inference (an LLM workload: output tokens/s of the fitted serving model in an "
        "MLPerf --scenario; a vision workload, or --model forward: forward-only int8 "
        "throughput, for FSD computers in the training loop).",
    )
    p.add_argument("--chip", default="h100", help="catalog chip key or alias (default h100)")
    p.add_argument("--count", type=float, default=None, help="number of chips")
    p.add_argument(
        "--workload", default=None, help="workload preset (e.g. llama3-70b, video-driving)"
    )
    p.add_argument(
        "--kind",
        choices=KINDS,
        default=None,
        help="default: budget/power if --budget-usd/--power-mw, workload if --workload, else spec",
    )
    p.add_argument(
        "--precision", default=None, help="precision (default: the workload's, bf16 for spec)"
    )
    p.add_argument("--budget-usd", type=float, default=None, help="budget, USD")
    p.add_argument("--power-mw", type=float, default=None, help="site power at the meter, MW")
    p.add_argument(
        "--pue",
        type=float,
        default=None,
        help="site PUE (default 1.3, range 1.1-1.5 for low/high; estimate)",
    )
    p.add_argument(
        "--mode",
        choices=("job", "capacity"),
        default=None,
        help="job: one job over all chips at the workload's global batch (default; "
        "capacity for --kind inference); capacity: independent copies of the "
        "job on the best slice size (fleet capacity)",
    )
    p.add_argument(
        "--model",
        choices=INFERENCE_MODELS,
        default=None,
        help="--kind inference only: serving (the fitted serving model, tokens/s at an "
        "MLPerf latency target; causal LLM workloads) or forward (forward-only int8 "
        "passes, the AI4/HW3 in-the-loop model); default: serving for an LLM workload, "
        "forward otherwise",
    )
    p.add_argument(
        "--scenario",
        default=None,
        help="--kind inference --model serving only: offline (default, no latency "
        "limit), server or interactive (the MLPerf p99 TTFT/TPOT limits)",
    )
    add_plot_catalog_json_args(
        p,
        "H100e against the chip count, with the "
        "low..high range, the spec-sheet and 1:1 lines (not for --kind price)",
    )
    p.set_defaults(func=run_equiv)

    c = sub.add_parser(
        "claims",
        help="check public H100-equivalent claims with the model",
        description="Evaluate the built-in claims (perfmodel/data/claims.toml) "
        "and any --claims-file with the model: numbers, verdict, "
        "assumptions and sources.",
    )
    c.add_argument("--claims-file", action="append", default=[], help="extra claims TOML file(s)")
    c.add_argument("--no-builtin", action="store_true", help="only the --claims-file claims")
    c.add_argument("--only", action="append", default=[], help="evaluate only this claim id")
    add_catalog_args(c)
    c.add_argument("--json", action="store_true", help="print JSON")
    c.add_argument("--verbose", "-v", action="store_true", help="print all numbers and assumptions")
    c.set_defaults(func=run_claims)


def _inference_model(a, kind: str) -> tuple[str | None, str | None]:
    """``(model, scenario)`` of ``--kind inference`` (``(None, None)`` otherwise): the
    ``--model`` given, else serving for a causal LLM workload and forward for the rest;
    ``--scenario`` (default offline) only with the serving model."""
    # the models (JAX) load when the command runs, not when its parser is built (--help)
    from perfmodel import equivalence as eq

    model, scenario = getattr(a, "model", None), getattr(a, "scenario", None)
    if kind != "inference":
        for flag, v in (("--model", model), ("--scenario", scenario)):
            if v is not None:
                raise InputError(flag, v, f"absent with --kind {kind} (it is for --kind inference)")
        return None, None
    if model is not None and model not in INFERENCE_MODELS:
        raise InputError("--model", model, "one of " + ", ".join(INFERENCE_MODELS))
    if scenario is not None and scenario not in SERVING_SCENARIOS:
        raise InputError("--scenario", scenario, "one of " + ", ".join(SERVING_SCENARIOS))
    llm = eq.default_inference_model(a.workload) == "serving"
    model = model or ("serving" if llm else "forward")
    if model == "serving" and not llm:
        raise InputError(
            "--model",
            model,
            f"'forward' for workload {a.workload!r} (the serving model serves causal LLMs "
            "only; forward is the int8 in-the-loop model)",
        )
    if model == "forward":
        if scenario is not None:
            raise InputError(
                "--scenario", scenario, "absent with --model forward (no latency target)"
            )
        return model, None
    if a.mode not in (None, "capacity"):
        raise InputError("--mode", a.mode, "'capacity' with --model serving (replicas)")
    return model, scenario or "offline"


def _kind(a) -> str:
    if a.kind:
        return a.kind
    if a.budget_usd is not None:
        return "budget"
    if a.power_mw is not None:
        return "power"
    return "workload" if a.workload else "spec"


def compute(a) -> dict:
    """The equivalence the arguments ask for, as a JSON-able dict."""
    # the models (JAX) load when the command runs, not when its parser is built (--help)
    from perfmodel import equivalence as eq
    from perfmodel import workloads as wl
    from perfmodel.training.fit import prediction_band

    for nm, hi in (("count", MAX_COUNT), ("budget_usd", MAX_USD), ("power_mw", MAX_MW)):
        v = getattr(a, nm)
        if v is not None:
            number(v, "--" + nm.replace("_", "-"), 0.0, hi, lo_open=True)
    given = getattr(a, "workload", None)
    if given is not None and not str(given).strip():
        raise InputError("--workload", given, "a workload preset (e.g. llama3-70b)")
    cat = user_catalog(a.catalog, a.allow_override)
    kind = _kind(a)
    chip = cat.resolve(a.chip)
    need_w = kind in ("workload", "budget", "power", "inference")
    if need_w and not a.workload:
        if kind == "inference":
            a.workload = "video-driving"
        else:
            raise InputError(f"--kind {kind} needs --workload (e.g. llama3-70b, video-driving)")
    if kind in ("spec", "workload", "inference") and a.count is None:
        raise InputError(f"--kind {kind} needs --count N (number of {chip} chips)")
    if kind in ("budget", "price") and a.budget_usd is None:
        raise InputError(f"--kind {kind} needs --budget-usd X")
    if kind == "power" and a.power_mw is None:
        raise InputError("--kind power needs --power-mw Y")
    if a.pue is not None and not 1.0 <= a.pue <= 3.0:
        raise InputError(f"--pue {a.pue} must be in [1, 3]")
    model, scenario = _inference_model(a, kind)
    plot = None
    if getattr(a, "plot", None) is not None:
        if kind == "price":
            raise InputError("--plot", a.plot, "given with a chip kind (not --kind price)")
        plot = chart_path(a.plot, "equiv", kind, chip, a.workload or a.precision or "bf16")
    if kind == "spec":
        r = eq.spec_result(chip, a.count, a.precision or "bf16", catalog=cat)
    elif kind == "workload":
        r = eq.workload_equivalence_range(
            chip, a.count, a.workload, precision=a.precision, mode=a.mode or "job", catalog=cat
        )
    elif kind == "budget":
        r = eq.budget_equivalence_range(
            eq.to_usd(a.budget_usd),
            chip,
            a.workload,
            precision=a.precision,
            mode=a.mode or "job",
            catalog=cat,
        )
    elif kind == "price":
        r = eq.h100_count_for_budget(eq.to_usd(a.budget_usd), catalog=cat)
    elif kind == "power":
        r = eq.power_equivalence_range(
            eq.to_w(a.power_mw, "mw"),
            chip,
            a.workload,
            a.pue,
            precision=a.precision,
            mode=a.mode or "job",
            catalog=cat,
        )
    elif model == "serving":
        r = eq.serving_equivalence_range(
            chip,
            a.count,
            a.workload,
            scenario=scenario or "offline",
            precision=a.precision,
            catalog=cat,
        )
    else:
        r = eq.inference_equivalence_range(
            chip,
            a.count,
            a.workload,
            precision=a.precision or "int8",
            mode=a.mode or "capacity",
            catalog=cat,
        )
    d = r.to_dict()
    if kind == "inference":
        d["model"], d["scenario"] = model, scenario
    if model == "serving":
        b = r.assumptions["error_band"]["cv_mean_abs_error"]
        ref = cat.resolve(eq.REFERENCE_CHIP)
        d["cv_error_pct"] = {c: None if b is None else 100 * b for c in dict.fromkeys((chip, ref))}
    if kind in ("workload", "budget", "power"):
        w = wl.get_workload(a.workload).with_precision(a.precision)
        mk = "moe" if w.is_moe else "dense"
        d["cv_error_pct"] = {
            c: prediction_band(c, w.precision, mk) for c in dict.fromkeys((chip, "h100_sxm"))
        }
    check_finite(
        d,
        " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(a).items() if k in _INPUTS and v),
    )
    if plot is not None:
        d["plot"] = str(_plot(plot, a, d, kind, chip, cat))
    return d


_PICKS = {"low": "h100e_low", "best": "h100e", "high": "h100e_high"}


def _plot(path, a, d: dict, kind: str, chip: str, cat):
    """The chart of ``--plot``: H100e of 1/30x..30x the answer's chip count, per pick."""
    # the models (JAX) load when the command runs, not when its parser is built (--help)
    import numpy as np

    from perfmodel import equivalence as eq
    from perfmodel.equivalence.model import _training_inference_curve
    from perfmodel.plots import equiv_chart  # here: matplotlib only for a chart

    asm = d["assumptions"]
    n = {
        "budget": lambda: asm["n_chips_range"]["best"],
        "power": lambda: asm["n_chips_best"],
    }.get(kind, lambda: float(a.count))()
    counts = np.geomspace(max(n / 30, 1e-3), n * 30, 49)
    if kind == "spec":
        curves = {p: counts * d[k] / n for p, k in _PICKS.items()}
        what, spec = f"spec sheet at {asm['precision']}", None
    elif d.get("model") == "serving":  # independent replicas: linear in the count
        curves = {p: counts * d[k] / n for p, k in _PICKS.items()}
        what, spec = f"serving model, {a.workload}, {d['scenario']} scenario", None
    else:
        inference = kind == "inference"
        mode = a.mode or ("capacity" if inference else "job")
        curves = {
            p: eq.h100e_curve(
                chip,
                a.workload,
                counts,
                precision=a.precision or ("int8" if inference else None),
                pick=p,
                mode=mode,
                catalog=cat,
                curve_fn=_training_inference_curve if inference else None,
            )
            for p in _PICKS
        }
        sp = asm.get("spec_h100e")
        spec = (sp["best"] if isinstance(sp, dict) else sp) / n if sp is not None else None
        what = f"{'forward-only ' if inference else ''}{a.workload}, {mode} mode"
    src = (
        "best x (1 -/+ cross-validated error); model estimate (perfmodel serving model)"
        if d.get("model") == "serving"
        else "catalog low/best/high figures; model estimate (perfmodel training model)"
    )
    return equiv_chart(
        path,
        counts,
        curves,
        chip=chip,
        what=what,
        point=(n, d["h100e"]),
        spec_ratio=spec,
        note=src if kind != "spec" else "catalog low/best/high dense peaks",
    )


_INPUTS = ("chip", "count", "workload", "kind", "precision", "budget_usd", "power_mw", "pue")
#: Largest chip count, budget (USD) and site power (MW) ``equiv`` accepts.
MAX_COUNT = 1e9
MAX_USD = 1e15
MAX_MW = 1e6


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1e4 or abs(v) >= 1e9 else f"{v:,.0f}"
    if isinstance(v, dict):
        return ", ".join(f"{k}={_fmt(x)}" for k, x in v.items())
    return str(v)


def run_equiv(a) -> int:
    d = compute(a)
    if a.json:
        print(json.dumps(d, indent=2, default=float, allow_nan=False))
        return 0
    band = d.get("cv_error_pct")
    band_txt = (
        "   (cross-validated tokens/s error: "
        + ", ".join(f"{c} ±{v:.0f}%" for c, v in band.items() if v is not None)
        + ")"
        if band
        else ""
    )
    what = d["kind"]
    if d.get("model") == "serving":
        what += f", serving model, {d['scenario']} scenario"
    elif d.get("model") == "forward":
        what += ", forward-only int8 model"
    print(
        f"H100-equivalents ({what}):  best {_fmt(d['h100e'])}   "
        f"low {_fmt(d['h100e_low'])}   high {_fmt(d['h100e_high'])}{band_txt}"
    )
    if "plot" in d:
        print(f"plot: {d['plot']}")
    print("assumptions:")
    for k, v in d["assumptions"].items():
        if k == "sources" and isinstance(v, dict):
            for name, f in v.items():
                src = f.get("source", "") if isinstance(f, dict) else str(f)
                val = (
                    f"{_fmt(f.get('best'))} ({f.get('confidence', '')}): "
                    if isinstance(f, dict)
                    else ""
                )
                print("  " + textwrap.shorten(f"source[{name}]: {val}{src}", 140))
            continue
        print(
            textwrap.fill(
                f"{k}: {_fmt(v)}", width=100, initial_indent="  ", subsequent_indent="      "
            )
        )
    return 0


def run_claims(a) -> int:
    # the models (JAX) load when the command runs, not when its parser is built (--help)
    from perfmodel import claims as cl

    for f in a.claims_file:
        check_readable(f, "--claims-file")
    claims = cl.load_claims(*a.claims_file, builtin=not a.no_builtin)
    cat = user_catalog(a.catalog, a.allow_override)
    from perfmodel.fleet.story import plan_story  # the claims about a scenario's plan

    res = cl.evaluate_claims(claims, catalog=cat, only=a.only or None, plan_fn=plan_story)
    if a.json:
        rows = [r.to_dict() for r in res]
        check_finite(rows, "the claims evaluated")
        print(json.dumps(rows, indent=2, default=float, allow_nan=False))
        return 0
    for r in res:
        c = r.claim
        print(f"[{r.verdict.upper()}] {c.id} ({c.date}) - {c.speaker}")
        print(
            textwrap.fill(f'claim: "{c.quote}"', 100, initial_indent="  ", subsequent_indent="    ")
        )
        print(
            textwrap.fill(f"model: {r.summary}", 100, initial_indent="  ", subsequent_indent="    ")
        )
        print(
            f"  source: {c.sources[0]}"
            + (f" (+{len(c.sources) - 1} more)" if len(c.sources) > 1 else "")
        )
        if a.verbose:
            for k, v in r.numbers.items():
                print(
                    textwrap.fill(
                        f"{k}: {_fmt(v)}", 100, initial_indent="    ", subsequent_indent="        "
                    )
                )
            for s in r.assumptions:
                print(
                    textwrap.fill(
                        f"assumes: {s}", 100, initial_indent="    ", subsequent_indent="        "
                    )
                )
        for e in r.errors:
            print(f"  not computed: {e}")
        print()
    return 0
