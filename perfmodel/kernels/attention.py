"""Attention kernels: plain ``softmax(Q K^T / sqrt(d)) V`` and
:func:`jax.nn.dot_product_attention` (where this JAX has it).

Layout ``(batch, seq, heads, head_dim)`` for Q, K and V. Both map to
:func:`perfmodel.roofline.attention` (``flops = 4 b h s_q s_kv d``), which models a
fused (flash-style) kernel; the plain version materialises the ``s x s`` score matrix,
so it moves more bytes than the model's formula: that gap is part of what calibration
measures.
"""

from __future__ import annotations

import numpy as np

from perfmodel import roofline
from perfmodel.kernels.harness import KernelCase, check_size, nested_sizes

#: (batch, heads, seq, head_dim).
SHAPES = nested_sizes(
    cpu=(
        [(1, 4, 128, 64), (2, 4, 256, 64), (1, 8, 512, 64), (4, 2, 64, 32)],
        [(1, 8, 1024, 64), (2, 16, 256, 128)],
        [(1, 16, 2048, 64), (4, 8, 1024, 128)],
    ),
    gpu=(
        [(4, 16, 1024, 64), (2, 16, 2048, 128), (1, 32, 4096, 128)],
        [(8, 32, 2048, 128), (1, 64, 8192, 128)],
        [(2, 32, 8192, 128), (1, 16, 16384, 128)],
    ),
)


def plain_attention(q, k, v):
    """softmax(Q K^T / sqrt(d)) V with the softmax in float32, output in Q's dtype."""
    import jax
    import jax.numpy as jnp

    d = q.shape[-1]
    s = jnp.einsum("bqhd,bkhd->bhqk", q, k, preferred_element_type=jnp.float32)
    p = jax.nn.softmax(s * (1.0 / np.sqrt(d)).astype(np.float32), axis=-1)
    return jnp.einsum(
        "bhqk,bkhd->bqhd", p.astype(q.dtype), v, preferred_element_type=jnp.float32
    ).astype(q.dtype)


def dpa_attention(q, k, v):
    """:func:`jax.nn.dot_product_attention` (XLA or cuDNN, as JAX picks)."""
    import jax

    return jax.nn.dot_product_attention(q, k, v)


def reference(q, k, v):
    """float64 NumPy attention."""
    d = q.shape[-1]
    s = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(d)
    s = s - s.max(axis=-1, keepdims=True)
    p = np.exp(s)
    p /= p.sum(axis=-1, keepdims=True)
    return np.einsum("bhqk,bkhd->bqhd", p, v)


def has_dot_product_attention() -> bool:
    import jax

    return hasattr(jax.nn, "dot_product_attention")


#: Above this many score elements, only the first CHECK_QUERIES query rows are checked
#: (their output depends on those queries and all keys/values).
CHECK_LIMIT = 2**27
CHECK_QUERIES = 64


def attention_case(
    b: int, h: int, s: int, d: int, precision: str, variant: str = "plain"
) -> KernelCase:
    if variant not in ("plain", "dpa"):
        raise ValueError(f"attention variant {variant!r} must be 'plain' or 'dpa'")
    fn = plain_attention if variant == "plain" else dpa_attention
    out_slice, ref = None, reference
    if b * h * s * s > CHECK_LIMIT and s > CHECK_QUERIES:
        out_slice = lambda o: o[:, :CHECK_QUERIES]  # noqa: E731
        ref = lambda q, k, v: reference(q[:, :CHECK_QUERIES], k, v)  # noqa: E731
    return KernelCase(
        name=f"attention_{variant}/{precision}/{b}x{h}x{s}x{d}",
        family="attention",
        precision=precision,
        shapes=((b, s, h, d),) * 3,
        fn=fn,
        reference=ref,
        op=lambda: roofline.attention(b, h, s, s, d, precision),
        params=(("batch", b), ("heads", h), ("seq", s), ("head_dim", d), ("variant", variant)),
        out_slice=out_slice,
    )


def cases(
    size: str = "tiny", backend: str = "cpu", precisions: tuple[str, ...] = ("fp32", "bf16")
) -> list[KernelCase]:
    """Plain and ``dot_product_attention`` cases for ``size`` on ``backend``."""
    check_size(size)
    be = "gpu" if backend != "cpu" else "cpu"
    variants = ("plain", "dpa") if has_dot_product_attention() else ("plain",)
    out = []
    for v in variants:
        for p in precisions:
            shapes = SHAPES[size, be]
            if size == "tiny" and not (v == "plain" and p == precisions[0]):
                # keep the tiny run short: every other shape off the main path, and a
                # single shape for the second dtype of dot_product_attention
                shapes = shapes[:1] if (v == "dpa" and p != precisions[0]) else shapes[::2]
            out += [attention_case(b, h, s, d, p, v) for (b, h, s, d) in shapes]
    return out
