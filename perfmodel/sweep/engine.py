"""Batch what-if runs: sample uncertain inputs, evaluate with jit+vmap, shard across
devices, stream resumable results to Parquet.

A sweep is ``(model, params, samples, seed)``:

* a **model** is a pure function ``evaluate(params_batch) -> dict of arrays`` (every
  array has the batch axis first) plus its static configuration and the uncertain
  inputs it knows (:class:`Model`);
* **params** are named uncertain inputs, each with a distribution (:class:`Param`):
  ``uniform(low, high)``, ``triangular(low, best, high)`` (mode ``best``),
  ``lognormal(median, sigma[, low, high])``, ``normal(mean, sd[, low, high])``
  (clipped to ``[low, high]`` when given), ``choice(values[, weights])``,
  ``grid(values)`` (a full factorial over all grid params; sample ``i`` takes grid
  point ``i mod G`` in mixed radix, spec order) and ``constant(value)``;
* sample ``i`` is a deterministic function of ``(seed, i)`` only: its random numbers
  come from ``fold_in(fold_in(key(seed), i), crc32(param name))`` (threefry). The
  inputs are therefore identical for any chunk size, any device count and any order in
  which chunks run, and adding a parameter does not change the draws of the others;
  so are the results of traced models. (The fleet model's host-side simplex returns
  one optimal vertex; where an LP has tied optima, e.g. how a chip's units split
  between two sites, a different chunk size can return another one with the same
  objective.)

Built-in models (:data:`MODELS`): ``fleet`` (the fleet planner's relaxed optimum per
scenario variant: prices, delivery delays, power ramps), ``chips`` (per-sample chip
specs drawn from the catalog's low/best/high ranges -> training step time and
H100-equivalents with a roofline step model) and ``toy`` (identity, for tests).

Execution (:func:`run_sweep`):

* the samples are cut into chunks of ``chunk_size``; each chunk is padded to a
  multiple of the local device count and evaluated by one jitted call whose sample
  axis is sharded with ``NamedSharding(Mesh(devices, ("samples",)), P("samples"))``;
  inside, ``jax.shard_map`` hands each device its own block of samples, which the model
  evaluates with ``vmap`` (or ``lax.map``, see the fleet model's ``batching``);
* chunk ``c`` is written to ``OUT/chunk-{c:06d}.parquet`` by writing a temporary file
  and ``os.replace``-ing it (atomic), next to ``OUT/manifest.json`` (spec, seed, sample
  count, chunk size, columns). A sweep killed at any moment (SIGINT, SIGKILL, power
  loss) and restarted with the same command skips the chunks on disk and computes the
  rest: the final results are bit-for-bit those of an uninterrupted run. A different
  spec, seed, sample count or chunk size in an existing directory is an error unless
  ``overwrite=True`` (CLI ``--overwrite``);
* while chunk ``c`` is written to disk, chunk ``c + 1`` is already running on the
  devices (JAX's asynchronous dispatch);
* a model may instead evaluate on the host (``Model.host``, e.g. the fleet model's
  ``batching = "simplex"``, whose batched solver is not traceable): the chunk's inputs
  are drawn by the same :func:`sample_params` (jitted; the same values), then the
  model's function is called with NumPy arrays, one chunk at a time; chunk files,
  resumption, progress and the manifest are the same.

Several hosts (``jax.distributed``): start one process per host with the same command
and a shared output directory, after
``jax.distributed.initialize(coordinator_address, num_processes, process_id)``.
Process ``p`` of ``P`` evaluates the chunks ``c`` with ``c % P == p`` on its own local
devices (``jax.local_devices()``), so no cross-host communication happens during the
sweep; any process writes the manifest if it is missing (its content is the same for
all), and each checks it. Because a
chunk depends only on ``(seed, c)``, a restarted or re-sized job (a different ``P``)
resumes from whatever chunks exist. Only the single-host path is tested here (on CPU
with ``XLA_FLAGS=--xla_force_host_platform_device_count=8``).

Example::

    >>> from perfmodel.sweep import load_spec, run_sweep, summarize
    >>> spec = load_spec(None)                # the built-in default sweep
    >>> run_sweep(spec, "out/sweep", samples=1000, seed=0)   # doctest: +SKIP
    >>> summarize("out/sweep")["metrics"]["h100e"]["p50"]     # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import math
import os
import re
import socket
import sys
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from perfmodel.errors import InputError, path_error, read_text
from perfmodel.hardware import read_toml

# --------------------------------------------------------------------------------------
# Distributions
# --------------------------------------------------------------------------------------

DISTRIBUTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # name: (required keys, optional keys)
    "uniform": (("low", "high"), ()),
    "triangular": (("low", "best", "high"), ()),
    "lognormal": (("median", "sigma"), ("low", "high")),
    "normal": (("mean", "sd"), ("low", "high")),
    "choice": (("values",), ("weights",)),
    "grid": (("values",), ()),
    "constant": (("value",), ()),
}

MAX_SAMPLES = 2**32 - 1
"""Sample indices are folded into the PRNG key as uint32."""


@dataclasses.dataclass(frozen=True)
class Param:
    """One uncertain input: a name (``chip.field``, ``offer.h100.price``, ...), a
    distribution and its arguments (SI units, as the model documents them)."""

    name: str
    dist: str
    args: tuple[tuple[str, Any], ...]

    def arg(self, key: str, default: Any = None) -> Any:
        return dict(self.args).get(key, default)

    def to_json(self) -> dict[str, Any]:
        return {"dist": self.dist, **{k: v for k, v in self.args}}


def _num(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise InputError(f"{where} must be a finite number, got {v!r}")
    return float(v)


def parse_param(name: str, raw: Any, where: str = "params") -> Param:
    """Validate one ``[params]`` entry and return a :class:`Param`.

    ``raw`` is an inline table ``{ dist = "triangular", low = 1, best = 2, high = 3 }``
    or a bare number (a constant). Errors name the field, the value and what is allowed.
    """
    field = f"{where}.{name}"
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        raw = {"dist": "constant", "value": raw}
    if not isinstance(raw, Mapping):
        raise InputError(
            f"{field}: expected an inline table like "
            '{ dist = "uniform", low = 0.0, high = 1.0 }, got ' + repr(raw)
        )
    dist = raw.get("dist")
    if dist not in DISTRIBUTIONS:
        raise InputError(f"{field}.dist = {dist!r} must be one of {', '.join(DISTRIBUTIONS)}")
    req, opt = DISTRIBUTIONS[dist]
    unknown = set(raw) - {"dist", *req, *opt}
    if unknown:
        raise InputError(
            f"{field}: unknown key(s) {sorted(unknown)} for dist {dist!r}; "
            f"allowed: {', '.join(req + opt)}"
        )
    for k in req:
        if k not in raw:
            raise InputError(f"{field}: dist {dist!r} needs '{k}' (required: {', '.join(req)})")
    args: dict[str, Any] = {}
    if dist in ("choice", "grid"):
        vals = raw["values"]
        if not isinstance(vals, list) or not vals:
            raise InputError(f"{field}.values = {vals!r} must be a non-empty list of numbers")
        args["values"] = tuple(_num(v, f"{field}.values[{i}]") for i, v in enumerate(vals))
        if "weights" in raw:
            w = raw["weights"]
            if not isinstance(w, list) or len(w) != len(vals):
                raise InputError(f"{field}.weights = {w!r} must be a list of {len(vals)} numbers")
            ws = tuple(_num(x, f"{field}.weights[{i}]") for i, x in enumerate(w))
            if min(ws) < 0 or sum(ws) <= 0:
                raise InputError(f"{field}.weights = {list(ws)} must be >= 0 with a positive sum")
            args["weights"] = ws
    else:
        for k in req + opt:
            if k in raw:
                args[k] = _num(raw[k], f"{field}.{k}")
    if dist == "uniform" and not args["low"] <= args["high"]:
        raise InputError(
            f"{field}: need low <= high, got low={args['low']:g}, high={args['high']:g}"
        )
    if dist == "triangular" and not args["low"] <= args["best"] <= args["high"]:
        raise InputError(
            f"{field}: need low <= best <= high, got low={args['low']:g}, "
            f"best={args['best']:g}, high={args['high']:g}"
        )
    if dist == "lognormal":
        if args["median"] <= 0:
            raise InputError(f"{field}.median = {args['median']:g} must be > 0")
        if args["sigma"] < 0:
            raise InputError(f"{field}.sigma = {args['sigma']:g} must be >= 0")
    if dist == "normal" and args["sd"] < 0:
        raise InputError(f"{field}.sd = {args['sd']:g} must be >= 0")
    if (
        "low" in args
        and "high" in args
        and dist in ("lognormal", "normal")
        and args["low"] > args["high"]
    ):
        raise InputError(
            f"{field}: need low <= high, got low={args['low']:g}, high={args['high']:g}"
        )
    return Param(name, dist, tuple(args.items()))


def triangular(low: float, best: float, high: float, name: str) -> Param:
    """A triangular(low, best, high) :class:`Param` (constant when low == high)."""
    if low == high:
        return Param(name, "constant", (("value", float(best)),))
    return Param(
        name, "triangular", (("low", float(low)), ("best", float(best)), ("high", float(high)))
    )


def grid_size(params: Sequence[Param]) -> int:
    """Number of points of the full factorial over the ``grid`` params (1 if none)."""
    return math.prod(len(p.arg("values")) for p in params if p.dist == "grid")


def _name_id(name: str) -> int:
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


def _draw(p: Param, key, index, stride: int):
    """The value of param ``p`` for one sample (traced ``key``/``index``)."""
    f = jnp.result_type(float)
    a = dict(p.args)
    if p.dist == "constant":
        return jnp.asarray(a["value"], f)
    if p.dist == "grid":
        vals = jnp.asarray(a["values"], f)
        return vals[(index // stride) % len(a["values"])]
    k = jax.random.fold_in(key, _name_id(p.name))
    if p.dist == "uniform":
        u = jax.random.uniform(k, (), f)
        return a["low"] + (a["high"] - a["low"]) * u
    if p.dist == "triangular":
        lo, c, hi = a["low"], a["best"], a["high"]
        if hi == lo:
            return jnp.asarray(c, f)
        u = jax.random.uniform(k, (), f)
        fc = (c - lo) / (hi - lo)
        left = lo + jnp.sqrt(u * (hi - lo) * (c - lo))
        right = hi - jnp.sqrt((1.0 - u) * (hi - lo) * (hi - c))
        return jnp.where(u < fc, left, right)
    if p.dist in ("lognormal", "normal"):
        z = jax.random.normal(k, (), f)
        x = (
            a["median"] * jnp.exp(a["sigma"] * z)
            if p.dist == "lognormal"
            else a["mean"] + a["sd"] * z
        )
        return jnp.clip(x, a.get("low", -jnp.inf), a.get("high", jnp.inf))
    if p.dist == "choice":
        vals = jnp.asarray(a["values"], f)
        w = np.asarray(a.get("weights", (1.0,) * len(a["values"])), float)
        cum = jnp.asarray(np.cumsum(w) / w.sum(), f)
        u = jax.random.uniform(k, (), f)
        idx = jnp.minimum(jnp.searchsorted(cum, u, side="right"), len(a["values"]) - 1)
        return vals[idx]
    raise AssertionError(p.dist)


def sample_params(params: Sequence[Param], seed: int, indices) -> dict[str, jax.Array]:
    """Values of every param for the sample ``indices`` (int array, shape ``(B,)``):
    a dict name -> float array ``(B,)``. Traceable; a function of ``(seed, index)`` only.
    """
    strides, s = {}, 1
    for p in params:
        if p.dist == "grid":
            strides[p.name] = s
            s *= len(p.arg("values"))
    base = jax.random.key(seed)

    def one(i):
        key = jax.random.fold_in(base, i.astype(jnp.uint32))
        return {p.name: _draw(p, key, i, strides.get(p.name, 1)) for p in params}

    return jax.vmap(one)(jnp.asarray(indices))


# --------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------


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
    """``fleet`` when the fleet planner works in this build, else ``chips``."""
    try:
        return "fleet" if fleet_available() else "chips"
    except Exception:  # noqa: BLE001 - a half-written fleet package must not break sweeps
        return "chips"


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


def builtin_spec_paths() -> dict[str, Path]:
    """Built-in sweep specs shipped in ``perfmodel/data/sweeps/`` by name."""
    from importlib import resources

    d = Path(str(resources.files("perfmodel") / "data" / "sweeps"))
    return {p.stem: p for p in sorted(d.glob("*.toml"))} if d.is_dir() else {}


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


# --------------------------------------------------------------------------------------
# Execution
# --------------------------------------------------------------------------------------

MANIFEST = "manifest.json"
#: 2: per-chunk SHA-256 files, spec and model hashes in the manifest.
FORMAT_VERSION = 2


def chunk_path(out: Path, c: int) -> Path:
    return out / f"chunk-{c:06d}.parquet"


def _mesh(devices):
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    mesh = Mesh(np.asarray(devices), ("samples",))
    return NamedSharding(mesh, PartitionSpec("samples"))


_COMPILED: dict[tuple, tuple] = {}
_COMPILED_MAX = 8


def compiled_chunk_fn(spec: SweepSpec, devices: Sequence[Any], width: int):
    """``(compiled, sharding, columns, compile_s)`` for chunks of ``width`` samples,
    cached per (spec digest, devices, width): a resumed or repeated sweep in the same
    process does not compile again (``compile_s`` is then 0)."""
    key = (spec.digest(), tuple(d.id for d in devices), width)
    if key in _COMPILED:
        compiled, sharding, columns, _ = _COMPILED[key]
        return compiled, sharding, columns, 0.0
    tc = time.perf_counter()
    fn, sharding = make_chunk_fn(spec, devices)
    traced = fn.trace(jax.ShapeDtypeStruct((width,), jnp.int64, sharding=sharding))
    columns = ["sample", *traced.out_info.keys()]
    compiled = traced.lower().compile()
    compile_s = time.perf_counter() - tc
    _cache_put(_COMPILED, key, (compiled, sharding, columns, compile_s))
    return compiled, sharding, columns, compile_s


def _chunk_columns(p: Mapping[str, Any], out: Mapping[str, Any], shape, xp) -> dict[str, Any]:
    """A chunk's columns: the inputs as ``param.<name>``, then the model's outputs
    broadcast to the chunk's shape (``xp``: jax.numpy when traced, numpy on the host)."""
    f = xp.result_type(float)
    cols = {f"param.{k}": v for k, v in p.items()}
    for k, v in out.items():
        if k in cols:
            raise InputError(f"model output column {k!r} clashes with an input column")
        cols[k] = xp.broadcast_to(xp.asarray(v, f), shape)
    return cols


