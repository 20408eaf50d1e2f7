"""Calibrate the roofline's efficiency factors against kernels measured on this device.

Pipeline (``perfmodel calibrate`` and ``benchmarks/calibrate.py`` run the same code)::

    kernels (checked, timed)   ──►  measured seconds per op   (KernelResult)
    host spec (CPU only)       ──►  user catalog TOML entry  (host_measured)
    roofline.op_time(op, chip, Efficiency.default())  ──►  error before
    fit Efficiency on the training split (optax Adam, log-time error)
    roofline.op_time(op, chip, fitted)                ──►  error after (held-apart split)
    calibration TOML  ──►  load_efficiency(path) / Efficiency.from_file(path)

The fit minimises, over the training split,

    r_i = log t_model(op_i; theta) - log t_measured_i
    loss(theta) = mean_i (sqrt(r_i**2 + delta**2) - delta) + lam * |theta - theta_0|**2

with ``theta = (log compute_eff[kind], log memory_eff[level], log overhead_s)`` and the
smooth roofline time (:func:`perfmodel.roofline.op_time` with ``smooth=True``). The
pseudo-Huber penalty (``delta = 0.05``: quadratic within 5%, absolute beyond) targets
the median error and does not let a few kernels the roofline cannot describe (e.g.
``dot_product_attention`` running 3x slower than plain attention on XLA:CPU, with the
same Op) drag every factor. The small ridge term ``lam`` keeps factors that no training op constrains (e.g. conv2d) at
their defaults ``theta_0``. Errors are reported with the hard roofline as
``|t_model / t_measured - 1|`` in percent.

The measured time of a kernel is, by default, its *fastest* timed call (timeit's advice:
the other calls were slowed by something else): on a shared machine the median also
measures the neighbours (on the 2-core box this was written on, with other jobs running
at a load average of 8-18, medians were 2-4x the fastest call for 10-100 us kernels).
``--stat median`` uses the median of the repeats; both are in the JSON results.

The split is deterministic: within each (family, precision) group, ops sorted by FLOPs
then bytes, every third op starting with the second goes to the held-apart split (so it
interpolates between training sizes).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import json
import math
import os
import platform
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from perfmodel.errors import InputError, check_safe_name
from perfmodel.hardware import PRECISION_INDEX, PRECISIONS, Chip
from perfmodel.roofline import (
    COMPUTE_EFF_RANGE,
    MEMORY_EFF_RANGE,
    OP_KINDS,
    OVERHEAD_RANGE_S,
    Efficiency,
    Op,
    efficiency_from_dict,
    efficiency_to_dict,
    load_calibration,
    load_efficiency,
    op_time,
)

DEFAULT_HOST_KEY = "host_measured"
#: Which time of a kernel counts as measured: its fastest call, or the median repeat.
STATS = ("fastest", "median")
#: The one cache directory of perfmodel (``$PERFMODEL_CACHE_DIR``, as the JAX compile
#: cache and the fleet value curves use).
CACHE_DIR = Path(os.environ.get("PERFMODEL_CACHE_DIR") or Path.home() / ".cache" / "perfmodel")
DEFAULT_HOST_CATALOG = CACHE_DIR / "host_catalog.toml"

#: GPU device-kind substrings -> catalog chip key (first match wins).
GPU_CHIPS: tuple[tuple[str, str], ...] = (
    ("gb200", "gb200"),
    ("b200", "b200"),
    ("h200", "h200"),
    ("h100", "h100_sxm"),
    ("a100", "a100_80gb"),
    ("mi300x", "mi300x"),
)

# --------------------------------------------------------------------------------------
# Calibration files
# --------------------------------------------------------------------------------------


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if not math.isfinite(v):
            raise ValueError(f"cannot write non-finite number {v} to TOML")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _toml_table(name: str, d: dict[str, Any]) -> str:
    return f"[{name}]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in d.items())


def save_efficiency(
    eff: Efficiency,
    path: str | Path,
    meta: dict[str, Any] | None = None,
    errors: dict[str, Any] | None = None,
) -> Path:
    """Write a calibration file (TOML): ``[efficiency]`` (compute per op kind, memory per
    level, ``overhead_s``), plus ``[meta]`` and ``[errors]`` for the record.
    Floats are written with ``repr``, so :func:`load_efficiency` round-trips exactly."""
    p = Path(path).expanduser()
    p.parent.mkdir(parents=True, exist_ok=True)
    parts = [
        "# perfmodel calibration file: roofline efficiency factors fitted by\n"
        "# perfmodel.calibrate from kernels measured on a device. Load with\n"
        "# perfmodel.calibrate.load_efficiency(path) or Efficiency.from_file(path).\n"
    ]
    if meta:
        parts.append(_toml_table("meta", meta))
    parts.append(_toml_table("efficiency", efficiency_to_dict(eff)))
    if errors:
        parts.append(_toml_table("errors", errors))
    p.write_text("\n".join(parts))
    return p


# --------------------------------------------------------------------------------------
# Device and host spec
# --------------------------------------------------------------------------------------


def _read_int(path: str) -> int | None:
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None


def last_level_cache_bytes(default: float = 32e6) -> float:
    """Largest CPU cache reported by sysfs (byte), else ``default``."""
    best = 0.0
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    for idx in sorted(base.glob("index*")) if base.exists() else []:
        try:
            txt = (idx / "size").read_text().strip().upper()
        except OSError:
            continue
        mult = {"K": 1024, "M": 1024**2, "G": 1024**3}.get(txt[-1:], 1)
        try:
            val = float(txt.rstrip("KMG")) * mult
        except ValueError:
            continue
        best = max(best, val)
    return best or default


def host_memory_bytes() -> float:
    """Physical memory (byte) from /proc/meminfo or sysconf."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return float(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 16e9


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@dataclasses.dataclass(frozen=True)
class DeviceInfo:
    platform: str  # cpu / gpu / tpu
    device_kind: str
    description: str
    hostname: str
    n_devices: int
    cache_bytes: float  # last-level cache (CPU) or L2 (GPU, from the catalog)


