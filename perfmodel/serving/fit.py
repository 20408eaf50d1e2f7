"""Fit the serving model's efficiencies to the published MLPerf Inference results, and
cross-validate.

Parameters (:data:`perfmodel.serving.types.FIT_PARAMS`) are global, plus one software
factor per accelerator vendor (:data:`VENDOR_PARAMS`: the engines differ, TensorRT-LLM
on NVIDIA, vLLM-based on AMD); chips differ otherwise only through their catalog
figures. A row's prediction is the best layout the submitter could have used: tensor
parallel ``tp`` in 1, 2, 4, 8 within the node (and, for MoE, experts tensor- or
expert-parallel), ``n_chips // tp`` replicas, each at its
:func:`perfmodel.serving.scenarios.operating_point` under the row's own limits.

Loss: least squares on ``log(predicted / published tokens/s)`` (``scipy.optimize.
least_squares``, trust-region reflective, finite-difference Jacobian: the operating
point is found by bisection), a weak prior (weight :data:`PRIOR_WEIGHT`) pulling each
parameter toward :data:`perfmodel.serving.types.PRIOR` so that one the training rows
cannot see (FP4 with no B200 row in the fold; a vendor left out) stays at its prior.

Cross-validation: leave one accelerator out, leave one benchmark out, leave one round
out, and 5-fold (rows assigned by index modulo 5); each fold is refitted.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize

from perfmodel import workloads as wl
from perfmodel.hardware import load_catalog
from perfmodel.interconnect import network_for
from perfmodel.serving.data import MLPERF_FILE, MLPerfRow, requests_of
from perfmodel.serving.scenarios import operating_point
from perfmodel.serving.types import (
    BOUNDS,
    FIT_PARAMS,
    PRIOR,
    Layout,
    ServeEfficiency,
    _f,
    efficiency_from_params,
    prior_efficiency,
)

#: Per-vendor software factors (multiply ``matmul``, ``attention`` and ``dram``).
VENDORS = ("nvidia", "amd")
VENDOR_OF_CHIP = {"h100_sxm": "nvidia", "h200": "nvidia", "b200": "nvidia", "mi300x": "amd"}
VENDOR_PARAMS = tuple(f"software_{v}" for v in VENDORS[1:])  # NVIDIA is the reference
ALL_PARAMS = FIT_PARAMS + VENDOR_PARAMS
ALL_PRIOR = {**PRIOR, **{p: 1.0 for p in VENDOR_PARAMS}}
ALL_BOUNDS = {**BOUNDS, **{p: (0.3, 1.5) for p in VENDOR_PARAMS}}
#: Weight of the prior residual ``(theta - prior) / range`` against a row's log error.
PRIOR_WEIGHT = 0.05
#: Tensor-parallel degrees tried per row.
TP_CHOICES = (1, 2, 4, 8)


def vendor_efficiency(eff: ServeEfficiency, factor) -> ServeEfficiency:
    """``eff`` with the vendor software ``factor`` on GEMM, attention and DRAM."""
    return dataclasses.replace(
        eff,
        matmul=eff.matmul * factor,
        attention=eff.attention * factor,
        dram=jnp.minimum(eff.dram * factor, 1.0),
    )


def _efficiency(theta, vendor_onehot) -> ServeEfficiency:
    eff = efficiency_from_params(theta[: len(FIT_PARAMS)])
    factors = jnp.concatenate([jnp.ones(1), theta[len(FIT_PARAMS) :]])
    return vendor_efficiency(eff, jnp.sum(factors * vendor_onehot))


def _layouts(row: MLPerfRow, w: wl.Workload) -> tuple[np.ndarray, np.ndarray]:
    """Candidate (tp, pp, ep) of a row and their validity (fixed count per row)."""
    cands, valid = [], []
    for tp in TP_CHOICES:
        for ep in (0.0, 1.0):
            ok = tp <= row.chips_per_node and int(w.heads) % tp == 0
            ok = ok and (ep == 0.0 or (w.is_moe and tp > 1))
            cands.append((float(tp), 1.0, ep))
            valid.append(ok)
    return np.array(cands), np.array(valid)


class Problem:
    """The rows grouped into compiled, vmapped programs (one per static structure)."""

    def __init__(self, rows: Sequence[MLPerfRow]):
        cat = load_catalog()
        self.rows = tuple(rows)
        groups: dict[Any, list[int]] = {}
        items = []
        for i, r in enumerate(self.rows):
            w = wl.get_workload(r.benchmark).with_precision(r.precision)
            lays, valid = _layouts(r, w)
            w = dataclasses.replace(w, name="", family="")
            chip = dataclasses.replace(cat.chip(r.chip), name="")
            net = network_for(r.chip, cat)
            onehot = np.array([VENDOR_OF_CHIP[r.chip] == v for v in VENDORS], dtype=float)
            x = (
                w,
                chip,
                net,
                requests_of(r),
                jnp.asarray(lays),
                jnp.asarray(valid),
                _f(float(r.n_chips)),
                jnp.asarray(onehot),
            )
            items.append(x)
            groups.setdefault(jax.tree_util.tree_structure(x), []).append(i)
        self.groups = []
        for idx in groups.values():
            stacked = jax.tree_util.tree_map(
                lambda *a: jnp.stack([jnp.asarray(v) for v in a]), *[items[i] for i in idx]
            )
            self.groups.append((np.asarray(idx), stacked))
        self.measured = np.array([r.tokens_per_s for r in self.rows])

    def predict(self, theta) -> np.ndarray:
        """Predicted system tokens/s of every row."""
        out = np.zeros(len(self.rows))
        th = jnp.asarray(theta, dtype=jnp.result_type(float))
        for idx, st in self.groups:
            _, total = _group_points_jit(th, st)
            out[idx] = np.asarray(jnp.max(total, axis=1))
        return out

    def details(self, theta) -> list[dict[str, Any]]:
        """Per row: the chosen layout and its operating point (host dicts)."""
        out: list[dict[str, Any]] = [{} for _ in self.rows]
        th = jnp.asarray(theta, dtype=jnp.result_type(float))
        for idx, st in self.groups:
            res, total = _group_points_jit(th, st)
            best = np.argmax(np.asarray(total), axis=1)
            lays = np.asarray(st[4])
            for j, i in enumerate(idx):
                k = int(best[j])
                pick = {f: float(np.asarray(getattr(res, f))[j, k]) for f in _DETAIL_FIELDS}
                out[i] = dict(
                    tp=int(lays[j, k, 0]),
                    ep=bool(lays[j, k, 2]),
                    meets=bool(np.asarray(res.meets)[j, k]),
                    **pick,
                )
        return out


_DETAIL_FIELDS = ("batch", "max_batch", "tpot_p99_s", "ttft_p99_s", "latency_p99_s")


def _row_points(theta, w, chip, net, req, lays, valid, n, onehot):
    eff = _efficiency(theta, onehot)

    def one(lay_row):
        lay = Layout(lay_row[0], lay_row[1], lay_row[2])
        return operating_point(w, chip, net, lay, req, eff)

    res = jax.vmap(one)(lays)
    g = lays[:, 0] * lays[:, 1]
    total = jnp.floor(n / g) * res.tokens_per_s
    total = jnp.where(valid & res.meets, total, 0.0)
    return res, total


def _group_points(theta, st):
    return jax.vmap(lambda *a: _row_points(theta, *a))(*st)


_group_points_jit = jax.jit(_group_points)


def _scale() -> np.ndarray:
    return np.array([ALL_BOUNDS[k][1] - ALL_BOUNDS[k][0] for k in ALL_PARAMS])


def prior_vector() -> np.ndarray:
    return np.array([ALL_PRIOR[k] for k in ALL_PARAMS])


def fit(
    prob: Problem,
    theta0: np.ndarray | None = None,
    max_nfev: int = 60,
    train: np.ndarray | None = None,
) -> np.ndarray:
    """Least-squares fit of :data:`ALL_PARAMS` to ``prob``'s rows, or to the rows where
    the boolean mask ``train`` is true (the compiled programs are the same for every
    mask: no recompilation per fold). Returns theta."""
    train = np.ones(len(prob.rows), dtype=bool) if train is None else np.asarray(train)
    lo = np.array([ALL_BOUNDS[k][0] for k in ALL_PARAMS])
    hi = np.array([ALL_BOUNDS[k][1] for k in ALL_PARAMS])
    prior, scale = prior_vector(), _scale()
    x0 = np.clip(prior if theta0 is None else theta0, lo, hi)
    logm = np.log(prob.measured[train])

    def resid(theta):
        pred = np.maximum(prob.predict(theta)[train], 1e-3)
        return np.concatenate(
            [np.log(pred) - logm, PRIOR_WEIGHT * (theta - prior) / scale * np.sqrt(len(logm))]
        )

    sol = scipy.optimize.least_squares(
        resid,
        x0,
        bounds=(lo, hi),
        method="trf",
        x_scale=scale,
        diff_step=1e-3,
        max_nfev=max_nfev,
    )
    return np.asarray(sol.x)


def errors(pred: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """Signed relative errors ``pred / measured - 1``."""
    return np.asarray(pred) / np.asarray(measured) - 1.0


FOLD_KINDS: dict[str, Callable[[MLPerfRow], str]] = {
    "accelerator": lambda r: r.family,
    "benchmark": lambda r: r.benchmark,
    "round": lambda r: r.round,
    "5-fold": lambda r: f"fold{r.index % 5}",
}


def cross_validate(
    rows: Sequence[MLPerfRow], kind: str, theta0: np.ndarray, max_nfev: int = 30
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Held-out predictions of every row: each group of ``kind`` is predicted by a fit
    on the other rows (warm-started at ``theta0``). Returns (predictions, theta of
    each fold)."""
    return cross_validate_problem(Problem(rows), kind, theta0, max_nfev)