def _cache_put(cache: dict, key, value) -> None:
    """Insert into a compiled-function cache, dropping the oldest entry when full."""
    if len(cache) >= _COMPILED_MAX:
        cache.pop(next(iter(cache)))
    cache[key] = value


def make_chunk_fn(spec: SweepSpec, devices: Sequence[Any] | None = None):
    """The jitted, sharded ``indices (B,) -> dict column -> (B,) array`` of a spec
    (inputs as ``param.<name>`` columns, then the model's outputs). ``B`` must be a
    multiple of ``len(devices)``."""
    from jax.sharding import PartitionSpec

    devices = list(devices if devices is not None else jax.local_devices())
    sharding = _mesh(devices)
    params, seed, model = spec.params, spec.seed, spec.model
    evaluate = model.bind(params) if model.bind is not None else model.evaluate

    def fn(idx):
        p = sample_params(params, seed, idx)
        # "sample" (the index, float) keeps the batch axis even when no input is sampled
        out = evaluate({**p, "sample": idx.astype(jnp.result_type(float))})
        return _chunk_columns(p, out, idx.shape, jnp)

    # Each device evaluates its own block of samples (models never mix samples), so the
    # model may vmap or loop (lax.map) over its block without any cross-device traffic.
    local = jax.shard_map(
        fn,
        mesh=sharding.mesh,
        in_specs=PartitionSpec("samples"),
        out_specs=PartitionSpec("samples"),
        check_vma=False,
    )
    jitted = jax.jit(local, in_shardings=sharding, out_shardings=sharding)
    return jitted, sharding


