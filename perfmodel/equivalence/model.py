"""Model curves: throughput of a chip on a workload over the count grid, from the
training model (or a given ``curve_fn``), cached."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from perfmodel.equivalence.chips import check_trainable, chip_spec
from perfmodel.equivalence.curves import ScalingCurve, make_curve
from perfmodel.equivalence.definitions import (
    DEFAULT_GRID,
    MODES,
    REFERENCE_CHIP,
    _catalog,
    _check_pick,
    _check_precision,
)
from perfmodel.hardware import Catalog
from perfmodel.training import inference_throughput, throughput_curve
from perfmodel.workloads import get_workload

CurveFn = Callable[..., Any]
"""``curve_fn(workload, chip_key, counts, *, precision, chip) -> throughput array`` with
the signature of :func:`perfmodel.training.throughput_curve`. The package's own model
functions (:data:`MODEL_FNS`) also take ``catalog=``, the catalog the chip came from
(its network); a given ``curve_fn`` gets the chip as the pytree ``chip`` only."""


def _training_curve(workload, chip_key, counts, *, precision=None, chip=None, catalog=None):
    w = get_workload(workload) if isinstance(workload, str) else workload
    prec = precision or getattr(w, "precision", None) or "bf16"
    check_trainable(chip_spec(chip_key, catalog), prec)
    return throughput_curve(
        workload, chip_key, counts, precision=precision, chip=chip, catalog=catalog
    )


def _training_inference_curve(
    workload, chip_key, counts, *, precision="int8", chip=None, catalog=None
):
    return np.array(
        [
            inference_throughput(
                workload, chip_key, int(n), precision=precision, chip=chip, catalog=catalog
            )
            for n in counts
        ],
        dtype=float,
    )


#: The model functions that read the chip's network from the catalog it came from.
MODEL_FNS = (_training_curve, _training_inference_curve)


def call_curve_fn(fn: CurveFn, workload, chip_key, counts, *, precision, chip, catalog):
    """``fn`` on one chip: with ``catalog=`` for the package's own :data:`MODEL_FNS`."""
    kw: dict[str, Any] = {"catalog": catalog} if fn in MODEL_FNS else {}
    return fn(workload, chip_key, counts, precision=precision, chip=chip, **kw)


def _workload_name(workload) -> str:
    return workload if isinstance(workload, str) else str(getattr(workload, "name", workload))


_CURVE_CACHE: dict = {}
_CURVE_CACHE_MAX = 512


def clear_cache() -> None:
    """Forget cached model curves (after editing the catalog or the model in-process)."""
    _CURVE_CACHE.clear()


def _raw_curve(cat: Catalog, chip_key, workload, precision, pick, grid, curve_fn):
    chip = cat.chip(chip_key, pick)
    t = np.asarray(
        call_curve_fn(
            curve_fn,
            workload,
            chip_key,
            np.asarray(grid),
            precision=precision,
            chip=chip,
            catalog=cat,
        ),
        dtype=float,
    )
    if t.shape != (len(grid),):
        raise ValueError(
            f"throughput curve for {chip_key} has shape {t.shape}, expected ({len(grid)},)"
        )
    if np.any(np.isnan(t)):
        raise ValueError(
            f"the model gives chip {chip_key!r} ({cat.chips[chip_key].path}) no finite "
            f"throughput on {_workload_name(workload)!r}: check its figures"
        )
    if not np.any(np.isfinite(t) & (t > 0)):
        raise ValueError(
            f"workload {_workload_name(workload)!r} does not fit on any count of "
            f"{chip_key} up to {grid[-1]} chips (throughput is 0 everywhere)"
        )
    return t


def _cached_raw_curve(cat, chip_key, workload, precision, pick, grid, curve_fn):
    # keyed by the content of the chip's catalog records (ChipSpec.cache_name: its key
    # alone for the built-in records), so two catalogs with the same chip share a curve
    # and a chip of the same name with other figures never gets it
    try:
        name = chip_spec(chip_key, cat).cache_name
        key = (name, workload, precision, pick, grid, curve_fn)
        hash(key)
    except TypeError:  # unhashable workload object: no caching
        return _raw_curve(cat, chip_key, workload, precision, pick, grid, curve_fn)
    hit = _CURVE_CACHE.get(key)
    if hit is None:
        if len(_CURVE_CACHE) >= _CURVE_CACHE_MAX:
            _CURVE_CACHE.clear()
        hit = _raw_curve(cat, chip_key, workload, precision, pick, grid, curve_fn)
        _CURVE_CACHE[key] = hit
    return hit


def model_curve(
    chip_key: str,
    workload,
    *,
    precision: str | None = None,
    pick: str = "best",
    grid: Sequence[int] = DEFAULT_GRID,
    mode: str = "job",
    curve_fn: CurveFn | None = None,
    catalog: Catalog | None = None,
) -> ScalingCurve:
    """The monotone :class:`ScalingCurve` of ``chip_key`` on ``workload`` (cached per
    chip, workload, precision, pick, grid and model function)."""
    cat = _catalog(catalog)
    key = cat.resolve(chip_key)
    _check_pick(pick)
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} must be one of {MODES}")
    if precision is not None:
        _check_precision(precision)
    fn = _training_curve if curve_fn is None else curve_fn
    grid = tuple(int(g) for g in grid)
    if len(grid) < 2 or any(b <= a for a, b in zip(grid, grid[1:])) or grid[0] < 1:
        raise ValueError(f"grid must be >= 2 strictly increasing counts >= 1, got {grid[:5]}...")
    raw = _cached_raw_curve(cat, key, workload, precision, pick, grid, fn)
    return make_curve(np.asarray(grid, float), raw, capacity=(mode == "capacity"))


def curve_pair(
    chip_key: str,
    workload,
    *,
    precision: str | None = None,
    pick: str = "best",
    grid: Sequence[int] = DEFAULT_GRID,
    mode: str = "job",
    curve_fn: CurveFn | None = None,
    catalog: Catalog | None = None,
) -> tuple[ScalingCurve, ScalingCurve]:
    """The curves every equivalence inverts: ``chip_key``'s at ``pick`` and the H100
    reference's (always at ``best``), with the same workload, precision, grid, mode and
    model function."""
    kw: dict[str, Any] = dict(precision=precision, grid=grid, mode=mode, curve_fn=curve_fn)
    x = model_curve(chip_key, workload, pick=pick, catalog=catalog, **kw)
    return x, model_curve(REFERENCE_CHIP, workload, pick="best", catalog=catalog, **kw)
