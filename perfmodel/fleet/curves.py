"""Value curves: H100e delivered by n chips of a kind in one cluster (training model,
cached on disk by model fingerprint, or the labelled stand-in), and their concave hull."""

from __future__ import annotations

import functools
from pathlib import Path

import jax.numpy as jnp
import numpy as np

__all__ = ["value_curve", "standin_h100e", "concave_interpolant"]


# --------------------------------------------------------------------------------------
# Value curves (H100e delivered by n chips of a kind in one cluster)
# --------------------------------------------------------------------------------------

# Stand-in only (used when neither perfmodel.equivalence nor perfmodel.training is
# available, and in tests): dense BF16 (int8 for the FSD computers) peak TFLOPS from
# /work/shared/reference/hardware.toml; the H100 reference is 989.4 (989.4 int8 -> 1978.9).
_STANDIN_BF16_TFLOPS = {
    "a100_80gb": 312.0,
    "h100_sxm": 989.4,
    "h100": 989.4,
    "h200": 989.4,
    "b200": 2250.0,
    "gb200": 2500.0,
    "mi300x": 1307.4,
    "d1": 362.0,
    "dojo_tile": 9050.0,
    "hw3": 144.0 / 2,
    "ai4": 250.0 / 2,
    "host_cpu": 0.0,
    "dojo_dip": 0.0,
}


def standin_h100e(chip_key: str, counts) -> np.ndarray:
    """STAND-IN value curve (tests and fallback only): spec ratio x n^0.98.

    ``H100e(n) = (peak_bf16(chip) / peak_bf16(H100)) * n^0.98`` -- a crude scaling
    efficiency that loses ~2% per decade of cluster size. Not the training model.
    """
    r = _STANDIN_BF16_TFLOPS.get(chip_key, 0.0) / 989.4
    n = np.asarray(counts, dtype=np.float64)
    return r * np.power(np.maximum(n, 0.0), 0.98)


_FINGERPRINT: str | None = None


def _model_fingerprint() -> str:
    """Hash of the model sources and data the value curves depend on (disk-cache key)."""
    global _FINGERPRINT
    if _FINGERPRINT is None:
        import hashlib

        root = Path(__file__).resolve().parents[1]
        h = hashlib.sha1()
        files = [
            root / f
            for f in (
                "equivalence.py",
                "training.py",
                "workloads.py",
                "interconnect.py",
                "roofline.py",
                "hardware.py",
            )
        ]
        files += sorted((root / "data").glob("catalog_*.toml")) + sorted(
            (root / "data").glob("workloads/*")
        )
        # the model packages (training/ became a package: hash every module in it)
        for pkg in ("training", "equivalence", "kernels"):
            files += sorted((root / pkg).glob("*.py")) if (root / pkg).is_dir() else []
        files += [root / "data" / "workloads.toml"]
        for f in files:
            if f.is_file():
                h.update(f.name.encode())
                h.update(f.read_bytes())
        _FINGERPRINT = h.hexdigest()[:16]
    return _FINGERPRINT


def _cache_path() -> Path:
    import os

    d = os.environ.get("PERFMODEL_CACHE_DIR") or str(Path.home() / ".cache" / "perfmodel")
    return Path(d) / "fleet_value_curves.json"


_DISK: dict | None = None


def _disk() -> dict:
    """The on-disk cache, read once per process."""
    global _DISK
    if _DISK is None:
        import json

        try:
            disk = json.loads(_cache_path().read_text())
        except Exception:  # noqa: BLE001  (absent or corrupt cache: start empty)
            disk = {}
        _DISK = disk
        return disk
    return _DISK


def _disk_get(key: str):
    return _disk().get(key)


def _disk_put(key: str, value) -> None:
    import json
    import os

    disk = _disk()
    disk[key] = value
    try:
        p = _cache_path()
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(disk))
        tmp.replace(p)
    except OSError:
        pass