_SAMPLERS: dict[tuple, Callable] = {}


def host_chunk_fn(spec: SweepSpec, devices: Sequence[Any] | None = None):
    """For a host model (``Model.host``): ``indices (B,) ndarray -> dict column -> (B,)
    ndarray``. The inputs are drawn by a jitted :func:`sample_params` on the first
    device (the same values as the traced path), then the model's host evaluation
    runs on them."""
    devices = list(devices if devices is not None else jax.local_devices())
    params, seed, model = spec.params, spec.seed, spec.model
    evaluate = model.bind(params) if model.bind is not None else model.evaluate
    key = (json.dumps({p.name: p.to_json() for p in params}, sort_keys=True), seed, devices[0].id)
    if key not in _SAMPLERS:
        _cache_put(_SAMPLERS, key, jax.jit(lambda idx: sample_params(params, seed, idx)))
    sampler = _SAMPLERS[key]

    def fn(idx: np.ndarray) -> dict[str, np.ndarray]:
        idx = np.asarray(idx, np.int64)
        p = {k: np.asarray(v) for k, v in sampler(jax.device_put(idx, devices[0])).items()}
        out = evaluate({**p, "sample": idx.astype(np.result_type(float))})
        cols = _chunk_columns(p, out, idx.shape, np)
        return {k: cols[k] for k in sorted(cols)}  # the traced path's order (pytree keys)

    return fn


