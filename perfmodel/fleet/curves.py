"""Value curves: H100e delivered by n chips of a kind in one cluster, and their concave hull.

A value curve is the training model's best-layout throughput at the chip counts of
:data:`perfmodel.equivalence.DEFAULT_GRID`, made monotone by
:func:`perfmodel.equivalence.make_curve` (``capacity`` or ``job`` mode) and read between
grid points by log-log interpolation (:func:`perfmodel.equivalence.curve_throughput`):
the same curve as :func:`perfmodel.equivalence.model_curve`, computed faster.

Where the milliseconds come from (the values are identical, not approximated):

* **Only the counts a problem needs.** A curve read at counts up to ``n`` needs the grid
  points up to the first one ``>= n`` (and up to the first count where the workload fits,
  for the proportional fill below it): :func:`make_curve` runs its maxima from small
  counts to large, so the grid above does not change those values.
* **Exact pruning** and **one compiled evaluator**: the best-layout search
  (:func:`~perfmodel.fleet.layout_search.best_rates`) skips every layout whose upper
  bound cannot raise the curve, and runs the model in fixed blocks of
  :data:`~perfmodel.fleet.layout_search.CHUNK` layouts
  (:mod:`perfmodel.fleet.layout_search` says how).
* **Shipped curves.** ``perfmodel/data/curves.npz`` holds the curves (pick ``best``,
  ``capacity`` mode) of every built-in chip on the workloads of the built-in scenarios and
  :data:`SHIPPED_EXTRA_WORKLOADS` (``--all``: every preset), with the fingerprint of the
  model files they came from. They are used only while the fingerprint matches; otherwise
  (and for other picks, modes or workloads) the curve is computed with the same model and
  cached on disk (:mod:`perfmodel.model_cache`: ``$PERFMODEL_CACHE_DIR/curves.json``, the
  one cache of the equivalence curves too). After changing the model, regenerate them
  with ``python -m perfmodel.fleet.curves --write``.

**User chips.** A chip is given as a key of the built-in catalog or as a
:class:`perfmodel.equivalence.ChipSpec` (a chip of a user catalog, resolved once). Every
cache keys it by :attr:`~perfmodel.equivalence.ChipSpec.cache_name`: the bare key only
when its records are the built-in ones, ``key@digest`` (the content of its catalog
records) otherwise, so a user chip that shadows a built-in name with other figures
never gets the shipped or cached curve of the built-in. The H100 reference is the one
of the same catalog.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import json
import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from perfmodel import model_cache
from perfmodel import workloads as wl
from perfmodel.equivalence import (
    DEFAULT_GRID,
    MODES,
    REFERENCE_CHIP,
    ScalingCurve,
    check_trainable,
    chip_spec,
    curve_throughput,
    make_curve,
)
from perfmodel.errors import InputError
from perfmodel.fleet.layout_search import CHUNK as CHUNK
from perfmodel.fleet.layout_search import SEARCH_STATS as SEARCH_STATS
from perfmodel.fleet.layout_search import _evaluate_units as _evaluate_units
from perfmodel.fleet.layout_search import _layout_rows as _layout_rows
from perfmodel.fleet.layout_search import _rows as _rows
from perfmodel.fleet.layout_search import _upper_rates as _upper_rates
from perfmodel.fleet.layout_search import best_rates as best_rates
from perfmodel.hardware import PICKS, load_catalog
from perfmodel.model_cache import FINGERPRINT_FILES as FINGERPRINT_FILES
from perfmodel.model_cache import _disk as _disk
from perfmodel.model_cache import model_fingerprint as model_fingerprint
from perfmodel.training.search import _prepare
from perfmodel.training.types import default_efficiency

if TYPE_CHECKING:
    from perfmodel.equivalence import ChipSpec
    from perfmodel.hardware import Catalog

__all__ = [
    "value_curve",
    "grid_curve",
    "reference_rate",
    "model_fingerprint",
    "standin_h100e",
    "concave_interpolant",
    "SEARCH_STATS",
]

#: The shipped curves (built-in chips x workloads at pick ``best``).
SHIPPED_FILE = Path(__file__).resolve().parents[1] / "data" / "curves.npz"
_MODEL_LABEL = "training model ({mode} mode, best layout per count)"
_STANDIN_LABEL = "STAND-IN spec ratio x n^0.98"


# --------------------------------------------------------------------------------------
# Stand-in (asked for by name only: --values standin, tests)
# --------------------------------------------------------------------------------------

# Stand-in only (--values standin and tests; never a fallback for the model): dense
# BF16 (int8 for the FSD computers) peak TFLOPS from /work/shared/reference/hardware.toml;
# the H100 reference is 989.4 (989.4 int8 -> 1978.9).
_STANDIN_BF16_TFLOPS = {
    "a100_80gb": 312.0,
    "h100_sxm": 989.4,
    "h100": 989.4,
    "h200": 989.4,
    "b200": 2250.0,
    "gb200": 2500.0,
    "mi300x": 1307.4,
    "d1": 362.0,
    "dojo_tile": 9050.0,
    "hw3": 144.0 / 2,
    "ai4": 250.0 / 2,
    "host_cpu": 0.0,
    "dojo_dip": 0.0,
}


def standin_h100e(chip_key: str | ChipSpec, counts) -> np.ndarray:
    """STAND-IN value curve (asked for by name only: ``source="standin"``): spec ratio x n^0.98.

    ``H100e(n) = (peak_bf16(chip) / peak_bf16(H100)) * n^0.98`` -- a crude scaling
    efficiency that loses ~2% per decade of cluster size. Not the training model. A
    built-in chip's peak comes from the table above; a user chip's
    (:class:`~perfmodel.equivalence.ChipSpec` not built-in) from its own bf16 rate
    (or the fallback it runs bf16 at).
    """
    if isinstance(chip_key, str) or chip_key.builtin:
        key = chip_key if isinstance(chip_key, str) else chip_key.key
        r = _STANDIN_BF16_TFLOPS.get(key, 0.0) / 989.4
    else:
        rec = chip_key.catalog.chips[chip_key.key]
        r = float(rec.peak("bf16")) / 989.4e12 if rec.supports("bf16") else 0.0
    n = np.asarray(counts, dtype=np.float64)
    return r * np.power(np.maximum(n, 0.0), 0.98)


# --------------------------------------------------------------------------------------
# Fingerprint, shipped curves and the disk cache
# --------------------------------------------------------------------------------------


_model_fingerprint = model_fingerprint  # the name perfmodel.fleet.values imports


@functools.cache
def _shipped() -> dict:
    """The shipped curves as ``{(chip, workload, pick, mode): log_t}`` and
    ``{("ref", workload): log rate}``, or ``{}`` when absent or from another model."""
    try:
        with np.load(SHIPPED_FILE, allow_pickle=False) as z:
            if str(z["fingerprint"]) != model_fingerprint():
                return {}
            out: dict = {}
            log_t = z["log_t"]
            for i, c in enumerate(z["chips"]):
                for j, w in enumerate(z["workloads"]):
                    for p, pick in enumerate(z["picks"]):
                        for m, mode in enumerate(z["modes"]):
                            out[(str(c), str(w), str(pick), str(mode))] = log_t[i, j, p, m]
            for j, w in enumerate(z["workloads"]):
                out[("ref", str(w))] = float(z["ref_log_rate"][j])
            return out
    except (OSError, KeyError, ValueError):
        return {}


# --------------------------------------------------------------------------------------
# The curve of one chip on one workload: shipped, cached on disk, or computed
# --------------------------------------------------------------------------------------


def _needed(max_count: float | None, grid) -> int:
    """How many grid counts a curve read up to ``max_count`` needs."""
    if max_count is None or max_count >= grid[-1]:
        return len(grid)
    return max(2, int(np.searchsorted(np.asarray(grid), max_count, side="left")) + 1)


def _spec(chip: str | ChipSpec, catalog: Catalog | None = None) -> ChipSpec:
    """``chip`` as a :class:`~perfmodel.equivalence.ChipSpec` (a key of ``catalog``,
    default the built-in one)."""

    return chip_spec(chip, catalog)


def _compute_curve(chip: str | ChipSpec, workload, pick: str, mode: str, k: int) -> np.ndarray:
    """``log_throughput`` of the ``mode`` curve at the first ``k`` grid counts (at least
    up to the first count where the workload fits). Raises ValueError when the model
    cannot value the chip on the workload (a missing figure: an InputError naming the
    chip and the field)."""

    spec = _spec(chip)
    cat, key = spec.catalog, spec.key
    w, key, pt, net = _prepare(workload, key, 1, None, cat, spec.chip(pick))
    check_trainable(spec, w.precision)
    name = workload if isinstance(workload, str) else None
    # names and the family label are static pytree fields the model does not read
    w = dataclasses.replace(w, name="", family="")
    pt = dataclasses.replace(pt, name="")
    eff = default_efficiency()
    grid = np.asarray(DEFAULT_GRID, np.float64)
    raw = best_rates(w, pt, net, eff, grid[:k], mode, name)
    if not np.any(raw > 0) and k < len(grid):  # the fill needs the first count that fits
        raw = np.concatenate([raw, best_rates(w, pt, net, eff, grid[k:], mode, name)])
        k = int(np.argmax(raw > 0)) + 1 if np.any(raw > 0) else len(grid)
        raw = raw[:k]
    if np.any(np.isnan(raw)):
        raise ValueError(
            f"the training model gives chip {key!r} ({spec.source}) no finite throughput "
            f"on {name or getattr(workload, 'name', workload)!r}: check its figures"
        )
    if not np.any(raw > 0):
        raise ValueError(
            f"workload {name or getattr(workload, 'name', workload)!r} does not fit on any "
            f"count of {key} up to {int(grid[-1])} chips (throughput is 0 everywhere)"
        )
    return np.asarray(make_curve(grid[:k], raw, capacity=(mode == "capacity")).log_throughput)


@functools.lru_cache(maxsize=4096)
def _curve_by_name(spec: ChipSpec, workload: str, pick: str, mode: str, k: int) -> np.ndarray:
    # the shipped curves are the built-in chips': only for the same records
    hit = _shipped().get((spec.key, workload, pick, mode)) if spec.builtin else None
    if hit is not None and len(hit) >= k:
        if not np.all(np.isfinite(hit)):
            raise ValueError(f"the training model cannot value {spec.key} on {workload!r}")
        return hit
    key = f"{model_fingerprint()}|{spec.cache_name}|{workload}|{pick}|{mode}"
    disk = model_cache.get(key)
    if isinstance(disk, list) and len(disk) >= k:
        return np.asarray(disk, np.float64)
    if isinstance(disk, str):
        raise ValueError(disk)

    try:
        log_t = _compute_curve(spec, workload, pick, mode, k)
    except InputError:  # a missing figure: said again each time, never cached
        raise
    except ValueError as e:
        model_cache.put(key, str(e).split("\n")[0])
        raise
    model_cache.put(key, [float(x) for x in log_t])
    return log_t


def grid_curve(
    chip_key: str | ChipSpec,
    workload,
    *,
    pick: str = "best",
    mode: str = "capacity",
    max_count=None,
    catalog: Catalog | None = None,
):
    """The :class:`perfmodel.equivalence.ScalingCurve` of ``chip_key`` (a key of
    ``catalog``, default the built-in one, or a :class:`~perfmodel.equivalence.ChipSpec`)
    on ``workload`` (preset name or :class:`~perfmodel.workloads.Workload`) over the grid
    counts needed to read it up to ``max_count`` chips (all of
    :data:`~perfmodel.equivalence.DEFAULT_GRID` when None). Equal to
    :func:`perfmodel.equivalence.model_curve` on those counts. Raises ValueError when the
    model cannot value the chip on the workload."""

    if mode not in MODES:
        raise ValueError(f"mode {mode!r} must be one of {MODES}")
    if pick not in PICKS:
        raise ValueError(f"pick {pick!r} must be one of {PICKS}")
    k = _needed(max_count, DEFAULT_GRID)
    spec = _spec(chip_key, catalog)
    if isinstance(workload, str):
        log_t = _curve_by_name(spec, workload, pick, mode, k)
    else:
        log_t = _compute_curve(spec, workload, pick, mode, k)
    import jax.numpy as jnp

    log_n = np.log(np.asarray(DEFAULT_GRID[: len(log_t)], np.float64))
    return ScalingCurve(jnp.asarray(log_n), jnp.asarray(log_t, jnp.float64))


@functools.lru_cache(maxsize=512)
def _ref_log_rate(workload: str, ref: ChipSpec | None = None) -> float:
    hit = _shipped().get(("ref", workload)) if ref is None or ref.builtin else None
    if hit is not None:
        return float(hit)

    c = grid_curve(REFERENCE_CHIP if ref is None else ref, workload, pick="best", mode="capacity")
    return float(np.max(np.asarray(c.log_throughput) - np.asarray(c.log_counts)))


def reference_rate(workload: str, catalog: Catalog | None = None) -> float:
    """Work units/s of one H100 at its best (capacity mode, whole grid): 1 H100e. The
    H100 is ``catalog``'s (default the built-in one)."""

    ref = None if catalog is None else _spec(REFERENCE_CHIP, catalog)
    return float(np.exp(_ref_log_rate(workload, None if ref is None or ref.builtin else ref)))


