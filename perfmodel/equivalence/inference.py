"""Inference in the training loop (AI4 / HW3): H100s with the same forward-only
throughput."""

from __future__ import annotations

from collections.abc import Sequence

from perfmodel.equivalence.definitions import DEFAULT_GRID, _catalog, _check_count
from perfmodel.equivalence.model import CurveFn, _training_inference_curve, curve_pair
from perfmodel.equivalence.result import EquivResult
from perfmodel.equivalence.spec import spec_equivalence_range
from perfmodel.equivalence.workload import _base_assumptions, _equiv_jit
from perfmodel.hardware import PICKS, Catalog


def inference_equivalence(
    chip_key: str,
    n_chips: float,
    workload="video-driving",
    *,
    precision: str = "int8",
    pick: str = "best",
    curve_fn: CurveFn | None = None,
    grid: Sequence[int] = DEFAULT_GRID,
    mode: str = "capacity",
    catalog: Catalog | None = None,
) -> float:
    """H100s that deliver the same forward-only (inference) throughput on ``workload`` at
    ``precision`` as ``n_chips`` of ``chip_key``. This is how FSD computers (AI4, HW3) used
    in the training loop (simulation, closed-loop evaluation, auto-labelling) count: their
    work is forward passes, so they are compared on forward passes, not on training.
    Default ``mode="capacity"``: in-the-loop inference is many independent forward passes.
    ``curve_fn`` defaults to :func:`perfmodel.training.inference_throughput` per count."""
    n = _check_count("n_chips", n_chips)
    fn = _training_inference_curve if curve_fn is None else curve_fn
    x, h = curve_pair(
        chip_key,
        workload,
        precision=precision,
        pick=pick,
        grid=grid,
        mode=mode,
        curve_fn=fn,
        catalog=catalog,
    )
    return float(_equiv_jit(x, h, n))


def inference_equivalence_range(
    chip_key: str, n_chips: float, workload="video-driving", *, precision: str = "int8", **kw
) -> EquivResult:
    """:func:`inference_equivalence` at low/best/high, with the int8 spec-sheet ratio."""
    cat = _catalog(kw.pop("catalog", None))
    n = float(_check_count("n_chips", n_chips))
    v = {
        p: inference_equivalence(
            chip_key, n, workload, precision=precision, pick=p, catalog=cat, **kw
        )
        for p in PICKS
    }
    a = _base_assumptions(
        cat,
        chip_key,
        n,
        workload,
        precision,
        tuple(kw.get("grid", DEFAULT_GRID)),
        kw.get("mode", "capacity"),
    )
    a["measure"] = "forward-only (inference) throughput, H100 also at " + precision
    a["spec_h100e"] = spec_equivalence_range(chip_key, precision, n, cat)
    return EquivResult("inference", v["best"], min(v.values()), max(v.values()), a)
