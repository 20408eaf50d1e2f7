"""Model curves: throughput of a chip on a workload over the count grid, from the
training model (or a given ``curve_fn``), cached.

Two caches, each keyed by the chip's content (:attr:`ChipSpec.cache_name`), workload,
precision, pick, grid and model function: one in the process, and, for a preset workload
(a name) with one of the package's own model functions (:data:`MODEL_FNS`), the on-disk
one of :mod:`perfmodel.model_cache` (its keys also carry the model fingerprint, so an
edited model file misses it). The raw throughputs are stored, before
:func:`make_curve`: one entry serves both modes, and the checks of a fresh search run on
a cached one too (the same error for a chip the model cannot value).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any, TypedDict, Unpack

import numpy as np

from perfmodel import model_cache
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


class CurveOptions(TypedDict, total=False):
    """The options of a model curve, as keywords of :func:`model_curve` (where their
    defaults are: ``precision=None``, the workload's; ``pick="best"``;
    ``grid=DEFAULT_GRID``; ``mode="job"``; ``curve_fn=None``, the training model;
    ``catalog=None``, the built-in one), which every equivalence passes on."""

    precision: str | None
    pick: str
    grid: Sequence[int]
    mode: str
    curve_fn: CurveFn | None
    catalog: Catalog | None


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


#: The package's model functions as named in the disk cache's keys.
_DISK_NAMES = {_training_curve: "train", _training_inference_curve: "forward"}


def _disk_key(name: str, workload, precision, pick, grid, curve_fn) -> str | None:
    """The :mod:`perfmodel.model_cache` key of a raw curve, or None when it is not
    cached on disk (a workload object, or a model function of the caller's)."""
    fn = _DISK_NAMES.get(curve_fn)
    if fn is None or not isinstance(workload, str):
        return None
    grid_txt = ",".join(str(g) for g in grid)
    grid_id = "grid" if grid == DEFAULT_GRID else hashlib.sha256(grid_txt.encode()).hexdigest()[:16]
    fields = (model_cache.model_fingerprint(), name, workload, precision or "-", pick)
    return "|".join((*fields, f"equiv-{fn}", grid_id))


def _search(cat: Catalog, chip_key, workload, precision, pick, grid, curve_fn, disk_key):
    """The model's throughput at every grid count (unchecked), from the disk cache when
    ``disk_key`` has an entry of the grid's length (anything else is recomputed)."""
    hit = None if disk_key is None else model_cache.get(disk_key)
    if isinstance(hit, list) and len(hit) == len(grid):
        try:
            return np.asarray(hit, dtype=float)
        except (TypeError, ValueError):  # not numbers: a corrupt entry
            pass
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
    if disk_key is not None and t.shape == (len(grid),):
        model_cache.put(disk_key, [float(x) for x in t])
    return t


def _raw_curve(cat: Catalog, chip_key, workload, precision, pick, grid, curve_fn, disk_key=None):
    t = _search(cat, chip_key, workload, precision, pick, grid, curve_fn, disk_key)
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
        disk_key = _disk_key(name, workload, precision, pick, grid, curve_fn)
        hit = _raw_curve(cat, chip_key, workload, precision, pick, grid, curve_fn, disk_key)
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
    chip_key: str, workload, **opts: Unpack[CurveOptions]
) -> tuple[ScalingCurve, ScalingCurve]:
    """The curves every equivalence inverts: ``chip_key``'s at ``pick`` and the H100
    reference's (always at ``best``), with the same workload, precision, grid, mode and
    model function (:class:`CurveOptions`)."""
    x = model_curve(chip_key, workload, **opts)
    opts["pick"] = "best"
    return x, model_curve(REFERENCE_CHIP, workload, **opts)
