"""Multi-process sweeps on ``jax.distributed``, on one machine: N local CPU processes
(coordinator on 127.0.0.1 at a free port, gloo collectives) write one shared directory.

The reference is the same spec run in this process (one process, one device): the
N-process rows must equal it exactly, column by column, after a clean run and after one
process was killed with SIGKILL mid-run and all were restarted (finished chunks are not
rewritten: their inode and mtime stay). Every subprocess runs in its own process group,
under a timeout, and is killed in ``finally``."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import perfmodel  # noqa: F401
from perfmodel import cli
from perfmodel.sweep import engine, store

#: 48 chunks; work_iters makes a chunk take long enough (tens of ms) to kill mid-run.
SPEC = """
[sweep]
model = "toy"
samples = 1920
chunk_size = 40
seed = 5
[model]
work_iters = 10000
[params]
y = { dist = "triangular", low = 0.0, best = 0.2, high = 1.0 }
"""
N_CHUNKS = 48
TIMEOUT_S = 120


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("spec") / "toy.toml"
    p.write_text(SPEC)
    return p


@pytest.fixture(scope="module")
def reference(spec_file, tmp_path_factory):
    """The one-process rows of the spec (this process, one device)."""
    out = tmp_path_factory.mktemp("ref") / "one"
    engine.run_sweep(str(spec_file), out, progress=False, devices=engine.jax.devices()[:1])
    return engine.load_results(out)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(spec: Path, out: Path, n: int) -> list[subprocess.Popen]:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(CI="1", JAX_PLATFORMS="cpu")
    port = _free_port()
    return [
        subprocess.Popen(
            [sys.executable, "-m", "perfmodel", "sweep", str(spec), "--out", str(out), "--json"]
            + ["--distributed", "--coordinator", f"127.0.0.1:{port}"]
            + ["--num-processes", str(n), "--process-id", str(i)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: killed as a whole
        )
        for i in range(n)
    ]


def _kill(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.communicate(timeout=10)


@contextlib.contextmanager
def _processes(spec: Path, out: Path, n: int):
    procs = _start(spec, out, n)
    try:
        yield procs
    finally:
        _kill(procs)


def _finish(procs: list[subprocess.Popen]) -> list[dict]:
    """Each process's JSON ``run`` record (it exited 0)."""
    runs = []
    for i, p in enumerate(procs):
        stdout, stderr = p.communicate(timeout=TIMEOUT_S)
        assert p.returncode == 0, (i, stderr.decode()[-2000:])
        runs.append(json.loads(stdout)["run"])
    return runs


def _chunks(out: Path) -> dict[int, tuple[int, int]]:
    """Chunk index -> (inode, mtime_ns) of the chunk files on disk."""
    return {
        int(f.name[6:12]): (f.stat().st_ino, f.stat().st_mtime_ns)
        for f in out.glob("chunk-*.parquet")
    }


def _kill_one_mid_run(spec: Path, out: Path, n: int, victim: int) -> dict[int, tuple[int, int]]:
    """Start ``n`` processes, SIGKILL process ``victim`` once it wrote 2 chunks of its
    own, then stop the others (as a scheduler does when one task dies); the chunks on
    disk then."""
    with _processes(spec, out, n) as procs:
        t0 = time.monotonic()
        while True:
            own = [c for c in _chunks(out) if c % n == victim]
            if len(own) >= 2:
                os.killpg(procs[victim].pid, signal.SIGKILL)
                break
            assert procs[victim].poll() is None, procs[victim].communicate()
            assert time.monotonic() - t0 < TIMEOUT_S, "no chunk written in time"
            time.sleep(0.01)
    done = _chunks(out)
    assert len([c for c in done if c % n == victim]) < N_CHUNKS // n, "killed too late"
    return done


def _resume_and_check(spec, out, n, done, reference) -> None:
    with _processes(spec, out, n) as procs:
        runs = _finish(procs)
    assert sorted(r["process_index"] for r in runs) == list(range(n))
    assert all(r["process_count"] == n and r["complete"] for r in runs)
    # exactly the missing chunks were computed, the finished ones were left alone
    assert sum(r["chunks_computed"] for r in runs) == N_CHUNKS - len(done)
    after = _chunks(out)
    assert {c: after[c] for c in done} == done
    assert engine.load_results(out).equals(reference)


