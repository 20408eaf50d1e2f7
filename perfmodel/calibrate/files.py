"""Calibration files (``[efficiency]`` TOML) and the measured host's user catalog file."""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np

from perfmodel.calibrate.host import DeviceInfo
from perfmodel.choices import DEFAULT_HOST_CATALOG as DEFAULT_HOST_CATALOG
from perfmodel.choices import DEFAULT_HOST_KEY as DEFAULT_HOST_KEY
from perfmodel.hardware import Chip, load_catalog
from perfmodel.model_cache import cache_dir
from perfmodel.roofline import (
    Efficiency,
    efficiency_to_dict,
)

#: The one cache directory of perfmodel (``$PERFMODEL_CACHE_DIR``, as the JAX compile
#: cache and the fleet value curves use).
CACHE_DIR = cache_dir()

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
    return load_catalog(path, builtin=False).chip(key)