@functools.lru_cache(maxsize=512)
def _curve_cached(
    chip_key: str, workload: str, counts: tuple[float, ...], pick: str, source: str, mode: str
) -> tuple[tuple[float, ...], str]:
    counts_arr = np.asarray(counts, dtype=np.float64)
    pos = counts_arr > 0
    out = np.zeros_like(counts_arr)
    label = f"training model via equivalence.model_curve ({mode} mode)"
    if source in ("auto", "equivalence"):
        key = f"{_model_fingerprint()}|{chip_key}|{workload}|{pick}|{mode}|" + ",".join(
            f"{c:.6g}" for c in counts
        )
        hit = _disk_get(key)
        if hit is not None:
            return tuple(hit), label
        try:
            from perfmodel.equivalence import REFERENCE_CHIP, curve_throughput, model_curve

            cx = model_curve(chip_key, workload, pick=pick, mode=mode)
            ch = model_curve(REFERENCE_CHIP, workload, pick="best", mode="capacity")
            t_ref = float(np.exp(np.max(np.asarray(ch.log_throughput) - np.asarray(ch.log_counts))))
            v = (
                np.asarray(curve_throughput(cx, jnp.asarray(counts_arr[pos])), dtype=np.float64)
                / t_ref
            )
            if np.all(np.isfinite(v)) and np.all(v >= 0):
                out[pos] = v
                _disk_put(key, [float(x) for x in out])
                return tuple(out), label
        except Exception as e:  # noqa: BLE001  (module missing, or chip/workload unsupported)
            if source == "equivalence":
                raise ValueError(f"value curve of {chip_key!r} on {workload!r} failed: {e}") from e
    out = standin_h100e(chip_key, counts_arr)
    return tuple(out), "STAND-IN spec ratio x n^0.98"


def value_curve(
    chip_key: str,
    workloads,
    counts,
    *,
    pick: str = "best",
    source: str = "auto",
    mode: str = "capacity",
) -> tuple[np.ndarray, str]:
    """Weighted H100e delivered by ``counts`` chips of ``chip_key`` at one site.

    ``V(n) = sum_w weight_w * T_w(chip, n) / t_ref_w`` where ``T_w`` is the training
    model's throughput curve (work units/s) from :func:`perfmodel.equivalence.model_curve`
    and ``t_ref_w`` the best per-chip H100 throughput on workload w (so 1 H100 at its best
    = 1 H100e). ``mode="capacity"`` (default): n chips may run several copies of the job
    on smaller slices (the fleet view behind "85k H100e"); ``mode="job"``: one job spans
    all n chips (fixed global batch: strong diminishing returns). ``source``: "auto"
    (training model, else the labelled stand-in), "equivalence" (training model or
    error) or "standin". Curves are cached on disk (``$PERFMODEL_CACHE_DIR`` or
    ``~/.cache/perfmodel``) keyed by a hash of the model sources. Returns (values
    [H100e], description of the source used).
    """
    counts_t = tuple(float(c) for c in np.asarray(counts, dtype=np.float64).ravel())
    total = np.zeros(len(counts_t))
    srcs = []
    for w, weight in workloads:
        if source == "standin":
            v, s = tuple(standin_h100e(chip_key, counts_t)), "STAND-IN spec ratio x n^0.98"
        else:
            v, s = _curve_cached(chip_key, w, counts_t, pick, source, mode)
        total += weight * np.asarray(v)
        srcs.append(s)
    return total, ", ".join(sorted(set(srcs)))


def concave_interpolant(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Values at ``xs`` of the least concave majorant of the points (xs, ys).

    Ensures segment slopes are non-increasing (required by the segment formulation).
    ``xs`` strictly increasing. Returns an array shaped like ``ys``.
    """
    hull: list[int] = []
    for i in range(len(xs)):
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            # drop b if it lies on or below the chord a -> i
            if (ys[b] - ys[a]) * (xs[i] - xs[a]) <= (ys[i] - ys[a]) * (xs[b] - xs[a]):
                hull.pop()
            else:
                break
        hull.append(i)
    return np.interp(xs, xs[hull], ys[hull])