def detect_device(device: str = "auto") -> DeviceInfo:
    """The device the kernels will run on (``auto``: JAX's default backend)."""
    if device not in ("auto", "cpu", "gpu"):
        raise ValueError(f"device {device!r} must be one of auto, cpu, gpu")
    if device == "auto":
        device = "cpu" if jax.default_backend() == "cpu" else "gpu"
    try:
        devs = jax.devices(device)
    except RuntimeError as e:
        raise ValueError(f"--device {device}: no {device} backend in this JAX ({e})") from None
    d = devs[0]
    host = socket.gethostname()
    if device == "cpu":
        desc = f"{cpu_model()} ({os.cpu_count()} cores)"
        return DeviceInfo(
            "cpu", getattr(d, "device_kind", "cpu"), desc, host, len(devs), last_level_cache_bytes()
        )
    kind = str(getattr(d, "device_kind", "gpu"))
    return DeviceInfo(d.platform, kind, kind, host, len(devs), 50e6)


def chip_for_device(info: DeviceInfo) -> str:
    """Catalog key of the accelerator named by ``info.device_kind``."""
    k = info.device_kind.lower().replace(" ", "")
    for sub, key in GPU_CHIPS:
        if sub in k:
            return key
    raise ValueError(
        f"device kind {info.device_kind!r} has no catalog chip; pass --chip KEY "
        "with a catalog key (see `perfmodel chips`)"
    )


def measured_s(r, stat: str = "fastest") -> float:
    """A kernel result's measured time (s): its fastest call or its median repeat."""
    if stat not in STATS:
        raise ValueError(f"stat {stat!r} must be one of {STATS}")
    return r.timing.fastest_call_s if stat == "fastest" else r.timing.median_s


def _best(results, pred, stat: str) -> tuple[float, str]:
    best, name = 0.0, ""
    for r in results:
        if r.timing is not None and pred(r):
            t = measured_s(r, stat)
            rate = r.flops / t if r.family in ("matmul", "batched_matmul") else r.bytes / t
            if rate > best:
                best, name = rate, r.name
    return best, name


