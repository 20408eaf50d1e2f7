"""Properties of H100-equivalence (perfmodel.equivalence).

Most properties are checked against a small analytic stand-in for the training model
(``toy_curve``: roofline compute/memory + ring all-reduce + latency + overhead per step),
which has the same structure as :mod:`perfmodel.training`; ``test_real_model_*`` tests
run the real model when it is installed.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import perfmodel.equivalence as eq
from perfmodel.hardware import PRECISION_INDEX, load_catalog, parse_catalog

GRID = np.asarray(eq.DEFAULT_GRID, float)

# Toy workloads: (flop per sample, byte per sample, gradient bytes all-reduced per step,
# global batch or None for weak scaling with 1 sample per chip per step)
TOY = {
    "weak": (4e12, 2e10, 2e9, None),
    "strong": (4e12, 2e10, 2e9, 4096),
    "membound": (1e11, 2e11, 1e8, None),
}


def toy_step_s(chip, n, workload, precision="bf16"):
    """Step time (s) of the stand-in model on ``n`` chips; pure jnp, grad-able."""
    f, b, g, gbs = TOY[workload]
    per_chip = 1.0 if gbs is None else gbs / n
    compute = per_chip * f / (0.6 * chip.peak_flops_per_s[PRECISION_INDEX[precision]])
    memory = per_chip * b / (0.85 * chip.mem_bytes_per_s[1])
    sram = per_chip * 1e7 / chip.mem_bytes_per_s[0]
    bw = jnp.where(n <= 8, chip.scaleup_bytes_per_s, chip.scaleout_bytes_per_s)
    comm = 2.0 * (n - 1.0) / n * g / bw + 5e-6 * jnp.log2(jnp.maximum(n, 1.0))
    return jnp.maximum(jnp.maximum(compute, memory), sram) + comm + 2e-3


def toy_throughput(chip, counts, workload, precision="bf16"):
    n = jnp.asarray(counts, float)
    f, b, g, gbs = TOY[workload]
    samples = n if gbs is None else jnp.full_like(n, float(gbs))
    return samples / toy_step_s(chip, n, workload, precision)


def toy_curve(workload, chip_key, counts, *, precision=None, chip=None):
    """Stand-in with the signature of perfmodel.training.throughput_curve."""
    return np.asarray(toy_throughput(chip, counts, workload, precision or "bf16"))


def toy_inference(workload, chip_key, counts, *, precision="int8", chip=None):
    f = TOY[workload][0] / 3.0  # forward only
    n = np.asarray(counts, float)
    return n / (f / (0.5 * float(chip.peak(precision))) + 1e-3)


# A test catalog: the built-in catalog plus synthetic chips that differ from the H100 only
# in rates (same capacities), so the bound applies exactly.
_H = load_catalog().record("h100")


def _synthetic(key, flops=1.0, dram=1.0, net=1.0, price=1.0, power=1.0):
    def fig(v):
        return {"value": v, "source": "test", "confidence": "vendor"}

    body = {"name": key, "kind": "gpu"}
    for k, f in _H.figures.items():
        v = f.best
        if k.endswith("flops_per_s") or k.endswith("ops_per_s"):
            v *= flops
        elif k in ("dram_bytes_per_s",):
            v *= dram
        elif k.startswith("scale"):
            v *= net
        elif k in ("allin_price_usd", "price_usd"):
            v *= price
        elif k in ("allin_power_w", "tdp_w"):
            v *= power
        if k in ("allin_price_usd", "allin_power_w"):
            body[k] = {
                "best": v,
                "low": 0.9 * v,
                "high": 1.1 * v,
                "source": "test",
                "confidence": "estimate",
            }
        else:
            body[k] = fig(v)
    return body


CAT = load_catalog().merged(
    parse_catalog(
        {
            "chips": {
                "twice": _synthetic("twice", flops=2.0, dram=2.0, net=2.0, price=1.5, power=1.4),
                "fastmem": _synthetic("fastmem", dram=3.0),
                "slow": _synthetic("slow", flops=0.5, dram=0.7, net=0.5, price=0.4, power=0.6),
            }
        },
        "test",
    )
)
KW = {"curve_fn": toy_curve, "catalog": CAT}
H100 = CAT.chip("h100")


def curve_of(chip, workload="weak"):
    return eq.make_curve(GRID, toy_throughput(chip, GRID, workload))


equiv = jax.jit(eq.equivalent_count)


# ---------------------------------------------------------------------------- identity


@given(n=st.floats(0.3, 5e5), w=st.sampled_from(sorted(TOY)))
def test_identity_h100_is_n_on_and_off_grid(n, w):
    assert eq.workload_equivalence("h100", n, w, **KW) == pytest.approx(n, rel=1e-12)


@pytest.mark.parametrize("n", [1, 8, 12, 1024, 24576, 262144])
def test_identity_on_grid_points(n):
    assert eq.workload_equivalence("h100_sxm", n, "strong", **KW) == pytest.approx(n, rel=1e-12)


def test_h100e_curve_matches_scalar_and_identity():
    counts = [1, 7, 100, 5000, 300000]
    np.testing.assert_allclose(eq.h100e_curve("h100", "weak", counts, **KW), counts, rtol=1e-12)
    v = eq.h100e_curve("twice", "weak", counts, **KW)
    for c, x in zip(counts, v):
        assert x == pytest.approx(eq.workload_equivalence("twice", c, "weak", **KW), rel=1e-12)


# ---------------------------------------------------------------------------- curves


def test_make_curve_monotone_and_fills_infeasible():
    counts = np.array([1.0, 2, 4, 8, 16])
    t = np.array([0.0, 0.0, 40.0, 30.0, 100.0])  # does not fit below 4; dips at 8
    c = eq.make_curve(counts, t)
    lt = np.asarray(c.log_throughput)
    assert np.all(np.diff(lt) > 0)
    # below the first feasible count: proportional (time-share of the 4-chip cluster)
    assert float(eq.curve_throughput(c, 2.0)) == pytest.approx(20.0, rel=1e-8)
    # the dip at 8 chips is replaced by the running max (40)
    assert float(eq.curve_throughput(c, 8.0)) == pytest.approx(40.0, rel=1e-8)
    # hand-computed interpolation: log-log midpoint between (8, 40) and (16, 100)
    assert float(eq.curve_throughput(c, math.sqrt(8 * 16))) == pytest.approx(
        math.sqrt(40 * 100), rel=1e-7
    )
    # proportional extrapolation above the grid
    assert float(eq.curve_throughput(c, 64.0)) == pytest.approx(400.0, rel=1e-7)


@given(t=st.lists(st.floats(1e-3, 1e6), min_size=5, max_size=5), y=st.floats(1e-4, 1e7))
def test_curve_count_inverts_curve_throughput(t, y):
    c = eq.make_curve(np.array([1.0, 3, 9, 27, 81]), np.array(t))
    m = float(eq.curve_count(c, y))
    assert float(eq.curve_throughput(c, m)) == pytest.approx(y, rel=1e-9)


# ---------------------------------------------------------------------------- monotone


@given(w=st.sampled_from(sorted(TOY)), a=st.floats(1, 3e5), b=st.floats(1, 3e5))
def test_monotone_in_count(w, a, b):
    lo, hi = sorted((a, b))
    x = curve_of(CAT.chip("twice"), w)
    h = curve_of(H100, w)
    assert float(equiv(x, h, hi)) >= float(equiv(x, h, lo)) * (1 - 1e-12)


FIELDS = ("peak_flops_per_s", "mem_bytes_per_s", "scaleup_bytes_per_s", "scaleout_bytes_per_s")


@given(
    field=st.sampled_from(FIELDS),
    s=st.floats(1.0, 4.0),
    n=st.floats(1, 2e5),
    w=st.sampled_from(sorted(TOY)),
)
def test_monotone_in_every_performance_spec(field, s, n, w):
    h = curve_of(H100, w)
    base = float(equiv(curve_of(H100, w), h, n))
    faster = H100.replace(**{field: getattr(H100, field) * s})
    assert float(equiv(curve_of(faster, w), h, n)) >= base * (1 - 1e-12)


# ---------------------------------------------------------------------------- additivity


@given(n1=st.floats(1, 1e5), n2=st.floats(1, 1e5))
def test_additivity_independent_clusters(n1, n2):
    # Definition: the H100e of independent clusters running independent jobs is the sum.
    f = eq.fleet_equivalence([("twice", n1), ("slow", n2)], "weak", **KW)
    s = eq.workload_equivalence("twice", n1, "weak", **KW) + eq.workload_equivalence(
        "slow", n2, "weak", **KW
    )
    assert f == pytest.approx(s, rel=1e-12)
    # ... which makes separate H100 clusters add up exactly
    assert eq.fleet_equivalence([("h100", n1), ("h100", n2)], "strong", **KW) == pytest.approx(
        n1 + n2, rel=1e-12
    )


# ---------------------------------------------------------------------------- round trip


@given(
    n=st.floats(1, 2e5),
    chip=st.sampled_from(["twice", "slow", "fastmem"]),
    w=st.sampled_from(sorted(TOY)),
)
def test_round_trip_to_h100e_and_back(n, chip, w):
    m = eq.workload_equivalence(chip, n, w, **KW)
    assert eq.chips_for_h100e(chip, m, w, **KW) == pytest.approx(n, rel=1e-9)


# ---------------------------------------------------------------------------- spec sheet


@given(
    sa=st.floats(0.1, 10),
    sb=st.floats(0.1, 10),
    sc=st.floats(0.1, 10),
    # fp4: the H100 (the reference) has no FP4 rate, so spec H100e at fp4 is undefined
    p=st.sampled_from(sorted(set(PRECISION_INDEX) - {"fp4"})),
)
def test_spec_ratio_transitive(sa, sb, sc, p):
    a, b, c = (H100.replace(peak_flops_per_s=H100.peak_flops_per_s * s) for s in (sa, sb, sc))
    ab, bc, ac = eq.spec_ratio(a, b, p), eq.spec_ratio(b, c, p), eq.spec_ratio(a, c, p)
    assert float(ab * bc) == pytest.approx(float(ac), rel=1e-12)
    assert float(eq.spec_ratio(a, H100, p)) == pytest.approx(sa, rel=1e-12)


def test_spec_equivalence_hand_values():
    assert float(eq.spec_equivalence("h100")) == 1.0
    assert float(eq.spec_equivalence(CAT.chip("twice"), "fp8", catalog=CAT)) == pytest.approx(2.0)
    r = eq.spec_result("twice", 100, "bf16", catalog=CAT)
    assert r.h100e == pytest.approx(200.0) and r.h100e_low == pytest.approx(200.0)
    g = jax.grad(lambda c: eq.spec_equivalence(c, "bf16"))(H100)
    assert float(g.peak_flops_per_s[PRECISION_INDEX["bf16"]]) == pytest.approx(1 / 989.4e12)


# ---------------------------------------------------------------------------- budget / power


@given(budget=st.floats(1e5, 1e11), k=st.floats(0.01, 100))
def test_pure_price_linear_and_unit_invariant(budget, k):
    r = eq.h100_count_for_budget(budget, catalog=CAT)
    assert r.h100e == pytest.approx(budget / 50000, rel=1e-12)
    assert r.h100e_low <= r.h100e <= r.h100e_high
    assert eq.h100_count_for_budget(k * budget, catalog=CAT).h100e == pytest.approx(
        k * r.h100e, rel=1e-12
    )
    # same money in kUSD and USD; and scaling budget and price together changes nothing
    assert eq.to_usd(budget / 1e3, "kusd") == pytest.approx(budget, rel=1e-15)
    assert eq.h100_count_for_budget(k * budget, k * 50000).h100e == pytest.approx(
        budget / 50000, rel=1e-12
    )


def test_budget_hand_value_500m():
    r = eq.h100_count_for_budget(500e6, 50_000)
    assert r.h100e == 10_000
    # budget on H100 through the workload path is the pure-price count exactly (identity)
    assert eq.budget_equivalence(500e6, "h100", "weak", **KW) == pytest.approx(10_000, rel=1e-12)


@given(b1=st.floats(1e6, 1e10), b2=st.floats(1e6, 1e10), w=st.sampled_from(sorted(TOY)))
def test_budget_workload_monotone(b1, b2, w):
    lo, hi = sorted((b1, b2))
    assert eq.budget_equivalence(hi, "twice", w, **KW) >= eq.budget_equivalence(
        lo, "twice", w, **KW
    ) * (1 - 1e-12)


@given(p_mw=st.floats(0.5, 2000), pue=st.floats(1.0, 2.0), k=st.floats(0.1, 10))
def test_power_unit_invariance_and_hand_value(p_mw, pue, k):
    n = eq.chips_for_power(eq.to_w(p_mw, "mw"), 1400.0, pue)
    assert n == pytest.approx(p_mw * 1e6 / (pue * 1400.0), rel=1e-12)
    assert eq.chips_for_power(eq.to_w(p_mw * 1e3, "kw"), 1400.0, pue) == pytest.approx(n, rel=1e-12)
    # homogeneous of degree 0 in (site power, per-chip power)
    assert eq.chips_for_power(k * p_mw * 1e6, k * 1400.0, pue) == pytest.approx(n, rel=1e-12)
    # an H100 site: H100e equals the hosted H100 count exactly
    h = CAT.chip("h100")
    m = eq.power_equivalence(p_mw * 1e6, "h100", "weak", pue, **KW)
    assert m == pytest.approx(p_mw * 1e6 / (pue * float(h.allin_power_w)), rel=1e-12)


def test_ranges_are_ordered_and_state_assumptions():
    for r in (
        eq.workload_equivalence_range("slow", 1000, "weak", **KW),
        eq.budget_equivalence_range(1e8, "twice", "weak", **KW),
        eq.power_equivalence_range(1e7, "twice", "strong", **KW),
    ):
        assert r.h100e_low <= r.h100e <= r.h100e_high
        for k in ("workload", "precision", "scale", "reference"):
            assert k in r.assumptions
    b = eq.budget_equivalence_range(1e8, "twice", "weak", **KW)
    assert b.assumptions["allin_price_usd"]["best"] == pytest.approx(75000)
    p = eq.power_equivalence_range(1e7, "twice", "weak", **KW)
    assert p.assumptions["pue"]["best"] == eq.DEFAULT_PUE
    assert p.h100e_low < p.h100e < p.h100e_high  # price/PUE ranges widen it


def test_bad_input_raises_valueerror_before_tracing():
    with pytest.raises(ValueError, match="n_chips"):
        eq.workload_equivalence("h100", -3, "weak", **KW)
    with pytest.raises(ValueError, match="precision"):
        eq.spec_equivalence("h100", "fp2")
    with pytest.raises(ValueError, match="pue"):
        eq.chips_for_power(1e6, 1000.0, 0.5)
    with pytest.raises(ValueError, match="unknown chip"):
        eq.workload_equivalence("tpu_v9", 3, "weak", **KW)
    with pytest.raises(ValueError, match="money unit"):
        eq.to_usd(3, "eur")


# ---------------------------------------------------------------------------- the bound


@given(
    rf=st.floats(0.3, 4),
    rm=st.floats(0.3, 4),
    rn=st.floats(0.3, 4),
    n=st.floats(1, 2e5),
    w=st.sampled_from(sorted(TOY)),
)
def test_workload_never_above_spec_beyond_memory_network(rf, rm, rn, n, w):
    """T_X(n) <= c T_H(n) with c = max(1, rate ratios) (same capacities), hence
    h100e <= T_H^{-1}(c T_H(n)); in the linear-scaling regime that is h100e / spec <= c / r_f."""
    x = H100.replace(
        peak_flops_per_s=H100.peak_flops_per_s * rf,
        mem_bytes_per_s=H100.mem_bytes_per_s * rm,
        scaleup_bytes_per_s=H100.scaleup_bytes_per_s * rn,
        scaleout_bytes_per_s=H100.scaleout_bytes_per_s * rn,
    )
    c = float(eq.bound_factor(x, H100))
    assert c == pytest.approx(max(1.0, rf, rm, rn), rel=1e-12)
    tx, th = toy_throughput(x, GRID, w), toy_throughput(H100, GRID, w)
    assert np.all(np.asarray(tx) <= c * np.asarray(th) * (1 + 1e-12))
    hc = curve_of(H100, w)
    m = float(equiv(curve_of(x, w), hc, n))
    bound = float(eq.curve_count(hc, c * eq.curve_throughput(hc, n)))
    assert m <= bound * (1 + 1e-9)


def test_bound_is_tight_for_uniform_speedup_and_linear_scaling():
    # Everything 2x faster and no fixed overhead: weak-scaled compute-bound toy -> exactly 2x.
    x = CAT.chip("twice")
    f = jax.jit(lambda ch: toy_throughput(ch, GRID, "weak"))
    assert np.all(np.asarray(f(x)) <= 2 * np.asarray(f(H100)) * (1 + 1e-12))
    spec = float(eq.spec_equivalence(x))
    assert spec == pytest.approx(2.0)
    assert (
        eq.workload_equivalence("twice", 64, "weak", **KW) / (64 * spec)
        <= float(eq.bound_factor(x, H100)) / spec + 1e-12
    )


# ---------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.slow
def test_gradient_vs_finite_differences(field):
    """d h100e / d spec through the toy model (jax.grad end to end) vs central differences."""
    w, n = "weak", 3000.0
    h = curve_of(H100, w)

    def m_of(scale):
        x = H100.replace(**{field: getattr(H100, field) * scale})
        return eq.equivalent_count(curve_of(x, w), h, n)

    g = float(jax.grad(m_of)(1.3))
    e = 1e-5
    fd = (float(m_of(1.3 + e)) - float(m_of(1.3 - e))) / (2 * e)
    assert g == pytest.approx(fd, rel=1e-4, abs=1e-6 * n)


def test_h100e_gradient_elasticities_vs_direct_differences():
    el = eq.h100e_gradient("twice", 3000.0, "weak", **KW)
    assert set(el) == set(FIELDS)
    assert all(v >= -1e-9 for v in el.values())  # faster never hurts
    # independent check: recompute h100e with the chip's field scaled by (1 +- e)
    x, h = CAT.chip("twice"), curve_of(H100, "weak")
    for field in FIELDS:
        m = [
            float(
                eq.equivalent_count(
                    curve_of(x.replace(**{field: getattr(x, field) * s}), "weak"), h, 3000.0
                )
            )
            for s in (1.02, 1 / 1.02)
        ]
        direct = (math.log(m[0]) - math.log(m[1])) / (2 * math.log(1.02))
        assert el[field] == pytest.approx(direct, rel=0.05, abs=1e-3), field
    assert el["scaleout_bytes_per_s"] > 0.1  # the all-reduce matters on this toy workload


# ---------------------------------------------------------------------------- inference


def test_inference_equivalence_int8():
    kw = {"curve_fn": toy_inference, "catalog": CAT}
    assert eq.inference_equivalence("h100", 777, "weak", **kw) == pytest.approx(777, rel=1e-12)
    # twice the int8 rate, compute-dominated forward passes: a bit under 2x per chip
    v = eq.inference_equivalence("twice", 1000, "weak", **kw)
    assert 1000 < v <= 2000 * (1 + 1e-9)
    r = eq.inference_equivalence_range("twice", 1000, "weak", **kw)
    assert r.assumptions["spec_h100e"]["best"] == pytest.approx(2000)


# ---------------------------------------------------------------------------- capacity mode


@given(n=st.floats(0.5, 5e5), w=st.sampled_from(sorted(TOY)))
def test_identity_capacity_mode(n, w):
    assert eq.workload_equivalence("h100", n, w, mode="capacity", **KW) == pytest.approx(
        n, rel=1e-12
    )


def test_capacity_curve_hand_values_and_dominates_job():
    counts = np.array([1.0, 2, 4, 8])
    t = np.array([10.0, 18.0, 40.0, 44.0])  # per chip: 10, 9, 10, 5.5
    cap = eq.make_curve(counts, t, capacity=True)
    job = eq.make_curve(counts, t)
    # T_eff(n) = n max_{k<=n} T(k)/k: 10, 20, 40, 80
    np.testing.assert_allclose(np.exp(np.asarray(cap.log_throughput)), [10, 20, 40, 80], rtol=1e-8)
    assert np.all(np.asarray(cap.log_throughput) >= np.asarray(job.log_throughput) - 1e-12)
    # local scaling exponents: 1 on the capacity curve; log(44/40)/log 2 on the job curve
    assert float(eq.curve_slope(cap, 6.0)) == pytest.approx(1.0, rel=1e-6)
    assert float(eq.curve_slope(job, 6.0)) == pytest.approx(
        math.log(44 / 40) / math.log(2), rel=1e-6
    )
    with pytest.raises(ValueError, match="mode"):
        eq.workload_equivalence("h100", 8, "weak", mode="fleet", **KW)


# ---------------------------------------------------------------------------- real model

SMALL_GRID = (1, 2, 4, 8, 16, 32, 64, 128)


def _real_model():
    try:
        from perfmodel.training import throughput_curve
    except ImportError:  # the training model is written concurrently
        pytest.skip("perfmodel.training.throughput_curve not available")
    return throughput_curve


@pytest.mark.slow
def test_real_model_identity_and_bound():
    """On the real training model: identity on and off the grid, and the derived bound
    T_X(n) <= c T_H100(n) for an H100 with faster FLOPs/HBM (same capacities)."""
    tc = _real_model()
    w = "llama3-8b"
    for n in (8, 24, 100):
        assert eq.workload_equivalence("h100", n, w, grid=SMALL_GRID) == pytest.approx(n, rel=1e-12)
    cat = load_catalog()
    x = H100.replace(
        peak_flops_per_s=H100.peak_flops_per_s * 1.7, mem_bytes_per_s=H100.mem_bytes_per_s * 1.3
    )
    c = float(eq.bound_factor(x, H100))
    assert c == pytest.approx(1.7)
    th = np.asarray(tc(w, "h100", SMALL_GRID, chip=cat.chip("h100")))
    tx = np.asarray(tc(w, "h100", SMALL_GRID, chip=x))
    ok = th > 0
    assert np.all(tx[ok] <= c * th[ok] * (1 + 1e-9))
    assert np.all(tx[ok] >= th[ok] * (1 - 1e-9))  # monotone in the specs
    hc, xc = (
        eq.make_curve(np.array(SMALL_GRID, float), th),
        eq.make_curve(np.array(SMALL_GRID, float), tx),
    )
    m = float(equiv(xc, hc, 64.0))
    assert 64.0 <= m <= float(eq.curve_count(hc, c * eq.curve_throughput(hc, 64.0))) * (1 + 1e-9)


@given(b=st.floats(3e10, 1e12), k=st.floats(1.0, 20.0))
def test_budget_linear_beyond_grid_top_capacity_mode(b, k):
    one = eq.budget_equivalence(b, "twice", "strong", mode="capacity", **KW)
    assert eq.budget_equivalence(k * b, "twice", "strong", mode="capacity", **KW) == pytest.approx(
        k * one, rel=1e-9
    )
