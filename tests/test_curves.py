"""Value curves (perfmodel.fleet.curves): the pruned search equals the full best-layout
search, its bound bounds, and the shipped curves are current."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from perfmodel.equivalence import DEFAULT_GRID, make_curve
from perfmodel.fleet import curves as cv
from perfmodel.hardware import load_catalog
from perfmodel.training import throughput_curve
from perfmodel.training.search import _prepare
from perfmodel.training.types import default_efficiency

WORKLOAD = "llama3-8b"  # one workload structure: one compiled evaluator for the module
K = 12  # grid counts 1..128


def _full_search(chip, mode, k=K):
    """Every layout at every count (the search perfmodel.equivalence.model_curve runs)."""
    grid = np.asarray(DEFAULT_GRID[:k], float)
    raw = throughput_curve(WORKLOAD, chip, grid, chip=load_catalog().chip(chip, "best"))
    return np.asarray(make_curve(grid, raw, capacity=(mode == "capacity")).log_throughput)


@pytest.mark.parametrize(
    "chip,mode", [("h100_sxm", "capacity"), ("h100_sxm", "job"), ("ai4", "capacity")]
)
def test_pruned_curve_equals_full_search(chip, mode):
    got = cv._compute_curve(chip, WORKLOAD, "best", mode, K)
    np.testing.assert_allclose(got, _full_search(chip, mode), rtol=1e-12, atol=0)


def test_pruning_skips_layouts():
    cv.SEARCH_STATS.update(layouts=0, layouts_in_grid=0)
    cv._compute_curve("b200", WORKLOAD, "best", "capacity", K)
    assert 0 < cv.SEARCH_STATS["layouts"] < cv.SEARCH_STATS["layouts_in_grid"] / 2


def test_bound_is_an_upper_bound_on_every_layout():
    w, key, chip, net = _prepare(WORKLOAD, "h100_sxm", 64, None, None)
    w = dataclasses.replace(w, name="", family="")
    chip = dataclasses.replace(chip, name="")
    eff = default_efficiency()
    rows = cv._rows(w, 64, 8)
    units = cv._evaluate_units(w, chip, net, eff, rows, np.full(len(rows), 64.0))
    ub = cv._upper_rates(w, chip, net, eff, rows)
    assert units.max() > 0 and len(rows) > 1000
    assert np.all(ub >= units)
    assert np.median(ub[units > 0] / units[units > 0]) < 2.0


@settings(max_examples=40, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 300), st.integers(1, 6)),
        elements=st.integers(0, 1024).map(float),
    )
)
def test_unique_rows_is_numpy_unique(a):
    """The bound's key grouping equals ``np.unique(axis=0)``: same keys, same order,
    same inverse."""
    from perfmodel.fleet.layout_search import _unique_rows

    keys, inv = np.unique(a, axis=0, return_inverse=True)
    k2, i2 = _unique_rows(a)
    assert np.array_equal(keys, k2) and np.array_equal(inv.ravel(), i2)
    assert np.array_equal(k2[i2], a)


def test_needed_counts_cover_the_largest():
    grid = DEFAULT_GRID
    for n in (0.5, 1.0, 3.0, 100.0, 4096.0, 5000.0, 1e9):
        k = cv._needed(n, grid)
        assert k >= 2 and (grid[k - 1] >= n or k == len(grid))
        assert k == 2 or grid[k - 2] < n


def test_value_curve_api():
    c = [0.0, 8.0, 64.0, 100.5]
    v, label = cv.value_curve("h100_sxm", [(WORKLOAD, 1.0)], c)
    assert label.startswith("training model (capacity mode")
    assert v[0] == 0.0 and np.all(np.diff(v) > 0)
    # capacity view: H100e per H100 never falls with the count and is at most 1 (one
    # H100 at its best per-chip rate is 1 H100e)
    n = np.asarray(DEFAULT_GRID[:K], float)
    per_chip = cv.value_curve("h100_sxm", [(WORKLOAD, 1.0)], n)[0] / n
    assert np.all(np.diff(per_chip) >= -1e-12) and per_chip.max() <= 1.0 + 1e-6
    s, slabel = cv.value_curve("h100_sxm", [(WORKLOAD, 2.0)], c, source="standin")
    assert slabel.startswith("STAND-IN") and s[1] == pytest.approx(2.0 * 8.0**0.98)
    with pytest.raises(ValueError, match="mode"):
        cv.grid_curve("h100_sxm", WORKLOAD, mode="fleet")


def test_shipped_curves_are_current_and_match_a_fresh_computation():
    shipped = cv._shipped()
    assert shipped, (
        f"{cv.SHIPPED_FILE.name} is stale or absent (model fingerprint "
        f"{cv.model_fingerprint()}): run `python -m perfmodel.fleet.curves --write`"
    )
    for chip in ("h100_sxm", "ai4"):
        have = shipped[(chip, WORKLOAD, "best", "capacity")]
        fresh = cv._compute_curve(chip, WORKLOAD, "best", "capacity", K)
        np.testing.assert_allclose(have[:K], fresh, rtol=1e-9)
    assert cv.main(["--check"]) == 0


@settings(max_examples=12, deadline=None)
@given(
    name=st.sampled_from(["llama3-8b", "gpt3-175b", "qwen3-30b-a3b", "deepseek-v3"]),
    first=st.integers(0, 30),
    k=st.integers(1, 4),
    max_tp=st.sampled_from([1, 8, 72]),
)
def test_factored_grid_holds_exactly_the_layout_grid(name, first, k, max_tp):
    """The search's factored grid (reduced rows x recompute x ZeRO) holds, count by
    count, exactly the layouts of ``layout_grid``: the same rows, each once."""
    from perfmodel import workloads as wl
    from perfmodel.fleet.layout_search import _Grid
    from perfmodel.training import LAYOUT_FIELDS, layout_grid

    w = wl.get_workload(name)
    counts = [float(c) for c in DEFAULT_GRID[first : first + k]]
    g = _Grid(w, counts, max_tp)
    assert int(g.n_variants.sum()) == sum(len(layout_grid(w, int(n), max_tp)["tp"]) for n in counts)
    for i, n in enumerate(counts):
        ref = layout_grid(w, int(n), max_tp)
        want = np.column_stack([ref[f] for f in LAYOUT_FIELDS])
        got, parent = g.layouts(np.arange(g.offsets[i], g.offsets[i + 1]))
        assert got.shape == want.shape
        assert np.array_equal(np.unique(got, axis=0), np.unique(want, axis=0))
        assert len(np.unique(got, axis=0)) == len(got)  # each layout once
        same = [f for f in LAYOUT_FIELDS if f not in ("recompute", "zero")]
        cols = [LAYOUT_FIELDS.index(f) for f in same]
        assert np.array_equal(got[:, cols], g.red[parent][:, cols])


def test_static_memory_is_a_lower_bound_and_its_pruning_exact():
    """The search skips a layout whose weights, gradients and optimizer state exceed the
    usable memory: those bytes are at most the model's memory of every layout (all
    recompute modes, every ZeRO stage), and no layout that fits is skipped."""
    from perfmodel.fleet.layout_search import CHUNK, _Grid
    from perfmodel.training import LAYOUT_FIELDS, Layout
    from perfmodel.training.search import _eval_grid

    w, key, chip, net = _prepare(WORKLOAD, "h100_sxm", 8, None, None)
    w = dataclasses.replace(w, name="", family="")
    chip = dataclasses.replace(chip, name="")
    eff = default_efficiency()
    g = _Grid(w, [1.0, 8.0, 64.0], 8)
    assert len(g.red) > 100
    static = g.static_bytes(w)
    rows, par = g.layouts(np.arange(len(g.red)))
    ns = np.asarray([1.0, 8.0, 64.0])[np.searchsorted(g.offsets, par, side="right") - 1]
    mem, fits, held = [], [], []
    for s in range(0, len(rows), CHUNK):
        r, n = rows[s : s + CHUNK], ns[s : s + CHUNK]
        k = len(r)
        r = np.concatenate([r, np.ones((CHUNK - k, r.shape[1]))])
        n = np.concatenate([n, np.zeros(CHUNK - k)])
        lay = Layout(**{f: np.ascontiguousarray(r[:, i]) for i, f in enumerate(LAYOUT_FIELDS)})
        out = _eval_grid(w, chip, net, lay, n, eff)
        mem.append(np.asarray(out.memory_bytes)[:k])
        held.append(np.asarray(out.weights_bytes + out.grads_bytes + out.optimizer_bytes)[:k])
        fits.append((np.asarray(out.fits) & np.asarray(out.valid))[:k])
    mem, fits, held = np.concatenate(mem), np.concatenate(fits), np.concatenate(held)
    z = rows[:, LAYOUT_FIELDS.index("zero")].astype(int)
    low = static[par, z]
    # the static bytes are the model's own for each layout (so the fields they are
    # computed from, layout_search.STATIC_FIELDS, are all they read), and below its total
    np.testing.assert_allclose(low, held, rtol=1e-12, atol=0)
    assert np.all(np.isfinite(low)) and np.all(low <= mem * (1 + 1e-12))
    cap = float(np.asarray(chip.mem_bytes)[1]) * float(eff.mem_usable)
    pruned = low > cap * (1 + 1e-9)
    assert pruned.any() and fits.any()  # 8B on one H100 holds no fp32 optimizer state
    assert not np.any(pruned & fits)
