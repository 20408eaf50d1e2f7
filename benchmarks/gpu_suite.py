"""The accelerator path in one command: every measurement issue 17 asks of a GPU.

    .venv/bin/python benchmarks/gpu_suite.py                 # on the GPU machine, full sizes
    .venv/bin/python benchmarks/gpu_suite.py --quick         # tiny sizes (CPU: ~15 min on 2 cores)
    .venv/bin/python benchmarks/gpu_suite.py --only calibrate,gemm

Steps (each a fresh subprocess under its own timeout; a failing step is recorded and
the suite goes on):

1. ``calibrate``: ``benchmarks/calibrate.py --size full`` (``--quick``: tiny): the
   kernels of ``perfmodel/kernels/`` (matmul, attention, stream, reduction; the Pallas
   matmul on GPU/TPU; collectives over the visible devices, simulated on CPU), the fit
   of the roofline efficiencies and the held-apart error before and after;
2. ``gemm``: from step 1, the best measured dense BF16 GEMM at 8192^3 (quick: the
   largest square BF16 GEMM measured) as a fraction of the catalog's dense BF16 peak
   of the measured chip (bar on an H100: >= 75%);
3. ``training_search``: ``perfmodel train`` layout search, GPT-3 175B on 1,024 H100s
   (JSON), and ``benchmarks/training_speed.py`` (layouts/s of the jit+vmap search vs
   Python loops);
4. ``fleet``: ``benchmarks/fleet_bench.py --skip-suite``: 1,000 tesla-2024 variants
   (quick: 20) by the batched JAX dual simplex and the vmapped PDHG against highspy
   warm-started from the same basis on the host CPU; and ``benchmarks/pdhg_bench.py``;
5. ``sweep``: ``benchmarks/sweep_bench.py`` (fleet scenarios/s by batching mode).

Everything goes to one directory (default ``benchmarks/results/gpu-suite-<device>/``):
each step's log and JSON, and ``suite.json`` naming the device (``device_kind``,
platform, count), JAX version, each step's command, exit status, wall time and the
GEMM fraction. The benchmarks that write a fixed ``benchmarks/results/<name>.json``
have that file moved into the suite directory and the committed one put back, so a GPU
run does not overwrite the CPU figures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
STEPS = ("calibrate", "gemm", "training_search", "fleet", "sweep")


def _device() -> dict:
    """The default JAX device, in a subprocess (this process stays free of JAX)."""
    code = (
        "import json, jax; d = jax.devices(); "
        "print(json.dumps({'platform': d[0].platform, 'device_kind': d[0].device_kind, "
        "'count': len(d), 'jax': jax.__version__}))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    return json.loads(r.stdout.strip().splitlines()[-1])


def _slug(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-") or "device"


class Suite:
    """Runs the steps' commands, records them in ``suite.json``."""

    def __init__(self, out: Path, device: dict, quick: bool, timeout_s: float):
        self.out, self.device, self.quick, self.timeout_s = out, device, quick, timeout_s
        self.record: dict = {
            "device": device,
            "quick": quick,
            "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "steps": {},
        }

    def run(self, name: str, argv: list[str], stdout_json: str | None = None, moves=()) -> int:
        """Run ``argv`` (log: ``<name>.log``; stdout to ``stdout_json`` when given);
        ``moves``: files under ``benchmarks/results`` the command writes, moved here."""
        saved = {m: (RESULTS / m).read_bytes() for m in moves if (RESULTS / m).exists()}
        log = self.out / f"{name}.log"
        t0 = time.perf_counter()
        env = {**os.environ, "CI": "1"}
        print(f"[gpu-suite] {name}: {' '.join(argv)}", flush=True)
        try:
            with open(log, "w") as fh:
                r = subprocess.run(
                    argv,
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.PIPE if stdout_json else fh,
                    stderr=fh if stdout_json else subprocess.STDOUT,
                    timeout=self.timeout_s,
                    text=True,
                )
            rc = r.returncode
            if stdout_json and r.stdout is not None:
                (self.out / stdout_json).write_text(r.stdout)
        except subprocess.TimeoutExpired:
            rc = 124
        for m in moves:  # the new result here, the committed one back in place
            if (RESULTS / m).exists():
                shutil.move(RESULTS / m, self.out / m)
            if m in saved:
                (RESULTS / m).write_bytes(saved[m])
        wall = time.perf_counter() - t0
        self.record["steps"][name] = {"argv": argv, "rc": rc, "wall_s": wall, "log": log.name}
        print(f"[gpu-suite] {name}: exit {rc} in {wall:.0f} s", flush=True)
        self.save()
        return rc

    def save(self) -> None:
        (self.out / "suite.json").write_text(json.dumps(self.record, indent=1))


