"""A Pallas matmul (optional; GPU/TPU, or interpret mode for testing on CPU).

Never imported by default: :func:`perfmodel.kernels.all_cases` imports it only with
``pallas=True`` on a GPU/TPU backend. Each program instance computes one
``(block_m, block_n)`` tile of ``C = A @ B``, looping over K in ``block_k`` slices with a
float32 accumulator; maps to :func:`perfmodel.roofline.matmul`. bf16 only (what fp32
``dot`` means inside a Triton/Mosaic kernel depends on the backend).

Untested on a GPU in this repository's CI (no GPU); tests run it with
``interpret=True`` on CPU for correctness.
"""

from __future__ import annotations

import functools

from perfmodel import roofline
from perfmodel.kernels.harness import KernelCase, check_size

SHAPES = {
    "tiny": [(1024, 1024, 1024), (2048, 2048, 2048), (4096, 4096, 4096)],
    "small": [(1024, 1024, 1024), (2048, 2048, 2048), (4096, 4096, 4096), (8192, 8192, 8192)],
    "full": [
        (1024, 1024, 1024),
        (2048, 2048, 2048),
        (4096, 4096, 4096),
        (8192, 8192, 8192),
        (8192, 1024, 4096),
        (16384, 4096, 1024),
    ],
}


def _kernel(a_ref, b_ref, o_ref, *, block_k: int, n_k: int):
    import jax
    import jax.numpy as jnp
    from jax.experimental import pallas as pl

    def body(i, acc):
        a = a_ref[:, pl.ds(i * block_k, block_k)]
        b = b_ref[pl.ds(i * block_k, block_k), :]
        return acc + jnp.dot(a, b, preferred_element_type=jnp.float32)

    acc = jax.lax.fori_loop(0, n_k, body, jnp.zeros(o_ref.shape, jnp.float32))
    o_ref[...] = acc.astype(o_ref.dtype)


def pallas_matmul(
    a, b, *, block_m: int = 128, block_n: int = 128, block_k: int = 64, interpret: bool = False
):
    """``a @ b`` as a Pallas kernel; every dimension must divide by its block size."""
    import jax
    from jax.experimental import pallas as pl

    m, k = a.shape
    k2, n = b.shape
    if k != k2:
        raise ValueError(f"inner dimensions differ: a is {a.shape}, b is {b.shape}")
    block_m, block_n, block_k = min(block_m, m), min(block_n, n), min(block_k, k)
    for dim, blk, nm in ((m, block_m, "m"), (n, block_n, "n"), (k, block_k, "k")):
        if dim % blk:
            raise ValueError(f"{nm} = {dim} must be a multiple of block_{nm} = {blk}")
    kern = functools.partial(_kernel, block_k=block_k, n_k=k // block_k)
    return pl.pallas_call(
        kern,
        out_shape=jax.ShapeDtypeStruct((m, n), a.dtype),
        grid=(m // block_m, n // block_n),
        in_specs=[
            pl.BlockSpec((block_m, k), lambda i, j: (i, 0)),
            pl.BlockSpec((k, block_n), lambda i, j: (0, j)),
        ],
        out_specs=pl.BlockSpec((block_m, block_n), lambda i, j: (i, j)),
        interpret=interpret,
    )(a, b)


def pallas_matmul_case(
    m: int, n: int, k: int, precision: str = "bf16", *, interpret: bool = False, **blocks
) -> KernelCase:
    fn = functools.partial(pallas_matmul, interpret=interpret, **blocks)
    return KernelCase(
        name=f"pallas_matmul/{precision}/{m}x{n}x{k}",
        family="matmul",
        precision=precision,
        shapes=((m, k), (k, n)),
        fn=fn,
        reference=lambda a, b: a @ b,
        op=lambda: roofline.matmul(m, n, k, precision),
        params=(("m", m), ("n", n), ("k", k), ("impl", "pallas")),
    )


def cases(
    size: str = "tiny", backend: str = "gpu", precisions: tuple[str, ...] = ("bf16",)
) -> list[KernelCase]:
    check_size(size)
    if backend == "cpu":
        raise ValueError("Pallas kernels run on GPU/TPU (use interpret=True cases for CPU tests)")
    return [
        pallas_matmul_case(m, n, k, "bf16") for (m, n, k) in SHAPES[size] if "bf16" in precisions
    ]
