"""The published v5.1 log figures (``perfmodel/data/mlperf_v51_logs.toml``): every v5.1
Server / Interactive row has its log, the derived figures follow from the published
ones, bad records are one-line errors naming the field, every (decode batch, mean TPOT)
pair of a training row is a residual of the serving fit (and a held-out row's is not),
and the scheduler steps lengthen the p99 TTFT by the iterations a request waits."""

from __future__ import annotations

import functools
import tomllib

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perfmodel import workloads as wl
from perfmodel.errors import InputError
from perfmodel.hardware import load_catalog
from perfmodel.interconnect import network_for
from perfmodel.serving import data as sd
from perfmodel.serving import fit as F
from perfmodel.serving.scenarios import at_batch
from perfmodel.serving.types import make_layout, prior_efficiency


def _logs() -> list[dict]:
    return tomllib.loads(sd.LOGS_FILE.read_text())["log"]


def _results() -> list[dict]:
    return tomllib.loads(sd.MLPERF_FILE.read_text())["result"]


def test_every_v51_server_and_interactive_row_has_its_log():
    rows = [
        r
        for r in _results()
        if r["round"] == "v5.1" and r["scenario_normalized"] in ("Server", "Interactive")
    ]
    by_path = {lg["source_path"]: lg for lg in _logs()}
    assert len(by_path) == len(_logs()) == len(rows)
    srcs = sd._datasets()["sources"]
    doc = tomllib.loads(sd.LOGS_FILE.read_text())
    assert doc["source"] in srcs and doc["tensor_parallel_source"] in srcs
    for r in rows:
        lg = by_path[r["source_path"]]
        assert lg["scenario"] == r["scenario_normalized"] and lg["submitter"] == r["submitter"]
        assert lg["samples_per_s"] == pytest.approx(r["samples_per_second"], rel=1e-3)
        assert lg["confidence"] == "published"
        for k in ("mean_latency_ms", "mean_ttft_ms", "p99_ttft_ms", "mean_tpot_ms", "p99_tpot_ms"):
            assert lg[k] > 0, (r["source_path"], k)
        assert (
            lg["p99_tpot_ms"] >= lg["mean_tpot_ms"] and lg["mean_latency_ms"] > lg["mean_ttft_ms"]
        )
        assert lg["scheduler_steps"] >= 1 and lg["scheduler_steps_basis"]
        assert lg["scheduler_steps_confidence"] in ("published", "estimate")
        assert lg["tensor_parallel_confidence"] in ("published", "estimate")
        if lg["accelerators"] < 1:  # CPU-only systems: no per-GPU figures
            assert "in_flight_per_gpu" not in lg
            continue
        n = lg["accelerators"]
        assert n == r["total_accelerators"]
        assert lg["in_flight_confidence"] == "derived"
        lat, ttft = lg["mean_latency_ms"] / 1e3, lg["mean_ttft_ms"] / 1e3
        assert lg["in_flight_per_gpu"] == pytest.approx(lg["samples_per_s"] * lat / n, abs=2e-3)
        assert lg["decoding_per_gpu"] == pytest.approx(
            lg["samples_per_s"] * (lat - ttft) / n, abs=2e-3
        )


def test_log_pairs_match_the_rows_they_serve():
    rows, _ = sd.load_mlperf_rows()
    pairs = sd.load_log_pairs(rows)
    want = [i for i, r in enumerate(rows) if r.round == "v5.1" and r.scenario != "Offline"]
    assert [p.row for p in pairs] == want and len(pairs) > 100
    by_path = {lg["source_path"]: lg for lg in _logs()}
    for p in pairs:
        lg = by_path[rows[p.row].source.rpartition(":")[2]]
        assert p.mean_tpot_s == pytest.approx(lg["mean_tpot_ms"] / 1e3)
        assert p.decoding_per_gpu == lg["decoding_per_gpu"] and p.tp == 1
    # the vLLM V0 runs on AMD chips schedule every 8-10 iterations; TensorRT-LLM every one
    steps = {(rows[p.row].engine, p.scheduler_steps) for p in pairs}
    assert ("tensorrt-llm", 1.0) in steps and any(e == "vllm" and k >= 8 for e, k in steps)
    assert all(k == 1.0 for e, k in steps if e == "tensorrt-llm")


