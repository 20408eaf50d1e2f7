"""Fit the roofline's efficiency factors to kernel times measured on a device.

The fit minimises, over the training split,

    r_i = log t_model(op_i; theta) - log t_measured_i
    loss(theta) = mean_i (sqrt(r_i**2 + delta**2) - delta) + lam * |theta - theta_0|**2

with ``theta = (log compute_eff[kind], log memory_eff[level], log overhead_s)`` and the
smooth roofline time (:func:`perfmodel.roofline.op_time` with ``smooth=True``). The
pseudo-Huber penalty (``delta = 0.05``: quadratic within 5%, absolute beyond) targets
the median error and does not let a few kernels the roofline cannot describe (e.g.
``dot_product_attention`` running 3x slower than plain attention on XLA:CPU, with the
same Op) drag every factor. The small ridge term ``lam`` keeps factors that no training op constrains (e.g. conv2d) at
their defaults ``theta_0``. Errors are reported with the hard roofline as
``|t_model / t_measured - 1|`` in percent.

The measured time of a kernel is, by default, its *fastest* timed call (timeit's advice:
the other calls were slowed by something else): on a shared machine the median also
measures the neighbours (on the 2-core box this was written on, with other jobs running
at a load average of 8-18, medians were 2-4x the fastest call for 10-100 us kernels).
``--stat median`` uses the median of the repeats; both are in the JSON results.

The split is deterministic: within each (family, precision) group, ops sorted by FLOPs
then bytes, every third op starting with the second goes to the held-apart split (so it
interpolates between training sizes).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np

from perfmodel.choices import CALIBRATION_STATS
from perfmodel.hardware import PRECISION_INDEX, Chip, struct
from perfmodel.roofline import (
    COMPUTE_EFF_RANGE,
    MEMORY_EFF_RANGE,
    OP_KINDS,
    OVERHEAD_RANGE_S,
    Efficiency,
    Op,
    op_time,
)

#: Which time of a kernel counts as measured: its fastest call, or the median repeat.
STATS = CALIBRATION_STATS


def measured_s(r, stat: str = "fastest") -> float:
    """A kernel result's measured time (s): its fastest call or its median repeat."""
    if stat not in STATS:
        raise ValueError(f"stat {stat!r} must be one of {STATS}")
    return r.timing.fastest_call_s if stat == "fastest" else r.timing.median_s


# --------------------------------------------------------------------------------------
# Dataset, split, fit
# --------------------------------------------------------------------------------------


@struct.dataclass
class Dataset:
    """Measured ops as stacked arrays (leading axis = op)."""

    ops: Op
    measured_s: jnp.ndarray


def make_dataset(results, stat: str = "fastest") -> tuple[Dataset, list[dict[str, Any]]]:
    """Stack timed :class:`kernels.harness.KernelResult` s into a :class:`Dataset` (the
    measured time is ``fastest`` call or ``median`` of the repeats); also return
    per-op metadata (name, family, precision)."""
    if stat not in STATS:
        raise ValueError(f"stat {stat!r} must be one of {STATS}")
    rows = [r for r in results if r.timing is not None]
    if not rows:
        raise ValueError("no timed kernel results to calibrate on")
    f = lambda xs: jnp.asarray(np.array(xs, dtype=np.float64))  # noqa: E731
    ops = Op(
        f([r.flops for r in rows]),
        f([r.bytes for r in rows]),
        f([r.working_set_bytes for r in rows]),
        jnp.asarray([PRECISION_INDEX[r.precision] for r in rows]),
        jnp.asarray([OP_KINDS.index(r.kind) for r in rows]),
    )
    meta = [
        {
            "name": r.name,
            "family": r.family,
            "precision": r.precision,
            "flops": r.flops,
            "bytes": r.bytes,
        }
        for r in rows
    ]
    t = [measured_s(r, stat) for r in rows]
    return Dataset(ops, f(t)), meta


def split_mask(meta: Sequence[dict[str, Any]], every: int = 3, offset: int = 1) -> np.ndarray:
    """Deterministic held-apart split: True = test. Within each (family, precision) group
    sorted by (flops, bytes, name), index ``i`` is held apart when ``i % every == offset``."""
    if every < 2 or not 0 <= offset < every:
        raise ValueError(
            f"need every >= 2 and 0 <= offset < every, got every={every}, offset={offset}"
        )
    test = np.zeros(len(meta), dtype=bool)
    groups: dict[tuple[str, str], list[int]] = {}
    for i, m in enumerate(meta):
        groups.setdefault((m["family"], m["precision"]), []).append(i)
    for idx in groups.values():
        idx = sorted(idx, key=lambda i: (meta[i]["flops"], meta[i]["bytes"], meta[i]["name"]))
        for j, i in enumerate(idx):
            test[i] = j % every == offset
    return test


def _to_theta(eff: Efficiency):
    return (jnp.log(eff.compute), jnp.log(eff.memory), jnp.log(jnp.maximum(eff.overhead_s, 1e-9)))


def _from_theta(theta) -> Efficiency:
    c, m, o = theta
    return Efficiency(jnp.exp(c), jnp.exp(m), jnp.exp(o))


