"""The :class:`Chip` pytree (numeric leaves, static name), its checks
(:func:`validate_chip`) and stacking for ``vmap`` (:func:`stack_chips`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer

from perfmodel.hardware import struct
from perfmodel.hardware.precision import (
    PRECISION_INDEX,
    PRECISIONS,
    unsupported_precision_error,
)
from perfmodel.hardware.schema import CatalogError, unit_of

MEMORY_LEVELS: tuple[str, ...] = ("sram", "dram")
"""Memory levels: on-chip SRAM (or L2 / last-level cache), then off-chip DRAM
(HBM, GDDR or LPDDR; the kind is in ``dram_type``)."""


@struct.dataclass
class Chip:
    """A chip (or a purchase-unit-sized compute package such as a Dojo tile) as a pytree.

    Numeric fields are JAX leaves, so a stack of chips can be ``vmap``-ed and gradients
    taken with respect to any of them. The name is static.

    Attributes:
      peak_flops_per_s: dense peak rate per precision, shape ``(len(PRECISIONS),)``,
        FLOP/s (op/s for int8), after the precision fallback; 0.0 at a precision the
        chip does not support (no figure and no fallback, e.g. fp4 before Blackwell).
      mem_bytes: capacity per memory level ``(sram, dram)``, byte.
      mem_bytes_per_s: bandwidth per memory level ``(sram, dram)``, byte/s.
      scaleup_bytes_per_s: scale-up (NVLink-class) bandwidth per chip, one direction.
      scaleout_bytes_per_s: scale-out (NIC) bandwidth per chip, one direction.
      tdp_w: chip (or package) power, W.
      allin_power_w: IT power per chip including its share of host, network and
        storage; facility overhead (PUE) is applied at the site, W.
      price_usd: chip price, USD.
      allin_price_usd: installed price per chip including its share of server,
        network and storage, USD.
      host_bytes_per_s: chip-to-host-memory bandwidth, one direction (PCIe on a
        discrete accelerator, NVLink-C2C on a Grace superchip), byte/s; 0 = none listed.
      name: catalog key (static).
    """

    peak_flops_per_s: jnp.ndarray
    mem_bytes: jnp.ndarray
    mem_bytes_per_s: jnp.ndarray
    scaleup_bytes_per_s: jnp.ndarray
    scaleout_bytes_per_s: jnp.ndarray
    tdp_w: jnp.ndarray
    allin_power_w: jnp.ndarray
    price_usd: jnp.ndarray
    allin_price_usd: jnp.ndarray
    host_bytes_per_s: jnp.ndarray | float = 0.0
    name: str = struct.field(pytree_node=False, default="")

    def peak(self, precision: str, strict: bool = False) -> jnp.ndarray:
        """Dense peak rate at ``precision`` (FLOP/s); 0.0 where the chip does not support
        it. With ``strict=True`` a concrete (non-traced) zero rate raises ValueError
        "precision 'fp4' is not supported by chip ..." instead."""
        if precision not in PRECISION_INDEX:
            raise ValueError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
        rate = self.peak_flops_per_s[..., PRECISION_INDEX[precision]]
        if strict and not isinstance(rate, Tracer) and not self.supports(precision):
            raise unsupported_precision_error(
                self.name or "<unnamed>", precision, self.supported_precisions()
            )
        return rate

    def supports(self, precision: str) -> bool:
        """Whether the chip has a positive peak rate at ``precision`` (own or fallback;
        for a stack of chips: every chip). Needs concrete values (not inside ``jit``)."""
        if precision not in PRECISION_INDEX:
            raise ValueError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
        if isinstance(self.peak_flops_per_s, Tracer):
            raise TypeError("Chip.supports needs concrete values; call it outside jit")
        rates = np.asarray(self.peak_flops_per_s)[..., PRECISION_INDEX[precision]]
        return bool(np.all(rates > 0))

    def supported_precisions(self) -> list[str]:
        """The precisions with a positive peak rate (concrete values only)."""
        return [p for p in PRECISIONS if self.supports(p)]

    def replace_fields(self, **kw: Any) -> Chip:
        """Return a copy with numeric fields overridden (values converted to arrays).
        Concrete values are checked with :func:`validate_chip` (tracers are not)."""
        for k in kw:
            if k not in CHIP_PYTREE_RANGES:
                raise CatalogError(
                    f"'{k}' is not a Chip field; fields: {', '.join(CHIP_PYTREE_RANGES)}"
                )
        new = dataclasses.replace(self, **{k: _leaf(v) for k, v in kw.items()})
        return validate_chip(new)


def _leaf(x: Any) -> jnp.ndarray:
    return jnp.asarray(x, dtype=jnp.result_type(float))


def build_chip(name: str, **fields: Any) -> Chip:
    """A checked :class:`Chip` named ``name`` from SI numbers by pytree field (sequences
    for ``peak_flops_per_s`` by precision and ``mem_bytes``/``mem_bytes_per_s`` by
    memory level), as :meth:`~perfmodel.hardware.ChipRecord.to_chip` builds it."""
    return validate_chip(Chip(**{k: _leaf(v) for k, v in fields.items()}, name=name))


#: Allowed range of each Chip pytree field (inclusive), per element, SI units.
CHIP_PYTREE_RANGES: dict[str, tuple[float, float]] = {
    "peak_flops_per_s": (0.0, 1e20),
    "mem_bytes": (0.0, 1e14),
    "mem_bytes_per_s": (1.0, 1e17),
    "scaleup_bytes_per_s": (0.0, 1e15),
    "scaleout_bytes_per_s": (0.0, 1e14),
    "tdp_w": (1e-3, 1e7),
    "allin_power_w": (1e-3, 1e8),
    "price_usd": (0.0, 1e10),
    "allin_price_usd": (0.0, 1e10),
    "host_bytes_per_s": (0.0, 1e15),
}


def validate_chip(chip: Chip, what: str = "") -> Chip:
    """Check a Python-built (or overridden, or stacked) :class:`Chip` before tracing.

    Raises :class:`CatalogError` naming the chip, the field, the offending value and the
    allowed range for a non-finite, negative or out-of-range leaf, a wrong shape, or a
    chip with no positive peak rate. Leaves that are JAX tracers (inside ``jit``) are
    skipped: validate at the API boundary. Returns ``chip`` unchanged.

    Example::

        >>> from perfmodel.hardware import chip
        >>> try:
        ...     chip("h100").replace_fields(tdp_w=float("nan"))
        ... except CatalogError as e:
        ...     print(str(e).split(";")[0])
        chip 'h100_sxm': field 'tdp_w' = nan is not finite
    """
    name = what or chip.name or "<unnamed>"
    shapes = {
        "peak_flops_per_s": len(PRECISIONS),
        "mem_bytes": len(MEMORY_LEVELS),
        "mem_bytes_per_s": len(MEMORY_LEVELS),
    }
    for field, (lo, hi) in CHIP_PYTREE_RANGES.items():
        x = getattr(chip, field)
        if isinstance(x, Tracer):
            continue
        a = np.asarray(x, dtype=float)
        if field in shapes and (a.ndim == 0 or a.shape[-1] != shapes[field]):
            raise CatalogError(
                f"chip '{name}': field '{field}' has shape {a.shape}; the last "
                f"axis must have length {shapes[field]}"
            )
        bad = ~np.isfinite(a)
        if bad.any():
            raise CatalogError(
                f"chip '{name}': field '{field}' = {a[bad].flat[0]} is not finite; "
                f"allowed range [{lo:g}, {hi:g}] {_unit_of_field(field)}"
            )
        out = (a < lo) | (a > hi)
        if out.any():
            raise CatalogError(
                f"chip '{name}': field '{field}' = {a[out].flat[0]:g} is outside "
                f"the allowed range [{lo:g}, {hi:g}] {_unit_of_field(field)}"
            )
    peaks = getattr(chip, "peak_flops_per_s")
    if not isinstance(peaks, Tracer) and (np.max(np.asarray(peaks), axis=-1) <= 0).any():
        raise CatalogError(
            f"chip '{name}': field 'peak_flops_per_s' has no positive peak rate at any precision"
        )
    return chip


def _unit_of_field(field: str) -> str:
    return unit_of(field) or ("byte" if field == "mem_bytes" else "")


def stack_chips(chips: list[Chip]) -> Chip:
    """Stack chips along a new leading axis (for ``vmap``); the name becomes ``""``."""
    unnamed = [dataclasses.replace(c, name="") for c in chips]
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *unnamed)


def to_numpy(x: Any) -> np.ndarray:
    return np.asarray(x)