def host_spec_from_results(results, info: DeviceInfo, stat: str = "fastest") -> dict[str, Any]:
    """Measured host figures: peak FLOP/s per precision (best matmul of the sweep), DRAM
    bandwidth (best cold STREAM kernel), cache bandwidth (best hot STREAM kernel), last-level
    cache and memory sizes."""
    spec: dict[str, Any] = {"figures": {}, "from": {}}
    for prec in ("fp32", "bf16", "fp16"):
        rate, name = _best(
            results,
            lambda r, p=prec: r.family in ("matmul", "batched_matmul") and r.precision == p,
            stat,
        )
        if rate > 0:
            spec["figures"][f"{prec}_flops_per_s"] = rate
            spec["from"][f"{prec}_flops_per_s"] = name
    bw, name = _best(
        results,
        lambda r: r.family == "stream" and r.precision == "fp32" and r.params.get("mode") == "cold",
        stat,
    )
    if bw <= 0:
        raise ValueError("the host spec needs fp32 cold STREAM results (run the 'stream' family)")
    spec["figures"]["dram_bytes_per_s"] = bw
    spec["from"]["dram_bytes_per_s"] = name
    sbw, name = _best(
        results,
        lambda r: r.family == "stream" and r.precision == "fp32" and r.params.get("mode") == "hot",
        stat,
    )
    if sbw > 0:
        spec["figures"]["sram_bytes_per_s"] = max(sbw, bw)
        spec["from"]["sram_bytes_per_s"] = name
    spec["figures"]["sram_bytes"] = float(info.cache_bytes)
    spec["figures"]["dram_bytes"] = host_memory_bytes()
    if not any(k.endswith("_flops_per_s") for k in spec["figures"]):
        raise ValueError("the host spec needs matmul results (run the 'matmul' family)")
    return spec


def write_host_catalog(
    spec: dict[str, Any],
    path: str | Path,
    info: DeviceInfo,
    key: str = DEFAULT_HOST_KEY,
    date: str | None = None,
) -> Path:
    """Write the measured host as a user catalog file loadable with
    ``perfmodel.hardware.load_catalog(path)`` (same schema as the built-in
    ``catalog_chips.toml``; ``confidence = "benchmark"``). TDP and prices are not
    measurable: ``tdp_w`` is an estimate (10 W per core, 5-15 W)."""
    if not key.replace("_", "").isalnum():
        raise ValueError(f"host key {key!r} must be letters, digits and underscores")
    date = date or _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d")
    src = f"measured on {info.hostname} by kernels on {date}"
    cores = os.cpu_count() or 1
    lines = [
        f"# Host CPU measured by perfmodel kernels ({info.description}) on {date}.",
        "# Peak FLOP/s: best matmul of the sweep; bandwidth: best STREAM kernel (cold: DRAM,",
        "# hot: last-level cache). Load with perfmodel.hardware.load_catalog(path).",
        "",
        "[sources]",
        f"{key}-bench = {json.dumps(src)}",
        f"{key}-sysfs = {json.dumps(f'{info.hostname} sysfs/procfs (cache size, MemTotal) on {date}')}",
        f"{key}-tdp = {json.dumps('ESTIMATE, not measured: about 10 W per core (5-15 W) of a server CPU')}",
        "",
        f"[chips.{key}]",
        f"name = {json.dumps('Measured host: ' + info.description)}",
        f"vendor = {json.dumps(platform.machine())}",
        'kind = "cpu"',
        'dram_type = "DDR"',
        'sram_type = "last-level cache"',
        f"note = {json.dumps('measured by perfmodel calibrate; the sram level is the last-level cache')}",
    ]
    for k, v in spec["figures"].items():
        if k in ("sram_bytes", "dram_bytes"):
            lines.append(
                f'{k} = {{ value = {float(v)!r}, source = "{key}-sysfs", confidence = "reported" }}'
            )
        else:
            note = (
                f", note = {json.dumps('best of: ' + spec['from'][k])}" if k in spec["from"] else ""
            )
            lines.append(
                f'{k} = {{ value = {float(v)!r}, source = "{key}-bench", '
                f'confidence = "benchmark"{note} }}'
            )
    lines.append(
        f"tdp_w = {{ best = {10.0 * cores!r}, low = {5.0 * cores!r}, high = {15.0 * cores!r}, "
        f'source = "{key}-tdp", confidence = "estimate" }}'
    )
    p = Path(path).expanduser()
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("\n".join(lines) + "\n")
    return p


def load_host_chip(path: str | Path, key: str = DEFAULT_HOST_KEY) -> Chip:
    """The measured host :class:`Chip` from a host catalog file (built-in catalog not
    needed)."""
    from perfmodel.hardware import load_catalog

    return load_catalog(path, builtin=False).chip(key)


# --------------------------------------------------------------------------------------
# Dataset, split, fit
# --------------------------------------------------------------------------------------


@flax.struct.dataclass
class Dataset:
    """Measured ops as stacked arrays (leading axis = op)."""

    ops: Op
    measured_s: jnp.ndarray