def test_two_processes_killed_one_resumes_to_the_one_process_rows(spec_file, reference, tmp_path):
    out = tmp_path / "two"
    done = _kill_one_mid_run(spec_file, out, 2, victim=1)
    assert store.read_manifest(out)["n_chunks"] == N_CHUNKS  # process 0 wrote it first
    _resume_and_check(spec_file, out, 2, done, reference)


@pytest.mark.slow
def test_four_processes_give_the_one_process_rows(spec_file, reference, tmp_path):
    out = tmp_path / "four"
    with _processes(spec_file, out, 4) as procs:
        runs = _finish(procs)
    assert sorted(r["chunks_computed"] for r in runs) == [N_CHUNKS // 4] * 4
    assert engine.load_results(out).equals(reference)


@pytest.mark.slow
def test_four_processes_killed_one_resumes_to_the_one_process_rows(spec_file, reference, tmp_path):
    out = tmp_path / "four-killed"
    done = _kill_one_mid_run(spec_file, out, 4, victim=2)
    _resume_and_check(spec_file, out, 4, done, reference)


def test_another_run_holding_the_directory_stops_every_process(spec_file, tmp_path):
    """A run holding ``.lock-p0`` (every run has a process 0) stops both processes of a
    distributed run into the same directory, each with one line, exit 2."""
    out = tmp_path / "held"
    out.mkdir()
    with engine.sweep_lock(out, "p0"), _processes(spec_file, out, 2) as procs:
        for p in procs:
            _, stderr = p.communicate(timeout=TIMEOUT_S)
            lines = stderr.decode().strip().splitlines()
            assert p.returncode == 2, stderr.decode()[-2000:]
            assert "in use by another sweep" in lines[-1]
            assert not any("Traceback" in ln for ln in lines)
    assert not list(out.glob("chunk-*")) and not (out / "manifest.json").exists()


@pytest.mark.parametrize(
    ("flags", "names"),
    [
        (["--distributed", "--coordinator", "127.0.0.1:1", "--num-processes", "2"], "--process-id"),
        (
            ["--distributed", "--coordinator", "127.0.0.1:1"]
            + ["--num-processes", "2", "--process-id", "2"],
            "--process-id = 2 must be in [0, 1]",
        ),
        (
            ["--distributed", "--coordinator", "host:99999"]
            + ["--num-processes", "2", "--process-id", "0"],
            "--coordinator = 'host:99999'",
        ),
        (
            ["--distributed", "--coordinator", "no-port"]
            + ["--num-processes", "2", "--process-id", "0"],
            "HOST:PORT",
        ),
        (
            ["--distributed", "--coordinator", "h:1"]
            + ["--num-processes", "0", "--process-id", "0"],
            "--num-processes = 0",
        ),
        (["--num-processes", "2"], "need --distributed"),
    ],
)
def test_bad_distributed_flags_are_one_line_exit_2(flags, names, tmp_path, capsys):
    out = tmp_path / "o"
    rc = cli.main(["sweep", "--out", str(out), *flags])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and names in err, err
    assert not out.exists()


def test_coordinator_addresses():
    from perfmodel.sweep.distributed import parse_coordinator

    assert parse_coordinator("10.0.0.1:1234") == ("10.0.0.1", 1234)
    assert parse_coordinator("node-17.cluster:65535") == ("node-17.cluster", 65535)
    assert parse_coordinator("[::1]:80") == ("::1", 80)
    for bad in ("", ":80", "h:0", "h:", "[zz]:80", "a b:1", "h:1:2"):
        with pytest.raises(ValueError, match="--coordinator"):
            parse_coordinator(bad)


def test_chunks_are_dealt_round_robin_and_cover_the_sweep():
    from perfmodel.sweep.distributed import Processes, process_chunks

    for n in (1, 2, 3, 4, 7):
        shares = [process_chunks(10, Processes(i, n, True)) for i in range(n)]
        assert sorted(c for s in shares for c in s) == list(range(10))
        assert all(c % n == i for i, s in enumerate(shares) for c in s)
