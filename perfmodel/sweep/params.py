"""Uncertain inputs and how sample ``i`` draws them (the sweep's keys).

A **param** is a named uncertain input with a distribution (:class:`Param`):
``uniform(low, high)``, ``triangular(low, best, high)`` (mode ``best``),
``lognormal(median, sigma[, low, high])``, ``normal(mean, sd[, low, high])`` (clipped to
``[low, high]`` when given), ``choice(values[, weights])``, ``grid(values)`` (a full
factorial over all grid params; sample ``i`` takes grid point ``i mod G`` in mixed radix,
spec order) and ``constant(value)``.

Sample ``i`` is a deterministic function of ``(seed, i)`` only: its random numbers come
from ``fold_in(fold_in(key(seed), i), crc32(param name))`` (threefry). The inputs are
therefore identical for any chunk size, any device or process count and any order in
which chunks run, and adding a parameter does not change the draws of the others.
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from perfmodel.errors import InputError

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
        return jax.random.triangular(k, lo, c, hi, (), f)
    if p.dist in ("lognormal", "normal"):
        x = (
            a["median"] * jax.random.lognormal(k, a["sigma"], (), f)
            if p.dist == "lognormal"
            else a["mean"] + a["sd"] * jax.random.normal(k, (), f)
        )
        return jnp.clip(x, a.get("low", -jnp.inf), a.get("high", jnp.inf))
    if p.dist == "choice":
        vals = jnp.asarray(a["values"], f)
        w = np.asarray(a.get("weights", (1.0,) * len(a["values"])), float)
        return vals[jax.random.choice(k, len(a["values"]), p=jnp.asarray(w / w.sum(), f))]
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
