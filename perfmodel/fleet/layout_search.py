"""The pruned best-layout search behind the value curves (:mod:`perfmodel.fleet.curves`).

:func:`best_rates` is the training model's best-layout throughput at each of a list of
chip counts, exact wherever it can raise the monotone curve of
:func:`perfmodel.equivalence.make_curve` (the values are identical to the full search,
not approximated):

* **Exact pruning.** Every layout's step time is at least
  ``(m + (pp - 1) / vpp) x t_mb / pp + step overhead``, where ``t_mb`` is the per
  micro-batch compute plus TP, CP and EP communication of the same (micro-batch, tp, cp,
  sp, ep, expert-tp) layout on one pipeline stage without recompute (recompute, the
  pipeline's point-to-point traffic, the exposed DP traffic and the optimizer only add
  time). One model call per such key gives the bound of every layout
  (:func:`_upper_rates`); layouts are evaluated best bound first, and a layout whose
  bound cannot beat the best throughput found at that count (``job``), or n times the
  best per-chip throughput at any count up to it (``capacity``), is never evaluated.
* **Memory that cannot fit.** A layout whose weights, gradients and optimizer state
  alone exceed the chip's usable memory is never evaluated (activations only add):
  those bytes are one chip-independent model call per distinct (tp, pp, dp, cp, ep)
  and ZeRO stage (:meth:`_Grid.static_bytes`).
* **A factored grid.** Neither bound depends on the recompute mode, and the time bound
  not on the ZeRO stage, so the grid (:class:`_Grid`, one per preset, every tp) keeps
  one row per (tp, pp, dp, cp, mb, vpp, sp, ep) and crosses it with recompute x ZeRO
  only for the rows it evaluates.
* **Few compiled programs.** Every call of the model (:func:`_evaluate_units`,
  :func:`_evaluate_terms`: each its own program, computing only what it returns) is a
  fixed block of :data:`CHUNK` layouts, so one compiled program serves every chip,
  count and workload of the same structure (precision, gated FFN, causal, unit,
  attention).
"""

from __future__ import annotations

import time

import jax
import numpy as np

from perfmodel import workloads as wl
from perfmodel.programs import stored
from perfmodel.training.memory import memory_per_device
from perfmodel.training.search import (
    RECOMPUTE_CHOICES,
    TP_CHOICES,
    ZERO_CHOICES,
    _max_tp,
    _with_ep,
    base_layouts,
    fit_units,
    layout_grid,
    per_layout,
)
from perfmodel.training.types import LAYOUT_FIELDS, Layout

__all__ = ["CHUNK", "SEARCH_STATS", "best_rates"]

#: Layouts per model call: every call has this shape (one compiled program per workload
#: structure, shared by all chips, counts and curves).
CHUNK = 4096
#: What the model evaluated in this process (layouts, model calls, seconds).
SEARCH_STATS = {"curves": 0, "layouts": 0, "layouts_in_grid": 0, "calls": 0, "seconds": 0.0}


def _layout_rows(w, n: int, max_tp: int, cache_key) -> np.ndarray:
    """Every layout of ``w`` on ``n`` chips (:func:`perfmodel.training.layout_grid`) as
    rows of ``LAYOUT_FIELDS``; cached per preset name."""
    if cache_key is not None:
        return _layout_rows_cached(cache_key, n, max_tp, w)
    return _rows(w, n, max_tp)


def _rows(w, n: int, max_tp: int) -> np.ndarray:

    g = layout_grid(w, n, max_tp)
    return np.column_stack([g[f] for f in LAYOUT_FIELDS]).reshape(-1, len(LAYOUT_FIELDS))


_ROWS: dict = {}


def _layout_rows_cached(key, n, max_tp, w) -> np.ndarray:
    k = (key, n, max_tp)
    if k not in _ROWS:
        if len(_ROWS) > 20000:
            _ROWS.clear()
        _ROWS[k] = _rows(w, n, max_tp)
    return _ROWS[k]


def _bound_terms(r):
    return r.compute_s + r.tp_comm_s + r.cp_comm_s + r.ep_comm_s


# One program per output: XLA drops what an output does not read (the bound terms need
# no memory model, DP or pipeline terms: ~4x cheaper than the whole step).
_PROGRAMS = {
    "units": stored(lambda *a: fit_units(per_layout(*a)), f"{__name__}._units"),
    "terms": stored(lambda *a: _bound_terms(per_layout(*a)), f"{__name__}._terms"),
}