@functools.cache
def _values_code() -> str:
    """SHA-256 (12 hex digits) of the planner's value code (this module and the layout
    search; the model files are in :func:`model_fingerprint`): a cached value is read
    only while both match."""
    h = hashlib.sha256()
    for f in (Path(__file__), Path(__file__).with_name("layout_search.py")):
        h.update(f.read_bytes() + b"\0")
    return h.hexdigest()[:12]


def _values_key(spec: ChipSpec, workload: str, counts: np.ndarray, pick: str, mode: str) -> str:
    """The :data:`~perfmodel.model_cache.VALUES_FILE` key of :func:`_model_values`: the
    fingerprints, the chip and its catalog's H100 reference by content, and the counts
    exactly (``repr`` of a float reads back to the same double)."""
    ref = _spec(REFERENCE_CHIP, spec.catalog).cache_name
    n = ",".join(repr(float(x)) for x in counts)
    return f"{model_fingerprint()}|{_values_code()}|{spec.cache_name}|{workload}|{pick}|{mode}|{ref}|{n}"


def _model_values(spec: ChipSpec, workload: str, counts: np.ndarray, pick: str, mode: str):
    """H100e of ``counts`` (> 0) chips on one workload by the training model.

    Cached on disk (:data:`~perfmodel.model_cache.VALUES_FILE`, key :func:`_values_key`):
    a warm plan reads its values without evaluating a curve (each evaluation is a few
    eager JAX programs); a hit is the computed array to the last bit. Errors are not
    cached (the curve cache has them)."""

    key = _values_key(spec, workload, counts, pick, mode)
    hit = model_cache.get(key, model_cache.VALUES_FILE)
    if (
        isinstance(hit, list)
        and len(hit) == len(counts)
        and all(isinstance(x, float) and math.isfinite(x) and x >= 0 for x in hit)
    ):
        return np.asarray(hit, np.float64)
    curve = grid_curve(spec, workload, pick=pick, mode=mode, max_count=float(counts.max()))
    t = np.asarray(curve_throughput(curve, counts), np.float64)
    v = t / reference_rate(workload, spec.catalog)
    if not (np.all(np.isfinite(v)) and np.all(v >= 0)):
        raise ValueError(f"value curve of {spec.key!r} on {workload!r} is not finite")
    model_cache.put(key, [float(x) for x in v], model_cache.VALUES_FILE)
    return v