def _padded_indices(start: int, stop: int, width: int) -> np.ndarray:
    idx = np.arange(start, stop, dtype=np.int64)
    if len(idx) < width:  # pad with copies of the last real sample (finite, discarded)
        idx = np.concatenate([idx, np.full(width - len(idx), stop - 1, np.int64)])
    return idx


def _write_atomic(path: Path, data: bytes | None = None, table=None, tag: str = "p0") -> None:
    """Write ``path`` atomically: a hidden temporary file (named with the process tag
    and pid), fsync, then ``os.replace``. A reader never sees a partial file."""
    tmp = path.with_name(f".{path.name}.tmp-{tag}-{os.getpid()}")
    if table is not None:
        import pyarrow.parquet as pq

        pq.write_table(table, tmp, compression="zstd")
    else:
        tmp.write_bytes(data or b"")
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _write_chunk(path: Path, table, tag: str) -> None:
    """Write a chunk: the Parquet file to a temporary, its SHA-256 next to where it goes
    (atomically), then the chunk into place (atomically). A chunk on disk therefore
    always has its checksum; a checksum without its chunk is rewritten with it."""
    import pyarrow.parquet as pq

    tmp = path.with_name(f".{path.name}.tmp-{tag}-{os.getpid()}")
    pq.write_table(table, tmp, compression="zstd")
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    _write_atomic(checksum_path(path), (_sha256_file(tmp) + "\n").encode(), tag=tag)
    os.replace(tmp, path)


def _chunk_ok(path: Path, rows: int, columns: Sequence[str] | None) -> bool:
    import pyarrow.parquet as pq

    try:
        md = pq.read_metadata(path)
    except Exception:  # noqa: BLE001 - unreadable: recompute
        return False
    if md.num_rows != rows:
        return False
    return columns is None or list(md.schema.names) == list(columns)


def _progress(total: int, initial: int, enabled: bool | None):
    if enabled is None:
        enabled = sys.stderr.isatty() and not os.environ.get("CI")
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        initial=initial,
        unit="rows",
        unit_scale=True,
        dynamic_ncols=True,
        desc="sweep",
        smoothing=0.1,
    )


def _check_manifest(out: Path, spec: SweepSpec) -> dict[str, Any] | None:
    """The manifest already in ``out`` (``None`` if there is none) after checking that it
    is this sweep: the same spec, seed, sample count and chunk size, and the same model
    fingerprint (:func:`model_fingerprint`); any difference is an error naming it."""
    if not (out / MANIFEST).exists():
        return None
    man = read_manifest(out)
    want = spec.identity()
    have = man["identity"]
    diffs = [k for k in want if have.get(k) != want[k]]
    hint = (
        "use another --out, rerun with the original settings to resume, "
        "or pass --overwrite to delete it"
    )
    if diffs:
        detail = "; ".join(
            f"{k}: directory has {_short(have.get(k))}, this run has {_short(want[k])}"
            for k in diffs
        )
        raise InputError(f"output directory {out} holds a different sweep ({detail}); {hint}")
    fp_have, fp_want = man.get("hashes", {}).get("model", {}), model_fingerprint()
    diffs = [k for k in fp_want if fp_have.get(k) != fp_want[k]]
    if diffs:
        detail = "; ".join(
            f"{k}: directory has {_short(fp_have.get(k))}, this run has {_short(fp_want[k])}"
            for k in diffs
        )
        raise InputError(
            f"output directory {out} holds a sweep made by other model code or data "
            f"({detail}); its results would mix with this run's; {hint}"
        )
    return man


