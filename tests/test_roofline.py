"""Properties of the roofline model (perfmodel.roofline): bounds, monotonicity,
homogeneity, unit invariance, smooth-vs-hard bound, gradients, hand values, the
memory hierarchy (Dojo D1 SRAM vs DIP HBM) and the vmapped (op x chip) grid."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import perfmodel
from perfmodel import roofline as rl
from perfmodel.hardware import BYTES_PER_ELEMENT, PRECISION_INDEX, PRECISIONS, Chip, stack_chips

H100 = perfmodel.chip("h100")
D1 = perfmodel.chip("d1")
IDEAL = rl.Efficiency.ideal()
DEFAULT = rl.Efficiency.default()
BOUND_P = 2.0 ** (1.0 / rl.SMOOTH_P)

# Compiled once per module.
hard_time = jax.jit(lambda op, chip, eff: rl.op_time(op, chip, eff))
smooth_time = jax.jit(lambda op, chip, eff: rl.op_time(op, chip, eff, smooth=True))


def _f(x):
    return jnp.asarray(x, dtype=jnp.float64)


def make_chip(peak, sram_bw, dram_bw, sram_cap, dram_cap=80e9) -> Chip:
    """A chip with the same peak at every precision."""
    return Chip(
        peak_flops_per_s=_f([peak] * len(PRECISIONS)),
        mem_bytes=_f([sram_cap, dram_cap]),
        mem_bytes_per_s=_f([sram_bw, dram_bw]),
        scaleup_bytes_per_s=_f(1e11),
        scaleout_bytes_per_s=_f(5e10),
        tdp_w=_f(700.0),
        allin_power_w=_f(1400.0),
        price_usd=_f(3e4),
        allin_price_usd=_f(5e4),
    )


def make_op(flops, nbytes, ws, precision="bf16", kind="matmul") -> rl.Op:
    return rl.Op(
        _f(flops),
        _f(nbytes),
        _f(ws),
        jnp.asarray(PRECISION_INDEX[precision]),
        jnp.asarray(rl.OP_KIND_INDEX[kind]),
    )


logu = lambda lo, hi: st.floats(math.log10(lo), math.log10(hi)).map(lambda e: 10.0**e)  # noqa: E731

cases = st.fixed_dictionaries(
    {
        "flops": logu(1e3, 1e18),
        "nbytes": logu(1e2, 1e13),
        "ws_ratio": logu(1e-4, 1e4),
        "peak": logu(1e11, 1e16),
        "dram_bw": logu(1e10, 1e13),
        "sram_ratio": logu(1.0, 1e3),
        "sram_cap": logu(1e6, 1e10),
        "kind": st.sampled_from(rl.OP_KINDS),
        "precision": st.sampled_from(PRECISIONS),
    }
)


def build(c, *, ws_far=False):
    ws = c["sram_cap"] * c["ws_ratio"]
    if ws_far and 0.25 < c["ws_ratio"] < 4.0:  # keep the working set >= 4x from the edge
        ws = c["sram_cap"] * (0.25 if c["ws_ratio"] < 1 else 4.0)
    chip = make_chip(c["peak"], c["dram_bw"] * c["sram_ratio"], c["dram_bw"], c["sram_cap"])
    return make_op(c["flops"], c["nbytes"], ws, c["precision"], c["kind"]), chip


# --------------------------------------------------------------------------------------
# Bounds, exact terms
# --------------------------------------------------------------------------------------


@given(cases)
def test_time_between_lower_bounds_and_their_sum(c):
    op, chip = build(c)
    t = hard_time(op, chip, DEFAULT)
    k = rl.OP_KIND_INDEX[c["kind"]]
    compute = c["flops"] / (c["peak"] * float(DEFAULT.compute[k]))
    in_sram = float(op.working_set_bytes) <= c["sram_cap"]
    bw = (c["dram_bw"] * c["sram_ratio"] * 0.90) if in_sram else c["dram_bw"] * 0.85
    memory = c["nbytes"] / bw
    oh = float(DEFAULT.overhead_s)
    assert float(t.compute_s) == pytest.approx(compute, rel=1e-12)
    assert float(t.memory_s) == pytest.approx(memory, rel=1e-12)
    tt = float(t.time_s)
    assert tt >= compute * (1 - 1e-12) and tt >= memory * (1 - 1e-12) and tt >= oh
    assert tt <= (compute + memory + oh) * (1 + 1e-12)
    expect_bound = 0 if compute >= memory else (1 if in_sram else 2)
    assert int(t.bound) == expect_bound
    assert float(t.attainable_flops_per_s) <= c["peak"] * (1 + 1e-12)
    assert float(t.intensity_flops_per_byte) == pytest.approx(c["flops"] / c["nbytes"], rel=1e-12)


@given(cases, st.floats(1.0, 100.0), st.sampled_from(["peak", "sram", "dram", "both"]))
def test_monotone_non_increasing_in_peak_and_bandwidth(c, factor, which):
    op, chip = build(c)
    faster = {
        "peak": chip.replace(peak_flops_per_s=chip.peak_flops_per_s * factor),
        "sram": chip.replace(mem_bytes_per_s=chip.mem_bytes_per_s * _f([factor, 1.0])),
        "dram": chip.replace(mem_bytes_per_s=chip.mem_bytes_per_s * _f([1.0, factor])),
        "both": chip.replace(mem_bytes_per_s=chip.mem_bytes_per_s * factor),
    }[which]
    for fn in (hard_time, smooth_time):
        assert float(fn(op, faster, DEFAULT).time_s) <= float(fn(op, chip, DEFAULT).time_s) * (
            1 + 1e-12
        )


@given(cases, logu(1e-3, 1e3))
def test_homogeneous_in_work(c, k):
    """Scaling flops and bytes by k (same working set) scales compute and memory by k;
    at ideal efficiency (no overhead) the time scales by k, hard and smooth."""
    op, chip = build(c)
    big = rl.scale_op(op, k)
    for fn in (hard_time, smooth_time):
        t1, tk = fn(op, chip, IDEAL), fn(big, chip, IDEAL)
        assert float(tk.compute_s) == pytest.approx(k * float(t1.compute_s), rel=1e-10)
        assert float(tk.memory_s) == pytest.approx(k * float(t1.memory_s), rel=1e-10)
        assert float(tk.time_s) == pytest.approx(k * float(t1.time_s), rel=1e-10)


@given(cases, logu(1e-6, 1e6), logu(1e-6, 1e6))
def test_unit_invariance(c, flop_unit, byte_unit):
    """Measuring work in other units (kFLOP, KiB, ...) changes nothing: divide flops and
    peaks by one unit, bytes, capacities and bandwidths by another."""
    op, chip = build(c, ws_far=True)
    op2 = op.replace(
        flops=op.flops / flop_unit,
        bytes=op.bytes / byte_unit,
        working_set_bytes=op.working_set_bytes / byte_unit,
    )
    chip2 = chip.replace(
        peak_flops_per_s=chip.peak_flops_per_s / flop_unit,
        mem_bytes=chip.mem_bytes / byte_unit,
        mem_bytes_per_s=chip.mem_bytes_per_s / byte_unit,
    )
    for fn in (hard_time, smooth_time):
        a, b = fn(op, chip, DEFAULT), fn(op2, chip2, DEFAULT)
        assert float(b.time_s) == pytest.approx(float(a.time_s), rel=1e-9)
        assert int(b.bound) == int(a.bound)


@given(cases)
def test_smooth_within_stated_bound_of_hard(c):
    """hard <= smooth <= 2**(1/p) * hard (overhead excluded), away from the SRAM edge."""
    op, chip = build(c, ws_far=True)
    h, s = hard_time(op, chip, IDEAL), smooth_time(op, chip, IDEAL)
    assert float(s.memory_s) == pytest.approx(float(h.memory_s), rel=1e-9)
    hv, sv = float(h.time_s), float(s.time_s)
    assert hv * (1 - 1e-9) <= sv <= BOUND_P * hv * (1 + 1e-9)
    # with overhead: the same bound on (time - overhead)
    h2, s2 = hard_time(op, chip, DEFAULT), smooth_time(op, chip, DEFAULT)
    oh = float(DEFAULT.overhead_s)
    assert (float(h2.time_s) - oh) * (1 - 1e-9) <= float(s2.time_s) - oh
    assert float(s2.time_s) - oh <= BOUND_P * (float(h2.time_s) - oh) * (1 + 1e-9)


def test_smooth_bound_is_tight_at_the_ridge():
    """At compute == memory the smooth max reaches exactly 2**(1/p) times the hard one."""
    chip = make_chip(1e15, 1e13, 1e12, 0.0)
    op = make_op(1e12, 1e9, 1e9)  # compute 1 ms, memory 1 ms
    h, s = hard_time(op, chip, IDEAL), smooth_time(op, chip, IDEAL)
    assert float(s.time_s) == pytest.approx(BOUND_P * float(h.time_s), rel=1e-12)


@given(st.floats(0.0, 1e6), st.floats(0.0, 1e6), st.floats(1e-3, 1e3))
def test_smooth_max_properties(a, b, k):
    m = max(a, b)
    s = float(rl.smooth_max(_f(a), _f(b)))
    assert m * (1 - 1e-12) <= s <= BOUND_P * m * (1 + 1e-12)
    assert float(rl.smooth_max(_f(k * a), _f(k * b))) == pytest.approx(k * s, rel=1e-10, abs=1e-300)


# --------------------------------------------------------------------------------------
# Gradients
# --------------------------------------------------------------------------------------


def _loss(theta, op, chip, smooth):
    """Time as a function of log(peak, sram bw, dram bw, flops, bytes)."""
    e = jnp.exp(theta)
    c = chip.replace(
        peak_flops_per_s=chip.peak_flops_per_s * e[0],
        mem_bytes_per_s=chip.mem_bytes_per_s * jnp.stack([e[1], e[2]]),
    )
    o = op.replace(flops=op.flops * e[3], bytes=op.bytes * e[4])
    return rl.op_time(o, c, DEFAULT, smooth=smooth).time_s


grad_smooth = jax.jit(jax.value_and_grad(lambda th, op, ch: _loss(th, op, ch, True)))
loss_smooth = jax.jit(lambda th, op, ch: _loss(th, op, ch, True))
grad_hard = jax.jit(jax.grad(lambda th, op, ch: _loss(th, op, ch, False)))


@given(cases)
def test_gradients_finite_and_match_finite_differences(c):
    op, chip = build(c)
    theta = jnp.zeros(5)
    v, g = grad_smooth(theta, op, chip)
    g = np.asarray(g)
    assert np.all(np.isfinite(g)) and np.all(np.isfinite(np.asarray(grad_hard(theta, op, chip))))
    # d time / d log(peak, bw) <= 0; d time / d log(flops, bytes) >= 0
    assert np.all(g[:3] <= 1e-18) and np.all(g[3:] >= -1e-18)
    eps = 1e-5
    for i in range(5):
        d = jnp.zeros(5).at[i].set(eps)
        fd = (float(loss_smooth(theta + d, op, chip)) - float(loss_smooth(theta - d, op, chip))) / (
            2 * eps
        )
        assert g[i] == pytest.approx(fd, rel=1e-4, abs=1e-7 * float(v))


def test_gradient_wrt_working_set_through_smooth_level_choice():
    """Near the SRAM edge the smooth level choice has a gradient in the working set."""
    f = jax.grad(
        lambda ws: (
            rl.op_time(
                rl.Op(_f(1e6), _f(1e8), ws, jnp.asarray(1), jnp.asarray(2)), D1, IDEAL, smooth=True
            ).time_s
        )
    )
    g = float(f(_f(440e6)))
    assert math.isfinite(g) and g > 0  # a bigger working set spills toward HBM: slower


# --------------------------------------------------------------------------------------
# Hand-computed values
# --------------------------------------------------------------------------------------


def test_h100_matmul_8192_cubed():
    t = rl.op_time(rl.matmul(8192, 8192, 8192, "bf16"), H100, IDEAL)
    assert float(t.time_s) == pytest.approx(2 * 8192**3 / 989.4e12, rel=1e-12)
    assert float(t.time_s) == pytest.approx(1.111e-3, abs=1e-6)
    assert rl.BOUNDS[int(t.bound)] == "compute"
    # at the default efficiencies: 80% of peak plus 3 us
    td = rl.op_time(rl.matmul(8192, 8192, 8192, "bf16"), H100, DEFAULT)
    assert float(td.time_s) == pytest.approx(2 * 8192**3 / (0.8 * 989.4e12) + 3e-6, rel=1e-12)


def test_large_fp32_add_is_hbm_bound():
    n = 2**30
    t = rl.op_time(rl.elementwise(n, "fp32"), H100, IDEAL)
    assert float(t.time_s) == pytest.approx(3 * 4 * n / 3.35e12, rel=1e-12)
    assert rl.BOUNDS[int(t.bound)] == "dram"
    assert float(t.intensity_flops_per_byte) == pytest.approx(1 / 12)


def test_d1_sram_vs_hbm():
    """An op whose working set fits D1's 440 MB SRAM is fed at SRAM bandwidth; one that
    does not is fed from the DIP HBM share."""
    sram_bw, hbm_bw = float(D1.mem_bytes_per_s[0]), float(D1.mem_bytes_per_s[1])
    assert float(D1.mem_bytes[0]) == 440e6 and sram_bw > 100 * hbm_bw
    fits = rl.elementwise(400e6 / 6, "bf16")  # 400 MB working set
    spills = rl.elementwise(480e6 / 6, "bf16")  # 480 MB working set
    tf, ts = rl.op_time(fits, D1, IDEAL), rl.op_time(spills, D1, IDEAL)
    assert rl.BOUNDS[int(tf.bound)] == "sram" and rl.BOUNDS[int(ts.bound)] == "dram"
    assert float(tf.time_s) == pytest.approx(400e6 / sram_bw, rel=1e-12)
    assert float(ts.time_s) == pytest.approx(480e6 / hbm_bw, rel=1e-12)
    # a 4096^3 matmul (100.7 MB) on D1 is compute-bound, fed from SRAM
    mm = rl.op_time(rl.matmul(4096, 4096, 4096), D1, IDEAL)
    assert rl.BOUNDS[int(mm.bound)] == "compute"
    assert float(mm.memory_s) == pytest.approx(3 * 4096**2 * 2 / sram_bw, rel=1e-12)
    # the smooth level choice agrees once the working set is 25% from the edge (<1e-3)
    for ws in (330e6, 550e6, 100e6, 2e9):
        op = rl.elementwise(ws / 6, "bf16")
        h, s = rl.op_time(op, D1, IDEAL), rl.op_time(op, D1, IDEAL, smooth=True)
        assert float(s.memory_s) == pytest.approx(float(h.memory_s), rel=1e-3)


def test_ridge_point_balances_compute_and_memory():
    for chip in (H100, D1):
        for level in (0, 1):
            r = float(rl.ridge_point(chip, "bf16", level))
            op = make_op(r * 1e9, 1e9, 1e15 if level == 1 else 1.0)
            t = rl.op_time(op, chip, IDEAL)
            assert float(t.compute_s) == pytest.approx(float(t.memory_s), rel=1e-12)


# --------------------------------------------------------------------------------------
# Op constructors: FLOP and byte formulas
# --------------------------------------------------------------------------------------


dims = st.integers(1, 1 << 14)


@given(dims, dims, dims, dims, st.sampled_from(PRECISIONS))
def test_matmul_and_bmm_formulas(m, n, k, b, dt):
    e = BYTES_PER_ELEMENT[dt]
    op = rl.matmul(m, n, k, dt)
    assert float(op.flops) == 2.0 * m * n * k
    assert float(op.bytes) == (m * k + k * n + m * n) * e == float(op.working_set_bytes)
    assert int(op.precision) == PRECISION_INDEX[dt]
    bop = rl.batched_matmul(b, m, n, k, dt)
    assert float(bop.flops) == pytest.approx(b * float(op.flops), rel=1e-15)
    assert float(bop.bytes) == pytest.approx(b * float(op.bytes), rel=1e-15)


@given(st.integers(1, 64), st.integers(1, 128), dims, dims, st.sampled_from([64, 128, 256]))
def test_attention_formula(b, h, sq, skv, d):
    op = rl.attention(b, h, sq, skv, d, "bf16")
    assert float(op.flops) == pytest.approx(4.0 * b * h * sq * skv * d, rel=1e-15)
    assert float(op.bytes) == pytest.approx(b * h * (2 * sq + 2 * skv) * d * 2, rel=1e-15)
    causal = rl.attention(b, h, sq, skv, d, "bf16", causal=True)
    assert float(causal.flops) == pytest.approx(0.5 * float(op.flops), rel=1e-15)
    assert float(causal.bytes) == float(op.bytes)


def test_other_op_formulas():
    op = rl.elementwise(1000, "fp32")
    assert (float(op.flops), float(op.bytes)) == (1000.0, 12000.0)
    op = rl.reduction(10, 100, "bf16")
    assert (float(op.flops), float(op.bytes)) == (1000.0, (1000 + 10) * 2.0)
    op = rl.layernorm(10, 100, "bf16")
    assert (float(op.flops), float(op.bytes)) == (8000.0, (2000 + 200) * 2.0)
    op = rl.conv2d(2, 8, 8, 3, 16, 3, 3, 1, "bf16")
    assert float(op.flops) == 2.0 * 2 * 8 * 8 * 16 * 3 * 3 * 3
    assert float(op.bytes) == (2 * 8 * 8 * 3 + 3 * 3 * 3 * 16 + 2 * 8 * 8 * 16) * 2.0
    with pytest.raises(ValueError, match="dtype 'fp2' must be one of"):
        rl.matmul(1, 1, 1, "fp2")
    with pytest.raises(ValueError, match="k = -3 must be a finite number >= 0"):
        rl.matmul(1, 1, -3)
    with pytest.raises(ValueError, match="n = nan"):
        rl.elementwise(float("nan"))
    # traced sizes are fine (vmap over shapes)
    flops = jax.vmap(lambda m: rl.matmul(m, 2.0, 3.0).flops)(jnp.arange(1.0, 4.0))
    assert np.allclose(np.asarray(flops), 12.0 * np.arange(1.0, 4.0))


# --------------------------------------------------------------------------------------
# The vmapped grid
# --------------------------------------------------------------------------------------


def test_grid_equals_loop():
    cat = perfmodel.load_catalog()
    keys = list(cat.chips)
    chips = [cat.chip(k) for k in keys]
    ops = [
        rl.matmul(8192, 8192, 8192),
        rl.matmul(64, 64, 64, "fp8"),
        rl.attention(1, 32, 4096, 4096, 128, causal=True),
        rl.elementwise(2**30, "fp32"),
        rl.layernorm(8192, 8192),
        rl.conv2d(32, 56, 56, 256, 256),
        rl.elementwise(1e7, "int8"),
    ]
    for smooth in (False, True):
        eff = DEFAULT
        grid = (
            rl.op_time_grid(rl.stack_ops(ops), stack_chips(chips), eff)
            if not smooth
            else jax.jit(
                jax.vmap(
                    jax.vmap(lambda o, c: rl.op_time(o, c, eff, smooth=True), in_axes=(0, None)),
                    in_axes=(None, 0),
                )
            )(rl.stack_ops(ops), stack_chips(chips))
        )
        assert grid.time_s.shape == (len(chips), len(ops))
        fast = rl.op_time_grid_s(rl.stack_ops(ops), stack_chips(chips), eff, smooth=smooth)
        np.testing.assert_allclose(np.asarray(fast), np.asarray(grid.time_s), rtol=1e-12)
        for i, ch in enumerate(chips):
            for j, op in enumerate(ops):
                t = rl.op_time(op, ch, eff, smooth=smooth)
                assert float(grid.time_s[i, j]) == pytest.approx(float(t.time_s), rel=1e-12)
                assert int(grid.bound[i, j]) == int(t.bound)
