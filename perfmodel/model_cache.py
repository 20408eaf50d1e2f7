"""The one on-disk cache of model curves (``$PERFMODEL_CACHE_DIR/curves.json``), keyed
by the fingerprint of the model files.

The value curves of the planner (:mod:`perfmodel.fleet.curves`) and the equivalence
curves (:func:`perfmodel.equivalence.model_curve`) are stored here, each under a string
key that starts with :func:`model_fingerprint` and names the chip by its content
(:attr:`perfmodel.equivalence.ChipSpec.cache_name`), so a changed model file or a chip
with other figures never reads a stale entry. Values are JSON lists of floats (Python
writes the shortest repr that reads back to the same double: a cached curve equals the
computed one to the last bit) or error strings.

* Read once per process (:func:`_disk`); an absent, unreadable or corrupt file reads as
  empty, and an entry of the wrong shape is the caller's to recompute, never trusted.
* Every write merges the entries other processes wrote meanwhile, writes a temporary
  file in the same directory and renames it over the cache (atomic: a reader sees the
  old file or the new one, never half of one). A read-only directory keeps the curves
  in memory only.
* At most :data:`MAX_ENTRIES` entries; past it the oldest written are dropped.
* The planner's value-curve readings (a few H100e per chip, workload and site: cheap to
  recompute, many per what-if) go to a file of their own, :data:`VALUES_FILE`, so that
  they never push the curves (seconds each) out of :data:`CURVES_FILE`.
* The command-line result cache (:mod:`perfmodel.result_cache`: what a command
  printed, a JSON object per entry) has its own file too, :data:`RESULTS_FILE`, bounded
  at :data:`MAX_RESULTS`, and keys it by :func:`package_fingerprint` (every file of the
  package, not only the model's).

Nothing here imports JAX or another perfmodel module: it sits below every layer.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import secrets
from pathlib import Path

__all__ = [
    "CURVES_FILE",
    "FINGERPRINT_FILES",
    "MAX_RESULTS",
    "RESULTS_FILE",
    "VALUES_FILE",
    "cache_dir",
    "cache_path",
    "get",
    "model_fingerprint",
    "package_fingerprint",
    "put",
]

#: Model files the curves depend on (relative to the perfmodel package), hashed into the
#: fingerprint; directories are hashed recursively (``*.py``).
FINGERPRINT_FILES = (
    "training",
    "interconnect",
    "kernels",
    "equivalence",
    "hardware",
    "roofline.py",
    "workloads",
    # the lists the models check their inputs against (collective kinds, precisions, ...)
    "choices.py",
    "data/catalog_chips.toml",
    "data/catalog_systems.toml",
    "data/workloads.toml",
    "data/training_fit.toml",
    # the planner's inference-serving rates (fleet_rates.json) come from the serving model
    "serving",
    "data/serving_fit.toml",
)
#: Most entries the cache file keeps (the oldest written go first): about 1 kB each.
MAX_ENTRIES = 4096
#: The cache file of the curves (the default of :func:`get` and :func:`put`).
CURVES_FILE = "curves.json"
#: The cache file of the planner's value-curve readings (:mod:`perfmodel.fleet.curves`).
VALUES_FILE = "values.json"
#: The cache file of command results (:mod:`perfmodel.result_cache`).
RESULTS_FILE = "results.json"
#: Most entries :data:`RESULTS_FILE` keeps: one is a command's output, up to ~30 kB.
MAX_RESULTS = 256
_ROOT = Path(__file__).resolve().parent


@functools.cache
def model_fingerprint() -> str:
    """SHA-256 (16 hex digits) of the model files the curves depend on
    (:data:`FINGERPRINT_FILES`): shipped and cached curves are used only when it matches."""
    h = hashlib.sha256()
    for name in FINGERPRINT_FILES:
        p = _ROOT / name
        if not p.exists():  # a moved or renamed model file must not drop out unseen
            raise FileNotFoundError(f"model_cache.FINGERPRINT_FILES lists {name!r}: {p} is missing")
        _hash_files(h, sorted(p.rglob("*.py")) if p.is_dir() else [p])
    return h.hexdigest()[:16]


def _hash_files(h, files) -> None:
    for f in files:
        if f.is_file() and "__pycache__" not in f.parts:
            h.update(str(f.relative_to(_ROOT)).encode() + b"\0" + f.read_bytes() + b"\0")


@functools.cache
def package_fingerprint() -> str:
    """SHA-256 (16 hex digits) of every file of the perfmodel package (its code, the
    command line included, and its data), for results that depend on more than the
    model files of :func:`model_fingerprint` (what a command prints)."""
    h = hashlib.sha256()
    _hash_files(h, sorted(_ROOT.rglob("*")))
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    """perfmodel's cache directory: ``$PERFMODEL_CACHE_DIR``, default
    ``~/.cache/perfmodel``."""
    return Path(os.environ.get("PERFMODEL_CACHE_DIR") or Path.home() / ".cache" / "perfmodel")


def cache_path(file: str = CURVES_FILE) -> Path:
    """The cache file ``file`` (default the curves') in :func:`cache_dir`."""
    return cache_dir() / file


def _read(path: Path) -> dict:
    try:
        disk = json.loads(path.read_text())
    except (OSError, ValueError):  # absent, unreadable, truncated or not JSON
        return {}
    return disk if isinstance(disk, dict) else {}


@functools.cache
def _disk(file: str) -> dict:
    """The entries of the cache file ``file``, read once per process
    (``_disk.cache_clear()`` reads every file again, e.g. after changing
    ``PERFMODEL_CACHE_DIR``). No default: one in-process dict per file."""
    return _read(cache_path(file))


def get(key: str, file: str = CURVES_FILE):
    """The entry under ``key`` in ``file`` (default the curves'), or None. The caller
    checks its shape."""
    return _disk(file).get(key)


def put(key: str, value, file: str = CURVES_FILE, max_entries: int = MAX_ENTRIES) -> None:
    """Store ``value`` (JSON: a list of floats, a string or an object) under ``key`` in
    ``file`` (default the curves'), atomically, keeping at most ``max_entries``."""
    disk = _disk(file)
    disk.pop(key, None)
    disk[key] = value  # last: the newest entry
    p = cache_path(file)
    tmp: Path | None = None
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        merged = {k: v for k, v in _read(p).items() if k not in disk}
        merged.update(disk)
        for k in list(merged)[: max(0, len(merged) - max_entries)]:
            del merged[k]
        disk.clear()
        disk.update(merged)
        tmp = p.with_name(f"{p.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        # json.dumps, not json.dump: dump streams through the pure-Python encoder,
        # dumps uses the C one (the same text, ~5x faster on a file of curves)
        text = json.dumps(merged)
        with tmp.open("x") as f:
            f.write(text)
        os.replace(tmp, p)
        tmp = None
    except OSError:  # a read-only cache directory: keep the entry in memory only
        pass
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
