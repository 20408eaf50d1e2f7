"""Timing harness for the microbenchmark kernels.

Rules it enforces (each one is tested in ``tests/test_kernels.py``):

* **random data, never zeros**: inputs are drawn from a seeded normal distribution,
  rounded to the kernel dtype on the host;
* **correctness before timing**: the kernel output is compared with a NumPy (float64)
  reference computed on exactly the rounded inputs, with a per-dtype tolerance; a kernel
  that fails is never timed (:class:`KernelCheckError`);
* **compile time kept apart**: tracing/lowering and XLA compilation are timed on their
  own (``trace_s``, ``compile_s``); the first execution is timed apart too
  (``first_call_s``) and then ``warmup`` more calls run before any sample is taken;
* **inputs rotated**: calls cycle through ``n_buffers`` independent input sets, sized so
  that the rotated footprint exceeds the last-level cache when asked (so caches do not
  flatter the result); the footprint is reported as the op's working set;
* **block_until_ready** after every call (JAX dispatch is asynchronous);
* **several repeats, median and spread**: ``repeats`` samples; each repeat makes
  ``number`` back-to-back calls (``number`` chosen so one repeat lasts at least
  ``min_sample_s``), each timed on its own, and its sample is the median of those calls
  (robust to a preemption inside the repeat; the mean is kept too). The result keeps
  every sample and reports median, quartiles, min and max over the repeats.

The timing loop (:func:`time_callable`) takes the clock and the blocking function as
arguments, so its logic is tested with a fake clock.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from perfmodel.roofline import OP_KINDS

#: perfmodel precision name -> NumPy/JAX dtype name.
DTYPES: dict[str, str] = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}

#: Normalised max-error tolerance per dtype: ``max|out - ref| / max|ref| <= tol``.
#: bf16 keeps 8 mantissa bits (relative rounding 2**-9 = 0.2% per element, and XLA CPU
#: may accumulate long dot products in bf16); fp32 keeps 24.
TOLERANCE: dict[str, float] = {"fp32": 2e-4, "bf16": 4e-2, "fp16": 5e-3}


class KernelCheckError(AssertionError):
    """A kernel's output does not match its NumPy reference; it is not timed."""


def jnp_dtype(precision: str):
    """The JAX dtype of a perfmodel precision name (``fp32``, ``bf16``, ``fp16``)."""
    import jax.numpy as jnp

    if precision not in DTYPES:
        raise ValueError(f"dtype {precision!r} must be one of {tuple(DTYPES)}")
    return jnp.dtype(DTYPES[precision])


class RandomPool:
    """Seeded standard-normal numbers drawn once, handed out as fresh copies.

    Drawing normals costs far more than copying them, and the rotation needs many input
    sets: each :meth:`draw` copies a slice at a random offset of one pool into new
    memory (so every input set is a distinct buffer, which is what defeats the caches),
    drawing directly from the generator when the array is larger than the pool.
    Zeros are replaced by ``scale``.
    """

    def __init__(self, seed: int = 0, pool_elements: int = 1 << 22):
        self.rng = np.random.default_rng(seed)
        self.pool = self.rng.standard_normal(pool_elements, dtype=np.float32)
        self.pool[self.pool == 0] = 1.0

    def draw(self, shape: tuple[int, ...], scale: float = 1.0) -> np.ndarray:
        size = math.prod(shape)
        if size > self.pool.size // 2:
            x = self.rng.standard_normal(size, dtype=np.float32)
            x[x == 0] = 1.0
        else:
            off = int(self.rng.integers(0, self.pool.size - size + 1))
            x = np.array(self.pool[off : off + size], copy=True)
        x = x.reshape(shape)
        if scale != 1.0:
            x *= np.float32(scale)
        return x


def random_inputs(
    shapes: Sequence[tuple[int, ...]],
    precision: str,
    rng: np.random.Generator | RandomPool,
    scale: float = 1.0,
) -> tuple[Any, ...]:
    """One input set: standard-normal arrays (times ``scale``) rounded to ``precision``,
    each in its own new buffer on the default device. Never zeros."""
    import jax.numpy as jnp

    dt = jnp_dtype(precision)
    out = []
    for shape in shapes:
        if isinstance(rng, RandomPool):
            x = rng.draw(tuple(shape), scale)
        else:
            x = rng.standard_normal(shape).astype(np.float32) * np.float32(scale)
            x[x == 0] = scale
        out.append(jnp.array(x, dtype=dt, copy=True))
    return tuple(out)


