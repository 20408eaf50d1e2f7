"""One chip's value curve on one workload and its tangent in a chip spec, for
:mod:`perfmodel.fleet.sensitivity.spec`: the parsed ``CHIP.FIELD`` target, the spec's
value in a Chip pytree, the raw best-layout rates, the counts that set the curve, the
best layouts there and their :func:`jax.jvp` tangents, and the hull's vertices and ties
(each step is described in :mod:`perfmodel.fleet.sensitivity.spec`)."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from perfmodel import workloads as wl
from perfmodel.equivalence import DEFAULT_GRID, curve_throughput, make_curve
from perfmodel.errors import InputError
from perfmodel.fleet.curves import (
    _evaluate_units,
    _layout_rows,
    _needed,
    _upper_rates,
    best_rates,
    concave_hull,
)
from perfmodel.training import (
    LAYOUT_FIELDS,
    Layout,
    _max_tp,
    default_efficiency,
    get_network,
    step_time,
)


@dataclasses.dataclass(frozen=True)
class SpecTarget:
    """A parsed ``CHIP.FIELD``: catalog chip key, catalog field, Chip leaf and index,
    natural unit and its size in SI units, and the scenario offers that use the chip."""

    text: str
    chip: str
    field: str
    leaf: str
    index: int | None
    unit: str
    unit_si: float
    offers: tuple[int, ...]


def _spec_value(chip_pytree, t: SpecTarget) -> float:
    v = np.asarray(getattr(chip_pytree, t.leaf), np.float64)
    return float(v if t.index is None else v[t.index])


def _with_spec(chip_pytree, t: SpecTarget, value):
    """The Chip with the target leaf (element) set to ``value`` (traceable)."""
    import jax.numpy as jnp

    old = jnp.asarray(getattr(chip_pytree, t.leaf))
    new = value if t.index is None else old.at[t.index].set(value)
    return dataclasses.replace(chip_pytree, **{t.leaf: jnp.asarray(new, old.dtype)})


# --------------------------------------------------------------------------------------
# One chip's value curve on one workload, its best layouts and its tangent
# --------------------------------------------------------------------------------------


def _model_inputs(chip_key: str, workload: str, pick: str, cat):
    """(workload, chip pytree, network, efficiency) exactly as the value curves use them."""

    w = wl.get_workload(workload).with_precision(None)
    w = dataclasses.replace(w, name="", family="")
    chip = dataclasses.replace(cat.chip(chip_key, pick), name="")
    return w, chip, get_network(chip_key, cat), default_efficiency()


def _grid_k(max_count: float) -> int:

    return _needed(max_count, DEFAULT_GRID)


def _raw_rates(w, chip, net, eff, k: int, mode: str, name: str) -> np.ndarray:
    """The training model's best-layout throughput at the first ``k`` grid counts (and on
    to the first count that fits, as :mod:`perfmodel.fleet.curves` does)."""

    grid = np.asarray(DEFAULT_GRID, np.float64)
    raw = best_rates(w, chip, net, eff, grid[:k], mode, name)
    if not np.any(raw > 0) and k < len(grid):
        raw = np.concatenate([raw, best_rates(w, chip, net, eff, grid[k:], mode, name)])
        k = int(np.argmax(raw > 0)) + 1 if np.any(raw > 0) else len(grid)
        raw = raw[:k]
    if not np.any(raw > 0):
        raise InputError(f"the training model cannot value {chip.name or 'the chip'} on {name}")
    return raw


def _setting_counts(raw: np.ndarray, mode: str) -> list[int]:
    """Grid indices whose throughput the curve reads (:func:`make_curve`): the first
    count that fits (its fill below) and every count that sets or ties the running
    maximum (per chip in ``capacity`` mode) at some count. The others lie below it and
    carry no derivative."""

    ok = raw > 0
    per = raw / np.asarray(DEFAULT_GRID[: len(raw)], np.float64) if mode == "capacity" else raw
    per = np.where(ok, per, -np.inf)
    keep = {int(np.argmax(ok))}
    for j in range(len(raw)):
        top = float(np.max(per[: j + 1]))
        if np.isfinite(top):
            keep |= {int(i) for i in np.flatnonzero(per[: j + 1] >= top * (1 - 1e-9))}
    return sorted(keep)


def _best_layouts(w, chip, net, eff, raw: np.ndarray, name: str, mode: str):
    """For each grid count of :func:`_setting_counts`: the rows (layout fields) of the count's best
    layouts (every one within 1e-9 of the best: ties). Returns ``[(count index, rows
    [m, F])]``."""

    mt = _max_tp(net)
    out = []
    for i in _setting_counts(raw, mode):
        r = float(raw[i])
        n = int(DEFAULT_GRID[i])
        rows = _layout_rows(w, n, mt, name)
        ub = _upper_rates(w, chip, net, eff, rows)
        cand = rows[ub >= r * (1 - 1e-7)]
        units = _evaluate_units(w, chip, net, eff, cand, np.full(len(cand), float(n)))
        best = float(units.max())
        # the pruned search is exact where a count can raise the curve; elsewhere it may
        # stop below the count's best, which then cannot raise the curve either
        if best < r * (1 - 1e-9):
            raise RuntimeError(f"best layout at {n} chips: {best} < {r} (search mismatch)")
        out.append((i, cand[units >= best * (1 - 1e-9)]))
    return out


#: Layout rows per tangent call (padded with copies: one compiled program per workload
#: structure).
_TANGENT_ROWS = 64


@functools.cache
def _tangent_fn():
    """jit(value, w, chip, net, eff, lay, ns) -> (units_per_s, d units_per_s / d value)."""
    import jax
    import jax.numpy as jnp

    def rates(w, chip, net, eff, lay, ns):
        per = jax.vmap(step_time, in_axes=(None, None, None, 0, 0, None))
        return per(w, chip, net, lay, ns, eff).units_per_s

    @functools.partial(jax.jit, static_argnames=("leaf", "index"))
    def f(value, w, chip, net, eff, lay, ns, leaf, index):
        def g(v):
            old = getattr(chip, leaf)
            new = v if index is None else old.at[index].set(v)
            return rates(w, dataclasses.replace(chip, **{leaf: new}), net, eff, lay, ns)

        return jax.jvp(g, (value,), (jnp.ones_like(value),))

    return f


def _layout_tangents(w, chip, net, eff, t: SpecTarget, layouts):
    """d units_per_s / d spec at every tied best layout: ``[(i, rate, [tangents])]``."""
    import jax.numpy as jnp

    rows = np.concatenate([r for _, r in layouts])
    which = np.concatenate([[i] * len(r) for i, r in layouts])
    ns = np.asarray(DEFAULT_GRID, np.float64)[which]
    m = len(rows)
    size = _TANGENT_ROWS * max(1, -(-m // _TANGENT_ROWS))
    pad_rows = np.concatenate([rows, np.repeat(rows[:1], size - m, axis=0)])
    pad_ns = np.concatenate([ns, np.repeat(ns[:1], size - m)])
    lay = Layout(**{f: jnp.asarray(pad_rows[:, j]) for j, f in enumerate(LAYOUT_FIELDS)})
    v0 = jnp.asarray(_spec_value(chip, t))
    rate, tan = _tangent_fn()(v0, w, chip, net, eff, lay, jnp.asarray(pad_ns), t.leaf, t.index)
    rate, tan = np.asarray(rate)[:m], np.asarray(tan)[:m]
    out = []
    for i, _ in layouts:
        m = which == i
        out.append((i, float(rate[m].max()), tan[m], rows[m]))
    return out


def _curve_values_and_tangent(raw, draw, xs, mode: str):
    """``(V(xs), dV/ds (xs))`` of :func:`perfmodel.equivalence.make_curve` read at ``xs``
    by :func:`~perfmodel.equivalence.curve_throughput` (work units/s), forward mode."""
    import jax
    import jax.numpy as jnp

    grid = jnp.asarray(DEFAULT_GRID[: len(raw)], jnp.float64)
    xq = jnp.asarray(xs, jnp.float64)

    def v(r):
        return curve_throughput(make_curve(grid, r, capacity=(mode == "capacity")), xq)

    val, tan = jax.jvp(v, (jnp.asarray(raw, jnp.float64),), (jnp.asarray(draw, jnp.float64),))
    return np.asarray(val), np.asarray(tan)


def _hull_vertices(xs: np.ndarray, ys: np.ndarray) -> tuple[list[int], np.ndarray]:
    """Vertices of the least concave majorant (as
    :func:`perfmodel.fleet.curves.concave_interpolant`) and which dropped points lie on
    the hull's chord (within 1e-9: a tie, a kink of the hull where their derivatives
    differ from the chord's)."""
    hull = concave_hull(xs, ys)
    on = np.interp(xs, xs[hull], ys[hull])
    tie = np.abs(on - ys) <= 1e-9 * max(1.0, float(np.max(ys)))
    tie[hull] = False
    return hull, tie