def _short(x: Any, n: int = 80) -> str:
    s = json.dumps(x, sort_keys=True) if not isinstance(x, str) else repr(x)
    return s if len(s) <= n else s[: n - 3] + "..."


def _clear(out: Path) -> None:
    """Delete the sweep files in ``out`` (chunks, checksums, temporaries, manifest), and
    nothing else."""
    for pattern in ("chunk-*.parquet", "chunk-*.parquet.sha256", ".chunk-*.tmp-*", ".manifest*"):
        for f in out.glob(pattern):
            f.unlink(missing_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)


#: Names a sweep directory may hold (so ``--out`` never points at a directory of other
#: files, e.g. the current directory, which ``--overwrite`` would then clean).
_SWEEP_FILE = re.compile(
    r"(manifest\.json|chunk-\d{6}\.parquet(\.sha256)?|\.chunk-.*\.tmp-.*|\.manifest.*"
    r"|\.lock-p\d+|.*\.png)"
)


def check_out_dir(out: str | Path) -> Path:
    """``out`` as a :class:`Path` if it can hold a sweep: not empty, not a file, and
    either new, empty or holding a sweep's files only."""
    if not isinstance(out, (str, os.PathLike)) or not os.fspath(out).strip():
        raise InputError("--out", out, "a directory path (a new or empty directory, or a sweep)")
    p = Path(out).expanduser()
    try:
        if p.exists() and not p.is_dir():
            raise InputError(f"--out {str(p)!r} exists and is not a directory")
        if p.is_dir():
            other = sorted(f.name for f in p.iterdir() if not _SWEEP_FILE.fullmatch(f.name))
            if other and not (p / MANIFEST).exists():
                raise InputError(
                    f"--out {str(p)!r} is a directory of other files ({len(other)}, e.g. "
                    f"{other[0]!r}), not a sweep; choose a new or empty directory"
                )
    except OSError as e:
        raise path_error(p, e, "directory") from e
    return p


