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

Engine settings: a published v5.1 row (one with a log in
``perfmodel/data/mlperf_v51_logs.toml``) is served as its engine was configured: at the
tensor-parallel degree of its published config (unless that degree meets the row's
limits at no batch in the model: then at the best one), and with its vLLM scheduler
steps (iterations per scheduling decision: a new request waits up to that many
iterations for its prefill, :mod:`perfmodel.serving.scenarios`); other rows at the best
degree and one step.

Loss: least squares on ``log(predicted / published tokens/s)`` (``scipy.optimize.
least_squares``, trust-region reflective, finite-difference Jacobian: the operating
point is found by bisection), plus, for every v5.1 row with a log, ``PAIR_WEIGHT x
log(model / published mean TPOT)`` with the model's mean time per output token taken
at the log's own decode batch per GPU and layout (the step model where the run ran, from
every benchmark), and a weak prior (weight :data:`PRIOR_WEIGHT`) pulling each
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
    LOGS_FILE,
    MLPERF_FILE,
    LogPair,
    MLPerfRow,
    newest_round,
    requests_of,
    round_years,
)
from perfmodel.serving.scenarios import at_batch, operating_point
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
#: Weight of a published log's mean-TPOT residual ``log(model / log)`` (at the log's
#: own decode batch and tensor-parallel degree) against a row's tokens/s residual
#: (2: chosen among 0.5, 1, 2, 3 by the cross-validation, benchmarks/README.md).
PAIR_WEIGHT = 2.0
#: Weight of its p99-TPOT residual (the model's ``tpot_p99 x tau`` at that batch); 0:
#: tried at 0.3-1 and rejected (it raised the held-out Interactive error).
PAIR_P99_WEIGHT = 0.0
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


