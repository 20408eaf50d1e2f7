"""Matmul kernels: a sweep of shapes and dtypes, plus batched matmul.

Each maps to :func:`perfmodel.roofline.matmul` / :func:`perfmodel.roofline.batched_matmul`
(``flops = 2 m n k`` per product). fp32 runs at ``Precision.HIGHEST`` (true fp32, no
TF32 or bf16 passes on GPUs); bf16 takes bf16 inputs and returns bf16.
"""

from __future__ import annotations

import numpy as np

from perfmodel import roofline
from perfmodel.kernels.harness import KernelCase, check_size, nested_sizes

#: (m, n, k) per size and backend: squares, then skinny/wide shapes.
MATMUL_SHAPES = nested_sizes(
    cpu=(
        [
            (64, 64, 64),
            (128, 128, 128),
            (256, 256, 256),
            (384, 384, 384),
            (512, 512, 512),
            (512, 512, 64),
            (64, 512, 512),
            (1024, 128, 256),
        ],
        [
            (768, 768, 768),
            (1024, 1024, 1024),
            (2048, 256, 512),
            (256, 2048, 1024),
            (1536, 1536, 1536),
        ],
        [(2048, 2048, 2048), (3072, 3072, 3072), (4096, 512, 1024), (4096, 4096, 256)],
    ),
    gpu=(
        [
            (256, 256, 256),
            (1024, 1024, 1024),
            (2048, 2048, 2048),
            (4096, 4096, 4096),
            (8192, 1024, 4096),
            (4096, 4096, 256),
        ],
        [(512, 512, 512), (8192, 8192, 8192), (16384, 4096, 1024), (1024, 8192, 8192)],
        [
            (3072, 3072, 3072),
            (6144, 6144, 6144),
            (12288, 12288, 12288),
            (32768, 8192, 1024),
            (8192, 28672, 8192),
        ],
    ),
)

#: (batch, m, n, k).
BMM_SHAPES = nested_sizes(
    cpu=(
        [(8, 64, 64, 64), (16, 128, 128, 64), (4, 256, 256, 256), (32, 64, 128, 64)],
        [(8, 512, 512, 128), (64, 128, 128, 128)],
        [(16, 512, 512, 512), (128, 256, 256, 64)],
    ),
    gpu=(
        [(32, 512, 512, 128), (64, 1024, 1024, 128), (8, 2048, 2048, 2048)],
        [(256, 1024, 1024, 64), (16, 4096, 4096, 1024)],
        [(128, 2048, 2048, 128), (4, 8192, 8192, 8192)],
    ),
)


def _precision(precision: str):
    from jax import lax

    return lax.Precision.HIGHEST if precision == "fp32" else None


def matmul_fn(precision: str):
    """``C = A @ B`` in the kernel dtype (fp32 at HIGHEST precision)."""
    import jax.numpy as jnp

    prec = _precision(precision)

    def matmul(a, b):
        return jnp.matmul(a, b, precision=prec)

    return matmul


#: Above this many multiply-adds, only the first CHECK_ROWS rows of C are checked
#: (a float64 NumPy reference of an 8192^3 product would take minutes).
CHECK_LIMIT = 2**31
CHECK_ROWS = 256


def _checked_rows(batch: int, m: int, n: int, k: int):
    if batch * m * n * k <= CHECK_LIMIT or m <= CHECK_ROWS:
        return None, lambda x, y: np.matmul(x, y)
    return (lambda c: c[..., :CHECK_ROWS, :]), (lambda x, y: np.matmul(x[..., :CHECK_ROWS, :], y))


def matmul_case(m: int, n: int, k: int, precision: str) -> KernelCase:
    out_slice, ref = _checked_rows(1, m, n, k)
    return KernelCase(
        name=f"matmul/{precision}/{m}x{n}x{k}",
        family="matmul",
        precision=precision,
        shapes=((m, k), (k, n)),
        fn=matmul_fn(precision),
        reference=ref,
        op=lambda: roofline.matmul(m, n, k, precision),
        scale=1.0,
        params=(("m", m), ("n", n), ("k", k)),
        out_slice=out_slice,
    )


def batched_matmul_case(b: int, m: int, n: int, k: int, precision: str) -> KernelCase:
    out_slice, ref = _checked_rows(b, m, n, k)
    return KernelCase(
        name=f"batched_matmul/{precision}/{b}x{m}x{n}x{k}",
        family="batched_matmul",
        precision=precision,
        shapes=((b, m, k), (b, k, n)),
        fn=matmul_fn(precision),
        reference=ref,
        op=lambda: roofline.batched_matmul(b, m, n, k, precision),
        params=(("batch", b), ("m", m), ("n", n), ("k", k)),
        out_slice=out_slice,
    )


def cases(
    size: str = "tiny", backend: str = "cpu", precisions: tuple[str, ...] = ("fp32", "bf16")
) -> list[KernelCase]:
    """Matmul and batched-matmul cases for ``size`` on ``backend`` (cpu or gpu)."""
    check_size(size)
    be = "gpu" if backend != "cpu" else "cpu"

    def pick(shapes, p):  # tiny: every other shape for the second dtype
        return shapes if (size != "tiny" or p == precisions[0]) else shapes[::2]

    out = [
        matmul_case(m, n, k, p)
        for p in precisions
        for (m, n, k) in pick(MATMUL_SHAPES[size, be], p)
    ]
    out += [
        batched_matmul_case(b, m, n, k, p)
        for p in precisions
        for (b, m, n, k) in pick(BMM_SHAPES[size, be], p)
    ]
    return out
