"""Summaries of a finished sweep: P10/P50/P90 of every output, how often each decision
is taken, the most frequent portfolios (:func:`summarize`), and a PNG of histograms and
a fan chart (:func:`plot_summary`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from perfmodel.sweep.store import load_results, read_manifest

QUANTILES = (0.1, 0.5, 0.9)


def summarize(path: str | Path, *, allow_partial: bool = False) -> dict[str, Any]:
    """P10/P50/P90 (and mean) of every output column and how often each decision is taken.

    Returns a dict with ``rows``, ``metrics`` (the model's headline columns),
    ``outputs`` (all other outputs), ``decisions`` (column -> share of samples in which
    its amount exceeds the model's threshold, plus the mean amount), ``portfolios``
    (the most frequent sets of chosen decisions with their share) and ``inputs``
    (quantiles of the sampled inputs).
    """
    man = read_manifest(path)
    table = load_results(path, allow_partial=allow_partial)
    n = table.num_rows
    cols = {c: table.column(c).to_numpy() for c in table.column_names if c != "sample"}
    prefixes = tuple(man.get("decision_prefixes") or ())
    thr = float(man.get("decision_threshold", 0.5))

    def stats(x: np.ndarray) -> dict[str, float | None]:
        x = np.asarray(x, float)
        finite = x[np.isfinite(x)]
        if finite.size == 0:  # no finite value: no statistic (None, never NaN)
            return {"p10": None, "p50": None, "p90": None, "mean": None, "nonfinite": int(x.size)}
        q = np.quantile(finite, QUANTILES)
        d: dict[str, float | None] = {
            "p10": float(q[0]),
            "p50": float(q[1]),
            "p90": float(q[2]),
            "mean": float(finite.mean()),
        }
        if finite.size < x.size:
            d["nonfinite"] = int(x.size - finite.size)
        return d

    metrics = {m: stats(cols[m]) for m in man.get("metrics", []) if m in cols}
    decisions_cols = [c for c in cols if prefixes and c.startswith(prefixes)]
    decisions = {
        c: {
            "share": float(np.mean(cols[c] > thr)) if n else None,
            "mean": _finite_mean(cols[c]) if n else None,
        }
        for c in decisions_cols
    }
    portfolios: list[dict[str, Any]] = []
    if decisions_cols and n:
        chosen = np.stack([cols[c] > thr for c in decisions_cols], axis=1)
        keys, counts = np.unique(chosen, axis=0, return_counts=True)
        order = np.argsort(-counts, kind="stable")[:5]
        for i in order:
            picked = [decisions_cols[j] for j in np.flatnonzero(keys[i])]
            portfolios.append({"chosen": picked, "share": float(counts[i] / n)})
    outputs = {
        c: stats(v)
        for c, v in cols.items()
        if not c.startswith("param.") and c not in metrics and c not in decisions
    }
    inputs = {c[len("param.") :]: stats(v) for c, v in cols.items() if c.startswith("param.")}
    return {
        "path": str(path),
        "model": man["identity"]["model"],
        "rows": n,
        "samples": man["identity"]["samples"],
        "seed": man["identity"]["seed"],
        "metrics": metrics,
        "decisions": decisions,
        "portfolios": portfolios,
        "outputs": outputs,
        "inputs": inputs,
    }


def _finite_mean(x) -> float | None:
    f = _finite(x)
    return float(f.mean()) if f.size else None


def _finite(x) -> np.ndarray:
    x = np.asarray(x, float)
    return x[np.isfinite(x)]


def _spread(x) -> float:
    """Relative range ``(max - min) / max |x|`` of the finite values (0 if none)."""
    x = _finite(x)
    if not x.size:
        return 0.0
    scale = float(np.max(np.abs(x)))
    return float(x.max() - x.min()) / scale if scale > 0 else 0.0


def plot_summary(path: str | Path, file: str | Path) -> Path:
    """Histograms of the headline metrics and, when the model has per-period columns,
    a fan chart (P10-P90 band and P50 line over periods). Writes ``file`` (PNG)."""
    import matplotlib  # only for --plot (matplotlib takes ~1 s to import)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    man = read_manifest(path)
    table = load_results(path)
    cands = [m for m in man.get("metrics", []) if m in table.column_names]
    spread = [m for m in cands if _spread(table.column(m).to_numpy()) > 1e-9]
    metrics = (spread + [m for m in cands if m not in spread])[:3]
    fan = man.get("fan")
    ncols = len(metrics) + (1 if fan else 0)
    fig, axes = plt.subplots(1, max(ncols, 1), figsize=(4.2 * max(ncols, 1), 3.4), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        x = _finite(table.column(m).to_numpy())
        bins = min(50, max(5, int(np.sqrt(max(len(x), 1))))) if _spread(x) > 1e-9 else 1
        ax.hist(x, bins=bins, color="#4477aa")
        for q, ls in zip(np.quantile(x, QUANTILES) if len(x) else [], (":", "-", ":")):
            ax.axvline(q, color="k", ls=ls, lw=1)
        ax.set_title(f"{m} (P10/P50/P90 lines)", fontsize=9)
        ax.set_ylabel("samples")
    if fan:
        prefix, labels = fan
        ax = axes[0][len(metrics)]
        series = np.stack([table.column(f"{prefix}{lab}").to_numpy() for lab in labels], axis=1)
        q = np.quantile(series, QUANTILES, axis=0)
        xs = np.arange(len(labels))
        ax.fill_between(xs, q[0], q[2], alpha=0.3, color="#4477aa", label="P10-P90")
        ax.plot(xs, q[1], color="#223355", label="P50")
        ax.set_xticks(xs, labels, rotation=45, fontsize=7)
        ax.set_title(f"{prefix.rstrip('.[')} over periods", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(
        f"sweep {Path(path).name}: {man['identity']['model']} model, "
        f"{table.num_rows} samples, seed {man['identity']['seed']}",
        fontsize=10,
    )
    fig.tight_layout()
    file = Path(file)
    fig.savefig(file, dpi=110)
    plt.close(fig)
    return file
