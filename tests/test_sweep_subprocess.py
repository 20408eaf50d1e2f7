"""Sweeps in real subprocesses: killed with SIGKILL/SIGINT and resumed; sharded over 8
host CPU devices (``XLA_FLAGS=--xla_force_host_platform_device_count=8``).

The 8-device check covers the toy and chips models (equal to 1e-12 relative; the chips
model differs by at most an ulp, from XLA's per-shape vectorisation). The fleet model
is compared in ``benchmarks/sweep_bench.py`` instead (its PDHG compile takes ~20 s per
device count on this 2-core machine): there results agree to the solver tolerance, not
bit for bit, because per-device batch sizes change XLA's matmul blocking."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import perfmodel  # noqa: F401
from perfmodel.sweep import engine

SLOW_TOY = """
[sweep]
model = "toy"
samples = 8000
chunk_size = 40
seed = 11
[model]
work_iters = 4000
[params]
y = { dist = "triangular", low = 0.0, best = 0.2, high = 1.0 }
"""


def _env(**extra):
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    env["CI"] = "1"
    env.update(extra)
    return env


def _start(spec: Path, out: Path):
    return subprocess.Popen(
        [sys.executable, "-m", "perfmodel", "sweep", str(spec), "--out", str(out)],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _wait_for_chunks(out: Path, n: int, proc, timeout_s: float = 60.0) -> int:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        k = len(list(out.glob("chunk-*.parquet")))
        if k >= n:
            return k
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    raise AssertionError(f"no {n} chunks after {timeout_s} s")


def _table(path):
    t = engine.load_results(path)
    return {c: t.column(c).to_numpy() for c in t.column_names}


@pytest.mark.slow
def test_killed_sweeps_resume_to_the_uninterrupted_result(tmp_path):
    spec = tmp_path / "slow.toml"
    spec.write_text(SLOW_TOY)
    out = tmp_path / "killed"
    n_chunks = 200
    # 1) SIGKILL in the middle of the run
    p = _start(spec, out)
    _wait_for_chunks(out, 5, p)
    p.send_signal(signal.SIGKILL)
    p.communicate(timeout=60)  # reaps it and closes its pipes
    done_after_kill = len(list(out.glob("chunk-*.parquet")))
    assert 5 <= done_after_kill < n_chunks, "the run finished before it could be killed"
    # 2) restart, then SIGINT it (Ctrl-C): a clean message and exit status 130
    p = _start(spec, out)
    _wait_for_chunks(out, done_after_kill + 5, p)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    done_after_int = len(list(out.glob("chunk-*.parquet")))
    if done_after_int < n_chunks:  # (it may have finished just before the signal)
        assert p.returncode == 130, err.decode()
        assert "rerun the same command to resume" in err.decode()
    # 3) restart to completion with the same command
    p = subprocess.run(
        [sys.executable, "-m", "perfmodel", "sweep", str(spec), "--out", str(out), "--json"],
        env=_env(),
        capture_output=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr.decode()
    summary = json.loads(p.stdout)
    assert summary["rows"] == 8000
    assert summary["run"]["chunks_skipped"] >= done_after_int
    assert not list(out.glob(".chunk-*"))  # temp files of killed writers are gone
    # 4) the same sweep, uninterrupted, in this process
    ref = tmp_path / "ref"
    engine.run_sweep(engine.load_spec(spec), ref)
    a, b = _table(out), _table(ref)
    assert list(a["sample"]) == list(range(8000))  # nothing lost, nothing duplicated
    for k in b:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


SHARDED = textwrap.dedent("""
    import json, sys
    import jax, numpy as np
    import perfmodel
    from perfmodel.sweep import engine
    assert len(jax.devices()) == 8, jax.devices()
    root = sys.argv[1]
    specs = {
        "toy": {"sweep": {"model": "toy", "samples": 45, "chunk_size": 13}},   # 13 -> padded to 16
        "chips": {"sweep": {"model": "chips", "samples": 20, "chunk_size": 10},
                  "model": {"chips": ["h100", "dojo_tile"], "workload": "llama3-8b", "n_chips": 32,
                            "engine": "roofline"}},
    }
    report = {}
    for name, data in specs.items():
        spec = engine.parse_spec(data, name)
        r8 = engine.run_sweep(spec, f"{root}/{name}8")
        r1 = engine.run_sweep(spec, f"{root}/{name}1", devices=jax.devices()[:1])
        assert r8.devices == 8 and r1.devices == 1
        # the chunk function really is sharded over 8 devices
        width = -(-spec.chunk_size // 8) * 8   # the chunk padded to the device count (cached)
        fn, sh, _, compile_s = engine.compiled_chunk_fn(spec, jax.devices(), width)
        assert compile_s == 0.0
        out = fn(jax.device_put(np.arange(width), sh))
        leaf = next(iter(out.values()))
        report[name] = {"shards": len(leaf.sharding.device_set)}
        t8, t1 = engine.load_results(f"{root}/{name}8"), engine.load_results(f"{root}/{name}1")
        worst = 0.0
        for c in t1.column_names:
            a, b = t8.column(c).to_numpy(), t1.column(c).to_numpy()
            assert a.shape == b.shape
            both = np.isfinite(a) & np.isfinite(b)
            assert np.array_equal(np.isfinite(a), np.isfinite(b)), c
            d = np.abs(a[both] - b[both]) / np.maximum(np.abs(b[both]), 1e-300)
            worst = max(worst, float(d.max()) if d.size else 0.0)
        report[name]["max_rel_diff"] = worst
    print(json.dumps(report))
""")


@pytest.mark.slow
def test_eight_host_devices_give_the_single_device_results(tmp_path):
    script = tmp_path / "sharded.py"
    script.write_text(SHARDED)
    p = subprocess.run(
        [sys.executable, str(script), str(tmp_path)],
        capture_output=True,
        timeout=300,
        env=_env(XLA_FLAGS="--xla_force_host_platform_device_count=8"),
    )
    assert p.returncode == 0, p.stderr.decode()[-3000:]
    report = json.loads(p.stdout.decode().strip().splitlines()[-1])
    for name, r in report.items():
        assert r["shards"] == 8, name
        assert r["max_rel_diff"] <= 1e-12, (name, r)