def make_dataset(results, stat: str = "fastest") -> tuple[Dataset, list[dict[str, Any]]]:
    """Stack timed :class:`kernels.harness.KernelResult` s into a :class:`Dataset` (the
    measured time is ``fastest`` call or ``median`` of the repeats); also return
    per-op metadata (name, family, precision)."""
    if stat not in STATS:
        raise ValueError(f"stat {stat!r} must be one of {STATS}")
    rows = [r for r in results if r.timing is not None]
    if not rows:
        raise ValueError("no timed kernel results to calibrate on")
    f = lambda xs: jnp.asarray(np.array(xs, dtype=np.float64))  # noqa: E731
    ops = Op(
        f([r.flops for r in rows]),
        f([r.bytes for r in rows]),
        f([r.working_set_bytes for r in rows]),
        jnp.asarray([PRECISION_INDEX[r.precision] for r in rows]),
        jnp.asarray([OP_KINDS.index(r.kind) for r in rows]),
    )
    meta = [
        {
            "name": r.name,
            "family": r.family,
            "precision": r.precision,
            "flops": r.flops,
            "bytes": r.bytes,
        }
        for r in rows
    ]
    t = [measured_s(r, stat) for r in rows]
    return Dataset(ops, f(t)), meta


def split_mask(meta: Sequence[dict[str, Any]], every: int = 3, offset: int = 1) -> np.ndarray:
    """Deterministic held-apart split: True = test. Within each (family, precision) group
    sorted by (flops, bytes, name), index ``i`` is held apart when ``i % every == offset``."""
    if every < 2 or not 0 <= offset < every:
        raise ValueError(
            f"need every >= 2 and 0 <= offset < every, got every={every}, offset={offset}"
        )
    test = np.zeros(len(meta), dtype=bool)
    groups: dict[tuple[str, str], list[int]] = {}
    for i, m in enumerate(meta):
        groups.setdefault((m["family"], m["precision"]), []).append(i)
    for idx in groups.values():
        idx = sorted(idx, key=lambda i: (meta[i]["flops"], meta[i]["bytes"], meta[i]["name"]))
        for j, i in enumerate(idx):
            test[i] = j % every == offset
    return test


def _to_theta(eff: Efficiency):
    return (jnp.log(eff.compute), jnp.log(eff.memory), jnp.log(jnp.maximum(eff.overhead_s, 1e-9)))


def _from_theta(theta) -> Efficiency:
    c, m, o = theta
    return Efficiency(jnp.exp(c), jnp.exp(m), jnp.exp(o))


@functools.partial(jax.jit, static_argnames=("smooth",))
def predict_s(ops: Op, chip: Chip, eff: Efficiency, smooth: bool = False) -> jnp.ndarray:
    """Roofline time (s) of every op in a stacked :class:`Op` (one compiled call)."""
    return jax.vmap(lambda o: op_time(o, chip, eff, smooth=smooth).time_s)(ops)


HUBER_DELTA = 0.05


@jax.jit
def log_loss(theta, data: Dataset, weights, chip: Chip, theta0, ridge: float):
    """Weighted mean pseudo-Huber log-time error plus the ridge towards ``theta0``."""
    pred = predict_s(data.ops, chip, _from_theta(theta), smooth=True)
    r = jnp.log(pred) - jnp.log(data.measured_s)
    pen = jnp.sqrt(r**2 + HUBER_DELTA**2) - HUBER_DELTA
    fit = jnp.sum(weights * pen) / jnp.maximum(jnp.sum(weights), 1.0)
    reg = sum(jnp.sum((a - b) ** 2) for a, b in zip(theta, theta0, strict=True))
    return fit + ridge * reg


@jax.jit
def _fit_adam(theta0, init, data: Dataset, weights, chip: Chip, ridge, lr, steps_arr):
    import optax

    opt = optax.adam(optax.cosine_decay_schedule(lr, steps_arr.shape[0], alpha=0.01))
    grad = jax.value_and_grad(log_loss)

    eps = 1e-9  # stay strictly inside, whatever exp(log(x)) rounds to
    lo = (np.log(COMPUTE_EFF_RANGE[0]) + eps, np.log(MEMORY_EFF_RANGE[0]) + eps, np.log(1e-9))
    hi = (
        np.log(COMPUTE_EFF_RANGE[1]) - eps,
        np.log(MEMORY_EFF_RANGE[1]) - eps,
        np.log(OVERHEAD_RANGE_S[1]) - eps,
    )

    def step(carry, _):
        th, st = carry
        val, g = grad(th, data, weights, chip, theta0, ridge)
        upd, st = opt.update(g, st, th)
        # optax types every pytree as its Params union (which includes scalars)
        th = cast(tuple[jax.Array, ...], optax.apply_updates(th, upd))
        # projected step: stay inside the ranges a calibration file may hold
        th = tuple(jnp.clip(t, a, b) for t, a, b in zip(th, lo, hi, strict=True))
        return (th, st), val

    (theta, _), losses = jax.lax.scan(step, (init, opt.init(init)), steps_arr)
    return theta, losses


