"""The compiled function of one chunk: sample indices ``(B,)`` -> output columns.

A chunk is padded to a multiple of the local device count and evaluated by one jitted
call whose sample axis is sharded with ``NamedSharding(Mesh(devices, ("samples",)),
P("samples"))``; inside, ``jax.shard_map`` hands each device its own block of samples,
which the model evaluates with ``vmap`` (or ``lax.map``). A host model
(``Model.host``) gets the same inputs (a jitted :func:`sample_params`) as NumPy arrays.
Compiled functions are cached per (spec digest, devices, width).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from perfmodel.errors import InputError
from perfmodel.sweep.params import sample_params
from perfmodel.sweep.spec import SweepSpec


def _mesh(devices):

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


def padded_indices(start: int, stop: int, width: int) -> np.ndarray:
    idx = np.arange(start, stop, dtype=np.int64)
    if len(idx) < width:  # pad with copies of the last real sample (finite, discarded)
        idx = np.concatenate([idx, np.full(width - len(idx), stop - 1, np.int64)])
    return idx
