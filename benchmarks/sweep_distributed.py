"""Multi-process sweep on jax.distributed against one process, in the same run.

The built-in tesla-2024 sweep (fleet planner per scenario variant) with N draws:
  * one process (``perfmodel sweep tesla-2024 --samples N``: the baseline),
  * P local CPU processes (``--distributed --coordinator 127.0.0.1:PORT --num-processes P
    --process-id I``) into one directory: the rows must equal the baseline's exactly,
  * P processes again, one of them SIGKILLed after its first chunk (and the others
    stopped, as a scheduler does), then all restarted: the rows must equal the
    baseline's, only the missing chunks computed, the finished ones untouched.

Scenarios/s is reported two ways: ``sweep`` (samples over the slowest process's
``run_sweep`` wall time, compile included, interpreter start excluded) and
``end to end`` (launch to the last exit). On a machine with fewer cores than processes
the ratio measures contention, not scaling: the core count is printed.

    .venv/bin/python benchmarks/sweep_distributed.py            # 20,000 draws, 4 processes
    .venv/bin/python benchmarks/sweep_distributed.py --quick    # 128 draws

Writes benchmarks/results/sweep_distributed.json (``--quick``: sweep_distributed-quick.json).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(CI="1", JAX_PLATFORMS="cpu")
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cmd(out: Path, samples: int, chunk: int) -> list[str]:
    return [sys.executable, "-m", "perfmodel", "sweep", "tesla-2024", "--out", str(out)] + [
        "--samples",
        str(samples),
        "--chunk-size",
        str(chunk),
        "--json",
    ]


def _launch(out: Path, samples: int, chunk: int, n: int | None) -> list[subprocess.Popen]:
    """One process (``n`` None) or ``n`` distributed ones, each in its own group."""
    if n is None:
        cmds = [_cmd(out, samples, chunk)]
    else:
        port = _free_port()
        cmds = [
            _cmd(out, samples, chunk)
            + ["--distributed", "--coordinator", f"127.0.0.1:{port}"]
            + ["--num-processes", str(n), "--process-id", str(i)]
            for i in range(n)
        ]
    return [
        subprocess.Popen(
            c,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        for c in cmds
    ]


def _kill(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.communicate(timeout=30)


def _finish(procs: list[subprocess.Popen], timeout_s: float) -> list[dict]:
    runs = []
    for i, p in enumerate(procs):
        stdout, stderr = p.communicate(timeout=timeout_s)
        if p.returncode != 0:
            raise SystemExit(f"process {i} exited {p.returncode}: {stderr.decode()[-1500:]}")
        runs.append(json.loads(stdout)["run"])
    return runs


def _run(out: Path, samples: int, chunk: int, n: int | None, timeout_s: float) -> dict:
    t0 = time.perf_counter()
    procs = _launch(out, samples, chunk, n)
    try:
        runs = _finish(procs, timeout_s)
    finally:
        _kill(procs)
    return {"runs": runs, "end_to_end_s": time.perf_counter() - t0}


def _chunks(out: Path) -> dict[int, tuple[int, int]]:
    return {
        int(f.name[6:12]): (f.stat().st_ino, f.stat().st_mtime_ns)
        for f in out.glob("chunk-*.parquet")
    }


def _rows(out: Path):
    files = sorted(out.glob("chunk-*.parquet"))
    return [pq.read_table(f) for f in files]


def _identical(a: Path, b: Path) -> bool:
    ta, tb = _rows(a), _rows(b)
    return len(ta) == len(tb) and all(x.equals(y) for x, y in zip(ta, tb))


def _kill_and_resume(out: Path, samples: int, chunk: int, n: int, timeout_s: float) -> dict:
    """P processes; SIGKILL process 1 after its first chunk, stop the rest; restart."""
    victim = 1 % n
    procs = _launch(out, samples, chunk, n)
    t0 = time.monotonic()
    try:
        while not [c for c in _chunks(out) if c % n == victim]:
            if procs[victim].poll() is not None:
                raise SystemExit(f"process {victim} ended before it could be killed")
            if time.monotonic() - t0 > timeout_s:
                raise SystemExit("no chunk written in time")
            time.sleep(0.02)
        os.killpg(procs[victim].pid, signal.SIGKILL)
        killed_after_s = time.monotonic() - t0
    finally:
        _kill(procs)
    done = _chunks(out)
    resumed = _run(out, samples, chunk, n, timeout_s)
    after = _chunks(out)
    computed = sum(r["chunks_computed"] for r in resumed["runs"])
    n_chunks = -(-samples // chunk)
    return {
        "killed_process": victim,
        "killed_after_s": killed_after_s,
        "chunks_on_disk_after_kill": len(done),
        "chunks_computed_on_restart": computed,
        "only_missing_computed": computed == n_chunks - len(done),
        "finished_chunks_untouched": {c: after.get(c) for c in done} == done,
        "restart_end_to_end_s": resumed["end_to_end_s"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="128 draws (a few minutes on 2 cores)")
    ap.add_argument("--samples", type=int, default=None, help="draws (default 20,000)")
    ap.add_argument("--processes", type=int, default=4, help="distributed processes")
    ap.add_argument("--chunk-size", type=int, default=None, help="draws per chunk")
    ap.add_argument("--timeout-s", type=float, default=4 * 3600.0, help="per phase")
    args = ap.parse_args(argv)
    samples = args.samples or (128 if args.quick else 20_000)
    chunk = args.chunk_size or (16 if args.quick else 64)
    n = args.processes
    with tempfile.TemporaryDirectory(prefix="sweep-distributed-") as tmp:
        tmp = Path(tmp)
        one = _run(tmp / "one", samples, chunk, None, args.timeout_s)
        many = _run(tmp / "many", samples, chunk, n, args.timeout_s)
        same = _identical(tmp / "one", tmp / "many")
        kill = _kill_and_resume(tmp / "killed", samples, chunk, n, args.timeout_s)
        same_after_kill = _identical(tmp / "one", tmp / "killed")

    def rates(r: dict) -> dict:
        sweep_s = max(x["wall_s"] for x in r["runs"])
        return {
            "sweep_s": sweep_s,
            "end_to_end_s": r["end_to_end_s"],
            "scenarios_per_s_sweep": samples / sweep_s,
            "scenarios_per_s_end_to_end": samples / r["end_to_end_s"],
            "chunks_per_process": [x["chunks_computed"] for x in r["runs"]],
        }

    r1, rn = rates(one), rates(many)
    res = {
        "scenario": "tesla-2024",
        "samples": samples,
        "chunk_size": chunk,
        "processes": n,
        "cpu_count": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
        "one_process": r1,
        "distributed": rn,
        "ratio_sweep": rn["scenarios_per_s_sweep"] / r1["scenarios_per_s_sweep"],
        "ratio_end_to_end": rn["scenarios_per_s_end_to_end"] / r1["scenarios_per_s_end_to_end"],
        "rows_identical": same,
        "kill_resume": {**kill, "rows_identical": same_after_kill},
    }
    print(
        f"tesla-2024 sweep, {samples:,} draws, chunk {chunk}, {os.cpu_count()} CPU cores "
        f"(load {res['load_average_1min']:.1f})"
    )
    print(f"{'run':<28} {'sweep s':>9} {'scen/s':>9} {'end-to-end s':>13} {'scen/s':>9}")
    for name, r in (("1 process (baseline)", r1), (f"{n} processes, distributed", rn)):
        print(
            f"{name:<28} {r['sweep_s']:>9.1f} {r['scenarios_per_s_sweep']:>9.2f} "
            f"{r['end_to_end_s']:>13.1f} {r['scenarios_per_s_end_to_end']:>9.2f}"
        )
    print(
        f"ratio {n} processes / 1: {res['ratio_sweep']:.2f}x (sweep), "
        f"{res['ratio_end_to_end']:.2f}x (end to end)"
    )
    print(f"rows identical to the one-process run: {same}")
    print(
        f"kill process {kill['killed_process']} after {kill['killed_after_s']:.1f} s "
        f"({kill['chunks_on_disk_after_kill']} chunks on disk), restart all: "
        f"{kill['chunks_computed_on_restart']} chunks computed (only the missing: "
        f"{kill['only_missing_computed']}), finished chunks untouched: "
        f"{kill['finished_chunks_untouched']}, rows identical: {same_after_kill}"
    )
    (ROOT / "results").mkdir(exist_ok=True)
    path = ROOT / "results" / f"sweep_distributed{'-quick' if args.quick else ''}.json"
    path.write_text(json.dumps(res, indent=1))
    print(f"wrote {path.relative_to(ROOT.parent)}")
    ok = same and same_after_kill and kill["only_missing_computed"]
    return 0 if ok and kill["finished_chunks_untouched"] else 1


if __name__ == "__main__":
    sys.exit(main())