def _blocks(rows: np.ndarray, size: int, ns: np.ndarray | None = None):
    """``rows`` (``LAYOUT_FIELDS`` columns) in blocks of exactly ``size`` layouts, the
    last padded with copies of an all-ones row (and chip count 0, which never matches:
    invalid): yields ``(Layout of numpy columns, chip counts or None, real rows)``."""
    for s in range(0, len(rows), size):
        r = rows[s : s + size]
        k = len(r)
        if k < size:
            r = np.concatenate([r, np.ones((size - k, r.shape[1]))])
        n = None
        if ns is not None:
            n = np.concatenate([ns[s : s + size], np.zeros(size - k)])
        # numpy columns go to the compiled program as they are (one transfer each)
        cols = np.ascontiguousarray(r.T)
        yield Layout(**{f: cols[i] for i, f in enumerate(LAYOUT_FIELDS)}), n, k


def _calls(want: str, w, chip, net, eff, rows: np.ndarray, ns: np.ndarray) -> np.ndarray:
    """The ``want`` program of :data:`_PROGRAMS` on every row, in calls of exactly
    :data:`CHUNK` layouts (one compiled program per workload structure), numpy."""
    prog, out = _PROGRAMS[want], []
    for lay, n, k in _blocks(rows, CHUNK, ns):
        out.append(np.asarray(prog(w, chip, net, lay, n, eff))[:k])
        SEARCH_STATS["calls"] += 1
    return np.concatenate(out) if out else np.zeros(0)


def _evaluate_units(w, chip, net, eff, rows: np.ndarray, ns: np.ndarray) -> np.ndarray:
    """The model (:func:`perfmodel.training.step_time`) on every row: units/s, 0 where
    the layout does not fit or is invalid."""
    return _calls("units", w, chip, net, eff, rows, ns)


def _evaluate_terms(w, chip, net, eff, rows: np.ndarray, ns: np.ndarray) -> np.ndarray:
    """The bound's terms of every row: compute + TP + CP + EP time of a step (s)."""
    return _calls("terms", w, chip, net, eff, rows, ns)