def as_f64(x) -> np.ndarray:
    """Host copy of an array in float64 (exact for fp32/bf16/fp16 values)."""
    return np.asarray(np.asarray(x).astype(np.float32), dtype=np.float64)


def max_rel_error(out, ref) -> float:
    """``max|out - ref| / max|ref|`` (NaN or shape mismatch -> inf)."""
    o = as_f64(out)
    r = np.asarray(ref, dtype=np.float64)
    if o.shape != r.shape or not np.all(np.isfinite(o)):
        return math.inf
    denom = max(float(np.max(np.abs(r))), np.finfo(np.float64).tiny) if r.size else 1.0
    return float(np.max(np.abs(o - r))) / denom if r.size else 0.0


def check_close(name: str, out, ref, precision: str, tol: float | None = None) -> float:
    """Raise :class:`KernelCheckError` unless ``out`` matches ``ref`` within the
    per-dtype tolerance; return the normalised max error."""
    tol = TOLERANCE[precision] if tol is None else tol
    err = max_rel_error(out, ref)
    if not err <= tol:
        shape = getattr(out, "shape", None)
        raise KernelCheckError(
            f"kernel {name}: output (shape {shape}) differs from the NumPy reference: "
            f"max|out-ref|/max|ref| = {err:.3g} > tolerance {tol:g} for {precision}"
        )
    return err


