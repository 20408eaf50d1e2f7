"""The ``fleet`` sweep model: scenario variants -> the planner's relaxed optimum.

Per sample, the scenario's uncertain inputs are drawn, the fleet
:class:`~perfmodel.fleet.problem.Problem` pytree is modified inside ``jit`` (no Python
per sample), turned into its LP by :func:`perfmodel.fleet.problem.build_lp` (traceable)
and solved by the JAX PDHG solver :func:`perfmodel.fleet.pdhg.solve_lp` (vmapped by the
engine over the batch), or, with ``batching = "highs"`` (the default on CPU) or
``"simplex"``, on the host from the base LP's optimal basis (see "Batching" below). Inputs (all optional; names
use the scenario's keys):

=========================  ===========================================================
``price.<offer>``          all-in price per purchase unit, USD (default: triangular
                           over the scenario's ``unit_price_usd_low/best/high``)
``value.<offer>``          multiplier on the offer's H100e value curve (default:
                           triangular over the curves built with the catalog's
                           ``low``/``best``/``high`` chip figures, relative to best)
``delay.<offer>``          delivery delay of the offer's whole supply, quarters (>= 0,
                           fractional = linear interpolation between quarters)
``event_delay.<i>``        delay of supply event ``i`` (e.g. the 12k-H100 diversion),
                           quarters (default: the scenario's ``delay_quarters``, with a
                           triangular range when it gives ``delay_quarters_low/high``)
``power.<site>``           multiplier on the site's power ramp (MW available)
``power_delay.<site>``     the site's power ramp arrives this many quarters later
``budget.<year>``          capex budget of the calendar year, USD (default: triangular
                           when the scenario gives ``capex_usd.<year>_low/_high``)
=========================  ===========================================================

Outputs: ``h100e`` (H100e online in the last period, or the target period for
``min-cost``), ``h100e_quarters`` (the objective: sum over periods), ``cost_usd``
(capex of the units bought), ``h100e_q.<period>`` (fan chart), ``buy.<offer>.<site>``
(units bought over the horizon; the decision), ``chips.<offer>`` (chips bought), and the
solver's ``solver.status`` (0 = optimal), ``solver.iterations``, ``solver.rel_gap``.

Batching (``[model] batching``): ``vmap`` solves a device's block of LPs as one
batched PDHG loop (every member iterates until the slowest converges; right for GPUs
and TPUs), ``map`` solves them one after the other inside the same compiled call
(``lax.map``; each stops at its own convergence). ``simplex`` evaluates on the host
(``Model.host``): the chunk's variant Problems and LPs are built by one jitted ``vmap``
of the same code, solved by :func:`perfmodel.fleet.simplex.solve_family` (the batched
dual simplex warm-started from the base LP's optimal basis, computed once by HiGHS and
cached; HiGHS for any member it does not finish) and turned into the same columns
(``solver.iterations`` = pivots there; the answer is an exact vertex). ``highs`` is the
same host evaluation with HiGHS's dual simplex solving the members one by one, each from
the same base basis (:func:`perfmodel.fleet.highs_batch.solve_lp_batch_highs`). ``auto``
(default) picks ``highs`` on CPU and ``vmap`` elsewhere.

Measured on the built-in ``tesla-2024`` sweep (248 x 720 LPs; 2-core CPU, x64; wall time
of ``run_sweep`` including compiles and the HiGHS basis): ``map`` 64 samples in 26.3 s
(366 ms per sample after 2.9 s of compile from the warm persistent cache; median 8,512
PDHG iterations); ``simplex`` 256 samples in 10.3 s (chunk 32, the spec's), 1,000 in
13.9 s (chunk 32) or 9.6 s (chunk 1000), i.e. 10-14 ms per sample, all optimal, median 33
pivots: 25-35x faster. ``highs`` against ``simplex`` on the same spec (512 samples,
chunk 64, 2 busy cores, 2026-12-02, one run): 20.0 s vs 24.4 s with compiles, 3.9 s vs
8.8 s warm (132 vs 58 samples/s, 2.3x), every draw optimal, ``h100e_quarters`` equal to
2.8e-12 relative. On the same 64 samples the two agree to 1.5e-5 relative on
``h100e_quarters`` (PDHG's tolerance 1e-6 is relative to the LP's scale) and to 6e-5 on
``h100e_q.*`` and ``cost_usd``; per-site splits of one offer may differ where the LP has
tied optima (e.g. ``buy.dojo.<site>``, whose total ``chips.dojo`` agrees). Simplex rows
are bit-for-bit reproducible for the same seed and chunk size (resumption included); a
different chunk size may pick another of such tied vertices.

The value curve is a concave piecewise-linear interpolant whose breakpoints are placed
once, at build time, over each site's feasible range; the base problem is built with
the largest power multiplier of the sweep so that extra power is not cut off by the
last breakpoint.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from perfmodel.sweep.params import Param, triangular
from perfmodel.sweep.spec import Model

DEFAULT_SCENARIO = "tesla-2024"
SOLVER_DEFAULTS = {"tol": 1e-6, "iters": 50_000}
AUTO_CPU = "highs"
"""What ``batching = "auto"`` means on CPU (see the module docs for the measurements)."""
HOST_MODES = ("simplex", "highs")
"""Batchings that solve on the host, between two jitted vmaps (build, then outputs)."""


def _shift_later(series, d):
    """``series`` (shape ``[..., T]``) moved ``d >= 0`` quarters later, linear in
    fractional ``d``; what moves past the horizon is lost; zeros come in from the left."""
    T = series.shape[-1]
    t = jnp.arange(T, dtype=jnp.float64)
    src = t - d
    lo = jnp.floor(src)
    frac = src - lo
    i0 = lo.astype(jnp.int32)

    def at(i):
        ok = (i >= 0) & (i < T)
        return jnp.where(ok, jnp.take(series, jnp.clip(i, 0, T - 1), axis=-1), 0.0)

    return (1.0 - frac) * at(i0) + frac * at(i0 + 1)


def _ramp_later(power, d):
    """A power ramp ``[T]`` arriving ``d`` quarters later: ``P'(t) = P(t - d)``, holding
    ``P(0)`` before the start (the power already there stays)."""
    T = power.shape[-1]
    src = jnp.clip(jnp.arange(T, dtype=jnp.float64) - d, 0.0, T - 1.0)
    return jnp.interp(src, jnp.arange(T, dtype=jnp.float64), power)


def _raw_scenario(path: str) -> dict:
    try:
        return tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def _load(name: str, catalog=None):
    # perfmodel.fleet is imported only when a fleet sweep is built: ~1.2 s of imports that
    # the chips and training sweeps (which import this module too) do not need
    from perfmodel.fleet import problem as fp

    if name.startswith("generated:"):
        parts = name.split(":")[1:]
        try:
            nums = [int(x) for x in parts]
        except ValueError:
            raise ValueError(
                f"model.scenario = {name!r}: use 'generated:SEED[:OFFERS:SITES:PERIODS]'"
            ) from None
        seed, *shape = nums
        return fp.generate_scenario(seed, *shape), {}
    sc = fp.load_scenario(name, catalog=catalog)
    return sc, _raw_scenario(sc.path)


def fleet_model(config: Mapping[str, Any], catalog=None) -> Model:
    """Build the ``fleet`` model. ``[model]`` keys: ``scenario`` (built-in name, path, or
    ``"generated:SEED[:OFFERS:SITES:PERIODS]"``; default ``tesla-2024``), ``objective``
    (``max-h100e``/``min-cost``), ``value_source`` (``auto``/``equivalence``/``training``/
    ``standin``), ``catalog_ranges`` (true: sweep the value curves over the catalog's
    low/high chip figures), ``tol`` and ``iters`` (PDHG solver settings; with ``simplex``
    those of its PDHG fallback), ``batching`` (``auto``/``vmap``/``map``/``simplex``/``highs``)."""
    # perfmodel.fleet is imported only when a fleet sweep is built: ~1.2 s of imports that
    # the chips and training sweeps (which import this module too) do not need
    from perfmodel.fleet import pdhg, simplex
    from perfmodel.fleet import problem as fp
    from perfmodel.fleet.highs_batch import solve_lp_batch_highs

    cfg = dict(config)
    allowed = {
        "scenario",
        "objective",
        "value_source",
        "catalog_ranges",
        "tol",
        "iters",
        "batching",
    }
    bad = set(cfg) - allowed
    if bad:
        raise ValueError(
            f"model: unknown key(s) {sorted(bad)} for model 'fleet'; "
            f"allowed: {', '.join(sorted(allowed))}"
        )
    default_name = (
        DEFAULT_SCENARIO if DEFAULT_SCENARIO in fp.scenario_names() else "generated:0:5:2:8"
    )
    name = cfg.get("scenario", default_name)
    if not isinstance(name, str):
        raise ValueError(f"model.scenario = {name!r} must be a scenario name or path")
    sc, raw = _load(name, catalog)
    vsrc = cfg.get("value_source", "auto")
    if vsrc not in ("auto", "equivalence", "training", "standin"):
        raise ValueError(
            f"model.value_source = {vsrc!r} must be auto, equivalence, training or standin"
        )
    objective = cfg.get("objective", sc.objective)
    tol = cfg.get("tol", SOLVER_DEFAULTS["tol"])
    iters = cfg.get("iters", SOLVER_DEFAULTS["iters"])
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 < tol < 1:
        raise ValueError(f"model.tol = {tol!r} must be in (0, 1)")
    if isinstance(iters, bool) or not isinstance(iters, int) or not 1 <= iters <= 10**7:
        raise ValueError(f"model.iters = {iters!r} must be an integer in [1, 1e7]")
    batching = cfg.get("batching", "auto")
    if batching not in ("auto", "vmap", "map", *HOST_MODES):
        raise ValueError(
            f"model.batching = {batching!r} must be 'auto', 'vmap', 'map', 'simplex' or 'highs'"
        )
    ranges = cfg.get("catalog_ranges", True)
    if not isinstance(ranges, bool):
        raise ValueError(f"model.catalog_ranges = {ranges!r} must be true or false")

    K, S, T = len(sc.offers), len(sc.sites), len(sc.periods)
    specs = sc.chip_specs()
    offers = [o.key for o in sc.offers]
    sites = [s.key for s in sc.sites]
    years = list(sc.years)

    known: dict[str, str] = {}
    defaults: list[Param] = []
    for o in sc.offers:
        known[f"price.{o.key}"] = f"{o.key}: all-in price per {o.unit}, USD"
        known[f"value.{o.key}"] = f"{o.key}: multiplier on the H100e value curve"
        known[f"delay.{o.key}"] = f"{o.key}: delivery delay of all supply, quarters"
        if o.unit_price_usd_low < o.unit_price_usd_high:
            defaults.append(
                triangular(
                    o.unit_price_usd_low, o.unit_price_usd, o.unit_price_usd_high, f"price.{o.key}"
                )
            )
    raw_events = raw.get("events", []) if isinstance(raw.get("events", []), list) else []
    for i, (off, units, p, delay) in enumerate(sc.events):
        known[f"event_delay.{i}"] = (
            f"event {i} ({units:g} units of {off} from {sc.periods[p]}): delay, quarters"
        )
        r = raw_events[i] if i < len(raw_events) and isinstance(raw_events[i], dict) else {}
        lo, hi = r.get("delay_quarters_low", delay), r.get("delay_quarters_high", delay)
        if (
            isinstance(lo, (int, float))
            and isinstance(hi, (int, float))
            and lo <= delay <= hi
            and lo < hi
        ):
            defaults.append(triangular(float(lo), float(delay), float(hi), f"event_delay.{i}"))
    raw_sites = raw.get("sites", {}) if isinstance(raw.get("sites", {}), dict) else {}
    for s in sc.sites:
        known[f"power.{s.key}"] = f"{s.key}: multiplier on the power ramp (MW available)"
        known[f"power_delay.{s.key}"] = f"{s.key}: power ramp delay, quarters"
        r = raw_sites.get(s.key, {})
        lo, hi = r.get("power_mw_low"), r.get("power_mw_high")
        best = float(np.sum(s.power_mw))
        if lo is not None and hi is not None and best > 0:
            lo_f = float(np.sum(lo)) * (T if np.ndim(lo) == 0 else 1) / best
            hi_f = float(np.sum(hi)) * (T if np.ndim(hi) == 0 else 1) / best
            if lo_f < hi_f:
                defaults.append(triangular(min(lo_f, 1.0), 1.0, max(hi_f, 1.0), f"power.{s.key}"))
    cap = (
        (raw.get("budget", {}) or {}).get("capex_usd", {})
        if isinstance(raw.get("budget", {}), dict)
        else {}
    )
    for y, usd in sc.budget_usd:
        known[f"budget.{y}"] = f"capex budget of {y}, USD"
        lo, hi = cap.get(f"{y}_low"), cap.get(f"{y}_high")
        if (
            isinstance(lo, (int, float))
            and isinstance(hi, (int, float))
            and lo <= usd <= hi
            and lo < hi
        ):
            defaults.append(triangular(float(lo), usd, float(hi), f"budget.{y}"))

    def build(pick: str, power_scale: float):
        return fp.build_problem(
            sc, objective=objective, pick=pick, value_source=vsrc, power_scale=power_scale
        )

    base_holder: dict[float, Any] = {}  # power_scale -> base problem

    def base_problem(power_scale: float):
        if power_scale not in base_holder:
            base_holder[power_scale] = build("best", power_scale)
        return base_holder[power_scale]

    try:
        base = base_problem(1.0)
    except ValueError as e:
        raise ValueError(f"model.scenario {name!r}: {e}") from None
    if ranges and vsrc != "standin":
        # value-curve range from the catalog's low/high chip figures, as a multiplier
        lo_b, hi_b = build("low", 1.0), build("high", 1.0)
        top = lambda p: np.asarray(p.bp_h100e)[..., -1].sum(axis=1)  # noqa: E731  [K]
        b, lo_v, hi_v = top(base), top(lo_b), top(hi_b)
        for k, o in enumerate(offers):
            if b[k] > 0:
                lo_f, hi_f = sorted((lo_v[k] / b[k], hi_v[k] / b[k]))
                lo_f, hi_f = min(lo_f, 1.0), max(hi_f, 1.0)
                if hi_f - lo_f > 1e-9:
                    defaults.append(triangular(lo_f, 1.0, hi_f, f"value.{o}"))

    raw_supply = np.array([o.supply_units for o in sc.offers], dtype=np.float64).reshape(K, T)
    scen_power = np.array([s.power_mw for s in sc.sites], dtype=np.float64).reshape(S, T)
    event_spec = [
        (offers.index(off), float(units), int(p), float(d)) for off, units, p, d in sc.events
    ]
    solver_opts = {"tol": float(tol), "iters": int(iters)}

    def make_variant(power_scale: float):
        """``params (one sample) -> Problem``: the scenario variant of one sample."""
        prob0 = base_problem(power_scale)

        def variant(p: dict[str, jax.Array]):
            prob = prob0
            price = jnp.asarray(prob.unit_price_usd)
            value = jnp.asarray(prob.bp_h100e)
            for k, o in enumerate(offers):
                if f"price.{o}" in p:
                    price = price.at[k].set(p[f"price.{o}"])
                if f"value.{o}" in p:
                    value = value.at[k].multiply(p[f"value.{o}"])
            supply = jnp.asarray(prob.supply_units)
            if any(n.startswith(("delay.", "event_delay.")) for n in p):
                sup = jnp.asarray(raw_supply)
                for i, (k, units, t0, d) in enumerate(event_spec):
                    dd = p.get(f"event_delay.{i}", jnp.asarray(d))
                    pulse = jnp.zeros(T).at[t0].set(units)
                    sup = sup.at[k].add(-pulse + _shift_later(pulse, dd))
                sup = jnp.maximum(sup, 0.0)
                rows = [
                    (_shift_later(sup[k], p[f"delay.{o}"]) if f"delay.{o}" in p else sup[k])
                    for k, o in enumerate(offers)
                ]
                supply = jnp.stack(rows)
            power = jnp.asarray(scen_power)
            rows = []
            for s, site in enumerate(sites):
                ps = power[s]
                if f"power_delay.{site}" in p:
                    ps = _ramp_later(ps, p[f"power_delay.{site}"])
                if f"power.{site}" in p:
                    ps = ps * p[f"power.{site}"]
                rows.append(ps)
            power = jnp.stack(rows)
            budget = jnp.asarray(prob.budget_usd)
            for yi, y in enumerate(years):
                if f"budget.{y}" in p:
                    budget = budget.at[yi].set(p[f"budget.{y}"])
            return prob.replace(
                unit_price_usd=price,
                bp_h100e=value,
                supply_units=supply,
                power_avail_mw=power,
                budget_usd=budget,
            )

        return variant

    def _mode() -> str:
        if batching != "auto":
            return batching
        # CPUs: the batched dual simplex (see module docs); wide SIMD devices: batched PDHG
        return AUTO_CPU if jax.default_backend() == "cpu" else "vmap"

    basis_holder: dict[float, Any] = {}

    def base_basis(power_scale: float):
        """The optimal basis of the base problem's LP (HiGHS), once per power scale."""
        if power_scale not in basis_holder:
            basis_holder[power_scale] = simplex.lp_basis(fp.build_lp(base_problem(power_scale)))[0]
        return basis_holder[power_scale]

    base_lps: dict[float, Any] = {}  # power_scale -> the base problem's LP

    def host_solve(lps, power_scale: float):
        """The stacked LPs solved on the host from the base problem's optimal basis."""
        if _mode() == "highs":  # HiGHS one by one, each started from the base basis
            if power_scale not in base_lps:  # built once, not once per chunk
                base_lps[power_scale] = fp.build_lp(base_problem(power_scale))
            return solve_lp_batch_highs(lps, base_lps[power_scale])[0]
        # the batched dual simplex; members it does not finish (pivot limit, degenerate
        # stalls) go to HiGHS, exact and fast on the host (a PDHG fallback would take
        # thousands of iterations each)
        return simplex.solve_family(lps, base_basis(power_scale), fallback="highs")[0]

    def make_evaluate(param_names: tuple[str, ...], power_scale: float):
        variant = make_variant(power_scale)
        nb = K * S * T

        def one(p: dict[str, jax.Array]) -> dict[str, jax.Array]:
            prob = variant(p)
            lp = fp.build_lp(prob, xp=jnp)
            return outputs(prob, pdhg.solve_lp(lp, **solver_opts))

        def outputs(prob, sol) -> dict[str, jax.Array]:
            """The output columns of one sample from its Problem and LP solution."""
            price = prob.unit_price_usd
            x = sol.x
            buy = x[:nb].reshape(K, S, T)
            seg = x[nb:].reshape(K, S, T, -1)
            slope, _ = fp.segment_slopes(prob, jnp)
            h_t = jnp.einsum("ksj,kstj->t", slope, seg)
            out = {
                "h100e": h_t[prob.target_period if objective == "min-cost" else T - 1],
                "h100e_quarters": jnp.sum(prob.period_weight * h_t),
                "cost_usd": jnp.einsum("k,kst->", price, buy),
                "solver.status": sol.status.astype(jnp.float64),
                "solver.iterations": sol.iterations.astype(jnp.float64),
                "solver.rel_gap": sol.rel_gap,
                "solver.primal_residual": sol.primal_residual,
            }
            for t, per in enumerate(sc.periods):
                out[f"h100e_q.{per}"] = h_t[t]
            units = buy.sum(axis=2)
            for k, o in enumerate(offers):
                out[f"chips.{o}"] = units[k].sum() * prob.chips_per_unit[k]
                for s, site in enumerate(sites):
                    out[f"buy.{o}.{site}"] = units[k, s]
            return out

        def evaluate(params):
            mode = _mode()
            if mode == "vmap":
                return jax.vmap(one)(params)
            return jax.lax.map(one, params)

        if _mode() not in HOST_MODES:
            return evaluate

        # Host evaluation: variants and their LPs by one jitted vmap, the LPs solved on the
        # host from the base LP's basis (batched dual simplex, or HiGHS one by one), then
        # the same output columns as the PDHG path, by one jitted vmap.
        def variant_lp(p):
            prob = variant(p)
            return prob, fp.build_lp(prob, xp=jnp)

        build_batch = jax.jit(jax.vmap(variant_lp))
        post_batch = jax.jit(jax.vmap(outputs))

        def evaluate_host(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            probs, lps = build_batch({k: jnp.asarray(v) for k, v in params.items()})
            sol = host_solve(lps, power_scale)
            return {k: np.asarray(v) for k, v in post_batch(probs, sol).items()}

        return evaluate_host

    host_evaluates: dict[tuple, Any] = {}  # the host path's jitted functions, per params

    def bind(params: tuple[Param, ...]):
        """The evaluate function for the final params: the base problem's breakpoints
        cover the largest power multiplier drawn."""
        hi = max([1.0] + [_param_upper(q) for q in params if q.name.startswith("power.")])
        key = (tuple(q.name for q in params), hi)
        if _mode() not in HOST_MODES:
            return make_evaluate(*key)
        if key not in host_evaluates:  # a resumed or repeated sweep does not compile again
            host_evaluates[key] = make_evaluate(*key)
        return host_evaluates[key]

    model = Model(
        "fleet",
        {
            "scenario": name,
            "objective": objective,
            "value_source": vsrc,
            "catalog_ranges": ranges,
            "tol": float(tol),
            "iters": int(iters),
            "batching": batching,
            "shape": {"offers": offers, "sites": sites, "periods": list(sc.periods)},
            "value_sources": list(base.value_source),
            # offers whose chip is not the built-in one: its key with the digest of its
            # catalog records (a resumed sweep must see the same figures)
            **(
                {"user_chips": {o.key: c.cache_name for o, c in zip(sc.offers, specs)}}
                if any(not c.builtin for c in specs)
                else {}
            ),
        },
        tuple(defaults),
        known,
        make_evaluate((), 1.0),
        ("h100e", "h100e_quarters", "cost_usd"),
        ("buy.",),
        0.5,
        ("h100e_q.", tuple(sc.periods)),
        bind,
        {
            "variant_problem": lambda params: make_variant(
                max([1.0] + [_param_upper(q) for q in params if q.name.startswith("power.")])
            )
        },
        default_chunk_size=64,
        host=_mode() in HOST_MODES,
    )
    return model


def _param_upper(p: Param) -> float:
    a = dict(p.args)
    if p.dist in ("uniform", "triangular"):
        return float(a["high"])
    if p.dist == "constant":
        return float(a["value"])
    if p.dist in ("choice", "grid"):
        return float(max(a["values"]))
    if "high" in a:
        return float(a["high"])
    if p.dist == "lognormal":  # no upper clip: cover 99.9% of draws
        return float(a["median"] * math.exp(3.1 * a["sigma"]))
    return float(a["mean"] + 3.1 * a["sd"])
