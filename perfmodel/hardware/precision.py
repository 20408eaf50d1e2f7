"""Matmul precisions: their order in :attr:`Chip.peak_flops_per_s`, bytes per element,
the catalog key of each rate, and THE precision-fallback rule (:func:`rate_precision`).
"""

from collections.abc import Container

#: Matmul precisions, in the order of :attr:`Chip.peak_flops_per_s`. New precisions are
#: appended so existing indices keep their meaning. ``fp4`` is the NVFP4 / MXFP4 class
#: (4-bit elements plus block scales, counted as 0.5 byte per element).
PRECISIONS: tuple[str, ...] = ("fp8", "bf16", "fp16", "tf32", "fp32", "int8", "fp4")
PRECISION_INDEX: dict[str, int] = {p: i for i, p in enumerate(PRECISIONS)}
#: Bytes per element of each precision (tf32 is stored as fp32; fp4 counts the 4-bit
#: element only, not its block scale: 1 byte per 16 or 32 elements, <= 0.0625 byte).
BYTES_PER_ELEMENT: dict[str, float] = {
    "fp8": 1.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "tf32": 4.0,
    "fp32": 4.0,
    "int8": 1.0,
    "fp4": 0.5,
}
#: Catalog key holding the dense peak rate of each precision.
PRECISION_KEYS: dict[str, str] = {
    "fp8": "fp8_flops_per_s",
    "bf16": "bf16_flops_per_s",
    "fp16": "fp16_flops_per_s",
    "tf32": "tf32_flops_per_s",
    "fp32": "fp32_flops_per_s",
    "int8": "int8_ops_per_s",
    "fp4": "fp4_flops_per_s",
}
#: When a chip has no figure for a precision, it runs that precision at the rate of the
#: first precision in this list that it does have (e.g. an A100 runs fp8 work as bf16;
#: an inference NPU without bf16 runs int8). The fallback is recorded in the chip's
#: ``fallbacks`` so reports can say so. ``fp4`` has NO fallback: a chip without an FP4
#: tensor rate does not support it (its fp4 peak is 0; :meth:`ChipRecord.peak` and
#: ``Chip.peak(..., strict=True)`` raise). Resolve with :func:`rate_precision` only.
PRECISION_FALLBACK: dict[str, tuple[str, ...]] = {
    "fp8": ("fp8", "bf16", "fp16", "int8", "tf32", "fp32"),
    "bf16": ("bf16", "fp16", "tf32", "fp32"),
    "fp16": ("fp16", "bf16", "tf32", "fp32"),
    "tf32": ("tf32", "fp32"),
    "fp32": ("fp32", "tf32"),
    "int8": ("int8", "fp8", "bf16", "fp16", "tf32", "fp32"),
    "fp4": ("fp4",),
}


def rate_precision(precision: str, keys: Container[str]) -> str | None:
    """The precision whose rate a chip runs ``precision`` at, given the catalog keys it
    has (``keys``: a record's ``figures``, plus any override keys): the first entry of
    :data:`PRECISION_FALLBACK` whose :data:`PRECISION_KEYS` key is in ``keys``, or
    ``None`` when there is none (the chip does not support ``precision``; always the
    case for ``fp4`` on a chip without an ``fp4_flops_per_s`` figure).

    This is THE precision-fallback rule; every peak-rate look-up should go through it.

    Example::

        >>> rate_precision("fp8", {"bf16_flops_per_s"})
        'bf16'
        >>> rate_precision("fp4", {"fp8_flops_per_s", "bf16_flops_per_s"}) is None
        True
    """
    if precision not in PRECISION_FALLBACK:
        raise ValueError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
    for q in PRECISION_FALLBACK[precision]:
        if PRECISION_KEYS[q] in keys:
            return q
    return None


def unsupported_precision_error(chip: str, precision: str, supported: list[str]) -> ValueError:
    """The error for a peak-rate request at a precision the chip has no rate for."""
    return ValueError(
        f"precision {precision!r} is not supported by chip {chip!r} "
        f"(supported: {', '.join(supported) or 'none'})"
    )