def n_buffers_for(
    set_bytes: float,
    *,
    min_footprint_bytes: float = 0.0,
    min_buffers: int = 2,
    max_buffers: int = 64,
    max_total_bytes: float = 2e9,
) -> int:
    """How many input sets to rotate through: enough that ``n * set_bytes`` reaches
    ``min_footprint_bytes`` (e.g. twice the last-level cache), at least ``min_buffers``,
    at most ``max_buffers`` and never more than ``max_total_bytes`` in all (but >= 1)."""
    if set_bytes <= 0:
        raise ValueError(f"set_bytes = {set_bytes!r} must be > 0")
    n = max(min_buffers, math.ceil(min_footprint_bytes / set_bytes))
    n = min(n, max_buffers, max(1, int(max_total_bytes // set_bytes)))
    return max(1, n)


@dataclasses.dataclass(frozen=True)
class Timing:
    """Timing of one kernel (seconds). ``samples_s`` are per-call times, one per repeat."""

    trace_s: float
    compile_s: float
    first_call_s: float
    samples_s: tuple[float, ...]
    number: int
    n_buffers: int
    calls: int
    mean_samples_s: tuple[float, ...] = ()
    fastest_call_s: float = math.nan

    @property
    def median_s(self) -> float:
        return float(np.median(self.samples_s))

    @property
    def p25_s(self) -> float:
        return float(np.percentile(self.samples_s, 25))

    @property
    def p75_s(self) -> float:
        return float(np.percentile(self.samples_s, 75))

    @property
    def min_s(self) -> float:
        return float(np.min(self.samples_s))

    @property
    def max_s(self) -> float:
        return float(np.max(self.samples_s))

    @property
    def iqr_rel(self) -> float:
        """Interquartile range over the median (dimensionless spread)."""
        return (self.p75_s - self.p25_s) / self.median_s if self.median_s > 0 else math.inf

    def as_dict(self) -> dict[str, Any]:
        return {
            "trace_s": self.trace_s,
            "compile_s": self.compile_s,
            "first_call_s": self.first_call_s,
            "median_s": self.median_s,
            "p25_s": self.p25_s,
            "p75_s": self.p75_s,
            "min_s": self.min_s,
            "max_s": self.max_s,
            "repeats": len(self.samples_s),
            "number": self.number,
            "n_buffers": self.n_buffers,
            "calls": self.calls,
            "fastest_call_s": self.fastest_call_s,
            "samples_s": list(self.samples_s),
            "mean_samples_s": list(self.mean_samples_s),
        }


def time_callable(
    call: Callable[..., Any],
    arg_sets: Sequence[tuple],
    *,
    warmup: int = 2,
    repeats: int = 7,
    number: int | None = None,
    min_sample_s: float = 2e-3,
    max_number: int = 1000,
    clock: Callable[[], float] = time.perf_counter,
    block: Callable[[Any], Any] | None = None,
    trace_s: float = 0.0,
    compile_s: float = 0.0,
) -> Timing:
    """Time an already compiled ``call`` (seconds per call), rotating through ``arg_sets``.

    Sequence: one first call (timed apart), ``warmup`` calls, then, if ``number`` is
    None, one probe call to choose ``number = clip(ceil(min_sample_s / probe), 1,
    max_number)``; then ``repeats`` repeats of ``number`` calls each. Every call uses the
    next input set in rotation, is blocked on before the next starts and is timed on
    its own; a repeat's sample is the median of its calls (``mean_samples_s`` keeps the
    means, ``fastest_call_s`` the fastest timed call).
    """
    if not arg_sets:
        raise ValueError("arg_sets must hold at least one input set")
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats = {repeats} must be >= 1 and warmup = {warmup} >= 0")
    if block is None:
        import jax

        block = jax.block_until_ready
    nb = len(arg_sets)
    state = {"i": 0}

    def one() -> float:
        args = arg_sets[state["i"] % nb]
        state["i"] += 1
        t0 = clock()
        block(call(*args))
        return clock() - t0

    first = one()
    for _ in range(warmup):
        one()
    if number is None:
        probe = max(one(), 1e-9)
        number = int(min(max(1, math.ceil(min_sample_s / probe)), max_number))
    samples, means, fastest = [], [], math.inf
    for _ in range(repeats):
        calls = [one() for _ in range(number)]
        samples.append(float(np.median(calls)))
        means.append(float(np.mean(calls)))
        fastest = min(fastest, min(calls))
    return Timing(
        trace_s, compile_s, first, tuple(samples), number, nb, state["i"], tuple(means), fastest
    )


def compile_kernel(
    fn: Callable[..., Any],
    example_args: tuple,
    *,
    clock: Callable[[], float] = time.perf_counter,
    static_argnames: tuple[str, ...] = (),
) -> tuple[Callable[..., Any], float, float]:
    """``jax.jit(fn)`` lowered and compiled ahead of time for ``example_args``.

    Returns ``(compiled, trace_s, compile_s)``: tracing + lowering time and XLA compile
    time, kept apart from execution."""
    import jax

    t0 = clock()
    lowered = jax.jit(fn, static_argnames=static_argnames).lower(*example_args)
    t1 = clock()
    compiled = lowered.compile()
    t2 = clock()
    return compiled, t1 - t0, t2 - t1


# --------------------------------------------------------------------------------------
# Kernel cases and running them
# --------------------------------------------------------------------------------------

SIZES: tuple[str, ...] = ("tiny", "small", "full")


def check_size(size: str) -> str:
    if size not in SIZES:
        raise ValueError(f"size {size!r} must be one of {SIZES}")
    return size


def nested_sizes(
    **backends: tuple[Sequence[Any], Sequence[Any], Sequence[Any]],
) -> dict[tuple[str, str], list[Any]]:
    """Shape lists keyed ``(size, backend)`` where each size runs the smaller ones' shapes
    too: ``backend=(tiny, small_extra, full_extra)`` gives tiny, tiny + small_extra and
    tiny + small_extra + full_extra.

    >>> nested_sizes(cpu=([1], [2], [3]))[("full", "cpu")]
    [1, 2, 3]
    """
    out: dict[tuple[str, str], list[Any]] = {}
    for backend, parts in backends.items():
        acc: list[Any] = []
        for size, extra in zip(SIZES, parts, strict=True):
            acc = [*acc, *extra]
            out[size, backend] = acc
    return out


@dataclasses.dataclass(frozen=True)
class KernelCase:
    """One microbenchmark: a JAX function of ``len(shapes)`` arrays, its NumPy float64
    reference and the roofline :class:`perfmodel.roofline.Op` of one call.

    Attributes:
      name: unique name, e.g. ``matmul/fp32/512x512x512``.
      family: ``matmul``, ``batched_matmul``, ``attention``, ``stream``, ``reduction``.
      precision: perfmodel precision name (``fp32``, ``bf16``).
      shapes: input shapes.
      fn: the kernel (pure JAX; jitted by the harness).
      reference: NumPy function of the float64 inputs giving the expected output.
      op: zero-argument function returning the roofline Op of one call.
      rotate: rotate input sets (``False``: one input set, cache-resident by design).
      scale: standard deviation of the random inputs.
      tol: error tolerance (default :data:`TOLERANCE` of the dtype).
      params: the sizes, for tables and JSON.
      out_slice: for big cases, the part of the output that is checked (e.g. the first
        rows of a matmul); ``reference`` then computes only that part.
    """

    name: str
    family: str
    precision: str
    shapes: tuple[tuple[int, ...], ...]
    fn: Callable[..., Any]
    reference: Callable[..., np.ndarray]
    op: Callable[[], Any]
    rotate: bool = True
    scale: float = 1.0
    tol: float | None = None
    params: tuple[tuple[str, Any], ...] = ()
    out_slice: Callable[[Any], Any] | None = None

    @property
    def set_bytes(self) -> float:
        """Bytes of one input set."""
        item = np.dtype(jnp_dtype(self.precision)).itemsize
        return float(sum(math.prod(s) for s in self.shapes) * item)


@dataclasses.dataclass(frozen=True)
class KernelResult:
    """A checked and timed kernel, with its roofline op (plain floats)."""

    name: str
    family: str
    precision: str
    params: dict[str, Any]
    max_rel_error: float
    timing: Timing | None
    flops: float
    bytes: float
    working_set_bytes: float
    kind: str

    def as_dict(self) -> dict[str, Any]:
        d = {
            "name": self.name,
            "family": self.family,
            "precision": self.precision,
            "params": self.params,
            "max_rel_error": self.max_rel_error,
            "flops": self.flops,
            "bytes": self.bytes,
            "working_set_bytes": self.working_set_bytes,
            "kind": self.kind,
        }
        if self.timing is not None:
            d["timing"] = self.timing.as_dict()
        return d


def run_case(
    case: KernelCase,
    *,
    seed: int = 0,
    time_it: bool = True,
    warmup: int = 2,
    repeats: int = 7,
    min_sample_s: float = 2e-3,
    min_footprint_bytes: float = 0.0,
    max_total_bytes: float = 1e9,
    max_buffers: int = 1024,
    clock: Callable[[], float] = time.perf_counter,
    pool: RandomPool | None = None,
) -> KernelResult:
    """Check ``case`` against its reference, then (if ``time_it``) time it.

    ``pool`` (a :class:`RandomPool`) is shared between cases to save drawing time.
    The op's working set is reported as the rotated footprint
    ``n_buffers * op.working_set_bytes``: that is what the caches see across the
    timed loop (one buffer for a cache-resident ``rotate=False`` case).
    """
    rng = RandomPool(seed, 1 << 16) if pool is None else pool
    n = 1
    if case.rotate and time_it:
        n = n_buffers_for(
            case.set_bytes,
            min_footprint_bytes=min_footprint_bytes,
            max_buffers=max_buffers,
            max_total_bytes=max_total_bytes,
        )
    arg_sets = [random_inputs(case.shapes, case.precision, rng, case.scale) for _ in range(n)]
    compiled, trace_s, compile_s = compile_kernel(case.fn, arg_sets[0], clock=clock)
    out = compiled(*arg_sets[0])
    if case.out_slice is not None:
        out = case.out_slice(out)
    ref = case.reference(*[as_f64(a) for a in arg_sets[0]])
    err = check_close(case.name, out, ref, case.precision, case.tol)
    timing = None
    if time_it:
        timing = time_callable(
            compiled,
            arg_sets,
            warmup=warmup,
            repeats=repeats,
            min_sample_s=min_sample_s,
            clock=clock,
            trace_s=trace_s,
            compile_s=compile_s,
        )
    op = case.op()
    return KernelResult(
        case.name,
        case.family,
        case.precision,
        dict(case.params),
        err,
        timing,
        float(op.flops),
        float(op.bytes),
        float(op.working_set_bytes) * n,
        OP_KINDS[int(op.kind)],
    )
