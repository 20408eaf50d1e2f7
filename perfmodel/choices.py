"""The names and defaults that the command-line parsers offer, in plain Python (no JAX,
NumPy): each list's one home, which the model modules import from here.

``perfmodel CMD --help`` builds CMD's parser, and a parser needs its ``choices`` and
help text before the model that uses them loads (JAX: 1.0-1.5 s on 2 cores),
so these cannot live in the model packages, whose ``__init__`` imports JAX. The
catalog's precisions and picks have their home in :mod:`perfmodel.hardware` (also light).
tests/test_cli_nojax.py checks that every command's ``--help`` imports no JAX.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Any

from perfmodel.hardware import read_toml
from perfmodel.model_cache import cache_dir

#: Collectives of the alpha-beta model (:mod:`perfmodel.interconnect`; ``net --kind``).
COLLECTIVE_KINDS: tuple[str, ...] = (
    "all_reduce",
    "reduce_scatter",
    "all_gather",
    "all_to_all",
    "send_recv",
)

#: Precisions a training workload may state (int8 is for inference only;
#: :mod:`perfmodel.workloads`, ``train --precision``).
TRAIN_PRECISIONS = ("bf16", "fp16", "fp8", "fp32", "tf32", "fp4")

#: Forward-only throughput modes of the training model (``train --inference``).
INFERENCE_MODES = ("forward", "decode")

#: The models ``equiv --kind inference`` can use: the fitted serving model (causal LLMs,
#: tokens/s at an MLPerf latency target) or forward-only int8 passes (vision /
#: in-the-loop); :mod:`perfmodel.equivalence`.
INFERENCE_MODELS = ("serving", "forward")

#: Scenarios as MLPerf names them (:mod:`perfmodel.serving`; ``serve``, ``equiv --scenario``).
SERVING_SCENARIOS = ("offline", "server", "interactive")

#: The workload presets, each with its public source (``[sources]`` of the file).
WORKLOAD_PRESETS_FILE = Path(__file__).resolve().parent / "data" / "workloads.toml"


@functools.cache
def workload_presets_toml() -> dict[str, Any]:
    """The parsed :data:`WORKLOAD_PRESETS_FILE` (read once; do not modify it)."""
    return read_toml(WORKLOAD_PRESETS_FILE, "workload presets")


def workload_names() -> tuple[str, ...]:
    """The preset names, in file order (:data:`perfmodel.workloads.WORKLOAD_NAMES`)."""
    return tuple(workload_presets_toml()["workloads"])


def builtin_spec_paths() -> dict[str, Path]:
    """Built-in sweep specs shipped in ``perfmodel/data/sweeps/`` by name."""

    d = Path(str(resources.files("perfmodel") / "data" / "sweeps"))
    return {p.stem: p for p in sorted(d.glob("*.toml"))} if d.is_dir() else {}


#: How ``perfmodel calibrate`` reduces a kernel's timed calls (``--stat``).
CALIBRATION_STATS = ("fastest", "median")
#: Catalog key of the measured host (``calibrate --host-key``).
DEFAULT_HOST_KEY = "host_measured"
#: Where ``calibrate`` writes the measured host's catalog entry (``--host-catalog``).
DEFAULT_HOST_CATALOG = cache_dir() / "host_catalog.toml"