def _unique_rows(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(a, axis=0, return_inverse=True)`` for rows of small non-negative
    integers (as floats), in the same lexicographic order, ~20x faster on millions of
    rows: each row is one mixed-radix int64 code, uniqued in 1-D."""
    v = np.rint(a).astype(np.int64)
    base = v.max(axis=0) + 1
    if float(np.prod(base.astype(np.float64))) >= 2.0**62:  # would overflow: the slow way
        keys, inv = np.unique(a, axis=0, return_inverse=True)
        return keys, inv.ravel()
    code = np.zeros(len(v), np.int64)
    for j in range(v.shape[1]):
        code = code * base[j] + v[:, j]
    _, first, inv = np.unique(code, return_index=True, return_inverse=True)
    return a[first], inv.ravel()


def _bound_keys(w, rows: np.ndarray):
    """The chip-independent part of :func:`_upper_rates` for ``rows``: the
    representative layout of each (mb, tp, cp, sp, ep, expert-tp) key, its chip count,
    each row's key index, and each row's pipeline factor ``(m + (pp - 1) / vpp) / pp``
    (m = micro-batches per step). Returns ``(rep, n_rep, inv, factor)``."""

    f = {k: i for i, k in enumerate(LAYOUT_FIELDS)}
    tp, pp, dp, cp = (rows[:, f[k]] for k in ("tp", "pp", "dp", "cp"))
    mb, vpp, sp, ep = (rows[:, f[k]] for k in ("mb", "vpp", "sp", "ep"))
    sliced = np.abs(np.mod(dp * cp, ep)) < 1e-9  # experts sliced over tp (expert-tp = tp)
    keys, inv = _unique_rows(np.column_stack([mb, tp, cp, sp, ep, sliced]))
    rep = np.ones((len(keys), len(LAYOUT_FIELDS)))
    for j, k in enumerate(("mb", "tp", "cp", "sp", "ep")):
        rep[:, f[k]] = keys[:, j]
    # dp = ep keeps the experts sliced over tp; dp = 1 keeps them whole (cp % ep != 0)
    rep[:, f["dp"]] = np.where(keys[:, 5] > 0, keys[:, 4], 1.0)
    rep[:, f["recompute"]] = 0.0
    rep[:, f["zero"]] = 0.0
    n_rep = rep[:, f["tp"]] * rep[:, f["dp"]] * rep[:, f["cp"]]
    m = float(w.global_batch) / (dp * mb)
    return rep, n_rep, inv.ravel(), (m + (pp - 1.0) / vpp) / pp


def _upper_rates(w, chip, net, eff, rows: np.ndarray, keys=None, used=None) -> np.ndarray:
    """An upper bound on the throughput (units/s) of every layout row (see the module
    docstring): one model call per (mb, tp, cp, sp, ep, expert-tp) key. ``keys``:
    :func:`_bound_keys` of the same rows, when the caller has them; ``used`` (bool per
    row): only those rows are bounded (the keys only they have are not evaluated), the
    others get 0."""

    f = {k: i for i, k in enumerate(LAYOUT_FIELDS)}
    rep, n_rep, inv, factor = _bound_keys(w, rows) if keys is None else keys
    if used is None:
        t = _evaluate_terms(w, chip, net, eff, rep, n_rep)
    else:
        need = np.zeros(len(rep), bool)
        need[inv[used]] = True
        t = np.full(len(rep), np.inf)
        t[need] = _evaluate_terms(w, chip, net, eff, rep[need], n_rep[need])
    gbs = float(w.global_batch)
    t_mb = t / (gbs / (rep[:, f["dp"]] * rep[:, f["mb"]]))  # one micro-batch, all layers
    lower_s = factor * t_mb[inv] + float(eff.step_overhead_s)
    ub = float(wl.units_per_step(w)) / (lower_s * (1.0 - 1e-9))
    return ub if used is None else np.where(used, ub, 0.0)


#: The chip-independent layout grids of named workloads: ``(name, counts) ->``
#: :class:`_Grid` (every tp of :data:`~perfmodel.training.search.TP_CHOICES`; a chip's
#: search masks the tp above its scale-up domain), shared by every chip's curve of the
#: same preset.
_GRIDS: dict = {}


class _Grid:
    """Every layout of a workload at each of a list of counts, stored factored: the
    bound of a layout (:func:`_upper_rates`) does not depend on its recompute mode or
    ZeRO stage, so the grid keeps one *reduced* row per (tp, pp, dp, cp, mb, vpp, sp,
    ep) with its :func:`_bound_keys`, and :meth:`layouts` crosses reduced rows with
    every searched recompute mode and ZeRO stage (ZeRO > 0 only with dp > 1). The
    layouts are exactly :func:`perfmodel.training.layout_grid`'s (a test compares the
    sets); count i's reduced rows are ``offsets[i]:offsets[i + 1]``."""

    def __init__(self, w, counts, max_tp: int):
        f = {k: i for i, k in enumerate(LAYOUT_FIELDS)}
        experts = int(float(w.experts))
        reds = []
        for n in counts:
            base = base_layouts(w, int(n), max_tp)  # tp, pp, dp, cp, mb, vpp
            parts = []
            for sp_on in (0, 1):
                b = base[base[:, 0] > 1] if sp_on else base
                parts.append(np.column_stack([b, np.full(len(b), float(sp_on))]))
            red7 = _with_ep(np.concatenate(parts), experts, 256)  # ..., sp, ep
            red = np.zeros((len(red7), len(LAYOUT_FIELDS)))
            for j, k in enumerate(("tp", "pp", "dp", "cp", "mb", "vpp", "sp", "ep")):
                red[:, f[k]] = red7[:, j]
            reds.append(red)
        self.red = np.concatenate(reds) if reds else np.zeros((0, len(LAYOUT_FIELDS)))
        self.offsets = np.concatenate([[0], np.cumsum([len(r) for r in reds])]).astype(int)
        self.keys = _bound_keys(w, self.red) if len(self.red) else None
        rc = list(RECOMPUTE_CHOICES)
        # (recompute, ZeRO) variants of a reduced row with dp > 1, and with dp = 1
        self._var = (
            np.array([(r, z) for r in rc for z in ZERO_CHOICES], np.float64),
            np.array([(r, 0) for r in rc], np.float64),
        )
        self.multi = self.red[:, f["dp"]] > 1
        self.n_variants = np.where(self.multi, len(self._var[0]), len(self._var[1]))
        self._static: dict = {}

    def layouts(self, ridx: np.ndarray, zero_ok=None) -> tuple[np.ndarray, np.ndarray]:
        """Every layout of the reduced rows ``ridx``: ``(rows in LAYOUT_FIELDS columns,
        the reduced row of each)``; with ``zero_ok`` (``[reduced rows, ZeRO stages]``
        bool) only the ZeRO stages it allows."""
        f = {k: i for i, k in enumerate(LAYOUT_FIELDS)}
        out, parent = [], []
        for var, sel in zip(self._var, (self.multi[ridx], ~self.multi[ridx])):
            r = ridx[sel]
            rows = np.repeat(self.red[r], len(var), axis=0)
            v = np.tile(var, (len(r), 1))
            rows[:, f["recompute"]], rows[:, f["zero"]] = v[:, 0], v[:, 1]
            out.append(rows)
            parent.append(np.repeat(r, len(var)))
        rows, par = np.concatenate(out), np.concatenate(parent)
        if zero_ok is not None:
            keep = zero_ok[par, _ZERO_COLUMN[rows[:, f["zero"]].astype(np.int64)]]
            rows, par = rows[keep], par[keep]
        return rows, par

    def static_bytes(self, w) -> np.ndarray:
        """``[reduced rows, ZeRO stages]``: the weights, gradients and optimizer state
        per device (byte) of each reduced row at each ZeRO stage of
        :data:`~perfmodel.training.search.ZERO_CHOICES` (inf where the stage is not
        searched, dp = 1). Activations only add to it, whatever the recompute mode, so
        a layout whose static bytes exceed the chip's usable memory cannot fit.
        Chip-independent: cached per workload value."""
        key = _value_key(w)
        if key not in self._static:
            f = {k: i for i, k in enumerate(LAYOUT_FIELDS)}
            # these bytes read only tp, pp, dp, cp, ep and ZeRO (a test checks them
            # against the model's own on every layout): one call per distinct set
            reads = [f[k] for k in STATIC_FIELDS]
            keys, inv = _unique_rows(self.red[:, reads])
            rows = np.ones((len(keys), len(LAYOUT_FIELDS)))
            rows[:, reads] = keys
            for c in ("sp", "recompute", "recompute_layers", "offload_layers"):
                rows[:, f[c]] = 0.0
            cols = []
            for z in ZERO_CHOICES:
                rows[:, f["zero"]] = float(z)
                got = _static_memory(w, rows)[inv]
                cols.append(np.where(self.multi | (z == 0), got, np.inf))
            self._static[key] = np.column_stack(cols) if cols else np.zeros((0, 0))
        return self._static[key]


