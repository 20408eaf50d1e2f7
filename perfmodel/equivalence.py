"""H100-equivalents: spec-sheet, workload-at-scale, budget and power equivalence.

Definitions (the reference is an NVIDIA H100 SXM at its ``best`` catalog figures, in
DGX/HGX H100 systems with their normal network, as :mod:`perfmodel.training` models it):

* **Spec-sheet equivalence** of a chip at precision ``p``::

      spec_h100e = peak_dense_flops_per_s(chip, p) / peak_dense_flops_per_s(H100, p)

* **Workload equivalence at scale.** ``T_X(n)`` is the throughput (work units per
  second: tokens/s, samples/s) of ``n`` chips of kind X on workload W at the best
  parallel layout. Both X and H100 throughputs are tabulated on one geometric grid of
  counts (1, 2, 3, 4, 6, 8, ..., 262,144) and made *monotone* by a running maximum (a
  bigger cluster can always idle chips) plus a 1e-9 log-log slope that makes them strictly
  increasing. Off the grid, ``log T`` is piecewise linear in ``log n``. Below the smallest
  count that fits the job and above the largest grid count, throughput is extrapolated in
  proportion to the count (time-sharing a smaller cluster / independent copies of the
  largest one). Then::

      h100e(X, n, W) = m   such that   T_H100(m) = T_X(n)        (inverse of the H100 curve)

  Because X and the H100 use the same interpolation rule, ``n`` H100s are exactly ``n``
  H100-equivalents, on and off the grid (up to float rounding, ~1e-15 relative).
  The inversion is a piecewise-linear function of the curve values, so gradients with
  respect to the curves (and, via the chain rule, to chip specs) are exact where the
  interpolation is differentiable.

* **Budget equivalence**: ``n = budget_usd / allin_price_usd(X)`` chips, then
  ``h100e(X, n, W)``. The pure-price version is ``budget_usd / allin_price_usd(H100)``.
* **Power equivalence**: ``n = power_w / (pue * allin_power_w(X))`` chips, then
  ``h100e(X, n, W)``. ``allin_power_w`` is IT power per chip including host, network and
  storage; the PUE adds cooling and power-conversion overhead at the site.
* **Independent clusters** running independent jobs: the H100e of the collection is the
  *sum* of the clusters' separate H100e (:func:`fleet_equivalence`). A single job spread
  over them is a different (smaller or equal) quantity and is not what this measures.
* **Inference in the loop** (AI4/HW3 computers, int8, forward only): the H100s that would
  deliver the same forward-only throughput on the (video) workload at int8
  (:func:`inference_equivalence`).

Ranges: ``low`` combines pessimistic performance (catalog ``low`` pick) with the high
price, high all-in power and high PUE; ``high`` the opposite. The H100 reference curve is
always at ``best`` figures, so identity holds in every scenario.

Bound (tested in tests/test_equivalence.py). In the training model every step-time term
is either a compute time ``F / peak``, a memory time ``B / bandwidth`` (SRAM or DRAM), a
communication time ``bytes / link bandwidth`` or a latency/overhead that does not depend
on the chip's rates; the max over layouts and the smooth max preserve the inequality
below. Hence, for a chip X with the same memory *capacities* as the H100 (so the same
feasible layouts and memory-level choices) and rate ratios ``r_i = rate_X / rate_H100``::

      T_X(n) <= c * T_H100(n),   c = max(1, r_flops, r_sram_bw, r_dram_bw, r_scaleup, r_scaleout)

so ``h100e(X, n) <= T_H100^{-1}(c * T_H100(n))``, which is ``c * n`` where the H100 scales
linearly; relative to spec-sheet equivalence ``n * r_flops`` this is
``h100e / spec_h100e <= c / r_flops``: workload equivalence exceeds spec-sheet equivalence
only by the factor a faster memory or network explains. Chips with more memory (other
layouts fit) or a larger SRAM (ops become SRAM-resident, e.g. Dojo) can exceed it; the
reports show that excess as ``bound_excess``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from perfmodel.hardware import PICKS, PRECISION_INDEX, Catalog, Chip, load_catalog

REFERENCE_CHIP = "h100_sxm"
REFERENCE_SYSTEM = "dgx_h100"

#: Geometric grid of chip counts: 2^k and 3 * 2^k from 1 to 262,144 (37 points). Counts
#: of this form factor well into data x tensor x pipeline layouts.
DEFAULT_GRID: tuple[int, ...] = tuple(
    sorted({2**k for k in range(19)} | {3 * 2**k for k in range(17)})
)

#: Strictly-increasing slope (in log-log) added to monotone curves so they invert uniquely.
MONO_EPS = 1e-9

#: "job": one job spans all n chips (its global batch fixed by the workload preset);
#: "capacity": n chips may run independent copies of the job on smaller slices
#: (``T_eff(n) = n max_{k<=n} T(k)/k``), the fleet-capacity view.
MODES = ("job", "capacity")

#: Default site PUE (facility power / IT power): an ESTIMATE for a modern AI hall.
#: Sources: Uptime Institute Global Data Center Survey 2023 (industry average ~1.58);
#: Google fleet trailing-twelve-month PUE ~1.10 (2023 environmental report). Liquid-cooled
#: AI halls sit near 1.1-1.2, air-cooled near 1.3-1.5. Range used for low/high: 1.1-1.5.
DEFAULT_PUE = 1.3
PUE_RANGE = (1.1, 1.5)
PUE_SOURCE = (
    "ESTIMATE: default 1.3 (range 1.1-1.5); Uptime Institute Global Data Center "
    "Survey 2023 average ~1.58, Google fleet TTM PUE ~1.10 (2023)"
)

MONEY_UNITS: dict[str, float] = {"usd": 1.0, "kusd": 1e3, "musd": 1e6, "busd": 1e9}
POWER_UNITS: dict[str, float] = {"w": 1.0, "kw": 1e3, "mw": 1e6, "gw": 1e9}


def to_usd(value: float, unit: str = "usd") -> float:
    """``value`` in ``unit`` (usd, kusd, musd, busd) converted to USD."""
    u = unit.lower()
    if u not in MONEY_UNITS:
        raise ValueError(f"money unit {unit!r} must be one of {sorted(MONEY_UNITS)}")
    return float(value) * MONEY_UNITS[u]


def to_w(value: float, unit: str = "w") -> float:
    """``value`` in ``unit`` (w, kw, mw, gw) converted to W."""
    u = unit.lower()
    if u not in POWER_UNITS:
        raise ValueError(f"power unit {unit!r} must be one of {sorted(POWER_UNITS)}")
    return float(value) * POWER_UNITS[u]


# --------------------------------------------------------------------------------------
# Pure core: monotone log-log scaling curves and their inversion (jit/vmap/grad-able)
# --------------------------------------------------------------------------------------


@flax.struct.dataclass
class ScalingCurve:
    """A monotone throughput-vs-count curve in log-log form.

    Attributes:
      log_counts: ``log(n)`` on the grid, strictly increasing, shape ``(k,)``.
      log_throughput: ``log(T)`` (T in work units/s), strictly increasing, shape ``(k,)``.
    """

    log_counts: jnp.ndarray
    log_throughput: jnp.ndarray


def make_curve(counts, throughput, capacity: bool = False) -> ScalingCurve:
    """Build a :class:`ScalingCurve` from raw model throughputs on a grid.

    Steps: (1) counts where the job does not fit (throughput <= 0 or NaN) before the first
    feasible count get the first feasible throughput scaled in proportion to the count;
    (2) running maximum (a bigger cluster can idle chips); (3) add ``MONO_EPS * log n`` so
    the curve is strictly increasing and invertible.

    With ``capacity=True`` step (2) is instead a running maximum of the *per-chip*
    throughput: ``T_eff(n) = n * max_{k <= n} T(k) / k`` -- ``n`` chips may run independent
    copies of the job on ``k``-chip slices (capacity of a fleet that runs many jobs, the
    view behind fleet-level "H100-equivalent" statements).

    Args:
      counts: chip counts, strictly increasing, shape ``(k,)``.
      throughput: model throughput at each count (work units/s), shape ``(k,)``; at least
        one must be positive.

    Returns:
      The monotone curve. Differentiable in ``throughput`` (the running max routes the
      gradient to the point that sets it).
    """
    log_n = jnp.log(jnp.asarray(counts, dtype=float))
    t = jnp.asarray(throughput, dtype=float)
    ok = jnp.isfinite(t) & (t > 0)
    first = jnp.argmax(ok)
    log_t = jnp.log(jnp.where(ok, t, 1.0))
    fill = log_t[first] + (log_n - log_n[first])
    log_t = jnp.where(ok, log_t, jnp.where(jnp.arange(t.shape[0]) < first, fill, -jnp.inf))
    if capacity:
        log_t = jax.lax.cummax(log_t - log_n) + log_n
    else:
        log_t = jax.lax.cummax(log_t)
    return ScalingCurve(log_n, log_t + MONO_EPS * (log_n - log_n[0]))


def _pwl(x, xp, fp):
    """Piecewise-linear interpolation of ``fp(xp)`` at ``x`` with slope-1 extrapolation
    at both ends (``xp`` strictly increasing)."""
    k = xp.shape[0]
    i = jnp.clip(jnp.searchsorted(xp, x, side="right") - 1, 0, k - 2)
    x0, x1, f0, f1 = xp[i], xp[i + 1], fp[i], fp[i + 1]
    inside = f0 + (x - x0) * (f1 - f0) / (x1 - x0)
    below = fp[0] + (x - xp[0])
    above = fp[-1] + (x - xp[-1])
    return jnp.where(x < xp[0], below, jnp.where(x > xp[-1], above, inside))


def curve_throughput(curve: ScalingCurve, n):
    """Throughput (work units/s) of ``n`` chips on ``curve`` (log-log interpolation)."""
    n = jnp.asarray(n, dtype=float)
    return jnp.exp(_pwl(jnp.log(n), curve.log_counts, curve.log_throughput))


def curve_count(curve: ScalingCurve, throughput):
    """Inverse of :func:`curve_throughput`: the (fractional) count delivering
    ``throughput`` (work units/s)."""
    y = jnp.log(jnp.asarray(throughput, dtype=float))
    return jnp.exp(_pwl(y, curve.log_throughput, curve.log_counts))


def curve_slope(curve: ScalingCurve, n):
    """Local scaling exponent ``d log T / d log n`` of ``curve`` at ``n`` (1 = linear
    scaling; near 0 = adding chips barely helps, so inverting there is ill-conditioned)."""
    return jax.grad(lambda x: _pwl(x, curve.log_counts, curve.log_throughput))(
        jnp.log(jnp.asarray(n, dtype=float))
    )


def equivalent_count(x_curve: ScalingCurve, ref_curve: ScalingCurve, n):
    """``m = T_ref^{-1}(T_x(n))``: reference chips delivering what ``n`` chips of X do.

    Pure and jit/vmap/grad-able in ``n`` and in both curves."""
    return curve_count(ref_curve, curve_throughput(x_curve, n))


def bound_factor(chip: Chip, ref: Chip, precision: str = "bf16"):
    """``c = max(1, r_flops, r_sram_bw, r_dram_bw, r_scaleup, r_scaleout)``, the ratios of
    ``chip``'s rates to ``ref``'s: the most a chip with ``ref``'s memory capacities can
    out-run ``ref`` per chip on any workload in the model (see module docstring)."""
    i = PRECISION_INDEX[precision]
    ratios = jnp.stack(
        [
            chip.peak_flops_per_s[i] / ref.peak_flops_per_s[i],
            chip.mem_bytes_per_s[0] / ref.mem_bytes_per_s[0],
            chip.mem_bytes_per_s[1] / ref.mem_bytes_per_s[1],
            jnp.where(
                ref.scaleup_bytes_per_s > 0,
                chip.scaleup_bytes_per_s / jnp.maximum(ref.scaleup_bytes_per_s, 1e-300),
                1.0,
            ),
            jnp.where(
                ref.scaleout_bytes_per_s > 0,
                chip.scaleout_bytes_per_s / jnp.maximum(ref.scaleout_bytes_per_s, 1e-300),
                1.0,
            ),
        ]
    )
    return jnp.maximum(1.0, jnp.max(ratios))


# --------------------------------------------------------------------------------------
# Spec-sheet equivalence
# --------------------------------------------------------------------------------------


def _catalog(catalog: Catalog | None) -> Catalog:
    return load_catalog() if catalog is None else catalog


def _check_precision(precision: str) -> str:
    if precision not in PRECISION_INDEX:
        raise ValueError(f"precision {precision!r} must be one of {tuple(PRECISION_INDEX)}")
    return precision


def _check_pick(pick: str) -> str:
    if pick not in PICKS:
        raise ValueError(f"pick {pick!r} must be one of {PICKS}")
    return pick


def reference_chip(catalog: Catalog | None = None) -> Chip:
    """The H100 SXM at its ``best`` catalog figures."""
    return _catalog(catalog).chip(REFERENCE_CHIP, "best")


def spec_ratio(a: Chip, b: Chip, precision: str = "bf16"):
    """``peak(a, precision) / peak(b, precision)`` (dense FLOP/s ratio, dimensionless)."""
    i = PRECISION_INDEX[_check_precision(precision)]
    return a.peak_flops_per_s[i] / b.peak_flops_per_s[i]


def spec_equivalence(
    chip: Chip | str, precision: str = "bf16", *, pick: str = "best", catalog: Catalog | None = None
):
    """Spec-sheet H100-equivalents of ONE chip: dense peak at ``precision`` / the H100's.

    Args:
      chip: a :class:`Chip` pytree (jit/grad-able) or a catalog key.
      precision: one of ``PRECISIONS``; a chip without that precision uses its fallback
        rate (see :data:`perfmodel.hardware.PRECISION_FALLBACK`).
      pick: catalog pick when ``chip`` is a key.

    Returns:
      Scalar array (dimensionless). Example: B200 (HGX) at bf16: 2250 / 989.4 = 2.274.
    """
    _check_precision(precision)
    cat = _catalog(catalog)
    if isinstance(chip, str):
        chip = cat.chip(chip, _check_pick(pick))
    if precision == "fp4":
        raise ValueError(
            "precision 'fp4' has no spec-sheet H100e: the H100 reference has no FP4 rate"
        )
    return spec_ratio(chip, reference_chip(cat), precision)


def spec_equivalence_range(
    chip_key: str, precision: str = "bf16", n_chips: float = 1.0, catalog: Catalog | None = None
) -> dict[str, float]:
    """Spec-sheet H100e of ``n_chips`` chips with the catalog low/best/high peak rates."""
    cat = _catalog(catalog)
    return {
        p: float(n_chips * spec_equivalence(cat.chip(chip_key, p), precision, catalog=cat))
        for p in PICKS
    }


# --------------------------------------------------------------------------------------
# Model curves (training model), cached
# --------------------------------------------------------------------------------------

CurveFn = Callable[..., Any]
"""``curve_fn(workload, chip_key, counts, *, precision, chip) -> throughput array`` with
the signature of :func:`perfmodel.training.throughput_curve`."""


def _training_curve(workload, chip_key, counts, *, precision=None, chip=None):
    from perfmodel.training import throughput_curve

    return throughput_curve(workload, chip_key, counts, precision=precision, chip=chip)


def _training_inference_curve(workload, chip_key, counts, *, precision="int8", chip=None):
    from perfmodel.training import inference_throughput

    return np.array(
        [
            inference_throughput(workload, chip_key, int(n), precision=precision, chip=chip)
            for n in counts
        ],
        dtype=float,
    )


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
        curve_fn(workload, chip_key, np.asarray(grid), precision=precision, chip=chip), dtype=float
    )
    if t.shape != (len(grid),):
        raise ValueError(
            f"throughput curve for {chip_key} has shape {t.shape}, expected ({len(grid)},)"
        )
    if not np.any(np.isfinite(t) & (t > 0)):
        raise ValueError(
            f"workload {_workload_name(workload)!r} does not fit on any count of "
            f"{chip_key} up to {grid[-1]} chips (throughput is 0 everywhere)"
        )
    return t


def _cached_raw_curve(cat, chip_key, workload, precision, pick, grid, curve_fn):
    try:
        key = (id(cat), chip_key, workload, precision, pick, grid, curve_fn)
        hash(key)
    except TypeError:  # unhashable workload object: no caching
        return _raw_curve(cat, chip_key, workload, precision, pick, grid, curve_fn)
    hit = _CURVE_CACHE.get(key)
    if hit is None or hit[0] is not cat:
        if len(_CURVE_CACHE) >= _CURVE_CACHE_MAX:
            _CURVE_CACHE.clear()
        hit = (cat, _raw_curve(cat, chip_key, workload, precision, pick, grid, curve_fn))
        _CURVE_CACHE[key] = hit
    return hit[1]


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


def _check_count(name: str, n) -> np.ndarray:
    a = np.asarray(n, dtype=float)
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise ValueError(f"{name} = {n!r} must be finite and > 0")
    return a


# --------------------------------------------------------------------------------------
# Workload equivalence (contract API)
# --------------------------------------------------------------------------------------


def workload_equivalence(
    chip_key: str,
    n_chips: float,
    workload,
    *,
    precision: str | None = None,
    pick: str = "best",
    curve_fn: CurveFn | None = None,
    grid: Sequence[int] = DEFAULT_GRID,
    mode: str = "job",
    catalog: Catalog | None = None,
) -> float:
    """H100 count with the same throughput on ``workload`` as ``n_chips`` of ``chip_key``.

    Args:
      chip_key: catalog chip key or alias.
      n_chips: number of chips (> 0; fractional counts interpolate).
      workload: preset name (see :data:`perfmodel.workloads.WORKLOAD_NAMES`) or Workload.
      precision: compute precision (None: the workload's default).
      pick: catalog pick for chip X (the H100 reference is always ``best``).

    Returns:
      H100-equivalents (float). ``workload_equivalence("h100", n, W) == n``.
    """
    n = _check_count("n_chips", n_chips)
    x = model_curve(
        chip_key,
        workload,
        precision=precision,
        pick=pick,
        grid=grid,
        mode=mode,
        curve_fn=curve_fn,
        catalog=catalog,
    )
    h = model_curve(
        REFERENCE_CHIP,
        workload,
        precision=precision,
        pick="best",
        grid=grid,
        mode=mode,
        curve_fn=curve_fn,
        catalog=catalog,
    )
    return float(_equiv_jit(x, h, n))


_equiv_jit = jax.jit(equivalent_count)
_equiv_vec = jax.jit(jax.vmap(equivalent_count, in_axes=(None, None, 0)))


def h100e_curve(
    chip_key: str,
    workload,
    counts,
    *,
    precision: str | None = None,
    pick: str = "best",
    curve_fn: CurveFn | None = None,
    grid: Sequence[int] = DEFAULT_GRID,
    mode: str = "job",
    catalog: Catalog | None = None,
) -> np.ndarray:
    """H100-equivalents delivered by ``n`` chips of ``chip_key``, for each ``n`` in
    ``counts`` (one vectorised call; curves cached)."""
    c = _check_count("counts", counts).reshape(-1)
    x = model_curve(
        chip_key,
        workload,
        precision=precision,
        pick=pick,
        grid=grid,
        mode=mode,
        curve_fn=curve_fn,
        catalog=catalog,
    )
    h = model_curve(
        REFERENCE_CHIP,
        workload,
        precision=precision,
        pick="best",
        grid=grid,
        mode=mode,
        curve_fn=curve_fn,
        catalog=catalog,
    )
    return np.asarray(_equiv_vec(x, h, jnp.asarray(c)))


def chips_for_h100e(
    chip_key: str,
    h100e: float,
    workload,
    *,
    precision: str | None = None,
    pick: str = "best",
    curve_fn: CurveFn | None = None,
    grid: Sequence[int] = DEFAULT_GRID,
    mode: str = "job",
    catalog: Catalog | None = None,
) -> float:
    """Inverse of :func:`workload_equivalence`: chips of ``chip_key`` needed to match
    ``h100e`` H100s on ``workload`` (fractional)."""
    m = _check_count("h100e", h100e)
    x = model_curve(
        chip_key,
        workload,
        precision=precision,
        pick=pick,
        grid=grid,
        mode=mode,
        curve_fn=curve_fn,
        catalog=catalog,
    )
    h = model_curve(
        REFERENCE_CHIP,
        workload,
        precision=precision,
        pick="best",
        grid=grid,
        mode=mode,
        curve_fn=curve_fn,
        catalog=catalog,
    )
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
    h = model_curve(
        REFERENCE_CHIP,
        workload,
        precision=precision,
        grid=grid,
        curve_fn=fn,
        mode=mode,
        catalog=cat,
    )
    x = model_curve(
        key, workload, precision=precision, grid=grid, curve_fn=fn, catalog=cat, mode=mode
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
                fn(workload, key, np.asarray(grid), precision=precision, chip=c), dtype=float
            )
            dl.append(
                make_curve(np.asarray(grid, float), t, capacity=(mode == "capacity")).log_throughput
            )
        dlogt = (dl[0] - dl[1]) / (2 * math.log(1 + rel_step))
        out[f] = float(jnp.dot(g_logt, dlogt) / m0)
    return out


# --------------------------------------------------------------------------------------
# Results with ranges and assumptions
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class EquivResult:
    """An H100-equivalent with its range and the assumptions it rests on."""

    kind: str
    h100e: float
    h100e_low: float
    h100e_high: float
    assumptions: dict

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "h100e": self.h100e,
            "h100e_low": self.h100e_low,
            "h100e_high": self.h100e_high,
            "assumptions": self.assumptions,
        }


def _fig(cat: Catalog, key: str, field: str) -> dict:
    rec = cat.record(key)
    f = rec.figure(field)
    if f is None:
        return {"best": None, "low": None, "high": None, "source": "not in catalog"}
    return {
        "best": f.best,
        "low": f.low,
        "high": f.high,
        "source": f.source,
        "confidence": f.confidence,
    }


def _chip_value(cat: Catalog, key: str, field: str, pick: str) -> float:
    chip = cat.chip(key, pick)
    v = float(getattr(chip, field))
    if v <= 0:
        raise ValueError(
            f"chip '{key}' has no {field} in the catalog (needed for this "
            "equivalence); add it or pass it explicitly"
        )
    return v


def _precision_of(workload, precision):
    if precision is not None:
        return precision
    p = getattr(workload, "precision", None)
    if isinstance(p, str):
        return p
    if isinstance(workload, str):
        try:
            from perfmodel.workloads import get_workload

            p = getattr(get_workload(workload), "precision", None)
            if isinstance(p, str):
                return p
        except Exception:  # noqa: BLE001 - workloads module may be absent or name unknown
            pass
    return None


def _diagnostics(cat, chip_key, n, m, workload, precision, grid, mode, curve_fn) -> dict:
    """Local scaling exponents at the answer: where the H100 curve is nearly flat (the
    job's fixed global batch stops H100 scaling) the inversion is ill-conditioned."""
    kw: dict[str, Any] = dict(
        precision=precision,
        grid=grid,
        mode=mode,
        catalog=cat,
        curve_fn=_training_curve if curve_fn is None else curve_fn,
    )
    h = model_curve(REFERENCE_CHIP, workload, **kw)
    x = model_curve(chip_key, workload, **kw)
    sh, sx = float(curve_slope(h, m)), float(curve_slope(x, n))
    c = float(
        bound_factor(
            cat.chip(chip_key), reference_chip(cat), _precision_of(workload, precision) or "bf16"
        )
    )
    bound = float(curve_count(h, c * curve_throughput(h, n)))
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
    chip_key: str,
    n_chips: float,
    workload,
    *,
    precision: str | None = None,
    curve_fn: CurveFn | None = None,
    grid: Sequence[int] = DEFAULT_GRID,
    mode: str = "job",
    catalog: Catalog | None = None,
) -> EquivResult:
    """:func:`workload_equivalence` at the low/best/high picks, with assumptions."""
    cat = _catalog(catalog)
    n = float(_check_count("n_chips", n_chips))
    prec = _precision_of(workload, precision)
    v = {
        p: workload_equivalence(
            chip_key,
            n,
            workload,
            precision=precision,
            pick=p,
            curve_fn=curve_fn,
            grid=grid,
            mode=mode,
            catalog=cat,
        )
        for p in PICKS
    }
    a = _base_assumptions(cat, chip_key, n, workload, prec, grid, mode)
    a.update(_diagnostics(cat, chip_key, n, v["best"], workload, precision, grid, mode, curve_fn))
    sp = spec_equivalence_range(chip_key, prec or "bf16", n, cat)
    a["spec_h100e"] = sp["best"]
    a["spec_precision"] = prec or "bf16"
    return EquivResult("workload", v["best"], min(v.values()), max(v.values()), a)


def spec_result(
    chip_key: str, n_chips: float, precision: str = "bf16", catalog: Catalog | None = None
) -> EquivResult:
    """Spec-sheet H100e of ``n_chips`` with its low/best/high range and assumptions."""
    cat = _catalog(catalog)
    n = float(_check_count("n_chips", n_chips))
    r = spec_equivalence_range(chip_key, _check_precision(precision), n, cat)
    rec = cat.record(chip_key)
    fb = rec.fallbacks().get(precision)
    a = {
        "chip": rec.key,
        "chip_name": rec.display_name,
        "n_chips": n,
        "workload": "none (peak)",
        "precision": precision
        + (f" (chip has no {precision}; runs it at its {fb} rate)" if fb else ""),
        "reference": f"{REFERENCE_CHIP} dense peak at {precision}",
        "scale": "per chip times n; no scaling losses",
        "sources": {
            "chip": _fig(cat, rec.key, _prec_key(precision, rec)),
            "h100": _fig(cat, REFERENCE_CHIP, _prec_key(precision, cat.record(REFERENCE_CHIP))),
        },
    }
    return EquivResult("spec", r["best"], r["low"], r["high"], a)


def _prec_key(precision: str, rec) -> str:
    from perfmodel.hardware import PRECISION_FALLBACK, PRECISION_KEYS

    for q in PRECISION_FALLBACK[precision]:
        if PRECISION_KEYS[q] in rec.figures:
            return PRECISION_KEYS[q]
    return PRECISION_KEYS[precision]


def h100_count_for_budget(
    budget_usd: float, price_usd: float | None = None, catalog: Catalog | None = None
) -> EquivResult:
    """Pure-price equivalence: H100s a budget buys at the all-in H100 price
    (``budget_usd / allin_price_usd``). Linear in the budget; the range comes from the
    catalog's all-in price range (or is a point if ``price_usd`` is given)."""
    b = float(_check_count("budget_usd", budget_usd))
    cat = _catalog(catalog)
    if price_usd is not None:
        p = float(_check_count("price_usd", price_usd))
        lo = hi = best = p
        src = "given"
    else:
        f = _fig(cat, REFERENCE_CHIP, "allin_price_usd")
        lo, best, hi, src = f["low"], f["best"], f["high"], f["source"]
    return EquivResult(
        "price",
        b / best,
        b / hi,
        b / lo,
        {
            "budget_usd": b,
            "h100_allin_price_usd": {"low": lo, "best": best, "high": hi},
            "workload": "none (price only)",
            "precision": "n/a",
            "scale": "linear in budget",
            "sources": {"h100_allin_price_usd": src},
        },
    )


def budget_equivalence(
    budget_usd: float,
    chip_key: str,
    workload,
    *,
    precision: str | None = None,
    pick: str = "best",
    curve_fn: CurveFn | None = None,
    grid: Sequence[int] = DEFAULT_GRID,
    mode: str = "job",
    catalog: Catalog | None = None,
) -> float:
    """H100e on ``workload`` of the chips ``budget_usd`` buys at ``chip_key``'s all-in
    price: ``h100e(X, budget / allin_price_usd(X))``. ``pick`` applies to performance;
    price is taken at the opposite end (low perf <-> high price).

    What holds (tested): exactly linear in the budget for X = H100 (identity); monotone
    non-decreasing in the budget for any X; exactly linear once both X and the H100 are past
    the top of the grid (proportional extrapolation), and in capacity mode once both curves
    have reached their best per-chip slice. It is NOT concave in general: in job mode it
    grows faster than linearly where the H100 curve flattens (fixed global batch)."""
    b = float(_check_count("budget_usd", budget_usd))
    cat = _catalog(catalog)
    price_pick = {"low": "high", "best": "best", "high": "low"}[_check_pick(pick)]
    n = b / _chip_value(cat, chip_key, "allin_price_usd", price_pick)
    return workload_equivalence(
        chip_key,
        n,
        workload,
        precision=precision,
        pick=pick,
        curve_fn=curve_fn,
        grid=grid,
        mode=mode,
        catalog=cat,
    )


def budget_equivalence_range(budget_usd: float, chip_key: str, workload, **kw) -> EquivResult:
    """:func:`budget_equivalence` at low/best/high, with assumptions."""
    cat = _catalog(kw.pop("catalog", None))
    b = float(_check_count("budget_usd", budget_usd))
    v = {p: budget_equivalence(b, chip_key, workload, pick=p, catalog=cat, **kw) for p in PICKS}
    price = _fig(cat, chip_key, "allin_price_usd")
    n = b / _chip_value(cat, chip_key, "allin_price_usd", "best")
    a = _base_assumptions(
        cat,
        chip_key,
        n,
        workload,
        _precision_of(workload, kw.get("precision")),
        tuple(kw.get("grid", DEFAULT_GRID)),
        kw.get("mode", "job"),
    )
    a.update(
        _diagnostics(
            cat,
            chip_key,
            n,
            v["best"],
            workload,
            kw.get("precision"),
            tuple(kw.get("grid", DEFAULT_GRID)),
            kw.get("mode", "job"),
            kw.get("curve_fn"),
        )
    )
    a.update(
        {
            "budget_usd": b,
            "allin_price_usd": price,
            "n_chips_range": {"low": b / price["high"], "best": n, "high": b / price["low"]},
            "pure_price_h100e": h100_count_for_budget(b, catalog=cat).h100e,
        }
    )
    return EquivResult("budget", v["best"], min(v.values()), max(v.values()), a)


def chips_for_power(power_w: float, allin_power_w: float, pue: float = DEFAULT_PUE) -> float:
    """Chips a site hosts: ``power_w / (pue * allin_power_w)`` (W, W, dimensionless)."""
    _check_count("power_w", power_w)
    _check_count("allin_power_w", allin_power_w)
    if not (1.0 <= float(pue) <= 3.0):
        raise ValueError(f"pue = {pue!r} must be in [1, 3]")
    return float(power_w) / (float(pue) * float(allin_power_w))


def power_equivalence(
    power_w: float,
    chip_key: str,
    workload,
    pue: float | None = None,
    *,
    precision: str | None = None,
    pick: str = "best",
    curve_fn: CurveFn | None = None,
    grid: Sequence[int] = DEFAULT_GRID,
    mode: str = "job",
    catalog: Catalog | None = None,
) -> float:
    """H100e on ``workload`` of the ``chip_key`` chips a site of ``power_w`` (W, at the
    meter) hosts: ``h100e(X, power_w / (pue * allin_power_w(X)))``. ``pue`` None: the
    default (1.3) for best and the range end opposite to performance for low/high."""
    cat = _catalog(catalog)
    opp = {"low": "high", "best": "best", "high": "low"}[_check_pick(pick)]
    if pue is None:
        pue = {"low": PUE_RANGE[1], "best": DEFAULT_PUE, "high": PUE_RANGE[0]}[pick]
    n = chips_for_power(power_w, _chip_value(cat, chip_key, "allin_power_w", opp), pue)
    return workload_equivalence(
        chip_key,
        n,
        workload,
        precision=precision,
        pick=pick,
        curve_fn=curve_fn,
        grid=grid,
        mode=mode,
        catalog=cat,
    )


def power_equivalence_range(
    power_w: float, chip_key: str, workload, pue: float | None = None, **kw
) -> EquivResult:
    """:func:`power_equivalence` at low/best/high, with assumptions."""
    cat = _catalog(kw.pop("catalog", None))
    v = {
        p: power_equivalence(power_w, chip_key, workload, pue, pick=p, catalog=cat, **kw)
        for p in PICKS
    }
    pw = _fig(cat, chip_key, "allin_power_w")
    pue_best = DEFAULT_PUE if pue is None else pue
    n = chips_for_power(power_w, _chip_value(cat, chip_key, "allin_power_w", "best"), pue_best)
    a = _base_assumptions(
        cat,
        chip_key,
        n,
        workload,
        _precision_of(workload, kw.get("precision")),
        tuple(kw.get("grid", DEFAULT_GRID)),
        kw.get("mode", "job"),
    )
    a.update(
        _diagnostics(
            cat,
            chip_key,
            n,
            v["best"],
            workload,
            kw.get("precision"),
            tuple(kw.get("grid", DEFAULT_GRID)),
            kw.get("mode", "job"),
            kw.get("curve_fn"),
        )
    )
    a.update(
        {
            "power_w": float(power_w),
            "allin_power_w": pw,
            "pue": pue_best
            if pue is not None
            else {"low": PUE_RANGE[1], "best": DEFAULT_PUE, "high": PUE_RANGE[0]},
            "pue_source": "given" if pue is not None else PUE_SOURCE,
            "n_chips_best": n,
        }
    )
    return EquivResult("power", v["best"], min(v.values()), max(v.values()), a)


# --------------------------------------------------------------------------------------
# Inference in the training loop (AI4 / HW3)
# --------------------------------------------------------------------------------------


def inference_equivalence(
    chip_key: str,
    n_chips: float,
    workload="video-driving",
    *,
    precision: str = "int8",
    pick: str = "best",
    curve_fn: CurveFn | None = None,
    grid: Sequence[int] = DEFAULT_GRID,
    mode: str = "capacity",
    catalog: Catalog | None = None,
) -> float:
    """H100s that deliver the same forward-only (inference) throughput on ``workload`` at
    ``precision`` as ``n_chips`` of ``chip_key``. This is how FSD computers (AI4, HW3) used
    in the training loop (simulation, closed-loop evaluation, auto-labelling) count: their
    work is forward passes, so they are compared on forward passes, not on training.
    Default ``mode="capacity"``: in-the-loop inference is many independent forward passes.
    ``curve_fn`` defaults to :func:`perfmodel.training.inference_throughput` per count."""
    n = _check_count("n_chips", n_chips)
    fn = _training_inference_curve if curve_fn is None else curve_fn
    x = model_curve(
        chip_key,
        workload,
        precision=precision,
        pick=pick,
        grid=grid,
        mode=mode,
        curve_fn=fn,
        catalog=catalog,
    )
    h = model_curve(
        REFERENCE_CHIP,
        workload,
        precision=precision,
        pick="best",
        grid=grid,
        mode=mode,
        curve_fn=fn,
        catalog=catalog,
    )
    return float(_equiv_jit(x, h, n))


def inference_equivalence_range(
    chip_key: str, n_chips: float, workload="video-driving", *, precision: str = "int8", **kw
) -> EquivResult:
    """:func:`inference_equivalence` at low/best/high, with the int8 spec-sheet ratio."""
    cat = _catalog(kw.pop("catalog", None))
    n = float(_check_count("n_chips", n_chips))
    v = {
        p: inference_equivalence(
            chip_key, n, workload, precision=precision, pick=p, catalog=cat, **kw
        )
        for p in PICKS
    }
    a = _base_assumptions(
        cat,
        chip_key,
        n,
        workload,
        precision,
        tuple(kw.get("grid", DEFAULT_GRID)),
        kw.get("mode", "capacity"),
    )
    a["measure"] = "forward-only (inference) throughput, H100 also at " + precision
    a["spec_h100e"] = spec_equivalence_range(chip_key, precision, n, cat)
    return EquivResult("inference", v["best"], min(v.values()), max(v.values()), a)