def gemm_fraction(calibrate_json: Path, quick: bool) -> dict:
    """The best dense BF16 GEMM of a calibration run as a fraction of the catalog peak."""
    from perfmodel.hardware import PRECISIONS, load_catalog  # JAX only after the steps

    res = json.loads(calibrate_json.read_text())
    rows = []
    for k in res["kernels"]:
        p = k.get("params", {})
        m, n, kk = p.get("m"), p.get("n"), p.get("k")
        if k["family"] != "matmul" or k["precision"] != "bf16" or "batch" in p:
            continue
        if None in (m, n, kk) or not (m == n == kk) or "timing" not in k:
            continue
        rows.append((m, k["flops"] / k["timing"]["min_s"], k["name"]))
    if not rows:
        return {"error": "no square BF16 GEMM in the calibration run"}
    target = [r for r in rows if r[0] == 8192] or ([max(rows)] if quick else [])
    if not target:
        return {"error": "no 8192^3 BF16 GEMM in the calibration run (use the full size)"}
    size, rate, name = max(target, key=lambda r: r[1])
    key = res["chip"]
    cat = load_catalog(res["host_catalog"]) if res.get("host_catalog") else load_catalog()
    peak = float(cat.chip(key).peak_flops_per_s[PRECISIONS.index("bf16")])
    return {
        "kernel": name,
        "size": size,
        "chip": key,
        "measured_flops_per_s": rate,
        "catalog_bf16_flops_per_s": peak,
        "fraction_of_peak": rate / peak,
        "bar_h100_8192": 0.75,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (checks the wiring on CPU)")
    ap.add_argument("--out", default=None, help="output directory (default per device)")
    ap.add_argument("--only", default=",".join(STEPS), help=f"steps, of: {', '.join(STEPS)}")
    ap.add_argument("--timeout-s", type=float, default=3600.0, help="per command")
    args = ap.parse_args(argv)
    steps = [s for s in args.only.split(",") if s]
    bad = [s for s in steps if s not in STEPS]
    if bad:
        print(f"gpu_suite: error: --only {bad[0]!r} must be one of {', '.join(STEPS)}")
        return 2
    dev = _device()
    gpu = dev["platform"] in ("gpu", "cuda", "rocm")
    name = f"gpu-suite-{_slug(dev['device_kind'])}" + ("-quick" if args.quick else "")
    out = Path(args.out) if args.out else RESULTS / name
    out.mkdir(parents=True, exist_ok=True)
    print(f"[gpu-suite] {dev['count']} x {dev['device_kind']} ({dev['platform']}) -> {out}")
    suite = Suite(out, dev, args.quick, args.timeout_s)
    py, q = sys.executable, ["--quick"] if args.quick else []
    cal = out / "calibrate.json"
    if "calibrate" in steps:
        cmd = [py, "benchmarks/calibrate.py", "--size", "tiny" if args.quick else "full"]
        cmd += ["--device", "gpu" if gpu else "cpu", "--json", str(cal)]
        cmd += ["--out", str(out / "calibration.toml"), "--verbose"]
        cmd += ["--collectives", str(dev["count"] if gpu else 4)]
        cmd += ["--pallas"] if gpu else ["--host-catalog", str(out / "host_catalog.toml")]
        suite.run("calibrate", cmd)
    if "gemm" in steps:
        try:
            g = gemm_fraction(cal, args.quick)
        except (OSError, ValueError, KeyError) as e:
            g = {"error": f"{type(e).__name__}: {e}"}
        suite.record["gemm"] = g
        suite.save()
        print(f"[gpu-suite] gemm: {json.dumps(g)}")
    if "training_search" in steps:
        cmd = [py, "-m", "perfmodel", "train", "--workload", "gpt3-175b", "--chip", "h100"]
        suite.run("training_layout", cmd + ["--chips", "1024", "--json"], "training_layout.json")
        suite.run(
            "training_speed",
            [py, "benchmarks/training_speed.py", *q],
            moves=("training_speed.json",),
        )
    if "fleet" in steps:
        batch = ["--batch", "20", "--pdhg", "4"] if args.quick else ["--batch", "1000"]
        batch += [] if args.quick else ["--pdhg", "1000" if gpu else "20"]
        suite.run(
            "fleet_batch",
            [py, "benchmarks/fleet_bench.py", "--skip-suite", *batch],
            moves=("fleet_bench.json",),
        )
        suite.run("pdhg", [py, "benchmarks/pdhg_bench.py", *q], moves=("pdhg_bench.json",))
    if "sweep" in steps:
        suite.run("sweep_bench", [py, "benchmarks/sweep_bench.py", *q], moves=("sweep_bench.json",))
    failed = [k for k, v in suite.record["steps"].items() if v["rc"] != 0]
    suite.record["failed"] = failed
    suite.save()
    print(f"[gpu-suite] done: {len(suite.record['steps'])} commands, failed: {failed or 'none'}")
    print(f"[gpu-suite] results in {out}")
    return 1 if failed or "error" in suite.record.get("gemm", {}) else 0


if __name__ == "__main__":
    sys.exit(main())