#: The layout fields the static memory (:meth:`_Grid.static_bytes`) reads, besides ZeRO.
STATIC_FIELDS = ("tp", "pp", "dp", "cp", "ep")
#: Column of each ZeRO stage in :meth:`_Grid.static_bytes`.
_ZERO_COLUMN = np.full(max(ZERO_CHOICES) + 1, -1, np.int64)
_ZERO_COLUMN[list(ZERO_CHOICES)] = np.arange(len(ZERO_CHOICES))

#: Layouts per static-memory call (every call this shape: one compiled program per
#: workload structure).
STATIC_CHUNK = 65536


@stored
def _static_program(w, lays):
    """Weights + gradients + optimizer state per device (byte) of every layout row."""

    def one(lay):
        weights, grads, opt, _, _ = memory_per_device(w, lay)
        return weights + grads + opt

    return jax.vmap(one)(lays)


def _static_memory(w, rows: np.ndarray) -> np.ndarray:
    """:func:`_static_program` on ``rows``, in calls of :data:`STATIC_CHUNK` rows."""
    out = [np.asarray(_static_program(w, lay))[:k] for lay, _, k in _blocks(rows, STATIC_CHUNK)]
    return np.concatenate(out) if out else np.zeros(0)


def _value_key(w) -> tuple:
    """A hashable key of a workload's values (leaves and static fields)."""
    leaves, tree = jax.tree_util.tree_flatten(w)
    return (str(tree), tuple(np.asarray(x).tobytes() for x in leaves))