_GOOD = {
    "source_path": '"x"',
    "decoding_per_gpu": "5.0",
    "mean_tpot_ms": "30.0",
    "p99_tpot_ms": "33.0",
    "tensor_parallel": "1",
    "scheduler_steps": "1",
    "accelerators": "8",
}


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("mean_tpot_ms", None, "log 0 has no field 'mean_tpot_ms'"),
        ("decoding_per_gpu", "-1.0", r"log\[0\]\.decoding_per_gpu = -1.0 must be a positive"),
        ("scheduler_steps", "0", r"log\[0\]\.scheduler_steps = 0 must be a positive"),
    ],
)
def test_bad_log_record_names_the_field(tmp_path, field, value, match):
    rec = {k: v for k, v in _GOOD.items() if k != field or value is not None}
    if value is not None:
        rec[field] = value
    path = tmp_path / "logs.toml"
    path.write_text("[[log]]\n" + "".join(f"{k} = {v}\n" for k, v in rec.items()))
    with pytest.raises(InputError, match=match):
        sd.load_log_pairs([], path)
    path.write_text("[[log]]\n" + "".join(f"{k} = {v}\n" for k, v in _GOOD.items()))
    assert sd.load_log_pairs([], path) == []


@functools.cache
def _small_problem() -> F.Problem:
    # one compiled group: H200 llama2-70b rows, v5.1 ones with their logs
    rows = [r for r in sd.load_mlperf_rows()[0] if r.chip == "h200" and r.benchmark == "llama2-70b"]
    rows = [r for r in rows if r.round == "v5.1"][:12] + [r for r in rows if r.round != "v5.1"][:4]
    return F.Problem(rows, pairs=sd.load_log_pairs(rows), published_layout=True, engine_steps=True)


@settings(max_examples=8, deadline=None)
@given(st.lists(st.booleans(), min_size=16, max_size=16))
def test_each_training_pair_is_one_residual_and_a_held_out_one_none(mask):
    prob = _small_problem()
    train = np.array(mask[: len(prob.rows)])
    theta = F.prior_vector()
    res = F.data_residuals(prob, theta, train, pair_weight=2.0, pair_p99_weight=0.0)
    in_train = train[prob.pair_rows]
    assert len(prob.pairs) >= 5
    assert len(res) == train.sum() + in_train.sum()
    # each pair's residual is 2 log(model / published mean TPOT) at its own batch
    model = prob.predict_pairs(theta)[in_train, 0]
    want = 2.0 * np.log(model / prob.pair_tpot[in_train, 0])
    np.testing.assert_allclose(res[int(train.sum()) :], want, rtol=1e-12)
    assert np.all(np.isfinite(res))


def test_scheduler_steps_lengthen_the_ttft_by_the_waited_iterations():
    cat = load_catalog()
    w = wl.get_workload("llama2-70b").with_precision("fp8")
    chip, net, lay, eff = (
        cat.chip("h200"),
        network_for("h200", cat),
        make_layout(1),
        prior_efficiency(),
    )
    one = sd.make_requests("llama2-70b", tpot_limit_s=0.2, ttft_limit_s=2.0)
    nine = sd.make_requests("llama2-70b", tpot_limit_s=0.2, ttft_limit_s=2.0, scheduler_steps=9.0)
    f = jax.jit(at_batch)
    a, b = f(w, chip, net, lay, one, eff, 300.0), f(w, chip, net, lay, nine, eff, 300.0)
    assert float(b.tpot_mean_s) == pytest.approx(float(a.tpot_mean_s))
    assert float(b.ttft_p99_s - a.ttft_p99_s) == pytest.approx(8.0 * float(a.tpot_mean_s))


def test_fit_file_records_the_logs_it_was_fitted_to():
    import hashlib

    from perfmodel.serving.types import load_fit

    prov = load_fit()["provenance"]
    assert prov["logs_sha256"] == hashlib.sha256(sd.LOGS_FILE.read_bytes()).hexdigest()
    assert prov["pairs_used"] == len(sd.load_log_pairs(sd.load_mlperf_rows()[0]))
    assert prov["pair_weight"] == F.PAIR_WEIGHT
