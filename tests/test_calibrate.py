"""perfmodel.calibrate: the fit recovers known efficiencies from synthetic measurements,
the split is deterministic, calibration and host-catalog files round-trip, and the
whole command runs end to end on a handful of real kernels."""

import json

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import perfmodel  # noqa: F401
from perfmodel import calibrate as cal
from perfmodel import roofline as rl
from perfmodel.hardware import PRECISION_INDEX, PRECISIONS, Chip, load_catalog
from perfmodel.kernels import harness


def _f(x):
    return jnp.asarray(x, dtype=jnp.float64)


#: A made-up chip (not from the catalog): 100 TFLOP/s at every precision, 1 GB of SRAM at
#: 10 TB/s (so SRAM-resident ops can outlast the overhead), DRAM at 1 TB/s.
CHIP = Chip(
    peak_flops_per_s=_f([100e12] * len(PRECISIONS)),
    mem_bytes=_f([1e9, 80e9]),
    mem_bytes_per_s=_f([10e12, 1e12]),
    scaleup_bytes_per_s=_f(0),
    scaleout_bytes_per_s=_f(0),
    tdp_w=_f(500),
    allin_power_w=_f(500),
    price_usd=_f(0),
    allin_price_usd=_f(0),
    name="toy",
)
TRUE = rl.Efficiency(_f([0.62, 0.45, 1.0, 1.0, 0.8]), _f([0.7, 0.55]), _f(12e-6))


def _synthetic(noise=0.0, seed=0):
    """Ops far from the ridge (compute- or memory-bound), big and small, at both memory
    levels; times from the hard roofline with TRUE efficiencies, times lognormal noise."""
    ops, meta = [], []

    def add(op, fam):
        ops.append(op)
        meta.append(
            {
                "name": f"{fam}{len(ops)}",
                "family": fam,
                "precision": "bf16",
                "flops": float(op.flops),
                "bytes": float(op.bytes),
            }
        )

    for n in (256, 512, 1024, 2048, 4096, 8192, 16384):
        add(rl.matmul(n, n, n, "bf16"), "matmul")
    for s in (512, 1024, 2048, 4096, 8192, 16384):
        add(rl.attention(4, 16, s, s, 128, "bf16"), "attention")
    for n in (1e3, 1e5, 1e6, 1e7, 3e7, 1e8):  # SRAM-resident (working set <= 0.6 GB)
        add(rl.elementwise(n, "bf16"), "stream_hot")
    for n in (3e8, 1e9, 3e9, 1e10, 3e10):  # DRAM
        add(rl.elementwise(n, "bf16"), "stream_cold")
    data_ops = rl.stack_ops(ops)
    t = np.asarray(cal.predict_s(data_ops, CHIP, TRUE))
    if noise:
        t = t * np.exp(np.random.default_rng(seed).normal(0, noise, t.shape))
    return cal.Dataset(data_ops, _f(t)), meta


def _rel(a, b):
    return np.abs(np.asarray(a) / np.asarray(b) - 1)


def test_fit_recovers_known_efficiencies():
    data, meta = _synthetic()
    test = cal.split_mask(meta)
    fitted, loss = cal.fit_efficiency(data, CHIP, ~test, steps=1500, restarts=(1.0,))
    assert loss < 5e-3  # the floor is the ridge term, ~1e-3 * |log(TRUE / default)|**2
    assert np.all(_rel(fitted.compute[:2], TRUE.compute[:2]) < 0.03)  # matmul, attention
    assert np.all(_rel(fitted.memory, TRUE.memory) < 0.03)  # sram, dram
    assert _rel(fitted.overhead_s, TRUE.overhead_s) < 0.05
    # unconstrained factors stay at the prior (ridge): conv2d
    assert abs(float(fitted.compute[4]) - 0.8) < 0.01
    meas = np.asarray(data.measured_s)
    before = cal.abs_pct_error(cal.predict_s(data.ops, CHIP, rl.Efficiency.default()), meas)
    after = cal.abs_pct_error(cal.predict_s(data.ops, CHIP, fitted), meas)
    assert np.median(before[test]) > 10.0
    assert np.median(after[test]) < 2.0 and np.max(after[test]) < 5.0