def _grid(w, counts, cache_key) -> _Grid:
    """:class:`_Grid` of ``w`` at ``counts`` with every searched tp, cached per preset
    name (the layouts and bound keys do not depend on the chip)."""

    k = None if cache_key is None else (cache_key, tuple(float(n) for n in counts))
    if k is not None and k in _GRIDS:
        return _GRIDS[k]
    out = _Grid(w, counts, max(TP_CHOICES))
    if k is not None:
        if len(_GRIDS) > 64:
            _GRIDS.clear()
        _GRIDS[k] = out
    return out


def _by_bound(ub: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``idx`` ordered by decreasing ``ub`` (stable)."""
    return idx[np.argsort(-ub[idx], kind="stable")]


def best_rates(w, chip, net, eff, counts, mode: str, cache_key=None) -> np.ndarray:
    """Best-layout throughput (units/s, 0 where nothing fits) at each of ``counts``
    (increasing), exact wherever it can raise the ``mode`` curve of
    :func:`perfmodel.equivalence.make_curve`; elsewhere a value at or below what the
    curve takes there (so ``make_curve`` of it equals ``make_curve`` of the full
    search).

    Order of evaluation, by reduced row of :class:`_Grid` (every recompute and ZeRO
    variant of a row shares its bound and is evaluated with it): first each count's
    ``quota`` (8) rows of highest bound (``np.argpartition``, no full sort); then only
    the rows whose bound beats the floor those set are sorted, and taken best bound
    first in rounds of 4x the last."""

    t0 = time.perf_counter()
    grid = _grid(w, counts, cache_key)
    # the chip's layouts: tp inside its scale-up domain (layout_grid's max_tp)
    allowed = grid.red[:, LAYOUT_FIELDS.index("tp")] <= _max_tp(net)
    off = grid.offsets
    n_counts = len(counts)
    which = np.repeat(np.arange(n_counts), np.diff(off))
    ns = np.asarray(counts, np.float64)
    best = np.zeros(n_counts)
    SEARCH_STATS["curves"] += 1
    SEARCH_STATS["layouts_in_grid"] += int(grid.n_variants[allowed].sum())

    def floor_now():
        if mode == "capacity":
            return np.maximum(np.maximum.accumulate(best / ns) * ns, best)
        return np.maximum.accumulate(best)

    def run(ridx):
        rows, parent = grid.layouts(ridx, zero_ok)
        units = _evaluate_units(w, chip, net, eff, rows, ns[which[parent]])
        np.maximum.at(best, which[parent], units)
        SEARCH_STATS["layouts"] += len(rows)

    if len(grid.red):
        ub = _upper_rates(w, chip, net, eff, grid.red, grid.keys, allowed)
        # a layout whose weights, gradients and optimizer state alone exceed the usable
        # memory cannot fit (exact: the activations only add; a margin for rounding)
        cap = float(np.asarray(chip.mem_bytes)[1]) * float(eff.mem_usable)
        zero_ok = grid.static_bytes(w) <= cap * (1.0 + 1e-9)
        ub = np.where(zero_ok.any(axis=1), ub, 0.0)
        quota = 8
        # round 1: each count's top `quota` bounds (all of them where fewer)
        first = []
        for i in range(n_counts):
            s, e = int(off[i]), int(off[i + 1])
            u = ub[s:e]
            top = np.arange(e - s)
            if e - s > quota:
                top = np.argpartition(-u, quota - 1)[:quota]
            top = _by_bound(u, top)
            first.append(s + top[u[top] > 0.0])
        idx = np.concatenate(first)
        if len(idx):
            run(idx)
        # then the rest of each count whose bound beats its floor, best bound first
        done = np.zeros(len(grid.red), bool)
        done[idx] = True
        floor = floor_now()
        order = []
        for i in range(n_counts):
            s, e = int(off[i]), int(off[i + 1])
            cand = s + np.flatnonzero((ub[s:e] > floor[i]) & ~done[s:e])
            order.append(_by_bound(ub, cand))
        pos = np.zeros(n_counts, int)
        quota *= 4
        while True:
            floor = floor_now()
            take = []
            for i, o in enumerate(order):
                nxt = o[pos[i] : pos[i] + quota]
                k = int(np.sum(ub[nxt] > floor[i]))  # ub is decreasing along o
                take.append(nxt[:k])
                pos[i] = pos[i] + k if k else len(o)
            idx = np.concatenate(take)
            if not len(idx):
                break
            run(idx)
            quota *= 4
    SEARCH_STATS["seconds"] += time.perf_counter() - t0
    return best
