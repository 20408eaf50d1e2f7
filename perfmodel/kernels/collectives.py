"""Collective kernels over the local devices: ``psum`` (all-reduce), all-gather and
all-to-all, with :func:`jax.shard_map` on a 1-D mesh of all local devices.

On a CPU the devices are simulated: run in a fresh process with
``XLA_FLAGS=--xla_force_host_platform_device_count=N`` (:func:`run_in_subprocess`
does that, since the flag must be set before JAX starts). The simulated devices share
one memory, so CPU figures measure XLA's collective implementation, not a network.

Sizes are per-device buffer bytes (``nbytes`` in the sense of
:func:`perfmodel.interconnect.collective_time_s`: all-reduce and all-to-all: the buffer
each member holds; all-gather: the gathered output). Reported bandwidths follow
nccl-tests: ``algbw = nbytes / t`` and ``busbw = algbw * factor`` with factor
``2 (n-1)/n`` for all-reduce and ``(n-1)/n`` for all-gather and all-to-all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from perfmodel.kernels.harness import as_f64, check_close, check_size, compile_kernel, time_callable

KINDS = ("all_reduce", "all_gather", "all_to_all")
BUS_FACTOR = {
    "all_reduce": lambda n: 2.0 * (n - 1) / n,
    "all_gather": lambda n: (n - 1) / n,
    "all_to_all": lambda n: (n - 1) / n,
}

#: per-device element counts (fp32).
SIZES_N = {
    "tiny": [1 << 10, 1 << 14, 1 << 18],
    "small": [1 << 10, 1 << 14, 1 << 18, 1 << 20, 1 << 22],
    "full": [1 << 10, 1 << 14, 1 << 16, 1 << 18, 1 << 20, 1 << 22, 1 << 24],
}


def collective_fn(kind: str, mesh, axis: str = "d"):
    """A jitted function of one globally sharded array ``x[n_dev * m]`` doing ``kind``."""
    import jax
    from jax.sharding import PartitionSpec as P

    n = mesh.devices.size
    if kind == "all_reduce":
        body, out = (lambda x: jax.lax.psum(x, axis)), P(axis)
    elif kind == "all_gather":
        body, out = (lambda x: jax.lax.all_gather(x, axis, tiled=True)), P(axis)
    elif kind == "all_to_all":

        def body(x):
            return jax.lax.all_to_all(x.reshape(n, -1), axis, 0, 0, tiled=False).reshape(-1)

        out = P(axis)
    else:
        raise ValueError(f"collective kind {kind!r} must be one of {KINDS}")
    return jax.shard_map(body, mesh=mesh, in_specs=P(axis), out_specs=out)


def reference(kind: str, x: np.ndarray, n: int) -> np.ndarray:
    """Global output for the global input ``x`` (n shards of m elements)."""
    shards = x.reshape(n, -1)
    if kind == "all_reduce":
        return np.tile(shards.sum(axis=0), n)
    if kind == "all_gather":
        return np.tile(x, n)
    # all_to_all: device i's chunk j goes to device j's slot i
    m = shards.shape[1] // n
    blocks = shards.reshape(n, n, m)
    return blocks.transpose(1, 0, 2).reshape(-1)


def run_collectives(
    size: str = "tiny",
    *,
    time_it: bool = True,
    repeats: int = 7,
    seed: int = 0,
    kinds: tuple[str, ...] = KINDS,
) -> list[dict]:
    """Check and time every collective on all local devices (needs >= 2 devices)."""
    import jax
    import jax.numpy as jnp
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    check_size(size)
    devs = jax.devices()
    n = len(devs)
    if n < 2:
        raise ValueError(
            f"collectives need >= 2 local devices, found {n}; on CPU run "
            "perfmodel.kernels.collectives.run_in_subprocess(n_devices=...)"
        )
    mesh = Mesh(np.array(devs), ("d",))
    sharding = NamedSharding(mesh, P("d"))
    rng = np.random.default_rng(seed)
    results = []
    for kind in kinds:
        for m in SIZES_N[size]:
            m = max(n, m - m % n)
            bufs = []
            for _ in range(3 if time_it else 1):
                x = rng.standard_normal(n * m).astype(np.float32)
                bufs.append((jax.device_put(jnp.asarray(x, dtype=jnp.float32), sharding),))
            compiled, trace_s, compile_s = compile_kernel(collective_fn(kind, mesh), bufs[0])
            out = compiled(*bufs[0])
            ref = reference(kind, as_f64(bufs[0][0]), n)
            err = check_close(f"{kind}/{m}", out, ref, "fp32", tol=1e-5)
            nbytes = 4.0 * m * (n if kind == "all_gather" else 1)
            rec = {
                "kind": kind,
                "devices": n,
                "elements_per_device": m,
                "nbytes": nbytes,
                "max_rel_error": err,
                "platform": devs[0].platform,
            }
            if time_it:
                t = time_callable(
                    compiled, bufs, repeats=repeats, trace_s=trace_s, compile_s=compile_s
                )
                rec["timing"] = t.as_dict()
                rec["algbw_bytes_per_s"] = nbytes / t.median_s
                rec["busbw_bytes_per_s"] = rec["algbw_bytes_per_s"] * BUS_FACTOR[kind](n)
            results.append(rec)
    return results


def run_in_subprocess(
    n_devices: int = 4, size: str = "tiny", *, time_it: bool = True, timeout_s: float = 300.0
) -> list[dict]:
    """:func:`run_collectives` in a fresh Python with ``n_devices`` simulated CPU devices."""
    if not 2 <= n_devices <= 64:
        raise ValueError(f"n_devices = {n_devices} must be in [2, 64]")
    check_size(size)
    env = dict(os.environ)
    env["XLA_FLAGS"] = (
        env.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={n_devices}"
    ).strip()
    env["JAX_PLATFORMS"] = "cpu"
    root = str(Path(__file__).resolve().parents[2])  # the directory holding perfmodel/
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "perfmodel.kernels.collectives", "--size", size, "--json"]
    if not time_it:
        cmd.append("--no-time")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s, cwd=root)
    if proc.returncode != 0:
        raise RuntimeError(
            f"collectives subprocess failed ({proc.returncode}): {proc.stderr[-2000:]}"
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def format_table(results: list[dict]) -> str:
    lines = [
        f"{'collective':<11} {'dev':>3} {'bytes':>10} {'median':>10} {'algbw GB/s':>10} "
        f"{'busbw GB/s':>10} {'err':>8}"
    ]
    for r in results:
        t = r.get("timing", {})
        med = t.get("median_s", float("nan"))
        lines.append(
            f"{r['kind']:<11} {r['devices']:>3} {r['nbytes']:>10.3g} {med * 1e6:>8.1f}us "
            f"{r.get('algbw_bytes_per_s', float('nan')) / 1e9:>10.2f} "
            f"{r.get('busbw_bytes_per_s', float('nan')) / 1e9:>10.2f} {r['max_rel_error']:>8.1e}"
        )
    return "\n".join(lines)


def _main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--size", default="tiny", choices=("tiny", "small", "full"))
    ap.add_argument("--json", action="store_true", help="print one JSON line")
    ap.add_argument("--no-time", action="store_true", help="correctness only")
    a = ap.parse_args(argv)
    import jax

    jax.config.update("jax_enable_x64", True)
    res = run_collectives(a.size, time_it=not a.no_time)
    print(json.dumps(res) if a.json else format_table(res))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