def cross_validate_problem(
    prob: Problem, kind: str, theta0: np.ndarray, max_nfev: int = 30
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """:func:`cross_validate` on an already built :class:`Problem`."""
    key = FOLD_KINDS[kind]
    labels = np.array([key(r) for r in prob.rows])
    pred = np.zeros(len(prob.rows))
    thetas = {}
    for lab in sorted(set(labels)):
        held = labels == lab
        th = fit(prob, theta0, max_nfev=max_nfev, train=~held)
        thetas[str(lab)] = th
        pred[held] = prob.predict(th)[held]
    return pred, thetas


def provenance(rows: Sequence[MLPerfRow]) -> dict[str, Any]:
    digest = hashlib.sha256(MLPERF_FILE.read_bytes()).hexdigest()
    return dict(
        date=datetime.date.today().isoformat(),
        data_file="perfmodel/data/mlperf_inference.toml",
        data_sha256=digest,
        rows_used=len(rows),
        method="scipy.optimize.least_squares (trf) on log(predicted / published tokens/s)",
        prior_weight=PRIOR_WEIGHT,
    )


def params_dict(theta: np.ndarray) -> dict[str, float]:
    return {k: float(v) for k, v in zip(ALL_PARAMS, theta, strict=True)}


def efficiency_for_vendor(params: dict[str, float], vendor: str) -> ServeEfficiency:
    """The fitted efficiency a chip of ``vendor`` (catalog ``vendor``, any case) runs at:
    global parameters x the vendor's software factor (1 for NVIDIA, the reference, and
    for a vendor with no fitted factor)."""
    base = prior_efficiency()
    eff = dataclasses.replace(base, **{k: _f(params[k]) for k in FIT_PARAMS if k in params})
    vendor = vendor.strip().lower()
    return vendor_efficiency(eff, _f(params.get(f"software_{vendor}", 1.0)))
