"""Published training runs and the model's prediction of each."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from perfmodel import workloads as wl
from perfmodel.hardware import load_catalog
from perfmodel.training.search import best_layout
from perfmodel.training.step import _jit_step, get_network
from perfmodel.training.types import TrainEfficiency, _f, default_efficiency, make_layout
from perfmodel.workloads import Workload

# --------------------------------------------------------------------------------------
# Published runs (the `calibration` tables of ../shared/reference/hardware.toml)
# --------------------------------------------------------------------------------------


def published_flops_per_token(w: Workload, convention: str):
    """FLOP per token as a publication counted it, to turn its TFLOP/s into tokens/s.

    ``"6n_full_attn"``: ``3 (2 N_mm + 4 L s d)``, attention without the causal halving
    (MLPerf's GPT-3 model FLOPs, Megatron-LM's ``num_floating_point_operations``,
    PaLM-style MFU). ``"megatron_recompute"``: Narayanan et al. 2021's
    ``96 B s l h^2 (1 + s/(6h) + V/(16 l h))`` per ``B s`` tokens, i.e. the layers' forward
    counted 4 times (full recomputation) and the head 3 times.
    """
    d, L, s = w.hidden, w.layers, w.seq
    layers_fwd = 2.0 * (wl.matmul_params(w) - wl.head_params(w) - w.patch_dim * d) + 4.0 * L * s * d
    head_fwd = 2.0 * wl.head_params(w)
    if convention == "6n_full_attn":
        return 3.0 * (layers_fwd + head_fwd)
    if convention == "megatron_recompute":
        return 4.0 * layers_fwd + 3.0 * head_fwd
    raise ValueError(f"convention {convention!r} must be '6n_full_attn' or 'megatron_recompute'")


#: The file of :data:`PUBLISHED_RUNS` (each run with its source).
OTHER_RUNS_FILE = (
    Path(__file__).resolve().parent.parent / "data" / "published_training_runs_other.toml"
)


def _as_tuples(d: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}


def load_published_runs(path: Path = OTHER_RUNS_FILE) -> tuple[dict[str, Any], ...]:
    """The runs of ``published_training_runs_other.toml`` as dicts: ``tflops_per_gpu`` is
    the published figure in the publication's own FLOP convention (``mfu x
    peak_tflops`` where the publication states MFU), ``layout`` the layout used (or
    our stated assumption, ``assumed``), ``features`` the search restrictions."""
    with path.open("rb") as fh:
        rows = tomllib.load(fh)["run"]
    out = []
    for r in rows:
        r = dict(r)
        if "mfu" in r:
            r["tflops_per_gpu"] = r.pop("mfu") * r.pop("peak_tflops")
        if "features" in r:
            r["features"] = _as_tuples(r["features"])
        out.append(r)
    return tuple(out)


#: Published training runs outside the NeMo tables (MLPerf, the Llama 3 paper,
#: Megatron-LM), with the layouts they used: see :func:`load_published_runs`.
PUBLISHED_RUNS: tuple[dict[str, Any], ...] = load_published_runs()


def published_run_prediction(
    case: dict[str, Any], *, eff: TrainEfficiency | None = None, catalog=None, search: bool = True
) -> dict[str, Any]:
    """Predict one :data:`PUBLISHED_RUNS` case with its published layout (and, if
    ``search``, with the model's own best layout). Per-GPU figures are in the
    publication's FLOP convention. The published layout is timed even if the memory
    model says it does not fit (``fits`` reports that)."""
    cat = catalog or load_catalog()
    w = wl.get_workload(case["workload"])
    chip = cat.chip(case["chip"])
    net = get_network(case["chip"], cat)
    lay = make_layout(**case["layout"])
    r = _jit_step(w, chip, net, lay, _f(case["n"]), eff or default_efficiency())
    conv = float(published_flops_per_token(w, case["convention"]))
    n = case["n"]
    pred_tflops = float(r.units_per_s) / n * conv / 1e12
    out = dict(
        key=case["key"],
        n=n,
        published_tflops=case["tflops_per_gpu"],
        predicted_tflops=pred_tflops,
        error_pct=100.0 * (pred_tflops / case["tflops_per_gpu"] - 1.0),
        mfu=float(r.mfu),
        fits=bool(r.fits),
        memory_gb=float(r.memory_bytes) / 1e9,
        step_time_s=float(r.step_time_s),
    )
    if search:
        best = best_layout(w, case["chip"], n, catalog=cat, eff=eff, **case.get("features", {}))
        out["best_tflops"] = best.tokens_per_s / n * conv / 1e12
        out["best_error_pct"] = 100.0 * (out["best_tflops"] / case["tflops_per_gpu"] - 1.0)
        out["best_layout"] = best.layout
    return out
