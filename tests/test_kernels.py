"""perfmodel.kernels: every kernel matches its NumPy reference at tiny size (correctness only, no
timing asserted); the harness logic (rotation, compile time kept apart, repeats,
statistics) is tested with a fake clock."""

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import perfmodel  # noqa: F401  (x64 on, as in every user session)
from perfmodel import kernels, roofline
from perfmodel.kernels import attention, collectives, harness, matmul, reduction, stream

ROOT = Path(__file__).resolve().parent.parent

TINY_CASES = kernels.all_cases("tiny", "cpu")


# --------------------------------------------------------------------------------------
# every kernel vs NumPy
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", TINY_CASES, ids=[c.name for c in TINY_CASES])
def test_kernel_matches_numpy_reference(case):
    res = harness.run_case(case, time_it=False)
    assert res.timing is None
    assert res.max_rel_error <= harness.TOLERANCE[case.precision]
    op = case.op()
    assert res.flops == float(op.flops) and res.bytes == float(op.bytes)
    assert (
        res.kind
        == {
            "matmul": "matmul",
            "batched_matmul": "matmul",
            "attention": "attention",
            "stream": "elementwise",
            "reduction": "reduction",
        }[case.family]
    )


def test_tiny_suite_covers_every_family_and_dtype():
    fams = {(c.family, c.precision) for c in TINY_CASES}
    for fam in ("matmul", "batched_matmul", "attention", "stream", "reduction"):
        assert {(fam, "fp32"), (fam, "bf16")} <= fams
    names = {c.name.split("/")[0] for c in TINY_CASES}
    assert {
        "attention_plain",
        "attention_dpa",
        "stream_copy_cold",
        "stream_copy_hot",
        "stream_triad_cold",
        "stream_triad_hot",
        "reduce_sum",
        "layernorm",
    } <= names
    assert len({c.name for c in TINY_CASES}) == len(TINY_CASES)


def test_ops_are_the_roofline_formulas():
    c = matmul.matmul_case(64, 32, 16, "fp32")
    op = c.op()
    assert float(op.flops) == 2 * 64 * 32 * 16
    assert float(op.bytes) == (64 * 16 + 16 * 32 + 64 * 32) * 4
    a = attention.attention_case(2, 3, 8, 4, "bf16").op()
    assert float(a.flops) == 4 * 2 * 3 * 8 * 8 * 4
    t = stream.stream_case("triad", 1000, "fp32").op()
    assert (float(t.flops), float(t.bytes)) == (2000.0, 12000.0)
    cp = stream.stream_case("copy", 1000, "bf16").op()
    assert (float(cp.flops), float(cp.bytes)) == (0.0, 4000.0)
    ln = reduction.layernorm_case(10, 20, "fp32").op()
    assert float(ln.flops) == 8 * 200 and float(ln.bytes) == (2 * 200 + 2 * 20) * 4
    assert int(ln.kind) == roofline.OP_KIND_INDEX["reduction"]


def test_wrong_kernel_is_rejected_before_timing():
    good = matmul.matmul_case(32, 32, 32, "fp32")
    bad = harness.KernelCase(**{**good.__dict__, "name": "bad", "fn": lambda a, b: a @ b * 1.01})
    ticks = []

    def clock():
        ticks.append(1)
        return float(len(ticks))

    with pytest.raises(harness.KernelCheckError, match="bad"):
        harness.run_case(bad, clock=clock)
    assert len(ticks) == 3  # only compile_kernel's three clock reads: nothing was timed


def test_bf16_tolerance_accepts_rounding_and_rejects_errors():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((64, 64))
    import jax.numpy as jnp

    rounded = jnp.asarray(ref, dtype=jnp.bfloat16)
    assert harness.check_close("x", rounded, ref, "bf16") < 5e-3
    with pytest.raises(harness.KernelCheckError):
        harness.check_close("x", jnp.asarray(ref * 1.1, dtype=jnp.bfloat16), ref, "bf16")
    with pytest.raises(harness.KernelCheckError):
        harness.check_close("x", np.full((64, 64), np.nan), ref, "fp32")
    with pytest.raises(harness.KernelCheckError):
        harness.check_close("x", ref[:, :3], ref, "fp32")


# --------------------------------------------------------------------------------------
# inputs: random, never zero, distinct buffers
# --------------------------------------------------------------------------------------