def fit_efficiency(
    data: Dataset,
    chip: Chip,
    train: np.ndarray | None = None,
    init: Efficiency | None = None,
    *,
    steps: int = 3000,
    lr: float = 0.05,
    ridge: float = 1e-3,
    restarts: Sequence[float] = (1.0, 0.3, 3.0),
) -> tuple[Efficiency, float]:
    """Fit an :class:`Efficiency` to measured times (Adam on the log-time loss, each step
    projected onto the allowed ranges of a calibration file).

    Args:
      data: measured ops (:func:`make_dataset`).
      chip: the chip the ops ran on.
      train: boolean mask of the training ops (default: all).
      init: prior and starting point (default :meth:`Efficiency.default`).
      steps, lr: Adam steps and peak learning rate (cosine decay).
      ridge: weight of ``|theta - theta_0|**2`` (log-space pull to the prior).
      restarts: multipliers of the initial efficiencies for a few restarts; the best
        final training loss wins.

    Returns:
      ``(efficiency, training loss)``.
    """
    if steps < 1 or not lr > 0 or ridge < 0:
        raise ValueError(f"need steps >= 1, lr > 0, ridge >= 0; got {steps}, {lr}, {ridge}")
    n = data.measured_s.shape[0]
    w = np.ones(n) if train is None else np.asarray(train, dtype=np.float64)
    if w.shape != (n,) or w.sum() < 1:
        raise ValueError(f"train mask must have shape ({n},) and select at least one op")
    if not np.all(np.asarray(data.measured_s) > 0):
        raise ValueError("measured times must all be > 0 s")
    init = Efficiency.default() if init is None else init
    theta0 = _to_theta(init)
    best = None
    steps_arr = jnp.zeros(steps)
    for mult in restarts:
        start = (theta0[0] + np.log(mult), theta0[1] + np.log(mult), theta0[2] - np.log(mult))
        theta, losses = _fit_adam(
            theta0,
            start,
            data,
            jnp.asarray(w),
            chip,
            jnp.asarray(ridge, dtype=jnp.float64),
            jnp.asarray(lr, dtype=jnp.float64),
            steps_arr,
        )
        loss = float(log_loss(theta, data, jnp.asarray(w), chip, theta0, ridge))
        if best is None or loss < best[1]:
            best = (theta, loss)
    if best is None:
        raise ValueError("restarts must hold at least one multiplier")
    return _from_theta(best[0]), best[1]


def abs_pct_error(pred_s, measured_s) -> np.ndarray:
    """``100 |pred / measured - 1|`` per op."""
    return 100.0 * np.abs(np.asarray(pred_s) / np.asarray(measured_s) - 1.0)


# --------------------------------------------------------------------------------------
# The whole run
# --------------------------------------------------------------------------------------

RUN_SETTINGS = {  # harness settings per size
    "tiny": {"repeats": 7, "warmup": 1, "min_sample_s": 20e-3},
    "small": {"repeats": 7, "warmup": 2, "min_sample_s": 2e-3},
    "full": {"repeats": 11, "warmup": 3, "min_sample_s": 5e-3},
}


def add_arguments(ap) -> None:
    """The options shared by ``perfmodel calibrate`` and ``benchmarks/calibrate.py``."""
    ap.add_argument(
        "--size",
        default="tiny",
        choices=("tiny", "small", "full"),
        help="kernel sweep size (tiny: about a minute on a 2-core CPU)",
    )
    ap.add_argument(
        "--device",
        default="auto",
        choices=("auto", "cpu", "gpu"),
        help="device to measure (auto: JAX's default backend)",
    )
    ap.add_argument(
        "--chip",
        default=None,
        help="catalog chip to compare with (default: the measured host on CPU, "
        "the detected GPU's catalog entry on GPU)",
    )
    ap.add_argument("--catalog", default=None, help="extra catalog TOML for --chip")
    ap.add_argument(
        "--host-catalog",
        default=str(DEFAULT_HOST_CATALOG),
        help="where to write the measured host catalog entry (CPU)",
    )
    ap.add_argument("--host-key", default=DEFAULT_HOST_KEY, help="catalog key of the measured host")
    ap.add_argument(
        "--reuse-host",
        action="store_true",
        help="compare with the host entry already in --host-catalog instead of "
        "re-measuring it (CPU)",
    )
    ap.add_argument(
        "--out",
        default=None,
        help="calibration file to write (default ~/.cache/perfmodel/calibration_<chip>.toml)",
    )
    ap.add_argument("--json", dest="json_out", default=None, help="write all results as JSON here")
    ap.add_argument(
        "--families",
        default="matmul,attention,stream,reduction",
        help="comma-separated kernel families",
    )
    ap.add_argument(
        "--collectives",
        type=int,
        default=4,
        metavar="N",
        help="also run psum/all-gather/all-to-all on N devices (CPU: simulated in a "
        "subprocess); 0 to skip",
    )
    ap.add_argument("--pallas", action="store_true", help="add Pallas kernels (GPU/TPU only)")
    ap.add_argument(
        "--stat",
        default="fastest",
        choices=STATS,
        help="measured time of a kernel: its fastest timed call (default; robust "
        "to other jobs on a shared machine) or the median of the repeats",
    )
    ap.add_argument("--steps", type=int, default=3000, help="Adam steps of the fit")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    ap.add_argument("--verbose", "-v", action="store_true", help="print every kernel")


