"""Pure core: monotone log-log scaling curves, their inversion and the rate bound
(jit/vmap/grad-able). The curve functions are jitted where they are defined: called
eagerly, each would be a dozen one-op programs, each looked up in the compile cache by
every new process."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from perfmodel.equivalence.definitions import MONO_EPS
from perfmodel.hardware import PRECISION_INDEX, Chip, struct


@struct.dataclass
class ScalingCurve:
    """A monotone throughput-vs-count curve in log-log form.

    Attributes:
      log_counts: ``log(n)`` on the grid, strictly increasing, shape ``(k,)``.
      log_throughput: ``log(T)`` (T in work units/s), strictly increasing, shape ``(k,)``.
    """

    log_counts: jnp.ndarray
    log_throughput: jnp.ndarray


@functools.partial(jax.jit, static_argnames="capacity")
def make_curve(counts, throughput, capacity: bool = False) -> ScalingCurve:
    """Build a :class:`ScalingCurve` from raw model throughputs on a grid.

    Steps: (1) counts where the job does not fit (throughput <= 0 or NaN) before the first
    feasible count get the first feasible throughput scaled in proportion to the count;
    (2) running maximum (a bigger cluster can idle chips); (3) add ``MONO_EPS * log n`` so
    the curve is strictly increasing and invertible.

    With ``capacity=True`` step (2) is instead a running maximum of the *per-chip*
    throughput: ``T_eff(n) = n * max_{k <= n} T(k) / k`` -- ``n`` chips may run independent
    copies of the job on ``k``-chip slices (capacity of a fleet that runs many jobs, the
    view behind fleet-level "H100-equivalent" statements).

    Args:
      counts: chip counts, strictly increasing, shape ``(k,)``.
      throughput: model throughput at each count (work units/s), shape ``(k,)``; at least
        one must be positive.

    Returns:
      The monotone curve. Differentiable in ``throughput`` (the running max routes the
      gradient to the point that sets it).
    """
    log_n = jnp.log(jnp.asarray(counts, dtype=float))
    t = jnp.asarray(throughput, dtype=float)
    ok = jnp.isfinite(t) & (t > 0)
    first = jnp.argmax(ok)
    log_t = jnp.log(jnp.where(ok, t, 1.0))
    fill = log_t[first] + (log_n - log_n[first])
    log_t = jnp.where(ok, log_t, jnp.where(jnp.arange(t.shape[0]) < first, fill, -jnp.inf))
    if capacity:
        log_t = jax.lax.cummax(log_t - log_n) + log_n
    else:
        log_t = jax.lax.cummax(log_t)
    return ScalingCurve(log_n, log_t + MONO_EPS * (log_n - log_n[0]))


def _pwl(x, xp, fp):
    """Piecewise-linear interpolation of ``fp(xp)`` at ``x`` with slope-1 extrapolation
    at both ends (``xp`` strictly increasing)."""
    k = xp.shape[0]
    i = jnp.clip(jnp.searchsorted(xp, x, side="right") - 1, 0, k - 2)
    x0, x1, f0, f1 = xp[i], xp[i + 1], fp[i], fp[i + 1]
    inside = f0 + (x - x0) * (f1 - f0) / (x1 - x0)
    below = fp[0] + (x - xp[0])
    above = fp[-1] + (x - xp[-1])
    return jnp.where(x < xp[0], below, jnp.where(x > xp[-1], above, inside))


@jax.jit
def curve_throughput(curve: ScalingCurve, n):
    """Throughput (work units/s) of ``n`` chips on ``curve`` (log-log interpolation)."""
    n = jnp.asarray(n, dtype=float)
    return jnp.exp(_pwl(jnp.log(n), curve.log_counts, curve.log_throughput))


@jax.jit
def curve_count(curve: ScalingCurve, throughput):
    """Inverse of :func:`curve_throughput`: the (fractional) count delivering
    ``throughput`` (work units/s)."""
    y = jnp.log(jnp.asarray(throughput, dtype=float))
    return jnp.exp(_pwl(y, curve.log_throughput, curve.log_counts))


@jax.jit
def curve_slope(curve: ScalingCurve, n):
    """Local scaling exponent ``d log T / d log n`` of ``curve`` at ``n`` (1 = linear
    scaling; near 0 = adding chips barely helps, so inverting there is ill-conditioned)."""
    return jax.grad(lambda x: _pwl(x, curve.log_counts, curve.log_throughput))(
        jnp.log(jnp.asarray(n, dtype=float))
    )


def equivalent_count(x_curve: ScalingCurve, ref_curve: ScalingCurve, n):
    """``m = T_ref^{-1}(T_x(n))``: reference chips delivering what ``n`` chips of X do.

    Pure and jit/vmap/grad-able in ``n`` and in both curves."""
    return curve_count(ref_curve, curve_throughput(x_curve, n))


def bound_factor(chip: Chip, ref: Chip, precision: str = "bf16"):
    """``c = max(1, r_flops, r_sram_bw, r_dram_bw, r_scaleup, r_scaleout)``, the ratios of
    ``chip``'s rates to ``ref``'s: the most a chip with ``ref``'s memory capacities can
    out-run ``ref`` per chip on any workload in the model (see module docstring)."""
    i = PRECISION_INDEX[precision]
    ratios = jnp.stack(
        [
            chip.peak_flops_per_s[i] / ref.peak_flops_per_s[i],
            chip.mem_bytes_per_s[0] / ref.mem_bytes_per_s[0],
            chip.mem_bytes_per_s[1] / ref.mem_bytes_per_s[1],
            jnp.where(
                ref.scaleup_bytes_per_s > 0,
                chip.scaleup_bytes_per_s / jnp.maximum(ref.scaleup_bytes_per_s, 1e-300),
                1.0,
            ),
            jnp.where(
                ref.scaleout_bytes_per_s > 0,
                chip.scaleout_bytes_per_s / jnp.maximum(ref.scaleout_bytes_per_s, 1e-300),
                1.0,
            ),
        ]
    )
    return jnp.maximum(1.0, jnp.max(ratios))
