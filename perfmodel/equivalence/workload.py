"""Workload equivalence at scale: H100s delivering what n chips of X do on a workload,
its inverse, sums over independent clusters, gradients, and the range with its
assumptions and diagnostics."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any, Unpack

import jax
import jax.numpy as jnp
import numpy as np

from perfmodel.equivalence.curves import (
    ScalingCurve,
    bound_factor,
    curve_count,
    curve_slope,
    curve_throughput,
    equivalent_count,
    make_curve,
)
from perfmodel.equivalence.definitions import (
    DEFAULT_GRID,
    REFERENCE_CHIP,
    REFERENCE_SYSTEM,
    _catalog,
    _check_count,
)
from perfmodel.equivalence.model import (
    CurveFn,
    CurveOptions,
    _training_curve,
    _workload_name,
    call_curve_fn,
    curve_pair,
)
from perfmodel.equivalence.result import EquivResult
from perfmodel.equivalence.spec import reference_chip, spec_equivalence_range
from perfmodel.hardware import PICKS, Catalog
from perfmodel.workloads import get_workload


def workload_equivalence(
    chip_key: str,
    n_chips: float,
    workload,
    **opts: Unpack[CurveOptions],
) -> float:
    """H100 count with the same throughput on ``workload`` as ``n_chips`` of ``chip_key``.

    Args:
      chip_key: catalog chip key or alias.
      n_chips: number of chips (> 0; fractional counts interpolate).
      workload: preset name (see :data:`perfmodel.workloads.WORKLOAD_NAMES`) or Workload.
      **opts: the curve options (:class:`~perfmodel.equivalence.model.CurveOptions`):
        ``precision`` (None: the workload's default), ``pick`` (the catalog pick for chip
        X; the H100 reference is always ``best``), ``grid``, ``mode``, ``curve_fn``,
        ``catalog``.

    Returns:
      H100-equivalents (float). ``workload_equivalence("h100", n, W) == n``.
    """
    n = _check_count("n_chips", n_chips)
    x, h = curve_pair(chip_key, workload, **opts)
    return float(_equiv_jit(x, h, n))


_equiv_jit = jax.jit(equivalent_count)
_equiv_vec = jax.jit(jax.vmap(equivalent_count, in_axes=(None, None, 0)))


def h100e_curve(
    chip_key: str,
    workload,
    counts,
    **opts: Unpack[CurveOptions],
) -> np.ndarray:
    """H100-equivalents delivered by ``n`` chips of ``chip_key``, for each ``n`` in
    ``counts`` (one vectorised call; curves cached)."""
    c = _check_count("counts", counts).reshape(-1)
    x, h = curve_pair(chip_key, workload, **opts)
    return np.asarray(_equiv_vec(x, h, jnp.asarray(c)))


def chips_for_h100e(
    chip_key: str,
    h100e: float,
    workload,
    **opts: Unpack[CurveOptions],
) -> float:
    """Inverse of :func:`workload_equivalence`: chips of ``chip_key`` needed to match
    ``h100e`` H100s on ``workload`` (fractional)."""
    m = _check_count("h100e", h100e)
    x, h = curve_pair(chip_key, workload, **opts)
    return float(_equiv_jit(h, x, m))


def fleet_equivalence(clusters: Sequence[tuple[str, float]], workload, **kw) -> float:
    """H100e of independent clusters running independent jobs: the sum of each cluster's
    :func:`workload_equivalence` (``clusters`` = [(chip_key, n_chips), ...])."""
    return float(sum(workload_equivalence(k, n, workload, **kw) for k, n in clusters))


def h100e_gradient(
    chip_key: str,
    n_chips: float,
    workload,
    fields: Sequence[str] = (
        "peak_flops_per_s",
        "mem_bytes_per_s",
        "scaleup_bytes_per_s",
        "scaleout_bytes_per_s",
    ),
    *,
    precision: str | None = None,
    rel_step: float = 0.02,
    curve_fn: CurveFn | None = None,
    grid: Sequence[int] = DEFAULT_GRID,
    mode: str = "job",
    catalog: Catalog | None = None,
) -> dict[str, float]:
    """Elasticities ``d log(h100e) / d log(field)`` of workload equivalence w.r.t. scaling
    each Chip field of X (all entries of an array field together).

    The model curve is differentiated by central finite differences (the layout search
    is discrete), then chained exactly through the jitted interpolation/inversion::

        d h100e / d s = grad_{log T_X}(equivalent_count) . d log T_X / d s
    """
    cat = _catalog(catalog)
    key = cat.resolve(chip_key)
    fn = _training_curve if curve_fn is None else curve_fn
    grid = tuple(int(g) for g in grid)
    base_chip = cat.chip(key, "best")
    x, h = curve_pair(
        key, workload, precision=precision, grid=grid, mode=mode, curve_fn=fn, catalog=cat
    )
    n = float(_check_count("n_chips", n_chips))

    def m_of(log_t):
        return equivalent_count(ScalingCurve(x.log_counts, log_t), h, n)

    g_logt = jax.grad(m_of)(x.log_throughput)
    m0 = float(m_of(x.log_throughput))
    out = {}
    for f in fields:
        if not hasattr(base_chip, f):
            raise ValueError(f"field {f!r} is not a Chip field")
        dl = []
        for s in (1 + rel_step, 1 / (1 + rel_step)):
            c = dataclasses.replace(base_chip, **{f: getattr(base_chip, f) * s})
            t = np.asarray(
                call_curve_fn(
                    fn, workload, key, np.asarray(grid), precision=precision, chip=c, catalog=cat
                ),
                dtype=float,
            )
            dl.append(
                make_curve(np.asarray(grid, float), t, capacity=(mode == "capacity")).log_throughput
            )
        dlogt = (dl[0] - dl[1]) / (2 * math.log(1 + rel_step))
        out[f] = float(jnp.dot(g_logt, dlogt) / m0)
    return out


def _precision_of(workload, precision):
    if precision is not None:
        return precision
    p = getattr(workload, "precision", None)
    if isinstance(p, str):
        return p
    if isinstance(workload, str):
        try:
            p = getattr(get_workload(workload), "precision", None)
        except KeyError:  # an unknown name: no default precision (the model says so later)
            return None
        if isinstance(p, str):
            return p
    return None


@functools.partial(jax.jit, static_argnames="precision")
def _slopes_and_bound(x, h, chip, ref, n, m, precision):
    """The scaling exponents of the H100 curve at ``m`` and of X's at ``n``, the rate
    bound factor and the H100e it bounds ``n`` chips to (one compiled program)."""
    c = bound_factor(chip, ref, precision)
    return curve_slope(h, m), curve_slope(x, n), c, curve_count(h, c * curve_throughput(h, n))


def _diagnostics(cat, chip_key, n, m, workload, precision, grid, mode, curve_fn) -> dict:
    """Local scaling exponents at the answer: where the H100 curve is nearly flat (the
    job's fixed global batch stops H100 scaling) the inversion is ill-conditioned."""
    x, h = curve_pair(
        chip_key,
        workload,
        precision=precision,
        grid=grid,
        mode=mode,
        curve_fn=curve_fn,
        catalog=cat,
    )
    prec = _precision_of(workload, precision) or "bf16"
    sh, sx, c, bound = (
        float(v)
        for v in _slopes_and_bound(x, h, cat.chip(chip_key), reference_chip(cat), n, m, prec)
    )
    out = {
        "h100_scaling_exponent_at_h100e": sh,
        "chip_scaling_exponent_at_n": sx,
        "rate_bound_factor": c,
        "rate_bound_h100e": bound,
        "bound_excess": m / bound,
    }
    if m > bound * (1 + 1e-9):
        out["bound_note"] = (
            "above the rate bound: explained by capacity effects (more "
            "memory -> other layouts fit, or a larger SRAM holding working "
            "sets), which the rate bound does not cover"
        )
    if sh < 0.5 and mode == "job":
        out["warning"] = (
            f"the H100 curve scales as n^{sh:.2f} at {m:,.0f} H100s (the job's "
            "fixed global batch): H100e is very sensitive here; see --mode capacity"
        )
    return out


def _base_assumptions(cat, chip_key, n, workload, precision, grid, mode="job") -> dict:
    rec = cat.record(chip_key)
    return {
        "mode": mode
        + (
            " (one job over all chips, fixed global batch)"
            if mode == "job"
            else " (independent copies of the job on the best slice size)"
        ),
        "chip": rec.key,
        "chip_name": rec.display_name,
        "n_chips": n,
        "workload": _workload_name(workload),
        "precision": precision or "workload default",
        "reference": f"{REFERENCE_CHIP} (best figures) in {REFERENCE_SYSTEM} systems, "
        "network as modelled by perfmodel.training",
        "scale": f"throughput at the best layout on {int(n) if float(n).is_integer() else n} "
        f"chips; curves on {len(grid)} geometric counts {grid[0]}..{grid[-1]}, "
        "log-log interpolation, proportional extrapolation outside",
        "range": "low = catalog low performance figures (+ high price/power/PUE); "
        "high = high figures (+ low price/power/PUE); H100 reference at best",
    }


def workload_equivalence_range(
    chip_key: str, n_chips: float, workload, **opts: Unpack[CurveOptions]
) -> EquivResult:
    """:func:`workload_equivalence` at the low/best/high picks, with assumptions (``opts``:
    :class:`~perfmodel.equivalence.model.CurveOptions` but ``pick``)."""
    if "pick" in opts:
        raise TypeError("workload_equivalence_range() got an unexpected keyword argument 'pick'")
    cat = opts["catalog"] = _catalog(opts.get("catalog"))
    n = float(_check_count("n_chips", n_chips))
    v = {p: workload_equivalence(chip_key, n, workload, **(opts | {"pick": p})) for p in PICKS}
    a = _count_assumptions(cat, chip_key, n, v["best"], workload, opts)
    prec = _precision_of(workload, opts.get("precision"))
    sp = spec_equivalence_range(chip_key, prec or "bf16", n, cat)
    a["spec_h100e"] = sp["best"]
    a["spec_precision"] = prec or "bf16"
    return EquivResult("workload", v["best"], min(v.values()), max(v.values()), a)


def _count_assumptions(cat, chip_key, n, h100e, workload, kw: Mapping[str, Any]) -> dict:
    """The assumptions and diagnostics of an equivalence of ``n`` chips (given, or that a
    budget or a power envelope buys; ``kw``: the options given to the ``*_range``
    function)."""
    grid, mode = tuple(kw.get("grid", DEFAULT_GRID)), kw.get("mode", "job")
    prec = kw.get("precision")
    a = _base_assumptions(cat, chip_key, n, workload, _precision_of(workload, prec), grid, mode)
    a.update(_diagnostics(cat, chip_key, n, h100e, workload, prec, grid, mode, kw.get("curve_fn")))
    return a
