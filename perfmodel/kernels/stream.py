"""STREAM-style elementwise kernels: copy, scale, add, triad.

Each maps to :func:`perfmodel.roofline.elementwise` (inputs, outputs, FLOP per element):
copy ``b = a`` (1, 1, 0), scale ``b = s a`` (1, 1, 1), add ``c = a + b`` (2, 1, 1),
triad ``a = b + s c`` (2, 1, 2). Every size runs *cold* (inputs rotated across a
footprint of at least twice the last-level cache, so data comes from DRAM), and the
sizes that fit the cache also run *hot* (one input set, cache-resident by design),
which measures the on-chip level.
"""

from __future__ import annotations

from perfmodel import roofline
from perfmodel.kernels.harness import KernelCase, check_size

SCALAR = 3.0

#: element counts (cold runs); hot runs use those whose inputs fit in a quarter of the cache.
SIZES_N = {
    ("tiny", "cpu"): [1 << 12, 1 << 16, 1 << 19, 1 << 22],
    ("small", "cpu"): [1 << 12, 1 << 14, 1 << 16, 1 << 18, 1 << 20, 1 << 22, 1 << 24],
    ("full", "cpu"): [1 << 12, 1 << 14, 1 << 16, 1 << 18, 1 << 20, 1 << 22, 1 << 24, 1 << 26],
    ("tiny", "gpu"): [1 << 16, 1 << 20, 1 << 24, 1 << 27],
    ("small", "gpu"): [1 << 16, 1 << 18, 1 << 20, 1 << 22, 1 << 24, 1 << 26, 1 << 28],
    ("full", "gpu"): [1 << 16, 1 << 18, 1 << 20, 1 << 22, 1 << 24, 1 << 26, 1 << 28, 1 << 29],
}

#: name -> (inputs, outputs, flops per element)
KERNELS = {"copy": (1, 1, 0.0), "scale": (1, 1, 1.0), "add": (2, 1, 1.0), "triad": (2, 1, 2.0)}


def _copy(a):
    import jax.numpy as jnp

    return jnp.copy(a)


def _scale(a):
    return a * SCALAR


def _add(a, b):
    return a + b


def _triad(b, c):
    return b + SCALAR * c


FNS = {"copy": _copy, "scale": _scale, "add": _add, "triad": _triad}
REFS = {
    "copy": lambda a: a,
    "scale": lambda a: SCALAR * a,
    "add": lambda a, b: a + b,
    "triad": lambda b, c: b + SCALAR * c,
}


def stream_case(kernel: str, n: int, precision: str, hot: bool = False) -> KernelCase:
    if kernel not in KERNELS:
        raise ValueError(f"stream kernel {kernel!r} must be one of {tuple(KERNELS)}")
    ins, outs, fpe = KERNELS[kernel]
    mode = "hot" if hot else "cold"
    return KernelCase(
        name=f"stream_{kernel}_{mode}/{precision}/{n}",
        family="stream",
        precision=precision,
        shapes=((n,),) * ins,
        fn=FNS[kernel],
        reference=REFS[kernel],
        op=lambda: roofline.elementwise(
            n, precision, inputs=ins, outputs=outs, flops_per_element=fpe
        ),
        rotate=not hot,
        params=(("n", n), ("kernel", kernel), ("mode", mode)),
    )


def cases(
    size: str = "tiny",
    backend: str = "cpu",
    precisions: tuple[str, ...] = ("fp32", "bf16"),
    cache_bytes: float = 32e6,
    kernels: tuple[str, ...] | None = None,
) -> list[KernelCase]:
    """Cold cases for every size and kernel; hot cases where the op's bytes fit in a
    quarter of ``cache_bytes``. The second dtype runs copy and triad only (tiny: every
    other size); tiny drops ``scale``."""
    check_size(size)
    be = "gpu" if backend != "cpu" else "cpu"
    if kernels is None:
        kernels = ("copy", "add", "triad") if size == "tiny" else tuple(KERNELS)
    out = []
    for p in precisions:
        item = 4 if p == "fp32" else 2
        second = p != precisions[0]
        ks = tuple(k for k in kernels if k in ("copy", "triad")) if second else kernels
        sizes = SIZES_N[size, be][::2] if (second and size == "tiny") else SIZES_N[size, be]
        for k in ks:
            ins, outs, _ = KERNELS[k]
            for n in sizes:
                out.append(stream_case(k, n, p))
                if n * (ins + outs) * item <= cache_bytes / 4:
                    out.append(stream_case(k, n, p, hot=True))
    return out