def value_curve(
    chip_key: str | ChipSpec,
    workloads,
    counts,
    *,
    pick: str = "best",
    source: str = "auto",
    mode: str = "capacity",
    catalog: Catalog | None = None,
) -> tuple[np.ndarray, str]:
    """Weighted H100e delivered by ``counts`` chips of ``chip_key`` (a key of
    ``catalog``, default the built-in one, or a :class:`~perfmodel.equivalence.ChipSpec`)
    at one site.

    ``V(n) = sum_w weight_w * T_w(chip, n) / t_ref_w`` where ``T_w`` is the training
    model's throughput curve (work units/s, :func:`grid_curve`, the curve of
    :func:`perfmodel.equivalence.model_curve`) and ``t_ref_w`` the best per-chip H100
    throughput on workload w (so 1 H100 at its best = 1 H100e). ``mode="capacity"``
    (default): n chips may run several copies of the job on smaller slices (the fleet
    view behind "85k H100e"); ``mode="job"``: one job spans all n chips (fixed global
    batch: strong diminishing returns). ``source``: "auto" or "equivalence" (the
    training model, or its error saying why it cannot value the chip: never a silent
    stand-in; a figure the model needs but the chip lacks is an
    :class:`~perfmodel.errors.InputError` naming the chip and the field) or "standin"
    (the labelled spec-ratio stand-in, asked for by name). Returns (values [H100e],
    description of the source used).
    """

    spec = _spec(chip_key, catalog)
    c = np.asarray(counts, dtype=np.float64).ravel()
    pos = c > 0
    total = np.zeros(len(c))
    srcs = set()
    for w, weight in workloads:
        v, s = np.zeros(len(c)), _MODEL_LABEL.format(mode=mode)
        if source == "standin":
            v, s = standin_h100e(spec, c), _STANDIN_LABEL
        elif pos.any():
            try:
                v[pos] = _model_values(spec, w, c[pos], pick, mode)
            except InputError:  # a figure the chip lacks: the user's to fix
                raise
            except ValueError as e:  # the chip is not trainable, or the job never fits
                raise ValueError(f"value curve of {spec.key!r} on {w!r} failed: {e}") from e
        total += weight * v
        srcs.add(s)
    return total, ", ".join(sorted(srcs))


