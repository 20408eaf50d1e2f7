"""Reduction kernels: row sum and LayerNorm.

Row sum maps to :func:`perfmodel.roofline.reduction` (``rows x cols -> rows``); LayerNorm
(with scale and shift) to :func:`perfmodel.roofline.layernorm`. Both accumulate in
float32 and return the input dtype.
"""

from __future__ import annotations

import numpy as np

from perfmodel import roofline
from perfmodel.kernels.harness import KernelCase, check_size, nested_sizes

#: (rows, cols)
SHAPES = nested_sizes(
    cpu=(
        [(256, 256), (1024, 1024), (4096, 512), (64, 16384), (8192, 1024)],
        [(16384, 2048), (2048, 8192)],
        [(32768, 4096)],
    ),
    gpu=(
        [(4096, 1024), (16384, 4096), (65536, 8192)],
        [(8192, 16384), (131072, 4096)],
        [(262144, 8192)],
    ),
)

EPS = 1e-5


def row_sum(x):
    import jax.numpy as jnp

    return jnp.sum(x, axis=-1, dtype=jnp.float32).astype(x.dtype)


def layer_norm(x, gamma, beta):
    import jax.numpy as jnp

    xf = x.astype(jnp.float32)
    mu = jnp.mean(xf, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(xf - mu), axis=-1, keepdims=True)
    y = (xf - mu) * (1.0 / jnp.sqrt(var + np.float32(EPS)))
    lead = tuple(range(x.ndim - 1))  # gamma, beta: (cols,) -> (1, ..., cols), no rank promotion
    g = jnp.expand_dims(gamma.astype(jnp.float32), lead)
    b = jnp.expand_dims(beta.astype(jnp.float32), lead)
    return (y * g + b).astype(x.dtype)


def _ref_layer_norm(x, gamma, beta):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + EPS) * gamma + beta


def sum_case(rows: int, cols: int, precision: str) -> KernelCase:
    return KernelCase(
        name=f"reduce_sum/{precision}/{rows}x{cols}",
        family="reduction",
        precision=precision,
        shapes=((rows, cols),),
        fn=row_sum,
        reference=lambda x: x.sum(axis=-1),
        op=lambda: roofline.reduction(rows, cols, precision),
        params=(("rows", rows), ("cols", cols), ("kernel", "sum")),
    )


def layernorm_case(rows: int, cols: int, precision: str) -> KernelCase:
    return KernelCase(
        name=f"layernorm/{precision}/{rows}x{cols}",
        family="reduction",
        precision=precision,
        shapes=((rows, cols), (cols,), (cols,)),
        fn=layer_norm,
        reference=_ref_layer_norm,
        op=lambda: roofline.layernorm(rows, cols, precision),
        params=(("rows", rows), ("cols", cols), ("kernel", "layernorm")),
    )


def cases(
    size: str = "tiny", backend: str = "cpu", precisions: tuple[str, ...] = ("fp32", "bf16")
) -> list[KernelCase]:
    check_size(size)
    be = "gpu" if backend != "cpu" else "cpu"
    out = []
    for p in precisions:
        shapes = SHAPES[size, be]
        if size == "tiny":
            shapes = shapes[:4] if p == precisions[0] else shapes[1:4:2]
        out += [f(r, c, p) for f in (sum_case, layernorm_case) for (r, c) in shapes]
    return out
