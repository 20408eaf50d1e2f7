"""Fit the serving model's efficiencies to the published MLPerf Inference results, and
cross-validate.

Parameters (:data:`perfmodel.serving.types.FIT_PARAMS`) are global, plus two of the
serving software (:data:`SOFTWARE_PARAMS`): one factor per engine family other than
the TensorRT-LLM reference (``software_vllm``: vLLM and its derivatives, run on AMD
and on NVIDIA chips alike) and the engines' yearly gain (``software_gain_per_year``:
a result of a round ``a`` years before the newest one runs at ``exp(-gain a)`` of the
newest software). Both multiply the GEMM, attention and DRAM efficiencies. Chips
differ otherwise only through their catalog figures. A row's prediction is the best
layout the submitter could have used: tensor parallel ``tp`` in 1, 2, 4, 8 within the
node (and, for MoE, experts tensor- or expert-parallel), ``n_chips // tp`` replicas,
each at its :func:`perfmodel.serving.scenarios.operating_point` under the row's own
limits.

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

from perfmodel import workloads as wl
from perfmodel.hardware import load_catalog
from perfmodel.interconnect import network_for
from perfmodel.serving.data import (
    ENGINES,
    MLPERF_FILE,
    MLPerfRow,
    newest_round,
    requests_of,
    round_years,
)
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

#: Software parameters: the engine factors (TensorRT-LLM = 1, the reference) and the
#: yearly software gain (log of the throughput ratio per year of engine maturity).
ENGINE_PARAMS = tuple(f"software_{e.replace('-', '_')}" for e in ENGINES[1:])
SOFTWARE_PARAMS = (*ENGINE_PARAMS, "software_gain_per_year")
ALL_PARAMS = FIT_PARAMS + SOFTWARE_PARAMS
#: Priors: engines alike; ~10% a year of software gain (a documented guess).
ALL_PRIOR = {**PRIOR, **{p: 1.0 for p in ENGINE_PARAMS}, "software_gain_per_year": 0.1}
ALL_BOUNDS = {
    **BOUNDS,
    **{p: (0.3, 1.5) for p in ENGINE_PARAMS},
    "software_gain_per_year": (0.0, 1.0),
}
#: The engine family each vendor's published results ran (the default of
#: :func:`perfmodel.serving.serve`); a vendor not listed gets the reference.
ENGINE_OF_VENDOR = {"nvidia": "tensorrt-llm", "amd": "vllm"}
#: Weight of the prior residual ``(theta - prior) / range`` against a row's log error.
PRIOR_WEIGHT = 0.05
#: Tensor-parallel degrees tried per row.
TP_CHOICES = (1, 2, 4, 8)


def vendor_efficiency(eff: ServeEfficiency, factor) -> ServeEfficiency:
    """``eff`` with the software ``factor`` on GEMM, attention and DRAM."""
    return dataclasses.replace(
        eff,
        matmul=eff.matmul * factor,
        attention=eff.attention * factor,
        dram=jnp.minimum(eff.dram * factor, 1.0),
    )


def software_factor(theta_sw, engine_onehot, age_years):
    """Throughput factor of a result's software: its engine family's factor times
    ``exp(-gain x age)`` (``age``: years before the newest round). ``theta_sw`` holds
    :data:`SOFTWARE_PARAMS` in order. Traceable."""
    engines = jnp.concatenate([jnp.ones(1), theta_sw[: len(ENGINE_PARAMS)]])
    gain = theta_sw[len(ENGINE_PARAMS)]
    return jnp.sum(engines * engine_onehot) * jnp.exp(-gain * age_years)


def _efficiency(theta, engine_onehot, age_years) -> ServeEfficiency:
    eff = efficiency_from_params(theta[: len(FIT_PARAMS)])
    return vendor_efficiency(
        eff, software_factor(theta[len(FIT_PARAMS) :], engine_onehot, age_years)
    )


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

    def __init__(
        self,
        rows: Sequence[MLPerfRow],
        input_means: dict[str, float] | None = None,
    ):
        """Each row's software factor is its engine family's (``row.engine``), aged by
        the software gain since its round; ``input_means``: mean prompt length by
        benchmark replacing the dataset file's (e.g. an earlier estimate)."""
        input_means = input_means or {}
        cat = load_catalog()
        t_new = round_years(newest_round())
        self.rows = tuple(rows)
        groups: dict[Any, list[int]] = {}
        items = []
        for i, r in enumerate(self.rows):
            w = wl.get_workload(r.benchmark).with_precision(r.precision)
            lays, valid = _layouts(r, w)
            w = dataclasses.replace(w, name="", family="")
            chip = dataclasses.replace(cat.chip(r.chip), name="")
            net = network_for(r.chip, cat)
            onehot = np.array([r.engine == e for e in ENGINES], dtype=float)
            age = t_new - r.years
            x = (
                w,
                chip,
                net,
                requests_of(r, input_means.get(r.benchmark)),
                jnp.asarray(lays),
                jnp.asarray(valid),
                _f(float(r.n_chips)),
                jnp.asarray(onehot),
                _f(age),
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


def _row_points(theta, w, chip, net, req, lays, valid, n, onehot, age):
    eff = _efficiency(theta, onehot, age)

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
    fixed: dict[str, float] | None = None,
    bounds: dict[str, tuple[float, float]] | None = None,
) -> np.ndarray:
    """Least-squares fit of :data:`ALL_PARAMS` to ``prob``'s rows, or to the rows where
    the boolean mask ``train`` is true (the compiled programs are the same for every
    mask: no recompilation per fold); parameters in ``fixed`` stay at their given
    values; ``bounds`` replaces some of :data:`ALL_BOUNDS`. Returns theta."""
    train = np.ones(len(prob.rows), dtype=bool) if train is None else np.asarray(train)
    fixed = fixed or {}
    free = np.array([k not in fixed for k in ALL_PARAMS])
    bnd = {**ALL_BOUNDS, **(bounds or {})}
    lo = np.array([bnd[k][0] for k in ALL_PARAMS])
    hi = np.array([bnd[k][1] for k in ALL_PARAMS])
    prior, scale = prior_vector(), _scale()
    x0 = np.clip(prior if theta0 is None else theta0, lo, hi)
    for k, v in fixed.items():
        x0[ALL_PARAMS.index(k)] = v
    logm = np.log(prob.measured[train])

    def full(x):
        theta = x0.copy()
        theta[free] = x
        return theta

    def resid(x):
        theta = full(x)
        pred = np.maximum(prob.predict(theta)[train], 1e-3)
        return np.concatenate(
            [
                np.log(pred) - logm,
                PRIOR_WEIGHT * ((theta - prior) / scale)[free] * np.sqrt(len(logm)),
            ]
        )

    # here, not at the top: only a refit needs scipy.optimize (0.3-0.4 s CPU to import
    # beside scipy.sparse); `perfmodel plan` and `serve` read the fitted parameters only
    import scipy.optimize

    sol = scipy.optimize.least_squares(
        resid,
        x0[free],
        bounds=(lo[free], hi[free]),
        method="trf",
        x_scale=scale[free],
        diff_step=1e-3,
        max_nfev=max_nfev,
    )
    return full(np.asarray(sol.x))


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
    prob: Problem,
    kind: str,
    theta0: np.ndarray,
    max_nfev: int = 30,
    fixed: dict[str, float] | None = None,
    bounds: dict[str, tuple[float, float]] | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """:func:`cross_validate` on an already built :class:`Problem`."""
    key = FOLD_KINDS[kind]
    labels = np.array([key(r) for r in prob.rows])
    pred = np.zeros(len(prob.rows))
    thetas = {}
    for lab in sorted(set(labels)):
        held = labels == lab
        th = fit(prob, theta0, max_nfev=max_nfev, train=~held, fixed=fixed, bounds=bounds)
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


def engine_for_vendor(vendor: str) -> str:
    """The engine family a chip of ``vendor`` (catalog ``vendor``, any case) is served
    with by default: the one its published results ran (:data:`ENGINE_OF_VENDOR`),
    else the reference."""
    return ENGINE_OF_VENDOR.get(vendor.strip().lower(), ENGINES[0])


def efficiency_for_engine(params: dict[str, float], engine: str) -> ServeEfficiency:
    """The fitted efficiency of the newest software of ``engine`` (an :data:`ENGINES`
    family): global parameters x the engine's factor (1 for the reference, and for a
    fit file without that factor)."""
    if engine not in ENGINES:
        raise ValueError(f"engine = {engine!r} must be one of {', '.join(ENGINES)}")
    base = prior_efficiency()
    eff = dataclasses.replace(base, **{k: _f(params[k]) for k in FIT_PARAMS if k in params})
    key = f"software_{engine.replace('-', '_')}"
    return vendor_efficiency(eff, _f(params.get(key, 1.0)))


def efficiency_for_vendor(params: dict[str, float], vendor: str) -> ServeEfficiency:
    """:func:`efficiency_for_engine` with the vendor's default engine."""
    return efficiency_for_engine(params, engine_for_vendor(vendor))