def _summary(err: np.ndarray) -> dict[str, float]:
    if err.size == 0:
        return {"n": 0, "median_pct": float("nan"), "worst_pct": float("nan")}
    return {
        "n": int(err.size),
        "median_pct": float(np.median(err)),
        "worst_pct": float(np.max(err)),
    }


def error_table(meta, test: np.ndarray, before: np.ndarray, after: np.ndarray) -> tuple[str, dict]:
    """Per-family and overall median / worst absolute % error on the held-apart split."""
    fams = sorted({m["family"] for m in meta})
    rows, out = [], {}
    hdr = (
        f"{'family':<16} {'n':>3}  {'median before':>13} {'worst before':>12}  "
        f"{'median after':>12} {'worst after':>11}"
    )
    for fam in fams + ["ALL"]:
        sel = test & np.array([fam == "ALL" or m["family"] == fam for m in meta])
        b, a = _summary(before[sel]), _summary(after[sel])
        out[fam] = {
            "n": b["n"],
            "before_median_pct": b["median_pct"],
            "before_worst_pct": b["worst_pct"],
            "after_median_pct": a["median_pct"],
            "after_worst_pct": a["worst_pct"],
        }
        if b["n"]:
            rows.append(
                f"{fam:<16} {b['n']:>3}  {b['median_pct']:>12.1f}% {b['worst_pct']:>11.1f}%  "
                f"{a['median_pct']:>11.1f}% {a['worst_pct']:>10.1f}%"
            )
    sep = "-" * len(hdr)
    return "\n".join([hdr, sep, *rows[:-1], sep, rows[-1]]), out


def _fmt_s(t: float) -> str:
    if t < 1e-3:
        return f"{t * 1e6:8.1f}us"
    if t < 1:
        return f"{t * 1e3:8.2f}ms"
    return f"{t:8.3f}s "