def concave_hull(xs: np.ndarray, ys: np.ndarray) -> list[int]:
    """Indices of the vertices of the least concave majorant of the points (xs, ys), in
    order (``xs`` strictly increasing); a point on a chord is dropped.

    >>> concave_hull(np.array([0.0, 1.0, 2.0, 3.0]), np.array([0.0, 2.0, 3.0, 3.0]))
    [0, 1, 2, 3]
    >>> concave_hull(np.array([0.0, 1.0, 2.0]), np.array([0.0, 0.5, 2.0]))
    [0, 2]
    """
    hull: list[int] = []
    for i in range(len(xs)):
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            # drop b if it lies on or below the chord a -> i
            if (ys[b] - ys[a]) * (xs[i] - xs[a]) <= (ys[i] - ys[a]) * (xs[b] - xs[a]):
                hull.pop()
            else:
                break
        hull.append(i)
    return hull


def concave_interpolant(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Values at ``xs`` of the least concave majorant of the points (xs, ys).

    Ensures segment slopes are non-increasing (required by the segment formulation).
    ``xs`` strictly increasing. Returns an array shaped like ``ys``.
    """
    hull = concave_hull(xs, ys)
    return np.interp(xs, xs[hull], ys[hull])


# --------------------------------------------------------------------------------------
# Shipping the built-in curves: python -m perfmodel.fleet.curves --write
# --------------------------------------------------------------------------------------


#: Workloads shipped besides those of the built-in scenarios (``--all``: every preset).
SHIPPED_EXTRA_WORKLOADS = ("gpt3-175b", "llama3-8b", "llama3-70b")


def builtin_keys(all_workloads: bool = False) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The built-in chips (catalog keys) and the workloads to ship: those of the
    built-in scenarios plus :data:`SHIPPED_EXTRA_WORKLOADS` (every preset with
    ``all_workloads``)."""
    import tomllib

    presets, _, _ = wl._load_presets()
    if all_workloads:
        works = set(presets)
    else:
        works = set(SHIPPED_EXTRA_WORKLOADS)
        for f in sorted((SHIPPED_FILE.parent / "scenarios").glob("*.toml")):
            works |= {w["name"] for w in tomllib.loads(f.read_text()).get("workloads", [])}
    return tuple(sorted(load_catalog().chips)), tuple(sorted(works & set(presets)))


def write_shipped(
    path: Path = SHIPPED_FILE, picks=("best",), modes=("capacity",), all_workloads=False
) -> dict:
    """Compute the curves of every built-in chip x shipped workload (:func:`builtin_keys`)
    and write them with the model fingerprint to ``path`` (NaN rows: the model cannot
    value that pair)."""

    fingerprint = model_fingerprint()  # of the files as they are when the run starts
    chips, works = builtin_keys(all_workloads)
    t0 = time.perf_counter()
    g = len(DEFAULT_GRID)
    log_t = np.full((len(chips), len(works), len(picks), len(modes), g), np.nan)
    ref = np.zeros(len(works))
    for j, w in enumerate(works):
        for i, chip in enumerate(chips):
            for p, pick in enumerate(picks):
                for m, mode in enumerate(modes):
                    try:
                        log_t[i, j, p, m] = _compute_curve(chip, w, pick, mode, g)
                    except ValueError:
                        pass
        if REFERENCE_CHIP in chips and "best" in picks and "capacity" in modes:
            c = log_t[chips.index(REFERENCE_CHIP), j, picks.index("best"), modes.index("capacity")]
        else:
            c = _compute_curve(REFERENCE_CHIP, w, "best", "capacity", g)
        ref[j] = float(np.max(c - np.log(np.asarray(DEFAULT_GRID, np.float64))))
        print(f"  {w}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez_compressed(
        tmp,
        fingerprint=np.array(fingerprint),
        chips=np.array(chips),
        workloads=np.array(works),
        picks=np.array(picks),
        modes=np.array(modes),
        grid=np.array(DEFAULT_GRID, np.float64),
        log_t=log_t,
        ref_log_rate=ref,
    )
    tmp.replace(path)
    return {
        "curves": int(np.prod(log_t.shape[:4])),
        "seconds": round(time.perf_counter() - t0, 1),
        **{k: v for k, v in SEARCH_STATS.items() if k != "seconds"},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m perfmodel.fleet.curves",
        description="Ship the value curves of the built-in chips x workloads.",
    )
    ap.add_argument("--write", action="store_true", help=f"(re)write {SHIPPED_FILE.name}")
    ap.add_argument("--modes", default="capacity", help="comma-separated modes to ship")
    ap.add_argument("--all", action="store_true", help="every workload preset (slow)")
    ap.add_argument(
        "--check", action="store_true", help="exit 1 unless the shipped curves are current"
    )
    a = ap.parse_args(argv)
    if a.write:
        print(json.dumps(write_shipped(modes=tuple(a.modes.split(",")), all_workloads=a.all)))
        _shipped.cache_clear()
    current = bool(_shipped())
    state = "current" if current else "stale or absent"
    print(f"{SHIPPED_FILE}: {state} (model fingerprint {model_fingerprint()})")
    return 0 if current or not a.check else 1


if __name__ == "__main__":
    sys.exit(main())
