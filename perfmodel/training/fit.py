"""Fit the step model's efficiency parameters to the published runs, and cross-validate.

The parameters (:data:`perfmodel.training.types.FIT_PARAMS`) are global: one GEMM
efficiency of dense peak (with FP8 and FP4 factors and an MoE grouped-GEMM factor),
attention efficiency, a per-kernel overhead, DRAM efficiency, FP8/FP4 quantisation
passes and the hidden fractions of TP, CP, EP and PP communication and the DP tail.
Chips differ only through their catalog figures (peaks, memory, interconnect) and
the physics of :func:`perfmodel.training.step_time`; nothing is tuned per chip, model
or row. So a chip or model family left out of the fit is predicted from the same
parameters as everything else, which is what the cross-validation measures.

Loss: least squares on ``log(predicted / published tokens/s per GPU)`` over the used
rows (``scipy.optimize.least_squares``, trust-region reflective, analytic Jacobian from
``jax.jacfwd``), parameters in bounded natural units, a weak prior pulling each one
toward :func:`perfmodel.training.types.prior_efficiency` (weight ``PRIOR_WEIGHT``) so
that a parameter the training rows cannot see (e.g. FP4 when no FP4 row is in the
fold) stays at its documented prior instead of drifting.

Each group of rows with the same static structure (precision, FFN kind, attention
kind, network shape) is one ``jit(vmap(step_time))`` program, compiled once and
reused by every fold.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import hashlib
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from perfmodel.hardware import load_catalog
from perfmodel.training.runs import RUNS_FILE, Run, layout_of, workload_for
from perfmodel.training.step import get_network, step_time
from perfmodel.training.types import (
    FIT_PARAMS,
    efficiency_from_params,
    efficiency_params,
    fit_data,
    prior_efficiency,
)

#: Bounds of each fitted parameter (natural units).
BOUNDS: dict[str, tuple[float, float]] = {
    "matmul": (0.2, 1.0),
    "attention": (0.1, 1.0),
    "op_overhead_s": (0.0, 10e-6),  # kernel launch + tail; more is not physical
    # 1.2 x a ~0.6 BF16 fraction = ~0.72 of FP8 peak, what FP8 GEMMs sustain
    "fp8_matmul": (0.3, 1.2),
    "fp4_matmul": (0.2, 1.2),
    "moe_gemm": (0.2, 1.2),
    # a grouped GEMM pads each expert to its M tile (128-256 rows on Hopper/Blackwell)
    "moe_pad_tokens": (0.0, 256.0),
    "moe_layer_overhead_s": (0.0, 2e-3),
    "quant_passes": (0.0, 12.0),
    "tp_overlap": (0.0, 1.0),
    "cp_overlap": (0.0, 1.0),
    "ep_overlap": (0.0, 1.0),
    "pp_overlap": (0.0, 1.0),
    "dp_tail": (0.0, 1.0),
    "dram": (0.6, 1.0),  # sustained HBM streams reach 0.8-0.9 of peak; below 0.6 is not physical
    "tensor_j_per_flop": (0.0, 2e-12),
}
#: Weight of the prior residual ``(theta - prior) / range`` against a row's log error.
PRIOR_WEIGHT = 0.05
#: Robust loss: log errors beyond ``F_SCALE`` (about 10%) count linearly, not squared, so
#: that a row measuring old software (the same job ran up to 2.9x faster on the same
#: hardware a release later) cannot drag the shared parameters.
LOSS, F_SCALE = "soft_l1", 0.1


def config_weights(runs: Sequence[Run]) -> np.ndarray:
    """Weight of each row: one configuration (model, chip, GPU count, recipe, sequence)
    measured in ``n`` releases gives each of its rows ``1/n``, so a job re-published in
    every release does not count ``n`` times."""
    n = collections.Counter(r.config for r in runs)
    return np.array([1.0 / n[r.config] for r in runs])


class Problem:
    """The used runs grouped into compiled, vmapped programs."""

    def __init__(self, runs: Sequence[Run]):
        cat = load_catalog()
        self.runs = tuple(runs)
        groups: dict[Any, list[int]] = {}
        items = []
        for i, r in enumerate(self.runs):
            w = dataclasses.replace(workload_for(r), name="", family="")
            chip = dataclasses.replace(cat.chip(r.chip), name="")
            net = get_network(r.chip, cat)
            lay = layout_of(r)
            x = (w, chip, net, lay, jnp.asarray(float(r.gpus)))
            items.append(x)
            groups.setdefault(jax.tree_util.tree_structure(x), []).append(i)
        self.groups = []
        for idx in groups.values():
            stacked = jax.tree_util.tree_map(
                lambda *a: jnp.stack([jnp.asarray(v, dtype=float) for v in a]),
                *[items[i] for i in idx],
            )
            self.groups.append((np.asarray(idx), stacked))
        self.measured = np.array([r.tokens_per_s_per_gpu for r in self.runs])
        self.weights = config_weights(self.runs)

    def predict(self, theta) -> np.ndarray:
        """Predicted tokens/s per GPU of every run (jit-compiled per group)."""
        return _predict(self, jnp.asarray(theta))


def _group_pred(theta, stacked):
    te = efficiency_from_params(dict(zip(FIT_PARAMS, theta, strict=True)))

    def one(w, chip, net, lay, n):
        r = step_time(w, chip, net, lay, n, te)
        return r.units_per_s * jnp.where(w.unit == "sample", w.seq, 1.0) / n

    return jax.vmap(one)(*stacked)


_group_pred_jit = jax.jit(_group_pred)
_group_jac_jit = jax.jit(jax.jacfwd(lambda th, st: jnp.log(_group_pred(th, st))))


def _predict(prob: Problem, theta):
    out = np.zeros(len(prob.runs))
    for idx, st in prob.groups:
        out[idx] = np.asarray(_group_pred_jit(theta, st))
    return out


def _log_jac(prob: Problem, theta):
    out = np.zeros((len(prob.runs), len(FIT_PARAMS)))
    for idx, st in prob.groups:
        out[idx] = np.asarray(_group_jac_jit(jnp.asarray(theta), st))
    return out


def prior_theta() -> np.ndarray:
    p = efficiency_params(prior_efficiency())
    return np.array([p[k] for k in FIT_PARAMS])


def _scale() -> np.ndarray:
    return np.array([BOUNDS[k][1] - BOUNDS[k][0] for k in FIT_PARAMS])


def fit(
    prob: Problem, mask: np.ndarray | None = None, theta0=None, max_nfev: int = 40
) -> np.ndarray:
    """Least-squares parameters on the rows where ``mask`` is true (default: all)."""
    mask = np.ones(len(prob.runs), bool) if mask is None else np.asarray(mask, bool)
    prior, scale = prior_theta(), _scale()
    lo = np.array([BOUNDS[k][0] for k in FIT_PARAMS])
    hi = np.array([BOUNDS[k][1] for k in FIT_PARAMS])
    eps = 1e-6 * scale
    x0 = np.clip(prior if theta0 is None else np.asarray(theta0), lo + eps, hi - eps)
    logm = np.log(prob.measured[mask])
    sw = np.sqrt(prob.weights[mask])
    wprior = PRIOR_WEIGHT * np.sqrt(max(float(prob.weights[mask].sum()), 1.0))

    def res(th):
        lp = np.log(np.maximum(_predict(prob, th)[mask], 1e-30))
        return np.concatenate([sw * (lp - logm), wprior * (th - prior) / scale])

    def jac(th):
        return np.vstack([sw[:, None] * _log_jac(prob, th)[mask], wprior * np.diag(1.0 / scale)])

    import scipy.optimize  # only a refit needs it (about 0.6 s to import)

    sol = scipy.optimize.least_squares(
        res,
        x0,
        jac=jac,  # pyright: ignore[reportArgumentType]  (scipy's stubs allow only str)
        bounds=(lo, hi),
        method="trf",
        loss=LOSS,
        f_scale=F_SCALE,
        x_scale=scale,
        max_nfev=max_nfev,
    )
    return sol.x


def errors_pct(prob: Problem, theta) -> np.ndarray:
    """Signed error of every run, % (predicted / published - 1)."""
    return 100.0 * (_predict(prob, theta) / prob.measured - 1.0)


def cross_validate(
    prob: Problem, theta_full, *, folds: int = 5, seed: int = 0, cv_nfev: int = 25
) -> dict:
    """Out-of-fold errors (%): leave one chip out, leave one model family out, k-fold.

    Returns ``{scheme: errors array}`` where each row's error comes from the fit that
    did not see it."""
    runs = prob.runs
    out: dict[str, np.ndarray] = {}

    def by(key):
        err = np.full(len(runs), np.nan)
        for v in sorted({key(r) for r in runs}):
            test = np.array([key(r) == v for r in runs])
            # from the prior, not the full-data fit: no information from the held-out rows
            th = fit(prob, ~test, max_nfev=cv_nfev)
            err[test] = errors_pct(prob, th)[test]
        return err

    out["leave_one_chip_out"] = by(lambda r: r.chip)
    out["leave_one_family_out"] = by(lambda r: r.family)
    rng = np.random.default_rng(seed)
    fold = rng.permutation(len(runs)) % folds
    out[f"{folds}_fold"] = by(
        lambda r, f=dict(zip([x.index for x in runs], fold, strict=True)): f[r.index]
    )
    return out


def summary(err: np.ndarray) -> dict[str, float]:
    """Count, mean, median and max of |error| (%), and the share of rows within 20%."""
    a = np.abs(err[np.isfinite(err)])
    return dict(
        n=int(a.size),
        mean_abs_pct=float(a.mean()),
        median_abs_pct=float(np.median(a)),
        max_abs_pct=float(a.max()),
        within_20_pct_share=float((a <= 20.0).mean()),
    )


def fit_record(prob: Problem, theta, cv: dict[str, np.ndarray]) -> dict[str, Any]:
    """The fit as the data file stores it: parameters, date, data fingerprint, and the
    cross-validated error bands by chip / precision / kind (for every prediction)."""
    digest = hashlib.sha256(RUNS_FILE.read_bytes()).hexdigest()[:16]
    bands: dict[str, Any] = {}
    err = cv["5_fold"]
    for r, e in zip(prob.runs, err, strict=True):
        bands.setdefault(r.chip, {}).setdefault(r.precision, {}).setdefault(r.kind, []).append(
            abs(float(e))
        )
    bands = {
        c: {p: {k: round(float(np.mean(v)), 2) for k, v in kk.items()} for p, kk in pp.items()}
        for c, pp in bands.items()
    }
    return dict(
        meta=dict(
            date=datetime.date.today().isoformat(),
            data=str(RUNS_FILE.name),
            data_sha256_16=digest,
            rows_used=len(prob.runs),
            method=(
                f"scipy.optimize.least_squares ({LOSS}, f_scale {F_SCALE}) on log(tokens/s "
                "per GPU), rows weighted 1/releases of their configuration, weak prior"
            ),
            cv=({k: summary(v) for k, v in cv.items()}),
        ),
        params={k: float(v) for k, v in zip(FIT_PARAMS, theta, strict=True)},
        cv_mean_abs_pct=bands,
    )


def prediction_band(chip: str, precision: str, kind: str) -> float | None:
    """Cross-validated mean |error| (%) of predictions like this one, from the fit
    file: the same chip, precision and model kind; else the same chip and kind at any
    precision; else the same precision and kind on any chip; else the chip's; else the
    overall figure (None without a fit). A chip with no published run in the fit
    (e.g. GB300, MI300X) is predicted as a held-out chip is: its band is at least the
    leave-one-chip-out mean error."""
    d = fit_data()
    b = d.get("cv_mean_abs_pct", {})
    try:
        return float(b[chip][precision][kind])
    except KeyError:
        pass
    loco = d.get("meta", {}).get("cv", {}).get("leave_one_chip_out")
    if chip not in b and loco is not None:
        same = [pp[precision][kind] for pp in b.values() if kind in pp.get(precision, {})]
        return max(float(loco["mean_abs_pct"]), float(np.mean(same)) if same else 0.0)
    tiers = (
        [v[kind] for v in b.get(chip, {}).values() if kind in v],
        [pp[precision][kind] for pp in b.values() if kind in pp.get(precision, {})],
        [v for p in b.get(chip, {}).values() for v in p.values()],
    )
    for vals in tiers:
        if vals:
            return float(np.mean(vals))
    cv = d.get("meta", {}).get("cv", {}).get("5_fold")
    return None if cv is None else float(cv["mean_abs_pct"])