def test_fit_with_noise_reduces_held_apart_error():
    data, meta = _synthetic(noise=0.05, seed=1)
    test = cal.split_mask(meta)
    fitted, _ = cal.fit_efficiency(data, CHIP, ~test, steps=1500, restarts=(1.0,))
    meas = np.asarray(data.measured_s)
    before = cal.abs_pct_error(cal.predict_s(data.ops, CHIP, rl.Efficiency.default()), meas)
    after = cal.abs_pct_error(cal.predict_s(data.ops, CHIP, fitted), meas)
    assert np.median(after[test]) < 0.5 * np.median(before[test])
    assert np.median(after[test]) < 10.0
    assert np.all(_rel(fitted.compute[:2], TRUE.compute[:2]) < 0.10)
    assert np.all(_rel(fitted.memory, TRUE.memory) < 0.10)


def test_fit_rejects_bad_input():
    data, _ = _synthetic()
    with pytest.raises(ValueError, match="train mask"):
        cal.fit_efficiency(data, CHIP, np.zeros(3, dtype=bool))
    with pytest.raises(ValueError, match="steps"):
        cal.fit_efficiency(data, CHIP, steps=0)
    bad = cal.Dataset(data.ops, data.measured_s.at[0].set(0.0))
    with pytest.raises(ValueError, match="> 0"):
        cal.fit_efficiency(bad, CHIP)


# --------------------------------------------------------------------------------------
# split
# --------------------------------------------------------------------------------------


def _meta(n_per_group, groups=("matmul", "stream")):
    return [
        {"name": f"{g}{i}", "family": g, "precision": p, "flops": float(i), "bytes": 1.0}
        for g in groups
        for p in ("fp32", "bf16")
        for i in range(n_per_group)
    ]


@given(n=st.integers(1, 30), seed=st.integers(0, 2**31 - 1))
def test_split_is_deterministic_stratified_and_order_free(n, seed):
    meta = _meta(n)
    test = cal.split_mask(meta)
    for g in ("matmul", "stream"):
        for p in ("fp32", "bf16"):
            sel = [i for i, m in enumerate(meta) if m["family"] == g and m["precision"] == p]
            assert int(test[sel].sum()) == (n + 1) // 3  # indices 1, 4, 7, ... held apart
            assert int((~test[sel]).sum()) >= 1  # every group trains
    perm = np.random.default_rng(seed).permutation(len(meta))
    shuffled = [meta[i] for i in perm]
    test2 = cal.split_mask(shuffled)
    assert {m["name"] for m, t in zip(shuffled, test2) if t} == {
        m["name"] for m, t in zip(meta, test) if t
    }
    with pytest.raises(ValueError, match="every"):
        cal.split_mask(meta, every=1)


# --------------------------------------------------------------------------------------
# calibration file
# --------------------------------------------------------------------------------------

eff_values = st.floats(1e-3, 5.0, allow_nan=False)


@given(
    c=st.lists(eff_values, min_size=5, max_size=5),
    m=st.lists(eff_values, min_size=2, max_size=2),
    o=st.floats(0.0, 1e-2),
)
def test_calibration_file_round_trips_exactly(tmp_path_factory, c, m, o):
    eff = rl.Efficiency(_f(c), _f(m), _f(o))
    p = tmp_path_factory.mktemp("cal") / "cal.toml"
    cal.save_efficiency(eff, p, meta={"chip": "toy", "n": 3}, errors={"after_median_pct": 1.5})
    back = cal.load_efficiency(p)
    np.testing.assert_array_equal(np.asarray(back.compute), np.asarray(eff.compute))
    np.testing.assert_array_equal(np.asarray(back.memory), np.asarray(eff.memory))
    assert float(back.overhead_s) == float(eff.overhead_s)
    again = rl.Efficiency.from_file(p)  # the roofline's own loader
    np.testing.assert_array_equal(np.asarray(again.compute), np.asarray(eff.compute))
    assert cal.load_calibration(p)["meta"]["chip"] == "toy"