def test_random_inputs_are_random_distinct_buffers_of_the_right_dtype():
    pool = harness.RandomPool(0, 1 << 12)
    sets = [harness.random_inputs([(32, 16), (16,)], "bf16", pool) for _ in range(4)]
    import jax.numpy as jnp

    ptrs = set()
    for s in sets:
        for x in s:
            assert x.dtype == jnp.bfloat16
            assert np.all(np.asarray(x, dtype=np.float32) != 0)
            ptrs.add(x.unsafe_buffer_pointer())
    assert len(ptrs) == 8  # every array of every set is its own buffer
    a0, a1 = (np.asarray(s[0], dtype=np.float32) for s in sets[:2])
    assert not np.array_equal(a0, a1)
    assert 0.5 < float(np.std(a0)) < 1.5
    big = pool.draw((1 << 12,))  # larger than half the pool: drawn directly
    assert big.shape == (4096,) and np.all(big != 0)


@given(
    set_bytes=st.floats(1.0, 1e9), footprint=st.floats(0.0, 1e10), max_total=st.floats(1e3, 1e10)
)
def test_n_buffers_reaches_the_footprint_unless_capped(set_bytes, footprint, max_total):
    n = harness.n_buffers_for(
        set_bytes, min_footprint_bytes=footprint, max_total_bytes=max_total, max_buffers=1024
    )
    assert n >= 1
    cap = min(1024, max(1, int(max_total // set_bytes)))
    assert n == min(max(2, math.ceil(footprint / set_bytes)), cap)
    if n * set_bytes < footprint:  # short of the footprint only when a cap binds
        assert n == cap


# --------------------------------------------------------------------------------------
# timing loop with a fake clock
# --------------------------------------------------------------------------------------


class FakeDevice:
    """A fake compiled kernel: each call costs (id + 1) ms on the fake clock, plus
    ``first_extra`` on the very first call (a lazy compile)."""

    def __init__(self, first_extra=0.1):
        self.now = 0.0
        self.used = []
        self.first_extra = first_extra

    def clock(self):
        return self.now

    def __call__(self, buf_id):
        self.now += (buf_id + 1) * 1e-3 + (self.first_extra if not self.used else 0.0)
        self.used.append(buf_id)
        return buf_id


def test_time_callable_rotates_inputs_and_keeps_compile_apart():
    dev = FakeDevice()
    blocked = []
    t = harness.time_callable(
        dev,
        [(0,), (1,), (2,)],
        warmup=2,
        repeats=4,
        number=3,
        clock=dev.clock,
        block=blocked.append,
        trace_s=0.5,
        compile_s=7.0,
    )
    assert dev.used == [i % 3 for i in range(1 + 2 + 4 * 3)]  # strict rotation
    assert blocked == dev.used  # every call blocked on
    assert t.calls == 15 and t.n_buffers == 3 and t.number == 3
    assert (t.trace_s, t.compile_s) == (0.5, 7.0)
    assert t.first_call_s == pytest.approx(0.101)  # the lazy compile stays out of the samples
    # each repeat sees buffers (0, 1, 2) in some order -> median call 2 ms, mean 2 ms
    assert t.samples_s == pytest.approx((2e-3,) * 4)
    assert t.mean_samples_s == pytest.approx((2e-3,) * 4)
    assert t.fastest_call_s == pytest.approx(1e-3)
    assert t.median_s == pytest.approx(2e-3) and t.iqr_rel == pytest.approx(0.0)


def test_time_callable_chooses_number_from_a_probe():
    dev = FakeDevice(first_extra=0.0)
    t = harness.time_callable(
        dev, [(0,)], warmup=1, repeats=3, min_sample_s=4.5e-3, clock=dev.clock, block=lambda x: x
    )
    assert t.number == 5  # ceil(4.5 ms / 1 ms)
    assert t.calls == 1 + 1 + 1 + 3 * 5


def test_timing_statistics():
    t = harness.Timing(0.0, 0.0, 0.0, (4.0, 1.0, 3.0, 2.0, 100.0), 1, 1, 5)
    assert (t.median_s, t.min_s, t.max_s) == (3.0, 1.0, 100.0)
    assert (t.p25_s, t.p75_s) == (2.0, 4.0)
    assert t.iqr_rel == pytest.approx(2.0 / 3.0)
    d = t.as_dict()
    assert d["repeats"] == 5 and d["median_s"] == 3.0


def test_time_callable_rejects_bad_arguments():
    with pytest.raises(ValueError, match="arg_sets"):
        harness.time_callable(lambda: 0, [])
    with pytest.raises(ValueError, match="repeats"):
        harness.time_callable(lambda: 0, [()], repeats=0)
    with pytest.raises(ValueError, match="size"):
        kernels.all_cases("huge")
    with pytest.raises(ValueError, match="families"):
        kernels.all_cases("tiny", families=("conv",))
    with pytest.raises(ValueError, match="pallas"):
        kernels.all_cases("tiny", "cpu", pallas=True)


def test_compile_kernel_separates_compile_from_execution():
    import jax.numpy as jnp

    x = jnp.ones((8, 8), dtype=jnp.float32) * 2
    compiled, trace_s, compile_s = harness.compile_kernel(lambda a: a @ a, (x,))
    assert trace_s >= 0 and compile_s > 0
    np.testing.assert_allclose(np.asarray(compiled(x)), np.full((8, 8), 32.0))
    # a compiled executable is not re-traced: calling it with another shape fails
    with pytest.raises(Exception):
        compiled(jnp.ones((4, 4), dtype=jnp.float32))


def test_run_case_times_and_reports_the_rotated_footprint():
    c = stream.stream_case("add", 1 << 10, "fp32")
    r = harness.run_case(
        c, repeats=2, warmup=0, min_sample_s=0.0, min_footprint_bytes=64 * c.set_bytes
    )
    assert r.timing is not None and r.timing.n_buffers == 64
    assert r.working_set_bytes == 64 * float(c.op().working_set_bytes)
    hot = harness.run_case(
        stream.stream_case("add", 1 << 10, "fp32", hot=True), repeats=2, min_footprint_bytes=1e9
    )
    assert hot.timing.n_buffers == 1


# --------------------------------------------------------------------------------------
# collectives (simulated CPU devices, in a subprocess)
# --------------------------------------------------------------------------------------


def test_collective_references():
    x = np.arange(8.0)  # 2 devices, 4 elements each
    np.testing.assert_array_equal(
        collectives.reference("all_reduce", x, 2), [4, 6, 8, 10, 4, 6, 8, 10]
    )
    np.testing.assert_array_equal(collectives.reference("all_gather", x, 2), np.tile(x, 2))
    # device 0 holds [0 1 | 2 3], device 1 holds [4 5 | 6 7]; chunk j goes to device j
    np.testing.assert_array_equal(
        collectives.reference("all_to_all", x, 2), [0, 1, 4, 5, 2, 3, 6, 7]
    )


@pytest.mark.slow
def test_collectives_match_reference_on_4_simulated_devices():
    res = collectives.run_in_subprocess(4, "tiny", time_it=False)
    kinds = {r["kind"] for r in res}
    assert kinds == set(collectives.KINDS)
    assert all(r["devices"] == 4 and r["max_rel_error"] <= 1e-5 for r in res)
    with pytest.raises(ValueError, match="n_devices"):
        collectives.run_in_subprocess(1)


# --------------------------------------------------------------------------------------
# Pallas (optional): correctness in interpret mode on CPU
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_pallas_matmul_in_interpret_mode(precision):
    from perfmodel.kernels import pallas_matmul as pm

    c = pm.pallas_matmul_case(
        64, 32, 48, precision, interpret=True, block_m=16, block_n=16, block_k=16
    )
    r = harness.run_case(c, time_it=False)
    assert r.max_rel_error <= harness.TOLERANCE[precision]
    assert r.flops == 2 * 64 * 32 * 48
    with pytest.raises(ValueError, match="block_k"):
        pm.pallas_matmul(
            np.ones((16, 40), np.float32), np.ones((40, 16), np.float32), block_k=16, interpret=True
        )
    with pytest.raises(ValueError, match="GPU/TPU"):
        pm.cases("tiny", "cpu")


def test_big_cases_check_a_slice_against_a_sliced_reference(monkeypatch):
    monkeypatch.setattr(matmul, "CHECK_LIMIT", 1000)
    monkeypatch.setattr(matmul, "CHECK_ROWS", 4)
    c = matmul.matmul_case(16, 8, 12, "fp32")
    assert c.out_slice is not None
    assert harness.run_case(c, time_it=False).max_rel_error < 1e-5
    monkeypatch.setattr(attention, "CHECK_LIMIT", 100)
    monkeypatch.setattr(attention, "CHECK_QUERIES", 3)
    a = attention.attention_case(1, 2, 16, 8, "fp32")
    assert a.out_slice is not None
    assert harness.run_case(a, time_it=False).max_rel_error < 1e-5
    bad = harness.KernelCase(
        **{**a.__dict__, "fn": lambda q, k, v: attention.plain_attention(q, k, v) + 1}
    )
    with pytest.raises(harness.KernelCheckError):
        harness.run_case(bad, time_it=False)


def test_top_level_kernels_package_is_perfmodel_kernels():
    """Scripts run from a source checkout still ``import kernels``: the same modules."""
    code = (
        "import kernels, kernels.matmul, perfmodel.kernels as pk\n"
        "from kernels import harness, collectives\n"
        "assert kernels is pk and kernels.matmul is pk.matmul and harness is pk.harness\n"
        "assert collectives is pk.collectives and kernels.all_cases is pk.all_cases\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)
