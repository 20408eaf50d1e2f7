"""The device the kernels run on, and the host CPU's figures measured from them: peak
FLOP/s and bandwidths from the best matmul and STREAM kernels, cache and memory sizes
from sysfs and procfs."""

from __future__ import annotations

import dataclasses
import os
import platform
import socket
from pathlib import Path
from typing import Any

import jax

from perfmodel.calibrate.fit import measured_s

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
