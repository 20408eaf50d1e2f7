"""Models and specs: what a sweep evaluates (:class:`Model`, the registry
:data:`MODELS`), and a validated sweep (:class:`SweepSpec`: model, params, sample count,
seed, chunk size) read from TOML (:func:`load_spec`, :func:`parse_spec`).

The built-in models (``fleet``, ``chips``) live in :mod:`perfmodel.sweep.models` and
:mod:`perfmodel.sweep.fleet_model` and register from :mod:`perfmodel.sweep`; this module
does not import them (an import-linter contract).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from perfmodel.choices import builtin_spec_paths as builtin_spec_paths
from perfmodel.errors import InputError
from perfmodel.hardware import read_toml
from perfmodel.sweep.params import MAX_SAMPLES, Param, parse_param


@dataclasses.dataclass(frozen=True)
class Model:
    """A sweepable model.

    Attributes:
      name: registry name.
      config: static configuration (JSON-able; part of the spec hash).
      defaults: the uncertain inputs the model knows, with their default distribution
        (e.g. catalog low/best/high as triangular). A spec may override them or add
        known names from ``known``.
      known: every param name the model accepts, with a one-line description.
      evaluate: pure, jit/vmap-able ``dict name -> (B,) array`` -> ``dict column ->
        (B,) array``; must not mix samples (row ``b`` depends on input row ``b`` only).
        Besides the sampled inputs, the dict holds ``"sample"`` (the sample index as a
        float), so the batch axis exists even when nothing is sampled.
      metrics: the headline output columns (summary order), e.g. ``("h100e", "cost_usd")``.
      decision_prefixes: output columns starting with one of these are decisions
        (amounts bought/chosen); the summary reports how often each is non-zero.
      decision_threshold: an amount above this counts as "chosen".
      fan: ``(prefix, labels)`` of per-period columns for the fan chart, or ``None``.
      bind: optional ``params -> evaluate``: an evaluate specialised to the final params
        of a spec (e.g. sized for their largest draws); ``evaluate`` is used when ``None``.
      extras: model-specific helpers (not part of the spec identity), e.g. the fleet
        model's ``variant_problem(params) -> (one sample's params -> Problem)``.
      default_chunk_size: samples per chunk when the spec does not say (a chunk is the
        unit of progress, of resumption and of one compiled call).
      host: the evaluation runs on the host, not traced: the function that ``bind`` (or
        ``evaluate``) returns is called once per chunk with concrete NumPy arrays (the
        chunk's sampled inputs, drawn exactly as for a traced model, plus ``"sample"``)
        and returns NumPy-convertible ``(B,)`` columns. It may call jitted code itself
        (e.g. a batched solver that is not traceable); no ``shard_map`` wraps it.
    """

    name: str
    config: Mapping[str, Any]
    defaults: tuple[Param, ...]
    known: Mapping[str, str]
    # columns are jax arrays when traced, NumPy arrays for a ``host`` model
    evaluate: Callable[[dict[str, Any]], dict[str, Any]]
    metrics: tuple[str, ...]
    decision_prefixes: tuple[str, ...] = ()
    decision_threshold: float = 0.5
    fan: tuple[str, tuple[str, ...]] | None = None
    bind: Callable[[tuple[Param, ...]], Callable] | None = None
    extras: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    default_chunk_size: int = 1024
    host: bool = False


def _toy_model(config: Mapping[str, Any], catalog=None) -> Model:
    """Identity model for tests: ``h100e = x``, ``cost_usd = y``; decisions
    ``buy.a.s1 = [x > 0.5]``, ``buy.b.s1 = [y > 0.5]``, and ``work`` = a cheap
    iterative computation of ``work_iters`` steps (to make chunks take time)."""
    cfg = dict(config)
    iters = cfg.pop("work_iters", 0)
    if cfg:
        raise InputError(
            f"model: unknown key(s) {sorted(cfg)} for model 'toy'; allowed: work_iters"
        )
    if isinstance(iters, bool) or not isinstance(iters, int) or not 0 <= iters <= 10**7:
        raise InputError(f"model.work_iters = {iters!r} must be an integer in [0, 1e7]")

    def evaluate(p):
        x, y = p["x"], p["y"]
        w = jax.lax.fori_loop(0, iters, lambda _, v: jnp.cos(v), x)
        return {
            "h100e": x,
            "cost_usd": y,
            "work": w,
            "buy.a.s1": (x > 0.5).astype(x.dtype),
            "buy.b.s1": (y > 0.5).astype(y.dtype),
        }

    return Model(
        "toy",
        {"work_iters": iters},
        (
            Param("x", "uniform", (("low", 0.0), ("high", 1.0))),
            Param("y", "uniform", (("low", 0.0), ("high", 1.0))),
        ),
        {"x": "input x (becomes h100e)", "y": "input y (becomes cost_usd)"},
        evaluate,
        ("h100e", "cost_usd", "work"),
        ("buy.",),
        0.5,
    )


#: name -> factory(config, catalog) -> :class:`Model`. The package
#: (:mod:`perfmodel.sweep`) registers the built-in models with :func:`register_model`, so
#: that the engine does not import the models, which import the engine.
MODELS: dict[str, Callable[..., Model]] = {}
#: name -> a check that the model can run in this build (models without one always can).
_MODEL_CHECKS: dict[str, Callable[[], bool]] = {}


def register_model(
    name: str, factory: Callable[..., Model], available: Callable[[], bool] | None = None
) -> None:
    """Make ``sweep.model = name`` build its :class:`Model` with ``factory(config,
    catalog)``; ``available()``, if given, says whether the model works in this build."""
    MODELS[name] = factory
    if available is not None:
        _MODEL_CHECKS[name] = available
    else:
        _MODEL_CHECKS.pop(name, None)


def model_available(name: str) -> bool:
    """Whether model ``name`` is registered and its availability check (if any) passes."""
    check = _MODEL_CHECKS.get(name)
    return name in MODELS and (check is None or check())


def fleet_available() -> bool:
    """Whether the fleet planner can build and batch-solve LPs in this build."""
    return model_available("fleet")


# --------------------------------------------------------------------------------------
# Specs
# --------------------------------------------------------------------------------------

SPEC_TOP = {"sweep", "model", "params"}
SWEEP_KEYS = {"model", "samples", "seed", "chunk_size", "description"}
DEFAULT_SAMPLES = 1000


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: the model (built), the params (model defaults overridden by
    the spec), sample count, seed, chunk size and where it came from."""

    model: Model
    params: tuple[Param, ...]
    samples: int
    seed: int
    chunk_size: int
    source: str = "<built-in>"
    description: str = ""

    def identity(self) -> dict[str, Any]:
        """What must match for results in a directory to be resumed."""
        return {
            "model": self.model.name,
            "config": _jsonable(self.model.config),
            "params": {p.name: p.to_json() for p in self.params},
            "samples": self.samples,
            "seed": self.seed,
            "chunk_size": self.chunk_size,
        }

    def digest(self) -> str:
        blob = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def replace(self, **kw: Any) -> SweepSpec:
        return dataclasses.replace(self, **kw)


def _jsonable(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


def _int_field(v: Any, field: str, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise InputError(f"{field} = {v!r} must be an integer in [{lo}, {hi}]")
    return v


def _flatten_params(table: Any, prefix: str = "") -> dict[str, Any]:
    """``[params.ai4] int8_ops_per_s = {...}`` -> ``{"ai4.int8_ops_per_s": {...}}``."""
    if not isinstance(table, Mapping):
        raise InputError(f"params{'.' + prefix if prefix else ''} must be a table")
    out = {}
    for k, v in table.items():
        name = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, Mapping) and "dist" not in v:
            out.update(_flatten_params(v, name))
        else:
            out[name] = v
    return out


def default_model_name() -> str:
    """``fleet`` (the fleet planner), the model a spec without ``sweep.model`` runs."""
    return "fleet"


def parse_spec(data: Mapping[str, Any], source: str = "<memory>", *, catalog=None) -> SweepSpec:
    """Validate a parsed spec mapping (see :func:`load_spec`) and build the model."""
    unknown = set(data) - SPEC_TOP
    if unknown:
        raise InputError(
            f"{source}: unknown top-level table(s) {sorted(unknown)}; allowed: {sorted(SPEC_TOP)}"
        )
    sw = data.get("sweep", {})
    if not isinstance(sw, Mapping):
        raise InputError(f"{source}: [sweep] must be a table")
    bad = set(sw) - SWEEP_KEYS
    if bad:
        raise InputError(
            f"{source}: sweep: unknown key(s) {sorted(bad)}; allowed: {sorted(SWEEP_KEYS)}"
        )
    model_name = sw.get("model", None) or default_model_name()
    if model_name not in MODELS:
        raise InputError(
            f"{source}: sweep.model = {model_name!r} must be one of {', '.join(MODELS)}"
        )
    samples = _int_field(sw.get("samples", DEFAULT_SAMPLES), "sweep.samples", 1, MAX_SAMPLES)
    seed = _int_field(sw.get("seed", 0), "sweep.seed", 0, 2**31 - 1)
    if "chunk_size" in sw:
        _int_field(sw["chunk_size"], "sweep.chunk_size", 1, 2**24)
    cfg = data.get("model", {})
    if not isinstance(cfg, Mapping):
        raise InputError(f"{source}: [model] must be a table")
    try:
        model = MODELS[model_name](cfg, catalog)
    except ValueError as e:
        raise InputError(f"{source}: {e}") from None
    chunk = sw.get("chunk_size", model.default_chunk_size)
    params = {p.name: p for p in model.defaults}
    for name, raw in _flatten_params(data.get("params", {})).items():
        if name not in model.known:
            close = [k for k in model.known if k.split(".")[0] == name.split(".")[0]]
            hint = close or list(model.known)
            raise InputError(
                f"{source}: params.{name}: unknown input for model '{model.name}'; "
                f"known: {', '.join(sorted(hint)[:40])}" + (" ..." if len(hint) > 40 else "")
            )
        params[name] = parse_param(name, raw)
    ordered = tuple(params[k] for k in sorted(params))
    return SweepSpec(model, ordered, samples, seed, chunk, source, str(sw.get("description", "")))


def load_spec(path: str | Path | None = None, *, catalog=None) -> SweepSpec:
    """Load a sweep spec from a TOML file (or a built-in name; ``None`` = the default:
    the built-in fleet scenario's uncertain inputs when the planner is available,
    else the catalog's chip ranges).

    Spec format::

        [sweep]
        model = "chips"        # fleet | chips | toy
        samples = 10000
        seed = 0
        chunk_size = 1024
        [model]                # model configuration (see the model's docs)
        chips = ["h100", "b200", "dojo_tile"]
        [params]               # uncertain inputs; override the model's defaults
        "b200.allin_price_usd" = { dist = "triangular", low = 45e3, best = 55e3, high = 70e3 }
        [params.dojo_tile]     # nested tables are dotted names
        bf16_flops_per_s = { dist = "uniform", low = 5e15, high = 9e15 }
    """
    if path is None:
        return parse_spec({}, "<built-in default>", catalog=catalog)
    builtin = builtin_spec_paths()
    p = Path(path)
    if not p.exists() and str(path) in builtin:
        p = builtin[str(path)]
    data = read_toml(
        p,
        "sweep spec",
        error=InputError,
        missing=InputError,
        missing_hint=f" (built-in specs: {', '.join(builtin) or 'none'})",
    )
    return parse_spec(data, str(p), catalog=catalog)
