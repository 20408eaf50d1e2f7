"""JAX microbenchmark kernels that measure the device at hand and feed
:mod:`perfmodel.calibrate`.

Families (each case maps to the :mod:`perfmodel.roofline` op of exactly that call):

* :mod:`perfmodel.kernels.matmul`: matmul sweep (shapes x dtypes) and batched matmul;
* :mod:`perfmodel.kernels.attention`: plain softmax attention and ``jax.nn.dot_product_attention``;
* :mod:`perfmodel.kernels.stream`: copy, scale, add, triad (cold from DRAM, hot in cache);
* :mod:`perfmodel.kernels.reduction`: row sum and LayerNorm;
* :mod:`perfmodel.kernels.collectives`: psum / all-gather / all-to-all over the local devices;
* ``perfmodel.kernels.pallas_matmul``: a Pallas matmul, only on GPU/TPU or in interpret mode
  (never imported by default).

The timing rules live in :mod:`perfmodel.kernels.harness`.
"""

from __future__ import annotations

from perfmodel.kernels import attention, matmul, reduction, stream
from perfmodel.kernels.harness import (  # noqa: F401
    SIZES,
    KernelCase,
    KernelCheckError,
    KernelResult,
    Timing,
    run_case,
    time_callable,
)

FAMILIES: tuple[str, ...] = ("matmul", "attention", "stream", "reduction")


def all_cases(
    size: str = "tiny",
    backend: str = "cpu",
    families: tuple[str, ...] = FAMILIES,
    precisions: tuple[str, ...] = ("fp32", "bf16"),
    cache_bytes: float = 32e6,
    pallas: bool = False,
) -> list:
    """Every kernel case of ``families`` at ``size`` for ``backend`` (``cpu``/``gpu``/``tpu``).

    ``matmul`` includes batched matmul. ``pallas=True`` adds Pallas matmuls (GPU/TPU only).
    """
    unknown = set(families) - set(FAMILIES)
    if unknown:
        raise ValueError(f"families {sorted(unknown)} unknown; choose from {FAMILIES}")
    out = []
    if "matmul" in families:
        out += matmul.cases(size, backend, precisions)
    if "attention" in families:
        out += attention.cases(size, backend, precisions)
    if "stream" in families:
        out += stream.cases(size, backend, precisions, cache_bytes=cache_bytes)
    if "reduction" in families:
        out += reduction.cases(size, backend, precisions)
    if pallas:
        if backend == "cpu":
            raise ValueError("pallas kernels need a GPU or TPU backend (backend='cpu' given)")
        # imported only here: it needs jax.experimental.pallas, which a CPU install may lack
        from perfmodel.kernels import pallas_matmul

        out += pallas_matmul.cases(size, backend, precisions)
    names = [c.name for c in out]
    if len(set(names)) != len(names):
        raise AssertionError("duplicate kernel case names")
    return out