@contextlib.contextmanager
def sweep_lock(out: Path, tag: str = "p0") -> Iterator[None]:
    """Hold ``out/.lock-<tag>`` (an exclusive ``flock``) for a run: a second run into the
    same directory (same process index) refuses instead of mixing its chunks in. The lock
    ends with the process, however it ends."""
    path = out / f".lock-{tag}"
    fh = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held across the yield
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise InputError(
                f"--out {str(out)!r} is in use by another sweep ({holder}); wait for it to "
                "finish, or use another --out"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {socket.gethostname()}")
        fh.flush()
        yield
    finally:
        fh.close()  # releases the lock


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def checksum_path(chunk: Path) -> Path:
    """Where the SHA-256 of a chunk file is kept (written before the chunk itself)."""
    return chunk.with_name(chunk.name + ".sha256")


def chunk_state(path: Path, rows: int, columns: Sequence[str] | None) -> str:
    """``"ok"``, ``"missing"`` or ``"bad"`` (its checksum, row count or columns do not
    match: corrupted or truncated; it is recomputed)."""
    if not path.exists():
        return "missing"
    try:
        want = checksum_path(path).read_text(encoding="ascii").strip()
        if _sha256_file(path) != want:
            return "bad"
    except (OSError, UnicodeDecodeError):
        return "bad"
    return "ok" if _chunk_ok(path, rows, columns) else "bad"


_FINGERPRINT: dict[str, str] = {}


def model_fingerprint() -> dict[str, str]:
    """What the results depend on besides the spec: the SHA-256 of perfmodel's source and
    data files, and the JAX and NumPy versions. A sweep resumes only with the same."""
    if not _FINGERPRINT:
        root = Path(__file__).resolve().parent.parent  # the perfmodel package
        h = hashlib.sha256()
        for f in sorted(root.rglob("*")):
            if f.suffix in (".py", ".toml", ".json", ".csv") and "__pycache__" not in f.parts:
                h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")
        _FINGERPRINT.update(
            perfmodel_sha256=h.hexdigest(), jax=jax.__version__, numpy=np.__version__
        )
    return dict(_FINGERPRINT)


@dataclasses.dataclass(frozen=True)
class SweepRun:
    """What :func:`run_sweep` did."""

    out: str
    samples: int
    chunks_total: int
    chunks_computed: int
    chunks_skipped: int
    rows_computed: int
    wall_s: float
    compile_s: float
    devices: int
    complete: bool
    #: chunks found on disk that failed their checksum (corrupted or truncated) and were
    #: computed again
    chunks_recomputed_bad: tuple[int, ...] = ()

    @property
    def rows_per_s(self) -> float | None:
        """Rows per second of evaluation (``None`` when nothing was computed)."""
        t = self.wall_s - self.compile_s
        return self.rows_computed / t if t > 0 and self.rows_computed else None

    def to_dict(self) -> dict[str, Any]:
        """The fields and ``rows_per_s``, as strict JSON types."""
        d = dataclasses.asdict(self)
        d["chunks_recomputed_bad"] = list(self.chunks_recomputed_bad)
        d["rows_per_s"] = self.rows_per_s
        return d


def run_sweep(
    spec: SweepSpec | str | Path | None,
    out: str | Path,
    samples: int | None = None,
    seed: int | None = None,
    *,
    chunk_size: int | None = None,
    overwrite: bool = False,
    progress: bool | None = None,
    devices: Sequence[Any] | None = None,
    process_index: int | None = None,
    process_count: int | None = None,
    max_chunks: int | None = None,
) -> SweepRun:
    """Run (or resume) a sweep, writing ``out/chunk-*.parquet`` and ``out/manifest.json``.

    Args:
      spec: a :class:`SweepSpec`, a spec file path or built-in name, or ``None`` for the
        default sweep.
      out: output directory (created).
      samples, seed, chunk_size: override the spec's values.
      overwrite: delete whatever sweep ``out`` holds and start over (without it, a
        matching sweep is resumed and a different one is an error).
      progress: show a tqdm bar (default: only when stderr is a terminal and ``CI`` is
        unset).
      devices: devices to shard the sample axis over (default ``jax.local_devices()``).
      process_index, process_count: this process's share of chunks (default from
        ``jax.process_index()``/``jax.process_count()``).
      max_chunks: stop after computing this many chunks (for tests and smoke runs).

    Returns:
      :class:`SweepRun` (counts, wall and compile time, whether all chunks exist).
    """
    if not isinstance(spec, SweepSpec):
        spec = load_spec(spec)
    if samples is not None:
        spec = spec.replace(samples=_int_field(samples, "samples", 1, MAX_SAMPLES))
    if seed is not None:
        spec = spec.replace(seed=_int_field(seed, "seed", 0, 2**31 - 1))
    if chunk_size is not None:
        spec = spec.replace(chunk_size=_int_field(chunk_size, "chunk_size", 1, 2**24))
    if max_chunks is not None:
        _int_field(max_chunks, "max_chunks", 0, 2**31)
    out = check_out_dir(out)
    pidx = jax.process_index() if process_index is None else process_index
    pcount = jax.process_count() if process_count is None else process_count
    if not 0 <= pidx < pcount:
        raise InputError(f"process_index = {pidx} must be in [0, {pcount})")
    devices = list(devices if devices is not None else jax.local_devices())
    t0 = time.perf_counter()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise path_error(out, e, "directory") from e
    tag = f"p{pidx}"
    with sweep_lock(out, tag):
        return _run_locked(
            spec, out, tag, pidx, pcount, devices, t0, overwrite, progress, max_chunks
        )


def _run_locked(
    spec: SweepSpec,
    out: Path,
    tag: str,
    pidx: int,
    pcount: int,
    devices: list[Any],
    t0: float,
    overwrite: bool,
    progress: bool | None,
    max_chunks: int | None,
) -> SweepRun:
    """:func:`run_sweep` once ``out`` is checked and locked."""
    n_dev = len(devices)
    for f in out.glob(f".chunk-*.tmp-{tag}-*"):  # debris of this process's killed writer
        try:
            f.unlink()
        except FileNotFoundError:
            pass
    if overwrite and pidx == 0:
        _clear(out)
    man = _check_manifest(out, spec)
    if man is None and any(out.glob("chunk-*.parquet")):
        raise InputError(
            f"--out {str(out)!r} holds chunk files but no {MANIFEST}: they cannot be told "
            "apart from another sweep's; pass --overwrite to delete them"
        )

    n_chunks = -(-spec.samples // spec.chunk_size)
    width = -(-spec.chunk_size // n_dev) * n_dev

    def rows_in(c: int) -> int:
        return min(spec.chunk_size, spec.samples - c * spec.chunk_size)

    mine = [c for c in range(n_chunks) if c % pcount == pidx]
    compiled = sharding = None
    compile_s = 0.0
    host = spec.model.host
    first: tuple[int, dict[str, np.ndarray]] | None = None  # a host model's first chunk
    todo: list[int] = []
    states: dict[int, str] | None = None  # per chunk: ok, missing or bad (checksum)
    if man is not None:  # resuming: skip the compilation when every chunk is on disk
        states = {c: chunk_state(chunk_path(out, c), rows_in(c), man.get("columns")) for c in mine}
        todo = [c for c in mine if states[c] != "ok"]
    if man is None or todo:
        if host:
            # Nothing to compile ahead (compile_s stays 0: the model's own compiles happen
            # inside its calls); the first chunk to compute tells the columns.
            compiled = host_chunk_fn(spec, devices)
            cands = todo if man is not None else mine
            c0 = cands[0] if cands else 0
            start0 = c0 * spec.chunk_size
            first = (c0, compiled(_padded_indices(start0, start0 + rows_in(c0), width)))
            columns = ["sample", *first[1].keys()]
        else:
            # Compile (and learn the columns) for the chunk shape; every chunk has this shape.
            compiled, sharding, columns, compile_s = compiled_chunk_fn(spec, devices, width)
    else:
        columns = list(man["columns"])

    if man is None:  # any process may write it: the content is the same for all of them
        man = {
            "format": FORMAT_VERSION,
            "identity": spec.identity(),
            "digest": spec.digest(),
            # what the results depend on, hashed: the spec (model, config, params,
            # samples, seed, chunk size) and the model's code and data
            "hashes": {
                "spec": hashlib.sha256(
                    json.dumps(spec.identity(), sort_keys=True).encode()
                ).hexdigest(),
                "model": model_fingerprint(),
            },
            "source": spec.source,
            "description": spec.description,
            "n_chunks": n_chunks,
            "columns": columns,
            "metrics": list(spec.model.metrics),
            "decision_prefixes": list(spec.model.decision_prefixes),
            "decision_threshold": spec.model.decision_threshold,
            "fan": list(spec.model.fan) if spec.model.fan else None,
        }
        _write_atomic(out / MANIFEST, json.dumps(man, indent=1).encode(), tag=tag)
    elif man.get("columns") != columns:
        raise InputError(
            f"{out / MANIFEST}: columns differ from this build's model outputs; "
            "the code changed since the sweep started: use --overwrite"
        )

    if states is None or man.get("columns") != columns:
        states = {c: chunk_state(chunk_path(out, c), rows_in(c), columns) for c in mine}
    todo = [c for c in mine if states[c] != "ok"]
    bad = [c for c in mine if states[c] == "bad"]  # recomputed below, and reported
    if max_chunks is not None:
        todo = todo[:max_chunks]
    done_rows = sum(rows_in(c) for c in mine) - sum(rows_in(c) for c in todo)
    bar = _progress(sum(rows_in(c) for c in mine), done_rows, progress)

    import pyarrow as pa

    def launch(c: int):
        assert compiled is not None  # set above whenever a chunk is left to compute
        start = c * spec.chunk_size
        if host:  # runs now, on the host (no asynchronous dispatch to overlap with)
            if first is not None and first[0] == c:
                return first[1]
            return compiled(_padded_indices(start, start + rows_in(c), width))
        idx = jax.device_put(_padded_indices(start, start + rows_in(c), width), sharding)
        return compiled(idx)

    rows = 0
    try:
        pending = launch(todo[0]) if todo and not host else None
        for j, c in enumerate(todo):
            if host:
                res = launch(c)
            else:
                res = pending
                pending = launch(todo[j + 1]) if j + 1 < len(todo) else None  # overlap
            assert res is not None  # launched for every chunk in todo
            n = rows_in(c)
            start = c * spec.chunk_size
            data = {"sample": np.arange(start, start + n, dtype=np.int64)}
            for k in columns[1:]:
                data[k] = np.asarray(res[k])[:n]
            _write_chunk(chunk_path(out, c), pa.table(data), tag)
            rows += n
            if bar is not None:
                bar.update(n)
    finally:
        if bar is not None:
            bar.close()
    complete = all(chunk_path(out, c).exists() for c in range(n_chunks))
    return SweepRun(
        str(out),
        spec.samples,
        n_chunks,
        len(todo),
        len(mine) - len(todo),
        rows,
        time.perf_counter() - t0,
        compile_s,
        n_dev,
        complete,
        tuple(bad),
    )


# --------------------------------------------------------------------------------------
# Results and summary
# --------------------------------------------------------------------------------------


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest of the sweep in ``path``; an :class:`InputError` naming the file
    when it is missing, unreadable or not a manifest of this format."""
    p = Path(path) / MANIFEST
    if not p.exists():
        raise InputError(f"{path}: no sweep results here ({MANIFEST} missing)")
    try:
        man = json.loads(read_text(p, "sweep manifest"))
    except json.JSONDecodeError as e:
        raise InputError(
            f"{p}: not a sweep manifest ({e}); use --overwrite to start over"
        ) from None
    if not isinstance(man, dict) or not isinstance(man.get("identity"), dict):
        raise InputError(f"{p}: not a sweep manifest (no identity); use --overwrite to start over")
    if man.get("format") != FORMAT_VERSION:
        raise InputError(
            f"{p}: sweep format {man.get('format')!r}, this perfmodel writes {FORMAT_VERSION} "
            "(per-chunk checksums); use --overwrite to start over"
        )
    return man


def load_results(path: str | Path, *, allow_partial: bool = False):
    """All rows of a sweep as a ``pyarrow.Table`` sorted by sample index.

    Raises ``ValueError`` if chunks are missing unless ``allow_partial``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(path)
    man = read_manifest(out)
    files = [chunk_path(out, c) for c in range(man["n_chunks"])]
    have = [f for f in files if f.exists()]
    if len(have) < len(files) and not allow_partial:
        raise InputError(
            f"{out}: {len(files) - len(have)} of {len(files)} chunks missing; "
            "rerun the same sweep command to finish it"
        )
    for f in have:
        try:
            ok = _sha256_file(f) == checksum_path(f).read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            ok = False
        if not ok:
            raise InputError(
                f"{f}: fails its checksum (corrupted); rerun the same sweep command to recompute it"
            )
    if not have:
        return pa.table({c: pa.array([], pa.float64()) for c in man["columns"]})
    return pa.concat_tables([pq.read_table(f) for f in have])


QUANTILES = (0.1, 0.5, 0.9)


def summarize(path: str | Path, *, allow_partial: bool = False) -> dict[str, Any]:
    """P10/P50/P90 (and mean) of every output column and how often each decision is taken.

    Returns a dict with ``rows``, ``metrics`` (the model's headline columns),
    ``outputs`` (all other outputs), ``decisions`` (column -> share of samples in which
    its amount exceeds the model's threshold, plus the mean amount), ``portfolios``
    (the most frequent sets of chosen decisions with their share) and ``inputs``
    (quantiles of the sampled inputs).
    """
    man = read_manifest(path)
    table = load_results(path, allow_partial=allow_partial)
    n = table.num_rows
    cols = {c: table.column(c).to_numpy() for c in table.column_names if c != "sample"}
    prefixes = tuple(man.get("decision_prefixes") or ())
    thr = float(man.get("decision_threshold", 0.5))

    def stats(x: np.ndarray) -> dict[str, float | None]:
        x = np.asarray(x, float)
        finite = x[np.isfinite(x)]
        if finite.size == 0:  # no finite value: no statistic (None, never NaN)
            return {"p10": None, "p50": None, "p90": None, "mean": None, "nonfinite": int(x.size)}
        q = np.quantile(finite, QUANTILES)
        d: dict[str, float | None] = {
            "p10": float(q[0]),
            "p50": float(q[1]),
            "p90": float(q[2]),
            "mean": float(finite.mean()),
        }
        if finite.size < x.size:
            d["nonfinite"] = int(x.size - finite.size)
        return d

    metrics = {m: stats(cols[m]) for m in man.get("metrics", []) if m in cols}
    decisions_cols = [c for c in cols if prefixes and c.startswith(prefixes)]
    decisions = {
        c: {
            "share": float(np.mean(cols[c] > thr)) if n else None,
            "mean": _finite_mean(cols[c]) if n else None,
        }
        for c in decisions_cols
    }
    portfolios: list[dict[str, Any]] = []
    if decisions_cols and n:
        chosen = np.stack([cols[c] > thr for c in decisions_cols], axis=1)
        keys, counts = np.unique(chosen, axis=0, return_counts=True)
        order = np.argsort(-counts, kind="stable")[:5]
        for i in order:
            picked = [decisions_cols[j] for j in np.flatnonzero(keys[i])]
            portfolios.append({"chosen": picked, "share": float(counts[i] / n)})
    outputs = {
        c: stats(v)
        for c, v in cols.items()
        if not c.startswith("param.") and c not in metrics and c not in decisions
    }
    inputs = {c[len("param.") :]: stats(v) for c, v in cols.items() if c.startswith("param.")}
    return {
        "path": str(path),
        "model": man["identity"]["model"],
        "rows": n,
        "samples": man["identity"]["samples"],
        "seed": man["identity"]["seed"],
        "metrics": metrics,
        "decisions": decisions,
        "portfolios": portfolios,
        "outputs": outputs,
        "inputs": inputs,
    }


def _finite_mean(x) -> float | None:
    f = _finite(x)
    return float(f.mean()) if f.size else None


def _finite(x) -> np.ndarray:
    x = np.asarray(x, float)
    return x[np.isfinite(x)]


def _spread(x) -> float:
    """Relative range ``(max - min) / max |x|`` of the finite values (0 if none)."""
    x = _finite(x)
    if not x.size:
        return 0.0
    scale = float(np.max(np.abs(x)))
    return float(x.max() - x.min()) / scale if scale > 0 else 0.0


def plot_summary(path: str | Path, file: str | Path) -> Path:
    """Histograms of the headline metrics and, when the model has per-period columns,
    a fan chart (P10-P90 band and P50 line over periods). Writes ``file`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    man = read_manifest(path)
    table = load_results(path)
    cands = [m for m in man.get("metrics", []) if m in table.column_names]
    spread = [m for m in cands if _spread(table.column(m).to_numpy()) > 1e-9]
    metrics = (spread + [m for m in cands if m not in spread])[:3]
    fan = man.get("fan")
    ncols = len(metrics) + (1 if fan else 0)
    fig, axes = plt.subplots(1, max(ncols, 1), figsize=(4.2 * max(ncols, 1), 3.4), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        x = _finite(table.column(m).to_numpy())
        bins = min(50, max(5, int(np.sqrt(max(len(x), 1))))) if _spread(x) > 1e-9 else 1
        ax.hist(x, bins=bins, color="#4477aa")
        for q, ls in zip(np.quantile(x, QUANTILES) if len(x) else [], (":", "-", ":")):
            ax.axvline(q, color="k", ls=ls, lw=1)
        ax.set_title(f"{m} (P10/P50/P90 lines)", fontsize=9)
        ax.set_ylabel("samples")
    if fan:
        prefix, labels = fan
        ax = axes[0][len(metrics)]
        series = np.stack([table.column(f"{prefix}{lab}").to_numpy() for lab in labels], axis=1)
        q = np.quantile(series, QUANTILES, axis=0)
        xs = np.arange(len(labels))
        ax.fill_between(xs, q[0], q[2], alpha=0.3, color="#4477aa", label="P10-P90")
        ax.plot(xs, q[1], color="#223355", label="P50")
        ax.set_xticks(xs, labels, rotation=45, fontsize=7)
        ax.set_title(f"{prefix.rstrip('.[')} over periods", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(
        f"sweep {Path(path).name}: {man['identity']['model']} model, "
        f"{table.num_rows} samples, seed {man['identity']['seed']}",
        fontsize=10,
    )
    fig.tight_layout()
    file = Path(file)
    fig.savefig(file, dpi=110)
    plt.close(fig)
    return file