@functools.partial(jax.jit, static_argnames=("smooth",))
def predict_s(ops: Op, chip: Chip, eff: Efficiency, smooth: bool = False) -> jnp.ndarray:
    """Roofline time (s) of every op in a stacked :class:`Op` (one compiled call)."""
    return jax.vmap(lambda o: op_time(o, chip, eff, smooth=smooth).time_s)(ops)


HUBER_DELTA = 0.05


@jax.jit
def log_loss(theta, data: Dataset, weights, chip: Chip, theta0, ridge: float):
    """Weighted mean pseudo-Huber log-time error plus the ridge towards ``theta0``."""
    pred = predict_s(data.ops, chip, _from_theta(theta), smooth=True)
    r = jnp.log(pred) - jnp.log(data.measured_s)
    pen = jnp.sqrt(r**2 + HUBER_DELTA**2) - HUBER_DELTA
    fit = jnp.sum(weights * pen) / jnp.maximum(jnp.sum(weights), 1.0)
    reg = sum(jnp.sum((a - b) ** 2) for a, b in zip(theta, theta0, strict=True))
    return fit + ridge * reg


@jax.jit
def _fit_adam(theta0, init, data: Dataset, weights, chip: Chip, ridge, lr, steps_arr):
    import optax

    opt = optax.adam(optax.cosine_decay_schedule(lr, steps_arr.shape[0], alpha=0.01))
    grad = jax.value_and_grad(log_loss)

    eps = 1e-9  # stay strictly inside, whatever exp(log(x)) rounds to
    lo = (np.log(COMPUTE_EFF_RANGE[0]) + eps, np.log(MEMORY_EFF_RANGE[0]) + eps, np.log(1e-9))
    hi = (
        np.log(COMPUTE_EFF_RANGE[1]) - eps,
        np.log(MEMORY_EFF_RANGE[1]) - eps,
        np.log(OVERHEAD_RANGE_S[1]) - eps,
    )

    def step(carry, _):
        th, st = carry
        val, g = grad(th, data, weights, chip, theta0, ridge)
        upd, st = opt.update(g, st, th)
        # optax types every pytree as its Params union (which includes scalars)
        th = cast(tuple[jax.Array, ...], optax.apply_updates(th, upd))
        # projected step: stay inside the ranges a calibration file may hold
        th = tuple(jnp.clip(t, a, b) for t, a, b in zip(th, lo, hi, strict=True))
        return (th, st), val

    (theta, _), losses = jax.lax.scan(step, (init, opt.init(init)), steps_arr)
    return theta, losses


def fit_efficiency(
    data: Dataset,
    chip: Chip,
    train: np.ndarray | None = None,
    init: Efficiency | None = None,
    *,
    steps: int = 3000,
    lr: float = 0.05,
    ridge: float = 1e-3,
    restarts: Sequence[float] = (1.0, 0.3, 3.0),
) -> tuple[Efficiency, float]:
    """Fit an :class:`Efficiency` to measured times (Adam on the log-time loss, each step
    projected onto the allowed ranges of a calibration file).

    Args:
      data: measured ops (:func:`make_dataset`).
      chip: the chip the ops ran on.
      train: boolean mask of the training ops (default: all).
      init: prior and starting point (default :meth:`Efficiency.default`).
      steps, lr: Adam steps and peak learning rate (cosine decay).
      ridge: weight of ``|theta - theta_0|**2`` (log-space pull to the prior).
      restarts: multipliers of the initial efficiencies for a few restarts; the best
        final training loss wins.

    Returns:
      ``(efficiency, training loss)``.
    """
    if steps < 1 or not lr > 0 or ridge < 0:
        raise ValueError(f"need steps >= 1, lr > 0, ridge >= 0; got {steps}, {lr}, {ridge}")
    n = data.measured_s.shape[0]
    w = np.ones(n) if train is None else np.asarray(train, dtype=np.float64)
    if w.shape != (n,) or w.sum() < 1:
        raise ValueError(f"train mask must have shape ({n},) and select at least one op")
    if not np.all(np.asarray(data.measured_s) > 0):
        raise ValueError("measured times must all be > 0 s")
    init = Efficiency.default() if init is None else init
    theta0 = _to_theta(init)
    best = None
    steps_arr = jnp.zeros(steps)
    for mult in restarts:
        start = (theta0[0] + np.log(mult), theta0[1] + np.log(mult), theta0[2] - np.log(mult))
        theta, losses = _fit_adam(
            theta0,
            start,
            data,
            jnp.asarray(w),
            chip,
            jnp.asarray(ridge, dtype=jnp.float64),
            jnp.asarray(lr, dtype=jnp.float64),
            steps_arr,
        )
        loss = float(log_loss(theta, data, jnp.asarray(w), chip, theta0, ridge))
        if best is None or loss < best[1]:
            best = (theta, loss)
    if best is None:
        raise ValueError("restarts must hold at least one multiplier")
    return _from_theta(best[0]), best[1]


def abs_pct_error(pred_s, measured_s) -> np.ndarray:
    """``100 |pred / measured - 1|`` per op."""
    return 100.0 * np.abs(np.asarray(pred_s) / np.asarray(measured_s) - 1.0)