def test_calibration_file_errors_name_the_field(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[efficiency]\ncompute = { matmul = 0.0 }\n")
    with pytest.raises(ValueError, match=r"efficiency\.compute\.matmul.*0\.0.*allowed range"):
        cal.load_efficiency(p)
    p.write_text("[efficiency]\ncompute = { gemm = 0.5 }\n")
    with pytest.raises(ValueError, match="unknown op kind"):
        cal.load_efficiency(p)
    p.write_text("[efficiency]\noverhead_s = -1.0\n")
    with pytest.raises(ValueError, match="overhead_s"):
        cal.load_efficiency(p)
    p.write_text("[meta]\nchip = 'x'\n")
    with pytest.raises(ValueError, match=r"\[efficiency\]"):
        cal.load_efficiency(p)
    p.write_text("[efficiency\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        cal.load_efficiency(p)
    with pytest.raises(FileNotFoundError):
        cal.load_efficiency(tmp_path / "missing.toml")
    # a partial file keeps the defaults for what it does not give
    p.write_text("[efficiency]\nmemory = { dram = 0.5 }\n")
    e = cal.load_efficiency(p)
    d = rl.Efficiency.default()
    assert float(e.memory[1]) == 0.5 and float(e.memory[0]) == float(d.memory[0])
    np.testing.assert_array_equal(np.asarray(e.compute), np.asarray(d.compute))


# --------------------------------------------------------------------------------------
# host spec and host catalog
# --------------------------------------------------------------------------------------

INFO = cal.DeviceInfo("cpu", "cpu", "Test CPU (2 cores)", "testhost", 1, 32 * 2**20)


def _result(name, family, precision, flops, nbytes, t, mode=None):
    timing = harness.Timing(0.0, 0.1, 0.0, (t, t * 1.2, t * 1.1), 1, 4, 5, (t,) * 3, t)
    params = {"mode": mode} if mode else {}
    kind = {"matmul": "matmul", "stream": "elementwise"}[family]
    return harness.KernelResult(
        name, family, precision, params, 0.0, timing, flops, nbytes, nbytes * 4, kind
    )


RESULTS = [
    _result("mm_a", "matmul", "fp32", 2e9, 1e6, 0.02),  # 100 GFLOP/s
    _result("mm_b", "matmul", "fp32", 2e9, 1e6, 0.01),  # 200 GFLOP/s  <- best fp32
    _result("mm_c", "matmul", "bf16", 1e9, 1e6, 0.02),  # 50 GFLOP/s
    _result("cold", "stream", "fp32", 0.0, 3e8, 0.02, "cold"),  # 15 GB/s
    _result("hot", "stream", "fp32", 0.0, 3e6, 1e-4, "hot"),  # 30 GB/s
]


def test_host_spec_takes_the_best_of_each_sweep():
    spec = cal.host_spec_from_results(RESULTS, INFO)
    f = spec["figures"]
    assert (
        f["fp32_flops_per_s"] == pytest.approx(200e9) and spec["from"]["fp32_flops_per_s"] == "mm_b"
    )
    assert f["bf16_flops_per_s"] == pytest.approx(50e9)
    assert f["dram_bytes_per_s"] == pytest.approx(15e9)
    assert f["sram_bytes_per_s"] == pytest.approx(30e9)
    assert f["sram_bytes"] == 32 * 2**20
    med = cal.host_spec_from_results(RESULTS, INFO, stat="median")["figures"]
    assert med["fp32_flops_per_s"] == pytest.approx(2e9 / 0.011)  # median of (t, 1.2t, 1.1t)
    with pytest.raises(ValueError, match="STREAM"):
        cal.host_spec_from_results(RESULTS[:3], INFO)


def test_host_catalog_loads_with_the_builtin_catalog(tmp_path):
    spec = cal.host_spec_from_results(RESULTS, INFO)
    p = cal.write_host_catalog(spec, tmp_path / "sub" / "host.toml", INFO, date="2026-01-02")
    cat = load_catalog(p)  # built-in catalog + this file
    assert "host_measured" in cat.chips and len(cat.chips) > 1
    rec = cat.record("host_measured")
    fig = rec.figure("fp32_flops_per_s")
    assert fig.confidence == "benchmark"
    assert fig.source == "measured on testhost by kernels on 2026-01-02"
    assert rec.text["kind"] == "cpu"
    chip = cat.chip("host_measured")
    assert float(chip.peak_flops_per_s[PRECISION_INDEX["fp32"]]) == pytest.approx(200e9)
    assert float(chip.peak_flops_per_s[PRECISION_INDEX["bf16"]]) == pytest.approx(50e9)
    assert float(chip.mem_bytes_per_s[1]) == pytest.approx(15e9)
    alone = cal.load_host_chip(p)
    np.testing.assert_array_equal(np.asarray(alone.mem_bytes), np.asarray(chip.mem_bytes))
    with pytest.raises(ValueError, match="host key"):
        cal.write_host_catalog(spec, tmp_path / "x.toml", INFO, key="bad key!")


def test_gpu_device_names_map_to_catalog_chips():
    cat = load_catalog()
    for kind, key in [
        ("NVIDIA H100 80GB HBM3", "h100_sxm"),
        ("NVIDIA H200", "h200"),
        ("NVIDIA A100-SXM4-80GB", "a100_80gb"),
        ("NVIDIA B200", "b200"),
    ]:
        got = cal.chip_for_device(cal.DeviceInfo("gpu", kind, kind, "h", 1, 50e6))
        assert got == key and got in cat.chips
    with pytest.raises(ValueError, match="--chip"):
        cal.chip_for_device(cal.DeviceInfo("gpu", "Tesla T4", "T4", "h", 1, 4e6))


# --------------------------------------------------------------------------------------
# end to end on a handful of real kernels (no timing asserted)
# --------------------------------------------------------------------------------------


def test_calibrate_command_end_to_end(tmp_path, monkeypatch, capsys):
    from perfmodel import kernels
    from perfmodel.kernels import matmul, stream

    few = [matmul.matmul_case(n, n, n, p) for p in ("fp32", "bf16") for n in (32, 96)]
    few += [
        stream.stream_case(k, n, "fp32", hot=h)
        for k in ("copy", "triad")
        for n in (1024, 16384)
        for h in (False, True)
    ]
    bad = harness.KernelCase(**{**few[0].__dict__, "name": "wrong", "fn": lambda a, b: a @ b + 1})
    monkeypatch.setattr(kernels, "all_cases", lambda *a, **k: few + [bad])
    monkeypatch.setitem(cal.RUN_SETTINGS, "tiny", {"repeats": 2, "warmup": 0, "min_sample_s": 0.0})
    from perfmodel.cli import main

    out = tmp_path / "cal.toml"
    host = tmp_path / "host.toml"
    js = tmp_path / "r.json"
    rc = main(
        [
            "calibrate",
            "--size",
            "tiny",
            "--device",
            "cpu",
            "--collectives",
            "0",
            "--steps",
            "200",
            "--out",
            str(out),
            "--host-catalog",
            str(host),
            "--json",
            str(js),
        ]
    )
    assert rc == 1  # the wrong kernel is reported, not timed, and fails the run
    text = capsys.readouterr().out
    assert "median before" in text and "ALL" in text
    assert "FAILED correctness check, not timed: kernel wrong" in text
    eff = cal.load_efficiency(out)
    assert np.all(np.asarray(eff.compute) > 0)
    assert "host_measured" in load_catalog(host).chips
    res = json.loads(js.read_text())
    assert len(res["kernels"]) == len(few) and res["chip"] == "host_measured"
    assert [f["name"] for f in res["failed"]] == ["wrong"]
    assert sum(res["split_test"]) >= 4
    assert set(res["errors_by_family"]) == {"matmul", "stream", "ALL"}


def test_calibrate_command_reports_bad_input_in_one_line(capsys):
    from perfmodel.cli import main

    assert main(["calibrate", "--device", "cpu", "--pallas", "--collectives", "0"]) == 2
    err = capsys.readouterr().err
    assert "pallas" in err.lower() and err.count("\n") == 1
    assert (
        main(
            [
                "calibrate",
                "--device",
                "cpu",
                "--reuse-host",
                "--host-catalog",
                "/nonexistent/host.toml",
                "--collectives",
                "0",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "--reuse-host" in err and err.count("\n") == 1
    assert main(["calibrate", "--device", "cpu", "--families", "matmul", "--collectives", "0"]) == 2
    assert "'stream'" in capsys.readouterr().err
