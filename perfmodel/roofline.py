"""Roofline model: the time of one operation on one chip, with a memory hierarchy.

An :class:`Op` is a pytree of FLOPs, bytes moved, working-set bytes, precision and op
kind. :func:`op_time` returns an :class:`OpTiming` pytree::

    compute_s = flops / (peak[precision] * compute_eff[kind])
    level     = SRAM if working_set_bytes <= sram capacity else DRAM
    memory_s  = bytes / (bandwidth[level] * memory_eff[level])
    time_s    = max(compute_s, memory_s) + overhead_s            (hard, for reporting)
    time_s    = (compute_s**p + memory_s**p)**(1/p) + overhead_s  (smooth, for gradients)

The smooth time is bounded by the hard one: ``hard <= smooth <= 2**(1/p) * hard``
(overhead excluded; with the default ``p = 16`` that is within 4.4%), and the smooth
memory-level choice is a logistic weight ``s`` in ``log(working_set / capacity)`` of
width ``level_tau`` (default 0.02) that blends the bandwidths geometrically,
``bw_sram**s * bw_dram**(1-s)``; it equals the hard choice far from the capacity edge
(within 1e-3 once the working set is 25% away from it; see :func:`op_time`).

An op whose working set fits Dojo D1's 440 MB of SRAM therefore runs at SRAM
bandwidth; one that does not is fed from the interface processors' HBM.

Everything is a pure function of pytrees: ``jax.jit(jax.vmap(op_time, ...))`` evaluates
a million (op, chip) pairs in one call (see :func:`op_time_grid`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path
from typing import Any

import jax
import jax.core
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from perfmodel.errors import InputError
from perfmodel.hardware import (
    BYTES_PER_ELEMENT,
    MEMORY_LEVELS,
    PRECISION_INDEX,
    Chip,
    read_toml,
    struct,
)

OP_KINDS: tuple[str, ...] = ("matmul", "attention", "elementwise", "reduction", "conv2d")
OP_KIND_INDEX = {k: i for i, k in enumerate(OP_KINDS)}
BOUNDS: tuple[str, ...] = ("compute", "sram", "dram")

SMOOTH_P = 16.0
"""Exponent of the smooth max; ``hard <= smooth <= 2**(1/SMOOTH_P) * hard``."""


def _f(x):
    return jnp.asarray(x, dtype=jnp.result_type(float))


@struct.dataclass
class Op:
    """One operation's cost, independent of the chip.

    Attributes:
      flops: floating-point (or integer) operations, FLOP.
      bytes: bytes read from and written to memory, byte (minimum traffic).
      working_set_bytes: bytes that must be resident during the op, byte; decides the
        memory level it is fed from.
      precision: index into :data:`perfmodel.hardware.PRECISIONS`.
      kind: index into :data:`OP_KINDS` (selects the compute efficiency).
    """

    flops: jnp.ndarray
    bytes: jnp.ndarray
    working_set_bytes: jnp.ndarray
    precision: jnp.ndarray
    kind: jnp.ndarray


@struct.dataclass
class Efficiency:
    """Achievable fractions of peak, and a fixed per-op overhead.

    Defaults (documented guesses until calibrated by ``benchmarks/calibrate.py``):
    matmul/conv 0.80 and attention 0.70 of dense peak (cuBLAS/FlashAttention-class
    kernels at large sizes), elementwise/reduction 1.0 (they are memory-bound anyway),
    0.90 of SRAM and 0.85 of DRAM bandwidth (STREAM-class kernels reach 85-92% of HBM
    peak), 3 microseconds per op (kernel launch and tail effects).
    """

    compute: jnp.ndarray
    memory: jnp.ndarray
    overhead_s: jnp.ndarray

    @staticmethod
    def default() -> Efficiency:
        return Efficiency(_f([0.80, 0.70, 1.0, 1.0, 0.80]), _f([0.90, 0.85]), _f(3e-6))

    @staticmethod
    def ideal() -> Efficiency:
        """100% of every peak and no overhead: the pure roofline."""
        return Efficiency(jnp.ones(len(OP_KINDS)), jnp.ones(2), _f(0.0))

    @staticmethod
    def from_file(path) -> Efficiency:
        """Efficiencies fitted to measured kernels by ``perfmodel calibrate`` /
        ``benchmarks/calibrate.py`` (a calibration TOML; see
        :func:`load_efficiency`)."""
        return load_efficiency(path)


@struct.dataclass
class OpTiming:
    """Result of :func:`op_time` (all seconds unless stated)."""

    time_s: jnp.ndarray
    compute_s: jnp.ndarray
    memory_s: jnp.ndarray
    overhead_s: jnp.ndarray
    bound: jnp.ndarray  # index into BOUNDS
    intensity_flops_per_byte: jnp.ndarray
    attainable_flops_per_s: jnp.ndarray


# --------------------------------------------------------------------------------------
# Calibration files (read here, below perfmodel.calibrate, which fits and writes them)
# --------------------------------------------------------------------------------------

#: Allowed ranges of calibrated values (validated when loading a calibration file).
COMPUTE_EFF_RANGE = (1e-4, 10.0)
MEMORY_EFF_RANGE = (1e-4, 10.0)
OVERHEAD_RANGE_S = (0.0, 1.0)


def efficiency_to_dict(eff: Efficiency) -> dict[str, Any]:
    """Plain-float view of an :class:`Efficiency` (named by op kind and memory level)."""
    c = np.asarray(eff.compute, dtype=float)
    m = np.asarray(eff.memory, dtype=float)
    return {
        "compute": {k: float(c[i]) for i, k in enumerate(OP_KINDS)},
        "memory": {k: float(m[i]) for i, k in enumerate(MEMORY_LEVELS)},
        "overhead_s": float(np.asarray(eff.overhead_s)),
    }


def _check_range(path: str, field: str, v: Any, lo: float, hi: float) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise InputError(f"{path}: field '{field}' must be a number, got {v!r}")
    v = float(v)
    if not (math.isfinite(v) and lo <= v <= hi):
        raise InputError(
            f"{path}: field '{field}' = {v!r} is outside the allowed range [{lo:g}, {hi:g}]"
        )
    return v


def efficiency_from_dict(d: dict[str, Any], where: str = "<dict>") -> Efficiency:
    """Validate and build an :class:`Efficiency` from the ``[efficiency]`` table; op kinds
    or levels that are missing keep :meth:`Efficiency.default`."""
    default = efficiency_to_dict(Efficiency.default())
    if not isinstance(d, dict):
        raise InputError(f"{where}: [efficiency] must be a table")
    unknown = set(d) - {"compute", "memory", "overhead_s"}
    if unknown:
        raise InputError(
            f"{where}: unknown field(s) {sorted(unknown)} in [efficiency]; "
            "allowed: compute, memory, overhead_s"
        )
    levels = {}
    for sec, known, what, bounds in (
        ("compute", OP_KINDS, "op kind", COMPUTE_EFF_RANGE),
        ("memory", MEMORY_LEVELS, "memory level", MEMORY_EFF_RANGE),
    ):
        levels[sec] = dict(default[sec])
        for k, v in dict(d.get(sec, {})).items():
            if k not in known:
                raise InputError(f"{where}: [efficiency] {sec}.{k}: unknown {what}; known: {known}")
            levels[sec][k] = _check_range(where, f"efficiency.{sec}.{k}", v, *bounds)
    comp, mem = levels["compute"], levels["memory"]
    ovh = _check_range(
        where,
        "efficiency.overhead_s",
        d.get("overhead_s", default["overhead_s"]),
        *OVERHEAD_RANGE_S,
    )
    f = lambda x: jnp.asarray(x, dtype=jnp.float64)  # noqa: E731
    return Efficiency(f([comp[k] for k in OP_KINDS]), f([mem[k] for k in MEMORY_LEVELS]), f(ovh))


def load_calibration(path: str | Path) -> dict[str, Any]:
    """The whole calibration file as a dict (``meta``, ``efficiency``, ``errors``)."""
    p = Path(path).expanduser()
    data = read_toml(p, "calibration")
    if "efficiency" not in data:
        raise InputError(f"{p}: missing the [efficiency] table of a calibration file")
    return data


def load_efficiency(path: str | Path) -> Efficiency:
    """The :class:`perfmodel.roofline.Efficiency` stored in a calibration file.

    Example::

        eff = load_efficiency("~/.cache/perfmodel/calibration_host_measured.toml")
        t = roofline.op_time(roofline.matmul(512, 512, 512, "fp32"), chip, eff).time_s
    """
    p = Path(path).expanduser()
    return efficiency_from_dict(load_calibration(p)["efficiency"], str(p))


# --------------------------------------------------------------------------------------
# Op constructors (FLOP and byte formulas)
# --------------------------------------------------------------------------------------


def _bpe(dtype: str, **dims) -> float:
    """Bytes per element of ``dtype``; checks the dtype and any concrete sizes (traced
    sizes are left to the caller) before anything is traced."""
    if dtype not in PRECISION_INDEX:
        raise InputError(f"dtype {dtype!r} must be one of {tuple(PRECISION_INDEX)}")
    for name, v in dims.items():
        if isinstance(v, jax.core.Tracer):
            continue
        a = np.asarray(v, dtype=float)
        if not np.all(np.isfinite(a)) or np.any(a < 0):
            raise InputError(f"{name} = {v!r} must be a finite number >= 0")
    return BYTES_PER_ELEMENT[dtype]


def _op(flops, nbytes, ws, dtype: str, kind: str) -> Op:
    if dtype not in PRECISION_INDEX:
        raise InputError(f"dtype {dtype!r} must be one of {tuple(PRECISION_INDEX)}")
    return Op(
        _f(flops),
        _f(nbytes),
        _f(ws),
        jnp.asarray(PRECISION_INDEX[dtype]),
        jnp.asarray(OP_KIND_INDEX[kind]),
    )


def matmul(m, n, k, dtype: str = "bf16") -> Op:
    """C[m,n] = A[m,k] @ B[k,n].

    flops = 2 m n k;  bytes = (m k + k n + m n) * bytes_per_element (each operand
    read once, the result written once); working set = bytes.
    """
    b = _bpe(dtype, m=m, n=n, k=k)
    nbytes = (_f(m) * k + _f(k) * n + _f(m) * n) * b
    return _op(2.0 * _f(m) * n * k, nbytes, nbytes, dtype, "matmul")


def batched_matmul(batch, m, n, k, dtype: str = "bf16") -> Op:
    """``batch`` independent (m, k) @ (k, n) products: ``batch`` times :func:`matmul`."""
    _bpe(dtype, batch=batch)
    one = matmul(m, n, k, dtype)
    return dataclasses.replace(
        one,
        flops=one.flops * batch,
        bytes=one.bytes * batch,
        working_set_bytes=one.working_set_bytes * batch,
    )


def attention(
    batch, heads, seq_q, seq_kv, head_dim, dtype: str = "bf16", causal: bool = False
) -> Op:
    """Flash-style fused attention forward, softmax(Q K^T) V, never materialising the
    score matrix.

    flops = 4 b h s_q s_kv d (QK^T and PV, 2 flop per multiply-add), halved when causal;
    bytes = b h (2 s_q + 2 s_kv) d * bytes_per_element (read Q, K, V, write O).
    """
    b = _bpe(dtype, batch=batch, heads=heads, seq_q=seq_q, seq_kv=seq_kv, head_dim=head_dim)
    flops = 4.0 * _f(batch) * heads * seq_q * seq_kv * head_dim * (0.5 if causal else 1.0)
    nbytes = _f(batch) * heads * (2.0 * _f(seq_q) + 2.0 * _f(seq_kv)) * head_dim * b
    return _op(flops, nbytes, nbytes, dtype, "attention")


def elementwise(
    n, dtype: str = "bf16", inputs: int = 2, outputs: int = 1, flops_per_element: float = 1.0
) -> Op:
    """An elementwise op over ``n`` elements (e.g. ``c = a + b``: 2 inputs, 1 output).

    flops = n * flops_per_element;  bytes = n (inputs + outputs) * bytes_per_element.
    """
    nbytes = _f(n) * (inputs + outputs) * _bpe(dtype, n=n)
    return _op(_f(n) * flops_per_element, nbytes, nbytes, dtype, "elementwise")


def reduction(rows, cols, dtype: str = "bf16", flops_per_element: float = 1.0) -> Op:
    """Reduce each of ``rows`` rows of ``cols`` elements to one value (sum, max).

    flops = rows cols * flops_per_element;  bytes = (rows cols + rows) * bytes_per_element.
    """
    b = _bpe(dtype, rows=rows, cols=cols)
    nbytes = (_f(rows) * cols + rows) * b
    return _op(_f(rows) * cols * flops_per_element, nbytes, nbytes, dtype, "reduction")


def layernorm(rows, cols, dtype: str = "bf16") -> Op:
    """LayerNorm/RMSNorm over ``cols`` features: read x, write y, read scale and shift.

    flops = 8 rows cols (mean, variance, normalise, scale, shift);
    bytes = (2 rows cols + 2 cols) * bytes_per_element.
    """
    b = _bpe(dtype, rows=rows, cols=cols)
    nbytes = (2.0 * _f(rows) * cols + 2.0 * cols) * b
    return _op(8.0 * _f(rows) * cols, nbytes, nbytes, dtype, "reduction")


def conv2d(
    batch,
    height,
    width,
    c_in,
    c_out,
    kernel_h: ArrayLike = 3,
    kernel_w: ArrayLike = 3,
    stride=1,
    dtype: str = "bf16",
) -> Op:
    """2-D convolution, 'same' padding: output is (height/stride, width/stride).

    flops = 2 b h_o w_o c_out c_in k_h k_w;
    bytes = (b h w c_in + k_h k_w c_in c_out + b h_o w_o c_out) * bytes_per_element.
    """
    b = _bpe(
        dtype,
        batch=batch,
        height=height,
        width=width,
        c_in=c_in,
        c_out=c_out,
        kernel_h=kernel_h,
        kernel_w=kernel_w,
    )
    if not isinstance(stride, jax.core.Tracer) and not stride > 0:
        raise InputError(f"stride = {stride!r} must be > 0")
    ho, wo = _f(height) / stride, _f(width) / stride
    flops = 2.0 * batch * ho * wo * c_out * c_in * kernel_h * kernel_w
    nbytes = (
        _f(batch) * height * width * c_in
        + _f(kernel_h) * kernel_w * c_in * c_out
        + _f(batch) * ho * wo * c_out
    ) * b
    return _op(flops, nbytes, nbytes, dtype, "conv2d")


def scale_op(op: Op, k) -> Op:
    """The op repeated ``k`` times back to back (flops and bytes times ``k``; the
    working set is unchanged)."""
    return dataclasses.replace(op, flops=op.flops * k, bytes=op.bytes * k)


# --------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------


def smooth_max(a, b, p: float = SMOOTH_P):
    """``(a**p + b**p)**(1/p)`` for non-negative a, b: ``max <= smooth <= 2**(1/p) max``;
    homogeneous of degree 1 and differentiable away from ``a = b = 0``."""
    m = jnp.maximum(jnp.maximum(a, b), jnp.finfo(jnp.result_type(float)).tiny)
    return m * ((a / m) ** p + (b / m) ** p) ** (1.0 / p)


LEVEL_TAU = 0.02
"""Width of the smooth SRAM/DRAM choice, in natural-log units of working_set/capacity."""


def op_time(
    op: Op,
    chip: Chip,
    eff: Efficiency | None = None,
    *,
    smooth: bool = False,
    level_tau: float = LEVEL_TAU,
) -> OpTiming:
    """Time of ``op`` on ``chip`` (one op, one chip; vmap at the call site).

    Args:
      op: the operation (:class:`Op`).
      chip: the chip (:class:`perfmodel.hardware.Chip`).
      eff: achievable efficiencies and per-op overhead; default
        :meth:`Efficiency.default`.
      smooth: use the smooth max and smooth level choice (for gradients).
      level_tau: width, in natural-log units of working_set/capacity, of the smooth
        SRAM/DRAM choice ``s = sigmoid(-log(working_set / sram_capacity) / level_tau)``;
        the smooth bandwidth is ``bw_sram**s * bw_dram**(1 - s)``. Its error against the
        hard choice is the factor ``(bw_sram/bw_dram)**(1-s)`` (or ``**s`` above the
        edge), with ``min(s, 1-s) <= exp(-|log(working_set/capacity)| / level_tau)``:
        at the default 0.02 and a working set 25% or more away from the capacity,
        below 1e-3 even for a 1000x SRAM/DRAM bandwidth ratio.

    Returns:
      :class:`OpTiming` with time, compute and memory terms (s), the bound
      (index into :data:`BOUNDS`), arithmetic intensity (FLOP/byte) and attainable
      rate ``flops / time`` (FLOP/s).

    Example: an 8192^3 bf16 matmul on an H100 at 100% efficiency takes
    2 * 8192**3 / 989.4e12 = 1.111 ms and is compute-bound.
    """
    eff = Efficiency.default() if eff is None else eff
    peak = chip.peak_flops_per_s[op.precision] * eff.compute[op.kind]
    compute_s = op.flops / peak
    bw = chip.mem_bytes_per_s * eff.memory
    sram_cap = chip.mem_bytes[0]
    if smooth:
        ratio = jnp.log(jnp.maximum(op.working_set_bytes, 1.0)) - jnp.log(
            jnp.maximum(sram_cap, 1.0)
        )
        in_sram = jax.nn.sigmoid(-ratio / level_tau) * (sram_cap > 0)
        # Geometric blend of the two bandwidths: the error against the hard choice is the
        # factor (bw_sram / bw_dram) ** (1 - in_sram), small even when the levels differ
        # by 1000x (Dojo D1 SRAM vs its HBM share); a linear blend of 1/bw is not.
        log_bw = in_sram * jnp.log(bw[0]) + (1.0 - in_sram) * jnp.log(bw[1])
        memory_s = op.bytes * jnp.exp(-log_bw)
        core = smooth_max(compute_s, memory_s)
    else:
        in_sram = op.working_set_bytes <= sram_cap
        memory_s = op.bytes / jnp.where(in_sram, bw[0], bw[1])
        core = jnp.maximum(compute_s, memory_s)
    time_s = core + eff.overhead_s
    level = jnp.where(op.working_set_bytes <= sram_cap, 1, 2)
    bound = jnp.where(compute_s >= memory_s, 0, level)
    intensity = op.flops / jnp.maximum(op.bytes, 1.0)
    return OpTiming(
        time_s,
        compute_s,
        memory_s,
        jnp.broadcast_to(eff.overhead_s, time_s.shape),
        bound,
        intensity,
        op.flops / time_s,
    )


def op_time_s(op: Op, chip: Chip, eff: Efficiency | None = None, smooth: bool = False):
    """Just the time (s) of :func:`op_time`."""
    return op_time(op, chip, eff, smooth=smooth).time_s


def ridge_point(chip: Chip, precision: str = "bf16", level: int = 1) -> jnp.ndarray:
    """Arithmetic intensity (FLOP/byte) where the roof turns: peak / bandwidth of the
    memory level (0 = SRAM, 1 = DRAM)."""
    return chip.peak_flops_per_s[PRECISION_INDEX[precision]] / chip.mem_bytes_per_s[level]


@jax.jit
def op_time_grid(ops: Op, chips: Chip, eff: Efficiency) -> OpTiming:
    """All (op, chip) pairs: ``ops`` stacked on axis 0 (shape ``(n_ops,)`` leaves),
    ``chips`` stacked with :func:`perfmodel.hardware.stack_chips`; result leaves have
    shape ``(n_chips, n_ops)``. One compiled, vectorised call."""
    per_op = jax.vmap(op_time, in_axes=(0, None, None))
    return jax.vmap(per_op, in_axes=(None, 0, None))(ops, chips, eff)


@functools.partial(jax.jit, static_argnames=("smooth",))
def op_time_grid_s(ops: Op, chips: Chip, eff: Efficiency, smooth: bool = False) -> jnp.ndarray:
    """Just the times (s) of all (op, chip) pairs, shape ``(n_chips, n_ops)``.

    The fast path for large sweeps: XLA fuses the whole grid into one loop and writes one
    array instead of the seven of :class:`OpTiming` (several times faster than
    :func:`op_time_grid` for 1e6 pairs on a 2-core CPU; see
    ``benchmarks/roofline_throughput.py``). ``smooth`` selects the smooth flavour."""
    per_op = jax.vmap(lambda o, c: op_time(o, c, eff, smooth=smooth).time_s, in_axes=(0, None))
    return jax.vmap(per_op, in_axes=(None, 0))(ops, chips)


def stack_ops(ops: list[Op]) -> Op:
    """Stack ops along a new leading axis (for :func:`op_time_grid`)."""
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *ops)