def run(args, out=print) -> dict[str, Any]:
    """Measure, compare and calibrate (see the module docstring); print tables with
    ``out``; return everything as a JSON-able dict."""
    import time

    t_start = time.perf_counter()
    from perfmodel import kernels
    from perfmodel.kernels.harness import KernelCheckError, RandomPool, run_case

    for name, lo, hi in (("collectives", 0, 4096), ("steps", 1, 10**7), ("seed", 0, 2**31 - 1)):
        v = getattr(args, name)
        if not lo <= v <= hi:
            raise InputError(f"--{name}", v, f"an integer in [{lo}, {hi}]")
    families = tuple(f.strip() for f in args.families.split(",") if f.strip())
    info = detect_device(args.device)
    backend = info.platform
    if args.pallas and backend == "cpu":
        raise ValueError("--pallas needs a GPU or TPU (Pallas is not run on CPU by default)")
    precisions = ("fp32", "bf16")
    dev = jax.devices(backend)[0]
    settings = RUN_SETTINGS[args.size]
    out(
        f"perfmodel calibrate: {info.description} [{info.platform}] on {info.hostname}, "
        f"size={args.size}, measured time = {args.stat}"
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if backend == "cpu" and load > 0.5 * (os.cpu_count() or 1):
        out(
            f"warning: load average {load:.1f} on {os.cpu_count()} cores: other jobs share this "
            "CPU, timings will be noisy"
        )
    # the chip to compare with: --chip, else the detected GPU's catalog entry, else (CPU)
    # the host measured below
    from perfmodel.hardware import load_catalog

    chip_key, chip, host_path = None, None, None
    if args.chip:
        cat = load_catalog(*([args.catalog] if args.catalog else []))
        chip_key = check_safe_name(cat.resolve(args.chip), "--chip (its catalog key)")
        chip = cat.chip(chip_key)
    elif backend != "cpu":
        chip_key = chip_for_device(info)
        chip = load_catalog().chip(chip_key)
    if (
        backend == "cpu"
        and chip is None
        and not args.reuse_host
        and not {"matmul", "stream"} <= set(families)
    ):
        raise ValueError(
            f"--families {args.families}: measuring the host needs 'matmul' and "
            "'stream' (or pass --chip KEY or --reuse-host)"
        )
    if backend == "cpu" and args.reuse_host and not Path(args.host_catalog).expanduser().exists():
        raise FileNotFoundError(
            f"--reuse-host: {Path(args.host_catalog).expanduser()} does not "
            "exist; run once without --reuse-host to measure the host"
        )
    # rotate inputs over twice the on-chip cache (last-level cache; GPU L2 from the catalog)
    cache = (
        info.cache_bytes if backend == "cpu" or chip is None else float(chip.mem_bytes[0]) or 50e6
    )

    results, failed = [], []
    with jax.default_device(dev):
        cases = kernels.all_cases(
            args.size, backend, families, precisions, cache_bytes=cache, pallas=args.pallas
        )
        pool = RandomPool(args.seed, 1 << 23 if args.size != "tiny" else 1 << 22)
        for c in cases:
            try:
                r = run_case(
                    c,
                    seed=args.seed,
                    pool=pool,
                    min_footprint_bytes=2 * cache,
                    max_buffers=256,
                    **settings,
                )
            except KernelCheckError as e:  # wrong result: reported, never timed or fitted
                failed.append({"name": c.name, "error": str(e)})
                out(f"FAILED correctness check, not timed: {e}")
                continue
            results.append(r)
    t_kernels = time.perf_counter() - t_start
    out(
        f"{len(results)} kernels checked against NumPy and timed in {t_kernels:.1f} s "
        f"(compile {sum(r.timing.compile_s for r in results):.1f} s kept apart)"
    )

    if backend == "cpu" and chip is None and args.reuse_host:
        host_path = Path(args.host_catalog).expanduser()
        chip = load_host_chip(host_path, args.host_key)
        chip_key = args.host_key
        out(f"host spec <- {host_path} [chips.{chip_key}] (reused, not re-measured)")
    elif backend == "cpu":
        spec = host_spec_from_results(results, info, args.stat)
        host_path = write_host_catalog(spec, args.host_catalog, info, args.host_key)
        fig = spec["figures"]
        out(
            f"host spec -> {host_path} [chips.{args.host_key}]: fp32 "
            f"{fig.get('fp32_flops_per_s', 0) / 1e9:.1f} GFLOP/s, bf16 "
            f"{fig.get('bf16_flops_per_s', 0) / 1e9:.1f} GFLOP/s, DRAM "
            f"{fig['dram_bytes_per_s'] / 1e9:.1f} GB/s, cache {fig.get('sram_bytes_per_s', 0) / 1e9:.1f} GB/s "
            f"({fig['sram_bytes'] / 2**20:.0f} MiB)"
        )
        if chip is None:
            chip = load_host_chip(host_path, args.host_key)
            chip_key = args.host_key

    data, meta = make_dataset(results, args.stat)
    test = split_mask(meta)
    train = ~test
    default = Efficiency.default()
    assert chip is not None  # --chip, the GPU's catalog entry, or the host measured above
    fitted, loss = fit_efficiency(data, chip, train, default, steps=args.steps)
    pred_before = np.asarray(predict_s(data.ops, chip, default))
    pred_after = np.asarray(predict_s(data.ops, chip, fitted))
    meas = np.asarray(data.measured_s)
    e_before, e_after = abs_pct_error(pred_before, meas), abs_pct_error(pred_after, meas)

    if args.verbose:
        out("")
        out(
            f"{'kernel':<40} {'split':<5} {'measured':>10} {'IQR/med':>7} {'before':>10} {'ratio':>6} "
            f"{'after':>10} {'ratio':>6}"
        )
        for i, m in enumerate(meta):
            r = results[i]
            out(
                f"{m['name']:<40} {'test' if test[i] else 'train':<5} {_fmt_s(meas[i])} "
                f"{r.timing.iqr_rel:>7.2f} {_fmt_s(pred_before[i])} {pred_before[i] / meas[i]:>6.2f} "
                f"{_fmt_s(pred_after[i])} {pred_after[i] / meas[i]:>6.2f}"
            )
    table, by_family = error_table(meta, test, e_before, e_after)
    out("")
    out(
        f"roofline vs measured on {chip_key}, held-apart split ({int(test.sum())} of {len(meta)} "
        "kernels), |model/measured - 1|:"
    )
    out(table)
    allrow = by_family["ALL"]
    ratio = allrow["after_median_pct"] / max(allrow["before_median_pct"], 1e-12)
    out(
        f"median error after / before = {ratio:.2f}   (target: median after <= 15%: "
        f"{'met' if allrow['after_median_pct'] <= 15 else 'NOT met'})"
    )
    effd = efficiency_to_dict(fitted)
    out(
        "fitted: compute "
        + ", ".join(f"{k} {v:.3f}" for k, v in effd["compute"].items())
        + "; memory "
        + ", ".join(f"{k} {v:.3f}" for k, v in effd["memory"].items())
        + f"; overhead {effd['overhead_s'] * 1e6:.1f} us"
    )

    created = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    cal_path = (
        Path(args.out).expanduser()
        if args.out
        else CACHE_DIR / f"calibration_{check_safe_name(chip_key, 'catalog chip key')}.toml"
    )
    meta_out = {
        "chip": chip_key,
        "stat": args.stat,
        "device": info.description,
        "platform": info.platform,
        "hostname": info.hostname,
        "created_utc": created,
        "size": args.size,
        "n_train": int(train.sum()),
        "n_test": int(test.sum()),
        "host_catalog": str(host_path) if host_path else "",
        "tool": "perfmodel.calibrate",
        "jax_version": jax.__version__,
    }
    errs = {
        "split": "held-apart",
        "before_median_pct": allrow["before_median_pct"],
        "before_worst_pct": allrow["before_worst_pct"],
        "after_median_pct": allrow["after_median_pct"],
        "after_worst_pct": allrow["after_worst_pct"],
    }
    save_efficiency(fitted, cal_path, meta_out, errs)
    out(f"calibration -> {cal_path}  (load: perfmodel.calibrate.load_efficiency(path))")

    coll = []
    if args.collectives:
        from perfmodel.kernels import collectives

        try:
            if backend == "cpu":
                coll = collectives.run_in_subprocess(args.collectives, args.size)
            elif info.n_devices >= 2:
                with jax.default_device(dev):
                    coll = collectives.run_collectives(args.size)
            else:
                out("collectives: skipped (one device)")
        except (RuntimeError, ValueError) as e:  # reported, not fatal: the fit is done
            out(f"collectives: FAILED: {e}")
        if coll:
            out("")
            out(
                f"collectives over {coll[0]['devices']} {coll[0]['platform']} devices "
                "(simulated on CPU: one shared memory; not fitted):"
            )
            out(collectives.format_table(coll))
    wall = time.perf_counter() - t_start
    if failed:
        out(
            f"{len(failed)} kernel(s) FAILED their correctness check: "
            + ", ".join(f["name"] for f in failed)
        )
    out(f"total {wall:.1f} s")
    result = {
        "device": dataclasses.asdict(info),
        "chip": chip_key,
        "size": args.size,
        "kernels": [r.as_dict() for r in results],
        "split_test": [bool(x) for x in test],
        "pred_before_s": pred_before.tolist(),
        "pred_after_s": pred_after.tolist(),
        "errors_by_family": by_family,
        "error_ratio_after_before": ratio,
        "efficiency_default": efficiency_to_dict(default),
        "efficiency_fitted": effd,
        "fit_loss": loss,
        "calibration_file": str(cal_path),
        "host_catalog": str(host_path) if host_path else None,
        "collectives": coll,
        "wall_s": wall,
        "created_utc": created,
        "failed": failed,
    }
    if args.json_out:
        p = Path(args.json_out).expanduser()
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(result, indent=1))
        out(f"results -> {p}")
    return result


__all__ = [
    "PRECISIONS",
    "Dataset",
    "DeviceInfo",
    "abs_pct_error",
    "add_arguments",
    "detect_device",
    "efficiency_from_dict",
    "efficiency_to_dict",
    "fit_efficiency",
    "host_spec_from_results",
    "load_calibration",
    "load_efficiency",
    "load_host_chip",
    "make_dataset",
    "predict_s",
    "run",
    "save_efficiency",
    "split_mask",
    "write_host_catalog",
]