def _layouts(
    row: MLPerfRow, w: wl.Workload, published_tp: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Candidate (tp, pp, ep) of a row and their rank (fixed count per row): 0 = not
    possible (more chips than the node, heads not divisible, EP without experts), 2 =
    the published layout (``published_tp``: the engine's tensor-parallel degree in the
    row's config; without one, every possible layout), 1 = possible but not published:
    used only when no published layout meets the row's limits in the model."""
    cands, rank = [], []
    for tp in TP_CHOICES:
        for ep in (0.0, 1.0):
            ok = tp <= row.chips_per_node and int(w.heads) % tp == 0
            ok = ok and (ep == 0.0 or (w.is_moe and tp > 1))
            pub = published_tp is None or tp == published_tp
            cands.append((float(tp), 1.0, ep))
            rank.append(0.0 if not ok else 2.0 if pub else 1.0)
    return np.array(cands), np.array(rank)


def _stacked_groups(items: list, groups: dict[Any, list[int]]) -> list[tuple[np.ndarray, Any]]:
    """(indices, inputs stacked leaf by leaf) for each group of same-structure items."""
    return [
        (
            np.asarray(idx),
            jax.tree_util.tree_map(
                lambda *a: jnp.stack([jnp.asarray(v) for v in a]), *[items[i] for i in idx]
            ),
        )
        for idx in groups.values()
    ]


class Problem:
    """The rows grouped into compiled, vmapped programs (one per static structure)."""

    def __init__(
        self,
        rows: Sequence[MLPerfRow],
        input_means: dict[str, float] | None = None,
        pairs: Sequence[LogPair] = (),
        published_layout: bool = False,
        engine_steps: bool = False,
    ):
        """Each row's software factor is its engine family's (``row.engine``), aged by
        the software gain since its round; ``input_means``: mean prompt length by
        benchmark replacing the dataset file's (e.g. an earlier estimate); ``pairs``:
        published (decode batch, TPOT) points of some rows
        (:func:`perfmodel.serving.data.load_log_pairs` of ``rows``);
        ``published_layout``: a row with a pair is predicted at the pair's published
        tensor-parallel degree (the others, and a row whose published layout meets
        its limits at no batch in the model: the best of :data:`TP_CHOICES`);
        ``engine_steps``: a row with a pair is served with the pair's published
        scheduler steps (the others: 1)."""
        input_means = input_means or {}
        cat = load_catalog()
        t_new = round_years(newest_round())
        self.rows = tuple(rows)
        tp_of = {p.row: p.tp for p in pairs} if published_layout else {}
        steps_of = {p.row: p.scheduler_steps for p in pairs} if engine_steps else {}

        groups: dict[Any, list[int]] = {}
        items = []
        for i, r in enumerate(self.rows):
            w = wl.get_workload(r.benchmark).with_precision(r.precision)
            lays, rank = _layouts(r, w, tp_of.get(i))
            w = dataclasses.replace(w, name="", family="")
            chip = dataclasses.replace(cat.chip(r.chip), name="")
            net = network_for(r.chip, cat)
            onehot = np.array([r.engine == e for e in ENGINES], dtype=float)
            age = t_new - r.years
            x = (
                w,
                chip,
                net,
                requests_of(r, input_means.get(r.benchmark), steps_of.get(i, 1.0)),
                jnp.asarray(lays),
                jnp.asarray(rank),
                _f(float(r.n_chips)),
                jnp.asarray(onehot),
                _f(age),
            )
            items.append(x)
            groups.setdefault(jax.tree_util.tree_structure(x), []).append(i)
        self.groups = _stacked_groups(items, groups)
        self.measured = np.array([r.tokens_per_s for r in self.rows])
        self.pairs = tuple(pairs)
        self.pair_rows = np.array([p.row for p in self.pairs], dtype=int)
        self.pair_tpot = np.array([[p.mean_tpot_s, p.p99_tpot_s] for p in self.pairs])
        pgroups: dict[Any, list[int]] = {}
        pitems = []
        for j, p in enumerate(self.pairs):
            x = items[p.row]
            lay = jnp.asarray([float(p.tp), 1.0, 0.0])
            y = (*x[:4], lay, _f(p.decoding_per_gpu * p.tp), x[7], x[8])
            pitems.append(y)
            pgroups.setdefault(jax.tree_util.tree_structure(y), []).append(j)
        self.pair_groups = _stacked_groups(pitems, pgroups)

    def predict_pairs(self, theta) -> np.ndarray:
        """The model's (mean, p99) TPOT (s) at each pair's published decode batch and
        layout, shape ``(len(pairs), 2)``."""
        out = np.zeros((len(self.pairs), 2))
        th = jnp.asarray(theta, dtype=jnp.result_type(float))
        for idx, st in self.pair_groups:
            out[idx] = np.asarray(_pair_tpot_jit(th, st))
        return out

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


def _row_points(theta, w, chip, net, req, lays, rank, n, onehot, age):
    eff = _efficiency(theta, onehot, age)

    def one(lay_row):
        lay = Layout(lay_row[0], lay_row[1], lay_row[2])
        return operating_point(w, chip, net, lay, req, eff)

    res = jax.vmap(one)(lays)
    g = lays[:, 0] * lays[:, 1]
    total = jnp.floor(n / g) * res.tokens_per_s
    # the published layout where one meets the limits, else the best possible one
    pub = jnp.where((rank > 1.5) & res.meets, total, 0.0)
    any_ = jnp.where((rank > 0.5) & res.meets, total, 0.0)
    return res, jnp.where(jnp.any(pub > 0.0), pub, any_)


def _group_points(theta, st):
    return jax.vmap(lambda *a: _row_points(theta, *a))(*st)


_group_points_jit = jax.jit(_group_points)


def _pair_tpot(theta, w, chip, net, req, lay_row, batch, onehot, age):
    eff = _efficiency(theta, onehot, age)
    lay = Layout(lay_row[0], lay_row[1], lay_row[2])
    res = at_batch(w, chip, net, lay, req, eff, batch)
    return jnp.stack([res.tpot_mean_s, res.tpot_p99_s])


_pair_tpot_jit = jax.jit(jax.vmap(lambda theta, st: _pair_tpot(theta, *st), in_axes=(None, 0)))


def _scale() -> np.ndarray:
    return np.array([ALL_BOUNDS[k][1] - ALL_BOUNDS[k][0] for k in ALL_PARAMS])


def prior_vector() -> np.ndarray:
    return np.array([ALL_PRIOR[k] for k in ALL_PARAMS])


def data_residuals(
    prob: Problem,
    theta: np.ndarray,
    train: np.ndarray,
    pair_weight: float = PAIR_WEIGHT,
    pair_p99_weight: float = PAIR_P99_WEIGHT,
) -> np.ndarray:
    """The fit's data residuals at ``theta``: ``log(predicted / published tokens/s)`` of
    the rows where ``train`` is true, then, for each pair whose row is among them, the
    weighted ``log(model / log)`` of its mean TPOT and of its p99 TPOT (a column of
    weight 0 is left out). A held-out row's log is held out with it."""
    pred = np.maximum(prob.predict(theta)[train], 1e-3)
    out = [np.log(pred) - np.log(prob.measured[train])]
    weights = np.array([pair_weight, pair_p99_weight])
    cols = weights > 0
    use = train[prob.pair_rows] if len(prob.pairs) else np.zeros(0, dtype=bool)
    if use.any() and cols.any():
        model = np.maximum(prob.predict_pairs(theta)[use], 1e-9)
        res = (np.log(model) - np.log(prob.pair_tpot[use])) * weights
        out.append(res[:, cols].ravel())
    return np.concatenate(out)


def fit(
    prob: Problem,
    theta0: np.ndarray | None = None,
    max_nfev: int = 60,
    train: np.ndarray | None = None,
    fixed: dict[str, float] | None = None,
    bounds: dict[str, tuple[float, float]] | None = None,
    pair_weight: float = PAIR_WEIGHT,
    pair_p99_weight: float = PAIR_P99_WEIGHT,
) -> np.ndarray:
    """Least-squares fit of :data:`ALL_PARAMS` to ``prob``'s rows, or to the rows where
    the boolean mask ``train`` is true (the compiled programs are the same for every
    mask: no recompilation per fold); parameters in ``fixed`` stay at their given
    values; ``bounds`` replaces some of :data:`ALL_BOUNDS`. The published log pairs of
    the training rows (``prob.pairs``) add ``pair_weight x log(model / log mean TPOT)``
    and ``pair_p99_weight x log(model / log p99 TPOT)`` residuals (0: not used).
    Returns theta."""
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
    n_train = int(train.sum())

    def full(x):
        theta = x0.copy()
        theta[free] = x
        return theta

    def resid(x):
        theta = full(x)
        return np.concatenate(
            [
                data_residuals(prob, theta, train, pair_weight, pair_p99_weight),
                PRIOR_WEIGHT * ((theta - prior) / scale)[free] * np.sqrt(n_train),
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
    pair_weight: float = PAIR_WEIGHT,
    pair_p99_weight: float = PAIR_P99_WEIGHT,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """:func:`cross_validate` on an already built :class:`Problem` (``pair_weight``,
    ``pair_p99_weight``: as :func:`fit`)."""
    key = FOLD_KINDS[kind]
    labels = np.array([key(r) for r in prob.rows])
    pred = np.zeros(len(prob.rows))
    thetas = {}
    for lab in sorted(set(labels)):
        held = labels == lab
        th = fit(
            prob,
            theta0,
            max_nfev=max_nfev,
            train=~held,
            fixed=fixed,
            bounds=bounds,
            pair_weight=pair_weight,
            pair_p99_weight=pair_p99_weight,
        )
        thetas[str(lab)] = th
        pred[held] = prob.predict(th)[held]
    return pred, thetas


def provenance(rows: Sequence[MLPerfRow], pairs: Sequence[LogPair] = ()) -> dict[str, Any]:
    digest = hashlib.sha256(MLPERF_FILE.read_bytes()).hexdigest()
    method = "scipy.optimize.least_squares (trf) on log(predicted / published tokens/s)"
    if pairs:
        method += f" and {PAIR_WEIGHT:g} x log(predicted / published mean TPOT) at the logs' batch"
    out: dict[str, Any] = dict(
        date=datetime.date.today().isoformat(),
        data_file="perfmodel/data/mlperf_inference.toml",
        data_sha256=digest,
        rows_used=len(rows),
        method=method,
        prior_weight=PRIOR_WEIGHT,
    )
    if pairs:
        out |= dict(
            logs_file="perfmodel/data/mlperf_v51_logs.toml",
            logs_sha256=hashlib.sha256(LOGS_FILE.read_bytes()).hexdigest(),
            pairs_used=len(pairs),
            pair_weight=PAIR_WEIGHT,
        )
    return out


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
